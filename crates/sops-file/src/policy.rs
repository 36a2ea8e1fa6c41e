//! `git sops policy`: AWS KMS key-policy statements (and IAM policies for the
//! workload roles) generated from `.sops.yaml`: the templated creation rules
//! say which encryption context each file carries, and the top-level
//! `git_sops.policy` section says which principal may read (`kms:Decrypt`) or
//! write (`kms:Decrypt` + `kms:Encrypt`) under which context values. Every grant
//! is conditioned on `kms:EncryptionContext:KEY` with `StringEquals`, so a role
//! opens exactly the files whose stored context matches. [`check`] compares a
//! key policy exported from AWS with what the config says and lists missing and
//! broader grants. README "One central KMS key with least privilege" and
//! docs/sops-format.md §6.2 describe the section.
//!
//! This is pure computation over the config: no AWS call is made here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value as Json};

use crate::config::Config;
use crate::formats::Value;
use crate::template::placeholders;

/// The top-level section of `.sops.yaml` this module reads (sops ignores it).
pub const SECTION: &str = "git_sops.policy";

/// Actions a reader and a writer need: sops and git-sops wrap a data key with
/// `Encrypt` and unwrap it with `Decrypt` (never `GenerateDataKey`).
const READ: [&str; 1] = ["kms:Decrypt"];
const WRITE: [&str; 2] = ["kms:Decrypt", "kms:Encrypt"];

/// What AWS documents as the key administrators' actions: manage the key, never
/// use it (no Encrypt/Decrypt/ReEncrypt/GenerateDataKey).
const ADMIN_ACTIONS: [&str; 14] = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
];

/// The data-plane actions whose grants `--check` judges.
const DATA_ACTIONS: [&str; 6] = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
];

/// A problem with the `git_sops.policy` section or the rules it refers to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: there is no `{SECTION}` section; add one naming which principal reads or writes which context values (see the README, \"One central KMS key\")")]
    NoSection { path: String },
    #[error("{path}: {SECTION}.{field}: {problem}")]
    Invalid {
        path: String,
        field: String,
        problem: String,
    },
    #[error("{0}")]
    Config(String),
}

/// A templated rule's number, KMS ARN templates and context templates.
type RuleKeys = (usize, Vec<String>, BTreeMap<String, String>);

/// One principal of the mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The statement's `Sid` (letters and digits).
    pub name: String,
    pub arn: String,
    pub write: bool,
    /// Context key → the values it may carry (one or more).
    pub context: BTreeMap<String, Vec<String>>,
}

impl Principal {
    pub fn actions(&self) -> Vec<&'static str> {
        if self.write {
            WRITE.to_vec()
        } else {
            READ.to_vec()
        }
    }

    /// The `Condition` of its statements.
    fn condition(&self) -> Json {
        let mut eq = Map::new();
        for (k, vs) in &self.context {
            let v = if vs.len() == 1 {
                json!(vs[0])
            } else {
                json!(vs)
            };
            eq.insert(format!("kms:EncryptionContext:{k}"), v);
        }
        json!({ "StringEquals": eq })
    }
}

