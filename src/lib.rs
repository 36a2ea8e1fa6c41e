//! git-sops: SOPS-encrypted secrets that feel like ordinary files inside git.
//!
//! Layers point one way: `cli` → `drivers` → `git` and the `sops-file` library (its
//! SOPS semantics → `formats`, `keys`). Formats never see keys or git; stdout belongs
//! to git (or to the command's output file). docs/architecture.md describes the
//! layers and the data flow of clean, smudge, textconv, merge and the guard.

pub mod cache;
pub mod cli;
pub mod drivers;
pub mod git;
pub mod guard;
pub mod publish;
pub mod setup;
pub mod worktree_mode;
