//! What the proto3 JSON mapping refuses and a lenient parser lets through, checked before the body is
//! converted: a key given twice (also a field's name together with its JSON name), two members of one
//! oneof, `null` in a list or a map, float strings other than "NaN", "Infinity" and "-Infinity", a number
//! out of a float's range, an integer that is not integral or out of its type's range, a number a closed
//! (proto2) enum does not list, a proto2 required field absent or null. protobuf-java's JsonFormat, which
//! the seed used, refuses each of them (the last when the message is built); prost-reflect alone takes the
//! last duplicate, parses "inf", saturates 1e20 into an int64 and leaves a required field out.
//!
//! One pass over the body as serde_json reads it, duplicates and all, alongside a plan of the schema's
//! messages; serde_json's recursion limit bounds the nesting.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use prost_reflect::{Cardinality, Kind, MessageDescriptor, Syntax};
use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// The check's view of a schema's messages, made once when the schema is compiled: reading a body then
/// asks no descriptor anything. Each descriptor answer clones a reference count that every request shares,
/// which two cores checking bodies at once pass back and forth (on the bench's 4 KB order, most of the
/// check's time).
#[derive(Debug)]
pub struct Plan {
    /// The message a body is, first, then every message below it.
    messages: Vec<MessagePlan>,
    closed_enums: Vec<ClosedEnum>,
}

#[derive(Debug, Default)]
struct MessagePlan {
    fields: Vec<FieldPlan>,
    /// Each field's JSON name and its name, sorted, with the field's place in `fields`.
    keys: Vec<(Box<str>, usize)>,
    oneofs: Vec<Box<str>>,
    /// The number and name of each field proto2 requires.
    required: Vec<(u32, Box<str>)>,
}

#[derive(Debug)]
struct FieldPlan {
    number: u32,
    what: What,
    /// Its oneof's place in `oneofs`.
    oneof: Option<usize>,
}

/// A proto2 enum is closed: protobuf-java refuses a number it does not list, where a proto3 (open) enum
/// keeps it.
#[derive(Debug)]
struct ClosedEnum {
    name: Box<str>,
    /// Sorted.
    numbers: Vec<i32>,
}

/// What a value must be.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Float,
    Double,
    /// An integer type, with the values it holds.
    Integer(i128, i128),
    /// A closed enum, by its place in `closed_enums`.
    ClosedEnum(usize),
    /// A message, by its place in `messages`.
    Message(usize),
    /// A well-known type: its JSON form is not an object of fields (Timestamp, Struct, wrappers...). Only
    /// `google.protobuf.Value` may be null in a list or a map.
    WellKnown {
        nullable: bool,
    },
    /// Anything else this check has no rule for (strings, bytes, bools, open enums).
    Other,
}

impl Plan {
    /// The plan of `message` and of every message below it.
    pub fn of(message: &MessageDescriptor) -> Plan {
        let mut plan = Plan { messages: Vec::new(), closed_enums: Vec::new() };
        plan.message(message, &mut HashMap::new());
        plan
    }

    /// `message`'s place, planned with every message below it on first sight; `placed` holds the places of
    /// the messages and closed enums planned, by full name (a message may contain itself).
    fn message(&mut self, message: &MessageDescriptor, placed: &mut HashMap<String, usize>) -> usize {
        if let Some(at) = placed.get(message.full_name()) {
            return *at;
        }
        let at = self.messages.len();
        placed.insert(message.full_name().to_owned(), at);
        self.messages.push(MessagePlan::default()); // filled in below, once the messages below it have places
        let oneofs: Vec<_> = message.oneofs().collect();
        let (mut fields, mut keys, mut required) = (Vec::new(), Vec::new(), Vec::new());
        for field in message.fields() {
            if field.cardinality() == Cardinality::Required {
                required.push((field.number(), field.name().into()));
            }
            let what = match field.kind() {
                kind if field.cardinality() != Cardinality::Repeated => What::Value(self.ty(&kind, placed)),
                Kind::Message(entry) if entry.is_map_entry() => {
                    What::Map(self.ty(&entry.map_entry_value_field().kind(), placed))
                }
                kind => What::List(self.ty(&kind, placed)),
            };
            let oneof = field.containing_oneof().and_then(|o| oneofs.iter().position(|known| *known == o));
            keys.push((field.json_name().into(), fields.len()));
            if field.name() != field.json_name() {
                keys.push((field.name().into(), fields.len()));
            }
            fields.push(FieldPlan { number: field.number(), what, oneof });
        }
        keys.sort();
        let oneofs = oneofs.iter().map(|o| o.name().into()).collect();
        self.messages[at] = MessagePlan { fields, keys, oneofs, required };
        at
    }

