//! What a store does ([`Store`]) and what goes wrong reading a file
//! ([`FormatError`]).

use super::set::{PutError, Slot};
use super::{Document, Edit, Leaf, Node, Scalar, Value};

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

/// Which strings [`Store::parse_lean`] may leave in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lean {
    /// `ENC[...]` values (decrypting).
    Sealed,
    /// Every string (encrypting).
    Strings,
}

/// What a store does. All text is UTF-8 (`&str`); the binary store wraps bytes elsewhere.
pub trait Store: Sync {
    /// Parse a whole file. The `sops` metadata entry, if present, is part of the tree
    /// like any other entry (the sops layer finds and interprets it).
    fn parse(&self, src: &str) -> Result<Document, FormatError>;

    /// Whether [`Store::parse`] accepts `src`, without keeping the tree (the
    /// encrypted output is read back only to know that it can be: a store that
    /// can tell without building the whole tree saves its memory).
    fn check(&self, src: &str) -> Result<(), FormatError> {
        self.parse(src).map(drop)
    }

    /// [`Store::parse`] for the walk encrypting or decrypting a whole file
    /// (`crate::walk::walk_source`, the only reader of such a document): a
    /// store may leave the strings `lean` names out of the tree where the
    /// source holds them verbatim ([`super::LeafContext`]'s `str_in_source`),
    /// or build only the top level and let the walk read the values from the
    /// source ([`super::Document`]'s `hollow`: JSON); the top-level `sops`
    /// entry is whole. On a large file the copies and the tree are several
    /// times the size of the file (issue 18).
    fn parse_lean(&self, src: &str, lean: Lean) -> Result<Document, FormatError> {
        let _ = lean;
        self.parse(src)
    }

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

    /// Edits that write `value` (a tree parsed from JSON: no comments, no
    /// spans that mean anything in `src`) at `slot` of the plaintext `src`,
    /// for `git sops set` ([`super::set`]): in place of an existing value, or
    /// as a new entry or item after the last one of its map or list, in that
    /// collection's own layout (indentation, flow or block, separators), so
    /// the rest of the file is untouched. A value the format cannot hold there
    /// is [`PutError::Unsupported`].
    fn put(
        &self,
        src: &str,
        doc: &Document,
        slot: Slot<'_>,
        value: &Node,
    ) -> Result<Vec<Edit>, PutError>;

    /// Edits that remove the entry or item at `slot` (an existing one) from
    /// the plaintext `src`, with its line where it has one to itself, for
    /// `git sops unset`.
    fn take(&self, src: &str, doc: &Document, slot: Slot<'_>) -> Result<Vec<Edit>, PutError>;
}
