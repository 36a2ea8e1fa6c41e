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
pub mod extract;
mod flat_metadata;
mod float;
mod format;
#[cfg(test)]
pub(crate) mod hollow_check;
pub mod ini;
pub mod json;
pub mod set;
mod splice;
mod store;
pub(crate) mod time;
mod tree;
mod value;
pub mod yaml;
pub mod yaml_value;

use std::ops::Range;

pub(crate) use float::{go_format_float, go_format_float_g};
pub use format::Format;
pub(crate) use splice::Splicer;
pub use splice::{apply_edits, Edit, SpliceError};
pub use store::{FormatError, Lean, Store};
pub use tree::{
    find_entry, Comment, Document, Entry, Leaf, LeafContext, List, ListItem, Map, MapItem, Node,
    Scalar, Style,
};
pub(crate) use tree::{str_in_source, Hollow, Step};
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