    fn ty(&mut self, kind: &Kind, placed: &mut HashMap<String, usize>) -> Ty {
        match kind {
            Kind::Float => Ty::Float,
            Kind::Double => Ty::Double,
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Ty::Integer(i32::MIN.into(), i32::MAX.into()),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Ty::Integer(i64::MIN.into(), i64::MAX.into()),
            Kind::Uint32 | Kind::Fixed32 => Ty::Integer(0, u32::MAX.into()),
            Kind::Uint64 | Kind::Fixed64 => Ty::Integer(0, u64::MAX.into()),
            Kind::Enum(e) if e.parent_file().syntax() == Syntax::Proto2 => {
                let next = self.closed_enums.len();
                let at = *placed.entry(e.full_name().to_owned()).or_insert(next);
                if at == next {
                    let mut numbers: Vec<i32> = e.values().map(|v| v.number()).collect();
                    numbers.sort_unstable();
                    self.closed_enums.push(ClosedEnum { name: e.full_name().into(), numbers });
                }
                Ty::ClosedEnum(at)
            }
            Kind::Message(m) if m.full_name().starts_with("google.protobuf.") => {
                Ty::WellKnown { nullable: m.full_name() == "google.protobuf.Value" }
            }
            Kind::Message(m) => Ty::Message(self.message(m, placed)),
            _ => Ty::Other,
        }
    }

    /// Checks `body` (valid JSON): `Err` names the path of the first violation from `at`, as
    /// `body.items[1].price: ...`. What it does not know (a field the message lacks, a wrong type) it
    /// leaves to the conversion, which names it too.
    ///
    /// The body is read once, as it streams past: nothing of it is kept but the keys of the object being
    /// read (borrowed from the body unless escaped), so a valid body costs no allocation per value.
    pub fn check(&self, body: &str, at: &str) -> Result<(), String> {
        let mut walk = Walk { plan: self, violation: None, steps: Vec::new() };
        let mut de = serde_json::Deserializer::from_str(body);
        let read = Expect { what: What::Value(Ty::Message(0)), walk: &mut walk }.deserialize(&mut de);
        match (read.and_then(|_| de.end()), walk.violation) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(violation)) => {
                let path: String = walk.steps.iter().rev().map(String::as_str).collect();
                Err(format!("{at}{path}: {violation}"))
            }
            (Err(e), None) => Err(format!("{at}: not valid JSON: {e}")),
        }
    }
}

impl MessagePlan {
    fn field(&self, key: &str) -> Option<&FieldPlan> {
        let at = self.keys.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.fields[self.keys[at].1])
    }
}

/// The first violation found, and its path, gathered as the read unwinds from it (formatting the path
/// of every value read would cost more than the check).
struct Walk<'p> {
    plan: &'p Plan,
    violation: Option<String>,
    /// From the violation up: `[2]`, `.items`, ...
    steps: Vec<String>,
}

impl Walk<'_> {
    /// Stops the read at a violation: the error only unwinds serde, the text is kept here.
    fn refuse<E: Error>(&mut self, violation: String) -> E {
        self.violation = Some(violation);
        E::custom("refused")
    }

    /// Reads a value at `step` below the current one: an error found below it is named with `step`.
    fn below<T, E>(
        &mut self,
        step: impl FnOnce() -> String,
        read: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        let read = read(self);
        if read.is_err() && self.violation.is_some() {
            self.steps.push(step());
        }
        read
    }
}

