//! `git sops edit` against the real sops 3.11: the editor is a script, so an
//! edit is reproducible. What it must do: the same decrypted result as `sops
//! edit` with the same editor, on files sops wrote and files git-sops wrote;
//! every value the edit did not touch keeps its exact ciphertext (the raw
//! diff is the edited line plus `mac` and `lastmodified`); sops' exit codes
//! for an unchanged file and a failing editor; the plaintext only in a 0600
//! file in a private 0700 directory that is gone afterwards, also after a
//! signal; an edit that does not parse reopens the editor; new files get
//! keys from the flags or `.sops.yaml`; protected working-tree files open
//! directly.

mod common;

use common::{git_sops_path, AgeKey, Env, Output, Repo};

const YAML: &str = "db:\n  user: admin\n  password: hunter2-edit\n# the port\nport: 5432\ndebug: true\nratio: 1.5\n";
const JSON: &str = "{\n  \"db\": {\n    \"user\": \"admin\",\n    \"password\": \"hunter2-edit\"\n  },\n  \"port\": 5432,\n  \"debug\": true\n}\n";
const DOTENV: &str = "USER=admin\nPASSWORD=hunter2-edit\nPORT=5432\n";
const INI: &str = "[db]\nuser = admin\npassword = hunter2-edit\nport = 5432\n";

fn setup() -> (Env, AgeKey) {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    (env, key)
}

/// `name` encrypted by sops (`sops-NAME`) and by git-sops (`ours-NAME`).
fn encrypt_both(env: &Env, key: &AgeKey, name: &str, text: &str) {
    env.write(name, text);
    for (prefix, cmd) in [("sops-", env.sops()), ("ours-", env.git_sops())] {
        let out = cmd
            .args(["encrypt", "--age", &key.recipient, name])
            .run()
            .ok();
        env.write(format!("{prefix}{name}"), &out.stdout);
    }
    std::fs::remove_file(env.path(name)).expect("remove plaintext");
}

/// Lines of `after` that are not in `before`, as a sorted list of their keys
/// (`lastmodified` left out: within the same second it does not change).
fn changed_keys(before: &str, after: &str) -> Vec<String> {
    let old: std::collections::HashSet<&str> = before.lines().collect();
    let mut keys: Vec<String> = after
        .lines()
        .filter(|l| !old.contains(l))
        .map(|l| {
            l.trim_start()
                .trim_start_matches('"')
                .split(['"', ':', '=', ' '])
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|k| !k.ends_with("lastmodified"))
        .collect();
    keys.sort();
    keys
}

fn edit_with(env: &Env, cmd: common::Cmd, editor: &str, args: &[&str]) -> Output {
    let _ = env;
    cmd.env("EDITOR", editor).args(["edit"]).args(args).run()
}

#[test]
fn an_edit_changes_only_the_edited_value_and_decrypts_as_sops_edit_does() {
    let (env, key) = setup();
    let cases = [
        ("a.yaml", YAML, "password"),
        ("a.json", JSON, "password"),
        ("a.env", DOTENV, "PASSWORD"),
        ("a.ini", INI, "password"),
    ];
    // Only the password's value changes; the editor is the same for both tools.
    let editor = "sed -i s/hunter2-edit/changed-secret/";
    for (name, text, edited_key) in cases {
        encrypt_both(&env, &key, name, text);
        for prefix in ["sops-", "ours-"] {
            let file = format!("{prefix}{name}");
            let before = String::from_utf8(env.read(&file)).expect("utf8");
            // sops' own edit of a copy is the reference for the result.
            let reference = format!("ref-{file}");
            env.write(&reference, &before);
            edit_with(&env, env.sops(), editor, &[&reference]).ok();
            edit_with(&env, env.git_sops(), editor, &[&file]).ok();
            let after = String::from_utf8(env.read(&file)).expect("utf8");
            let decrypt = |f: &str| env.sops().args(["decrypt", f]).run().ok().stdout_str();
            let ours = decrypt(&file);
            assert!(ours.contains("changed-secret"), "{file}: {ours}");
            if prefix == "sops-" {
                assert_eq!(ours, decrypt(&reference), "{file}");
            }
            // The raw change: the edited value, the MAC and the timestamp.
            let mut want = vec![edited_key.to_string(), "mac".into()];
            if name.ends_with(".env") {
                want = vec![edited_key.to_string(), "sops_mac".into()];
            }
            want.sort();
            assert_eq!(changed_keys(&before, &after), want, "{file}:\n{after}");
        }
    }
}

#[test]
fn unchanged_files_and_failing_editors_exit_as_sops_does() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "a.yaml", YAML);
    for (editor, code) in [
        ("true", 200),                  // nothing changed
        ("false", 201),                 // the editor failed
        ("/nonexistent/editor-x", 201), // no such editor
    ] {
        for file in ["sops-a.yaml", "ours-a.yaml"] {
            let before = env.read(file);
            let theirs = edit_with(&env, env.sops(), editor, &[file]);
            let ours = edit_with(&env, env.git_sops(), editor, &[file]);
            ours.assert_no_panic();
            assert_eq!(theirs.code, Some(code), "{}", theirs.describe());
            assert_eq!(ours.code, theirs.code, "{editor}: {}", ours.describe());
            assert_eq!(env.read(file), before, "{editor}: the file was written");
        }
    }
    env.assert_no_private_dirs();
}

