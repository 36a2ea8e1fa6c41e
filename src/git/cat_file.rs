//! Reading blobs through one long-lived `git cat-file --batch -z`: the filter asks
//! for `:path` (the staged blob) and `HEAD:path` for every file it cleans, and a
//! process per lookup would dominate `git status` on a large tree.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout};

use super::command::{Git, GitError};

pub struct BlobReader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl BlobReader {
    pub fn spawn(git: &Git) -> Result<BlobReader, GitError> {
        let (child, stdin, stdout) = git.spawn_batch(&["cat-file", "--batch", "-z"])?;
        Ok(BlobReader {
            child,
            stdin,
            stdout,
        })
    }

    /// The content of the blob named by `spec` (e.g. `:path`, `HEAD:path`), or
    /// `None` when there is no such object or it is not a blob.
    pub fn read(&mut self, spec: &str) -> std::io::Result<Option<Vec<u8>>> {
        if spec.contains('\0') {
            return Ok(None);
        }
        self.stdin.write_all(spec.as_bytes())?;
        self.stdin.write_all(b"\0")?;
        self.stdin.flush()?;
        let mut header = Vec::new();
        self.stdout.read_until(b'\n', &mut header)?;
        if header.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "git cat-file exited",
            ));
        }
        let header = String::from_utf8_lossy(&header).trim_end().to_string();
        // "<oid> <type> <size>", or "<spec> missing" / "<spec> ambiguous".
        let fields: Vec<&str> = header.rsplitn(3, ' ').collect();
        if let [size, kind, _] = fields[..] {
            if let Ok(size) = size.parse::<usize>() {
                let mut content = vec![0u8; size + 1];
                self.stdout.read_exact(&mut content)?;
                content.pop(); // the LF after the content
                return Ok((kind == "blob").then_some(content));
            }
        }
        Ok(None)
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Git {
    /// The size of each object named (`<oid>` or `<rev>:<path>`), through one
    /// `git cat-file --batch-check`: `None` for one that is missing or not a
    /// blob. A caller reading pushed content asks before reading a blob whole.
    pub(crate) fn blob_sizes(&self, specs: &[&str]) -> Result<Vec<Option<usize>>, GitError> {
        let input: String = specs
            .iter()
            .map(|s| format!("{}\n", s.replace(['\n', '\0'], " ")))
            .collect();
        let out = self.run_with_input(
            &["cat-file", "--batch-check=%(objecttype) %(objectsize)"],
            Some(input.as_bytes()),
        )?;
        let text = String::from_utf8_lossy(&out);
        let sizes: Vec<Option<usize>> = text
            .lines()
            .map(|l| match l.split_once(' ') {
                Some(("blob", size)) => size.parse().ok(),
                _ => None,
            })
            .collect();
        if sizes.len() != specs.len() {
            return Err(GitError::Failed {
                args: "cat-file --batch-check".into(),
                stderr: format!("expected {} answers, got {}", specs.len(), sizes.len()),
            });
        }
        Ok(sizes)
    }
}
