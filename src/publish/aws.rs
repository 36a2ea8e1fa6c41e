//! The AWS [`Backend`]: Secrets Manager, SSM and (to check that a rule's KMS
//! key exists) KMS, through sops-file's one runtime and shared configuration
//! (`sops_file::keys::kms::aws`: credential chain, profiles, AssumeRole with
//! sops' session name, `AWS_ENDPOINT_URL*`, timeouts, HTTPS stack). The only
//! async code of git-sops. Every list of calls runs concurrently, at most
//! [`IN_FLIGHT`] at a time; every call that AWS throttles is tried again after
//! a jittered exponential backoff (on top of the SDK's own retries).
//! Error texts are AWS's codes and messages, which name resources, not values.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use aws_sdk_secretsmanager as sm;
use aws_sdk_ssm as ssm;
use sops_file::keys::kms::aws::{
    error_code, error_text, retry_throttled, run_bounded, sdk_config, SdkConfig,
};

use super::apply::{Backend, Step};
use super::plan::{Action, Current, Drift};
use super::{Access, Desired, ResourceId, SecretText, Service, Tags};

/// Calls in flight at once (the same bound as the KMS prefetch).
pub const IN_FLIGHT: usize = 16;

pub struct Aws {
    configs: std::sync::Mutex<HashMap<(String, Access), SdkConfig>>,
}

impl Default for Aws {
    fn default() -> Self {
        Aws::new()
    }
}

impl Aws {
    pub fn new() -> Aws {
        Aws {
            configs: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn config(&self, region: &str, access: &Access) -> Result<SdkConfig, String> {
        let id = (region.to_string(), access.clone());
        if let Some(c) = self.configs.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(c);
        }
        let c = sdk_config(region, &access.aws_profile, &access.role).map_err(|e| e.to_string())?;
        if let Ok(mut m) = self.configs.lock() {
            m.insert(id, c.clone());
        }
        Ok(c)
    }

    fn sm(&self, region: &str, access: &Access) -> Result<sm::Client, String> {
        Ok(sm::Client::new(&self.config(region, access)?))
    }

    fn ssm(&self, region: &str, access: &Access) -> Result<ssm::Client, String> {
        Ok(ssm::Client::new(&self.config(region, access)?))
    }
}

/// A fluent call, sent, with throttling retries; errors as one line.
macro_rules! call {
    ($builder:expr) => {{
        let b = $builder;
        retry_throttled(|| b.clone().send(), |e| error_code(e)).await
    }};
}

fn run_all<T, F>(futures: Vec<F>) -> Vec<Result<T, String>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, String>> + Send + 'static,
{
    let n = futures.len();
    match run_bounded(futures, IN_FLIGHT) {
        Ok(r) => r
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err("the call did not complete".into())))
            .collect(),
        Err(e) => (0..n).map(|_| Err(e.to_string())).collect(),
    }
}

impl Backend for Aws {
    fn read(&self, items: &[Desired]) -> Vec<Result<Current, String>> {
        // Each distinct KMS key a rule names is checked once (kms:DescribeKey),
        // so a missing key fails its resources in the plan, not halfway through apply.
        let mut keys: BTreeMap<(String, Access, String), Option<String>> = BTreeMap::new();
        for d in items {
            if let Some(k) = &d.kms_key_id {
                keys.insert((d.id.region.clone(), d.access.clone(), k.clone()), None);
            }
        }
        let ids: Vec<(String, Access, String)> = keys.keys().cloned().collect();
        let checks: Vec<_> = ids
            .iter()
            .map(|(region, access, key)| {
                let conf = self.config(region, access);
                let (key, region) = (key.clone(), region.clone());
                async move {
                    let client = aws_sdk_kms::Client::new(&conf?);
                    match call!(client.describe_key().key_id(&key)) {
                        Ok(_) => Ok(None),
                        Err(e) if error_code(&e).as_deref() == Some("NotFoundException") => Ok(Some(
                            format!("the KMS key {key} does not exist in {region} (or is not visible to these credentials)"),
                        )),
                        // No kms:DescribeKey permission or another failure: the
                        // write itself will tell.
                        Err(_) => Ok(None),
                    }
                }
            })
            .collect();
        for (id, r) in ids.into_iter().zip(run_all(checks)) {
            keys.insert(id, r.ok().flatten());
        }
        let futures: Vec<_> = items
            .iter()
            .map(|d| {
                let key_problem = d.kms_key_id.as_ref().and_then(|k| {
                    keys.get(&(d.id.region.clone(), d.access.clone(), k.clone()))
                        .cloned()
                        .flatten()
                });
                let want_policy = d.policy.is_some();
                let want_keyinfo = d.kms_key_id.is_some() || d.tier.is_some();
                let name = d.id.name.clone();
                let client = match d.id.service {
                    Service::SecretsManager => self.sm(&d.id.region, &d.access).map(Client::Sm),
                    Service::Ssm => self.ssm(&d.id.region, &d.access).map(Client::Ssm),
                };
                async move {
                    if let Some(p) = key_problem {
                        return Err(p);
                    }
                    match client? {
                        Client::Sm(c) => read_secret(c, name, want_policy).await,
                        Client::Ssm(c) => read_parameter(c, name, want_keyinfo).await,
                    }
                }
            })
            .collect();
        run_all(futures)
    }

