//! The sops command line beside git-sops: `decrypt --extract`, `filestatus`,
//! and the generated completion scripts and man page. Every behaviour is
//! checked by running the pinned sops 3.11 on the same input (files written by
//! sops and by git-sops) and comparing stdout byte for byte and the exit code.
//! Where sops crashes (a Go panic, exit 2) or prints its internal structures,
//! git-sops deliberately differs; those cases assert sops' behaviour too, so a
//! change in sops shows up here.

mod common;

use common::{AgeKey, Checks, Env, Output, Repo};

const YAML: &str = "\
# top comment
a:
  b:
    - x
    - 1
    - true
    - 1.5
    - null
    - {k: v, n: 2}
    - [p, q]
    - []
  s: hello
  m: |
    multi
    line
  empty: \"\"
  t: 2024-01-01T00:00:00Z
  d: 2024-01-01
  # c comment
  c: {d: 1, html: \"<&>\"}
  e: []
  f: {}
n: 3
";

const OUTPUT_TYPES: [&str; 5] = ["yaml", "json", "dotenv", "ini", "binary"];

fn env() -> Env {
    Env::with_keys(&[&AgeKey::sops_test_key()])
}

/// The same file encrypted by sops and by git-sops, written as `NAME.sops.EXT`
/// and `NAME.ours.EXT`; returns both names.
fn both(env: &Env, name: &str, ext: &str, plaintext: &[u8]) -> [String; 2] {
    let plain = format!("{name}.plain.{ext}");
    env.write(&plain, plaintext);
    let mut names = [format!("{name}.sops.{ext}"), format!("{name}.ours.{ext}")];
    for (i, n) in names.iter_mut().enumerate() {
        let cmd = if i == 0 { env.sops() } else { env.git_sops() };
        let out = cmd
            .args(["encrypt", "--age", common::SOPS_TEST_RECIPIENT, &plain])
            .run()
            .ok();
        env.write(&*n, &out.stdout);
    }
    names
}

/// Run the same arguments through sops and git-sops: same stdout, same exit code.
fn same(env: &Env, args: &[&str], stdin: Option<&[u8]>) -> (Output, Output) {
    let run = |label: &str| {
        let mut cmd = if label == "sops" {
            env.sops()
        } else {
            env.git_sops()
        };
        cmd = cmd.args(args);
        if let Some(s) = stdin {
            cmd = cmd.stdin(s);
        }
        cmd.run()
    };
    let (theirs, ours) = (run("sops"), run("git-sops"));
    ours.assert_no_panic();
    assert_eq!(
        theirs.code,
        ours.code,
        "exit codes differ\n{}\n{}",
        theirs.describe(),
        ours.describe()
    );
    common::assert_bytes_eq(
        &theirs.stdout,
        &ours.stdout,
        &format!("stdout of {:?}", args),
    );
    (theirs, ours)
}

fn decrypt_args<'a>(path: &'a str, file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["decrypt", "--extract", path];
    v.extend_from_slice(extra);
    v.push(file);
    v
}

#[test]
fn extract_prints_every_kind_of_value_as_sops_does() {
    let env = env();
    let files = both(&env, "doc", "yaml", YAML.as_bytes());
    let paths = [
        r#"["a"]["b"][0]"#,
        r#"["a"]["b"][1]"#,
        r#"["a"]["b"][2]"#,
        r#"["a"]["b"][3]"#,
        r#"["a"]["b"][4]"#,
        r#"["a"]["b"][5]"#,
        r#"["a"]["b"][6]"#,
        r#"["a"]["b"][7]"#,
        r#"["a"]["b"]"#,
        r#"["a"]["s"]"#,
        r#"["a"]["m"]"#,
        r#"["a"]["empty"]"#,
        r#"["a"]["t"]"#,
        r#"["a"]["d"]"#,
        r#"["a"]["c"]"#,
        r#"["a"]["c"]["html"]"#,
        r#"["a"]["e"]"#,
        r#"["a"]["f"]"#,
        r#"["a"]"#,
        r#"["n"]"#,
        "['a']['s']",
        r#"["a"]["b"][+1]"#,
        r#"["a"]["b"][01]"#,
    ];
    let mut checks = Checks::new();
    for file in &files {
        for path in paths {
            for ty in OUTPUT_TYPES {
                checks.check(&format!("{file} {path} --output-type {ty}"), || {
                    same(
                        &env,
                        &decrypt_args(path, file, &["--output-type", ty]),
                        None,
                    );
                });
            }
        }
    }
    checks.finish("--extract against sops");
}

