//! Flattened metadata, as sops writes it into dotenv and INI files
//! (docs/sops-format.md §4.4).
//!
//! sops 3.11 JSON-encodes the metadata and walks it: a map member appends
//! `__map_<key>`, a list element appends `__list_<index>`, nulls are dropped,
//! booleans become `true`/`false`, numbers their decimal text, and real newlines in
//! values are written as the two characters `\n`. Reading reverses it into a nested
//! [`Node`] tree so the sops layer finds an ordinary `sops` map, exactly as in YAML
//! and JSON files.
//!
//! The lines come from the file, so reading is bounded: a key nests at most
//! [`MAX_DEPTH`] levels, and each map or list under construction indexes its
//! members by hash, so many keys cost linear time.

use std::collections::HashMap;
use std::hash::Hash;

use zeroize::Zeroizing;

use super::{too_deep, Span, Style, Value, MAX_DEPTH};
use super::{Entry, FormatError, Leaf, LeafContext, List, ListItem, Map, MapItem, Node, Scalar};
use crate::formats::go_format_float;

/// The flattened `(key, value)` pairs of `meta`, sorted by key as sops sorts them,
/// values with newlines escaped.
pub fn flatten(meta: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Value::Map(entries) = meta {
        for (k, v) in entries {
            walk(k.clone(), v, &mut out);
        }
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out
}

fn walk(key: String, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push((key, b.to_string())),
        Value::Int(i) => out.push((key, i.to_string())),
        Value::Float(f) => out.push((key, go_format_float(*f))),
        Value::Str(s) => out.push((key, escape(s))),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(format!("{key}__list_{i}"), item, out);
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                walk(format!("{key}__map_{k}"), v, out);
            }
        }
    }
}

/// Real newlines become the two characters `\n`.
pub(crate) fn escape(s: &str) -> String {
    s.replace('\n', "\\n")
}

/// The two characters `\n` become a real newline.
pub(crate) fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
}

/// One flattened metadata line as read from a file.
pub(crate) struct FlatLine {
    /// The key without any store prefix (`age__list_0__map_recipient`).
    pub key: String,
    /// The value as written (still escaped).
    pub value: String,
    /// Where the value sits in the source.
    pub span: Span,
    pub line: usize,
    pub column: usize,
}

/// A tree under construction: lists are keyed by index until they are complete.
enum Tree {
    Leaf(Leaf),
    Map(Members<String>),
    List(Members<usize>),
}

/// The members of a map or list under construction, in the order first seen.
struct Members<K> {
    items: Vec<(K, Tree)>,
    index: HashMap<K, usize>,
}

impl<K: Clone + Eq + Hash> Members<K> {
    fn new() -> Members<K> {
        Members {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The member `key`; a new member starts as an empty map and becomes a list or
    /// leaf when the next step says so.
    fn slot(&mut self, key: K) -> &mut Tree {
        let at = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.index.insert(key.clone(), self.items.len());
                self.items.push((key, Tree::Map(Members::new())));
                self.items.len() - 1
            }
        };
        &mut self.items[at].1
    }
}

enum Step {
    Map(String),
    List(usize),
}

fn steps(key: &str) -> Option<(String, Vec<Step>)> {
    let mut parts = key.split("__");
    let first = parts.next()?.to_string();
    let mut out = Vec::new();
    for part in parts {
        if let Some(k) = part.strip_prefix("map_") {
            out.push(Step::Map(k.to_string()));
        } else if let Some(i) = part.strip_prefix("list_") {
            out.push(Step::List(i.parse().ok()?));
        } else {
            return None;
        }
    }
    Some((first, out))
}

/// Rebuild the nested metadata map from flattened lines. `span` is the whole
/// block (for the `sops` entry).
pub(crate) fn unflatten(lines: &[FlatLine], span: Span, line: usize) -> Result<Entry, FormatError> {
    let mut root: Members<String> = Members::new();
    for l in lines {
        let bad = |why: &str| FormatError::Syntax {
            line: l.line,
            column: 1,
            message: format!("the sops metadata key {:?} {why}", l.key),
        };
        let (first, path) = steps(&l.key).ok_or_else(|| {
            bad("is not a flattened metadata key (expected `__map_<key>`/`__list_<n>` parts)")
        })?;
        // The document root and the `sops` map hold the first level.
        if path.len() + 2 > MAX_DEPTH {
            return Err(too_deep(l.line, 1));
        }
        let leaf = Tree::Leaf(Leaf {
            value: Scalar::Str(Zeroizing::new(unescape(&l.value))),
            span: l.span.clone(),
            style: Style::Plain,
            line: l.line,
            column: l.column,
            context: LeafContext::default(),
        });
        let mut slot = root.slot(first);
        for step in path {
            slot = match step {
                Step::Map(k) => match slot {
                    Tree::Map(m) => m.slot(k),
                    _ => return Err(bad("conflicts with another metadata key")),
                },
                Step::List(i) => {
                    if matches!(&*slot, Tree::Map(m) if m.is_empty()) {
                        *slot = Tree::List(Members::new());
                    }
                    match slot {
                        Tree::List(items) => items.slot(i),
                        _ => return Err(bad("conflicts with another metadata key")),
                    }
                }
            };
        }
        match slot {
            Tree::Map(m) if m.is_empty() => *slot = leaf,
            _ => return Err(bad("is given twice or conflicts with another metadata key")),
        }
    }
    Ok(Entry {
        key: "sops".to_string(),
        key_span: span.clone(),
        value: Node::Map(to_map(root.items, span.clone())),
        span,
        line,
    })
}

fn to_node(tree: Tree, span: &Span) -> Node {
    match tree {
        Tree::Leaf(l) => Node::Leaf(l),
        Tree::Map(m) => Node::Map(to_map(m.items, span.clone())),
        Tree::List(Members { mut items, .. }) => {
            items.sort_by_key(|(i, _)| *i);
            Node::List(List {
                items: items
                    .into_iter()
                    .map(|(_, t)| ListItem::Node(to_node(t, span)))
                    .collect(),
                flow: false,
                span: span.clone(),
            })
        }
    }
}

fn to_map(entries: Vec<(String, Tree)>, span: Span) -> Map {
    Map {
        items: entries
            .into_iter()
            .map(|(k, t)| {
                let node = to_node(t, &span);
                MapItem::Entry(Entry {
                    key: k,
                    key_span: span.clone(),
                    line: first_line(&node),
                    value: node,
                    span: span.clone(),
                })
            })
            .collect(),
        flow: false,
        span,
    }
}

/// The line of the first leaf under `node` (for messages about metadata fields).
fn first_line(node: &Node) -> usize {
    match node {
        Node::Leaf(l) => l.line,
        Node::Map(m) => m
            .items
            .iter()
            .find_map(|i| match i {
                MapItem::Entry(e) => Some(e.line),
                MapItem::Comment(_) => None,
            })
            .unwrap_or(0),
        Node::List(l) => l
            .items
            .iter()
            .find_map(|i| match i {
                ListItem::Node(n) => Some(first_line(n)),
                ListItem::Comment(_) => None,
            })
            .unwrap_or(0),
    }
}
