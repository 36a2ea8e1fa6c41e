//! `git sops archive ARGS...`: `git archive` that keeps protected files
//! encrypted. `git archive` runs the smudge filter on every file it exports, so
//! in an unlocked clone plain `git archive` writes the decrypted plaintext into
//! the tarball. This runs it with the sops filter switched off for that one
//! command (the empty `filter.sops.process` and `filter.sops.smudge` leave git
//! with no smudge to run, and `filter.sops.required=false` lets it export the
//! blob as stored), so the archive holds the SOPS ciphertext that is committed.

use std::ffi::OsString;
use std::process::Command;

/// The `-c` settings that switch the sops filter off for one git command.
pub(crate) const FILTER_OFF: [&str; 3] = [
    "filter.sops.process=",
    "filter.sops.smudge=",
    "filter.sops.required=false",
];

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// `--remote`: the other side runs `git archive` with its own config.
    #[error("--remote asks another repository to make the archive with its own configuration, so its filters decide what goes in; make the archive from a local clone")]
    Remote,
    #[error("git archive failed (exit {0})")]
    Failed(i32),
}

/// Run `git -c ... archive ARGS` here with standard streams inherited (the
/// archive goes to stdout unless `-o` is given); git's own messages are its.
pub fn run(dir: &std::path::Path, args: &[OsString]) -> Result<(), ArchiveError> {
    if args
        .iter()
        .any(|a| a.to_string_lossy().starts_with("--remote"))
    {
        return Err(ArchiveError::Remote);
    }
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    for setting in FILTER_OFF {
        cmd.arg("-c").arg(setting);
    }
    cmd.arg("archive").args(args);
    let status = cmd.status().map_err(ArchiveError::Spawn)?;
    if status.success() {
        Ok(())
    } else {
        Err(ArchiveError::Failed(status.code().unwrap_or(1)))
    }
}
