//! What git says should be published: the `.sops.yaml` and the SOPS files of
//! one committed revision (never the working tree or the index: what is
//! published is what was reviewed), decrypted in memory, turned into one
//! [`Desired`] per secret or parameter by the rules. A file that cannot be read
//! or decrypted is an error for that file only; the others go on.

use std::collections::BTreeMap;

use sops_file::formats::{Format, ListItem, Map, MapItem, Node, Scalar};
use sops_file::keygroups::Keyring;
use zeroize::Zeroizing;

use super::rules::{vars_for, Destination, Policy, PublishConfig, Rule, Template, Vars};
use super::{
    Access, Desired, Fingerprinter, PublishError, ResourceId, SecretText, Service, Tags,
    MANAGED_BY, TAG_REPOSITORY, TAG_SOURCE,
};
use crate::git::cat_file::BlobReader;
use crate::git::Git;

/// Reads a file of the revision (`None`: not there).
type BlobAt<'a> = dyn FnMut(&str) -> Result<Option<Vec<u8>>, PublishError> + 'a;

/// Everything read from one revision.
pub struct Source {
    /// The commit, resolved.
    pub commit: String,
    pub config: PublishConfig,
    pub desired: Vec<Desired>,
    /// (file, why it cannot be published); its resources are left alone.
    pub errors: Vec<(String, String)>,
    /// Repository paths covered by a rule (with or without errors), for the
    /// orphan check: a resource whose source is one of these is not an orphan.
    pub sources: Vec<String>,
    /// (service, region, credentials) of every rule whose region does not
    /// depend on the file's path, for the orphan search: the resources of a
    /// rule whose last file left git are still found. A region made of the
    /// path's captures is only known from the files still there.
    pub scopes: Vec<(Service, String, Access)>,
}

