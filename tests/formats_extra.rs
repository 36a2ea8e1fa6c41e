//! dotenv, INI and binary files: interop with the real sops 3.11 both ways (age),
//! byte-identical round trips of our own files, and bad inputs that must fail
//! clearly without writing anything.
//!
//! For text formats sops normalizes on decrypt (dotenv drops blank lines, INI is
//! re-laid out by go-ini), so "the same tree" is checked as "sops' decryption is
//! the same text": sops' decryption of our encryption equals sops' decryption of
//! its own encryption of the same plaintext.

mod common;
#[cfg(feature = "kms")]
mod kms_support;

use common::*;

/// sops' file type name for a file extension.
fn sops_type(ext: &str) -> &'static str {
    match ext {
        "env" => "dotenv",
        "ini" => "ini",
        _ => "binary",
    }
}

fn sops_decrypt(env: &Env, name: &str, ext: &str) -> Vec<u8> {
    let t = sops_type(ext);
    env.sops()
        .args(["decrypt", "--input-type", t, "--output-type", t, name])
        .run()
        .ok()
        .stdout
}

fn ours_decrypt(env: &Env, name: &str) -> Vec<u8> {
    env.git_sops().args(["decrypt", name]).run().ok().stdout
}

/// The four interop checks for one plaintext.
fn check_interop(what: &str, plaintext: &[u8], ext: &str) {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let t = sops_type(ext);

    // sops' own view of the plaintext.
    let sops_enc = sops_encrypt(&env, plaintext, t, &key.recipient, &[]);
    env.write(format!("sops.enc.{ext}"), &sops_enc);
    let reference = sops_decrypt(&env, &format!("sops.enc.{ext}"), ext);

    // Ours, read by sops.
    env.write(format!("plain.{ext}"), plaintext);
    let ours = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, &format!("plain.{ext}")])
        .run()
        .ok()
        .stdout;
    env.write(format!("ours.enc.{ext}"), &ours);
    assert_bytes_eq(
        &reference,
        &sops_decrypt(&env, &format!("ours.enc.{ext}"), ext),
        &format!("{what}: sops' decryption of ours vs of its own"),
    );
    // Sops', read by us: the same text sops itself gives.
    assert_bytes_eq(
        &reference,
        &ours_decrypt(&env, &format!("sops.enc.{ext}")),
        &format!("{what}: our decryption of sops' file vs sops'"),
    );
    // Ours, read by us: byte for byte.
    assert_bytes_eq(
        plaintext,
        &ours_decrypt(&env, &format!("ours.enc.{ext}")),
        &format!("{what}: our round trip"),
    );
}

#[test]
fn dotenv_interop_both_ways() {
    let cases: &[(&str, &str)] = &[
        ("simple", "A=1\nB=two words\n"),
        (
            "comments, blank lines, empty values",
            "# top comment\nA=1\n\n#\nEMPTY=\n# another\nB=2\n",
        ),
        (
            "export, padding, quotes and = in values",
            "export TOKEN=abc\nSPACED = x \nQ=\"quoted value\"\nS='single'\nURL=a=b=c\n",
        ),
        (
            "unicode",
            "NAME=héllo wörld ✓\n# ünïcode comment\nKEY_ü=日本\n",
        ),
        ("escaped newlines", "PEM=line1\\nline2\\n\nLIT=a\\\\nb\n"),
        ("CRLF", "A=1\r\n# c\r\nB=2\r\n"),
        ("no final newline", "A=1\nB=2"),
        ("only comments", "# just a comment\n"),
        ("empty file", ""),
    ];
    for (what, src) in cases {
        check_interop(what, src.as_bytes(), "env");
    }
}

#[test]
fn ini_interop_both_ways() {
    let cases: &[(&str, &str)] = &[
        (
            "sections",
            "[db]\nuser = admin\npassword = s3cret\n\n[api]\ntoken = abc\n",
        ),
        (
            "keys before any section are in DEFAULT",
            "top = 1\nother = 2\n\n[s]\nk = v\n",
        ),
        (
            "comments",
            "; file comment\n[s]\n# key comment\nk = v\n; before next\n[t]\nx = y\n",
        ),
        (
            "empty values and padding",
            "[s]\nempty =\nk=v\nlong_key   =   spaced value\n",
        ),
        ("unicode", "[sëction]\nkey = välue ✓\n"),
        ("CRLF", "[s]\r\nk = v\r\n; c\r\nj = w\r\n"),
        ("no final newline", "[s]\nk = v"),
        ("byte order mark", "\u{feff}[s]\nk = v\n"),
        (
            "values quoted as go-ini writes them",
            "[s]\nsemi = `a;b#c`\nspaced = \" x \"\nmulti = \"\"\"line 1\n[line 2]\n; line 3\"\"\"\nbq = \"\"\"a`b\"\"\"\nquote = \"abc\n",
        ),
    ];
    for (what, src) in cases {
        check_interop(what, src.as_bytes(), "ini");
    }
}

