//! Building the span-carrying tree from saphyr's events, and refusing what sops
//! cannot round-trip.
//!
//! The builder walks the event stream once and fills an arena of collections
//! ([`Coll`]) whose items hold leaves with exact byte spans (fixed up with [`scan`]).
//! It also records what comment placement reads ([`super::comments`]): the
//! scalar texts no comment can start in, and where each document's last key or
//! value ends. Refusals (anchors, aliases, merge keys, custom tags,
//! non-string or duplicate keys, uint64 integers, comments after block headers)
//! happen here because this is where each construct is first seen with a position.
//!
//! The builder recurses once per nesting level, so it refuses collections nested
//! deeper than [`MAX_DEPTH`]; duplicate keys are found through a hash set of each
//! open mapping's keys, so a flat mapping costs linear time.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::ops::Range;

use saphyr_parser::ScalarStyle;
use zeroize::Zeroizing;

use super::events::{Ev, EvKind, Events};
use super::resolve::{self, ResolveError};
use super::scan::{self, pos32, Opaque, Source};
use crate::formats::{
    too_deep, Comment, FormatError, Leaf, LeafContext, Lean, Scalar, Span, Style, MAX_DEPTH,
};

/// A collection under construction.
#[derive(Debug)]
pub(crate) struct Coll {
    pub(crate) is_map: bool,
    pub flow: bool,
    pub parent: Option<usize>,
    pub start: usize,
    pub end: usize,
    /// Column (chars) of the first key (maps) or first dash (lists); for flow
    /// collections the column of the opening bracket.
    pub indent: usize,
    /// Byte column of the line start of keys/dashes (the same for block collections).
    pub(crate) byte_indent: usize,
    /// A block sequence whose dashes sit at its parent key's column.
    pub indentless: bool,
    /// Its items, in [`Built::items`] (set when the collection is complete).
    pub items: Range<usize>,
    pub comments: Vec<(usize, Comment)>,
}

#[derive(Debug)]
pub(crate) enum SkNode {
    Coll(usize),
    Leaf(PLeaf),
    /// A leaf only checked ([`check`]): where its text starts.
    Checked(usize),
}

/// A leaf as built: a [`Leaf`] without what is found when the tree is made
/// (its line and column, from the span; the context of its collection). The
/// tree keeps it packed ([`PLeaf`]).
#[derive(Debug)]
pub(crate) struct BLeaf {
    pub(crate) value: Scalar,
    pub(crate) span: Span,
    /// Column of a block scalar's content lines (0 for other styles).
    pub(crate) indent: usize,
    pub(crate) style: Style,
    pub(crate) in_flow: bool,
    pub(crate) in_list: bool,
    pub(crate) text_follows: bool,
    pub(crate) no_break_after: bool,
    pub(crate) str_in_source: bool,
}

impl BLeaf {
    /// The leaf, at `line` and `column` (1-based), with the rest of its
    /// context left at its default.
    pub(crate) fn into_leaf(self, line: usize, column: usize) -> Leaf {
        Leaf {
            value: self.value,
            span: self.span,
            style: self.style,
            line,
            column,
            context: LeafContext {
                in_flow: self.in_flow,
                indent: self.indent,
                in_list: self.in_list,
                text_follows: self.text_follows,
                no_break_after: self.no_break_after,
                str_in_source: self.str_in_source,
                ..LeafContext::default()
            },
        }
    }
}

/// A [`BLeaf`] as the built tree keeps it: positions as `u32` (a YAML text
/// is refused from 4 GiB on, [`MAX_TEXT`]), flags in a byte, and the value
/// inline unless it is a string held in the tree. A large file's tree is
/// mostly leaves: packed, a leaf takes a third of its unpacked size (issue 18).
#[derive(Debug)]
pub(crate) struct PLeaf {
    start: u32,
    len: u32,
    indent: u32,
    style: Style,
    flags: u8,
    value: PValue,
}

#[derive(Debug)]
enum PValue {
    /// `Scalar::Str` of nothing: a string left in the source, or an empty one.
    EmptyStr,
    Null,
    Bool(bool),
    Int(i64),
    Other(Box<Scalar>),
}

const IN_FLOW: u8 = 1;
const IN_LIST: u8 = 2;
const TEXT_FOLLOWS: u8 = 4;
const NO_BREAK_AFTER: u8 = 8;
const STR_IN_SOURCE: u8 = 16;