/// What the value being read must be.
#[derive(Debug, Clone, Copy)]
enum What {
    /// A singular field's value, or the whole body (a message).
    Value(Ty),
    /// An element of a list or a value of a map: never null.
    Element(Ty),
    List(Ty),
    /// A map field, with the kind of its values.
    Map(Ty),
    /// Anything (a field the message lacks, a well-known type's value): read only to reach what follows,
    /// through serde_json's recursion limit like the rest.
    Skip,
}

impl What {
    fn ty(self) -> Option<Ty> {
        match self {
            What::Value(ty) | What::Element(ty) => Some(ty),
            _ => None,
        }
    }
}

/// Reads one value; true when it was null.
struct Expect<'w, 'p> {
    what: What,
    walk: &'w mut Walk<'p>,
}

impl<'de> DeserializeSeed<'de> for Expect<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        match self.what {
            What::Value(Ty::WellKnown { nullable }) | What::Element(Ty::WellKnown { nullable }) => {
                let null_refused = matches!(self.what, What::Element(_)) && !nullable;
                let null = Expect { what: What::Skip, walk: &mut *self.walk }.deserialize(deserializer)?;
                if null && null_refused {
                    return Err(self.walk.refuse(NULL_ELEMENT.into()));
                }
                Ok(null)
            }
            _ => deserializer.deserialize_any(self),
        }
    }
}

const NULL_ELEMENT: &str = "null is not a value of a list or a map";

impl<'de> Visitor<'de> for Expect<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_unit<E: Error>(self) -> Result<bool, E> {
        match self.what {
            What::Element(_) => Err(self.walk.refuse(NULL_ELEMENT.into())),
            _ => Ok(true),
        }
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: Error>(self, n: i64) -> Result<bool, E> {
        self.number(n.into(), Some(n.into()))
    }

    fn visit_u64<E: Error>(self, n: u64) -> Result<bool, E> {
        self.number(n.into(), Some(n.into()))
    }

    fn visit_f64<E: Error>(self, n: f64) -> Result<bool, E> {
        // 1e2 is 100 (and 1e20 an integer out of every type's range); 1.5 is not an integer
        let integral = (n.fract() == 0.0 && n.abs() < 1e38).then_some(n as i128);
        match Number::from_f64(n) {
            Some(number) => self.number(number, integral),
            None => Err(E::custom("not a finite number")),
        }
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<bool, E> {
        let checked = match self.what.ty() {
            Some(ty @ (Ty::Float | Ty::Double)) => match s {
                "NaN" | "Infinity" | "-Infinity" => Ok(()),
                _ => match s.parse::<f64>() {
                    // a number in a string, as JSON would write it: the same rules as a number
                    Ok(n) if looks_like_a_number(s) => float(ty, n),
                    _ => Err(format!("{s:?} is not a number (special values: \"NaN\", \"Infinity\", \"-Infinity\")")),
                },
            },
            Some(Ty::Integer(min, max)) => integer(min, max, s.parse::<i128>().ok(), &format_args!("{s:?}")),
            _ => Ok(()),
        };
        checked.map(|()| false).map_err(|e| self.walk.refuse(e))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let What::List(ty) = self.what else {
            while seq.next_element_seed(Expect { what: What::Skip, walk: &mut *self.walk })?.is_some() {}
            return Ok(false);
        };
        for i in 0.. {
            let what = What::Element(ty);
            let read = self.walk.below(|| format!("[{i}]"), |walk| seq.next_element_seed(Expect { what, walk }))?;
            if read.is_none() {
                break;
            }
        }
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        match self.what {
            What::Map(ty) => {
                // a set, not a list: a map may have as many keys as the body has room for
                let mut keys: HashSet<Cow<'de, str>> = HashSet::new();
                while let Some(key) = map.next_key_seed(Key)? {
                    let walk = &mut *self.walk;
                    if !keys.insert(key.clone()) {
                        return Err(walk.refuse(format!("map key {key:?} is given twice")));
                    }
                    let what = What::Element(ty);
                    walk.below(|| format!("[{key:?}]"), |walk| map.next_value_seed(Expect { what, walk }))?;
                }
            }
            What::Value(Ty::Message(message)) | What::Element(Ty::Message(message)) => fields(message, map, self.walk)?,
            _ => {
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value_seed(Expect { what: What::Skip, walk: &mut *self.walk })?;
                }
            }
        }
        Ok(false)
    }
}

