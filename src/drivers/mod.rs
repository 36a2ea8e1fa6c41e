//! The entry points git calls: the clean/smudge filter (`filter/`: the
//! long-running filter protocol, the `sops-type` attribute, the checkout
//! prefetch of data keys), the textconv diff driver and the merge driver, and
//! `staged` (key changes made to the staged blob). They keep the invariants of
//! docs/architecture.md §3: no plaintext reaches the object store, clean is
//! byte-stable, locked clones keep working. The guard (`crate::guard`), the
//! set-up commands (`crate::setup`) and the caches (`crate::cache`) are modules
//! of their own.

pub mod filter;
pub mod merge;
pub mod staged;
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
