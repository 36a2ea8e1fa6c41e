//! The commands that wire git-sops into a repository and report on it:
//! `install` (git's global filter, diff and merge driver configuration and the
//! hooks), `init` (a repository's `.gitattributes`, `.sops.yaml` and first key)
//! and `status` (what is protected, what is decrypted, what has drifted), and
//! `sops_files` (the SOPS files of a repository, which `--all` takes),
//! `doctor` (is the set-up sound: one OK/WARN/FAIL line per check, with the
//! fixing command), `archive` (`git archive` with the filter off) and `worktree`
//! (switch a clone between plaintext and encrypted working trees).

pub mod archive;
pub mod doctor;
pub mod init;
pub mod install;
pub mod sops_files;
pub mod status;
pub mod sync;
pub mod worktree;
