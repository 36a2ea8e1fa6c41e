//! `git sops check`, the commit hooks and the server hook: findings on
//! stdout, a summary and advice on stderr (`crate::guard`).

use std::io::{Read, Write};
use std::path::PathBuf;

use super::{here, OutputFormat};
use crate::cli::report::Failure;
use crate::guard::{self, finding::Kind, Report, Scope as CheckScope, SnapshotError};

fn snapshot_failure(e: SnapshotError) -> Failure {
    Failure::usage(e.to_string())
}

/// `git sops check` and the pre-commit hook: findings on stdout (text lines or a
/// JSON array), a summary and advice on stderr; exit 1 with findings, 2 when the
/// repository cannot be read.
pub(super) fn run_check(
    scope: &CheckScope,
    paths: &[PathBuf],
    format: OutputFormat,
    hook: bool,
) -> Result<(), Failure> {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))?;
    let relative = repo_paths(&cwd, paths)?;
    let mut report = guard::check(&cwd, scope, &relative).map_err(snapshot_failure)?;
    if hook {
        // Where the committer holds a key, what the commit changes must open.
        for f in guard::verify_staged(&cwd).map_err(snapshot_failure)? {
            report.add(f);
        }
    }
    let mut out = std::io::stdout().lock();
    // Warnings (`key-drift`) are listed after the findings (with
    // `"severity": "warning"` in JSON) and never change the exit status.
    let listed: Vec<guard::finding::Finding> = report
        .findings
        .iter()
        .chain(&report.warnings)
        .cloned()
        .collect();
    let written = match format {
        OutputFormat::Json => writeln!(out, "{}", guard::finding::to_json_array(&listed)),
        OutputFormat::Text => listed
            .iter()
            .try_for_each(|f| writeln!(out, "{}", f.to_text())),
    };
    written.and_then(|_| out.flush()).map_err(|e| {
        // Not "findings" (1): the caller cannot tell what was checked.
        Failure::new(format!("cannot write to standard output: {e}"), 2)
    })?;
    let place = match scope {
        CheckScope::Staged => "in the index".to_string(),
        CheckScope::All => "at HEAD".to_string(),
        CheckScope::History(_) => format!("in {} commit(s)", report.commits),
    };
    if !report.warnings.is_empty() {
        eprintln!(
            "git-sops: warning: {} file(s) are encrypted for other keys or another encryption context than their .sops.yaml rule renders now (key-drift, listed above); `git sops updatekeys -y FILE...` re-wraps them",
            report.warnings.len()
        );
    }
    if report.findings.is_empty() {
        if !hook {
            eprintln!(
                "git-sops: checked {} protected file(s) {place}: no plaintext found",
                report.protected_blobs
            );
        }
        return Ok(());
    }
    let files = report.paths().len();
    if hook {
        return Err(Failure::io(format!(
            "commit refused: {} problem(s) in {files} file(s) (listed above) would put plaintext or broken SOPS files into protected paths",
            report.findings.len()
        ))
        .with_hint(hook_advice(&report)));
    }
    Err(Failure::io(format!(
        "{} problem(s) in {files} file(s) {place} (checked {} protected file(s))",
        report.findings.len(),
        report.protected_blobs
    )))
}

/// The server hook: findings on stdout, exit 1 refuses the push.
pub(super) fn run_pre_receive() -> Result<(), Failure> {
    let mut updates = String::new();
    std::io::stdin()
        .read_to_string(&mut updates)
        .map_err(|e| Failure::usage(format!("cannot read the ref updates: {e}")))?;
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))?;
    let report = guard::receive::check(&cwd, &updates).map_err(snapshot_failure)?;
    let mut out = std::io::stdout().lock();
    for f in &report.findings {
        let _ = writeln!(out, "{}", f.to_text());
    }
    let _ = out.flush();
    if report.findings.is_empty() {
        return Ok(());
    }
    Err(Failure::io(format!(
        "push refused: {} problem(s) in {} file(s) would put plaintext or broken SOPS files into this repository (listed above)",
        report.findings.len(),
        report.paths().len()
    ))
    .with_hint("fix them in your commits (`git sops check --history @{upstream}..HEAD` shows them locally) and push again"))
}

