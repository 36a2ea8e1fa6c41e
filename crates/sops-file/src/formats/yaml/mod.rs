//! The YAML store: sops' YAML semantics (go-yaml v3 typing, comments as leaves,
//! multi-document streams) on top of saphyr-parser, with exact byte spans so that
//! encryption and decryption only ever replace scalar texts.
//!
//! Submodules: [`events`] runs saphyr; [`tree`] builds the span-carrying tree and
//! refuses what sops cannot round-trip; [`scan`] fixes up spans and finds comments;
//! [`comments`] decides which collection each comment belongs to (its AAD);
//! [`resolve`] types plain scalars like go-yaml v3; [`render`] produces replacement
//! text; [`metadata`] adds and removes the `sops:` entry.
//!
//! # Round trip and its normalizations
//!
//! Encrypted leaves keep their style as a marker (plain → `ENC[..]`, or `'ENC[..]'`
//! inside flow collections; `'..'`/`".."` stay quoted; block scalars become
//! `|-`/`>-` blocks), so `decrypt(encrypt(x)) == x` byte for byte, except for these
//! spellings, which come back normalized (each has a unit test, `normalizes_*`):
//!
//! * **Integers** not in plain decimal form whose text sops cannot carry: sops
//!   stores an int as decimal, so `0x1F` → `31`, `0o17`/`017` → `15`, `0b101` → `5`,
//!   `1_000` → `1000`, `+1` → `1` (when decrypting a file written by sops; our own
//!   files carry the spelling, see below).
//! * **Floats**: sops stores Go `'f',-1` text: `1.50` → `1.5`, `1e3` → `1000.0`,
//!   `2.0` → `2.0` (kept float by appending `.0`), `.Inf`/`+.inf` → `.inf`,
//!   `-.INF` → `-.inf`, `.NaN` → `.nan`.
//! * **Bools**: `True`/`TRUE` → `true`, `False`/`FALSE` → `false`.
//! * **Timestamps**: sops stores RFC3339Nano: `2001-12-14t21:59:43.10-05:00` →
//!   `2001-12-14T21:59:43.1-05:00`, `2001-12-14 21:59:43.10` →
//!   `2001-12-14T21:59:43.1Z`; a date at midnight UTC (`2023-01-02`,
//!   `2023-1-2`) → `2023-01-02`.
//!
//!   The spelling passed to `plain_leaf` is whatever the sops layer kept; when it
//!   is the original text (which still reads back as the same value) it is written
//!   verbatim and none of the above applies.
//! * **Double-quoted strings** are re-escaped minimally: `"\x41"` → `"A"`,
//!   `"\u00e9"` → `"é"`, `"\/"` → `"/"`; escapes of printable characters are lost.
//! * **Multi-line plain and quoted scalars** come back on one line (the folding
//!   is lost): a plain scalar as plain text if it can be, a quoted one with the same
//!   quotes; a single-quoted string containing a line break comes back
//!   double-quoted with `\n`.
//! * **Folded blocks** (`>`) are re-folded with one paragraph per line: wrapped
//!   lines are joined; lines starting with whitespace fall back to a literal block.
//! * **Block scalars**: `|+`/`>+` whose value ends in exactly one line break
//!   become `|`/`>`; whitespace-only lines inside a block are written empty
//!   (they must be empty by value anyway) and trailing blank lines that are not part
//!   of the value keep their bytes, but blank lines written with spaces inside a
//!   block's value come back without those spaces.
//! * **Plain strings that need quotes** after decryption (only possible with sops
//!   files or changed values) are double-quoted, or single-quoted in flow context.
//!
//! # Refused input
//!
//! Anchors, aliases and merge keys (sops expands them, so each copy would get its own
//! AAD and a file written with them would not decrypt with sops), custom tags,
//! non-string and duplicate keys, integers in the uint64 range, an empty document in
//! a stream, a non-mapping document root, `!!binary` that is not UTF-8, and a
//! comment on a block scalar's header line.

