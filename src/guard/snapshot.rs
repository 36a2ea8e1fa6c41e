//! Reading what the guard checks out of git, in a fixed, small number of git
//! processes however many files there are: one listing (`ls-files -s` for the
//! index, `ls-tree -r` for a commit, `rev-list` + one `diff-tree --stdin` for a
//! history range), one `check-attr` per attribute source, and one persistent
//! `cat-file --batch` for every blob. Everything comes from the object store and
//! the index; the working tree is never read.
//!
//! `GIT_INDEX_FILE` (set by git for every pre-commit hook, pointing at a
//! temporary index for `git commit -a` / `git commit PATH`) is honoured: git
//! commands inherit it, and a relative value is made absolute first because the
//! commands run at the top of the working tree.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::git::cat_file::BlobReader;
use crate::git::diff_raw::RawChange;
use crate::git::{AttrSource, Git, GitError};

/// Why the repository could not be read (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{0}")]
    Usage(String),
}

impl SnapshotError {
    /// git answered, but not with what was asked (a count of answers that does
    /// not line up, a batch reader that stopped).
    pub(super) fn unexpected(args: &str, what: impl std::fmt::Display) -> SnapshotError {
        SnapshotError::Git(GitError::Failed {
            args: args.to_string(),
            stderr: what.to_string(),
        })
    }
}

/// One blob at one path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub path: String,
    pub oid: String,
}

/// The attributes the guard reads for a path, as git reports them
/// ("sops", "unspecified", a value, ...).
#[derive(Clone, Debug)]
pub struct PathAttributes {
    pub filter: String,
    pub sops_type: String,
    /// `sops-unprotected` is set: protection was taken away on purpose.
    pub unprotected: bool,
}

/// The attribute that marks a path as deliberately unprotected: the reviewable
/// way to take protection away from a file that had it.
pub(crate) const UNPROTECTED: &str = "sops-unprotected";

/// One path that differs between a parent and a child snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    /// The blob in the parent (`None`: added, or not a blob there).
    pub old: Option<String>,
    /// The blob in the child (`None`: deleted, or not a blob there).
    pub new: Option<String>,
}

/// How a child snapshot differs from one of its parents.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParentDiff {
    pub parent: String,
    pub changes: Vec<Change>,
    /// `.gitattributes` or `.sops.yaml` changed, so the protection of unchanged
    /// paths may have changed too.
    pub(crate) rules_changed: bool,
}

impl ParentDiff {
    fn new(parent: &str, changes: Vec<RawChange>) -> ParentDiff {
        let changes: Vec<Change> = changes
            .into_iter()
            .map(|c| Change {
                path: String::from_utf8_lossy(&c.path).into_owned(),
                old: c.old,
                new: c.new,
            })
            .collect();
        ParentDiff {
            parent: parent.to_string(),
            rules_changed: changes.iter().any(|c| is_rules_file(&c.path)),
            changes,
        }
    }
}

/// A commit of a history range and the blobs to check for it.
pub struct CommitBlobs {
    pub commit: String,
    /// How the commit differs from each of its parents, in or out of the range.
    pub(crate) parents: Vec<ParentDiff>,
    /// The commit whose `.gitattributes` / `.sops.yaml` are the same as this one's
    /// (itself when they may have changed): attributes are looked up once per source.
    pub(crate) attr_source: String,
    pub entries: Vec<Entry>,
}

/// The repository being checked.
pub struct Repo {
    git: Git,
    pub bare: bool,
}

impl Repo {
    /// The repository containing `dir`: its working-tree top, or the repository
    /// itself when it is bare (a server running the check in a pre-receive hook).
    pub fn open(dir: &Path) -> Result<Repo, SnapshotError> {
        let index_file = std::env::var_os("GIT_INDEX_FILE")
            .filter(|v| !v.is_empty())
            .map(|v| {
                let p = PathBuf::from(&v);
                if p.is_absolute() {
                    v
                } else {
                    std::path::absolute(dir.join(p))
                        .map(OsString::from)
                        .unwrap_or(v)
                }
            });
        let probe = Repo {
            git: Git {
                index_file: index_file.clone(),
                ..Git::new(dir)
            },
            bare: false,
        };
        let bare = probe
            .run(&["rev-parse", "--is-bare-repository"], None)
            .map_err(|e| GitError::NotARepository(e.to_string()))?;
        if String::from_utf8_lossy(&bare).trim() == "true" {
            return Ok(Repo {
                bare: true,
                ..probe
            });
        }
        let top = probe
            .run(&["rev-parse", "--show-toplevel"], None)
            .map_err(|e| GitError::NotARepository(e.to_string()))?;
        let top = String::from_utf8_lossy(&top)
            .trim_end_matches('\n')
            .to_string();
        Ok(Repo {
            git: Git {
                index_file,
                ..Git::new(top)
            },
            bare: false,
        })
    }

