//! `git sops publish`: delivering committed SOPS files into AWS Secrets Manager
//! and SSM Parameter Store (docs/publish.md).
//!
//! What this module owns, in order of the data flow:
//! * `rules`: the `git_sops: publish:` section of `.sops.yaml` and its templates;
//! * `desired`: what git says, from *committed* blobs of one revision (never the
//!   working tree: what is published is what was reviewed), decrypted in memory;
//! * `plan`: desired state against current state, a pure function, so every
//!   decision (create, update, unchanged, drift, orphan, adopt) is unit-tested
//!   without AWS;
//! * `apply`: the steps a plan implies, through the [`Backend`] trait;
//! * `aws`: the only AWS (and only async) code, on sops-file's one runtime and
//!   shared client configuration (`sops_file::keys::kms::aws`).
//!
//! Secrets hygiene: decrypted values are `Zeroizing` and have no `Debug`; what
//! leaves this module about a value is its key name and at most a fingerprint,
//! an HMAC-SHA256 prefix keyed by a key derived from the file's own data key
//! (see [`Fingerprinter`]): someone who reads a plan without that key cannot
//! test guesses against it, unlike a bare hash of a short password.

pub mod apply;
#[cfg(feature = "publish")]
pub mod aws;
pub mod desired;
pub mod plan;
pub mod rules;

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The tag every resource git-sops publishes carries, and that it needs to find
/// before it overwrites or deletes anything.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "git-sops");
/// The repository a resource came from (orphans are looked for per repository).
pub const TAG_REPOSITORY: &str = "git-sops:repository";
/// The file a resource came from, repository-relative.
pub const TAG_SOURCE: &str = "git-sops:source";

/// What can stop the whole command (a single resource's failure is not one of these).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Git(String),
    #[error("{0}")]
    Aws(String),
}

/// Where a resource lives: the service, region and name (SSM: the parameter path).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId {
    pub service: Service,
    pub region: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    SecretsManager,
    Ssm,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.service.name(), self.region, self.name)
    }
}

/// The credentials a resource is reached with: profile and role (region is in the id).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub aws_profile: String,
    pub role: String,
}

/// A decrypted value. No `Debug`, no `Display`: it cannot be printed by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(pub Zeroizing<String>);

impl SecretText {
    pub fn new(s: String) -> SecretText {
        SecretText(Zeroizing::new(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// Fingerprints of values for plans: the first 12 hex digits of
/// HMAC-SHA256(k, key-path NUL value), where k = HMAC-SHA256(data key,
/// "git-sops publish fingerprint v1"). Keyed by a secret of the file, so a
/// plan (a CI log) gives no way to check a guessed value, and stable across
/// runs while the file keeps its data key, so reviewers can see that a value
/// changed back and forth. The data key itself is never used directly.
#[derive(Clone)]
pub struct Fingerprinter(Zeroizing<[u8; 32]>);

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprinter(..)")
    }
}

impl Fingerprinter {
    pub fn from_data_key(data_key: &[u8]) -> Fingerprinter {
        Fingerprinter(hmac_sha256(data_key, b"git-sops publish fingerprint v1"))
    }

    pub fn of(&self, key: &str, value: &str) -> String {
        let mut msg = Zeroizing::new(Vec::with_capacity(key.len() + 1 + value.len()));
        msg.extend_from_slice(key.as_bytes());
        msg.push(0);
        msg.extend_from_slice(value.as_bytes());
        let mac = hmac_sha256(&self.0[..], &msg);
        hex::encode(&mac[..6])
    }
}

/// HMAC-SHA256 (RFC 2104) over sha2, which is already a dependency.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 64]);
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>());
    inner.update(msg);
    let ih = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>());
    outer.update(ih);
    Zeroizing::new(outer.finalize().into())
}

/// Tags as a sorted map.
pub type Tags = BTreeMap<String, String>;

/// What one resource should be, according to git.
#[derive(Clone, Debug)]
pub struct Desired {
    pub id: ResourceId,
    pub access: Access,
    /// The repository path of the SOPS file.
    pub source: String,
    pub rule: usize,
    pub value: SecretText,
    pub kms_key_id: Option<String>,
    pub description: Option<String>,
    /// Every tag git-sops sets, its own three included.
    pub tags: Tags,
    /// The resource policy, parsed (compared as JSON, not as text).
    pub policy: Option<serde_json::Value>,
    pub replica_regions: Vec<String>,
    /// SSM only.
    pub tier: Option<String>,
    /// Whether the value is a JSON document whose top-level keys a plan lists.
    pub document: bool,
    pub fingerprints: Fingerprinter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(&mac[..]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn fingerprints_depend_on_the_data_key_and_the_key_path() {
        let a = Fingerprinter::from_data_key(&[1; 32]);
        let b = Fingerprinter::from_data_key(&[2; 32]);
        assert_eq!(a.of("k", "hunter2"), a.of("k", "hunter2"));
        assert_ne!(a.of("k", "hunter2"), b.of("k", "hunter2"));
        assert_ne!(a.of("k", "hunter2"), a.of("j", "hunter2"));
        assert_eq!(a.of("k", "x").len(), 12);
        assert_eq!(
            format!("{:?}", SecretText::new("hunter2".into())),
            "SecretText(..)"
        );
    }
}
