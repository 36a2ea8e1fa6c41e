//! The plaintext guard against real git: `git sops check` (`--staged`, `--all`,
//! `--history`, `--format json`), the pre-commit hook that `git sops init`
//! installs (and chains with an existing hook), and the pre-receive script from
//! hooks/README.md. Plaintext reaches the index through every bypass of the clean
//! filter; the guard must refuse it without keys and without ever printing the
//! secret. Files written by real sops 3.11 must pass.

mod common;
mod guard_support;

use std::path::Path;

use common::{manifest_dir, Output, SOPS_TEST_RECIPIENT};
use guard_support::{Repo, Sandbox};
use serde_json::Value;

const SECRET: &str = "hunter2-correct-horse";

const JSON_PLAIN: &str = "{\n  \"db\": {\n    \"user\": \"admin\",\n    \"password\": \"hunter2-correct-horse\"\n  },\n  \"public_unencrypted\": \"visible\"\n}\n";

const YAML_PLAIN: &str = "# database settings\ndb:\n  user: admin\n  password: hunter2-correct-horse # rotate\npublic_unencrypted: visible\n";

const FILTER_OFF: [&str; 6] = [
    "-c",
    "filter.sops.process=",
    "-c",
    "filter.sops.clean=",
    "-c",
    "filter.sops.required=false",
];

/// Nothing the guard prints may contain the secret (a two-character masked prefix at most).
fn assert_no_secret(out: &Output) {
    let all = out.all();
    assert!(
        !all.contains("hunter"),
        "the secret leaked into the output:\n{}",
        out.describe()
    );
}

/// A repository after `git sops init secrets/**`, its config committed.
fn initialized<'a>(sb: &'a Sandbox, name: &str) -> Repo<'a> {
    let r = sb.repo(name);
    r.sops(&["init", "secrets/**"]).ok();
    r.write("README", "hello\n");
    r.git(&["add", ".gitattributes", ".sops.yaml", "README"])
        .ok();
    r.commit("init", &[]).ok();
    r
}

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle")
}

/// Replace the value on the first line holding `key` (an `ENC[...]` up to its
/// closing bracket) with `new`.
fn replace_enc(text: &str, key: &str, new: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains(key) && l.contains("ENC["))
        .expect("line with key");
    let start = line.find("ENC[").expect("ENC");
    let end = line[start..].find(']').expect("]") + start + 1;
    let changed = format!("{}{}{}", &line[..start], new, &line[end..]);
    text.replacen(line, &changed, 1)
}

fn kinds_for<'v>(findings: &'v [Value], path: &str) -> Vec<&'v str> {
    findings
        .iter()
        .filter(|f| f["path"] == path)
        .map(|f| f["kind"].as_str().expect("kind"))
        .collect()
}

/// The commit is refused by the hook with advice, and HEAD does not move.
fn assert_commit_refused(r: &Repo, args: &[&str], advice: &[&str]) -> Output {
    let head = r.head();
    let out = r.commit("leak", args);
    assert_ne!(
        out.code,
        Some(0),
        "the commit went through:\n{}",
        out.describe()
    );
    assert!(out.stderr.contains("commit refused"), "{}", out.describe());
    for a in advice {
        assert!(
            out.stderr.contains(a),
            "the hook's message lacks {a:?}:\n{}",
            out.describe()
        );
    }
    assert_no_secret(&out);
    assert_eq!(r.head(), head, "HEAD moved");
    out
}

