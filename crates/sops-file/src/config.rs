//! `.sops.yaml`: finding the nearest config and choosing the creation rule for a
//! file, as sops 3.11 does (docs/sops-format.md §6). The search starts at the current
//! directory and walks up; `path_regex` is searched in the file's path relative to
//! the config's directory; the first matching rule wins.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::keygroups::Recipient;
use super::selectors::Selector;
use super::shamir;
use crate::formats::{yaml_value, Value};
use crate::template::{TemplateError, Vars};

/// The section of a creation rule that only git-sops reads (sops 3.11 ignores
/// unknown fields of a rule): templated keys, role and encryption context.
pub const GIT_SOPS: &str = "git_sops";

/// The fields a `git_sops` section may have.
const GIT_SOPS_FIELDS: [&str; 6] = ["kms", "age", "key_groups", "role", "context", "aws_profile"];

/// A problem with `.sops.yaml`.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
    /// Set when the problem is a `git_sops` template that cannot be rendered.
    pub template: Option<Box<TemplateError>>,
}

/// What a creation rule says about a new file: for a rule with a `git_sops`
/// section, with its templates rendered for that file's path.
#[derive(Clone, Debug)]
pub struct Rule {
    /// 1-based number of the creation rule, as messages name it.
    pub number: usize,
    pub key_groups: Vec<Vec<Recipient>>,
    pub shamir_threshold: usize,
    pub selector: Option<Selector>,
    pub mac_only_encrypted: bool,
    /// The keys come from (or were completed by) a `git_sops` section.
    pub templated: bool,
}

/// What decides which creation rule covers a path and what it encrypts.
#[derive(Clone, Debug)]
pub struct RuleHead {
    /// 1-based, as messages number rules.
    pub number: usize,
    /// The `path_regex` and its compiled form; `None` matches every path.
    pub path_regex: Option<(String, Regex)>,
    pub selector: Option<Selector>,
}

/// One creation rule as written ([`Config::rules_as_written`]).
#[derive(Clone, Debug)]
pub struct RuleAsWritten {
    /// 1-based, as messages number rules.
    pub number: usize,
    pub path_regex: Option<String>,
    /// The rule's keys and settings (templates not rendered), or why they cannot be read.
    pub rule: Result<Rule, String>,
    /// The raw `git_sops` section, if any.
    pub git_sops: Option<Value>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    rules: Vec<Value>,
    /// The whole document, for sections git-sops reads besides `creation_rules`
    /// (`git_sops.policy`, see [`crate::policy`]).
    pub(crate) top: Value,
    /// Each rule's `path_regex`, compiled once on first use: one
    /// configuration is asked about every file of a tree (the guard, bulk
    /// `updatekeys`), and compiling a regex costs more than matching it.
    regexes: std::sync::OnceLock<Vec<CompiledRegex>>,
}

/// A rule's `path_regex` as written and compiled; `None`: the rule has none
/// (it matches every path); `Err`: why it does not compile.
type CompiledRegex = Result<Option<(String, Regex)>, String>;

