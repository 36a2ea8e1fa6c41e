//! Decryption: recover the data key, open every encrypted value and comment in
//! place, recompute the MAC over the plaintexts exactly as encryption did and
//! compare it with the sealed one, then drop the metadata block.

use std::borrow::Cow;

use zeroize::Zeroizing;

use super::cipher::{self, EncValue, TypeTag};
use super::datakey::DataKey;
use super::keygroups::{self, Keyring};
use super::mac::{self, MacHasher};
use super::metadata::{mac_aad, Metadata, MetadataError};
use super::plaintext::{canonical_bytes, decode};
use super::stash::IvStash;
use super::walk::{walk_source, Visit};
use super::{display_path, Error};
use crate::formats::{
    apply_edits, find_entry, str_in_source, Document, Edit, Lean, Scalar, Splicer, Store, Value,
};

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
    with_metadata(store.parse(src)?)
}

/// The document and its metadata (from the first document, as sops).
fn with_metadata(doc: Document) -> Result<(Document, Metadata), Error> {
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
    // Only this walk reads the tree: the `ENC[...]` texts can stay in `src`.
    let (doc, meta) = with_metadata(store.parse_lean(src, Lean::Sealed)?)?;
    let key = keygroups::recover(&meta, keyring)?;
    let check = if ignore_mac {
        Check::IgnoreMac
    } else {
        Check::Mac
    };
    // Nothing re-encrypts this result: its IVs are not kept (on a large file
    // the stash took more memory than the plaintext, issue 18). The tree is
    // given away, to be freed before the output is finished.
    open_with(store, src, Cow::Owned(doc), &meta, &key, check, false)
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
    open_with(store, src, Cow::Borrowed(doc), meta, key, check, true)
}

/// [`open`]; the IVs are recorded in [`Opened::ivs`] only when `keep_ivs`.
fn open_with(
    store: &dyn Store,
    src: &str,
    doc: Cow<'_, Document>,
    meta: &Metadata,
    key: &DataKey,
    check: Check,
    keep_ivs: bool,
) -> Result<Opened, Error> {
    // The plaintexts are written into the output as the walk opens them, so
    // they are never held as edits beside it (issue 18). The metadata block's
    // removal is known before the walk. Edits out of source order (a layout
    // where it does not come last) are made again and sorted: the same walk
    // gives the same edits.
    let mut splicer = Splicer::new(src, src.len(), true, store.remove_metadata(src, &doc));
    let (warnings, ivs) = open_walk(store, src, &doc, meta, key, check, keep_ivs, &mut |edit| {
        splicer.push(edit)
    })?;
    if splicer.settle() {
        // An owned tree is not needed to finish: freed before the output
        // may be copied to its exact size.
        drop(doc);
        if let Some(text) = splicer.finish() {
            return Ok(Opened {
                text,
                warnings,
                ivs,
            });
        }
        return Err(Error::Splice(crate::formats::SpliceError { at: src.len() }));
    }
    drop(splicer);
    let mut edits = Vec::new();
    let (warnings, ivs) = open_walk(store, src, &doc, meta, key, check, keep_ivs, &mut |edit| {
        edits.push(edit)
    })?;
    edits.extend(store.remove_metadata(src, &doc));
    Ok(Opened {
        text: apply_edits(src, edits)?,
        warnings,
        ivs,
    })
}

