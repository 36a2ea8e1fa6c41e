//! [`Store::put`](crate::formats::Store::put) and `take` for YAML. A scalar
//! replacing a scalar is written in that leaf's own context (quoting style,
//! flow or block), as decryption writes values. Anything else is written in
//! the style of the collection it goes into: into a block mapping or sequence
//! as block lines at its members' column (nested levels one indentation step
//! of the file further, sequences indented under their key as sops writes
//! them), into a flow collection as flow text (`{a: 1, b: [x]}`). A removed
//! block entry or item takes its lines; a collection left empty becomes `{}`
//! or `[]`, as sops writes it.

use zeroize::Zeroizing;

use super::{after_line, column, entries, line_start, span_of, values, PutError, Slot};
use crate::formats::yaml::render;
use crate::formats::{go_format_float_g, Document, Edit, ListItem, MapItem, Node, Scalar, Store};

struct Cx<'a> {
    src: &'a str,
    nl: &'static str,
    step: usize,
}

/// A scalar as new text in block context: one line (a multi-line string is
/// double-quoted, so it fits wherever the old value ended).
fn scalar(v: &Scalar) -> String {
    match v {
        Scalar::Str(s) if s.contains('\n') => render::double_quoted(s),
        Scalar::Str(s) => render::go_yaml_string(s),
        // go-yaml writes a float in Go's shortest form, `1` for 1.0 included.
        Scalar::Float(f) if f.is_finite() => go_format_float_g(*f, false),
        other => render::canonical(other),
    }
}

/// A scalar inside a flow collection.
fn flow_scalar(v: &Scalar) -> String {
    match v {
        Scalar::Str(s) => {
            let plain = render::go_yaml_string(s);
            if plain == **s && render::plain_safe(s, true) {
                plain
            } else {
                render::double_quoted(s)
            }
        }
        other => scalar(other),
    }
}

fn flow_key(k: &str) -> String {
    flow_scalar(&Scalar::Str(Zeroizing::new(k.to_string())))
}

/// `node` as flow text.
fn flow(out: &mut String, node: &Node) {
    match node {
        Node::Leaf(l) => out.push_str(&flow_scalar(&l.value)),
        Node::Map(m) => {
            out.push('{');
            for (i, e) in entries(m).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&flow_key(&e.key));
                out.push_str(": ");
                flow(out, &e.value);
            }
            out.push('}');
        }
        Node::List(l) => {
            out.push('[');
            for (i, v) in values(l).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(out, v);
            }
            out.push(']');
        }
    }
}

fn pad(out: &mut String, col: usize) {
    out.extend(std::iter::repeat_n(' ', col));
}

impl Cx<'_> {
    /// What follows `key:` for `node` when the key sits at column `col`,
    /// with the final line break.
    fn after_key(&self, out: &mut String, node: &Node, col: usize) {
        match node {
            Node::Map(m) if entries(m).next().is_some() => {
                out.push_str(self.nl);
                self.block_map(out, m, col + self.step);
            }
            Node::List(l) if values(l).next().is_some() => {
                out.push_str(self.nl);
                self.block_list(out, l, col + self.step);
            }
            Node::Map(_) => {
                out.push_str(" {}");
                out.push_str(self.nl);
            }
            Node::List(_) => {
                out.push_str(" []");
                out.push_str(self.nl);
            }
            Node::Leaf(l) => {
                out.push(' ');
                out.push_str(&scalar(&l.value));
                out.push_str(self.nl);
            }
        }
    }

    fn block_map(&self, out: &mut String, map: &crate::formats::Map, col: usize) {
        for e in entries(map) {
            pad(out, col);
            out.push_str(&render::go_yaml_string(&e.key));
            out.push(':');
            self.after_key(out, &e.value, col);
        }
    }

    fn block_list(&self, out: &mut String, list: &crate::formats::List, col: usize) {
        for item in values(list) {
            self.block_item(out, item, col);
        }
    }

    /// One `- item` at column `col`, with its final line break.
    fn block_item(&self, out: &mut String, item: &Node, col: usize) {
        // Written as if indented two further, then `- ` over the first line's
        // indentation.
        let mut nested = Zeroizing::new(String::new());
        match item {
            Node::Map(m) if entries(m).next().is_some() => self.block_map(&mut nested, m, col + 2),
            Node::List(l) if values(l).next().is_some() => self.block_list(&mut nested, l, col + 2),
            Node::Map(_) => {
                pad(&mut nested, col + 2);
                nested.push_str("{}");
                nested.push_str(self.nl);
            }
            Node::List(_) => {
                pad(&mut nested, col + 2);
                nested.push_str("[]");
                nested.push_str(self.nl);
            }
            Node::Leaf(l) => {
                pad(&mut nested, col + 2);
                nested.push_str(&scalar(&l.value));
                nested.push_str(self.nl);
            }
        }
        pad(out, col);
        out.push_str("- ");
        out.push_str(nested.get(col + 2..).unwrap_or(""));
    }

    /// The end of a node's text, without trailing spaces and line breaks.
    fn end_of(&self, node_end: usize, floor: usize) -> usize {
        let mut end = node_end.min(self.src.len());
        while end > floor && matches!(self.src.as_bytes()[end - 1], b' ' | b'\t' | b'\n' | b'\r') {
            end -= 1;
        }
        end
    }

    /// The `:` after a block key.
    fn colon(&self, key_end: usize, value_start: usize) -> Option<usize> {
        let gap = self.src.get(key_end..value_start.max(key_end))?;
        gap.find(':').map(|i| key_end + i)
    }

    /// The `-` of a block sequence item whose node starts at `start`.
    fn dash(&self, start: usize) -> Option<usize> {
        let ls = line_start(self.src, start);
        self.src[ls..start].rfind('-').map(|i| ls + i)
    }

    /// Text that ends where an insertion after the line holding `end` goes:
    /// `text` (ending in a line break) after that line, or, when the file
    /// ends there without one, a line break and `text` without its own.
    fn insert_after_line(&self, end: usize, text: &str) -> Edit {
        let at = after_line(self.src, end);
        if at == self.src.len() && !self.src.ends_with('\n') {
            let body = text.strip_suffix(self.nl).unwrap_or(text);
            return Edit::insert(at, format!("{}{body}", self.nl));
        }
        Edit::insert(at, text.to_string())
    }
}

