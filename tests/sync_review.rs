//! `git sops sync` and `git sops review` (issue 17) against real git, a bare
//! remote and real sops 3.11: two pull requests that change different values
//! of the same YAML, JSON, dotenv and INI files conflict under a host's plain
//! textual merge until `sync` merges the base in through the merge driver;
//! `sync` refuses a dirty tree, a clone without the drivers and leaves the
//! branch as it was on a conflict; `review` names keys, re-encryptions,
//! recipient, creation-rule and protection changes without keys and without
//! values, and with a key tells a no-op rotation from a changed value. The
//! example GitHub Actions workflow is well-formed YAML.

mod common;

use std::path::{Path, PathBuf};

use common::{AgeKey, Repo};

/// (path, sops type, base text, x edited, y edited, x edit, y edit).
const FILES: [(&str, &str, &str); 4] = [
    (
        "secrets/app.yaml",
        "yaml",
        "db:\n  user: admin\n  password: pw-base-1\napi:\n  token: tok-base-2\nsmtp:\n  password: smtp-base-3\n",
    ),
    (
        "secrets/app.json",
        "json",
        "{\n  \"db\": {\n    \"user\": \"admin\",\n    \"password\": \"pw-base-1\"\n  },\n  \"api\": \"tok-base-2\",\n  \"smtp\": \"smtp-base-3\"\n}\n",
    ),
    (
        "secrets/app.env",
        "dotenv",
        "DB_USER=admin\nDB_PASSWORD=pw-base-1\nAPI_TOKEN=tok-base-2\nSMTP_PASSWORD=smtp-base-3\n",
    ),
    (
        "secrets/app.ini",
        "ini",
        "[db]\nuser = admin\npassword = pw-base-1\n\n[api]\ntoken = tok-base-2\n\n[smtp]\npassword = smtp-base-3\n",
    ),
];

/// Every plaintext value the tests write.
const SECRETS: [&str; 7] = [
    "pw-base-1",
    "tok-base-2",
    "smtp-base-3",
    "pw-branch-a",
    "smtp-branch-b",
    "pw-conflict",
    "brand-new-value",
];

fn edit(repo: &Repo, rel: &str, from: &str, to: &str) {
    let text = repo.text(rel);
    assert!(text.contains(from), "{rel} has no {from:?}:\n{text}");
    repo.write(rel, text.replacen(from, to, 1));
}

fn assert_no_plaintext(repo: &Repo, dir: &Path, what: &str) {
    let objects = repo
        .git_in(dir, &["cat-file", "--batch-all-objects", "--batch"])
        .ok()
        .stdout;
    let text = String::from_utf8_lossy(&objects);
    for s in SECRETS {
        assert!(!text.contains(s), "{what}: plaintext {s:?} in an object");
    }
}

/// A repository with the four files committed on `main`, pushed to a bare
/// remote `remote.git`; returns the remote's path.
fn with_remote(repo: &Repo) -> PathBuf {
    for (path, _, text) in FILES {
        repo.write(path, text);
    }
    repo.commit_all("base");
    let remote = repo.env.work.join("remote.git");
    repo.git_in(
        &repo.env.work,
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    )
    .ok();
    repo.git(&["remote", "add", "origin", remote.to_str().expect("utf8")])
        .ok();
    repo.git(&["push", "-q", "-u", "origin", "main"]).ok();
    remote
}

/// A clone with no git-sops configuration at all: the host (GitHub's merge).
fn host_clone(repo: &Repo, remote: &Path, name: &str) -> PathBuf {
    let dir = repo.env.work.join(name);
    repo.git_in(
        &repo.env.work,
        &["clone", "-q", remote.to_str().expect("utf8"), name],
    )
    .ok();
    let config = repo
        .git_in(&dir, &["config", "--get-regexp", "sops"])
        .stdout_str();
    assert!(config.is_empty(), "the host clone has drivers: {config}");
    dir
}

