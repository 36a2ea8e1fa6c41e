//! The `git_sops: publish:` section of `.sops.yaml`: which committed SOPS files
//! go where (Secrets Manager or SSM Parameter Store), under which names, keys,
//! tags and roles. sops 3.11 ignores top-level keys it does not know, so the
//! section lives beside `creation_rules` in the same file (tests/publish.rs runs
//! sops on such a file). Parsing and templating are pure; docs/publish.md has
//! the syntax.

use std::collections::BTreeMap;

use regex::Regex;
use sops_file::formats::{yaml_value, Value};

use super::PublishError;

/// The parsed section.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    /// What this repository is called in the `git-sops:repository` tag; orphans
    /// are looked for among the resources carrying this name only.
    pub repository: String,
    /// Whether `repository` was written in `.sops.yaml` (not the default):
    /// only then is it safe to delete by it (`apply --prune`).
    pub repository_named: bool,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    /// 1-based, for messages.
    pub number: usize,
    pub path_regex: Regex,
    /// An IAM role to assume (sops' session name), or empty.
    pub role: String,
    /// A shared-config profile, or empty.
    pub aws_profile: String,
    pub dest: Destination,
}

#[derive(Clone, Debug)]
pub enum Destination {
    SecretsManager(SmRule),
    Ssm(SsmRule),
}

#[derive(Clone, Debug)]
pub struct SmRule {
    pub name: Template,
    pub region: Option<Template>,
    pub kms_key_id: Option<Template>,
    pub description: Option<Template>,
    pub tags: Vec<(String, Template)>,
    /// One secret per top-level key (`{key}` in the name) instead of one per file.
    pub per_key: bool,
    pub policy: Option<Policy>,
    pub replica_regions: Vec<String>,
}

#[derive(Clone, Debug)]
pub enum Policy {
    /// JSON text in `.sops.yaml`, as it is (not a template: JSON is full of braces).
    Inline(String),
    /// A JSON file of the same revision, path relative to the repository's top.
    File(String),
}

#[derive(Clone, Debug)]
pub struct SsmRule {
    pub path: Template,
    pub region: Option<Template>,
    pub kms_key_id: Option<Template>,
    pub tags: Vec<(String, Template)>,
    pub tier: Option<String>,
}

/// A string with `{name}` placeholders (`{{` and `}}` for braces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                            _ => return Err(format!("{text:?}: an unclosed or invalid `{{...}}`")),
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("{text:?}: an empty `{{}}`"));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(name));
                }
                '}' => return Err(format!("{text:?}: a lone `}}` (write `}}}}`)")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// The text with every placeholder replaced; an unknown one is an error.
    pub fn expand(&self, vars: &Vars) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => out.push_str(
                    vars.get(v)
                        .ok_or_else(|| format!("{:?}: no value for {{{v}}}", self.text))?,
                ),
            }
        }
        Ok(out)
    }
}

/// The values a template can use: the regex's named and numbered captures,
/// `path` (the file's repository path), `repository`, and per destination
/// `key` (Secrets Manager with `per_key`) or `key_path` (SSM).
pub type Vars = BTreeMap<String, String>;

/// The captures of `rule` on `path`, plus `path` and `repository`; `None` when
/// the rule does not cover `path`.
pub fn vars_for(rule: &Rule, repository: &str, path: &str) -> Option<Vars> {
    let caps = rule.path_regex.captures(path)?;
    let mut vars = Vars::new();
    for (i, name) in rule.path_regex.capture_names().enumerate() {
        if let Some(m) = caps.get(i) {
            vars.insert(i.to_string(), m.as_str().to_string());
            if let Some(name) = name {
                vars.insert(name.to_string(), m.as_str().to_string());
            }
        }
    }
    vars.insert("path".into(), path.to_string());
    vars.insert("repository".into(), repository.to_string());
    Some(vars)
}

impl PublishConfig {
    /// The section of `.sops.yaml` text; `None` when there is none.
    pub fn parse(
        text: &str,
        default_repository: &str,
    ) -> Result<Option<PublishConfig>, PublishError> {
        let err = |m: String| PublishError::Config(format!(".sops.yaml: git_sops.publish: {m}"));
        let value = yaml_value::parse(text)
            .map_err(|e| PublishError::Config(format!(".sops.yaml: {e}")))?;
        let section = match value.get(sops_file::config::GIT_SOPS) {
            None | Some(Value::Null) => return Ok(None),
            Some(v @ Value::Map(_)) => v.clone(),
            Some(_) => return Err(err("`git_sops` must be a map".into())),
        };
        let (repository, repository_named) = match section.get("repository") {
            None | Some(Value::Null) => (default_repository.to_string(), false),
            Some(Value::Str(s)) if !s.trim().is_empty() => (s.trim().to_string(), true),
            Some(_) => return Err(err("`repository` must be a non-empty string".into())),
        };
        let rules = match section.get("publish") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::List(items)) => items
                .iter()
                .enumerate()
                .map(|(i, r)| parse_rule(i + 1, r).map_err(|m| err(format!("rule {}: {m}", i + 1))))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(err("`publish` must be a list of rules".into())),
        };
        Ok(Some(PublishConfig {
            repository,
            repository_named,
            rules,
        }))
    }
}

