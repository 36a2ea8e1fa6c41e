//! The only place that talks to git. It runs git's own commands rather than
//! re-implementing repository access: a persistent `git cat-file --batch` for the
//! blobs the filter needs (one process for a whole git command), and one-off
//! `git config` / `git check-attr` / `git ls-files` / `git ls-tree` calls, each
//! parsed in its own module here. That keeps
//! git's exact semantics (index, attributes, worktrees, `GIT_INDEX_FILE`) at no
//! compile-time cost.

pub mod cat_file;
pub mod check_attr;
pub mod command;
pub mod diff_raw;
pub mod ls_files;
pub mod ls_tree;
pub mod pktline;
pub mod worktree;

pub(crate) use check_attr::AttrSource;
pub(crate) use command::{Git, GitError};

/// The mode of a submodule entry (a commit, not a blob).
pub(crate) const GITLINK: &str = "160000";
/// The mode of a symbolic link (its blob is the link's target).
pub(crate) const SYMLINK: &str = "120000";

/// Is `s` an object name (full or abbreviated hex, SHA-1 or SHA-256)? Anything
/// else taken from outside is not passed to git as a revision.
pub(crate) fn is_object_name(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The records of `-z` listing output (`ls-files -s`, `ls-tree`) as the
/// space-separated fields before the tab and the path after it (bytes);
/// records without a tab, or whose fields are not UTF-8, are skipped.
fn listing_records(out: &[u8]) -> impl Iterator<Item = (Vec<&str>, &[u8])> {
    out.split(|b| *b == 0).filter_map(|record| {
        let tab = record.iter().position(|b| *b == b'\t')?;
        let head = std::str::from_utf8(&record[..tab]).ok()?;
        Some((head.split(' ').collect(), &record[tab + 1..]))
    })
}
