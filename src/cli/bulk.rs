//! What `updatekeys` and `rotate` share when they work on many files (README,
//! "Commands"; docs/architecture.md §4.7): the files `--all` means, a progress
//! line on a terminal, and the per-file report at the end.
//!
//! A run over several files never stops at the first bad file: each file ends
//! as done, unchanged or failed, the others are still done, and the report
//! lists every file with what happened to it (a failure with its reason and
//! hint). With a single named file the command speaks as it always has: one
//! line for the result, or the failure itself as the command's error.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use super::report::Failure;
use crate::setup::sops_files::repository_files;
use sops_file::config::Config;

/// One file of a run: the name it is shown by and where it is.
pub(crate) struct Target {
    /// As given on the command line, or repository-relative with `--all`.
    pub name: String,
    pub path: PathBuf,
}

/// The files of a run: those named, or with `--all` the repository's SOPS files
/// (see `setup::sops_files`), found from the current directory.
pub(crate) fn targets(
    command: &str,
    files: &[PathBuf],
    all: bool,
    rules: Option<&Config>,
) -> Result<Vec<Target>, Failure> {
    if !all {
        return Ok(files
            .iter()
            .map(|p| Target {
                name: p.display().to_string(),
                path: p.clone(),
            })
            .collect());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::io(format!("cannot read the current directory: {e}")))?;
    let found = repository_files(&cwd, rules)
        .map_err(|why| Failure::not_in_repository(command, why.0.trim()))??;
    Ok(found
        .paths
        .into_iter()
        .map(|p| Target {
            path: found.top.join(&p),
            name: p,
        })
        .collect())
}

/// A `updatekeys: 37/200 files` line on stderr, rewritten in place, only when
/// stderr is a terminal (never on a pipe or in a log file) and the run has
/// more than one file.
pub(crate) struct Progress {
    label: &'static str,
    total: usize,
    done: usize,
    phase: &'static str,
    on: bool,
}

impl Progress {
    pub(crate) fn new(label: &'static str, total: usize) -> Progress {
        Progress {
            label,
            total,
            done: 0,
            phase: "",
            on: total > 1 && std::io::stderr().is_terminal(),
        }
    }

    /// What the run is waiting on now (e.g. the concurrent KMS calls, during
    /// which no single file finishes).
    pub(crate) fn phase(&mut self, phase: &'static str) {
        self.phase = phase;
        self.draw();
    }

    /// One more file finished (done, unchanged or failed).
    pub(crate) fn tick(&mut self) {
        self.done += 1;
        self.draw();
    }

    fn draw(&self) {
        if self.on {
            let phase = if self.phase.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.phase)
            };
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[K{}: {}/{} files{phase}",
                self.label, self.done, self.total
            );
            let _ = err.flush();
        }
    }

    /// Take the line away (before other output, and at the end).
    pub(crate) fn clear(&self) {
        if self.on {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// How one file ended.
pub(crate) enum Outcome {
    /// Changed (or, in a dry run, would change); the text says how.
    Done(String),
    /// Nothing to do; the text says why.
    Unchanged(String),
    Failed(Failure),
}

/// The outcome of every file of a run, and how to tell the user.
pub(crate) struct Report {
    /// Several files (or `--all`): collect, and report at the end.
    bulk: bool,
    rows: Vec<(String, Outcome)>,
}

impl Report {
    pub(crate) fn new(bulk: bool) -> Report {
        Report {
            bulk,
            rows: Vec::new(),
        }
    }

    pub(crate) fn is_bulk(&self) -> bool {
        self.bulk
    }

    /// Record how `name` ended; with a single file, success is said at once.
    pub(crate) fn record(&mut self, name: &str, outcome: Outcome) {
        if !self.bulk {
            match &outcome {
                Outcome::Done(text) | Outcome::Unchanged(text) => {
                    eprintln!("git-sops: {name}: {text}")
                }
                Outcome::Failed(_) => {}
            }
        }
        self.rows.push((name.to_string(), outcome));
    }

    /// Print the per-file report (several files) and give the run's result:
    /// the single file's failure, or one failure naming how many failed.
    pub(crate) fn finish(self, command: &str, dry_run: bool) -> Result<(), Failure> {
        let total = self.rows.len();
        let failed = self
            .rows
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
            .count();
        if !self.bulk {
            return match self.rows.into_iter().find_map(|(_, o)| match o {
                Outcome::Failed(f) => Some(f),
                _ => None,
            }) {
                Some(f) => Err(f),
                None => Ok(()),
            };
        }
        let done = self
            .rows
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Done(_)))
            .count();
        let (done_word, unchanged_word) = if dry_run {
            ("would change", "up to date")
        } else {
            ("done", "unchanged")
        };
        let mut out = format!(
            "git-sops: {command}{}: {total} files: {done} {done_word}, {} {unchanged_word}, {failed} failed{}\n",
            if dry_run { " --dry-run" } else { "" },
            total - done - failed,
            if dry_run { "; nothing was written" } else { "" },
        );
        let mut first_code = None;
        for (name, outcome) in &self.rows {
            match outcome {
                Outcome::Done(text) => out.push_str(&format!("  {done_word}: {name}: {text}\n")),
                Outcome::Unchanged(text) => {
                    out.push_str(&format!("  {unchanged_word}: {name}: {text}\n"))
                }
                Outcome::Failed(f) => {
                    first_code.get_or_insert(f.exit_code);
                    let message = f
                        .message
                        .strip_prefix(&format!("{name}: "))
                        .unwrap_or(&f.message);
                    out.push_str(&format!(
                        "  FAILED: {name}: {}\n",
                        message.replace('\n', "\n      ")
                    ));
                    if let Some(hint) = &f.hint {
                        out.push_str(&format!("      hint: {hint}\n"));
                    }
                }
            }
        }
        eprint!("{out}");
        match first_code {
            Some(code) => Err(Failure::files_failed(failed, total, code)),
            None => Ok(()),
        }
    }
}
