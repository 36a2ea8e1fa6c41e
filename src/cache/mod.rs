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

/// Whether the caches are on: `sops.cache` when set; otherwise on, except in
/// a clone whose `sops.worktree` says encrypted. Such a clone promises that
/// its disk holds nothing that opens its ciphertext, and an unwrapped data key
/// under `.git` beside the ciphertext is as good as the plaintext to whoever
/// reads the disk (a backup, a lost laptop); the known-blob records would let
/// such a reader confirm guesses of a value. `git config sops.cache true`
/// takes the speed back knowingly. One `git config` for both keys; a config
/// git cannot read turns the caches off (fail closed).
fn enabled_by_config(git: &Git) -> bool {
    let out = match git.run(&["config", "-z", "--get-regexp", r"^sops\.(cache|worktree)$"]) {
        Ok(out) => out,
        // Exit 1 without a word: neither is set.
        Err(crate::git::GitError::Failed { stderr, .. }) if stderr.is_empty() => return true,
        Err(_) => return false,
    };
    let (mut cache, mut worktree) = (None, None);
    // -z: `key\nvalue\0` per entry (`key\0` for a key without a value); later wins.
    for entry in out.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let (key, value) = entry.split_once('\n').unwrap_or((&entry, "true"));
        match key {
            "sops.cache" => cache = Some(value.to_string()),
            _ => worktree = Some(value.to_string()),
        }
    }
    match cache {
        // git's false spellings; anything else is true, as for `--type=bool`.
        Some(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "false" | "no" | "off" | "0" | ""
        ),
        None => worktree.is_none_or(|v| {
            crate::worktree_mode::WorktreeMode::parse(&v)
                == crate::worktree_mode::WorktreeMode::Plaintext
        }),
    }
}

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
        Some(CacheDir {
            root,
            enabled: enabled_by_config(git),
        })
    }

    /// The folder when caching is on.
    pub fn enabled(dir: Option<&CacheDir>) -> Option<&CacheDir> {
        dir.filter(|d| d.enabled)
    }

    /// Remove what the caches hold that opens or tests ciphertext (the data
    /// keys, the known-blob records), when they are switched off: for a clone
    /// that has just become an encrypted one. `true` when something was removed.
    pub fn remove_keys_if_off(&self) -> std::io::Result<bool> {
        if self.enabled {
            return Ok(false);
        }
        let mut removed = false;
        match std::fs::remove_dir_all(self.path("datakeys")) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match std::fs::remove_file(self.path("known-blobs")) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(removed)
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
