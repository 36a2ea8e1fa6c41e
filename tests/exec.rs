//! `git sops exec-env` and `git sops exec-file` against the real sops 3.11:
//! the same child output and exit codes on files sops wrote and on files
//! git-sops wrote; the plaintext only in the child's environment or in a FIFO
//! (or a 0600 file) in a private directory that is gone afterwards, also when
//! git-sops is stopped by a signal; several files for exec-env; protected
//! plaintext files in a git working tree.

mod common;

use common::{git_sops_path, AgeKey, Env, Output, Repo};

const PLAIN: &str = "foo: bar\nbar: |-\n  baz\n  bam\nport: 5432\nratio: 1.5\ndebug: true\nnothing: null\npassword: hunter2-exec\n";
const SECRET: &str = "hunter2-exec";

/// An environment holding one age key, with `PLAIN` encrypted by sops
/// (`sops.yaml`) and by git-sops (`ours.yaml`).
fn setup() -> (Env, AgeKey) {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    env.write("plain.yaml", PLAIN);
    let enc = env
        .sops()
        .args(["encrypt", "--age", &key.recipient, "plain.yaml"])
        .run()
        .ok();
    env.write("sops.yaml", &enc.stdout);
    let enc = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "plain.yaml"])
        .run()
        .ok();
    env.write("ours.yaml", &enc.stdout);
    std::fs::remove_file(env.path("plain.yaml")).expect("remove plaintext");
    (env, key)
}

fn both(env: &Env, args: &[&str]) -> (Output, Output) {
    let theirs = env.sops().args(args).run();
    let ours = env.git_sops().args(args).run();
    ours.assert_no_panic();
    (theirs, ours)
}

/// Same stdout bytes and exit code as sops.
fn same(env: &Env, args: &[&str]) -> Output {
    let (theirs, ours) = both(env, args);
    assert_eq!(
        (ours.code, String::from_utf8_lossy(&ours.stdout)),
        (theirs.code, String::from_utf8_lossy(&theirs.stdout)),
        "git-sops and sops differ on {args:?}:\n{}\n{}",
        ours.describe(),
        theirs.describe()
    );
    ours
}

#[test]
fn exec_env_gives_the_child_what_sops_gives_it() {
    let (env, _key) = setup();
    for file in ["sops.yaml", "ours.yaml"] {
        // Strings raw (a multi-line one too), other scalars as sops writes them.
        let script =
            r#"printf '%s|' "$foo" "$bar" "$port" "$ratio" "$debug" "$nothing" "$password""#;
        let out = same(&env, &["exec-env", file, script]);
        assert_eq!(
            out.stdout_str(),
            "bar|baz\nbam|5432|1.5|true|<nil>|hunter2-exec|"
        );
        // The child's exit status is the command's.
        same(&env, &["exec-env", file, "exit 3"]);
        // A signal that ends the child: 255, as sops.
        let out = same(&env, &["exec-env", file, "kill -TERM $$"]);
        assert_eq!(out.code, Some(255));
        // The values are in the environment, not on any command line.
        let out = env
            .git_sops()
            .args([
                "exec-env",
                file,
                "cat /proc/$$/cmdline; cat /proc/$PPID/cmdline",
            ])
            .run()
            .ok();
        assert!(!out.stdout_str().contains(SECRET), "{}", out.describe());
        // --pristine: nothing inherited (sh adds PWD, SHLVL and _ itself).
        let script = "env | grep -v -E '^(PWD|SHLVL|_)=' | sort";
        let out = same(&env, &["exec-env", "--pristine", file, script]);
        assert!(!out.stdout_str().contains("HOME="), "{}", out.describe());
        // --same-process: git-sops becomes the command.
        same(
            &env,
            &["exec-env", "--same-process", file, "echo \"$foo\"; exit 4"],
        );
    }
    env.assert_no_private_dirs();
}

