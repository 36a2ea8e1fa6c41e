//! Key groups: wrapping a new data key for every master key (splitting it with
//! Shamir when there is more than one group), and recovering it from whichever
//! master keys this machine can use — local age identities before network keys,
//! stopping at the first key that opens each group, as sops does.

use std::cell::OnceCell;
use std::fmt::Write as _;

use zeroize::Zeroizing;

use super::datakey::DataKey;
use super::metadata::{now_rfc3339, AgeKey, KeyGroup, KmsKey, MasterKey, Metadata};
use super::shamir;
use crate::formats::Value;
use crate::keys::kms::{self, KmsKeyRef};
use crate::keys::{age, KeyError};

/// A recipient named by the command line or `.sops.yaml`, before wrapping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

impl From<&MasterKey> for Recipient {
    /// The recipient a key was wrapped for, to wrap a new data key for it.
    fn from(key: &MasterKey) -> Recipient {
        match key {
            MasterKey::Age(k) => Recipient::Age(k.recipient.clone()),
            MasterKey::Kms(k) => Recipient::Kms {
                arn: k.arn.clone(),
                role: k.role.clone(),
                context: k.context.clone(),
                aws_profile: k.aws_profile.clone(),
            },
            MasterKey::Other { kind, .. } => Recipient::Unsupported {
                kind: kind.clone(),
                id: key.identifier(),
            },
        }
    }
}

impl Recipient {
    pub fn describe(&self) -> String {
        match self {
            Recipient::Age(r) => format!("age {r}"),
            Recipient::Kms { .. } => format!("kms {}", self.string_form()),
            Recipient::Unsupported { kind, id } => format!("{kind} {id}"),
        }
    }

    /// The key's type, as the metadata names it (`age`, `kms`, `pgp`, ...).
    pub fn kind(&self) -> &str {
        match self {
            Recipient::Age(_) => "age",
            Recipient::Kms { .. } => "kms",
            Recipient::Unsupported { kind, .. } => kind,
        }
    }

    /// sops' `ToString()` of the master key, which `updatekeys` diffs by: the age
    /// recipient; for KMS `ARN[+ROLE]`, then `|k:v,...` (context, sorted) when
    /// there is a context or a profile, then `|PROFILE` when there is a profile.
    pub fn string_form(&self) -> String {
        match self {
            Recipient::Age(r) => r.clone(),
            Recipient::Kms {
                arn,
                role,
                context,
                aws_profile,
            } => {
                let mut s = arn.clone();
                if !role.is_empty() {
                    s.push('+');
                    s.push_str(role);
                }
                let mut sorted = context.clone();
                sorted.sort();
                let ctx: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                let ctx = ctx.join(",");
                if !aws_profile.is_empty() {
                    format!("{s}|{ctx}|{aws_profile}")
                } else if !ctx.is_empty() {
                    format!("{s}|{ctx}")
                } else {
                    s
                }
            }
            Recipient::Unsupported { id, .. } => id.clone(),
        }
    }
}

/// sops' string form of a master key from a file (see [`Recipient::string_form`]).
pub fn key_string_form(key: &MasterKey) -> String {
    match key {
        MasterKey::Other { kind, entry } => {
            let f = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or("");
            match kind.as_str() {
                "pgp" => f("fp").to_string(),
                "gcp_kms" => f("resource_id").to_string(),
                "hckms" => f("key_id").to_string(),
                "azure_kv" => format!("{}/keys/{}/{}", f("vault_url"), f("name"), f("version")),
                "hc_vault" => format!(
                    "{}/v1/{}/keys/{}",
                    f("vault_address"),
                    f("engine_path"),
                    f("key_name")
                ),
                _ => key.identifier(),
            }
        }
        _ => Recipient::from(key).string_form(),
    }
}

/// One key as `updatekeys` compares keys: its type and sops' string form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName {
    pub kind: String,
    pub form: String,
}

impl KeyName {
    pub fn of_key(k: &MasterKey) -> KeyName {
        KeyName {
            kind: k.kind().to_string(),
            form: key_string_form(k),
        }
    }

    pub fn of_recipient(r: &Recipient) -> KeyName {
        KeyName {
            kind: r.kind().to_string(),
            form: r.string_form(),
        }
    }
}

/// The difference between a file's group and a rule's group at one index.
#[derive(Default)]
pub struct GroupDiff {
    pub common: Vec<KeyName>,
    pub added: Vec<KeyName>,
    pub removed: Vec<KeyName>,
}