#[test]
fn sync_makes_a_plain_textual_merge_of_the_pull_request_clean() {
    let repo = Repo::new();
    let remote = with_remote(&repo);

    // Pull request B changes the SMTP password of every file; the host merges it.
    repo.git(&["checkout", "-q", "-b", "b", "main"]).ok();
    for (path, _, _) in FILES {
        edit(&repo, path, "smtp-base-3", "smtp-branch-b");
    }
    repo.commit_all("b");
    repo.git(&["push", "-q", "origin", "b"]).ok();
    // Pull request A, from the same base, changes the DB password.
    repo.git(&["checkout", "-q", "-b", "a", "main"]).ok();
    for (path, _, _) in FILES {
        edit(&repo, path, "pw-base-1", "pw-branch-a");
    }
    repo.commit_all("a");
    repo.git(&["push", "-q", "origin", "a"]).ok();

    let host = host_clone(&repo, &remote, "host");
    repo.git_in(&host, &["merge", "-q", "--no-ff", "--no-edit", "origin/b"])
        .ok();
    repo.git_in(&host, &["push", "-q", "origin", "main"]).ok();

    // Without sync, A no longer merges textually: mac/lastmodified conflict.
    let out = repo.git_in(&host, &["merge", "--no-edit", "origin/a"]);
    assert!(
        !out.success(),
        "A merged textually before sync: {}",
        out.describe()
    );
    assert!(out.all().contains("CONFLICT"), "{}", out.describe());
    repo.git_in(&host, &["merge", "--abort"]).ok();

    // sync on A (a clone with the drivers and a key), then push.
    repo.git(&["fetch", "-q", "origin"]).ok();
    let before = repo.git(&["rev-parse", "HEAD"]).ok().stdout_str();
    let out = repo.sops(&["sync", "origin/main"]).ok();
    let said = out.stderr.clone();
    assert!(said.contains("merged origin/main"), "{said}");
    assert!(said.contains("merge commit"), "{said}");
    for (path, _, _) in FILES {
        assert!(
            said.contains(path),
            "{path} not named as merged by value: {said}"
        );
    }
    let tip = out.stdout_str().trim().to_string();
    let head = repo.git(&["rev-parse", "HEAD"]).ok().stdout_str();
    assert_eq!(tip, head.trim());
    assert_ne!(before, head);
    let parents = repo
        .git(&["rev-parse", "HEAD^1", "HEAD^2"])
        .ok()
        .stdout_str();
    assert!(
        parents.starts_with(before.trim()),
        "A's commits are kept: {parents}"
    );
    assert_eq!(repo.status(), "");
    for (path, _, _) in FILES {
        let text = repo.text(path);
        assert!(
            text.contains("pw-branch-a") && text.contains("smtp-branch-b"),
            "{path}:\n{text}"
        );
    }
    // A second sync has nothing to do.
    let again = repo.sops(&["sync", "origin/main"]).ok();
    assert!(
        again.stderr.contains("nothing to do"),
        "{}",
        again.describe()
    );
    repo.git(&["push", "-q", "origin", "a"]).ok();

    // The pull request's diff now touches only A's value, mac and lastmodified.
    repo.git_in(&host, &["fetch", "-q", "origin"]).ok();
    for (path, _, _) in FILES {
        let diff = repo
            .git_in(&host, &["diff", "origin/main", "origin/a", "--", path])
            .ok()
            .stdout_str();
        let lines: Vec<&str> = diff
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .filter(|l| !l.contains("lastmodified") && !l.contains("mac"))
            .collect();
        assert_eq!(lines.len(), 2, "{path}: one value changed: {lines:#?}");
    }

    // The host's plain textual merge (no drivers) succeeds and decrypts with sops.
    let out = repo.git_in(&host, &["merge", "--no-ff", "--no-edit", "origin/a"]);
    assert!(
        out.success(),
        "textual merge after sync: {}",
        out.describe()
    );
    repo.git_in(&host, &["push", "-q", "origin", "main"]).ok();
    for (path, ty, _) in FILES {
        let blob = repo
            .git_in(&host, &["cat-file", "-p", &format!("HEAD:{path}")])
            .ok()
            .stdout;
        let plain = repo
            .env
            .sops()
            .args([
                "decrypt",
                "--input-type",
                ty,
                "--output-type",
                ty,
                "/dev/stdin",
            ])
            .stdin(&blob)
            .run()
            .ok()
            .stdout_str();
        assert!(plain.contains("pw-branch-a"), "{path}: A's change: {plain}");
        assert!(
            plain.contains("smtp-branch-b"),
            "{path}: B's change: {plain}"
        );
        assert!(plain.contains("tok-base-2"), "{path}: {plain}");
    }
    assert_no_plaintext(&repo, &repo.dir, "the clone");
    assert_no_plaintext(&repo, &host, "the host clone");
    assert_no_plaintext(&repo, &remote, "the remote");
}

