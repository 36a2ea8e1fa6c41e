//! The encrypted original of a protected file, for the commands that rewrite a
//! SOPS file in place (`updatekeys`, `rotate -i`). In a git-sops working tree
//! the file on disk is plaintext and the ciphertext lives in the index, so
//! those commands read the staged blob and write their result back into the
//! index (never into the working tree, which keeps its plaintext). The change
//! is then a staged, reviewable commit, and `git status` shows the working tree
//! clean: clean finds the new staged blob decrypting to the same plaintext.

use std::path::Path;

use super::filter::sops_type;
use super::DriverError;
use crate::cache::data_keys::key_cache;
use crate::cache::known_blobs::KnownBlobs;
use crate::cache::CacheDir;
use crate::git::Git;
use sops_file::datakey::DataKey;
use sops_file::file;
use sops_file::formats::Format;
use sops_file::metadata::Metadata;

/// A protected file whose working-tree copy is plaintext, and its staged blob.
pub(crate) struct StagedFile {
    git: Git,
    /// Repository-relative path.
    pub path: String,
    pub format: Format,
    pub blob: Vec<u8>,
    mode: String,
}

/// A protected path of a git working tree (by [`Protected::plaintext`]: one
/// whose copy on disk is plaintext, the filter smudged it): what the commands
/// that only read a file use as is.
pub(crate) struct Protected {
    pub(crate) git: Git,
    /// Repository-relative path.
    pub path: String,
    pub format: Format,
}

impl Protected {
    /// `file` as a protected plaintext working-tree file; `None` outside git,
    /// for a path that is not protected, or when the copy on disk is a SOPS
    /// file (a locked clone, or a file written by sops).
    pub(crate) fn plaintext(
        file: &Path,
        explicit: Option<Format>,
    ) -> Result<Option<Protected>, DriverError> {
        let Some(found) = Protected::locate(file, explicit)? else {
            return Ok(None);
        };
        let on_disk = std::fs::read(file).unwrap_or_default();
        if file::load_as_configured(&found.path, found.format, &on_disk).is_some() {
            return Ok(None);
        }
        Ok(Some(found))
    }

    /// `file` as a protected path of a git working tree, whatever its copy on
    /// disk holds (an encrypted working tree keeps ciphertext there); `None`
    /// outside git or for a path that is not protected.
    pub(crate) fn locate(
        file: &Path,
        explicit: Option<Format>,
    ) -> Result<Option<Protected>, DriverError> {
        let shown = file.display().to_string();
        let Some(dir) = file.parent().map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        }) else {
            return Ok(None);
        };
        if !dir.is_dir() {
            return Ok(None);
        }
        let git = Git::new(dir);
        let Ok(top) = git.toplevel() else {
            return Ok(None);
        };
        let Ok(absolute) = std::path::absolute(file) else {
            return Ok(None);
        };
        let top = std::fs::canonicalize(&top).unwrap_or(top);
        let absolute = match (absolute.parent(), absolute.file_name()) {
            (Some(d), Some(name)) => std::fs::canonicalize(d)
                .unwrap_or_else(|_| d.to_path_buf())
                .join(name),
            _ => absolute,
        };
        let Ok(rel) = absolute.strip_prefix(&top) else {
            return Ok(None);
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let git = Git::new(&top);
        let filters = git
            .check_attr("filter", std::slice::from_ref(&rel))
            .map_err(|e| DriverError::new(&shown, format!("cannot read its gitattributes: {e}")))?;
        if filters.first().map(String::as_str) != Some("sops") {
            return Ok(None);
        }
        let format = match explicit {
            Some(f) => f,
            None => sops_type::format_for(&git, &rel)?,
        };
        Ok(Some(Protected {
            git,
            path: rel,
            format,
        }))
    }
}

impl StagedFile {
    /// The staged original of `file`, when `file` is a protected path of a git
    /// working tree whose copy on disk is not a SOPS file; `None` otherwise
    /// (outside git, not protected, already ciphertext on disk): then the file
    /// itself is the SOPS file.
    /// The format is `explicit` (`--input-type`) or the path's (its extension,
    /// or its `sops-type` attribute).
    pub(crate) fn locate(
        file: &Path,
        explicit: Option<Format>,
    ) -> Result<Option<StagedFile>, DriverError> {
        let shown = file.display().to_string();
        let Some(Protected {
            git,
            path: rel,
            format,
        }) = Protected::plaintext(file, explicit)?
        else {
            return Ok(None);
        };
        let entries = git
            .index_entries(&[&rel])
            .map_err(|e| DriverError::new(&shown, e.to_string()))?;
        // One stage-0 entry for a tracked file; stages 1-3 in a merge conflict.
        let Some(first) = entries.first() else {
            return Err(DriverError::new(
                &shown,
                "is protected (filter=sops) and plaintext in the working tree, but not staged yet, so there is no encrypted version to change",
            )
            .hint(format!("`git add {}` encrypts it first", super::shell_word(&rel))));
        };
        let (mode, oid) = (first.mode.as_str(), first.oid.as_str());
        if first.stage != 0 {
            return Err(DriverError::new(
                &shown,
                "has a merge conflict; resolve it first",
            ));
        }
        let blob = git
            .run(&["cat-file", "blob", oid])
            .map_err(|e| DriverError::new(&shown, e.to_string()))?;
        if file::load(format, &blob).is_none() {
            return Err(DriverError::new(
                &shown,
                "is protected, but its staged copy is not a SOPS file; nothing to change",
            )
            .hint(format!(
                "`git add {}` encrypts it, then run the command again",
                super::shell_word(&rel)
            )));
        }
        Ok(Some(StagedFile {
            git,
            path: rel,
            format,
            blob,
            mode: mode.to_string(),
        }))
    }

    /// Stage `blob` as the file's new content (the working tree is left as it
    /// is). Its metadata and data key, and its plaintext where known, are
    /// remembered so the next `git status` needs no KMS call or decryption.
    pub fn stage(
        &self,
        blob: &[u8],
        meta: &Metadata,
        key: &DataKey,
        plaintext: Option<&[u8]>,
    ) -> Result<(), DriverError> {
        write_index_entry(&self.git, &self.mode, &self.path, blob)
            .map_err(|e| DriverError::new(&self.path, e.to_string()))?;
        let cache = CacheDir::of(&self.git);
        key_cache(cache.as_ref()).remember(meta, key);
        if let (Some(plaintext), Some(mut known)) = (plaintext, KnownBlobs::open(cache.as_ref())) {
            known.record(blob, self.format, plaintext);
        }
        Ok(())
    }
}

/// Write `blob` (ciphertext already) into the object store and make it the
/// staged content of `path` with `mode`; the working tree is left as it is.
pub(crate) fn write_index_entry(
    git: &Git,
    mode: &str,
    path: &str,
    blob: &[u8],
) -> Result<(), crate::git::GitError> {
    // --no-filters: this is the ciphertext already; clean must not see it.
    let oid = git.run_with_input(
        &["hash-object", "-w", "--no-filters", "--stdin"],
        Some(blob),
    )?;
    let oid = String::from_utf8_lossy(&oid).trim().to_string();
    let info = format!("{mode},{oid},{path}");
    git.run(&["update-index", "--cacheinfo", &info])?;
    Ok(())
}