#[test]
fn plaintext_staged_with_update_index_is_refused() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    r.stage_raw("secrets/db.json", JSON_PLAIN);
    r.stage_raw("secrets/app.yaml", YAML_PLAIN);
    assert!(
        r.staged("secrets/db.json").contains(SECRET),
        "the bypass did not stage plaintext"
    );

    let out = r.check(&["--staged"]).exits(1);
    assert_no_secret(&out);
    assert!(
        out.stdout_str().contains("secrets/db.json:4: not-encrypted at [\"db\"][\"password\"]: the value (hu****) is plaintext"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout_str()
            .contains("secrets/app.yaml:4: not-encrypted at [\"db\"][\"password\"]"),
        "{}",
        out.describe()
    );
    // The YAML comments are plaintext too, and sops would have encrypted them.
    assert!(
        out.stdout_str()
            .contains("secrets/app.yaml:1: not-encrypted: a comment"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("problem(s) in 2 file(s) in the index"),
        "{}",
        out.describe()
    );
    // The default scope is the index.
    assert_eq!(r.check(&[]).code, Some(1));

    assert_commit_refused(
        &r,
        &[],
        &[
            "git add --renormalize -- secrets/app.yaml secrets/db.json",
            "git rm --cached -- secrets/app.yaml secrets/db.json",
        ],
    );
    // Following the advice fixes it: the filter encrypts the working-tree copies.
    r.git(&[
        "add",
        "--renormalize",
        "--",
        "secrets/db.json",
        "secrets/app.yaml",
    ])
    .ok();
    assert!(!r.staged("secrets/db.json").contains(SECRET));
    r.check(&["--staged"]).ok();
    r.commit("encrypted", &[]).ok();
}

#[test]
fn plaintext_from_a_clone_without_the_driver_is_refused() {
    let sb = Sandbox::new();
    let origin = initialized(&sb, "origin");
    origin.write("secrets/db.json", JSON_PLAIN);
    origin.git(&["add", "secrets/db.json"]).ok();
    origin.commit("secret", &[]).ok();
    assert!(
        !origin.staged("secrets/db.json").contains(SECRET),
        "the filter did not encrypt"
    );

    let origin_dir = origin.dir.display().to_string();
    sb.git(&sb.root, &["clone", "-q", &origin_dir, "clone"])
        .ok();
    let clone = Repo {
        sb: &sb,
        dir: sb.root.join("clone"),
    };
    assert_eq!(
        clone.git(&["config", "--get", "filter.sops.clean"]).code,
        Some(1),
        "the clone must have no driver"
    );
    // Hooks are not cloned: install the shipped shim by hand, as a hook manager would.
    let hook = clone.dir.join(".git/hooks/pre-commit");
    std::fs::copy(manifest_dir().join("hooks/pre-commit"), &hook).expect("copy hook");
    set_executable(&hook);

    clone.write("secrets/db.json", &JSON_PLAIN.replace("admin", "root"));
    clone.git(&["add", "secrets/db.json"]).ok();
    assert!(
        clone.staged("secrets/db.json").contains(SECRET),
        "the clone staged ciphertext?"
    );
    let out = clone.check(&["--staged"]).exits(1);
    assert_no_secret(&out);
    assert!(
        out.stdout_str()
            .contains("secrets/db.json:4: not-encrypted"),
        "{}",
        out.describe()
    );
    assert_commit_refused(
        &clone,
        &[],
        &[
            "run `git sops init` first",
            "git add --renormalize -- secrets/db.json",
        ],
    );
}

#[test]
fn plaintext_added_with_the_filter_switched_off_is_refused() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    r.write("secrets/db.json", JSON_PLAIN);
    let mut add: Vec<&str> = FILTER_OFF.to_vec();
    add.extend(["add", "secrets/db.json"]);
    r.git(&add).ok();
    assert!(r.staged("secrets/db.json").contains(SECRET));
    r.check(&["--staged"]).exits(1);
    assert_commit_refused(&r, &[], &["git add --renormalize -- secrets/db.json"]);
}

