//! The reader's view of an Avro schema, made once when the schema is compiled: each type a node, named
//! types once however often they are referred to (a record may contain itself), field names sorted for
//! lookup, and each field's default as the schema writes it, for src/format/avro/read.rs to convert once
//! every node exists.

use std::collections::HashMap;

use apache_avro::schema::{InnerDecimalSchema, Name, NamesRef, Schema, UuidSchema};
use apache_avro::types::Value as Avro;
use serde_json::Value as Json;

#[derive(Debug)]
pub struct Plan {
    /// The schema's top type first.
    pub nodes: Vec<Node>,
    /// What a union's branch is called in Avro's JSON encoding (`{"long": 5}`): by node.
    pub branch_names: Vec<Box<str>>,
    /// The defaults still to convert: the record's node, the field's place, the default's JSON.
    pub unread_defaults: Vec<(usize, usize, Json)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Micros,
    Nanos,
}

#[derive(Debug)]
pub enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Uuid,
    /// Days since 1970-01-01.
    Date,
    TimeMillis,
    TimeMicros,
    Timestamp(Unit),
    LocalTimestamp(Unit),
    Fixed {
        name: Box<str>,
        size: usize,
    },
    Decimal {
        precision: usize,
        scale: usize,
        size: Option<usize>,
    },
    Enum {
        name: Box<str>,
        symbols: Vec<String>,
        sorted: Vec<(Box<str>, u32)>,
    },
    Array(usize),
    Map(usize),
    Record(Record),
    /// Its branches' nodes, in the schema's order.
    Union(Vec<usize>),
}

#[derive(Debug)]
pub struct Record {
    pub name: Box<str>,
    pub fields: Vec<Field>,
    /// Each field's name, sorted, with its place in `fields`.
    pub keys: Vec<(Box<str>, usize)>,
    /// How many fields have no default: a body must give each.
    pub required: usize,
}

#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub node: usize,
    pub default: Option<Avro>,
}

impl Record {
    pub fn field(&self, key: &str) -> Option<&Field> {
        let at = self.keys.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.fields[self.keys[at].1])
    }
}

struct Builder<'s> {
    plan: Plan,
    names: &'s NamesRef<'s>,
    /// Named types already placed, by full name.
    placed: HashMap<String, usize>,
}

impl Plan {
    /// The plan of `schema`, whose references name types in `names`, its defaults unread. An error for a
    /// type the gateway cannot write (a duration, apache-avro's big-decimal).
    pub fn of(schema: &Schema, names: &NamesRef) -> Result<Plan, String> {
        let plan = Plan { nodes: Vec::new(), branch_names: Vec::new(), unread_defaults: Vec::new() };
        let mut b = Builder { plan, names, placed: HashMap::new() };
        b.node(schema, None)?;
        Ok(b.plan)
    }
}

impl<'s> Builder<'s> {
    fn push(&mut self, node: Node, branch_name: &str) -> usize {
        self.plan.nodes.push(node);
        self.plan.branch_names.push(branch_name.into());
        self.plan.nodes.len() - 1
    }

    /// A named type's place, reserved before its parts are planned so that they may refer to it.
    fn place(&mut self, name: &Name, namespace: Option<&str>) -> (usize, String) {
        let full = name.fully_qualified_name(namespace).fullname(None);
        let at = self.push(Node::Null, &full);
        self.placed.insert(full.clone(), at);
        (at, full)
    }

