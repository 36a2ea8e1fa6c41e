//! `git sops status`: for every protected path (`filter=sops`), whether the
//! index holds SOPS ciphertext, whether the working tree is decrypted (unlocked)
//! or still ciphertext (locked), its working-tree mode (plaintext or encrypted,
//! and whether git config or the `sops-worktree` attribute says so), and which
//! of the file's keys this machine holds.
//! Where a key opens the staged file it is also authenticated (a damaged file is
//! listed as such), and its keys are compared with what its `.sops.yaml`
//! creation rule names now (a removed recipient that can still open it).

use crate::drivers::filter::sops_type::FileTypes;
use crate::git::cat_file::BlobReader;
use crate::git::worktree::read_file;
use crate::git::{Git, GitError};
use crate::worktree_mode::{self, ModeSource, WorktreeMode};
use sops_file::keygroups::{self, Keyring};
use sops_file::{config, file};

pub struct PathStatus {
    pub path: String,
    /// `Some(true)`: a SOPS file in the index; `Some(false)`: plaintext in the index.
    pub(crate) index_encrypted: Option<bool>,
    pub worktree: &'static str,
    /// The working-tree mode and where it comes from, as `status` prints it.
    pub mode: String,
    pub keys: String,
    /// What needs attention: damage, keys that differ from the creation rule.
    pub(crate) problems: Vec<String>,
}

/// Protected paths among the tracked files.
pub(crate) fn protected_paths(git: &Git) -> Result<Vec<String>, GitError> {
    let paths = git.ls_files()?;
    let filters = git.check_attr("filter", &paths)?;
    Ok(paths
        .into_iter()
        .zip(filters)
        .filter(|(_, f)| f == "sops")
        .map(|(p, _)| p)
        .collect())
}

pub fn status(git: &Git) -> Result<Vec<PathStatus>, GitError> {
    let top = git.toplevel()?;
    let mut blobs = BlobReader::spawn(git)?;
    let keys = crate::cache::data_keys::key_cache(crate::cache::CacheDir::of(git).as_ref());
    let keyring = Keyring::new();
    let mut out = Vec::new();
    let mut types = FileTypes::new(git.clone());
    let rules = config::discover_from(&top).ok().flatten();
    let paths = protected_paths(git)?;
    let modes = worktree_mode::modes_of(git, &paths)?;
    for (path, (mode, source)) in paths.into_iter().zip(modes) {
        // A bad `sops-type` shows as an unreadable file here; the filter reports it.
        let format = types.format(&path).ok();
        let encrypted_mode = mode == WorktreeMode::Encrypted;
        let blob = blobs.read(&format!(":{path}")).ok().flatten();
        let loaded = match (format, &blob) {
            (Some(format), Some(b)) => file::load(format, b),
            _ => None,
        };
        let index_encrypted = blob.as_ref().map(|_| loaded.is_some());
        let worktree = match (read_file(&top, &path), format) {
            (None, _) => "missing (or not a regular file)",
            (Some(bytes), Some(_))
                if encrypted_mode && sops_file::conflict::is_conflict(&bytes) =>
            {
                "unresolved merge conflict (encrypted; resolve with `git sops edit`)"
            }
            (Some(bytes), Some(format)) if file::load(format, &bytes).is_some() => {
                if encrypted_mode {
                    "ciphertext"
                } else {
                    "locked (ciphertext)"
                }
            }
            (Some(_), Some(_)) if encrypted_mode => "PLAINTEXT",
            (Some(_), Some(_)) => "unlocked (plaintext)",
            (Some(_), None) => "unknown sops-type",
        };
        let mut problems = Vec::new();
        if encrypted_mode && worktree == "PLAINTEXT" {
            problems.push(format!(
                "plaintext on disk although its working-tree mode is encrypted; `git add` it, then run `git sops worktree encrypted` (or `git checkout -- {}` if it is unchanged)",
                crate::drivers::shell_word(&path)
            ));
        }
        let mode = format!(
            "{}{}",
            mode.name(),
            match source {
                ModeSource::Default => "",
                ModeSource::Config => " (sops.worktree)",
                ModeSource::Attribute => " (sops-worktree attribute)",
            }
        );
        let keys_text = match &loaded {
            None => "-".to_string(),
            Some(loaded) => match keys.recover(&loaded.meta, &keyring) {
                Ok(key) => {
                    if let Err(e) = loaded.open(&key) {
                        problems.push(format!(
                            "DAMAGED: the staged file does not authenticate ({e}); restore a good version with `git checkout <commit> -- {}`",
                            crate::drivers::shell_word(&path)
                        ));
                    }
                    format!("opens with a local key ({})", describe(&loaded.meta))
                }
                Err(_) => format!("no local key; needs one of: {}", describe(&loaded.meta)),
            },
        };
        if let (Some(loaded), Some(cfg)) = (&loaded, &rules) {
            // Metadata only: the drift report needs no key. A templated rule is
            // rendered for this path, so a file moved into another service's
            // folder shows the other key, role or context here.
            match cfg.rule_for(&top.join(&path).to_string_lossy()) {
                Ok(rule) => {
                    if let Some(change) =
                        keygroups::drift(&loaded.meta.key_groups, &rule.key_groups)
                    {
                        let f = crate::drivers::shell_word(&path);
                        problems.push(format!(
                            "its keys differ from its .sops.yaml creation rule {} ({change}); run `git sops updatekeys -y {f}` (and `git sops rotate -i {f}` when a key was removed)",
                            rule.number
                        ));
                    }
                }
                Err(e) if e.template.is_some() => problems.push(e.message),
                Err(_) => {}
            }
        }
        out.push(PathStatus {
            path,
            index_encrypted,
            worktree,
            mode,
            keys: keys_text,
            problems,
        });
    }
    Ok(out)
}

fn describe(meta: &sops_file::metadata::Metadata) -> String {
    meta.all_keys()
        .map(|k| format!("{} {}", k.kind(), k.identifier()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where git keeps plaintext copies of protected files on its own, as warnings
/// for `init` and `status` (none when every protected path is in encrypted mode): rerere records the working-tree text of every
/// conflicted file (which is decrypted) under `.git/rr-cache`, and is on when
/// `rerere.enabled` is true or, unset, when that folder exists.
pub(crate) fn plaintext_caches(git: &Git) -> Vec<String> {
    let mut warnings = Vec::new();
    // An encrypted working tree keeps a conflict as its encrypted envelope,
    // which has no markers for rerere to record: only plaintext-mode paths count.
    let all_encrypted = protected_paths(git)
        .and_then(|paths| worktree_mode::modes_of(git, &paths))
        .is_ok_and(|modes| {
            !modes.is_empty() && modes.iter().all(|(m, _)| *m == WorktreeMode::Encrypted)
        });
    if all_encrypted {
        return warnings;
    }
    let enabled = git.config_bool("rerere.enabled").ok().flatten();
    let cache = git.common_dir().ok().map(|d| d.join("rr-cache"));
    let exists = cache.as_ref().is_some_and(|c| c.is_dir());
    if enabled == Some(true) || (enabled.is_none() && exists) {
        warnings.push(format!(
            "rerere is on{}: git records the decrypted text of conflicted files under {}; run `git config rerere.enabled false` and delete that folder to keep plaintext out of .git",
            if enabled == Some(true) { " (rerere.enabled)" } else { " (the rr-cache folder exists)" },
            cache.map(|c| c.display().to_string()).unwrap_or_else(|| ".git/rr-cache".into())
        ));
    }
    warnings
}