#[test]
fn sync_refuses_a_dirty_tree_a_clone_without_drivers_and_aborts_a_conflict() {
    let repo = Repo::new();
    let remote = with_remote(&repo);
    let path = FILES[0].0;

    // Both branches change the same value: the driver cannot resolve it.
    repo.git(&["checkout", "-q", "-b", "other", "main"]).ok();
    edit(&repo, path, "pw-base-1", "pw-conflict");
    repo.commit_all("other");
    repo.git(&["checkout", "-q", "main"]).ok();
    repo.git(&["checkout", "-q", "-b", "a", "main"]).ok();
    edit(&repo, path, "pw-base-1", "pw-branch-a");
    repo.commit_all("a");

    // Dirty: refused (2), nothing touched.
    edit(&repo, FILES[1].0, "tok-base-2", "brand-new-value");
    let out = repo
        .sops(&["sync", "other"])
        .fails_with(2, &["uncommitted changes", "git stash"]);
    assert!(out.stderr.contains(FILES[1].0), "{}", out.describe());
    repo.git(&["checkout", "--", FILES[1].0]).ok();

    // An unknown BASE: refused.
    repo.sops(&["sync", "no-such-branch"])
        .fails_with(2, &["does not name a commit"]);

    // A conflict: the merge is aborted and the branch is as it was (1).
    let head = repo.git(&["rev-parse", "HEAD"]).ok().stdout_str();
    let out = repo
        .sops(&["sync", "other"])
        .fails_with(1, &["conflicts in", path, "aborted"]);
    assert!(
        !out.all().contains("pw-conflict") && !out.all().contains("pw-branch-a"),
        "{}",
        out.describe()
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]).ok().stdout_str(), head);
    assert_eq!(repo.status(), "");
    assert!(!repo.dir.join(".git/MERGE_HEAD").exists());
    assert!(repo.text(path).contains("pw-branch-a"));
    assert_no_plaintext(&repo, &repo.dir, "after an aborted sync");

    // A clone without the drivers: refused, pointing at `git sops install`.
    let bare = host_clone(&repo, &remote, "plain");
    repo.env
        .git_sops()
        .current_dir(&bare)
        .args(["sync", "origin/main"])
        .run()
        .fails_with(2, &["merge driver", "git sops install"]);
}

/// `review` in `dir` (the repository), JSON parsed.
fn review_json(repo: &Repo, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["review"];
    all.extend(args);
    all.extend(["--format", "json"]);
    let out = repo.sops(&all).ok();
    serde_json::from_str(&out.stdout_str()).unwrap_or_else(|e| panic!("{e}: {}", out.describe()))
}

fn file<'a>(review: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    review["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in {review:#}"))
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("str").to_string())
        .collect()
}

