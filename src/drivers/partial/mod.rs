//! Partial staging of protected files, `git sops add -p` (docs/architecture.md
//! §4.10). `git add -p` would show the ciphertext hunks of a protected file, and
//! staging some of them leaves a blob whose MAC no longer matches. Here the
//! hunks are those of the plaintexts (staged → working tree), computed in
//! memory ([`hunks`]); what the user chooses is applied to the staged plaintext
//! and that text is encrypted exactly as clean encrypts a file, with the
//! staged blob as the template (same data key, the IV of every unchanged
//! value), then written into the index the way [`super::staged`] writes a new
//! blob (`hash-object --no-filters`, `update-index --cacheinfo`). No plaintext
//! is written to disk or to git's objects by this module.

pub mod hunks;

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::filter::{sops_type, Filter, Smudged};
use super::{DriverError, Notice};
use crate::git::Git;
use sops_file::file;

/// git's empty blob: what `git add -N` (intent to add) stages.
const EMPTY_BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";

/// What a protected path with unstaged changes offers.
pub(crate) enum Pending {
    /// Plaintext on both sides: shown and staged hunk by hunk.
    Hunks {
        staged: Zeroizing<Vec<u8>>,
        worktree: Zeroizing<Vec<u8>>,
    },
    /// Staged as a whole or not at all: a new (intent-to-add) file, a
    /// plaintext that is not text, or a working-tree copy that already is a
    /// SOPS file.
    Whole {
        worktree: Zeroizing<Vec<u8>>,
        /// Why it cannot be shown hunk by hunk.
        why: Whole,
    },
    /// The file was deleted from the working tree.
    Deleted,
    /// Nothing to stage: the working tree decrypts to what is staged.
    Unchanged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Whole {
    New,
    NotText,
    SopsOnDisk,
}

/// Partial staging in one repository; one clean filter for all its files.
pub(crate) struct Partial {
    git: Git,
    top: PathBuf,
    filter: Filter,
}

impl Partial {
    pub(crate) fn new(top: PathBuf) -> Partial {
        Partial {
            git: Git::new(&top),
            filter: Filter::in_memory(&top),
            top,
        }
    }

    /// What the clean filter had to say (drift warnings, selector notes).
    pub(crate) fn take_notices(&mut self) -> Vec<Notice> {
        self.filter.take_notices()
    }

    /// The staged entry of `path`: mode and object name.
    fn entry(&self, path: &str) -> Result<Option<(String, String)>, DriverError> {
        let entries = self
            .git
            .index_entries(&[path])
            .map_err(|e| DriverError::new(path, e.to_string()))?;
        let Some(first) = entries.first() else {
            return Ok(None);
        };
        if first.stage != 0 {
            return Err(
                DriverError::new(path, "has a merge conflict; nothing was staged")
                    .hint("resolve it, then `git add` the whole file"),
            );
        }
        Ok(Some((first.mode.clone(), first.oid.clone())))
    }

    /// What `path` (repository-relative, protected) has to stage.
    pub(crate) fn prepare(&mut self, path: &str) -> Result<Pending, DriverError> {
        let Some((_, oid)) = self.entry(path)? else {
            return Err(
                DriverError::new(path, "is not tracked; nothing to stage hunk by hunk").hint(
                    format!(
                        "`git add -N {}` first marks it as to be added",
                        super::shell_word(path)
                    ),
                ),
            );
        };
        let Some(worktree) = crate::git::worktree::read_file(&self.top, path) else {
            if std::fs::symlink_metadata(self.top.join(path)).is_err() {
                return Ok(Pending::Deleted);
            }
            return Err(DriverError::new(
                path,
                "is not a regular file in the working tree; nothing was staged",
            ));
        };
        let worktree = Zeroizing::new(worktree);
        let format = sops_type::format_for(&self.git, path)?;
        if oid == EMPTY_BLOB {
            return Ok(Pending::Whole {
                worktree,
                why: Whole::New,
            });
        }
        let blob = self
            .git
            .run(&["cat-file", "blob", &oid])
            .map_err(|e| DriverError::new(path, e.to_string()))?;
        if file::load(format, &blob).is_none() {
            // Not SOPS in the index (a file staged before it was protected):
            // the guard refuses it; staging the whole file encrypts it.
            return Ok(Pending::Whole {
                worktree,
                why: Whole::New,
            });
        }
        // Decrypted in memory whatever the working-tree mode says.
        let staged = match self.filter.decrypt(path, &blob)? {
            Smudged::Plaintext(text) => text,
            Smudged::Unchanged => {
                // The smudge warning says less than this error does.
                let _ = self.filter.take_notices();
                return Err(DriverError::new(
                    path,
                    "no key opens its staged version (or it does not authenticate), so its changes cannot be shown as plaintext; nothing was staged",
                )
                .hint("`git sops status` shows which key opens it; without one, `git add` of the whole file is all git-sops can do"));
            }
        };
        let mut worktree = worktree;
        if crate::worktree_mode::is_encrypted(&self.git, path)
            && !sops_file::conflict::is_conflict(&worktree)
        {
            // An encrypted working tree: its ciphertext decrypted in memory
            // gives the hunks; the file on disk stays as it is.
            if let Smudged::Plaintext(text) = self.filter.decrypt(path, &worktree)? {
                worktree = text;
            }
        }
        if file::load_as_configured(path, format, &worktree).is_some() {
            return Ok(Pending::Whole {
                worktree,
                why: Whole::SopsOnDisk,
            });
        }
        if staged == worktree {
            return Ok(Pending::Unchanged);
        }
        let text = |t: &[u8]| std::str::from_utf8(t).is_ok() && !t.contains(&0);
        if !text(&staged) || !text(&worktree) {
            return Ok(Pending::Whole {
                worktree,
                why: Whole::NotText,
            });
        }
        Ok(Pending::Hunks { staged, worktree })
    }

    /// Encrypt `plaintext` as clean would (the staged blob is its template)
    /// and make it the staged content of `path`.
    pub(crate) fn stage(&mut self, path: &str, plaintext: &[u8]) -> Result<(), DriverError> {
        let Some((mode, _)) = self.entry(path)? else {
            return Err(DriverError::new(
                path,
                "is no longer in the index; nothing was staged",
            ));
        };
        let blob = self.filter.clean(path, plaintext)?;
        super::staged::write_index_entry(&self.git, &mode, path, &blob)
            .map_err(|e| DriverError::new(path, e.to_string()))
    }

    /// Stage the deletion of `path`.
    pub(crate) fn stage_deletion(&self, path: &str) -> Result<(), DriverError> {
        self.git
            .run(&["update-index", "--force-remove", "--", path])
            .map(|_| ())
            .map_err(|e| DriverError::new(path, e.to_string()))
    }
}
