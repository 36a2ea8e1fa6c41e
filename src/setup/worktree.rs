//! `git sops worktree [encrypted|plaintext]` (and `init --encrypted-worktree`):
//! show or switch the working-tree mode of this clone (`sops.worktree`, see
//! `crate::worktree_mode`), and re-check-out the protected files so
//! the disk holds what the new mode says.
//!
//! git does not smudge a file again that it considers up to date, so a file
//! whose copy on disk is of the other mode is removed and checked out again
//! (from the index: staged changes are kept). That is only safe for a file
//! without uncommitted changes in the working tree, so the switch first asks
//! git (`git diff`, which cleans each file) and refuses, before changing
//! anything, when a protected file has such changes or an unresolved merge;
//! `init` instead skips those files and names them. Files whose
//! `sops-worktree` attribute decides their mode keep it whatever the config
//! says, and are checked out again only if their disk copy does not match it.

use std::collections::HashSet;

use super::status::protected_paths;
use crate::drivers::filter::sops_type::FileTypes;
use crate::drivers::DriverError;
use crate::git::cat_file::BlobReader;
use crate::git::worktree::read_file;
use crate::git::Git;
use crate::worktree_mode::{self, ModeSource, WorktreeMode};
use sops_file::file;

fn err(message: impl Into<String>) -> DriverError {
    DriverError::new("git sops worktree", message)
}

/// What to do with protected files that have uncommitted changes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dirty {
    /// Change nothing and say which files (`git sops worktree`).
    Refuse,
    /// Switch, leave those files as they are and say which (`init`).
    Skip,
}

/// Set `sops.worktree` to `mode` in this repository's config and re-check-out
/// the protected files whose copy on disk does not match their mode now.
pub fn switch(git: &Git, mode: WorktreeMode, dirty: Dirty) -> Result<Vec<String>, DriverError> {
    let top = git
        .toplevel()
        .map_err(|e| err(e.to_string()).hint("run it inside a git repository"))?;
    let git = Git::new(&top);
    let paths = protected_paths(&git).map_err(|e| err(e.to_string()))?;
    let changed = uncommitted(&git, &paths)?;
    if dirty == Dirty::Refuse && !changed.is_empty() {
        let mut list: Vec<&String> = changed.iter().collect();
        list.sort();
        let shown: Vec<String> = list.iter().map(|p| crate::drivers::shell_word(p)).collect();
        return Err(err(format!(
            "not switched to {} mode: {} protected file(s) have uncommitted changes or an unresolved merge, and checking them out again would lose them: {}",
            mode.name(),
            shown.len(),
            shown.join(", ")
        ))
        .hint("commit them (or `git stash` them) first, then run the command again; `git stash pop` afterwards"));
    }
    let mut changes = Vec::new();
    let before = worktree_mode::configured(&git);
    if before != (mode, ModeSource::Config) {
        git.run(&["config", "--local", worktree_mode::CONFIG, mode.name()])
            .map_err(|e| err(e.to_string()))?;
        changes.push(format!(
            "set git config {} {} (this clone's working tree)",
            worktree_mode::CONFIG,
            mode.name()
        ));
    }
    if mode == WorktreeMode::Encrypted {
        // The data keys cached in plaintext mode would open the ciphertext
        // this mode leaves on disk (see `cache::enabled_by_config`).
        if let Some(cache) = crate::cache::CacheDir::of(&git) {
            match cache.remove_keys_if_off() {
                Ok(true) => changes.push(format!(
                    "removed the cached data keys and known-blob records under {} (`git config sops.cache true` keeps caching, at the price of a key on disk beside the ciphertext)",
                    cache.path("").display()
                )),
                Ok(false) => {}
                Err(e) => changes.push(format!(
                    "warning: cannot remove the cached data keys under {}: {e}; delete that folder's datakeys/ and known-blobs by hand",
                    cache.path("").display()
                )),
            }
        }
    }
    let modes = worktree_mode::modes_of(&git, &paths).map_err(|e| err(e.to_string()))?;
    let mut blobs = BlobReader::spawn(&git).map_err(|e| err(e.to_string()))?;
    let mut types = FileTypes::new(git.clone());
    let mut again = Vec::new();
    let mut skipped = Vec::new();
    let mut overridden = 0;
    let mut plaintext_in_index = Vec::new();
    let mut unreadable = Vec::new();
    for (path, (path_mode, source)) in paths.iter().zip(modes) {
        if source == ModeSource::Attribute && path_mode != mode {
            overridden += 1;
        }
        let Ok(format) = types.format(path) else {
            continue; // the filter reports a bad sops-type
        };
        let Ok(Some(staged)) = blobs.read(&format!(":{path}")) else {
            continue;
        };
        let Some(on_disk) = read_file(&top, path) else {
            if top.join(path).is_file() {
                // There but unreadable (permissions): it may be plaintext
                // that this switch cannot judge; say so rather than pass it by.
                unreadable.push(path.clone());
            }
            continue; // missing, or not a regular file: nothing to replace
        };
        let sops = file::load(format, &staged).is_some();
        if !sops {
            plaintext_in_index.push(path.clone());
        }
        let matches = match path_mode {
            // Ciphertext on disk is the staged blob itself.
            WorktreeMode::Encrypted => on_disk == staged,
            // A key may be missing: then smudge leaves ciphertext again, harmlessly.
            WorktreeMode::Plaintext => !sops || on_disk != staged,
        };
        if matches {
            continue;
        }
        if changed.contains(path) {
            skipped.push(path.clone());
            continue;
        }
        again.push(path.clone());
    }
    for path in &again {
        std::fs::remove_file(top.join(path)).map_err(|e| err(format!("{path}: {e}")))?;
    }
    if !again.is_empty() {
        let mut list = Vec::new();
        for p in &again {
            list.extend_from_slice(p.as_bytes());
            list.push(0);
        }
        git.run_with_input(
            &[
                "--literal-pathspecs",
                "checkout",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
            ],
            Some(&list),
        )
        .map_err(|e| {
            err(format!("cannot check the protected files out again: {e}"))
                .hint("`git checkout -- PATH` restores each file from the index")
        })?;
        changes.push(format!(
            "checked out {} protected file(s) again, {}: {}",
            again.len(),
            match mode {
                WorktreeMode::Encrypted => "as ciphertext",
                WorktreeMode::Plaintext => "decrypted where a key opens them",
            },
            again.join(", ")
        ));
        if mode == WorktreeMode::Encrypted {
            changes.push("note: the plaintext files were deleted, not wiped; copies made before (backups, editor swap files, free disk blocks) are not touched".into());
        }
    }
    if !skipped.is_empty() {
        changes.push(format!(
            "warning: left {} file(s) with uncommitted changes as they are: {}; commit or stash them, then run `git sops worktree {}`",
            skipped.len(),
            skipped.join(", "),
            mode.name()
        ));
    }
    if !unreadable.is_empty() {
        changes.push(format!(
            "warning: cannot read {} protected file(s), left as they are: {}; make them readable (`chmod u+r`), then run `git sops worktree {}` again",
            unreadable.len(),
            unreadable.join(", "),
            mode.name()
        ));
    }
    if overridden > 0 {
        changes.push(format!(
            "{overridden} protected file(s) keep the mode their sops-worktree gitattribute gives them"
        ));
    }
    if !plaintext_in_index.is_empty() && mode == WorktreeMode::Encrypted {
        changes.push(format!(
            "warning: {} protected file(s) are committed as plaintext, so their working-tree copy is plaintext too: {}; run `git add --renormalize -- {}` and commit",
            plaintext_in_index.len(),
            plaintext_in_index.join(", "),
            plaintext_in_index.join(" ")
        ));
    }
    Ok(changes)
}