/// Read `rev` (a commit-ish) of the repository `git` runs in. `only` limits the
/// files to those paths (repository-relative files or folders); empty: all.
pub fn read(git: &Git, rev: &str, only: &[String]) -> Result<Source, PublishError> {
    let gerr = |e: crate::git::GitError| PublishError::Git(e.to_string());
    let commit = String::from_utf8_lossy(
        &git.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
        .map_err(|_| PublishError::Git(format!("{rev}: not a commit of this repository")))?,
    )
    .trim()
    .to_string();
    let top = git.toplevel().map_err(gerr)?;
    let default_repository = top
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repository".into());
    let mut blobs = BlobReader::spawn(git).map_err(gerr)?;
    let mut blob = |path: &str| -> Result<Option<Vec<u8>>, PublishError> {
        blobs
            .read(&format!("{commit}:{path}"))
            .map_err(|e| PublishError::Git(format!("cannot read {path} at {rev}: {e}")))
    };
    let config_text = blob(".sops.yaml")?.ok_or_else(|| {
        PublishError::Config(format!(
            "{rev} has no .sops.yaml at the top of the repository"
        ))
    })?;
    let config_text = String::from_utf8(config_text)
        .map_err(|_| PublishError::Config(".sops.yaml is not UTF-8".into()))?;
    let config = PublishConfig::parse(&config_text, &default_repository)?.ok_or_else(|| {
        PublishError::Config(format!(
            "the .sops.yaml of {rev} has no `git_sops: publish:` rules (see docs/publish.md)"
        ))
    })?;

    let entries = git.tree_entries(&commit).map_err(gerr)?;
    let mut covered: Vec<(String, Vec<Rule>)> = Vec::new();
    for e in entries.iter().filter(|e| e.is_file()) {
        let Ok(path) = String::from_utf8(e.path.clone()) else {
            continue;
        };
        if !only.is_empty()
            && !only.iter().any(|o| {
                o.is_empty()
                    || path == *o
                    || path.starts_with(&format!("{}/", o.trim_end_matches('/')))
            })
        {
            continue;
        }
        let rules: Vec<Rule> = config
            .rules
            .iter()
            .filter(|r| r.path_regex.is_match(&path))
            .cloned()
            .collect();
        if !rules.is_empty() {
            covered.push((path, rules));
        }
    }

    // Read every file first, so the KMS data keys are unwrapped together.
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (path, rules) in &covered {
        match blob(path)? {
            None => errors.push((path.clone(), "not a blob".into())),
            Some(bytes) => {
                let format = Format::detect(path);
                match sops_file::file::load(format, &bytes) {
                    Some(l) if format != Format::Binary => loaded.push((path.clone(), rules.clone(), l)),
                    Some(_) => errors.push((path.clone(), "a binary SOPS file cannot be published (only YAML, JSON, dotenv and INI documents)".into())),
                    None => errors.push((path.clone(), sops_file::file::why_unreadable(format, &bytes).unwrap_or_else(|| "not a SOPS file".into()))),
                }
            }
        }
    }
    let keys = crate::cache::data_keys::key_cache(crate::cache::CacheDir::of(git).as_ref());
    let metas: Vec<_> = loaded.iter().map(|(_, _, l)| l.meta.clone()).collect();
    keys.prefetch(&metas);
    let keyring = Keyring::new();
    let mut desired = Vec::new();
    for (path, rules, l) in &loaded {
        let opened = keys
            .recover(&l.meta, &keyring)
            .map_err(|e| format!("cannot decrypt: {e}"))
            .and_then(|key| {
                let fp = Fingerprinter::from_data_key(key.bytes());
                l.open(&key)
                    .map(|o| (o, fp))
                    .map_err(|e| format!("cannot decrypt: {e}"))
            });
        let (opened, fp) = match opened {
            Ok(o) => o,
            Err(e) => {
                errors.push((path.clone(), e));
                continue;
            }
        };
        let Ok(text) = std::str::from_utf8(&opened.plaintext) else {
            errors.push((path.clone(), "the plaintext is not UTF-8".into()));
            continue;
        };
        let doc = match l.format().store().parse(text) {
            Ok(d) => d,
            Err(e) => {
                errors.push((path.clone(), format!("the plaintext does not parse: {e}")));
                continue;
            }
        };
        let Some(root) = doc.docs.first() else {
            errors.push((path.clone(), "an empty document".into()));
            continue;
        };
        for rule in rules {
            match resources(&config, rule, path, root, &fp, &mut blob) {
                Ok(mut items) => desired.append(&mut items),
                Err(e) => errors.push((path.clone(), format!("rule {}: {e}", rule.number))),
            }
        }
    }
    // Two files (or rules) writing the same resource would overwrite each other.
    let mut seen: BTreeMap<ResourceId, String> = BTreeMap::new();
    let mut dup = Vec::new();
    for d in &desired {
        if let Some(first) = seen.insert(d.id.clone(), d.source.clone()) {
            dup.push((
                d.source.clone(),
                format!("{} is also published from {first}", d.id),
            ));
        }
    }
    if !dup.is_empty() {
        let clash: std::collections::BTreeSet<ResourceId> = {
            let mut count: BTreeMap<&ResourceId, usize> = BTreeMap::new();
            for d in &desired {
                *count.entry(&d.id).or_default() += 1;
            }
            count
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(id, _)| id.clone())
                .collect()
        };
        desired.retain(|d| !clash.contains(&d.id));
        errors.extend(dup);
    }
    let scopes = rule_scopes(&config);
    Ok(Source {
        commit,
        config,
        desired,
        errors,
        sources: covered.into_iter().map(|(p, _)| p).collect(),
        scopes,
    })
}

