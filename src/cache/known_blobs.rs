//! What each stored blob decrypts to, remembered as keyed hashes, so that clean
//! can recognise an unchanged file without decrypting anything.
//!
//! After a touch (or a checkout, or any racy-git moment) git cleans every
//! stat-dirty file to learn whether it changed. For an unchanged file clean must
//! return the staged blob byte for byte (docs/architecture.md §3), and proving
//! "unchanged" used to mean parsing the blob, unwrapping nothing but still
//! decrypting every value and recomputing the MAC. Here smudge and clean record
//! `SHA-256(blob) → HMAC(secret, format ‖ plaintext)` for every blob they produce
//! or decrypt; clean then needs one hash of the plaintext and one lookup.
//!
//! The records live in `<git common dir>/git-sops/known-blobs` (0600, created
//! with the random HMAC key as its first 32 bytes), next to the data-key cache
//! and switched off with it (`git config sops.cache false`). They hold no
//! plaintext, and being keyed, a record can only be checked against a guess by
//! someone who can read this file — who can read the data keys beside it too.
//! Records are appended with one `write` each (several git commands may run at
//! once); a torn tail is ignored, and the file starts over past a size limit.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::CacheDir;
use sops_file::formats::Format;

const KEY_LEN: usize = 32;
const RECORD_LEN: usize = 64;
/// Past this size the file is started afresh (about 260 000 records).
const MAX_LEN: u64 = 16 << 20;

pub(crate) struct KnownBlobs {
    cache: CacheDir,
    path: PathBuf,
    key: Zeroizing<[u8; KEY_LEN]>,
    known: HashMap<[u8; 32], [u8; 32]>,
    file: Option<File>,
    /// Every recorded plaintext tag, for [`KnownBlobs::knows_plaintext`].
    tags: std::cell::OnceCell<std::collections::HashSet<[u8; 32]>>,
}

impl KnownBlobs {
    /// The records in the cache folder; `None` when caching is switched off or
    /// the records cannot be read or created (then clean simply decrypts).
    pub fn open(dir: Option<&CacheDir>) -> Option<KnownBlobs> {
        let dir = CacheDir::enabled(dir)?;
        let path = dir.path("known-blobs");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) if usable(&bytes) => bytes,
            // Too large, or a torn record that later appends would misalign.
            Ok(_) => create(dir, &path, true)?,
            Err(_) => create(dir, &path, false)?,
        };
        Some(KnownBlobs::from_bytes(dir.clone(), path, &bytes))
    }

    /// The records as they are, without creating or repairing anything (the
    /// guard only reads them, switched off or not); `None` when there are none.
    pub fn existing(dir: Option<&CacheDir>) -> Option<KnownBlobs> {
        let dir = dir?;
        let path = dir.path("known-blobs");
        let bytes = std::fs::read(&path).ok().filter(|b| usable(b))?;
        Some(KnownBlobs::from_bytes(dir.clone(), path, &bytes))
    }

    fn from_bytes(cache: CacheDir, path: PathBuf, bytes: &[u8]) -> KnownBlobs {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&bytes[..KEY_LEN]);
        let known = bytes[KEY_LEN..]
            .chunks_exact(RECORD_LEN)
            .filter_map(|r| Some((r[..32].try_into().ok()?, r[32..].try_into().ok()?)))
            .collect();
        KnownBlobs {
            cache,
            path,
            key,
            known,
            file: None,
            tags: std::cell::OnceCell::new(),
        }
    }

    /// The blob clean last produced for `path` in any process, if that was at
    /// most `within` ago (see [`KnownBlobs::remember_cleaned`]).
    pub(crate) fn last_cleaned(&self, path: &str, within: std::time::Duration) -> Option<Vec<u8>> {
        let file = self.cleaned_file(path);
        let age = std::fs::metadata(&file)
            .ok()?
            .modified()
            .ok()?
            .elapsed()
            .ok()?;
        (age <= within).then(|| std::fs::read(&file).ok())?
    }

    /// Remember the blob clean produced for `path`. `git commit PATH` cleans
    /// the file twice, for its temporary index and for the real one; with the
    /// one-shot `clean %f` these are two processes, and fresh IVs would make two
    /// different blobs, leaving the real index different from the commit. The
    /// blob is ciphertext; clean uses it only as a template, like the staged one.
    pub(crate) fn remember_cleaned(&self, path: &str, blob: &[u8]) {
        // Best effort, atomic: a reader sees the old blob or the new one.
        let _ = self
            .cache
            .write_private(&self.cleaned_file(path), blob, true);
    }

    fn cleaned_file(&self, path: &str) -> PathBuf {
        let name = hex::encode(Sha256::digest(path.as_bytes()));
        self.path.with_file_name("cleaned").join(name)
    }

    /// Is `content`, read as any format, exactly what some recorded blob
    /// decrypts to? The guard asks this of unprotected files: a decrypted copy
    /// of a protected file, wherever it was put, is proven without a key.
    pub(crate) fn knows_plaintext(&self, content: &[u8]) -> bool {
        let tags = self
            .tags
            .get_or_init(|| self.known.values().copied().collect());
        [
            Format::Yaml,
            Format::Json,
            Format::Dotenv,
            Format::Ini,
            Format::Binary,
        ]
        .into_iter()
        .any(|f| tags.contains(&self.tag(f, content)))
    }

    /// Does `blob` decrypt to `plaintext` as a `format` file (as recorded)?
    pub fn matches(&self, blob: &[u8], format: Format, plaintext: &[u8]) -> bool {
        self.known.get(&blob_id(blob)) == Some(&self.tag(format, plaintext))
    }

    /// Remember that `blob` decrypts to `plaintext` as a `format` file.
    pub fn record(&mut self, blob: &[u8], format: Format, plaintext: &[u8]) {
        let id = blob_id(blob);
        let tag = self.tag(format, plaintext);
        if self.known.insert(id, tag) == Some(tag) {
            return;
        }
        if self.file.is_none() {
            self.file = OpenOptions::new().append(true).open(&self.path).ok();
        }
        let mut record = [0u8; RECORD_LEN];
        record[..32].copy_from_slice(&id);
        record[32..].copy_from_slice(&tag);
        // Best effort: a record that cannot be written only costs a later decryption.
        if let Some(file) = self.file.as_mut() {
            let _ = file.write_all(&record);
        }
    }

    /// HMAC-SHA256 (RFC 2104) of the format name and the plaintext.
    fn tag(&self, format: Format, plaintext: &[u8]) -> [u8; 32] {
        let mut ipad = Zeroizing::new([0x36u8; 64]);
        let mut opad = Zeroizing::new([0x5cu8; 64]);
        for (i, k) in self.key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let inner = Sha256::new()
            .chain_update(&ipad[..])
            .chain_update(format.name().as_bytes())
            .chain_update([0])
            .chain_update(plaintext)
            .finalize();
        Sha256::new()
            .chain_update(&opad[..])
            .chain_update(inner)
            .finalize()
            .into()
    }
}

