//! Desired state (git) against current state (AWS) → one [`Change`] per
//! resource. Pure: the AWS side arrives as [`Current`] values, so every rule of
//! the plan is unit-tested in memory (below). The decisions, in order:
//!
//! * the resource cannot be read, or its file cannot be published → `Error`;
//! * it does not exist → `Create` (a secret scheduled for deletion is restored);
//! * it exists without the `managed-by=git-sops` tag, or with another
//!   repository's `git-sops:repository` tag (also when scheduled for
//!   deletion) → `Adopt`: nothing is
//!   written unless `apply --adopt`;
//! * its value differs → `Update`, with the keys that changed (names and
//!   keyed fingerprints, never values);
//! * its value is the same but tags, KMS key, description, policy, replicas
//!   or tier differ → `Drift`: fixed without writing a new value version;
//! * else `Unchanged`: apply makes no call at all for it;
//! * a resource tagged as published by this repository whose source is not
//!   (or no longer) in git → `Orphan`: deleted only with `apply --prune`.

use std::collections::BTreeSet;

use super::{Desired, ResourceId, SecretText, Tags, MANAGED_BY, TAG_REPOSITORY, TAG_SOURCE};

/// What AWS holds for one resource.
#[derive(Clone, Debug, Default)]
pub struct Current {
    pub exists: bool,
    /// Secrets Manager: scheduled for deletion (restorable).
    pub deleted: bool,
    pub value: Option<SecretText>,
    pub version: Option<String>,
    pub kms_key_id: Option<String>,
    pub description: Option<String>,
    pub tags: Tags,
    pub policy: Option<serde_json::Value>,
    pub replica_regions: Vec<String>,
    pub tier: Option<String>,
    /// SSM: the parameter type (`SecureString` expected).
    pub kind: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Create,
    Update,
    Drift,
    Adopt,
    Orphan,
    Unchanged,
    Error,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Drift => "drift",
            Action::Adopt => "adopt",
            Action::Orphan => "orphan",
            Action::Unchanged => "unchanged",
            Action::Error => "error",
        }
    }
}

/// How one key of a value changed: its name, and keyed fingerprints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    pub key: String,
    /// `added`, `removed` or `changed`.
    pub how: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A difference in something other than the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Tags git-sops sets that are missing or have another value (names only
    /// of the tags; tag values are not secret and are shown).
    Tags(Vec<(String, Option<String>, String)>),
    KmsKey {
        from: Option<String>,
        to: String,
    },
    Description,
    Policy,
    /// Replica regions the rule names that the secret lacks (`missing`, added
    /// by apply), and replica regions the secret has that the rule does not
    /// name (`extra`, removed only by `apply --prune`).
    Replicas {
        missing: Vec<String>,
        extra: Vec<String>,
    },
    Tier {
        from: Option<String>,
        to: String,
    },
    /// SSM: a parameter of another type than SecureString.
    Type(String),
}

impl Drift {
    pub fn describe(&self) -> String {
        match self {
            Drift::Tags(t) => {
                let parts: Vec<String> = t
                    .iter()
                    .map(|(k, from, to)| match from {
                        Some(f) => format!("{k}: {f:?} -> {to:?}"),
                        None => format!("{k}: missing -> {to:?}"),
                    })
                    .collect();
                format!("tags ({})", parts.join(", "))
            }
            Drift::KmsKey { from, to } => {
                format!("kms key {} -> {to}", from.as_deref().unwrap_or("(default)"))
            }
            Drift::Description => "description differs".into(),
            Drift::Policy => "resource policy differs".into(),
            Drift::Replicas { missing, extra } => {
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!("replica regions missing: {}", missing.join(", ")));
                }
                if !extra.is_empty() {
                    parts.push(format!(
                        "replica regions not named by git: {} (apply --prune removes them)",
                        extra.join(", ")
                    ));
                }
                parts.join("; ")
            }
            Drift::Tier { from, to } => {
                format!("tier {} -> {to}", from.as_deref().unwrap_or("(none)"))
            }
            Drift::Type(t) => format!("type {t} -> SecureString"),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Drift::Tags(_) => "tags",
            Drift::KmsKey { .. } => "kms_key",
            Drift::Description => "description",
            Drift::Policy => "policy",
            Drift::Replicas { .. } => "replicas",
            Drift::Tier { .. } => "tier",
            Drift::Type(_) => "type",
        }
    }
}

