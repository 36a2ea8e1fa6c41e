//! `install`, `init` and `status`: the commands that wire git-sops into a
//! repository and report on it (`crate::setup`).

use std::io::Write;

use super::{driver_failure, here};
use crate::cli::report::Failure;
use crate::setup::install::{self, Scope};
use crate::setup::{init, status};

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

pub(super) fn init(patterns: &[String]) -> Result<(), Failure> {
    let changes = init::init(&here(), patterns).map_err(driver_failure)?;
    report_changes(&changes, "this repository is already set up");
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
            "{}\n  index: {index}; working tree: {}; {}",
            r.path, r.worktree, r.keys
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

/// What a set-up command changed, or that there was nothing to do.
fn report_changes(changes: &[String], nothing: &str) {
    if changes.is_empty() {
        eprintln!("git-sops: {nothing}");
    }
    for c in changes {
        eprintln!("git-sops: {c}");
    }
}
