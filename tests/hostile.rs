//! Hostile input through every path that reads a blob: `encrypt`/`decrypt`, the
//! clean filter (`git add`), smudge (`git clone`), textconv, `git sops check`
//! (`--staged` and `--history`, where a pushed `.sops.yaml` is read) and
//! `updatekeys`. Each must end with a clear error for that file (or a result)
//! and never crash the process: smudge leaves the other files of the checkout
//! checked out. The limits themselves (depth 10,000, go-yaml's alias budget, 255
//! key groups) are in the README; tests/bad holds the small fixtures, and what
//! is too big to check in is built here. No timings are asserted here:
//! `benches/adversarial.py` measures time and memory.

mod common;

use common::{AgeKey, Env, Output, Repo, SOPS_TEST_RECIPIENT};

/// One level more than sops (go-yaml) reads: a mapping holding 10,000 sequences.
fn too_deep_yaml() -> String {
    format!(
        "a:\n  {}x\nsops:\n    lastmodified: \"2024-01-01T00:00:00Z\"\n",
        "- ".repeat(10_000)
    )
}

/// The deepest YAML sops reads: a mapping holding 9,999 sequences.
fn deepest_yaml() -> String {
    format!("top: 1\na:\n  {}secret\n", "- ".repeat(9_999))
}

/// The billion-laughs `.sops.yaml`: 10^9 strings if every alias were copied.
fn alias_bomb(recipient: &str) -> String {
    let mut s = String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(",");
        s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    s.push_str(&format!(
        "creation_rules:\n  - path_regex: ^secrets/\n    age: {recipient}\n    x: *a8\n"
    ));
    s
}

impl Repo {
    /// A repository after `git sops init secrets/**`, config committed.
    fn committed() -> Repo {
        let repo = Repo::new();
        repo.git(&["add", ".gitattributes", ".sops.yaml"]).ok();
        repo.git(&["commit", "-q", "-m", "init"]).ok();
        repo
    }

    /// Stage `text` at `path` as it is, bypassing the filter (a hostile push).
    fn stage_raw(&self, path: &str, text: &str) {
        let tmp = self.env.root.join("raw-blob");
        std::fs::write(&tmp, text).expect("write");
        let oid = self
            .git(&[
                "hash-object",
                "-w",
                "--no-filters",
                tmp.to_str().expect("utf8"),
            ])
            .ok()
            .stdout_str();
        self.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{},{path}", oid.trim()),
        ])
        .ok();
    }

    fn index(&self) -> String {
        self.git(&["ls-files", "-s"]).ok().stdout_str()
    }
}

/// git-sops reported the file's problem itself (on stderr, or as a finding on
/// stdout): it did not die.
fn assert_filter_alive(out: &Output, path: &str, why: &str) {
    let all = format!("{}{}", out.stdout_str(), out.stderr);
    let shown: String = all.chars().take(2000).collect();
    assert!(
        all.contains(path) && all.contains(why),
        "the error names {path} and says {why:?}: {shown}"
    );
    for crash in ["overflow", "fatal runtime error", "panicked"] {
        assert!(!all.contains(crash), "{shown}");
    }
}

/// Equal, without printing 20 KB lines when they are not.
fn assert_same(expected: &[u8], actual: &[u8], what: &str) {
    assert!(
        expected == actual,
        "{what}: {} bytes expected, {} bytes got",
        expected.len(),
        actual.len()
    );
}

