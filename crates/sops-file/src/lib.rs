//! SOPS files in Rust: format-preserving encryption and decryption of YAML, JSON,
//! dotenv, INI and binary files, byte-compatible with sops 3.11 both ways, with the
//! metadata block, the MAC, `.sops.yaml` creation rules, key groups with Shamir
//! sharing, and the age and AWS KMS master keys.
//!
//! Layers point one way: [`formats`] parses and writes each file format and knows
//! nothing of encryption; [`keys`] wraps and unwraps a data key for one recipient
//! and knows nothing of documents; the modules at the top of this crate hold the
//! SOPS semantics over both (which leaves to encrypt, their AAD paths and typed
//! plaintext, the MAC, the metadata block, key groups, creation rules). Everything
//! is computation over a parsed document and its source text: no git, no terminal.
//! `docs/architecture.md` and `docs/sops-format.md` in the repository describe the
//! layers and the byte format as implemented.

pub mod formats;
pub mod keys;

pub mod binary;
pub mod cipher;
pub mod config;
pub mod conflict;
pub mod datakey;
pub mod decrypt;
pub mod encrypt;
pub mod file;
pub mod form;
pub mod keycache;
pub mod keygroups;
pub mod keypool;
mod mac;
pub mod metadata;
mod plaintext;
pub mod policy;
pub mod selectors;
mod shamir;
pub mod stash;
pub mod template;
pub mod walk;

use crate::formats::{FormatError, SpliceError};

/// A key path for messages, in sops' `--extract` syntax: `["db"]["password"]`.
/// A hostile file can nest keys thousands deep, and a message is written per
/// value, so a path of more than [`DISPLAY_PATH_KEYS`] keys shows its first and
/// last keys around a count of the ones left out, and a key longer than
/// [`DISPLAY_KEY_CHARS`] characters is cut.
pub(crate) fn display_path<S: AsRef<str>>(path: &[S]) -> String {
    if path.is_empty() {
        return "the top level".to_string();
    }
    let show = |k: &S| {
        let k = k.as_ref();
        match k.char_indices().nth(DISPLAY_KEY_CHARS) {
            Some((cut, _)) => format!("[{:?}…]", &k[..cut]),
            None => format!("[{k:?}]"),
        }
    };
    if path.len() <= DISPLAY_PATH_KEYS {
        return path.iter().map(show).collect();
    }
    let half = DISPLAY_PATH_KEYS / 2;
    let head: String = path[..half].iter().map(show).collect();
    let tail: String = path[path.len() - half..].iter().map(show).collect();
    format!("{head}…({} more keys)…{tail}", path.len() - 2 * half)
}

/// The most keys [`display_path`] shows.
pub(crate) const DISPLAY_PATH_KEYS: usize = 16;

/// The most characters of one key [`display_path`] shows.
pub(crate) const DISPLAY_KEY_CHARS: usize = 64;

/// Everything that can go wrong encrypting or decrypting a document.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("the file is already encrypted: it has a top-level `sops` metadata entry")]
    AlreadyEncrypted,
    #[error("the file is not encrypted: it has no top-level `sops` metadata entry")]
    NotEncrypted,
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    #[error(transparent)]
    Keys(#[from] keygroups::KeyGroupError),
    #[error("line {line}: the value at {path} cannot be decrypted: {source}")]
    Value {
        path: String,
        line: usize,
        source: cipher::CipherError,
    },
    #[error("line {line}: the value at {path} should be encrypted under this file's rules but is plaintext")]
    Plaintext { path: String, line: usize },
    #[error("line {line}: the value at {path}: {source}")]
    BadPlaintext {
        path: String,
        line: usize,
        source: plaintext::BadPlaintext,
    },
    #[error(
        "line {line}: the value at {path} is an integer outside the 64-bit range sops supports"
    )]
    OutOfRange { path: String, line: usize },
    #[error("MAC mismatch: the file has {}, but its values give {computed}; a value was changed, added, removed or reordered outside sops", stored.as_deref().map(|s| format!("MAC {s}")).unwrap_or_else(|| "no MAC".into()))]
    MacMismatch {
        stored: Option<String>,
        computed: String,
    },
    #[error("the file's MAC cannot be opened: {0}")]
    MacUnreadable(cipher::CipherError),
    #[error("an encrypted comment would match unencrypted_comment_regex, so the file could not be decrypted; change the regex")]
    CommentMatchesUnencryptedRegex,
    #[error("the encrypted result could not be read back ({0}), so nothing was written; reformat that part of the file (for example, indent the closing bracket of a multi-line flow collection) and try again")]
    Unreadable(FormatError),
    #[error(transparent)]
    Splice(#[from] SpliceError),
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_paths_stay_short() {
        assert_eq!(
            super::display_path(&["db", "password"]),
            r#"["db"]["password"]"#
        );
        let deep: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        let shown = super::display_path(&deep);
        assert!(shown.starts_with(r#"["k0"]["k1"]"#) && shown.ends_with(r#"["k999"]"#));
        assert!(
            shown.contains("(984 more keys)") && shown.len() < 200,
            "{shown}"
        );
        let long = "x".repeat(10_000);
        assert!(super::display_path(&[long.as_str()]).len() < 80);
    }
}
