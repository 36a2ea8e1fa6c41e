//! The plaintext guard (`git sops check`, the commit hooks, the server hook):
//! refuses content that would put plaintext into a protected path, whichever
//! way it got past the clean filter — a clone where `git sops init` never ran,
//! `git update-index` or `hash-object --no-filters`, a filter switched off with
//! `-c`, a CI runner without the driver, `git am` of a decrypted patch. It needs
//! no keys and decrypts nothing: it reads blobs from the object store and checks
//! their *form* against each file's own recorded rules ([`inspect`]). Where the
//! commit hooks have a key, they also authenticate what changed ([`verify`]).
//!
//! A path is protected when git resolves `filter=sops` for it (from the
//! `.gitattributes` of the snapshot being checked: the index, HEAD, or each
//! commit of a history range) or when a `path_regex` of the snapshot's top-level
//! `.sops.yaml` matches it ([`rules`]). The guard also remembers ([`memory`]):
//! a path that was protected, or held a SOPS file, in a parent stays protected
//! unless the child marks it `sops-unprotected`, and a plaintext copy of a SOPS
//! file the child deletes is found by its keys. Each distinct blob is parsed
//! once, however many paths or commits hold it.

pub mod finding;
pub mod hook;
pub mod inspect;
pub mod memory;
pub mod receive;
pub mod review;
pub mod rules;
pub mod snapshot;
pub mod verify;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::git::AttrSource;
use finding::{Finding, Kind};
use rules::SopsRules;
use snapshot::{Entry, ParentDiff, PathAttributes, Repo};

use crate::drivers::filter::sops_type;
use sops_file::config::ConfigError;
use sops_file::formats::Format;

pub(crate) use snapshot::SnapshotError;

/// How many deleted SOPS files (and bytes of them) a history scan remembers
/// for later commits.
const MAX_CARRIED: usize = 10_000;
const MAX_CARRIED_BYTES: usize = 64 << 20;

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
    /// What needs attention but is no reason to refuse anything (`key-drift`).
    pub warnings: Vec<Finding>,
    /// The findings already listed (the same one can come from several parents).
    seen: HashSet<Finding>,
    /// Distinct protected blobs examined.
    pub(crate) protected_blobs: usize,
    /// Commits examined (`--history`).
    pub commits: usize,
}

impl Report {
    /// List a warning (`key-drift`), once: shown with the findings, but it
    /// does not refuse a commit or make `check` fail.
    pub fn add_warning(&mut self, f: Finding) {
        if self.seen.insert(f.clone()) {
            self.warnings.push(f);
        }
    }

    /// List a finding, once.
    pub fn add(&mut self, f: Finding) {
        if self.seen.insert(f.clone()) {
            self.findings.push(f);
        }
    }

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
            // The commit being made has HEAD as its parent, and MERGE_HEAD too
            // when it concludes a merge.
            let mut parents = Vec::new();
            for rev in ["HEAD", "MERGE_HEAD"] {
                if let Some(id) = repo.try_commit_id(rev) {
                    parents.push(repo.index_changes(&id)?);
                }
            }
            // On an unborn branch (`git switch --orphan`) the repository's
            // latest branch stands in for the parent it does not have.
            if parents.is_empty() {
                if let Some(id) = repo.reference_commit() {
                    parents.push(repo.index_changes(&id)?);
                }
            }
            // Protected if the index *or* the working tree says so: a `.gitattributes`
            // or `.sops.yaml` not staged yet must not open a gap. Only the index
            // (what is committed, and reviewed) can mark a path unprotected.
            let mut rules = checker.rules_of(&entries, None)?;
            if let Some(bytes) = repo.worktree_file(".sops.yaml") {
                let more = checker.parse_rules(&bytes, None);
                rules.extend(more);
            }
            let child = Child {
                commit: None,
                entries: &entries,
                sources: &[AttrSource::Index, AttrSource::WorkTree],
                rules,
                drift: Some(DriftScope::Changed),
            };
            checker.snapshot(&child, &parents, &selected)?;
        }
        Scope::All => {
            let head = repo.commit_id("HEAD")?;
            let entries = repo.tree_entries(&head)?;
            let parents = repo.commit_changes(&head)?;
            let rules = checker.rules_of(&entries, None)?;
            let child = Child {
                commit: None,
                entries: &entries,
                sources: &[AttrSource::Tree(&head)],
                rules,
                drift: Some(DriftScope::Every),
            };
            checker.snapshot(&child, &parents, &selected)?;
        }
        Scope::History(range) => {
            let commits = repo.history(range)?;
            checker.report.commits = commits.len();
            checker.history(&commits, &selected)?;
        }
    }
    Ok(checker.report)
}

