//! What converting a body allocates, counted by a global allocator that counts each thread's calls: the
//! protobuf transcoder allocates its buffers once per body, sized from it, and the output; a body with
//! twice the fields costs at most a buffer's growth more, never an allocation per field.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use krakend_kafka::{Codec, DataFormat};
use serde_json::json;
use serde_json::value::RawValue;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // try_with: the thread's counter may be gone while the thread ends
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The bench's order (tests/bench/bodies.py) with `lines` lines: 7 fields and 3 messages each.
fn order(lines: usize) -> Box<RawValue> {
    let address = json!({"lines": ["Flat 4", "17 Long Street"], "city": "Manchester", "postcode": "M1 1AA"});
    let line = |i: usize| {
        json!({"sku": format!("SKU-{i:05}"), "quantity": i % 5 + 1, "unitPrice": 9.99 + i as f64, "discounts": [
            {"code": "SPRING", "percent": 10.0}, {"code": format!("LOYAL{i:05}"), "percent": 2.5}]})
    };
    let body = json!({
        "id": "order-000017", "createdMs": "1764000000000",
        "customer": {"id": "customer-7", "name": "Ada Lovelace", "shipping": address, "billing": address},
        "lines": (0..lines).map(line).collect::<Vec<_>>(),
        "labels": {"channel": "web", "region": "eu-west"}, "status": "PAID", "notes": ["fragile"],
    });
    RawValue::from_string(body.to_string()).unwrap()
}

fn allocations(codec: &Codec, body: &RawValue) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    let bytes = codec.encode(body, "body").expect("the order is taken");
    let counted = ALLOCATIONS.with(Cell::get) - before;
    drop(bytes);
    counted
}

#[test]
fn a_body_twice_as_large_costs_no_allocation_per_field() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bench/orders.proto")).unwrap();
    let codec = Codec::compile("orders", DataFormat::Protobuf, &text, &[], Some("bench.v1.Order")).unwrap();
    let counts: Vec<(usize, usize)> =
        [26, 52, 104, 208].into_iter().map(|n| (n, allocations(&codec, &order(n)))).collect();
    eprintln!("lines and allocations: {counts:?}");
    for &(lines, counted) in &counts {
        // 7 fields and 3 messages a line: an allocation per field would be hundreds
        assert!(counted <= 12, "{lines} lines: {counted} allocations ({counts:?})");
    }
    for pair in counts.windows(2) {
        assert!(pair[1].1 <= pair[0].1 + 2, "twice the lines, more than a buffer's growth more: {counts:?}");
    }
}
