//! The guard's memory of history: what a snapshot must keep from its parents.
//!
//! Protection that lives only in `.gitattributes` and `.sops.yaml` can be lost
//! by the same commit that adds plaintext (empty `.gitattributes`, change a
//! `path_regex`, add `PATH -filter`), and a secret moved out of the protected
//! pattern (`git mv secrets/db.yaml db.yaml`) is plaintext at a path nobody
//! protects. So, for each parent of the snapshot being checked (HEAD and
//! MERGE_HEAD for the index; every parent of every commit in a range, inside it
//! or not):
//!
//! - a path that was protected in the parent, or held a SOPS file there, and
//!   that the child holds without protecting it, stays protected (its blob is
//!   checked as a protected one) and is reported as `protection-removed`;
//! - a SOPS file the child deletes is remembered by its plaintext skeleton (the
//!   key paths of its encrypted values, which are not secret), and a new or
//!   changed unprotected file that carries those keys in plaintext is reported
//!   as `decrypted-copy`; where this clone's known-blobs records are readable,
//!   an exact decrypted copy is proven too, binary files included. A deletion
//!   is remembered for the rest of a history range, and the index is also
//!   compared with what HEAD itself deleted, so splitting the move over two
//!   commits does not hide it.
//!
//! The one way to take protection away is explicit and reviewable: the child's
//! own `.gitattributes` (the committed one, not an unstaged edit) sets the
//! `sops-unprotected` attribute on the path. Only what a commit changes is
//! looked at, unless it changes `.gitattributes` or `.sops.yaml`, which can
//! change the protection of every path.

use std::collections::{BTreeSet, HashMap};

use super::finding::{Finding, Kind};
use super::snapshot::{Entry, ParentDiff, SnapshotError};
use super::{Checker, Child, Protection};
use crate::git::AttrSource;
use sops_file::formats::Format;
use sops_file::{file, form};

/// A SOPS file of a parent that the child (or an earlier commit) deletes.
pub(super) struct Removed {
    path: String,
    /// The commit that deleted it, when that is not the change being checked.
    deleted_in: Option<String>,
    blob: Vec<u8>,
    format: Format,
    /// The key paths of its encrypted values.
    secret_paths: BTreeSet<String>,
    /// A binary secret's plaintext length (AES-GCM keeps it): a file of exactly
    /// that size added with the deletion is a copy in all likelihood.
    binary_len: Option<usize>,
}

impl Removed {
    /// What remembering it costs.
    pub(super) fn size(&self) -> usize {
        self.blob.len() + self.path.len()
    }

    /// Name the commit that deleted it, for the commits after that one.
    pub(super) fn mark_deleted_in(&mut self, commit: &str) {
        self.deleted_in.get_or_insert_with(|| commit.to_string());
    }
}

/// `git-sops`' advice for taking protection away on purpose.
fn mark_hint(path: &str) -> String {
    format!(
        "if that is deliberate, say so where reviewers see it: add `{} -filter -diff -merge sops-unprotected` to .gitattributes in the same commit",
        gitattributes_pattern(path)
    )
}

