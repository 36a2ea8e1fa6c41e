//! `git sops review FROM..TO`: what a range of commits changes in protected
//! files, for a reviewer who has no key (docs/architecture.md §4.6a).
//!
//! A pull request's diff of a SOPS file is a wall of `ENC[...]` lines; what a
//! reviewer needs is which *keys* were added, changed or removed, and every
//! change of who can decrypt (recipients, KMS keys, encryption context) or of
//! what gets encrypted (`.sops.yaml` creation rules, `.gitattributes`). All of
//! that is readable without a key, because git-sops keeps the ciphertext of an
//! unchanged value byte for byte: a value whose `ENC[...]` differs was
//! written anew. Two exceptions are recognised: a new data key (`rotate`)
//! changes every ciphertext, and a file written by plain `sops` re-encrypts
//! every value with new IVs; both are reported as such rather than as every key
//! "changed". With a key (`--with-keys`, never needed) the values whose
//! ciphertext changed but whose plaintext did not are named too. No value,
//! plaintext or ciphertext, is ever part of the report.
//!
//! It reads pushed content (a CI job on a pull request), so the work is
//! bounded: blobs over [`MAX_BLOB`] are not parsed, at most [`MAX_FILES`] files
//! are reviewed and at most [`MAX_LISTED`] keys are listed per kind and file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::rules::SopsRules;
use super::snapshot::{Repo, SnapshotError};
use crate::git::cat_file::BlobReader;
use crate::git::AttrSource;
use sops_file::config::{Config, RuleAsWritten};
use sops_file::file;
use sops_file::form::leaf_values;
use sops_file::formats::Format;
use sops_file::keygroups::{self, diff_groups, key_string_form, Keyring, Recipient};
use sops_file::metadata::{MasterKey, Metadata};

/// Blobs larger than this are not parsed (reported as too large).
pub const MAX_BLOB: usize = 16 << 20;
/// At most this many protected files are reviewed; the rest are counted.
pub const MAX_FILES: usize = 2_000;
/// At most this many keys are listed per kind (added, changed, ...) and file.
pub const MAX_LISTED: usize = 200;
/// At most this many paths have their protection compared when the rules change.
const MAX_PROTECTION_PATHS: usize = 200_000;

/// How a file changed in the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileStatus {
    Added,
    Deleted,
    Modified,
}

impl FileStatus {
    pub fn name(self) -> &'static str {
        match self {
            FileStatus::Added => "added",
            FileStatus::Deleted => "deleted",
            FileStatus::Modified => "modified",
        }
    }
}

/// Why every value of a file has new ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reencryption {
    /// Every wrapped data key and every value changed: a new data key (`rotate`).
    NewDataKey,
    /// Same data key, every value re-encrypted (written by a tool that does not
    /// keep IVs, such as plain `sops edit`).
    EveryValue,
}

/// A list of key paths, cut at [`MAX_LISTED`] with the full count kept.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub listed: Vec<String>,
    pub total: usize,
}

