//! Avro: a body read against the topic's Avro schema ([`plan`], [`read`]) into apache-avro's value of
//! it, which apache-avro writes as the binary datum a registry's deserializer reads.

pub mod plan;
pub mod read;

use std::fmt;

use apache_avro::schema::ResolvedSchema;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use serde_json::value::RawValue;

use crate::format::json;
use crate::format::unusable::unusable;
use crate::outcome::Failure;
use crate::telemetry::log;
use plan::Plan;

/// apache-avro's writer borrows the schemas it resolves names in: kept beside them, made once.
#[ouroboros::self_referencing]
struct Writer {
    /// The named types the schema imports, then the schema (a type is resolved after those it refers to).
    schemas: Vec<Schema>,
    #[borrows(schemas)]
    #[covariant]
    datum: GenericDatumWriter<'this>,
}

pub struct Avro {
    schema: String,
    plan: Plan,
    writer: Writer,
}

impl fmt::Debug for Avro {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Avro").field("schema", &self.schema).field("plan", &self.plan).finish_non_exhaustive()
    }
}

impl Avro {
    /// Compiles `text`, the Avro schema of schema `schema`, whose named types may come from `imports` (a
    /// Confluent registry's references, each the schema of one named type).
    pub fn compile(schema: &str, text: &str, imports: &[(String, String)]) -> Result<Avro, Failure> {
        let refuse = |why: String| unusable(schema, "is not an Avro schema the gateway can write", why);
        let schemas = match imports {
            [] => vec![Schema::parse_str(text).map_err(|e| refuse(e.to_string()))?],
            imports => {
                let (top, named) = Schema::parse_str_with_list(text, imports.iter().map(|(_, text)| text))
                    .map_err(|e| refuse(e.to_string()))?;
                named.into_iter().chain([top]).collect()
            }
        };
        let resolved =
            ResolvedSchema::new_with_schemata(schemas.iter().collect()).map_err(|e| refuse(e.to_string()))?;
        let top = schemas.len() - 1;
        let plan = Plan::of(&schemas[top], resolved.get_names()).and_then(read::with_defaults).map_err(refuse)?;
        let writer = WriterTryBuilder {
            schemas,
            datum_builder: |schemas: &Vec<Schema>| {
                GenericDatumWriter::builder(&schemas[top]).schemata(schemas.iter().collect())?.build()
            },
        }
        .try_build()
        .map_err(|e| refuse(e.to_string()))?;
        Ok(Avro { schema: schema.to_owned(), plan, writer })
    }