/// The largest YAML text read: positions are kept as `u32`.
pub(crate) const MAX_TEXT: usize = u32::MAX as usize - 1;

impl PLeaf {
    pub(crate) fn pack(leaf: BLeaf) -> PLeaf {
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        let value = match leaf.value {
            Scalar::Str(s) if s.is_empty() => PValue::EmptyStr,
            Scalar::Null => PValue::Null,
            Scalar::Bool(b) => PValue::Bool(b),
            Scalar::Int(i) => PValue::Int(i),
            other => PValue::Other(Box::new(other)),
        };
        PLeaf {
            start: pos32(leaf.span.start),
            len: pos32(leaf.span.len()),
            indent: pos32(leaf.indent),
            style: leaf.style,
            flags: flag(leaf.in_flow, IN_FLOW)
                | flag(leaf.in_list, IN_LIST)
                | flag(leaf.text_follows, TEXT_FOLLOWS)
                | flag(leaf.no_break_after, NO_BREAK_AFTER)
                | flag(leaf.str_in_source, STR_IN_SOURCE),
            value,
        }
    }

    pub(crate) fn span(&self) -> Span {
        let start = self.start as usize;
        start..start + self.len as usize
    }

    /// The leaf as built.
    pub(crate) fn unpack(&self) -> BLeaf {
        let value = match &self.value {
            PValue::EmptyStr => Scalar::Str(Zeroizing::new(String::new())),
            PValue::Null => Scalar::Null,
            PValue::Bool(b) => Scalar::Bool(*b),
            PValue::Int(i) => Scalar::Int(*i),
            PValue::Other(v) => (**v).clone(),
        };
        let has = |bit: u8| self.flags & bit != 0;
        BLeaf {
            value,
            span: self.span(),
            indent: self.indent as usize,
            style: self.style,
            in_flow: has(IN_FLOW),
            in_list: has(IN_LIST),
            text_follows: has(TEXT_FOLLOWS),
            no_break_after: has(NO_BREAK_AFTER),
            str_in_source: has(STR_IN_SOURCE),
        }
    }
}

/// An item of a collection. A map item's key is read from the source
/// ([`Item::key`]); only a key whose value is not its text (quoted, escaped,
/// tagged) is held (issue 18: a key of its own cost more than its leaf).
#[derive(Debug)]
pub struct Item {
    pub node: SkNode,
    /// The key, when it is not the text `start..key_end`. Boxed twice on
    /// purpose: a thin pointer keeps every item 8 bytes smaller, and a key
    /// held here is the rare case.
    #[allow(clippy::box_collection)]
    key_text: Option<Box<String>>,
    /// From the key (or the item's first byte) to the end of the value.
    start: u32,
    end: u32,
    /// Where a map item's key text ends; `u32::MAX` for a list item.
    key_end: u32,
}

impl Item {
    fn new(key: Option<(&str, usize)>, text: &str, node: SkNode, start: usize, end: usize) -> Item {
        let (key_text, key_end) = match key {
            Some((key, end)) => (
                (text.get(start..end) != Some(key)).then(|| Box::new(key.to_string())),
                pos32(end),
            ),
            None => (None, u32::MAX),
        };
        Item {
            node,
            key_text,
            start: pos32(start),
            end: pos32(end),
            key_end,
        }
    }

    pub(crate) fn start(&self) -> usize {
        self.start as usize
    }

    pub(crate) fn end(&self) -> usize {
        self.end as usize
    }

    /// Where a map item's key text ends.
    pub(crate) fn key_end(&self) -> Option<usize> {
        (self.key_end != u32::MAX).then_some(self.key_end as usize)
    }

    /// A map item's key; `text` is the source the tree was built from.
    pub(crate) fn key<'t>(&'t self, text: &'t str) -> Option<&'t str> {
        let end = self.key_end()?;
        match &self.key_text {
            Some(key) => Some(key.as_str()),
            None => Some(text.get(self.start()..end).unwrap_or("")),
        }
    }
}

