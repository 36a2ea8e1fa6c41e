//! The plaintext guard (`git sops check`, the pre-commit hook): refuses content
//! that would put plaintext into a protected path, whichever way it got past the
//! clean filter — a clone where `git sops init` never ran, `git update-index` or
//! `hash-object --no-filters`, a filter switched off with `-c`, a CI runner
//! without the driver. It needs no keys and decrypts nothing: it reads blobs from
//! the object store and checks their *form* against each file's own recorded
//! rules ([`inspect`]).
//!
//! A path is protected when git resolves `filter=sops` for it (from the
//! `.gitattributes` of the snapshot being checked: the index, HEAD, or each
//! commit of a history range) or when a `path_regex` of the snapshot's top-level
//! `.sops.yaml` matches it ([`rules`]). Each distinct blob is parsed once, however
//! many paths or commits hold it.

pub mod finding;
pub mod hook;
pub mod inspect;
pub mod rules;
pub mod snapshot;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use finding::{Finding, Kind};
use rules::SopsRules;
use snapshot::{AttrSource, Entry, PathAttributes, Repo};

use super::filetype;
use crate::formats::Format;

pub use snapshot::SnapshotError;

/// What to check.
#[derive(Clone, Debug)]
pub enum Scope {
    /// The index (honouring `GIT_INDEX_FILE`): what the next commit would hold.
    Staged,
    /// Every tracked file at HEAD.
    All,
    /// Every blob of every commit of a range (`git rev-list` arguments).
    History(String),
}

/// The outcome of a check.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Distinct protected blobs examined.
    pub protected_blobs: usize,
    /// Commits examined (`--history`).
    pub commits: usize,
}

impl Report {
    /// Distinct paths with at least one finding, in order of first appearance.
    pub fn paths(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.findings
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| seen.insert(*p))
            .collect()
    }
}

