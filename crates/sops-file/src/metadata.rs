//! The `sops` metadata block: master keys (with the wrapped data key), MAC,
//! `lastmodified`, selectors and version (docs/sops-format.md §4).
//!
//! Reading validates what sops validates when it loads a file; writing emits the
//! fields in sops 3.11's struct order. Master keys of types git-sops cannot use
//! (pgp, gcp_kms, azure_kv, hc_vault, hckms, ...) are kept verbatim, so a rewrite
//! never drops a recipient that `sops` itself could still use.

use super::selectors::Selector;
use crate::formats::time::Time;
use crate::formats::Value;

/// The version git-sops writes: the sops release whose format it implements.
pub const SOPS_VERSION: &str = "3.11.0";

/// Key types that sops 3.11 emits flat, in its struct order, with where `age` and
/// `pgp` sit relative to `lastmodified`/`mac`.
const KEY_TYPES_BEFORE_MAC: [&str; 6] = ["kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age"];

#[derive(Clone, Debug, PartialEq)]
pub struct AgeKey {
    pub recipient: String,
    /// An armored age file wrapping the data key (or this group's Shamir share).
    pub enc: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KmsKey {
    pub arn: String,
    pub role: String,
    /// Encryption context, sorted by key as sops writes it.
    pub context: Vec<(String, String)>,
    pub created_at: String,
    pub enc: String,
    pub aws_profile: String,
}

/// One master key entry of the metadata.
#[derive(Clone, Debug, PartialEq)]
pub enum MasterKey {
    Age(AgeKey),
    Kms(KmsKey),
    /// A key type git-sops does not implement, kept verbatim: `kind` is the
    /// metadata field it appears under (`pgp`, `gcp_kms`, ...).
    Other {
        kind: String,
        entry: Value,
    },
}

impl MasterKey {
    pub fn kind(&self) -> &str {
        match self {
            MasterKey::Age(_) => "age",
            MasterKey::Kms(_) => "kms",
            MasterKey::Other { kind, .. } => kind,
        }
    }

    /// How the key is named to users and compared by `updatekeys` (sops' string form).
    pub fn identifier(&self) -> String {
        match self {
            MasterKey::Age(k) => k.recipient.clone(),
            MasterKey::Kms(k) if k.role.is_empty() => k.arn.clone(),
            MasterKey::Kms(k) => format!("{}+{}", k.arn, k.role),
            MasterKey::Other { kind, entry } => {
                let id = ["fp", "resource_id", "key_id", "vault_address", "vault_url"]
                    .iter()
                    .find_map(|f| entry.get(f).and_then(Value::as_str))
                    .unwrap_or("?");
                format!("{kind}:{id}")
            }
        }
    }

    fn to_value(&self) -> Value {
        match self {
            MasterKey::Age(k) => Value::Map(vec![
                ("recipient".into(), Value::Str(k.recipient.clone())),
                ("enc".into(), Value::Str(k.enc.clone())),
            ]),
            MasterKey::Kms(k) => {
                let mut m = vec![("arn".into(), Value::Str(k.arn.clone()))];
                if !k.role.is_empty() {
                    m.push(("role".into(), Value::Str(k.role.clone())));
                }
                if !k.context.is_empty() {
                    let ctx = k
                        .context
                        .iter()
                        .map(|(a, b)| (a.clone(), Value::Str(b.clone())))
                        .collect();
                    m.push(("context".into(), Value::Map(ctx)));
                }
                m.push(("created_at".into(), Value::Str(k.created_at.clone())));
                m.push(("enc".into(), Value::Str(k.enc.clone())));
                m.push(("aws_profile".into(), Value::Str(k.aws_profile.clone())));
                Value::Map(m)
            }
            MasterKey::Other { entry, .. } => entry.clone(),
        }
    }
}

/// A key group: every key in it wraps the same secret (the data key, or one Shamir share).
pub type KeyGroup = Vec<MasterKey>;

#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    pub key_groups: Vec<KeyGroup>,
    /// Only meaningful (and only written) with more than one key group.
    pub shamir_threshold: usize,
    /// The raw `lastmodified` text.
    pub lastmodified: String,
    /// The encrypted MAC (`ENC[...]`), or empty.
    pub mac: String,
    /// The selector recorded in the file; `None` means sops' implied `_unencrypted` suffix.
    pub selector: Option<Selector>,
    pub mac_only_encrypted: bool,
    pub version: String,
}