/// A path as a `.gitattributes` pattern: anchored, glob characters escaped, and
/// double-quoted (C style, which git reads) when it holds whitespace or quotes.
fn gitattributes_pattern(path: &str) -> String {
    if path.chars().any(|c| c.is_whitespace() || c == '"') {
        let quoted: String = path
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        return format!("\"/{quoted}\"");
    }
    let mut out = String::from("/");
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | '\\' | '!' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

impl Checker<'_> {
    /// Mark the child's paths that must stay protected because of a parent, with
    /// a `protection-removed` finding each; return the SOPS files it deletes.
    pub(super) fn remember(
        &mut self,
        child: &Child<'_>,
        parents: &[ParentDiff],
        index: &HashMap<&str, usize>,
        protection: &mut [Protection],
        selected: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Removed>, SnapshotError> {
        let mut removed = Vec::new();
        for diff in parents {
            // (path, blob in the parent, blob in the child)
            let mut candidates: Vec<(String, String, Option<String>)> = diff
                .changes
                .iter()
                .filter(|c| selected(&c.path))
                .filter_map(|c| Some((c.path.clone(), c.old.clone()?, c.new.clone())))
                .collect();
            // With its rules unchanged, a parent protected a changed path by
            // attributes or rules exactly when the child does; with them changed,
            // every path of the parent is a candidate and its protection there is
            // looked up.
            let mut by_parent_rules: HashMap<String, bool> = HashMap::new();
            if diff.rules_changed {
                let changed: std::collections::HashSet<&str> =
                    diff.changes.iter().map(|c| c.path.as_str()).collect();
                for e in self.repo.tree_entries(&diff.parent)? {
                    if !changed.contains(e.path.as_str()) && selected(&e.path) {
                        candidates.push((e.path, e.oid.clone(), Some(e.oid)));
                    }
                }
                let paths: Vec<&str> = candidates.iter().map(|c| c.0.as_str()).collect();
                let attrs = self
                    .repo
                    .attributes(AttrSource::Tree(&diff.parent), &paths)?;
                let rules = self.rules_of_commit(&diff.parent)?;
                for (path, a) in paths.iter().zip(attrs) {
                    let guarded = a.filter == "sops" || rules.matching(path).is_some();
                    by_parent_rules.insert(path.to_string(), guarded);
                }
            }
            let missing: Vec<&str> = candidates
                .iter()
                .filter(|c| c.2.is_some() && !index.contains_key(c.0.as_str()))
                .map(|c| c.0.as_str())
                .collect();
            // Paths a merge commit took from a parent outside the listing.
            let extra: HashMap<String, Protection> = if missing.is_empty() {
                HashMap::new()
            } else {
                let found = self.protection(child, &missing)?;
                missing.iter().map(|p| p.to_string()).zip(found).collect()
            };
            for (path, parent_blob, child_blob) in candidates {
                let Some(child_blob) = child_blob else {
                    if let Some(r) = self.removed_sops_file(&path, &parent_blob)? {
                        removed.push(r);
                    }
                    continue;
                };
                let p = match index.get(path.as_str()) {
                    Some(i) => &protection[*i],
                    None => match extra.get(&path) {
                        Some(p) => p,
                        None => continue,
                    },
                };
                if p.protected() || p.unprotected {
                    continue;
                }
                let was_protected = by_parent_rules.get(&path).copied().unwrap_or(false);
                if !was_protected && !self.is_sops_blob(&path, &parent_blob)? {
                    continue;
                }
                let why = if was_protected {
                    "was protected (filter=sops or a .sops.yaml path_regex)"
                } else {
                    "held a SOPS file"
                };
                let entry = Entry {
                    path: path.clone(),
                    oid: child_blob,
                };
                // A SOPS file that only the file itself protects, edited with
                // sops or `git sops edit`, is still one: nothing was taken away,
                // as long as every value the parent encrypted is still encrypted
                // (its own selector could have been narrowed to leave them
                // plain). Either way it is held to the form of a protected file.
                if was_protected || !self.stays_encrypted(&path, &parent_blob, &entry.oid)? {
                    let finding = Finding::new(
                        Kind::ProtectionRemoved,
                        format!(
                            "this path {why} in {}, and this {} takes its protection away, so its next edit would be committed as plaintext; it is still checked as a protected file. {}",
                            short(&diff.parent),
                            if child.commit.is_some() { "commit" } else { "change" },
                            mark_hint(&path)
                        ),
                    );
                    self.push(&entry, child.commit, finding);
                }
                if let Some(i) = index.get(path.as_str()) {
                    protection[*i].remembered = true;
                } else {
                    // Not among the blobs checked for this snapshot: check it here.
                    let mut p = p.clone();
                    p.remembered = true;
                    self.inspect_entry(&entry, &p, child.commit)?;
                }
            }
        }
        Ok(removed)
    }

    /// The SOPS files commit `commit` deleted from its parents: a copy that
    /// arrives one commit after the deletion is a copy all the same.
    pub(super) fn deleted_by(&mut self, commit: &str) -> Result<Vec<Removed>, SnapshotError> {
        let mut out = Vec::new();
        for diff in self.repo.commit_changes(commit)? {
            for change in diff.changes {
                if let (Some(old), None) = (&change.old, &change.new) {
                    if let Some(mut r) = self.removed_sops_file(&change.path, old)? {
                        r.deleted_in = Some(commit.to_string());
                        out.push(r);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether `child` is a SOPS file in which no value that `parent`
    /// encrypted is plaintext, and no value or comment that `parent`'s own
    /// selector would encrypt is plaintext either (a selector narrowed in the
    /// child must not let a new or renamed value in as plaintext).
    fn stays_encrypted(
        &mut self,
        path: &str,
        parent: &str,
        child: &str,
    ) -> Result<bool, SnapshotError> {
        let sniffed = |blob: Option<Vec<u8>>| {
            blob.filter(|b| file::might_be_sops(b))
                .and_then(|b| file::sniff(path, &b))
        };
        let Some(child) = sniffed(self.read(child)?) else {
            return Ok(false);
        };
        let Some(parent) = sniffed(self.read(parent)?) else {
            return Ok(false);
        };
        let child_doc = child.document().0;
        let (_, now_plain) = form::leaf_paths(child_doc);
        let (was_encrypted, _) = form::leaf_paths(parent.document().0);
        if !was_encrypted.is_disjoint(&now_plain) {
            return Ok(false);
        }
        let (plain_for_parent, _) =
            form::unencrypted(child_doc, &parent.meta.effective_selector(), 1);
        Ok(plain_for_parent.is_empty())
    }

    fn is_sops_blob(&mut self, path: &str, oid: &str) -> Result<bool, SnapshotError> {
        Ok(self
            .read(oid)?
            .is_some_and(|b| file::might_be_sops(&b) && file::sniff(path, &b).is_some()))
    }

    fn removed_sops_file(
        &mut self,
        path: &str,
        oid: &str,
    ) -> Result<Option<Removed>, SnapshotError> {
        let Some(blob) = self.read(oid)? else {
            return Ok(None);
        };
        if !file::might_be_sops(&blob) {
            return Ok(None);
        }
        let Some(loaded) = file::sniff(path, &blob) else {
            return Ok(None);
        };
        let format = loaded.format();
        let (secret_paths, binary_len) = if format == Format::Binary {
            // One `data` value: nothing to recognise it by but its length.
            (BTreeSet::new(), binary_data_len(loaded.document().0))
        } else {
            (form::leaf_paths(loaded.document().0).0, None)
        };
        Ok(Some(Removed {
            path: path.to_string(),
            deleted_in: None,
            blob,
            format,
            secret_paths,
            binary_len,
        }))
    }

    /// Report the child's new or changed unprotected files that hold the
    /// plaintext of a SOPS file it deletes.
    pub(super) fn find_copies(
        &mut self,
        child: &Child<'_>,
        parents: &[ParentDiff],
        index: &HashMap<&str, usize>,
        protection: &[Protection],
        removed: &[Removed],
        selected: &dyn Fn(&str) -> bool,
    ) -> Result<(), SnapshotError> {
        if removed.is_empty() && self.known.is_none() {
            return Ok(());
        }
        let mut seen = std::collections::HashSet::new();
        for diff in parents {
            for change in &diff.changes {
                let Some(oid) = &change.new else { continue };
                let path = change.path.as_str();
                if !selected(path) || !seen.insert((path, oid.as_str())) {
                    continue;
                }
                let p = index.get(path).map(|i| &protection[*i]);
                if p.is_some_and(|p| p.protected() || p.unprotected) {
                    continue;
                }
                let Some(bytes) = self.read(oid)? else {
                    continue;
                };
                let plain = plaintext_paths(path, &bytes);
                let mut matched = false;
                for r in removed {
                    let exact = self
                        .known
                        .as_ref()
                        .is_some_and(|k| k.matches(&r.blob, r.format, &bytes));
                    let same_size = r
                        .binary_len
                        .is_some_and(|n| n >= MIN_COPY_LEN && n == bytes.len());
                    let how = if exact {
                        "its exact decrypted content (by this clone's known-blobs record)"
                            .to_string()
                    } else if same_size {
                        format!(
                            "exactly the size of its plaintext ({} bytes), not encrypted",
                            bytes.len()
                        )
                    } else {
                        match resembles(&r.secret_paths, &plain) {
                            Some(n) => format!(
                                "{n} of its {} encrypted keys, in plaintext",
                                r.secret_paths.len()
                            ),
                            None => continue,
                        }
                    };
                    let entry = Entry {
                        path: path.to_string(),
                        oid: oid.clone(),
                    };
                    let deleted = match &r.deleted_in {
                        Some(c) => format!("deleted in {}", short(c)),
                        None => format!(
                            "which this {} deletes",
                            if child.commit.is_some() {
                                "commit"
                            } else {
                                "change"
                            }
                        ),
                    };
                    let finding = Finding::new(
                        Kind::DecryptedCopy,
                        format!(
                            "holds the decrypted content of {}, a SOPS file {deleted}: {how}. Keep it encrypted (give this path filter=sops) or take it out; {}",
                            r.path,
                            mark_hint(path)
                        ),
                    );
                    self.push(&entry, child.commit, finding);
                    matched = true;
                }
                // A copy of any protected file this clone decrypted, deleted or not.
                let known_copy = bytes.len() >= MIN_COPY_LEN
                    && self
                        .known
                        .as_ref()
                        .is_some_and(|k| k.knows_plaintext(&bytes));
                if known_copy && !matched {
                    let entry = Entry {
                        path: path.to_string(),
                        oid: oid.clone(),
                    };
                    let finding = Finding::new(
                        Kind::DecryptedCopy,
                        format!(
                            "holds the exact decrypted content of a protected file that this clone checked out or encrypted (by its known-blobs record). Keep it encrypted (give this path filter=sops) or take it out; {}",
                            mark_hint(path)
                        ),
                    );
                    self.push(&entry, child.commit, finding);
                }
            }
        }
        Ok(())
    }
}

/// Below this size a file equal to some secret's plaintext is more likely a
/// coincidence (`{}`, `a: 1`) than a copy.
const MIN_COPY_LEN: usize = 16;

/// The plaintext length of a binary envelope's `data` value.
fn binary_data_len(doc: &sops_file::formats::Document) -> Option<usize> {
    let root = doc.docs.first()?;
    let entry = sops_file::formats::find_entry(root, "data")?;
    let sops_file::formats::Node::Leaf(leaf) = &entry.value else {
        return None;
    };
    let sops_file::formats::Scalar::Str(s) = &leaf.value else {
        return None;
    };
    sops_file::cipher::EncValue::parse(s)
        .ok()
        .map(|e| e.data.len())
}

/// The key paths of a plaintext file's non-empty values.
fn plaintext_paths(path: &str, bytes: &[u8]) -> BTreeSet<String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| file::parse_plaintext(path, text))
        .map(|doc| form::leaf_paths(&doc).1)
        .unwrap_or_default()
}

/// How many of a deleted SOPS file's encrypted key paths a plaintext file
/// carries, when that is enough to call it a copy: all of them, or, from three
/// on, at least three in four (a copy with a key dropped or renamed).
fn resembles(secret: &BTreeSet<String>, plain: &BTreeSet<String>) -> Option<usize> {
    if secret.is_empty() {
        return None;
    }
    let n = secret.intersection(plain).count();
    (n == secret.len() || (secret.len() >= 3 && n * 4 >= secret.len() * 3)).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn copies_are_recognised_by_most_of_their_keys() {
        let secret = set(&["a", "b", "c", "d", "e"]);
        assert_eq!(
            resembles(&secret, &set(&["a", "b", "c", "d", "e", "f"])),
            Some(5)
        );
        assert_eq!(resembles(&secret, &set(&["a", "b", "c", "d"])), Some(4));
        assert_eq!(resembles(&secret, &set(&["a", "b", "c"])), None);
        assert_eq!(
            resembles(&set(&["a", "b", "c", "d"]), &set(&["a", "b", "c"])),
            Some(3)
        );
        assert_eq!(resembles(&set(&["p"]), &set(&["p", "q"])), Some(1));
        assert_eq!(resembles(&set(&["p", "q"]), &set(&["p"])), None);
        assert_eq!(resembles(&set(&[]), &set(&["p"])), None);
    }

    #[test]
    fn attribute_patterns_are_anchored_and_escaped() {
        assert_eq!(gitattributes_pattern("db.yaml"), "/db.yaml");
        assert_eq!(gitattributes_pattern("a/*x"), "/a/\\*x");
        assert_eq!(gitattributes_pattern("a b/c"), "\"/a b/c\"");
    }
}
