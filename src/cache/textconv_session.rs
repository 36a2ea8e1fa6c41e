//! What textconv needs to know about the git command that runs it, asked once
//! per git command instead of once per blob.
//!
//! git runs `diff.sops.textconv` once for every blob of every side of a diff
//! (`git log -p` over 100 changed files: 200 processes), and each one must know
//! whether `diff.sops.cachetextconv` is on (then git keeps what it prints, so
//! nothing decrypted may be printed) and, for ciphertext input, where the key
//! cache is. Asking git costs a process per question, more than the rest of a
//! textconv together. The first textconv of a git command asks and records the
//! answers here; the later ones of the same command read them.
//!
//! The record is keyed by the git process that runs textconv (its pid and its
//! start time, which together never name two processes): git read its
//! configuration when it started, so what the first textconv learnt is what git
//! itself goes by for the rest of the command. Another git command, or no git
//! parent found (a textconv run by hand, a system without `/proc`), asks git
//! as before. The file holds no secret (two booleans and a path); it is written
//! 0600 under the git common dir like every cache (README: Performance).

use std::path::{Path, PathBuf};

use super::CacheDir;
use crate::git::Git;

/// What textconv goes by.
pub struct TextconvSession {
    /// `diff.sops.cachetextconv` is on: git stores what textconv prints.
    pub cached: bool,
    /// Where the data-key cache lives (`None` outside a repository).
    pub cache: Option<CacheDir>,
}

const FILE: &str = "textconv-session";

impl TextconvSession {
    /// The session of the git command running this process: recorded by an
    /// earlier textconv of the same command, or asked of git (and recorded).
    pub fn of(git: &Git) -> TextconvSession {
        let parent = git_parent();
        if let (Some(parent), Some(common)) = (&parent, discover_common_dir(&git.dir)) {
            if let Some(found) = read(&common, parent) {
                return found;
            }
        }
        let session = TextconvSession {
            cached: git
                .config_bool("diff.sops.cachetextconv")
                .ok()
                .flatten()
                .unwrap_or(false),
            cache: CacheDir::of(git),
        };
        if let (Some(parent), Some(cache)) = (parent, &session.cache) {
            let record = format!(
                "{}\n{}\n{}\n{}\n",
                parent,
                u8::from(session.cached),
                u8::from(cache.enabled),
                cache.root.display()
            );
            // Best effort: without the record the next textconv asks git again.
            let _ = cache.write_private(&cache.path(FILE), record.as_bytes(), true);
        }
        session
    }
}

/// The record under `common`, when the git process `parent` wrote it.
fn read(common: &Path, parent: &str) -> Option<TextconvSession> {
    let root = common.join("git-sops");
    let text = std::fs::read_to_string(root.join(FILE)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != parent {
        return None;
    }
    let flag = |v: &str| match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    };
    let cached = flag(lines.next()?)?;
    let enabled = flag(lines.next()?)?;
    // The folder the first textconv was told by git, which must be where this
    // one found the record (a moved or replaced .git asks again).
    if std::fs::canonicalize(lines.next()?).ok()? != root {
        return None;
    }
    Some(TextconvSession {
        cached,
        cache: Some(CacheDir { root, enabled }),
    })
}

/// The git common dir of the working tree at `dir`, found without asking git,
/// for the plain layouts only: `$GIT_DIR` (with `$GIT_COMMON_DIR`), a `.git`
/// folder, or a `.git` file of a linked worktree (with its `commondir`). Only
/// used to find the record, which then must name this same folder.
fn discover_common_dir(dir: &Path) -> Option<PathBuf> {
    if let Some(common) = std::env::var_os("GIT_COMMON_DIR") {
        return std::fs::canonicalize(common).ok();
    }
    let git_dir = match std::env::var_os("GIT_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let dot_git = dir.join(".git");
            if dot_git.is_dir() {
                dot_git
            } else {
                let text = std::fs::read_to_string(&dot_git).ok()?;
                let target = text.strip_prefix("gitdir: ")?.trim_end();
                dir.join(target)
            }
        }
    };
    let git_dir = std::fs::canonicalize(git_dir).ok()?;
    match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(common) => std::fs::canonicalize(git_dir.join(common.trim_end())).ok(),
        Err(_) => Some(git_dir),
    }
}

#[cfg(not(unix))]
fn git_parent() -> Option<String> {
    None
}

/// `"<pid> <start time>"` of the nearest `git` process above this one (git may
/// run textconv through `sh -c`); `None` when there is none within three
/// generations or `/proc` cannot tell.
#[cfg(unix)]
fn git_parent() -> Option<String> {
    let mut pid = std::os::unix::process::parent_id();
    for _ in 0..3 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?;
        let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
        // After comm: state (0), ppid (1), ..., starttime (19).
        if comm == "git" {
            return Some(format!("{pid} {}", fields.get(19)?));
        }
        pid = fields.get(1)?.parse().ok()?;
        if pid <= 1 {
            return None;
        }
    }
    None
}
