//! `git sops doctor`: is this machine and repository set up so that git-sops
//! protects what it should? One [`Check`] per concern, each OK, WARN or FAIL,
//! and every problem with the command that fixes it: the git version, the
//! driver configuration (local or global, `filter.sops.required`), whether git
//! finds the `git-sops` binary on its own PATH, the commit hooks (installed,
//! chained), the protected files (staged encrypted, which open with a local
//! key, recipients that drifted from `.sops.yaml`), the places git keeps
//! plaintext on its own (rerere, the textconv cache), and the other worktrees.
//!
//! It never needs a key and never calls the network: keys are tried offline
//! (the data-key cache and age identities, [`Keyring::offline`]); a file only
//! a KMS key opens is reported as not checked (`git sops status` tries KMS).

use std::path::{Path, PathBuf};

use super::install::SETTINGS;
use super::status::{plaintext_caches, protected_paths};
use crate::drivers::filter::sops_type::FileTypes;
use crate::drivers::shell_word;
use crate::git::cat_file::BlobReader;
use crate::git::Git;
use crate::guard::hook::{self, HookState, HOOKS};
use sops_file::keygroups::{self, Keyring};
use sops_file::{config, file};

/// The oldest git git-sops works with: `rev-parse --path-format=absolute`
/// (where the hooks live) arrived in 2.31.
const MIN_GIT: (u32, u32) = (2, 31);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "OK  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One line of the report.
pub struct Check {
    pub level: Level,
    /// What was checked (`git`, `driver`, `hooks`, ...).
    pub name: &'static str,
    pub message: String,
    /// The command that fixes it (for WARN and FAIL).
    pub fix: Option<String>,
}

fn ok(name: &'static str, message: impl Into<String>) -> Check {
    Check {
        level: Level::Ok,
        name,
        message: message.into(),
        fix: None,
    }
}

fn problem(
    level: Level,
    name: &'static str,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        level,
        name,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

/// Every check, in the order they are printed.
pub fn doctor(git: &Git) -> Vec<Check> {
    let mut checks = vec![git_version(git)];
    let top = git.toplevel().ok();
    let in_repo = top.is_some();
    checks.extend(drivers(git, in_repo));
    checks.push(binary(git));
    let Some(top) = top else {
        checks.push(ok(
            "repository",
            "not inside a git repository: only the global set-up was checked",
        ));
        return checks;
    };
    let top_git = Git::new(&top);
    checks.extend(hooks(&top_git, &top));
    checks.extend(files(&top_git, &top));
    checks.push(textconv_cache(&top_git));
    checks.push(rerere(&top_git));
    checks.push(worktrees(&top_git, &top));
    checks
}

fn text(git: &Git, args: &[&str]) -> Option<String> {
    git.run(args)
        .ok()
        .map(|out| String::from_utf8_lossy(&out).trim_end().to_string())
}

fn git_version(git: &Git) -> Check {
    let Some(line) = text(git, &["--version"]) else {
        return problem(
            Level::Fail,
            "git",
            "cannot run `git --version`",
            "install git 2.31 or newer",
        );
    };
    let version = line.trim_start_matches("git version ").to_string();
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(ma), Some(mi)) if (ma, mi) < MIN_GIT => problem(
            Level::Fail,
            "git",
            format!(
                "git {version} is older than {}.{}, which git-sops needs",
                MIN_GIT.0, MIN_GIT.1
            ),
            "upgrade git (2.31 or newer)",
        ),
        _ => ok("git", format!("git {version}")),
    }
}

/// A setting git-sops writes: (key, the value it writes, (scope, value) as set).
type Setting = (&'static str, &'static str, Option<(String, String)>);

/// `git config --show-scope --get KEY`: (scope, value).
fn config_with_scope(git: &Git, key: &str) -> Option<(String, String)> {
    let line = text(git, &["config", "--show-scope", "--get", key])?;
    let (scope, value) = line.split_once('\t')?;
    Some((scope.to_string(), value.to_string()))
}