    fn list_managed(
        &self,
        scopes: &[(Service, String, Access)],
        repository: &str,
    ) -> Result<Vec<(ResourceId, Access, Tags)>, String> {
        let futures: Vec<_> = scopes
            .iter()
            .map(|(service, region, access)| {
                let (service, region, access, repo) = (
                    *service,
                    region.clone(),
                    access.clone(),
                    repository.to_string(),
                );
                let client = match service {
                    Service::SecretsManager => self.sm(&region, &access).map(Client::Sm),
                    Service::Ssm => self.ssm(&region, &access).map(Client::Ssm),
                };
                async move {
                    let found = match client? {
                        Client::Sm(c) => list_secrets(c, &region, &repo).await?,
                        Client::Ssm(c) => list_parameters(c, &repo).await?,
                    };
                    Ok(found
                        .into_iter()
                        .map(|(name, tags)| {
                            (
                                ResourceId {
                                    service,
                                    region: region.clone(),
                                    name,
                                },
                                access.clone(),
                                tags,
                            )
                        })
                        .collect::<Vec<_>>())
                }
            })
            .collect();
        let mut out = Vec::new();
        for r in run_all(futures) {
            out.extend(r?);
        }
        Ok(out)
    }

    fn run(&self, steps: Vec<Step>) -> Vec<Result<String, String>> {
        let futures: Vec<_> = steps
            .into_iter()
            .map(|s| {
                let (id, access) = match &s {
                    Step::Write { desired, .. } => (desired.id.clone(), desired.access.clone()),
                    Step::Delete { id, access, .. } => (id.clone(), access.clone()),
                };
                let client = match id.service {
                    Service::SecretsManager => self.sm(&id.region, &access).map(Client::Sm),
                    Service::Ssm => self.ssm(&id.region, &access).map(Client::Ssm),
                };
                async move {
                    match (client?, s) {
                        (Client::Sm(c), Step::Write { desired, change }) => {
                            let values = Quoted::of(&desired);
                            write_secret(c, *desired, *change)
                                .await
                                .map_err(|e| values.withhold(e))
                        }
                        (Client::Ssm(c), Step::Write { desired, change }) => {
                            let values = Quoted::of(&desired);
                            write_parameter(c, *desired, *change)
                                .await
                                .map_err(|e| values.withhold(e))
                        }
                        (
                            Client::Sm(c),
                            Step::Delete {
                                id, recovery_days, ..
                            },
                        ) => {
                            call!(c
                                .delete_secret()
                                .secret_id(&id.name)
                                .recovery_window_in_days(recovery_days))
                            .map_err(|e| error_text(&e))?;
                            Ok(format!("deleted (recoverable for {recovery_days} days)"))
                        }
                        (Client::Ssm(c), Step::Delete { id, .. }) => {
                            call!(c.delete_parameter().name(&id.name))
                                .map_err(|e| error_text(&e))?;
                            Ok("deleted".into())
                        }
                    }
                }
            })
            .collect();
        run_all(futures)
    }
}

/// The texts of a value that an AWS error message must not carry: the whole
/// value and, for a JSON document, every string leaf of at least
/// [`Quoted::MIN`] characters, each also as it is escaped in JSON (the
/// request body is JSON). AWS' messages name resources, not values, but a
/// validation message may quote a request field; one that quotes a value is
/// cut to the operation and the error code.
struct Quoted(Vec<zeroize::Zeroizing<String>>);