#[test]
fn the_hook_checks_the_index_git_commits_from() {
    // `git commit -a` and `git commit PATH` stage into another index file and
    // tell the hook through GIT_INDEX_FILE; .git/index still holds ciphertext.
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    r.write("secrets/db.json", JSON_PLAIN);
    r.git(&["add", "secrets/db.json"]).ok();
    r.commit("encrypted", &[]).ok();
    r.write("secrets/db.json", &JSON_PLAIN.replace("admin", "root"));
    for extra in [vec!["-a"], vec!["--", "secrets/db.json"]] {
        let mut args: Vec<&str> = FILTER_OFF.to_vec();
        args.extend(["commit", "-q", "-m", "leak"]);
        args.extend(extra.iter().copied());
        let head = r.head();
        let out = r.git(&args);
        assert_ne!(
            out.code,
            Some(0),
            "{extra:?}: the commit went through:\n{}",
            out.describe()
        );
        assert!(out.stderr.contains("commit refused"), "{}", out.describe());
        assert_no_secret(&out);
        assert_eq!(r.head(), head);
        assert!(!r
            .git(&["cat-file", "blob", "HEAD:secrets/db.json"])
            .ok()
            .stdout_str()
            .contains(SECRET));
    }
}

#[test]
fn tampered_sops_files_are_refused() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    for (name, plain, pw_key) in [
        ("db.json", JSON_PLAIN, "\"password\""),
        ("app.yaml", YAML_PLAIN, "password:"),
    ] {
        let enc = sb.sops_encrypt(name, plain, &[]);
        let ext = name.rsplit('.').next().expect("ext");
        // One value replaced by plaintext.
        let pasted = replace_enc(&enc, pw_key, SECRET);
        r.stage_raw(&format!("secrets/pasted.{ext}"), &pasted);
        // The sops block removed (sops writes it last).
        let stripped = if ext == "json" {
            let mut v: serde_json::Map<String, Value> =
                serde_json::from_str(&enc).expect("sops JSON");
            v.remove("sops");
            serde_json::to_string_pretty(&v).expect("json") + "\n"
        } else {
            enc[..enc.find("\nsops:").expect("sops block") + 1].to_string()
        };
        r.stage_raw(&format!("secrets/stripped.{ext}"), &stripped);
        // A MAC that is not an ENC[...] value sops could read.
        let bad_mac = replace_enc(&enc, "mac", "ENC[AES256_GCM,data:Zm9v,type:str]");
        r.stage_raw(&format!("secrets/badmac.{ext}"), &bad_mac);

        let (code, findings) = r.check_json(&["--staged"]);
        assert_eq!(code, 1);
        let pasted_path = format!("secrets/pasted.{ext}");
        let f = findings
            .iter()
            .find(|f| f["path"] == pasted_path.as_str())
            .expect("pasted finding");
        assert_eq!(f["kind"], "plaintext-value", "{f}");
        assert_eq!(f["key_path"], "[\"db\"][\"password\"]");
        assert_eq!(f["line"], line_of(&pasted, SECRET));
        assert_eq!(f["commit"], Value::Null);
        assert!(!f["message"].as_str().expect("message").contains("hunter"));
        let stripped_kinds = kinds_for(&findings, &format!("secrets/stripped.{ext}"));
        assert!(
            !stripped_kinds.is_empty() && stripped_kinds.iter().all(|k| *k == "not-encrypted"),
            "{stripped_kinds:?}"
        );
        assert_eq!(
            kinds_for(&findings, &format!("secrets/badmac.{ext}")),
            vec!["bad-mac"]
        );
    }
    let out = r.check(&[]).exits(1);
    assert_no_secret(&out);
    // The working-tree copies would stop the commit earlier, in the clean filter
    // (which refuses ciphertext without metadata): the hook is what is tested here.
    for ext in ["json", "yaml"] {
        std::fs::remove_file(r.dir.join(format!("secrets/stripped.{ext}"))).expect("rm");
    }
    assert_commit_refused(&r, &[], &["git add --renormalize"]);
}