#[test]
fn binary_interop_both_ways() {
    let big: Vec<u8> = {
        // 10 MB of varied bytes (a cheap deterministic generator).
        let mut x: u32 = 0x1234_5678;
        (0..10 * 1024 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text", b"hello\nworld\n".to_vec()),
        (
            "non-UTF-8 bytes",
            vec![0xff, 0xfe, 0x00, b'a', 0x80, b'\n', 0xc3],
        ),
        ("empty", Vec::new()),
        ("10 MB", big),
    ];
    for (what, data) in &cases {
        check_interop(what, data, "bin");
    }
}

#[test]
fn binary_envelope_is_laid_out_like_sops() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    env.write("f.bin", b"x");
    let ours = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "f.bin"])
        .run()
        .ok()
        .stdout_str();
    assert!(
        ours.starts_with("{\n\t\"data\": \"ENC[AES256_GCM,data:"),
        "{ours}"
    );
    assert!(ours.contains(",type:str]\",\n\t\"sops\": {\n"), "{ours}");
    assert!(!ours.contains("unencrypted_suffix"), "{ours}");
    env.write("empty.bin", b"");
    let empty = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "empty.bin"])
        .run()
        .ok()
        .stdout_str();
    assert!(empty.starts_with("{\n\t\"data\": \"\",\n"), "{empty}");
}

#[test]
fn dotenv_metadata_is_flattened_like_sops() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    env.write("a.env", "A=1\n");
    let ours = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "a.env"])
        .run()
        .ok()
        .stdout_str();
    let sops = String::from_utf8(sops_encrypt(&env, b"A=1\n", "dotenv", &key.recipient, &[]))
        .expect("UTF-8");
    let keys = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    };
    assert_eq!(keys(&ours), keys(&sops));
    let enc_line = ours
        .lines()
        .find(|l| l.starts_with("sops_age__list_0__map_enc="))
        .expect("age enc line");
    assert!(enc_line.contains("-----BEGIN AGE ENCRYPTED FILE-----\\n"));
}

#[test]
fn dotenv_duplicate_keys_from_sops_decrypt_as_sops() {
    // sops keeps both; our reading of its file gives what sops gives.
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let enc = sops_encrypt(&env, b"A=1\nA=2\n", "dotenv", &key.recipient, &[]);
    env.write("dup.enc.env", &enc);
    assert_bytes_eq(
        &sops_decrypt(&env, "dup.enc.env", "env"),
        &ours_decrypt(&env, "dup.enc.env"),
        "duplicate keys",
    );
}

/// Encrypt (or decrypt) `src` in place and with --output; it must fail with a
/// message containing `expect`, leave the input untouched and write nothing.
fn check_refused(name: &str, src: &[u8], command: &str, expect: &str) {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    check_refused_in(&env, &key, name, src, command, expect);
}

fn check_refused_in(env: &Env, key: &AgeKey, name: &str, src: &[u8], command: &str, expect: &str) {
    env.write(name, src);
    let mut args = vec![command.to_string()];
    if command == "encrypt" {
        args.extend(["--age".to_string(), key.recipient.clone()]);
    }
    let out = env
        .git_sops()
        .args(&args)
        .args(["--output", "out.file", name])
        .run()
        .fails();
    assert!(
        out.stderr.contains(expect),
        "{name}: expected {expect:?} in the error: {}",
        out.describe()
    );
    assert!(out.stdout.is_empty(), "{name}: wrote to stdout");
    assert!(
        !env.exists("out.file"),
        "{name}: an output file was written"
    );
    let out = env
        .git_sops()
        .args(&args)
        .args(["--in-place", name])
        .run()
        .fails();
    assert!(out.stderr.contains(expect), "{}", out.describe());
    assert_eq!(env.read(name), src, "{name}: the input was changed");
}

#[test]
fn bad_inputs_fail_clearly_and_write_nothing() {
    check_refused("noeq.env", b"A=1\nNOEQUALS\n", "encrypt", "line 2");
    check_refused("noeq.env", b"A=1\nNOEQUALS\n", "encrypt", "no `=`");
    check_refused(
        "dup.env",
        b"A=1\nB=2\nA=3\n",
        "encrypt",
        "duplicate key \"A\"",
    );
    check_refused("meta.env", b"sops_x=1\n", "encrypt", "already encrypted");
    check_refused(
        "dup.ini",
        b"[s]\nk = 1\nk = 2\n",
        "encrypt",
        "duplicate key \"k\"",
    );
    check_refused("quoted.ini", b"[s]\nk = \"a;b\"\n", "encrypt", "line 2");
    check_refused(
        "inline.ini",
        b"[s]\nk = a ; c\n",
        "encrypt",
        "inline `;`/`#` comment",
    );
    check_refused(
        "unclosed.ini",
        b"[s]\nk = \"\"\"a\nb\n",
        "encrypt",
        "never closed",
    );
    check_refused("nodelim.ini", b"[s]\nkey\n", "encrypt", "no `=`");
    check_refused(
        "trailing.ini",
        b"[s]\nk = v\n; dropped\n",
        "encrypt",
        "line 3",
    );
    check_refused(
        "late-default.ini",
        b"a = 1\n[DEFAULT]\nb = 2\n",
        "encrypt",
        "[DEFAULT]",
    );
    check_refused(
        "damaged.bin",
        b"{\"data\": \"ENC[AES256_GCM,data:x",
        "decrypt",
        "not a sops binary file",
    );
    check_refused("notjson.bin", b"\xff\xfe\x00", "decrypt", "not UTF-8 JSON");
    check_refused(
        "nodata.bin",
        b"{\n\t\"other\": 1\n}\n",
        "decrypt",
        "not encrypted",
    );
    check_refused("plain.env", b"A=1\n", "decrypt", "not encrypted");
}

