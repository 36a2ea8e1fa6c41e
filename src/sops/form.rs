//! The encrypted form of a SOPS file, judged without any key: is every value
//! and comment that the file's own recorded selector encrypts an `ENC[...]`
//! value sops can parse, and is the MAC one?
//!
//! Two places must decide this the same way, and both call this module: the
//! clean filter, which stores a file exactly as it is only when its form is
//! intact (anything else is plaintext on its way into git), and the plaintext
//! guard, which reports every entry that breaks the form. Nulls, empty strings
//! and blank comments are never encrypted by sops, so they never break it.
//!
//! Nothing here returns a secret: a plaintext value is described by its type,
//! or by at most its first two characters ([`mask`]).

use std::collections::BTreeSet;
use std::convert::Infallible;

use super::cipher::{self, EncValue, TypeTag};
use super::display_path;
use super::metadata::Metadata;
use super::selectors::Selector;
use super::walk::{walk, Visit};
use crate::formats::{Document, Scalar};

/// What is wrong with one entry of the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// A value the selector encrypts is plaintext.
    PlaintextValue,
    /// A non-empty comment the selector encrypts is plaintext.
    PlaintextComment,
    /// A value that starts like `ENC[...]` but that sops cannot read.
    MalformedValue,
    /// The MAC is missing or is not an `ENC[...]` string.
    BadMac,
}

/// One entry that breaks the encrypted form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// 1-based line in the file (0: unknown).
    pub line: usize,
    /// sops' key path (`["db"]["password"]`); `None` for a top-level comment or the MAC.
    pub key_path: Option<String>,
    /// What is wrong, without the secret: "the value (hu****) is plaintext".
    pub what: String,
}

/// Every entry `selector` encrypts that is not in `ENC[...]` form, in file
/// order: the first `limit` of them, and how many more there are (a hostile
/// blob can hold millions, and every caller keeps its findings in memory).
pub fn unencrypted(doc: &Document, selector: &Selector, limit: usize) -> (Vec<Problem>, usize) {
    let mut problems = Vec::new();
    let mut more = 0usize;
    let _ = walk(doc, &mut |visit, pos| -> Result<(), Infallible> {
        if problems.len() >= limit {
            let counts = match visit {
                Visit::Leaf(leaf) => {
                    leaf.value != Scalar::Null
                        && !matches!(&leaf.value, Scalar::Str(s) if s.is_empty() || cipher::is_enc(s))
                        && selector.should_encrypt_at(pos, false)
                }
                Visit::Comment(c) => {
                    !cipher::is_enc(&c.text)
                        && !c.text.trim().is_empty()
                        && selector.should_encrypt_at(pos, true)
                }
            };
            more += usize::from(counts);
            return Ok(());
        }
        match visit {
            Visit::Leaf(leaf) => {
                if leaf.value == Scalar::Null || !selector.should_encrypt_at(pos, false) {
                    return Ok(());
                }
                let key_path = Some(display_path(&pos.path));
                let shown = match &leaf.value {
                    Scalar::Str(s) if s.is_empty() => return Ok(()),
                    Scalar::Str(s) if cipher::is_enc(s) => {
                        if let Err(e) = EncValue::parse(s) {
                            problems.push(Problem {
                                kind: ProblemKind::MalformedValue,
                                line: leaf.line,
                                key_path,
                                what: format!(
                                    "the value starts like ENC[...] but sops cannot read it: {e}"
                                ),
                            });
                        }
                        return Ok(());
                    }
                    Scalar::Str(s) => mask(s),
                    other => scalar_kind(other).to_string(),
                };
                problems.push(Problem {
                    kind: ProblemKind::PlaintextValue,
                    line: leaf.line,
                    key_path,
                    what: format!("the value ({shown}) is plaintext"),
                });
            }
            Visit::Comment(comment) => {
                if cipher::is_enc(&comment.text)
                    || comment.text.trim().is_empty()
                    || !selector.should_encrypt_at(pos, true)
                {
                    return Ok(());
                }
                problems.push(Problem {
                    kind: ProblemKind::PlaintextComment,
                    line: comment.line,
                    key_path: (!pos.path.is_empty()).then(|| display_path(&pos.path)),
                    what: format!("a comment ({}) is plaintext", mask(comment.text.trim())),
                });
            }
        }
        Ok(())
    });
    (problems, more)
}