#[test]
fn exec_env_refuses_what_sops_refuses() {
    let (env, key) = setup();
    env.write("nested.yaml", "top: x\nnested:\n  a: 1\n");
    let enc = env
        .sops()
        .args(["encrypt", "--age", &key.recipient, "nested.yaml"])
        .run()
        .ok();
    env.write("nested.enc.yaml", &enc.stdout);
    env.write("plain.yaml", "a: b\n");
    for (file, code) in [
        ("nested.enc.yaml", 1), // a complex value
        ("plain.yaml", 1),      // not encrypted
        ("missing.yaml", 2),    // cannot be read
    ] {
        let out = same(&env, &["exec-env", file, "echo ran"]);
        assert_eq!(out.code, Some(code), "{}", out.describe());
        assert!(out.stdout.is_empty(), "the command ran: {}", out.describe());
    }
    let out = env
        .git_sops()
        .args(["exec-env", "nested.enc.yaml", "true"])
        .run();
    assert!(
        out.stderr
            .contains("cannot use complex value in environment; offending key nested"),
        "{}",
        out.describe()
    );
}

#[test]
fn exec_env_takes_several_files_and_the_later_one_wins() {
    let (env, key) = setup();
    env.write("override.env", "password=from-override\nextra=1\n");
    let enc = env
        .sops()
        .args(["encrypt", "--age", &key.recipient, "override.env"])
        .run()
        .ok();
    env.write("override.enc.env", &enc.stdout);
    let out = env
        .git_sops()
        .args([
            "exec-env",
            "sops.yaml",
            "override.enc.env",
            r#"printf '%s|' "$foo" "$password" "$extra""#,
        ])
        .run()
        .ok();
    assert_eq!(out.stdout_str(), "bar|from-override|1|");
    // sops' own form, with `--` before the file, is the same thing.
    let out = env
        .git_sops()
        .args(["exec-env", "--", "sops.yaml", "echo \"$foo\""])
        .run()
        .ok();
    assert_eq!(out.stdout_str(), "bar\n");
}

#[test]
fn exec_file_gives_the_child_what_sops_gives_it() {
    let (env, _key) = setup();
    for file in ["sops.yaml", "ours.yaml"] {
        if file == "sops.yaml" {
            same(&env, &["exec-file", file, "cat {}"]);
            same(&env, &["exec-file", "--no-fifo", file, "cat {}"]);
        } else {
            // sops re-indents YAML it decrypts; git-sops gives back the file
            // as it was written (docs/sops-format.md), in a FIFO or a file.
            for mode in [&["--no-fifo"][..], &[]] {
                let out = env
                    .git_sops()
                    .arg("exec-file")
                    .args(mode)
                    .args([file, "cat {}"])
                    .run()
                    .ok();
                assert_eq!(out.stdout_str(), PLAIN);
            }
        }
        same(
            &env,
            &["exec-file", "--output-type", "json", file, "cat {}"],
        );
        same(&env, &["exec-file", file, "exit 7"]);
        // A FIFO by default, in a directory only we can enter.
        let out = env
            .git_sops()
            .args([
                "exec-file",
                file,
                "test -p {} && stat -c %a $(dirname {}) && cat {} > /dev/null",
            ])
            .run()
            .ok();
        assert_eq!(out.stdout_str(), "700\n");
        // --no-fifo: a 0600 regular file, named as asked.
        let out = env
            .git_sops()
            .args([
                "exec-file",
                "--no-fifo",
                "--filename",
                "foobar",
                file,
                "test -f {} && stat -c %a {} && echo {}",
            ])
            .run()
            .ok();
        let text = out.stdout_str();
        assert!(
            text.starts_with("600\n") && text.ends_with("/foobar\n"),
            "{text}"
        );
        // A command that never reads the FIFO does not hang git-sops.
        env.git_sops().args(["exec-file", file, "true"]).run().ok();
    }
    env.assert_no_private_dirs();
}

#[test]
fn exec_file_names_stay_inside_the_private_directory() {
    let (env, _key) = setup();
    for name in ["../escaped", "a/b", "..", ""] {
        let out = env
            .git_sops()
            .args([
                "exec-file",
                "--no-fifo",
                "--filename",
                name,
                "sops.yaml",
                "echo {}",
            ])
            .run();
        assert_eq!(out.code, Some(2), "{name:?}: {}", out.describe());
        assert!(out.stdout.is_empty());
    }
    assert!(!env.root.join("escaped").exists());
    env.assert_no_private_dirs();
}