fn string(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(Value::Int(i)) => Ok(Some(i.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("`{field}` must be a string")),
    }
}

fn template(v: Option<&Value>, field: &str) -> Result<Option<Template>, String> {
    string(v, field)?.map(|s| Template::parse(&s)).transpose()
}

fn tags(v: Option<&Value>) -> Result<Vec<(String, Template)>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, v)| {
                if k == "managed-by" || k.starts_with("git-sops:") {
                    return Err(format!("tag {k:?} is git-sops' own"));
                }
                let t =
                    template(Some(v), "tags")?.ok_or_else(|| format!("tag {k:?} has no value"))?;
                Ok((k.clone(), t))
            })
            .collect(),
        Some(_) => Err("`tags` must be a map of name: value".into()),
    }
}

fn parse_rule(number: usize, rule: &Value) -> Result<Rule, String> {
    let Value::Map(fields) = rule else {
        return Err("a rule must be a map".into());
    };
    let sm = rule.get("secretsmanager");
    let ssm = rule.get("ssm");
    for (k, _) in fields {
        if !matches!(
            k.as_str(),
            "path_regex" | "role" | "aws_profile" | "secretsmanager" | "ssm"
        ) {
            return Err(format!("unknown field `{k}`"));
        }
    }
    let pattern = string(rule.get("path_regex"), "path_regex")?
        .filter(|s| !s.is_empty())
        .ok_or("`path_regex` is required")?;
    let path_regex = Regex::new(&pattern).map_err(|e| format!("path_regex: {e}"))?;
    let role = string(rule.get("role"), "role")?.unwrap_or_default();
    let aws_profile = string(rule.get("aws_profile"), "aws_profile")?.unwrap_or_default();
    let dest = match (sm, ssm) {
        (Some(d), None) => Destination::SecretsManager(parse_sm(d)?),
        (None, Some(d)) => Destination::Ssm(parse_ssm(d)?),
        _ => return Err("exactly one of `secretsmanager` or `ssm` is required".into()),
    };
    let r = Rule {
        number,
        path_regex,
        role,
        aws_profile,
        dest,
    };
    check_vars(&r)?;
    Ok(r)
}

fn only(d: &Value, allowed: &[&str], what: &str) -> Result<(), String> {
    let Value::Map(fields) = d else {
        return Err(format!("`{what}` must be a map"));
    };
    match fields.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(format!("`{what}`: unknown field `{k}`")),
        None => Ok(()),
    }
}

fn parse_sm(d: &Value) -> Result<SmRule, String> {
    only(
        d,
        &[
            "name",
            "region",
            "kms_key_id",
            "description",
            "tags",
            "per_key",
            "policy",
            "policy_file",
            "replica_regions",
        ],
        "secretsmanager",
    )?;
    let policy = match (
        d.get("policy"),
        string(d.get("policy_file"), "policy_file")?,
    ) {
        (Some(Value::Str(s)), None) => Some(Policy::Inline(s.clone())),
        (Some(Value::Map(_)), None) => {
            return Err("`policy` is JSON text (a YAML block string), or use `policy_file`".into())
        }
        (None | Some(Value::Null), Some(f)) => {
            Some(Policy::File(f.trim_start_matches("./").to_string()))
        }
        (None | Some(Value::Null), None) => None,
        _ => return Err("`policy` and `policy_file` exclude each other".into()),
    };
    let replica_regions = match d.get("replica_regions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::List(l)) => l
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or("`replica_regions` lists region names")
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`replica_regions` must be a list".into()),
    };
    Ok(SmRule {
        name: template(d.get("name"), "name")?.ok_or("`secretsmanager.name` is required")?,
        region: template(d.get("region"), "region")?,
        kms_key_id: template(d.get("kms_key_id"), "kms_key_id")?,
        description: template(d.get("description"), "description")?,
        tags: tags(d.get("tags"))?,
        per_key: matches!(d.get("per_key"), Some(Value::Bool(true))),
        policy,
        replica_regions,
    })
}

fn parse_ssm(d: &Value) -> Result<SsmRule, String> {
    only(d, &["path", "region", "kms_key_id", "tags", "tier"], "ssm")?;
    let tier = string(d.get("tier"), "tier")?;
    if let Some(t) = &tier {
        if !matches!(t.as_str(), "Standard" | "Advanced" | "Intelligent-Tiering") {
            return Err(format!(
                "tier {t:?}: Standard, Advanced or Intelligent-Tiering"
            ));
        }
    }
    let path = template(d.get("path"), "path")?.ok_or("`ssm.path` is required")?;
    if !path.vars().any(|v| v == "key_path") {
        return Err("`ssm.path` must contain {key_path} (one parameter per value)".into());
    }
    Ok(SsmRule {
        path,
        region: template(d.get("region"), "region")?,
        kms_key_id: template(d.get("kms_key_id"), "kms_key_id")?,
        tags: tags(d.get("tags"))?,
        tier,
    })
}

