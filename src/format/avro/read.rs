//! A body's JSON as the Avro value of a schema: the JSON mapping docs/schemas.md documents, strict as the
//! protobuf path is. A union takes a value that fits exactly one of its branches, plainly or wrapped as
//! Avro's JSON encoding writes it (`{"long": 5}`); which branch a value fits is decided from the value's
//! own level only (its JSON type, its string's syntax, an object's keys), so that converting a body costs
//! the same whatever the unions above it. The schema's defaults are read here too, once, as the
//! specification writes them.

use std::collections::HashMap;
use std::str::FromStr;

use apache_avro::types::Value as Avro;
use apache_avro::{Decimal, Uuid};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, Engine};
use num_bigint::BigInt;
use serde_json::Value as Json;

use super::plan::{Node, Plan, Record, Unit};
use crate::format::json::{self, Path};

/// Bytes and fixed: base64, in either alphabet, padded or not, as the protobuf path reads bytes.
const PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING);

pub struct Reader<'p> {
    plan: &'p Plan,
    path: Path,
}

impl<'p> Reader<'p> {
    pub fn new(plan: &'p Plan) -> Reader<'p> {
        Reader { plan, path: Path::new() }
    }

    /// `json` as the value of `node`, or the path below the body and what is wrong there.
    pub fn value(&mut self, node: usize, json: &Json) -> Result<Avro, String> {
        let plan = self.plan;
        match (&plan.nodes[node], json) {
            (Node::Union(branches), json) => self.union(branches, json),
            (Node::Record(r), Json::Object(given)) => self.record(r, given),
            (Node::Array(items), Json::Array(values)) => {
                let mut out = Vec::with_capacity(values.len());
                for (i, v) in values.iter().enumerate() {
                    self.path.index(i);
                    out.push(self.value(*items, v)?);
                    self.path.pop();
                }
                Ok(Avro::Array(out))
            }
            (Node::Map(values), Json::Object(entries)) => {
                let mut out = HashMap::with_capacity(entries.len());
                for (k, v) in entries {
                    self.path.key(k);
                    out.insert(k.clone(), self.value(*values, v)?);
                    self.path.pop();
                }
                Ok(Avro::Map(out))
            }
            (leaf, json) => scalar(leaf, json).map_err(|why| self.refuse(&why)),
        }
    }

    fn refuse(&self, why: &str) -> String {
        format!("{}: {why}", self.path)
    }

    fn record(&mut self, r: &Record, given: &serde_json::Map<String, Json>) -> Result<Avro, String> {
        for key in given.keys() {
            if r.field(key).is_none() {
                self.path.key(key);
                return Err(self.refuse(&format!("record {} has no such field", r.name)));
            }
        }
        let mut fields = Vec::with_capacity(r.fields.len());
        for f in &r.fields {
            self.path.key(&f.name);
            let value = match (given.get(&f.name), &f.default) {
                (Some(v), _) => self.value(f.node, v)?,
                (None, Some(default)) => default.clone(),
                (None, None) => return Err(self.refuse(&format!("missing, and record {} gives it no default", r.name))),
            };
            self.path.pop();
            fields.push((f.name.clone(), value));
        }
        Ok(Avro::Record(fields))
    }

    fn union(&mut self, branches: &[usize], json: &Json) -> Result<Avro, String> {
        let plan = self.plan;
        let mut fitting = branches.iter().enumerate().filter(|(_, &b)| fits(plan, b, json)).map(|(i, _)| (i, None));
        let mut choice = fitting.next();
        let mut more = fitting.next().is_some();
        if let Json::Object(wrapper) = json {
            let wrapped = wrapper.iter().next().filter(|_| wrapper.len() == 1).and_then(|(name, inner)| {
                let i = branches.iter().position(|&b| *plan.branch_names[b] == **name)?;
                fits(plan, branches[i], inner).then_some((i, Some((name, inner))))
            });
            if let Some(wrapped) = wrapped {
                more |= choice.is_some();
                choice = Some(wrapped);
            }
        }
        let names = || branches.iter().map(|&b| format!("{:?}", &*plan.branch_names[b])).collect::<Vec<_>>().join(", ");
        match (choice, more) {
            (None, _) => Err(self.refuse(&format!("fits no branch of the union [{}]", names()))),
            (Some(_), true) => Err(self.refuse(&format!(
                "fits more than one branch of the union [{}]: name the branch, as in {{\"{}\": ...}}",
                names(),
                plan.branch_names[branches[0]]
            ))),
            (Some((i, None)), false) => Ok(Avro::Union(i as u32, Box::new(self.value(branches[i], json)?))),
            (Some((i, Some((name, inner)))), false) => {
                self.path.key(name);
                let value = self.value(branches[i], inner)?;
                self.path.pop();
                Ok(Avro::Union(i as u32, Box::new(value)))
            }
        }
    }
}

/// `plan` with its fields' defaults read, each once: an error names a default not of its field's type.
pub fn with_defaults(mut plan: Plan) -> Result<Plan, String> {
    for (record, field, json) in std::mem::take(&mut plan.unread_defaults) {
        let Node::Record(r) = &plan.nodes[record] else { unreachable!("defaults are noted for records") };
        let (name, node) = (r.fields[field].name.clone(), r.fields[field].node);
        let value = default(&plan, node, &json).map_err(|why| format!("the default of field {name}: {why}"))?;
        let Node::Record(r) = &mut plan.nodes[record] else { unreachable!("defaults are noted for records") };
        r.fields[field].default = Some(value);
    }
    Ok(plan)
}

/// A field's default, written in the schema as Avro's specification says: bytes and fixed as a string of
/// code points 0-255, a union's as a value of its first branch.
fn default(plan: &Plan, node: usize, json: &Json) -> Result<Avro, String> {
    let wrong = || format!("{json} is not a {}", plan.branch_names[node]);
    let code_points = |s: &str| s.chars().map(|c| u8::try_from(c).map_err(|_| wrong())).collect::<Result<Vec<u8>, _>>();
    Ok(match (&plan.nodes[node], json) {
        (Node::Union(branches), json) => {
            let first = default(plan, branches[0], json);
            let value = first.or_else(|e| {
                branches[1..]
                    .iter()
                    .enumerate()
                    .find_map(|(i, &b)| default(plan, b, json).ok().map(|v| (i + 1, v)))
                    .map(|(i, v)| Avro::Union(i as u32, Box::new(v)))
                    .ok_or(e)
            })?;
            return Ok(match value {
                Avro::Union(..) => value,
                first => Avro::Union(0, Box::new(first)),
            });
        }
        (Node::Bytes, Json::String(s)) => Avro::Bytes(code_points(s)?),
        (Node::Fixed { size, .. }, Json::String(s)) => {
            let bytes = code_points(s)?;
            if bytes.len() != *size {
                return Err(wrong());
            }
            Avro::Fixed(*size, bytes)
        }
        (Node::Decimal { size, .. }, Json::String(s)) => {
            let bytes = code_points(s)?;
            if size.is_some_and(|n| n != bytes.len()) {
                return Err(wrong());
            }
            Avro::Decimal(Decimal::from(bytes))
        }
        (Node::Uuid, Json::String(s)) => Avro::Uuid(Uuid::parse_str(s).map_err(|_| wrong())?),
        (Node::Array(items), Json::Array(values)) => {
            Avro::Array(values.iter().map(|v| default(plan, *items, v)).collect::<Result<_, _>>()?)
        }
        (Node::Map(values), Json::Object(entries)) => Avro::Map(
            entries.iter().map(|(k, v)| Ok((k.clone(), default(plan, *values, v)?))).collect::<Result<_, String>>()?,
        ),
        (Node::Record(r), Json::Object(given)) => {
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let value = match (given.get(&f.name), &f.default) {
                    (Some(v), _) => default(plan, f.node, v)?,
                    (None, Some(d)) => d.clone(),
                    (None, None) => return Err(format!("{json} gives no {} of record {}", f.name, r.name)),
                };
                fields.push((f.name.clone(), value));
            }
            Avro::Record(fields)
        }
        // Every other type's default is the value a body would give it.
        (_, json) => Reader::new(plan).value(node, json).map_err(|_| wrong())?,
    })
}

