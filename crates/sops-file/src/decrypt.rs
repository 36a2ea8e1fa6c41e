//! Decryption: recover the data key, open every encrypted value and comment in
//! place, recompute the MAC over the plaintexts exactly as encryption did and
//! compare it with the sealed one, then drop the metadata block.

use zeroize::Zeroizing;

use super::cipher::{self, EncValue, TypeTag};
use super::datakey::DataKey;
use super::keygroups::{self, Keyring};
use super::mac::{self, MacHasher};
use super::metadata::{mac_aad, Metadata, MetadataError};
use super::plaintext::{canonical_bytes, decode};
use super::stash::IvStash;
use super::walk::{walk, Visit};
use super::{display_path, Error};
use crate::formats::{apply_edits, find_entry, Document, Edit, Scalar, Store, Value};

/// A decrypted file.
pub struct Opened {
    pub text: Zeroizing<String>,
    /// Things sops would also only warn about (e.g. a comment that is not encrypted).
    pub warnings: Vec<String>,
    /// The IV of every value, for re-encrypting unchanged values byte for byte
    /// (empty from [`decrypt`], whose result is not encrypted again).
    pub ivs: IvStash,
}

/// How strictly [`open`] reads a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Every value the selector encrypts must be `ENC[...]`, and the MAC must match.
    Mac,
    /// As `Mac`, without the MAC (sops' `--ignore-mac`).
    IgnoreMac,
    /// Plaintext entries where the selector encrypts are kept as they are (the
    /// clean filter then encrypts them); the MAC cannot match and is not checked.
    /// Each `ENC[...]` value must still authenticate under its own path.
    Mixed,
}

/// Parse an encrypted file and read its metadata (from the first document, as sops).
pub fn load(store: &dyn Store, src: &str) -> Result<(Document, Metadata), Error> {
    let doc = store.parse(src)?;
    let entry = doc
        .docs
        .first()
        .and_then(|root| find_entry(root, "sops"))
        .ok_or(Error::NotEncrypted)?;
    let meta = Metadata::from_value(&Value::from_node(&entry.value))?;
    Ok((doc, meta))
}

/// Decrypt a whole file with the keys this process can use.
pub fn decrypt(
    store: &dyn Store,
    src: &str,
    keyring: &Keyring,
    ignore_mac: bool,
) -> Result<Opened, Error> {
    let (doc, meta) = load(store, src)?;
    let key = keygroups::recover(&meta, keyring)?;
    let check = if ignore_mac {
        Check::IgnoreMac
    } else {
        Check::Mac
    };
    // Nothing re-encrypts this result: its IVs are not kept (on a large file
    // the stash took more memory than the plaintext, issue 18).
    open_with(store, src, &doc, &meta, &key, check, false)
}

/// Decrypt a loaded document with its data key.
pub fn open(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    meta: &Metadata,
    key: &DataKey,
    check: Check,
) -> Result<Opened, Error> {
    open_with(store, src, doc, meta, key, check, true)
}

