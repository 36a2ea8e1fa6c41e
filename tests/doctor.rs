//! `git sops doctor` against real git: one OK/WARN/FAIL line per check, each
//! problem with the command that fixes it; exit 0 without FAILs, 1 with. Each
//! test breaks one thing in a set-up repository, sees the doctor name it, runs
//! the fix it prints (where it is a command) and sees it OK again.

mod common;

use common::{AgeKey, Output, Repo};

fn committed() -> Repo {
    let repo = Repo::new();
    repo.write("secrets/app.yaml", "db:\n  password: hunter2\n");
    repo.write("notes.txt", "plain\n");
    repo.commit_all("secrets");
    repo
}

fn doctor(repo: &Repo) -> Output {
    repo.sops(&["doctor"])
}

/// The line of check `name` at `level`, and the `fix:` line under it.
fn line<'a>(out: &'a str, level: &str, name: &str) -> (&'a str, Option<&'a str>) {
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(level) && l[4..].trim_start().starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {level} {name} line in:\n{out}"));
    let fix = lines
        .get(i + 1)
        .and_then(|l| l.trim_start().strip_prefix("fix: "));
    (lines[i], fix)
}

#[test]
fn a_fresh_init_is_all_ok() {
    let repo = committed();
    let out = doctor(&repo).ok().stdout_str();
    for l in out.lines() {
        assert!(l.starts_with("OK  "), "{out}");
    }
    for name in [
        "git",
        "driver",
        "binary",
        "hooks",
        "files",
        "keys",
        "recipients",
        "textconv",
        "rerere",
        "worktrees",
    ] {
        line(&out, "OK", name);
    }
    assert!(line(&out, "OK", "driver").0.contains("(local)"));
    assert!(line(&out, "OK", "keys")
        .0
        .contains("1 open with a local key"));
}

#[test]
fn a_missing_or_unrequired_filter_fails_with_its_fix() {
    let repo = committed();
    repo.git(&["config", "filter.sops.required", "false"]).ok();
    let out = doctor(&repo).exits(1);
    let text = out.stdout_str();
    let (_, fix) = line(&text, "FAIL", "driver");
    assert!(
        fix.unwrap_or("").contains("filter.sops.required true"),
        "{text}"
    );
    assert!(out.all().contains("1 check(s) failed"), "{}", out.all());

    for key in [
        "filter.sops.process",
        "filter.sops.clean",
        "filter.sops.smudge",
    ] {
        repo.git(&["config", "--unset", key]).ok();
    }
    let text = doctor(&repo).exits(1).stdout_str();
    assert_eq!(
        line(&text, "FAIL", "driver").1,
        Some("git sops init"),
        "{text}"
    );
    repo.sops(&["init"]).ok();
    doctor(&repo).ok();
}

#[test]
fn a_global_install_is_seen_outside_a_repository() {
    let repo = Repo::new();
    let outside = repo.env.work.join("elsewhere");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let run = || {
        repo.env
            .git_sops()
            .current_dir(&outside)
            .arg("doctor")
            .run()
    };
    let text = run().exits(1).stdout_str();
    assert_eq!(
        line(&text, "FAIL", "driver").1,
        Some("git sops install --global")
    );
    repo.env
        .git_sops()
        .current_dir(&outside)
        .args(["install", "--global"])
        .run()
        .ok();
    let text = run().ok().stdout_str();
    assert!(line(&text, "OK", "driver").0.contains("(global)"), "{text}");
    line(&text, "OK", "repository");
}

#[test]
fn hooks_missing_chained_and_not_executable() {
    let repo = committed();
    let hooks = repo.dir.join(".git/hooks");
    std::fs::remove_file(hooks.join("pre-commit")).expect("rm");
    let text = doctor(&repo).exits(1).stdout_str();
    let (msg, fix) = line(&text, "FAIL", "hooks");
    assert!(msg.contains("no pre-commit hook"), "{text}");
    assert_eq!(fix, Some("git sops init"));

    // An existing hook: init chains it; the doctor says so.
    std::fs::write(hooks.join("pre-commit"), "#!/bin/sh\nexit 0\n").expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            hooks.join("pre-commit"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
    let text = doctor(&repo).exits(1).stdout_str();
    assert!(
        line(&text, "FAIL", "hooks")
            .0
            .contains("does not run git-sops"),
        "{text}"
    );
    repo.sops(&["init"]).ok();
    let text = doctor(&repo).ok().stdout_str();
    assert!(
        line(&text, "OK", "hooks")
            .0
            .contains("pre-commit (runs pre-commit.local first)"),
        "{text}"
    );

    // A hook git skips.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            hooks.join("pre-merge-commit"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
    }
    let text = doctor(&repo).ok().stdout_str();
    let (msg, fix) = line(&text, "WARN", "hooks");
    assert!(msg.contains("not executable"), "{text}");
    assert!(fix.unwrap_or("").starts_with("chmod +x "), "{text}");
}