#[test]
fn the_plaintext_lives_in_a_private_file_that_is_removed() {
    let (mut env, key) = setup();
    encrypt_both(&env, &key, "a.yaml", YAML);
    // A tmpfs where there is one: $XDG_RUNTIME_DIR is preferred.
    let runtime = env.root.join("runtime");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    env.set("XDG_RUNTIME_DIR", runtime.display().to_string());
    let probe = env.path("probe");
    let editor = format!(
        "sh -c 'echo \"$1\" > {p}; stat -c %a \"$1\" \"$(dirname \"$1\")\" >> {p}; sed -i s/admin/root/ \"$1\"' sh",
        p = probe.display()
    );
    edit_with(&env, env.git_sops(), &editor, &["ours-a.yaml"]).ok();
    let seen = std::fs::read_to_string(&probe).expect("probe");
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines[0].starts_with(&runtime.display().to_string()),
        "{seen}"
    );
    assert!(
        lines[0].ends_with("/ours-a.yaml"),
        "named like the file: {seen}"
    );
    assert_eq!(&lines[1..], ["600", "700"], "{seen}");
    assert!(!std::path::Path::new(lines[0]).exists());
    let left = std::fs::read_dir(&runtime).expect("runtime").count();
    assert_eq!(left, 0, "the private directory is gone");
}

#[test]
fn a_signal_during_the_edit_removes_the_plaintext_and_writes_nothing() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "a.yaml", YAML);
    let before = env.read("ours-a.yaml");
    for signal in ["TERM", "HUP", "INT"] {
        let script = format!(
            r#"EDITOR="sh -c 'echo \"\$1\" > started; sed -i s/admin/root/ \"\$1\"; exec sleep 30' sh" "$1" edit ours-a.yaml &
pid=$!
while [ ! -s started ]; do sleep 0.05; done
kill -{signal} $pid
wait $pid
echo "rc=$?"
cat started"#
        );
        let out = env
            .tool("sh")
            .args(["-c", &script, "sh", &git_sops_path().display().to_string()])
            .run()
            .ok();
        let text = out.stdout_str();
        let code = match signal {
            "TERM" => 143,
            "HUP" => 129,
            _ => 130,
        };
        assert!(
            text.starts_with(&format!("rc={code}\n")),
            "{signal}: {}",
            out.describe()
        );
        let path = text.lines().nth(1).expect("path");
        assert!(
            !std::path::Path::new(path).exists(),
            "{path} left after SIG{signal}"
        );
        assert_eq!(
            env.read("ours-a.yaml"),
            before,
            "SIG{signal}: the file was written"
        );
        std::fs::remove_file(env.path("started")).expect("remove marker");
        env.assert_no_private_dirs();
    }
}

#[test]
fn an_invalid_edit_reopens_the_editor_and_without_a_terminal_writes_nothing() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "a.yaml", YAML);
    let before = env.read("ours-a.yaml");
    // Breaks the YAML on the first run, fixes it (and changes the port) on the second.
    let editor = format!(
        "sh -c 'if [ -e {c} ]; then sed -i -e \"/^bad:/d\" -e s/5432/6543/ \"$1\"; else touch {c}; echo \"bad: [\" >> \"$1\"; fi' sh",
        c = env.path("count").display()
    );
    // With an answer on standard input: the editor opens again, the fix is kept.
    let out = env
        .git_sops()
        .env("EDITOR", &editor)
        .args(["edit", "ours-a.yaml"])
        .stdin("\n")
        .run()
        .ok();
    assert!(out.stderr.contains("Press Enter"), "{}", out.describe());
    let plain = env.git_sops().args(["decrypt", "ours-a.yaml"]).run().ok();
    assert!(
        plain.stdout_str().contains("port: 6543\n"),
        "{}",
        plain.describe()
    );
    // Without one (no terminal): nothing is written, nothing is left.
    std::fs::remove_file(env.path("count")).expect("reset");
    let current = env.read("ours-a.yaml");
    let out = env
        .git_sops()
        .env("EDITOR", &editor)
        .args(["edit", "ours-a.yaml"])
        .run();
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert_eq!(env.read("ours-a.yaml"), current);
    assert_ne!(current, before);
    env.assert_no_private_dirs();
}