#[test]
fn review_names_keys_reencryptions_recipients_rules_and_protection_without_keys() {
    let repo = Repo::new();
    for (path, _, text) in FILES {
        repo.write(path, text);
    }
    repo.write(
        "secrets/rotated.yaml",
        "a: pw-base-1\nb: tok-base-2\nc: smtp-base-3\n",
    );
    repo.commit_all("base");
    repo.git(&["checkout", "-q", "-b", "pr"]).ok();

    // Keys: one changed, one added, one removed.
    let yaml = "db:\n  user: admin\n  password: pw-branch-a\n  new: brand-new-value\nsmtp:\n  password: smtp-base-3\n";
    repo.write("secrets/app.yaml", yaml);
    // A new data key and a new recipient.
    let other = AgeKey::generate();
    repo.sops(&[
        "rotate",
        "-i",
        "--add-age",
        &other.recipient,
        "secrets/rotated.yaml",
    ])
    .ok();
    // A creation rule names another recipient; a path is taken out of protection.
    let config = repo.text(".sops.yaml");
    repo.write(
        ".sops.yaml",
        config.replacen(
            &repo.key.recipient,
            &format!("{},{}", repo.key.recipient, other.recipient),
            1,
        ),
    );
    let attrs = repo.text(".gitattributes");
    repo.write(
        ".gitattributes",
        format!("{attrs}secrets/app.json sops-unprotected\n"),
    );
    repo.commit_all("pr");

    let r = review_json(&repo, &["main..pr"]);
    let app = file(&r, "secrets/app.yaml");
    assert_eq!(app["status"], "modified");
    assert_eq!(keys(&app["changed"]), ["[\"db\"][\"password\"]"]);
    assert_eq!(keys(&app["added"]), ["[\"db\"][\"new\"]"]);
    assert_eq!(keys(&app["removed"]), ["[\"api\"][\"token\"]"]);
    assert!(app["reencrypted"].is_null());
    assert!(app["recipients"].as_array().expect("list").is_empty());

    let rot = file(&r, "secrets/rotated.yaml");
    assert_eq!(rot["reencrypted"], "new-data-key", "{rot:#}");
    assert!(keys(&rot["changed"]).is_empty());
    assert_eq!(rot["changed"]["total"], 3);
    let recipients = rot["recipients"].to_string();
    assert!(
        recipients.contains(&format!("added age {}", other.recipient)),
        "{recipients}"
    );
    // Files only other files' metadata changed in are not listed; the JSON file is unchanged.
    assert!(r["files"]
        .as_array()
        .expect("files")
        .iter()
        .all(|f| f["path"] != "secrets/app.json"));

    let rules = r["creation_rules"].to_string();
    assert!(
        rules.contains("rule 1") && rules.contains(&other.recipient),
        "{rules}"
    );
    let protection = r["protection"].to_string();
    assert!(
        protection.contains("secrets/app.json") && protection.contains("sops-unprotected"),
        "{protection}"
    );

    // Markdown: the same facts, for a pull-request comment.
    let md = repo.sops(&["review", "main...pr"]).ok().stdout_str();
    for needle in [
        "## git-sops review",
        "### `secrets/app.yaml` (modified, yaml)",
        "- changed: `[\"db\"][\"password\"]`",
        "- added: `[\"db\"][\"new\"]`",
        "- removed: `[\"api\"][\"token\"]`",
        "re-encrypted (new data key)",
        "### `.sops.yaml` creation rules",
        "### Protection",
    ] {
        assert!(md.contains(needle), "{needle:?} missing:\n{md}");
    }
    for out in [md, r.to_string()] {
        for s in SECRETS {
            assert!(!out.contains(s), "a value {s:?} in the review:\n{out}");
        }
        assert!(!out.contains("ENC["), "ciphertext in the review:\n{out}");
    }

    // Without any key at all, the same report (keys are never needed).
    let mut env_less = repo.sops(&["review", "main..pr", "--format", "json"]);
    env_less = env_less.ok();
    assert!(env_less.stdout_str().contains("new-data-key"));
    let locked = repo
        .env
        .git_sops()
        .current_dir(&repo.dir)
        .env("SOPS_AGE_KEY_FILE", "/nonexistent")
        .args(["review", "main..pr"])
        .run()
        .ok();
    assert!(locked.stdout_str().contains("re-encrypted (new data key)"));

    // Nothing to report, and a bad range.
    let none = repo.sops(&["review", "pr..pr"]).ok().stdout_str();
    assert!(none.contains("No protected file"), "{none}");
    repo.sops(&["review", "nope..pr"])
        .fails_with(2, &["review:"]);
}

