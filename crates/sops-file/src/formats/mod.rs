//! The stores: how each file format is read into a SOPS tree and written back.
//!
//! A format parses bytes into a [`Document`]: the SOPS tree (ordered maps, lists,
//! typed scalar leaves, comments) where every leaf and comment also knows the byte
//! span of its text in the source. Encryption and decryption never re-serialise a
//! document: they ask the format for replacement text for individual spans and
//! splice it into the original bytes ([`splice`]). That is what keeps comments,
//! order, indentation and quoting intact (docs/architecture.md §3).
//!
//! Formats know nothing about keys, ciphers or git; the `sops` layer decides what
//! to encrypt and hands the format opaque strings (`ENC[...]` or plaintext).
//!
//! # Limits on hostile input
//!
//! Smudge parses whatever blob a clone checks out and `git sops check --history`
//! whatever anyone pushed, so every parser bounds its work:
//!
//! * **Depth.** A document nests at most [`MAX_DEPTH`] collections (counting the
//!   top-level mapping), go-yaml's own limit ("exceeded max depth of 10000"), in
//!   every store and in `.sops.yaml`; flattened dotenv/INI metadata keys at most as
//!   many `__` levels. The YAML parser (saphyr) stops flow collections (`[`/`{`) at
//!   255 levels and the JSON parser at 512. Deeper input is an error naming the
//!   line. The walks over a document recurse once per level; the binary runs on a
//!   thread whose stack holds the deepest accepted document (`cli::main`).
//! * **Aliases** (only `.sops.yaml` expands them) are budgeted as go-yaml budgets
//!   them: see [`yaml_value`].
//! * **Time.** Parsing, duplicate-key checks and comment placement are linear (or
//!   n log n) in the size of the input; splicing is linear in the output.

pub mod convert;
pub mod dotenv;
mod flat;
pub mod ini;
pub mod json;
mod splice;
pub(crate) mod time;
mod value;
pub mod yaml;
pub(crate) mod yaml_value;

use std::fmt;
use std::ops::Range;

use zeroize::Zeroizing;

pub use splice::{apply_edits, Edit, SpliceError};
pub use value::Value;

/// Byte range into the source text.
pub(crate) type Span = Range<usize>;

/// The deepest nesting of collections a document may have, counting the top-level
/// mapping: go-yaml v3's `max_indents`/`max_flow_level`, so every file sops can read
/// is accepted and nothing deeper reaches the recursive walks.
pub const MAX_DEPTH: usize = 10_000;

/// The error for a collection nested deeper than [`MAX_DEPTH`].
pub(crate) fn too_deep(line: usize, column: usize) -> FormatError {
    FormatError::Unsupported {
        line,
        column,
        message: format!(
            "the data is nested more than {MAX_DEPTH} levels deep; sops stops at the same \
             depth (\"exceeded max depth of {MAX_DEPTH}\"): flatten the structure"
        ),
    }
}

/// The file formats SOPS knows. Detection by extension follows sops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    /// Any other file: its bytes are one encrypted value in a JSON envelope
    /// (`crate::binary`); it has no [`Store`] of its own.
    Binary,
}

impl Format {
    /// sops' rule for the command line: `.yaml`/`.yml` → YAML, `.json` → JSON,
    /// `.env` → dotenv, `.ini` → INI, anything else binary.
    pub fn detect(path: &str) -> Format {
        Format::from_path(path).unwrap_or(Format::Binary)
    }

    /// The structured formats by extension (see [`Format::detect`]); `None` for
    /// anything else (binary to sops; the guard uses this to decide which
    /// unprotected files are worth reading).
    pub fn from_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Some(Format::Yaml)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else if lower.ends_with(".env") {
            Some(Format::Dotenv)
        } else if lower.ends_with(".ini") {
            Some(Format::Ini)
        } else {
            None
        }
    }

    /// The names sops accepts for `--input-type` / `--output-type`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "yaml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "dotenv" => Some(Format::Dotenv),
            "ini" => Some(Format::Ini),
            "binary" => Some(Format::Binary),
            _ => None,
        }
    }

    /// Whether sops 3.11 can read a file of this format that starts with a UTF-8
    /// BOM: go-yaml skips it, Go's `encoding/json` rejects it; dotenv and INI
    /// take it as part of the first line.
    pub fn sops_accepts_bom(self) -> bool {
        self != Format::Json
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
            Format::Binary => "binary",
        }
    }

    /// The store implementing this format. A binary file's plaintext is raw bytes
    /// (see `crate::binary`); its encrypted envelope is JSON, so that is the
    /// store given for it.
    pub fn store(self) -> &'static dyn Store {
        match self {
            Format::Binary => &json::JsonStore,
            Format::Yaml => &yaml::YamlStore,
            Format::Json => &json::JsonStore,
            Format::Dotenv => &dotenv::DotenvStore,
            Format::Ini => &ini::IniStore,
        }
    }
}

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
}

