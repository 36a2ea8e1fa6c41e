//! `git sops init [PATTERN...]`: everything a repository needs, idempotently —
//! the driver config (`install --local`), the pre-commit hook (the plaintext
//! guard, chained with an existing hook), an age identity when the user has no
//! key at all, a `.sops.yaml` creation rule for the patterns when there is none,
//! the `.gitattributes` lines, and a re-checkout of protected files that are
//! still ciphertext in the working tree so an existing clone unlocks (with
//! `--encrypted-worktree`: `sops.worktree encrypted`, and a re-checkout that
//! puts ciphertext on disk instead, see `worktree`).

use std::path::Path;

use super::install::{self, Scope};
use super::status::protected_paths;
use crate::drivers::filter::sops_type::FileTypes;
use crate::drivers::DriverError;
use crate::git::cat_file::BlobReader;
use crate::git::worktree::read_file;
use crate::git::Git;
use crate::worktree_mode::WorktreeMode;
use sops_file::keys::age;
use sops_file::{config, file, metadata::now_rfc3339};

pub(crate) const DEFAULT_PATTERN: &str = "secrets/**";

fn err(message: impl Into<String>) -> DriverError {
    DriverError::new("git sops init", message)
}

pub fn init(
    git: &Git,
    patterns: &[String],
    encrypted_worktree: bool,
) -> Result<Vec<String>, DriverError> {
    let top = git
        .toplevel()
        .map_err(|e| err(e.to_string()).hint("run it inside a git repository"))?;
    let top_git = Git::new(&top);
    let patterns: Vec<String> = if patterns.is_empty() {
        vec![DEFAULT_PATTERN.to_string()]
    } else {
        patterns.to_vec()
    };
    let mut changes = install::install(&top_git, Scope::Local).map_err(|e| err(e.to_string()))?;
    changes.extend(crate::guard::hook::install(&top_git)?);

    let config_path = top.join(".sops.yaml");
    if config::find(&top).is_none() {
        let recipient = ensure_identity(&mut changes)?;
        let text = format!(
            "# Written by `git sops init`. The first rule whose path_regex matches a file decides\n\
             # who can decrypt it. Add your team's recipients here, then run\n\
             # `git sops updatekeys FILE...` so existing files follow.\n\
             creation_rules:\n  - path_regex: {}\n    age: {recipient}\n",
            yaml_single_quoted(&patterns_regex(&patterns))
        );
        std::fs::write(&config_path, text)
            .map_err(|e| err(format!("cannot write {}: {e}", config_path.display())))?;
        changes.push(format!(
            "wrote .sops.yaml: new files matching {} are encrypted for {recipient}",
            patterns.join(" ")
        ));
    }

    changes.extend(add_attributes(&top, &patterns)?);
    if encrypted_worktree {
        // Ciphertext stays on disk: the switch checks out again whatever a
        // plaintext working tree had decrypted.
        changes.extend(super::worktree::switch(
            &top_git,
            WorktreeMode::Encrypted,
            super::worktree::Dirty::Skip,
        )?);
    } else {
        changes.extend(unlock_checkout(&top_git)?);
    }
    changes.extend(
        super::status::plaintext_caches(&top_git)
            .into_iter()
            .map(|w| format!("warning: {w}")),
    );
    Ok(changes)
}

/// The user's first age recipient, creating an identity when there is none.
fn ensure_identity(changes: &mut Vec<String>) -> Result<String, DriverError> {
    let ids = age::Identities::discover().map_err(|e| err(e.to_string()))?;
    if let Some(r) = ids.recipients().into_iter().next() {
        return Ok(r);
    }
    let path = age::default_key_file()
        .ok_or_else(|| err("cannot find the user's config directory (is HOME set?)"))?;
    let recipient = age::create_key_file(&path, &now_rfc3339())
        .map_err(|e| err(format!("cannot create {}: {e}", path.display())))?;
    changes.push(format!(
        "created an age identity in {} (back it up: it decrypts your secrets)",
        path.display()
    ));
    Ok(recipient)
}

/// The attributes `init` gives each pattern.
pub(crate) const ATTRIBUTES: &str = "filter=sops diff=sops merge=sops -text";