/// Open every value and comment of `doc`, handing each edit to `emit` in
/// walk order, and check the MAC as `check` says. Returns the warnings and
/// (when `keep_ivs`) the IVs.
#[allow(clippy::too_many_arguments)]
fn open_walk(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    meta: &Metadata,
    key: &DataKey,
    check: Check,
    keep_ivs: bool,
    emit: &mut dyn FnMut(Edit),
) -> Result<(Vec<String>, IvStash), Error> {
    let selector = meta.effective_selector();
    let mut hasher = MacHasher::new(meta.mac_only_encrypted);
    let mut warnings = Vec::new();
    let mut ivs = IvStash::default();
    let mut every_path: Option<Vec<String>> = None;
    let mut fallback_tries = FALLBACK_TRIES;
    walk_source(doc, src, &mut |visit, pos| {
        match visit {
            Visit::Leaf(leaf) => {
                if leaf.value == Scalar::Null {
                    return Ok(());
                }
                // An `ENC[...]` left in the source by `parse_lean`.
                let in_source = str_in_source(src, leaf);
                if !selector.should_encrypt_at(pos, false) {
                    match in_source {
                        Some(text) => hasher.leaf(text.as_bytes(), false),
                        None => hasher.leaf(&canonical_bytes(&leaf.value), false),
                    }
                    return Ok(());
                }
                let path = || display_path(&pos.path);
                let text = match &leaf.value {
                    _ if in_source.is_some() => in_source.unwrap_or(""),
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
                        Some(edit) => emit(edit),
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
                emit(Edit::replace(
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
                    let all = every_path.get_or_insert_with(|| collection_paths(doc, src));
                    open_comment_any(key, &comment.text, all, &mut fallback_tries)
                });
                match opened {
                    Some((plain, aad, iv)) => {
                        if keep_ivs {
                            ivs.record(&aad, TypeTag::Comment, plain.as_bytes(), &iv);
                        }
                        emit(Edit::replace(comment.span.clone(), plain));
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
    Ok((warnings, ivs))
}

/// How many enclosing paths [`open_comment`] tries besides the comment's own.
/// Each try hashes the whole path, so trying every ancestor of a deep comment
/// would cost depth² per comment on a hostile file.
const COMMENT_ANCESTORS: usize = 16;

/// Open an encrypted comment. Its AAD is the path of the collection holding it;
/// where YAML comment placement is ambiguous between a collection and its
/// ancestors, up to [`COMMENT_ANCESTORS`] enclosing paths are tried too (the GCM
/// tag decides). Returns the plaintext, the AAD that opened it and its IV.
fn open_comment<S: AsRef<str>>(
    key: &DataKey,
    text: &str,
    path: &[S],
) -> Option<(String, String, Vec<u8>)> {
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

/// The AAD of the collections of the document of `src` that hold a value or
/// comment, within the bounds above.
fn collection_paths(doc: &Document, src: &str) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut visits = 0;
    // `Err(None)`: enough seen.
    let _ = walk_source(doc, src, &mut |_, pos| {
        visits += 1;
        if visits > FALLBACK_VISITS || out.len() >= FALLBACK_PATHS {
            return Err(None::<crate::formats::FormatError>);
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
        Ok(())
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

    /// A tree from `parse_lean` (the `ENC[...]` texts left in the source)
    /// decrypts to exactly what the whole tree does, an `ENC[...]` string kept
    /// as a plaintext included (it counts in the MAC as it is).
    #[test]
    fn a_sealed_tree_opens_like_the_whole_tree() {
        use crate::encrypt::{seal, FreshIvs};
        use crate::selectors::Selector;
        let enc = "ENC[AES256_GCM,data:QUJD,iv:QUJD,tag:QUJD,type:str]";
        let cases = [
            (
                Format::Json,
                format!("{{\"a\": \"x\", \"b_unencrypted\": \"{enc}\",\n \"c\": [1, \"y\\n\", \"\"], \"d\": {{\"e\": true, \"f\": null}}}}\n"),
            ),
            (
                Format::Yaml,
                format!("# top\na: x\nb_unencrypted: {enc}\nc:\n  - 1\n  # in a list\n  - 'y'\n  - |\n    z\nd: {{e: true, f: null, g: [h]}}\n"),
            ),
        ];
        for (format, src) in cases {
            let store = format.store();
            let key = DataKey::from_bytes([7; 32]);
            let mut meta = Metadata {
                key_groups: Vec::new(),
                shamir_threshold: 0,
                lastmodified: String::new(),
                mac: String::new(),
                selector: Some(Selector::default_suffix()),
                mac_only_encrypted: false,
                version: String::new(),
            };
            let doc = store.parse(&src).unwrap();
            let enc = seal(store, &src, &doc, &key, &mut meta, &mut FreshIvs).unwrap();
            let whole = store.parse(&enc).unwrap();
            let whole = open(store, &enc, &whole, &meta, &key, Check::Mac).unwrap();
            assert_eq!(whole.text.as_str(), src);
            let sealed = store.parse_lean(&enc, Lean::Sealed).unwrap();
            let lean = open_with(
                store,
                &enc,
                Cow::Owned(sealed),
                &meta,
                &key,
                Check::Mac,
                false,
            );
            assert_eq!(lean.unwrap().text.as_str(), src);
        }
    }

    /// Found in review: a comment that opens under no path was tried against
    /// every collection of the file (comments × collections GCM passes).
    #[test]
    fn the_comment_fallback_is_bounded() {
        let src: String = (0..5000).map(|i| format!("k{i}:\n  v: 1\n")).collect();
        let doc = Format::Yaml.store().parse(&src).unwrap();
        let paths = collection_paths(&doc, &src);
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
        assert!(collection_paths(&doc, &deep).is_empty());
    }
}
