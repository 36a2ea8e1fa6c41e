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

use std::collections::{BTreeMap, BTreeSet};

use std::convert::Infallible;
use zeroize::Zeroizing;

use super::cipher::{self, EncValue, TypeTag};
use super::display_path;
use super::metadata::Metadata;
use super::selectors::Selector;
use super::walk::{walk, Visit};
use crate::formats::{Document, Entry, ListItem, Map, MapItem, Node, Scalar};

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
                        if let Some(why) = malformed(s) {
                            problems.push(Problem {
                                kind: ProblemKind::MalformedValue,
                                line: leaf.line,
                                key_path,
                                what: format!("the value starts like ENC[...] but {why}"),
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
                if cipher::is_enc(&comment.text) {
                    if let Some(why) = malformed(&comment.text) {
                        problems.push(Problem {
                            kind: ProblemKind::MalformedValue,
                            line: comment.line,
                            key_path: (!pos.path.is_empty()).then(|| display_path(&pos.path)),
                            what: format!("an encrypted comment starts like ENC[...] but {why}"),
                        });
                    }
                    return Ok(());
                }
                if comment.text.trim().is_empty() || !selector.should_encrypt_at(pos, true) {
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

/// Why text that starts like `ENC[...]` is not exactly one value sops can
/// read, if it is not: sops' own pattern ignores anything after the closing
/// `]`, so text there would be stored, and pushed, in the clear.
fn malformed(text: &str) -> Option<String> {
    if let Err(e) = EncValue::parse(text) {
        return Some(format!("sops cannot read it: {e}"));
    }
    (!text.trim_end().ends_with(']'))
        .then(|| "there is text after its closing `]`, which is not encrypted".to_string())
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
            Ok(_) => match malformed(&meta.mac) {
                Some(why) => format!("the MAC starts like ENC[...] but {why}"),
                None => return None,
            },
        }
    };
    Some(Problem {
        kind: ProblemKind::BadMac,
        line,
        key_path: None,
        what,
    })
}

/// The fields sops reads in a `sops` block (and older versions wrote).
const TOP_FIELDS: [&str; 21] = [
    "kms",
    "gcp_kms",
    "hckms",
    "azure_kv",
    "hc_vault",
    "age",
    "pgp",
    "key_groups",
    "shamir_threshold",
    "lastmodified",
    "mac",
    "version",
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
    "mac_only_encrypted",
    "attention",
    "encrypted_comment_suffix",
];

/// The fields of one master key entry, by key type.
fn key_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "kms" => &["arn", "role", "context", "created_at", "enc", "aws_profile"],
        "gcp_kms" => &["resource_id", "created_at", "enc"],
        "hckms" => &["key_id", "created_at", "enc"],
        "azure_kv" => &["vault_url", "name", "version", "created_at", "enc"],
        "hc_vault" => &[
            "vault_address",
            "engine_path",
            "key_name",
            "created_at",
            "enc",
        ],
        "age" => &["recipient", "enc"],
        "pgp" => &["fp", "created_at", "enc"],
        _ => &[],
    }
}

const KEY_KINDS: [&str; 7] = [
    "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age", "pgp",
];

/// What the `sops` block holds besides metadata: a comment, or an entry sops
/// does not read. Neither is encrypted by anyone, so text pasted there is
/// committed, and pushed, in the clear (the values of a KMS `context` are
/// plaintext by design and are not reported).
pub fn metadata_problems(sops: &Entry) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Node::Map(top) = &sops.value else {
        return problems;
    };
    let mut extra = |line: usize, what: String| {
        problems.push(Problem {
            kind: ProblemKind::MalformedValue,
            line,
            key_path: None,
            what,
        })
    };
    let comment = "a comment inside the `sops` block, which nothing encrypts".to_string();
    for item in &top.items {
        let e = match item {
            MapItem::Comment(c) => {
                extra(c.line, comment.clone());
                continue;
            }
            MapItem::Entry(e) => e,
        };
        if !TOP_FIELDS.contains(&e.key.as_str()) {
            extra(e.line, format!("an entry `{}` inside the `sops` block, which sops does not read and nothing encrypts", mask(&e.key)));
            continue;
        }
        if KEY_KINDS.contains(&e.key.as_str()) {
            check_keys(&e.key, &e.value, &mut extra, &comment);
        } else if e.key == "key_groups" {
            for group in list_maps(&e.value, &mut extra, &comment) {
                for item in &group.items {
                    match item {
                        MapItem::Comment(c) => extra(c.line, comment.clone()),
                        MapItem::Entry(g) if KEY_KINDS.contains(&g.key.as_str()) => {
                            check_keys(&g.key, &g.value, &mut extra, &comment)
                        }
                        MapItem::Entry(g) => extra(g.line, format!("an entry `{}` in a key group, which sops does not read and nothing encrypts", mask(&g.key))),
                    }
                }
            }
        }
    }
    problems
}