/// Check a tree that is not a commit's (a ref pushed straight at a tree), under
/// its own `.gitattributes` and `.sops.yaml`, remembering what `parent` (the
/// repository's HEAD, when it has one) protected.
fn check_tree(
    checker: &mut Checker<'_>,
    tree: &str,
    parent: Option<&str>,
) -> Result<(), SnapshotError> {
    let repo = checker.repo;
    let entries = repo.tree_entries(tree)?;
    let parents = match parent {
        Some(p) => vec![repo.tree_changes(p, tree)?],
        None => Vec::new(),
    };
    let rules = checker.rules_of(&entries, Some(tree))?;
    let child = Child {
        commit: Some(tree),
        entries: &entries,
        sources: &[AttrSource::Tree(tree)],
        rules,
        drift: None,
    };
    checker.snapshot(&child, &parents, &|_| true)
}

/// With a key: findings for staged SOPS files that do not authenticate ([`verify`]).
pub(crate) fn verify_staged(dir: &Path) -> Result<Vec<Finding>, SnapshotError> {
    verify::staged(&Repo::open(dir)?)
}

/// A snapshot being checked: the index or a commit's tree.
struct Child<'a> {
    /// The commit (history scans), for findings.
    commit: Option<&'a str>,
    entries: &'a [Entry],
    /// Where its `.gitattributes` are read; a path is protected when any says
    /// so, and marked unprotected only when the first one does.
    sources: &'a [AttrSource<'a>],
    rules: SopsRules,
    /// Which SOPS files to compare with what their creation rule renders now
    /// (`key-drift` warnings); `None` for history and pushes, where an old
    /// commit's keys are history, not something to fix.
    drift: Option<DriftScope>,
}

/// Which files get `key-drift` warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DriftScope {
    /// Only files the commit adds or changes (the index): a commit is told about
    /// the files it touches, and a moved file is one of them.
    Changed,
    /// Every file (`check --all`).
    Every,
}

/// How one path of a snapshot is protected.
#[derive(Clone, Debug, Default)]
pub(crate) struct Protection {
    by_attr: bool,
    /// The `.sops.yaml` rule that covers it: (number, pattern).
    rule: Option<(usize, String)>,
    /// Kept protected by what a parent held ([`memory`]).
    remembered: bool,
    /// `sops-unprotected`: protection taken away on purpose.
    unprotected: bool,
    sops_types: Vec<String>,
    /// The selector of the creation rule that covers it: (number, selector).
    selector: Option<(usize, sops_file::selectors::Selector)>,
}

impl Protection {
    fn protected(&self) -> bool {
        self.by_attr || self.rule.is_some() || self.remembered
    }
}

struct Checker<'r> {
    repo: &'r Repo,
    blobs: crate::git::cat_file::BlobReader,
    /// Findings per (blob, protected, how the path reads the blob).
    cache: HashMap<(String, bool, String), Vec<Finding>>,
    /// The `.sops.yaml` rules of commits read so far.
    commit_rules: HashMap<String, SopsRules>,
    /// Each distinct `.sops.yaml` text read, by SHA-256: `--history` reads one
    /// per commit, and a pushed range may repeat a large one thousands of times.
    parsed_rules: HashMap<[u8; 32], Result<SopsRules, ConfigError>>,
    /// This clone's known-blobs records, where there are any (never on a server).
    known: Option<crate::cache::known_blobs::KnownBlobs>,
    /// The recipients of the protected blobs inspected in a snapshot whose
    /// key drift is checked next, by object id (taken by `drift`, which
    /// would otherwise parse every file a second time).
    recipients: Option<HashMap<String, Vec<sops_file::metadata::KeyGroup>>>,
    report: Report,
}