#[test]
fn a_signal_to_git_sops_removes_the_plaintext() {
    let (env, _key) = setup();
    // The FIFO (the default) and the 0600 file both go.
    for (mode, signal) in [
        ("--no-fifo", "TERM"),
        ("--no-fifo", "HUP"),
        ("--no-fifo", "INT"),
        ("--filename=fifo", "TERM"),
        ("--filename=fifo", "INT"),
    ] {
        // git-sops runs in the background of a shell that signals it once the
        // command has started (the command reports the plaintext's path).
        let script = format!(
            r#""$1" exec-file {mode} sops.yaml 'echo {{}} > started; exec sleep 30' &
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
        assert!(text.starts_with("rc=255\n"), "{signal}: {}", out.describe());
        let path = text.lines().nth(1).expect("path");
        assert!(
            !std::path::Path::new(path).exists(),
            "{path} is still there after SIG{signal}"
        );
        std::fs::remove_file(env.path("started")).expect("remove marker");
        env.assert_no_private_dirs();
    }
}

#[test]
fn run_as_another_user() {
    let (env, _key) = setup();
    let root = env.tool("id").arg("-u").run().ok().stdout_str() == "0\n";
    if !root {
        // Only root may switch users; an unknown user is refused either way.
        let out = env
            .git_sops()
            .args([
                "exec-env",
                "--user",
                "no-such-user-x",
                "sops.yaml",
                "echo ran",
            ])
            .run();
        assert_eq!(out.code, Some(2), "{}", out.describe());
        assert!(out.stdout.is_empty());
        return;
    }
    let out = env
        .git_sops()
        .args([
            "exec-env",
            "--user",
            "nobody",
            "sops.yaml",
            "id -un; echo \"$foo\"",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout_str(), "nobody\nbar\n");
    // The FIFO is given to that user, who can read it; nobody else can.
    let out = env
        .git_sops()
        .args([
            "exec-file",
            "--user",
            "nobody",
            "sops.yaml",
            "id -un; head -1 {}",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout_str(), "nobody\nfoo: bar\n");
    // That user owns the private directory: a symlink put in the FIFO's place
    // must not make git-sops (root) write the plaintext into its target.
    env.write("victim", "root's own file\n");
    let victim = env.path("victim");
    let out = env
        .git_sops()
        .args([
            "exec-file",
            "--user",
            "nobody",
            "sops.yaml",
            &format!("rm {{}}; ln -s '{}' {{}}; sleep 0.5", victim.display()),
        ])
        .run();
    out.assert_no_panic();
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "root's own file\n",
        "the plaintext was written through the symlink:\n{}",
        out.describe()
    );
    env.assert_no_private_dirs();
}

#[test]
fn protected_files_in_a_working_tree_are_used_as_they_are() {
    let repo = Repo::new();
    repo.write("secrets/app.yaml", PLAIN);
    repo.commit_all("secrets");
    // The working-tree copy is plaintext (the filter smudged it).
    assert_eq!(repo.text("secrets/app.yaml"), PLAIN);
    let out = repo.sops(&["exec-env", "secrets/app.yaml", "echo \"$password\""]);
    assert_eq!(out.ok().stdout_str(), "hunter2-exec\n");
    let out = repo.sops(&["exec-file", "secrets/app.yaml", "cat {}"]);
    assert_eq!(out.ok().stdout_str(), PLAIN);
    // A file that is neither protected nor encrypted is refused, as by sops.
    repo.write("notes.yaml", "a: b\n");
    let out = repo.sops(&["exec-env", "notes.yaml", "echo ran"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
}

#[test]
fn a_large_plaintext_goes_through_the_fifo_whole() {
    let (env, key) = setup();
    // More than a pipe holds, read by a command that starts late.
    let big: String = (0..4000)
        .map(|i| format!("key_{i:04}: value-{i:04}-{}\n", "x".repeat(40)))
        .collect();
    env.write("big.yaml", &big);
    let enc = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "big.yaml"])
        .run()
        .ok();
    env.write("big.enc.yaml", &enc.stdout);
    let out = env
        .git_sops()
        .args(["exec-file", "big.enc.yaml", "sleep 0.3; cat {}"])
        .run()
        .ok();
    assert!(big.len() > 200_000);
    assert_eq!(out.stdout_str(), big);
    // A reader that stops early ends the writing, not git-sops.
    let out = env
        .git_sops()
        .args(["exec-file", "big.enc.yaml", "head -c 10 {}"])
        .run()
        .ok();
    assert_eq!(out.stdout_str(), &big[..10]);
    env.assert_no_private_dirs();
}