/// [`open`]; the IVs are recorded in [`Opened::ivs`] only when `keep_ivs`.
fn open_with(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    meta: &Metadata,
    key: &DataKey,
    check: Check,
    keep_ivs: bool,
) -> Result<Opened, Error> {
    let selector = meta.effective_selector();
    let mut hasher = MacHasher::new(meta.mac_only_encrypted);
    let mut edits = Vec::new();
    let mut warnings = Vec::new();
    let mut ivs = IvStash::default();
    let mut every_path: Option<Vec<String>> = None;
    let mut fallback_tries = FALLBACK_TRIES;
    walk(doc, &mut |visit, pos| {
        match visit {
            Visit::Leaf(leaf) => {
                if leaf.value == Scalar::Null {
                    return Ok(());
                }
                if !selector.should_encrypt_at(pos, false) {
                    hasher.leaf(&canonical_bytes(&leaf.value), false);
                    return Ok(());
                }
                let path = || display_path(&pos.path);
                let text = match &leaf.value {
                    Scalar::Str(s) if s.is_empty() => return Ok(()),
                    Scalar::Str(s) if cipher::is_enc(s) => s,
                    _ if check == Check::Mixed => return Ok(()),
                    _ => {
                        return Err(Error::Plaintext {
                            path: path(),
                            line: leaf.line,
                        })
                    }
                };
                let value_err = |source| Error::Value {
                    path: path(),
                    line: leaf.line,
                    source,
                };
                let enc = EncValue::parse(text).map_err(value_err)?;
                let aad = pos.aad();
                let bytes = cipher::decrypt(key, &enc, aad).map_err(value_err)?;
                if keep_ivs {
                    ivs.record(aad, enc.type_tag, &bytes, &enc.iv);
                }
                let spelling = std::str::from_utf8(&bytes).map_err(|_| Error::BadPlaintext {
                    path: path(),
                    line: leaf.line,
                    source: super::plaintext::BadPlaintext("UTF-8 string"),
                })?;
                if enc.type_tag == TypeTag::Comment {
                    // sops stores encrypted comments inside lists as list items; they
                    // are comments again once decrypted and the MAC skips them.
                    match store.list_comment(src, leaf, spelling) {
                        Some(edit) => edits.push(edit),
                        None => warnings.push(format!(
                            "line {}: a comment stored as a value at {} was left encrypted",
                            leaf.line,
                            path()
                        )),
                    }
                    return Ok(());
                }
                let value = decode(enc.type_tag, &bytes).map_err(|source| Error::BadPlaintext {
                    path: path(),
                    line: leaf.line,
                    source,
                })?;
                hasher.leaf(&canonical_bytes(&value), true);
                edits.push(Edit::replace(
                    leaf.span.clone(),
                    store.plain_leaf(leaf, &value, spelling),
                ));
            }
            Visit::Comment(comment) => {
                if !cipher::is_enc(&comment.text) {
                    if selector.should_encrypt_at(pos, true) && !comment.text.trim().is_empty() {
                        warnings.push(format!(
                            "line {}: found a comment that is not encrypted",
                            comment.line
                        ));
                    }
                    return Ok(());
                }
                let opened = open_comment(key, &comment.text, &pos.path).or_else(|| {
                    let all = every_path.get_or_insert_with(|| collection_paths(doc));
                    open_comment_any(key, &comment.text, all, &mut fallback_tries)
                });
                match opened {
                    Some((plain, aad, iv)) => {
                        if keep_ivs {
                            ivs.record(&aad, TypeTag::Comment, plain.as_bytes(), &iv);
                        }
                        edits.push(Edit::replace(comment.span.clone(), plain));
                    }
                    None => warnings.push(format!(
                        "line {}: an encrypted comment could not be decrypted and was left as it is",
                        comment.line
                    )),
                }
            }
        }
        Ok(())
    })?;
    if check == Check::Mac {
        verify_mac(key, meta, hasher.finish())?;
    }
    edits.extend(store.remove_metadata(src, doc));
    Ok(Opened {
        text: apply_edits(src, edits)?,
        warnings,
        ivs,
    })
}

/// How many enclosing paths [`open_comment`] tries besides the comment's own.
/// Each try hashes the whole path, so trying every ancestor of a deep comment
/// would cost depth² per comment on a hostile file.
const COMMENT_ANCESTORS: usize = 16;

/// Open an encrypted comment. Its AAD is the path of the collection holding it;
/// where YAML comment placement is ambiguous between a collection and its
/// ancestors, up to [`COMMENT_ANCESTORS`] enclosing paths are tried too (the GCM
/// tag decides). Returns the plaintext, the AAD that opened it and its IV.
fn open_comment(key: &DataKey, text: &str, path: &[&str]) -> Option<(String, String, Vec<u8>)> {
    let enc = EncValue::parse(text).ok()?;
    let shallowest = path.len().saturating_sub(COMMENT_ANCESTORS);
    (shallowest..=path.len()).rev().find_map(|depth| {
        let aad = super::walk::aad(&path[..depth]);
        let bytes = cipher::decrypt(key, &enc, &aad).ok()?;
        let plain = String::from_utf8(bytes.to_vec()).ok()?;
        Some((plain, aad, enc.iv.clone()))
    })
}