    pub fn git(&self) -> &Git {
        &self.git
    }

    /// Run git at the top of the repository; stdout on success.
    fn run(&self, args: &[&str], input: Option<Vec<u8>>) -> Result<Vec<u8>, SnapshotError> {
        Ok(self.git.run_with_input(args, input.as_deref())?)
    }

    /// A file at the top of the working tree, if there is one.
    pub(crate) fn worktree_file(&self, name: &str) -> Option<Vec<u8>> {
        if self.bare {
            return None;
        }
        crate::git::worktree::read_file(&self.git.dir, name)
    }

    /// One `git cat-file --batch` for all the blobs of a check.
    pub fn blobs(&self) -> Result<BlobReader, SnapshotError> {
        Ok(BlobReader::spawn(&self.git)?)
    }

    /// The blobs in the index (every stage; gitlinks and symlinks skipped).
    pub(crate) fn index_entries(&self) -> Result<Vec<Entry>, SnapshotError> {
        if self.bare {
            return Err(SnapshotError::Usage(
                "a bare repository has no index; use --all or --history".into(),
            ));
        }
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        for e in self.git.index_entries(&[])? {
            if !e.is_file() {
                continue;
            }
            let entry = Entry {
                path: String::from_utf8_lossy(&e.path).into_owned(),
                oid: e.oid,
            };
            if seen.insert(entry.clone()) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Resolve a revision to a commit id; a usage error when it names none.
    pub(crate) fn commit_id(&self, rev: &str) -> Result<String, SnapshotError> {
        let spec = format!("{rev}^{{commit}}");
        self.run(
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
            None,
        )
        .ok()
        .map(|o| String::from_utf8_lossy(&o).trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            SnapshotError::Usage(format!(
                "`{rev}` does not name a commit (is the branch still empty?)"
            ))
        })
    }

    /// The blobs of a commit's tree.
    pub(crate) fn tree_entries(&self, commit: &str) -> Result<Vec<Entry>, SnapshotError> {
        let entries = self
            .git
            .tree_entries(commit)?
            .into_iter()
            .filter(|e| e.is_file())
            .map(|e| Entry {
                path: String::from_utf8_lossy(&e.path).into_owned(),
                oid: e.oid,
            })
            .collect();
        Ok(entries)
    }

    /// How the index differs from `parent` (a commit).
    pub(crate) fn index_changes(&self, parent: &str) -> Result<ParentDiff, SnapshotError> {
        Ok(ParentDiff::new(parent, self.git.diff_index_cached(parent)?))
    }

    /// How tree-ish `child` differs from tree-ish `parent`.
    pub(crate) fn tree_changes(
        &self,
        parent: &str,
        child: &str,
    ) -> Result<ParentDiff, SnapshotError> {
        Ok(ParentDiff::new(parent, self.git.diff_tree(parent, child)?))
    }

    /// The type of an object (`commit`, `tree`, `blob`, `tag`), after peeling
    /// tags, with the peeled object's id.
    pub(crate) fn peel(&self, object: &str) -> Result<(String, String), SnapshotError> {
        let spec = format!("{object}^{{}}");
        let id = self.run(&["rev-parse", "--verify", "--quiet", &spec], None)?;
        let id = String::from_utf8_lossy(&id).trim().to_string();
        let kind = self.run(&["cat-file", "-t", &id], None)?;
        Ok((String::from_utf8_lossy(&kind).trim().to_string(), id))
    }

    /// How commit `child` differs from each of its parents.
    pub(crate) fn commit_changes(&self, child: &str) -> Result<Vec<ParentDiff>, SnapshotError> {
        let parents = self.run(&["rev-parse", &format!("{child}^@")], None)?;
        let mut diffs = Vec::new();
        for parent in String::from_utf8_lossy(&parents).split_whitespace() {
            diffs.push(self.tree_changes(parent, child)?);
        }
        Ok(diffs)
    }

    /// A revision's commit id when it names one (`HEAD` in an empty repository,
    /// `MERGE_HEAD` outside a merge: `None`).
    pub(crate) fn try_commit_id(&self, rev: &str) -> Option<String> {
        self.commit_id(rev).ok()
    }

    /// The commit that stands for "what this repository protects" when a
    /// snapshot has no parent of its own (an orphan branch, a root commit in a
    /// push, a tree): HEAD, or, when HEAD names no commit (an unborn branch, a
    /// bare repository whose HEAD points at a branch nobody pushed), the most
    /// recently committed branch.
    pub(crate) fn reference_commit(&self) -> Option<String> {
        if let Some(head) = self.try_commit_id("HEAD") {
            return Some(head);
        }
        let out = self
            .run(
                &[
                    "for-each-ref",
                    "--sort=-committerdate",
                    "--count=1",
                    "--format=%(objectname)",
                    "refs/heads/",
                ],
                None,
            )
            .ok()?;
        let id = String::from_utf8_lossy(&out).trim().to_string();
        (!id.is_empty()).then_some(id)
    }

    /// The `filter`, `sops-type` and `sops-unprotected` attributes of each path, in order.
    pub fn attributes(
        &self,
        source: AttrSource<'_>,
        paths: &[&str],
    ) -> Result<Vec<PathAttributes>, SnapshotError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let paths: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
        let rows = self.git.check_attrs(
            source,
            &[
                "filter",
                crate::drivers::filter::sops_type::ATTRIBUTE,
                UNPROTECTED,
            ],
            &paths,
        )?;
        let values: Vec<PathAttributes> = rows
            .into_iter()
            .map(|row| PathAttributes {
                filter: row[0].clone(),
                sops_type: row[1].clone(),
                unprotected: row[2] == "set" || row[2] == "true",
            })
            .collect();
        if values.len() != paths.len() {
            return Err(SnapshotError::unexpected(
                "check-attr --stdin",
                format!("expected {} answers, got {}", paths.len(), values.len()),
            ));
        }
        Ok(values)
    }

