//! What git-sops keeps between commands, under the git common dir, 0600 files
//! in 0700 folders: the unwrapped data keys (`data_keys`, so a `git status`
//! makes no KMS call for files it has seen) and the known blobs (`known_blobs`,
//! so clean returns the staged ciphertext byte for byte for an unchanged file,
//! and the guard can prove a committed blob is an exact copy of a secret).

pub mod data_keys;
pub mod known_blobs;
pub mod textconv_session;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::git::Git;

/// `<git common dir>/git-sops`, where both caches live: found with one question
/// to git for the common dir and one for `sops.cache`, shared by the caches a
/// command opens. Folders are created 0700, files written 0600 through a temp
/// file in the same folder and a rename, so a reader sees the old file or the
/// new one, never half of one.
#[derive(Clone, Debug)]
pub struct CacheDir {
    root: PathBuf,
    /// `git config sops.cache false`: nothing is read or written.
    enabled: bool,
}

impl CacheDir {
    /// The cache folder of `git`'s repository, whether or not it is switched off
    /// (the guard reads the known blobs either way); `None` outside a repository.
    pub fn of(git: &Git) -> Option<CacheDir> {
        let root = git.common_dir().ok()?.join("git-sops");
        let enabled = git.config_bool("sops.cache").ok().flatten() != Some(false);
        Some(CacheDir { root, enabled })
    }

    /// The folder when caching is on.
    pub fn enabled(dir: Option<&CacheDir>) -> Option<&CacheDir> {
        dir.filter(|d| d.enabled)
    }

    /// `name` under the cache folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Write `bytes` to `path` (under the cache folder), creating its folder
    /// 0700 and the file 0600. `replace`: an existing file is replaced; else it
    /// is kept and `Ok(false)` says so.
    pub fn write_private(&self, path: &Path, bytes: &[u8], replace: bool) -> std::io::Result<bool> {
        let dir = path.parent().unwrap_or(&self.root);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        // tempfile creates files 0600 on unix.
        let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        if replace {
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(true)
        } else {
            match tmp.persist_noclobber(path) {
                Ok(_) => Ok(true),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e.error),
            }
        }
    }
}