#[test]
fn sops_written_files_are_accepted() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    // The narrower files have a creation rule of their own that says so, as
    // sops users write it.
    r.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: ^secrets/regex\\.\n    encrypted_regex: ^password$\n    age: {SOPS_TEST_RECIPIENT}\n  - path_regex: ^secrets/\n    age: {SOPS_TEST_RECIPIENT}\n"
        ),
    );
    r.git(&["add", ".sops.yaml"]).ok();
    for (name, plain) in [("db.json", JSON_PLAIN), ("app.yaml", YAML_PLAIN)] {
        let ext = name.rsplit('.').next().expect("ext");
        // Default rules: `public_unencrypted` stays plain, everything else (YAML comments too) is encrypted.
        let default = sb.sops_encrypt(name, plain, &[]);
        assert!(default.contains("\"visible\"") || default.contains(": visible"));
        r.stage_raw(&format!("secrets/default.{ext}"), &default);
        // encrypted_regex: only `password` is encrypted; `user` and the comments stay plain.
        let regex = sb.sops_encrypt(name, plain, &["--encrypted-regex", "^password$"]);
        assert!(regex.contains("admin"));
        r.stage_raw(&format!("secrets/regex.{ext}"), &regex);
    }
    let out = r.check(&["--staged"]).ok();
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("checked 4 protected file(s) in the index: no plaintext found"),
        "{}",
        out.describe()
    );
    r.commit("sops files", &[]).ok();
    r.check(&["--all"]).ok();
    r.check(&["--history", "HEAD"]).ok();
    assert_eq!(r.check_json(&["--all"]), (0, Vec::new()));

    // A file whose own selector leaves plaintext what its creation rule
    // encrypts (a "template" made with a narrower selector) is reported...
    let narrow = sb.sops_encrypt("app.yaml", YAML_PLAIN, &["--encrypted-regex", "^password$"]);
    r.stage_raw("secrets/narrow.yaml", &narrow);
    let (code, findings) = r.check_json(&["--staged"]);
    assert_eq!(code, 1);
    assert!(
        findings.iter().any(|f| f["path"] == "secrets/narrow.yaml"
            && f["kind"] == "plaintext-value"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains("creation rule 2"))),
        "{findings:?}"
    );
    // ...and `git add` with a key encrypts it under the rule.
    r.git(&["add", "secrets/narrow.yaml"]).ok();
    assert!(!r.staged("secrets/narrow.yaml").contains("admin"));
    assert_eq!(r.check_json(&["--staged"]), (0, Vec::new()));
}

#[test]
fn a_sops_file_at_an_unprotected_path_may_be_edited_but_not_decrypted() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    // A file kept with sops itself, outside the protected pattern.
    let first = sb.sops_encrypt("app.yaml", YAML_PLAIN, &[]);
    r.write("config/app.yaml", &first);
    r.git(&["add", "config/app.yaml"]).ok();
    r.commit("sops file", &[]).ok();
    // Edited with sops (here: encrypted again, as `sops edit` writes it): fine.
    let edited = sb.sops_encrypt("app.yaml", &YAML_PLAIN.replace("admin", "root"), &[]);
    r.write("config/app.yaml", &edited);
    r.git(&["add", "config/app.yaml"]).ok();
    r.commit("edited with sops", &[]).ok();
    r.check(&["--history", "HEAD~1..HEAD"]).ok();
    // A plaintext value slipped into it is still refused (it is held to the
    // form of a protected file)...
    let tampered = edited.replace(
        "public_unencrypted: visible",
        "public_unencrypted: visible\nleak: hunter2-in-plain",
    );
    r.write("config/app.yaml", &tampered);
    r.git(&["add", "config/app.yaml"]).ok();
    assert_commit_refused(&r, &[], &["config/app.yaml"]);
    // ...so is one whose own selector was narrowed so that a value it
    // encrypted is plaintext now (the form of the file alone would pass)...
    let narrowed = sb.sops_encrypt("app.yaml", YAML_PLAIN, &["--encrypted-regex", "^user$"]);
    r.write("config/app.yaml", &narrowed);
    r.git(&["add", "config/app.yaml"]).ok();
    assert_commit_refused(&r, &[], &["protection-removed"]);
    // ...and so is one whose narrowed selector leaves a new value plain that
    // the parent's selector would have encrypted (no value the parent
    // encrypted is plain, and the file's own form is intact).
    let widened = YAML_PLAIN.replace(
        "public_unencrypted: visible",
        "public_unencrypted: visible\ntoken: hunter2-new-token",
    );
    let renamed = sb.sops_encrypt("app.yaml", &widened, &["--encrypted-regex", "^db$"]);
    r.write("config/app.yaml", &renamed);
    r.git(&["add", "config/app.yaml"]).ok();
    assert_commit_refused(&r, &[], &["protection-removed"]);
    // ...and so is the decrypted file in its place.
    r.write("config/app.yaml", YAML_PLAIN);
    r.git(&["add", "config/app.yaml"]).ok();
    let out = assert_commit_refused(&r, &[], &["protection-removed"]);
    assert_no_secret(&out);
}