pub fn diff_groups(ours: &[KeyGroup], theirs: &[Vec<Recipient>]) -> Vec<GroupDiff> {
    (0..ours.len().max(theirs.len()))
        .map(|i| {
            let our: Vec<KeyName> = ours
                .get(i)
                .map(|g| g.iter().map(KeyName::of_key).collect())
                .unwrap_or_default();
            let their: Vec<KeyName> = theirs
                .get(i)
                .map(|g| g.iter().map(KeyName::of_recipient).collect())
                .unwrap_or_default();
            let mut d = GroupDiff::default();
            for k in &their {
                if our.contains(k) {
                    d.common.push(k.clone());
                } else {
                    d.added.push(k.clone());
                }
            }
            d.removed = our.into_iter().filter(|k| !their.contains(k)).collect();
            d
        })
        .collect()
}

/// How a file's keys differ from the key groups a creation rule names now
/// (empty groups of the rule ignored, as `updatekeys` does): `None` when they
/// are the same, else a short description such as
/// `removed age age1...; added kms arn:...`.
pub fn drift(ours: &[KeyGroup], rule: &[Vec<Recipient>]) -> Option<String> {
    let rule: Vec<Vec<Recipient>> = rule.iter().filter(|g| !g.is_empty()).cloned().collect();
    if rule.is_empty() {
        return None;
    }
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for d in diff_groups(ours, &rule) {
        removed.extend(d.removed.iter().map(|k| format!("{} {}", k.kind, k.form)));
        added.extend(d.added.iter().map(|k| format!("{} {}", k.kind, k.form)));
    }
    let mut parts = Vec::new();
    if !removed.is_empty() {
        parts.push(format!("removed {}", removed.join(", ")));
    }
    if !added.is_empty() {
        parts.push(format!("added {}", added.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
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
    #[error("{groups} key groups are too many: Shamir secret sharing (in sops as here) gives each group a one-byte share number, so there can be at most {max}; merge some groups")]
    TooManyGroups { groups: usize, max: usize },
    #[error(
        "no recipients: give --age (or --kms), or add a creation rule with keys to .sops.yaml"
    )]
    NoRecipients,
    #[error(
        "could not decrypt the data key with this file's master keys. Tried, in order:\n{report}"
    )]
    Recover { report: String },
    #[error("{recipient}: {source}")]
    BadRecipient { recipient: String, source: KeyError },
}

/// The master keys this process can use, loaded on first need (so a file with
/// only KMS keys never runs `SOPS_AGE_KEY_CMD`).
#[derive(Default)]
pub struct Keyring {
    age: OnceCell<Result<age::Identities, KeyError>>,
    /// Never call KMS (a commit hook must not wait on the network).
    offline: bool,
}

impl Keyring {
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Local keys only: age identities, no KMS call.
    pub fn offline() -> Keyring {
        Keyring {
            offline: true,
            ..Keyring::default()
        }
    }

    pub fn with_age(ids: age::Identities) -> Keyring {
        let keyring = Keyring::default();
        let _ = keyring.age.set(Ok(ids));
        keyring
    }

    fn age(&self) -> Result<&age::Identities, &KeyError> {
        self.age.get_or_init(age::Identities::discover).as_ref()
    }

    /// The recipients of the age identities this process holds.
    fn age_recipients(&self) -> Vec<String> {
        self.age().map(|ids| ids.recipients()).unwrap_or_default()
    }

    fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match key {
            MasterKey::Age(k) => self.age().map_err(KeyError::clone)?.unwrap(&k.enc),
            MasterKey::Kms(_) if self.offline => Err(KeyError::NotTried),
            // The network key: tried after local age identities (see `recover`).
            MasterKey::Kms(k) => kms::decrypt(
                &KmsKeyRef {
                    arn: &k.arn,
                    role: &k.role,
                    context: &k.context,
                    aws_profile: &k.aws_profile,
                },
                &k.enc,
            ),
            MasterKey::Other { kind, .. } => Err(KeyError::Unsupported(format!(
                "git-sops cannot use {kind} keys; decrypt with `sops`, or add an age or KMS recipient with `sops updatekeys`"
            ))),
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
    wrap_many(&[WrapJob {
        key,
        groups,
        threshold,
    }])
    .pop()
    .unwrap_or(Err(KeyGroupError::NoRecipients))
}

/// One file's data key to wrap, for [`wrap_many`].
pub struct WrapJob<'a> {
    pub key: &'a DataKey,
    /// The recipients of each key group (empty groups are dropped).
    pub groups: &'a [Vec<Recipient>],
    /// sops' `shamir_threshold` (0: all groups).
    pub threshold: usize,
}

