//! `git sops status`: for every protected path (`filter=sops`), whether the
//! index holds SOPS ciphertext, whether the working tree is decrypted (unlocked)
//! or still ciphertext (locked), and which of the file's keys this machine holds.

use super::filetype::FileTypes;
use crate::git::cat_file::BlobReader;
use crate::git::{Git, GitError};
use crate::sops::file;
use crate::sops::keygroups::Keyring;

pub struct PathStatus {
    pub path: String,
    /// `Some(true)`: a SOPS file in the index; `Some(false)`: plaintext in the index.
    pub index_encrypted: Option<bool>,
    pub worktree: &'static str,
    pub keys: String,
}

/// Protected paths among the tracked files.
pub fn protected_paths(git: &Git) -> Result<Vec<String>, GitError> {
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
    let keys = super::keystore::key_cache(git);
    let keyring = Keyring::new();
    let mut out = Vec::new();
    let mut types = FileTypes::new(git.clone());
    for path in protected_paths(git)? {
        // A bad `sops-type` shows as an unreadable file here; the filter reports it.
        let format = types.format(&path).ok();
        let blob = blobs.read(&format!(":{path}")).ok().flatten();
        let loaded = match (format, &blob) {
            (Some(format), Some(b)) => file::load(format, b),
            _ => None,
        };
        let index_encrypted = blob.as_ref().map(|_| loaded.is_some());
        let worktree = match (std::fs::read(top.join(&path)), format) {
            (Err(_), _) => "missing",
            (Ok(bytes), Some(format)) if file::load(format, &bytes).is_some() => {
                "locked (ciphertext)"
            }
            (Ok(_), Some(_)) => "unlocked (plaintext)",
            (Ok(_), None) => "unknown sops-type",
        };
        let keys_text = match &loaded {
            None => "-".to_string(),
            Some(loaded) => match keys.recover(&loaded.meta, &keyring) {
                Ok(_) => format!("opens with a local key ({})", describe(&loaded.meta)),
                Err(_) => format!("no local key; needs one of: {}", describe(&loaded.meta)),
            },
        };
        out.push(PathStatus {
            path,
            index_encrypted,
            worktree,
            keys: keys_text,
        });
    }
    Ok(out)
}

fn describe(meta: &crate::sops::metadata::Metadata) -> String {
    meta.all_keys()
        .map(|k| format!("{} {}", k.kind(), k.identifier()))
        .collect::<Vec<_>>()
        .join(", ")
}
