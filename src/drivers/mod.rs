//! The entry points git calls (the filter, textconv) and the commands that wire
//! git-sops into a repository (install, init, status). They keep the invariants
//! of docs/architecture.md §3: no plaintext reaches the object store, clean is
//! byte-stable, locked clones keep working.

pub mod filetype;
pub mod filter;
pub mod guard;
pub mod init;
pub mod install;
pub mod keystore;
pub mod known_blobs;
pub mod merge;
pub mod prefetch;
pub mod process;
pub mod staged;
pub mod status;
pub mod textconv;

/// A driver failure: what went wrong for which path, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DriverError {
    pub path: String,
    pub message: String,
    pub(crate) hint: Option<String>,
}

impl DriverError {
    pub fn new(path: &str, message: impl Into<String>) -> DriverError {
        DriverError {
            path: path.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> DriverError {
        self.hint = Some(hint.into());
        self
    }
}

/// A path as one shell word, for commands quoted in messages.
pub(crate) fn shell_word(path: &str) -> String {
    if !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/+@=:,".contains(&b))
    {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}