#[test]
fn deepest_yaml_sops_reads_works_everywhere() {
    let key = AgeKey::sops_test_key();
    let env = Env::with_keys(&[&key]);
    let src = deepest_yaml();
    env.write("deep.yaml", &src);
    let ours = env
        .git_sops()
        .args(["encrypt", "--age", SOPS_TEST_RECIPIENT, "deep.yaml"])
        .run()
        .ok()
        .stdout;
    env.write("deep.enc.yaml", &ours);
    let back = env.git_sops().args(["decrypt", "deep.enc.yaml"]).run().ok();
    assert_same(src.as_bytes(), &back.stdout, "round trip");
    // sops reads our file as it reads its own (it re-indents both alike).
    let theirs = env
        .sops()
        .args(["encrypt", "--age", SOPS_TEST_RECIPIENT, "deep.yaml"])
        .run()
        .ok()
        .stdout;
    env.write("sops.enc.yaml", &theirs);
    let sops_ours = env.sops().args(["decrypt", "deep.enc.yaml"]).run().ok();
    let sops_theirs = env.sops().args(["decrypt", "sops.enc.yaml"]).run().ok();
    assert_same(
        &sops_theirs.stdout,
        &sops_ours.stdout,
        "sops decrypts our file",
    );
    // A file sops wrote, and the conversions (which recurse too).
    let back = env.git_sops().args(["decrypt", "sops.enc.yaml"]).run().ok();
    assert_same(&sops_theirs.stdout, &back.stdout, "we decrypt sops' file");
    let json = env
        .git_sops()
        .args(["decrypt", "--output-type", "json", "sops.enc.yaml"])
        .run()
        .ok()
        .stdout_str();
    assert!(json.contains("\"secret\""), "{json:.200}");
    // Encrypting to JSON reads the result back, and the JSON parser stops at 512.
    let out = env
        .git_sops()
        .args([
            "encrypt",
            "--age",
            SOPS_TEST_RECIPIENT,
            "--output-type",
            "json",
            "deep.yaml",
        ])
        .run()
        .fails();
    assert_filter_alive(&out, "deep.yaml", "nested more than 512 levels");
}