/// The plan for one resource.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: ResourceId,
    pub action: Action,
    /// The SOPS file (for an orphan: the file its tag names).
    pub source: String,
    /// For `Create`: the keys; for `Update`/`Adopt`: what changed.
    pub keys: Vec<KeyChange>,
    pub drift: Vec<Drift>,
    /// `Adopt`: whether the value also differs.
    pub value_differs: bool,
    /// `Create` of a secret scheduled for deletion.
    pub restore: bool,
    pub error: Option<String>,
    /// Index into the desired list, for apply (none for orphans).
    pub desired: Option<usize>,
}

impl Change {
    fn new(id: ResourceId, action: Action, source: String) -> Change {
        Change {
            id,
            action,
            source,
            keys: Vec::new(),
            drift: Vec::new(),
            value_differs: false,
            restore: false,
            error: None,
            desired: None,
        }
    }

    pub fn error(id: ResourceId, source: String, message: String) -> Change {
        let mut c = Change::new(id, Action::Error, source);
        c.error = Some(message);
        c
    }

    /// Does applying this change write something?
    pub fn is_change(&self) -> bool {
        !matches!(self.action, Action::Unchanged)
    }
}

/// The plan for one desired resource against what AWS holds.
pub fn plan_one(index: usize, d: &Desired, cur: &Current) -> Change {
    let mut c = Change::new(d.id.clone(), Action::Unchanged, d.source.clone());
    c.desired = Some(index);
    // Ours: tagged managed-by=git-sops *by this repository*. Another
    // repository's resource of the same name (or an unmanaged one) is only
    // written with --adopt, also when it is scheduled for deletion.
    let managed = cur.tags.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
        && cur.tags.get(TAG_REPOSITORY) == d.tags.get(TAG_REPOSITORY);
    if !cur.exists || (cur.deleted && managed) {
        c.action = Action::Create;
        c.restore = cur.deleted;
        c.keys = key_changes(d, None);
        return c;
    }
    if cur.deleted {
        c.action = Action::Adopt;
        c.restore = true;
        c.value_differs = true;
        c.keys = key_changes(d, None);
        return c;
    }
    let value_differs = cur.value.as_ref() != Some(&d.value);
    if value_differs {
        c.keys = key_changes(d, cur.value.as_ref());
    }
    c.drift = drift(d, cur);
    c.value_differs = value_differs;
    c.action = if !managed {
        Action::Adopt
    } else if value_differs {
        Action::Update
    } else if !c.drift.is_empty() {
        Action::Drift
    } else {
        Action::Unchanged
    };
    c
}

/// Orphans: resources tagged by this repository (`found`: id, source tag) that
/// no desired resource names, except those whose source file is in git but
/// could not be read this time (its resources are left alone).
pub fn orphans(
    found: &[(ResourceId, Tags)],
    desired: &[Desired],
    unreadable: &BTreeSet<String>,
) -> Vec<Change> {
    let wanted: BTreeSet<&ResourceId> = desired.iter().map(|d| &d.id).collect();
    found
        .iter()
        .filter(|(id, _)| !wanted.contains(id))
        .filter_map(|(id, tags)| {
            let source = tags.get(TAG_SOURCE).cloned().unwrap_or_default();
            (!unreadable.contains(&source)).then(|| Change::new(id.clone(), Action::Orphan, source))
        })
        .collect()
}

fn same_key(current: Option<&str>, desired: &str) -> bool {
    // AWS may answer with the key's ARN where the rule names an alias or id:
    // `alias/x` matches `arn:...:alias/x`, a key id matches `arn:...:key/<id>`.
    match current {
        None => false,
        Some(c) => {
            c == desired
                || c.ends_with(&format!(":{desired}"))
                || c.ends_with(&format!("/{desired}"))
        }
    }
}

fn drift(d: &Desired, cur: &Current) -> Vec<Drift> {
    let mut out = Vec::new();
    let tags: Vec<(String, Option<String>, String)> = d
        .tags
        .iter()
        .filter(|(k, v)| cur.tags.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), cur.tags.get(k).cloned(), v.clone()))
        .collect();
    if !tags.is_empty() {
        out.push(Drift::Tags(tags));
    }
    if let Some(k) = &d.kms_key_id {
        if !same_key(cur.kms_key_id.as_deref(), k) {
            out.push(Drift::KmsKey {
                from: cur.kms_key_id.clone(),
                to: k.clone(),
            });
        }
    }
    if let Some(desc) = &d.description {
        if cur.description.as_ref() != Some(desc) {
            out.push(Drift::Description);
        }
    }
    if let Some(p) = &d.policy {
        if cur.policy.as_ref() != Some(p) {
            out.push(Drift::Policy);
        }
    }
    let missing: Vec<String> = d
        .replica_regions
        .iter()
        .filter(|r| !cur.replica_regions.contains(r))
        .cloned()
        .collect();
    let extra: Vec<String> = cur
        .replica_regions
        .iter()
        .filter(|r| !d.replica_regions.contains(r))
        .cloned()
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        out.push(Drift::Replicas { missing, extra });
    }
    if let Some(t) = &d.tier {
        if cur.tier.as_ref() != Some(t) {
            out.push(Drift::Tier {
                from: cur.tier.clone(),
                to: t.clone(),
            });
        }
    }
    if let Some(k) = &cur.kind {
        if k != "SecureString" {
            out.push(Drift::Type(k.clone()));
        }
    }
    out
}

