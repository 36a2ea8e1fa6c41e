//! Encryption: every leaf the selector picks is replaced, in place, by its
//! `ENC[...]` value; comments are encrypted the same way; the MAC is computed over
//! the canonical plaintexts in walk order and sealed into a new metadata block.

use zeroize::Zeroizing;

use super::cipher::{self, TypeTag};
use super::datakey::DataKey;
use super::keygroups::{self, Recipient};
use super::keypool::{KeyPool, Wrapped};
use super::mac::{self, MacHasher};
use super::metadata::{now_rfc3339, Metadata, SOPS_VERSION};
use super::plaintext::{canonical_bytes, encrypted_bytes, type_tag};
use super::selectors::Selector;
use super::walk::{walk_source, Visit};
use super::Error;
use crate::formats::{
    apply_edits, find_entry, str_in_source, Document, Edit, Lean, Scalar, Splicer, Store,
};

/// What a new file is encrypted for and how (from the command line or a creation rule).
#[derive(Clone, Debug)]
pub struct EncryptSpec {
    pub key_groups: Vec<Vec<Recipient>>,
    pub shamir_threshold: usize,
    /// `None`: sops' default, `unencrypted_suffix: _unencrypted` (and it is written).
    pub selector: Option<Selector>,
    pub mac_only_encrypted: bool,
}

/// Chooses the IV for each encrypted value. A fresh random IV for every value is
/// the default; the clean filter reuses the IVs of unchanged values instead.
pub trait Ivs {
    fn iv(&mut self, aad: &str, tag: TypeTag, plaintext: &[u8]) -> [u8; 32];
    /// Whether [`Ivs::iv`] would give back a remembered IV for exactly this.
    fn has(&self, _aad: &str, _tag: TypeTag, _plaintext: &[u8]) -> bool {
        false
    }
}

pub struct FreshIvs;

impl Ivs for FreshIvs {
    fn iv(&mut self, _aad: &str, _tag: TypeTag, _plaintext: &[u8]) -> [u8; 32] {
        cipher::random_iv()
    }
}

/// Encrypt a plaintext file for `spec` under a new data key.
pub fn encrypt(store: &dyn Store, src: &str, spec: &EncryptSpec) -> Result<String, Error> {
    // Only the walk below reads the tree: the strings can stay in `src`.
    let doc = store.parse_lean(src, Lean::Strings)?;
    if doc
        .docs
        .iter()
        .any(|root| find_entry(root, "sops").is_some())
    {
        return Err(Error::AlreadyEncrypted);
    }
    let (key, mut meta) = new_metadata(spec)?;
    // The edits are written into the output as the walk makes them: the
    // encrypted values, several times the size of the plaintext, are never
    // held as edits beside the output (issue 18). Fresh IVs make doing it
    // again the other way harmless when they come out of source order
    // (several YAML documents, each with a metadata block added at its end).
    let mut splicer = Splicer::new(src, src.len(), false, Vec::new());
    seal_walk(
        store,
        src,
        &doc,
        &key,
        &mut meta,
        &mut FreshIvs,
        &mut |edit| splicer.push(edit),
    )?;
    let spliced = splicer.finish();
    let edits = match spliced {
        Some(_) => Vec::new(),
        None => seal_edits(store, src, &doc, &key, &mut meta, &mut FreshIvs)?,
    };
    // The plaintext tree is not needed to read the output back: dropped
    // first, so it never takes memory at the same time as the check's.
    drop(doc);
    let out = match spliced {
        Some(mut out) => std::mem::take(&mut *out),
        None => splice(src, edits)?,
    };
    readable(store, out)
}

/// A new data key wrapped for `spec`'s recipients, and the metadata to seal with it.
pub fn new_metadata(spec: &EncryptSpec) -> Result<(DataKey, Metadata), Error> {
    let wrapped = keygroups::wrap_new(&spec.key_groups, spec.shamir_threshold)?;
    Ok(metadata_for(spec, wrapped))
}

/// [`new_metadata`] with the data key from `pool`: one wrapped ahead of demand
/// when a process encrypts many new files for the same recipients.
pub fn new_metadata_from(pool: &KeyPool, spec: &EncryptSpec) -> Result<(DataKey, Metadata), Error> {
    let wrapped = pool.wrap_new(&spec.key_groups, spec.shamir_threshold)?;
    Ok(metadata_for(spec, wrapped))
}

fn metadata_for(spec: &EncryptSpec, wrapped: Wrapped) -> (DataKey, Metadata) {
    let (key, key_groups, shamir_threshold) = wrapped;
    let meta = Metadata {
        key_groups,
        shamir_threshold,
        lastmodified: String::new(),
        mac: String::new(),
        selector: Some(
            spec.selector
                .clone()
                .unwrap_or_else(Selector::default_suffix),
        ),
        mac_only_encrypted: spec.mac_only_encrypted,
        version: SOPS_VERSION.to_string(),
    };
    (key, meta)
}