/// A scalar replacing a scalar leaf: in the leaf's own context.
fn leaf_text(store: &dyn Store, src: &str, leaf: &crate::formats::Leaf, v: &Scalar) -> String {
    let text = match v {
        Scalar::Float(f) if f.is_finite() => go_format_float_g(*f, false),
        Scalar::Str(s) => store.plain_leaf(leaf, v, s),
        other => store.plain_leaf(leaf, other, &render::canonical(other)),
    };
    // An implicit null (`a:`) has an empty span right after the `:`.
    if leaf.span.is_empty() && src[..leaf.span.start].ends_with(':') {
        format!(" {text}")
    } else {
        text
    }
}

pub(crate) fn put(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    slot: Slot<'_>,
    value: &Node,
    step: usize,
) -> Result<Vec<Edit>, PutError> {
    let cx = Cx {
        src,
        nl: doc.newline,
        step,
    };
    let layout = |m: &str| PutError::Layout(m.to_string());
    match slot {
        Slot::Entry { map, item, .. } => {
            let Some(MapItem::Entry(e)) = map.items.get(item) else {
                return Err(layout("no such entry"));
            };
            if let (Node::Leaf(old), Node::Leaf(new)) = (&e.value, value) {
                return Ok(vec![Edit::replace(
                    old.span.clone(),
                    leaf_text(store, src, old, &new.value),
                )]);
            }
            let old = span_of(&e.value);
            if map.flow
                || matches!(&e.value, Node::Map(m) if m.flow)
                || matches!(&e.value, Node::List(l) if l.flow)
            {
                let mut text = Zeroizing::new(String::new());
                flow(&mut text, value);
                return Ok(vec![Edit::replace(old, text.to_string())]);
            }
            let colon = cx
                .colon(e.key_span.end, old.start)
                .ok_or_else(|| layout("no `:` after the key"))?;
            let end = cx.end_of(old.end, colon + 1);
            let mut text = Zeroizing::new(String::new());
            cx.after_key(&mut text, value, column(src, e.span.start));
            let text = text.strip_suffix(cx.nl).unwrap_or(&text).to_string();
            Ok(vec![Edit::replace(colon + 1..end, text)])
        }
        Slot::Item { list, item, .. } => {
            let Some(ListItem::Node(old_node)) = list.items.get(item) else {
                return Err(layout("no such item"));
            };
            if let (Node::Leaf(old), Node::Leaf(new)) = (old_node, value) {
                return Ok(vec![Edit::replace(
                    old.span.clone(),
                    leaf_text(store, src, old, &new.value),
                )]);
            }
            let old = span_of(old_node);
            if list.flow {
                let mut text = Zeroizing::new(String::new());
                flow(&mut text, value);
                return Ok(vec![Edit::replace(old, text.to_string())]);
            }
            let dash = cx
                .dash(old.start)
                .ok_or_else(|| layout("no `-` before the item"))?;
            let end = cx.end_of(old.end, dash + 1);
            let mut text = Zeroizing::new(String::new());
            cx.block_item(&mut text, value, column(src, dash));
            let body = text.get(column(src, dash)..).unwrap_or("");
            let body = body.strip_suffix(cx.nl).unwrap_or(body);
            Ok(vec![Edit::replace(dash..end, body.to_string())])
        }
        Slot::NewEntry { map, key, .. } => {
            let last = entries(map).last();
            if map.flow {
                let mut text = Zeroizing::new(String::new());
                if last.is_some() {
                    text.push_str(", ");
                }
                text.push_str(&flow_key(key));
                text.push_str(": ");
                flow(&mut text, value);
                let at = last.map_or(map.span.start + 1, |e| e.span.end);
                return Ok(vec![Edit::insert(at, text.to_string())]);
            }
            let Some(last) = last else {
                // An empty top-level mapping (a document of comments only).
                if doc.docs.len() != 1 {
                    return Err(layout("an empty document in a multi-document file"));
                }
                let mut text = Zeroizing::new(String::new());
                text.push_str(&render::go_yaml_string(key));
                text.push(':');
                cx.after_key(&mut text, value, 0);
                return Ok(vec![cx.insert_after_line(src.len(), &text)]);
            };
            let first = entries(map)
                .next()
                .map_or(last.span.start, |e| e.span.start);
            let col = column(src, first);
            let mut text = Zeroizing::new(String::new());
            pad(&mut text, col);
            text.push_str(&render::go_yaml_string(key));
            text.push(':');
            cx.after_key(&mut text, value, col);
            let end = cx.end_of(last.span.end, last.span.start);
            Ok(vec![cx.insert_after_line(end, &text)])
        }
        Slot::NewItem { list, .. } => {
            let last = values(list).last();
            if list.flow {
                let mut text = Zeroizing::new(String::new());
                if last.is_some() {
                    text.push_str(", ");
                }
                flow(&mut text, value);
                let at = last.map_or(list.span.start + 1, |n| span_of(n).end);
                return Ok(vec![Edit::insert(at, text.to_string())]);
            }
            let (Some(first), Some(last)) = (values(list).next(), last) else {
                return Err(layout("an empty block sequence"));
            };
            let dash = cx
                .dash(span_of(first).start)
                .ok_or_else(|| layout("no `-` before the item"))?;
            let mut text = Zeroizing::new(String::new());
            cx.block_item(&mut text, value, column(src, dash));
            let end = cx.end_of(span_of(last).end, span_of(last).start);
            Ok(vec![cx.insert_after_line(end, &text)])
        }
    }
}

