//! Running git commands and reading the answers that git-sops needs.

use std::ffi::OsStr;
use std::io::BufReader;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0} (is git installed and on PATH?)")]
    Spawn(std::io::Error),
    #[error("`git {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("not inside a git repository: {0}")]
    NotARepository(String),
}

/// git, run in one directory.
#[derive(Clone, Debug)]
pub struct Git {
    pub dir: PathBuf,
    /// `GIT_INDEX_FILE` for every command (git resolves a relative one against
    /// its own working directory, so callers pass it absolute).
    pub(crate) index_file: Option<std::ffi::OsString>,
}

impl Git {
    pub fn new(dir: impl Into<PathBuf>) -> Git {
        Git {
            dir: dir.into(),
            index_file: None,
        }
    }

    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.dir).args(args);
        // The objects as they are: a `refs/replace/*` ref would make git-sops
        // (the guard above all) read a harmless stand-in for a blob that pushes
        // and clones still carry as it is.
        cmd.env("GIT_NO_REPLACE_OBJECTS", "1");
        if let Some(index) = &self.index_file {
            cmd.env("GIT_INDEX_FILE", index);
        }
        cmd
    }

    /// Start a long-running git command that answers requests on stdin (a
    /// `--batch` or `--stdin` mode); its stderr goes to ours.
    pub(crate) fn spawn_batch(
        &self,
        args: &[&str],
    ) -> Result<(Child, ChildStdin, BufReader<ChildStdout>), GitError> {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(GitError::Spawn)?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| GitError::Spawn(std::io::Error::other("no stdin")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| GitError::Spawn(std::io::Error::other("no stdout")))?;
        Ok((child, stdin, BufReader::new(stdout)))
    }

    /// Run git; stdout on success, an error carrying stderr otherwise.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Vec<u8>, GitError> {
        self.run_with_input(args, None)
    }

    pub(crate) fn run_with_input<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>, GitError> {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(GitError::Spawn)?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            // Write on a thread: git may fill its stdout pipe before reading all input.
            let data = data.to_vec();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let out = child.wait_with_output().map_err(GitError::Spawn)?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(GitError::Failed {
                args: args
                    .iter()
                    .map(|a| a.as_ref().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    pub(crate) fn run_text(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self.run(args)?;
        Ok(String::from_utf8_lossy(&out)
            .trim_end_matches('\n')
            .to_string())
    }

    /// The top of the working tree.
    pub(crate) fn toplevel(&self) -> Result<PathBuf, GitError> {
        self.run_text(&["rev-parse", "--show-toplevel"])
            .map(PathBuf::from)
            .map_err(|e| GitError::NotARepository(e.to_string()))
    }

    /// The common git directory (shared by all worktrees), absolute.
    pub(crate) fn common_dir(&self) -> Result<PathBuf, GitError> {
        let dir = self
            .run_text(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .map_err(|e| GitError::NotARepository(e.to_string()))?;
        Ok(PathBuf::from(dir))
    }

    /// `git config --get KEY`; `None` when unset.
    pub(crate) fn config_get(&self, key: &str) -> Result<Option<String>, GitError> {
        match self.run_text(&["config", "--get", key]) {
            Ok(v) => Ok(Some(v)),
            // Exit code 1 means "not set".
            Err(GitError::Failed { stderr, .. }) if stderr.is_empty() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `git config --type=bool --get KEY`.
    pub(crate) fn config_bool(&self, key: &str) -> Result<Option<bool>, GitError> {
        match self.run_text(&["config", "--type=bool", "--get", key]) {
            Ok(v) => Ok(Some(v == "true")),
            Err(GitError::Failed { stderr, .. }) if stderr.is_empty() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The value of attribute `attr` for each path, as the working tree sets it.
    pub(crate) fn check_attr(&self, attr: &str, paths: &[String]) -> Result<Vec<String>, GitError> {
        let paths: Vec<&[u8]> = paths.iter().map(|p| p.as_bytes()).collect();
        let rows = self.check_attrs(super::AttrSource::WorkTree, &[attr], &paths)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| row.into_iter().next())
            .collect())
    }

    /// Paths in the index (stage 0 and conflicted alike, each once).
    pub(crate) fn ls_files(&self) -> Result<Vec<String>, GitError> {
        let out = self.run(&["ls-files", "-z"])?;
        let mut paths: Vec<String> = out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        paths.dedup();
        Ok(paths)
    }
}