    /// The Avro datum of `body`; 400 with the field's path for a body the schema does not describe.
    pub fn encode(&self, body: &RawValue, at: &str) -> Result<Vec<u8>, Failure> {
        let json = json::read(body.get(), at).map_err(Failure::bad_request)?;
        let value =
            read::Reader::new(&self.plan).value(0, &json).map_err(|why| Failure::bad_request(format!("{at}{why}")))?;
        let mut datum = Vec::new();
        self.writer.borrow_datum().write_value_ref(&mut datum, &value).map_err(|e| {
            log::once(
                &format!("avro {} refused", self.schema),
                format_args!("schema {}: apache-avro refused a value read by its plan: {e}", self.schema),
            );
            Failure::internal(format!(
                "schema {}: the record could not be written as Avro (the gateway's log says why)",
                self.schema
            ))
        })?;
        Ok(datum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value as V;

    const ORDER: &str = r#"{"type": "record", "name": "Order", "namespace": "shop.v1", "fields": [
        {"name": "id", "type": "string"},
        {"name": "qty", "type": "int", "default": 1},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["RETAIL", "WHOLESALE"]}, "default": "RETAIL"},
        {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
            {"name": "sku", "type": "string"}, {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}}]}},
            "default": []},
        {"name": "note", "type": ["null", "string"], "default": null},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}, "default": 0},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}, "default": 0},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}, "default": "00000000-0000-0000-0000-000000000000"},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}, "default": "\u00ff\u0001"},
        {"name": "blob", "type": "bytes", "default": ""},
        {"name": "next", "type": ["null", "Order"], "default": null},
        {"name": "amount", "type": ["null", "long", "double"], "default": null}
    ]}"#;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    fn encode(schema: &str, body: &str) -> Result<Vec<u8>, Failure> {
        Avro::compile("t", schema, &[]).unwrap().encode(&raw(body), "body")
    }

    fn decode(schema: &str, datum: &[u8]) -> V {
        let schema = Schema::parse_str(schema).unwrap();
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema).build().unwrap();
        reader.read_value(&mut &datum[..]).unwrap()
    }

    fn refusal(schema: &str, body: &str) -> String {
        let f = encode(schema, body).unwrap_err();
        assert_eq!(f.status, 400, "{}", f.message);
        f.message
    }

    #[test]
    fn a_record_is_written_as_avros_binary_datum() {
        let schema = r#"{"type": "record", "name": "E", "fields": [{"name": "s", "type": "string"}, {"name": "n", "type": "long"}]}"#;
        // "hi" as length 2 (zigzag 4) and its bytes, then -3 as zigzag 5
        assert_eq!(encode(schema, r#"{"s":"hi","n":-3}"#).unwrap(), [4, b'h', b'i', 5]);
    }

    #[test]
    fn every_type_of_the_mapping_reads_back_as_sent() {
        let body = r#"{"id":"o-1","qty":3,"price":"12.34","kind":"WHOLESALE",
            "lines":[{"sku":"a","tags":{"colour":"red"}},{"sku":"b"}],"note":"ring twice",
            "at":"2026-12-07T10:00:00.5Z","day":"2026-12-07","ref":"6f1c1e3a-2b9d-4f7e-9c55-0d6a4b3e2f10",
            "hash":"/wE=","blob":"AAEC","next":{"shop.v1.Order":{"id":"o-2","price":"0.5"}},"amount":{"double":2}}"#;
        let datum = encode(ORDER, body).unwrap();
        let V::Record(fields) = decode(ORDER, &datum) else { panic!() };
        let get = |name: &str| fields.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert_eq!(get("id"), V::String("o-1".into()));
        assert_eq!(get("qty"), V::Int(3));
        assert_eq!(get("price"), V::Decimal(apache_avro::Decimal::from(1234_i32.to_be_bytes()[2..].to_vec())));
        assert_eq!(get("kind"), V::Enum(1, "WHOLESALE".into()));
        assert_eq!(get("note"), V::Union(1, Box::new(V::String("ring twice".into()))));
        assert_eq!(get("at"), V::TimestampMillis(1_796_637_600_500));
        assert_eq!(get("day"), V::Date(20_794));
        assert_eq!(get("ref"), V::Uuid(apache_avro::Uuid::parse_str("6f1c1e3a-2b9d-4f7e-9c55-0d6a4b3e2f10").unwrap()));
        assert_eq!(get("hash"), V::Fixed(2, vec![0xff, 1]));
        assert_eq!(get("blob"), V::Bytes(vec![0, 1, 2]));
        assert_eq!(get("amount"), V::Union(2, Box::new(V::Double(2.0))));
        let V::Array(lines) = get("lines") else { panic!() };
        assert_eq!(
            lines[1],
            V::Record(vec![("sku".into(), V::String("b".into())), ("tags".into(), V::Map(Default::default()))])
        );
        let V::Union(1, next) = get("next") else { panic!() };
        let V::Record(next) = *next else { panic!() };
        assert_eq!(next[1], ("qty".into(), V::Int(1)), "the default");
        assert_eq!(next[8], ("ref".into(), V::Uuid(apache_avro::Uuid::nil())));
        assert_eq!(next[9], ("hash".into(), V::Fixed(2, vec![0xff, 1])), "a fixed default is code points");
    }

    #[test]
    fn a_union_takes_the_one_branch_a_value_fits_plainly_or_by_name() {
        let minimal = r#"{"id":"o","price":"1"}"#;
        let with = |field: &str| format!(r#"{{"id":"o","price":"1",{field}}}"#);
        assert!(encode(ORDER, minimal).is_ok());
        assert!(encode(ORDER, &with(r#""note":null"#)).is_ok());
        assert!(encode(ORDER, &with(r#""note":{"string":"x"}"#)).is_ok());
        assert!(encode(ORDER, &with(r#""amount":2.5"#)).is_ok(), "a fraction fits only double");
        assert!(encode(ORDER, &with(r#""amount":{"long":2}"#)).is_ok());
        assert!(encode(ORDER, &with(r#""next":{"id":"p","price":"2"}"#)).is_ok(), "a record by its keys");
        for (field, expected) in [
            (
                r#""amount":2"#,
                r#"body.amount: fits more than one branch of the union ["null", "long", "double"]: name the branch"#,
            ),
            (r#""note":7"#, r#"body.note: fits no branch of the union ["null", "string"]"#),
            (r#""note":{"string":7}"#, r#"body.note: fits no branch"#),
            (r#""next":{"id":"p"}"#, r#"body.next: fits no branch of the union ["null", "shop.v1.Order"]"#),
            (
                r#""next":{"shop.v1.Order":{"id":"p","price":"x"}}"#,
                r#"body.next["shop.v1.Order"].price: "x" is not a decimal"#,
            ),
        ] {
            let message = refusal(ORDER, &with(field));
            assert!(message.starts_with(expected), "{field}: {message}");
        }
    }

    #[test]
    fn what_the_schema_does_not_describe_is_400_with_the_field_path() {
        let with = |field: &str| format!(r#"{{"id":"o","price":"1",{field}}}"#);
        for (body, expected) in [
            (with(r#""colour":"red""#), "body.colour: record shop.v1.Order has no such field"),
            (r#"{"price":"1"}"#.into(), "body.id: missing, and record shop.v1.Order gives it no default"),
            (with(r#""qty":"3""#), "body.qty: expected an integer (int), got a string"),
            (with(r#""qty":2147483648"#), "body.qty: 2147483648 is out of the range of int (32 bits)"),
            (with(r#""qty":1.5"#), "body.qty: 1.5 is not an integer"),
            (with(r#""kind":"HUGE""#), r#"body.kind: "HUGE" is not a symbol of enum shop.v1.Kind"#),
            (with(r#""lines":[{"sku":"a"},{"sku":1}]"#), "body.lines[1].sku: expected a string, got a number"),
            (with(r#""lines":[{"sku":"a","tags":{"k":null}}]"#), "body.lines[0].tags.k: expected a string, got null"),
            (with(r#""hash":"AAAA""#), "body.hash: is 3 bytes, and fixed shop.v1.Hash holds 2"),
            (with(r#""blob":"not base64!""#), r#"body.blob: "not base64!" is not base64"#),
            (r#"{"id":"o","price":12.5}"#.into(), "body.price: 12.5: write a decimal with a fraction as a string (\"12.34\"): a JSON number is read as a double, which is not exact"),
            (r#"{"id":"o","price":"1.234"}"#.into(), r#"body.price: "1.234" has more than 2 digits after the point"#),
            (with(r#""at":"yesterday""#), r#"body.at: "yesterday" is not an RFC 3339 timestamp"#),
            (with(r#""ref":"6f1c1e3a2b9d4f7e9c550d6a4b3e2f10""#), "body.ref: \"6f1c1e3a2b9d4f7e9c550d6a4b3e2f10\" is not a UUID (8-4-4-4-12 hexadecimal digits)"),
            (r#"{"id":"o","id":"p","price":"1"}"#.into(), "body: id is given twice"),
            ("[]".into(), "body: expected an object, got an array"),
        ] {
            assert_eq!(refusal(ORDER, &body), expected, "{body}");
        }
    }

    #[test]
    fn floats_take_numbers_in_range_and_the_spelled_specials() {
        let schema = r#"{"type": "record", "name": "F", "fields": [{"name": "f", "type": "float"}, {"name": "d", "type": "double"}]}"#;
        let datum = encode(schema, r#"{"f":"-Infinity","d":"NaN"}"#).unwrap();
        assert_eq!(datum[..4], f32::NEG_INFINITY.to_le_bytes());
        assert!(f64::from_le_bytes(datum[4..].try_into().unwrap()).is_nan());
        assert_eq!(refusal(schema, r#"{"f":1e39,"d":1}"#), "body.f: 1e+39 is out of the range of a float");
        assert!(refusal(schema, r#"{"f":"inf","d":1}"#).starts_with(r#"body.f: "inf" is not a number"#));
    }

    #[test]
    fn named_types_come_from_the_registrys_references() {
        let meta = r#"{"type": "record", "name": "Meta", "namespace": "common", "fields": [{"name": "source", "type": "string"}]}"#;
        let order = r#"{"type": "record", "name": "Order", "fields": [{"name": "meta", "type": "common.Meta"}]}"#;
        let avro = Avro::compile("o", order, &[("common.Meta".into(), meta.into())]).unwrap();
        assert_eq!(avro.encode(&raw(r#"{"meta":{"source":"k"}}"#), "body").unwrap(), [2, b'k']);
        let f = Avro::compile("o", order, &[]).unwrap_err();
        assert_eq!(f.status, 500);
        assert!(f.message.starts_with("schema o: is not an Avro schema the gateway can write"), "{}", f.message);
    }

    #[test]
    fn a_record_that_contains_itself_is_read_at_every_level() {
        let node = r#"{"type": "record", "name": "Node", "fields": [{"name": "v", "type": "int"},
            {"name": "next", "type": ["null", "Node"], "default": null}]}"#;
        let deep = format!("{}{{\"v\":0}}{}", r#"{"v":1,"next":"#.repeat(60), "}".repeat(60));
        assert!(encode(node, &deep).is_ok());
        let bad = format!("{}{{\"v\":\"x\"}}{}", r#"{"v":1,"next":"#.repeat(3), "}".repeat(3));
        assert_eq!(refusal(node, &bad), "body.next.next.next.v: expected an integer (int), got a string");
    }
}
