//! `git sops install`: the driver configuration in git config, nothing else.
//! The filter is `required`, so a failing or missing git-sops stops git instead
//! of storing plaintext; `diff.sops.cachetextconv` is removed wherever it is found
//! because git would store textconv output (plaintext) under `refs/notes`. The
//! merge driver (`merge.sops.driver`) merges the decrypted values of protected
//! files, so two branches that edit different keys merge without a conflict.

use crate::git::{Git, GitError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Local,
}

impl Scope {
    fn flag(self) -> &'static str {
        match self {
            Scope::Global => "--global",
            Scope::Local => "--local",
        }
    }
}

/// The settings git-sops needs, as (key, value).
pub(crate) const SETTINGS: [(&str, &str); 8] = [
    ("filter.sops.process", "git-sops filter-process"),
    ("filter.sops.clean", "git-sops clean %f"),
    ("filter.sops.smudge", "git-sops smudge %f"),
    ("filter.sops.required", "true"),
    ("diff.sops.textconv", "git-sops textconv"),
    ("diff.sops.binary", "false"),
    (
        "merge.sops.name",
        "git-sops: merge SOPS files by their decrypted values",
    ),
    ("merge.sops.driver", "git-sops merge %O %A %B %L %P"),
];

/// Write the settings into `scope`; returns one line per change made.
pub fn install(git: &Git, scope: Scope) -> Result<Vec<String>, GitError> {
    let mut changes = Vec::new();
    for (key, value) in SETTINGS {
        let current = git.run(&["config", scope.flag(), "--get", key]).ok();
        let current = current.map(|v| String::from_utf8_lossy(&v).trim_end().to_string());
        if current.as_deref() != Some(value) {
            git.run(&["config", scope.flag(), key, value])?;
            changes.push(format!("set {key} = {value} ({})", &scope.flag()[2..]));
        }
    }
    changes.extend(remove_cachetextconv(git, scope)?);
    Ok(changes)
}

/// Unset `diff.sops.cachetextconv` in `scope` and, inside a repository, locally.
pub(crate) fn remove_cachetextconv(git: &Git, scope: Scope) -> Result<Vec<String>, GitError> {
    let mut changes = Vec::new();
    let mut scopes = vec![scope];
    if scope == Scope::Global && git.toplevel().is_ok() {
        scopes.push(Scope::Local);
    }
    for s in scopes {
        if git
            .run(&["config", s.flag(), "--get", "diff.sops.cachetextconv"])
            .is_ok()
        {
            git.run(&["config", s.flag(), "--unset-all", "diff.sops.cachetextconv"])?;
            changes.push(format!(
                "removed diff.sops.cachetextconv ({}): git would store decrypted diffs under refs/notes/textconv",
                &s.flag()[2..]
            ));
        }
    }
    Ok(changes)
}
