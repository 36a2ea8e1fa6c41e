//! The persistent data-key cache: one file per unwrapped data key under
//! `<git common dir>/git-sops/datakeys/`, mode 0600 in a 0700 folder, so that a
//! later git command (the next `git status`, textconv, a checkout) needs no KMS
//! call or age decryption. It holds secrets, so it is only used where the
//! plaintext already lives (the same user's clone), and `git config sops.cache
//! false` switches it off.

use std::path::PathBuf;

use crate::git::Git;
use sops_file::datakey::DataKey;
use sops_file::keycache::{KeyCache, PersistentKeys};

/// The data-key cache for commands run in `git`'s repository: in memory, backed
/// by the disk store unless it is switched off.
pub(crate) fn key_cache(git: &Git) -> KeyCache {
    KeyCache::new(DiskKeys::for_repo(git).map(|d| Box::new(d) as Box<dyn PersistentKeys>))
}

pub(crate) struct DiskKeys {
    dir: PathBuf,
}

impl DiskKeys {
    /// The store for this repository, unless the cache is switched off.
    pub(crate) fn for_repo(git: &Git) -> Option<DiskKeys> {
        if git.config_bool("sops.cache").ok().flatten() == Some(false) {
            return None;
        }
        let dir = git.common_dir().ok()?.join("git-sops").join("datakeys");
        Some(DiskKeys { dir })
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
        let _ = write_private(&self.dir, &self.path(fingerprint), &text);
    }
}

fn write_private(dir: &std::path::Path, path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".key-").tempfile_in(dir)?;
    // tempfile creates files 0600 on unix.
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
