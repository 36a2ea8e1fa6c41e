//! The tree walk shared by encryption, decryption and inspection: sops' walk order
//! (documents in order, maps and lists depth-first), the path of map keys (list
//! indices are not part of it) and the comment stack the comment selectors read.
//! The top-level `sops` metadata entry is not part of the tree and is skipped.

use crate::formats::{Comment, Document, Leaf, List, ListItem, Map, MapItem, Node};

/// What the walk hands to its visitor.
pub enum Visit<'a> {
    Leaf(&'a Leaf),
    Comment(&'a Comment),
}

/// The walk's position: map keys from the root, and the comment stack.
pub struct Position<'a> {
    pub path: Vec<&'a str>,
    pub comments: Vec<Vec<&'a str>>,
}

impl Position<'_> {
    pub fn aad(&self) -> String {
        aad(&self.path)
    }
}

/// sops' AAD for a path: every key followed by `:` (so the root is `:`).
pub fn aad(path: &[&str]) -> String {
    if path.is_empty() {
        return ":".to_string();
    }
    path.iter().flat_map(|k| [*k, ":"]).collect()
}

pub fn walk<'a, E>(
    doc: &'a Document,
    visit: &mut dyn FnMut(Visit<'a>, &Position<'a>) -> Result<(), E>,
) -> Result<(), E> {
    for root in &doc.docs {
        let mut pos = Position {
            path: Vec::new(),
            comments: Vec::new(),
        };
        walk_map(root, true, &mut pos, visit)?;
    }
    Ok(())
}

fn walk_map<'a, E>(
    map: &'a Map,
    top: bool,
    pos: &mut Position<'a>,
    visit: &mut dyn FnMut(Visit<'a>, &Position<'a>) -> Result<(), E>,
) -> Result<(), E> {
    pos.comments.push(Vec::new());
    for item in &map.items {
        match item {
            MapItem::Comment(c) => {
                push_comment(pos, c);
                visit(Visit::Comment(c), pos)?;
            }
            MapItem::Entry(e) if top && e.key == "sops" => {}
            MapItem::Entry(e) => {
                pos.path.push(&e.key);
                walk_node(&e.value, pos, visit)?;
                pos.path.pop();
                clear_level(pos);
            }
        }
    }
    pos.comments.pop();
    Ok(())
}

fn walk_list<'a, E>(
    list: &'a List,
    pos: &mut Position<'a>,
    visit: &mut dyn FnMut(Visit<'a>, &Position<'a>) -> Result<(), E>,
) -> Result<(), E> {
    pos.comments.push(Vec::new());
    for item in &list.items {
        match item {
            ListItem::Comment(c) => {
                push_comment(pos, c);
                visit(Visit::Comment(c), pos)?;
            }
            ListItem::Node(n) => {
                walk_node(n, pos, visit)?;
                clear_level(pos);
            }
        }
    }
    pos.comments.pop();
    Ok(())
}

fn walk_node<'a, E>(
    node: &'a Node,
    pos: &mut Position<'a>,
    visit: &mut dyn FnMut(Visit<'a>, &Position<'a>) -> Result<(), E>,
) -> Result<(), E> {
    match node {
        Node::Map(m) => walk_map(m, false, pos, visit),
        Node::List(l) => walk_list(l, pos, visit),
        Node::Leaf(leaf) => visit(Visit::Leaf(leaf), pos),
    }
}

fn push_comment<'a>(pos: &mut Position<'a>, c: &'a Comment) {
    if let Some(level) = pos.comments.last_mut() {
        level.push(c.text.as_str());
    }
}

fn clear_level(pos: &mut Position<'_>) {
    if let Some(level) = pos.comments.last_mut() {
        level.clear();
    }
}
