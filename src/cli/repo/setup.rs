//! `install`, `init`, `status` and `worktree`: the commands that wire git-sops into a
//! repository and report on it (`crate::setup`).

use std::io::Write;

use super::{driver_failure, here, WorktreeArg};
use crate::cli::report::Failure;
use crate::setup::doctor::{self, Level};
use crate::setup::install::{self, Scope};
use crate::setup::{archive, init, status, worktree};
use crate::worktree_mode::WorktreeMode;

pub(super) fn install(global: bool, local: bool) -> Result<(), Failure> {
    let git = here();
    let scope = if global || (!local && git.toplevel().is_err()) {
        Scope::Global
    } else {
        Scope::Local
    };
    let changes = install::install(&git, scope).map_err(|e| Failure::io(e.to_string()))?;
    report_changes(
        &changes,
        "git-sops driver configuration is already installed",
    );
    Ok(())
}

pub(super) fn init(patterns: &[String], encrypted_worktree: bool) -> Result<(), Failure> {
    let changes = init::init(&here(), patterns, encrypted_worktree).map_err(driver_failure)?;
    report_changes(&changes, "this repository is already set up");
    Ok(())
}

/// `git sops worktree [MODE]`: show the mode on stdout, or switch it.
pub(super) fn worktree(mode: Option<WorktreeArg>) -> Result<(), Failure> {
    let git = here();
    let Some(mode) = mode else {
        let lines = worktree::describe(&git).map_err(driver_failure)?;
        let mut out = std::io::stdout().lock();
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        return Ok(());
    };
    let mode = match mode {
        WorktreeArg::Encrypted => WorktreeMode::Encrypted,
        WorktreeArg::Plaintext => WorktreeMode::Plaintext,
    };
    let changes = worktree::switch(&git, mode, worktree::Dirty::Refuse).map_err(driver_failure)?;
    report_changes(
        &changes,
        &format!("the working tree is already in {} mode", mode.name()),
    );
    Ok(())
}

pub(super) fn status() -> Result<(), Failure> {
    let rows = status::status(&here()).map_err(|e| Failure::io(e.to_string()))?;
    if rows.is_empty() {
        eprintln!("git-sops: no tracked file has filter=sops (see `git sops init`)");
    }
    let mut out = std::io::stdout().lock();
    for r in rows {
        let index = match r.index_encrypted {
            Some(true) => "encrypted",
            Some(false) => "PLAINTEXT",
            None => "not staged",
        };
        let _ = writeln!(
            out,
            "{}\n  index: {index}; working tree: {}; mode: {}; {}",
            r.path, r.worktree, r.mode, r.keys
        );
        for p in &r.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    for w in status::plaintext_caches(&here()) {
        eprintln!("git-sops: warning: {w}");
    }
    Ok(())
}

/// `git sops doctor`: every check on stdout; FAILs make the exit code 1.
pub(super) fn doctor() -> Result<(), Failure> {
    let checks = doctor::doctor(&here());
    let mut out = std::io::stdout().lock();
    for c in &checks {
        let _ = writeln!(out, "{} {}: {}", c.level.label(), c.name, c.message);
        if let Some(fix) = c.fix.as_ref().filter(|_| c.level != Level::Ok) {
            let _ = writeln!(out, "     fix: {fix}");
        }
    }
    let _ = out.flush();
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    let warned = checks.iter().filter(|c| c.level == Level::Warn).count();
    if failed > 0 {
        return Err(Failure::doctor_failed(failed, warned));
    }
    Ok(())
}

/// `git sops archive ARGS...`: `git archive` with the filter off.
pub(super) fn archive(args: &[std::ffi::OsString]) -> Result<(), Failure> {
    match archive::run(&here().dir, args) {
        Ok(()) => Ok(()),
        // git printed why; its exit code is the answer.
        Err(archive::ArchiveError::Failed(code)) => Err(Failure::silent(code)),
        Err(e @ archive::ArchiveError::Remote) => Err(Failure::usage(e.to_string())
            .with_hint("clone the repository, then run `git sops archive` in the clone")),
        Err(e @ archive::ArchiveError::AddsPlaintext(_)) => Err(Failure::usage(e.to_string())
            .with_hint("the committed ciphertext of a protected file is in the archive already when its commit is archived")),
        Err(e) => Err(Failure::io(e.to_string())),
    }
}

/// What a set-up command changed, or that there was nothing to do.
fn report_changes(changes: &[String], nothing: &str) {
    if changes.is_empty() {
        eprintln!("git-sops: {nothing}");
    }
    for c in changes {
        eprintln!("git-sops: {c}");
    }
}