/// The wrapped key of one recipient of one job, or why it failed; `None` while
/// not wrapped yet (or never sent, after an earlier recipient failed).
type Slot = Option<Result<MasterKey, KeyGroupError>>;

/// A KMS recipient to wrap for: (job, group, position) and its sorted context.
type KmsWanted = (usize, usize, usize, Vec<(String, String)>);

/// A job checked and split into one secret per group, before any wrapping.
struct Planned<'a> {
    groups: Vec<&'a Vec<Recipient>>,
    secrets: Vec<Zeroizing<Vec<u8>>>,
    threshold: usize,
}

/// Check a job locally and split its key (Shamir shares with several groups).
fn plan<'a>(job: &WrapJob<'a>) -> Result<Planned<'a>, KeyGroupError> {
    let groups: Vec<&Vec<Recipient>> = job.groups.iter().filter(|g| !g.is_empty()).collect();
    if groups.is_empty() {
        return Err(KeyGroupError::NoRecipients);
    }
    if groups.len() > shamir::MAX_SHARES {
        return Err(KeyGroupError::TooManyGroups {
            groups: groups.len(),
            max: shamir::MAX_SHARES,
        });
    }
    // Everything that can be checked locally is checked before any network call.
    for r in groups.iter().flat_map(|g| g.iter()) {
        check_recipient(r)?;
    }
    let threshold = if groups.len() > 1 {
        let t = if job.threshold == 0 {
            groups.len()
        } else {
            job.threshold
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
        shamir::split(job.key.bytes(), groups.len(), threshold).ok_or(
            KeyGroupError::BadThreshold {
                threshold,
                groups: groups.len(),
            },
        )?
    } else {
        vec![Zeroizing::new(job.key.bytes().to_vec())]
    };
    Ok(Planned {
        groups,
        secrets,
        threshold,
    })
}