fn drivers(git: &Git, in_repo: bool) -> Vec<Check> {
    let install = if in_repo {
        "git sops init"
    } else {
        "git sops install --global"
    };
    let mut checks = Vec::new();
    let values: Vec<Setting> = SETTINGS
        .iter()
        .map(|(k, v)| (*k, *v, config_with_scope(git, k)))
        .collect();
    let get = |key: &str| {
        values
            .iter()
            .find(|(k, _, _)| *k == key)
            .and_then(|(_, _, v)| v.clone())
    };
    let process = get("filter.sops.process");
    let one_shot = get("filter.sops.clean").is_some() && get("filter.sops.smudge").is_some();
    if process.is_none() && !one_shot {
        checks.push(problem(
            Level::Fail,
            "driver",
            "the sops filter is not configured: git would store protected files as they are on disk, and check out ciphertext",
            install,
        ));
        return checks;
    }
    let required = git.config_bool("filter.sops.required").ok().flatten();
    if required != Some(true) {
        checks.push(problem(
            Level::Fail,
            "driver",
            "filter.sops.required is not true: where git cannot run git-sops it would store plaintext instead of failing",
            "git config filter.sops.required true   # or: git sops install",
        ));
    }
    let differ: Vec<String> = values
        .iter()
        .filter_map(|(k, want, got)| match got {
            Some((scope, v)) if v != want && !k.ends_with("required") && !k.ends_with(".name") => {
                Some(format!("{k} = {v} ({scope}; git-sops writes `{want}`)"))
            }
            _ => None,
        })
        .collect();
    let missing: Vec<&str> = values
        .iter()
        .filter(|(k, _, got)| {
            got.is_none() && (k.starts_with("diff.") || *k == "merge.sops.driver")
        })
        .map(|(k, _, _)| *k)
        .collect();
    if !missing.is_empty() {
        checks.push(problem(
            Level::Warn,
            "driver",
            format!(
                "not set: {} (git diff then shows ciphertext, or merges conflict line by line)",
                missing.join(", ")
            ),
            if in_repo {
                "git sops install"
            } else {
                "git sops install --global"
            },
        ));
    }
    if !differ.is_empty() {
        checks.push(problem(
            Level::Warn,
            "driver",
            format!("set to something else: {}", differ.join("; ")),
            if in_repo {
                "git sops install"
            } else {
                "git sops install --global"
            },
        ));
    }
    if checks.is_empty() {
        let mut scopes: Vec<String> = values
            .iter()
            .filter_map(|(_, _, got)| got.as_ref().map(|(s, _)| s.clone()))
            .collect();
        scopes.sort();
        scopes.dedup();
        checks.push(ok(
            "driver",
            format!(
                "filter (required), diff and merge drivers configured ({})",
                scopes.join(", ")
            ),
        ));
    }
    checks
}