/// The nearest `.sops.yaml` from `start` upwards (at most 100 levels, as sops).
pub fn find(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    for _ in 0..100 {
        let d = dir?;
        let candidate = d.join(".sops.yaml");
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

/// The config sops would use: `explicit` (`--config`), else `SOPS_CONFIG`, else the
/// nearest `.sops.yaml` from the current directory.
pub fn discover(explicit: Option<&Path>) -> Result<Option<Config>, ConfigError> {
    match explicit {
        Some(p) => Config::load(p),
        None => match std::env::current_dir() {
            Ok(cwd) => discover_from(&cwd),
            Err(_) => Ok(None),
        },
    }
}

/// `SOPS_CONFIG`, else the nearest `.sops.yaml` from `start` upwards.
pub fn discover_from(start: &Path) -> Result<Option<Config>, ConfigError> {
    let path = match std::env::var_os("SOPS_CONFIG").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => find(start),
    };
    match path {
        Some(p) => Config::load(&p),
        None => Ok(None),
    }
}

impl Config {
    /// Load a config; `None` when it has no `creation_rules` (sops treats that as no config).
    pub fn load(path: &Path) -> Result<Option<Config>, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
            template: None,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        Config::parse(path, &text)
    }

    /// [`Config::load`] of `text` as the content of the config at `path` (which
    /// only names it in errors and anchors `path_regex`; it is not read).
    pub fn parse(path: &Path, text: &str) -> Result<Option<Config>, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
            template: None,
        };
        let value = yaml_value::parse(text).map_err(|e| err(e.to_string()))?;
        let rules = match value.get("creation_rules") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::List(rules)) => rules.clone(),
            Some(_) => return Err(err("`creation_rules` must be a list".into())),
        };
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Some(Config {
            path,
            rules,
            top: value,
            regexes: std::sync::OnceLock::new(),
        }))
    }

    /// The top-level `key` of the document (a section git-sops reads).
    pub(crate) fn section(&self, key: &str) -> Option<&Value> {
        self.top.get(key)
    }

    fn error(&self, message: String) -> ConfigError {
        ConfigError {
            path: self.path.display().to_string(),
            message,
            template: None,
        }
    }

    fn template_error(&self, e: TemplateError) -> ConfigError {
        ConfigError {
            path: self.path.display().to_string(),
            message: e.to_string(),
            template: Some(Box::new(e)),
        }
    }

    /// The first rule whose `path_regex` matches `file`, with its `git_sops`
    /// templates rendered for `file` (docs/sops-format.md §6.1). This is the one
    /// place a template is rendered: clean, `encrypt`, `edit`, `updatekeys` and
    /// the drift reports of `status` and `check` all come here, so they agree.
    pub fn rule_for(&self, file: &str) -> Result<Rule, ConfigError> {
        let relative = self.relative_path(file);
        self.rule_for_relative(&relative)
    }

    /// [`Config::rule_for`] of a path already relative to the config's directory
    /// (the string `path_regex` is matched against).
    pub fn rule_for_relative(&self, relative: &str) -> Result<Rule, ConfigError> {
        for (i, rule) in self.rules.iter().enumerate() {
            let number = i + 1;
            let regex = self
                .path_regex(i)
                .map_err(|m| self.error(format!("creation rule {number}: {m}")))?;
            let matches = regex.as_ref().is_none_or(|(_, re)| re.is_match(relative));
            if matches {
                let mut parsed = self
                    .parse_rule(rule)
                    .map_err(|m| self.error(format!("creation rule {number}: {m}")))?;
                parsed.number = number;
                if let Some(section) = rule.get(GIT_SOPS).filter(|v| !matches!(v, Value::Null)) {
                    let regex = regex.as_ref().map(|(_, re)| re);
                    check_section(number, regex, section).map_err(|e| self.template_error(e))?;
                    let vars = Vars::new(number, regex, relative);
                    apply_section(&mut parsed, &vars, section)
                        .map_err(|e| self.template_error(e))?;
                }
                return Ok(parsed);
            }
        }
        Err(self.error(format!(
            "no creation rule matches {relative:?}; add a rule whose path_regex matches it, or pass --age"
        )))
    }

    /// Check every rule's `git_sops` section without a path: its shape, and
    /// that every placeholder is a named capture of the rule's `path_regex` or
    /// a built-in. (A capture that does not take part in a match can only be
    /// found for a path, by [`Config::rule_for`].)
    pub fn check_templates(&self) -> Result<(), ConfigError> {
        for (i, rule) in self.rules.iter().enumerate() {
            let number = i + 1;
            let regex = self
                .path_regex(i)
                .map_err(|m| self.error(format!("creation rule {number}: {m}")))?;
            if let Some(section) = rule.get(GIT_SOPS).filter(|v| !matches!(v, Value::Null)) {
                check_section(number, regex.as_ref().map(|(_, re)| re), section)
                    .map_err(|e| self.template_error(e))?;
            }
        }
        Ok(())
    }

    /// Every creation rule that has a `git_sops` section: its number, its
    /// compiled `path_regex`, the section and the whole rule as written (for
    /// `git sops policy`).
    #[allow(clippy::type_complexity)]
    pub(crate) fn templated_rules(
        &self,
    ) -> Result<Vec<(usize, Option<Regex>, Value, Value)>, ConfigError> {
        self.check_templates()?;
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(section) = rule.get(GIT_SOPS).filter(|v| !matches!(v, Value::Null)) {
                let regex = self
                    .path_regex(i)
                    .map_err(|m| self.error(format!("creation rule {}: {m}", i + 1)))?;
                out.push((
                    i + 1,
                    regex.map(|(_, re)| re),
                    section.clone(),
                    rule.clone(),
                ));
            }
        }
        Ok(out)
    }

    /// Rule `i`'s compiled `path_regex` (see `regexes`).
    fn path_regex(&self, i: usize) -> CompiledRegex {
        let all = self
            .regexes
            .get_or_init(|| self.rules.iter().map(path_regex).collect());
        all.get(i).cloned().unwrap_or(Ok(None))
    }

    /// The path `path_regex` is matched against for `file`: relative to the
    /// config's directory (absolute when outside it), as sops does.
    pub fn match_path(&self, file: &str) -> String {
        self.relative_path(file)
    }

    /// Whether some creation rule's `path_regex` matches `file` (a rule without
    /// one matches every path); the rules' keys are not read.
    pub fn covers(&self, file: &str) -> Result<bool, ConfigError> {
        let relative = self.relative_path(file);
        for i in 0..self.rules.len() {
            let regex = self
                .path_regex(i)
                .map_err(|m| self.error(format!("creation rule {}: {m}", i + 1)))?;
            if regex.is_none_or(|(_, re)| re.is_match(&relative)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every creation rule's number, `path_regex` and selector, in order, without
    /// resolving its keys: what decides which rule covers a path and what it
    /// encrypts (the guard reads this from a committed `.sops.yaml`).
    pub fn heads(&self) -> Result<Vec<RuleHead>, ConfigError> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let number = i + 1;
                let head = self.path_regex(i).and_then(|path_regex| {
                    Ok(RuleHead {
                        number,
                        path_regex,
                        selector: selector(rule)?,
                    })
                });
                head.map_err(|m| self.error(format!("creation rule {number}: {m}")))
            })
            .collect()
    }

    /// Each creation rule as written, in order, before any `git_sops` template
    /// is rendered (that needs a file path): for comparing two versions of a
    /// `.sops.yaml` (`git sops review`). A rule that cannot be read carries why.
    pub fn rules_as_written(&self) -> Vec<RuleAsWritten> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, rule)| RuleAsWritten {
                number: i + 1,
                path_regex: match rule.get("path_regex") {
                    Some(Value::Str(s)) if !s.is_empty() => Some(s.to_string()),
                    _ => None,
                },
                rule: self.parse_rule(rule),
                git_sops: rule
                    .get(GIT_SOPS)
                    .filter(|v| !matches!(v, Value::Null))
                    .cloned(),
            })
            .collect()
    }

    /// The path sops matches: absolute, then relative to the config's directory.
    fn relative_path(&self, file: &str) -> String {
        let absolute = std::path::absolute(file).unwrap_or_else(|_| PathBuf::from(file));
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        match absolute.strip_prefix(dir) {
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => absolute.to_string_lossy().into_owned(),
        }
    }

    fn parse_rule(&self, rule: &Value) -> Result<Rule, String> {
        let selector = selector(rule)?;
        let key_groups = match rule.get("key_groups") {
            Some(Value::List(groups)) if !groups.is_empty() => groups
                .iter()
                .map(|g| group_recipients(g, true))
                .collect::<Result<Vec<_>, _>>()?,
            _ => vec![group_recipients(rule, false)?],
        };
        if key_groups.len() > shamir::MAX_SHARES {
            return Err(format!(
                "`key_groups` has {} groups; Shamir secret sharing (in sops as here) allows at \
                 most {}: merge some groups",
                key_groups.len(),
                shamir::MAX_SHARES
            ));
        }
        let shamir_threshold = match rule.get("shamir_threshold") {
            None | Some(Value::Null) => 0,
            Some(Value::Int(n)) if *n >= 0 => *n as usize,
            Some(_) => return Err("`shamir_threshold` must be a non-negative integer".into()),
        };
        let mac_only_encrypted = matches!(rule.get("mac_only_encrypted"), Some(Value::Bool(true)));
        Ok(Rule {
            number: 0,
            templated: false,
            key_groups,
            shamir_threshold,
            selector,
            mac_only_encrypted,
        })
    }
}

