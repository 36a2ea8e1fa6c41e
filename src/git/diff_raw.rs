//! What changed between two trees, or a tree and the index (`git diff-tree`,
//! `git diff-index --cached`, in raw form: every path, no renames), parsed here
//! and nowhere else. Paths stay bytes.

use super::command::{Git, GitError};
use super::{GITLINK, SYMLINK};

/// One path that differs. Submodules, symbolic links and absent sides count as
/// no blob: callers that read files look at blobs only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawChange {
    pub path: Vec<u8>,
    /// The blob on the old side (`None`: added, or not a blob there).
    pub old: Option<String>,
    /// The blob on the new side (`None`: deleted, or not a blob there).
    pub new: Option<String>,
}

const RAW: [&str; 4] = ["-r", "-z", "--no-renames", "--no-abbrev"];

impl Git {
    /// How the index differs from commit `parent`.
    pub(crate) fn diff_index_cached(&self, parent: &str) -> Result<Vec<RawChange>, GitError> {
        let mut args = vec!["diff-index", "--cached"];
        args.extend(RAW);
        args.extend([parent, "--"]);
        Ok(parse(&self.run(&args)?, false).pop().unwrap_or_default())
    }

    /// How tree-ish `child` differs from tree-ish `parent`.
    pub(crate) fn diff_tree(&self, parent: &str, child: &str) -> Result<Vec<RawChange>, GitError> {
        let mut args = vec!["diff-tree"];
        args.extend(RAW);
        args.extend([parent, child, "--"]);
        Ok(parse(&self.run(&args)?, false).pop().unwrap_or_default())
    }

    /// How each child differs from its parent, for many (child, parent) pairs
    /// through one `git diff-tree --stdin`: one answer per pair, in order.
    pub(crate) fn diff_tree_pairs(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Vec<RawChange>>, GitError> {
        let input: String = pairs.iter().map(|(c, p)| format!("{c} {p}\n")).collect();
        // --always: a header for every pair, even one without changes, so the
        // answers line up with the pairs asked.
        let mut args = vec!["diff-tree", "--stdin", "--always"];
        args.extend(RAW);
        let answers = parse(&self.run_with_input(&args, Some(input.as_bytes()))?, true);
        if answers.len() != pairs.len() {
            return Err(GitError::Failed {
                args: "diff-tree --stdin".into(),
                stderr: format!("expected {} answers, got {}", pairs.len(), answers.len()),
            });
        }
        Ok(answers)
    }
}

/// Raw `-z` output as one list of changes per header (`with_headers`: `--stdin`
/// output, where each pair starts with a commit id) or as one list.
fn parse(out: &[u8], with_headers: bool) -> Vec<Vec<RawChange>> {
    let mut diffs: Vec<Vec<RawChange>> = Vec::new();
    if !with_headers {
        diffs.push(Vec::new());
    }
    let mut tokens = out.split(|b| *b == 0).filter(|t| !t.is_empty());
    while let Some(tok) = tokens.next() {
        let Some(raw) = tok.strip_prefix(b":") else {
            if with_headers {
                diffs.push(Vec::new());
            }
            continue;
        };
        let Some(path) = tokens.next() else { break };
        if let (Some(change), Some(diff)) = (parse_record(raw, path), diffs.last_mut()) {
            diff.push(change);
        }
    }
    diffs
}

/// One record: the fields after the leading `:` (`<old mode> <new mode> <old
/// oid> <new oid> <status>`) and the path.
fn parse_record(raw: &[u8], path: &[u8]) -> Option<RawChange> {
    let raw = std::str::from_utf8(raw).ok()?;
    let f: Vec<&str> = raw.split(' ').collect();
    let [old_mode, new_mode, old_oid, new_oid, _] = f[..] else {
        return None;
    };
    let blob = |mode: &str, oid: &str| {
        (mode != GITLINK && mode != SYMLINK && !oid.bytes().all(|b| b == b'0'))
            .then(|| oid.to_string())
    };
    Some(RawChange {
        path: path.to_vec(),
        old: blob(old_mode, old_oid),
        new: blob(new_mode, new_oid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_headers() {
        let z = "0000000000000000000000000000000000000000";
        let one =
            format!(":100644 100644 aaaa bbbb M\0a.yaml\0:000000 100644 {z} cccc A\0n\u{1}\0");
        let d = parse(one.as_bytes(), false);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0][0].old.as_deref(), Some("aaaa"));
        assert_eq!(d[0][1].old, None);
        let two = "c1\0:160000 160000 aaaa bbbb M\0sub\0c2\0";
        let d = parse(two.as_bytes(), true);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0][0].old.as_ref(), d[0][0].new.as_ref()), (None, None));
        assert!(d[1].is_empty());
    }
}
