//! Adding and removing the top-level `sops:` entry.
//!
//! Insertion appends a block mapping at the end of every document (before a `...`
//! marker or the next `---`), laid out like sops writes it: the document's own
//! indentation step, sequences indented under their key, multi-line strings as
//! literal blocks, strings quoted only when they would not read back as strings.
//! A flow-mapping root gets `, sops: {...}` (JSON, which is valid flow YAML) before
//! its closing brace instead. Removal deletes exactly the lines of the entry, so
//! `remove(insert(x)) == x`, and also works on files sops wrote (where the entry may
//! sit anywhere in the top-level map).

use super::render::{
    body_and_trailing, canonical_float, chomp, double_quoted, literal_lines, plain_safe, printable,
};
use super::resolve;
use super::Outline;
use crate::formats::{Document, Edit, Map, MapItem, Node, Scalar, Value};

/// Where each document's content ends: before `...`/`---` lines or at the end.
pub fn insert(
    src: &str,
    doc: &Document,
    outline: Option<&Outline>,
    meta: &Value,
    step: usize,
    doc_ends: &[usize],
) -> Vec<Edit> {
    let nl = doc.newline;
    let mut edits = Vec::new();
    for (i, root) in doc.docs.iter().enumerate() {
        if root.flow {
            let close = root.span.end.saturating_sub(1);
            let json = crate::formats::json::one_line(meta);
            let text = if root.items.iter().any(|i| matches!(i, MapItem::Entry(_))) {
                format!(", sops: {json}")
            } else {
                format!("sops: {json}")
            };
            edits.push(Edit::insert(close, text));
            continue;
        }
        let at = doc_ends.get(i).copied().unwrap_or(src.len()).min(src.len());
        let mut block = String::new();
        block.push_str("sops:");
        emit_value(&mut block, meta, 0, step, nl, false);
        let before = &src[..at];
        let ends_with_break = before.is_empty() || before.ends_with('\n');
        // go-yaml makes comments right above `sops:` its head comments (so sops
        // would open them with the root's AAD); a blank line keeps them where
        // they were encrypted. Added whenever the document ends in a comment, so
        // removal knows to take exactly one blank line away again.
        let gap = if last_is_comment(root, outline, at) {
            nl
        } else {
            ""
        };
        let text = if ends_with_break {
            format!("{gap}{block}{nl}")
        } else {
            format!("{nl}{gap}{block}")
        };
        edits.push(Edit::insert(at, text));
    }
    edits
}

pub fn remove(src: &str, doc: &Document, outline: Option<&Outline>) -> Vec<Edit> {
    let mut edits = Vec::new();
    for root in &doc.docs {
        let Some(entry) = root.items.iter().find_map(|i| match i {
            MapItem::Entry(e) if e.key == "sops" => Some(e),
            _ => None,
        }) else {
            continue;
        };
        if root.flow {
            edits.push(remove_flow(src, root, entry.key_span.start, entry.span.end));
            continue;
        }
        let b = src.as_bytes();
        let mut start = entry.key_span.start;
        while start > 0 && b[start - 1] != b'\n' {
            start -= 1;
        }
        let mut end = value_end(entry).max(entry.span.end).min(src.len());
        while end < b.len() && b[end] != b'\n' {
            end += 1;
        }
        if last_is_comment(root, outline, start) {
            for blank in ["\r\n", "\n"] {
                if src[..start].ends_with(&format!("\n{blank}")) {
                    start -= blank.len();
                    break;
                }
            }
        }
        if end < b.len() {
            end += 1;
        } else if start > 0 {
            // The entry ends the file without a line break: drop the one before it.
            start -= 1;
            if start > 0 && b[start - 1] == b'\r' {
                start -= 1;
            }
        }
        // A document that held nothing but the metadata (sops' encryption of `{}`)
        // is an empty map again, not an empty file.
        let only_entry = !root
            .items
            .iter()
            .any(|i| matches!(i, MapItem::Entry(e) if e.key != "sops"));
        let text = if only_entry {
            format!("{{}}{}", doc.newline)
        } else {
            String::new()
        };
        edits.push(Edit::replace(start..end, text));
    }
    edits
}