impl Keys {
    fn push(&mut self, key: &str) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(key.to_string());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// What changed in one protected file.
#[derive(Clone, Debug)]
pub struct FileReview {
    pub path: String,
    pub status: FileStatus,
    /// The format the file is read as (`yaml`, `json`, ...).
    pub format: String,
    pub added: Keys,
    pub removed: Keys,
    /// Keys whose ciphertext changed (collapsed into `reencrypted` when every one did).
    pub changed: Keys,
    pub reencrypted: Option<Reencryption>,
    /// Master keys added, removed or with a changed encryption context, as lines.
    pub recipients: Vec<String>,
    /// Other metadata changes (threshold, selector, MAC scope), as lines.
    pub settings: Vec<String>,
    /// With a key: keys whose ciphertext changed to the same plaintext.
    pub same_value: Option<Keys>,
    /// With a key, after a re-encryption: the keys whose value really changed.
    pub value_changed: Option<Keys>,
    /// Something that kept the review of this file short (not SOPS, too large,
    /// cannot be decrypted here).
    pub notes: Vec<String>,
}

/// A path whose protection differs between the two ends of the range.
#[derive(Clone, Debug)]
pub struct ProtectionChange {
    pub path: String,
    pub before: String,
    pub after: String,
}

/// The whole report.
#[derive(Clone, Debug, Default)]
pub struct Review {
    pub from: String,
    pub to: String,
    pub files: Vec<FileReview>,
    /// Protected files beyond [`MAX_FILES`], not reviewed.
    pub files_not_reviewed: usize,
    /// `.sops.yaml` creation-rule changes, as lines.
    pub rules: Vec<String>,
    pub protection: Vec<ProtectionChange>,
    /// `--with-keys` was asked for.
    pub with_keys: bool,
}

/// Review the range `range`: `A..B` compares A's tree with B's, `A...B` the
/// merge base of A and B with B (what a pull request's diff shows), and a
/// single revision `A` compares A with HEAD.
pub fn review(dir: &Path, range: &str, with_keys: bool) -> Result<Review, SnapshotError> {
    let repo = Repo::open(dir)?;
    let (from, to) = ends(&repo, range)?;
    let changes = repo.tree_changes(&from, &to)?;
    let mut blobs = repo.blobs()?;
    let rules_from = rules_at(&repo, &mut blobs, &from);
    let rules_to = rules_at(&repo, &mut blobs, &to);
    let mut review = Review {
        from,
        to,
        with_keys,
        ..Review::default()
    };

    let paths: Vec<&str> = changes.changes.iter().map(|c| c.path.as_str()).collect();
    let oids: Vec<&str> = changes
        .changes
        .iter()
        .flat_map(|c| [c.old.as_deref(), c.new.as_deref()])
        .flatten()
        .collect();
    let sizes = sizes_of(&repo, &oids)?;
    let attrs_from = repo.attributes(AttrSource::Tree(&review.from), &paths)?;
    let attrs_to = repo.attributes(AttrSource::Tree(&review.to), &paths)?;
    let keyring = with_keys.then(Keyring::new);
    for (i, change) in changes.changes.iter().enumerate() {
        let path = change.path.as_str();
        if super::rules::never_protected(path) {
            continue;
        }
        let old = read_blob(&sizes, &mut blobs, change.old.as_deref());
        let new = read_blob(&sizes, &mut blobs, change.new.as_deref());
        let protected = attrs_from[i].filter == "sops"
            || attrs_to[i].filter == "sops"
            || rules_from.matching(path).is_some()
            || rules_to.matching(path).is_some()
            || [&old, &new]
                .iter()
                .any(|b| b.as_ref().is_some_and(|b| file::might_be_sops(b)));
        if !protected {
            continue;
        }
        if review.files.len() >= MAX_FILES {
            review.files_not_reviewed += 1;
            continue;
        }
        let sops_type = if attrs_to[i].sops_type != "unspecified" {
            &attrs_to[i].sops_type
        } else {
            &attrs_from[i].sops_type
        };
        let format = crate::drivers::filter::sops_type::from_attribute(path, sops_type)
            .unwrap_or_else(|_| Format::detect(path));
        review.files.push(review_file(
            path,
            format,
            old.as_deref(),
            new.as_deref(),
            keyring.as_ref(),
        ));
    }

    if changes.rules_changed {
        if let Some(config_change) = changes.changes.iter().find(|c| c.path == ".sops.yaml") {
            let old = read_blob(&sizes, &mut blobs, config_change.old.as_deref());
            let new = read_blob(&sizes, &mut blobs, config_change.new.as_deref());
            review.rules = rule_changes(old.as_deref(), new.as_deref());
        }
        review.protection = protection_changes(&repo, &review.from, &review.to)?;
    }
    Ok(review)
}

/// The two commits a range names.
fn ends(repo: &Repo, range: &str) -> Result<(String, String), SnapshotError> {
    let range = range.trim();
    if range.is_empty() || range.starts_with('-') {
        return Err(SnapshotError::Usage(format!(
            "`{range}` is not a revision range; give BASE..HEAD, BASE...HEAD or BASE"
        )));
    }
    let side = |rev: &str| {
        let rev = if rev.is_empty() { "HEAD" } else { rev };
        repo.commit_id(rev)
    };
    if let Some((a, b)) = range.split_once("...") {
        let (a, b) = (side(a)?, side(b)?);
        let base = repo.git().run(&["merge-base", &a, &b]).map_err(|_| {
            SnapshotError::Usage(format!("`{range}`: the two sides have no common ancestor"))
        })?;
        let base = String::from_utf8_lossy(&base).trim().to_string();
        return Ok((base, b));
    }
    if let Some((a, b)) = range.split_once("..") {
        return Ok((side(a)?, side(b)?));
    }
    Ok((side(range)?, side("HEAD")?))
}

/// Blob sizes by the spec asked.
type Sizes = HashMap<String, usize>;

/// The sizes of the blobs named, in one `git cat-file --batch-check`.
fn sizes_of(repo: &Repo, specs: &[&str]) -> Result<Sizes, SnapshotError> {
    let specs: Vec<&str> = specs
        .iter()
        .copied()
        .filter(|s| !s.contains(['\n', '\0']))
        .collect();
    if specs.is_empty() {
        return Ok(Sizes::new());
    }
    let sizes = repo.git().blob_sizes(&specs)?;
    Ok(specs
        .into_iter()
        .zip(sizes)
        .filter_map(|(s, n)| Some((s.to_string(), n?)))
        .collect())
}

/// A blob's content: `None` for no blob or a missing one, empty for one over
/// [`MAX_BLOB`] (its size is asked first: a push can hold a blob of any size).
fn read_blob(sizes: &Sizes, blobs: &mut BlobReader, spec: Option<&str>) -> Option<Vec<u8>> {
    let spec = spec?;
    let size = *sizes.get(spec)?;
    if size > MAX_BLOB {
        return Some(Vec::new());
    }
    blobs.read(spec).ok().flatten()
}

/// The `.sops.yaml` path rules of a commit (none when it has none, it is too
/// large or it does not parse).
fn rules_at(repo: &Repo, blobs: &mut BlobReader, commit: &str) -> SopsRules {
    let spec = format!("{commit}:.sops.yaml");
    let sizes = sizes_of(repo, &[spec.as_str()]).unwrap_or_default();
    read_blob(&sizes, blobs, Some(&spec))
        .filter(|b| !b.is_empty())
        .and_then(|b| SopsRules::parse(&String::from_utf8_lossy(&b)).ok())
        .unwrap_or_else(SopsRules::none)
}

fn review_file(
    path: &str,
    format: Format,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
    keyring: Option<&Keyring>,
) -> FileReview {
    let status = match (old, new) {
        (None, _) => FileStatus::Added,
        (_, None) => FileStatus::Deleted,
        _ => FileStatus::Modified,
    };
    let mut r = FileReview {
        path: path.to_string(),
        status,
        format: format.name().to_string(),
        added: Keys::default(),
        removed: Keys::default(),
        changed: Keys::default(),
        reencrypted: None,
        recipients: Vec::new(),
        settings: Vec::new(),
        same_value: None,
        value_changed: None,
        notes: Vec::new(),
    };
    let load = |blob: Option<&[u8]>, side: &str, notes: &mut Vec<String>| {
        let blob = blob?;
        if blob.is_empty() {
            notes.push(format!(
                "the {side} version is empty or larger than {} MiB: not compared",
                MAX_BLOB >> 20
            ));
            return None;
        }
        match file::load_as_configured(path, format, blob) {
            Some(l) => Some(l),
            None => {
                notes.push(format!(
                    "the {side} version is not a SOPS {} file (plaintext? `git sops check` reports it)",
                    format.name()
                ));
                None
            }
        }
    };
    let lo = load(old, "old", &mut r.notes);
    let ln = load(new, "new", &mut r.notes);
    let empty = BTreeMap::new();
    let vo = lo.as_ref().map(|l| leaf_values(l.document().0));
    let vn = ln.as_ref().map(|l| leaf_values(l.document().0));
    let (vo_ref, vn_ref) = (vo.as_ref().unwrap_or(&empty), vn.as_ref().unwrap_or(&empty));
    if (old.is_some() && lo.is_none()) || (new.is_some() && ln.is_none()) {
        // One side unreadable: the keys of the readable side are still news.
        if lo.is_none() && ln.is_some() {
            vn_ref.keys().for_each(|k| r.added.push(k));
        }
        if ln.is_none() && lo.is_some() {
            vo_ref.keys().for_each(|k| r.removed.push(k));
        }
        return r;
    }
    for k in vn_ref.keys().filter(|k| !vo_ref.contains_key(*k)) {
        r.added.push(k);
    }
    for k in vo_ref.keys().filter(|k| !vn_ref.contains_key(*k)) {
        r.removed.push(k);
    }
    let common: Vec<&String> = vo_ref.keys().filter(|k| vn_ref.contains_key(*k)).collect();
    let encrypted_common: Vec<&&String> = common
        .iter()
        .filter(|k| {
            sops_file::cipher::is_enc(&vo_ref[**k]) && sops_file::cipher::is_enc(&vn_ref[**k])
        })
        .collect();
    let changed: Vec<&String> = common
        .iter()
        .copied()
        .filter(|k| vo_ref[*k] != vn_ref[*k])
        .collect();
    let (Some(lo), Some(ln)) = (&lo, &ln) else {
        // Added or deleted: its keys and who can open it.
        if let Some(l) = lo.as_ref().or(ln.as_ref()) {
            let verb = if status == FileStatus::Added {
                "encrypted for"
            } else {
                "was encrypted for"
            };
            for (g, group) in l.meta.key_groups.iter().enumerate() {
                for k in group {
                    r.recipients.push(format!(
                        "group {}: {verb} {} {}",
                        g + 1,
                        k.kind(),
                        key_string_form(k)
                    ));
                }
            }
        }
        return r;
    };
    let every_changed =
        !encrypted_common.is_empty() && encrypted_common.iter().all(|k| vo_ref[**k] != vn_ref[**k]);
    if every_changed && new_data_key(&lo.meta, &ln.meta) {
        r.reencrypted = Some(Reencryption::NewDataKey);
    } else if every_changed && encrypted_common.len() >= 3 {
        r.reencrypted = Some(Reencryption::EveryValue);
    }
    if r.reencrypted.is_none() {
        changed.iter().for_each(|k| r.changed.push(k));
    } else {
        r.changed.total = changed.len();
    }
    r.recipients = recipient_changes(&lo.meta, &ln.meta);
    r.settings = setting_changes(&lo.meta, &ln.meta);
    if let (Some(keyring), false) = (keyring, changed.is_empty()) {
        match same_values(lo, ln, keyring, format) {
            Ok((po, pn)) => {
                let mut same = Keys::default();
                let mut really = Keys::default();
                for k in &changed {
                    match (po.get(*k), pn.get(*k)) {
                        (Some(a), Some(b)) if a == b => same.push(k),
                        _ => really.push(k),
                    }
                }
                r.same_value = Some(same);
                r.value_changed = Some(really);
            }
            Err(e) => r.notes.push(format!(
                "cannot be decrypted here ({e}); values not compared"
            )),
        }
    }
    r
}

/// Both sides decrypted, as key path → plaintext (compared, never shown).
#[allow(clippy::type_complexity)]
fn same_values(
    lo: &file::Loaded,
    ln: &file::Loaded,
    keyring: &Keyring,
    format: Format,
) -> Result<
    (
        BTreeMap<String, zeroize::Zeroizing<String>>,
        BTreeMap<String, zeroize::Zeroizing<String>>,
    ),
    String,
> {
    // The pushed side names its own master keys; only those the base side
    // names too are used, so pushed content cannot make this command call a
    // KMS key, role or endpoint of its choosing.
    let trusted: std::collections::BTreeSet<String> =
        lo.meta.all_keys().map(key_string_form).collect();
    let plain = |l: &file::Loaded| -> Result<BTreeMap<String, zeroize::Zeroizing<String>>, String> {
        let mut meta = l.meta.clone();
        for group in &mut meta.key_groups {
            group.retain(|k| trusted.contains(&key_string_form(k)));
        }
        let key = keygroups::recover(&meta, keyring).map_err(|e| e.to_string())?;
        let opened = l.open(&key).map_err(|e| e.to_string())?;
        let text = std::str::from_utf8(&opened.plaintext).map_err(|_| "not UTF-8".to_string())?;
        if l.format() == Format::Binary || format == Format::Binary {
            let mut m = BTreeMap::new();
            m.insert(
                "[\"data\"]".to_string(),
                zeroize::Zeroizing::new(text.to_string()),
            );
            return Ok(m);
        }
        let doc = l.format().store().parse(text).map_err(|e| e.to_string())?;
        Ok(leaf_values(&doc))
    };
    Ok((plain(lo)?, plain(ln)?))
}

/// Did the data key change? Every master key both sides have wraps a
/// different `enc` (a re-wrap of the same data key by `updatekeys` changes
/// them too, but then the values keep their ciphertext, which the caller
/// checks first), or the sides share no master key at all.
fn new_data_key(old: &Metadata, new: &Metadata) -> bool {
    let wrapped = |m: &Metadata| -> BTreeMap<String, String> {
        m.all_keys()
            .map(|k| (format!("{} {}", k.kind(), key_string_form(k)), enc_of(k)))
            .collect()
    };
    let (a, b) = (wrapped(old), wrapped(new));
    a.iter()
        .filter_map(|(k, v)| b.get(k).map(|w| v != w))
        .all(|differs| differs)
}

fn enc_of(k: &MasterKey) -> String {
    match k {
        MasterKey::Age(a) => a.enc.clone(),
        MasterKey::Kms(k) => k.enc.clone(),
        MasterKey::Other { entry, .. } => format!("{entry:?}"),
    }
}

/// Master keys added and removed per key group; a KMS key that is removed and
/// added with another encryption context (or role, or profile) is one change.
fn recipient_changes(old: &Metadata, new: &Metadata) -> Vec<String> {
    let theirs: Vec<Vec<Recipient>> = new
        .key_groups
        .iter()
        .map(|g| g.iter().map(Recipient::from).collect())
        .collect();
    let mut lines = Vec::new();
    for (g, d) in diff_groups(&old.key_groups, &theirs)
        .into_iter()
        .enumerate()
    {
        let arn = |form: &str| form.split(['|', '+']).next().unwrap_or(form).to_string();
        let mut added: Vec<_> = d.added.clone();
        for rem in &d.removed {
            let twin = added.iter().position(|a| {
                a.kind == "kms" && rem.kind == "kms" && arn(&a.form) == arn(&rem.form)
            });
            match twin {
                Some(i) => {
                    let a = added.remove(i);
                    lines.push(format!(
                        "group {}: kms {}: role/encryption context/profile `{}` → `{}`",
                        g + 1,
                        arn(&rem.form),
                        rem.form,
                        a.form
                    ));
                }
                None => lines.push(format!(
                    "group {}: removed {} {}",
                    g + 1,
                    rem.kind,
                    rem.form
                )),
            }
        }
        for a in added {
            lines.push(format!("group {}: added {} {}", g + 1, a.kind, a.form));
        }
    }
    lines
}

fn setting_changes(old: &Metadata, new: &Metadata) -> Vec<String> {
    let mut lines = Vec::new();
    if (old.key_groups.len() > 1 || new.key_groups.len() > 1)
        && old.shamir_threshold != new.shamir_threshold
    {
        lines.push(format!(
            "shamir threshold {} → {}",
            old.shamir_threshold, new.shamir_threshold
        ));
    }
    let sel = |m: &Metadata| format!("{:?}", m.effective_selector());
    if sel(old) != sel(new) {
        lines.push(format!("what is encrypted: {} → {}", sel(old), sel(new)));
    }
    if old.mac_only_encrypted != new.mac_only_encrypted {
        lines.push(format!(
            "mac_only_encrypted {} → {}",
            old.mac_only_encrypted, new.mac_only_encrypted
        ));
    }
    lines
}

/// The creation rules of two versions of `.sops.yaml`, compared rule by rule.
fn rule_changes(old: Option<&[u8]>, new: Option<&[u8]>) -> Vec<String> {
    let read = |b: Option<&[u8]>| -> Result<Vec<RuleAsWritten>, String> {
        let Some(b) = b.filter(|b| !b.is_empty()) else {
            return Ok(Vec::new());
        };
        let text = std::str::from_utf8(b).map_err(|_| "not UTF-8".to_string())?;
        match Config::parse(Path::new(".sops.yaml"), text) {
            Ok(Some(c)) => Ok(c.rules_as_written()),
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(e.message),
        }
    };
    let (a, b) = match (read(old), read(new)) {
        (Ok(a), Ok(b)) => (a, b),
        (_, Err(e)) => return vec![format!("the new .sops.yaml cannot be read: {e}")],
        (Err(e), Ok(b)) => {
            let mut l = vec![format!("the old .sops.yaml could not be read ({e})")];
            l.extend(
                b.iter()
                    .map(|r| format!("rule {}: {}", r.number, describe_rule(r))),
            );
            return l;
        }
    };
    let mut lines = Vec::new();
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), None) => {
                lines.push(format!("rule {}: removed ({})", x.number, describe_rule(x)))
            }
            (None, Some(y)) => {
                lines.push(format!("rule {}: added ({})", y.number, describe_rule(y)))
            }
            (Some(x), Some(y)) => {
                let (dx, dy) = (describe_rule(x), describe_rule(y));
                if dx != dy {
                    lines.push(format!("rule {}: {dx} → {dy}", x.number));
                }
            }
            (None, None) => {}
        }
    }
    lines
}

