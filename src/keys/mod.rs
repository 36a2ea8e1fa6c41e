//! Master keys: wrapping and unwrapping a file's data key (or a Shamir share of
//! it) for one recipient. This layer knows nothing of documents or metadata
//! layout; it turns secrets into `enc` strings and back.

pub mod age;

/// Why a master key could not wrap or unwrap.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0:?} is not an age recipient (expected age1… as printed by `age-keygen -y` or `git sops keygen`)")]
    BadAgeRecipient(String),
    #[error("age encryption failed: {0}")]
    AgeEncrypt(String),
    #[error(
        "the age identity in {source_name} is invalid on line {line}: expected AGE-SECRET-KEY-1…"
    )]
    BadIdentity { source_name: String, line: usize },
    #[error("could not read {source_name}: {message}")]
    Source {
        source_name: String,
        message: String,
    },
    #[error("none of the available age identities ({tried}) is a recipient of this key")]
    NoMatchingIdentity { tried: String },
    #[error("no age identity found: set SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD, or create {default_file} with `git sops keygen`")]
    NoIdentities { default_file: String },
    #[error("the age-encrypted data key is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Unsupported(String),
}