/// The mappings of a list (comments between them reported).
fn list_maps<'a>(
    node: &'a Node,
    extra: &mut dyn FnMut(usize, String),
    comment: &str,
) -> Vec<&'a Map> {
    let Node::List(list) = node else {
        return Vec::new();
    };
    let mut maps = Vec::new();
    for item in &list.items {
        match item {
            ListItem::Comment(c) => extra(c.line, comment.to_string()),
            ListItem::Node(Node::Map(m)) => maps.push(m),
            ListItem::Node(_) => {}
        }
    }
    maps
}

/// The entries of one key type's list: only that type's fields.
fn check_keys(kind: &str, node: &Node, extra: &mut dyn FnMut(usize, String), comment: &str) {
    let fields = key_fields(kind);
    for key in list_maps(node, extra, comment) {
        for item in &key.items {
            match item {
                MapItem::Comment(c) => extra(c.line, comment.to_string()),
                MapItem::Entry(f) if fields.contains(&f.key.as_str()) => {
                    if let (true, Node::Map(ctx)) = (f.key == "context", &f.value) {
                        for c in ctx.items.iter().filter_map(|i| match i {
                            MapItem::Comment(c) => Some(c),
                            MapItem::Entry(_) => None,
                        }) {
                            extra(c.line, comment.to_string());
                        }
                    }
                }
                MapItem::Entry(f) => extra(
                    f.line,
                    format!(
                        "an entry `{}` in a {kind} key, which sops does not read and nothing encrypts",
                        mask(&f.key)
                    ),
                ),
            }
        }
    }
}

/// The whole form check of a loaded SOPS file: the MAC, then (the first
/// `limit` of) every entry its own recorded selector encrypts. Empty means the
/// form is intact.
pub fn check(doc: &Document, meta: &Metadata, mac_line: usize, limit: usize) -> Vec<Problem> {
    let mut problems: Vec<Problem> = mac_problem(meta, mac_line).into_iter().collect();
    for root in &doc.docs {
        if let Some(sops) = crate::formats::find_entry(root, "sops") {
            problems.extend(metadata_problems(sops));
        }
    }
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

/// How two selectors differ on one document: how many of its non-empty values
/// and comments only `a` encrypts, and how many only `b` does.
pub fn selector_difference(doc: &Document, a: &Selector, b: &Selector) -> (usize, usize) {
    let (mut only_a, mut only_b) = (0, 0);
    let _ = walk(doc, &mut |visit, pos| -> Result<(), Infallible> {
        let is_comment = match visit {
            Visit::Leaf(leaf) => match &leaf.value {
                Scalar::Null => return Ok(()),
                Scalar::Str(s) if s.is_empty() => return Ok(()),
                _ => false,
            },
            Visit::Comment(c) if c.text.trim().is_empty() => return Ok(()),
            Visit::Comment(_) => true,
        };
        match (
            a.should_encrypt_at(pos, is_comment),
            b.should_encrypt_at(pos, is_comment),
        ) {
            (true, false) => only_a += 1,
            (false, true) => only_b += 1,
            _ => {}
        }
        Ok(())
    });
    (only_a, only_b)
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

/// Every leaf of a document by key path, with its value as text (an `ENC[...]`
/// ciphertext in an encrypted document, the plaintext in a decrypted one):
/// what `git sops review` compares between two versions of a file. Leaves that
/// share a path (list items) are told apart by their position (` #2`, ...).
/// Callers must never print the values; they are for comparison only.
pub fn leaf_values(doc: &Document) -> BTreeMap<String, Zeroizing<String>> {
    let mut out: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let _ = walk(doc, &mut |visit, pos| -> Result<(), Infallible> {
        if let Visit::Leaf(leaf) = visit {
            let path = display_path(&pos.path);
            let n = seen.entry(path.clone()).or_insert(0);
            *n += 1;
            let key = if *n == 1 {
                path
            } else {
                format!("{path} #{n}")
            };
            let text = match &leaf.value {
                Scalar::Str(s) => Zeroizing::new(s.to_string()),
                Scalar::Int(i) => Zeroizing::new(format!("int:{i}")),
                Scalar::Float(f) => Zeroizing::new(format!("float:{f}")),
                Scalar::Bool(b) => Zeroizing::new(format!("bool:{b}")),
                Scalar::Time(t) => Zeroizing::new(format!("time:{t}")),
                Scalar::Null => Zeroizing::new("null".to_string()),
            };
            out.insert(key, text);
        }
        Ok(())
    });
    out
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