/// Run the check in the repository containing `dir`. `paths` (repository-relative
/// files or folders; empty means everything) restrict which paths are reported.
pub fn check(dir: &Path, scope: &Scope, paths: &[String]) -> Result<Report, SnapshotError> {
    let repo = Repo::open(dir)?;
    let selected = |path: &str| {
        paths.is_empty()
            || paths.iter().any(|p| {
                let p = p.trim_end_matches('/');
                p.is_empty()
                    || path == p
                    || path
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    };
    let mut checker = Checker::new(&repo)?;
    match scope {
        Scope::Staged => {
            let entries = repo.index_entries()?;
            // Protected if the index *or* the working tree says so: a `.gitattributes`
            // or `.sops.yaml` not staged yet must not open a gap.
            let worktree_rules = repo.worktree_file(".sops.yaml");
            checker.snapshot(
                &entries,
                &[AttrSource::Index, AttrSource::WorkTree],
                worktree_rules,
                &selected,
            )?;
        }
        Scope::All => {
            let head = repo.commit_id("HEAD")?;
            let entries = repo.tree_entries(&head)?;
            checker.snapshot(&entries, &[AttrSource::Tree(&head)], None, &selected)?;
        }
        Scope::History(range) => {
            let commits = repo.history(range)?;
            checker.report.commits = commits.len();
            checker.history(&commits, &selected)?;
        }
    }
    Ok(checker.report)
}

struct Checker<'r> {
    repo: &'r Repo,
    blobs: crate::git::cat_file::BlobReader,
    /// Findings per (blob, protected, how the path reads the blob).
    cache: HashMap<(String, bool, String), Vec<Finding>>,
    /// Each distinct `.sops.yaml` text read, by SHA-256: `--history` reads one
    /// per commit, and a pushed range may repeat a large one thousands of times.
    parsed_rules: HashMap<[u8; 32], Result<SopsRules, String>>,
    report: Report,
}

/// Does a `.gitattributes` text assign the git-sops filter to anything?
fn mentions_filter(text: &[u8]) -> bool {
    String::from_utf8_lossy(text).lines().any(|l| {
        !l.trim_start().starts_with('#') && l.split_whitespace().any(|w| w == "filter=sops")
    })
}

/// What about a path changes how its blob is read: the format (from the
/// extension, or the `sops-type` attribute of a protected path) and the name test.
fn reading_of(path: &str, format: &Result<Format, String>) -> String {
    let lower = path.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let format = match format {
        Ok(f) => f.name(),
        Err(_) => "?",
    };
    format!("{ext}|{format}|{}", rules::looks_decrypted_name(path))
}

/// The format of a protected path from its `sops-type` attribute values (the
/// first source that sets one wins); the message when the value is unknown.
fn format_of(path: &str, sops_types: &[&str]) -> Result<Format, String> {
    let value = sops_types
        .iter()
        .copied()
        .find(|v| *v != "unspecified")
        .unwrap_or("unspecified");
    filetype::from_attribute(path, value).map_err(|e| match e.hint {
        Some(hint) => format!("{}; {hint}", e.message),
        None => e.message,
    })
}

impl<'r> Checker<'r> {
    fn new(repo: &'r Repo) -> Result<Checker<'r>, SnapshotError> {
        Ok(Checker {
            repo,
            blobs: repo.blobs()?,
            cache: HashMap::new(),
            parsed_rules: HashMap::new(),
            report: Report::default(),
        })
    }

    fn read(&mut self, spec: &str) -> Result<Option<Vec<u8>>, SnapshotError> {
        self.blobs.read(spec).map_err(|e| SnapshotError::Git {
            args: "cat-file --batch".into(),
            stderr: e.to_string(),
        })
    }

    /// The `.sops.yaml` rules of a snapshot, given the blob holding them; a
    /// `bad-config` finding when they cannot be read.
    fn rules(
        &mut self,
        spec: Option<&str>,
        commit: Option<&str>,
    ) -> Result<SopsRules, SnapshotError> {
        let Some(spec) = spec else {
            return Ok(SopsRules::none());
        };
        let Some(bytes) = self.read(spec)? else {
            return Ok(SopsRules::none());
        };
        Ok(self.parse_rules(&bytes, commit))
    }

    fn parse_rules(&mut self, bytes: &[u8], commit: Option<&str>) -> SopsRules {
        use sha2::{Digest, Sha256};
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let parsed = self
            .parsed_rules
            .entry(digest)
            .or_insert_with(|| {
                std::str::from_utf8(bytes)
                    .map_err(|_| "it is not UTF-8 text".to_string())
                    .and_then(SopsRules::parse)
            })
            .clone();
        match parsed {
            Ok(r) => r,
            Err(why) => {
                let mut f = Finding::new(
                    Kind::BadConfig,
                    format!("cannot read the creation rules, so the paths they protect are not checked: {why}"),
                );
                f.path = ".sops.yaml".into();
                f.commit = commit.map(str::to_string);
                if !self.report.findings.contains(&f) {
                    self.report.findings.push(f);
                }
                SopsRules::none()
            }
        }
    }

    /// Inspect one blob at one path, parsing each (blob, reading) once.
    fn inspect(
        &mut self,
        entry: &Entry,
        format: &Result<Format, String>,
        protected: bool,
    ) -> Result<Vec<Finding>, SnapshotError> {
        let key = (
            entry.oid.clone(),
            protected,
            reading_of(&entry.path, format),
        );
        if let Some(found) = self.cache.get(&key) {
            return Ok(found.clone());
        }
        let found = match (self.read(&entry.oid)?, format) {
            (None, _) => Vec::new(),
            (Some(_), Err(message)) if protected => {
                vec![Finding::new(Kind::UnsupportedFormat, message.clone())]
            }
            (Some(bytes), format) => {
                let format = format.clone().unwrap_or(Format::detect(&entry.path));
                inspect::inspect(&entry.path, format, &bytes, protected)
            }
        };
        if protected {
            self.report.protected_blobs += 1;
        }
        self.cache.insert(key, found.clone());
        Ok(found)
    }

    /// Check the blobs of one snapshot (the index or a tree). A path is protected
    /// when any of `sources` gives it `filter=sops`, or a rule of the snapshot's
    /// `.sops.yaml` (or of `extra_rules`, the text of another one) matches it.
    fn snapshot(
        &mut self,
        entries: &[Entry],
        sources: &[AttrSource<'_>],
        extra_rules: Option<Vec<u8>>,
        selected: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError> {
        let commit = None;
        let config = entries
            .iter()
            .find(|e| e.path == ".sops.yaml")
            .map(|e| e.oid.clone());
        let mut rules = self.rules(config.as_deref(), commit)?;
        if let Some(bytes) = extra_rules {
            let more = self.parse_rules(&bytes, commit);
            rules.extend(more);
        }
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        let mut by_attrs = vec![false; paths.len()];
        let mut types: Vec<Vec<String>> = vec![Vec::new(); paths.len()];
        for source in sources {
            let values = self.repo.attributes(*source, &paths)?;
            for ((flag, ty), value) in by_attrs.iter_mut().zip(&mut types).zip(values) {
                *flag |= value.filter == "sops";
                ty.push(value.sops_type);
            }
        }
        // Only a repository that uses the git-sops filter at all is told to add
        // `.gitattributes` lines: teams that use sops alone protect by .sops.yaml.
        let mut uses_filter = by_attrs.iter().any(|a| *a)
            || self
                .repo
                .worktree_file(".gitattributes")
                .is_some_and(|t| mentions_filter(&t));
        for e in entries
            .iter()
            .filter(|e| rules::never_protected(&e.path) && e.path != ".sops.yaml")
        {
            if uses_filter {
                break;
            }
            uses_filter = self.read(&e.oid)?.is_some_and(|t| mentions_filter(&t));
        }
        for ((entry, by_attr), ty) in entries.iter().zip(by_attrs).zip(types) {
            if !selected(&entry.path) {
                continue;
            }
            let rule = rules.matching(&entry.path);
            if let (Some((n, pattern)), false, true) = (rule, by_attr, uses_filter) {
                self.push(
                    entry,
                    commit,
                    Finding::new(
                        Kind::MissingAttribute,
                        format!(
                            ".sops.yaml creation rule {n} (path_regex {pattern:?}) covers this path, but .gitattributes gives it no filter=sops, so git would commit an edited plaintext copy as it is; add a line such as `{} filter=sops diff=sops merge=sops -text`",
                            entry.path
                        ),
                    ),
                );
            }
            let protected = by_attr || rule.is_some();
            if protected || inspect::worth_reading_unprotected(&entry.path) {
                let ty: Vec<&str> = ty.iter().map(String::as_str).collect();
                let format = format_of(&entry.path, &ty);
                for f in self.inspect(entry, &format, protected)? {
                    self.push(entry, commit, f);
                }
            }
        }
        Ok(())
    }

    /// Check every listed blob of a history range, each (blob, path) once, under
    /// the attributes and `.sops.yaml` of its own commit.
    fn history(
        &mut self,
        commits: &[snapshot::CommitBlobs],
        selected: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError> {
        // Attributes per attribute source, asked once for all the paths it answers for.
        let mut by_source: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in commits {
            let paths = by_source.entry(c.attr_source.as_str()).or_default();
            paths.extend(
                c.entries
                    .iter()
                    .filter(|e| selected(&e.path))
                    .map(|e| e.path.as_str()),
            );
        }
        let mut attrs: HashMap<(&str, &str), PathAttributes> = HashMap::new();
        let mut rules: HashMap<&str, SopsRules> = HashMap::new();
        for (source, paths) in &mut by_source {
            paths.sort_unstable();
            paths.dedup();
            let values = self.repo.attributes(AttrSource::Tree(source), paths)?;
            for (p, v) in paths.iter().zip(values) {
                attrs.insert((source, p), v);
            }
            let spec = format!("{source}:.sops.yaml");
            let r = self.rules(Some(&spec), Some(source))?;
            rules.insert(source, r);
        }
        // A blob at a path is reported once, but checked again when a later
        // commit's rules start protecting it.
        let mut seen: HashSet<(&str, &str, bool)> = HashSet::new();
        for c in commits {
            for entry in c.entries.iter().filter(|e| selected(&e.path)) {
                let source = c.attr_source.as_str();
                let attr = attrs.get(&(source, entry.path.as_str()));
                let by_attr = attr.is_some_and(|a| a.filter == "sops");
                let sops_type = attr.map_or("unspecified", |a| a.sops_type.as_str());
                let by_rule = rules
                    .get(source)
                    .is_some_and(|r| r.matching(&entry.path).is_some());
                let protected = by_attr || by_rule;
                if !seen.insert((entry.oid.as_str(), entry.path.as_str(), protected)) {
                    continue;
                }
                if protected || inspect::worth_reading_unprotected(&entry.path) {
                    let format = format_of(&entry.path, &[sops_type]);
                    for f in self.inspect(entry, &format, protected)? {
                        self.push(entry, Some(&c.commit), f);
                    }
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, entry: &Entry, commit: Option<&str>, mut f: Finding) {
        f.path = entry.path.clone();
        f.commit = commit.map(str::to_string);
        self.report.findings.push(f);
    }
}