    /// The blobs a history range brings: for each commit (parents first), the
    /// blobs it adds or changes relative to each of its parents in the range, or
    /// its whole tree when no parent is in the range (a root commit, or the first
    /// commit after the range's base) or when it changes `.gitattributes` or
    /// `.sops.yaml` (which can protect files that did not change). Every blob of
    /// every commit in the range is thereby covered: a blob not listed for a
    /// commit is identical, at the same path and under the same rules, to one
    /// listed for an ancestor in the range.
    pub fn history(&self, range: &str) -> Result<Vec<CommitBlobs>, SnapshotError> {
        let mut args = vec!["rev-list", "--topo-order", "--reverse", "--parents"];
        let words: Vec<&str> = range.split_whitespace().collect();
        if words.is_empty() {
            return Err(SnapshotError::Usage(
                "--history needs a revision range, e.g. origin/main..HEAD".into(),
            ));
        }
        args.extend(&words);
        args.push("--");
        let out = self.run(&args, None).map_err(|e| match e {
            SnapshotError::Git(GitError::Failed { stderr, .. }) => {
                SnapshotError::Usage(format!("bad revision range `{range}`: {stderr}"))
            }
            other => other,
        })?;
        let commits: Vec<Vec<String>> = String::from_utf8_lossy(&out)
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.is_empty())
            .collect();
        let in_range: HashSet<&str> = commits.iter().map(|c| c[0].as_str()).collect();

        // One diff-tree for every (commit, parent) pair, parents outside the range
        // included: what a commit takes away from its parent matters too.
        let mut pairs = Vec::new();
        for c in &commits {
            for p in &c[1..] {
                pairs.push((c[0].clone(), p.clone()));
            }
        }
        let mut diffs: HashMap<String, Vec<ParentDiff>> = HashMap::new();
        if !pairs.is_empty() {
            let answers = self.git.diff_tree_pairs(&pairs)?;
            for ((commit, parent), changes) in pairs.into_iter().zip(answers) {
                let diff = ParentDiff::new(&parent, changes);
                diffs.entry(commit).or_default().push(diff);
            }
        }

        let mut result = Vec::new();
        let mut sources: HashMap<String, String> = HashMap::new();
        for c in &commits {
            let id = &c[0];
            let parents_in_range: Vec<&String> = c[1..]
                .iter()
                .filter(|p| in_range.contains(p.as_str()))
                .collect();
            let parents = diffs.remove(id).unwrap_or_default();
            let in_range_diffs: Vec<&ParentDiff> = parents
                .iter()
                .filter(|d| in_range.contains(d.parent.as_str()))
                .collect();
            let rules_changed = in_range_diffs.iter().any(|d| d.rules_changed);
            let whole_tree = parents_in_range.is_empty() || rules_changed;
            let entries = if whole_tree {
                self.tree_entries(id)?
            } else {
                let mut seen = HashSet::new();
                in_range_diffs
                    .iter()
                    .flat_map(|d| &d.changes)
                    .filter_map(|ch| {
                        let oid = ch.new.clone()?;
                        let entry = Entry {
                            path: ch.path.clone(),
                            oid,
                        };
                        seen.insert(entry.clone()).then_some(entry)
                    })
                    .collect()
            };
            let attr_source = match parents_in_range[..] {
                [parent] if !whole_tree => sources
                    .get(parent.as_str())
                    .cloned()
                    .unwrap_or_else(|| id.clone()),
                _ => id.clone(),
            };
            sources.insert(id.clone(), attr_source.clone());
            result.push(CommitBlobs {
                commit: id.clone(),
                parents,
                attr_source,
                entries,
            });
        }
        Ok(result)
    }
}

/// Files whose change can change which paths are protected.
fn is_rules_file(path: &str) -> bool {
    path == ".sops.yaml" || path.rsplit('/').next() == Some(".gitattributes")
}
