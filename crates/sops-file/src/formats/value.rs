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

    /// Convert a parsed map. A key given twice (JSON allows it) keeps its first
    /// place and its last value, as Go's `encoding/json` (and so sops) reads it.
    pub fn from_map(map: &Map) -> Value {
        let mut entries: Vec<(String, Value)> = Vec::new();
        let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for item in &map.items {
            let MapItem::Entry(e) = item else { continue };
            let value = Value::from_node(&e.value);
            match at.get(e.key.as_str()) {
                Some(&i) => entries[i].1 = value,
                None => {
                    at.insert(&e.key, entries.len());
                    entries.push((e.key.clone(), value));
                }
            }
        }
        Value::Map(entries)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Format;

    /// Found by fuzzing (metadata): a JSON metadata entry holding a key twice
    /// was written into YAML twice, which YAML refuses.
    #[test]
    fn a_key_given_twice_keeps_its_first_place_and_last_value() {
        let doc = Format::Json
            .store()
            .parse(r#"{"a": 1, "b": 2, "a": 3}"#)
            .unwrap();
        assert_eq!(
            Value::from_map(&doc.docs[0]),
            Value::Map(vec![
                ("a".into(), Value::Float(3.0)),
                ("b".into(), Value::Float(2.0))
            ])
        );
    }
}
