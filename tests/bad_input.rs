//! Broken inputs: every `tests/bad/<case>.<ext>` has a `tests/bad/<case>.<ext>.expect`
//! describing the error git-sops must give:
//!
//! ```text
//! # comment
//! command: encrypt | decrypt     (encrypt gets `--age <public sops test key>`)
//! exit: N                        (only for the codes sops defines: 25 51 92 128 203)
//! sops_exit: N                   (what sops 3.11 does with the same input; checked
//!                                 too, so the fixture provably is what it claims)
//! contains: text                 (case-insensitive; all must appear on stderr)
//! contains_any: a | b | c        (at least one must appear)
//! ignore_mac_ok: true            (decrypt --ignore-mac must then succeed)
//! config: true                   (the case is a `.sops.yaml`: it is installed as
//!                                 such and a small plaintext `secret.yaml` is
//!                                 encrypted with its rules, without `--age`)
//! ```
//!
//! For every case: non-zero exit, no panic, the file name on stderr (`.sops.yaml`
//! for config cases), one paragraph, nothing on stdout, and with `--output` / `-i`
//! the target is left as it was (not created, not truncated, no temp files left
//! behind). Encrypted cases are sops files for the public sops test key, corrupted
//! (`tests/bad/make-encrypted-cases.py`).

mod common;

use common::*;

struct Expect {
    command: String,
    exit: Option<i32>,
    sops_exit: Option<i32>,
    contains: Vec<String>,
    contains_any: Vec<Vec<String>>,
    ignore_mac_ok: bool,
    config: bool,
}

/// The plaintext a config case encrypts.
const CONFIG_TARGET: &str = "secret.yaml";

fn parse_expect(file: &str) -> Expect {
    let text = String::from_utf8(fixture("bad", &format!("{file}.expect"))).unwrap();
    let mut e = Expect {
        command: String::new(),
        exit: None,
        sops_exit: None,
        contains: vec![],
        contains_any: vec![],
        ignore_mac_ok: false,
        config: false,
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("{file}.expect: bad line {line:?}"));
        let v = v.trim().to_string();
        match k.trim() {
            "command" => e.command = v,
            "exit" => e.exit = Some(v.parse().expect("exit code")),
            "sops_exit" => e.sops_exit = Some(v.parse().expect("sops exit code")),
            "contains" => e.contains.push(v),
            "contains_any" => e
                .contains_any
                .push(v.split('|').map(|s| s.trim().to_string()).collect()),
            "ignore_mac_ok" => e.ignore_mac_ok = v == "true",
            "config" => e.config = v == "true",
            other => panic!("{file}.expect: unknown field {other:?}"),
        }
    }
    assert!(
        e.command == "encrypt" || e.command == "decrypt",
        "{file}.expect: command must be encrypt or decrypt"
    );
    e
}

fn base_args(e: &Expect) -> Vec<String> {
    let mut args = vec![e.command.clone()];
    if e.command == "encrypt" && !e.config {
        args.extend(["--age".to_string(), SOPS_TEST_RECIPIENT.to_string()]);
    }
    args
}

