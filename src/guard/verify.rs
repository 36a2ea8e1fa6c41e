//! The keyed half of the commit hooks: every SOPS file a commit changes is
//! opened where this machine holds a key (the data-key cache, or a local age
//! identity; never a KMS call, so a hook does not wait on the network), and a
//! file whose MAC or values do not authenticate is refused. The form check
//! cannot see this: `git add -p` can stage a value's new ciphertext without the
//! `mac` line that goes with it, and an edit inside `ENC[...]` keeps the form.
//! Such a commit would stop every later checkout of the file.

use super::finding::{Finding, Kind};
use super::snapshot::{Repo, SnapshotError};
use crate::cache::data_keys::key_cache;
use crate::cache::CacheDir;
use sops_file::file;
use sops_file::keygroups::Keyring;

/// Findings for the staged SOPS files that differ from HEAD (every staged one
/// when there is no HEAD yet) and do not authenticate under a local key.
pub fn staged(repo: &Repo) -> Result<Vec<Finding>, SnapshotError> {
    let entries = repo.index_entries()?;
    let changed: Option<std::collections::HashSet<String>> = match repo.try_commit_id("HEAD") {
        Some(head) => Some(
            repo.index_changes(&head)?
                .changes
                .into_iter()
                .filter_map(|c| c.new)
                .collect(),
        ),
        None => None,
    };
    let mut blobs = repo.blobs()?;
    let keys = key_cache(CacheDir::of(repo.git()).as_ref());
    let keyring = Keyring::offline();
    let mut findings = Vec::new();
    for entry in entries {
        if changed.as_ref().is_some_and(|c| !c.contains(&entry.oid)) {
            continue;
        }
        let Ok(Some(blob)) = blobs.read(&entry.oid) else {
            continue;
        };
        if !file::might_be_sops(&blob) {
            continue;
        }
        let Some(loaded) = file::sniff(&entry.path, &blob) else {
            continue;
        };
        let Ok(key) = keys.recover(&loaded.meta, &keyring) else {
            continue; // no local key: the form check is all there is
        };
        if let Err(e) = loaded.open(&key) {
            let shown = crate::drivers::shell_word(&entry.path);
            let mut f = Finding::new(
                Kind::AuthenticationFailed,
                format!(
                    "the staged SOPS file does not authenticate ({e}); every checkout of this commit would fail for it. Stage the whole file again from your working tree (`git add {shown}`), or restore it (`git checkout HEAD -- {shown}`); to stage part of a protected file, use `git sops add -p {shown}` (plain `git add -p` splits its ciphertext)"
                ),
            );
            f.path = entry.path.clone();
            findings.push(f);
        }
    }
    Ok(findings)
}