/// Every placeholder must be a capture of `path_regex` or a built-in one.
fn check_vars(rule: &Rule) -> Result<(), String> {
    let names: Vec<String> = rule
        .path_regex
        .capture_names()
        .enumerate()
        .flat_map(|(i, n)| [Some(i.to_string()), n.map(str::to_string)])
        .flatten()
        .collect();
    let mut templates: Vec<(&Template, &[&str])> = Vec::new();
    match &rule.dest {
        Destination::SecretsManager(sm) => {
            let name_extra: &[&str] = if sm.per_key { &["key"] } else { &[] };
            templates.push((&sm.name, name_extra));
            templates.extend(sm.region.iter().map(|t| (t, &[][..])));
            templates.extend(sm.kms_key_id.iter().map(|t| (t, &[][..])));
            templates.extend(sm.description.iter().map(|t| (t, name_extra)));
            templates.extend(sm.tags.iter().map(|(_, t)| (t, name_extra)));
            if sm.per_key && !sm.name.vars().any(|v| v == "key") {
                return Err("with `per_key: true`, `name` must contain {key}".into());
            }
        }
        Destination::Ssm(ssm) => {
            templates.push((&ssm.path, &["key_path"]));
            templates.extend(ssm.region.iter().map(|t| (t, &[][..])));
            templates.extend(ssm.kms_key_id.iter().map(|t| (t, &[][..])));
            templates.extend(ssm.tags.iter().map(|(_, t)| (t, &[][..])));
        }
    }
    for (t, extra) in templates {
        for v in t.vars() {
            if !(names.iter().any(|n| n == v)
                || ["path", "repository"].contains(&v)
                || extra.contains(&v))
            {
                return Err(format!(
                    "{:?}: {{{v}}} is neither a capture of path_regex nor one of {{path}}, {{repository}}{}",
                    t.text,
                    extra.iter().map(|e| format!(", {{{e}}}")).collect::<String>()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
creation_rules:
  - age: age1xyz
git_sops:
  repository: acme/secrets
  publish:
    - path_regex: ^secrets/(?P<service>[^/]+)/(?P<stage>[^/]+)\.yaml$
      role: arn:aws:iam::222222222222:role/publisher
      secretsmanager:
        name: "{service}/{stage}"
        region: eu-west-1
        kms_key_id: alias/{service}-{stage}
        tags: {team: "{service}"}
    - path_regex: ^params/(\w+)\.yaml$
      ssm:
        path: /{1}/{key_path}
        tier: Advanced
"#;

    #[test]
    fn rules_parse_and_templates_expand_with_captures() {
        let c = PublishConfig::parse(YAML, "x").unwrap().unwrap();
        assert_eq!(c.repository, "acme/secrets");
        assert_eq!(c.rules.len(), 2);
        let vars = vars_for(&c.rules[0], &c.repository, "secrets/payments/prod.yaml").unwrap();
        let Destination::SecretsManager(sm) = &c.rules[0].dest else {
            panic!()
        };
        assert_eq!(sm.name.expand(&vars).unwrap(), "payments/prod");
        assert_eq!(
            sm.kms_key_id.as_ref().unwrap().expand(&vars).unwrap(),
            "alias/payments-prod"
        );
        assert!(vars_for(&c.rules[0], "r", "secrets/a.yaml").is_none());
        let v2 = vars_for(&c.rules[1], "r", "params/app.yaml").unwrap();
        assert_eq!(v2["1"], "app");
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for (bad, needle) in [
            ("git_sops: {publish: [{path_regex: a, secretsmanager: {name: '{nope}'}}]}", "{nope}"),
            ("git_sops: {publish: [{path_regex: a}]}", "exactly one"),
            ("git_sops: {publish: [{path_regex: a, ssm: {path: /x}}]}", "key_path"),
            ("git_sops: {publish: [{path_regex: '(', ssm: {path: '/{key_path}'}}]}", "path_regex"),
            ("git_sops: {publish: [{path_regex: a, secretsmanager: {name: x, tags: {managed-by: y}}}]}", "git-sops' own"),
            ("git_sops: {publish: [{path_regex: a, secretsmanager: {name: x, per_key: true}}]}", "{key}"),
            ("git_sops: {publish: [{path_regex: a, secretsmanager: {name: x, nmae: y}}]}", "unknown field"),
            ("git_sops: {publish: [{path_regex: a, secretsmanager: {name: 'x{'}}]}", "unclosed"),
        ] {
            let e = PublishConfig::parse(bad, "r").unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        assert!(PublishConfig::parse("creation_rules: []", "r")
            .unwrap()
            .is_none());
    }

    #[test]
    fn braces_escape() {
        let t = Template::parse("{{x}}-{a}").unwrap();
        let mut v = Vars::new();
        v.insert("a".into(), "1".into());
        assert_eq!(t.expand(&v).unwrap(), "{x}-1");
    }
}