/// Errors found while reading a file. `line`/`column` are 1-based; 0 means unknown.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("line {line}, column {column}: {message}")]
    Unsupported {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the file is empty; sops cannot encrypt an empty {format} file")]
    Empty { format: &'static str },
}

/// What a store does. All text is UTF-8 (`&str`); the binary store wraps bytes elsewhere.
pub trait Store: Sync {
    /// Parse a whole file. The `sops` metadata entry, if present, is part of the tree
    /// like any other entry (the sops layer finds and interprets it).
    fn parse(&self, src: &str) -> Result<Document, FormatError>;

    /// Replacement text for `leaf` when its value becomes the string `enc`
    /// (an `ENC[...]` value, which needs no escaping but may need quotes).
    fn encrypted_leaf(&self, leaf: &Leaf, enc: &str) -> String;

    /// Replacement text for an encrypted `leaf` when it is decrypted to `value`.
    /// `spelling` is the decrypted plaintext as sops stores it (e.g. `1.50` for a
    /// float); the store writes it verbatim when it reads back as the same typed
    /// value in this context, and otherwise renders `value` canonically.
    fn plain_leaf(&self, leaf: &Leaf, value: &Scalar, spelling: &str) -> String;

    /// An edit that turns an encrypted comment stored as a list item (sops writes
    /// `- ENC[...,type:comment]` in YAML lists) into a comment with `text`.
    /// `None` when the format has no comments.
    fn list_comment(&self, src: &str, leaf: &Leaf, text: &str) -> Option<Edit>;

    /// Edits that add the metadata block `meta` (a map) as a top-level `sops` entry to
    /// every document of `doc`, in the file's own layout.
    fn insert_metadata(&self, src: &str, doc: &Document, meta: &Value) -> Vec<Edit>;

    /// Edits that remove the top-level `sops` entry from every document of `doc`,
    /// undoing exactly what [`Store::insert_metadata`] added for files it wrote.
    fn remove_metadata(&self, src: &str, doc: &Document) -> Vec<Edit>;
}

/// Go `strconv.FormatFloat(f, 'f', -1, 64)`, the text sops gives every float
/// (in the MAC and as the canonical plaintext): shortest round-trip digits, never
/// an exponent, infinities as `+Inf`/`-Inf`. Rust's `Display` for `f64` prints the
/// same digits for finite values.
pub(crate) fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// Go `strconv.FormatFloat(f, 'g', -1, 64)` (`'G'` when `upper`): shortest
/// round-trip digits, in exponent form (`1.5e+09`, at least two exponent digits)
/// when the decimal exponent is below -4 or at least 6. go-yaml prints floats
/// this way, and sops' dotenv and INI stores with `'G'`.
pub(crate) fn go_format_float_g(f: f64, upper: bool) -> String {
    if !f.is_finite() {
        return go_format_float(f);
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{sign}{:02}", exp.abs())
}

/// Find the top-level entry `key` in a map.
pub fn find_entry<'a>(map: &'a Map, key: &str) -> Option<&'a Entry> {
    map.items.iter().find_map(|item| match item {
        MapItem::Entry(e) if e.key == key => Some(e),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::go_format_float_g;

    #[test]
    fn floats_format_like_go_g() {
        for (f, g) in [
            (1234568000.0, "1.234568e+09"),
            (1234567890.45, "1.23456789045e+09"),
            (100000.0, "100000"),
            (1e21, "1e+21"),
            (0.000001, "1e-06"),
            (0.0001, "0.0001"),
            (1.5, "1.5"),
            (-2.5e-7, "-2.5e-07"),
            (1e100, "1e+100"),
        ] {
            assert_eq!(go_format_float_g(f, false), g, "{f}");
        }
        assert_eq!(go_format_float_g(1e21, true), "1E+21");
    }
}