#[test]
fn plaintext_in_the_index_fails_with_renormalize() {
    let repo = committed();
    repo.write("secrets/leak.yaml", "token: leaked\n");
    repo.git(&[
        "-c",
        "filter.sops.process=",
        "-c",
        "filter.sops.clean=",
        "-c",
        "filter.sops.required=false",
        "add",
        "secrets/leak.yaml",
    ])
    .ok();
    let text = doctor(&repo).exits(1).stdout_str();
    let (msg, fix) = line(&text, "FAIL", "files");
    assert!(msg.contains("secrets/leak.yaml"), "{text}");
    let fix = fix.expect("fix");
    assert_eq!(fix, "git add --renormalize -- secrets/leak.yaml");
    let args: Vec<&str> = fix.split_whitespace().skip(1).collect();
    repo.git(&args).ok();
    doctor(&repo).ok();
}

#[test]
fn keys_no_local_key_and_drifted_recipients_warn_without_a_key() {
    let repo = Repo::new();
    repo.git(&["config", "sops.cache", "false"]).ok();
    repo.write("secrets/app.yaml", "db:\n  password: hunter2\n");
    repo.commit_all("secrets");

    // Another machine's key only: a warning, not a failure, and no key needed.
    let other = AgeKey::generate();
    let key_file = repo.env.root.join("other.txt");
    std::fs::write(&key_file, other.key_file_text()).expect("write");
    let out = repo
        .env
        .git_sops()
        .current_dir(&repo.dir)
        .env("SOPS_AGE_KEY_FILE", &key_file)
        .arg("doctor")
        .run()
        .ok();
    let text = out.stdout_str();
    let (msg, fix) = line(&text, "WARN", "keys");
    assert!(
        msg.contains("no local key opens secrets/app.yaml"),
        "{text}"
    );
    assert!(fix.unwrap_or("").contains("git sops updatekeys"), "{text}");

    // A recipient added to .sops.yaml: the file's keys drifted.
    let sops_yaml = repo.text(".sops.yaml");
    let added = sops_yaml.replace(
        &format!("age: {}", repo.key.recipient),
        &format!("age: {},{}", repo.key.recipient, other.recipient),
    );
    assert_ne!(added, sops_yaml);
    repo.write(".sops.yaml", &added);
    let text = doctor(&repo).ok().stdout_str();
    let (msg, fix) = line(&text, "WARN", "recipients");
    assert!(msg.contains("secrets/app.yaml"), "{text}");
    let fix = fix.expect("fix");
    assert!(
        fix.starts_with("git sops updatekeys -y secrets/app.yaml"),
        "{fix}"
    );
    repo.sops(&["updatekeys", "-y", "secrets/app.yaml"]).ok();
    line(&doctor(&repo).ok().stdout_str(), "OK", "recipients");
}

#[test]
fn rerere_and_the_textconv_cache() {
    let repo = committed();
    repo.git(&["config", "rerere.enabled", "true"]).ok();
    let text = doctor(&repo).ok().stdout_str();
    let (_, fix) = line(&text, "WARN", "rerere");
    assert!(
        fix.unwrap_or("")
            .starts_with("git config rerere.enabled false"),
        "{text}"
    );

    repo.git(&["config", "diff.sops.cachetextconv", "true"])
        .ok();
    let text = doctor(&repo).exits(1).stdout_str();
    let (_, fix) = line(&text, "FAIL", "textconv");
    assert!(fix.unwrap_or("").starts_with("git sops install"), "{text}");
    repo.sops(&["install"]).ok();
    line(&doctor(&repo).ok().stdout_str(), "OK", "textconv");
}

#[test]
fn worktrees_share_the_configuration_unless_one_overrides_it() {
    let repo = committed();
    let wt = repo.env.work.join("wt2");
    repo.git(&["worktree", "add", "-q", wt.to_str().expect("utf8")])
        .ok();
    let text = doctor(&repo).ok().stdout_str();
    assert!(
        line(&text, "OK", "worktrees").0.contains("2 worktrees"),
        "{text}"
    );

    repo.git(&["config", "extensions.worktreeConfig", "true"])
        .ok();
    repo.git_in(
        &wt,
        &["config", "--worktree", "filter.sops.required", "false"],
    )
    .ok();
    let text = doctor(&repo).ok().stdout_str();
    let (msg, fix) = line(&text, "WARN", "worktrees");
    assert!(msg.contains("wt2"), "{text}");
    assert!(fix.unwrap_or("").contains("sops install --local"), "{text}");
    // Run from inside that worktree, its own driver line fails.
    let inside = repo
        .env
        .git_sops()
        .current_dir(&wt)
        .arg("doctor")
        .run()
        .exits(1);
    line(&inside.stdout_str(), "FAIL", "driver");
}
