//! How failures reach the user: one paragraph on stderr that names the file, says
//! what is wrong and what to do, and an exit code (sops' codes where sops has one,
//! so scripts written against sops keep working).

use std::fmt;

use crate::drivers::{DriverError, Level, Notice};
use sops_file::formats::extract::{ExtractError, PathError};
use sops_file::formats::set::{PutError, SetError, UnsetError, ValueError};
use sops_file::formats::FormatError;
use sops_file::keygroups::KeyGroupError;
use sops_file::Error;

/// sops' exit codes (cmd/sops/codes).
pub mod code {
    pub(crate) const GENERIC: i32 = 1;
    pub(crate) const USAGE: i32 = 2;
    pub(crate) const COULD_NOT_READ_INPUT_FILE: i32 = 2;
    pub(crate) const COULD_NOT_WRITE_OUTPUT_FILE: i32 = 3;
    pub(crate) const ERROR_DUMPING_TREE: i32 = 4;
    pub(crate) const INVALID_SET_FORMAT: i32 = 7;
    pub(crate) const INVALID_KMS_ENCRYPTION_CONTEXT: i32 = 6;
    pub(crate) const ERROR_DECRYPTING_TREE: i32 = 25;
    pub(crate) const MAC_MISMATCH: i32 = 51;
    pub(crate) const INVALID_TREE_PATH_FORMAT: i32 = 91;
    pub(crate) const EMPTY_FILE: i32 = 92;
    pub(crate) const NO_FILE_SPECIFIED: i32 = 100;
    pub(crate) const COULD_NOT_RETRIEVE_KEY: i32 = 128;
    pub(crate) const FILE_HAS_NOT_BEEN_MODIFIED: i32 = 200;
    pub(crate) const NO_EDITOR_FOUND: i32 = 201;
    pub(crate) const FILE_ALREADY_ENCRYPTED: i32 = 203;
    /// `publish plan`: there are changes (Terraform's `-detailed-exitcode`).
    /// Every other command uses 2 for usage errors; for `publish` a usage error,
    /// like any error, is [`PUBLISH_ERROR`], so 2 always means "changes" there.
    #[cfg_attr(not(feature = "publish"), allow(dead_code))]
    pub(crate) const PUBLISH_CHANGES: i32 = 2;
    /// `sync`: the merge conflicted where the driver could not resolve it; it
    /// was aborted and the branch is as it was.
    pub(crate) const SYNC_CONFLICT: i32 = 1;
    /// `sync`: refused before merging (dirty tree, no driver, bad BASE).
    pub(crate) const SYNC_REFUSED: i32 = 2;
    /// `review`: the range or repository cannot be read.
    pub(crate) const REVIEW_ERROR: i32 = 2;
    /// `publish`: any error (usage, repository, AWS, or a resource that failed
    /// or was not done).
    pub(crate) const PUBLISH_ERROR: i32 = 1;
}

/// Is this process running `git-sops publish ...`? (Its usage errors exit
/// [`code::PUBLISH_ERROR`], not [`code::USAGE`].)
pub(crate) fn is_publish_invocation() -> bool {
    std::env::args_os().nth(1).is_some_and(|a| a == "publish")
}

#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub(crate) hint: Option<String>,
    pub(crate) exit_code: i32,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "git-sops: error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl From<DriverError> for Failure {
    /// The driver's own message and hint; the exit code (and the hint, when the
    /// driver gave none) from the library error behind it.
    fn from(e: DriverError) -> Failure {
        let message = e.to_string();
        let mut f = match e.cause {
            Some(cause) => Failure::from_sops(&e.path, *cause),
            None => Failure::io(String::new()),
        };
        f.message = message;
        if e.hint.is_some() {
            f.hint = e.hint;
        }
        f
    }
}

/// Print what a driver had to say, in the shape of every git-sops message.
pub(crate) fn notice(n: &Notice) {
    let label = match n.level {
        Level::Note => "",
        Level::Warning => "warning: ",
        Level::Error => "error: ",
    };
    eprintln!("git-sops: {label}{}: {}", n.path, n.message);
    if let Some(hint) = &n.hint {
        eprintln!("  hint: {hint}");
    }
}

impl Failure {
    pub fn new(message: String, exit_code: i32) -> Failure {
        Failure {
            message,
            hint: None,
            exit_code,
        }
    }

