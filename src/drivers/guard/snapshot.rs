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
use crate::git::{Git, GitError};

/// Why the repository could not be read (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not inside a git repository ({0})")]
    NotARepository(String),
    #[error("`git {args}` failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    #[error("{0}")]
    Usage(String),
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
pub const UNPROTECTED: &str = "sops-unprotected";

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
pub struct ParentDiff {
    pub parent: String,
    pub changes: Vec<Change>,
    /// `.gitattributes` or `.sops.yaml` changed, so the protection of unchanged
    /// paths may have changed too.
    pub rules_changed: bool,
}

/// Where `.gitattributes` are read from.
#[derive(Clone, Copy, Debug)]
pub enum AttrSource<'a> {
    /// The index (`check-attr --cached`).
    Index,
    /// The working tree's `.gitattributes`, falling back to the index's.
    WorkTree,
    /// A commit's tree (`check-attr --source=REV`, git ≥ 2.40).
    Tree(&'a str),
}

/// A commit of a history range and the blobs to check for it.
pub struct CommitBlobs {
    pub commit: String,
    /// How the commit differs from each of its parents, in or out of the range.
    pub parents: Vec<ParentDiff>,
    /// The commit whose `.gitattributes` / `.sops.yaml` are the same as this one's
    /// (itself when they may have changed): attributes are looked up once per source.
    pub attr_source: String,
    pub entries: Vec<Entry>,
}

/// The repository being checked.
pub struct Repo {
    git: Git,
    pub bare: bool,
}

