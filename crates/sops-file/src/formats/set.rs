//! `sops set FILE PATH VALUE` and `sops unset FILE PATH` as edits of a
//! plaintext document's text. This module owns sops 3.11's semantics of
//! `TreeBranch.Set` / `TreeBranch.Unset` (`sops.go`) and of the VALUE argument
//! (`jsonValueToTreeInsertableValue` in `cmd/sops/main.go`); where the new text
//! goes and what it looks like is each store's business ([`Store::put`],
//! [`Store::take`]). The caller decrypts, applies the edits to the plaintext and
//! seals the result with the file's own data key and IV stash, so every other
//! value keeps its exact ciphertext (docs/sops-format.md §8, docs/architecture.md
//! §4.8).
//!
//! sops' semantics, followed here (checked against sops 3.11 by
//! `tests/set_unset.rs`):
//!
//! * Paths are `--extract` paths ([`parse_path`](super::extract::parse_path)).
//! * `set` on a key that exists replaces its value (a whole subtree too); a key
//!   that does not exist is appended to its map, with the rest of the path built
//!   as new maps (for keys) and one-item lists (for indexes, whatever the
//!   number). A scalar or null in the middle of the path is replaced by that
//!   new structure. An index past the end of a list appends. An index applied
//!   to a map changes nothing (sops then still rewrites the file).
//! * `unset` removes a map entry or a list item; a key or index that is not
//!   there is [`UnsetError::NotFound`] (`--idempotent` makes that success); a
//!   path through a scalar is [`UnsetError::Scalar`].
//! * VALUE is JSON: a string must be quoted, numbers are floats (as Go decodes
//!   them), a top-level list is refused (sops: "Invalid --set value format").
//!
//! Where sops panics (an empty path, a key applied to a list, a negative
//! index) this is an error instead; setting the top-level `sops` entry, which
//! would give sops' own file two metadata blocks, is refused.
//!
//! Every walk is linear in the length of the path; the path is bounded by
//! [`MAX_DEPTH`] and the VALUE by the JSON parser's depth limit, so the
//! recursion is bounded and no input allocates in proportion to an index.

use zeroize::Zeroizing;

use super::extract::Component;
use super::{Document, Edit, Entry, Format, List, ListItem, Map, MapItem, Node, Store, MAX_DEPTH};

/// Where [`Store::put`] writes a value and what [`Store::take`] removes. `item`
/// indexes `items` of the map or list (comments count); `depth` is the nesting
/// of that map or list (0: a document's top-level map).
#[derive(Clone, Copy, Debug)]
pub enum Slot<'a> {
    /// The value of the existing entry `map.items[item]`.
    Entry {
        map: &'a Map,
        item: usize,
        depth: usize,
    },
    /// A new entry `key`, after the last entry of `map`.
    NewEntry {
        map: &'a Map,
        key: &'a str,
        depth: usize,
    },
    /// The existing item `list.items[item]`.
    Item {
        list: &'a List,
        item: usize,
        depth: usize,
    },
    /// A new item after the last item of `list`.
    NewItem { list: &'a List, depth: usize },
}

/// Why a store cannot write a value where `set` puts it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PutError {
    /// The format cannot hold the value there (sops' `ErrorDumpingTree`, or a
    /// value sops would write and then fail to read).
    #[error("{0}")]
    Unsupported(String),
    /// The store cannot place text at this position of this layout.
    #[error("cannot edit this part of the file in place: {0}")]
    Layout(String),
}

/// A VALUE sops refuses (its exit code 7, `ErrorInvalidSetFormat`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error("the value is not valid JSON (sops: \"Value for --set is not valid JSON\")")]
    NotJson,
    #[error("the value is a JSON list; sops takes a list only inside an object (sops: \"Invalid --set value format\")")]
    TopLevelList,
}

/// Why `set` cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetError {
    #[error("the path is empty; name the value to set, e.g. [\"key\"]")]
    EmptyPath,
    #[error("the path has more than {MAX_DEPTH} components")]
    TooDeep,
    #[error(
        "component {0:?}: a key applied to a list (sops crashes here); use an index, e.g. [0]"
    )]
    KeyOnList(Component),
    #[error("component {0:?}: a negative index (sops crashes here)")]
    NegativeIndex(Component),
    #[error("component {0:?}: a key must be UTF-8 text")]
    KeyNotText(Component),
    #[error("the top-level `sops` entry is the file's metadata; it cannot be set")]
    Metadata,
    #[error("the file has no document to set a value in")]
    NoDocument,
    #[error("{0}")]
    Put(#[from] PutError),
}

