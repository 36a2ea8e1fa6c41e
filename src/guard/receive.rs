//! The server side (`hooks/pre-receive`, which runs `git-sops pre-receive`):
//! everything a push makes reachable is checked before any ref moves, not only
//! the commits of branch updates.
//!
//! For each updated ref (`<old> <new> <ref>` lines on standard input):
//! - `refs/notes/textconv/*` is refused outright: it is git's cache of textconv
//!   output, which for a protected file is its decrypted content;
//! - whatever the new value points at is peeled (through annotated tags) and
//!   checked by its type: the commits it brings (`NEW --not --all`: the push's
//!   objects are not reachable from any existing ref yet) with the history
//!   rules, a root commit (an orphan branch) remembering what HEAD protects as
//!   if HEAD were its parent; a tree under its own rules, likewise; a blob,
//!   which has no path and so no protection to go by, only when it is an intact
//!   SOPS file.

use std::path::Path;

use super::finding::{Finding, Kind};
use super::snapshot::{Repo, SnapshotError};
use super::{check_tree, Checker, Report};
use sops_file::{file, form};

fn zero(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b == b'0')
}

fn finding(path: &str, kind: Kind, message: String) -> Finding {
    let mut f = Finding::new(kind, message);
    f.path = path.to_string();
    f
}

/// Check a push, given the ref updates git passes to `pre-receive`.
pub fn check(dir: &Path, updates: &str) -> Result<Report, SnapshotError> {
    let repo = Repo::open(dir)?;
    let mut checker = Checker::new(&repo)?;
    let head = repo.reference_commit();
    for line in updates.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_old, new, name] = fields[..] else {
            continue;
        };
        if zero(new) {
            continue; // a deleted ref brings nothing
        }
        if name.starts_with("refs/notes/textconv/") {
            checker.report.add(finding(
                name,
                Kind::DecryptedFile,
                "git's textconv cache (`diff.<driver>.cachetextconv`) holds decrypted diffs of protected files; it is never accepted".into(),
            ));
            continue;
        }
        let (kind, id) = repo.peel(new)?;
        match kind.as_str() {
            "commit" => {
                let range = format!("{id} --not --all");
                let mut commits = repo.history(&range)?;
                // A root commit (an orphan branch) has no parent to remember
                // what was protected: the repository's HEAD (or its latest
                // branch, when HEAD names none) stands in for one.
                if let Some(head) = &head {
                    for c in commits.iter_mut().filter(|c| c.parents.is_empty()) {
                        c.parents.push(repo.tree_changes(head, &c.commit)?);
                    }
                }
                checker.report.commits += commits.len();
                checker.history(&commits, &|_| true)?;
            }
            "tree" => check_tree(&mut checker, &id, head.as_deref())?,
            "blob" => {
                let bytes = checker.read(&id)?.unwrap_or_default();
                let intact = file::sniff(name, &bytes).is_some_and(|loaded| {
                    let (doc, _) = loaded.document();
                    form::check(doc, &loaded.meta, 0, 1).is_empty()
                });
                if !intact {
                    checker.report.add(finding(
                        name,
                        Kind::NotEncrypted,
                        format!("the ref points straight at a blob ({id}), which has no path, so nothing says whether it is a protected secret; push it inside a commit"),
                    ));
                }
            }
            other => {
                checker.report.add(finding(
                    name,
                    Kind::Unparseable,
                    format!("the ref points at a {other} object, which the guard cannot check"),
                ));
            }
        }
    }
    Ok(checker.report)
}