mod comments;
mod events;
mod metadata;
mod outline;
pub(crate) mod render;
mod resolve;
mod scan;
mod tree;

#[cfg(test)]
mod tests;

use zeroize::Zeroizing;

use super::{
    Comment, Document, Edit, Entry, FormatError, Leaf, Lean, List, ListItem, Map, MapItem, Node,
    Scalar, Store, Style, Value,
};
use scan::Source;
use tree::{Built, SkNode};

pub(crate) use outline::Outline;

pub(crate) use events::flow_limit;

pub struct YamlStore;

impl Store for YamlStore {
    fn parse(&self, src: &str) -> Result<Document, FormatError> {
        parse(src)
    }

    /// Plain strings whose text is their value stay in the source.
    fn parse_lean(&self, src: &str, lean: Lean) -> Result<Document, FormatError> {
        read(src, Some(lean), true)
    }

    /// Everything [`parse`] refuses, it refuses while building (placing the
    /// comments and converting the built tree cannot fail): so the tree is not made.
    fn check(&self, src: &str) -> Result<(), FormatError> {
        let source = Source::new(src);
        refuse_text(&source)?;
        tree::check(&source, events::Events::new(&source))
    }

    fn encrypted_leaf(&self, leaf: &Leaf, enc: &str) -> String {
        render::encrypted(leaf, enc)
    }

    fn plain_leaf(&self, leaf: &Leaf, value: &Scalar, spelling: &str) -> String {
        render::plain(leaf, value, spelling)
    }

    fn list_comment(&self, src: &str, leaf: &Leaf, text: &str) -> Option<Edit> {
        if !leaf.context.in_list || leaf.context.in_flow {
            return None;
        }
        let b = src.as_bytes();
        let mut i = leaf.span.start.min(b.len());
        while i > 0 && matches!(b[i - 1], b' ' | b'\t') {
            i -= 1;
        }
        if i == 0 || b[i - 1] != b'-' {
            return None;
        }
        Some(Edit::replace(i - 1..leaf.span.end, format!("#{text}")))
    }

    fn insert_metadata(&self, src: &str, doc: &Document, meta: &Value) -> Vec<Edit> {
        let step = indent_step(src, doc);
        let ends = doc_ends(src, doc);
        metadata::insert(src, doc, outline_of(doc), meta, step, &ends)
    }

    fn remove_metadata(&self, src: &str, doc: &Document) -> Vec<Edit> {
        metadata::remove(src, doc, outline_of(doc))
    }

    fn put(
        &self,
        src: &str,
        doc: &Document,
        slot: crate::formats::set::Slot<'_>,
        value: &crate::formats::Node,
    ) -> Result<Vec<Edit>, crate::formats::set::PutError> {
        crate::formats::set::yaml_put(self, src, doc, slot, value, indent_step(src, doc))
    }

    fn take(
        &self,
        src: &str,
        doc: &Document,
        slot: crate::formats::set::Slot<'_>,
    ) -> Result<Vec<Edit>, crate::formats::set::PutError> {
        crate::formats::set::yaml_take(src, doc, slot)
    }
}

/// The first `\r` that is not part of a `\r\n`. YAML (go-yaml as saphyr) breaks
/// lines there too, but the byte-level scans that find where a block scalar or a
/// comment ends only know `\n` (found by fuzzing: a folded block whose lines
/// were broken by a lone `\r` was encrypted only in part).
fn bare_cr(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    b.iter()
        .enumerate()
        .find(|&(i, &c)| c == b'\r' && b.get(i + 1) != Some(&b'\n'))
        .map(|(i, _)| i)
}

/// Read `src` into the built tree, refusing what sops cannot round-trip;
/// `lean`: as [`tree::build_lean`].
fn build_lean(src: &Source<'_>, lean: Option<Lean>) -> Result<Built, FormatError> {
    refuse_text(src)?;
    tree::build_lean(src, events::Events::new(src), lean)
}