/// What is wrong with a metadata block.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    #[error("the `sops` metadata is not a mapping")]
    NotAMap,
    #[error("the `sops` metadata has no `{0}` field")]
    Missing(&'static str),
    #[error("the `sops` metadata field `{field}` is malformed: {why}")]
    Malformed { field: String, why: String },
    #[error("the `sops` metadata names no master key (no age, kms, pgp, ... entries): nobody could decrypt this file")]
    NoKeys,
    #[error("the `sops` metadata sets more than one of {0}; sops allows at most one")]
    TooManySelectors(String),
}

fn malformed(field: &str, why: impl Into<String>) -> MetadataError {
    MetadataError::Malformed {
        field: field.to_string(),
        why: why.into(),
    }
}

fn string_field(map: &Value, field: &str, required: bool) -> Result<String, MetadataError> {
    match map.get(field) {
        None | Some(Value::Null) if !required => Ok(String::new()),
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(Value::Null) | None => Err(malformed(field, "missing")),
        Some(_) => Err(malformed(field, "expected a string")),
    }
}

fn parse_key(kind: &str, entry: &Value) -> Result<MasterKey, MetadataError> {
    if !matches!(entry, Value::Map(_)) {
        return Err(malformed(kind, "each entry must be a mapping"));
    }
    match kind {
        "age" => Ok(MasterKey::Age(AgeKey {
            recipient: string_field(entry, "recipient", true)
                .map_err(|_| malformed("age", "an entry has no `recipient`"))?,
            enc: string_field(entry, "enc", true)
                .map_err(|_| malformed("age", "an entry has no `enc`"))?,
        })),
        "kms" => {
            let context = match entry.get("context") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Map(m)) => {
                    let mut ctx = m
                        .iter()
                        .map(|(k, v)| match v {
                            Value::Str(s) => Ok((k.clone(), s.clone())),
                            _ => Err(malformed("kms", "context values must be strings")),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    ctx.sort();
                    ctx
                }
                Some(_) => return Err(malformed("kms", "`context` must be a mapping")),
            };
            let created_at = string_field(entry, "created_at", true)
                .map_err(|_| malformed("kms", "an entry has no `created_at`"))?;
            Time::parse_rfc3339(&created_at).ok_or_else(|| {
                malformed(
                    "kms",
                    format!("`created_at` {created_at:?} is not an RFC3339 time"),
                )
            })?;
            Ok(MasterKey::Kms(KmsKey {
                arn: string_field(entry, "arn", true)
                    .map_err(|_| malformed("kms", "an entry has no `arn`"))?,
                role: string_field(entry, "role", false)?,
                context,
                created_at,
                enc: string_field(entry, "enc", true)
                    .map_err(|_| malformed("kms", "an entry has no `enc`"))?,
                aws_profile: string_field(entry, "aws_profile", false)?,
            }))
        }
        other => Ok(MasterKey::Other {
            kind: other.to_string(),
            entry: entry.clone(),
        }),
    }
}

fn parse_group(map: &Value) -> Result<KeyGroup, MetadataError> {
    let Value::Map(fields) = map else {
        return Err(malformed("key_groups", "each group must be a mapping"));
    };
    let mut group = Vec::new();
    // sops' load order within a group; unknown fields (e.g. the old `attention`) are ignored.
    for kind in [
        "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "pgp", "age",
    ] {
        match fields.iter().find(|(k, _)| k == kind).map(|(_, v)| v) {
            None | Some(Value::Null) => {}
            Some(Value::List(entries)) => {
                for e in entries {
                    group.push(parse_key(kind, e)?);
                }
            }
            Some(_) => return Err(malformed(kind, "expected a list of keys")),
        }
    }
    Ok(group)
}

