//! Which paths the guard treats as protected, besides `filter=sops` (which git
//! resolves): the `path_regex` of the `.sops.yaml` creation rules at the top of
//! the snapshot being checked (the index, HEAD or a commit), read from the object
//! store like every other blob. A rule declares protected paths only when it has
//! a `path_regex` that does not match the empty string: a rule without one, or
//! with a catch-all such as `.*`, matches every file in the repository and only
//! says which keys a new file would get. The `.sops.yaml` itself and
//! `.gitattributes` files are never protected. Also here: the file-name
//! heuristic for decrypted SOPS output (`*.dec.*`, `*.decrypted.*`).

use regex::Regex;

use std::path::Path;

use sops_file::config::{Config, ConfigError};
use sops_file::selectors::Selector;

/// The `path_regex` rules of one `.sops.yaml`, and the selector of every
/// creation rule.
#[derive(Clone, Default)]
pub(crate) struct SopsRules {
    /// (1-based rule number, pattern, compiled regex)
    rules: Vec<(usize, String, Regex)>,
    /// Every creation rule in order: (number, path_regex, selector).
    selectors: Vec<(usize, Option<Regex>, Option<Selector>)>,
    /// The parsed config, for what a rule renders for a path (key drift).
    config: Option<Config>,
}

impl SopsRules {
    /// No `.sops.yaml`: nothing is protected by rules.
    pub fn none() -> SopsRules {
        SopsRules::default()
    }

    /// Read the rules from the text of a `.sops.yaml` (sops-file's one parser of
    /// it). The error says what is wrong (without quoting file content beyond the
    /// offending regex).
    pub fn parse(text: &str) -> Result<SopsRules, ConfigError> {
        let config = Config::parse(Path::new(".sops.yaml"), text)?;
        let Some(config) = config else {
            return Ok(SopsRules::none());
        };
        let mut out = SopsRules::none();
        out.config = Some(config.clone());
        for head in config.heads()? {
            let regex = head.path_regex.as_ref().map(|(_, re)| re.clone());
            out.selectors.push((head.number, regex, head.selector));
            match head.path_regex {
                // A catch-all (`.*`, `^`): says which keys new files get, not which are secret.
                Some((pattern, re)) if !re.is_match("") => {
                    out.rules.push((head.number, pattern, re))
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The selector of the creation rule sops would use for `path` (the first
    /// whose `path_regex` matches, or that has none), with the rule's number;
    /// sops' default when that rule names none. `None`: no rule covers it.
    pub(crate) fn selector_for(&self, path: &str) -> Option<(usize, Selector)> {
        self.selectors
            .iter()
            .find(|(_, re, _)| re.as_ref().is_none_or(|re| re.is_match(path)))
            .map(|(n, _, sel)| (*n, sel.clone().unwrap_or_else(Selector::default_suffix)))
    }

    /// The first rule whose `path_regex` matches the repository-relative `path`:
    /// its number and pattern.
    pub fn matching(&self, path: &str) -> Option<(usize, &str)> {
        if never_protected(path) {
            return None;
        }
        self.rules
            .iter()
            .find(|(_, _, re)| re.is_match(path))
            .map(|(n, p, _)| (*n, p.as_str()))
    }

    /// Add another config's rules (the working tree's beside the index's).
    pub fn extend(&mut self, other: SopsRules) {
        self.rules.extend(other.rules);
        self.selectors.extend(other.selectors);
        // The first config (the snapshot's own) decides what keys a file should have.
        if self.config.is_none() {
            self.config = other.config;
        }
    }

    /// The config the rules were read from.
    pub(crate) fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Files that configure protection (or git itself) and so can never be
/// protected themselves; the clean filter never transforms them either.
pub(crate) fn never_protected(path: &str) -> bool {
    crate::drivers::filter::is_configuration(path)
}

/// Does the name say "decrypted"? A dot-separated component after the first one
/// that is `dec` or `decrypted`: `db.dec.yaml`, `app.decrypted.json`, `x.yaml.dec`.
pub(crate) fn looks_decrypted_name(path: &str) -> bool {
    basename(path)
        .split('.')
        .skip(1)
        .any(|part| part.eq_ignore_ascii_case("dec") || part.eq_ignore_ascii_case("decrypted"))
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rules_with_a_specific_path_regex_protect() {
        let rules = SopsRules::parse(
            "creation_rules:\n  - path_regex: ^secrets/\n    age: a\n  - path_regex: .*\n    age: b\n  - age: c\n  - path_regex: \\.enc\\.json$\n",
        )
        .unwrap();
        assert_eq!(rules.matching("secrets/a.yaml"), Some((1, "^secrets/")));
        assert_eq!(rules.matching("x/y.enc.json"), Some((4, "\\.enc\\.json$")));
        assert_eq!(rules.matching("README.md"), None);
        assert_eq!(rules.matching(".sops.yaml"), None);
        assert!(SopsRules::parse("stores: {}\n").unwrap().is_empty());
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(SopsRules::parse("creation_rules: 3\n").is_err());
        let e = SopsRules::parse("creation_rules:\n  - path_regex: '('\n")
            .err()
            .unwrap();
        assert!(e.message.contains("creation rule 1"), "{e}");
    }

    #[test]
    fn decrypted_names() {
        assert!(looks_decrypted_name("a/db.dec.yaml"));
        assert!(looks_decrypted_name("app.decrypted.json"));
        assert!(looks_decrypted_name("x.yaml.dec"));
        assert!(!looks_decrypted_name("dec.yaml"));
        assert!(!looks_decrypted_name("decimal.json"));
        assert!(!looks_decrypted_name("deco/x.yaml"));
    }
}