#[test]
fn review_with_a_key_tells_a_no_op_rotation_from_a_changed_value() {
    let repo = Repo::new();
    repo.write(
        "secrets/a.yaml",
        "a: pw-base-1\nb: tok-base-2\nc: smtp-base-3\n",
    );
    repo.write("secrets/b.yaml", "a: pw-base-1\nb: tok-base-2\n");
    repo.commit_all("base");
    repo.sops(&["rotate", "-i", "secrets/a.yaml"]).ok();
    edit(&repo, "secrets/b.yaml", "tok-base-2", "brand-new-value");
    repo.commit_all("rotate a, change b");

    let r = review_json(&repo, &["HEAD^..HEAD", "--with-keys"]);
    let a = file(&r, "secrets/a.yaml");
    assert_eq!(a["reencrypted"], "new-data-key");
    assert_eq!(a["same_value"]["total"], 3, "{a:#}");
    assert_eq!(a["value_changed"]["total"], 0, "{a:#}");
    let b = file(&r, "secrets/b.yaml");
    assert_eq!(keys(&b["changed"]), ["[\"b\"]"]);
    assert_eq!(b["same_value"]["total"], 0);
    assert_eq!(keys(&b["value_changed"]), ["[\"b\"]"]);
    let md = repo
        .sops(&["review", "HEAD^", "--with-keys"])
        .ok()
        .stdout_str();
    assert!(md.contains("re-encrypted, same value"), "{md}");
    for s in SECRETS {
        assert!(
            !md.contains(s) && !r.to_string().contains(s),
            "value {s:?} shown"
        );
    }
}

#[test]
fn review_with_keys_uses_only_master_keys_the_base_side_names() {
    let mut repo = Repo::new();
    repo.write("secrets/a.yaml", "a: pw-base-1\n");
    repo.commit_all("base");
    // The pushed version is wrapped only for another key this machine also
    // holds: pushed content must not choose which key (role, endpoint) is used.
    let other = common::AgeKey::generate();
    let key = repo.key.clone();
    repo.env.use_identities(&[&key, &other]);
    repo.env.write("pushed.yaml", "a: pw-base-1\n");
    let text = repo
        .env
        .git_sops()
        .args(["encrypt", "--age", &other.recipient, "pushed.yaml"])
        .run()
        .ok()
        .stdout;
    std::fs::remove_file(repo.env.path("pushed.yaml")).expect("remove plaintext");
    let oid = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .args(["hash-object", "-w", "--no-filters", "--stdin"])
        .stdin(&text)
        .run()
        .ok()
        .stdout_str();
    repo.git(&[
        "update-index",
        "--cacheinfo",
        &format!("100644,{},secrets/a.yaml", oid.trim()),
    ])
    .ok();
    repo.git(&["commit", "-q", "--no-verify", "-m", "pushed"])
        .ok();
    let r = review_json(&repo, &["HEAD^..HEAD", "--with-keys"]);
    let a = file(&r, "secrets/a.yaml");
    assert!(
        a["same_value"].is_null(),
        "decrypted with a key the base side does not name: {a:#}"
    );
    assert!(r.to_string().contains("values not compared"), "{r:#}");
}