/// A blob is held to its creation rule's selector (beyond its own) only where
/// it is new or changed: a file encrypted under an older, narrower rule stays
/// valid until it is next edited, when clean encrypts it under the rule. So
/// widening a rule does not block every commit, while a narrow "template"
/// cannot come in unnoticed.
fn only_changed_follow_the_rule(
    entries: &[Entry],
    parents: &[ParentDiff],
    protection: &mut [Protection],
) {
    if parents.is_empty() {
        return;
    }
    let changed: HashSet<(&str, &str)> = parents
        .iter()
        .flat_map(|d| &d.changes)
        .filter_map(|c| Some((c.path.as_str(), c.new.as_deref()?)))
        .collect();
    for (e, p) in entries.iter().zip(protection.iter_mut()) {
        if !changed.contains(&(e.path.as_str(), e.oid.as_str())) {
            p.selector = None;
        }
    }
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
fn format_of(path: &str, sops_types: &[String]) -> Result<Format, String> {
    let value = sops_types
        .iter()
        .map(String::as_str)
        .find(|v| *v != "unspecified")
        .unwrap_or("unspecified");
    sops_type::from_attribute(path, value).map_err(|e| match e.hint {
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
            commit_rules: HashMap::new(),
            parsed_rules: HashMap::new(),
            known: if repo.bare {
                None
            } else {
                crate::cache::known_blobs::KnownBlobs::existing(
                    crate::cache::CacheDir::of(repo.git()).as_ref(),
                )
            },
            recipients: None,
            report: Report::default(),
        })
    }

    fn read(&mut self, spec: &str) -> Result<Option<Vec<u8>>, SnapshotError> {
        self.blobs
            .read(spec)
            .map_err(|e| SnapshotError::unexpected("cat-file --batch", e))
    }

    /// The rules of a snapshot from its entries' `.sops.yaml`.
    fn rules_of(
        &mut self,
        entries: &[Entry],
        commit: Option<&str>,
    ) -> Result<SopsRules, SnapshotError> {
        let Some(config) = entries.iter().find(|e| e.path == ".sops.yaml") else {
            return Ok(SopsRules::none());
        };
        let oid = config.oid.clone();
        self.rules(Some(&oid), commit)
    }

    /// The rules of a commit (read once per commit).
    fn rules_of_commit(&mut self, commit: &str) -> Result<&SopsRules, SnapshotError> {
        if !self.commit_rules.contains_key(commit) {
            let spec = format!("{commit}:.sops.yaml");
            let rules = self.rules(Some(&spec), Some(commit))?;
            self.commit_rules.insert(commit.to_string(), rules);
        }
        Ok(&self.commit_rules[commit])
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
                    .map_err(|_| ConfigError {
                        path: ".sops.yaml".into(),
                        message: "it is not UTF-8 text".into(),
                        template: None,
                    })
                    .and_then(SopsRules::parse)
            })
            .clone();
        match parsed {
            Ok(r) => r,
            Err(why) => {
                let mut f = Finding::new(
                    Kind::BadConfig,
                    format!("cannot read the creation rules, so the paths they protect are not checked: {}", why.message),
                );
                f.path = ".sops.yaml".into();
                f.commit = commit.map(str::to_string);
                self.report.add(f);
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
        rule: Option<(usize, &sops_file::selectors::Selector)>,
    ) -> Result<Vec<Finding>, SnapshotError> {
        let mut reading = reading_of(&entry.path, format);
        if let (true, Some((n, s))) = (protected, rule) {
            reading.push_str(&format!("|{n}|{}|{}", s.field_name(), s.pattern()));
        }
        let key = (entry.oid.clone(), protected, reading);
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
                let (found, meta) =
                    inspect::inspect_with_metadata(&entry.path, format, &bytes, protected, rule);
                if let (Some(recipients), Some(meta)) = (self.recipients.as_mut(), meta) {
                    recipients.insert(entry.oid.clone(), meta.key_groups);
                }
                found
            }
        };
        if protected {
            self.report.protected_blobs += 1;
        }
        self.cache.insert(key, found.clone());
        Ok(found)
    }

    /// How each entry of a snapshot is protected by its own attributes and rules.
    fn protection(
        &mut self,
        child: &Child<'_>,
        paths: &[&str],
    ) -> Result<Vec<Protection>, SnapshotError> {
        let mut out = vec![Protection::default(); paths.len()];
        for (n, source) in child.sources.iter().enumerate() {
            let values = self.repo.attributes(*source, paths)?;
            for (p, value) in out.iter_mut().zip(values) {
                p.by_attr |= value.filter == "sops";
                if n == 0 {
                    p.unprotected = value.unprotected;
                }
                p.sops_types.push(value.sops_type);
            }
        }
        for (p, path) in out.iter_mut().zip(paths) {
            p.rule = child
                .rules
                .matching(path)
                .map(|(n, pattern)| (n, pattern.to_string()));
            p.selector = child.rules.selector_for(path);
        }
        Ok(out)
    }

    /// Check the blobs of one snapshot (the index or HEAD's tree), remembering
    /// what its parents protected.
    fn snapshot(
        &mut self,
        child: &Child<'_>,
        parents: &[ParentDiff],
        selected: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError> {
        let paths: Vec<&str> = child.entries.iter().map(|e| e.path.as_str()).collect();
        let mut protection = self.protection(child, &paths)?;
        only_changed_follow_the_rule(child.entries, parents, &mut protection);
        let index: HashMap<&str, usize> = paths.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let mut removed = self.remember(child, parents, &index, &mut protection, selected)?;
        if let Some(head) = parents.first().filter(|_| child.commit.is_none()) {
            removed.extend(self.deleted_by(&head.parent)?);
        }
        // Only a repository that uses the git-sops filter at all is told to add
        // `.gitattributes` lines: teams that use sops alone protect by .sops.yaml.
        let mut uses_filter = protection.iter().any(|p| p.by_attr)
            || self
                .repo
                .worktree_file(".gitattributes")
                .is_some_and(|t| mentions_filter(&t));
        for e in child
            .entries
            .iter()
            .filter(|e| rules::never_protected(&e.path) && e.path != ".sops.yaml")
        {
            if uses_filter {
                break;
            }
            uses_filter = self.read(&e.oid)?.is_some_and(|t| mentions_filter(&t));
        }
        self.recipients = child.drift.map(|_| HashMap::new());
        for (entry, p) in child.entries.iter().zip(&protection) {
            if !selected(&entry.path) {
                continue;
            }
            if let (Some((n, pattern)), false, true) = (&p.rule, p.by_attr, uses_filter) {
                self.push(
                    entry,
                    child.commit,
                    Finding::new(
                        Kind::MissingAttribute,
                        format!(
                            ".sops.yaml creation rule {n} (path_regex {pattern:?}) covers this path, but .gitattributes gives it no filter=sops, so git would commit an edited plaintext copy as it is; add a line such as `{} filter=sops diff=sops merge=sops -text`",
                            entry.path
                        ),
                    ),
                );
            }
            self.inspect_entry(entry, p, child.commit)?;
        }
        self.find_copies(child, parents, &index, &protection, &removed, selected)?;
        if let Some(scope) = child.drift {
            self.drift(child, parents, &protection, scope, selected)?;
        }
        self.recipients = None;
        Ok(())
    }

    /// `key-drift` warnings: SOPS files whose stored master keys (KMS ARN,
    /// role, encryption context, age recipients) differ from what their
    /// `.sops.yaml` creation rule renders for their path now, read from the
    /// metadata only (no key needed). A warning, not a finding: the file is
    /// still a valid SOPS file and what it holds is encrypted; `updatekeys`
    /// fixes it (README "Templated keys").
    fn drift(
        &mut self,
        child: &Child<'_>,
        parents: &[ParentDiff],
        protection: &[Protection],
        scope: DriftScope,
        selected: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError> {
        let Some(config) = child.rules.config().cloned() else {
            return Ok(());
        };
        let changed: Option<HashSet<(&str, &str)>> = match (scope, parents.first()) {
            (DriftScope::Changed, Some(head)) => Some(
                head.changes
                    .iter()
                    .filter_map(|c| Some((c.path.as_str(), c.new.as_deref()?)))
                    .collect(),
            ),
            _ => None,
        };
        for (entry, p) in child.entries.iter().zip(protection) {
            if !p.protected() || !selected(&entry.path) {
                continue;
            }
            if changed
                .as_ref()
                .is_some_and(|c| !c.contains(&(entry.path.as_str(), entry.oid.as_str())))
            {
                continue;
            }
            let inspected = self.recipients.as_mut().and_then(|r| r.remove(&entry.oid));
            let key_groups = match inspected {
                Some(groups) => groups,
                // Not parsed by this snapshot's inspection (its findings were cached).
                None => {
                    let Ok(format) = format_of(&entry.path, &p.sops_types) else {
                        continue;
                    };
                    let Some(bytes) = self.read(&entry.oid)? else {
                        continue;
                    };
                    match sops_file::file::load_as_configured(&entry.path, format, &bytes) {
                        Some(loaded) => loaded.meta.key_groups,
                        None => continue,
                    }
                }
            };
            let finding = match config.rule_for_relative(&entry.path) {
                Ok(rule) => sops_file::keygroups::drift(&key_groups, &rule.key_groups)
                    .map(|change| {
                        Finding::new(
                            Kind::KeyDrift,
                            format!(
                                "its keys differ from what .sops.yaml creation rule {} renders for this path ({change}); run `git sops updatekeys -y {}`",
                                rule.number,
                                crate::drivers::shell_word(&entry.path)
                            ),
                        )
                    }),
                // A template that cannot render for this path: say so, as a warning too.
                Err(e) if e.template.is_some() => Some(Finding::new(Kind::KeyDrift, e.message)),
                Err(_) => None,
            };
            if let Some(mut f) = finding {
                f.path = entry.path.clone();
                self.report.add_warning(f);
            }
        }
        Ok(())
    }

    fn inspect_entry(
        &mut self,
        entry: &Entry,
        p: &Protection,
        commit: Option<&str>,
    ) -> Result<(), SnapshotError> {
        let protected = p.protected();
        if protected || inspect::worth_reading_unprotected(&entry.path) {
            let format = format_of(&entry.path, &p.sops_types);
            let rule = p.selector.as_ref().map(|(n, s)| (*n, s));
            for f in self.inspect(entry, &format, protected, rule)? {
                self.push(entry, commit, f);
            }
        }
        Ok(())
    }

    /// Check every listed blob of a history range under the attributes and
    /// `.sops.yaml` of its own commit, each (blob, path, protection) once, and
    /// what each commit takes away from its parents.
    fn history(
        &mut self,
        commits: &[snapshot::CommitBlobs],
        selected: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError> {
        // Attributes per attribute source, asked once for all the paths it answers for.
        let mut by_source: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in commits {
            let paths = by_source.entry(c.attr_source.as_str()).or_default();
            paths.extend(c.entries.iter().map(|e| e.path.as_str()));
        }
        let mut attrs: HashMap<(&str, &str), PathAttributes> = HashMap::new();
        for (source, paths) in &mut by_source {
            paths.sort_unstable();
            paths.dedup();
            let values = self.repo.attributes(AttrSource::Tree(source), paths)?;
            for (p, v) in paths.iter().zip(values) {
                attrs.insert((source, p), v);
            }
        }
        // A blob at a path is reported once, but checked again when a later
        // commit's rules start protecting it.
        let mut seen: HashSet<(String, String, bool)> = HashSet::new();
        // SOPS files deleted earlier in the range, for copies made later in it
        // (bounded: a range that deletes more is checked commit by commit).
        let mut carried: Vec<memory::Removed> = Vec::new();
        for c in commits {
            let source = c.attr_source.as_str();
            let rules = self.rules_of_commit(source)?;
            let mut protection: Vec<Protection> = c
                .entries
                .iter()
                .map(|e| {
                    let a = attrs.get(&(source, e.path.as_str()));
                    Protection {
                        by_attr: a.is_some_and(|a| a.filter == "sops"),
                        rule: rules
                            .matching(&e.path)
                            .map(|(n, pattern)| (n, pattern.to_string())),
                        remembered: false,
                        unprotected: a.is_some_and(|a| a.unprotected),
                        sops_types: vec![a.map_or("unspecified".into(), |a| a.sops_type.clone())],
                        selector: rules.selector_for(&e.path),
                    }
                })
                .collect();
            only_changed_follow_the_rule(&c.entries, &c.parents, &mut protection);
            let child = Child {
                commit: Some(&c.commit),
                entries: &c.entries,
                sources: &[AttrSource::Tree(&c.commit)],
                rules: rules.clone(),
                drift: None,
            };
            let index: HashMap<&str, usize> = c
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.path.as_str(), i))
                .collect();
            let mut removed =
                self.remember(&child, &c.parents, &index, &mut protection, selected)?;
            for (entry, p) in c.entries.iter().zip(&protection) {
                if !selected(&entry.path)
                    || !seen.insert((entry.oid.clone(), entry.path.clone(), p.protected()))
                {
                    continue;
                }
                self.inspect_entry(entry, p, Some(&c.commit))?;
            }
            let fresh = removed.len();
            removed.append(&mut carried);
            let mut carried_bytes = 0;
            self.find_copies(&child, &c.parents, &index, &protection, &removed, selected)?;
            for (i, mut r) in removed.into_iter().enumerate() {
                if i < fresh {
                    r.mark_deleted_in(&c.commit);
                }
                if carried.len() < MAX_CARRIED && carried_bytes + r.size() <= MAX_CARRIED_BYTES {
                    carried_bytes += r.size();
                    carried.push(r);
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, entry: &Entry, commit: Option<&str>, mut f: Finding) {
        f.path = entry.path.clone();
        f.commit = commit.map(str::to_string);
        self.report.add(f);
    }
}
