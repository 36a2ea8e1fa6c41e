//! `git sops keygen`: a new age identity in sops' default key file.

use super::report::Failure;
use sops_file::keys::age;
use sops_file::metadata::now_rfc3339;

pub fn run() -> Result<(), Failure> {
    let path = age::default_key_file().ok_or_else(|| {
        Failure::io("cannot find the user's config directory (is HOME set?)".into())
    })?;
    if path.exists() {
        let existing = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| age::Identities::from_text("", &t).ok())
            .map(|ids| ids.recipients().join(", "))
            .unwrap_or_default();
        return Err(Failure::input(format!(
            "{}: an age key file already exists{}; git-sops will not overwrite it. \
             Use that key, or move the file away first",
            path.display(),
            if existing.is_empty() {
                String::new()
            } else {
                format!(" (recipients: {existing})")
            }
        )));
    }
    let recipient = age::create_key_file(&path, &now_rfc3339())
        .map_err(|e| Failure::io(format!("{}: cannot create it: {e}", path.display())))?;
    eprintln!("git-sops: created an age identity in {}", path.display());
    println!("{recipient}");
    Ok(())
}