fn dir_listing(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&env.work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn check_error_text(out: &Output, file: &str, e: &Expect, how: &str) {
    let what = format!("{file} ({how})");
    if let Some(code) = e.exit {
        assert_eq!(
            out.code,
            Some(code),
            "{what}: exit code: {}",
            out.describe()
        );
    }
    let err = out.stderr.to_lowercase();
    assert!(
        !out.stderr.trim().is_empty(),
        "{what}: no error message: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains(file),
        "{what}: the error must name the file {file:?}: {}",
        out.describe()
    );
    for c in &e.contains {
        assert!(
            err.contains(&c.to_lowercase()),
            "{what}: the error must mention {c:?}: {}",
            out.describe()
        );
    }
    for any in &e.contains_any {
        assert!(
            any.iter().any(|c| err.contains(&c.to_lowercase())),
            "{what}: the error must mention one of {any:?}: {}",
            out.describe()
        );
    }
    assert!(
        !out.stderr.trim().contains("\n\n"),
        "{what}: the error should be one paragraph: {}",
        out.describe()
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: nothing may be written to stdout on failure: {}",
        out.describe()
    );
}

fn check_bad_case(case: &str) {
    let e = parse_expect(case);
    let mut input = fixture("bad", case);
    let env = Env::with_keys(&[&AgeKey::sops_test_key()]);
    // The file the command reads, and the name its error must give.
    let (file, named) = if e.config {
        env.write(".sops.yaml", &input);
        input = b"password: hunter2\n".to_vec();
        (CONFIG_TARGET, ".sops.yaml")
    } else {
        (case, case)
    };
    let ext = ext_of(file);
    env.write(file, &input);
    let mut checks = Checks::new();

    // sops 3.11 on the same input: proves the fixture is what it claims to be.
    if let Some(code) = e.sops_exit {
        checks.check("sops 3.11 agrees the input is broken this way", || {
            let out = env.sops().args(base_args(&e)).arg(file).run();
            assert_eq!(out.code, Some(code), "sops: {}", out.describe());
        });
    }

    checks.check("stdout mode", || {
        let out = env.git_sops().args(base_args(&e)).arg(file).run().fails();
        check_error_text(&out, named, &e, "stdout");
    });

    checks.check("--output to an existing file leaves it unchanged", || {
        let target = format!("out.{ext}");
        env.write(&target, "OLD CONTENT\n");
        let before = dir_listing(&env);
        let out = env
            .git_sops()
            .args(base_args(&e))
            .args(["--output", &target, file])
            .run()
            .fails();
        check_error_text(&out, named, &e, "--output");
        assert_eq!(
            env.read(&target),
            b"OLD CONTENT\n",
            "--output target was modified"
        );
        assert_eq!(dir_listing(&env), before, "files appeared in the directory");
    });

    checks.check("--output to a new file does not create it", || {
        let target = format!("never-created.{ext}");
        let out = env
            .git_sops()
            .args(base_args(&e))
            .args(["--output", &target, file])
            .run()
            .fails();
        check_error_text(&out, named, &e, "--output new");
        assert!(
            !env.exists(&target),
            "--output target was created on failure"
        );
    });

    checks.check("-i leaves the file unchanged", || {
        let before = dir_listing(&env);
        let out = env
            .git_sops()
            .args(base_args(&e))
            .args(["-i", file])
            .run()
            .fails();
        check_error_text(&out, named, &e, "-i");
        assert_bytes_eq(&input, &env.read(file), "in-place target after a failure");
        assert_eq!(dir_listing(&env), before, "temp files left behind");
    });

    if e.ignore_mac_ok {
        checks.check("--ignore-mac decrypts it", || {
            let sops = env.sops().args(["decrypt", "--ignore-mac", file]).run();
            assert!(sops.success(), "sops --ignore-mac: {}", sops.describe());
            let out = env
                .git_sops()
                .args(["decrypt", "--ignore-mac", file])
                .run()
                .ok();
            assert!(out.stdout_str().contains("hunter2"), "{}", out.describe());
        });
    }
    checks.finish(case);
}

macro_rules! bad_cases {
    ($($test:ident => $file:literal,)*) => {
        $( #[test] fn $test() { check_bad_case($file) } )*
        const BAD: &[&str] = &[$($file),*];
    };
}

bad_cases! {
    invalid_yaml => "invalid-yaml.yaml",
    invalid_json => "invalid-json.json",
    top_level_list_yaml => "top-level-list.yaml",
    top_level_scalar_yaml => "top-level-scalar.yaml",
    top_level_list_json => "top-level-list.json",
    top_level_string_json => "top-level-string.json",
    empty_yaml => "empty.yaml",
    empty_json => "empty.json",
    comment_only_yaml => "comment-only.yaml",
    anchors_aliases => "anchors-aliases.yaml",
    merge_key => "merge-key.yaml",
    duplicate_keys => "duplicate-keys.yaml",
    non_string_key => "non-string-key.yaml",
    int_out_of_range => "int-out-of-range.yaml",
    already_encrypted => "already-encrypted.yaml",
    missing_metadata_yaml => "missing-metadata.yaml",
    missing_metadata_json => "missing-metadata.json",
    tampered_tag => "tampered-tag.yaml",
    truncated_enc => "truncated-enc.yaml",
    bad_base64 => "bad-base64.yaml",
    unknown_type => "unknown-type.yaml",
    plain_value_in_encrypted_file => "plain-value-in-encrypted-file.yaml",
    renamed_key => "renamed-key.yaml",
    mac_mismatch_yaml => "mac-mismatch.yaml",
    mac_mismatch_json => "mac-mismatch.json",
    list_reordered => "list-reordered.yaml",
    no_version => "no-version.yaml",
    bad_lastmodified => "bad-lastmodified.yaml",
    no_keys => "no-keys.yaml",
    tampered_data_key => "tampered-data-key.yaml",
    no_matching_key => "no-matching-key.yaml",
    flow_closing_bracket_column_0 => "flow-closing-bracket-column-0.yaml",
    deep_nesting_yaml => "deep-nesting.yaml",
    deep_flow_yaml => "deep-flow.yaml",
    deep_nesting_json => "deep-nesting.json",
    deep_metadata_key_dotenv => "deep-metadata-key.env",
    too_many_key_groups => "too-many-key-groups.yaml",
    alias_bomb_config => "alias-bomb.sops.yaml",
    deep_config => "deep-config.sops.yaml",
    too_many_key_groups_config => "too-many-key-groups.sops.yaml",
    // Found by fuzzing (scripts/fuzz).
    bare_carriage_return => "bare-carriage-return.yaml",
}

#[test]
fn every_bad_case_has_a_test_and_an_expect_file() {
    let names = fixture_names("bad");
    let mut inputs: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.ends_with(".expect") && !n.ends_with(".py"))
        .collect();
    inputs.sort();
    let mut listed = BAD.to_vec();
    listed.sort();
    assert_eq!(
        inputs, listed,
        "tests/bad inputs and the bad_cases! list differ"
    );
    for n in &inputs {
        assert!(
            names.contains(&format!("{n}.expect")),
            "{n} has no .expect file"
        );
    }
}

/// No key at all (no SOPS_AGE_KEY*, no default key file): exit 128, and the
/// message says where keys were looked for.
#[test]
fn no_identity_anywhere() {
    let env = Env::new();
    env.write("f.yaml", fixture("bad", "already-encrypted.yaml"));
    let sops = env.sops().args(["decrypt", "f.yaml"]).run();
    assert_eq!(sops.code, Some(128), "{}", sops.describe());
    let out = env.git_sops().args(["decrypt", "f.yaml"]).run().fails();
    assert_eq!(out.code, Some(128), "{}", out.describe());
    assert!(out.stderr.contains("f.yaml"), "{}", out.describe());
    assert!(
        out.stderr.contains(SOPS_TEST_RECIPIENT),
        "lists the recipients: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("keys.txt") || out.stderr.contains("SOPS_AGE_KEY"),
        "says where identities were looked for: {}",
        out.describe()
    );
}

/// A key file that is not an age identity file is an error that names it.
#[test]
fn unreadable_identity_file() {
    let mut env = Env::new();
    let bad = env.root.join("garbage-keys.txt");
    std::fs::write(&bad, "this is not an age identity\n").unwrap();
    env.set("SOPS_AGE_KEY_FILE", bad.display().to_string());
    env.write("f.yaml", fixture("bad", "already-encrypted.yaml"));
    let out = env.git_sops().args(["decrypt", "f.yaml"]).run().fails();
    assert!(
        out.stderr.contains("garbage-keys.txt"),
        "names the key file: {}",
        out.describe()
    );
}

/// Missing input file and unknown recipients fail cleanly.
#[test]
fn missing_file_and_bad_recipient() {
    let env = Env::with_keys(&[&AgeKey::sops_test_key()]);
    let out = env
        .git_sops()
        .args(["decrypt", "does-not-exist.yaml"])
        .run()
        .fails();
    assert!(
        out.stderr.contains("does-not-exist.yaml"),
        "{}",
        out.describe()
    );
    env.write("f.yaml", "a: b\n");
    let out = env
        .git_sops()
        .args([
            "encrypt",
            "--age",
            "age1notarecipient",
            "--output",
            "o.yaml",
            "f.yaml",
        ])
        .run()
        .fails();
    assert!(
        out.stderr.contains("age1notarecipient"),
        "names the bad recipient: {}",
        out.describe()
    );
    assert!(!env.exists("o.yaml"));
}

/// A huge document fails or succeeds cleanly, never with a crash: 20k keys.
#[test]
fn large_document_round_trips() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let mut src = String::from("# large\n");
    for i in 0..20_000 {
        src.push_str(&format!("key_{i}: value number {i} # c{i}\n"));
    }
    env.write("big.yaml", &src);
    let enc = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "big.yaml"])
        .run()
        .ok()
        .stdout;
    env.write("big.enc.yaml", &enc);
    let back = env
        .git_sops()
        .args(["decrypt", "big.enc.yaml"])
        .run()
        .ok()
        .stdout;
    assert_bytes_eq(src.as_bytes(), &back, "20k-key round trip");
    assert!(
        env.sops().args(["decrypt", "big.enc.yaml"]).run().success(),
        "sops decrypts it"
    );
}
