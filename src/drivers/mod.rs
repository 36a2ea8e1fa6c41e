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
pub mod partial;
pub mod staged;
pub mod textconv;

/// A driver failure: what went wrong for which path, and what to do about it.
/// When a library error is behind it, it travels along, so that the edge
/// chooses the exit code and hint from what actually failed (a MAC mismatch
/// gives sops' 51 whether it was found by `decrypt` or by `clean`).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DriverError {
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
    pub cause: Option<Box<sops_file::Error>>,
}

impl DriverError {
    pub fn new(path: &str, message: impl Into<String>) -> DriverError {
        DriverError {
            path: path.to_string(),
            message: message.into(),
            hint: None,
            cause: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> DriverError {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn caused_by(mut self, cause: sops_file::Error) -> DriverError {
        self.cause = Some(Box::new(cause));
        self
    }
}

/// How much a [`Notice`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something the driver did that the user should know about.
    Note,
    /// Something the user should fix; the driver carried on.
    Warning,
    /// A file the driver could not handle; it carried on with the others.
    Error,
}

/// What a driver has to tell the user without failing the whole command. The
/// drivers never print: they hand notices to the caller, and the command line
/// prints them (`cli::report`), so every message has one shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub level: Level,
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Notice {
    pub(crate) fn new(level: Level, path: &str, message: impl Into<String>) -> Notice {
        Notice {
            level,
            path: path.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn warning(path: &str, message: impl Into<String>) -> Notice {
        Notice::new(Level::Warning, path, message)
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Notice {
        self.hint = Some(hint.into());
        self
    }
}

impl From<&DriverError> for Notice {
    fn from(e: &DriverError) -> Notice {
        Notice {
            level: Level::Error,
            path: e.path.clone(),
            message: e.message.clone(),
            hint: e.hint.clone(),
        }
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