#[test]
fn binary_without_data_entry_is_refused() {
    // A real envelope with `data` renamed: the metadata is fine, the wrapper is not.
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let enc = sops_encrypt(&env, b"secret", "binary", &key.recipient, &[]);
    let damaged = String::from_utf8(enc)
        .expect("UTF-8")
        .replacen("\"data\"", "\"dat\"", 1);
    check_refused_in(
        &env,
        &key,
        "renamed.bin",
        damaged.as_bytes(),
        "decrypt",
        "no `data` entry",
    );
}

#[test]
fn tampered_binary_fails_the_mac() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let a = String::from_utf8(sops_encrypt(&env, b"one", "binary", &key.recipient, &[])).unwrap();
    // Swap in a value encrypted under another data key: AES-GCM refuses it.
    let b = String::from_utf8(sops_encrypt(&env, b"two", "binary", &key.recipient, &[])).unwrap();
    let data_line = |s: &str| s.lines().nth(1).unwrap().to_string();
    let mixed = a.replacen(&data_line(&a), &data_line(&b), 1);
    check_refused_in(
        &env,
        &key,
        "mixed.bin",
        mixed.as_bytes(),
        "decrypt",
        "cannot be decrypted",
    );
}

/// An encrypted file with its `ENC[...]` values reduced to their type tags and
/// its metadata cut off: what two encryptions of the same tree have in common.
fn masked_body(encrypted: &[u8], to: &str) -> String {
    let text = String::from_utf8_lossy(encrypted);
    let body: String = match to {
        "ini" => text.split("[sops]").next().unwrap_or("").to_string(),
        "dotenv" => text
            .split_inclusive('\n')
            .filter(|l| !l.starts_with("sops_"))
            .collect(),
        "yaml" => text.split("\nsops:\n").next().unwrap_or("").to_string(),
        _ => text.split("\t\"sops\": {").next().unwrap_or("").to_string(),
    };
    let re = regex::Regex::new(r"ENC\[AES256_GCM,data:[^,]*,iv:[^,]*,tag:[^,]*,type:(\w+)\]")
        .expect("regex");
    re.replace_all(&body, "ENC[$1]").into_owned()
}

