//! `git check-attr`, parsed here and nowhere else: [`Git::check_attrs`] asks for
//! several attributes of many paths at once, and [`AttrReader`] asks a
//! few attributes of one path at a time through one long-lived `git check-attr
//! --stdin -z`: git's filter protocol sends only the path, so the filter asks
//! for the `sops-type` and `sops-worktree` attributes of every file it handles (one
//! round trip for both), and a process per
//! file would dominate `git status` on a large tree. git flushes its answer
//! after each path when its stdout is a pipe.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout};

use super::command::{Git, GitError};

/// Where `.gitattributes` are read from.
#[derive(Clone, Copy, Debug)]
pub enum AttrSource<'a> {
    /// The index (`check-attr --cached`).
    Index,
    /// The working tree's `.gitattributes`, falling back to the index's.
    WorkTree,
    /// A tree-ish (`check-attr --source=REV`, git ≥ 2.40).
    Tree(&'a str),
}

impl Git {
    /// The values of `attrs` for each of `paths`, as git reports them
    /// (`unspecified`, `set`, `unset` or the value): one row per path, in
    /// order, one column per attribute.
    pub(crate) fn check_attrs(
        &self,
        source: AttrSource<'_>,
        attrs: &[&str],
        paths: &[&[u8]],
    ) -> Result<Vec<Vec<String>>, GitError> {
        if paths.is_empty() || attrs.is_empty() {
            return Ok(vec![Vec::new(); paths.len()]);
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
        args.extend(attrs);
        let mut input = Vec::new();
        for p in paths {
            // Paths come from git, which never puts NUL in one; a NUL would
            // shift every answer after it, so it cannot reach git.
            input.extend(p.iter().map(|&b| if b == 0 { b'?' } else { b }));
            input.push(0);
        }
        let out = self.run_with_input(&args, Some(&input))?;
        Ok(parse(&out, attrs.len()))
    }
}

/// Parse `check-attr -z` output (`path NUL attribute NUL value NUL`, per path
/// and attribute, in input order) into one row of `width` values per path.
fn parse(out: &[u8], width: usize) -> Vec<Vec<String>> {
    let out = out.strip_suffix(b"\0").unwrap_or(out);
    let fields: Vec<&[u8]> = out.split(|b| *b == 0).collect();
    fields
        .chunks(3 * width)
        .filter(|c| c.len() == 3 * width)
        .map(|c| {
            c.chunks(3)
                .map(|f| String::from_utf8_lossy(f[2]).into_owned())
                .collect()
        })
        .collect()
}

pub(crate) struct AttrReader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// How many attributes each answer holds.
    width: usize,
}

impl AttrReader {
    /// A reader of `attrs` as the working tree (then the index) sets them,
    /// or, with `source`, as the `.gitattributes` files of that tree-ish do.
    /// Several attributes cost one round trip per path, not one each.
    pub fn spawn(git: &Git, attrs: &[&str], source: Option<&str>) -> Result<AttrReader, GitError> {
        let source = source.map(|s| format!("--source={s}"));
        let mut args = vec!["check-attr"];
        args.extend(source.as_deref());
        args.extend(["--stdin", "-z"]);
        args.extend(attrs);
        let (child, stdin, stdout) = git.spawn_batch(&args)?;
        Ok(AttrReader {
            child,
            stdin,
            stdout,
            width: attrs.len(),
        })
    }

    /// The attributes' values for `path`, in the order asked for:
    /// `unspecified`, `set`, `unset` or the value.
    pub fn read(&mut self, path: &str) -> std::io::Result<Vec<String>> {
        if path.contains('\0') {
            return Ok(vec!["unspecified".to_string(); self.width]);
        }
        let mut rows = self.read_many(&[path])?;
        rows.pop()
            .ok_or_else(|| std::io::Error::other("git check-attr answered nothing"))
    }

    /// The values of this reader's attributes for each of `paths`, asked in
    /// one write and read in one go: a filter reading ahead asks for the paths
    /// git is likely to send next.
    pub fn read_many(&mut self, paths: &[&str]) -> std::io::Result<Vec<Vec<String>>> {
        let width = self.width;
        let mut input = Vec::new();
        for p in paths {
            // A NUL would shift every answer after it (git never sends one).
            input.extend(p.bytes().map(|b| if b == 0 { b'?' } else { b }));
            input.push(0);
        }
        self.stdin.write_all(&input)?;
        self.stdin.flush()?;
        let mut rows = Vec::with_capacity(paths.len());
        let mut field = Vec::new();
        for _ in paths {
            let mut row = Vec::with_capacity(width);
            for _ in 0..width {
                // path NUL attribute NUL value NUL
                for _ in 0..3 {
                    field.clear();
                    self.stdout.read_until(0, &mut field)?;
                    if field.pop() != Some(0) {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "git check-attr exited",
                        ));
                    }
                }
                row.push(String::from_utf8_lossy(&field).into_owned());
            }
            rows.push(row);
        }
        Ok(rows)
    }
}

impl Drop for AttrReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_per_path_columns_per_attribute() {
        let out = b"a\0filter\0sops\0a\0sops-type\0yaml\0b\xff\0filter\0unspecified\0b\xff\0sops-type\0set\0";
        assert_eq!(
            super::parse(out, 2),
            vec![vec!["sops", "yaml"], vec!["unspecified", "set"]]
        );
        assert!(super::parse(b"a\0filter\0", 1).is_empty());
    }
}