/// The shape of a `git_sops` section and the placeholders of its templates,
/// checked without a path.
fn check_section(
    number: usize,
    regex: Option<&Regex>,
    section: &Value,
) -> Result<(), TemplateError> {
    let shape = |problem: String| TemplateError::Shape {
        rule: number,
        field: GIT_SOPS.to_string(),
        problem,
    };
    let Value::Map(entries) = section else {
        return Err(shape(
            "must be a mapping (fields: kms, age, key_groups, role, context, aws_profile)".into(),
        ));
    };
    for (k, v) in entries {
        if !GIT_SOPS_FIELDS.contains(&k.as_str()) {
            return Err(shape(format!(
                "unknown field `{k}`; a git_sops section has {}",
                GIT_SOPS_FIELDS.join(", ")
            )));
        }
        if k == "context" && !matches!(v, Value::Map(_) | Value::Null) {
            return Err(shape("`context` must be a mapping of strings".into()));
        }
    }
    Vars::check_value(number, regex, GIT_SOPS, section)
}

/// A `kms` field of a `git_sops` section as a list of `{arn, role, ...}` maps:
/// entries may also be sops' `ARN[+ROLE]` strings (comma-separated or a list).
fn kms_maps(v: &Value) -> Result<Value, String> {
    let from_str = |s: &str| -> Vec<Value> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter_map(|part| match parse_kms_arn(part, "") {
                Recipient::Kms { arn, role, .. } => Some(Value::Map(vec![
                    ("arn".to_string(), Value::Str(arn)),
                    ("role".to_string(), Value::Str(role)),
                ])),
                _ => None,
            })
            .collect()
    };
    let mut out = Vec::new();
    match v {
        Value::Null => {}
        Value::Str(s) => out.extend(from_str(s)),
        Value::List(items) => {
            for item in items {
                match item {
                    Value::Str(s) => out.extend(from_str(s)),
                    Value::Map(_) => out.push(item.clone()),
                    _ => return Err("`kms` entries must be ARN strings or {arn, role, context, aws_profile} mappings".into()),
                }
            }
        }
        _ => return Err("`kms` must be an ARN string or a list".into()),
    }
    Ok(Value::List(out))
}