/// The mapping and what the templated rules render, read from a config.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub admins: Vec<String>,
    pub principals: Vec<Principal>,
    /// Per templated rule: (number, its KMS ARN templates, its context templates).
    rules: Vec<RuleKeys>,
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Str(s) => Some(vec![s.clone()]),
        Value::List(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

impl Mapping {
    /// Read `git_sops.policy` and the templated rules of `config`.
    pub fn from_config(config: &Config) -> Result<Mapping, PolicyError> {
        let path = config.path.display().to_string();
        let invalid = |field: String, problem: String| PolicyError::Invalid {
            path: path.clone(),
            field,
            problem,
        };
        let section = config
            .section(crate::config::GIT_SOPS)
            .and_then(|v| v.get("policy"))
            .filter(|v| !matches!(v, Value::Null))
            .ok_or_else(|| PolicyError::NoSection { path: path.clone() })?;
        if let Value::Map(entries) = section {
            if let Some((k, _)) = entries
                .iter()
                .find(|(k, _)| k != "admins" && k != "principals")
            {
                return Err(invalid(
                    k.clone(),
                    "unknown field; the section has `admins` and `principals`".into(),
                ));
            }
        } else {
            return Err(invalid(
                String::new(),
                "must be a mapping with `admins` and `principals`".into(),
            ));
        }
        let rules = templated_rules(config)?;
        let context_keys: BTreeSet<&String> = rules.iter().flat_map(|(_, _, c)| c.keys()).collect();
        let admins = match section.get("admins") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => strings(v).ok_or_else(|| {
                invalid("admins".into(), "must be a list of principal ARNs".into())
            })?,
        };
        let Some(Value::List(items)) = section.get("principals") else {
            return Err(invalid(
                "principals".into(),
                "must be a list of {name, arn, access, context}".into(),
            ));
        };
        let mut principals: Vec<Principal> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = |f: &str| format!("principals[{i}].{f}");
            let text = |f: &str| item.get(f).and_then(Value::as_str).map(str::to_string);
            let name = text("name").ok_or_else(|| {
                invalid(
                    field("name"),
                    "missing (it becomes the statement's Sid)".into(),
                )
            })?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid(
                    field("name"),
                    format!("{name:?}: a Sid may only hold letters and digits"),
                ));
            }
            let arn = text("arn")
                .ok_or_else(|| invalid(field("arn"), "missing: the role or user ARN".into()))?;
            if arn == "*" || !arn.starts_with("arn:") {
                return Err(invalid(
                    field("arn"),
                    format!("{arn:?} is not a principal ARN (a wildcard would grant everyone)"),
                ));
            }
            let write = match text("access").as_deref() {
                Some("read") => false,
                Some("write") => true,
                other => return Err(invalid(field("access"), format!("{other:?}: must be `read` (kms:Decrypt) or `write` (kms:Decrypt and kms:Encrypt)"))),
            };
            let Some(Value::Map(ctx)) = item.get("context") else {
                return Err(invalid(field("context"), "missing: a grant without a context condition would open every file the key protects".into()));
            };
            let mut context = BTreeMap::new();
            for (k, v) in ctx {
                let vs = strings(v).filter(|vs| !vs.is_empty()).ok_or_else(|| {
                    invalid(
                        field(&format!("context.{k}")),
                        "must be a string or a list of strings".into(),
                    )
                })?;
                if !context_keys.contains(k) {
                    return Err(invalid(
                        field(&format!("context.{k}")),
                        format!("no creation rule's git_sops context sets `{k}`, so this condition would match no file (the rules set: {})",
                            context_keys.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
                    ));
                }
                context.insert(k.clone(), vs);
            }
            if context.is_empty() {
                return Err(invalid(field("context"), "is empty: a grant without a context condition would open every file the key protects".into()));
            }
            if principals.iter().any(|p| p.name == name) {
                return Err(invalid(
                    field("name"),
                    format!("{name:?} is used twice; each Sid must be unique"),
                ));
            }
            if principals.iter().any(|p| p.arn == arn) {
                return Err(invalid(field("arn"), format!("{arn} is listed twice; give each principal one entry (lists of values are allowed in `context`)")));
            }
            principals.push(Principal {
                name,
                arn,
                write,
                context,
            });
        }
        Ok(Mapping {
            admins,
            principals,
            rules,
        })
    }

    /// The KMS key ARNs (or alias ARNs) a principal's files are encrypted
    /// under: each templated rule whose context sets every key the principal's
    /// condition names, its ARN templates rendered with the captures the
    /// condition pins (`service: "{service}"` with `service: payments` gives
    /// `{service}` = payments; several values give one ARN each). An ARN whose
    /// placeholders the condition does not pin is left out.
    pub fn keys_of(&self, p: &Principal) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (_, arns, context) in &self.rules {
            if !p.context.keys().all(|k| context.contains_key(k)) {
                continue;
            }
            // capture name -> values, from context entries that are exactly "{capture}".
            let mut captures: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (k, t) in context {
                if let (Some(name), Some(vs)) = (single_placeholder(t), p.context.get(k)) {
                    captures.insert(name, vs.clone());
                }
            }
            for arn in arns {
                let Ok(names) = placeholders(arn) else {
                    continue;
                };
                let mut rendered = vec![arn.clone()];
                let mut complete = true;
                for name in names.iter().collect::<BTreeSet<_>>() {
                    let Some(vs) = captures.get(name) else {
                        complete = false;
                        break;
                    };
                    rendered = rendered
                        .iter()
                        .flat_map(|r| vs.iter().map(move |v| r.replace(&format!("{{{name}}}"), v)))
                        .collect();
                }
                if complete {
                    out.extend(
                        rendered
                            .into_iter()
                            .map(|r| r.replace("{{", "{").replace("}}", "}")),
                    );
                }
            }
        }
        out
    }

    /// The principals whose files use `key` (all of them for `None`).
    pub fn principals_for(&self, key: Option<&str>) -> Vec<&Principal> {
        self.principals
            .iter()
            .filter(|p| key.is_none_or(|k| self.keys_of(p).iter().any(|a| same_key(a, k))))
            .collect()
    }

    /// The key policy: the administrators' statement (when `admins` is set)
    /// and one statement per principal.
    pub fn key_policy(&self, key: Option<&str>) -> Json {
        let mut statements = Vec::new();
        if !self.admins.is_empty() {
            statements.push(json!({
                "Sid": "KeyAdministrators",
                "Effect": "Allow",
                "Principal": { "AWS": one_or_many(&self.admins) },
                "Action": ADMIN_ACTIONS,
                "Resource": "*",
            }));
        }
        for p in self.principals_for(key) {
            statements.push(json!({
                "Sid": p.name,
                "Effect": "Allow",
                "Principal": { "AWS": p.arn },
                "Action": one_or_many(&p.actions()),
                "Resource": "*",
                "Condition": p.condition(),
            }));
        }
        json!({ "Version": "2012-10-17", "Id": "git-sops", "Statement": statements })
    }

    /// An IAM policy document per principal, by name: the same actions and
    /// conditions on the keys its files use. Key ARNs are the `Resource`; an
    /// alias ARN cannot be (IAM matches the key, not the alias), so those are
    /// granted on the account's keys under `kms:ResourceAliases`.
    pub fn iam_policies(&self, key: Option<&str>) -> Json {
        let mut out = Map::new();
        for p in self.principals_for(key) {
            let mut keys = Vec::new();
            let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for arn in self.keys_of(p) {
                match arn.split_once(":alias/") {
                    Some((prefix, alias)) => aliases
                        .entry(format!("{prefix}:key/*"))
                        .or_default()
                        .push(format!("alias/{alias}")),
                    None => keys.push(arn),
                }
            }
            let mut statements = Vec::new();
            if !keys.is_empty() {
                statements.push(json!({
                    "Sid": format!("{}Keys", p.name),
                    "Effect": "Allow",
                    "Action": one_or_many(&p.actions()),
                    "Resource": one_or_many(&keys),
                    "Condition": p.condition(),
                }));
            }
            for (i, (resource, names)) in aliases.iter().enumerate() {
                let mut condition = p.condition();
                condition["ForAnyValue:StringEquals"] =
                    json!({ "kms:ResourceAliases": one_or_many(names) });
                statements.push(json!({
                    "Sid": format!("{}Aliases{}", p.name, if i == 0 { String::new() } else { i.to_string() }),
                    "Effect": "Allow",
                    "Action": one_or_many(&p.actions()),
                    "Resource": resource,
                    "Condition": condition,
                }));
            }
            if statements.is_empty() {
                // No key could be attributed: the context condition still limits it.
                statements.push(json!({
                    "Sid": format!("{}AnyKey", p.name),
                    "Effect": "Allow",
                    "Action": one_or_many(&p.actions()),
                    "Resource": "*",
                    "Condition": p.condition(),
                }));
            }
            out.insert(
                p.name.clone(),
                json!({ "Version": "2012-10-17", "Statement": statements }),
            );
        }
        Json::Object(out)
    }
}