/// PATH arguments (relative to the current directory) as repository-relative paths.
fn repo_paths(cwd: &std::path::Path, paths: &[PathBuf]) -> Result<Vec<String>, Failure> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let git = here();
    let top = match git.toplevel() {
        Ok(top) => top,
        // A bare repository (a server-side hook): paths are repository-relative.
        Err(_) if git.config_bool("core.bare").ok().flatten() == Some(true) => {
            return Ok(paths
                .iter()
                .map(|p| p.to_string_lossy().trim_start_matches("./").to_string())
                .collect());
        }
        Err(e) => {
            return Err(Failure::usage(format!(
                "PATH arguments need a repository: {e}"
            )))
        }
    };
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    paths
        .iter()
        .map(|p| {
            let joined = cwd.join(p);
            let mut clean = PathBuf::new();
            for part in joined.components() {
                match part {
                    std::path::Component::ParentDir => {
                        clean.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => clean.push(other),
                }
            }
            clean
                .strip_prefix(&top)
                .map(|r| r.to_string_lossy().into_owned())
                .map_err(|_| Failure::usage(format!("{}: outside the repository", p.display())))
        })
        .collect()
}

/// What the pre-commit hook tells the user to do, by kind of problem.
fn hook_advice(report: &Report) -> String {
    let mut encrypt = Vec::new();
    let mut attributes = Vec::new();
    let mut decrypted = Vec::new();
    let mut unprotected = Vec::new();
    let mut damaged = Vec::new();
    let mut config = false;
    for f in &report.findings {
        let list = match f.kind {
            Kind::MissingAttribute => &mut attributes,
            Kind::DecryptedFile | Kind::DecryptedCopy => &mut decrypted,
            Kind::ProtectionRemoved => &mut unprotected,
            Kind::AuthenticationFailed => &mut damaged,
            Kind::BadConfig => {
                config = true;
                continue;
            }
            _ => &mut encrypt,
        };
        let word = crate::drivers::shell_word(&f.path);
        if !list.contains(&word) {
            list.push(word);
        }
    }
    let filter_configured = here()
        .config_get("filter.sops.process")
        .ok()
        .flatten()
        .or_else(|| here().config_get("filter.sops.clean").ok().flatten())
        .is_some_and(|v| !v.is_empty());
    let mut text = String::new();
    if !encrypt.is_empty() {
        let files = encrypt.join(" ");
        if !filter_configured {
            text.push_str("this clone has no git-sops filter configured: run `git sops init` first, then encrypt them:\n");
        } else {
            text.push_str("encrypt them from your working-tree copies:\n");
        }
        text.push_str(&format!("      git add --renormalize -- {files}\n"));
        text.push_str(&format!(
            "  or take them out of this commit:\n      git rm --cached -- {files}\n"
        ));
    }
    if !attributes.is_empty() {
        text.push_str(&format!(
            "{}add a `filter=sops diff=sops merge=sops -text` line to .gitattributes for: {}\n  then `git add .gitattributes` and `git add --renormalize -- <those paths>`\n",
            if text.is_empty() { "" } else { "  " },
            attributes.join(" ")
        ));
    }
    if !decrypted.is_empty() {
        let files = decrypted.join(" ");
        text.push_str(&format!(
            "{}decrypted copies must not be committed: `git rm --cached -- {files}` and list them in .gitignore\n",
            if text.is_empty() { "" } else { "  " },
        ));
    }
    if !unprotected.is_empty() {
        text.push_str(&format!(
            "{}restore the protection of {} (the .gitattributes filter=sops line or the .sops.yaml path_regex), or, if taking it away is deliberate, mark each path `sops-unprotected` in .gitattributes in this commit\n",
            if text.is_empty() { "" } else { "  " },
            unprotected.join(" ")
        ));
    }
    if !damaged.is_empty() {
        let files = damaged.join(" ");
        text.push_str(&format!(
            "{}stage the whole file again from your working tree (`git add -- {files}`), or restore it (`git checkout HEAD -- {files}`); to stage part of a protected file, use `git sops add -p` (plain `git add -p` splits its ciphertext)\n",
            if text.is_empty() { "" } else { "  " },
        ));
    }
    if config {
        text.push_str(if text.is_empty() { "" } else { "  " });
        text.push_str("fix .sops.yaml so its creation rules can be read\n");
    }
    if !encrypt.is_empty() || !decrypted.is_empty() || !unprotected.is_empty() {
        text.push_str("  git stored the staged plaintext in .git/objects before this hook ran; after fixing the index, `git gc --prune=now` deletes it (it is never pushed)\n");
    }
    text.push_str("  `git sops check --staged` checks again; `git commit --no-verify` would commit the plaintext");
    text
}