pub(crate) struct Built {
    pub(crate) colls: Vec<Coll>,
    /// The items of every collection, each collection's together (in the
    /// order the collections are complete). One list, not one per
    /// collection: the tree is freed once the document tree is made, and a
    /// list per collection left the memory of a large file's tree in small
    /// pieces that could not be given back (issue 18).
    pub(crate) items: Vec<Item>,
    /// Root collection of each document.
    pub(crate) roots: Vec<usize>,
    /// For each document: where its last key or value ends (comment placement
    /// puts the metadata entry after it). Only this is kept of the token
    /// positions: a list of them cost several times a large file's size (issue 18).
    pub(crate) last_value: Vec<usize>,
    /// Byte ranges no comment can start in (scalars, keys).
    pub(crate) opaque: Vec<Opaque>,
}

impl Built {
    /// The items of `coll`.
    pub(crate) fn items(&self, coll: &Coll) -> &[Item] {
        self.items.get(coll.items.clone()).unwrap_or(&[])
    }
}

impl Default for Item {
    /// What is left in [`Built::items`] of an item taken out.
    fn default() -> Self {
        Item {
            node: SkNode::Checked(0),
            key_text: None,
            start: 0,
            end: 0,
            key_end: u32::MAX,
        }
    }
}

fn unsupported(src: &Source<'_>, at: usize, message: impl Into<String>) -> FormatError {
    let (line, column) = src.line_col(at);
    FormatError::Unsupported {
        line,
        column,
        message: message.into(),
    }
}

struct Builder<'s, 'a> {
    src: &'s Source<'a>,
    evs: Events<'s, 'a>,
    /// See [`build_lean`].
    lean: Option<Lean>,
    /// Only checking ([`check`]): no leaves, marks or opaque ranges are kept,
    /// and a collection's items are dropped once it is complete.
    check: bool,
    /// Building the value of a document's top-level `sops` entry.
    in_sops: bool,
    /// Exact end of the previous event's text (scan start for block headers).
    prev_end: usize,
    colls: Vec<Coll>,
    /// See [`Built::items`].
    items: Vec<Item>,
    /// The items of the open collections, by depth (each list kept for the
    /// next collection at that depth).
    open: Vec<Vec<Item>>,
    last_value: Vec<usize>,
    opaque: Vec<Opaque>,
    /// Collections open around the current event.
    depth: usize,
    /// Hashes the open mappings' key sets (SipHash with a random key, so no input
    /// can force collisions).
    hasher: RandomState,
}

/// The keys of one mapping under construction, by hash; a hit is confirmed against
/// the items themselves.
type KeySet = HashSet<u64>;

#[cfg(test)]
pub fn build(src: &Source<'_>, evs: Events<'_, '_>) -> Result<Built, FormatError> {
    build_lean(src, evs, None)
}

/// [`build`]; `lean` ([`crate::formats::Store::parse_lean`]): plain strings
/// whose text is their value stay in the source (`Sealed`: only `ENC[...]`
/// values), outside the top-level `sops` entry.
pub fn build_lean(
    src: &Source<'_>,
    evs: Events<'_, '_>,
    lean: Option<Lean>,
) -> Result<Built, FormatError> {
    run(src, evs, lean, false)
}

/// Everything [`build_lean`] refuses, refused the same way, without keeping
/// the tree: what is read back after encryption is checked only (on a large
/// file the tree of the encrypted text took several times its size, issue 18).
pub fn check(src: &Source<'_>, evs: Events<'_, '_>) -> Result<(), FormatError> {
    run(src, evs, None, true).map(drop)
}

fn run(
    src: &Source<'_>,
    evs: Events<'_, '_>,
    lean: Option<Lean>,
    check: bool,
) -> Result<Built, FormatError> {
    let mut b = Builder {
        src,
        evs,
        lean,
        check,
        in_sops: false,
        prev_end: 0,
        colls: Vec::new(),
        items: Vec::new(),
        open: Vec::new(),
        last_value: Vec::new(),
        opaque: Vec::new(),
        depth: 0,
        hasher: RandomState::new(),
    };
    let built = b.stream();
    // A syntax error anywhere in the stream wins over what the builder refused
    // (as when the events were all read before building).
    if let Some(e) = b.evs.finish() {
        return Err(e);
    }
    built
}

/// What the event after a document start is.
enum Root {
    Map,
    Empty(usize),
    Other(usize),
    Missing,
}