/// Whether `json` is of `node`'s type, judged from its own level: a record's object by its keys alone.
fn fits(plan: &Plan, node: usize, json: &Json) -> bool {
    match (&plan.nodes[node], json) {
        (Node::Union(_), _) => false,
        (Node::Record(r), Json::Object(given)) => {
            let known = given.keys().filter(|k| r.field(k).is_some()).count() == given.len();
            let required = r.fields.iter().filter(|f| f.default.is_none() && given.contains_key(&f.name)).count();
            known && required == r.required
        }
        (Node::Array(_), Json::Array(_)) | (Node::Map(_), Json::Object(_)) => true,
        (Node::Record(_) | Node::Array(_) | Node::Map(_), _) => false,
        (leaf, json) => scalar(leaf, json).is_ok(),
    }
}

/// A value of a type that holds no other: what it is, or why `json` is not one.
fn scalar(node: &Node, json: &Json) -> Result<Avro, String> {
    let got = || match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    };
    let expected = |what: &str| format!("expected {what}, got {}", got());
    match (node, json) {
        (Node::Null, Json::Null) => Ok(Avro::Null),
        (Node::Null, _) => Err(expected("null")),
        (Node::Boolean, Json::Bool(b)) => Ok(Avro::Boolean(*b)),
        (Node::Boolean, _) => Err(expected("a boolean")),
        (Node::Int, Json::Number(_)) => Ok(Avro::Int(int(json, "int")?)),
        (Node::Int, _) => Err(expected("an integer (int)")),
        (Node::Long, Json::Number(_)) => Ok(Avro::Long(long(json, "long")?)),
        (Node::Long, _) => Err(expected("an integer (long)")),
        (Node::Float | Node::Double, Json::String(s)) => {
            let x = match s.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                _ => return Err(format!("{s:?} is not a number: only \"NaN\", \"Infinity\" and \"-Infinity\" are written as strings")),
            };
            Ok(if matches!(node, Node::Float) { Avro::Float(x as f32) } else { Avro::Double(x) })
        }
        (Node::Float, Json::Number(n)) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x.abs() > f64::from(f32::MAX) {
                return Err(format!("{n} is out of the range of a float"));
            }
            Ok(Avro::Float(x as f32))
        }
        (Node::Double, Json::Number(n)) => Ok(Avro::Double(n.as_f64().unwrap_or(f64::NAN))),
        (Node::Float, _) => Err(expected("a number (float)")),
        (Node::Double, _) => Err(expected("a number (double)")),
        (Node::String, Json::String(s)) => Ok(Avro::String(s.clone())),
        (Node::String, _) => Err(expected("a string")),
        (Node::Bytes, Json::String(s)) => Ok(Avro::Bytes(base64(s)?)),
        (Node::Bytes, _) => Err(expected("a base64 string (bytes)")),
        (Node::Fixed { name, size }, Json::String(s)) => {
            let bytes = base64(s)?;
            if bytes.len() != *size {
                return Err(format!("is {} bytes, and fixed {name} holds {size}", bytes.len()));
            }
            Ok(Avro::Fixed(*size, bytes))
        }
        (Node::Fixed { name, size }, _) => Err(expected(&format!("a base64 string of {size} bytes (fixed {name})"))),
        (Node::Enum { name, symbols, sorted }, Json::String(s)) => {
            match sorted.binary_search_by(|(k, _)| (**k).cmp(s.as_str())) {
                Ok(at) => Ok(Avro::Enum(sorted[at].1, symbols[sorted[at].1 as usize].clone())),
                Err(_) => Err(format!("{} is not a symbol of enum {name}", quoted(s))),
            }
        }
        (Node::Enum { name, .. }, _) => Err(expected(&format!("a symbol of enum {name}"))),
        (Node::Uuid, Json::String(s)) if s.len() == 36 => {
            Uuid::parse_str(s).map(Avro::Uuid).map_err(|_| format!("{} is not a UUID", quoted(s)))
        }
        (Node::Uuid, Json::String(s)) => Err(format!("{} is not a UUID (8-4-4-4-12 hexadecimal digits)", quoted(s))),
        (Node::Uuid, _) => Err(expected("a UUID string")),
        (Node::Decimal { precision, scale, size }, Json::String(s)) => decimal(s, *precision, *scale, *size),
        (Node::Decimal { precision, scale, size }, Json::Number(n)) if n.is_i64() || n.is_u64() => {
            decimal(&n.to_string(), *precision, *scale, *size)
        }
        (Node::Decimal { .. }, Json::Number(n)) => Err(format!(
            "{n}: write a decimal with a fraction as a string (\"12.34\"): a JSON number is read as a double, which is not exact"
        )),
        (Node::Decimal { .. }, _) => Err(expected("a decimal string")),
        (Node::Date, Json::Number(_)) => Ok(Avro::Date(int(json, "date")?)),
        (Node::Date, Json::String(s)) => date(s).map(Avro::Date),
        (Node::Date, _) => Err(expected("a date (\"2026-12-07\" or days since 1970-01-01)")),
        (Node::TimeMillis, Json::Number(_)) => Ok(Avro::TimeMillis(int(json, "time-millis")?)),
        (Node::TimeMillis, Json::String(s)) => time(s, Unit::Millis).map(|t| Avro::TimeMillis(t as i32)),
        (Node::TimeMicros, Json::Number(_)) => Ok(Avro::TimeMicros(long(json, "time-micros")?)),
        (Node::TimeMicros, Json::String(s)) => time(s, Unit::Micros).map(Avro::TimeMicros),
        (Node::TimeMillis | Node::TimeMicros, _) => Err(expected("a time of day (\"10:15:30.123\" or a count since midnight)")),
        (Node::Timestamp(unit) | Node::LocalTimestamp(unit), Json::Number(_)) => Ok(timestamp(node, *unit, long(json, "timestamp")?)),
        (Node::Timestamp(unit), Json::String(s)) => instant(s, *unit).map(|t| timestamp(node, *unit, t)),
        (Node::LocalTimestamp(unit), Json::String(s)) if !s.ends_with(['Z', 'z']) && !has_offset(s) => {
            instant(&format!("{s}Z"), *unit).map(|t| timestamp(node, *unit, t))
        }
        (Node::LocalTimestamp(_), Json::String(s)) => Err(format!("{} names a time zone, which a local timestamp has not", quoted(s))),
        (Node::Timestamp(_) | Node::LocalTimestamp(_), _) => Err(expected("a timestamp (RFC 3339 or a count since 1970)")),
        (Node::Union(_) | Node::Record(_) | Node::Array(_) | Node::Map(_), _) => {
            Err(expected(match node {
                Node::Record(_) => "an object",
                Node::Array(_) => "an array",
                _ => "an object (map)",
            }))
        }
    }
}