#[test]
fn no_false_positives_on_the_corpus_encrypted_by_sops_and_by_git_sops() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    let corpus = manifest_dir().join("tests/corpus");
    let mut names: Vec<String> = std::fs::read_dir(&corpus)
        .expect("tests/corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let (mut by_sops, mut by_filter) = (0, 0);
    for name in &names {
        let plain = std::fs::read_to_string(corpus.join(name)).expect("corpus file");
        // Real sops, staged byte for byte.
        let scratch = sb.root.join("scratch").join(name);
        std::fs::write(&scratch, &plain).expect("write");
        let file = scratch.display().to_string();
        let enc = sb.sops(
            &sb.root.join("scratch"),
            &["encrypt", "--age", SOPS_TEST_RECIPIENT, &file],
        );
        if enc.code == Some(0) {
            r.stage_raw(&format!("secrets/sops/{name}"), &enc.stdout_str());
            by_sops += 1;
        } else {
            eprintln!("sops refused {name}; skipped: {}", enc.stderr.trim());
        }
        // git-sops' own clean filter.
        let rel = format!("secrets/git-sops/{name}");
        r.write(&rel, &plain);
        let add = r.git(&["add", &rel]);
        if add.code == Some(0) {
            by_filter += 1;
        } else {
            eprintln!("the filter refused {name}; skipped: {}", add.stderr.trim());
            r.git(&["rm", "-q", "--cached", "--ignore-unmatch", &rel])
                .ok();
            std::fs::remove_file(r.dir.join(&rel)).expect("rm");
        }
    }
    assert!(
        by_sops >= 20 && by_filter >= 10,
        "too few corpus files encrypted: {by_sops} by sops, {by_filter} by git-sops"
    );
    let out = r.check(&["--staged"]);
    assert_eq!(out.code, Some(0), "false positives:\n{}", out.describe());
    r.commit("corpus", &[]).ok(); // through the hook
    r.check(&["--all"]).ok();
    r.check(&["--history", "HEAD"]).ok();
}

#[test]
fn history_names_the_commit_that_leaked_a_secret_later_encrypted() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    r.stage_raw("secrets/db.json", JSON_PLAIN);
    r.commit("leak", &["--no-verify"]).ok();
    let leak = r.head();
    for i in 1..=2 {
        r.write("README", &format!("change {i}\n"));
        r.git(&["add", "README"]).ok();
        r.commit(&format!("change {i}"), &[]).exits(1); // the index still holds the plaintext
        r.commit(&format!("change {i}"), &["--no-verify"]).ok();
    }
    r.stage_raw(
        "secrets/db.json",
        &sb.sops_encrypt("db.json", JSON_PLAIN, &[]),
    );
    r.commit("encrypt", &[]).ok();
    assert_eq!(
        r.git(&["rev-list", "--count", &format!("{leak}..HEAD")])
            .ok()
            .stdout_str()
            .trim(),
        "3"
    );

    r.check(&["--all"]).ok();
    r.check(&["--staged"]).ok();
    let (code, findings) = r.check_json(&["--history", "HEAD"]);
    assert_eq!(code, 1);
    assert!(!findings.is_empty());
    for f in &findings {
        assert_eq!(f["commit"], leak.as_str(), "{f}");
        assert_eq!(f["path"], "secrets/db.json");
    }
    assert!(findings
        .iter()
        .any(|f| f["key_path"] == "[\"db\"][\"password\"]" && f["line"] == 4));
    let out = r.check(&["--history", "HEAD"]).exits(1);
    assert_no_secret(&out);
    assert!(
        out.stdout_str().contains(&format!(
            "{}:secrets/db.json:4: not-encrypted at [\"db\"][\"password\"]",
            &leak[..12]
        )),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("in 5 commit(s)"), "{}", out.describe());

    // A range that starts after the leak still holds it in its first commit's tree...
    let (code, findings) = r.check_json(&["--history", &format!("{leak}..HEAD")]);
    assert_eq!(code, 1);
    assert!(findings.iter().all(|f| f["commit"] != leak.as_str()));
    // ...and one that starts after the fix is clean.
    r.check(&["--history", "HEAD~1..HEAD"]).ok();
    // Paths restrict what is reported.
    r.check(&["--history", "HEAD", "README"]).ok();
}

