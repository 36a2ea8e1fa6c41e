//! The only place that talks to git. It runs git's own commands rather than
//! re-implementing repository access: a persistent `git cat-file --batch` for the
//! blobs the filter needs (one process for a whole git command), and one-off
//! `git config` / `git check-attr` / `git ls-files` calls elsewhere. That keeps
//! git's exact semantics (index, attributes, worktrees, `GIT_INDEX_FILE`) at no
//! compile-time cost.

pub mod cat_file;
pub mod check_attr;
pub mod command;
pub mod pktline;
pub mod worktree;

pub use command::{Git, GitError};