#[test]
fn a_new_file_starts_from_sops_example_with_keys_from_flags_or_sops_yaml() {
    let (env, key) = setup();
    let editor = "sed -i s/example_value/my-value/";
    for name in ["new.yaml", "new.json", "new.env", "new.ini"] {
        edit_with(
            &env,
            env.sops(),
            editor,
            &["--age", &key.recipient, &format!("sops-{name}")],
        )
        .ok();
        edit_with(
            &env,
            env.git_sops(),
            editor,
            &["--age", &key.recipient, &format!("ours-{name}")],
        )
        .ok();
        let decrypt = |f: String| env.sops().args(["decrypt", &f]).run().ok().stdout_str();
        let ours = decrypt(format!("ours-{name}"));
        assert!(ours.contains("my-value"), "{name}: {ours}");
        assert_eq!(ours, decrypt(format!("sops-{name}")), "{name}");
    }
    // Keys from .sops.yaml when no flag names any.
    env.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: ruled/.*\n    age: {}\n",
            key.recipient
        ),
    );
    std::fs::create_dir_all(env.path("ruled")).expect("mkdir");
    edit_with(&env, env.git_sops(), editor, &["ruled/x.yaml"]).ok();
    let out = env.sops().args(["decrypt", "ruled/x.yaml"]).run().ok();
    assert!(out.stdout_str().contains("my-value"));
    // No rule for the path: refused before the editor opens, as by sops.
    let theirs = edit_with(&env, env.sops(), editor, &["elsewhere.yaml"]);
    let ours = edit_with(&env, env.git_sops(), editor, &["elsewhere.yaml"]);
    assert_eq!(
        ours.code,
        theirs.code,
        "{}\n{}",
        ours.describe(),
        theirs.describe()
    );
    assert!(!env.path("elsewhere.yaml").exists());
    env.assert_no_private_dirs();
}

#[test]
fn in_a_working_tree_the_edit_is_one_line_in_the_commit() {
    let repo = Repo::new();
    repo.write("secrets/app.yaml", YAML);
    // A SOPS file at a path the filter does not protect stays ciphertext on disk.
    let enc = repo
        .sops(&["encrypt", "--age", &repo.key.recipient, "secrets/app.yaml"])
        .ok();
    repo.write("config/enc.yaml", &enc.stdout);
    repo.commit_all("secrets");
    // A protected file is plaintext: the editor opens it directly.
    let out = repo
        .env
        .git_sops()
        .current_dir(&repo.dir)
        .env("EDITOR", "sed -i s/hunter2-edit/changed-secret/")
        .args(["edit", "secrets/app.yaml"])
        .run()
        .ok();
    assert!(
        out.stderr.contains("already plaintext"),
        "{}",
        out.describe()
    );
    assert!(repo.text("secrets/app.yaml").contains("changed-secret"));
    // The ciphertext file is edited as ciphertext.
    repo.env
        .git_sops()
        .current_dir(&repo.dir)
        .env("EDITOR", "sed -i s/hunter2-edit/changed-secret/")
        .args(["edit", "config/enc.yaml"])
        .run()
        .ok();
    repo.commit_all("edit");
    for path in ["secrets/app.yaml", "config/enc.yaml"] {
        let before = repo.blob_text(&format!("HEAD~1:{path}"));
        let after = repo.blob_text(&format!("HEAD:{path}"));
        assert_eq!(
            changed_keys(&before, &after),
            ["mac", "password"],
            "{path}:\n{after}"
        );
    }
    // No plaintext in any object.
    let all = repo
        .git(&["cat-file", "--batch-all-objects", "--batch"])
        .ok()
        .stdout;
    let all = String::from_utf8_lossy(&all);
    assert!(!all.contains("hunter2-edit") && !all.contains("changed-secret"));
}