/// One key group of a (rendered) `git_sops` section or of its `key_groups`.
fn section_group(g: &Value) -> Result<Vec<Recipient>, String> {
    let mut g = g.clone();
    if let Value::Map(entries) = &mut g {
        for (k, v) in entries.iter_mut() {
            if k == "kms" {
                *v = kms_maps(v)?;
            }
        }
    }
    group_recipients(&g, true)
}

/// Render a rule's `git_sops` section for one path into `rule`: its keys (when
/// it names any) replace the plain sops fields' keys, and its `role`, `context`
/// and `aws_profile` complete every KMS key that has none of its own (the
/// plain fields' keys too, so `kms: ARN` plus `git_sops: {context: ...}` works).
fn apply_section(rule: &mut Rule, vars: &Vars, section: &Value) -> Result<(), TemplateError> {
    let number = rule.number;
    let rendered = vars.render_value(GIT_SOPS, section)?;
    let shape = |problem: String| TemplateError::Shape {
        rule: number,
        field: GIT_SOPS.to_string(),
        problem,
    };
    let groups = match rendered.get("key_groups") {
        Some(Value::List(groups)) if !groups.is_empty() => Some(
            groups
                .iter()
                .map(section_group)
                .collect::<Result<Vec<_>, _>>()
                .map_err(shape)?,
        ),
        _ if rendered.get("kms").is_some() || rendered.get("age").is_some() => {
            let mut flat = Vec::new();
            for k in ["age", "kms"] {
                if let Some(v) = rendered.get(k) {
                    flat.push((k.to_string(), v.clone()));
                }
            }
            Some(vec![section_group(&Value::Map(flat)).map_err(shape)?])
        }
        _ => None,
    };
    if let Some(groups) = groups {
        if groups.len() > shamir::MAX_SHARES {
            return Err(shape(format!(
                "`key_groups` has more than {} groups",
                shamir::MAX_SHARES
            )));
        }
        rule.key_groups = groups;
    }
    let text = |k: &str| {
        rendered
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (role, profile) = (text("role"), text("aws_profile"));
    let mut context: Vec<(String, String)> = match rendered.get("context") {
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Str(s) => Ok((k.clone(), s.clone())),
                _ => Err(shape(format!("`context.{k}` must be a string (quote it)"))),
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    context.sort();
    for r in rule.key_groups.iter_mut().flatten() {
        if let Recipient::Kms {
            role: r_role,
            context: r_context,
            aws_profile: r_profile,
            ..
        } = r
        {
            if r_role.is_empty() {
                r_role.clone_from(&role);
            }
            if r_context.is_empty() {
                r_context.clone_from(&context);
            }
            if r_profile.is_empty() {
                r_profile.clone_from(&profile);
            }
        }
    }
    rule.templated = true;
    Ok(())
}

/// A creation rule's `path_regex` (its text and compiled form); `None` when it
/// has none or an empty one, which matches every path.
fn path_regex(rule: &Value) -> CompiledRegex {
    match rule.get("path_regex") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Str(s)) if s.is_empty() => Ok(None),
        Some(Value::Str(s)) => Regex::new(s)
            .map(|re| Some((s.to_string(), re)))
            .map_err(|e| format!("invalid path_regex {:?}: {e}", s.as_str())),
        Some(_) => Err("`path_regex` must be a string".into()),
    }
}

