//! What the transcoder knows of a schema, compiled once per message type: for each message its fields in
//! number order (the order protobuf's canonical encoding writes them), the keys a body may name them by,
//! and for each field what its JSON value must be and how it is written. Reading a body asks no
//! descriptor anything.

use std::collections::HashMap;

use super::tally;
use prost::encoding::{encode_varint, WireType};
use prost_reflect::{Cardinality, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, Syntax};

#[derive(Debug)]
pub struct Plan {
    /// The message a body is, first, then every message below it.
    pub messages: Vec<MessagePlan>,
    pub enums: Vec<EnumPlan>,
}

#[derive(Debug)]
pub struct MessagePlan {
    /// In field number order: a field's place here is its rank, so writing fields by place writes them
    /// in number order.
    pub fields: Vec<FieldPlan>,
    /// Each field's JSON name and its name, with the field's place: a hash map, so that a body naming
    /// many fields out of order costs the same per field as one naming a few.
    keys: HashMap<Box<[u8]>, u32>,
    /// The places of the fields proto2 requires.
    pub required: Vec<u32>,
    pub oneofs: u32,
}

#[derive(Debug)]
pub struct FieldPlan {
    /// The key most bodies name it by, tried first after the field before it.
    json_name: Box<[u8]>,
    pub shape: Shape,
    /// What one value is: the field's, a list item's or a map entry's value.
    pub ty: Ty,
    /// Whether a default value is written (proto3's implicit fields leave it out).
    pub presence: bool,
    pub oneof: Option<u32>,
    /// The key on the wire of one value: field number and wire type (for a packed list, of the list).
    pub tag: Tag,
}

#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Single,
    List {
        packed: bool,
    },
    /// A map: its key's type, whether an entry writes a default key or value (proto2 does), and the
    /// entry's keys on the wire of both.
    Map {
        key: Ty,
        key_presence: bool,
        value_presence: bool,
        key_tag: Tag,
        value_tag: Tag,
    },
}

/// A value's type, with its message or enum by place in the plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ty {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    Enum(u32),
    Message(u32),
}

impl Ty {
    fn wire_type(self) -> WireType {
        match self {
            Ty::Double | Ty::Fixed64 | Ty::Sfixed64 => WireType::SixtyFourBit,
            Ty::Float | Ty::Fixed32 | Ty::Sfixed32 => WireType::ThirtyTwoBit,
            Ty::String | Ty::Bytes | Ty::Message(_) => WireType::LengthDelimited,
            _ => WireType::Varint,
        }
    }
}

#[derive(Debug)]
pub struct EnumPlan {
    /// Value names, sorted, with their numbers.
    names: Vec<(Box<[u8]>, i32)>,
    /// A proto2 (closed) enum's numbers, sorted: it takes no other.
    closed: Option<Vec<i32>>,
}

impl EnumPlan {
    pub fn named(&self, name: &[u8]) -> Option<i32> {
        let at = self.names.binary_search_by(|(n, _)| (**n).cmp(name)).ok()?;
        Some(self.names[at].1)
    }

    pub fn takes(&self, number: i32) -> bool {
        self.closed.as_ref().is_none_or(|numbers| numbers.binary_search(&number).is_ok())
    }
}

/// A field's key on the wire, encoded once.
#[derive(Debug, Clone, Copy)]
pub struct Tag {
    bytes: [u8; 5],
    len: u8,
}