/// The scopes of the rules whose region is known without a file.
fn rule_scopes(config: &PublishConfig) -> Vec<(Service, String, Access)> {
    let mut vars = Vars::new();
    vars.insert("repository".into(), config.repository.clone());
    let mut out = Vec::new();
    for rule in &config.rules {
        let (service, t) = match &rule.dest {
            Destination::SecretsManager(sm) => (Service::SecretsManager, &sm.region),
            Destination::Ssm(ssm) => (Service::Ssm, &ssm.region),
        };
        if let Ok(region) = region(t, &vars) {
            let access = Access {
                aws_profile: rule.aws_profile.clone(),
                role: rule.role.clone(),
            };
            let scope = (service, region, access);
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
    }
    out
}

fn region(t: &Option<Template>, vars: &Vars) -> Result<String, String> {
    match t {
        Some(t) => t.expand(vars),
        None => ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
            .ok_or_else(|| "no `region` in the rule and no AWS_REGION in the environment".into()),
    }
}

fn our_tags(
    config: &PublishConfig,
    path: &str,
    tags: &[(String, Template)],
    vars: &Vars,
) -> Result<Tags, String> {
    let mut out = Tags::new();
    for (k, t) in tags {
        out.insert(k.clone(), t.expand(vars)?);
    }
    out.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    out.insert(TAG_REPOSITORY.into(), config.repository.clone());
    out.insert(TAG_SOURCE.into(), path.to_string());
    Ok(out)
}

/// The resources one rule makes of one decrypted file.
fn resources(
    config: &PublishConfig,
    rule: &Rule,
    path: &str,
    root: &Map,
    fp: &Fingerprinter,
    blob: &mut BlobAt<'_>,
) -> Result<Vec<Desired>, String> {
    let vars = vars_for(rule, &config.repository, path).ok_or("the rule does not match")?;
    let access = Access {
        aws_profile: rule.aws_profile.clone(),
        role: rule.role.clone(),
    };
    let entries: Vec<(&str, &Node)> = root
        .items
        .iter()
        .filter_map(|i| match i {
            MapItem::Entry(e) if e.key != "sops" => Some((e.key.as_str(), &e.value)),
            _ => None,
        })
        .collect();
    match &rule.dest {
        Destination::SecretsManager(sm) => {
            let region = region(&sm.region, &vars)?;
            let kms_key_id = sm
                .kms_key_id
                .as_ref()
                .map(|t| t.expand(&vars))
                .transpose()?;
            let policy = match &sm.policy {
                None => None,
                Some(p) => {
                    let text = match p {
                        Policy::Inline(t) => t.clone(),
                        Policy::File(f) => {
                            let bytes = blob(f).map_err(|e| e.to_string())?.ok_or_else(|| {
                                format!("policy_file {f} is not in this revision")
                            })?;
                            String::from_utf8(bytes)
                                .map_err(|_| format!("policy_file {f} is not UTF-8"))?
                        }
                    };
                    Some(
                        serde_json::from_str::<serde_json::Value>(&text)
                            .map_err(|e| format!("the resource policy is not JSON: {e}"))?,
                    )
                }
            };
            let one = |vars: &Vars, value: SecretText, document: bool| -> Result<Desired, String> {
                let name = sm.name.expand(vars)?;
                check_secret_name(&name)?;
                Ok(Desired {
                    id: ResourceId {
                        service: Service::SecretsManager,
                        region: region.clone(),
                        name,
                    },
                    access: access.clone(),
                    source: path.to_string(),
                    rule: rule.number,
                    value,
                    kms_key_id: kms_key_id.clone(),
                    description: sm
                        .description
                        .as_ref()
                        .map(|t| t.expand(vars))
                        .transpose()?,
                    tags: our_tags(config, path, &sm.tags, vars)?,
                    policy: policy.clone(),
                    replica_regions: sm.replica_regions.clone(),
                    tier: None,
                    document,
                    fingerprints: fp.clone(),
                })
            };
            if sm.per_key {
                let mut out = Vec::new();
                for (k, node) in &entries {
                    let mut v = vars.clone();
                    v.insert("key".into(), k.to_string());
                    let value = match node {
                        Node::Leaf(l) => scalar_text(&l.value)?,
                        other => json_of(other)?,
                    };
                    out.push(one(&v, SecretText(value), matches!(node, Node::Map(_)))?);
                }
                Ok(out)
            } else {
                let mut s = Zeroizing::new(String::new());
                write_map(&mut s, &entries)?;
                Ok(vec![one(&vars, SecretText(s), true)?])
            }
        }
        Destination::Ssm(ssm) => {
            let region = region(&ssm.region, &vars)?;
            let kms_key_id = ssm
                .kms_key_id
                .as_ref()
                .map(|t| t.expand(&vars))
                .transpose()?;
            let tags = our_tags(config, path, &ssm.tags, &vars)?;
            let mut leaves = Vec::new();
            for (k, node) in &entries {
                collect_leaves(&mut leaves, vec![k.to_string()], node)?;
            }
            let mut out = Vec::new();
            for (key_path, value) in leaves {
                for c in &key_path {
                    if c.is_empty()
                        || !c
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
                    {
                        return Err(format!("key {c:?} cannot be part of an SSM parameter name (letters, digits, _ . - only)"));
                    }
                }
                if value.is_empty() {
                    return Err(format!(
                        "{}: SSM cannot hold an empty value",
                        key_path.join("/")
                    ));
                }
                let mut v = vars.clone();
                v.insert("key_path".into(), key_path.join("/"));
                let name = ssm.path.expand(&v)?;
                check_parameter_name(&name)?;
                out.push(Desired {
                    id: ResourceId {
                        service: Service::Ssm,
                        region: region.clone(),
                        name,
                    },
                    access: access.clone(),
                    source: path.to_string(),
                    rule: rule.number,
                    value: SecretText(value),
                    kms_key_id: kms_key_id.clone(),
                    description: None,
                    tags: tags.clone(),
                    policy: None,
                    replica_regions: Vec::new(),
                    tier: ssm.tier.clone(),
                    document: false,
                    fingerprints: fp.clone(),
                });
            }
            Ok(out)
        }
    }
}

/// Secrets Manager's name alphabet: ASCII letters, digits and `/_+=.@-`.
fn check_secret_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    {
        return Err(format!(
            "{name:?} is not a valid Secrets Manager name (1-512 of A-Z a-z 0-9 /_+=.@-)"
        ));
    }
    Ok(())
}

