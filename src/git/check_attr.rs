//! `git check-attr`, parsed here and nowhere else: [`Git::check_attrs`] asks for
//! several attributes of many paths at once, and [`AttrReader`] asks one
//! attribute of one path at a time through one long-lived `git check-attr
//! --stdin -z`: git's filter protocol sends only the path, so the filter asks
//! for the `sops-type` attribute of every file it handles, and a process per
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
}

impl AttrReader {
    /// A reader of `attr` as the working tree (then the index) sets it, or, with
    /// `source`, as the `.gitattributes` files of that tree-ish do.
    pub fn spawn(git: &Git, attr: &str, source: Option<&str>) -> Result<AttrReader, GitError> {
        let source = source.map(|s| format!("--source={s}"));
        let mut args = vec!["check-attr"];
        args.extend(source.as_deref());
        args.extend(["--stdin", "-z", attr]);
        let (child, stdin, stdout) = git.spawn_batch(&args)?;
        Ok(AttrReader {
            child,
            stdin,
            stdout,
        })
    }

    /// The attribute's value for `path`: `unspecified`, `set`, `unset` or the value.
    pub fn read(&mut self, path: &str) -> std::io::Result<String> {
        if path.contains('\0') {
            return Ok("unspecified".to_string());
        }
        // One write: every write wakes git.
        let mut line = Vec::with_capacity(path.len() + 1);
        line.extend_from_slice(path.as_bytes());
        line.push(0);
        self.stdin.write_all(&line)?;
        self.stdin.flush()?;
        // -z output: path NUL attribute NUL value NUL.
        let mut value = Vec::new();
        for _ in 0..3 {
            value.clear();
            self.stdout.read_until(0, &mut value)?;
            if value.pop() != Some(0) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "git check-attr exited",
                ));
            }
        }
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

impl AttrReader {
    /// The values of this reader's attributes (`width` of them, as spawned)
    /// for each of `paths`, asked in one write and read in one go: a filter
    /// reading ahead asks for the paths git is likely to send next.
    pub fn read_many(&mut self, paths: &[&str], width: usize) -> std::io::Result<Vec<Vec<String>>> {
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

    /// A reader of several attributes (see [`AttrReader::read_many`]).
    pub fn spawn_many(git: &Git, attrs: &[&str]) -> Result<AttrReader, GitError> {
        let mut args = vec!["check-attr", "--stdin", "-z"];
        args.extend(attrs);
        let (child, stdin, stdout) = git.spawn_batch(&args)?;
        Ok(AttrReader {
            child,
            stdin,
            stdout,
        })
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