/// What is refused before the text is parsed: an empty text, one too long
/// for the tree's positions, a bare `\r`.
fn refuse_text(src: &Source<'_>) -> Result<(), FormatError> {
    let text = src.text;
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Err(FormatError::Empty { format: "yaml" });
    }
    if text.len() > tree::MAX_TEXT {
        return Err(FormatError::Unsupported {
            line: 1,
            column: 1,
            message: format!(
                "the YAML text is {} bytes long; git-sops reads YAML texts of up to {} bytes \
                 (4 GiB): split the file",
                text.len(),
                tree::MAX_TEXT
            ),
        });
    }
    if let Some(at) = bare_cr(text) {
        let (line, column) = src.line_col(at);
        return Err(FormatError::Unsupported {
            line,
            column,
            message: "a carriage return (\\r) that is not followed by a line feed: YAML reads it \
                      as a line break, which git-sops cannot keep in place; use \\n or \\r\\n \
                      line endings"
                .to_string(),
        });
    }
    Ok(())
}

/// Parse a YAML stream into one tree per document.
pub fn parse(text: &str) -> Result<Document, FormatError> {
    read(text, None, false)
}

/// [`parse`]; `lean`: as [`tree::build_lean`]. With `lean` and `hollow`, the
/// document is hollow: its top-level collections are read by the walk from the
/// outline of the file ([`Outline`]; every other use of a document wants it
/// whole).
fn read(text: &str, lean: Option<Lean>, hollow: bool) -> Result<Document, FormatError> {
    let src = Source::new(text);
    let mut built = build_lean(&src, lean)?;
    let raw = scan::find_comments(&src, &built.opaque);
    let placements = comments::place(&src, &mut built, &raw);
    for (c, p) in raw.iter().zip(placements) {
        let comment = Comment {
            text: Zeroizing::new(text.get(c.text.clone()).unwrap_or("").to_string()),
            span: c.text.clone(),
            line: src.line_of(c.hash) + 1,
        };
        if let Some(coll) = built.colls.get_mut(p.coll) {
            coll.comments.push((p.sort, comment));
        }
    }
    // Only the comments needed the scalar ranges: freed before the tree is
    // made (issue 18).
    built.opaque = Vec::new();
    let crlf = uses_crlf(text);
    let step = detect_step(&built);
    let mut conv = Convert {
        src: &src,
        built: &mut built,
        crlf,
        step,
    };
    let roots = conv.built.roots.clone();
    let newline = if crlf { "\r\n" } else { "\n" };
    let Some(lean) = lean.filter(|_| hollow) else {
        let docs = roots.iter().map(|&r| conv.map(r, None)).collect();
        return Ok(Document {
            docs,
            newline,
            hollow: None,
        });
    };
    let mut tops = Vec::new();
    let docs = roots
        .iter()
        .map(|&r| conv.map(r, Some(&mut tops)))
        .collect();
    let outline = Outline::new(built, src.into_lines(), crlf, step, tops);
    Ok(Document {
        docs,
        newline,
        hollow: Some(crate::formats::Hollow {
            lean,
            yaml: Some(std::sync::Arc::new(outline)),
        }),
    })
}

fn uses_crlf(text: &str) -> bool {
    text.find('\n')
        .is_some_and(|i| i > 0 && text.as_bytes()[i - 1] == b'\r')
}

/// The indentation step of the first nested block collection under a block map.
fn detect_step(built: &Built) -> usize {
    let mut colls: Vec<&tree::Coll> = built.colls.iter().collect();
    colls.sort_by_key(|c| c.start);
    for c in colls {
        if c.flow || c.items.is_empty() {
            continue;
        }
        let Some(p) = c.parent.map(|p| &built.colls[p]) else {
            continue;
        };
        if p.flow || !p.is_map {
            continue;
        }
        if c.indent > p.indent {
            return c.indent - p.indent;
        }
    }
    4
}

