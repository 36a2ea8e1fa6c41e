//! Which working-tree mode a protected path is in: **plaintext** (the default:
//! smudge decrypts, the working tree holds what the key opens) or
//! **encrypted** (smudge leaves the SOPS ciphertext in the working tree even
//! when a key is available, so plaintext never touches the disk; `git diff`
//! decrypts in memory through textconv, `git sops edit` edits in memory).
//!
//! The repository-wide switch is `git config sops.worktree encrypted|plaintext`;
//! the `sops-worktree=encrypted|plaintext` gitattribute sets it per path,
//! read through the same `git check-attr` as `sops-type` (one round trip for
//! both, see `sops_type::FileTypes`). Anything unrecognised reads as
//! encrypted: a typo must fail closed, never put plaintext on a disk whose
//! owner asked for none. The switch lives in git config (not a file) so that
//! each clone decides for its own disk; the attribute lets a repository insist
//! for a path whoever clones it.
//!
//! **The stricter of the two wins.** The attribute is committed, so anyone who
//! can push to the repository writes it: were `sops-worktree=plaintext` to
//! override a clone's `sops.worktree encrypted`, one commit would turn a
//! victim's "never plaintext on disk" off at their next checkout. So the
//! attribute can only make a path stricter (encrypted in a plaintext clone);
//! in a clone whose config says encrypted every protected path is encrypted.

use crate::git::Git;

/// The gitattribute that overrides the mode per path.
pub(crate) const ATTRIBUTE: &str = "sops-worktree";
/// The git config key of the repository-wide mode.
pub(crate) const CONFIG: &str = "sops.worktree";

/// What smudge leaves in the working tree for a protected path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorktreeMode {
    /// Decrypted (with a key): the working tree holds plaintext.
    Plaintext,
    /// Ciphertext always: the working tree holds what the repository holds.
    Encrypted,
}

/// Where a path's mode came from, for `git sops status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeSource {
    Default,
    Config,
    Attribute,
}

impl WorktreeMode {
    pub fn name(self) -> &'static str {
        match self {
            WorktreeMode::Plaintext => "plaintext",
            WorktreeMode::Encrypted => "encrypted",
        }
    }

    /// A configured or attribute value; unrecognised values fail closed.
    pub(crate) fn parse(value: &str) -> WorktreeMode {
        match value.trim().to_ascii_lowercase().as_str() {
            "plaintext" | "decrypted" | "unset" | "false" => WorktreeMode::Plaintext,
            _ => WorktreeMode::Encrypted,
        }
    }
}

/// The repository-wide mode (`sops.worktree`; plaintext when unset).
pub(crate) fn configured(git: &Git) -> (WorktreeMode, ModeSource) {
    match git.config_get(CONFIG) {
        Ok(Some(value)) => (WorktreeMode::parse(&value), ModeSource::Config),
        Ok(None) => (WorktreeMode::Plaintext, ModeSource::Default),
        // A config git cannot read: fail closed.
        Err(_) => (WorktreeMode::Encrypted, ModeSource::Config),
    }
}

/// The mode of a path whose `sops-worktree` attribute git reports as `value`
/// (`unspecified`, `set`, `unset` or the value), given the configured mode:
/// the stricter wins (see the module comment), so a committed attribute
/// never turns a clone's encrypted mode off.
pub(crate) fn resolve(
    value: &str,
    configured: (WorktreeMode, ModeSource),
) -> (WorktreeMode, ModeSource) {
    if configured.0 == WorktreeMode::Encrypted {
        return configured;
    }
    match value {
        "unspecified" => configured,
        // A bare `sops-worktree` asks for the stricter mode; `-sops-worktree` for plaintext.
        "set" => (WorktreeMode::Encrypted, ModeSource::Attribute),
        other => (WorktreeMode::parse(other), ModeSource::Attribute),
    }
}

/// Whether `path` is kept encrypted in the working tree; `true` when that
/// cannot be told (fail closed: the callers then keep plaintext off the disk).
pub(crate) fn is_encrypted(git: &Git, path: &str) -> bool {
    modes_of(git, &[path.to_string()])
        .ok()
        .and_then(|m| m.first().copied())
        .is_none_or(|(m, _)| m == WorktreeMode::Encrypted)
}

/// The modes of many paths (one `git check-attr`), for the set-up commands.
pub(crate) fn modes_of(
    git: &Git,
    paths: &[String],
) -> Result<Vec<(WorktreeMode, ModeSource)>, crate::git::GitError> {
    let configured = configured(git);
    let values = git.check_attr(ATTRIBUTE, paths)?;
    Ok(values.iter().map(|v| resolve(v, configured)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribute_overrides_and_unknown_values_fail_closed() {
        let plain = (WorktreeMode::Plaintext, ModeSource::Default);
        let enc = (WorktreeMode::Encrypted, ModeSource::Config);
        assert_eq!(resolve("unspecified", plain), plain);
        assert_eq!(resolve("unspecified", enc), enc);
        // A committed attribute cannot turn a clone's encrypted mode off.
        assert_eq!(resolve("plaintext", enc), enc);
        assert_eq!(resolve("unset", enc), enc);
        let plain_config = (WorktreeMode::Plaintext, ModeSource::Config);
        assert_eq!(
            resolve("plaintext", plain_config).0,
            WorktreeMode::Plaintext
        );
        assert_eq!(
            resolve("encrypted", plain_config).0,
            WorktreeMode::Encrypted
        );
        assert_eq!(resolve("encrypted", plain).0, WorktreeMode::Encrypted);
        assert_eq!(resolve("set", plain).0, WorktreeMode::Encrypted);
        assert_eq!(resolve("encrpyted", plain).0, WorktreeMode::Encrypted);
        assert_eq!(resolve("encrypted", plain).1, ModeSource::Attribute);
        assert_eq!(WorktreeMode::parse("Plaintext"), WorktreeMode::Plaintext);
        assert_eq!(WorktreeMode::parse("yes"), WorktreeMode::Encrypted);
    }
}
