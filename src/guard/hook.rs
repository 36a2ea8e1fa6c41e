//! Installing the commit hooks (`git sops init`): the shim shipped as
//! `hooks/pre-commit`, written under the name of every hook git runs on a path
//! that makes a commit — `pre-commit` (`git commit`), `pre-merge-commit` (a
//! merge that commits by itself) and `pre-applypatch` (`git am`, which would
//! otherwise commit a decrypted patch unchecked) — into the directory git runs
//! hooks from (`git rev-parse --git-path hooks`, which honours `core.hooksPath`).
//! Idempotent, and it never overwrites someone else's hook: an existing hook is
//! renamed to `<name>.local`, which the shim runs first (its failure still stops
//! the commit). A hook that already runs git-sops' check (not one that merely
//! mentions it in a comment) is left alone; an older copy of the shim is updated.

use std::path::{Path, PathBuf};

use crate::drivers::DriverError;
use crate::git::Git;

/// The shim, as shipped in `hooks/pre-commit`.
pub(crate) const SHIM: &str = include_str!("../../hooks/pre-commit");

/// The hooks the shim is installed as.
pub(crate) const HOOKS: [&str; 3] = ["pre-commit", "pre-merge-commit", "pre-applypatch"];

/// The first comment line of the current shim, and of every older version.
const MARKERS: [&str; 2] = ["# git-sops hook", "# git-sops pre-commit hook"];

fn err(message: impl Into<String>) -> DriverError {
    DriverError::new("git sops init", message)
}

/// The directory git runs this repository's hooks from.
pub(crate) fn hooks_dir(git: &Git) -> Result<PathBuf, DriverError> {
    let out = git
        .run(&["rev-parse", "--path-format=absolute", "--git-path", "hooks"])
        .map_err(|e| err(e.to_string()))?;
    let dir = String::from_utf8_lossy(&out)
        .trim_end_matches('\n')
        .to_string();
    if dir.is_empty() {
        return Err(err("git did not say where its hooks live"));
    }
    Ok(PathBuf::from(dir))
}

/// Install the hooks; returns what was done (nothing when they are in place).
pub fn install(git: &Git) -> Result<Vec<String>, DriverError> {
    let dir = hooks_dir(git)?;
    install_into(&dir)
}

/// Install every hook into `dir` (see the module documentation).
pub(crate) fn install_into(dir: &Path) -> Result<Vec<String>, DriverError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
    let mut changes = Vec::new();
    for name in HOOKS {
        changes.extend(install_one(dir, name)?);
    }
    Ok(changes)
}

/// Does a hook script already run git-sops' check? Only a command line counts:
/// a comment that mentions it does not.
fn runs_git_sops(text: &str) -> bool {
    text.lines().any(|line| {
        let code = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = code.split_whitespace().collect();
        words.windows(2).any(|w| {
            matches!(
                w,
                ["git-sops", "pre-commit" | "hook" | "check"] | ["sops", "check"]
            )
        }) && (code.contains("git-sops") || code.contains("git sops"))
    })
}

fn install_one(dir: &Path, name: &str) -> Result<Vec<String>, DriverError> {
    let hook = dir.join(name);
    let shown = hook.display().to_string();
    let existing = match std::fs::read(&hook) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(format!("cannot read {shown}: {e}"))),
    };
    let Some(existing) = existing else {
        write_hook(&hook)?;
        return Ok(vec![format!("installed the {name} hook ({shown}): commits that would add plaintext to protected paths are refused")]);
    };
    if existing == SHIM.as_bytes() {
        return Ok(if make_executable(&hook)? {
            vec![format!("made the {name} hook executable ({shown})")]
        } else {
            Vec::new()
        });
    }
    let text = String::from_utf8_lossy(&existing);
    if MARKERS.iter().any(|m| text.contains(m)) {
        write_hook(&hook)?;
        return Ok(vec![format!("updated the git-sops {name} hook ({shown})")]);
    }
    if runs_git_sops(&text) {
        // Wired up by hand (or by the pre-commit framework's git-sops-check hook).
        return Ok(Vec::new());
    }
    let local = dir.join(format!("{name}.local"));
    if std::fs::symlink_metadata(&local).is_ok() {
        return Ok(vec![format!(
            "did not install the {name} hook: {shown} and {} both exist already; add `git-sops hook {name} || exit 1` to your hook to refuse plaintext commits",
            local.display()
        )]);
    }
    std::fs::rename(&hook, &local)
        .map_err(|e| err(format!("cannot rename {shown} to {}: {e}", local.display())))?;
    write_hook(&hook)?;
    Ok(vec![format!(
        "installed the {name} hook ({shown}); your previous hook is now {} and still runs first",
        local.display()
    )])
}

/// Write the shim through a temporary file, executable.
fn write_hook(hook: &Path) -> Result<(), DriverError> {
    let tmp = hook.with_file_name(".hook.git-sops.tmp");
    std::fs::write(&tmp, SHIM).map_err(|e| err(format!("cannot write {}: {e}", tmp.display())))?;
    make_executable(&tmp)?;
    std::fs::rename(&tmp, hook).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(format!("cannot write {}: {e}", hook.display()))
    })
}

/// Set the executable bits; true when they were missing.
fn make_executable(path: &Path) -> Result<bool, DriverError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let mode = meta.permissions().mode();
        if mode & 0o111 == 0o111 {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o755))
            .map_err(|e| err(format!("cannot make {} executable: {e}", path.display())))?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_chains_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks");
        std::fs::create_dir_all(&hooks).unwrap();
        std::fs::write(hooks.join("pre-commit"), "#!/bin/sh\necho mine\n").unwrap();
        let first = install_into(&hooks).unwrap();
        assert_eq!(first.len(), 3, "{first:?}");
        assert!(first[0].contains("pre-commit.local"), "{first:?}");
        for name in HOOKS {
            assert_eq!(std::fs::read_to_string(hooks.join(name)).unwrap(), SHIM);
        }
        assert_eq!(
            std::fs::read_to_string(hooks.join("pre-commit.local")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
        assert!(install_into(&hooks).unwrap().is_empty());
        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(install_into(fresh.path()).unwrap().len(), 3);
        assert!(SHIM.starts_with("#!/bin/sh\n") && SHIM.contains(MARKERS[0]));
    }

    #[test]
    fn a_hook_that_only_mentions_the_check_is_chained() {
        assert!(runs_git_sops("#!/bin/sh\ngit-sops pre-commit || exit 1\n"));
        assert!(runs_git_sops("#!/bin/sh\nexec git sops check --staged\n"));
        assert!(!runs_git_sops(
            "#!/bin/sh\n# TODO: run git sops check here\nexit 0\n"
        ));
        assert!(!runs_git_sops("#!/bin/sh\necho 'see sops check docs'\n"));
    }
}