fn usable(bytes: &[u8]) -> bool {
    bytes.len() >= KEY_LEN
        && (bytes.len() as u64) < MAX_LEN
        && (bytes.len() - KEY_LEN).is_multiple_of(RECORD_LEN)
}

fn blob_id(blob: &[u8]) -> [u8; 32] {
    Sha256::digest(blob).into()
}

/// A new records file holding a fresh key (`replace`: in place of an unusable
/// one); when another process created one first, that one is used.
fn create(dir: &CacheDir, path: &std::path::Path, replace: bool) -> Option<Vec<u8>> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key[..]);
    if dir.write_private(path, &key[..], replace).ok()? {
        return Some(key.to_vec());
    }
    let mut bytes = Vec::new();
    File::open(path).ok()?.read_to_end(&mut bytes).ok()?;
    usable(&bytes).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Git;

    fn open(git: &Git) -> Option<KnownBlobs> {
        KnownBlobs::open(CacheDir::of(git).as_ref())
    }

    fn in_repo() -> (tempfile::TempDir, Git) {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = Git::new(dir.path());
        git.run(&["init", "-q"]).expect("git init");
        (dir, git)
    }

    #[test]
    fn records_survive_across_processes_and_are_private() {
        let (_dir, git) = in_repo();
        let mut a = open(&git).expect("cache");
        a.record(b"blob", Format::Yaml, b"x: 1\n");
        assert!(a.matches(b"blob", Format::Yaml, b"x: 1\n"));
        let b = open(&git).expect("cache");
        assert!(b.matches(b"blob", Format::Yaml, b"x: 1\n"));
        assert!(!b.matches(b"blob", Format::Yaml, b"x: 2\n"));
        assert!(!b.matches(b"blob", Format::Binary, b"x: 1\n"));
        assert!(!b.matches(b"other", Format::Yaml, b"x: 1\n"));
        let file = git.common_dir().expect("dir").join("git-sops/known-blobs");
        let bytes = std::fs::read(&file).expect("read");
        assert_eq!(bytes.len(), KEY_LEN + RECORD_LEN);
        assert!(!bytes.windows(4).any(|w| w == b"x: 1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir = std::fs::metadata(file.parent().expect("dir")).expect("meta");
            assert_eq!(dir.permissions().mode() & 0o777, 0o700);
        }
    }

    #[test]
    fn a_torn_tail_starts_afresh_and_the_cache_can_be_switched_off() {
        let (_dir, git) = in_repo();
        let mut a = open(&git).expect("cache");
        a.record(b"blob", Format::Json, b"{}");
        let file = git.common_dir().expect("dir").join("git-sops/known-blobs");
        OpenOptions::new()
            .append(true)
            .open(&file)
            .and_then(|mut f| f.write_all(&[7; 10]))
            .expect("append");
        let mut b = open(&git).expect("cache");
        assert!(!b.matches(b"blob", Format::Json, b"{}"), "a new key");
        b.record(b"blob", Format::Json, b"{}");
        let c = open(&git).expect("cache");
        assert!(c.matches(b"blob", Format::Json, b"{}"));
        git.run(&["config", "sops.cache", "false"]).expect("config");
        assert!(open(&git).is_none());
    }
}
