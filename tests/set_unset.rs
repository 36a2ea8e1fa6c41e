//! `git sops set` and `git sops unset` against the real sops 3.11: the same
//! exit codes for every flag and error case, the same decrypted result on
//! files sops wrote and files git-sops wrote in YAML, JSON, dotenv and INI,
//! sops' own functional-test scenarios (functional-tests/src/lib.rs), and the
//! point of doing it in git-sops: every other value keeps its exact
//! ciphertext, so in git the commit changes the set value's line plus `mac`
//! and `lastmodified`, for locked/unprotected SOPS files and for protected
//! plaintext working-tree files alike, and no plaintext reaches an object.

mod common;

use common::{AgeKey, Env, Output, Repo};

const YAML: &str = "# top\na: 2\nb: ba # inline\nc:\n    d: x\n    l:\n        - 1\n        - k: v\nflow: {p: 1, q: [x, y]}\npassword: hunter2-set\n";
const JSON: &str = "{\n\t\"a\": 2,\n\t\"b\": \"ba\",\n\t\"c\": {\n\t\t\"d\": \"x\",\n\t\t\"l\": [1, 2]\n\t},\n\t\"password\": \"hunter2-set\"\n}\n";
const DOTENV: &str = "A=1\n# comment\nB=two\nPASSWORD=hunter2-set\n";
const INI: &str = "[s]\nk = v\npassword = hunter2-set\n\n[t]\nx = y\n";

fn setup() -> (Env, AgeKey) {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    (env, key)
}

/// `plain` (named `name`) encrypted by sops as `sops.EXT` and by git-sops as `ours.EXT`.
fn encrypt_both(env: &Env, key: &AgeKey, ext: &str, plain: &str) {
    env.write(format!("plain.{ext}"), plain);
    let p = format!("plain.{ext}");
    let enc = env
        .sops()
        .args(["encrypt", "--age", &key.recipient, &p])
        .run()
        .ok();
    env.write(format!("sops.{ext}"), &enc.stdout);
    let enc = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, &p])
        .run()
        .ok();
    env.write(format!("ours.{ext}"), &enc.stdout);
}

/// Decrypted by sops: YAML and JSON as JSON (layout-independent); dotenv and
/// INI in their own format, which sops writes in its own layout (their values
/// are text: sops stores a number set into them as `type:float`, git-sops as
/// the text sops prints for it, `3.0`).
fn decrypted(env: &Env, file: &str) -> String {
    let flat = file.ends_with(".env") || file.ends_with(".ini");
    let mut cmd = env.sops().arg("decrypt");
    if !flat {
        cmd = cmd.args(["--output-type", "json"]);
    }
    cmd.arg(file).run().ok().stdout_str()
}

/// Run `cmd` (with `FILE` standing for the file) with sops on a copy of
/// `from` and with git-sops on another copy; same exit code, and when both
/// succeed, the same decrypted result. Returns (sops, ours) outputs.
fn compare(env: &Env, from: &str, cmd: &[&str], stdin: Option<&str>) -> (Output, Output) {
    let ext = from.rsplit('.').next().unwrap_or("yaml");
    let theirs_file = format!("t-{}", from.replace('.', "-")) + "." + ext;
    let ours_file = format!("o-{}", from.replace('.', "-")) + "." + ext;
    env.write(&theirs_file, env.read(from));
    env.write(&ours_file, env.read(from));
    let args = |f: &str| -> Vec<String> {
        cmd.iter()
            .map(|a| {
                if *a == "FILE" {
                    f.to_string()
                } else {
                    a.to_string()
                }
            })
            .collect()
    };
    let mut t = env.sops().args(args(&theirs_file));
    let mut o = env.git_sops().args(args(&ours_file));
    if let Some(s) = stdin {
        t = t.stdin(s);
        o = o.stdin(s);
    }
    let theirs = t.run();
    let ours = o.run();
    ours.assert_no_panic();
    assert_eq!(
        theirs.code,
        ours.code,
        "exit codes differ for {cmd:?} on {from}\nsops: {}\nours: {}",
        theirs.describe(),
        ours.describe()
    );
    if ours.success() {
        assert_eq!(
            decrypted(env, &theirs_file),
            decrypted(env, &ours_file),
            "results differ for {cmd:?} on {from}"
        );
    } else {
        assert_eq!(
            env.read(&ours_file),
            env.read(from),
            "a failed command changed the file"
        );
    }
    (theirs, ours)
}