impl Metadata {
    /// Read and validate a metadata block (the value of the top-level `sops` key).
    pub fn from_value(v: &Value) -> Result<Metadata, MetadataError> {
        if !matches!(v, Value::Map(_)) {
            return Err(MetadataError::NotAMap);
        }
        let key_groups = match v.get("key_groups") {
            Some(Value::List(groups)) if !groups.is_empty() => groups
                .iter()
                .map(parse_group)
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::List(_)) | None | Some(Value::Null) => vec![parse_group(v)?],
            Some(_) => return Err(malformed("key_groups", "expected a list")),
        };
        if key_groups.iter().all(|g| g.is_empty()) {
            return Err(MetadataError::NoKeys);
        }
        if key_groups.len() > super::shamir::MAX_SHARES {
            return Err(malformed(
                "key_groups",
                format!(
                    "{} groups; Shamir secret sharing allows at most {} (sops writes no more)",
                    key_groups.len(),
                    super::shamir::MAX_SHARES
                ),
            ));
        }
        let shamir_threshold = match v.get("shamir_threshold") {
            None | Some(Value::Null) => 0,
            Some(Value::Int(n)) if *n >= 0 => *n as usize,
            Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 0.0 => *f as usize,
            Some(Value::Str(s)) => s
                .parse()
                .map_err(|_| malformed("shamir_threshold", "expected an integer"))?,
            Some(_) => return Err(malformed("shamir_threshold", "expected an integer")),
        };
        let lastmodified = match v.get("lastmodified") {
            Some(Value::Str(s)) => s.clone(),
            None | Some(Value::Null) => return Err(MetadataError::Missing("lastmodified")),
            Some(_) => return Err(malformed("lastmodified", "expected an RFC3339 string")),
        };
        mac_aad(&lastmodified).ok_or_else(|| {
            malformed(
                "lastmodified",
                format!("{lastmodified:?} is not an RFC3339 time"),
            )
        })?;
        let mac = string_field(v, "mac", false)?;
        let version = match v.get("version") {
            Some(Value::Str(s)) if !s.is_empty() => s.clone(),
            Some(Value::Str(_)) | None | Some(Value::Null) => {
                return Err(MetadataError::Missing("version"))
            }
            // sops 1.x wrote the version as a number (`version: 1.7`); sops 3 reads
            // it from YAML as the string it spells.
            Some(Value::Float(f)) => crate::formats::go_format_float(*f),
            Some(Value::Int(i)) => i.to_string(),
            Some(_) => {
                return Err(malformed(
                    "version",
                    "expected a version string such as 3.11.0",
                ))
            }
        };
        if !is_semver_like(&version) {
            return Err(malformed(
                "version",
                format!("{version:?} is not a version number"),
            ));
        }
        let mut selectors = Vec::new();
        for name in Selector::FIELDS {
            match v.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::Str(s)) if s.is_empty() => {}
                Some(Value::Str(s)) => selectors
                    .push(Selector::new(name, s).map_err(|e| malformed(name, e.to_string()))?),
                Some(_) => return Err(malformed(name, "expected a string")),
            }
        }
        if selectors.len() > 1 {
            let names: Vec<_> = selectors.iter().map(|s| s.field_name()).collect();
            return Err(MetadataError::TooManySelectors(names.join(", ")));
        }
        let mac_only_encrypted = match v.get("mac_only_encrypted") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Str(s)) => s == "true",
            Some(_) => return Err(malformed("mac_only_encrypted", "expected true or false")),
        };
        Ok(Metadata {
            key_groups,
            shamir_threshold,
            lastmodified,
            mac,
            selector: selectors.pop(),
            mac_only_encrypted,
            version,
        })
    }

    /// The metadata block as sops 3.11 emits it (struct order, omitempty rules).
    pub fn to_value(&self) -> Value {
        let mut out: Vec<(String, Value)> = Vec::new();
        let keys_of = |group: &KeyGroup, kind: &str| -> Vec<Value> {
            group
                .iter()
                .filter(|k| k.kind() == kind)
                .map(MasterKey::to_value)
                .collect()
        };
        if self.key_groups.len() > 1 {
            let threshold = if self.shamir_threshold == 0 {
                self.key_groups.len()
            } else {
                self.shamir_threshold
            };
            out.push(("shamir_threshold".into(), Value::Int(threshold as i64)));
            let groups = self
                .key_groups
                .iter()
                .map(|g| {
                    let mut m = Vec::new();
                    for kind in ["pgp", "kms", "gcp_kms", "hckms", "azure_kv"] {
                        let keys = keys_of(g, kind);
                        if !keys.is_empty() {
                            m.push((kind.to_string(), Value::List(keys)));
                        }
                    }
                    // sops 3.11 always writes these two, even when empty.
                    m.push(("hc_vault".into(), Value::List(keys_of(g, "hc_vault"))));
                    m.push(("age".into(), Value::List(keys_of(g, "age"))));
                    Value::Map(m)
                })
                .collect();
            out.push(("key_groups".into(), Value::List(groups)));
        } else if let Some(group) = self.key_groups.first() {
            for kind in KEY_TYPES_BEFORE_MAC {
                let keys = keys_of(group, kind);
                if !keys.is_empty() {
                    out.push((kind.to_string(), Value::List(keys)));
                }
            }
        }
        out.push(("lastmodified".into(), Value::Str(self.lastmodified.clone())));
        out.push(("mac".into(), Value::Str(self.mac.clone())));
        if self.key_groups.len() == 1 {
            let pgp = keys_of(&self.key_groups[0], "pgp");
            if !pgp.is_empty() {
                out.push(("pgp".into(), Value::List(pgp)));
            }
        }
        if let Some(sel) = &self.selector {
            out.push((
                sel.field_name().to_string(),
                Value::Str(sel.pattern().to_string()),
            ));
        }
        if self.mac_only_encrypted {
            out.push(("mac_only_encrypted".into(), Value::Bool(true)));
        }
        out.push(("version".into(), Value::Str(self.version.clone())));
        Value::Map(out)
    }

    /// The selector in force: the recorded one, or sops' implied `_unencrypted` suffix.
    pub fn effective_selector(&self) -> Selector {
        self.selector
            .clone()
            .unwrap_or_else(Selector::default_suffix)
    }

    pub fn all_keys(&self) -> impl Iterator<Item = &MasterKey> {
        self.key_groups.iter().flatten()
    }
}