/// `Some(name)` when a template is exactly one placeholder, `{name}`.
fn single_placeholder(t: &str) -> Option<String> {
    let names = placeholders(t).ok()?;
    (names.len() == 1 && t == format!("{{{}}}", names[0])).then(|| names[0].clone())
}

/// Whether two key references name the same key: equal, or one is the other's
/// `alias/NAME` / `key/ID` tail.
fn same_key(a: &str, b: &str) -> bool {
    let tail = |s: &str| {
        s.rsplit_once(':')
            .map(|(_, t)| t.to_string())
            .unwrap_or_else(|| s.to_string())
    };
    a == b || tail(a) == tail(b) || a.ends_with(&format!(":{b}")) || b.ends_with(&format!(":{a}"))
}

fn one_or_many<S: AsRef<str>>(items: &[S]) -> Json {
    if items.len() == 1 {
        json!(items[0].as_ref())
    } else {
        json!(items.iter().map(|s| s.as_ref()).collect::<Vec<_>>())
    }
}

/// Each templated rule's KMS ARN templates and context templates.
fn templated_rules(config: &Config) -> Result<Vec<RuleKeys>, PolicyError> {
    let rules = config
        .templated_rules()
        .map_err(|e| PolicyError::Config(e.to_string()))?;
    let mut out = Vec::new();
    for (number, _, section, plain) in rules {
        let mut arns = Vec::new();
        let mut contexts: Vec<BTreeMap<String, String>> = Vec::new();
        let section_context: BTreeMap<String, String> = match section.get("context") {
            Some(Value::Map(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
            _ => BTreeMap::new(),
        };
        let mut kms_entries: Vec<Value> = Vec::new();
        let collect = |g: &Value, into: &mut Vec<Value>| match g.get("kms") {
            Some(Value::List(items)) => into.extend(items.iter().cloned()),
            Some(v @ Value::Str(_)) => into.push(v.clone()),
            _ => {}
        };
        let groups_of = |v: &Value| match v.get("key_groups") {
            Some(Value::List(groups)) if !groups.is_empty() => Some(groups.clone()),
            _ => None,
        };
        if let Some(groups) = groups_of(&section) {
            groups.iter().for_each(|g| collect(g, &mut kms_entries));
        } else if section.get("kms").is_some() || section.get("age").is_some() {
            collect(&section, &mut kms_entries);
        } else if let Some(groups) = groups_of(&plain) {
            groups.iter().for_each(|g| collect(g, &mut kms_entries));
        } else {
            collect(&plain, &mut kms_entries);
        }
        for e in &kms_entries {
            match e {
                Value::Str(s) => {
                    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        arns.push(
                            part.split("+arn:aws:iam::")
                                .next()
                                .unwrap_or(part)
                                .to_string(),
                        );
                        contexts.push(section_context.clone());
                    }
                }
                Value::Map(_) => {
                    if let Some(arn) = e.get("arn").and_then(Value::as_str) {
                        arns.push(arn.to_string());
                    }
                    let own: BTreeMap<String, String> = match e.get("context") {
                        Some(Value::Map(m)) if !m.is_empty() => m
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect(),
                        _ => section_context.clone(),
                    };
                    contexts.push(own);
                }
                _ => {}
            }
        }
        let mut context = BTreeMap::new();
        for c in contexts {
            context.extend(c);
        }
        out.push((number, arns, context));
    }
    Ok(out)
}

/// One difference between an exported key policy and the generated one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// A grant the config says a principal needs and no statement gives.
    Missing {
        principal: String,
        action: String,
        condition: String,
    },
    /// A statement that grants more than the config says.
    Broader { sid: String, problem: String },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing {
                principal,
                action,
                condition,
            } => {
                write!(f, "missing: {principal} needs {action} under {condition}")
            }
            Difference::Broader { sid, problem } => {
                write!(f, "broader: statement {sid}: {problem}")
            }
        }
    }
}