impl Builder<'_, '_> {
    /// Build every document of the stream.
    fn stream(&mut self) -> Result<Built, FormatError> {
        let src = self.src;
        let mut roots = Vec::new();
        let mut empty_doc_at = None;
        while let Some(ev) = self.evs.next() {
            match ev.kind {
                EvKind::DocStart => {
                    if ev.end > ev.start {
                        self.prev_end = ev.end;
                    }
                    let doc = roots.len();
                    let root = match self.evs.peek() {
                        Some(Ev {
                            kind: EvKind::MapStart { .. },
                            ..
                        }) => Root::Map,
                        Some(Ev {
                            kind:
                                EvKind::Scalar {
                                    value,
                                    tag: None,
                                    style: ScalarStyle::Plain,
                                    anchor: false,
                                },
                            start,
                            ..
                        }) if value.is_empty() => Root::Empty(*start),
                        Some(e) => Root::Other(e.start),
                        None => Root::Missing,
                    };
                    match root {
                        Root::Map => {
                            let id = self.collection(None, doc)?;
                            roots.push(id);
                        }
                        Root::Empty(at) => {
                            empty_doc_at.get_or_insert(at);
                            self.evs.next();
                        }
                        Root::Other(at) => {
                            return Err(unsupported(
                                src,
                                at,
                                "the document's top level is not a mapping; sops only encrypts \
                                 YAML documents whose root is a mapping (key: value)",
                            ))
                        }
                        Root::Missing => {}
                    }
                }
                EvKind::DocEnd if ev.end > ev.start => {
                    self.prev_end = ev.end;
                }
                _ => {}
            }
        }
        if roots.is_empty() {
            return Err(FormatError::Empty { format: "yaml" });
        }
        if let Some(at) = empty_doc_at {
            return Err(unsupported(
                src,
                at,
                "this document of the YAML stream is empty; sops needs a mapping in every \
                 document: remove the empty document or give it content",
            ));
        }
        let mut opaque = std::mem::take(&mut self.opaque);
        // Equal keys are equal ranges: an unstable sort orders them the same,
        // without a scratch buffer (issue 18).
        opaque.sort_unstable();
        // Grown by doubling: what was never used is given back (issue 18).
        opaque.shrink_to_fit();
        let mut colls = std::mem::take(&mut self.colls);
        colls.shrink_to_fit();
        let mut items = std::mem::take(&mut self.items);
        items.shrink_to_fit();
        Ok(Built {
            colls,
            items,
            roots,
            last_value: std::mem::take(&mut self.last_value),
            opaque,
        })
    }
}

fn check_tag_collection(
    src: &Source<'_>,
    at: usize,
    tag: &Option<(String, String)>,
    want: &str,
) -> Result<(), FormatError> {
    if let Some((h, s)) = tag {
        if !(h == "tag:yaml.org,2002:" && s == want) {
            return Err(unsupported(
                src,
                at,
                format!(
                    "the tag {} is not supported: sops cannot keep custom tags; remove it",
                    tag_text(h, s)
                ),
            ));
        }
    }
    Ok(())
}

fn tag_text(h: &str, s: &str) -> String {
    if h == "tag:yaml.org,2002:" {
        format!("!!{s}")
    } else if h == "!" {
        format!("!{s}")
    } else {
        format!("{h}{s}")
    }
}

const ANCHOR_MSG: &str = "anchors, aliases and merge keys (&x, *x, <<) are not supported: sops \
     expands them, so a file written with them would not decrypt with sops; write the values \
     out in full";

impl Builder<'_, '_> {
    fn next(&mut self) -> Option<Ev> {
        self.evs.next()
    }

    /// The items of the innermost open collection so far.
    fn open_items(&mut self) -> &mut Vec<Item> {
        let depth = self.depth.max(1);
        if self.open.len() < depth {
            self.open.resize_with(depth, Vec::new);
        }
        &mut self.open[depth - 1]
    }

    /// A key or value of document `doc` ends at `end`.
    fn value_end(&mut self, doc: usize, end: usize) {
        if self.check {
            return;
        }
        if self.last_value.len() <= doc {
            self.last_value.resize(doc + 1, 0);
        }
        if let Some(v) = self.last_value.get_mut(doc) {
            *v = (*v).max(end);
        }
    }

    fn opaque(&mut self, span: Span) {
        if !self.check {
            self.opaque.push(Opaque::new(&span));
        }
    }