/// `--output-type` between every pair of text formats: decrypt prints what sops
/// prints, byte for byte, or fails where sops fails (sops' exit code 4 for a tree
/// the output format cannot hold); encrypt writes the same tree as sops (the same
/// keys, comments and type tags; ciphertexts differ by their IVs), which both
/// tools decrypt to the same text.
#[test]
fn conversions_match_sops() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let cases: &[(&str, &str, &str)] = &[
        (
            "flat",
            "yaml",
            "# top comment\nA: hello\nB: 1\nC: 1.5\nD: true\nF: 2023-01-02T03:04:05.5Z\nG: \"multi\\nline\"\n# mid comment\nH: \"\"\nI_unencrypted: 7\nJ: 1e21\nK: 100000.0\nL: \" spaced \"\nM: \"a;b#c\"\nN: \"x`y\"\n",
        ),
        (
            "sections",
            "yaml",
            "s1:\n  # first in s1\n  a: x\n  #after a\n  long_key: 2\n  c: 1.5\n  d: true\n  f: \"multi\\nline\"\n  g: \" sp \"\n  h: \"a;b\"\n  i: \"x`y\"\n  j: 2023-01-02\n  k: \"\"\ns2: {}\ns3:\n  \"key=x\": 1\n",
        ),
        ("nested", "yaml", "a:\n  b:\n    c: 1\n"),
        ("list in a section", "yaml", "s:\n  l: [1, 2]\n"),
        ("list", "yaml", "l:\n  - 1\n  - two\n"),
        ("scalar at the top", "yaml", "top: 1\ns:\n  k: v\n"),
        ("null", "yaml", "a: null\n"),
        // Go's encoding/json escapes these (found in review).
        ("html characters", "yaml", "a: \"x<y&z>\\u2028w\"\nb<&>: 1\n"),
        (
            "json",
            "json",
            "{\"s\": {\"n\": 1, \"f\": 2.5, \"b\": false, \"t\": \"x\"}}\n",
        ),
        (
            "dotenv",
            "dotenv",
            "# c1\nA=1\n#c2\ny=x y\nC=a\\nb\nD=\nE=yes\n",
        ),
        (
            "ini",
            "ini",
            "top = 1\n; c0\n[s1]\n; c1\nk = v\n# c2\nj =\n[s2]\nx = `a;b`\ny = \"\"\"m\nl\"\"\"\nn = 12\n",
        ),
        ("ini without DEFAULT", "ini", "[s]\nk = v\n"),
    ];
    let types = ["yaml", "json", "dotenv", "ini"];
    let mut checks = Checks::new();
    for (what, from, plaintext) in cases {
        let ext = match *from {
            "dotenv" => "env",
            other => other,
        };
        let plain = format!("plain.{ext}");
        env.write(&plain, plaintext);
        let enc = sops_encrypt(&env, plaintext.as_bytes(), from, &key.recipient, &[]);
        let enc_name = format!("enc.{ext}");
        env.write(&enc_name, &enc);
        for to in types.iter().filter(|t| *t != from) {
            checks.check(&format!("{what}: decrypt {from} -> {to}"), || {
                let args = ["decrypt", "--output-type", to, enc_name.as_str()];
                let sops = env.sops().args(args).run();
                let ours = env.git_sops().args(args).run();
                ours.assert_no_panic();
                // A map or list inside an INI section: sops writes Go's debug form
                // of it (`[{x 1}]`), which reads back as a string; git-sops refuses.
                let nested_in_ini = *to == "ini" && matches!(*what, "nested" | "list in a section");
                if nested_in_ini {
                    assert_eq!(ours.code, Some(4), "{}", ours.describe());
                } else if sops.success() {
                    assert!(ours.success(), "sops succeeded: {}", ours.describe());
                    assert_bytes_eq(&sops.stdout, &ours.stdout, "decrypted output");
                } else {
                    assert!(
                        !ours.success(),
                        "sops failed: {}\nours: {}",
                        sops.describe(),
                        ours.describe()
                    );
                    if sops.code == Some(4) {
                        assert_eq!(ours.code, Some(4), "{}", ours.describe());
                    }
                }
            });
            checks.check(&format!("{what}: encrypt {from} -> {to}"), || {
                let args = [
                    "encrypt",
                    "--age",
                    key.recipient.as_str(),
                    "--output-type",
                    to,
                    plain.as_str(),
                ];
                let sops = env.sops().args(args).run();
                let ours = env.git_sops().args(args).run();
                ours.assert_no_panic();
                // sops writes `<nil>` for a null, which nobody can decrypt; git-sops refuses.
                let sops_readable = sops.success() && {
                    env.write(format!("sops-conv.{to}"), &sops.stdout);
                    env.sops()
                        .args(["decrypt", "--input-type", to, "--output-type", to])
                        .arg(format!("sops-conv.{to}"))
                        .run()
                        .success()
                };
                if !sops_readable {
                    assert!(
                        !ours.success(),
                        "sops failed: {}\nours: {}",
                        sops.describe(),
                        ours.describe()
                    );
                    return;
                }
                assert!(ours.success(), "sops succeeded: {}", ours.describe());
                assert_eq!(
                    masked_body(&sops.stdout, to),
                    masked_body(&ours.stdout, to),
                    "encrypted output (values masked)"
                );
                env.write(format!("ours-conv.{to}"), &ours.stdout);
                let decrypt = |tool: Cmd, name: &str| {
                    tool.args(["decrypt", "--input-type", to, "--output-type", to, name])
                        .run()
                        .ok()
                        .stdout
                };
                let reference = decrypt(env.sops(), &format!("sops-conv.{to}"));
                assert_bytes_eq(
                    &reference,
                    &decrypt(env.sops(), &format!("ours-conv.{to}")),
                    "sops' decryption of ours vs of its own",
                );
                // In place, a YAML or JSON file keeps the spelling sops stored for
                // a float (`1.0` stays a float) and YAML 1.1 words stay plain, so
                // sops' own YAML/JSON files are compared as trees elsewhere.
                if matches!(*to, "dotenv" | "ini") {
                    assert_bytes_eq(
                        &reference,
                        &decrypt(env.git_sops(), &format!("sops-conv.{to}")),
                        "our decryption of sops' file vs sops'",
                    );
                }
            });
        }
    }
    checks.finish("conversions");
    // Binary files are bytes in an envelope: they convert to nothing else.
    env.write("a.yaml", "a: 1\n");
    let out = env
        .git_sops()
        .args([
            "encrypt",
            "--age",
            &key.recipient,
            "--output-type",
            "binary",
            "a.yaml",
        ])
        .run()
        .fails();
    assert!(out.stderr.contains("binary"), "{}", out.describe());
}