/// Whether the last thing in `root` before byte `before` (other than a `sops`
/// entry) is a comment rather than a value. The collections a hollow
/// document left in its `outline` are read there, in the same order (ties go
/// to the later one). Recursion is bounded by the parser's depth limit.
fn last_is_comment(root: &Map, outline: Option<&Outline>, before: usize) -> bool {
    struct Last<'o> {
        before: usize,
        best: (usize, bool),
        outline: Option<&'o Outline>,
    }
    impl Last<'_> {
        fn consider(&mut self, end: usize, is_comment: bool) {
            if end <= self.before && end >= self.best.0 {
                self.best = (end, is_comment);
            }
        }
        fn map(&mut self, items: &[MapItem], top: bool) {
            for item in items {
                match item {
                    MapItem::Comment(c) => self.consider(c.span.end, true),
                    MapItem::Entry(e) if top && e.key == "sops" => {}
                    MapItem::Entry(e) => {
                        self.consider(e.key_span.end, false);
                        self.node(&e.value);
                    }
                }
            }
        }
        fn node(&mut self, node: &Node) {
            let placeholder = match node {
                Node::Map(m) if m.items.is_empty() => Some(m.span.start),
                Node::List(l) if l.items.is_empty() => Some(l.span.start),
                _ => None,
            };
            if let (Some(start), Some(outline)) = (placeholder, self.outline) {
                // A hollow document's placeholder: its contents are in the outline.
                outline.ends(start, &mut |end, is_comment| self.consider(end, is_comment));
                return;
            }
            match node {
                Node::Map(m) => self.map(&m.items, false),
                Node::List(l) => {
                    for item in &l.items {
                        match item {
                            crate::formats::ListItem::Comment(c) => self.consider(c.span.end, true),
                            crate::formats::ListItem::Node(n) => self.node(n),
                        }
                    }
                }
                Node::Leaf(leaf) => self.consider(leaf.span.end, false),
            }
        }
    }
    let mut last = Last {
        before,
        best: (0, false),
        outline,
    };
    last.map(&root.items, true);
    last.best.1
}

fn value_end(entry: &crate::formats::Entry) -> usize {
    match &entry.value {
        Node::Leaf(l) => l.span.end,
        Node::Map(m) => m.span.end,
        Node::List(l) => l.span.end,
    }
}

fn remove_flow(src: &str, root: &Map, key_start: usize, end: usize) -> Edit {
    let b = src.as_bytes();
    // Back over whitespace to a preceding comma, if any.
    let mut s = key_start;
    while s > root.span.start + 1 && matches!(b[s - 1], b' ' | b'\t' | b'\n' | b'\r') {
        s -= 1;
    }
    if s > root.span.start + 1 && b[s - 1] == b',' {
        return Edit::replace(s - 1..end, "");
    }
    // First entry: remove it and a following comma.
    let mut e = end;
    while e < b.len() && matches!(b[e], b' ' | b'\t' | b'\n' | b'\r') {
        e += 1;
    }
    if e < b.len() && b[e] == b',' {
        e += 1;
        while e < b.len() && matches!(b[e], b' ' | b'\t') {
            e += 1;
        }
        return Edit::replace(key_start..e, "");
    }
    Edit::replace(key_start..end, "")
}

fn key_text(k: &str) -> String {
    if plain_safe(k, false) && matches!(resolve::resolve_plain(k), Ok(Scalar::Str(_))) && k != "<<"
    {
        k.to_string()
    } else {
        double_quoted(k)
    }
}