#[test]
fn deep_yaml_through_git_fails_for_that_file_only() {
    let repo = Repo::committed();
    repo.write("secrets/ok.yaml", "password: hunter2\n");
    repo.git(&["add", "secrets/ok.yaml"]).ok();
    repo.git(&["commit", "-q", "-m", "ok"]).ok();

    // clean: `git add` fails with the reason; the index is left as it was.
    let before = repo.index();
    repo.write("secrets/deep.yaml", too_deep_yaml());
    let out = repo.git(&["add", "secrets/deep.yaml"]).fails();
    assert_filter_alive(&out, "secrets/deep.yaml", "nested more than 10000 levels");
    assert_eq!(repo.index(), before, "index unchanged");
    std::fs::remove_file(repo.dir.join("secrets/deep.yaml")).expect("rm");

    // check: the same blob staged past the filter is a finding, not a crash.
    repo.stage_raw("secrets/deep.yaml", &too_deep_yaml());
    let out = repo.sops(&["check", "--staged"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert_filter_alive(&out, "secrets/deep.yaml", "nested more than 10000 levels");
    // Outside the protected paths it is not a SOPS file at all: no finding.
    repo.stage_raw("notes/deep.yaml", &too_deep_yaml());
    let out = repo.sops(&["check", "--staged", "notes/deep.yaml"]);
    assert_eq!(out.code, Some(0), "{}", out.describe());

    // smudge: a commit holding it (pushed by someone who bypassed the filter)
    // clones; the other files are checked out and decrypted, this one is left
    // as it is, with a warning that names it.
    repo.git(&["commit", "-q", "--no-verify", "-m", "hostile"])
        .ok();
    repo.sops(&["install", "--global"]).ok();
    let clone = repo.env.work.join("clone");
    let out = repo
        .git(&[
            "clone",
            "-q",
            repo.dir.to_str().expect("utf8"),
            clone.to_str().expect("utf8"),
        ])
        .ok();
    assert_filter_alive(&out, "secrets/deep.yaml", "nested more than 10000 levels");
    assert_eq!(
        std::fs::read_to_string(clone.join("secrets/ok.yaml")).expect("read"),
        "password: hunter2\n",
        "the other file is checked out and decrypted"
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("secrets/deep.yaml")).expect("read"),
        too_deep_yaml()
    );
    // textconv (git show / diff) reads it too.
    let show = repo.git_in(&clone, &["show", "--format=", "HEAD"]).ok();
    assert!(show.stdout_str().contains("secrets/deep.yaml"));
    // --history over the commit reports it.
    let out = repo.sops(&["check", "--history", "HEAD~1..HEAD"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert_filter_alive(&out, "secrets/deep.yaml", "nested more than 10000 levels");
}

#[test]
fn a_pushed_alias_bomb_config_is_refused_quickly() {
    let repo = Repo::committed();
    let bomb = alias_bomb(&repo.key.recipient);
    // check --history over a commit that brings it (as the pre-receive hook runs it).
    repo.stage_raw(".sops.yaml", &bomb);
    repo.git(&["commit", "-q", "--no-verify", "-m", "bomb"])
        .ok();
    let out = repo.sops(&["check", "--history", "HEAD~1..HEAD"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert_filter_alive(&out, ".sops.yaml", "excessive aliasing");
    let out = repo.sops(&["check", "--all"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert_filter_alive(&out, ".sops.yaml", "excessive aliasing");
    // clean needs its rules for a new file: `git add` fails and names it.
    repo.write(".sops.yaml", &bomb);
    repo.write("secrets/new.yaml", "password: hunter2\n");
    let before = repo.index();
    let out = repo.git(&["add", "secrets/new.yaml"]).fails();
    assert_filter_alive(&out, ".sops.yaml", "excessive aliasing");
    assert_eq!(repo.index(), before);
    // So does encrypt, and updatekeys.
    let out = repo.sops(&["encrypt", "secrets/new.yaml"]).fails();
    assert_filter_alive(&out, ".sops.yaml", "excessive aliasing");
}

#[test]
fn more_than_255_key_groups_are_refused_when_writing() {
    let repo = Repo::committed();
    repo.write("secrets/a.yaml", "password: hunter2\n");
    repo.sops(&["encrypt", "-i", "secrets/a.yaml"]).ok();
    let groups: String = (0..256)
        .map(|_| format!("      - age: [{}]\n", repo.key.recipient))
        .collect();
    repo.write(
        ".sops.yaml",
        format!("creation_rules:\n  - path_regex: ^secrets/\n    shamir_threshold: 2\n    key_groups:\n{groups}"),
    );
    let out = repo.sops(&["updatekeys", "-y", "secrets/a.yaml"]).fails();
    assert_filter_alive(&out, ".sops.yaml", "at most 255");
    repo.write("secrets/b.yaml", "token: x\n");
    let out = repo.git(&["add", "secrets/b.yaml"]).fails();
    assert_filter_alive(&out, "secrets/b.yaml", "at most 255");
    // 255 groups are fine, and the last group's share is not the key.
    let groups: String = (0..255)
        .map(|_| format!("      - age: [{}]\n", repo.key.recipient))
        .collect();
    repo.write(
        ".sops.yaml",
        format!("creation_rules:\n  - path_regex: ^secrets/\n    shamir_threshold: 255\n    key_groups:\n{groups}"),
    );
    let enc = repo.sops(&["encrypt", "secrets/b.yaml"]).ok().stdout;
    repo.write("secrets/b.enc.yaml", String::from_utf8(enc).expect("utf8"));
    let back = repo.sops(&["decrypt", "secrets/b.enc.yaml"]).ok();
    assert_eq!(back.stdout_str(), "token: x\n");
}

#[test]
fn large_flat_maps_and_many_comments_round_trip() {
    let env = Env::with_keys(&[&AgeKey::sops_test_key()]);
    let n = 30_000;
    let flat: String = (0..n).map(|i| format!("key_{i}: value {i}\n")).collect();
    let flow = format!(
        "a: [\n{}  end]\n",
        (0..n)
            .map(|i| format!("  x{i}, # c{i}\n"))
            .collect::<String>()
    );
    let groups = format!(
        "a:\n  {}x\n{}",
        "- ".repeat(500),
        "# c\n # d\n".repeat(n / 2)
    );
    for (name, src) in [
        ("flat.yaml", &flat),
        ("flow.yaml", &flow),
        ("groups.yaml", &groups),
    ] {
        env.write(name, src);
        let enc = env
            .git_sops()
            .args(["encrypt", "--age", SOPS_TEST_RECIPIENT, name])
            .run()
            .ok()
            .stdout;
        let enc_name = format!("enc.{name}");
        env.write(&enc_name, &enc);
        let back = env.git_sops().args(["decrypt", &enc_name]).run().ok();
        assert_same(src.as_bytes(), &back.stdout, name);
    }
    // A duplicate at the very end is still found, with its line.
    env.write("dup.yaml", format!("{flat}key_0: again\n"));
    let out = env
        .git_sops()
        .args(["encrypt", "--age", SOPS_TEST_RECIPIENT, "dup.yaml"])
        .run()
        .fails();
    assert!(
        out.stderr.contains("duplicate key \"key_0\"")
            && out.stderr.contains(&format!("line {}", n + 1)),
        "{}",
        out.describe()
    );
}