/// A string of the caller's in an answer: the first 40 characters.
fn quoted(s: &str) -> String {
    match json::cut(s, 40) {
        Some(start) => format!("{start:?}..."),
        None => format!("{s:?}"),
    }
}

/// An integral JSON number (1, -3, 2.0, 1e3) of `bits` bits, exactly as written. serde_json reads an
/// integer of 64 bits exactly and any other number as the nearest double, which from 2^53 on may not be
/// the number written (-9223372036854775809 becomes -2^63): such a double is out of range past 2^63, and
/// is refused below it, being no exact integer.
fn integral(json: &Json, ty: &str, bits: u32) -> Result<i128, String> {
    let Json::Number(n) = json else { return Err(format!("{json} is not an integer")) };
    let out_of_range = || format!("{json} is out of the range of {ty} ({bits} bits)");
    let exact = match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i128::from(i),
        (_, Some(u), _) => i128::from(u),
        (_, _, Some(x)) if x.fract() != 0.0 || !x.is_finite() => return Err(format!("{json} is not an integer")),
        (_, _, Some(x)) if x.abs() >= 2f64.powi(63) => return Err(out_of_range()),
        (_, _, Some(x)) if x.abs() >= 2f64.powi(53) => {
            return Err(format!("{json} is not exact as written: write an integer this large in digits"))
        }
        (_, _, Some(x)) => x as i128,
        (None, None, None) => return Err(format!("{json} is not an integer")),
    };
    let limit = 1i128 << (bits - 1);
    match -limit <= exact && exact < limit {
        true => Ok(exact),
        false => Err(out_of_range()),
    }
}

