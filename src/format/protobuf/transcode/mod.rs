//! JSON to protobuf's binary encoding in one pass: each field is written as it is read, against a plan
//! of the schema compiled once ([`plan`]), with no message built in between.
//!
//! It accepts or steps aside. A body it takes is one the established codec (src/format/protobuf/mod.rs:
//! strict check, prost-reflect's proto3 JSON mapping, encoding) takes too, and it writes the same bytes;
//! for anything else (a refusal, or a form it does not read itself: a float in an integer field, an
//! escaped key, a number it would have to round in another way) it answers None, and the established
//! codec reads the body again and names what is wrong, so every answer's text is that codec's. The
//! differential tests below and the fuzz target json_to_protobuf hold the two to that.

mod pieces;
mod plan;
mod scan;

use std::collections::HashSet;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, DecodeError, Engine};
use prost::encoding::encode_varint;
use prost_reflect::MessageDescriptor;

use pieces::{Closed, Pieces};
use plan::{FieldPlan, Plan, Shape, Tag, Ty};
use scan::{unescape, Number, Scan};

/// How deeply objects and lists may nest in a body the transcoder takes: the top message and 100 below
/// it, as many as protobuf's decoders read (src/format/protobuf/mod.rs), each at least one level (a map's
/// entry and its value two), and within serde_json's 128. Deeper ones go to the established codec, which
/// names the limit.
const MAX_DEPTH: usize = 101;

#[derive(Debug)]
pub struct Transcoder {
    plan: Plan,
}

impl Transcoder {
    /// The transcoder of `message`, or None for a schema it leaves to the established codec (one that
    /// reaches a well-known type, a proto2 group, or has ambiguous keys).
    pub fn of(message: &MessageDescriptor) -> Option<Transcoder> {
        Plan::of(message).map(|plan| Transcoder { plan })
    }

    /// The record's bytes for `body`, or None: the established codec decides.
    pub fn transcode(&self, body: &str) -> Option<Vec<u8>> {
        let mut read = Read {
            plan: &self.plan,
            scan: Scan::new(body),
            out: Pieces::for_body(body.len()),
            bits: Vec::new(),
            depth: 0,
            maps: 0,
            keys: HashSet::new(),
        };
        let top = read.message(0)?;
        read.scan.end().then(|| read.out.lay_out(top))
    }
}

/// One body being read.
struct Read<'p, 'a> {
    plan: &'p Plan,
    scan: Scan<'a>,
    out: Pieces,
    /// For each open message: a bit per field its object named, a bit per field given a value other
    /// than null, a bit per oneof set; innermost last.
    bits: Vec<u64>,
    depth: usize,
    /// Map objects read so far: each map's keys are told apart by its number in `keys`.
    maps: u32,
    keys: HashSet<(u32, &'a [u8])>,
}

impl<'a> Read<'_, 'a> {
    /// Reads an object as the plan's message `m`.
    fn message(&mut self, m: u32) -> Option<Closed> {
        let plan = &self.plan.messages[m as usize];
        self.enter(b'{')?;
        let (words, at) = (plan.words(), self.bits.len());
        self.bits.resize(at + 2 * words + plan.oneof_words(), 0);
        tally(2 * words + plan.oneof_words());
        self.out.open();
        let mut after = None;
        if self.scan.peek()? == b'}' {
            self.scan.take(b'}')?;
        } else {
            loop {
                let (key, escaped) = self.scan.string()?;
                if escaped {
                    return None;
                }
                self.scan.take(b':')?;
                let place = plan.field(key, after)?;
                after = Some(place);
                if !set(&mut self.bits[at..at + words], place) {
                    return None;
                }
                let field = &plan.fields[place as usize];
                if self.value(field, place)? {
                    set(&mut self.bits[at + words..at + 2 * words], place);
                    if let Some(oneof) = field.oneof {
                        if !set(&mut self.bits[at + 2 * words..], oneof) {
                            return None;
                        }
                    }
                }
                if !self.scan.more(b'}')? {
                    break;
                }
            }
        }
        let valued = &self.bits[at + words..at + 2 * words];
        if plan.required.iter().any(|&place| valued[place as usize / 64] & 1 << (place % 64) == 0) {
            return None;
        }
        let closed = self.out.close(&self.bits[at..at + words])?;
        self.bits.truncate(at);
        self.depth -= 1;
        Some(closed)
    }