fn check_parameter_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 1011
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
        && !name.contains("//")
        && !name
            .to_ascii_lowercase()
            .trim_start_matches('/')
            .starts_with("aws")
        && !name
            .to_ascii_lowercase()
            .trim_start_matches('/')
            .starts_with("ssm");
    if !ok {
        return Err(format!("{name:?} is not a valid SSM parameter name"));
    }
    Ok(())
}

fn collect_leaves(
    out: &mut Vec<(Vec<String>, Zeroizing<String>)>,
    path: Vec<String>,
    node: &Node,
) -> Result<(), String> {
    match node {
        Node::Leaf(l) => out.push((path, scalar_text(&l.value)?)),
        Node::Map(m) => {
            for item in &m.items {
                if let MapItem::Entry(e) = item {
                    let mut p = path.clone();
                    p.push(e.key.clone());
                    collect_leaves(out, p, &e.value)?;
                }
            }
        }
        Node::List(l) => {
            let nodes = l.items.iter().filter_map(|i| match i {
                ListItem::Node(n) => Some(n),
                ListItem::Comment(_) => None,
            });
            for (i, n) in nodes.enumerate() {
                let mut p = path.clone();
                p.push(i.to_string());
                collect_leaves(out, p, n)?;
            }
        }
    }
    Ok(())
}