/// `key:` for a key at column `col`. YAML allows implicit keys of at most 1024
/// characters; a longer one (a block read from a file that wrote it as an
/// explicit `? key`) is written explicitly too.
fn push_key(out: &mut String, k: &str, col: usize, nl: &str) {
    let text = key_text(k);
    if text.chars().count() > 1024 {
        out.push_str("? ");
        out.push_str(&text);
        out.push_str(nl);
        out.push_str(&" ".repeat(col));
    } else {
        out.push_str(&text);
    }
    out.push(':');
}

fn scalar_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => canonical_float(*f),
        Value::Str(s) => {
            if plain_safe(s, false)
                && s != "<<"
                && matches!(resolve::resolve_plain(s), Ok(Scalar::Str(_)))
            {
                s.clone()
            } else {
                double_quoted(s)
            }
        }
        Value::List(l) if l.is_empty() => "[]".to_string(),
        Value::Map(m) if m.is_empty() => "{}".to_string(),
        _ => return None,
    })
}

fn is_block_string(v: &Value) -> bool {
    matches!(v, Value::Str(s) if s.contains('\n')
        && !s.trim_end_matches('\n').is_empty()
        && s.chars().all(|c| matches!(c, '\n' | '\t') || printable(c))
        // The first line with text sets the block's indentation, so it must
        // not start with a space, and no line of spaces only may come before it.
        && s.split('\n').find(|l| !l.is_empty()).is_some_and(|l| !l.starts_with(' ')))
}

/// Emit a literal block for `s` (after a `key:` or `- `), content at `content_col`.
fn emit_block(out: &mut String, s: &str, content_col: usize, nl: &str) {
    let (body, trailing) = body_and_trailing(s);
    out.push_str(" |");
    out.push_str(chomp(body.is_empty(), trailing));
    literal_lines(out, body, trailing, &" ".repeat(content_col), nl);
}

/// Emit the value of a `key:` whose key starts at column `col` (the text so far ends
/// right after the colon). `in_item`: the key is in a sequence item's mapping, whose
/// block scalars sops indents from the dash.
fn emit_value(out: &mut String, v: &Value, col: usize, step: usize, nl: &str, in_item: bool) {
    if is_block_string(v) {
        if let Value::Str(s) = v {
            let content = if in_item {
                (col.saturating_sub(2) + step).max(col + 2)
            } else {
                col + step
            };
            emit_block(out, s, content, nl);
        }
        return;
    }
    if let Some(t) = scalar_text(v) {
        out.push(' ');
        out.push_str(&t);
        return;
    }
    match v {
        Value::Map(m) => {
            for (k, v) in m {
                out.push_str(nl);
                out.push_str(&" ".repeat(col + step));
                push_key(out, k, col + step, nl);
                emit_value(out, v, col + step, step, nl, false);
            }
        }
        Value::List(l) => {
            for item in l {
                out.push_str(nl);
                out.push_str(&" ".repeat(col + step));
                emit_item(out, item, col + step, step, nl);
            }
        }
        _ => {}
    }
}

/// Emit a sequence item whose dash is at column `dash` (the dash not yet written).
fn emit_item(out: &mut String, v: &Value, dash: usize, step: usize, nl: &str) {
    out.push('-');
    if is_block_string(v) {
        if let Value::Str(s) = v {
            emit_block(out, s, dash + step, nl);
        }
        return;
    }
    if let Some(t) = scalar_text(v) {
        out.push(' ');
        out.push_str(&t);
        return;
    }
    match v {
        Value::Map(m) => {
            for (i, (k, v)) in m.iter().enumerate() {
                if i == 0 {
                    out.push(' ');
                } else {
                    out.push_str(nl);
                    out.push_str(&" ".repeat(dash + 2));
                }
                push_key(out, k, dash + 2, nl);
                emit_value(out, v, dash + 2, step, nl, true);
            }
        }
        Value::List(l) => {
            for item in l {
                out.push_str(nl);
                out.push_str(&" ".repeat(dash + step));
                emit_item(out, item, dash + step, step, nl);
            }
        }
        _ => {}
    }
}