impl Quoted {
    const MIN: usize = 4;

    fn of(d: &Desired) -> Quoted {
        let mut out = Vec::new();
        let mut add = |s: &str| {
            if s.chars().count() >= Quoted::MIN {
                out.push(zeroize::Zeroizing::new(s.to_string()));
                let j = serde_json::to_string(s).unwrap_or_default();
                if let Some(inner) = j.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
                    if inner != s {
                        out.push(zeroize::Zeroizing::new(inner.to_string()));
                    }
                }
            }
        };
        add(d.value.as_str());
        if d.document {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(d.value.as_str()) {
                let mut stack = vec![&v];
                while let Some(v) = stack.pop() {
                    match v {
                        serde_json::Value::String(s) => add(s),
                        serde_json::Value::Array(a) => stack.extend(a.iter()),
                        serde_json::Value::Object(m) => stack.extend(m.values()),
                        _ => {}
                    }
                }
            }
        }
        Quoted(out)
    }

    /// `message` ("Operation: Code: AWS's message"), or only its first two
    /// parts if it quotes a value.
    fn withhold(&self, message: String) -> String {
        if !self.0.iter().any(|v| message.contains(v.as_str())) {
            return message;
        }
        let kept: Vec<&str> = message.splitn(3, ": ").take(2).collect();
        let kept = kept.join(": ");
        let kept = if self.0.iter().any(|v| kept.contains(v.as_str())) {
            "the write failed".to_string()
        } else {
            kept
        };
        format!("{kept} (AWS's message is not shown: it quotes a value)")
    }
}

enum Client {
    Sm(sm::Client),
    Ssm(ssm::Client),
}

async fn read_secret(c: sm::Client, name: String, want_policy: bool) -> Result<Current, String> {
    let desc = match call!(c.describe_secret().secret_id(&name)) {
        Ok(d) => d,
        Err(e) if error_code(&e).as_deref() == Some("ResourceNotFoundException") => {
            return Ok(Current::default())
        }
        Err(e) => return Err(format!("DescribeSecret: {}", error_text(&e))),
    };
    let mut cur = Current {
        exists: true,
        deleted: desc.deleted_date().is_some(),
        kms_key_id: desc.kms_key_id().map(str::to_string),
        description: desc.description().map(str::to_string),
        tags: desc
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect(),
        replica_regions: desc
            .replication_status()
            .iter()
            .filter_map(|r| r.region().map(str::to_string))
            .collect(),
        ..Current::default()
    };
    if cur.deleted {
        return Ok(cur);
    }
    match call!(c.get_secret_value().secret_id(&name)) {
        Ok(v) => {
            cur.value = v.secret_string().map(|s| SecretText::new(s.to_string()));
            cur.version = v.version_id().map(str::to_string);
        }
        // A secret without any value yet.
        Err(e) if error_code(&e).as_deref() == Some("ResourceNotFoundException") => {}
        Err(e) => return Err(format!("GetSecretValue: {}", error_text(&e))),
    }
    if want_policy {
        let p = call!(c.get_resource_policy().secret_id(&name))
            .map_err(|e| format!("GetResourcePolicy: {}", error_text(&e)))?;
        cur.policy = p
            .resource_policy()
            .and_then(|t| serde_json::from_str(t).ok());
    }
    Ok(cur)
}

async fn read_parameter(
    c: ssm::Client,
    name: String,
    want_keyinfo: bool,
) -> Result<Current, String> {
    let p = match call!(c.get_parameter().name(&name).with_decryption(true)) {
        Ok(p) => p,
        Err(e) if error_code(&e).as_deref() == Some("ParameterNotFound") => {
            return Ok(Current::default())
        }
        Err(e) => return Err(format!("GetParameter: {}", error_text(&e))),
    };
    let mut cur = Current {
        exists: true,
        ..Current::default()
    };
    if let Some(p) = p.parameter() {
        cur.value = p.value().map(|v| SecretText::new(v.to_string()));
        cur.version = Some(p.version().to_string());
        cur.kind = p.r#type().map(|t| t.as_str().to_string());
    }
    let tags = call!(c
        .list_tags_for_resource()
        .resource_type(ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&name))
    .map_err(|e| format!("ListTagsForResource: {}", error_text(&e)))?;
    cur.tags = tags
        .tag_list()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    if want_keyinfo {
        let filter = ssm::types::ParameterStringFilter::builder()
            .key("Name")
            .option("Equals")
            .values(&name)
            .build()
            .map_err(|e| e.to_string())?;
        let d = call!(c.describe_parameters().parameter_filters(filter))
            .map_err(|e| format!("DescribeParameters: {}", error_text(&e)))?;
        if let Some(m) = d.parameters().first() {
            cur.kms_key_id = m.key_id().map(str::to_string);
            cur.tier = m.tier().map(|t| t.as_str().to_string());
        }
    }
    Ok(cur)
}

