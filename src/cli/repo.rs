//! The commands that live inside a git repository: the drivers git calls
//! (`filter-process`, `clean`, `smudge`, `textconv`, `pre-commit`; hidden) and
//! the ones users run (`install`, `init`, `status`, `check`).

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use zeroize::Zeroizing;

use super::report::Failure;
use crate::drivers::filter::protocol;
use crate::drivers::filter::{Filter, Smudged};
use crate::drivers::{merge, textconv, DriverError};
use crate::git::Git;
use crate::guard::{self, finding::Kind, Report, Scope as CheckScope, SnapshotError};
use crate::setup::install::{self, Scope};
use crate::setup::{init, status};
use sops_file::keygroups::Keyring;

#[derive(Subcommand, Debug)]
pub(crate) enum RepoCommand {
    /// Write the git driver configuration (filter, diff) into git config
    Install {
        /// Into ~/.gitconfig (the default outside a repository)
        #[arg(long, conflicts_with = "local")]
        global: bool,
        /// Into this repository's .git/config (the default inside one)
        #[arg(long)]
        local: bool,
    },
    /// Set up this repository: driver config, key, .sops.yaml, .gitattributes, decrypted checkout
    Init {
        /// gitattributes patterns of the files to protect (default: secrets/**)
        patterns: Vec<String>,
    },
    /// Show, for each protected path, whether it is encrypted and who can open it
    Status,
    /// Refuse plaintext in protected paths (needs no keys): exit 0 clean, 1 findings, 2 error
    #[command(
        long_about = "Check that every protected path (filter=sops in .gitattributes, or matched by a \
                      path_regex of .sops.yaml) holds a valid SOPS document whose values and comments are \
                      encrypted as the file's own rules require, and that no decrypted SOPS output is \
                      tracked. Reads blobs from the object store; needs no keys.\n\n\
                      Exit status: 0 clean, 1 findings, 2 usage or repository error."
    )]
    Check {
        /// Check the index, i.e. what the next commit would hold (the default)
        #[arg(long, conflicts_with_all = ["all", "history"])]
        staged: bool,
        /// Check every tracked file at HEAD
        #[arg(long, conflicts_with = "history")]
        all: bool,
        /// Check every blob of every commit in REVRANGE (git rev-list arguments,
        /// e.g. origin/main..HEAD; several separated by spaces: "NEW --not --all")
        #[arg(long, value_name = "REVRANGE", allow_hyphen_values = true)]
        history: Option<String>,
        /// Output format: text lines, or a JSON array of findings
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Only report these files or folders
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// (called by git) the long-running filter process
    #[command(hide = true)]
    FilterProcess,
    /// (called by git) clean one file: plaintext on stdin, ciphertext on stdout
    #[command(hide = true)]
    Clean { path: std::ffi::OsString },
    /// (called by git) smudge one file: ciphertext on stdin, plaintext on stdout
    #[command(hide = true)]
    Smudge { path: std::ffi::OsString },
    /// (called by git) print a file for `git diff`
    #[command(hide = true)]
    Textconv { file: PathBuf },
    /// (called by git) the merge driver: `merge %O %A %B %L %P [%S %X %Y]`
    #[command(hide = true)]
    Merge {
        /// %O: the common ancestor's version (ciphertext; empty when there is none)
        base: PathBuf,
        /// %A: our version; the result is written here
        ours: PathBuf,
        /// %B: their version
        theirs: PathBuf,
        /// %L: the conflict-marker length
        marker_size: String,
        /// %P: the path in the repository
        #[arg(allow_hyphen_values = true)]
        path: String,
        /// %S %X %Y: ancestor, ours and theirs labels for the conflict markers (git 2.44+)
        #[arg(allow_hyphen_values = true)]
        labels: Vec<String>,
    },
    /// (called by the pre-commit hook) `check --staged`, with advice on what to run
    #[command(hide = true)]
    PreCommit {
        /// Ignored: git passes none to pre-commit hooks
        #[arg(hide = true)]
        args: Vec<String>,
    },
    /// (called by the commit hooks) `check --staged` for pre-commit,
    /// pre-merge-commit or pre-applypatch, authenticating changed SOPS files
    /// where a local key opens them
    #[command(hide = true)]
    Hook {
        /// The hook git runs (the shim passes its own name)
        name: String,
        /// Ignored: what git passes to the hook
        #[arg(hide = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (called by hooks/pre-receive on a server) check everything a push brings;
    /// reads git's `<old> <new> <ref>` lines on standard input
    #[command(hide = true)]
    PreReceive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
}

fn driver_failure(e: DriverError) -> Failure {
    Failure::from(e)
}

fn here() -> Git {
    Git::new(".")
}

pub fn run(cmd: RepoCommand) -> Result<(), Failure> {
    match cmd {
        RepoCommand::Install { global, local } => {
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
        RepoCommand::Init { patterns } => {
            let changes = init::init(&here(), &patterns).map_err(driver_failure)?;
            report_changes(&changes, "this repository is already set up");
            Ok(())
        }
        RepoCommand::Status => {
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
        RepoCommand::Check {
            staged: _,
            all,
            history,
            format,
            paths,
        } => {
            let scope = match (all, history) {
                (_, Some(range)) => CheckScope::History(range),
                (true, None) => CheckScope::All,
                (false, None) => CheckScope::Staged,
            };
            run_check(&scope, &paths, format, false)
        }
        RepoCommand::Merge {
            base,
            ours,
            theirs,
            marker_size,
            path,
            labels,
        } => run_merge(base, ours, theirs, &marker_size, path, labels),
        RepoCommand::PreCommit { args: _ } => {
            run_check(&CheckScope::Staged, &[], OutputFormat::Text, true)
        }
        RepoCommand::Hook { name, args: _ } => {
            if !guard::hook::HOOKS.contains(&name.as_str()) {
                return Err(Failure::usage(format!(
                    "`git-sops hook {name}`: not a hook git-sops installs (it runs as {})",
                    guard::hook::HOOKS.join(", ")
                )));
            }
            run_check(&CheckScope::Staged, &[], OutputFormat::Text, true)
        }
        RepoCommand::PreReceive => run_pre_receive(),
        RepoCommand::FilterProcess => {
            let mut filter = Filter::new(".");
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            protocol::serve(stdin, stdout, &mut filter)
                .map_err(|e| Failure::io(format!("filter-process: protocol error: {e}")))
        }
        RepoCommand::Clean { path } => {
            let input = read_stdin()?;
            let path = path.into_string().map_err(|p| {
                Failure::io(format!(
                    "{}: the file name is not UTF-8, which git-sops cannot handle; nothing was staged",
                    p.to_string_lossy()
                ))
            })?;
            let out = Filter::one_shot(".")
                .clean(&path, &input)
                .map_err(driver_failure)?;
            write_stdout(&out)
        }
        RepoCommand::Smudge { path } => {
            let input = read_stdin()?;
            let Ok(path) = path.into_string() else {
                eprintln!("git-sops: warning: a file name is not UTF-8, which git-sops cannot handle; it stays encrypted");
                return write_stdout(&input);
            };
            match Filter::new(".")
                .smudge(&path, &input)
                .map_err(driver_failure)?
            {
                Smudged::Plaintext(text) => write_stdout(&text),
                Smudged::Unchanged => write_stdout(&input),
            }
        }
        RepoCommand::Textconv { file } => {
            let content = std::fs::read(&file)
                .map(Zeroizing::new)
                .map_err(|e| Failure::io(format!("{}: cannot read it: {e}", file.display())))?;
            let git = here();
            // git stores textconv output when this is on: never print plaintext then.
            let cached = git
                .config_bool("diff.sops.cachetextconv")
                .ok()
                .flatten()
                .unwrap_or(false);
            if cached {
                eprintln!("git-sops: warning: diff.sops.cachetextconv is set, so git stores what textconv prints (under refs/notes/textconv/sops): showing no decrypted values. Run `git config --unset-all diff.sops.cachetextconv` (and `git sops install`)");
            }
            let out = textconv::render(
                &file.to_string_lossy(),
                &content,
                || crate::cache::data_keys::key_cache(crate::cache::CacheDir::of(&git).as_ref()),
                &Keyring::new(),
                cached,
            );
            write_stdout(&out)
        }
    }
}

/// The merge driver: exit 0 merged, 1 conflict (git keeps the index stages and
/// reports the conflict; `%A` is never plaintext).
fn run_merge(
    base: PathBuf,
    ours: PathBuf,
    theirs: PathBuf,
    marker_size: &str,
    path: String,
    labels: Vec<String>,
) -> Result<(), Failure> {
    let request = merge::Request {
        base,
        ours,
        theirs,
        // git passes a number; anything else gets git's default.
        marker_size: marker_size.parse().ok().filter(|n| *n > 0).unwrap_or(7),
        ours_label: labels.get(1).cloned(),
        theirs_label: labels.get(2).cloned(),
        path,
    };
    match merge::run(&here(), &request).map_err(driver_failure)? {
        merge::Outcome::Merged => Ok(()),
        merge::Outcome::Conflict(message) => {
            eprintln!("git-sops: CONFLICT in {}: {message}", request.path);
            // Not a failure of git-sops: the conflict is git's to report. Exit
            // 1 through the normal return, so every buffer is wiped on the way.
            Err(Failure::silent(1))
        }
    }
}

fn report_changes(changes: &[String], nothing: &str) {
    if changes.is_empty() {
        eprintln!("git-sops: {nothing}");
    }
    for c in changes {
        eprintln!("git-sops: {c}");
    }
}

/// A one-shot filter's input: plaintext for clean, so it is wiped when dropped.
fn read_stdin() -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut input = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| Failure::io(format!("cannot read standard input: {e}")))?;
    Ok(input)
}

fn write_stdout(data: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io(format!("cannot write to standard output: {e}")))
}

fn snapshot_failure(e: SnapshotError) -> Failure {
    Failure::usage(e.to_string())
}

/// `git sops check` and the pre-commit hook: findings on stdout (text lines or a
/// JSON array), a summary and advice on stderr; exit 1 with findings, 2 when the
/// repository cannot be read.
fn run_check(
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
    let written = match format {
        OutputFormat::Json => writeln!(out, "{}", guard::finding::to_json_array(&report.findings)),
        OutputFormat::Text => report
            .findings
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
fn run_pre_receive() -> Result<(), Failure> {
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
            "{}stage the whole file again from your working tree (`git add -- {files}`), or restore it (`git checkout HEAD -- {files}`)\n",
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