/// Add a `PATTERN filter=sops diff=sops merge=sops -text` line for each pattern
/// that has no `filter=sops` line yet, and give existing `filter=sops` lines
/// that name no merge driver `merge=sops` (lines written by an older
/// `git sops init`). A line that sets `merge` in any way is left alone.
fn add_attributes(top: &Path, patterns: &[String]) -> Result<Vec<String>, DriverError> {
    let path = top.join(".gitattributes");
    let original = std::fs::read_to_string(&path).unwrap_or_default();
    // A checkout with `core.autocrlf=true` (or `core.eol=crlf`) has CRLF lines
    // here: they are compared as LF lines and written back with CRLF, so a line
    // that is already there is not seen as missing or misplaced, and the file
    // does not end up with mixed endings (a phantom change in `git status`).
    let crlf = original.contains("\r\n");
    let original = if crlf {
        original.replace("\r\n", "\n")
    } else {
        original
    };
    let mut changes = Vec::new();
    let mut text = String::with_capacity(original.len() + 64);
    for line in original.split_inclusive('\n') {
        match with_merge_driver(line) {
            Some(upgraded) => {
                changes.push(format!(
                    "added merge=sops to the .gitattributes line `{}` (merges decrypted values)",
                    line.trim_end()
                ));
                text.push_str(&upgraded);
            }
            None => text.push_str(line),
        }
    }
    for pattern in patterns {
        let present = text.lines().any(|l| {
            let mut fields = l.split_whitespace();
            fields.next() == Some(pattern.as_str()) && fields.any(|f| f == "filter=sops")
        });
        if !present {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{pattern} {ATTRIBUTES}\n"));
            changes.push(format!("added `{pattern} {ATTRIBUTES}` to .gitattributes"));
        }
    }
    // The files that configure protection are never encrypted: their lines come
    // last, so no pattern above (`*`, `**`, `*.yaml`) can reach them.
    let kept: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| !EXEMPT.contains(&l.trim_end()))
        .collect();
    let mut fixed: String = kept.concat();
    if !fixed.is_empty() && !fixed.ends_with('\n') {
        fixed.push('\n');
    }
    for line in EXEMPT {
        fixed.push_str(line);
        fixed.push('\n');
    }
    if fixed != text {
        if !text.contains(EXEMPT[0]) {
            changes.push(
                "added `.gitattributes -filter -diff -merge` and `.sops.yaml -filter -diff -merge` to .gitattributes: the files that say what is protected are never encrypted".to_string(),
            );
        } else if changes.is_empty() {
            changes.push("moved the .gitattributes and .sops.yaml lines of .gitattributes to its end, after every pattern".to_string());
        }
        text = fixed;
    }
    if !changes.is_empty() {
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        std::fs::write(&path, text)
            .map_err(|e| err(format!("cannot write .gitattributes: {e}")))?;
    }
    Ok(changes)
}

/// The `.gitattributes` lines that keep the configuration files unencrypted.
const EXEMPT: [&str; 2] = [
    ".gitattributes -filter -diff -merge",
    ".sops.yaml -filter -diff -merge",
];