fn int(json: &Json, ty: &str) -> Result<i32, String> {
    integral(json, ty, 32).map(|n| n as i32)
}

fn long(json: &Json, ty: &str) -> Result<i64, String> {
    integral(json, ty, 64).map(|n| n as i64)
}

fn base64(s: &str) -> Result<Vec<u8>, String> {
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).map_err(|_| format!("{} is not base64", quoted(s)))
}

/// "-12.340" for a decimal of scale 3 or more: its unscaled value, exact; a fraction longer than the
/// scale, or more digits than the precision, is refused rather than rounded.
fn decimal(s: &str, precision: usize, scale: usize, size: Option<usize>) -> Result<Avro, String> {
    let bad = || format!("{} is not a decimal number (\"-12.34\")", quoted(s));
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || (digits.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    if fraction.len() > scale {
        return Err(format!("{} has more than {scale} digits after the point", quoted(s)));
    }
    let unscaled = format!("{whole}{fraction}{}", "0".repeat(scale - fraction.len()));
    let significant = unscaled.trim_start_matches('0');
    if significant.len() > precision {
        return Err(format!("{} has more than {precision} digits", quoted(s)));
    }
    let mut n = BigInt::from_str(if significant.is_empty() { "0" } else { significant }).map_err(|_| bad())?;
    if negative {
        n = -n;
    }
    let bytes = n.to_signed_bytes_be();
    if size.is_some_and(|size| bytes.len() > size) {
        return Err(format!("{} does not fit in {} bytes", quoted(s), size.unwrap_or(0)));
    }
    Ok(Avro::Decimal(Decimal::from(bytes)))
}

/// "2026-12-07": days since 1970-01-01.
fn date(s: &str) -> Result<i32, String> {
    let bad = || format!("{} is not a date (\"2026-12-07\")", quoted(s));
    let parts: Vec<&str> = s.splitn(3, '-').collect();
    let [y, m, d] = parts[..] else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    let at = prost_types::Timestamp::date(y, m, d).map_err(|_| bad())?;
    Ok(at.seconds.div_euclid(86_400) as i32)
}

/// "10:15:30", "10:15:30.123456": the time of day in `unit`s since midnight, exactly.
fn time(s: &str, unit: Unit) -> Result<i64, String> {
    let bad = || format!("{} is not a time of day (\"10:15:30.123\")", quoted(s));
    let (hms, fraction) = s.split_once('.').unwrap_or((s, ""));
    let parts: Vec<&str> = hms.split(':').collect();
    let [h, m, sec] = parts[..] else { return Err(bad()) };
    let field = |t: &str, max: i64| -> Result<i64, String> {
        match t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()) {
            true => t.parse::<i64>().ok().filter(|v| *v < max).ok_or_else(bad),
            false => Err(bad()),
        }
    };
    let seconds = field(h, 24)? * 3600 + field(m, 60)? * 60 + field(sec, 60)?;
    let per_second = match unit {
        Unit::Millis => 1_000,
        Unit::Micros => 1_000_000,
        Unit::Nanos => 1_000_000_000,
    };
    let digits = per_second.to_string().len() - 1;
    if fraction.len() > digits
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || (s.contains('.') && fraction.is_empty())
    {
        return Err(format!("{} is more precise than the schema's time", quoted(s)));
    }
    let sub = format!("{fraction}{}", "0".repeat(digits - fraction.len()));
    Ok(seconds * per_second + sub.parse::<i64>().unwrap_or(0))
}