#[test]
fn show_master_keys_puts_the_metadata_in_the_editor_and_new_recipients_can_open_the_file() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "a.yaml", YAML);
    // The metadata is in the file the editor gets; a value edit works as
    // without -s. (sops 3.11 itself drops an edit made under -s: it encrypts
    // the tree it had before the editor ran, so it is no reference here.)
    let editor = "sh -c 'grep -q \"^sops:\" \"$1\" && sed -i s/admin/root/ \"$1\"' sh";
    env.write("ref.yaml", env.read("sops-a.yaml"));
    edit_with(&env, env.sops(), editor, &["-s", "ref.yaml"]).ok();
    edit_with(&env, env.git_sops(), editor, &["-s", "sops-a.yaml"]).ok();
    let decrypt = |f: &str| env.sops().args(["decrypt", f]).run().ok().stdout_str();
    assert!(
        decrypt("ref.yaml").contains("user: admin"),
        "sops kept -s edits now"
    );
    let ours = decrypt("sops-a.yaml");
    assert_eq!(
        ours,
        decrypt("ref.yaml").replace("user: admin", "user: root")
    );
    // A recipient added in the metadata gets the data key (sops would keep the
    // `enc` as typed, and the new key could not open the file).
    let other = AgeKey::generate();
    let add = format!(
        "sed -i -e \"/^    age:/a\\\\        - recipient: {}\\n          enc: placeholder\"",
        other.recipient
    );
    let values = |bytes: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .take_while(|l| !l.starts_with("sops:"))
            .filter(|l| l.contains("ENC["))
            .map(str::to_string)
            .collect()
    };
    let before_values = values(&env.read("sops-a.yaml"));
    assert!(!before_values.is_empty());
    // (sops' layout: the metadata indented by four.)
    edit_with(&env, env.git_sops(), &add, &["-s", "sops-a.yaml"]).ok();
    let mut only_other = Env::with_keys(&[&other]);
    only_other.set("HOME", env.home.display().to_string());
    only_other.write("f.yaml", env.read("sops-a.yaml"));
    let out = only_other.sops().args(["decrypt", "f.yaml"]).run().ok();
    assert!(
        out.stdout_str().contains("hunter2-edit"),
        "{}",
        out.describe()
    );
    // Values kept their ciphertext through the re-wrap.
    let after = values(&env.read("sops-a.yaml"));
    assert_eq!(after, before_values);
    // Removing the metadata is an edit that cannot be encrypted: nothing is written.
    let current = env.read("ours-a.yaml");
    let out = edit_with(
        &env,
        env.git_sops(),
        "sed -i /^sops:/,$d",
        &["-s", "ours-a.yaml"],
    );
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert_eq!(env.read("ours-a.yaml"), current);
    env.assert_no_private_dirs();
}

#[test]
fn a_file_that_does_not_authenticate_needs_ignore_mac_as_with_sops() {
    let (env, key) = setup();
    encrypt_both(&env, &key, "a.yaml", YAML);
    for file in ["sops-a.yaml", "ours-a.yaml"] {
        // Remove one entry: the MAC no longer matches.
        let text = String::from_utf8(env.read(file)).expect("utf8");
        let broken: String = text
            .lines()
            .filter(|l| !l.starts_with("ratio:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let (t, o) = (format!("t-{file}"), format!("o-{file}"));
        env.write(&t, &broken);
        env.write(&o, &broken);
        let editor = "sed -i s/admin/root/";
        let theirs = edit_with(&env, env.sops(), editor, &[&t]);
        let ours = edit_with(&env, env.git_sops(), editor, &[&o]);
        assert_eq!(theirs.code, Some(51), "{}", theirs.describe());
        assert_eq!(ours.code, theirs.code, "{}", ours.describe());
        assert_eq!(env.read(&o), broken.as_bytes());
        // With --ignore-mac (and the format named explicitly) it opens, and
        // the result authenticates again.
        let theirs = edit_with(
            &env,
            env.sops(),
            editor,
            &["--ignore-mac", "--input-type", "yaml", &t],
        );
        let ours = edit_with(
            &env,
            env.git_sops(),
            editor,
            &["--ignore-mac", "--input-type", "yaml", &o],
        );
        assert_eq!(
            (ours.code, theirs.code),
            (Some(0), Some(0)),
            "{}",
            ours.describe()
        );
        let decrypt = |f: &str| env.sops().args(["decrypt", f]).run().ok().stdout_str();
        assert_eq!(decrypt(&o), decrypt(&t));
    }
}
