//! `git sops sync BASE`: bring the current branch up to date with its base
//! through git's own merge, so the `merge=sops` driver resolves protected
//! files by value (docs/architecture.md §4.6a).
//!
//! Why: a host's server-side merge (GitHub's merge button, its mergeability
//! check) runs no merge drivers, so two pull requests that change different
//! values of one SOPS file conflict on `mac` and `lastmodified`. Merging the
//! base into the branch here, where the driver and a key are, gives the branch
//! the merged ciphertext; the branch then contains the base, the host's merge
//! of it is a plain fast-forward of those files (only the branch changed them
//! since the merge base), and the pull request's diff shows only its own
//! values plus `mac`/`lastmodified`.
//!
//! A merge, not a rebase: it keeps the pull request's commits (and review
//! comments on them) as they are, needs no force-push, and is what the host's
//! own "Update branch" button does.

use std::collections::BTreeSet;

use crate::git::{AttrSource, Git, GitError};

/// How a sync ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Synced {
    /// BASE was already part of the branch: nothing to do.
    UpToDate,
    /// The branch had nothing of its own: it now points at BASE.
    FastForward,
    /// A merge commit; `resolved`: protected files both sides changed, which
    /// the merge driver merged by value.
    Merged {
        commit: String,
        resolved: Vec<String>,
    },
}

/// What was synced.
#[derive(Debug)]
pub struct SyncReport {
    /// The branch name (`HEAD` when detached).
    pub branch: String,
    pub before: String,
    pub base: String,
    pub outcome: Synced,
}

/// Why a sync did not happen (the branch is as it was).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Git(#[from] GitError),
    #[error("`{0}` does not name a commit")]
    NotACommit(String),
    #[error("the working tree has uncommitted changes to tracked files: {}", .0.join(", "))]
    Dirty(Vec<String>),
    #[error("a merge is already in progress in this repository")]
    InProgress,
    #[error("the git-sops {0} is not configured in this repository, so git would merge protected files as text")]
    NoDriver(&'static str),
    #[error("merging `{base}` conflicts in {}; the merge was aborted and the branch is as it was", paths_or_unknown(.paths))]
    Conflict {
        base: String,
        paths: Vec<String>,
        /// What git (and the merge driver) said, for the user.
        output: String,
    },
    #[error("`git merge {base}` failed; the branch is as it was: {output}")]
    MergeFailed { base: String, output: String },
}

fn paths_or_unknown(paths: &[String]) -> String {
    if paths.is_empty() {
        "some files".to_string()
    } else {
        paths.join(", ")
    }
}

