//! Reading one attribute for many paths through one long-lived
//! `git check-attr --stdin -z`: git's filter protocol sends only the path, so the
//! filter asks for the `sops-type` attribute of every file it handles, and a
//! process per file would dominate `git status` on a large tree. git flushes its
//! answer after each path when its stdout is a pipe.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout};

use super::command::{Git, GitError};

pub struct AttrReader {
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
        self.stdin.write_all(path.as_bytes())?;
        self.stdin.write_all(b"\0")?;
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

impl Drop for AttrReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