/// The MAC's problem, if any: sops seals it as an `ENC[...]` string.
pub fn mac_problem(meta: &Metadata, line: usize) -> Option<Problem> {
    let what = if meta.mac.is_empty() {
        "the `sops` block has no MAC".to_string()
    } else {
        match EncValue::parse(&meta.mac) {
            Err(e) => format!("the MAC is not a valid ENC[...] value: {e}"),
            Ok(enc) if enc.type_tag != TypeTag::Str => format!(
                "the MAC has type:{}; sops seals it as type:str",
                enc.type_tag.as_str()
            ),
            Ok(_) => return None,
        }
    };
    Some(Problem {
        kind: ProblemKind::BadMac,
        line,
        key_path: None,
        what,
    })
}

/// The whole form check of a loaded SOPS file: the MAC, then (the first
/// `limit` of) every entry its own recorded selector encrypts. Empty means the
/// form is intact.
pub fn check(doc: &Document, meta: &Metadata, mac_line: usize, limit: usize) -> Vec<Problem> {
    let mut problems: Vec<Problem> = mac_problem(meta, mac_line).into_iter().collect();
    problems.extend(unencrypted(doc, &meta.effective_selector(), limit).0);
    problems
}

/// The first `ENC[...]` value of a document, if any: a file that holds one but
/// no `sops` metadata is ciphertext whose metadata was removed.
pub fn first_enc_value(doc: &Document) -> Option<(usize, String)> {
    let mut found = None;
    let _ = walk(doc, &mut |visit, pos| -> Result<(), ()> {
        if let Visit::Leaf(leaf) = visit {
            if let Scalar::Str(s) = &leaf.value {
                if cipher::is_enc(s) {
                    found = Some((leaf.line, display_path(&pos.path)));
                    return Err(());
                }
            }
        }
        Ok(())
    });
    found
}

/// The key paths of a document's leaves, split into those holding `ENC[...]`
/// values and those holding other non-empty values: the plaintext skeleton of a
/// SOPS file, by which the guard recognises a decrypted copy without a key.
pub fn leaf_paths(doc: &Document) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut encrypted = BTreeSet::new();
    let mut plain = BTreeSet::new();
    let _ = walk(doc, &mut |visit, pos| -> Result<(), Infallible> {
        if let Visit::Leaf(leaf) = visit {
            match &leaf.value {
                Scalar::Null => {}
                Scalar::Str(s) if s.is_empty() => {}
                Scalar::Str(s) if cipher::is_enc(s) => {
                    encrypted.insert(display_path(&pos.path));
                }
                _ => {
                    plain.insert(display_path(&pos.path));
                }
            }
        }
        Ok(())
    });
    (encrypted, plain)
}

fn scalar_kind(value: &Scalar) -> &'static str {
    match value {
        Scalar::Int(_) => "an integer",
        Scalar::Float(_) => "a number",
        Scalar::Bool(_) => "a boolean",
        Scalar::Time(_) => "a timestamp",
        Scalar::Str(_) | Scalar::Null => "a value",
    }
}

/// A plaintext value as it may appear in a message: its first two characters
/// followed by `****` when it is long enough for that to give little away (at
/// least 8 characters), otherwise only `****`.
pub fn mask(value: &str) -> String {
    if value.chars().count() < 8 {
        return "****".to_string();
    }
    let prefix: String = value
        .chars()
        .take(2)
        .flat_map(char::escape_default)
        .collect();
    format!("{prefix}****")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_never_show_more_than_two_characters() {
        assert_eq!(mask("hunter2"), "****");
        assert_eq!(mask("hunter2hunter2"), "hu****");
        assert_eq!(mask("\n\tsecretsecret"), "\\n\\t****");
        assert_eq!(mask(""), "****");
    }
}
