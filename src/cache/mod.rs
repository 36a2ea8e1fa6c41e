//! What git-sops keeps between commands, under the git common dir, 0600 files
//! in 0700 folders: the unwrapped data keys (`data_keys`, so a `git status`
//! makes no KMS call for files it has seen) and the known blobs (`known_blobs`,
//! so clean returns the staged ciphertext byte for byte for an unchanged file,
//! and the guard can prove a committed blob is an exact copy of a secret).

pub mod data_keys;
pub mod known_blobs;