    /// Build the collection whose start event is at `self.pos`.
    fn collection(&mut self, parent: Option<usize>, doc: usize) -> Result<usize, FormatError> {
        let Some(ev) = self.next() else {
            return Err(unsupported(self.src, self.src.text.len(), "unexpected end"));
        };
        let (is_map, anchor, tag) = match &ev.kind {
            EvKind::MapStart { anchor, tag } => (true, *anchor, tag.clone()),
            EvKind::SeqStart { anchor, tag } => (false, *anchor, tag.clone()),
            _ => return Err(unsupported(self.src, ev.start, "expected a collection")),
        };
        let src = self.src;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let (line, column) = src.line_col(ev.start);
            return Err(too_deep(line, column));
        }
        if anchor {
            return Err(unsupported(src, ev.start, ANCHOR_MSG));
        }
        check_tag_collection(src, ev.start, &tag, if is_map { "map" } else { "seq" })?;
        let text = src.text.as_bytes();
        // Flow collections' start event covers the bracket.
        let mut start = scan::skip_properties(src.text, ev.start, src.text.len());
        let flow = ev.end > ev.start && matches!(text.get(start), Some(b'{') | Some(b'['));
        if !flow && ev.end > ev.start {
            // A tagged block collection: its start may be the tag.
            start = ev.start;
        }
        let id = self.colls.len();
        let indent = src.col(start);
        let parent_indent = parent.map(|p| self.colls[p].indent);
        self.colls.push(Coll {
            is_map,
            flow,
            parent,
            start,
            end: start,
            indent,
            byte_indent: src.byte_col(start),
            indentless: false,
            items: 0..0,
            comments: Vec::new(),
        });
        if flow {
            self.prev_end = start + 1;
        }
        let mut first = true;
        let mut keys = KeySet::new();
        loop {
            let Some(peek) = self.evs.peek() else {
                return Err(unsupported(src, src.text.len(), "unexpected end of input"));
            };
            match peek.kind {
                EvKind::MapEnd | EvKind::SeqEnd => {
                    let Some(peek) = self.evs.next() else {
                        return Err(unsupported(src, src.text.len(), "unexpected end of input"));
                    };
                    if flow {
                        // The closing bracket: the event span covers it.
                        let close = if peek.end > peek.start {
                            peek.start
                        } else {
                            self.prev_end
                        };
                        let close =
                            find_byte(src.text, self.prev_end, if is_map { b'}' } else { b']' })
                                .unwrap_or(close);
                        self.colls[id].end = close + 1;
                        self.prev_end = close + 1;
                    } else {
                        let end = self.open_items().last().map_or(start, Item::end);
                        self.colls[id].end = end;
                    }
                    let open = self.depth.checked_sub(1).and_then(|d| self.open.get_mut(d));
                    if let Some(open) = open {
                        if self.check {
                            // Nothing reads the items of a complete collection.
                            open.clear();
                        } else {
                            let from = self.items.len();
                            self.items.append(open);
                            self.colls[id].items = from..self.items.len();
                        }
                    }
                    self.depth -= 1;
                    return Ok(id);
                }
                _ => {}
            }
            if is_map {
                self.entry(id, doc, flow, &mut keys)?;
            } else {
                self.list_item(id, doc, flow, first, parent_indent)?;
            }
            first = false;
        }
    }

    fn entry(
        &mut self,
        id: usize,
        doc: usize,
        flow: bool,
        keys: &mut KeySet,
    ) -> Result<(), FormatError> {
        let src = self.src;
        let Some(kev) = self.next() else {
            return Err(unsupported(src, src.text.len(), "unexpected end of input"));
        };
        let (key, kstart, kend) = match &kev.kind {
            EvKind::Scalar {
                value,
                style,
                anchor,
                tag,
            } => {
                if *anchor {
                    return Err(unsupported(src, kev.start, ANCHOR_MSG));
                }
                let start = scan::skip_properties(src.text, kev.start, kev.end.max(kev.start));
                let start = if start >= kev.end { kev.start } else { start };
                let end = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        scan::quoted_end(src.text, start)
                    }
                    _ => kev.end.max(start),
                };
                let is_plain = *style == ScalarStyle::Plain;
                match tag {
                    Some((h, s)) if h == "tag:yaml.org,2002:" && s == "str" => {}
                    Some((h, s)) => {
                        return Err(unsupported(
                            src,
                            kev.start,
                            format!(
                                "the key tag {} is not supported: sops only accepts string keys",
                                tag_text(h, s)
                            ),
                        ))
                    }
                    None if is_plain => {
                        if value.as_str() == "<<" {
                            return Err(unsupported(src, start, ANCHOR_MSG));
                        }
                        match resolve::resolve_plain(value) {
                            Ok(Scalar::Str(_)) => {}
                            _ => {
                                let shown = if value.is_empty() { "(empty)" } else { value };
                                return Err(unsupported(
                                    src,
                                    start,
                                    format!(
                                        "the key {shown} is not a string (YAML reads it as a \
                                         number, bool, null or date) and sops refuses non-string \
                                         keys; quote it"
                                    ),
                                ));
                            }
                        }
                    }
                    None => {}
                }
                (value.to_string(), start, end)
            }
            EvKind::Alias => return Err(unsupported(src, kev.start, ANCHOR_MSG)),
            _ => {
                return Err(unsupported(
                    src,
                    kev.start,
                    "complex keys (a mapping or sequence used as a key) are not supported by \
                     sops; use string keys",
                ))
            }
        };
        let hash = self.hasher.hash_one(key.as_str());
        if !keys.insert(hash)
            && self
                .open_items()
                .iter()
                .any(|i| i.key(src.text) == Some(key.as_str()))
        {
            return Err(unsupported(
                src,
                kstart,
                format!("duplicate key {key:?} in this mapping; sops refuses duplicate keys"),
            ));
        }
        if self.open_items().is_empty() && !flow {
            self.colls[id].indent = src.col(kstart);
            self.colls[id].byte_indent = src.byte_col(kstart);
            self.colls[id].start = kstart;
        }
        self.value_end(doc, kend);
        self.opaque(kstart..kend);
        self.prev_end = kend;
        let outer = self.in_sops;
        if self.colls[id].parent.is_none() && key.as_str() == "sops" {
            self.in_sops = true;
        }
        let value = self.value(id, doc, flow, true);
        self.in_sops = outer;
        let (node, end) = value?;
        let item = Item::new(Some((&key, kend)), src.text, node, kstart, end.max(kend));
        self.open_items().push(item);
        Ok(())
    }

    fn list_item(
        &mut self,
        id: usize,
        doc: usize,
        flow: bool,
        first: bool,
        parent_indent: Option<usize>,
    ) -> Result<(), FormatError> {
        let src = self.src;
        let mut item_start = None;
        if !flow {
            // Find the `-` indicator: the first `-` after the previous event, outside comments.
            if let Some(d) = find_dash(src.text, self.prev_end) {
                if first {
                    let col = src.col(d);
                    self.colls[id].indent = col;
                    self.colls[id].byte_indent = src.byte_col(d);
                    self.colls[id].start = d;
                    // Indentless: the sequence is a mapping value with dashes at the key column.
                    if let Some(p) = self.colls[id].parent {
                        let pc = &self.colls[p];
                        if pc.is_map && !pc.flow && parent_indent == Some(col) {
                            self.colls[id].indentless = true;
                        }
                    }
                }
                self.prev_end = d + 1;
                item_start = Some(d);
            }
        }
        let (node, end) = self.value(id, doc, flow, false)?;
        let start = item_start.unwrap_or(match &node {
            SkNode::Leaf(l) => l.span().start,
            SkNode::Checked(start) => *start,
            SkNode::Coll(c) => self.colls[*c].start,
        });
        let item = Item::new(None, src.text, node, start, end.max(start));
        self.open_items().push(item);
        Ok(())
    }

    /// Build a value node (map value or list item); returns it and its end.
    fn value(
        &mut self,
        parent: usize,
        doc: usize,
        in_flow: bool,
        in_map: bool,
    ) -> Result<(SkNode, usize), FormatError> {
        let src = self.src;
        let Some(ev) = self.evs.peek() else {
            return Err(unsupported(src, src.text.len(), "unexpected end of input"));
        };
        match &ev.kind {
            EvKind::MapStart { .. } | EvKind::SeqStart { .. } => {
                let id = self.collection(Some(parent), doc)?;
                let end = self.colls[id].end;
                Ok((SkNode::Coll(id), end))
            }
            EvKind::Alias => Err(unsupported(src, ev.start, ANCHOR_MSG)),
            EvKind::Scalar { .. } => {
                let Some(ev) = self.evs.next() else {
                    return Err(unsupported(src, src.text.len(), "unexpected end of input"));
                };
                let leaf = self.leaf(&ev, in_flow, in_map)?;
                let empty = leaf.span.is_empty();
                self.value_end(doc, leaf.span.end);
                if !empty {
                    self.opaque(leaf.span.clone());
                    self.prev_end = leaf.span.end;
                }
                let end = leaf.span.end;
                if self.check {
                    return Ok((SkNode::Checked(leaf.span.start), end));
                }
                Ok((SkNode::Leaf(PLeaf::pack(leaf)), end))
            }
            _ => Err(unsupported(src, ev.start, "unexpected YAML structure")),
        }
    }

    fn leaf(&mut self, ev: &Ev, in_flow: bool, in_map: bool) -> Result<BLeaf, FormatError> {
        let src = self.src;
        let EvKind::Scalar {
            value,
            style,
            anchor,
            tag,
        } = &ev.kind
        else {
            return Err(unsupported(src, ev.start, "expected a scalar"));
        };
        if *anchor {
            return Err(unsupported(src, ev.start, ANCHOR_MSG));
        }
        // A block scalar without a chomping indicator (`|`, `>`).
        let mut clip = false;
        let (span, st, indent) = match style {
            ScalarStyle::Plain => {
                if ev.end <= ev.start || value.is_empty() && tag.is_none() {
                    // Implicit null: an empty span right after the previous text.
                    let at = if ev.end <= ev.start {
                        ev.start
                    } else {
                        self.prev_end
                    };
                    let at = at.max(self.prev_end).min(src.text.len());
                    (at..at, Style::Plain, 0)
                } else {
                    let s = scan::skip_properties(src.text, ev.start, ev.end);
                    let s = if s >= ev.end { ev.start } else { s };
                    (s..ev.end, Style::Plain, 0)
                }
            }
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                let s = scan::skip_properties(src.text, ev.start, src.text.len());
                let st = if *style == ScalarStyle::SingleQuoted {
                    Style::SingleQuoted
                } else {
                    Style::DoubleQuoted
                };
                (s..scan::quoted_end(src.text, s), st, 0)
            }
            ScalarStyle::Literal | ScalarStyle::Folded => {
                let Some(h) =
                    scan::block_header(src.text, self.prev_end, ev.start.max(self.prev_end))
                else {
                    return Err(unsupported(
                        src,
                        ev.start,
                        "could not locate this block scalar's header",
                    ));
                };
                clip = !h.keep && !src.text[h.start..h.end].contains('-');
                if h.has_comment {
                    return Err(unsupported(
                        src,
                        h.start,
                        "a comment after a block scalar header (`key: | # comment`) cannot be \
                         kept when the value is encrypted; move the comment to its own line",
                    ));
                }
                let has_content = value.chars().any(|c| c != '\n');
                let content_indent = if has_content { ev.col } else { usize::MAX };
                let trailing = value.len() - value.trim_end_matches('\n').len();
                let end = scan::block_end(src, &h, content_indent, trailing);
                let st = if *style == ScalarStyle::Literal {
                    Style::Literal
                } else {
                    Style::Folded
                };
                let indent = if has_content {
                    // Content columns are spaces only: chars == bytes.
                    ev.col
                } else {
                    0
                };
                (h.start..end.max(h.end), st, indent)
            }
        };
        // Clipping keeps one final line break. saphyr keeps two when the file ends
        // in a line of indentation only, without a line break (found by fuzzing;
        // go-yaml keeps one).
        let value: &str = if clip && value.ends_with("\n\n") {
            &value[..value.trim_end_matches('\n').len() + 1]
        } else {
            value
        };
        // A block scalar that ends the file without a line break has no final
        // line break to clip or keep (go-yaml agrees); the parser adds one (also
        // when the file ends in a line of indentation only).
        let value: &str = if matches!(st, Style::Literal | Style::Folded)
            && span.end >= src.text.len()
            && !src.text.ends_with('\n')
        {
            value.strip_suffix('\n').unwrap_or(value)
        } else {
            value
        };
        // Lean: a plain string whose text is its value is read from the source.
        let plain_text = !self.in_sops
            && st == Style::Plain
            && tag.is_none()
            && src.text.get(span.clone()) == Some(value);
        let mut in_source = match self.lean {
            None => false,
            Some(Lean::Sealed) => plain_text && value.starts_with("ENC[AES256_GCM,"),
            Some(Lean::Strings) => plain_text,
        };
        let mut value = self.typed(src, span.start, value, *style, tag)?;
        if in_source && matches!(value, Scalar::Str(_)) {
            value = Scalar::Str(Zeroizing::new(String::new()));
        } else {
            in_source = false;
        }
        let text_follows = src.text.get(span.end..).is_some_and(|rest| {
            let line = rest.split('\n').next().unwrap_or("");
            !line.strip_suffix('\r').unwrap_or(line).is_empty()
        });
        let no_break_after = !src
            .text
            .get(span.end..)
            .is_some_and(|rest| rest.starts_with('\n') || rest.starts_with("\r\n"));
        Ok(BLeaf {
            value,
            span,
            indent,
            style: st,
            in_flow,
            in_list: !in_map,
            text_follows,
            no_break_after,
            str_in_source: in_source,
        })
    }

    fn typed(
        &self,
        src: &Source<'_>,
        at: usize,
        value: &str,
        style: ScalarStyle,
        tag: &Option<(String, String)>,
    ) -> Result<Scalar, FormatError> {
        let plain = style == ScalarStyle::Plain;
        let str_value = || Scalar::Str(Zeroizing::new(value.to_string()));
        let Some((h, s)) = tag else {
            if !plain {
                return Ok(str_value());
            }
            return match resolve::resolve_plain(value) {
                Ok(v) => Ok(v),
                Err(ResolveError::Uint64) => Err(uint_error(src, at)),
            };
        };
        if h == "!" && s.is_empty() {
            return Ok(str_value());
        }
        if h != "tag:yaml.org,2002:" {
            return Err(unsupported(
                src,
                at,
                format!(
                    "the tag {} is not supported: sops cannot keep custom tags; remove it",
                    tag_text(h, s)
                ),
            ));
        }
        let bad = |what: &str| {
            unsupported(
                src,
                at,
                format!("this value cannot be read as !!{what}; fix the value or remove the tag"),
            )
        };
        match s.as_str() {
            "str" => Ok(str_value()),
            "binary" => {
                use base64::Engine;
                let cleaned: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(cleaned.as_bytes())
                    .map_err(|_| bad("binary"))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    unsupported(
                        src,
                        at,
                        "this !!binary value is not UTF-8 text; sops cannot carry binary \
                         values in YAML, store it as a base64 string instead",
                    )
                })?;
                Ok(Scalar::Str(Zeroizing::new(text)))
            }
            "null" => match resolve::resolve_plain(value) {
                Ok(Scalar::Null) => Ok(Scalar::Null),
                _ => Err(bad("null")),
            },
            "bool" => match resolve::resolve_plain(value) {
                Ok(Scalar::Bool(b)) => Ok(Scalar::Bool(b)),
                _ => Err(bad("bool")),
            },
            "int" => match resolve::resolve_plain(value) {
                Ok(Scalar::Int(i)) => Ok(Scalar::Int(i)),
                Err(ResolveError::Uint64) => Err(uint_error(src, at)),
                _ => Err(bad("int")),
            },
            "float" => match resolve::resolve_plain(value) {
                Ok(Scalar::Float(f)) => Ok(Scalar::Float(f)),
                Ok(Scalar::Int(i)) => Ok(Scalar::Float(i as f64)),
                _ => Err(bad("float")),
            },
            "timestamp" => match resolve::parse_timestamp(value) {
                Some(t) => Ok(Scalar::Time(t)),
                None => Err(bad("timestamp")),
            },
            other => Err(unsupported(
                src,
                at,
                format!("the tag !!{other} is not supported on a scalar; remove it"),
            )),
        }
    }
}

fn uint_error(src: &Source<'_>, at: usize) -> FormatError {
    unsupported(
        src,
        at,
        "this integer is larger than a signed 64-bit integer; sops cannot encrypt it \
         (\"unknown type: uint64\"): quote it to keep it as a string",
    )
}

/// The first `-` entry indicator at or after `from`, skipping whitespace and comments.
fn find_dash(text: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b':' | b'?' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'-' => return Some(i),
            // A BOM at the start.
            0xEF if i == 0 => i += 3,
            _ => return None,
        }
    }
    None
}

/// The first `c` at or after `from`, skipping whitespace, commas and comments.
fn find_byte(text: &str, from: usize, c: u8) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            x if x == c => return Some(i),
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            _ => return None,
        }
    }
    None
}