#[test]
fn input_type_overrides_the_extension() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    env.write("settings.conf", "A=1\n");
    let enc = env
        .git_sops()
        .args([
            "encrypt",
            "--age",
            &key.recipient,
            "--input-type",
            "dotenv",
            "settings.conf",
        ])
        .run()
        .ok()
        .stdout_str();
    assert!(enc.starts_with("A=ENC[AES256_GCM,"), "{enc}");
    // Without the flag the same name is binary, as in sops.
    let enc = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "settings.conf"])
        .run()
        .ok()
        .stdout_str();
    assert!(enc.starts_with("{\n\t\"data\": \"ENC["), "{enc}");
}

// ---------------------------------------------------------------------------------
// The git filter on dotenv and INI files
// ---------------------------------------------------------------------------------

const DOTENV: &str =
    "# service credentials\nexport DB_PASSWORD=hunter2\nAPI_TOKEN=tok-ci-7f3a\n\nEMPTY=\n";
const INI: &str =
    "top = sk_live_51Habc\n\n[db]\n; the admin account\nuser = admin\npassword = whsec_9zz\n";

fn git_env(key: &AgeKey) -> Env {
    let mut env = Env::with_keys(&[key]);
    env.use_git();
    env
}

#[test]
fn git_filter_encrypts_dotenv_and_ini() {
    let key = AgeKey::generate();
    let env = git_env(&key);
    // The repository is a subdirectory, so the reference sops runs in `work`
    // never see its .sops.yaml.
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    let git = |args: &[&str]| env.tool("git").current_dir(&repo).args(args).run();
    git(&["init", "-q", "-b", "main"]).ok();
    env.git_sops()
        .current_dir(&repo)
        .args(["init", "secrets/**"])
        .run()
        .ok();
    env.write("repo/secrets/app.env", DOTENV);
    env.write("repo/secrets/app.ini", INI);
    git(&[
        "add",
        "secrets/app.env",
        "secrets/app.ini",
        ".gitattributes",
        ".sops.yaml",
    ])
    .ok();
    git(&["commit", "-q", "-m", "secrets"]).ok();
    for (path, plain, ext) in [
        ("secrets/app.env", DOTENV, "env"),
        ("secrets/app.ini", INI, "ini"),
    ] {
        let blob = git(&["cat-file", "-p", &format!("HEAD:{path}")])
            .ok()
            .stdout_str();
        for secret in [
            "hunter2",
            "tok-ci-7f3a",
            "sk_live_51Habc",
            "whsec_9zz",
            "admin account",
        ] {
            assert!(
                !blob.contains(secret),
                "{path}: {secret} reached the object store:\n{blob}"
            );
        }
        env.write(format!("blob.{ext}"), &blob);
        let sops_view = sops_decrypt(&env, &format!("blob.{ext}"), ext);
        let sops_of_plain = {
            let enc = sops_encrypt(&env, plain.as_bytes(), sops_type(ext), &key.recipient, &[]);
            env.write(format!("ref.{ext}"), enc);
            sops_decrypt(&env, &format!("ref.{ext}"), ext)
        };
        assert_bytes_eq(
            &sops_of_plain,
            &sops_view,
            &format!("{path}: sops reads the blob"),
        );
        // The working tree holds the plaintext exactly, and nothing looks modified.
        assert_eq!(env.read(format!("repo/{path}")), plain.as_bytes());
    }
    let status = git(&["status", "--porcelain"]).ok().stdout_str();
    assert!(!status.contains("secrets/"), "status: {status}");

    // A one-value edit changes one line of the stored ciphertext.
    env.write("repo/secrets/app.env", DOTENV.replace("hunter2", "hunter3"));
    git(&["add", "secrets/app.env"]).ok();
    let diff = git(&[
        "diff",
        "--cached",
        "--no-textconv",
        "--unified=0",
        "--",
        "secrets/app.env",
    ])
    .ok()
    .stdout_str();
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .filter(|l| !l.contains("sops_lastmodified") && !l.contains("sops_mac"))
        .collect();
    assert_eq!(changed.len(), 2, "{diff}");
}