const GITLINK: &str = "160000";
const SYMLINK: &str = "120000";

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
            .map_err(|e| SnapshotError::NotARepository(e.to_string()))?;
        if String::from_utf8_lossy(&bare).trim() == "true" {
            return Ok(Repo {
                bare: true,
                ..probe
            });
        }
        let top = probe
            .run(&["rev-parse", "--show-toplevel"], None)
            .map_err(|e| SnapshotError::NotARepository(e.to_string()))?;
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
        self.git
            .run_with_input(args, input.as_deref())
            .map_err(|e| match e {
                GitError::Spawn(e) => SnapshotError::Spawn(e),
                GitError::Failed { args, stderr } => SnapshotError::Git { args, stderr },
                GitError::NotARepository(m) => SnapshotError::NotARepository(m),
            })
    }

    /// A file at the top of the working tree, if there is one.
    pub fn worktree_file(&self, name: &str) -> Option<Vec<u8>> {
        if self.bare {
            return None;
        }
        crate::git::worktree::read_file(&self.git.dir, name)
    }

    /// One `git cat-file --batch` for all the blobs of a check.
    pub fn blobs(&self) -> Result<BlobReader, SnapshotError> {
        BlobReader::spawn(&self.git).map_err(|e| SnapshotError::Git {
            args: "cat-file --batch".into(),
            stderr: e.to_string(),
        })
    }

    /// The blobs in the index (every stage; gitlinks and symlinks skipped).
    pub fn index_entries(&self) -> Result<Vec<Entry>, SnapshotError> {
        if self.bare {
            return Err(SnapshotError::Usage(
                "a bare repository has no index; use --all or --history".into(),
            ));
        }
        let out = self.run(&["ls-files", "-s", "-z", "--full-name"], None)?;
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            // "<mode> <oid> <stage>\t<path>"
            let record = String::from_utf8_lossy(record);
            let Some((meta, path)) = record.split_once('\t') else {
                continue;
            };
            let mut fields = meta.split(' ');
            let (Some(mode), Some(oid)) = (fields.next(), fields.next()) else {
                continue;
            };
            if mode == GITLINK || mode == SYMLINK {
                continue;
            }
            let entry = Entry {
                path: path.to_string(),
                oid: oid.to_string(),
            };
            if seen.insert(entry.clone()) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Resolve a revision to a commit id; a usage error when it names none.
    pub fn commit_id(&self, rev: &str) -> Result<String, SnapshotError> {
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
    pub fn tree_entries(&self, commit: &str) -> Result<Vec<Entry>, SnapshotError> {
        let out = self.run(&["ls-tree", "-r", "-z", "--full-tree", commit], None)?;
        let mut entries = Vec::new();
        for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            // "<mode> <type> <oid>\t<path>"
            let record = String::from_utf8_lossy(record);
            let Some((meta, path)) = record.split_once('\t') else {
                continue;
            };
            let fields: Vec<&str> = meta.split(' ').collect();
            if let [mode, "blob", oid] = fields[..] {
                if mode != SYMLINK {
                    entries.push(Entry {
                        path: path.to_string(),
                        oid: oid.to_string(),
                    });
                }
            }
        }
        Ok(entries)
    }

    /// How the index differs from `parent` (a commit).
    pub fn index_changes(&self, parent: &str) -> Result<ParentDiff, SnapshotError> {
        self.raw_diff(&["diff-index", "--cached"], parent, None)
    }

    /// How tree-ish `child` differs from tree-ish `parent`.
    pub fn tree_changes(&self, parent: &str, child: &str) -> Result<ParentDiff, SnapshotError> {
        self.raw_diff(&["diff-tree"], parent, Some(child))
    }

    /// One `git diff-index` / `diff-tree` in raw form, every path, no renames.
    fn raw_diff(
        &self,
        command: &[&str],
        parent: &str,
        child: Option<&str>,
    ) -> Result<ParentDiff, SnapshotError> {
        let mut args = command.to_vec();
        args.extend(["-r", "-z", "--no-renames", "--no-abbrev", parent]);
        args.extend(child);
        args.push("--");
        let out = self.run(&args, None)?;
        let mut diff = parse_raw_diffs(&out, false).pop().unwrap_or_default();
        diff.parent = parent.to_string();
        Ok(diff)
    }

    /// The type of an object (`commit`, `tree`, `blob`, `tag`), after peeling
    /// tags, with the peeled object's id.
    pub fn peel(&self, object: &str) -> Result<(String, String), SnapshotError> {
        let spec = format!("{object}^{{}}");
        let id = self.run(&["rev-parse", "--verify", "--quiet", &spec], None)?;
        let id = String::from_utf8_lossy(&id).trim().to_string();
        let kind = self.run(&["cat-file", "-t", &id], None)?;
        Ok((String::from_utf8_lossy(&kind).trim().to_string(), id))
    }

    /// How commit `child` differs from each of its parents.
    pub fn commit_changes(&self, child: &str) -> Result<Vec<ParentDiff>, SnapshotError> {
        let parents = self.run(&["rev-parse", &format!("{child}^@")], None)?;
        let mut diffs = Vec::new();
        for parent in String::from_utf8_lossy(&parents).split_whitespace() {
            diffs.push(self.tree_changes(parent, child)?);
        }
        Ok(diffs)
    }

    /// A revision's commit id when it names one (`HEAD` in an empty repository,
    /// `MERGE_HEAD` outside a merge: `None`).
    pub fn try_commit_id(&self, rev: &str) -> Option<String> {
        self.commit_id(rev).ok()
    }

    /// The commit that stands for "what this repository protects" when a
    /// snapshot has no parent of its own (an orphan branch, a root commit in a
    /// push, a tree): HEAD, or, when HEAD names no commit (an unborn branch, a
    /// bare repository whose HEAD points at a branch nobody pushed), the most
    /// recently committed branch.
    pub fn reference_commit(&self) -> Option<String> {
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
        let source_arg;
        let mut args = vec!["check-attr", "--stdin", "-z"];
        match source {
            AttrSource::Index => args.push("--cached"),
            AttrSource::WorkTree => {}
            AttrSource::Tree(rev) => {
                source_arg = format!("--source={rev}");
                args.push(&source_arg);
            }
        }
        args.push("filter");
        args.push(crate::drivers::filetype::ATTRIBUTE);
        args.push(UNPROTECTED);
        let mut input = Vec::new();
        for p in paths {
            input.extend_from_slice(p.as_bytes());
            input.push(0);
        }
        let out = self.run(&args, Some(input))?;
        // -z output: path NUL attribute NUL value NUL, per path and attribute,
        // in input order.
        let fields: Vec<&[u8]> = out.split(|b| *b == 0).collect();
        let values: Vec<PathAttributes> = fields
            .chunks(9)
            .filter(|c| c.len() == 9)
            .map(|c| PathAttributes {
                filter: String::from_utf8_lossy(c[2]).into_owned(),
                sops_type: String::from_utf8_lossy(c[5]).into_owned(),
                unprotected: c[8] == b"set" || c[8] == b"true",
            })
            .collect();
        if values.len() != paths.len() {
            return Err(SnapshotError::Git {
                args: args.join(" "),
                stderr: format!("expected {} answers, got {}", paths.len(), values.len()),
            });
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
            SnapshotError::Git { stderr, .. } => {
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
        let mut input = String::new();
        for c in &commits {
            for p in &c[1..] {
                input.push_str(&format!("{} {}\n", c[0], p));
                pairs.push((c[0].clone(), p.clone()));
            }
        }
        let mut diffs: HashMap<String, Vec<ParentDiff>> = HashMap::new();
        if !pairs.is_empty() {
            // --always: a header for every pair, even one without changes, so the
            // answers line up with the pairs asked.
            let out = self.run(
                &[
                    "diff-tree",
                    "--stdin",
                    "--always",
                    "-r",
                    "-z",
                    "--no-renames",
                    "--no-abbrev",
                ],
                Some(input.into_bytes()),
            )?;
            let answers = parse_raw_diffs(&out, true);
            if answers.len() != pairs.len() {
                return Err(SnapshotError::Git {
                    args: "diff-tree --stdin".into(),
                    stderr: format!("expected {} answers, got {}", pairs.len(), answers.len()),
                });
            }
            for ((commit, parent), mut diff) in pairs.into_iter().zip(answers) {
                diff.parent = parent;
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

/// `git diff-tree -z` / `git diff-index -z` raw output as one diff per header
/// (`with_headers`: `--stdin` output, where each pair starts with a commit id
/// line) or as one diff (no headers).
fn parse_raw_diffs(out: &[u8], with_headers: bool) -> Vec<ParentDiff> {
    let mut diffs: Vec<ParentDiff> = Vec::new();
    if !with_headers {
        diffs.push(ParentDiff::default());
    }
    let mut tokens = out.split(|b| *b == 0).filter(|t| !t.is_empty());
    while let Some(tok) = tokens.next() {
        let Some(raw) = tok.strip_prefix(b":") else {
            if with_headers {
                diffs.push(ParentDiff::default());
            }
            continue;
        };
        let Some(path) = tokens.next() else { break };
        if let (Some(change), Some(diff)) = (parse_raw(raw, path), diffs.last_mut()) {
            diff.rules_changed |= is_rules_file(&change.path);
            diff.changes.push(change);
        }
    }
    diffs
}

/// One record of `git diff-tree -z` / `git diff-index -z` raw output: the
/// fields after the leading `:` (`<old mode> <new mode> <old oid> <new oid>
/// <status>`) and the path. Gitlinks and symlinks count as absent: the guard
/// checks blobs only.
fn parse_raw(raw: &[u8], path: &[u8]) -> Option<Change> {
    let raw = String::from_utf8_lossy(raw);
    let f: Vec<&str> = raw.split(' ').collect();
    let [old_mode, new_mode, old_oid, new_oid, _] = f[..] else {
        return None;
    };
    let blob = |mode: &str, oid: &str| {
        (mode != GITLINK && mode != SYMLINK && !oid.bytes().all(|b| b == b'0'))
            .then(|| oid.to_string())
    };
    Some(Change {
        path: String::from_utf8_lossy(path).into_owned(),
        old: blob(old_mode, old_oid),
        new: blob(new_mode, new_oid),
    })
}
