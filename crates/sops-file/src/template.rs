//! Templates in a creation rule's `git_sops` section (docs/sops-format.md §6.1):
//! strings such as `alias/{service}-{stage}` whose `{name}` placeholders are
//! filled from the named captures of the rule's `path_regex` matched against a
//! file's path, plus `{path}` (that path) and `{file}` (its last component).
//! `{{` and `}}` stand for literal braces.
//!
//! Rendering is all-or-nothing and typed: a placeholder that is no capture of
//! the rule's `path_regex` nor a built-in, a capture that did not take part in
//! the match (or matched the empty string), and a malformed template are
//! [`TemplateError`]s naming the rule, the field and the placeholder, so a
//! caller never encrypts for a half-rendered key or context.

use regex::Regex;

use crate::formats::Value;

/// The built-in placeholders, besides the rule's named captures.
pub const BUILTINS: [&str; 2] = ["path", "file"];

/// Why a rule's `git_sops` templates cannot be rendered for a path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("creation rule {rule}: `{field}` uses {{{placeholder}}}, but path_regex {regex:?} has no capture group of that name (name one with (?P<{placeholder}>...); built-in placeholders: {{path}}, {{file}})")]
    UnknownPlaceholder {
        rule: usize,
        field: String,
        placeholder: String,
        regex: String,
    },
    #[error("creation rule {rule}: `{field}` uses {{{placeholder}}}, but the capture group {placeholder:?} of path_regex did not capture anything in {path:?}; nothing was written")]
    MissingCapture {
        rule: usize,
        field: String,
        placeholder: String,
        path: String,
    },
    #[error("creation rule {rule}: `{field}`: {problem} in template {template:?} (write {{{{ and }}}} for literal braces)")]
    Syntax {
        rule: usize,
        field: String,
        template: String,
        problem: String,
    },
    #[error("creation rule {rule}: `{field}`: {problem}")]
    Shape {
        rule: usize,
        field: String,
        problem: String,
    },
}

impl TemplateError {
    /// The 1-based number of the creation rule at fault.
    pub fn rule(&self) -> usize {
        match self {
            TemplateError::UnknownPlaceholder { rule, .. }
            | TemplateError::MissingCapture { rule, .. }
            | TemplateError::Syntax { rule, .. }
            | TemplateError::Shape { rule, .. } => *rule,
        }
    }
}

/// One piece of a parsed template.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(String),
    Placeholder(&'a str),
}

/// Split a template into text and placeholders; the problem when it is malformed.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{") {
            text.push('{');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            text.push('}');
            rest = after;
        } else if c == '{' {
            let end = rest
                .find('}')
                .ok_or_else(|| "a `{` without its closing `}`".to_string())?;
            let name = &rest[1..end];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "{{{name}}} is not a placeholder name (letters, digits and `_`)"
                ));
            }
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Placeholder(name));
            rest = &rest[end + 1..];
        } else if c == '}' {
            return Err("a `}` without its opening `{`".to_string());
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// The placeholders a template uses, in order (an error when it is malformed).
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    Ok(pieces(template)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(n) => Some(n.to_string()),
            Piece::Text(_) => None,
        })
        .collect())
}

/// What placeholders render to for one path: the named captures of the rule's
/// `path_regex` (`None` when the group did not take part in the match) and the
/// built-ins.
pub struct Vars {
    rule: usize,
    regex: String,
    path: String,
    values: Vec<(String, Option<String>)>,
}

impl Vars {
    /// The variables of `path` (the string `regex` was matched against) under
    /// rule number `rule`; `regex` is `None` for a rule without `path_regex`.
    pub fn new(rule: usize, regex: Option<&Regex>, path: &str) -> Vars {
        let mut values: Vec<(String, Option<String>)> = Vec::new();
        if let Some(re) = regex {
            let caps = re.captures(path);
            for name in re.capture_names().flatten() {
                let v = caps
                    .as_ref()
                    .and_then(|c| c.name(name))
                    .map(|m| m.as_str().to_string())
                    .filter(|s| !s.is_empty());
                values.push((name.to_string(), v));
            }
        }
        let file = path.rsplit('/').next().unwrap_or(path).to_string();
        for (name, v) in [("path", path.to_string()), ("file", file)] {
            if !values.iter().any(|(n, _)| n == name) {
                values.push((name.to_string(), Some(v)));
            }
        }
        Vars {
            rule,
            regex: regex.map(|r| r.as_str().to_string()).unwrap_or_default(),
            path: path.to_string(),
            values,
        }
    }