fn sm_tags(tags: &Tags) -> Vec<sm::types::Tag> {
    tags.iter()
        .map(|(k, v)| sm::types::Tag::builder().key(k).value(v).build())
        .collect()
}

async fn write_secret(
    c: sm::Client,
    d: Desired,
    change: super::plan::Change,
) -> Result<String, String> {
    let name = d.id.name.clone();
    let value = d.value.as_str().to_string();
    let policy = d.policy.as_ref().map(|p| p.to_string());
    let mut done = Vec::new();
    if change.action == Action::Create && !change.restore {
        let mut b = c
            .create_secret()
            .name(&name)
            .secret_string(value.as_str())
            .set_kms_key_id(d.kms_key_id.clone())
            .set_description(d.description.clone())
            .set_tags(Some(sm_tags(&d.tags)));
        for r in &d.replica_regions {
            b = b.add_replica_regions(sm::types::ReplicaRegionType::builder().region(r).build());
        }
        call!(b).map_err(|e| format!("CreateSecret: {}", error_text(&e)))?;
        done.push("created");
        if let Some(p) = &policy {
            call!(c.put_resource_policy().secret_id(&name).resource_policy(p)).map_err(|e| {
                format!("created, but PutResourcePolicy failed: {}", error_text(&e))
            })?;
            done.push("policy set");
        }
        return Ok(done.join(", "));
    }
    if change.restore {
        call!(c.restore_secret().secret_id(&name))
            .map_err(|e| format!("RestoreSecret: {}", error_text(&e)))?;
        done.push("restored");
    }
    let has = |k: &str| change.drift.iter().any(|x| x.kind() == k);
    let value_differs = change.restore || change.value_differs || change.action == Action::Update;
    let key_drift = has("kms_key");
    let desc_drift = has("description");
    if value_differs && !key_drift {
        call!(c
            .put_secret_value()
            .secret_id(&name)
            .secret_string(value.as_str()))
        .map_err(|e| format!("PutSecretValue: {}", error_text(&e)))?;
        done.push("value updated");
    }
    if key_drift || desc_drift {
        // With a new KMS key the value is written again under it (one new version).
        let mut b = c.update_secret().secret_id(&name);
        if key_drift {
            b = b
                .set_kms_key_id(d.kms_key_id.clone())
                .secret_string(value.as_str());
        }
        if desc_drift {
            b = b.set_description(d.description.clone());
        }
        call!(b).map_err(|e| format!("UpdateSecret: {}", error_text(&e)))?;
        done.push(if key_drift {
            "re-encrypted under the rule's KMS key"
        } else {
            "description updated"
        });
    }
    if has("tags") || change.action == Action::Adopt || change.restore {
        call!(c
            .tag_resource()
            .secret_id(&name)
            .set_tags(Some(sm_tags(&d.tags))))
        .map_err(|e| format!("TagResource: {}", error_text(&e)))?;
        done.push(if change.action == Action::Adopt {
            "adopted (tagged)"
        } else {
            "tags updated"
        });
    }
    if has("policy") {
        if let Some(p) = &policy {
            call!(c.put_resource_policy().secret_id(&name).resource_policy(p))
                .map_err(|e| format!("PutResourcePolicy: {}", error_text(&e)))?;
            done.push("policy updated");
        }
    }
    if let Some(Drift::Replicas { missing, extra }) =
        change.drift.iter().find(|x| x.kind() == "replicas")
    {
        // `extra` is only here with --prune (apply::without_kept).
        if !extra.is_empty() {
            call!(c
                .remove_regions_from_replication()
                .secret_id(&name)
                .set_remove_replica_regions(Some(extra.clone())))
            .map_err(|e| format!("RemoveRegionsFromReplication: {}", error_text(&e)))?;
            done.push("replicas removed");
        }
        if !missing.is_empty() {
            let mut b = c.replicate_secret_to_regions().secret_id(&name);
            for r in missing {
                b = b
                    .add_replica_regions(sm::types::ReplicaRegionType::builder().region(r).build());
            }
            call!(b).map_err(|e| format!("ReplicateSecretToRegions: {}", error_text(&e)))?;
            done.push("replicas added");
        }
    }
    Ok(done.join(", "))
}