/// Merge `base` into the current branch of the repository at `git`.
pub fn sync(git: &Git, base: &str) -> Result<SyncReport, SyncError> {
    let git = Git::new(git.toplevel()?);
    for (key, what) in [
        ("merge.sops.driver", "merge driver (merge.sops.driver)"),
        ("filter.sops.process", "filter (filter.sops.process)"),
    ] {
        let set = git.config_get(key)?.is_some_and(|v| !v.trim().is_empty());
        if !set {
            return Err(SyncError::NoDriver(what));
        }
    }
    if rev(&git, "MERGE_HEAD").is_some() {
        return Err(SyncError::InProgress);
    }
    let dirty = dirty_paths(&git)?;
    if !dirty.is_empty() {
        return Err(SyncError::Dirty(dirty));
    }
    let before = rev(&git, "HEAD").ok_or_else(|| SyncError::NotACommit("HEAD".into()))?;
    let base_id = if base.starts_with('-') {
        None
    } else {
        rev(&git, &format!("{base}^{{commit}}"))
    }
    .ok_or_else(|| SyncError::NotACommit(base.to_string()))?;
    let branch = git
        .run(&["symbolic-ref", "--short", "-q", "HEAD"])
        .ok()
        .map(|o| String::from_utf8_lossy(&o).trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "HEAD".to_string());
    let report = |outcome| SyncReport {
        branch: branch.clone(),
        before: before.clone(),
        base: base_id.clone(),
        outcome,
    };
    if is_ancestor(&git, &base_id, &before)? {
        return Ok(report(Synced::UpToDate));
    }
    let both = changed_on_both_sides(&git, &before, &base_id)?;

    let message = format!("Merge {base} into {branch} (git sops sync)");
    let out = git
        .command([
            "merge",
            "--no-edit",
            "--no-stat",
            "-m",
            &message,
            "--end-of-options",
            &base_id,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(GitError::Spawn)?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string();
    if !out.status.success() {
        let conflicted = conflicted_paths(&git);
        let in_merge = rev(&git, "MERGE_HEAD").is_some();
        if in_merge && git.run(&["merge", "--abort"]).is_err() {
            // `merge --abort` refuses when a merged-in file no longer matches
            // its index entry once cleaned (BASE brought a protected file that
            // is not SOPS, and the hook refused the merge). The tree was clean
            // before the merge, so going back to HEAD loses nothing.
            git.run(&["reset", "--hard", "-q", &before])?;
        }
        if in_merge || !conflicted.is_empty() {
            return Err(SyncError::Conflict {
                base: base.to_string(),
                paths: conflicted,
                output: said,
            });
        }
        return Err(SyncError::MergeFailed {
            base: base.to_string(),
            output: said,
        });
    }
    let after = rev(&git, "HEAD").ok_or_else(|| SyncError::NotACommit("HEAD".into()))?;
    if after == base_id {
        return Ok(report(Synced::FastForward));
    }
    Ok(report(Synced::Merged {
        commit: after,
        resolved: both,
    }))
}

fn rev(git: &Git, spec: &str) -> Option<String> {
    git.run(&["rev-parse", "--verify", "--quiet", "--end-of-options", spec])
        .ok()
        .map(|o| String::from_utf8_lossy(&o).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn is_ancestor(git: &Git, a: &str, b: &str) -> Result<bool, GitError> {
    let status = git
        .command(["merge-base", "--is-ancestor", a, b])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(GitError::Spawn)?;
    Ok(status.success())
}

/// Tracked files with changes, staged or not (untracked files are git's to
/// refuse if the merge would overwrite them).
fn dirty_paths(git: &Git) -> Result<Vec<String>, GitError> {
    let out = git.run(&["status", "--porcelain=v1", "-z", "--untracked-files=no"])?;
    Ok(out
        .split(|b| *b == 0)
        .filter(|r| r.len() > 3)
        .map(|r| String::from_utf8_lossy(&r[3..]).into_owned())
        .collect())
}

fn conflicted_paths(git: &Git) -> Vec<String> {
    git.run(&["diff", "--name-only", "-z", "--diff-filter=U"])
        .map(|o| {
            o.split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Files with `merge=sops` that both the branch and `base` changed since their
/// merge base: the ones the driver merges by value.
fn changed_on_both_sides(git: &Git, head: &str, base: &str) -> Result<Vec<String>, GitError> {
    let Ok(mb) = git.run(&["merge-base", head, base]) else {
        return Ok(Vec::new());
    };
    let mb = String::from_utf8_lossy(&mb).trim().to_string();
    let ours: BTreeSet<Vec<u8>> = git
        .diff_tree(&mb, head)?
        .into_iter()
        .map(|c| c.path)
        .collect();
    let both: Vec<Vec<u8>> = git
        .diff_tree(&mb, base)?
        .into_iter()
        .map(|c| c.path)
        .filter(|p| ours.contains(p))
        .collect();
    let paths: Vec<&[u8]> = both.iter().map(Vec::as_slice).collect();
    let attrs = git.check_attrs(AttrSource::Tree(head), &["merge"], &paths)?;
    Ok(both
        .iter()
        .zip(attrs)
        .filter(|(_, a)| a.first().is_some_and(|v| v == "sops"))
        .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
        .collect())
}
