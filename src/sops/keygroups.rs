//! Key groups: wrapping a new data key for every master key (splitting it with
//! Shamir when there is more than one group), and recovering it from whichever
//! master keys this machine can use — local age identities before network keys,
//! stopping at the first key that opens each group, as sops does.

use std::cell::OnceCell;
use std::fmt::Write as _;

use zeroize::Zeroizing;

use super::datakey::DataKey;
use super::metadata::{AgeKey, KeyGroup, MasterKey, Metadata};
use super::shamir;
use crate::keys::{age, KeyError};

/// A recipient named by the command line or `.sops.yaml`, before wrapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    Age(String),
    Kms {
        arn: String,
        role: String,
        context: Vec<(String, String)>,
        aws_profile: String,
    },
    /// A key type sops knows but git-sops cannot wrap for (pgp, gcp_kms, ...).
    Unsupported {
        kind: String,
        id: String,
    },
}

impl Recipient {
    pub fn describe(&self) -> String {
        match self {
            Recipient::Age(r) => format!("age {r}"),
            Recipient::Kms { arn, .. } => format!("kms {arn}"),
            Recipient::Unsupported { kind, id } => format!("{kind} {id}"),
        }
    }
}

/// Why the data key could not be wrapped or recovered.
#[derive(Debug, thiserror::Error)]
pub enum KeyGroupError {
    #[error("could not encrypt the data key for {recipient}: {source}")]
    Wrap { recipient: String, source: KeyError },
    #[error("git-sops cannot encrypt for {0} keys yet; use age or AWS KMS recipients")]
    UnsupportedRecipient(String),
    #[error("shamir_threshold {threshold} is invalid for {groups} key groups (it must be between 2 and the number of groups)")]
    BadThreshold { threshold: usize, groups: usize },
    #[error(
        "no recipients: give --age (or --kms), or add a creation rule with keys to .sops.yaml"
    )]
    NoRecipients,
    #[error("could not decrypt the data key with any of this file's master keys.\n{report}")]
    Recover { report: String },
}

/// The master keys this process can use, loaded on first need (so a file with
/// only KMS keys never runs `SOPS_AGE_KEY_CMD`).
#[derive(Default)]
pub struct Keyring {
    age: OnceCell<Result<age::Identities, KeyError>>,
}

impl Keyring {
    pub fn new() -> Keyring {
        Keyring::default()
    }

    pub fn with_age(ids: age::Identities) -> Keyring {
        let keyring = Keyring::default();
        let _ = keyring.age.set(Ok(ids));
        keyring
    }

    fn age(&self) -> Result<&age::Identities, &KeyError> {
        self.age.get_or_init(age::Identities::discover).as_ref()
    }

    fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, String> {
        match key {
            MasterKey::Age(k) => match self.age() {
                Ok(ids) => ids.unwrap(&k.enc).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            MasterKey::Kms(_) => Err("AWS KMS keys are not supported by this build of git-sops yet".into()),
            MasterKey::Other { kind, .. } => Err(format!(
                "git-sops cannot use {kind} keys; decrypt with `sops`, or add an age or KMS recipient with `sops updatekeys`"
            )),
        }
    }
}

/// Wrap a fresh data key for every recipient; returns the key and the groups.
pub fn wrap_new(
    groups: &[Vec<Recipient>],
    threshold: usize,
) -> Result<(DataKey, Vec<KeyGroup>, usize), KeyGroupError> {
    let key = DataKey::generate();
    let (wrapped, threshold) = wrap(&key, groups, threshold)?;
    Ok((key, wrapped, threshold))
}

/// Wrap `key` for every recipient (shares when there are several groups).
pub fn wrap(
    key: &DataKey,
    groups: &[Vec<Recipient>],
    threshold: usize,
) -> Result<(Vec<KeyGroup>, usize), KeyGroupError> {
    let groups: Vec<&Vec<Recipient>> = groups.iter().filter(|g| !g.is_empty()).collect();
    if groups.is_empty() {
        return Err(KeyGroupError::NoRecipients);
    }
    let threshold = if groups.len() > 1 {
        let t = if threshold == 0 {
            groups.len()
        } else {
            threshold
        };
        if t < 2 || t > groups.len() {
            return Err(KeyGroupError::BadThreshold {
                threshold: t,
                groups: groups.len(),
            });
        }
        t
    } else {
        0
    };
    let secrets: Vec<Zeroizing<Vec<u8>>> = if groups.len() > 1 {
        shamir::split(key.bytes(), groups.len(), threshold)
    } else {
        vec![Zeroizing::new(key.bytes().to_vec())]
    };
    let mut out = Vec::new();
    for (group, secret) in groups.iter().zip(&secrets) {
        let mut wrapped = Vec::new();
        for r in group.iter() {
            wrapped.push(match r {
                Recipient::Age(recipient) => MasterKey::Age(AgeKey {
                    recipient: recipient.clone(),
                    enc: age::wrap(recipient, secret).map_err(|source| KeyGroupError::Wrap {
                        recipient: r.describe(),
                        source,
                    })?,
                }),
                Recipient::Kms { .. } => {
                    return Err(KeyGroupError::UnsupportedRecipient("AWS KMS".into()))
                }
                Recipient::Unsupported { kind, .. } => {
                    return Err(KeyGroupError::UnsupportedRecipient(kind.clone()))
                }
            });
        }
        out.push(wrapped);
    }
    Ok((out, threshold))
}

/// Recover the data key from the metadata's key groups.
pub fn recover(meta: &Metadata, keyring: &Keyring) -> Result<DataKey, KeyGroupError> {
    let mut report = String::new();
    let mut secrets = Vec::new();
    for (gi, group) in meta.key_groups.iter().enumerate() {
        // Local age keys first: they cost nothing and need no network.
        let mut order: Vec<&MasterKey> = group.iter().collect();
        order.sort_by_key(|k| match k {
            MasterKey::Age(_) => 0,
            MasterKey::Other { kind, .. } if kind == "pgp" => 1,
            _ => 2,
        });
        let mut opened = None;
        for key in order {
            match keyring.unwrap(key) {
                Ok(secret) => {
                    opened = Some(secret);
                    break;
                }
                Err(why) => {
                    let _ = writeln!(
                        report,
                        "  group {gi}: {} {}: {why}",
                        key.kind(),
                        key.identifier()
                    );
                }
            }
        }
        if let Some(secret) = opened {
            secrets.push(secret);
        }
    }
    let failed = |extra: &str| KeyGroupError::Recover {
        report: format!("{report}{extra}"),
    };
    let key = if meta.key_groups.len() <= 1 {
        secrets.pop().and_then(|s| DataKey::from_slice(&s))
    } else {
        let threshold = meta.shamir_threshold.max(2);
        if secrets.len() < threshold {
            return Err(failed(&format!(
                "  only {} of the {threshold} key groups needed could be opened",
                secrets.len()
            )));
        }
        shamir::combine(&secrets).and_then(|s| DataKey::from_slice(&s))
    };
    key.ok_or_else(|| failed(""))
}
