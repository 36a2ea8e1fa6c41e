//! The commands that live inside a git repository: the drivers git calls
//! (`filter-process`, `clean`, `smudge`, `textconv`; hidden) and the ones users
//! run (`install`, `init`, `status`).

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Subcommand;

use super::report::Failure;
use crate::drivers::filter::{Filter, Smudged};
use crate::drivers::install::{self, Scope};
use crate::drivers::{init, process, status, textconv, DriverError};
use crate::git::Git;
use crate::sops::keycache::{KeyCache, PersistentKeys};
use crate::sops::keygroups::Keyring;

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
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
    /// (called by git) the long-running filter process
    #[command(hide = true)]
    FilterProcess,
    /// (called by git) clean one file: plaintext on stdin, ciphertext on stdout
    #[command(hide = true)]
    Clean { path: String },
    /// (called by git) smudge one file: ciphertext on stdin, plaintext on stdout
    #[command(hide = true)]
    Smudge { path: String },
    /// (called by git) print a file for `git diff`
    #[command(hide = true)]
    Textconv { file: PathBuf },
}

fn driver_failure(e: DriverError) -> Failure {
    let mut f = Failure::io(e.to_string());
    f.hint = e.hint;
    f
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
            report_changes(&changes, "git-sops driver configuration is already installed");
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
                let _ = writeln!(out, "{}\n  index: {index}; working tree: {}; {}", r.path, r.worktree, r.keys);
            }
            Ok(())
        }
        RepoCommand::FilterProcess => {
            let mut filter = Filter::new(".");
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            process::serve(stdin, stdout, &mut filter)
                .map_err(|e| Failure::io(format!("filter-process: protocol error: {e}")))
        }
        RepoCommand::Clean { path } => {
            let input = read_stdin()?;
            let out = Filter::new(".").clean(&path, &input).map_err(driver_failure)?;
            write_stdout(&out)
        }
        RepoCommand::Smudge { path } => {
            let input = read_stdin()?;
            match Filter::new(".").smudge(&path, &input).map_err(driver_failure)? {
                Smudged::Plaintext(text) => write_stdout(text.as_bytes()),
                Smudged::Unchanged => write_stdout(&input),
            }
        }
        RepoCommand::Textconv { file } => {
            let content = std::fs::read(&file)
                .map_err(|e| Failure::io(format!("{}: cannot read it: {e}", file.display())))?;
            let git = here();
            let persistent = crate::drivers::keystore::DiskKeys::for_repo(&git)
                .map(|d| Box::new(d) as Box<dyn PersistentKeys>);
            let out = textconv::render(&file.to_string_lossy(), &content, &KeyCache::new(persistent), &Keyring::new());
            write_stdout(&out)
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

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut input = Vec::new();
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