/// A key policy as exported: the policy document itself, or the output of
/// `aws kms get-key-policy` (`{"Policy": "<the document as a string>"}`).
pub fn parse_exported(text: &str) -> Result<Json, String> {
    let v: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("Policy") {
        Some(Json::String(s)) => {
            serde_json::from_str(s).map_err(|e| format!("its \"Policy\" string is not JSON: {e}"))
        }
        _ => Ok(v),
    }
}

fn list(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::String(s)) => vec![s.clone()],
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM's `*`/`?` wildcard match, case-insensitive (action names are).
fn glob(pattern: &str, s: &str) -> bool {
    // IAM's `*` and `?`, case-insensitively; the classic greedy match that
    // backtracks only to the last `*` (O(len(p) * len(s)), where plain
    // recursion is exponential in the number of stars).
    let (p, s): (Vec<char>, Vec<char>) = (
        pattern.to_ascii_lowercase().chars().collect(),
        s.to_ascii_lowercase().chars().collect(),
    );
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Compare an exported key policy with the mapping (for `key`, or the whole
/// mapping): grants a principal needs that no Allow statement gives, and Allow
/// statements that give data-plane actions to a wildcard or unknown principal,
/// without a context condition, with other values than the mapping's, or with
/// actions the principal should not have. Deny statements are not judged.
pub fn check(mapping: &Mapping, key: Option<&str>, exported: &Json) -> Vec<Difference> {
    let mut out = Vec::new();
    let statements: Vec<Json> = match exported.get("Statement") {
        Some(Json::Array(a)) => a.clone(),
        Some(s @ Json::Object(_)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let expected = mapping.principals_for(key);
    let allows: Vec<(String, Vec<String>, Vec<String>, &Json)> = statements
        .iter()
        .enumerate()
        .filter(|(_, s)| s.get("Effect").and_then(Json::as_str) == Some("Allow"))
        .map(|(i, s)| {
            let sid = s
                .get("Sid")
                .and_then(Json::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", i + 1));
            let mut principals = match s.get("Principal") {
                Some(Json::String(p)) => vec![p.clone()],
                // Service, Federated, CanonicalUser principals are never the
                // mapping's roles: named by their kind, they are reported.
                Some(Json::Object(m)) => m
                    .iter()
                    .flat_map(|(kind, v)| {
                        list(Some(v)).into_iter().map(move |p| {
                            if kind == "AWS" || p == "*" {
                                p
                            } else {
                                format!("{kind}:{p}")
                            }
                        })
                    })
                    .collect(),
                _ => Vec::new(),
            };
            // `NotPrincipal` in an Allow grants every principal but those.
            if s.get("NotPrincipal").is_some() {
                principals.push("*".to_string());
            }
            // `NotAction` in an Allow grants every action but those.
            let actions = match s.get("NotAction") {
                Some(not) => {
                    let not = list(Some(not));
                    DATA_ACTIONS
                        .iter()
                        .filter(|a| !not.iter().any(|p| glob(p, a)))
                        .map(|a| a.to_string())
                        .chain(list(s.get("Action")))
                        .collect()
                }
                None => list(s.get("Action")),
            };
            (sid, principals, actions, s)
        })
        .collect();
    let context_values = |s: &Json| -> BTreeMap<String, Vec<String>> {
        let mut m = BTreeMap::new();
        if let Some(Json::Object(eq)) = s.get("Condition").and_then(|c| c.get("StringEquals")) {
            for (k, v) in eq {
                if let Some(key) = k.strip_prefix("kms:EncryptionContext:") {
                    m.insert(key.to_string(), list(Some(v)));
                }
            }
        }
        m
    };
    for (sid, principals, actions, s) in &allows {
        let data: Vec<&str> = DATA_ACTIONS
            .iter()
            .copied()
            .filter(|a| actions.iter().any(|p| glob(p, a)))
            .collect();
        if data.is_empty() {
            continue;
        }
        let conds = context_values(s);
        for who in principals {
            if who == "*" {
                out.push(Difference::Broader {
                    sid: sid.clone(),
                    problem: format!("grants {} to every principal (\"*\")", data.join(", ")),
                });
                continue;
            }
            let Some(p) = expected.iter().find(|p| &p.arn == who) else {
                out.push(Difference::Broader { sid: sid.clone(), problem: format!("grants {} to {who}, which {SECTION} does not name{}", data.join(", "),
                    if who.ends_with(":root") { " (an account root statement lets that account's IAM policies grant any use of the key)" } else { "" }) });
                continue;
            };
            let allowed = p.actions();
            let extra: Vec<&str> = data
                .iter()
                .copied()
                .filter(|a| !allowed.contains(a))
                .collect();
            if !extra.is_empty() {
                out.push(Difference::Broader {
                    sid: sid.clone(),
                    problem: format!(
                        "grants {who} {} beyond its `{}` access",
                        extra.join(", "),
                        if p.write { "write" } else { "read" }
                    ),
                });
            }
            if conds.is_empty() {
                out.push(Difference::Broader { sid: sid.clone(), problem: format!("grants {who} {} with no kms:EncryptionContext condition: every file under the key", data.join(", ")) });
                continue;
            }
            for (k, want) in &p.context {
                match conds.get(k) {
                    None => out.push(Difference::Broader { sid: sid.clone(), problem: format!("grants {who} without a condition on kms:EncryptionContext:{k} (the mapping allows {})", want.join(", ")) }),
                    Some(have) => {
                        let wider: Vec<&String> = have.iter().filter(|v| !want.contains(v)).collect();
                        if !wider.is_empty() {
                            out.push(Difference::Broader { sid: sid.clone(), problem: format!("grants {who} kms:EncryptionContext:{k} = {} beyond the mapping's {}", wider.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "), want.join(", ")) });
                        }
                    }
                }
            }
        }
    }
    for p in expected {
        let condition = p
            .context
            .iter()
            .map(|(k, v)| format!("{k}={}", v.join("|")))
            .collect::<Vec<_>>()
            .join(", ");
        for action in p.actions() {
            let given = allows.iter().any(|(_, principals, actions, s)| {
                principals.iter().any(|w| w == &p.arn)
                    && actions.iter().any(|a| glob(a, action))
                    && {
                        let conds = context_values(s);
                        // Every value the mapping allows is allowed by the statement
                        // (a key it does not condition on does not narrow it).
                        p.context.iter().all(|(k, want)| {
                            conds
                                .get(k)
                                .is_none_or(|have| want.iter().all(|v| have.contains(v)))
                        }) && conds.keys().all(|k| p.context.contains_key(k))
                    }
            });
            if !given {
                out.push(Difference::Missing {
                    principal: p.arn.clone(),
                    action: action.to_string(),
                    condition: condition.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"creation_rules:
  - path_regex: ^secrets/(?P<service>[a-z]+)/(?P<stage>dev|prod)/
    kms: arn:aws:kms:eu-west-1:111122223333:key/central
    git_sops:
      kms:
        - arn: arn:aws:kms:eu-west-1:111122223333:alias/{service}-{stage}
      context: {service: "{service}", stage: "{stage}", path: "{path}"}
git_sops:
  policy:
    admins: [arn:aws:iam::111122223333:role/security-admin]
    principals:
      - name: PaymentsProd
        arn: arn:aws:iam::444455556666:role/payments-prod
        access: read
        context: {service: payments, stage: prod}
      - name: Deploy
        arn: arn:aws:iam::111122223333:role/deploy
        access: write
        context: {service: [payments, billing], stage: dev}
"#;

    fn mapping(text: &str) -> Result<Mapping, PolicyError> {
        let c = Config::parse(std::path::Path::new("/r/.sops.yaml"), text)
            .unwrap()
            .unwrap();
        Mapping::from_config(&c)
    }

    #[test]
    fn one_statement_per_principal_with_context_conditions() {
        let m = mapping(CONFIG).unwrap();
        let p = m.key_policy(None);
        let st = p["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 3);
        assert_eq!(st[1]["Sid"], "PaymentsProd");
        assert_eq!(st[1]["Action"], "kms:Decrypt");
        assert_eq!(
            st[1]["Condition"]["StringEquals"]["kms:EncryptionContext:stage"],
            "prod"
        );
        assert_eq!(st[2]["Action"], json!(["kms:Decrypt", "kms:Encrypt"]));
        assert_eq!(
            m.keys_of(&m.principals[1]).into_iter().collect::<Vec<_>>(),
            vec![
                "arn:aws:kms:eu-west-1:111122223333:alias/billing-dev".to_string(),
                "arn:aws:kms:eu-west-1:111122223333:alias/payments-dev".to_string()
            ]
        );
        // Per-key variant: only the principals whose files use that key.
        let one = m.key_policy(Some("alias/payments-prod"));
        assert_eq!(one["Statement"].as_array().unwrap().len(), 2);
        let iam = m.iam_policies(None);
        assert_eq!(
            iam["PaymentsProd"]["Statement"][0]["Resource"],
            "arn:aws:kms:eu-west-1:111122223333:key/*"
        );
        // Its own output passes the check; a broader policy does not.
        assert_eq!(check(&m, None, &p), vec![]);
        let mut broad = p.clone();
        broad["Statement"][1]["Condition"]["StringEquals"]["kms:EncryptionContext:stage"] =
            json!(["prod", "dev"]);
        broad["Statement"][2]["Action"] = json!("kms:*");
        broad["Statement"].as_array_mut().unwrap().push(json!({"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}));
        let d: Vec<String> = check(&m, None, &broad)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert!(
            d.iter()
                .any(|l| l.contains("PaymentsProd") && l.contains("dev")),
            "{d:?}"
        );
        assert!(
            d.iter()
                .any(|l| l.contains("Deploy") && l.contains("kms:ReEncryptFrom")),
            "{d:?}"
        );
        assert!(d.iter().any(|l| l.contains("every principal")), "{d:?}");
        let mut missing = p.clone();
        missing["Statement"].as_array_mut().unwrap().remove(1);
        let d: Vec<String> = check(&m, None, &missing)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(d, vec!["missing: arn:aws:iam::444455556666:role/payments-prod needs kms:Decrypt under service=payments, stage=prod"]);
    }

    #[test]
    fn grants_by_other_principal_kinds_not_principal_and_not_action_are_broader() {
        let m = mapping(CONFIG).unwrap();
        let p = m.key_policy(None);
        let with = |extra: Json| {
            let mut q = p.clone();
            q["Statement"].as_array_mut().unwrap().push(extra);
            check(&m, None, &q)
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
        };
        let d = with(
            json!({"Sid": "Svc", "Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "kms:Decrypt", "Resource": "*"}),
        );
        assert!(
            d.iter().any(|l| l.contains("Service:logs.amazonaws.com")),
            "{d:?}"
        );
        let d = with(
            json!({"Sid": "NP", "Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::9:role/x"}, "Action": "kms:Decrypt", "Resource": "*"}),
        );
        assert!(d.iter().any(|l| l.contains("every principal")), "{d:?}");
        let d = with(
            json!({"Sid": "NA", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::9:role/x"}, "NotAction": "kms:PutKeyPolicy", "Resource": "*"}),
        );
        assert!(
            d.iter()
                .any(|l| l.contains("NA") && l.contains("kms:Decrypt")),
            "{d:?}"
        );
        // A NotAction that excludes every data action grants none of them.
        let d = with(
            json!({"Sid": "NB", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::9:role/x"}, "NotAction": "kms:*", "Resource": "*"}),
        );
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn action_wildcards_match_in_linear_time() {
        assert!(glob("kms:*", "kms:Decrypt"));
        assert!(glob("KMS:DE*PT", "kms:Decrypt"));
        assert!(glob("kms:?ecrypt", "kms:Decrypt"));
        assert!(glob("*", "kms:Decrypt"));
        assert!(!glob("**a*", "kms:Decrypt"));
        assert!(!glob("kms:Decrypt?", "kms:Decrypt"));
        assert!(glob("*Data*Key*", "kms:GenerateDataKeyWithoutPlaintext"));
        let start = std::time::Instant::now();
        let hostile = format!("{}z", "*".repeat(5000));
        assert!(!glob(&hostile, "kms:GenerateDataKeyWithoutPlaintext"));
        let hostile = "*a".repeat(2000);
        assert!(!glob(&hostile, "kms:GenerateDataKeyWithoutPlaintext"));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn bad_mappings_are_errors() {
        let base = CONFIG.split("  principals:").next().unwrap();
        for (tail, needle) in [
            ("  principals:\n    - {name: A, arn: '*', access: read, context: {stage: prod}}\n", "wildcard"),
            ("  principals:\n    - {name: A, arn: 'arn:aws:iam::1:role/a', access: read}\n", "context"),
            ("  principals:\n    - {name: A, arn: 'arn:aws:iam::1:role/a', access: read, context: {team: x}}\n", "no creation rule"),
            ("  principals:\n    - {name: A, arn: 'arn:aws:iam::1:role/a', access: all, context: {stage: x}}\n", "access"),
            ("  principals:\n    - {name: A, arn: 'arn:aws:iam::1:role/a', access: read, context: {stage: x}}\n    - {name: B, arn: 'arn:aws:iam::1:role/a', access: read, context: {stage: y}}\n", "twice"),
        ] {
            let e = mapping(&format!("{base}{tail}")).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
        assert!(matches!(
            mapping("creation_rules: []\n"),
            Err(PolicyError::NoSection { .. })
        ));
    }
}