pub(crate) fn take(src: &str, doc: &Document, slot: Slot<'_>) -> Result<Vec<Edit>, PutError> {
    let cx = Cx {
        src,
        nl: doc.newline,
        step: 0,
    };
    let layout = |m: &str| PutError::Layout(m.to_string());
    // (member spans, index of the one to remove, flow, where the target starts
    // in block layout: the key or the `-`)
    let (members, index, flow, empty) = match slot {
        Slot::Entry { map, item, .. } => {
            let Some(MapItem::Entry(target)) = map.items.get(item) else {
                return Err(layout("no such entry"));
            };
            let members: Vec<_> = entries(map).map(|e| e.span.start..e.span.end).collect();
            let index = entries(map)
                .position(|e| std::ptr::eq(e, target))
                .ok_or_else(|| layout("no such entry"))?;
            (members, index, map.flow, "{}")
        }
        Slot::Item { list, item, .. } => {
            let Some(ListItem::Node(target)) = list.items.get(item) else {
                return Err(layout("no such item"));
            };
            let index = values(list)
                .position(|n| std::ptr::eq(n, target))
                .ok_or_else(|| layout("no such item"))?;
            let mut members = Vec::new();
            for n in values(list) {
                let s = span_of(n);
                let start = if list.flow {
                    s.start
                } else {
                    cx.dash(s.start)
                        .ok_or_else(|| layout("no `-` before the item"))?
                };
                members.push(start..s.end);
            }
            (members, index, list.flow, "[]")
        }
        _ => return Err(layout("nothing to remove")),
    };
    let target = members[index].clone();
    if flow {
        let range = if index > 0 {
            members[index - 1].end..target.end
        } else if let Some(next) = members.get(1) {
            target.start..next.start
        } else {
            target.start..target.end
        };
        return Ok(vec![Edit::replace(range, "")]);
    }
    let end = cx.end_of(target.end, target.start);
    if members.len() == 1 {
        // sops writes a collection left empty as `{}` / `[]`.
        return Ok(vec![Edit::replace(target.start..end, empty)]);
    }
    let ls = line_start(src, target.start);
    let shares_line = !src[ls..target.start].trim().is_empty();
    if shares_line {
        // `- a: 1` (the first entry after a dash): the next member moves up.
        if let Some(next) = members.get(index + 1) {
            return Ok(vec![Edit::replace(target.start..next.start, "")]);
        }
    }
    let to = after_line(src, end);
    if to == src.len() && !src.ends_with('\n') && ls > 0 {
        let back = if src[..ls].ends_with("\r\n") { 2 } else { 1 };
        return Ok(vec![Edit::replace(ls - back..to, "")]);
    }
    Ok(vec![Edit::replace(ls..to, "")])
}