async fn write_parameter(
    c: ssm::Client,
    d: Desired,
    change: super::plan::Change,
) -> Result<String, String> {
    let name = d.id.name.clone();
    let exists = change.action != Action::Create;
    let has = |k: &str| change.drift.iter().any(|x| x.kind() == k);
    let mut done = Vec::new();
    let tags: Vec<ssm::types::Tag> = d
        .tags
        .iter()
        .filter_map(|(k, v)| ssm::types::Tag::builder().key(k).value(v).build().ok())
        .collect();
    // PutParameter writes a new version: only when the value, key, tier or type differ.
    if !exists || change.value_differs || has("kms_key") || has("tier") || has("type") {
        let mut b = c
            .put_parameter()
            .name(&name)
            .value(d.value.as_str())
            .r#type(ssm::types::ParameterType::SecureString)
            .set_key_id(d.kms_key_id.clone())
            .set_tier(d.tier.as_deref().map(ssm::types::ParameterTier::from))
            .overwrite(exists);
        if !exists {
            b = b.set_tags(Some(tags.clone()));
        }
        call!(b).map_err(|e| format!("PutParameter: {}", error_text(&e)))?;
        done.push(if exists { "value updated" } else { "created" });
    }
    if exists && (has("tags") || change.action == Action::Adopt) {
        call!(c
            .add_tags_to_resource()
            .resource_type(ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(&name)
            .set_tags(Some(tags)))
        .map_err(|e| format!("AddTagsToResource: {}", error_text(&e)))?;
        done.push(if change.action == Action::Adopt {
            "adopted (tagged)"
        } else {
            "tags updated"
        });
    }
    Ok(done.join(", "))
}

async fn list_secrets(
    c: sm::Client,
    region: &str,
    repo: &str,
) -> Result<Vec<(String, Tags)>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let b = c
            .list_secrets()
            .filters(
                sm::types::Filter::builder()
                    .key(sm::types::FilterNameStringType::TagKey)
                    .values(super::TAG_REPOSITORY)
                    .build(),
            )
            .filters(
                sm::types::Filter::builder()
                    .key(sm::types::FilterNameStringType::TagValue)
                    .values(repo)
                    .build(),
            )
            .set_next_token(token.clone());
        let page = call!(b).map_err(|e| format!("ListSecrets: {}", error_text(&e)))?;
        for s in page.secret_list() {
            let tags: Tags = s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            let ours = tags.get(super::TAG_REPOSITORY).map(String::as_str) == Some(repo)
                && tags.get(super::MANAGED_BY.0).map(String::as_str) == Some(super::MANAGED_BY.1);
            // A replica of a secret whose primary is in another region is
            // listed there too, with the primary's tags: it is not a secret of
            // this scope (it is removed through its primary, never deleted).
            let replica = s.primary_region().is_some_and(|p| p != region);
            if let (true, false, Some(name), None) = (ours, replica, s.name(), s.deleted_date()) {
                out.push((name.to_string(), tags));
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

async fn list_parameters(c: ssm::Client, repo: &str) -> Result<Vec<(String, Tags)>, String> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let filter = ssm::types::ParameterStringFilter::builder()
            .key(format!("tag:{}", super::TAG_REPOSITORY))
            .values(repo)
            .build()
            .map_err(|e| e.to_string())?;
        let page = call!(c
            .describe_parameters()
            .parameter_filters(filter)
            .set_next_token(token.clone()))
        .map_err(|e| format!("DescribeParameters: {}", error_text(&e)))?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for name in names {
        let t = call!(c
            .list_tags_for_resource()
            .resource_type(ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(&name))
        .map_err(|e| format!("ListTagsForResource: {}", error_text(&e)))?;
        let tags: Tags = t
            .tag_list()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        if tags.get(super::MANAGED_BY.0).map(String::as_str) == Some(super::MANAGED_BY.1) {
            out.push((name, tags));
        }
    }
    Ok(out)
}
