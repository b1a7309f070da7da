"""The bench's request bodies, written into the directory given: one file per kind.

seed.json    the seed's sample (about 40 bytes)
order.json   an Order of tests/bench/orders.proto, about 4 KB of JSON with nested messages and repeated fields
batch.json   a batch endpoint's body: 50 records of the seed's sample, keys spread over 8 values
"""
import json, sys

out = sys.argv[1]
seed = {"some_message": "benchmark payload"}
address = {"lines": ["Flat 4", "17 Long Street"], "city": "Manchester", "postcode": "M1 1AA", "country": "GB"}
order = {
    "id": "order-000017",
    "createdMs": "1764000000000",
    "customer": {"id": "customer-7", "name": "Ada Lovelace", "shipping": address, "billing": address},
    "lines": [
        {"sku": f"SKU-{i:05d}", "quantity": i % 5 + 1, "unitPrice": 9.99 + i,
         "discounts": [{"code": "SPRING", "percent": 10.0}, {"code": f"LOYAL{i}", "percent": 2.5}]}
        for i in range(26)
    ],
    "labels": {"channel": "web", "region": "eu-west", "campaign": "november"},
    "status": "PAID",
    "notes": ["leave at the door", "fragile"],
}
batch = {"records": [{"key": f"k{i % 8}", "headers": {"source": "bench"}, "value": seed} for i in range(50)]}
for name, body in [("seed", seed), ("order", order), ("batch", batch)]:
    with open(f"{out}/{name}.json", "w") as f:
        json.dump(body, f, separators=(",", ":"))