/// Wrap many data keys at once (a bulk `updatekeys` or `rotate`): each job as
/// [`wrap`] would, but the KMS `Encrypt` calls of all jobs run concurrently,
/// with the bound and the throttling rounds of a checkout's unwraps
/// ([`kms::decrypt_many`]). age wraps are local X25519 operations of
/// microseconds and are done in turn; a job whose age wrap fails makes no KMS
/// call. Results are in the order of `jobs`; within a job, the first failing
/// recipient (in group and file order) is the one reported.
pub fn wrap_many(jobs: &[WrapJob<'_>]) -> Vec<Result<(Vec<KeyGroup>, usize), KeyGroupError>> {
    let mut planned: Vec<Result<Planned<'_>, KeyGroupError>> = jobs.iter().map(plan).collect();
    // Each slot: the wrapped key of (job, group, position), or why it failed.
    let mut slots: Vec<Vec<Vec<Slot>>> = planned
        .iter()
        .map(|p| match p {
            Ok(p) => p
                .groups
                .iter()
                .map(|g| g.iter().map(|_| None).collect())
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect();
    // age first (local); a job with a failed age wrap is not sent to KMS.
    let mut kms_wanted: Vec<KmsWanted> = Vec::new();
    for (ji, p) in planned.iter().enumerate() {
        let Ok(p) = p else { continue };
        let mut age_failed = false;
        let mut kms_of_job = Vec::new();
        for (gi, (group, secret)) in p.groups.iter().zip(&p.secrets).enumerate() {
            for (ki, r) in group.iter().enumerate() {
                match r {
                    Recipient::Age(recipient) => {
                        let wrapped = age::wrap(recipient, secret)
                            .map(|enc| {
                                MasterKey::Age(AgeKey {
                                    recipient: recipient.clone(),
                                    enc,
                                })
                            })
                            .map_err(|source| KeyGroupError::Wrap {
                                recipient: r.describe(),
                                source,
                            });
                        age_failed |= wrapped.is_err();
                        slots[ji][gi][ki] = Some(wrapped);
                    }
                    Recipient::Kms { context, .. } => {
                        let mut context = context.clone();
                        context.sort();
                        kms_of_job.push((ji, gi, ki, context));
                    }
                    Recipient::Unsupported { kind, .. } => {
                        slots[ji][gi][ki] =
                            Some(Err(KeyGroupError::UnsupportedRecipient(kind.clone())));
                        age_failed = true;
                    }
                }
            }
        }
        if !age_failed {
            kms_wanted.extend(kms_of_job);
        }
    }
    let kms_jobs: Vec<(KmsKeyRef<'_>, &[u8])> = kms_wanted
        .iter()
        .filter_map(|(ji, gi, ki, context)| {
            let p = planned[*ji].as_ref().ok()?;
            match &p.groups[*gi][*ki] {
                Recipient::Kms {
                    arn,
                    role,
                    aws_profile,
                    ..
                } => Some((
                    KmsKeyRef {
                        arn,
                        role,
                        context,
                        aws_profile,
                    },
                    p.secrets[*gi].as_slice(),
                )),
                _ => None,
            }
        })
        .collect();
    let encs = kms::encrypt_many(&kms_jobs, kms::DEFAULT_IN_FLIGHT);
    for ((ji, gi, ki, context), enc) in kms_wanted.into_iter().zip(encs) {
        let Ok(p) = &planned[ji] else { continue };
        let r = &p.groups[gi][ki];
        if let Recipient::Kms {
            arn,
            role,
            aws_profile,
            ..
        } = r
        {
            slots[ji][gi][ki] = Some(
                enc.map(|enc| {
                    MasterKey::Kms(KmsKey {
                        arn: arn.clone(),
                        role: role.clone(),
                        context,
                        created_at: now_rfc3339(),
                        enc,
                        aws_profile: aws_profile.clone(),
                    })
                })
                .map_err(|source| KeyGroupError::Wrap {
                    recipient: r.describe(),
                    source,
                }),
            );
        }
    }
    planned
        .iter_mut()
        .zip(slots)
        .map(|(p, job_slots)| {
            let p = std::mem::replace(p, Err(KeyGroupError::NoRecipients))?;
            let mut out = Vec::new();
            for group in job_slots {
                let mut wrapped = Vec::new();
                for slot in group {
                    // A slot without a result: its job was not sent to KMS
                    // because an earlier recipient failed, which is reported first.
                    match slot {
                        Some(Ok(k)) => wrapped.push(k),
                        Some(Err(e)) => return Err(e),
                        None => {}
                    }
                }
                out.push(wrapped);
            }
            Ok((out, p.threshold))
        })
        .collect()
}

/// Check a recipient without using the network: a malformed age recipient, KMS
/// ARN or role is refused before anything is wrapped.
pub fn check_recipient(r: &Recipient) -> Result<(), KeyGroupError> {
    let bad = |source| KeyGroupError::BadRecipient {
        recipient: r.describe(),
        source,
    };
    match r {
        Recipient::Age(recipient) => {
            <::age::x25519::Recipient as std::str::FromStr>::from_str(recipient.trim())
                .map(|_| ())
                .map_err(|_| KeyError::BadAgeRecipient(recipient.clone()))
                .map_err(bad)
        }
        Recipient::Kms {
            arn,
            role,
            context,
            aws_profile,
        } => kms::check(&KmsKeyRef {
            arn,
            role,
            context,
            aws_profile,
        })
        .map_err(bad),
        Recipient::Unsupported { kind, .. } => {
            Err(KeyGroupError::UnsupportedRecipient(kind.clone()))
        }
    }
}

/// Recover the data key from the metadata's key groups. In each group the keys
/// are tried in sops' order — age (local, free) first, then pgp, then the rest
/// (AWS KMS, a network call) in file order — stopping at the first that opens
/// it; with several groups, trying stops once `shamir_threshold` groups are open.
/// On failure the error lists every key tried and what each attempt said.
/// The most KMS keys one file's data key is tried with. Each try may wait for
/// the KMS timeout, and a hostile file can list hundreds of keys; real files
/// list one per region or account (sops users rarely need more than a few).
pub(crate) const MAX_KMS_TRIES: usize = 8;

/// The most age keys of one key group tried (those addressed to one of our
/// identities first): each costs an X25519 operation per stanza, and a hostile
/// file can repeat an entry hundreds of times.
pub(crate) const MAX_AGE_TRIES: usize = 16;

pub fn recover(meta: &Metadata, keyring: &Keyring) -> Result<DataKey, KeyGroupError> {
    let mut report = String::new();
    let mut secrets = Vec::new();
    let mut kms_tried = 0;
    let several = meta.key_groups.len() > 1;
    let threshold = if several {
        meta.shamir_threshold.max(2)
    } else {
        1
    };
    for (gi, group) in meta.key_groups.iter().enumerate() {
        if secrets.len() >= threshold {
            break;
        }
        // Local keys first (age: those addressed to one of our identities
        // before the others), the network last.
        // (Only asked when the group has age keys: a KMS-only file must not run
        // SOPS_AGE_KEY_CMD.)
        let ours = if group.iter().any(|k| matches!(k, MasterKey::Age(_))) {
            keyring.age_recipients()
        } else {
            Vec::new()
        };
        let mut order: Vec<&MasterKey> = group.iter().collect();
        order.sort_by_key(|k| match k {
            MasterKey::Age(a) if ours.contains(&a.recipient) => 0,
            MasterKey::Age(_) => 1,
            MasterKey::Other { kind, .. } if kind == "pgp" => 2,
            _ => 3,
        });
        let indent = if several {
            let _ = writeln!(
                report,
                "  key group {} of {}:",
                gi + 1,
                meta.key_groups.len()
            );
            "    "
        } else {
            "  "
        };
        let mut opened = None;
        let mut age_tried = 0;
        for key in order {
            if matches!(key, MasterKey::Age(_)) {
                if age_tried >= MAX_AGE_TRIES {
                    let _ = writeln!(
                        report,
                        "{indent}{} {}: not tried: git-sops tries at most {MAX_AGE_TRIES} age keys of one key group",
                        key.kind(),
                        key.identifier()
                    );
                    continue;
                }
                age_tried += 1;
            }
            if matches!(key, MasterKey::Kms(_)) {
                if kms_tried >= MAX_KMS_TRIES {
                    let _ = writeln!(
                        report,
                        "{indent}{} {}: not tried: git-sops calls KMS for at most {MAX_KMS_TRIES} keys of one file",
                        key.kind(),
                        key.identifier()
                    );
                    continue;
                }
                kms_tried += 1;
            }
            match keyring.unwrap(key) {
                Ok(secret) => {
                    let _ = writeln!(
                        report,
                        "{indent}{} {}: opened",
                        key.kind(),
                        key.identifier()
                    );
                    opened = Some(secret);
                    break;
                }
                Err(why) => {
                    let _ = writeln!(
                        report,
                        "{indent}{} {}: FAILED: {why}",
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
        report: format!("{report}{extra}").trim_end().to_string(),
    };
    let key = if !several {
        match secrets.pop() {
            Some(s) => DataKey::from_slice(&s).ok_or_else(|| {
                failed("  the unwrapped data key is not 32 bytes: the key entry is damaged")
            })?,
            None => return Err(failed("")),
        }
    } else {
        if secrets.len() < threshold {
            return Err(failed(&format!(
                "  only {} of the {threshold} key groups needed (shamir_threshold) could be opened",
                secrets.len()
            )));
        }
        shamir::combine(&secrets)
            .and_then(|s| DataKey::from_slice(&s))
            .ok_or_else(|| {
                failed("  the Shamir shares do not combine into a data key: a key entry is damaged")
            })?
    };
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::KmsKey;

    #[test]
    fn kms_is_tried_for_at_most_a_few_keys_of_one_file() {
        let key = |n: usize| {
            MasterKey::Kms(KmsKey {
                arn: format!("arn:aws:kms:eu-west-1:111122223333:key/k{n}"),
                role: String::new(),
                context: Vec::new(),
                created_at: "2024-01-01T00:00:00Z".into(),
                enc: "AAAA".into(),
                aws_profile: String::new(),
            })
        };
        let meta = Metadata {
            key_groups: vec![(0..20).map(key).collect()],
            shamir_threshold: 0,
            lastmodified: "2024-01-01T00:00:00Z".into(),
            mac: String::new(),
            selector: None,
            mac_only_encrypted: false,
            version: "3.11.0".into(),
        };
        let Err(KeyGroupError::Recover { report }) = recover(&meta, &Keyring::offline()) else {
            panic!("recovered a key");
        };
        assert_eq!(
            report.matches("not tried: this command").count(),
            MAX_KMS_TRIES
        );
        assert_eq!(
            report.matches("at most 8 keys").count(),
            20 - MAX_KMS_TRIES,
            "{report}"
        );
    }
}