fn has_offset(s: &str) -> bool {
    s.rfind('T').is_some_and(|t| s[t..].contains(['+', '-']))
}

/// An RFC 3339 timestamp ("2026-12-07T10:15:30.5Z", "...+01:00") in `unit`s since 1970, exactly.
fn instant(s: &str, unit: Unit) -> Result<i64, String> {
    let at = prost_types::Timestamp::from_str(s).map_err(|_| format!("{} is not an RFC 3339 timestamp", quoted(s)))?;
    let (per_second, nanos_per_unit) = match unit {
        Unit::Millis => (1_000, 1_000_000),
        Unit::Micros => (1_000_000, 1_000),
        Unit::Nanos => (1_000_000_000, 1),
    };
    if at.nanos % nanos_per_unit != 0 {
        return Err(format!("{} is more precise than the schema's timestamp", quoted(s)));
    }
    at.seconds
        .checked_mul(per_second)
        .and_then(|t| t.checked_add(i64::from(at.nanos / nanos_per_unit)))
        .ok_or_else(|| format!("{} is out of the schema's range", quoted(s)))
}

fn timestamp(node: &Node, unit: Unit, t: i64) -> Avro {
    match (node, unit) {
        (Node::Timestamp(_), Unit::Millis) => Avro::TimestampMillis(t),
        (Node::Timestamp(_), Unit::Micros) => Avro::TimestampMicros(t),
        (Node::Timestamp(_), Unit::Nanos) => Avro::TimestampNanos(t),
        (_, Unit::Millis) => Avro::LocalTimestampMillis(t),
        (_, Unit::Micros) => Avro::LocalTimestampMicros(t),
        (_, Unit::Nanos) => Avro::LocalTimestampNanos(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_read_exactly_or_refused() {
        let long = |text: &str| long(&serde_json::from_str(text).unwrap(), "long");
        assert_eq!(long("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(long("3e2"), Ok(300));
        assert_eq!(long("2.0"), Ok(2));
        assert_eq!(
            long("-9223372036854775809"),
            Err("-9.223372036854776e+18 is out of the range of long (64 bits)".into())
        );
        assert_eq!(
            long("9223372036854775808"),
            Err("9223372036854775808 is out of the range of long (64 bits)".into())
        );
        assert_eq!(
            long("9.2e18"),
            Err("9.2e+18 is not exact as written: write an integer this large in digits".into())
        );
        assert_eq!(long("1.5"), Err("1.5 is not an integer".into()));
        let int = |text: &str| int(&serde_json::from_str(text).unwrap(), "int");
        assert_eq!(int("-2147483648"), Ok(i32::MIN));
        assert_eq!(int("2147483648"), Err("2147483648 is out of the range of int (32 bits)".into()));
        assert_eq!(int("1e10"), Err("10000000000.0 is out of the range of int (32 bits)".into()));
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        let unscaled = |s, p, sc| match decimal(s, p, sc, None) {
            Ok(Avro::Decimal(d)) => BigInt::from(d).to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(unscaled("12.34", 6, 2), "1234");
        assert_eq!(unscaled("-0.5", 6, 3), "-500");
        assert_eq!(unscaled("7", 6, 2), "700");
        assert_eq!(unscaled("0000.10", 2, 2), "10");
        for (s, why) in [
            ("1.234", "more than 2 digits after"),
            ("12345.6", "more than 6 digits"),
            ("1e3", "not a decimal"),
            ("1.", "not a decimal"),
            (".5", "not a decimal"),
            ("--1", "not a decimal"),
            ("", "not a decimal"),
        ] {
            let e = decimal(s, 6, 2, None).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
        assert!(decimal("99999", 10, 0, Some(2)).is_err(), "99999 needs 3 bytes");
    }

    #[test]
    fn dates_times_and_timestamps_are_read_exactly() {
        assert_eq!(date("1970-01-01"), Ok(0));
        assert_eq!(date("2026-12-07"), Ok(20_794));
        assert_eq!(date("1969-12-31"), Ok(-1));
        assert!(date("2026-02-30").is_err() && date("2026-1-07").is_err() && date("26-12-07").is_err());
        assert_eq!(time("10:15:30.123", Unit::Millis), Ok(36_930_123));
        assert_eq!(time("00:00:01", Unit::Micros), Ok(1_000_000));
        assert!(time("10:15:30.1234", Unit::Millis).is_err() && time("24:00:00", Unit::Millis).is_err());
        assert_eq!(instant("1970-01-01T00:00:01.5Z", Unit::Millis), Ok(1_500));
        assert_eq!(instant("1970-01-01T01:00:00+01:00", Unit::Micros), Ok(0));
        assert!(instant("1970-01-01T00:00:00.0001Z", Unit::Millis).is_err());
        assert!(has_offset("2026-12-07T10:00:00+01:00") && !has_offset("2026-12-07T10:00:00"));
    }
}