/// Why `unset` cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnsetError {
    #[error("the path is empty; name the value to remove, e.g. [\"key\"]")]
    EmptyPath,
    /// sops' `SopsKeyNotFound`: what `--idempotent` turns into success.
    #[error("{0}")]
    NotFound(String),
    #[error("component {0:?}: the value there is a scalar, not a map or a list (sops: \"Unsupported type\")")]
    Scalar(Component),
    #[error(
        "component {0:?}: a key applied to a list (sops crashes here); use an index, e.g. [0]"
    )]
    KeyOnList(Component),
    #[error("component {0:?}: a negative index (sops crashes here)")]
    NegativeIndex(Component),
    #[error("{0}")]
    Put(#[from] PutError),
}

/// What `set` does to the text.
#[derive(Debug)]
pub struct Outcome {
    pub edits: Vec<Edit>,
    /// sops' `changed`: false only when the value there already equals VALUE
    /// (`--idempotent` then writes nothing).
    pub changed: bool,
}

/// VALUE as sops reads it: JSON, parsed by the JSON store so its strings are
/// zeroizing and its numbers floats, as Go's decoder makes them.
pub fn parse_value(text: &str) -> Result<Node, ValueError> {
    // Go's decoder skips JSON whitespace around the value; nothing else.
    let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
    let store = Format::Json.store();
    if trimmed.starts_with('{') {
        let doc = store.parse(trimmed).map_err(|_| ValueError::NotJson)?;
        return doc
            .docs
            .into_iter()
            .next()
            .map(Node::Map)
            .ok_or(ValueError::NotJson);
    }
    // A scalar or a list: parse it as the one member of an object, and make
    // sure it is exactly the text given (`1, "b": 2` would be two members).
    let prefix = "{\"v\": ";
    let wrapped = Zeroizing::new(format!("{prefix}{trimmed}}}"));
    let doc = store.parse(&wrapped).map_err(|_| ValueError::NotJson)?;
    let mut root = doc.docs.into_iter().next().ok_or(ValueError::NotJson)?;
    if root.items.len() != 1 {
        return Err(ValueError::NotJson);
    }
    let Some(MapItem::Entry(entry)) = root.items.pop() else {
        return Err(ValueError::NotJson);
    };
    let span = match &entry.value {
        Node::Leaf(l) => l.span.clone(),
        Node::List(l) => l.span.clone(),
        Node::Map(m) => m.span.clone(),
    };
    if span != (prefix.len()..prefix.len() + trimmed.len()) {
        return Err(ValueError::NotJson);
    }
    if matches!(entry.value, Node::List(_)) {
        return Err(ValueError::TopLevelList);
    }
    Ok(entry.value)
}

/// The edits that set `path` to `value` in the first document of `doc` (the
/// plaintext `src` of `store`'s format), as sops' `TreeBranch.Set` would.
pub fn set(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    path: &[Component],
    value: &Node,
) -> Result<Outcome, SetError> {
    if path.is_empty() {
        return Err(SetError::EmptyPath);
    }
    if path.len() >= MAX_DEPTH {
        return Err(SetError::TooDeep);
    }
    let root = doc.docs.first().ok_or(SetError::NoDocument)?;
    let cx = Cx { store, src, doc };
    cx.set_in_map(root, 0, path, value)
}

/// The edits that remove `path` from the first document of `doc`, as sops'
/// `TreeBranch.Unset` would.
pub fn unset(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    path: &[Component],
) -> Result<Vec<Edit>, UnsetError> {
    if path.is_empty() {
        return Err(UnsetError::EmptyPath);
    }
    let Some(root) = doc.docs.first() else {
        return Err(UnsetError::NotFound(not_found_key(&path[0])));
    };
    let cx = Cx { store, src, doc };
    cx.unset_in_map(root, 0, path)
}

struct Cx<'a> {
    store: &'a dyn Store,
    src: &'a str,
    doc: &'a Document,
}

/// The first entry of `map` whose key is `key`, as sops finds it.
fn find<'a>(map: &'a Map, key: &[u8]) -> Option<(usize, &'a Entry)> {
    map.items
        .iter()
        .enumerate()
        .find_map(|(i, item)| match item {
            MapItem::Entry(e) if e.key.as_bytes() == key => Some((i, e)),
            _ => None,
        })
}

/// The `n`-th value of `list` (comments do not count), with its item index.
fn nth(list: &List, n: usize) -> Option<(usize, &Node)> {
    list.items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item {
            ListItem::Node(node) => Some((i, node)),
            ListItem::Comment(_) => None,
        })
        .nth(n)
}

fn not_found_key(c: &Component) -> String {
    match c {
        Component::Key(k) => format!("Key not found: {}", String::from_utf8_lossy(k)),
        // sops formats the index with %s: "Key not found: %!s(int=0)".
        Component::Index(i) => format!("Key not found: [{i}] (this is a map)"),
    }
}