    /// The names of the variables (captures first, then built-ins).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|(n, _)| n.as_str())
    }

    /// Render one template string found at `field`.
    pub fn render(&self, field: &str, template: &str) -> Result<String, TemplateError> {
        let parts = pieces(template).map_err(|problem| TemplateError::Syntax {
            rule: self.rule,
            field: field.to_string(),
            template: template.to_string(),
            problem,
        })?;
        let mut out = String::new();
        for p in parts {
            match p {
                Piece::Text(t) => out.push_str(&t),
                Piece::Placeholder(name) => match self.values.iter().find(|(n, _)| n == name) {
                    None => {
                        return Err(TemplateError::UnknownPlaceholder {
                            rule: self.rule,
                            field: field.to_string(),
                            placeholder: name.to_string(),
                            regex: self.regex.clone(),
                        })
                    }
                    Some((_, None)) => {
                        return Err(TemplateError::MissingCapture {
                            rule: self.rule,
                            field: field.to_string(),
                            placeholder: name.to_string(),
                            path: self.path.clone(),
                        })
                    }
                    Some((_, Some(v))) => out.push_str(v),
                },
            }
        }
        Ok(out)
    }

    /// Render every string of a YAML value (map keys stay as written); `field`
    /// names where the value sits, for errors (`git_sops.kms[0].arn`).
    pub fn render_value(&self, field: &str, v: &Value) -> Result<Value, TemplateError> {
        Ok(match v {
            Value::Str(s) => Value::Str(self.render(field, s)?),
            Value::List(items) => Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.render_value(&format!("{field}[{i}]"), item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, item)| {
                        Ok((k.clone(), self.render_value(&format!("{field}.{k}"), item)?))
                    })
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Check, without a path, that every placeholder of every string in `v` is
    /// a capture name of the rule's regex or a built-in, and that the strings
    /// are well-formed templates.
    pub fn check_value(
        rule: usize,
        regex: Option<&Regex>,
        field: &str,
        v: &Value,
    ) -> Result<(), TemplateError> {
        match v {
            Value::Str(s) => {
                let names = placeholders(s).map_err(|problem| TemplateError::Syntax {
                    rule,
                    field: field.to_string(),
                    template: s.clone(),
                    problem,
                })?;
                for name in names {
                    let captured =
                        regex.is_some_and(|re| re.capture_names().flatten().any(|n| n == name));
                    if !captured && !BUILTINS.contains(&name.as_str()) {
                        return Err(TemplateError::UnknownPlaceholder {
                            rule,
                            field: field.to_string(),
                            placeholder: name,
                            regex: regex.map(|r| r.as_str().to_string()).unwrap_or_default(),
                        });
                    }
                }
                Ok(())
            }
            Value::List(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                Vars::check_value(rule, regex, &format!("{field}[{i}]"), item)
            }),
            Value::Map(entries) => entries.iter().try_for_each(|(k, item)| {
                Vars::check_value(rule, regex, &format!("{field}.{k}"), item)
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(path: &str) -> Vars {
        let re = Regex::new(r"^secrets/(?P<service>[^/]+)/(?P<stage>[^/]+)/(?P<opt>x/)?").unwrap();
        Vars::new(3, Some(&re), path)
    }

    #[test]
    fn renders_captures_builtins_and_braces() {
        let v = vars("secrets/payments/prod/db.yaml");
        assert_eq!(
            v.render("f", "alias/{service}-{stage} {path} {file} {{x}}")
                .unwrap(),
            "alias/payments-prod secrets/payments/prod/db.yaml db.yaml {x}"
        );
    }

    #[test]
    fn errors_name_rule_field_and_placeholder() {
        let v = vars("secrets/payments/prod/db.yaml");
        let e = v.render("git_sops.kms[0].arn", "alias/{team}").unwrap_err();
        assert!(
            matches!(&e, TemplateError::UnknownPlaceholder { rule: 3, placeholder, .. } if placeholder == "team")
        );
        assert!(e.to_string().contains("creation rule 3"), "{e}");
        assert!(e.to_string().contains("git_sops.kms[0].arn"), "{e}");
        let e = v.render("c", "{opt}").unwrap_err();
        assert!(matches!(e, TemplateError::MissingCapture { .. }), "{e}");
        for bad in ["{", "}", "{a-b}", "{}"] {
            assert!(
                matches!(v.render("c", bad), Err(TemplateError::Syntax { .. })),
                "{bad}"
            );
        }
        let re = Regex::new("^(?P<a>x)").unwrap();
        assert!(Vars::check_value(1, Some(&re), "f", &Value::Str("{b}".into())).is_err());
        assert!(Vars::check_value(1, Some(&re), "f", &Value::Str("{a}{path}".into())).is_ok());
    }
}
