//! The commands that live inside a git repository: the drivers git calls
//! (`filter-process`, `clean`, `smudge`, `textconv`, the merge driver; hidden,
//! in `drivers`), the set-up commands users run (`install`, `init`, `status`, in
//! `setup`), the guard (`check`, the hooks, `pre-receive`, in `check`) and the
//! pull-request helpers (`sync`, `review`, in `pr`). This
//! file holds their arguments and the dispatch.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::report::Failure;
use crate::drivers::DriverError;
use crate::git::Git;
use crate::guard::{self, Scope as CheckScope};

#[cfg(unix)]
mod add_patch;
mod check;
mod drivers;
mod pr;
mod setup;

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
        /// Keep protected files encrypted on disk in this clone (git config sops.worktree encrypted): diffs, merges and `git sops edit` decrypt in memory
        #[arg(long)]
        encrypted_worktree: bool,
    },
    /// Show or switch this clone's working-tree mode: `plaintext` (decrypted on checkout) or `encrypted` (ciphertext on disk)
    #[command(
        long_about = "Without an argument, show the working-tree mode (git config sops.worktree) and \
                      the paths whose sops-worktree gitattribute overrides it. With one, set \
                      sops.worktree and check out again every protected file whose copy on disk \
                      does not match its mode: `encrypted` leaves SOPS ciphertext on disk even with a \
                      key (git diff, merges, `git sops edit`, exec-env and decrypt still work, in \
                      memory), `plaintext` decrypts on checkout (the default). Refuses, changing \
                      nothing, when a protected file has uncommitted changes or an unresolved merge."
    )]
    Worktree {
        /// The mode to switch to
        mode: Option<WorktreeArg>,
    },
    /// Show, for each protected path, whether it is encrypted and who can open it
    Status,
    /// Check the set-up (drivers, binary, hooks, keys, recipients, rerere, textconv cache, worktrees, git): exit 0 no FAIL, 1 FAIL
    #[command(
        long_about = "Check that git-sops is set up to protect this repository: git's version, the \
                      driver configuration (local or global; filter.sops.required), whether git finds \
                      git-sops on its own PATH, the commit hooks (installed, chained), the protected \
                      files (staged encrypted, which open with a local key, keys that drifted from \
                      .sops.yaml), rerere and the textconv cache (where git keeps plaintext on its own), \
                      and the other worktrees. One line per check, OK, WARN or FAIL, each problem with \
                      the command that fixes it. Needs no key and makes no network call: a file only a \
                      KMS key opens is listed as not checked (`git sops status` tries KMS).\n\n\
                      Exit status: 0 when nothing FAILs (warnings allowed), 1 when something does."
    )]
    Doctor,
    /// `git archive` of ciphertext: protected files as stored (encrypted), not smudged; arguments go to git archive
    #[command(
        long_about = "Run `git archive ARGS...` with the sops filter switched off for that command \
                      (filter.sops.process and filter.sops.smudge empty, filter.sops.required false), \
                      so protected files go into the archive as the SOPS ciphertext git stores, never \
                      as the plaintext an unlocked checkout has. Plain `git archive` runs the smudge \
                      filter and exports plaintext. Every argument is passed to git archive, e.g. \
                      `git sops archive --format=tar.gz -o release.tgz HEAD`."
    )]
    Archive {
        /// `git archive` arguments (tree-ish, --format, -o, --prefix, paths)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// `git add -p` on plaintext: stage chosen hunks of protected files (encrypted, unchanged values keep their ciphertext); other files go to `git add -p`
    #[command(
        long_about = "Stage parts of the working-tree changes. Protected files (filter=sops) are shown as \
                      plaintext hunks with git's prompt and keys (y, n, q, a, d, s, e, p, ?); the chosen \
                      hunks are applied to the staged plaintext in memory and staged encrypted with the \
                      staged blob as template, so unchanged values keep their ciphertext and the MAC is \
                      right. A new (intent-to-add) file or a deletion is staged whole or not at all. The \
                      other paths with changes are then handed to `git add -p`."
    )]
    Add {
        /// Choose hunks interactively (the only mode; plain `git add` stages whole files)
        #[arg(short = 'p', long = "patch", required = true)]
        patch: bool,
        /// Only these files or folders (default: every change)
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
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
    /// Merge BASE (e.g. origin/main) into the current branch through the merge driver, so a host's plain merge of the branch applies cleanly
    #[command(
        long_about = "Bring the current branch up to date with BASE by merging BASE into it with git's own merge, \
                      so the merge=sops driver merges protected files by value (it needs a key). Afterwards the \
                      branch contains BASE, and a host that merges without drivers (GitHub's merge button) \
                      merges it cleanly. A merge, not a rebase: the branch's commits stay as they are and no \
                      force-push is needed. Refuses a dirty working tree and a clone without the drivers; a \
                      conflict the driver cannot resolve aborts the merge and leaves the branch as it was.\n\n\
                      Exit status: 0 merged or already up to date, 1 conflict (merge aborted), 2 refused."
    )]
    Sync {
        /// The branch to merge in, e.g. origin/main (fetch it first)
        #[arg(value_name = "BASE", allow_hyphen_values = true)]
        base: String,
    },
    /// Report, without keys, which keys and recipients a range changes in protected files (Markdown or JSON)
    #[command(
        long_about = "For each protected file changed between two commits: the keys (paths) added, changed \
                      or removed, a re-encryption (new data key), every change of recipients, KMS keys or \
                      encryption context, and the changes of .sops.yaml creation rules and of which paths \
                      are protected. Reads ciphertext only and prints no value. With --with-keys, values \
                      whose ciphertext changed but whose plaintext did not are named too.\n\n\
                      RANGE: A..B compares A with B, A...B the merge base of A and B with B (a pull \
                      request's diff), A alone compares A with HEAD. Exit status: 0, or 2 for a usage or \
                      repository error."
    )]
    Review {
        /// BASE..HEAD, BASE...HEAD or BASE
        #[arg(value_name = "RANGE", allow_hyphen_values = true)]
        range: String,
        /// Markdown (for a pull-request comment) or JSON
        #[arg(long, value_enum, default_value_t = ReviewFormat::Markdown)]
        format: ReviewFormat,
        /// Also decrypt (where a key opens them) to tell re-encrypted-but-equal values from changed ones; never prints values
        #[arg(long)]
        with_keys: bool,
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
pub(crate) enum WorktreeArg {
    /// SOPS ciphertext on disk, even with a key
    Encrypted,
    /// Decrypted on checkout where a key opens the file (the default)
    Plaintext,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReviewFormat {
    Markdown,
    Json,
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
        RepoCommand::Install { global, local } => setup::install(global, local),
        RepoCommand::Init {
            patterns,
            encrypted_worktree,
        } => setup::init(&patterns, encrypted_worktree),
        RepoCommand::Worktree { mode } => setup::worktree(mode),
        RepoCommand::Status => setup::status(),
        RepoCommand::Doctor => setup::doctor(),
        RepoCommand::Archive { args } => setup::archive(&args),
        #[cfg(unix)]
        RepoCommand::Add { patch: _, paths } => add_patch::run(&paths),
        #[cfg(not(unix))]
        RepoCommand::Add { .. } => Err(Failure::usage("add -p needs a Unix system".into())),
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
            check::run_check(&scope, &paths, format, false)
        }
        RepoCommand::Merge {
            base,
            ours,
            theirs,
            marker_size,
            path,
            labels,
        } => drivers::run_merge(base, ours, theirs, &marker_size, path, labels),
        RepoCommand::PreCommit { args: _ } => {
            check::run_check(&CheckScope::Staged, &[], OutputFormat::Text, true)
        }
        RepoCommand::Hook { name, args: _ } => {
            if !guard::hook::HOOKS.contains(&name.as_str()) {
                return Err(Failure::usage(format!(
                    "`git-sops hook {name}`: not a hook git-sops installs (it runs as {})",
                    guard::hook::HOOKS.join(", ")
                )));
            }
            check::run_check(&CheckScope::Staged, &[], OutputFormat::Text, true)
        }
        RepoCommand::Sync { base } => pr::sync(&base),
        RepoCommand::Review {
            range,
            format,
            with_keys,
        } => pr::review(&range, format, with_keys),
        RepoCommand::PreReceive => check::run_pre_receive(),
        RepoCommand::FilterProcess => drivers::filter_process(),
        RepoCommand::Clean { path } => drivers::clean(path),
        RepoCommand::Smudge { path } => drivers::smudge(path),
        RepoCommand::Textconv { file } => drivers::textconv(file),
    }
}
