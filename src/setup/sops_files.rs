//! Which files `updatekeys --all` and `rotate --all` take: the SOPS files of a
//! repository (README, "Commands"; docs/architecture.md §4.7).
//!
//! That is every tracked path git-sops protects (`filter=sops` in
//! `.gitattributes`, as `git sops status` lists them), and every other tracked
//! file that a `.sops.yaml` creation rule covers and that is a SOPS file on
//! disk: files written by `sops` itself, before or beside git-sops, are what a
//! user who says "all" means too. Untracked and ignored files are never taken
//! (they are not part of the repository), nor tracked files that are not SOPS
//! files (a rule without `path_regex` covers every path, and would otherwise
//! sweep in every file).

use std::path::{Path, PathBuf};

use super::status::protected_paths;
use crate::drivers::DriverError;
use crate::git::worktree::read_file;
use crate::git::Git;
use sops_file::config::Config;
use sops_file::file;

/// The SOPS files of the repository around `dir`.
pub(crate) struct RepoFiles {
    /// The top of the working tree.
    pub top: PathBuf,
    /// Repository-relative paths, sorted: protected ones and rule-covered ones.
    pub paths: Vec<String>,
}

/// Why there is no repository around `dir` (`Err` only for that).
pub(crate) struct NotARepository(pub String);

/// The SOPS files of the repository `dir` is in (see the module docs); `rules`
/// is the `.sops.yaml` the command uses, if any.
pub(crate) fn repository_files(
    dir: &Path,
    rules: Option<&Config>,
) -> Result<Result<RepoFiles, DriverError>, NotARepository> {
    let top = Git::new(dir)
        .toplevel()
        .map_err(|e| NotARepository(e.to_string()))?;
    Ok(list(top, rules))
}

fn list(top: PathBuf, rules: Option<&Config>) -> Result<RepoFiles, DriverError> {
    let git = Git::new(&top);
    let fail = |e: crate::git::GitError| DriverError::new(".", e.to_string());
    let mut paths = protected_paths(&git).map_err(fail)?;
    paths.sort();
    if let Some(rules) = rules {
        let all = git.ls_files().map_err(fail)?;
        for p in all {
            if paths.binary_search(&p).is_ok() || !covered(rules, &top, &p) {
                continue;
            }
            // Only what reads as a SOPS file (a quick look for the metadata's
            // words first, so big files of other kinds are not parsed).
            let Some(bytes) = read_file(&top, &p) else {
                continue;
            };
            let looks = |w: &[u8]| bytes.windows(w.len()).any(|x| x == w);
            if looks(b"sops") && looks(b"lastmodified") && file::sniff(&p, &bytes).is_some() {
                paths.push(p);
            }
        }
    }
    paths.sort();
    paths.dedup();
    Ok(RepoFiles { top, paths })
}

/// Whether a creation rule of `rules` covers `path` (a `path_regex` that does
/// not compile covers it: the command then reports that for the file).
fn covered(rules: &Config, top: &Path, path: &str) -> bool {
    rules
        .covers(&top.join(path).to_string_lossy())
        .unwrap_or(true)
}
