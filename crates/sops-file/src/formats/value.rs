//! A plain, owned data tree for non-secret structured data: the `sops` metadata
//! block and `.sops.yaml`. Secret documents never become a `Value`; they stay in
//! the span-carrying [`Node`] tree with zeroizing strings.

use super::{ListItem, Map, MapItem, Node, Scalar};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// Ordered: emission order matters for sops-compatible output.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// Convert a parsed node, dropping comments. Timestamps become strings.
    pub fn from_node(node: &Node) -> Value {
        match node {
            Node::Map(map) => Value::from_map(map),
            Node::List(list) => Value::List(
                list.items
                    .iter()
                    .filter_map(|item| match item {
                        ListItem::Node(n) => Some(Value::from_node(n)),
                        ListItem::Comment(_) => None,
                    })
                    .collect(),
            ),
            Node::Leaf(leaf) => match &leaf.value {
                Scalar::Str(s) => Value::Str(s.to_string()),
                Scalar::Int(i) => Value::Int(*i),
                Scalar::Float(f) => Value::Float(*f),
                Scalar::Bool(b) => Value::Bool(*b),
                Scalar::Time(t) => Value::Str(t.clone()),
                Scalar::Null => Value::Null,
            },
        }
    }

    pub fn from_map(map: &Map) -> Value {
        Value::Map(
            map.items
                .iter()
                .filter_map(|item| match item {
                    MapItem::Entry(e) => Some((e.key.clone(), Value::from_node(&e.value))),
                    MapItem::Comment(_) => None,
                })
                .collect(),
        )
    }

    /// The member `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}
