//! The SOPS tree every store parses into: ordered maps, lists, typed scalar
//! leaves and comments, each knowing the byte span of its text in the source.

use std::fmt;

use zeroize::Zeroizing;

use super::Span;

/// A scalar value typed the way sops types it (docs/sops-format.md §1.5).
///
/// Strings are zeroizing: a document parsed from a plaintext file holds secrets.
#[derive(Clone, PartialEq)]
pub enum Scalar {
    Str(Zeroizing<String>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A YAML timestamp, already in Go's RFC3339Nano form (what sops encrypts).
    Time(String),
    Null,
}

impl fmt::Debug for Scalar {
    // Never print values: they may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Scalar::Str(_) => "Str",
            Scalar::Int(_) => "Int",
            Scalar::Float(_) => "Float",
            Scalar::Bool(_) => "Bool",
            Scalar::Time(_) => "Time",
            Scalar::Null => "Null",
        };
        write!(f, "Scalar::{kind}(..)")
    }
}

/// How a scalar was written in the source, so replacement text can keep that style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// A scalar leaf of the tree.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub value: Scalar,
    /// The bytes to replace when this value is encrypted or decrypted: the scalar's
    /// text including its quotes or block header (not its tag or anchor).
    pub span: Span,
    pub style: Style,
    /// 1-based line and column of the span start, for error messages.
    pub line: usize,
    pub column: usize,
    /// Format-specific context the store needs when rendering replacement text
    /// (e.g. YAML: inside a flow collection; the indentation of block content).
    pub context: LeafContext,
}

/// Where a leaf sits, as far as rendering replacement text is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeafContext {
    /// Inside a flow collection (`[...]`, `{...}`): a plain `ENC[...]` is not allowed there.
    pub(crate) in_flow: bool,
    /// Column (0-based, in bytes) of the block-scalar content lines, or of the
    /// parent block's items: used to indent multi-line replacement text.
    pub indent: usize,
    /// The leaf is an item of a list (sops stores encrypted list comments as items).
    pub(crate) in_list: bool,
    /// YAML: the indentation of the innermost enclosing block collection (for
    /// explicit indentation indicators on block scalars).
    pub(crate) block_parent: usize,
    /// The file uses CRLF line endings (for multi-line replacement text).
    pub crlf: bool,
    /// YAML: text (spaces, a comment) follows the value on the line where it
    /// ends, so its replacement must end on that line too (a block scalar would
    /// take that text in as content).
    pub(crate) text_follows: bool,
    /// YAML: no line break follows the value's span (it ends the file, or a block
    /// scalar took the file's last line of indentation in), so a block scalar
    /// replacement must write its own final line break instead of leaving it to
    /// the source.
    pub(crate) no_break_after: bool,
    /// The value is a string left in the source, not copied into the tree:
    /// `src[span]` (without its quotes when quoted, which hold it unescaped)
    /// ([`super::Store::parse_lean`]; only the walks encrypting or decrypting
    /// a whole file read such a tree, issue 18).
    pub(crate) str_in_source: bool,
}

/// A comment. `text` is what follows the comment marker (`#`), as sops takes it:
/// `# top` has the text `" top"`.
#[derive(Clone)]
pub struct Comment {
    pub text: Zeroizing<String>,
    /// The bytes of `text` in the source (after the marker, up to the line end).
    pub span: Span,
    pub line: usize,
}

impl fmt::Debug for Comment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Comment(line {})", self.line)
    }
}

/// A node of the tree.
#[derive(Clone, Debug)]
pub enum Node {
    Map(Map),
    List(List),
    Leaf(Leaf),
}

#[derive(Clone, Debug, Default)]
pub struct Map {
    pub items: Vec<MapItem>,
    /// Written as a flow mapping (`{...}`).
    pub flow: bool,
    /// The whole mapping's text.
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum MapItem {
    Entry(Entry),
    Comment(Comment),
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub(crate) key_span: Span,
    pub value: Node,
    /// From the first byte of the key (or of its quote) to the end of the value.
    pub span: Span,
    pub line: usize,
}

#[derive(Clone, Debug, Default)]
pub struct List {
    pub items: Vec<ListItem>,
    pub flow: bool,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ListItem {
    Node(Node),
    Comment(Comment),
}

/// A parsed file: one tree per document (YAML may hold several; JSON holds one).
/// Each tree's root is a map (sops refuses anything else).
#[derive(Clone, Debug)]
pub struct Document {
    pub docs: Vec<Map>,
    /// The line ending the file uses (`"\n"` or `"\r\n"`), for text the store adds.
    pub newline: &'static str,
    /// How the top-level values other than `sops` are held: built, or only
    /// their place in the source ([`Hollow`]).
    pub(crate) hollow: Option<Hollow>,
}

/// A document whose top-level values (other than the whole `sops` entry) are
/// placeholders, whose contents the walk reads step by step ([`Step`];
/// `crate::walk::walk_source`) instead of from a tree: for a large file the
/// tree is several times the size of the text, and the walk needs only the
/// value it is at (issue 18). Only [`super::Store::parse_lean`] makes one.
///
/// JSON (a file validated token by token): every top-level value is a
/// [`Leaf`] with the value's span, line and column and no value, read again
/// from the source. YAML: every top-level collection is an empty [`Map`] or
/// [`List`] with its span and flow flag, read from the parser's compact
/// outline of the file (`yaml::Outline`: leaves and keys mostly left in the
/// source, no per-collection allocations), kept here instead of a tree.
#[derive(Clone, Debug)]
pub(crate) struct Hollow {
    /// Which strings the steps leave in the source.
    pub lean: super::Lean,
    /// YAML: the outline the top-level collections are read from.
    pub yaml: Option<std::sync::Arc<super::yaml::Outline>>,
}

/// One step of a walk read from the source of a [`Hollow`] document, in
/// source order. A map entry is `Key`, its value's steps, `EndEntry`; a list
/// item is its value's steps, `EndItem`; a comment (YAML) comes where it sits
/// among the items of its collection.
pub(crate) enum Step<'s> {
    /// A map or list begins.
    Open,
    /// The innermost map or list ends.
    Close,
    Key(std::borrow::Cow<'s, str>),
    EndEntry,
    EndItem,
    Leaf(Leaf),
    Comment(&'s Comment),
}

/// The text of a leaf whose value was left in the source
/// ([`LeafContext::str_in_source`]).
pub(crate) fn str_in_source<'s>(src: &'s str, leaf: &Leaf) -> Option<&'s str> {
    if !leaf.context.str_in_source {
        return None;
    }
    let span = match leaf.style {
        Style::Plain => leaf.span.clone(),
        _ => leaf.span.start + 1..leaf.span.end.saturating_sub(1),
    };
    Some(src.get(span).unwrap_or(""))
}

/// Find the top-level entry `key` in a map.
pub fn find_entry<'a>(map: &'a Map, key: &str) -> Option<&'a Entry> {
    map.items.iter().find_map(|item| match item {
        MapItem::Entry(e) if e.key == key => Some(e),
        _ => None,
    })
}