impl Cx<'_> {
    fn put(&self, slot: Slot<'_>, value: &Node) -> Result<Vec<Edit>, PutError> {
        self.store.put(self.src, self.doc, slot, value)
    }

    fn set_in_map(
        &self,
        map: &Map,
        depth: usize,
        path: &[Component],
        value: &Node,
    ) -> Result<Outcome, SetError> {
        let Some((first, rest)) = path.split_first() else {
            return Err(SetError::EmptyPath);
        };
        let Component::Key(key) = first else {
            // sops builds a list for the missing "entry" and drops it: nothing
            // changes, but the file counts as changed.
            return Ok(Outcome {
                edits: Vec::new(),
                changed: true,
            });
        };
        match find(map, key) {
            Some((item, entry)) => {
                let slot = Slot::Entry { map, item, depth };
                if rest.is_empty() {
                    self.replace(&entry.value, slot, value)
                } else {
                    self.set_in_node(&entry.value, slot, depth + 1, rest, value)
                }
            }
            None => {
                let key =
                    std::str::from_utf8(key).map_err(|_| SetError::KeyNotText(first.clone()))?;
                if depth == 0 && key == "sops" {
                    return Err(SetError::Metadata);
                }
                let new = build(rest, value)?;
                let edits = self.put(Slot::NewEntry { map, key, depth }, &new)?;
                Ok(Outcome {
                    edits,
                    changed: true,
                })
            }
        }
    }

    fn set_in_list(
        &self,
        list: &List,
        depth: usize,
        path: &[Component],
        value: &Node,
    ) -> Result<Outcome, SetError> {
        let Some((first, rest)) = path.split_first() else {
            return Err(SetError::EmptyPath);
        };
        let index = match first {
            Component::Key(_) => return Err(SetError::KeyOnList(first.clone())),
            Component::Index(i) if *i < 0 => return Err(SetError::NegativeIndex(first.clone())),
            Component::Index(i) => usize::try_from(*i).unwrap_or(usize::MAX),
        };
        match nth(list, index) {
            Some((item, node)) => {
                let slot = Slot::Item { list, item, depth };
                if rest.is_empty() {
                    self.replace(node, slot, value)
                } else {
                    self.set_in_node(node, slot, depth + 1, rest, value)
                }
            }
            // Past the end: appended, whatever the index (sops does the same).
            None => {
                let new = build(rest, value)?;
                let edits = self.put(Slot::NewItem { list, depth }, &new)?;
                Ok(Outcome {
                    edits,
                    changed: true,
                })
            }
        }
    }

    /// Continue `path` at `node`, which sits at `slot`.
    fn set_in_node(
        &self,
        node: &Node,
        slot: Slot<'_>,
        depth: usize,
        path: &[Component],
        value: &Node,
    ) -> Result<Outcome, SetError> {
        match node {
            Node::Map(m) => self.set_in_map(m, depth, path, value),
            Node::List(l) => self.set_in_list(l, depth, path, value),
            // A scalar in the way is replaced by the structure the path names.
            Node::Leaf(_) => {
                let new = build(path, value)?;
                self.replace(node, slot, &new)
            }
        }
    }

    fn replace(&self, old: &Node, slot: Slot<'_>, new: &Node) -> Result<Outcome, SetError> {
        if equals(old, new) {
            return Ok(Outcome {
                edits: Vec::new(),
                changed: false,
            });
        }
        Ok(Outcome {
            edits: self.put(slot, new)?,
            changed: true,
        })
    }

    fn unset_in_node(
        &self,
        node: &Node,
        depth: usize,
        path: &[Component],
    ) -> Result<Vec<Edit>, UnsetError> {
        match node {
            Node::Map(m) => self.unset_in_map(m, depth, path),
            Node::List(l) => self.unset_in_list(l, depth, path),
            Node::Leaf(_) => Err(path
                .first()
                .map_or(UnsetError::EmptyPath, |c| UnsetError::Scalar(c.clone()))),
        }
    }

    fn unset_in_map(
        &self,
        map: &Map,
        depth: usize,
        path: &[Component],
    ) -> Result<Vec<Edit>, UnsetError> {
        let Some((first, rest)) = path.split_first() else {
            return Err(UnsetError::EmptyPath);
        };
        let found = match first {
            Component::Key(key) => find(map, key),
            Component::Index(_) => None,
        };
        let Some((item, entry)) = found else {
            return Err(UnsetError::NotFound(not_found_key(first)));
        };
        if rest.is_empty() {
            Ok(self
                .store
                .take(self.src, self.doc, Slot::Entry { map, item, depth })?)
        } else {
            self.unset_in_node(&entry.value, depth + 1, rest)
        }
    }

    fn unset_in_list(
        &self,
        list: &List,
        depth: usize,
        path: &[Component],
    ) -> Result<Vec<Edit>, UnsetError> {
        let Some((first, rest)) = path.split_first() else {
            return Err(UnsetError::EmptyPath);
        };
        let index = match first {
            Component::Key(_) => return Err(UnsetError::KeyOnList(first.clone())),
            Component::Index(i) if *i < 0 => return Err(UnsetError::NegativeIndex(first.clone())),
            Component::Index(i) => usize::try_from(*i).unwrap_or(usize::MAX),
        };
        let Some((item, node)) = nth(list, index) else {
            return Err(UnsetError::NotFound(format!("Index {index} out of bounds")));
        };
        if rest.is_empty() {
            Ok(self
                .store
                .take(self.src, self.doc, Slot::Item { list, item, depth })?)
        } else {
            self.unset_in_node(node, depth + 1, rest)
        }
    }
}