    fn node(&mut self, schema: &'s Schema, namespace: Option<&str>) -> Result<usize, String> {
        let node = match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int => Node::Int,
            Schema::Long => Node::Long,
            Schema::Float => Node::Float,
            Schema::Double => Node::Double,
            Schema::Bytes => Node::Bytes,
            Schema::String => Node::String,
            Schema::Uuid(UuidSchema::String) => Node::Uuid,
            Schema::Date => Node::Date,
            Schema::TimeMillis => Node::TimeMillis,
            Schema::TimeMicros => Node::TimeMicros,
            Schema::TimestampMillis => Node::Timestamp(Unit::Millis),
            Schema::TimestampMicros => Node::Timestamp(Unit::Micros),
            Schema::TimestampNanos => Node::Timestamp(Unit::Nanos),
            Schema::LocalTimestampMillis => Node::LocalTimestamp(Unit::Millis),
            Schema::LocalTimestampMicros => Node::LocalTimestamp(Unit::Micros),
            Schema::LocalTimestampNanos => Node::LocalTimestamp(Unit::Nanos),
            Schema::Decimal(d) => {
                let (size, branch) = match &d.inner {
                    InnerDecimalSchema::Bytes => (None, "bytes".to_owned()),
                    InnerDecimalSchema::Fixed(f) => {
                        (Some(f.size), f.name.fully_qualified_name(namespace).fullname(None))
                    }
                };
                let node = Node::Decimal { precision: d.precision, scale: d.scale, size };
                return Ok(self.push(node, &branch));
            }
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(namespace);
                if let Some(&at) = self.placed.get(&full.fullname(None)) {
                    return Ok(at);
                }
                let named = self
                    .names
                    .get(&*full)
                    .ok_or_else(|| format!("refers to {}, which it does not define", full.fullname(None)))?;
                return self.node(named, full.namespace());
            }
            Schema::Fixed(f) => {
                let (at, full) = self.place(&f.name, namespace);
                self.plan.nodes[at] = Node::Fixed { name: full.into(), size: f.size };
                return Ok(at);
            }
            Schema::Enum(e) => {
                let (at, full) = self.place(&e.name, namespace);
                let mut sorted: Vec<_> =
                    e.symbols.iter().enumerate().map(|(i, s)| (s.as_str().into(), i as u32)).collect();
                sorted.sort_unstable();
                self.plan.nodes[at] = Node::Enum { name: full.into(), symbols: e.symbols.clone(), sorted };
                return Ok(at);
            }
            Schema::Record(r) => {
                let (at, full) = self.place(&r.name, namespace);
                let inner = r.name.fully_qualified_name(namespace).namespace().map(str::to_owned);
                let mut fields = Vec::with_capacity(r.fields.len());
                for (i, f) in r.fields.iter().enumerate() {
                    let node = self.node(&f.schema, inner.as_deref())?;
                    if let Some(json) = &f.default {
                        self.plan.unread_defaults.push((at, i, json.clone()));
                    }
                    fields.push(Field { name: f.name.clone(), node, default: None });
                }
                let mut keys: Vec<_> = fields.iter().enumerate().map(|(i, f)| (f.name.as_str().into(), i)).collect();
                keys.sort_unstable();
                let required = r.fields.iter().filter(|f| f.default.is_none()).count();
                self.plan.nodes[at] = Node::Record(Record { name: full.into(), fields, keys, required });
                return Ok(at);
            }
            // Placed before their parts, as named types are: the schema's top type is node 0.
            Schema::Array(a) => {
                let at = self.push(Node::Null, "array");
                self.plan.nodes[at] = Node::Array(self.node(&a.items, namespace)?);
                return Ok(at);
            }
            Schema::Map(m) => {
                let at = self.push(Node::Null, "map");
                self.plan.nodes[at] = Node::Map(self.node(&m.types, namespace)?);
                return Ok(at);
            }
            Schema::Union(u) => {
                let at = self.push(Node::Null, "union");
                let branches = u.variants().iter().map(|s| self.node(s, namespace)).collect::<Result<_, _>>()?;
                self.plan.nodes[at] = Node::Union(branches);
                return Ok(at);
            }
            Schema::Uuid(_) => return Err("a uuid on bytes or fixed is not supported: make it a uuid string".into()),
            Schema::Duration(_) => return Err("the duration logical type is not supported".into()),
            Schema::BigDecimal => return Err("the big-decimal logical type is not supported: use decimal".into()),
        };
        let branch = branch_name(&node);
        Ok(self.push(node, branch))
    }
}

/// The primitive type a node is written as, which names it as a union's branch.
fn branch_name(node: &Node) -> &'static str {
    match node {
        Node::Null => "null",
        Node::Boolean => "boolean",
        Node::Int | Node::Date | Node::TimeMillis => "int",
        Node::Long | Node::TimeMicros | Node::Timestamp(_) | Node::LocalTimestamp(_) => "long",
        Node::Float => "float",
        Node::Double => "double",
        Node::Bytes => "bytes",
        Node::String | Node::Uuid => "string",
        _ => unreachable!("named and complex types are placed with their names"),
    }
}