    /// Takes `open`, one level deeper.
    fn enter(&mut self, open: u8) -> Option<()> {
        self.scan.take(open)?;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// Reads field `field`'s value (the field at `place`); false when it was null (the field is absent).
    fn value(&mut self, field: &FieldPlan, place: u32) -> Option<bool> {
        if self.scan.word(b"null") {
            return Some(false);
        }
        match field.shape {
            Shape::Single => self.item(field.ty, field.tag, field.presence, place)?,
            Shape::List { packed: true } => {
                self.enter(b'[')?;
                let start = self.out.data.len();
                if self.scan.peek()? == b']' {
                    self.scan.take(b']')?;
                } else {
                    loop {
                        self.payload(field.ty)?;
                        if !self.scan.more(b']')? {
                            break;
                        }
                    }
                }
                if self.out.data.len() > start {
                    self.out.delimited(place, field.tag, start)?;
                }
                self.depth -= 1;
            }
            Shape::List { packed: false } => {
                self.enter(b'[')?;
                if self.scan.peek()? == b']' {
                    self.scan.take(b']')?;
                } else {
                    loop {
                        self.item(field.ty, field.tag, true, place)?;
                        if !self.scan.more(b']')? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
            }
            Shape::Map { key, key_presence, value_presence, key_tag, value_tag } => {
                self.enter(b'{')?;
                let map = self.maps;
                self.maps += 1;
                if self.scan.peek()? == b'}' {
                    self.scan.take(b'}')?;
                } else {
                    loop {
                        let (text, escaped) = self.scan.string()?;
                        if escaped || !self.keys.insert((map, text)) {
                            return None;
                        }
                        tally(1);
                        self.scan.take(b':')?;
                        self.out.open();
                        let start = self.out.data.len();
                        self.out.data.extend_from_slice(key_tag.bytes());
                        if map_key(key, text, &mut self.out.data)? && !key_presence {
                            self.out.data.truncate(start);
                        } else {
                            self.out.bytes(0, start)?;
                        }
                        self.item(field.ty, value_tag, value_presence, 1)?;
                        let entry = self.out.close(&[])?;
                        self.out.message(place, field.tag, entry)?;
                        if !self.scan.more(b'}')? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
            }
        }
        Some(true)
    }

    /// One value of type `ty` (not null), written with `tag` as field `place`'s; a default value only
    /// when the field has `presence`.
    fn item(&mut self, ty: Ty, tag: Tag, presence: bool, place: u32) -> Option<()> {
        let start = self.out.data.len();
        match ty {
            Ty::Message(m) => {
                let message = self.message(m)?;
                self.out.message(place, tag, message)
            }
            Ty::String => {
                let (text, escaped) = self.scan.string()?;
                if escaped {
                    unescape(text, &mut self.out.data)?;
                    return self.delimited(place, tag, presence, start);
                }
                if text.is_empty() && !presence {
                    return Some(());
                }
                self.out.data.extend_from_slice(tag.bytes());
                encode_varint(text.len() as u64, &mut self.out.data);
                self.out.data.extend_from_slice(text);
                self.out.bytes(place, start)
            }
            Ty::Bytes => {
                let (text, escaped) = self.scan.string()?;
                if escaped {
                    return None;
                }
                base64(text, &mut self.out.data)?;
                self.delimited(place, tag, presence, start)
            }
            ty => {
                self.out.data.extend_from_slice(tag.bytes());
                if self.payload(ty)? && !presence {
                    self.out.data.truncate(start);
                    return Some(());
                }
                self.out.bytes(place, start)
            }
        }
    }

    /// The bytes since `start` as field `place`'s length-delimited value, unless empty without presence.
    fn delimited(&mut self, place: u32, tag: Tag, presence: bool, start: usize) -> Option<()> {
        if self.out.data.len() == start && !presence {
            return Some(());
        }
        self.out.delimited(place, tag, start)
    }

    /// Reads a number, a bool or an enum of type `ty` and writes it without a key, as a packed list's
    /// item is; true when it is the type's default.
    fn payload(&mut self, ty: Ty) -> Option<bool> {
        Some(match ty {
            Ty::Bool => {
                let b = if self.scan.word(b"true") {
                    true
                } else if self.scan.word(b"false") {
                    false
                } else {
                    return None;
                };
                self.out.data.push(u8::from(b));
                !b
            }
            Ty::Double => {
                let d = self.float(false)?;
                self.out.data.extend_from_slice(&d.to_le_bytes());
                d == 0.0
            }
            Ty::Float => {
                let f = self.float(true)? as f32;
                self.out.data.extend_from_slice(&f.to_le_bytes());
                f == 0.0
            }
            Ty::Enum(e) => {
                let e = &self.plan.enums[e as usize];
                let n = if self.scan.peek()? == b'"' {
                    let (name, escaped) = self.scan.string()?;
                    if escaped {
                        return None;
                    }
                    e.named(name)?
                } else {
                    let n = self.scan.number()?;
                    i32::try_from(exact(&n)?).ok().filter(|&n| e.takes(n))?
                };
                encode_varint(n as i64 as u64, &mut self.out.data);
                n == 0
            }
            ty => {
                let n = self.integer()?;
                integer(ty, n, &mut self.out.data)?;
                n == 0
            }
        })
    }

    /// An integer written as a number or as a string holding one; None for other forms (a fraction, an
    /// exponent, `+`, leading zeros, `-0`), which the established codec judges.
    fn integer(&mut self) -> Option<i128> {
        if self.scan.peek()? != b'"' {
            return exact(&self.scan.number()?);
        }
        let (text, escaped) = self.scan.string()?;
        if escaped {
            return None;
        }
        whole(text)
    }

    /// A float or a double: a number, a string holding one, or "NaN", "Infinity", "-Infinity". A float's
    /// value is the double `as f32`, as the established codec rounds a number written in JSON; a float
    /// written in a string is parsed as a float directly, as it does.
    fn float(&mut self, float: bool) -> Option<f64> {
        let limit = if float { f64::from(f32::MAX) } else { f64::MAX };
        if self.scan.peek()? != b'"' {
            let n = self.scan.number()?;
            let value = if n.integer {
                let i = exact(&n)?;
                // a float is rounded from the integer once: through a double it could be rounded twice
                if float && i as f64 as f32 != i as f32 {
                    return None;
                }
                i as f64
            } else {
                nonzero(&n)?
            };
            return (value.abs() <= limit).then_some(value);
        }
        let (text, escaped) = self.scan.string()?;
        if escaped {
            return None;
        }
        match text {
            b"NaN" => return Some(f64::NAN),
            b"Infinity" => return Some(f64::INFINITY),
            b"-Infinity" => return Some(f64::NEG_INFINITY),
            _ => {}
        }
        let text = std::str::from_utf8(text).ok()?;
        let mut inner = Scan::new(text);
        let n = inner.number()?;
        if !inner.end() || n.text.len() != text.len() {
            return None;
        }
        let value = nonzero(&n)?;
        if value.abs() > limit {
            return None;
        }
        if float {
            return text.parse::<f32>().ok().map(f64::from);
        }
        Some(value)
    }
}

/// Sets bit `n`; false when it was set already.
fn set(bits: &mut [u64], n: u32) -> bool {
    let (word, bit) = (n as usize / 64, 1u64 << (n % 64));
    let was = bits[word] & bit != 0;
    bits[word] |= bit;
    !was
}

/// An integer number's value, when serde_json reads it exactly (as an i64 or a u64) and it is not `-0`.
fn exact(n: &Number) -> Option<i128> {
    if !n.integer {
        return None;
    }
    let value: i128 = n.text.parse().ok()?;
    let exact = if n.negative { i64::try_from(value).is_ok() && value != 0 } else { u64::try_from(value).is_ok() };
    exact.then_some(value)
}

/// A number with a fraction or an exponent as a double, unless it underflowed to zero (which the
/// established codec's parser may round otherwise) or overflowed.
fn nonzero(n: &Number) -> Option<f64> {
    let value: f64 = n.text.parse().ok()?;
    if value != 0.0 {
        return value.is_finite().then_some(value);
    }
    let mantissa = n.text.split(['e', 'E']).next()?;
    let zero = !mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
    (zero && !n.negative).then_some(value)
}

/// An integer in a string, as the proto3 JSON mapping allows: `0` or `-?[1-9][0-9]*`, up to 20 digits.
fn whole(text: &[u8]) -> Option<i128> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.len() <= 20
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1)
        && text != b"-0";
    if !canonical {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Writes a map's key `text` as a value of `ty` (a string, a bool or an integer in its canonical
/// form) after its key; true when it is the type's default.
fn map_key(ty: Ty, text: &[u8], out: &mut Vec<u8>) -> Option<bool> {
    match ty {
        Ty::String => {
            encode_varint(text.len() as u64, out);
            out.extend_from_slice(text);
            Some(text.is_empty())
        }
        Ty::Bool => {
            let b = match text {
                b"true" => true,
                b"false" => false,
                _ => return None,
            };
            out.push(u8::from(b));
            Some(!b)
        }
        ty => {
            let n = whole(text)?;
            integer(ty, n, out)?;
            Some(n == 0)
        }
    }
}

/// Writes `n` as a value of the integer type `ty`, without a key; None when it is out of the type's range.
fn integer(ty: Ty, n: i128, out: &mut Vec<u8>) -> Option<()> {
    let fits = match ty {
        Ty::Int32 | Ty::Sfixed32 | Ty::Sint32 => i32::try_from(n).is_ok(),
        Ty::Int64 | Ty::Sfixed64 | Ty::Sint64 => i64::try_from(n).is_ok(),
        Ty::Uint32 | Ty::Fixed32 => u32::try_from(n).is_ok(),
        _ => u64::try_from(n).is_ok(),
    };
    if !fits {
        return None;
    }
    match ty {
        Ty::Sfixed32 | Ty::Fixed32 => out.extend_from_slice(&(n as u32).to_le_bytes()),
        Ty::Sfixed64 | Ty::Fixed64 => out.extend_from_slice(&(n as u64).to_le_bytes()),
        Ty::Sint32 => encode_varint(u64::from(((n as i32) << 1 ^ (n as i32) >> 31) as u32), out),
        Ty::Sint64 => encode_varint(((n as i64) << 1 ^ (n as i64) >> 63) as u64, out),
        // int32's negative values are written as int64's, ten bytes
        _ => encode_varint(n as i64 as u64, out),
    }
    Some(())
}

/// Appends `text` base64-decoded, in the standard alphabet or the URL-safe one, padded or not: what
/// prost-reflect takes for a bytes field, with its decoder's settings.
fn base64(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
    let start = out.len();
    tally(text.len());
    match STANDARD.decode_vec(text, out) {
        Ok(()) => Some(()),
        Err(DecodeError::InvalidByte(_, b'-' | b'_')) => {
            out.truncate(start);
            URL_SAFE.decode_vec(text, out).ok()
        }
        Err(_) => None,
    }
}

/// Counts units of work (a byte scanned, a piece written, a word of bits cleared) in the unit tests, which
/// check that the work grows no faster than the body; nothing outside them.
#[cfg(test)]
fn tally(n: usize) {
    WORK.with(|work| work.set(work.get() + n));
}

#[cfg(not(test))]
#[inline(always)]
fn tally(_: usize) {}

#[cfg(test)]
mod tests;

#[cfg(test)]
thread_local! {
    static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