#[test]
fn history_applies_each_commits_own_attributes_and_rules() {
    let sb = Sandbox::new();
    let r = sb.repo("repo");
    // Committed while nothing protected it...
    r.write("config/db.json", JSON_PLAIN);
    r.write("README", "hi\n");
    r.git(&["add", "-A"]).ok();
    r.commit("plain config", &[]).ok();
    let before = r.head();
    r.check(&["--history", "HEAD"]).ok();
    // ...then a later commit protects the path without touching the file.
    r.write(".gitattributes", "config/** filter=sops diff=sops -text\n");
    r.git(&["add", ".gitattributes"]).ok();
    r.commit("protect config", &["--no-verify"]).ok();
    let protect = r.head();
    let (code, findings) = r.check_json(&["--history", "HEAD"]);
    assert_eq!(code, 1);
    assert!(!findings.is_empty());
    assert!(
        findings
            .iter()
            .all(|f| f["commit"] == protect.as_str() && f["path"] == "config/db.json"),
        "{findings:?}"
    );
    // The same through a .sops.yaml rule, in its own commit.
    r.write("other/x.json", JSON_PLAIN);
    r.git(&["add", "other/x.json"]).ok();
    r.commit("other", &["--no-verify"]).ok();
    r.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - path_regex: ^other/\n    age: {SOPS_TEST_RECIPIENT}\n"),
    );
    r.git(&["add", ".sops.yaml"]).ok();
    r.commit("rules", &["--no-verify"]).ok();
    let rules = r.head();
    let (_, findings) = r.check_json(&["--history", &format!("{protect}..HEAD")]);
    assert!(
        findings
            .iter()
            .any(|f| f["commit"] == rules.as_str() && f["path"] == "other/x.json"),
        "{findings:?}"
    );
    assert!(!findings.iter().any(|f| f["commit"] == before.as_str()));
}

#[test]
fn json_output_is_an_array_of_plain_findings() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    assert_eq!(r.check_json(&[]), (0, Vec::new()));
    r.stage_raw("secrets/db.json", JSON_PLAIN);
    let (code, findings) = r.check_json(&[]);
    assert_eq!(code, 1);
    let f = &findings[0];
    let keys: Vec<&str> = f
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["path", "commit", "key_path", "line", "kind", "severity", "message"]
    );
    assert_eq!(f["severity"], "error");
    assert_eq!(f["path"], "secrets/db.json");
    assert!(f["line"].is_u64());
}

