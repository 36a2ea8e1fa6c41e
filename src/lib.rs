//! git-sops: SOPS-encrypted secrets that feel like ordinary files inside git.
//!
//! Layers point one way: `cli` → `drivers` → `git` / `sops` → `formats`, `keys`. Formats never see
//! keys or git; stdout belongs to git (or to the command's output file).

pub mod cli;
pub mod drivers;
pub mod git;