struct Convert<'b, 's> {
    src: &'b Source<'s>,
    built: &'b mut Built,
    crlf: bool,
    step: usize,
}

/// The [`Leaf`] of `leaf`, an item of collection `coll` of `built`.
fn leaf_of(
    src: &Source<'_>,
    built: &Built,
    coll: usize,
    leaf: tree::BLeaf,
    crlf: bool,
    step: usize,
) -> Leaf {
    let (line, column) = src.line_col(leaf.span.start);
    let mut leaf = leaf.into_leaf(line, column);
    let block_parent = built.colls.get(coll).map_or(0, |c| c.byte_indent);
    let child = if built.colls.get(coll).is_some_and(|c| c.is_map) {
        block_parent + step
    } else {
        block_parent + 2
    };
    let indent = match leaf.style {
        Style::Literal | Style::Folded if leaf.context.indent > 0 => leaf.context.indent,
        _ => child,
    };
    leaf.context.indent = indent;
    leaf.context.block_parent = block_parent;
    leaf.context.crlf = crlf;
    leaf
}

impl Convert<'_, '_> {
    fn leaf(&self, coll: usize, leaf: tree::BLeaf) -> Leaf {
        leaf_of(self.src, self.built, coll, leaf, self.crlf, self.step)
    }

    fn node(&mut self, coll: usize, node: SkNode) -> Node {
        match node {
            SkNode::Leaf(l) => Node::Leaf(self.leaf(coll, l.unpack())),
            // Only a tree that is checked has these, and it is never converted.
            SkNode::Checked(_) => Node::Map(Map::default()),
            SkNode::Coll(id) => {
                if self.built.colls[id].is_map {
                    Node::Map(self.map(id, None))
                } else {
                    Node::List(self.list(id))
                }
            }
        }
    }

    /// The map of collection `id`. With `tops` (a hollow document's root),
    /// the value of each entry other than `sops` that is a collection is left
    /// in the outline: an empty placeholder with its span, recorded in `tops`.
    fn map(&mut self, id: usize, mut tops: Option<&mut Vec<(usize, usize)>>) -> Map {
        let (items, flow, span) = self.interleave(id, MapItem::Comment, |this, item| {
            let text = this.src.text;
            let (key, key_span) = match (item.key(text), item.key_end()) {
                (Some(key), Some(end)) => (key.to_string(), item.start()..end),
                _ => Default::default(),
            };
            let (start, end) = (item.start(), item.end());
            let value = match (item.node, tops.as_deref_mut()) {
                (SkNode::Coll(c), Some(tops)) if key != "sops" => this.placeholder(c, tops),
                (node, _) => this.node(id, node),
            };
            MapItem::Entry(Entry {
                key,
                key_span,
                value,
                span: start..end,
                line: this.src.line_of(start) + 1,
            })
        });
        Map { items, flow, span }
    }

    /// The placeholder of collection `id` in a hollow document.
    fn placeholder(&self, id: usize, tops: &mut Vec<(usize, usize)>) -> Node {
        let Some(c) = self.built.colls.get(id) else {
            return Node::Map(Map::default());
        };
        tops.push((c.start, id));
        let (flow, span) = (c.flow, c.start..c.end);
        if c.is_map {
            Node::Map(Map {
                items: Vec::new(),
                flow,
                span,
            })
        } else {
            Node::List(List {
                items: Vec::new(),
                flow,
                span,
            })
        }
    }

    fn list(&mut self, id: usize) -> List {
        let (items, flow, span) = self.interleave(id, ListItem::Comment, |this, item| {
            ListItem::Node(this.node(id, item.node))
        });
        List { items, flow, span }
    }