/// Encrypt the parsed plaintext `doc` of `src` with `key`, filling in
/// `lastmodified` and the MAC of `meta`, and append the metadata block.
pub fn seal(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    key: &DataKey,
    meta: &mut Metadata,
    ivs: &mut dyn Ivs,
) -> Result<String, Error> {
    let edits = seal_edits(store, src, doc, key, meta, ivs)?;
    readable(store, splice(src, edits)?)
}

/// The output: `src` with `edits` applied.
fn splice(src: &str, edits: Vec<Edit>) -> Result<String, Error> {
    let mut out = apply_edits(src, edits)?;
    Ok(std::mem::take(&mut *out))
}

/// Never hand out a file that cannot be read back: quoting an `ENC[...]` can
/// turn a layout the parser tolerated into one it rejects.
fn readable(store: &dyn Store, out: String) -> Result<String, Error> {
    store.check(&out).map_err(Error::Unreadable)?;
    Ok(out)
}

/// The edits [`seal`] makes to `src`.
fn seal_edits(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    key: &DataKey,
    meta: &mut Metadata,
    ivs: &mut dyn Ivs,
) -> Result<Vec<Edit>, Error> {
    let mut edits = Vec::new();
    seal_walk(store, src, doc, key, meta, ivs, &mut |edit| {
        edits.push(edit)
    })?;
    Ok(edits)
}

/// Make the edits [`seal`] makes to `src`, handing each to `emit` (in walk
/// order, then the metadata blocks).
fn seal_walk(
    store: &dyn Store,
    src: &str,
    doc: &Document,
    key: &DataKey,
    meta: &mut Metadata,
    ivs: &mut dyn Ivs,
    emit: &mut dyn FnMut(Edit),
) -> Result<(), Error> {
    let selector = meta.effective_selector();
    let mut hasher = MacHasher::new(meta.mac_only_encrypted);
    walk_source(doc, src, &mut |visit, pos| {
        match visit {
            Visit::Leaf(leaf) => {
                // A string left in the source by `parse_lean`, copied for
                // this leaf only.
                let copied;
                let value = match str_in_source(src, leaf) {
                    Some(text) => {
                        copied = Scalar::Str(Zeroizing::new(text.to_string()));
                        &copied
                    }
                    None => &leaf.value,
                };
                let Some(tag) = type_tag(value) else {
                    return Ok(()); // null: neither encrypted nor hashed
                };
                let encrypt = selector.should_encrypt_at(pos, false);
                let canonical = canonical_bytes(value);
                hasher.leaf(&canonical, encrypt);
                // Empty strings stay "" (sops cannot represent an empty ENC value).
                if encrypt && !canonical.is_empty() {
                    let aad = pos.aad();
                    let mut bytes = encrypted_bytes(value, &src[leaf.span.clone()]);
                    // An unchanged value that was encrypted in its canonical form
                    // (sops writes `True`, `1e+06` as `1000000`) keeps that form
                    // and its ciphertext, rather than being re-encrypted as spelt.
                    if !ivs.has(aad, tag, &bytes) && ivs.has(aad, tag, &canonical) {
                        bytes = canonical.clone();
                    }
                    let iv = ivs.iv(aad, tag, &bytes);
                    let enc = cipher::encrypt(key, &bytes, aad, tag, &iv);
                    emit(Edit::replace(
                        leaf.span.clone(),
                        store.encrypted_leaf(leaf, &enc),
                    ));
                }
            }
            Visit::Comment(comment) => {
                if comment.text.is_empty() || !selector.should_encrypt_at(pos, true) {
                    return Ok(());
                }
                let aad = pos.aad();
                let iv = ivs.iv(aad, TypeTag::Comment, comment.text.as_bytes());
                let enc = cipher::encrypt(key, comment.text.as_bytes(), aad, TypeTag::Comment, &iv);
                if let Selector::UnencryptedCommentRegex(re) = &selector {
                    if re.is_match(&enc) {
                        return Err(Error::CommentMatchesUnencryptedRegex);
                    }
                }
                emit(Edit::replace(comment.span.clone(), enc));
            }
        }
        Ok(())
    })?;
    meta.lastmodified = now_rfc3339();
    // The block is written in 3.11's layout, whatever version wrote it before.
    meta.version = SOPS_VERSION.to_string();
    // Written as whole-second UTC, so it is its own RFC3339 re-formatting (the MAC's AAD).
    meta.mac = mac::seal(key, &hasher.finish(), &meta.lastmodified);
    for edit in store.insert_metadata(src, doc, &meta.to_value()) {
        emit(edit);
    }
    Ok(())
}
