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
    /// `--add-file` of a protected path: git adds the working-tree copy, which
    /// is the plaintext in an unlocked clone.
    #[error("--add-file {0}: a protected file; git would add its working-tree copy, the plaintext, to the archive")]
    AddsPlaintext(String),
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
    for file in added_files(args) {
        if is_protected(dir, &file) {
            return Err(ArchiveError::AddsPlaintext(
                file.to_string_lossy().into_owned(),
            ));
        }
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

/// The files `--add-file` names (`--add-file=F`, `--add-file F`, or an
/// abbreviation git accepts, down to `--add-f`), up to `--`.
fn added_files(args: &[OsString]) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        let Some(option) = arg.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (option, None),
        };
        if name.len() < "add-f".len() || !"add-file".starts_with(name) {
            continue;
        }
        let value = value.or_else(|| args.next().map(|v| v.to_string_lossy().into_owned()));
        files.extend(value.map(std::path::PathBuf::from));
    }
    files
}

/// Is `file` (relative to `dir`) a path of this working tree that
/// `.gitattributes` gives `filter=sops`? Symlinks are followed to the file git
/// would read.
fn is_protected(dir: &std::path::Path, file: &std::path::Path) -> bool {
    let git = crate::git::Git::new(dir);
    let (Ok(top), Ok(target)) = (git.toplevel(), dir.join(file).canonicalize()) else {
        return false;
    };
    let Some(rel) = top.canonicalize().ok().and_then(|t| {
        target
            .strip_prefix(t)
            .ok()
            .map(|r| r.to_string_lossy().into_owned())
    }) else {
        return false;
    };
    let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
    if crate::drivers::filter::is_configuration(&rel) {
        return false;
    }
    crate::git::Git::new(&top)
        .check_attr("filter", std::slice::from_ref(&rel))
        .map(|f| f.first().is_some_and(|v| v == "sops"))
        .unwrap_or(false)
}