/// One rule in one line: its path_regex, keys and settings (no values: a
/// `.sops.yaml` holds none).
fn describe_rule(r: &RuleAsWritten) -> String {
    let mut parts = vec![format!(
        "path_regex {}",
        r.path_regex
            .as_deref()
            .map_or("(any)".to_string(), |p| format!("`{p}`"))
    )];
    match &r.rule {
        Ok(rule) => {
            for (g, group) in rule.key_groups.iter().enumerate() {
                let keys: BTreeSet<String> = group.iter().map(Recipient::describe).collect();
                let keys: Vec<String> = keys.into_iter().collect();
                parts.push(format!("group {}: {}", g + 1, keys.join(", ")));
            }
            if rule.key_groups.len() > 1 {
                parts.push(format!("shamir threshold {}", rule.shamir_threshold));
            }
            if let Some(sel) = &rule.selector {
                parts.push(format!("selector {sel:?}"));
            }
            if rule.mac_only_encrypted {
                parts.push("mac_only_encrypted".into());
            }
        }
        Err(e) => parts.push(format!("unreadable: {e}")),
    }
    if let Some(section) = &r.git_sops {
        parts.push(format!("git_sops {section:?}"));
    }
    parts.join("; ")
}

/// Paths whose protection (filter=sops, a `.sops.yaml` path_regex,
/// `sops-unprotected`) differs between the two commits, among the files of
/// either tree.
fn protection_changes(
    repo: &Repo,
    from: &str,
    to: &str,
) -> Result<Vec<ProtectionChange>, SnapshotError> {
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for c in [from, to] {
        for e in repo.tree_entries(c)? {
            if paths.len() >= MAX_PROTECTION_PATHS {
                break;
            }
            paths.insert(e.path);
        }
    }
    let paths: Vec<&str> = paths
        .iter()
        .map(String::as_str)
        .filter(|p| !super::rules::never_protected(p))
        .collect();
    let mut blobs = repo.blobs()?;
    let (rules_from, rules_to) = (
        rules_at(repo, &mut blobs, from),
        rules_at(repo, &mut blobs, to),
    );
    let a = repo.attributes(AttrSource::Tree(from), &paths)?;
    let b = repo.attributes(AttrSource::Tree(to), &paths)?;
    let state = |attr: &super::snapshot::PathAttributes, rules: &SopsRules, path: &str| {
        if attr.unprotected {
            "sops-unprotected".to_string()
        } else if attr.filter == "sops" {
            "protected (filter=sops)".to_string()
        } else if let Some((n, _)) = rules.matching(path) {
            format!("protected (.sops.yaml rule {n})")
        } else {
            "not protected".to_string()
        }
    };
    let mut out = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let (before, after) = (
            state(&a[i], &rules_from, path),
            state(&b[i], &rules_to, path),
        );
        let protected = |s: &str| s.starts_with("protected");
        // Only a change of *whether* it is protected, or of its marking.
        if protected(&before) != protected(&after) || (before != after && !protected(&after)) {
            out.push(ProtectionChange {
                path: path.to_string(),
                before,
                after,
            });
        }
    }
    Ok(out)
}