fn is_semver_like(v: &str) -> bool {
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    !parts.is_empty()
        && parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && (p.bytes().all(|b| b.is_ascii_digit()) || *p == "x"))
}

/// The AAD the MAC is sealed under: `lastmodified` re-formatted as Go RFC3339
/// (whole seconds; `Z` for UTC, else the numeric offset), as sops re-formats it.
pub(crate) fn mac_aad(lastmodified: &str) -> Option<String> {
    Time::parse_rfc3339(lastmodified).map(|t| t.to_rfc3339())
}

/// Now, as sops writes `lastmodified` and `created_at`: UTC, whole seconds.
pub fn now_rfc3339() -> String {
    Time::now().to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_aad_reformats_like_go() {
        assert_eq!(
            mac_aad("2024-03-01T10:20:30Z").unwrap(),
            "2024-03-01T10:20:30Z"
        );
        assert_eq!(
            mac_aad("2024-03-01T10:20:30.5Z").unwrap(),
            "2024-03-01T10:20:30Z"
        );
        assert_eq!(
            mac_aad("2024-03-01T10:20:30+02:00").unwrap(),
            "2024-03-01T10:20:30+02:00"
        );
        assert!(mac_aad("yesterday").is_none());
    }

    #[test]
    fn round_trips_a_flat_metadata_block() {
        let v = Value::Map(vec![
            (
                "age".into(),
                Value::List(vec![Value::Map(vec![
                    ("recipient".into(), Value::Str("age1xyz".into())),
                    (
                        "enc".into(),
                        Value::Str("-----BEGIN AGE ENCRYPTED FILE-----\n".into()),
                    ),
                ])]),
            ),
            (
                "lastmodified".into(),
                Value::Str("2024-03-01T10:20:30Z".into()),
            ),
            ("mac".into(), Value::Str("ENC[...]".into())),
            (
                "pgp".into(),
                Value::List(vec![Value::Map(vec![(
                    "fp".into(),
                    Value::Str("ABC".into()),
                )])]),
            ),
            (
                "unencrypted_suffix".into(),
                Value::Str("_unencrypted".into()),
            ),
            ("version".into(), Value::Str("3.11.0".into())),
        ]);
        let m = Metadata::from_value(&v).unwrap();
        assert_eq!(m.key_groups[0].len(), 2);
        assert_eq!(m.to_value(), v);
    }

    #[test]
    fn refuses_what_sops_refuses() {
        let base = |extra: Vec<(String, Value)>| {
            let mut m = vec![
                (
                    "lastmodified".to_string(),
                    Value::Str("2024-03-01T10:20:30Z".into()),
                ),
                ("mac".to_string(), Value::Str(String::new())),
                ("version".to_string(), Value::Str("3.11.0".into())),
            ];
            m.extend(extra);
            Value::Map(m)
        };
        assert_eq!(
            Metadata::from_value(&base(vec![])),
            Err(MetadataError::NoKeys)
        );
        let age = (
            "age".to_string(),
            Value::List(vec![Value::Map(vec![
                ("recipient".into(), Value::Str("age1".into())),
                ("enc".into(), Value::Str("x".into())),
            ])]),
        );
        let two = base(vec![
            age.clone(),
            ("encrypted_regex".into(), Value::Str("^a".into())),
            ("unencrypted_suffix".into(), Value::Str("_u".into())),
        ]);
        assert!(matches!(
            Metadata::from_value(&two),
            Err(MetadataError::TooManySelectors(_))
        ));
        assert!(Metadata::from_value(&base(vec![age])).is_ok());
    }
}
