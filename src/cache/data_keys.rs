//! The persistent data-key cache: one file per unwrapped data key under
//! `<git common dir>/git-sops/datakeys/`, mode 0600 in a 0700 folder, so that a
//! later git command (the next `git status`, textconv, a checkout) needs no KMS
//! call or age decryption. It holds secrets, so it is only used where the
//! plaintext already lives (the same user's clone in plaintext mode: an
//! encrypted working tree turns it off, see `CacheDir::of`), and `git config
//! sops.cache false` switches it off.

use std::path::PathBuf;

use super::CacheDir;
use sops_file::datakey::DataKey;
use sops_file::keycache::{KeyCache, PersistentKeys};

/// The data-key cache for commands run in `dir`'s repository: in memory, backed
/// by the disk store unless caching is switched off.
pub(crate) fn key_cache(dir: Option<&CacheDir>) -> KeyCache {
    KeyCache::new(DiskKeys::new(dir).map(|d| Box::new(d) as Box<dyn PersistentKeys>))
}

pub(crate) struct DiskKeys {
    cache: CacheDir,
    dir: PathBuf,
}

impl DiskKeys {
    /// The store of this cache folder, unless caching is switched off.
    fn new(dir: Option<&CacheDir>) -> Option<DiskKeys> {
        let cache = CacheDir::enabled(dir)?.clone();
        let dir = cache.path("datakeys");
        Some(DiskKeys { cache, dir })
    }

    fn path(&self, fingerprint: &[u8; 32]) -> PathBuf {
        self.dir.join(hex::encode(fingerprint))
    }
}

impl PersistentKeys for DiskKeys {
    fn get(&self, fingerprint: &[u8; 32]) -> Option<DataKey> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(self.path(fingerprint)).ok()?);
        let bytes = zeroize::Zeroizing::new(hex::decode(text.trim()).ok()?);
        DataKey::from_slice(&bytes)
    }

    fn put(&self, fingerprint: &[u8; 32], key: &DataKey) {
        // Best effort: a cache that cannot be written only costs a later unwrap.
        let text = zeroize::Zeroizing::new(hex::encode(key.bytes()));
        let _ = self
            .cache
            .write_private(&self.path(fingerprint), text.as_bytes(), true);
    }
}