/// Does git find the program its filter runs? Asked through git itself (a
/// shell alias runs with the PATH git gives its drivers), since a GUI client
/// or a service may run git with a PATH other than this shell's.
fn binary(git: &Git) -> Check {
    let command = git
        .config_get("filter.sops.process")
        .ok()
        .flatten()
        .or_else(|| git.config_get("filter.sops.smudge").ok().flatten())
        .unwrap_or_else(|| "git-sops".to_string());
    let program = command
        .split_whitespace()
        .next()
        .unwrap_or("git-sops")
        .to_string();
    let fix = "put the folder holding git-sops on the PATH git runs with (e.g. ~/.cargo/bin), or name it by its absolute path: git config filter.sops.process \"/path/to/git-sops filter-process\"";
    let found: Option<PathBuf> = if program.contains('/') {
        let p = PathBuf::from(&program);
        is_executable(&p).then_some(p)
    } else {
        let alias = format!(
            "alias.git-sops-doctor-which=!command -v {}",
            shell_word(&program)
        );
        text(git, &["-c", &alias, "git-sops-doctor-which"])
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    let Some(found) = found else {
        return problem(
            Level::Fail,
            "binary",
            format!("git cannot find `{program}` on its PATH: every checkout, add and diff of a protected file fails"),
            fix,
        );
    };
    let same = std::env::current_exe()
        .ok()
        .and_then(|me| me.canonicalize().ok())
        .zip(found.canonicalize().ok())
        .is_some_and(|(a, b)| a == b);
    if same {
        ok("binary", format!("git runs {}", found.display()))
    } else {
        problem(
            Level::Warn,
            "binary",
            format!(
                "git runs {}, not this git-sops ({}): two versions are installed",
                found.display(),
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            "remove the one you do not use, or put the right one first on PATH",
        )
    }
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

fn hooks(git: &Git, top: &Path) -> Vec<Check> {
    let dir = match hook::hooks_dir(git) {
        Ok(d) => d,
        Err(e) => {
            return vec![problem(
                Level::Fail,
                "hooks",
                e.to_string(),
                "git sops init",
            )]
        }
    };
    let framework = std::fs::read_to_string(top.join(".pre-commit-config.yaml")).ok();
    let mut fine = Vec::new();
    let mut checks = Vec::new();
    for name in HOOKS {
        let shown = dir.join(name).display().to_string();
        // Only `pre-commit` guards every `git commit`; the two others guard
        // merges that commit by themselves and `git am`.
        let missing_level = if name == "pre-commit" {
            Level::Fail
        } else {
            Level::Warn
        };
        match hook::hook_state(&dir, name, framework.as_deref()) {
            HookState::Shim { chained: None } => fine.push(name.to_string()),
            HookState::Shim { chained: Some(c) } => fine.push(format!("{name} (runs {c} first)")),
            HookState::RunsGitSops => fine.push(format!("{name} (your hook runs git-sops)")),
            HookState::Framework => fine.push(format!("{name} (pre-commit framework, runs git-sops)")),
            HookState::Outdated => checks.push(problem(
                Level::Warn,
                "hooks",
                format!("{shown} is an older git-sops hook"),
                "git sops init",
            )),
            HookState::Missing => checks.push(problem(
                missing_level,
                "hooks",
                format!("no {name} hook ({shown}): commits that put plaintext into protected paths are not refused"),
                "git sops init",
            )),
            HookState::Foreign => checks.push(problem(
                missing_level,
                "hooks",
                format!("{shown} does not run git-sops' check"),
                "git sops init   # keeps your hook as <name>.local and runs it first",
            )),
            HookState::NotExecutable => checks.push(problem(
                missing_level,
                "hooks",
                format!("{shown} is not executable: git skips it"),
                format!("chmod +x {}", shell_word(&shown)),
            )),
        }
    }
    if !fine.is_empty() {
        checks.insert(
            0,
            ok(
                "hooks",
                format!("installed in {}: {}", dir.display(), fine.join(", ")),
            ),
        );
    }
    checks
}

/// At most this many paths are named in one line.
const LIST: usize = 5;

fn list(paths: &[String]) -> String {
    let mut shown: Vec<String> = paths.iter().take(LIST).cloned().collect();
    if paths.len() > LIST {
        shown.push(format!("and {} more", paths.len() - LIST));
    }
    shown.join(", ")
}

fn files(git: &Git, top: &Path) -> Vec<Check> {
    let paths = match protected_paths(git) {
        Ok(p) => p,
        Err(e) => {
            return vec![problem(
                Level::Fail,
                "files",
                e.to_string(),
                "git status   # is the repository readable?",
            )]
        }
    };
    if paths.is_empty() {
        return vec![problem(
            Level::Warn,
            "files",
            "no tracked file has filter=sops in .gitattributes: nothing is protected",
            "git sops init 'secrets/**'   # or your own patterns",
        )];
    }
    let mut blobs = match BlobReader::spawn(git) {
        Ok(b) => b,
        Err(e) => return vec![problem(Level::Fail, "files", e.to_string(), "git status")],
    };
    let cache = crate::cache::data_keys::key_cache(crate::cache::CacheDir::of(git).as_ref());
    let keyring = Keyring::offline();
    let rules = config::discover_from(top).ok().flatten();
    let mut types = FileTypes::new(git.clone());
    let (mut plaintext, mut opens, mut no_key, mut kms, mut drift) =
        (Vec::new(), 0usize, Vec::new(), Vec::new(), Vec::new());
    for path in &paths {
        let Some(format) = types.format(path).ok() else {
            continue;
        };
        let Some(blob) = blobs.read(&format!(":{path}")).ok().flatten() else {
            continue;
        };
        let Some(loaded) = file::load(format, &blob) else {
            plaintext.push(path.clone());
            continue;
        };
        if cache.recover(&loaded.meta, &keyring).is_ok() {
            opens += 1;
        } else if loaded.meta.all_keys().any(|k| k.kind() == "kms") {
            kms.push(path.clone());
        } else {
            no_key.push(path.clone());
        }
        if let Some(cfg) = &rules {
            if let Ok(rule) = cfg.rule_for(&top.join(path).to_string_lossy()) {
                if keygroups::drift(&loaded.meta.key_groups, &rule.key_groups).is_some() {
                    drift.push(path.clone());
                }
            }
        }
    }
    let mut checks = Vec::new();
    if plaintext.is_empty() {
        checks.push(ok(
            "files",
            format!("{} protected files, all staged encrypted", paths.len()),
        ));
    } else {
        let words: Vec<String> = plaintext.iter().map(|p| shell_word(p)).collect();
        checks.push(problem(
            Level::Fail,
            "files",
            format!("staged as PLAINTEXT: {}", list(&plaintext)),
            format!("git add --renormalize -- {}", words.join(" ")),
        ));
    }
    if no_key.is_empty() {
        checks.push(ok(
            "keys",
            format!("{opens} open with a local key (age identity or the data-key cache)"),
        ));
    } else {
        checks.push(problem(
            Level::Warn,
            "keys",
            format!(
                "{opens} open with a local key; no local key opens {} (they stay ciphertext here)",
                list(&no_key)
            ),
            "git sops keygen   # then ask someone who can decrypt them to add the recipient it prints to .sops.yaml and run `git sops updatekeys -y FILE...`",
        ));
    }
    if !kms.is_empty() {
        checks.push(ok(
            "keys",
            format!("KMS (not checked; run `git sops status`): {}", list(&kms)),
        ));
    }
    if drift.is_empty() {
        if rules.is_some() {
            checks.push(ok(
                "recipients",
                "every file has the keys its .sops.yaml creation rule names",
            ));
        }
    } else {
        let words: Vec<String> = drift.iter().map(|p| shell_word(p)).collect();
        checks.push(problem(
            Level::Warn,
            "recipients",
            format!("keys differ from the .sops.yaml creation rule (`git sops status` shows how): {}", list(&drift)),
            format!(
                "git sops updatekeys -y {}   # and `git sops rotate -i FILE` when a key was removed",
                words.join(" ")
            ),
        ));
    }
    checks
}

fn textconv_cache(git: &Git) -> Check {
    let set = git
        .config_get("diff.sops.cachetextconv")
        .ok()
        .flatten()
        .is_some();
    let refs = text(
        git,
        &["for-each-ref", "--format=%(refname)", "refs/notes/textconv"],
    )
    .unwrap_or_default();
    let refs: Vec<&str> = refs.lines().filter(|l| !l.is_empty()).collect();
    match (set, refs.is_empty()) {
        (false, true) => ok("textconv", "diff.sops.cachetextconv is off: git keeps no decrypted diffs"),
        (true, _) => problem(
            Level::Fail,
            "textconv",
            "diff.sops.cachetextconv is set: git would store decrypted diffs under refs/notes/textconv",
            "git sops install   # removes it",
        ),
        (false, false) => problem(
            Level::Fail,
            "textconv",
            format!("textconv cache refs hold decrypted text: {}", refs.join(", ")),
            refs.iter().map(|r| format!("git update-ref -d {r}")).collect::<Vec<_>>().join(" && "),
        ),
    }
}

fn rerere(git: &Git) -> Check {
    match plaintext_caches(git).into_iter().next() {
        None => ok(
            "rerere",
            "off: conflicts are not recorded under .git/rr-cache",
        ),
        Some(w) => {
            let cache = git
                .common_dir()
                .map(|d| d.join("rr-cache").display().to_string())
                .unwrap_or_else(|_| ".git/rr-cache".into());
            problem(
                Level::Warn,
                "rerere",
                w.split(';').next().unwrap_or(&w).to_string(),
                format!(
                    "git config rerere.enabled false && rm -rf {}",
                    shell_word(&cache)
                ),
            )
        }
    }
}

/// Worktrees share `.git/config` and the hooks, unless a worktree has its own
/// configuration (`extensions.worktreeConfig`) that sets the filter otherwise.
fn worktrees(git: &Git, top: &Path) -> Check {
    let list = text(git, &["worktree", "list", "--porcelain"]).unwrap_or_default();
    let trees: Vec<PathBuf> = list
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .collect();
    let mut unset = Vec::new();
    for tree in &trees {
        if tree == top || !tree.is_dir() {
            continue;
        }
        let g = Git::new(tree);
        let filter = g.config_get("filter.sops.process").ok().flatten().is_some()
            || g.config_get("filter.sops.smudge").ok().flatten().is_some();
        let required = g.config_bool("filter.sops.required").ok().flatten() == Some(true);
        if !filter || !required {
            unset.push(tree.display().to_string());
        }
    }
    if unset.is_empty() {
        ok(
            "worktrees",
            match trees.len() {
                0 | 1 => "one worktree".to_string(),
                n => format!("{n} worktrees, all with the filter configured"),
            },
        )
    } else {
        problem(
            Level::Warn,
            "worktrees",
            format!(
                "the filter is not configured (or not required) in: {}",
                unset.join(", ")
            ),
            format!("git -C {} sops install --local", shell_word(&unset[0])),
        )
    }
}