/// The keys of a value and how they changed from `current`: a JSON document's
/// top-level keys, or the value as one key named after the resource.
fn key_changes(d: &Desired, current: Option<&SecretText>) -> Vec<KeyChange> {
    let fp = |k: &str, v: &SecretText| d.fingerprints.of(k, v.as_str());
    let new = if d.document {
        top_level(d.value.as_str())
    } else {
        None
    };
    let old = match (current, d.document) {
        (Some(c), true) => top_level(c.as_str()),
        _ => None,
    };
    match new {
        Some(new) => {
            let old = old.unwrap_or_default();
            let mut out = Vec::new();
            for (k, v) in &new {
                match old.iter().find(|(ok, _)| ok == k) {
                    None => out.push(KeyChange {
                        key: k.clone(),
                        how: "added",
                        from: None,
                        to: Some(fp(k, v)),
                    }),
                    Some((_, ov)) if ov != v => out.push(KeyChange {
                        key: k.clone(),
                        how: "changed",
                        from: Some(fp(k, ov)),
                        to: Some(fp(k, v)),
                    }),
                    Some(_) => {}
                }
            }
            for (k, ov) in &old {
                if !new.iter().any(|(nk, _)| nk == k) {
                    out.push(KeyChange {
                        key: k.clone(),
                        how: "removed",
                        from: Some(fp(k, ov)),
                        to: None,
                    });
                }
            }
            if out.is_empty() && current.is_some() {
                // Same keys and values, other text (formatting, key order).
                out.push(KeyChange {
                    key: "(whole document)".into(),
                    how: "reformatted",
                    from: current.map(|c| fp("", c)),
                    to: Some(fp("", &d.value)),
                });
            }
            out
        }
        None => vec![KeyChange {
            key: d
                .id
                .name
                .rsplit('/')
                .next()
                .unwrap_or(&d.id.name)
                .to_string(),
            how: if current.is_some() {
                "changed"
            } else {
                "added"
            },
            from: current.map(|c| fp("", c)),
            to: Some(fp("", &d.value)),
        }],
    }
}