/// Bounds on the fallback of [`open_comment_any`]. A hostile file can hold
/// many encrypted comments that open under no path and many collections, and
/// every try is a GCM pass over the path: the paths tried are the first
/// [`FALLBACK_PATHS`] collections (of at most [`FALLBACK_AAD_LEN`] bytes each,
/// found within the first [`FALLBACK_VISITS`] items), with at most
/// [`FALLBACK_TRIES`] tries per file. A comment left over stays encrypted, with
/// a warning.
const FALLBACK_PATHS: usize = 1024;
const FALLBACK_AAD_LEN: usize = 1024;
const FALLBACK_VISITS: usize = 64 * 1024;
const FALLBACK_TRIES: usize = 16 * 1024;

/// Open an encrypted comment bound to some other collection of the document: a
/// file written while comments were bound differently (by an earlier git-sops,
/// or by sops itself, whose output does not always read back with the binding
/// it encrypted with). Comments are not covered by the MAC; the GCM tag still
/// proves the data key encrypted this text. Each try spends one of `budget`.
fn open_comment_any(
    key: &DataKey,
    text: &str,
    paths: &[String],
    budget: &mut usize,
) -> Option<(String, String, Vec<u8>)> {
    let enc = EncValue::parse(text).ok()?;
    paths.iter().find_map(|aad| {
        *budget = budget.checked_sub(1)?;
        let bytes = cipher::decrypt(key, &enc, aad).ok()?;
        let plain = String::from_utf8(bytes.to_vec()).ok()?;
        Some((plain, aad.clone(), enc.iv.clone()))
    })
}

/// The AAD of the collections of the document that hold a value or comment,
/// within the bounds above.
fn collection_paths(doc: &Document) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut visits = 0;
    let _ = walk(doc, &mut |_, pos| {
        visits += 1;
        if visits > FALLBACK_VISITS || out.len() >= FALLBACK_PATHS {
            return Err(());
        }
        let full = pos.aad();
        if full.len() > FALLBACK_AAD_LEN {
            return Ok(());
        }
        // Deepest first: once a prefix is known, so are all shorter ones.
        let mut end = full.len();
        for depth in (0..=pos.path.len()).rev() {
            let aad = if depth == 0 { ":" } else { &full[..end] };
            if !out.insert(aad.to_string()) {
                break;
            }
            if let Some(key) = depth.checked_sub(1).and_then(|d| pos.path.get(d)) {
                end -= key.len() + 1;
            }
        }
        Ok::<(), ()>(())
    });
    out.into_iter().take(FALLBACK_PATHS).collect()
}

/// Compare the MAC recomputed over the plaintexts with the one sealed in `meta`.
pub(super) fn verify_mac(key: &DataKey, meta: &Metadata, computed: String) -> Result<(), Error> {
    let aad = mac_aad(&meta.lastmodified).ok_or_else(|| {
        Error::Metadata(MetadataError::Malformed {
            field: "lastmodified".into(),
            why: "not an RFC3339 time".into(),
        })
    })?;
    let stored = mac::open(key, &meta.mac, &aad).map_err(Error::MacUnreadable)?;
    if stored.as_deref() != Some(computed.as_str()) {
        return Err(Error::MacMismatch { stored, computed });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::Format;

    /// Found in review: a comment that opens under no path was tried against
    /// every collection of the file (comments × collections GCM passes).
    #[test]
    fn the_comment_fallback_is_bounded() {
        let src: String = (0..5000).map(|i| format!("k{i}:\n  v: 1\n")).collect();
        let doc = Format::Yaml.store().parse(&src).unwrap();
        let paths = collection_paths(&doc);
        assert_eq!(paths.len(), FALLBACK_PATHS);
        assert!(paths.contains(&":".to_string()) && paths.contains(&"k0:".to_string()));
        let key = DataKey::from_bytes([1; 32]);
        let enc = "ENC[AES256_GCM,data:AAAA,iv:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,tag:AgICAgICAgICAgICAgICAg==,type:comment]";
        let mut budget = 10;
        assert!(open_comment_any(&key, enc, &paths, &mut budget).is_none());
        assert_eq!(budget, 0);
        assert!(open_comment_any(&key, enc, &paths, &mut budget).is_none());
        // Long paths are not tried at all.
        let deep = format!("{}v: 1{}\n", "abcdef: {".repeat(200), "}".repeat(200));
        let doc = Format::Yaml.store().parse(&deep).unwrap();
        assert!(collection_paths(&doc).is_empty());
    }
}