/// sops' own functional test (functional-tests/src/lib.rs, `extract_string`).
#[test]
fn extract_string_as_in_sops_functional_tests() {
    let env = env();
    for file in both(&env, "ml", "yaml", b"multiline: |\n  multi\n  line") {
        let (_, ours) = same(&env, &decrypt_args(r#"["multiline"]"#, &file, &[]), None);
        assert_eq!(ours.stdout, b"multi\nline");
    }
}

#[test]
fn extract_from_json_dotenv_ini_and_binary_files() {
    let env = env();
    let cases: [(&str, &[u8], &[&str]); 4] = [
        (
            "json",
            br#"{"a": {"e": [], "l": ["<&>", 1e21, {"k": 1}], "f": 1.0, "s": "x"}, "n": null}"#,
            &[
                r#"["a"]"#,
                r#"["a"]["e"]"#,
                r#"["a"]["l"]"#,
                r#"["a"]["l"][1]"#,
                r#"["a"]["f"]"#,
                r#"["a"]["s"]"#,
                r#"["n"]"#,
            ],
        ),
        (
            "env",
            b"# c\nA=1\nB=hello world\n",
            &[r#"["A"]"#, r#"["B"]"#, r#"["C"]"#],
        ),
        (
            "ini",
            b"top = 1\n[s]\n; kc\nk = v\nn = 2\n",
            &[
                r#"["s"]"#,
                r#"["DEFAULT"]"#,
                r#"["DEFAULT"]["top"]"#,
                r#"["s"]["n"]"#,
                r#"["s"]["zz"]"#,
            ],
        ),
        (
            "bin",
            b"bin\x00ary\n\xff",
            &[r#"["data"]"#, r#"["x"]"#, r#"["data"][0]"#],
        ),
    ];
    let mut checks = Checks::new();
    for (ext, plaintext, paths) in cases {
        for file in both(&env, "f", ext, plaintext) {
            for path in paths {
                for ty in OUTPUT_TYPES {
                    checks.check(&format!("{file} {path} --output-type {ty}"), || {
                        same(
                            &env,
                            &decrypt_args(path, &file, &["--output-type", ty]),
                            None,
                        );
                    });
                }
            }
        }
    }
    checks.finish("--extract on each format");
}

/// sops replaces only the first document and writes the file: the other
/// documents of a YAML file follow the extracted map (JSON takes the first).
#[test]
fn extract_from_a_multi_document_yaml_file() {
    let env = env();
    let mut checks = Checks::new();
    for file in both(&env, "multi", "yaml", b"x: {y: 1}\nz: 2\n---\nb:\n  c: 2\n") {
        for path in [r#"["x"]"#, r#"["z"]"#, r#"["b"]"#] {
            for ty in ["yaml", "json"] {
                checks.check(&format!("{file} {path} {ty}"), || {
                    same(
                        &env,
                        &decrypt_args(path, &file, &["--output-type", ty]),
                        None,
                    );
                });
            }
        }
    }
    checks.finish("multi-document --extract");
}

#[test]
fn extract_path_errors_exit_as_sops() {
    let env = env();
    let [theirs, ours] = both(&env, "doc", "yaml", YAML.as_bytes());
    let mut checks = Checks::new();
    // Syntax errors (91), paths that do not fit (1): same code, no stdout.
    for path in [
        r#"["zz"]"#,
        r#"["a"]["s"][0]"#,
        r#"["a"]["b"][99]"#,
        r#"[""]"#,
        r#"["a"]]"#,
        r#"["a\"]"#,
        r#"[""#,
        "a",
        r#"["a""#,
        "[a]",
        "[1x]",
        "[ 1]",
        "[99999999999999999999]",
        r#"["a"]"junk"[0]"#,
        r#"xx["a"]"#,
    ] {
        for file in [&theirs, &ours] {
            checks.check(&format!("{file} {path}"), || {
                let (_, o) = same(&env, &decrypt_args(path, file, &[]), None);
                assert!(o.code != Some(0), "{}", o.describe());
            });
        }
    }
    // An empty path is no extraction: the whole file, as sops decrypts it
    // (git-sops keeps the file's own layout, so only the exit code compares).
    for path in ["", "[", "[["] {
        let t = env.sops().args(decrypt_args(path, &theirs, &[])).run().ok();
        let o = env
            .git_sops()
            .args(decrypt_args(path, &theirs, &[]))
            .run()
            .ok();
        let whole = env.git_sops().args(["decrypt", &theirs]).run().ok();
        assert_eq!(o.stdout, whole.stdout, "{path:?}");
        assert!(!t.stdout.is_empty());
    }
    // Where sops panics (Go exit 2) git-sops gives a clear error instead.
    for (path, code) in [
        (r#"["a"]["b"]["x"]"#, 1),
        (r#"["a"]["s"]["x"]"#, 1),
        (r#"["a"]["b"][-1]"#, 1),
        ("[]", 91),
        ("]", 91),
        (r#"["]"#, 91),
    ] {
        checks.check(&format!("sops panics on {path}"), || {
            let t = env.sops().args(decrypt_args(path, &theirs, &[])).run();
            assert_eq!(t.code, Some(2), "{}", t.describe());
            assert!(t.stderr.contains("panic"), "{}", t.describe());
            let o = env.git_sops().args(decrypt_args(path, &theirs, &[])).run();
            o.assert_no_panic();
            assert_eq!(o.code, Some(code), "{}", o.describe());
            assert!(o.stdout.is_empty());
        });
    }
    // An index into a map: sops prints its internal {key, value} item; git-sops
    // says the value there is not a list.
    let t = env
        .sops()
        .args(decrypt_args(r#"["a"][0]"#, &theirs, &[]))
        .run()
        .ok();
    assert!(
        t.stdout_str().starts_with("key: b\nvalue:"),
        "{}",
        t.describe()
    );
    let o = env
        .git_sops()
        .args(decrypt_args(r#"["a"][0]"#, &theirs, &[]))
        .run()
        .fails();
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("not a slice"), "{}", o.describe());
    checks.finish("--extract errors");
}

#[test]
fn extract_with_ignore_mac_and_from_stdin() {
    let env = env();
    let mut checks = Checks::new();
    for file in both(&env, "doc", "yaml", YAML.as_bytes()) {
        let text = String::from_utf8(env.read(&file)).unwrap();
        // Change one character of the MAC's ciphertext.
        let at = text.find("mac: ENC[AES256_GCM,data:").unwrap() + 25;
        let mut bad = text.clone().into_bytes();
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        let tampered = format!("tampered-{file}");
        env.write(&tampered, &bad);
        checks.check(&format!("{file}: MAC"), || {
            let (t, _) = same(&env, &decrypt_args(r#"["n"]"#, &tampered, &[]), None);
            assert_eq!(t.code, Some(51));
            same(
                &env,
                &decrypt_args(r#"["a"]["c"]"#, &tampered, &["--ignore-mac"]),
                None,
            );
        });
        checks.check(&format!("{file}: stdin"), || {
            for ty in ["yaml", "json"] {
                same(
                    &env,
                    &[
                        "decrypt",
                        "--input-type",
                        "yaml",
                        "--output-type",
                        ty,
                        "--extract",
                        r#"["a"]"#,
                    ],
                    Some(text.as_bytes()),
                );
            }
        });
    }
    checks.finish("--ignore-mac and stdin");
}

#[test]
fn filestatus_matches_sops() {
    let env = env();
    let mut files: Vec<(String, Vec<&str>)> = Vec::new();
    for (ext, plain) in [
        ("yaml", YAML.as_bytes()),
        ("json", br#"{"a": 1}"#.as_slice()),
        ("env", b"A=1\n".as_slice()),
        ("ini", b"[s]\nk = v\n".as_slice()),
        ("bin", b"\x00\x01 binary".as_slice()),
    ] {
        for f in both(&env, "st", ext, plain) {
            files.push((f, vec![]));
        }
        files.push((format!("st.plain.{ext}"), vec![]));
    }
    for (name, text) in [
        ("empty.yaml", ""),
        ("empty.env", ""),
        ("empty.ini", ""),
        ("empty.json", ""),
        ("comment.yaml", "# only a comment\n"),
        ("broken.yaml", "a: [\n"),
        ("list.yaml", "- a\n"),
        ("plain.json", "{\"a\": 1}"),
        ("nokeys.yaml", "a: 1\nsops:\n  version: 3.11.0\n  mac: x\n  lastmodified: \"2024-01-01T00:00:00Z\"\n"),
        ("notime.yaml", "a: 1\nsops:\n  version: 3.11.0\n  mac: x\n"),
        ("second.yaml", "a: 1\n---\nsops:\n  version: 3.11.0\n  mac: x\n  lastmodified: \"2024-01-01T00:00:00Z\"\n"),
    ] {
        env.write(name, text);
        files.push((name.to_string(), vec![]));
    }
    // Metadata without a MAC or a version: not encrypted, to sops.
    let enc = String::from_utf8(env.read("st.sops.yaml")).unwrap();
    for field in ["    mac:", "    version:"] {
        let cut: String = enc
            .lines()
            .filter(|l| !l.starts_with(field))
            .map(|l| format!("{l}\n"))
            .collect();
        let name = format!("cut{}.yaml", field.trim().trim_end_matches(':'));
        env.write(&name, cut);
        files.push((name, vec![]));
    }
    files.push(("missing.yaml".into(), vec![]));
    files.push(("st.sops.json".into(), vec!["--input-type", "yaml"]));
    files.push(("st.sops.yaml".into(), vec!["--input-type", "json"]));
    files.push(("st.sops.bin".into(), vec!["--input-type", "json"]));
    let mut checks = Checks::new();
    for (file, extra) in &files {
        checks.check(&format!("{file} {extra:?}"), || {
            let mut args = vec!["filestatus"];
            args.extend(extra.iter().copied());
            args.push(file);
            let (t, _) = same(&env, &args, None);
            if t.code == Some(0) {
                assert!(
                    t.stdout == b"{\"encrypted\":true}\n" || t.stdout == b"{\"encrypted\":false}\n",
                    "{}",
                    t.describe()
                );
            }
        });
    }
    checks.check("no file", || {
        let (t, _) = same(&env, &["filestatus"], None);
        assert_eq!(t.code, Some(100));
    });
    checks.finish("filestatus against sops");
}

/// In a git-sops working tree a protected file is plaintext on disk: filestatus
/// says so, as sops does about that file, and `decrypt --extract` fails as
/// `decrypt` does (it reads the file given, not the staged blob).
#[test]
fn protected_working_tree_file() {
    let repo = Repo::new();
    repo.write("secrets/db.yaml", "db:\n  password: hunter2\n");
    repo.commit_all("db");
    assert_eq!(repo.read("secrets/db.yaml"), b"db:\n  password: hunter2\n");
    let file = repo.dir.join("secrets/db.yaml");
    let file = file.to_str().unwrap();
    let sops = |args: &[&str]| repo.env.sops().current_dir(&repo.dir).args(args).run();
    let t = sops(&["filestatus", file]);
    let o = repo.sops(&["filestatus", file]);
    assert_eq!((t.code, &t.stdout), (o.code, &o.stdout));
    assert_eq!(o.stdout, b"{\"encrypted\":false}\n");
    // sops cannot read the working-tree copy (it is plaintext); git-sops
    // reads it as the plaintext it is, and gives what sops gives for the
    // committed blob.
    let t = sops(&["decrypt", "--extract", r#"["db"]["password"]"#, file]);
    assert_eq!(t.code, Some(1), "{}", t.describe());
    let o = repo.sops(&["decrypt", "--extract", r#"["db"]["password"]"#, file]);
    let blob = repo.blob("HEAD:secrets/db.yaml");
    repo.env.write("blob.yaml", &blob);
    let (t, _) = same(
        &repo.env,
        &decrypt_args(r#"["db"]["password"]"#, "blob.yaml", &[]),
        None,
    );
    assert_eq!(t.stdout, b"hunter2");
    assert_eq!((o.code, &o.stdout), (t.code, &t.stdout), "{}", o.describe());
    // The whole file: the working-tree plaintext, as decrypting the blob gives it.
    let whole = repo.sops(&["decrypt", file]).ok();
    assert_eq!(whole.stdout, b"db:\n  password: hunter2\n");
    let json = repo.sops(&["decrypt", "--output-type", "json", file]).ok();
    let (t, _) = same(
        &repo.env,
        &["decrypt", "--output-type", "json", "blob.yaml"],
        None,
    );
    assert_eq!(json.stdout, t.stdout);
}

#[test]
fn bash_completion_is_valid_and_lists_the_commands() {
    let env = Env::new();
    let out = env.git_sops().args(["completion", "bash"]).run().ok();
    let script = out.stdout_str();
    env.write("git-sops.bash", &script);
    env.tool("bash").args(["-n", "git-sops.bash"]).run().ok();
    // Completing `git-sops <TAB>` and, through git's hook, `git sops decrypt --ex<TAB>`.
    let probe = "source ./git-sops.bash\n\
        COMP_WORDS=(git-sops ''); COMP_CWORD=1; _git__sops git-sops '' git-sops; echo \"${COMPREPLY[*]}\"\n\
        words=(git sops decrypt --ex); cword=3; _git_sops; echo \"${COMPREPLY[*]}\"\n";
    env.write("probe.bash", probe);
    let out = env.tool("bash").arg("probe.bash").run().ok();
    let lines: Vec<&str> = out.stdout_str().leak().lines().collect();
    let top: Vec<&str> = lines[0].split_whitespace().collect();
    for cmd in [
        "encrypt",
        "decrypt",
        "filestatus",
        "completion",
        "man",
        "init",
        "check",
        "rotate",
        "updatekeys",
    ] {
        assert!(top.contains(&cmd), "{cmd} missing from {top:?}");
    }
    // The drivers git calls are not offered.
    assert!(
        !top.contains(&"filter-process") && !top.contains(&"smudge"),
        "{top:?}"
    );
    assert_eq!(lines[1], "--extract");
    for shell in ["zsh", "fish"] {
        let out = env.git_sops().args(["completion", shell]).run().ok();
        assert!(out.stdout_str().contains("filestatus"), "{shell}");
    }
}

#[test]
fn man_page_is_roff_naming_the_commands() {
    let env = Env::new();
    let out = env.git_sops().arg("man").run().ok();
    let page = out.stdout_str();
    assert!(page.contains(".TH git-sops 1"), "{page}");
    for cmd in [
        "ENCRYPT",
        "DECRYPT",
        "FILESTATUS",
        "COMPLETION",
        "INIT",
        "CHECK",
    ] {
        assert!(page.contains(&format!(".SH \"GIT SOPS {cmd}\"")), "{cmd}");
    }
    assert!(page.contains("\\-\\-extract"));
    assert!(!page.contains("filter\\-process"));
    // groff (when present) reads it without a warning.
    if let Some(groff) = which("groff") {
        env.write("git-sops.1", &page);
        let out = env
            .tool(groff.to_str().unwrap())
            .args(["-man", "-Tutf8", "-ww", "-z", "git-sops.1"])
            .run()
            .ok();
        assert!(out.stderr.is_empty(), "{}", out.describe());
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