/// The one selector a creation rule names, if any.
fn selector(rule: &Value) -> Result<Option<Selector>, String> {
    let mut found = None;
    for name in Selector::FIELDS {
        if let Some(Value::Str(pattern)) = rule.get(name) {
            if pattern.is_empty() {
                continue;
            }
            if found.is_some() {
                return Err(format!(
                    "more than one selector is set; sops allows one of {}",
                    Selector::FIELDS.join(", ")
                ));
            }
            found = Some(Selector::new(name, pattern).map_err(|e| format!("invalid {name}: {e}"))?);
        }
    }
    Ok(found)
}

/// Strings from a field that may be a comma-separated string or a list of strings.
fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |s: &str| {
        for part in s.split(',') {
            let part = part.trim();
            if !part.is_empty() && seen.insert(part.to_string()) {
                out.push(part.to_string());
            }
        }
    };
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Str(s)) => push(s),
        Some(Value::List(items)) => {
            for item in items {
                match item {
                    Value::Str(s) => push(s),
                    _ => return Err(format!("`{field}` entries must be strings")),
                }
            }
        }
        Some(_) => return Err(format!("`{field}` must be a string or a list of strings")),
    }
    Ok(out)
}

/// sops' `ARN+ROLE_ARN` syntax.
pub fn parse_kms_arn(entry: &str, aws_profile: &str) -> Recipient {
    let entry: String = entry.chars().filter(|c| !c.is_whitespace()).collect();
    let (arn, role) = match entry.find("+arn:aws:iam::") {
        Some(i) => (entry[..i].to_string(), entry[i + 1..].to_string()),
        None => (entry, String::new()),
    };
    Recipient::Kms {
        arn,
        role,
        context: Vec::new(),
        aws_profile: aws_profile.to_string(),
    }
}