/// sops' `valueFromPathAndLeaf`: `value` under the rest of a path that does not
/// exist yet; a key makes a one-entry map, an index a one-item list.
fn build(path: &[Component], value: &Node) -> Result<Node, SetError> {
    let mut node = value.clone();
    for c in path.iter().rev() {
        node = match c {
            Component::Key(k) => {
                let key = std::str::from_utf8(k).map_err(|_| SetError::KeyNotText(c.clone()))?;
                Node::Map(Map {
                    items: vec![MapItem::Entry(Entry {
                        key: key.to_string(),
                        key_span: 0..0,
                        value: node,
                        span: 0..0,
                        line: 0,
                    })],
                    flow: false,
                    span: 0..0,
                })
            }
            Component::Index(_) => Node::List(List {
                items: vec![ListItem::Node(node)],
                flow: false,
                span: 0..0,
            }),
        };
    }
    Ok(node)
}

/// sops' `equals`: same kind, same keys in the same order (comments count,
/// and a JSON VALUE has none), same scalar type and value.
pub fn equals(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Map(x), Node::Map(y)) => {
            x.items.len() == y.items.len()
                && x.items.iter().zip(&y.items).all(|pair| match pair {
                    (MapItem::Entry(p), MapItem::Entry(q)) => {
                        p.key == q.key && equals(&p.value, &q.value)
                    }
                    (MapItem::Comment(p), MapItem::Comment(q)) => p.text == q.text,
                    _ => false,
                })
        }
        (Node::List(x), Node::List(y)) => {
            x.items.len() == y.items.len()
                && x.items.iter().zip(&y.items).all(|pair| match pair {
                    (ListItem::Node(p), ListItem::Node(q)) => equals(p, q),
                    (ListItem::Comment(p), ListItem::Comment(q)) => p.text == q.text,
                    _ => false,
                })
        }
        (Node::Leaf(x), Node::Leaf(y)) => x.value == y.value,
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Helpers the stores share

/// Start of the line holding byte `at`.
pub(crate) fn line_start(src: &str, at: usize) -> usize {
    src[..at.min(src.len())].rfind('\n').map_or(0, |i| i + 1)
}

/// Just after the line break ending the line that holds byte `at` (the end of
/// the text when that line has none).
pub(crate) fn after_line(src: &str, at: usize) -> usize {
    let at = at.min(src.len());
    src[at..].find('\n').map_or(src.len(), |i| at + i + 1)
}

/// Column (in bytes) of `at` on its line.
pub(crate) fn column(src: &str, at: usize) -> usize {
    at.min(src.len()) - line_start(src, at)
}

/// The map entries of `map`.
pub(crate) fn entries(map: &Map) -> impl Iterator<Item = &Entry> {
    map.items.iter().filter_map(|i| match i {
        MapItem::Entry(e) => Some(e),
        MapItem::Comment(_) => None,
    })
}

/// The values of `list`.
pub(crate) fn values(list: &List) -> impl Iterator<Item = &Node> {
    list.items.iter().filter_map(|i| match i {
        ListItem::Node(n) => Some(n),
        ListItem::Comment(_) => None,
    })
}

/// The byte span of a node's text.
pub(crate) fn span_of(node: &Node) -> std::ops::Range<usize> {
    match node {
        Node::Map(m) => m.span.clone(),
        Node::List(l) => l.span.clone(),
        Node::Leaf(l) => l.span.clone(),
    }
}

mod flat;
mod json;
#[cfg(test)]
mod tests;
mod yaml;

pub(crate) use flat::{dotenv_put, dotenv_take, ini_put, ini_take};
pub(crate) use json::{put as json_put, take as json_take};
pub(crate) use yaml::{put as yaml_put, take as yaml_take};