/// `line` with ` merge=sops` added after its `diff=sops` (else `filter=sops`)
/// attribute, when it is a pattern line with `filter=sops` and no `merge`
/// attribute; `None` otherwise.
fn with_merge_driver(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || trimmed.starts_with("[attr]") {
        return None;
    }
    // The attributes with their byte offsets (the first field is the pattern).
    let mut fields = Vec::new();
    let mut start = None;
    for (i, c) in line
        .char_indices()
        .chain(std::iter::once((line.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                fields.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    let attrs = fields.get(1..)?;
    if !attrs.iter().any(|(_, f)| *f == "filter=sops") {
        return None;
    }
    let names_merge = |f: &str| {
        let name = f.trim_start_matches(['-', '!']);
        name == "merge" || name.starts_with("merge=")
    };
    if attrs.iter().any(|(_, f)| names_merge(f)) {
        return None;
    }
    let (at, anchor) = attrs
        .iter()
        .find(|(_, f)| *f == "diff=sops")
        .or_else(|| attrs.iter().find(|(_, f)| *f == "filter=sops"))?;
    let end = at + anchor.len();
    Some(format!("{} merge=sops{}", &line[..end], &line[end..]))
}

/// Re-check-out protected files whose working-tree copy is still ciphertext and
/// identical to the index (an unchanged locked file): git does not re-smudge a
/// file it considers up to date, so it is removed and checked out again.
fn unlock_checkout(git: &Git) -> Result<Vec<String>, DriverError> {
    let top = git.toplevel().map_err(|e| err(e.to_string()))?;
    let paths = protected_paths(git).map_err(|e| err(e.to_string()))?;
    let mut blobs = BlobReader::spawn(git).map_err(|e| err(e.to_string()))?;
    let mut unlocked = Vec::new();
    let mut plaintext_in_index = Vec::new();
    let mut types = FileTypes::new(git.clone());
    for path in paths {
        let Ok(format) = types.format(&path) else {
            continue; // the filter reports a bad sops-type
        };
        let Ok(Some(staged)) = blobs.read(&format!(":{path}")) else {
            continue;
        };
        if file::load(format, &staged).is_none() {
            plaintext_in_index.push(path);
            continue;
        }
        let file = top.join(&path);
        if read_file(&top, &path).as_deref() == Some(&staged[..]) {
            std::fs::remove_file(&file).map_err(|e| err(format!("{path}: {e}")))?;
            git.run(&["checkout", "--", &path])
                .map_err(|e| err(e.to_string()))?;
            let now_plain = read_file(&top, &path).as_deref() != Some(&staged[..]);
            if now_plain {
                unlocked.push(path);
            }
        }
    }
    let mut changes = Vec::new();
    if !unlocked.is_empty() {
        changes.push(format!(
            "decrypted {} file(s) in the working tree: {}",
            unlocked.len(),
            unlocked.join(", ")
        ));
    }
    if !plaintext_in_index.is_empty() {
        changes.push(format!(
            "{} protected file(s) are committed as plaintext: {}. Run `git add --renormalize -- {}` and commit to encrypt them; earlier commits still hold the plaintext",
            plaintext_in_index.len(),
            plaintext_in_index.join(", "),
            plaintext_in_index.join(" ")
        ));
    }
    Ok(changes)
}

fn yaml_single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One `path_regex` matching any of the gitattributes patterns.
pub(crate) fn patterns_regex(patterns: &[String]) -> String {
    let parts: Vec<String> = patterns.iter().map(|p| glob_regex(p)).collect();
    if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", parts.join("|"))
    }
}

/// A gitattributes pattern as a regex over repository-relative paths: a pattern
/// without `/` matches the basename at any depth, one with `/` is anchored at the
/// root; `**` spans folders, `*` and `?` stay within one.
pub(crate) fn glob_regex(pattern: &str) -> String {
    let anchored = pattern.trim_start_matches('/').contains('/');
    let p = pattern.trim_start_matches('/');
    let mut re = String::from(if anchored { "^" } else { "(^|/)" });
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                if chars.get(i + 2) == Some(&'/') {
                    re.push_str("(.*/)?");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c if "\\.+()|[]{}^$".contains(c) => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
        i += 1;
    }
    re.push('$');
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_attribute_lines_get_the_merge_driver() {
        assert_eq!(
            with_merge_driver("secrets/** filter=sops diff=sops -text\n").as_deref(),
            Some("secrets/** filter=sops diff=sops merge=sops -text\n")
        );
        assert_eq!(
            with_merge_driver("*.enc.json\tfilter=sops -text\r\n").as_deref(),
            Some("*.enc.json\tfilter=sops merge=sops -text\r\n")
        );
        assert_eq!(
            with_merge_driver("a.yaml -text filter=sops").as_deref(),
            Some("a.yaml -text filter=sops merge=sops")
        );
        for untouched in [
            "secrets/** filter=sops diff=sops merge=sops -text\n",
            "secrets/** filter=sops diff=sops merge=binary\n",
            "secrets/** filter=sops -merge\n",
            "secrets/** filter=sops !merge\n",
            "# secrets/** filter=sops\n",
            "[attr]secret filter=sops diff=sops\n",
            "docs/** diff=sops\n",
            "filter=sops\n",
            "\n",
        ] {
            assert_eq!(with_merge_driver(untouched), None, "{untouched:?}");
        }
    }

    #[test]
    fn attributes_are_added_and_upgraded_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".gitattributes");
        std::fs::write(&path, "*.txt text\nold/** filter=sops diff=sops -text").unwrap();
        let changes = add_attributes(dir.path(), &["secrets/**".to_string()]).unwrap();
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "*.txt text\nold/** filter=sops diff=sops merge=sops -text\nsecrets/** filter=sops diff=sops merge=sops -text\n.gitattributes -filter -diff -merge\n.sops.yaml -filter -diff -merge\n"
        );
        let again = add_attributes(
            dir.path(),
            &["secrets/**".to_string(), "old/**".to_string()],
        )
        .unwrap();
        assert!(again.is_empty(), "{again:?}");
        let star = add_attributes(dir.path(), &["*".to_string()]).unwrap();
        assert_eq!(star.len(), 1, "{star:?}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with("* filter=sops diff=sops merge=sops -text\n.gitattributes -filter -diff -merge\n.sops.yaml -filter -diff -merge\n"),
            "{text}"
        );
    }

    #[test]
    fn globs_become_path_regexes() {
        let re = |p: &str| regex::Regex::new(&glob_regex(p)).unwrap();
        assert!(re("secrets/**").is_match("secrets/a/b.yaml"));
        assert!(!re("secrets/**").is_match("x/secrets/a.yaml"));
        assert!(re("*.secret.yaml").is_match("deep/dir/db.secret.yaml"));
        assert!(!re("*.secret.yaml").is_match("db.secretXyaml"));
        assert!(re("charts/*/secrets.*.yaml").is_match("charts/api/secrets.prod.yaml"));
        assert!(!re("charts/*/secrets.*.yaml").is_match("charts/a/b/secrets.prod.yaml"));
        assert!(re("**/creds.json").is_match("creds.json"));
    }
}