#[test]
fn init_chains_an_existing_hook_and_is_idempotent() {
    let sb = Sandbox::new();
    let r = sb.repo("repo");
    let hooks = r.dir.join(".git/hooks");
    let mine = "#!/bin/sh\necho ran >> \"$(git rev-parse --git-dir)/local-hook-ran\"\n";
    std::fs::write(hooks.join("pre-commit"), mine).expect("hook");
    set_executable(&hooks.join("pre-commit"));

    let out = r.sops(&["init", "secrets/**"]).ok();
    assert!(
        out.stderr.contains("pre-commit.local"),
        "{}",
        out.describe()
    );
    let shim = std::fs::read_to_string(manifest_dir().join("hooks/pre-commit")).expect("shim");
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit")).expect("hook"),
        shim
    );
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit.local")).expect("local"),
        mine
    );
    // Idempotent: nothing renamed or rewritten a second time.
    let again = r.sops(&["init", "secrets/**"]).ok();
    assert!(!again.stderr.contains("pre-commit"), "{}", again.describe());
    assert!(!hooks.join("pre-commit.local.local").exists());
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-commit.local")).expect("local"),
        mine
    );

    r.git(&["add", ".gitattributes", ".sops.yaml"]).ok();
    r.commit("init", &[]).ok();
    assert!(
        r.dir.join(".git/local-hook-ran").exists(),
        "the chained hook did not run"
    );
    // The existing hook can still stop a commit...
    std::fs::write(
        hooks.join("pre-commit.local"),
        "#!/bin/sh\necho local says no >&2\nexit 3\n",
    )
    .expect("hook");
    r.write("README", "x\n");
    r.git(&["add", "README"]).ok();
    let out = r.commit("x", &[]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("local says no"));
    // ...and passing it does not skip the guard.
    std::fs::write(hooks.join("pre-commit.local"), "#!/bin/sh\nexit 0\n").expect("hook");
    r.stage_raw("secrets/db.json", JSON_PLAIN);
    assert_commit_refused(&r, &[], &["git add --renormalize -- secrets/db.json"]);
}

#[test]
fn init_honours_core_hooks_path() {
    let sb = Sandbox::new();
    let r = sb.repo("repo");
    r.git(&["config", "core.hooksPath", ".githooks"]).ok();
    r.sops(&["init"]).ok();
    assert!(r.dir.join(".githooks/pre-commit").exists());
    assert!(!r.dir.join(".git/hooks/pre-commit").exists());
    r.git(&["add", ".gitattributes", ".sops.yaml"]).ok();
    r.commit("init", &[]).ok();
    r.stage_raw("secrets/db.json", JSON_PLAIN);
    assert_commit_refused(&r, &[], &[]);
}

#[test]
fn sops_yaml_rules_missing_attributes_and_decrypted_copies() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    let rules = format!(
        "creation_rules:\n  - path_regex: ^secrets/.*$\n    age: {SOPS_TEST_RECIPIENT}\n  - path_regex: ^prod/\n    age: {SOPS_TEST_RECIPIENT}\n  - path_regex: .*\n    age: {SOPS_TEST_RECIPIENT}\n"
    );
    r.write(".sops.yaml", &rules);
    r.git(&["add", ".sops.yaml"]).ok();
    r.stage_raw("prod/plain.json", JSON_PLAIN);
    r.stage_raw("prod/enc.json", &sb.sops_encrypt("x.json", JSON_PLAIN, &[]));
    r.stage_raw("backup/db.dec.json", JSON_PLAIN);
    let mut pasted = sb.sops_encrypt("x.json", JSON_PLAIN, &[]);
    pasted = replace_enc(&pasted, "\"password\"", SECRET);
    r.stage_raw("config/pasted.json", &pasted);
    r.stage_raw("config/plain.json", JSON_PLAIN); // not protected: the `.*` rule is a catch-all
    let (code, findings) = r.check_json(&[]);
    assert_eq!(code, 1);
    let mut plain_kinds = kinds_for(&findings, "prod/plain.json");
    plain_kinds.dedup();
    assert_eq!(plain_kinds, ["missing-attribute", "not-encrypted"]);
    assert_eq!(kinds_for(&findings, "prod/enc.json"), ["missing-attribute"]);
    assert_eq!(
        kinds_for(&findings, "backup/db.dec.json"),
        ["decrypted-file"]
    );
    let f = findings
        .iter()
        .find(|f| f["path"] == "config/pasted.json")
        .expect("pasted");
    assert_eq!(f["kind"], "decrypted-file");
    assert_eq!(f["key_path"], "[\"db\"][\"password\"]");
    assert!(kinds_for(&findings, "config/plain.json").is_empty());
    assert!(kinds_for(&findings, "README").is_empty());
    let out = assert_commit_refused(
        &r,
        &[],
        &[
            "filter=sops diff=sops merge=sops -text",
            "git rm --cached -- backup/db.dec.json",
        ],
    );
    assert!(out.stderr.contains("config/pasted.json"));
    // PATH arguments restrict the check.
    r.check(&["README", "secrets"]).ok();
    let (_, only) = r.check_json(&["prod/enc.json"]);
    assert_eq!(only.len(), 1);
}