/// The recipients of a rule (flat fields) or of one `key_groups` entry.
fn group_recipients(g: &Value, in_key_groups: bool) -> Result<Vec<Recipient>, String> {
    let mut out = Vec::new();
    for r in string_list(g.get("age"), "age")? {
        out.push(Recipient::Age(r));
    }
    for fp in string_list(g.get("pgp"), "pgp")? {
        out.push(Recipient::Unsupported {
            kind: "pgp".into(),
            id: fp,
        });
    }
    let profile = g.get("aws_profile").and_then(Value::as_str).unwrap_or("");
    match g.get("kms") {
        Some(Value::List(entries)) if in_key_groups => {
            for e in entries {
                let arn = e
                    .get("arn")
                    .and_then(Value::as_str)
                    .ok_or("each `kms` entry of a key group needs an `arn`")?;
                let mut context: Vec<(String, String)> = match e.get("context") {
                    Some(Value::Map(m)) => m
                        .iter()
                        .map(|(k, v)| match v {
                            Value::Str(s) => Ok((k.clone(), s.clone())),
                            _ => Err("`context` values must be strings".to_string()),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => Vec::new(),
                };
                context.sort();
                out.push(Recipient::Kms {
                    arn: arn.to_string(),
                    role: e
                        .get("role")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    context,
                    aws_profile: e
                        .get("aws_profile")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                });
            }
        }
        other => {
            for arn in string_list(other, "kms")? {
                out.push(parse_kms_arn(&arn, profile));
            }
        }
    }
    for (field, kind) in [
        ("gcp_kms", "gcp_kms"),
        ("azure_keyvault", "azure_kv"),
        ("hc_vault_transit_uri", "hc_vault"),
        ("hc_vault", "hc_vault"),
    ] {
        if let Some(v) = g.get(field) {
            let ids = match v {
                Value::List(items) if items.iter().all(|i| matches!(i, Value::Map(_))) => {
                    items.iter().map(|i| format!("{i:?}")).collect()
                }
                _ => string_list(Some(v), field)?,
            };
            for id in ids {
                out.push(Recipient::Unsupported {
                    kind: kind.into(),
                    id,
                });
            }
        }
    }
    if let Some(Value::List(merged)) = g.get("merge") {
        let mut seen: HashSet<Recipient> = out.iter().cloned().collect();
        for m in merged {
            for r in group_recipients(m, true)? {
                if seen.insert(r.clone()) {
                    out.push(r);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".sops.yaml");
        std::fs::write(&path, text).unwrap();
        let c = Config::load(&path).unwrap().unwrap();
        (dir, c)
    }

    #[test]
    fn first_matching_rule_wins_relative_to_the_config_dir() {
        let (dir, c) = config(
            "creation_rules:\n  - path_regex: ^prod/\n    age: age1prod\n  - age: age1a, age1b\n    encrypted_regex: ^pw$\n",
        );
        let prod = c
            .rule_for(dir.path().join("prod/x.yaml").to_str().unwrap())
            .unwrap();
        assert_eq!(
            prod.key_groups,
            vec![vec![Recipient::Age("age1prod".into())]]
        );
        let other = c
            .rule_for(dir.path().join("dev/prod/x.yaml").to_str().unwrap())
            .unwrap();
        assert_eq!(other.key_groups[0].len(), 2);
        assert_eq!(other.selector.unwrap().field_name(), "encrypted_regex");
    }

    #[test]
    fn key_groups_and_kms_roles() {
        let (dir, c) = config(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [age1a]\n        kms:\n          - arn: arn:aws:kms:eu-west-1:1:key/k\n            context: {b: '2', a: '1'}\n      - age: [age1b]\n  - kms: arn:aws:kms:eu-west-1:1:key/k+arn:aws:iam::2:role/r\n",
        );
        let r = c.rule_for(dir.path().join("x").to_str().unwrap()).unwrap();
        assert_eq!(r.key_groups.len(), 2);
        assert_eq!(r.shamir_threshold, 2);
        assert!(
            matches!(&r.key_groups[0][1], Recipient::Kms { context, .. } if context[0].0 == "a")
        );
        assert_eq!(
            parse_kms_arn("arn:aws:kms:eu-west-1:1:key/k+arn:aws:iam::2:role/r", ""),
            Recipient::Kms {
                arn: "arn:aws:kms:eu-west-1:1:key/k".into(),
                role: "arn:aws:iam::2:role/r".into(),
                context: vec![],
                aws_profile: String::new()
            }
        );
    }

    #[test]
    fn no_match_is_an_error() {
        let (dir, c) = config("creation_rules:\n  - path_regex: ^only/\n    age: age1x\n");
        let e = c
            .rule_for(dir.path().join("else.yaml").to_str().unwrap())
            .unwrap_err();
        assert!(e.message.contains("no creation rule matches"));
    }

    const TEMPLATED: &str = r#"creation_rules:
  - path_regex: ^secrets/(?P<service>[a-z0-9-]+)/(?P<stage>dev|prod)/
    kms: arn:aws:kms:eu-west-1:111122223333:key/central
    git_sops:
      kms:
        - arn: arn:aws:kms:eu-west-1:111122223333:alias/{service}-{stage}
          role: arn:aws:iam::111122223333:role/{service}-{stage}-secrets
      age: ["{service}"]
      context:
        service: "{service}"
        stage: "{stage}"
        path: "{path}"
  - path_regex: ^plain/(?P<team>[a-z]+)/
    kms: arn:aws:kms:eu-west-1:111122223333:key/central
    git_sops:
      role: arn:aws:iam::111122223333:role/{team}
      context: {team: "{team}"}
"#;

    #[test]
    fn templated_rules_render_keys_role_and_context() {
        let (dir, c) = config(TEMPLATED);
        let r = c
            .rule_for(
                dir.path()
                    .join("secrets/payments/prod/db.yaml")
                    .to_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(r.number, 1);
        assert!(r.templated);
        assert_eq!(
            r.key_groups,
            vec![vec![
                Recipient::Age("payments".into()),
                Recipient::Kms {
                    arn: "arn:aws:kms:eu-west-1:111122223333:alias/payments-prod".into(),
                    role: "arn:aws:iam::111122223333:role/payments-prod-secrets".into(),
                    context: vec![
                        ("path".into(), "secrets/payments/prod/db.yaml".into()),
                        ("service".into(), "payments".into()),
                        ("stage".into(), "prod".into()),
                    ],
                    aws_profile: String::new(),
                }
            ]]
        );
        // Without keys of its own, the section completes the plain fields' keys.
        let r = c
            .rule_for(dir.path().join("plain/ops/x.yaml").to_str().unwrap())
            .unwrap();
        assert_eq!(
            r.key_groups,
            vec![vec![Recipient::Kms {
                arn: "arn:aws:kms:eu-west-1:111122223333:key/central".into(),
                role: "arn:aws:iam::111122223333:role/ops".into(),
                context: vec![("team".into(), "ops".into())],
                aws_profile: String::new(),
            }]]
        );
    }

    #[test]
    fn templates_that_cannot_render_are_errors_naming_the_rule() {
        let (dir, c) = config(
            "creation_rules:\n  - path_regex: ^a/\n    age: age1x\n  - path_regex: ^s/(?P<service>[a-z]+)/\n    kms: arn:aws:kms:eu-west-1:1:key/k\n    git_sops:\n      context: {service: '{service}', team: '{team}'}\n",
        );
        let e = c
            .rule_for(dir.path().join("s/pay/x.yaml").to_str().unwrap())
            .unwrap_err();
        assert!(
            matches!(e.template.as_deref(), Some(TemplateError::UnknownPlaceholder { rule: 2, placeholder, .. }) if placeholder == "team"),
            "{e:?}"
        );
        assert!(e.message.contains("creation rule 2"), "{e}");
        assert!(c.check_templates().is_err());
        // Rule 1 is still usable; the error is only for the rule that fails.
        assert!(c.rule_for(dir.path().join("a/x").to_str().unwrap()).is_ok());
        let (dir, c) = config(
            "creation_rules:\n  - path_regex: ^s/(?:(?P<service>[a-z]+)/)?\n    git_sops:\n      kms: 'arn:aws:kms:eu-west-1:1:alias/{service}'\n",
        );
        let e = c
            .rule_for(dir.path().join("s/x.yaml").to_str().unwrap())
            .unwrap_err();
        assert!(
            matches!(
                e.template.as_deref(),
                Some(TemplateError::MissingCapture { rule: 1, .. })
            ),
            "{e:?}"
        );
        let (_dir, c) = config("creation_rules:\n  - git_sops: {kmss: x}\n");
        assert!(c
            .check_templates()
            .unwrap_err()
            .message
            .contains("unknown field `kmss`"));
    }
}