#[test]
fn the_github_workflow_example_is_well_formed() {
    let path = common::manifest_dir().join("examples/github/sync-and-review.yml");
    let text = std::fs::read_to_string(&path).expect("the example workflow");
    let docs = common::parse_yaml_docs(&text);
    assert_eq!(docs.len(), 1, "one YAML document");
    let wf = &docs[0];
    assert!(wf.get("on").is_some() && wf.get("jobs").is_some(), "{wf:#}");
    assert_eq!(wf["permissions"]["id-token"], "write");
    assert_eq!(wf["permissions"]["contents"], "write");
    assert_eq!(wf["permissions"]["pull-requests"], "write");
    for needle in [
        "aws-actions/configure-aws-credentials",
        "role-to-assume",
        "git sops install",
        "git sops sync",
        "git sops review",
        "git push",
    ] {
        assert!(text.contains(needle), "{needle} missing from the workflow");
    }
    let jobs = wf["jobs"].as_object().expect("jobs");
    for (name, job) in jobs {
        assert!(job.get("runs-on").is_some(), "job {name} has no runs-on");
        let steps = job["steps"].as_array().expect("steps");
        for s in steps {
            assert!(
                s.get("run").is_some() || s.get("uses").is_some(),
                "{name}: {s:#}"
            );
        }
    }
}

#[test]
fn review_of_hostile_content_prints_no_content_and_escapes_key_names() {
    let repo = Repo::new();
    repo.write("secrets/app.yaml", "db:\n  password: pw-base-1\n");
    repo.commit_all("base");
    // A key name made to break out of Markdown, and plaintext pushed past the
    // filter and the hooks into a protected path.
    repo.write(
        "secrets/app.yaml",
        "db:\n  password: pw-base-1\n\"x`y\\n## injected\": tok-base-2\n",
    );
    repo.git(&["add", "secrets/app.yaml"]).ok();
    let blob = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .args(["hash-object", "-w", "--no-filters", "--stdin"])
        .stdin("password: smtp-base-3\n")
        .run()
        .ok()
        .stdout_str();
    let info = format!("100644,{},secrets/leak.yaml", blob.trim());
    repo.git(&["update-index", "--add", "--cacheinfo", &info])
        .ok();
    repo.git(&["commit", "-q", "--no-verify", "-m", "hostile"])
        .ok();

    let md = repo.sops(&["review", "HEAD^..HEAD"]).ok().stdout_str();
    assert!(md.contains("### `secrets/leak.yaml` (added, yaml)"), "{md}");
    assert!(md.contains("not a SOPS yaml file"), "{md}");
    assert!(!md.contains("\n## injected"), "{md}");
    assert!(md.contains("- added: `[\"x'y\\n## injected\"]`"), "{md}");
    for s in SECRETS {
        assert!(!md.contains(s), "value {s:?} in:\n{md}");
    }
}

/// BASE brings a protected file that is not SOPS (committed past the guard):
/// the pre-merge-commit hook refuses the merge, and `git merge --abort` then
/// refuses too (the merged-in plaintext no longer matches its index entry once
/// cleaned). The sync must still leave the branch as it was, not half-merged.
#[test]
fn sync_leaves_the_branch_as_it_was_when_base_brings_plaintext() {
    let repo = Repo::new();
    repo.write(FILES[0].0, FILES[0].2);
    repo.write("notes.txt", "notes\n");
    repo.commit_all("base");
    repo.git(&["checkout", "-q", "-b", "a", "main"]).ok();
    repo.write("notes.txt", "notes of a\n");
    repo.commit_all("a");
    repo.git(&["checkout", "-q", "main"]).ok();
    let blob = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .args(["hash-object", "-w", "--stdin"])
        .stdin("db:\n  password: pw-conflict\n")
        .run()
        .ok()
        .stdout_str();
    let info = format!("100644,{},{}", blob.trim(), FILES[0].0);
    repo.git(&["update-index", "--cacheinfo", &info]).ok();
    repo.git(&["commit", "-q", "--no-verify", "-m", "plaintext"])
        .ok();
    repo.git(&["checkout", "-q", "-f", "a"]).ok();
    let head = repo.git(&["rev-parse", "HEAD"]).ok().stdout_str();

    repo.sops(&["sync", "main"]).fails_with(1, &["as it was"]);
    assert_eq!(repo.git(&["rev-parse", "HEAD"]).ok().stdout_str(), head);
    assert!(!repo.dir.join(".git/MERGE_HEAD").exists());
    assert_eq!(repo.status(), "");
    assert!(repo.text(FILES[0].0).contains("pw-base-1"));
}