/// A scalar as a value on its own: strings raw, everything else as JSON.
fn scalar_text(s: &Scalar) -> Result<Zeroizing<String>, String> {
    match s {
        Scalar::Str(v) => Ok(v.clone()),
        Scalar::Time(t) => Ok(Zeroizing::new(t.clone())),
        other => {
            let mut out = Zeroizing::new(String::new());
            write_scalar(&mut out, other)?;
            Ok(out)
        }
    }
}

fn json_of(node: &Node) -> Result<Zeroizing<String>, String> {
    let mut out = Zeroizing::new(String::new());
    write_node(&mut out, node)?;
    Ok(out)
}

/// Compact JSON, written straight into a zeroizing buffer (no intermediate
/// `serde_json::Value` holding copies of the values), keys in file order.
fn write_map(out: &mut Zeroizing<String>, entries: &[(&str, &Node)]) -> Result<(), String> {
    out.push('{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_node(out, v)?;
    }
    out.push('}');
    Ok(())
}

fn write_node(out: &mut Zeroizing<String>, node: &Node) -> Result<(), String> {
    match node {
        Node::Leaf(l) => write_scalar(out, &l.value),
        Node::Map(m) => {
            let entries: Vec<(&str, &Node)> = m
                .items
                .iter()
                .filter_map(|i| match i {
                    MapItem::Entry(e) => Some((e.key.as_str(), &e.value)),
                    MapItem::Comment(_) => None,
                })
                .collect();
            write_map(out, &entries)
        }
        Node::List(l) => {
            out.push('[');
            let mut first = true;
            for item in &l.items {
                if let ListItem::Node(n) = item {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_node(out, n)?;
                }
            }
            out.push(']');
            Ok(())
        }
    }
}

fn write_scalar(out: &mut Zeroizing<String>, s: &Scalar) -> Result<(), String> {
    match s {
        Scalar::Str(v) => write_str(out, v),
        Scalar::Time(t) => write_str(out, t),
        Scalar::Int(i) => out.push_str(&i.to_string()),
        Scalar::Float(f) if f.is_finite() => {
            let t = f.to_string();
            out.push_str(&t);
            if !t.contains(['.', 'e', 'E']) {
                out.push_str(".0");
            }
        }
        Scalar::Float(_) => return Err("a NaN or infinite number cannot be written as JSON".into()),
        Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Scalar::Null => out.push_str("null"),
    }
    Ok(())
}

fn write_str(out: &mut Zeroizing<String>, s: &str) {
    sops_file::formats::json::push_json_string(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_become_compact_json_that_serde_reads_back() {
        let doc = Format::Yaml
            .store()
            .parse("a: \"x\\\"y\\n\"\nn: 5\nf: 1.5\nb: true\nz: null\nl: [1, two]\nm: {k: v}\n")
            .unwrap();
        let entries: Vec<(&str, &Node)> = doc.docs[0]
            .items
            .iter()
            .filter_map(|i| match i {
                MapItem::Entry(e) => Some((e.key.as_str(), &e.value)),
                _ => None,
            })
            .collect();
        let mut s = Zeroizing::new(String::new());
        write_map(&mut s, &entries).unwrap();
        assert_eq!(
            &*s,
            r#"{"a":"x\"y\n","n":5,"f":1.5,"b":true,"z":null,"l":[1,"two"],"m":{"k":"v"}}"#
        );
        let mut leaves = Vec::new();
        for (k, n) in &entries {
            collect_leaves(&mut leaves, vec![k.to_string()], n).unwrap();
        }
        let names: Vec<String> = leaves.iter().map(|(p, _)| p.join("/")).collect();
        assert_eq!(names, ["a", "n", "f", "b", "z", "l/0", "l/1", "m/k"]);
        assert_eq!(&*leaves[1].1, "5");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_secret_name("payments/prod").is_ok());
        assert!(check_secret_name("a b").is_err());
        assert!(check_parameter_name("/prod/payments/db").is_ok());
        assert!(check_parameter_name("/aws/x").is_err());
    }
}