/// The protected paths (of `paths`) whose working-tree copy differs from the
/// index as git sees it (clean runs for each), or that are unmerged.
fn uncommitted(git: &Git, paths: &[String]) -> Result<HashSet<String>, DriverError> {
    let protected: HashSet<&String> = paths.iter().collect();
    let mut found = HashSet::new();
    let unmerged = git
        .run(&["ls-files", "-u", "-z"])
        .map_err(|e| err(e.to_string()))?;
    for entry in unmerged.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        // `mode oid stage\tpath`
        if let Some(tab) = entry.iter().position(|b| *b == b'\t') {
            found.insert(String::from_utf8_lossy(&entry[tab + 1..]).into_owned());
        }
    }
    let diff = git
        .run(&["diff", "--name-only", "-z", "--no-renames"])
        .map_err(|e| {
            err(format!(
                "cannot tell whether protected files have uncommitted changes: {e}"
            ))
        })?;
    for name in diff.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        found.insert(String::from_utf8_lossy(name).into_owned());
    }
    found.retain(|p| protected.contains(p));
    Ok(found)
}

/// `git sops worktree` without an argument: the configured mode and how many
/// protected files are in each mode.
pub fn describe(git: &Git) -> Result<Vec<String>, DriverError> {
    let (mode, source) = worktree_mode::configured(git);
    let mut lines = vec![format!(
        "working-tree mode: {} ({})",
        mode.name(),
        match source {
            ModeSource::Default => "default; `git sops worktree encrypted` switches",
            _ => "git config sops.worktree",
        }
    )];
    let paths = protected_paths(git).map_err(|e| err(e.to_string()))?;
    let values = git
        .check_attr(worktree_mode::ATTRIBUTE, &paths)
        .map_err(|e| err(e.to_string()))?;
    for (path, value) in paths.iter().zip(values) {
        let (m, s) = worktree_mode::resolve(&value, (mode, source));
        if s == ModeSource::Attribute {
            lines.push(format!("{path}: {} (sops-worktree attribute)", m.name()));
        } else if value != "unspecified"
            && worktree_mode::resolve(&value, (WorktreeMode::Plaintext, ModeSource::Default)).0 != m
        {
            // The stricter wins: say so, lest the attribute look broken.
            lines.push(format!(
                "{path}: {} (its sops-worktree={value} attribute is ignored: a committed attribute cannot turn this clone's encrypted mode off)",
                m.name()
            ));
        }
    }
    Ok(lines)
}