#[test]
fn sops_only_repositories_are_protected_by_sops_yaml() {
    // A team that uses sops without the git filter: no .gitattributes at all.
    let sb = Sandbox::new();
    let r = sb.repo("repo");
    r.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - path_regex: ^secrets/\n    age: {SOPS_TEST_RECIPIENT}\n"),
    );
    r.write(
        "secrets/ok.yaml",
        &sb.sops_encrypt("ok.yaml", YAML_PLAIN, &[]),
    );
    r.write("README", "hi\n");
    r.git(&["add", "-A"]).ok();
    r.check(&[]).ok(); // no missing-attribute noise
    r.commit("init", &[]).ok();
    r.check(&["--all"]).ok();
    r.write("secrets/leak.json", JSON_PLAIN);
    r.git(&["add", "-A"]).ok();
    let (code, findings) = r.check_json(&[]);
    assert_eq!(code, 1);
    assert!(findings
        .iter()
        .all(|f| f["path"] == "secrets/leak.json" && f["kind"] == "not-encrypted"));
    // Not staged yet but present in the working tree: a rule still counts.
    r.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: ^(secrets|more)/\n    age: {SOPS_TEST_RECIPIENT}\n"
        ),
    );
    r.git(&["rm", "-q", "--cached", "secrets/leak.json"]).ok();
    r.stage_raw("more/x.json", JSON_PLAIN);
    assert_eq!(
        kinds_for(&r.check_json(&[]).1, "more/x.json")[0],
        "not-encrypted"
    );
}

#[test]
fn usage_and_repository_errors_exit_2() {
    let sb = Sandbox::new();
    let outside = sb.root.join("scratch");
    sb.git_sops(&outside, &["check"]).exits(2);
    let r = sb.repo("repo");
    r.check(&["--all"]).exits(2); // no commit yet
    r.check(&["--staged"]).ok();
    r.check(&["--history", "no-such-rev..HEAD"]).exits(2);
    r.check(&["--staged", "--all"]).exits(2);
    r.check(&["--format", "xml"]).exits(2);
    r.check(&["/elsewhere"]).exits(2);
}

#[test]
fn shipped_pre_receive_hook_refuses_a_push() {
    let sb = Sandbox::new();
    let r = initialized(&sb, "repo");
    let server = sb.root.join("server.git");
    let server_s = server.display().to_string();
    r.git(&["clone", "-q", "--bare", ".", &server_s]).ok();
    // Installed as the README says: copied, executable as shipped.
    let hook = server.join("hooks/pre-receive");
    std::fs::copy(manifest_dir().join("hooks/pre-receive"), &hook).expect("copy hook");
    r.git(&["remote", "add", "server", &server_s]).ok();

    // An encrypted secret is accepted.
    r.write("secrets/db.json", JSON_PLAIN);
    r.git(&["add", "secrets/db.json"]).ok();
    r.commit("ok", &[]).ok();
    r.git(&["push", "-q", "server", "main"]).ok();
    // A plaintext one, committed with --no-verify, is not; nor on a new branch.
    r.stage_raw("secrets/other.json", JSON_PLAIN);
    r.commit("leak", &["--no-verify"]).ok();
    let out = r.git(&["push", "-q", "server", "main"]);
    assert_ne!(
        out.code,
        Some(0),
        "the push went through:\n{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("secrets/other.json"),
        "{}",
        out.describe()
    );
    assert_no_secret(&out);
    let out = r.git(&["push", "-q", "server", "main:feature"]);
    assert_ne!(
        out.code,
        Some(0),
        "the push went through:\n{}",
        out.describe()
    );
    let local = r.head();
    assert_ne!(
        sb.git(&server, &["rev-parse", "main"])
            .ok()
            .stdout_str()
            .trim(),
        local
    );
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