/// Binary files through git: any bytes (NUL, non-UTF-8, empty) are stored as
/// sops' JSON envelope and come back exactly; `sops-type` in .gitattributes
/// overrides the extension; textconv shows a summary for binary data.
#[test]
fn git_filter_binary_files_and_sops_type() {
    let key = AgeKey::generate();
    let env = git_env(&key);
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    let git = |args: &[&str]| env.tool("git").current_dir(&repo).args(args).run();
    // Global driver config, so that clones smudge too.
    env.git_sops().args(["install", "--global"]).run().ok();
    git(&["init", "-q", "-b", "main"]).ok();
    env.git_sops()
        .current_dir(&repo)
        .args(["init", "secrets/**"])
        .run()
        .ok();
    // One rule for every path (init wrote one for secrets/ only).
    env.write(
        "repo/.sops.yaml",
        format!("creation_rules:\n  - age: {}\n", key.recipient),
    );
    let attrs = String::from_utf8(env.read("repo/.gitattributes")).expect("utf8");
    env.write(
        "repo/.gitattributes",
        format!("{attrs}secrets/.env.* sops-type=dotenv\n.env.ci filter=sops diff=sops sops-type=dotenv -text\n"),
    );
    let keystore: Vec<u8> = (0..=255u8)
        .cycle()
        .take(4096)
        .chain([0xff, 0, 0xfe])
        .collect();
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
    let dotenv = "# prod\nDB_PASSWORD=pr0d-s3cret\nexport API=key=with=equals\n";
    env.write("repo/secrets/store.p12", &keystore);
    env.write("repo/secrets/empty.key", b"");
    env.write("repo/secrets/tls.pem", pem);
    env.write("repo/secrets/.env.production", dotenv);
    // Sorts before .gitattributes: a checkout writes it first.
    env.write("repo/.env.ci", dotenv);
    git(&["add", "."]).ok();
    git(&["commit", "-q", "-m", "binary secrets"]).ok();

    // The object store holds sops files that real sops decrypts to the exact bytes.
    for (path, plain, sops_type) in [
        ("secrets/store.p12", &keystore[..], "binary"),
        ("secrets/empty.key", &b""[..], "binary"),
        ("secrets/tls.pem", pem.as_bytes(), "binary"),
        ("secrets/.env.production", dotenv.as_bytes(), "dotenv"),
    ] {
        let blob = git(&["cat-file", "blob", &format!("HEAD:{path}")])
            .ok()
            .stdout
            .clone();
        let text = String::from_utf8(blob.clone()).expect("a sops file is text");
        for secret in ["PRIVATE KEY", "pr0d-s3cret", "key=with"] {
            assert!(
                !text.contains(secret),
                "{path}: {secret} reached the object store:\n{text}"
            );
        }
        let name = format!("blob-{}", path.replace('/', "_"));
        env.write(&name, &blob);
        let out = env
            .sops()
            .args([
                "decrypt",
                "--input-type",
                sops_type,
                "--output-type",
                sops_type,
                &name,
            ])
            .run()
            .ok();
        if sops_type == "binary" {
            assert_bytes_eq(
                plain,
                &out.stdout,
                &format!("{path}: sops decrypts the blob"),
            );
        } else {
            // sops renders dotenv itself (it drops comments' position); compare values.
            let shown = out.stdout_str();
            assert!(shown.contains("DB_PASSWORD=pr0d-s3cret"), "{shown}");
            assert!(shown.contains("API=key=with=equals"), "{shown}");
        }
        assert!(
            env.read(format!("repo/{path}")) == plain,
            "{path}: working tree"
        );
    }
    let status = git(&["status", "--porcelain"]).ok().stdout_str();
    assert_eq!(status, "", "nothing looks modified");

    // Byte stability: renormalizing stores the same blobs.
    let before = git(&["ls-files", "-s"]).ok().stdout_str();
    git(&["add", "--renormalize", "."]).ok();
    assert_eq!(git(&["ls-files", "-s"]).ok().stdout_str(), before);

    // An edit keeps the data key (the wrapped key in the metadata is unchanged).
    let wrapped = |rev: &str| {
        let blob = git(&["cat-file", "blob", &format!("{rev}:secrets/store.p12")])
            .ok()
            .stdout_str();
        let enc_line = blob
            .lines()
            .find(|l| l.contains("\"enc\""))
            .map(str::to_string);
        enc_line.expect("an age stanza")
    };
    let mut edited = keystore.clone();
    edited[10] ^= 0xff;
    env.write("repo/secrets/store.p12", &edited);
    git(&["add", "secrets/store.p12"]).ok();
    git(&["commit", "-q", "-m", "edit"]).ok();
    assert_eq!(
        wrapped("HEAD"),
        wrapped("HEAD~1"),
        "same data key after an edit"
    );

    // textconv: a summary for binary data, the text of a text file.
    let diff = git(&["diff", "HEAD~1", "HEAD", "--", "secrets/store.p12"])
        .ok()
        .stdout_str();
    assert!(
        diff.contains("-<binary data, 4099 bytes, sha256 ")
            && diff.contains("+<binary data, 4099 bytes, sha256 "),
        "{diff}"
    );
    env.write("repo/secrets/tls.pem", pem.replace("MIIE", "MIIF"));
    let diff = git(&["diff", "--", "secrets/tls.pem"]).ok().stdout_str();
    assert!(
        diff.contains("+MIIFvQIB") && diff.contains("-MIIEvQIB"),
        "{diff}"
    );
    git(&["checkout", "--", "secrets/tls.pem"]).ok();

    // A fresh clone with the key checks out the exact bytes.
    let clone = env.path("clone");
    env.tool("git")
        .args([
            "clone",
            "-q",
            repo.to_str().expect("utf8"),
            clone.to_str().expect("utf8"),
        ])
        .run()
        .ok();
    assert!(
        env.read("clone/secrets/store.p12") == edited,
        "clone: store.p12"
    );
    assert_eq!(env.read("clone/secrets/empty.key"), b"");
    assert_eq!(env.read("clone/secrets/.env.production"), dotenv.as_bytes());
    assert_eq!(env.read("clone/.env.ci"), dotenv.as_bytes());

    // A locked clone keeps the ciphertext, and its status stays clean.
    let locked = env.path("locked");
    let out = env
        .tool("git")
        .env_remove("SOPS_AGE_KEY_FILE")
        .args([
            "clone",
            "-q",
            repo.to_str().expect("utf8"),
            locked.to_str().expect("utf8"),
        ])
        .run()
        .ok();
    assert!(
        out.stderr.contains("no key to decrypt"),
        "{}",
        out.describe()
    );
    let head = git(&["cat-file", "blob", "HEAD:secrets/store.p12"])
        .ok()
        .stdout
        .clone();
    assert!(
        env.read("locked/secrets/store.p12") == head,
        "locked: ciphertext"
    );
    let status = env
        .tool("git")
        .env_remove("SOPS_AGE_KEY_FILE")
        .current_dir(&locked)
        .args(["status", "--porcelain"])
        .run()
        .ok()
        .stdout_str();
    assert_eq!(status, "");

    // A file encrypted by real sops is stored as it is and decrypts on checkout.
    env.write("work-plain.bin", b"\x00from sops\xff");
    let sops_enc = env
        .sops()
        .args([
            "encrypt",
            "--age",
            &key.recipient,
            "--input-type",
            "binary",
            "--output-type",
            "binary",
        ])
        .arg(env.path("work-plain.bin"))
        .run()
        .ok()
        .stdout
        .clone();
    env.write("repo/secrets/from-sops.bin", &sops_enc);
    git(&["add", "secrets/from-sops.bin"]).ok();
    let staged = git(&["cat-file", "blob", ":secrets/from-sops.bin"])
        .ok()
        .stdout
        .clone();
    assert_eq!(staged, sops_enc, "ciphertext is stored as it is");
    std::fs::remove_file(repo.join("secrets/from-sops.bin")).expect("rm");
    git(&["checkout", "--", "secrets/from-sops.bin"]).ok();
    assert_eq!(env.read("repo/secrets/from-sops.bin"), b"\x00from sops\xff");

    // A SOPS YAML file under a name sops calls binary is stored as it is (not
    // wrapped twice); checkout says which sops-type would open it.
    env.write("kube-plain.yaml", "apiVersion: v1\ntoken: kube-s3cret\n");
    let kube_enc = env
        .sops()
        .args(["encrypt", "--age", &key.recipient])
        .arg(env.path("kube-plain.yaml"))
        .run()
        .ok()
        .stdout
        .clone();
    env.write("repo/secrets/kubeconfig", &kube_enc);
    git(&["add", "secrets/kubeconfig"]).ok();
    assert!(
        git(&["cat-file", "blob", ":secrets/kubeconfig"])
            .ok()
            .stdout
            == kube_enc
    );
    std::fs::remove_file(repo.join("secrets/kubeconfig")).expect("rm");
    let out = git(&["checkout", "--", "secrets/kubeconfig"]).ok();
    assert!(
        out.stderr
            .contains("holds a SOPS yaml file, but git-sops reads this path as binary")
            && out.stderr.contains("sops-type=yaml"),
        "{}",
        out.describe()
    );
    assert!(env.read("repo/secrets/kubeconfig") == kube_enc);
    env.write(
        "repo/.gitattributes",
        format!("{attrs}secrets/.env.* sops-type=dotenv\nsecrets/kubeconfig sops-type=yaml\n"),
    );
    std::fs::remove_file(repo.join("secrets/kubeconfig")).expect("rm");
    git(&["checkout", "--", "secrets/kubeconfig"]).ok();
    assert_eq!(
        String::from_utf8(env.read("repo/secrets/kubeconfig")).expect("utf8"),
        "apiVersion: v1\ntoken: kube-s3cret\n"
    );
    git(&["reset", "-q", "--", "secrets/kubeconfig"]).ok();

    // A sops-type the driver does not know: a clear error, nothing staged.
    env.write(
        "repo/.gitattributes",
        format!("{attrs}secrets/odd.cfg sops-type=toml\n"),
    );
    env.write("repo/secrets/odd.cfg", "a = 1\n");
    let out = git(&["add", "secrets/odd.cfg"]).fails();
    assert!(
        out.stderr
            .contains("unknown format \"toml\" in the sops-type gitattribute"),
        "{}",
        out.describe()
    );
    let staged = git(&["diff", "--cached", "--name-only"]).ok().stdout_str();
    assert!(!staged.contains("odd.cfg"), "{staged}");

    // The guard reads the attribute too: the binary files and the dotenv file pass;
    // a path whose sops-type is unknown is reported, not guessed.
    let check = |args: &[&str]| {
        env.git_sops()
            .current_dir(&repo)
            .arg("check")
            .args(args)
            .run()
    };
    check(&["--staged"]).ok();
    let oid = git(&["hash-object", "-w", "--no-filters", "secrets/odd.cfg"])
        .ok()
        .stdout_str();
    let cacheinfo = format!("100644,{},secrets/odd.cfg", oid.trim());
    git(&["update-index", "--add", "--cacheinfo", &cacheinfo]).ok();
    let out = check(&["--staged"]).fails();
    assert!(
        out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("store.p12"),
        "{}",
        out.describe()
    );
    let report = format!("{}{}", out.stdout_str(), out.stderr);
    assert!(
        report.contains("secrets/odd.cfg") && report.contains("unknown format \"toml\""),
        "{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------
// AWS KMS (moto): the flattened `kms` entries (context map, empty aws_profile)
// ---------------------------------------------------------------------------------

#[cfg(feature = "kms")]
#[test]
fn kms_interop_both_ways() {
    let (moto, keys) = kms_support::shared();
    let sb = kms_support::Sandbox::new(&moto.endpoint());
    let kms = [
        "--kms",
        keys.a.as_str(),
        "--encryption-context",
        "Env:prod,App:web",
    ];
    for (name, plain) in [
        ("k.env", "# c\nexport A=1\nB=two\n"),
        ("k.ini", "top = 1\n[s]\n; c\nk = v\n"),
        ("k.bin", "any bytes\n"),
    ] {
        sb.write(name, plain);
        let mut args = vec!["encrypt"];
        args.extend(kms);
        args.push(name);
        let ours = sb.git_sops(&args).ok().stdout_str();
        let theirs = sb.sops(&args).ok().stdout_str();
        if name.ends_with(".env") {
            assert!(
                ours.contains("sops_kms__list_0__map_context__map_Env=prod\n")
                    && ours.contains("sops_kms__list_0__map_aws_profile=\n"),
                "{ours}"
            );
        }
        let ext = name.rsplit('.').next().unwrap_or("");
        sb.write(&format!("ours.{ext}"), &ours);
        sb.write(&format!("theirs.{ext}"), &theirs);
        let reference = sb
            .sops(&["decrypt", &format!("theirs.{ext}")])
            .ok()
            .stdout_str();
        let sops_of_ours = sb
            .sops(&["decrypt", &format!("ours.{ext}")])
            .ok()
            .stdout_str();
        assert_eq!(sops_of_ours, reference, "{name}: sops reads ours");
        let ours_of_theirs = sb
            .git_sops(&["decrypt", &format!("theirs.{ext}")])
            .ok()
            .stdout_str();
        assert_eq!(ours_of_theirs, reference, "{name}: we read sops'");
        let back = sb
            .git_sops(&["decrypt", &format!("ours.{ext}")])
            .ok()
            .stdout_str();
        assert_eq!(back, plain, "{name}: our round trip");
    }
}

/// `rotate` and `updatekeys` treat an unknown extension as binary, as sops
/// does, and keep non-UTF-8 bytes intact.
#[test]
fn rotate_and_updatekeys_on_a_binary_file() {
    let a = AgeKey::generate();
    let b = AgeKey::generate();
    let env = Env::with_keys(&[&a, &b]);
    let plain: &[u8] = b"\x00\xff\xfe not text \x80\n";
    env.write("s.bin", plain);
    env.write(
        ".sops.yaml",
        format!("creation_rules:\n  - age: {}\n", a.recipient),
    );
    env.git_sops().args(["encrypt", "-i", "s.bin"]).run().ok();
    let before = env.read("s.bin");
    env.git_sops().args(["rotate", "-i", "s.bin"]).run().ok();
    let rotated = env.read("s.bin");
    assert_ne!(before, rotated, "a new data key");
    let out = env.sops().args(["decrypt", "s.bin"]).run().ok();
    assert!(out.stdout == plain, "sops reads the rotated file");
    env.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - age: {},{}\n",
            a.recipient, b.recipient
        ),
    );
    env.git_sops()
        .args(["updatekeys", "-y", "s.bin"])
        .run()
        .ok();
    let updated = String::from_utf8(env.read("s.bin")).expect("utf8");
    assert!(updated.contains(&b.recipient), "{updated}");
    let out = env
        .sops()
        .env("SOPS_AGE_KEY", b.key_file_text())
        .env_remove("SOPS_AGE_KEY_FILE")
        .args(["decrypt", "s.bin"])
        .run()
        .ok();
    assert!(out.stdout == plain, "the new recipient opens it");
}