impl Tag {
    pub fn new(number: u32, wire_type: WireType) -> Tag {
        let mut bytes = [0; 5];
        let mut room = &mut bytes[..];
        encode_varint(u64::from(number) << 3 | wire_type as u64, &mut room);
        let len = (5 - room.len()) as u8;
        Tag { bytes, len }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl Plan {
    /// The plan of `message`, or None for a schema the transcoder leaves to the established codec: one
    /// that reaches a well-known type (google.protobuf.*, with JSON forms of their own) or a proto2 group,
    /// or whose keys are ambiguous (a field's name that is another's JSON name).
    pub fn of(message: &MessageDescriptor) -> Option<Plan> {
        let mut plan = Plan { messages: Vec::new(), enums: Vec::new() };
        plan.message(message, &mut HashMap::new())?;
        Some(plan)
    }

    /// `message`'s place, planned with every message below it on first sight; `placed` holds the places
    /// planned, by full name (a message may contain itself).
    fn message(&mut self, message: &MessageDescriptor, placed: &mut HashMap<String, u32>) -> Option<u32> {
        if message.full_name().starts_with("google.protobuf.") {
            return None;
        }
        if let Some(at) = placed.get(message.full_name()) {
            return Some(*at);
        }
        let at = self.messages.len() as u32;
        placed.insert(message.full_name().to_owned(), at);
        // filled in below, once the messages below it have places
        let empty = || MessagePlan { fields: Vec::new(), keys: HashMap::new(), required: Vec::new(), oneofs: 0 };
        self.messages.push(empty());
        let oneofs: Vec<_> = message.oneofs().collect();
        let mut plan = MessagePlan { oneofs: oneofs.len() as u32, ..empty() };
        for field in message.fields() {
            if field.is_group() {
                return None;
            }
            let place = plan.fields.len() as u32;
            if field.cardinality() == Cardinality::Required {
                plan.required.push(place);
            }
            let mut names = vec![field.json_name()];
            if field.name() != field.json_name() {
                names.push(field.name());
            }
            for name in names {
                if plan.keys.insert(name.as_bytes().into(), place).is_some() {
                    return None;
                }
            }
            let oneof = field.containing_oneof().and_then(|o| oneofs.iter().position(|known| *known == o));
            plan.fields.push(self.field(&field, oneof.map(|o| o as u32), placed)?);
        }
        self.messages[at as usize] = plan;
        Some(at)
    }

    fn field(
        &mut self,
        field: &FieldDescriptor,
        oneof: Option<u32>,
        placed: &mut HashMap<String, u32>,
    ) -> Option<FieldPlan> {
        let (shape, ty) = match field.kind() {
            Kind::Message(entry) if field.is_map() => {
                let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
                let (key_ty, value_ty) = (self.ty(&key.kind(), placed)?, self.ty(&value.kind(), placed)?);
                let shape = Shape::Map {
                    key: key_ty,
                    key_presence: key.supports_presence(),
                    value_presence: value.supports_presence(),
                    key_tag: Tag::new(1, key_ty.wire_type()),
                    value_tag: Tag::new(2, value_ty.wire_type()),
                };
                (shape, value_ty)
            }
            kind if field.is_list() => (Shape::List { packed: field.is_packed() }, self.ty(&kind, placed)?),
            kind => (Shape::Single, self.ty(&kind, placed)?),
        };
        let wire_type = match shape {
            Shape::List { packed: true } | Shape::Map { .. } => WireType::LengthDelimited,
            _ => ty.wire_type(),
        };
        Some(FieldPlan {
            json_name: field.json_name().as_bytes().into(),
            shape,
            ty,
            presence: field.supports_presence(),
            oneof,
            tag: Tag::new(field.number(), wire_type),
        })
    }

    fn ty(&mut self, kind: &Kind, placed: &mut HashMap<String, u32>) -> Option<Ty> {
        Some(match kind {
            Kind::Double => Ty::Double,
            Kind::Float => Ty::Float,
            Kind::Int32 => Ty::Int32,
            Kind::Int64 => Ty::Int64,
            Kind::Uint32 => Ty::Uint32,
            Kind::Uint64 => Ty::Uint64,
            Kind::Sint32 => Ty::Sint32,
            Kind::Sint64 => Ty::Sint64,
            Kind::Fixed32 => Ty::Fixed32,
            Kind::Fixed64 => Ty::Fixed64,
            Kind::Sfixed32 => Ty::Sfixed32,
            Kind::Sfixed64 => Ty::Sfixed64,
            Kind::Bool => Ty::Bool,
            Kind::String => Ty::String,
            Kind::Bytes => Ty::Bytes,
            Kind::Enum(e) => Ty::Enum(self.enumeration(e, placed)?),
            Kind::Message(m) => Ty::Message(self.message(m, placed)?),
        })
    }

    fn enumeration(&mut self, e: &EnumDescriptor, placed: &mut HashMap<String, u32>) -> Option<u32> {
        if e.full_name().starts_with("google.protobuf.") {
            return None;
        }
        // enums and messages share `placed`: one full name names one of them
        let key = format!("enum {}", e.full_name());
        if let Some(at) = placed.get(&key) {
            return Some(*at);
        }
        let mut names: Vec<(Box<[u8]>, i32)> = e.values().map(|v| (v.name().as_bytes().into(), v.number())).collect();
        names.sort();
        let closed = (e.parent_file().syntax() == Syntax::Proto2).then(|| {
            let mut numbers: Vec<i32> = e.values().map(|v| v.number()).collect();
            numbers.sort_unstable();
            numbers
        });
        let at = self.enums.len() as u32;
        self.enums.push(EnumPlan { names, closed });
        placed.insert(key, at);
        Some(at)
    }
}

impl MessagePlan {
    /// The place of the field `key` names; `after` is the place of the field read before it in this
    /// object, whose successor bodies usually name next.
    pub fn field(&self, key: &[u8], after: Option<u32>) -> Option<u32> {
        let next = after.map_or(0, |place| place as usize + 1);
        if self.fields.get(next).is_some_and(|f| *f.json_name == *key) {
            return Some(next as u32);
        }
        tally(1);
        self.keys.get(key).copied()
    }

    /// How many words of 64 bits hold a bit per field.
    pub fn words(&self) -> usize {
        self.fields.len().div_ceil(64)
    }

    /// How many words of 64 bits hold a bit per oneof.
    pub fn oneof_words(&self) -> usize {
        (self.oneofs as usize).div_ceil(64)
    }
}