    /// An exit code with nothing to print (the command already said why).
    pub fn silent(exit_code: i32) -> Failure {
        Failure::new(String::new(), exit_code)
    }

    pub fn usage(message: String) -> Failure {
        Failure::new(message, code::USAGE)
    }

    pub fn io(message: String) -> Failure {
        Failure::new(message, code::GENERIC)
    }

    pub fn input(message: String) -> Failure {
        Failure::new(message, code::GENERIC)
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// `--all` where there is no repository to take the files from.
    pub(crate) fn not_in_repository(command: &str, why: &str) -> Failure {
        Failure::usage(format!(
            "{command} --all works inside a git repository (it takes the repository's protected files), and this is not one: {why}"
        ))
        .with_hint(format!(
            "run it from inside the repository, or name the files: `git sops {command} FILE...`"
        ))
    }

    /// A bulk `updatekeys` / `rotate` in which some files failed (each listed in
    /// the report above it); the others were done. The exit code is the first
    /// failure's, i.e. sops' code for what went wrong with that file (128: no
    /// key could open it, 51: a MAC mismatch, ...), as a script running the
    /// command on that file alone would see it; 1 when that failure had none.
    pub(crate) fn files_failed(failed: usize, total: usize, first_code: i32) -> Failure {
        let exit_code = if first_code == 0 {
            code::GENERIC
        } else {
            first_code
        };
        Failure::new(
            format!("{failed} of {total} files failed (listed above); the others were done"),
            exit_code,
        )
        .with_hint("fix what each failed file says, then run the command again for those files")
    }

    /// `sync` did not merge: why, and what to do; the branch is as it was.
    pub(crate) fn sync(e: crate::setup::sync::SyncError) -> Failure {
        use crate::setup::sync::SyncError as E;
        let hint = match &e {
            E::Git(_) | E::NotACommit(_) => "run it inside the repository's working tree, on the branch to update, with a BASE that exists here (`git fetch origin` first for origin/main)".to_string(),
            E::Dirty(_) => "commit or stash those changes (`git stash`), then sync again".to_string(),
            E::InProgress => "finish it (`git commit`) or abort it (`git merge --abort`) first".to_string(),
            E::NoDriver(_) => "run `git sops install` (or `git sops init`) in this clone, with a key that opens the protected files".to_string(),
            E::Conflict { output, .. } => {
                let said: String = output
                    .lines()
                    .filter(|l| l.starts_with("git-sops") || l.starts_with("CONFLICT") || l.trim_start().starts_with("hint"))
                    .take(20)
                    .map(|l| format!("\n    {l}"))
                    .collect();
                format!("both branches changed the same values (or the driver had no key that opens the files); merge by hand with `git merge BASE` where a key is available, resolve with `git sops edit`, commit and push{}", if said.is_empty() { String::new() } else { format!("\n  what the merge said:{said}") })
            }
            E::MergeFailed { .. } => "see git's message above; the branch is as it was".to_string(),
        };
        let exit_code = match &e {
            E::Conflict { .. } => code::SYNC_CONFLICT,
            _ => code::SYNC_REFUSED,
        };
        Failure::new(format!("sync: {e}"), exit_code).with_hint(hint)
    }

    /// `review`: the range or repository cannot be read.
    pub(crate) fn review(message: String) -> Failure {
        Failure::new(format!("review: {message}"), code::REVIEW_ERROR)
            .with_hint("give a range of commits that exist here: BASE..HEAD, BASE...HEAD or BASE (fetch the base branch first)")
    }

    /// `publish`: the whole command could not run (config, git, AWS listing).
    #[cfg(feature = "publish")]
    pub(crate) fn publish(e: crate::publish::PublishError) -> Failure {
        let hint = match &e {
            crate::publish::PublishError::Config(_) => "see docs/publish.md for the `git_sops: publish:` section of .sops.yaml",
            crate::publish::PublishError::Git(_) => "publish reads committed blobs: pass a commit with --rev",
            crate::publish::PublishError::Aws(_) => "check the credentials (AWS_PROFILE, the rule's role) and the region; docs/publish.md lists the IAM permissions",
        };
        Failure::new(e.to_string(), code::PUBLISH_ERROR).with_hint(hint)
    }

    /// `publish plan` with resources or files it cannot plan (listed above).
    #[cfg(feature = "publish")]
    pub(crate) fn publish_errors(n: usize) -> Failure {
        Failure::new(
            format!("{n} resources or files cannot be published (listed above)"),
            code::PUBLISH_ERROR,
        )
        .with_hint("fix what each `error:` line says; the others are planned as shown")
    }

    /// `publish apply`: some resources failed or were not done; the others were.
    #[cfg(feature = "publish")]
    pub(crate) fn publish_failed(n: usize, total: usize) -> Failure {
        Failure::new(
            format!("{n} of {total} resources failed or were not done (listed above); the others were applied"),
            code::PUBLISH_ERROR,
        )
        .with_hint("fix what each FAILED / NOT DONE line says and run apply again: what is already in place makes no new call")
    }

    #[cfg(feature = "publish")]
    pub(crate) fn publish_needs_yes() -> Failure {
        Failure::new(
            "publish apply: not writing to AWS without confirmation, and standard input is not a terminal to ask on; nothing was written".into(),
            code::PUBLISH_ERROR,
        )
        .with_hint("review the plan above and run again with --yes to apply it")
    }

    #[cfg(feature = "publish")]
    pub(crate) fn publish_declined() -> Failure {
        Failure::new(
            "publish apply: not confirmed; nothing was written".into(),
            code::PUBLISH_ERROR,
        )
    }

    /// `publish apply --prune` without a repository name in `.sops.yaml`.
    #[cfg(feature = "publish")]
    pub(crate) fn publish_prune_unnamed(default: &str) -> Failure {
        Failure::new(
            format!("publish apply --prune: .sops.yaml names no `repository` in its git_sops section, so this checkout would prune by its folder name {default:?}, which another repository may share; nothing was written"),
            code::PUBLISH_ERROR,
        )
        .with_hint("add `repository: ORG/NAME` under `git_sops:` in .sops.yaml (it is the git-sops:repository tag of what this repository publishes), then run apply --prune again")
    }

    /// `doctor` found problems that leave protected files unprotected (each a
    /// FAIL line above, with its fix). Warnings alone exit 0, so a script can
    /// run `git sops doctor` as a gate without failing on advice.
    pub(crate) fn doctor_failed(failed: usize, warned: usize) -> Failure {
        Failure::new(
            format!("{failed} check(s) failed and {warned} warned (listed above)"),
            code::GENERIC,
        )
        .with_hint("run the `fix:` command under each FAIL line, then `git sops doctor` again")
    }

    /// `updatekeys` without `--yes` when there is no terminal to ask on.
    pub(crate) fn needs_confirmation(what: &str) -> Failure {
        Failure::usage(format!(
            "{what}: not changing the keys without confirmation, and standard input is not a terminal to ask on; nothing was written"
        ))
        .with_hint("review the changes above and run again with --yes to apply them")
    }

    /// A `--extract` path sops cannot parse.
    pub(crate) fn tree_path(err: &PathError) -> Failure {
        Failure::new(
            format!("error parsing --extract path: {err}"),
            code::INVALID_TREE_PATH_FORMAT,
        )
        .with_hint(r#"write the path as sops does: ["key"]["nested key"][0] (keys in double or single quotes, list indexes as numbers)"#)
    }

    /// A `--extract` path that does not fit the document (sops' exit code 1), or
    /// a value the output format cannot hold (sops' `ErrorDumpingTree`, 4).
    pub(crate) fn extract(name: &str, err: &ExtractError) -> Failure {
        let f = Failure::new(
            format!("{name}: {err}"),
            if err.is_dump_error() {
                code::ERROR_DUMPING_TREE
            } else {
                code::GENERIC
            },
        );
        match err {
            ExtractError::DotenvValue(_) | ExtractError::BinaryValue => f.with_hint(
                "only a string can be printed as dotenv or binary; pass --output-type yaml or json",
            ),
            _ => f,
        }
    }

    /// A `set`/`unset` PATH sops cannot parse (its `ErrorInvalidSetFormat`, 7;
    /// `--extract` uses 91 for the same syntax). `None`: not UTF-8.
    pub(crate) fn set_path(err: Option<&PathError>) -> Failure {
        let why = err.map_or_else(|| "not UTF-8 text".to_string(), ToString::to_string);
        Failure::new(
            format!("invalid index format: {why}"),
            code::INVALID_SET_FORMAT,
        )
        .with_hint(r#"write the path as sops does: ["key"]["nested key"][0] (keys in double or single quotes, list indexes as numbers)"#)
    }

    /// A `set` VALUE sops refuses (7).
    pub(crate) fn set_value(err: &ValueError) -> Failure {
        Failure::new(format!("invalid value: {err}"), code::INVALID_SET_FORMAT).with_hint(
            r#"VALUE is JSON: quote a string ('"text"'), or give a number, true/false/null, or an object ({"a": 1})"#,
        )
    }

    /// `set` that cannot be applied to the file `name`: a value the format
    /// cannot hold is sops' "Could not marshal tree" (4), anything else 1.
    pub(crate) fn set(name: &str, err: &SetError) -> Failure {
        let code = match err {
            SetError::Put(PutError::Unsupported(_)) => code::ERROR_DUMPING_TREE,
            _ => code::GENERIC,
        };
        Failure::new(format!("{name}: {err}; nothing was written"), code)
    }

    /// `unset` that cannot be applied (sops: 1, also for a path that is not
    /// there unless `--idempotent`).
    pub(crate) fn unset(name: &str, err: &UnsetError) -> Failure {
        let f = Failure::new(format!("{name}: {err}; nothing was written"), code::GENERIC);
        match err {
            UnsetError::NotFound(_) => {
                f.with_hint("--idempotent succeeds when the path is not there")
            }
            _ => f,
        }
    }

    /// A library error about the file `name`.
    pub(crate) fn from_sops(name: &str, err: Error) -> Failure {
        let (exit_code, hint) = match &err {
            Error::Format(FormatError::Empty { .. }) => (code::EMPTY_FILE, None),
            Error::Format(FormatError::Syntax { .. }) => {
                (code::GENERIC, Some("fix the syntax at that position; nothing was written"))
            }
            Error::Format(FormatError::Unsupported { .. }) => (code::GENERIC, None),
            Error::AlreadyEncrypted => (
                code::FILE_ALREADY_ENCRYPTED,
                Some("decrypt it first if you meant to re-encrypt it"),
            ),
            Error::NotEncrypted => (
                code::GENERIC,
                Some("this looks like a plaintext file; encrypt it with `git sops encrypt`"),
            ),
            Error::Metadata(_) => (
                code::GENERIC,
                Some("the `sops` block was damaged or hand-edited; restore it from version control"),
            ),
            Error::Keys(KeyGroupError::Recover { .. }) => (
                code::COULD_NOT_RETRIEVE_KEY,
                Some("make one of the file's keys available (age: SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, SOPS_AGE_KEY_CMD or sops' default key file; AWS KMS: credentials allowed kms:Decrypt on the key, e.g. AWS_PROFILE or `aws sso login`), or ask someone who can decrypt it to add your key to .sops.yaml and run `git sops updatekeys`"),
            ),
            Error::Keys(KeyGroupError::Wrap { .. }) => (
                code::GENERIC,
                Some("nothing was written; fix the key or its access (the reason is above) and run the command again"),
            ),
            Error::Keys(KeyGroupError::BadRecipient { .. }) => (
                code::GENERIC,
                Some("fix the key in .sops.yaml or on the command line; nothing was written"),
            ),
            Error::Keys(_) => (code::GENERIC, None),
            Error::Value { .. } | Error::Plaintext { .. } | Error::BadPlaintext { .. } => (
                code::ERROR_DECRYPTING_TREE,
                Some("the value was changed or moved outside sops; restore it from version control"),
            ),
            Error::MacMismatch { .. } | Error::MacUnreadable(_) => (
                code::MAC_MISMATCH,
                Some("the file was changed outside sops; if you trust the change, decrypt with --ignore-mac and encrypt again"),
            ),
            Error::OutOfRange { .. }
            | Error::CommentMatchesUnencryptedRegex
            | Error::Unreadable(_)
            | Error::Splice(_) => (code::GENERIC, None),
        };
        Failure {
            message: format!("{name}: {err}"),
            hint: hint.map(str::to_string),
            exit_code,
        }
    }
}
