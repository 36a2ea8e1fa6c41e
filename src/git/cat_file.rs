//! Reading blobs through one long-lived `git cat-file --batch -z`: the filter asks
//! for `:path` (the staged blob) and `HEAD:path` for every file it cleans, and a
//! process per lookup would dominate `git status` on a large tree.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout};

use super::command::{Git, GitError};

/// Questions sent ahead at most (each answer waits in the pipe until read).
const MAX_AHEAD: usize = 8;

pub struct BlobReader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Specs asked with [`BlobReader::ask`] whose answers are not read yet, oldest first.
    asked: VecDeque<String>,
}

impl BlobReader {
    pub fn spawn(git: &Git) -> Result<BlobReader, GitError> {
        let (child, stdin, stdout) = git.spawn_batch(&["cat-file", "--batch", "-z"])?;
        Ok(BlobReader {
            child,
            stdin,
            stdout,
            asked: VecDeque::new(),
        })
    }

    /// Send the question for `spec` now and read its answer with a later
    /// [`BlobReader::read`] of the same spec: git looks the object up while
    /// the caller does something else (the filter asks `git check-attr`
    /// meanwhile). At most a few questions are kept outstanding.
    pub fn ask(&mut self, spec: &str) -> std::io::Result<()> {
        if spec.contains('\0') || self.asked.len() >= MAX_AHEAD {
            return Ok(());
        }
        self.send(spec)?;
        self.asked.push_back(spec.to_string());
        Ok(())
    }

    fn send(&mut self, spec: &str) -> std::io::Result<()> {
        // One write: every write wakes git.
        let mut line = Vec::with_capacity(spec.len() + 1);
        line.extend_from_slice(spec.as_bytes());
        line.push(0);
        self.stdin.write_all(&line)?;
        self.stdin.flush()
    }

    /// The content of the blob named by `spec` (e.g. `:path`, `HEAD:path`), or
    /// `None` when there is no such object or it is not a blob. Answers to
    /// questions asked before and not wanted any more are read and dropped.
    pub fn read(&mut self, spec: &str) -> std::io::Result<Option<Vec<u8>>> {
        if spec.contains('\0') {
            return Ok(None);
        }
        while let Some(asked) = self.asked.pop_front() {
            let answer = self.answer(&asked)?;
            if asked == spec {
                return Ok(answer);
            }
        }
        self.send(spec)?;
        self.answer(spec)
    }

    /// Send the questions for `specs` (object ids) in one write; their
    /// answers are read in order with [`BlobReader::next_answer`]. The
    /// questions must fit in the pipe with those still unanswered (git
    /// stops reading them while its answers wait to be read): callers keep
    /// at most a few dozen outstanding.
    pub fn send_many(&mut self, specs: &[&str]) -> std::io::Result<()> {
        let mut input = Vec::new();
        for spec in specs {
            let spec = spec.replace('\0', "?");
            input.extend_from_slice(spec.as_bytes());
            input.push(0);
            self.asked.push_back(spec);
        }
        self.stdin.write_all(&input)?;
        self.stdin.flush()
    }

    /// The answer to the oldest question sent and not answered yet (with
    /// [`BlobReader::send_many`]).
    pub fn next_answer(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        match self.asked.pop_front() {
            Some(spec) => self.answer(&spec),
            None => Ok(None),
        }
    }

    /// The answer to the question `spec`, the oldest one unanswered.
    fn answer(&mut self, spec: &str) -> std::io::Result<Option<Vec<u8>>> {
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
        let hex =
            |oid: &str| matches!(oid.len(), 40 | 64) && oid.bytes().all(|b| b.is_ascii_hexdigit());
        if let [size, kind, oid] = fields[..] {
            if let (Ok(size), true) = (size.parse::<usize>(), hex(oid)) {
                let mut content = vec![0u8; size + 1];
                self.stdout.read_exact(&mut content)?;
                content.pop(); // the LF after the content
                return Ok((kind == "blob").then_some(content));
            }
        }
        // git echoes the spec on the line (`-z` is for input only): one with
        // line feeds in it takes as many lines more, which must not be read
        // as the answers to the questions after it (clean would take another
        // file's blob for its template).
        for _ in 0..spec.matches('\n').count() {
            let mut rest = Vec::new();
            self.stdout.read_until(b'\n', &mut rest)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_name_with_a_line_feed_does_not_shift_later_answers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = Git::new(dir.path());
        git.run(&["init", "-q"]).expect("init");
        std::fs::write(dir.path().join("f"), "content\n").expect("write");
        git.run(&["add", "f"]).expect("add");
        let mut blobs = BlobReader::spawn(&git).expect("spawn");
        assert_eq!(blobs.read(":a\nb 1 2\nc").expect("read"), None);
        assert_eq!(
            blobs.read(":f").expect("read").as_deref(),
            Some(&b"content\n"[..])
        );
        blobs.send_many(&[":x\ny", ":f"]).expect("send");
        assert_eq!(blobs.next_answer().expect("answer"), None);
        assert_eq!(
            blobs.next_answer().expect("answer").as_deref(),
            Some(&b"content\n"[..])
        );
    }
}