impl Expect<'_, '_> {
    /// A number, for a float, an integer or a closed enum's field; `exact` is its value when integral.
    fn number<E: Error>(self, n: Number, exact: Option<i128>) -> Result<bool, E> {
        let checked = match self.what.ty() {
            Some(ty @ (Ty::Float | Ty::Double)) => float(ty, n.as_f64().unwrap_or(f64::INFINITY)),
            Some(Ty::ClosedEnum(e)) => {
                let e = &self.walk.plan.closed_enums[e];
                match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
                    Some(i) if e.numbers.binary_search(&i).is_ok() => Ok(()),
                    _ => Err(format!("{n} is not a value of the closed enum {}", e.name)),
                }
            }
            Some(Ty::Integer(min, max)) => integer(min, max, exact, &n),
            _ => Ok(()),
        };
        checked.map(|()| false).map_err(|e| self.walk.refuse(e))
    }
}

/// The members of an object read as the plan's message `message`: a key given twice (also as a field's
/// name and its JSON name), two members of one oneof and a required field absent or null are refused;
/// each field's value is checked.
fn fields<'de, A: MapAccess<'de>>(message: usize, mut map: A, walk: &mut Walk) -> Result<(), A::Error> {
    let plan = &walk.plan.messages[message];
    // each field given: its number, its key, and whether its value was other than null
    let mut seen: Vec<(u32, Cow<'de, str>, bool)> = Vec::new();
    let mut oneofs: Vec<(usize, Cow<'de, str>)> = Vec::new();
    while let Some(key) = map.next_key_seed(Key)? {
        let Some(field) = plan.field(&key) else {
            map.next_value_seed(Expect { what: What::Skip, walk: &mut *walk })?;
            continue;
        };
        if let Some((_, first, _)) = seen.iter().find(|(seen, _, _)| *seen == field.number) {
            return Err(walk.refuse(if *first == key {
                format!("{key} is given twice")
            } else {
                format!("{key} and {first} are the same field, given twice")
            }));
        }
        let what = field.what;
        let null = walk.below(|| format!(".{key}"), |walk| map.next_value_seed(Expect { what, walk }))?;
        if let Some(oneof) = field.oneof.filter(|_| !null) {
            if let Some((_, other)) = oneofs.iter().find(|(set, _)| *set == oneof) {
                let name = &plan.oneofs[oneof];
                return Err(walk.refuse(format!("{other} and {key} are both set, but only one of oneof {name} may be")));
            }
            oneofs.push((oneof, key.clone()));
        }
        seen.push((field.number, key, !null));
    }
    let given = |number: &u32| seen.iter().any(|(seen, _, value)| seen == number && *value);
    match plan.required.iter().find(|(number, _)| !given(number)) {
        Some((_, name)) => Err(walk.refuse(format!("required field {name} is missing"))),
        None => Ok(()),
    }
}

/// An object's key, borrowed from the body unless it holds an escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: Error>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
}

fn looks_like_a_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

fn float(ty: Ty, n: f64) -> Result<(), String> {
    let (limit, name) = if ty == Ty::Float { (f64::from(f32::MAX), "float") } else { (f64::MAX, "double") };
    if n.is_finite() && n.abs() <= limit {
        Ok(())
    } else {
        Err(format!("{n:e} is out of the range of a {name}"))
    }
}

/// A value for an integer field holding `min..=max`, written as `written`: integral (`exact`) and in range.
fn integer(min: i128, max: i128, exact: Option<i128>, written: &dyn fmt::Display) -> Result<(), String> {
    match exact {
        Some(i) if (min..=max).contains(&i) => Ok(()),
        Some(i) => Err(format!("{i} is out of the range of the field's type ({min} to {max})")),
        None => Err(format!("{written} is not an integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::protobuf::Protobuf;

    const RICH: &str = r#"syntax = "proto3"; package t;
        import "google/protobuf/struct.proto";
        message Item { string sku = 1; double price = 2; }
        message E {
          string some_message = 1; float f = 2; double d = 3; int32 i32 = 4; int64 i64 = 5; uint32 u32 = 6;
          uint64 u64 = 7; repeated string tags = 8; map<string, int32> counts = 9; repeated Item items = 10;
          oneof choice { string a = 11; string b = 12; }
          google.protobuf.Value any = 13; repeated google.protobuf.Value anys = 14;
        }"#;

    fn check_rich(body: &str) -> Result<(), String> {
        Plan::of(Protobuf::compile("t", RICH, &[], Some("t.E")).unwrap().descriptor()).check(body, "body")
    }

    #[test]
    fn what_protobuf_java_accepts_passes() {
        for body in [
            r#"{"some_message":"x","f":1.5,"d":"NaN","i32":-5,"i64":"9223372036854775807","u32":4294967295}"#,
            r#"{"someMessage":"x","f":"Infinity","d":"-Infinity","i64":1e2,"u64":"18446744073709551615"}"#,
            r#"{"f":"1.5","d":"-2e10","tags":["a","b"],"counts":{"a":1,"b":2},"items":[{"sku":"s","price":1}]}"#,
            r#"{"a":"x","b":null,"any":null,"anys":[null,1,"x",{"k":[1]}]}"#,
            r#"{"unknown":1,"i32":true}"#, // left to the conversion, which names them
        ] {
            assert_eq!(check_rich(body), Ok(()), "{body}");
        }
    }

    #[test]
    fn what_protobuf_java_refuses_is_named_with_its_path() {
        let cases = [
            (r#"{"some_message":"a","some_message":"b"}"#, "body: some_message is given twice"),
            (
                r#"{"some_message":"a","someMessage":"b"}"#,
                "body: someMessage and some_message are the same field, given twice",
            ),
            (r#"{"tags":["a"],"tags":["b"]}"#, "body: tags is given twice"),
            (r#"{"a":"x","b":"y"}"#, "body: a and b are both set, but only one of oneof choice may be"),
            (r#"{"counts":{"a":1,"a":2}}"#, "body.counts: map key \"a\" is given twice"),
            (r#"{"tags":["a",null]}"#, "body.tags[1]: null is not a value of a list or a map"),
            (r#"{"counts":{"a":null}}"#, "body.counts[\"a\"]: null is not a value"),
            (r#"{"f":"inf"}"#, "body.f: \"inf\" is not a number"),
            (r#"{"d":"nan"}"#, "body.d: \"nan\" is not a number"),
            (r#"{"d":"infinity"}"#, "body.d: \"infinity\" is not a number"),
            (r#"{"f":1e39}"#, "body.f: 1e39 is out of the range of a float"),
            (r#"{"f":"1e39"}"#, "body.f: 1e39 is out of the range of a float"),
            (r#"{"i64":1e20}"#, "body.i64: 100000000000000000000 is out of the range"),
            (r#"{"i64":1e300}"#, "body.i64: 1e+300 is not an integer"),
            (r#"{"i32":"x"}"#, "body.i32: \"x\" is not an integer"),
            (r#"{"i64":9.3e18}"#, "body.i64: 9300000000000000000 is out of the range"),
            (r#"{"i64":"9223372036854775808"}"#, "body.i64: 9223372036854775808 is out of the range"),
            (r#"{"i32":2147483648}"#, "body.i32: 2147483648 is out of the range"),
            (r#"{"i32":1.5}"#, "body.i32: 1.5 is not an integer"),
            (r#"{"u32":-1}"#, "body.u32: -1 is out of the range"),
            (r#"{"u64":"-1"}"#, "body.u64: -1 is out of the range"),
            (r#"{"items":[{"sku":"a"},{"price":1,"price":2}]}"#, "body.items[1]: price is given twice"),
        ];
        for (body, expected) in cases {
            let err = check_rich(body).unwrap_err();
            assert!(err.starts_with(expected), "{body}: {err:?} should start with {expected:?}");
        }
    }

    #[test]
    fn a_closed_enum_takes_only_its_numbers_and_an_open_one_any() {
        let closed = r#"syntax = "proto2"; package t;
            enum Closed { A = 1; B = 2; }
            message M { optional Closed e = 1; repeated Closed es = 2; map<string, Closed> em = 3; }"#;
        let closed = Protobuf::compile("t", closed, &[], Some("t.M")).unwrap().descriptor().clone();
        assert_eq!(Plan::of(&closed).check(r#"{"e":1,"es":["A",2],"em":{"k":"B"}}"#, "body"), Ok(()));
        for (body, expected) in [
            (r#"{"e":7}"#, "body.e: 7 is not a value of the closed enum t.Closed"),
            (r#"{"es":[1,0]}"#, "body.es[1]: 0 is not a value of the closed enum t.Closed"),
            (r#"{"em":{"k":3}}"#, "body.em[\"k\"]: 3 is not a value of the closed enum t.Closed"),
        ] {
            assert_eq!(Plan::of(&closed).check(body, "body"), Err(expected.to_owned()), "{body}");
        }
        let open = r#"syntax = "proto3"; package t; enum Open { Z = 0; } message M { Open e = 1; }"#;
        let open = Protobuf::compile("t", open, &[], Some("t.M")).unwrap().descriptor().clone();
        assert_eq!(
            Plan::of(&open).check(r#"{"e":7}"#, "body"),
            Ok(()),
            "proto3 keeps unknown numbers, as protobuf-java does"
        );
    }

    #[test]
    fn a_message_that_contains_itself_is_checked_at_every_level() {
        let node = r#"syntax = "proto3"; package t;
            message Node { Node next = 1; int32 v = 2; repeated Node children = 3; map<string, Node> named = 4; }"#;
        let plan = Plan::of(Protobuf::compile("t", node, &[], Some("t.Node")).unwrap().descriptor());
        assert_eq!(plan.messages.len(), 1, "planned once");
        assert_eq!(
            plan.check(r#"{"next":{"next":{"v":1}},"children":[{"v":2}],"named":{"a":{"v":3}}}"#, "body"),
            Ok(())
        );
        for (body, expected) in [
            (r#"{"next":{"next":{"v":2147483648}}}"#, "body.next.next.v: 2147483648 is out of the range"),
            (r#"{"children":[{"v":1},{"next":{"v":1.5}}]}"#, "body.children[1].next.v: 1.5 is not an integer"),
            (r#"{"named":{"a":{"v":1,"v":2}}}"#, "body.named[\"a\"]: v is given twice"),
        ] {
            let err = plan.check(body, "body").unwrap_err();
            assert!(err.starts_with(expected), "{body}: {err:?} should start with {expected:?}");
        }
    }

    #[test]
    fn a_map_key_given_twice_is_found_among_many() {
        let mut counts: String = (0..100_000).map(|i| format!("\"k{i}\":1,")).collect();
        counts.push_str("\"k99999\":2");
        let err = check_rich(&format!(r#"{{"counts":{{{counts}}}}}"#)).unwrap_err();
        assert_eq!(err, "body.counts: map key \"k99999\" is given twice");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = check_rich(&format!(r#"{{"any":{deep}}}"#)).unwrap_err();
        assert!(err.contains("recursion limit"), "{err}");
    }
}