#[test]
fn flags_and_errors_exit_as_in_sops() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "yaml", YAML);
    env.write("value.json", r#"{"cc": "ccc"}"#);
    for from in ["sops.yaml", "ours.yaml"] {
        for cmd in [
            &["set", "FILE", r#"["a"]"#, "3"][..],
            &["set", "FILE", r#"["a"]"#, r#"{"aa": "aaa"}"#],
            &["set", "FILE", r#"["n"]["m"][4]"#, r#""deep""#],
            &["set", "FILE", r#"["c"]["l"][9]"#, r#"{"z": [1, null]}"#],
            &["set", "FILE", r#"["c"]["l"][1]["k"]"#, "false"],
            &["set", "FILE", r#"["a"]["b"][3]"#, "9"],
            &["set", "FILE", r#"["flow"]["q"][0]"#, r#""X""#],
            &["set", "FILE", "[0]", "9"],
            &["set", "--idempotent", "FILE", r#"["b"]"#, r#""ba""#],
            &["set", "--value-file", "FILE", r#"["c"]"#, "value.json"],
            &["set", "--value-file", "FILE", r#"["c"]"#, "missing.json"],
            &["set", "--value-file", "--value-stdin", "FILE", r#"["c"]"#],
            &["set", "FILE", r#"["n"]"#],
            &["set", "--value-stdin", "FILE", r#"["n"]"#, "1"],
            &["set", "FILE", r#"["n""#, "1"],
            &["set", "FILE", r#"["n"]"#, "x"],
            &["set", "FILE", r#"["n"]"#, "1 2"],
            &["set", "FILE", r#"["n"]"#, "[1, 2]"],
            &[
                "set",
                "--ignore-mac",
                "--shamir-secret-sharing-threshold",
                "2",
                "FILE",
                r#"["a"]"#,
                "1",
            ],
            &["unset", "FILE", r#"["a"]"#],
            &["unset", "FILE", r#"["c"]["l"][0]"#],
            &["unset", "FILE", r#"["c"]["d"]"#],
            &["unset", "FILE", r#"["flow"]["q"][1]"#],
            &["unset", "FILE", r#"["zz"]"#],
            &["unset", "--idempotent", "FILE", r#"["zz"]"#],
            &["unset", "--idempotent", "FILE", r#"["c"]["l"][7]"#],
            &["unset", "FILE", r#"["c"]["l"][7]"#],
            &["unset", "FILE", r#"["a"]["x"]"#],
            &["unset", "FILE", "[0]"],
            &["unset", "FILE", r#"["sops"]"#],
            &["unset", "FILE"],
            &["unset", "FILE", r#"["a""#],
        ] {
            compare(&env, from, cmd, None);
        }
        compare(
            &env,
            from,
            &["set", "--value-stdin", "FILE", r#"["c"]"#],
            Some(r#"{"cc": "ccc"}"#),
        );
    }
}

#[test]
fn idempotent_set_writes_nothing_and_unchanged_values_keep_their_ciphertext() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "yaml", YAML);
    for from in ["sops.yaml", "ours.yaml"] {
        let before = env.read(from);
        env.git_sops()
            .args(["set", "--idempotent", from, r#"["b"]"#, r#""ba""#])
            .run()
            .ok();
        assert_eq!(
            env.read(from),
            before,
            "--idempotent wrote an unchanged value"
        );
        env.git_sops()
            .args(["set", from, r#"["b"]"#, r#""new""#])
            .run()
            .ok();
        let after = String::from_utf8(env.read(from)).expect("utf-8");
        let before = String::from_utf8(before).expect("utf-8");
        let changed: Vec<_> = before
            .lines()
            .zip(after.lines())
            .filter(|(x, y)| x != y)
            .map(|(x, _)| x.trim_start().split(':').next().unwrap_or("").to_string())
            .collect();
        assert_eq!(before.lines().count(), after.lines().count());
        assert!(changed.contains(&"b".to_string()), "{changed:?}");
        assert!(
            changed
                .iter()
                .all(|k| ["b", "mac", "lastmodified", "version"].contains(&k.as_str())),
            "{from}: more than the value changed: {changed:?}"
        );
    }
}

#[test]
fn every_format_as_sops_on_files_either_tool_wrote() {
    let (env, key) = setup();
    let cases: [(&str, &str, Vec<Vec<&str>>); 4] = [
        (
            "json",
            JSON,
            vec![
                vec!["set", "FILE", r#"["a"]"#, r#"{"aa": "aaa"}"#],
                vec!["set", "FILE", r#"["c"]["l"][5]"#, "3"],
                vec!["set", "FILE", r#"["new"]"#, r#"{"x": [true, "y"]}"#],
                vec!["unset", "FILE", r#"["c"]["l"][1]"#],
                vec!["unset", "FILE", r#"["c"]"#],
            ],
        ),
        (
            "env",
            DOTENV,
            vec![
                vec!["set", "FILE", r#"["B"]"#, r#""three""#],
                vec!["set", "FILE", r#"["C"]"#, "3"],
                vec!["set", "FILE", r#"["C"]"#, r#"{"x": 1}"#],
                vec!["unset", "FILE", r#"["A"]"#],
                vec!["unset", "FILE", r#"["Z"]"#],
            ],
        ),
        (
            "ini",
            INI,
            vec![
                vec!["set", "FILE", r#"["s"]["k"]"#, r#""w""#],
                vec!["set", "FILE", r#"["s"]["k2"]"#, r#""v2""#],
                vec!["set", "FILE", r#"["u"]"#, r#"{"k": "v"}"#],
                vec!["set", "FILE", r#"["top"]"#, r#""v""#],
                vec!["unset", "FILE", r#"["s"]["k"]"#],
                vec!["unset", "FILE", r#"["t"]"#],
            ],
        ),
        (
            "yaml",
            "a: 1\n---\nb: 2\n",
            vec![vec!["set", "FILE", r#"["a"]"#, "5"]],
        ),
    ];
    for (ext, plain, cmds) in cases {
        encrypt_both(&env, &key, ext, plain);
        for from in [format!("sops.{ext}"), format!("ours.{ext}")] {
            for cmd in &cmds {
                compare(&env, &from, cmd, None);
            }
        }
    }
}

#[test]
fn nulls_and_nested_values_in_flat_formats_are_refused_clearly() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "env", DOTENV);
    encrypt_both(&env, &key, "ini", INI);
    // sops writes `<nil>` (which it cannot decrypt) or Go's debug form.
    for (file, path) in [("ours.env", r#"["C"]"#), ("ours.ini", r#"["s"]["k"]"#)] {
        let before = env.read(file);
        env.git_sops()
            .args(["set", file, path, "null"])
            .run()
            .fails_with(4, &[file, "null"]);
        assert_eq!(env.read(file), before);
    }
    env.git_sops()
        .args(["set", "ours.ini", r#"["s"]["k"]"#, r#"{"a": 1}"#])
        .run()
        .fails_with(4, &["ours.ini"]);
}

/// sops' functional tests for set/unset (set_json_file_update,
/// ..._idempotent_write/_nowrite, set_json_file_insert, ..._with_value_file,
/// ..._with_value_stdin, set_yaml_file_update/_insert/_string,
/// unset_json_file, unset_yaml_file), run against git-sops.
#[test]
fn sops_functional_test_scenarios() {
    let (env, key) = setup();
    let enc = |name: &str, plain: &str| {
        env.write(name, plain);
        env.git_sops()
            .args(["encrypt", "-i", "--age", &key.recipient, name])
            .run()
            .ok();
    };
    let get = |name: &str, path: &str| {
        env.sops()
            .args(["decrypt", "--extract", path, name])
            .run()
            .ok()
            .stdout_str()
    };
    for ext in ["json", "yaml"] {
        let plain = if ext == "json" {
            r#"{"a": 2, "b": "ba"}"#
        } else {
            "a: 2\nb: ba"
        };
        let f = format!("update.{ext}");
        enc(&f, plain);
        env.git_sops()
            .args(["set", &f, r#"["a"]"#, r#"{"aa": "aaa"}"#])
            .run()
            .ok();
        assert_eq!(get(&f, r#"["a"]["aa"]"#), "aaa");
        assert!(String::from_utf8_lossy(&env.read(&f)).contains("ENC["));
        let f = format!("insert.{ext}");
        enc(&f, plain);
        env.git_sops()
            .args(["set", &f, r#"["c"]"#, r#"{"cc": "ccc"}"#])
            .run()
            .ok();
        assert_eq!(get(&f, r#"["c"]["cc"]"#), "ccc");
    }
    enc("string.yaml", "a: 2\nb: ba");
    env.git_sops()
        .args(["set", "string.yaml", r#"["a"]"#, r#""aaa""#])
        .run()
        .ok();
    env.git_sops()
        .args(["decrypt", "-i", "string.yaml"])
        .run()
        .ok();
    assert_eq!(
        String::from_utf8_lossy(&env.read("string.yaml")),
        "a: aaa\nb: ba"
    );
    env.write("value.json", r#"{"cc": "ccc"}"#);
    enc("vf.json", r#"{"a": 2, "b": "ba"}"#);
    env.git_sops()
        .args(["set", "--value-file", "vf.json", r#"["c"]"#, "value.json"])
        .run()
        .ok();
    assert_eq!(get("vf.json", r#"["c"]["cc"]"#), "ccc");
    enc("vs.json", r#"{"a": 2, "b": "ba"}"#);
    env.git_sops()
        .args(["set", "--value-stdin", "vs.json", r#"["c"]"#])
        .stdin(r#"{"cc": "ccc"}"#)
        .run()
        .ok();
    assert_eq!(get("vs.json", r#"["c"]["cc"]"#), "ccc");
    // --output-type yaml rewrites the JSON file as YAML, as sops does.
    enc("idem.json", r#"{"a": 2, "b": "ba"}"#);
    let before = env.read("idem.json");
    env.git_sops()
        .args([
            "set",
            "--output-type",
            "yaml",
            "--idempotent",
            "idem.json",
            r#"["b"]"#,
            r#""ba""#,
        ])
        .run()
        .ok();
    assert_eq!(env.read("idem.json"), before);
    env.git_sops()
        .args([
            "set",
            "--output-type",
            "yaml",
            "idem.json",
            r#"["b"]"#,
            r#""ba""#,
        ])
        .run()
        .ok();
    assert!(String::from_utf8_lossy(&env.read("idem.json")).starts_with("a: "));
    let out = env
        .sops()
        .args([
            "decrypt",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "idem.json",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout_str(), "a: 2\nb: ba\n");
    for ext in ["json", "yaml"] {
        let f = format!("unset.{ext}");
        enc(&f, r#"{"a": 2, "b": "ba", "c": [1,2]}"#);
        env.git_sops().args(["unset", &f, r#"["a"]"#]).run().ok();
        let content = env.read(&f);
        env.git_sops()
            .args(["unset", "--idempotent", &f, r#"["a"]"#])
            .run()
            .ok();
        assert_eq!(env.read(&f), content);
        env.git_sops().args(["unset", &f, r#"["c"][1]"#]).run().ok();
        let content = env.read(&f);
        env.git_sops()
            .args(["unset", "--idempotent", &f, r#"["c"][1]"#])
            .run()
            .ok();
        assert_eq!(env.read(&f), content);
        assert_eq!(
            decrypted(&env, &f).replace(['\n', '\t', ' '], ""),
            r#"{"b":"ba","c":[1]}"#
        );
    }
}

#[test]
fn no_panic_on_hostile_paths_and_values() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "yaml", YAML);
    let long_path = "[0]".repeat(30_000);
    for (path, value) in [
        (r#"["c"]["l"][9223372036854775807]"#, "1"),
        (r#"["c"]["l"][99999999999999999999]"#, "1"),
        (r#"["c"]["l"][-1]"#, "1"),
        (r#"["c"]["l"]["x"]"#, "1"),
        ("", "1"),
        ("[]", "1"),
        (r#"["]"#, "1"),
        (long_path.as_str(), "1"),
        (r#"["sops"]"#, "1"),
    ] {
        let out = env.git_sops().args(["set", "ours.yaml", path, value]).run();
        out.assert_no_panic();
        if !out.success() {
            assert!(out.stderr.contains("git-sops: error"), "{}", out.describe());
        }
        env.git_sops()
            .args(["unset", "ours.yaml", path])
            .run()
            .assert_no_panic();
    }
    // A VALUE nested far deeper than any parser takes: an error, bounded.
    let deep = format!("{}1{}", r#"{"a":"#.repeat(200_000), "}".repeat(200_000));
    let before = env.read("ours.yaml");
    env.git_sops()
        .args(["set", "--value-stdin", "ours.yaml", r#"["a"]"#])
        .stdin(deep)
        .run()
        .fails_with(7, &["not valid JSON"]);
    assert_eq!(env.read("ours.yaml"), before);
    env.git_sops()
        .args([
            "set",
            "ours.yaml",
            r#"["c"]["l"][9223372036854775807]"#,
            r#""end""#,
        ])
        .run()
        .ok();
}

/// The lines a commit changed in `path`, raw (no textconv): (removed, added).
fn changed_lines(repo: &Repo, path: &str) -> Vec<String> {
    let diff = repo
        .git(&[
            "diff",
            "--no-textconv",
            "--text",
            "-U0",
            "HEAD~1",
            "HEAD",
            "--",
            path,
        ])
        .ok()
        .stdout_str();
    diff.lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .map(|l| {
            l[1..]
                .trim_start()
                .split([':', '='])
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
        .collect()
}

fn assert_only(changed: &[String], key: &str) {
    assert!(
        changed.iter().any(|k| k == key),
        "{key} did not change: {changed:?}"
    );
    assert!(
        changed
            .iter()
            .all(|k| [key, "mac", "lastmodified"].contains(&k.as_str())),
        "more than {key}, mac and lastmodified changed: {changed:?}"
    );
}

#[test]
fn in_git_a_set_changes_only_that_value_mac_and_lastmodified() {
    let repo = Repo::new();
    // (a) A SOPS file under a path that is not protected (kept as ciphertext).
    // Encrypted by sops outside the repository (its .sops.yaml has no rule for it).
    repo.env.write("plain.yaml", YAML);
    let enc = repo
        .env
        .sops()
        .args(["encrypt", "--age", &repo.key.recipient, "plain.yaml"])
        .run()
        .ok();
    repo.write("config/app.yaml", &enc.stdout);
    // Deliberately unprotected (the guard asks for that to be said).
    let mut attrs = repo.text(".gitattributes");
    attrs.push_str("/config/app.yaml -filter -diff -merge sops-unprotected\n");
    repo.write(".gitattributes", attrs);
    // (b) A protected file: plaintext in the working tree.
    repo.write("secrets/db.yaml", YAML);
    repo.commit_all("first");
    repo.sops(&["set", "config/app.yaml", r#"["c"]["d"]"#, r#""changed-a""#])
        .ok();
    repo.sops(&["set", "secrets/db.yaml", r#"["c"]["d"]"#, r#""changed-b""#])
        .ok();
    assert!(
        repo.text("secrets/db.yaml").contains("d: changed-b"),
        "the working tree stays plaintext"
    );
    repo.commit_all("set");
    assert_only(&changed_lines(&repo, "config/app.yaml"), "d");
    assert_only(&changed_lines(&repo, "secrets/db.yaml"), "d");
    // Unset too: the entry's line goes, the rest keeps its ciphertext.
    repo.sops(&["unset", "secrets/db.yaml", r#"["b"]"#]).ok();
    repo.commit_all("unset");
    let changed = changed_lines(&repo, "secrets/db.yaml");
    assert!(
        changed
            .iter()
            .all(|k| ["b", "mac", "lastmodified"].contains(&k.as_str())),
        "{changed:?}"
    );
    // Both read back with sops.
    let blob = repo.blob_text("HEAD:secrets/db.yaml");
    repo.write("check.yaml", blob);
    let out = repo
        .env
        .sops()
        .current_dir(&repo.dir)
        .args(["decrypt", "--extract", r#"["c"]["d"]"#, "check.yaml"])
        .run()
        .ok();
    assert_eq!(out.stdout_str(), "changed-b");
    // No plaintext secret in any object.
    let objects = repo
        .git(&["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    let all = String::from_utf8_lossy(&objects.stdout);
    for secret in ["hunter2-set", "changed-a", "changed-b"] {
        assert!(!all.contains(secret), "{secret} reached the object store");
    }
}

#[test]
fn in_a_locked_clone_the_ciphertext_file_is_edited() {
    let repo = Repo::new();
    repo.write("secrets/db.yaml", YAML);
    repo.commit_all("first");
    // Lock: the working-tree copy becomes the committed ciphertext.
    let blob = repo.blob("HEAD:secrets/db.yaml");
    repo.write("secrets/db.yaml", &blob);
    repo.sops(&[
        "set",
        "secrets/db.yaml",
        r#"["password"]"#,
        r#""rotated-pw""#,
    ])
    .ok();
    repo.git(&["add", "secrets/db.yaml"]).ok();
    repo.git(&["commit", "-q", "-m", "set"]).ok();
    assert_only(&changed_lines(&repo, "secrets/db.yaml"), "password");
    let objects = repo
        .git(&["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    assert!(!String::from_utf8_lossy(&objects.stdout).contains("rotated-pw"));
}

#[test]
fn a_binary_file_has_one_value_to_set() {
    let (env, key) = setup();
    env.write("plain.bin", "hello bin\n");
    for (name, cmd) in [("sops.bin", env.sops()), ("ours.bin", env.git_sops())] {
        let enc = cmd
            .args(["encrypt", "--age", &key.recipient, "plain.bin"])
            .run()
            .ok();
        env.write(name, &enc.stdout);
    }
    for from in ["sops.bin", "ours.bin"] {
        // `["data"]` as a string: the new bytes, as sops gives them.
        let (_, ours) = compare(
            &env,
            from,
            &["set", "FILE", r#"["data"]"#, r#""new\ndata""#],
            None,
        );
        assert!(ours.success());
        let out_file = format!("o-{}.bin", from.replace('.', "-"));
        let plain = env.sops().args(["decrypt", &out_file]).run().ok();
        assert_eq!(plain.stdout, b"new\ndata");
        // --idempotent with the same bytes: nothing written.
        let before = env.read(from);
        env.git_sops()
            .args([
                "set",
                "--idempotent",
                from,
                r#"["data"]"#,
                r#""hello bin\n""#,
            ])
            .run()
            .ok();
        assert_eq!(env.read(from), before);
        // What sops accepts and then cannot decrypt is refused, nothing written:
        // another key, a value that is not a string, removing the value.
        for args in [
            vec!["set", from, r#"["other"]"#, r#""x""#],
            vec!["set", from, r#"["data"]"#, "123"],
            vec!["unset", from, r#"["data"]"#],
        ] {
            let out = env.git_sops().args(&args).run();
            assert_eq!(out.code, Some(1), "{args:?}: {}", out.describe());
            assert!(
                out.stderr.contains("binary file is one value"),
                "{}",
                out.describe()
            );
            assert_eq!(env.read(from), before, "{args:?} wrote the file");
        }
    }
}