/// A JSON object's top-level keys with each value's canonical JSON text. The
/// `serde_json::Value` this parses into is dropped at once; its strings are not
/// zeroized (a documented limit), the texts kept are.
fn top_level(text: &str) -> Option<Vec<(String, SecretText)>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let serde_json::Value::Object(m) = v else {
        return None;
    };
    Some(
        m.iter()
            .map(|(k, v)| (k.clone(), SecretText::new(v.to_string())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{Access, Fingerprinter, Service};

    fn desired(value: &str) -> Desired {
        let mut tags = Tags::new();
        tags.insert("managed-by".into(), "git-sops".into());
        tags.insert("team".into(), "payments".into());
        Desired {
            id: ResourceId {
                service: Service::SecretsManager,
                region: "eu-west-1".into(),
                name: "payments/prod".into(),
            },
            access: Access::default(),
            source: "secrets/payments/prod.yaml".into(),
            rule: 1,
            value: SecretText::new(value.into()),
            kms_key_id: Some("alias/payments-prod".into()),
            description: None,
            tags,
            policy: None,
            replica_regions: Vec::new(),
            tier: None,
            document: true,
            fingerprints: Fingerprinter::from_data_key(&[7; 32]),
        }
    }

    fn current(value: &str, d: &Desired) -> Current {
        Current {
            exists: true,
            value: Some(SecretText::new(value.into())),
            kms_key_id: Some("arn:aws:kms:eu-west-1:1:alias/payments-prod".into()),
            tags: d.tags.clone(),
            ..Current::default()
        }
    }

    #[test]
    fn missing_is_create_with_the_keys_and_no_values() {
        let d = desired(r#"{"user":"u","password":"hunter2"}"#);
        let c = plan_one(0, &d, &Current::default());
        assert_eq!(c.action, Action::Create);
        let keys: Vec<&str> = c.keys.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["user", "password"]);
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn one_changed_key_is_an_update_naming_only_that_key() {
        let d = desired(r#"{"user":"u","password":"new"}"#);
        let c = plan_one(0, &d, &current(r#"{"user":"u","password":"old"}"#, &d));
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.keys.len(), 1);
        assert_eq!(
            (c.keys[0].key.as_str(), c.keys[0].how),
            ("password", "changed")
        );
        assert_ne!(c.keys[0].from, c.keys[0].to);
    }

    #[test]
    fn same_value_and_metadata_is_unchanged_and_kms_arns_match_aliases() {
        let d = desired(r#"{"a":1}"#);
        let c = plan_one(0, &d, &current(r#"{"a":1}"#, &d));
        assert_eq!(c.action, Action::Unchanged, "{:?}", c.drift);
    }

    #[test]
    fn metadata_differences_are_drift_without_a_value_change() {
        let mut d = desired(r#"{"a":1}"#);
        d.policy = Some(serde_json::json!({"Version": "2012-10-17"}));
        let mut cur = current(r#"{"a":1}"#, &d);
        cur.tags.insert("team".into(), "other".into());
        cur.kms_key_id = Some("alias/elsewhere".into());
        let c = plan_one(0, &d, &cur);
        assert_eq!(c.action, Action::Drift);
        let kinds: Vec<&str> = c.drift.iter().map(Drift::kind).collect();
        assert_eq!(kinds, ["tags", "kms_key", "policy"]);
    }

    #[test]
    fn unmanaged_needs_adoption_and_deleted_is_restored() {
        let d = desired(r#"{"a":1}"#);
        let mut cur = current(r#"{"a":2}"#, &d);
        cur.tags.clear();
        let c = plan_one(0, &d, &cur);
        assert_eq!(c.action, Action::Adopt);
        assert!(c.value_differs);
        cur.deleted = true;
        let c = plan_one(0, &d, &cur);
        assert_eq!((c.action, c.restore), (Action::Adopt, true));
        cur.tags = d.tags.clone();
        let c = plan_one(0, &d, &cur);
        assert_eq!((c.action, c.restore), (Action::Create, true));
    }

    #[test]
    fn another_repositorys_resource_needs_adoption_even_when_deleted() {
        let mut d = desired(r#"{"a":1}"#);
        d.tags.insert(TAG_REPOSITORY.into(), "ours".into());
        let mut cur = current(r#"{"a":2}"#, &d);
        cur.tags.insert(TAG_REPOSITORY.into(), "theirs".into());
        let c = plan_one(0, &d, &cur);
        assert_eq!(c.action, Action::Adopt);
        // Same value, tags only: still theirs, still adoption.
        let mut same = current(r#"{"a":1}"#, &d);
        same.tags.insert(TAG_REPOSITORY.into(), "theirs".into());
        assert_eq!(plan_one(0, &d, &same).action, Action::Adopt);
        // Scheduled for deletion: restored only with --adopt.
        cur.deleted = true;
        let c = plan_one(0, &d, &cur);
        assert_eq!((c.action, c.restore), (Action::Adopt, true));
        cur.tags.clear();
        assert_eq!(plan_one(0, &d, &cur).action, Action::Adopt);
        // Ours, deleted: restored as before.
        let mut mine = current(r#"{"a":2}"#, &d);
        mine.deleted = true;
        let c = plan_one(0, &d, &mine);
        assert_eq!((c.action, c.restore), (Action::Create, true));
    }

    #[test]
    fn orphans_are_tagged_resources_nobody_wants_unless_their_file_was_unreadable() {
        let d = desired("{}");
        let other = ResourceId {
            name: "gone/prod".into(),
            ..d.id.clone()
        };
        let skip = ResourceId {
            name: "broken/prod".into(),
            ..d.id.clone()
        };
        let tag = |s: &str| {
            let mut t = Tags::new();
            t.insert(TAG_SOURCE.into(), s.into());
            t
        };
        let found = vec![
            (d.id.clone(), tag("secrets/payments/prod.yaml")),
            (other.clone(), tag("secrets/gone/prod.yaml")),
            (skip, tag("secrets/broken/prod.yaml")),
        ];
        let unreadable: BTreeSet<String> = ["secrets/broken/prod.yaml".to_string()].into();
        let o = orphans(&found, &[d], &unreadable);
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].id.clone(), o[0].action), (other, Action::Orphan));
    }
}