    /// The items of collection `id` converted by `item`, with its comments
    /// (converted by `comment`) placed before the first item they precede;
    /// also whether it is a flow collection, and its span.
    fn interleave<T>(
        &mut self,
        id: usize,
        comment: impl Fn(Comment) -> T,
        mut item: impl FnMut(&mut Self, tree::Item) -> T,
    ) -> (Vec<T>, bool, crate::formats::Span) {
        let items = std::mem::take(&mut self.built.colls[id].items);
        let mut comments = std::mem::take(&mut self.built.colls[id].comments);
        // Taken out of the tree's list one at a time (the list is freed whole
        // once the document tree is made, issue 18).
        let taken = |this: &mut Self, k: usize| {
            this.built
                .items
                .get_mut(k)
                .map(std::mem::take)
                .unwrap_or_default()
        };
        comments.sort_by_key(|(s, _)| *s);
        let c = &self.built.colls[id];
        let (flow, span) = (c.flow, c.start..c.end);
        let mut out = Vec::with_capacity(items.len() + comments.len());
        let mut comments = comments.into_iter().peekable();
        for k in items {
            let it = taken(self, k);
            while let Some((_, c)) = comments.next_if(|(s, _)| *s <= it.start()) {
                out.push(comment(c));
            }
            out.push(item(self, it));
        }
        out.extend(comments.map(|(_, c)| comment(c)));
        (out, flow, span)
    }
}

/// The indentation step for inserted metadata: from the first nested block map.
fn indent_step(src: &str, doc: &Document) -> usize {
    fn col(src: &str, at: usize) -> usize {
        at - src[..at.min(src.len())].rfind('\n').map_or(0, |i| i + 1)
    }
    let outline = outline_of(doc);
    let find = |src: &str, map: &Map| -> Option<usize> {
        if map.flow {
            return None;
        }
        for item in &map.items {
            if let MapItem::Entry(e) = item {
                match &e.value {
                    Node::Map(m) if !m.flow => {
                        let first = match m.items.iter().find_map(|i| match i {
                            MapItem::Entry(first) => Some(first.key_span.start),
                            MapItem::Comment(_) => None,
                        }) {
                            // A hollow document's placeholder: its first key is in the outline.
                            None => outline.and_then(|o| o.first_item(m.span.start)),
                            found => found,
                        };
                        if let Some(first) = first {
                            let d = col(src, first) as i64 - col(src, e.key_span.start) as i64;
                            if d > 0 {
                                return Some(d as usize);
                            }
                        }
                    }
                    Node::List(l) if !l.flow => {
                        let d = col(src, l.span.start) as i64 - col(src, e.key_span.start) as i64;
                        if d > 0 {
                            return Some(d as usize);
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    };
    doc.docs.iter().find_map(|m| find(src, m)).unwrap_or(4)
}

/// The outline a hollow document's top-level collections are read from.
fn outline_of(doc: &Document) -> Option<&Outline> {
    doc.hollow.as_ref().and_then(|h| h.yaml.as_deref())
}

/// For each document: the offset where its content ends (the line of the `...` or
/// next `---` marker after its root, or the end of the text).
fn doc_ends(src: &str, doc: &Document) -> Vec<usize> {
    doc.docs
        .iter()
        .map(|root| doc_end(src, root.span.end))
        .collect()
}

/// Where a document whose root ends at `root_end` ends: the start of the line of
/// the next `...` or `---` marker, or the end of the text (where metadata is
/// inserted; comment binding sees it there too).
pub(super) fn doc_end(src: &str, root_end: usize) -> usize {
    let from = root_end.min(src.len());
    let mut pos = src[from..].find('\n').map_or(src.len(), |i| from + i + 1);
    while pos < src.len() {
        let rest = &src[pos..];
        let is_marker = (rest.starts_with("---") || rest.starts_with("..."))
            && rest[3..]
                .chars()
                .next()
                .is_none_or(|c| c == ' ' || c == '\t' || c == '\n' || c == '\r');
        if is_marker {
            return pos;
        }
        pos = rest.find('\n').map_or(src.len(), |i| pos + i + 1);
    }
    src.len()
}
