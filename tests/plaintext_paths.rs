//! Every way plaintext could reach git, closed: each test is one way people
//! actually work (a locked user editing ciphertext, `git mv` out of the
//! protected folder, emptying `.gitattributes`, `git add -p`, `git am`, a
//! merge, the textconv cache, pushes of tags and notes, offboarding), tried
//! with real git in isolated HOMEs (`git sops install --global`, as
//! ./install.sh does, then `git init` + `git sops init`), and each ends by
//! proving that no test secret reached an object or a ref that should not
//! hold it.

mod common;

use std::path::{Path, PathBuf};

use common::{AgeKey, Cmd, Env, Output};

const DB: &str = "db:\n  user: admin\n  password: hunter2-db-secret\napi_token: tok-live-4f9a8b7c\nregion: eu-west-1\n";
const APP_ENV: &str = "STRIPE_KEY=sk_live_env_0a9b8c\nDEBUG=false\n";

/// The same shapes with values that tests deliberately put into objects in
/// plaintext: at an unprotected path, with `--no-verify`, or through a patch
/// (git writes a blob before any hook runs; a refused commit leaves it
/// unreachable). They are not among [`SECRETS`], which no test may leak.
const BYPASS_DB: &str = "db:\n  user: admin\n  password: bypass-pw-0001\napi_token: bypass-tok-0002\nregion: eu-west-1\n";
const BYPASS_ENV: &str = "STRIPE_KEY=bypass-env-0003\nDEBUG=false\n";

/// Values that must never be found in an object store.
const SECRETS: [&str; 4] = [
    "hunter2-db-secret",
    "tok-live-4f9a8b7c",
    "sk_live_env_0a9b8c",
    "NEWSECRET-7d1e",
];

/// A user: an isolated HOME with the git drivers installed globally.
struct User {
    env: Env,
}

impl User {
    fn new(key: Option<&AgeKey>) -> User {
        let mut env = match key {
            Some(k) => Env::with_keys(&[k]),
            None => Env::new(),
        };
        env.use_git();
        let user = User { env };
        user.sops(&user.env.work, &["install", "--global"]).ok();
        user
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Output {
        self.git_cmd(dir, args).run()
    }

    fn sops(&self, dir: &Path, args: &[&str]) -> Output {
        self.sops_cmd(dir, args).run()
    }

    fn git_cmd(&self, dir: &Path, args: &[&str]) -> Cmd {
        self.env.tool("git").current_dir(dir).args(args)
    }

    fn sops_cmd(&self, dir: &Path, args: &[&str]) -> Cmd {
        self.env.git_sops().current_dir(dir).args(args)
    }

    /// `git init`, `git sops init`, and a first commit of `secrets/db.yaml` and
    /// `secrets/app.env`.
    fn repo(&self, name: &str) -> PathBuf {
        self.repo_with(name, DB, APP_ENV)
    }

    /// A repository whose secrets a test will deliberately leak.
    fn repo_bypass(&self, name: &str) -> PathBuf {
        self.repo_with(name, BYPASS_DB, BYPASS_ENV)
    }

    fn repo_with(&self, name: &str, db: &str, env: &str) -> PathBuf {
        let dir = self.env.work.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        self.git(&dir, &["init", "-q", "-b", "main"]).ok();
        self.sops(&dir, &["init"]).ok();
        write(&dir, "secrets/db.yaml", db);
        write(&dir, "secrets/app.env", env);
        write(&dir, "README", "docs\n");
        self.git(&dir, &["add", "-A"]).ok();
        self.git(&dir, &["commit", "-q", "-m", "secrets"]).ok();
        dir
    }

    fn clone(&self, from: &Path, name: &str) -> PathBuf {
        let dir = self.env.work.join(name);
        self.git(
            &self.env.work,
            &["clone", "-q", &from.display().to_string(), name],
        )
        .ok();
        dir
    }

    fn head(&self, dir: &Path) -> String {
        self.git(dir, &["rev-parse", "HEAD"])
            .ok()
            .stdout_str()
            .trim()
            .to_string()
    }

    fn blob(&self, dir: &Path, spec: &str) -> String {
        String::from_utf8_lossy(&self.git(dir, &["cat-file", "-p", spec]).ok().stdout).into_owned()
    }

    /// `git sops check ... --format json`: the exit code and the findings' (path, kind).
    fn check(&self, dir: &Path, args: &[&str]) -> (Option<i32>, Vec<(String, String)>) {
        let mut all = vec!["check", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.sops(dir, &all);
        out.assert_no_panic();
        assert_no_secret_in(&out);
        let findings: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", out.describe()));
        let pairs = findings
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap_or_default().to_string(),
                    f["kind"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (out.code, pairs)
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).expect("read")
}

fn assert_no_secret_in(out: &Output) {
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr);
    for s in SECRETS {
        assert!(
            !all.contains(s),
            "a secret in the output of {}",
            out.describe()
        );
    }
}

/// No test secret in any object (hence any ref, note or stash) of the repository at `dir`.
fn assert_store_clean(user: &User, dir: &Path) {
    let objects = user
        .git(dir, &["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    let objects = String::from_utf8_lossy(&objects.stdout);
    for s in SECRETS {
        assert!(
            !objects.contains(s),
            "plaintext {s:?} reached the object store of {}",
            dir.display()
        );
    }
    // Every ref points into the objects above; git's textconv cache, where a
    // test makes one, is among them.
}

fn has(findings: &[(String, String)], path: &str, kind: &str) -> bool {
    findings.iter().any(|(p, k)| p == path && k == kind)
}

// ---------------------------------------------------------------------------------
// 1, 2: clean stores a file as-is only when it is intact SOPS ciphertext
// ---------------------------------------------------------------------------------

#[test]
fn clean_refuses_plaintext_added_to_ciphertext_by_a_user_without_the_key() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let origin = alice.repo("origin");
    let bob = User::new(None);
    let clone = bob.clone(&origin, "locked");
    assert!(read(&clone, "secrets/db.yaml").contains("ENC[AES256_GCM"));
    // No `git sops init` in this clone: no hook, only the global filter.
    assert!(!clone.join(".git/hooks/pre-commit").exists());
    let head = bob.head(&clone);

    let cases: Vec<(&str, String)> = vec![
        (
            "a new value in a ciphertext file",
            read(&clone, "secrets/db.yaml").replacen("db:", "new_token: NEWSECRET-7d1e\ndb:", 1),
        ),
        ("an ENC value replaced by plaintext", {
            let t = read(&clone, "secrets/db.yaml");
            let start = t.find("password: ENC[").expect("enc") + "password: ".len();
            let end = start + t[start..].find('\n').expect("eol");
            format!("{}NEWSECRET-7d1e{}", &t[..start], &t[end..])
        }),
        (
            "a plaintext comment in a ciphertext file",
            read(&clone, "secrets/db.yaml").replacen("db:", "# NEWSECRET-7d1e\ndb:", 1),
        ),
        (
            "a sops entry that is not metadata",
            "password: NEWSECRET-7d1e\nsops: null\n".to_string(),
        ),
        (
            "a second document with a sops entry",
            format!(
                "password: NEWSECRET-7d1e\n---\n{}",
                read(&clone, "secrets/db.yaml")
            ),
        ),
        ("ciphertext whose metadata was removed", {
            let t = read(&clone, "secrets/db.yaml");
            t[..t.find("sops:").expect("sops")].to_string()
        }),
    ];
    for (what, text) in cases {
        write(&clone, "secrets/db.yaml", &text);
        let out = bob.git(&clone, &["commit", "-qam", "x"]);
        out.assert_no_panic();
        assert!(!out.success(), "{what}: committed\n{}", out.describe());
        assert!(
            out.stderr.contains("secrets/db.yaml") && out.stderr.contains("nothing was staged"),
            "{what}: {}",
            out.describe()
        );
        assert_no_secret_in(&out);
        assert_eq!(bob.head(&clone), head, "{what}");
        // git stash cleans the working tree too: refused the same way.
        let stash = bob.git(&clone, &["stash"]);
        assert!(!stash.success(), "{what}: stashed\n{}", stash.describe());
        bob.git(&clone, &["checkout", "--", "secrets/db.yaml"]).ok();
    }
    // The same for JSON and dotenv: a reserved `sops` entry / `sops_` key over plaintext.
    write(
        &clone,
        "secrets/new.json",
        "{\"password\": \"NEWSECRET-7d1e\", \"sops\": null}\n",
    );
    write(
        &clone,
        "secrets/new.env",
        "TOKEN=NEWSECRET-7d1e\nsops_mode=x\n",
    );
    for f in ["secrets/new.json", "secrets/new.env"] {
        let out = bob.git(&clone, &["add", f]);
        assert!(!out.success(), "{f}: {}", out.describe());
        assert!(out.stderr.contains("reserved"), "{f}: {}", out.describe());
    }
    // Untouched ciphertext still passes (locked clones keep working).
    write(&clone, "other.txt", "x\n");
    bob.git(&clone, &["add", "-A"]).fails();
    std::fs::remove_file(clone.join("secrets/new.json")).expect("rm");
    std::fs::remove_file(clone.join("secrets/new.env")).expect("rm");
    bob.git(&clone, &["add", "-A"]).ok();
    bob.git(&clone, &["commit", "-qm", "other"]).ok();
    assert_store_clean(&bob, &clone);
}

#[test]
fn clean_encrypts_plaintext_added_to_ciphertext_by_a_key_holder() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    let blob = alice.blob(&repo, "HEAD:secrets/db.yaml");
    // Ciphertext in the working tree (say, written by `sops`), plus a new value.
    write(
        &repo,
        "secrets/db.yaml",
        &blob.replacen("db:", "new_token: NEWSECRET-7d1e\ndb:", 1),
    );
    let out = alice.git(&repo, &["add", "secrets/db.yaml"]).ok();
    assert!(
        out.stderr.contains("encrypted 1 plaintext"),
        "{}",
        out.describe()
    );
    let staged = alice.blob(&repo, ":secrets/db.yaml");
    assert!(!staged.contains("NEWSECRET"));
    // Every value it already had keeps its exact ciphertext.
    for line in blob
        .lines()
        .filter(|l| l.contains("ENC[") && !l.contains("mac:"))
    {
        assert!(staged.contains(line), "{line} lost its ciphertext");
    }
    let plain = alice
        .sops_cmd(&repo, &["decrypt", "--input-type", "yaml"])
        .stdin(staged.as_bytes())
        .run()
        .ok()
        .stdout_str();
    assert!(
        plain.starts_with("new_token: NEWSECRET-7d1e\ndb:"),
        "{plain}"
    );
    // A file whose MAC does not match is refused (an edit inside ENC[...]).
    let t = blob.clone();
    let i = t.find("password: ENC[AES256_GCM,data:").expect("enc") + 31;
    let flipped = if &t[i..i + 1] == "A" { "B" } else { "A" };
    let tampered = format!("{}{}{}", &t[..i], flipped, &t[i + 1..]);
    write(&repo, "secrets/db.yaml", &tampered);
    let out = alice.git(&repo, &["add", "secrets/db.yaml"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("does not authenticate"),
        "{}",
        out.describe()
    );
    // The one-shot filter refuses each kind of tampering with the exit code
    // sops gives the same file: a changed value, a removed entry (the MAC no
    // longer matches), a changed MAC.
    let without_entry: String = t
        .lines()
        .filter(|l| !l.starts_with("api_token:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let m = t.find("mac: ENC[AES256_GCM,data:").expect("mac") + 25;
    let mac_flipped = if &t[m..m + 1] == "A" { "B" } else { "A" };
    let bad_mac = format!("{}{}{}", &t[..m], mac_flipped, &t[m + 1..]);
    for (what, file, code) in [
        ("a changed value", &tampered, 25),
        ("a removed entry", &without_entry, 51),
        ("a changed MAC", &bad_mac, 51),
    ] {
        let reference = alice
            .env
            .sops()
            .current_dir(&repo)
            .args([
                "decrypt",
                "--input-type",
                "yaml",
                "--output-type",
                "yaml",
                "/dev/stdin",
            ])
            .stdin(file.as_bytes())
            .run();
        assert_eq!(
            reference.code,
            Some(code),
            "{what}: {}",
            reference.describe()
        );
        let out = alice
            .sops_cmd(&repo, &["clean", "secrets/db.yaml"])
            .stdin(file.as_bytes())
            .run();
        assert_eq!(out.code, reference.code, "{what}: {}", out.describe());
        assert!(out.stdout.is_empty(), "{what}: {}", out.describe());
    }
    alice
        .git(&repo, &["checkout", "HEAD", "--", "secrets/db.yaml"])
        .ok();
    assert_store_clean(&alice, &repo);
}

// ---------------------------------------------------------------------------------
// 3, 4: the guard remembers what the parent protected
// ---------------------------------------------------------------------------------

/// Commit with the hook; on refusal, commit again with --no-verify (the
/// bypass the history check and the server hook must still catch). Returns the
/// hook's output.
fn commit_refused_then_forced(user: &User, dir: &Path, msg: &str) -> Output {
    let head = user.head(dir);
    let out = user.git(dir, &["commit", "-q", "-m", msg]);
    assert!(
        !out.success(),
        "{msg}: the hook let it through\n{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("commit refused"),
        "{msg}: {}",
        out.describe()
    );
    assert_eq!(user.head(dir), head);
    user.git(dir, &["commit", "-q", "--no-verify", "-m", msg])
        .ok();
    out
}

#[test]
fn moving_a_secret_out_of_the_protected_folder_is_refused() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo_bypass("repo");
    let base = alice.head(&repo);
    // `git mv` renames the staged ciphertext; `commit -a` then stores the
    // working tree's plaintext at a path nothing protects.
    alice.git(&repo, &["mv", "secrets/db.yaml", "db.yaml"]).ok();
    let (code, f) = alice.check(&repo, &["--staged"]);
    assert_eq!(
        code,
        Some(0),
        "ciphertext outside the folder is fine: {f:?}"
    );
    alice.git(&repo, &["add", "db.yaml"]).ok();
    assert!(alice.blob(&repo, ":db.yaml").contains("bypass-pw-0001"));
    let (code, f) = alice.check(&repo, &["--staged"]);
    assert_eq!(code, Some(1));
    assert!(has(&f, "db.yaml", "decrypted-copy"), "{f:?}");
    let out = commit_refused_then_forced(&alice, &repo, "move");
    assert!(out.stderr.contains("db.yaml"), "{}", out.describe());
    // Committed anyway: `check --all`, `check --history` see it too.
    let (code, f) = alice.check(&repo, &["--all"]);
    assert_eq!(code, Some(1), "{f:?}");
    assert!(has(&f, "db.yaml", "decrypted-copy"), "{f:?}");
    let (code, f) = alice.check(&repo, &["--history", &format!("{base}..HEAD")]);
    assert_eq!(code, Some(1), "{f:?}");
    assert!(has(&f, "db.yaml", "decrypted-copy"), "{f:?}");

    // Variants: copied then deleted, converted to JSON, one key dropped, the
    // .env moved, a binary secret moved (recognised by the known-blobs record).
    let repo = alice.repo_bypass("repo2");
    alice.git(&repo, &["rm", "-q", "secrets/db.yaml"]).ok();
    write(
        &repo,
        "config/db.json",
        "{\"db\": {\"user\": \"admin\", \"password\": \"bypass-pw-0001\"}, \"api_token\": \"bypass-tok-0002\"}\n",
    );
    std::fs::rename(repo.join("secrets/app.env"), repo.join("app.env")).expect("mv");
    alice.git(&repo, &["add", "-A"]).ok();
    let (code, f) = alice.check(&repo, &["--staged"]);
    assert_eq!(code, Some(1));
    assert!(has(&f, "config/db.json", "decrypted-copy"), "{f:?}");
    assert!(has(&f, "app.env", "decrypted-copy"), "{f:?}");
    alice.git(&repo, &["reset", "-q", "--hard"]).ok();

    let repo = alice.repo_bypass("repo3");
    let pem = "-----BEGIN KEY-----\nbypass-pem-0004\n-----END KEY-----\n";
    write(&repo, "secrets/tls.pem", pem);
    alice.git(&repo, &["add", "-A"]).ok();
    alice.git(&repo, &["commit", "-qm", "pem"]).ok();
    alice.git(&repo, &["mv", "secrets/tls.pem", "tls.pem"]).ok();
    alice.git(&repo, &["add", "tls.pem"]).ok();
    let (code, f) = alice.check(&repo, &["--staged"]);
    assert_eq!(code, Some(1));
    assert!(has(&f, "tls.pem", "decrypted-copy"), "{f:?}");
    alice.git(&repo, &["reset", "-q", "--hard"]).ok();

    // A rename inside the protected folder, or a deletion, is fine.
    let repo = alice.repo_bypass("repo4");
    alice
        .git(&repo, &["mv", "secrets/db.yaml", "secrets/database.yaml"])
        .ok();
    alice.git(&repo, &["rm", "-q", "secrets/app.env"]).ok();
    alice.git(&repo, &["commit", "-qm", "rename"]).ok();
    assert_store_clean(&alice, &repo);

    // Split over two commits: deleted in one, the copy added in the next.
    let repo = alice.repo_bypass("repo6");
    let base = alice.head(&repo);
    alice
        .git(&repo, &["rm", "-q", "--cached", "secrets/db.yaml"])
        .ok();
    alice.git(&repo, &["commit", "-qm", "remove"]).ok();
    std::fs::rename(repo.join("secrets/db.yaml"), repo.join("db.yaml")).expect("mv");
    alice.git(&repo, &["add", "db.yaml"]).ok();
    let out = commit_refused_then_forced(&alice, &repo, "add the copy");
    assert!(out.stderr.contains("deleted in"), "{}", out.describe());
    let (code, f) = alice.check(&repo, &["--history", &format!("{base}..HEAD")]);
    assert_eq!(code, Some(1), "{f:?}");
    assert!(has(&f, "db.yaml", "decrypted-copy"), "{f:?}");

    // Deliberate, and marked where reviewers see it: accepted.
    let repo = alice.repo_bypass("repo5");
    alice.git(&repo, &["mv", "secrets/db.yaml", "db.yaml"]).ok();
    alice.git(&repo, &["add", "db.yaml"]).ok();
    let attrs = read(&repo, ".gitattributes");
    write(
        &repo,
        ".gitattributes",
        &format!("{attrs}/db.yaml -filter -diff -merge sops-unprotected\n"),
    );
    alice.git(&repo, &["add", "-A"]).ok();
    alice
        .git(&repo, &["commit", "-qm", "unprotect db.yaml on purpose"])
        .ok();
    for name in ["repo", "repo2", "repo3", "repo4", "repo5", "repo6"] {
        assert_store_clean(&alice, &alice.env.work.join(name));
    }
}

#[test]
fn removing_protection_and_adding_plaintext_in_one_commit_is_refused() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    type Change = fn(&Path);
    // (what, the .sops.yaml rule has a path_regex, the change)
    let changes: [(&str, bool, Change); 4] = [
        (
            "path_regex changed and .gitattributes emptied",
            true,
            |dir| {
                let c = read(dir, ".sops.yaml");
                write(
                    dir,
                    ".sops.yaml",
                    &c.replace("path_regex: '", "path_regex: '^nothing/"),
                );
                write(dir, ".gitattributes", "");
            },
        ),
        (
            "empty .gitattributes (rule without path_regex)",
            false,
            |dir| write(dir, ".gitattributes", ""),
        ),
        (
            "-filter for the file (rule without path_regex)",
            false,
            |dir| {
                let a = read(dir, ".gitattributes");
                write(
                    dir,
                    ".gitattributes",
                    &format!("{a}secrets/db.yaml -filter\n"),
                );
            },
        ),
        (
            "!filter for the file (rule without path_regex)",
            false,
            |dir| {
                let a = read(dir, ".gitattributes");
                write(
                    dir,
                    ".gitattributes",
                    &format!("{a}secrets/db.yaml !filter\n"),
                );
            },
        ),
    ];
    for (i, (what, with_regex, change)) in changes.into_iter().enumerate() {
        let repo = alice.repo_bypass(&format!("repo{i}"));
        if !with_regex {
            write(
                &repo,
                ".sops.yaml",
                &format!("creation_rules:\n  - age: {}\n", key.recipient),
            );
            alice
                .git(&repo, &["commit", "-qam", "rule without path_regex"])
                .ok();
        }
        let base = alice.head(&repo);
        change(&repo);
        alice.git(&repo, &["add", "-A"]).ok();
        // The file is re-added without the filter: plaintext in the index.
        write(
            &repo,
            "secrets/db.yaml",
            &BYPASS_DB.replace("admin", "root"),
        );
        alice.git(&repo, &["add", "-A"]).ok();
        let staged = alice.blob(&repo, ":secrets/db.yaml");
        assert!(
            staged.contains("bypass-pw-0001"),
            "{what}: the setup did not stage plaintext"
        );
        let (code, f) = alice.check(&repo, &["--staged"]);
        assert_eq!(code, Some(1), "{what}: {f:?}");
        assert!(
            has(&f, "secrets/db.yaml", "protection-removed"),
            "{what}: {f:?}"
        );
        assert!(has(&f, "secrets/db.yaml", "not-encrypted"), "{what}: {f:?}");
        commit_refused_then_forced(&alice, &repo, what);
        let (code, f) = alice.check(&repo, &["--history", &format!("{base}..HEAD")]);
        assert_eq!(code, Some(1), "{what}: {f:?}");
        assert!(
            has(&f, "secrets/db.yaml", "protection-removed"),
            "{what}: {f:?}"
        );
        let (code, f) = alice.check(&repo, &["--all"]);
        assert_eq!(code, Some(1), "{what}: {f:?}");
        assert!(
            has(&f, "secrets/db.yaml", "protection-removed"),
            "{what}: {f:?}"
        );
    }
    // Protection removed with the ciphertext unchanged is a finding too: the next
    // edit would be plaintext.
    let repo = alice.repo("unchanged");
    write(
        &repo,
        ".sops.yaml",
        &format!("creation_rules:\n  - age: {}\n", key.recipient),
    );
    alice
        .git(&repo, &["commit", "-qam", "rule without path_regex"])
        .ok();
    write(&repo, ".gitattributes", "");
    alice.git(&repo, &["add", ".gitattributes"]).ok();
    let (code, f) = alice.check(&repo, &["--staged"]);
    assert_eq!(code, Some(1));
    assert!(has(&f, "secrets/db.yaml", "protection-removed"), "{f:?}");
    assert!(has(&f, "secrets/app.env", "protection-removed"), "{f:?}");
    // Marked on purpose: accepted.
    write(&repo, ".gitattributes", "secrets/** sops-unprotected\n");
    alice.git(&repo, &["add", ".gitattributes"]).ok();
    let (code, f) = alice.check(&repo, &["--staged"]);
    assert_eq!(code, Some(0), "{f:?}");
    alice
        .git(&repo, &["commit", "-qm", "unprotect secrets/ on purpose"])
        .ok();
    assert_store_clean(&alice, &repo);
}

// ---------------------------------------------------------------------------------
// 5: the textconv cache
// ---------------------------------------------------------------------------------

#[test]
fn cachetextconv_set_by_hand_never_stores_plaintext() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    write(&repo, "secrets/db.yaml", &DB.replace("admin", "root"));
    alice.git(&repo, &["commit", "-qam", "edit"]).ok();
    // A diff before the setting: textconv records what this git command
    // read (README: Performance), which must not carry over to the next one.
    let first = alice.git(&repo, &["log", "-p"]).ok();
    assert!(first.stdout_str().contains("hunter2-db-secret"));
    // `git -c` is a git command of its own too.
    let log = alice
        .git(&repo, &["-c", "diff.sops.cachetextconv=true", "log", "-p"])
        .ok();
    assert_no_secret_in(&log);
    assert!(log.stdout_str().contains("<hidden>"), "{}", log.describe());
    // (git cached that hidden output: drop it, so that textconv runs again.)
    alice
        .git(&repo, &["update-ref", "-d", "refs/notes/textconv/sops"])
        .ok();
    alice
        .git(&repo, &["config", "diff.sops.cachetextconv", "true"])
        .ok();
    let log = alice.git(&repo, &["log", "-p"]).ok();
    assert!(log.stderr.contains("cachetextconv"), "{}", log.describe());
    assert_no_secret_in(&log);
    assert!(log.stdout_str().contains("<hidden>"), "{}", log.describe());
    // Whatever git cached holds no secret.
    let objects = alice
        .git(&repo, &["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    let objects = String::from_utf8_lossy(&objects.stdout);
    for s in SECRETS {
        assert!(!objects.contains(s), "{s} cached");
    }
    // `git sops install` removes the setting.
    alice.sops(&repo, &["install"]).ok();
    assert!(!alice
        .git(&repo, &["config", "--get", "diff.sops.cachetextconv"])
        .success());
    assert_store_clean(&alice, &repo);
}

/// textconv runs once per blob; what it must know about git's configuration is
/// asked once per git command, by the first one (tests/plaintext_paths.rs
/// above: a later command asks again).
#[test]
fn textconv_asks_git_once_per_git_command() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    for n in 0..4 {
        write(
            &repo,
            &format!("secrets/s{n}.yaml"),
            &DB.replace("admin", &format!("u{n}")),
        );
    }
    alice.git(&repo, &["add", "-A"]).ok();
    alice.git(&repo, &["commit", "-qm", "four"]).ok();
    for n in 0..4 {
        write(
            &repo,
            &format!("secrets/s{n}.yaml"),
            &DB.replace("admin", &format!("v{n}")),
        );
    }
    alice.git(&repo, &["commit", "-qam", "change"]).ok();
    // git appends its trace to an absolute GIT_TRACE path, also for the git
    // commands textconv runs (whose stderr git-sops reads).
    let trace = repo.join("..").join("trace.txt");
    for round in 1..=2 {
        let log = alice
            .git_cmd(&repo, &["log", "-p", "-1"])
            .env("GIT_TRACE", &trace)
            .run()
            .ok();
        let shown = log.stdout_str();
        assert!(
            shown.contains("+  user: v3") && shown.contains("-  user: u0"),
            "{shown}"
        );
        let traced = std::fs::read_to_string(&trace).expect("trace");
        let runs = traced.matches("run_command: 'git-sops textconv'").count();
        assert_eq!(runs, 8 * round, "{traced}");
        let asked = traced
            .matches("git config --type=bool --get diff.sops.cachetextconv")
            .count();
        assert_eq!(asked, round, "{traced}");
    }
}

// ---------------------------------------------------------------------------------
// 6: MACs
// ---------------------------------------------------------------------------------

#[test]
fn a_partial_add_with_a_stale_mac_is_refused_and_never_breaks_a_clone() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    write(&repo, "secrets/db.yaml", &DB.replace("admin", "root"));
    // The value's hunk without the mac's: a blob whose MAC does not match.
    let out = alice
        .git_cmd(&repo, &["add", "-p", "secrets/db.yaml"])
        .stdin("y\nn\nn\nn\n")
        .run();
    out.assert_no_panic();
    let staged = alice.blob(&repo, ":secrets/db.yaml");
    assert_ne!(
        staged,
        alice.blob(&repo, "HEAD:secrets/db.yaml"),
        "nothing staged"
    );
    let out = alice.git(&repo, &["commit", "-qm", "partial"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("authentication-failed"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("git add -- secrets/db.yaml"),
        "{}",
        out.describe()
    );
    // Bypassed: a clone still checks out every file, and says which is damaged.
    alice
        .git(&repo, &["commit", "-qm", "partial", "--no-verify"])
        .ok();
    let clone = alice.clone(&repo, "clone");
    assert_eq!(read(&clone, "secrets/app.env"), APP_ENV);
    assert!(read(&clone, "secrets/db.yaml").contains("ENC[AES256_GCM"));
    let status = alice.sops(&clone, &["status"]).ok();
    assert!(
        status.stdout_str().contains("DAMAGED"),
        "{}",
        status.describe()
    );
    // The repair the hook names works.
    alice
        .git(&repo, &["checkout", "HEAD~1", "--", "secrets/db.yaml"])
        .ok();
    alice.git(&repo, &["commit", "-qm", "repair"]).ok();
    assert_eq!(read(&repo, "secrets/db.yaml"), DB);
    assert_store_clean(&alice, &repo);
}

// ---------------------------------------------------------------------------------
// 7: configuration files
// ---------------------------------------------------------------------------------

#[test]
fn init_patterns_that_match_the_configuration_never_encrypt_it() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    for (i, pattern) in ["*", "**", "*.yaml"].into_iter().enumerate() {
        let dir = alice.env.work.join(format!("repo{i}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        alice.git(&dir, &["init", "-q", "-b", "main"]).ok();
        alice.sops(&dir, &["init", pattern]).ok();
        write(&dir, "db.yaml", DB);
        alice.git(&dir, &["add", "-A"]).ok();
        alice.git(&dir, &["commit", "-qm", "x"]).ok();
        for f in [".gitattributes", ".sops.yaml"] {
            let blob = alice.blob(&dir, &format!("HEAD:{f}"));
            assert!(
                !blob.contains("ENC["),
                "{pattern}: {f} was encrypted:\n{blob}"
            );
        }
        assert!(alice.blob(&dir, "HEAD:db.yaml").contains("ENC["));
        let clone = alice.clone(&dir, &format!("clone{i}"));
        assert_eq!(read(&clone, "db.yaml"), DB, "{pattern}");
        write(&clone, "more.yaml", "k: NEWSECRET-7d1e\n");
        alice.git(&clone, &["add", "-A"]).ok();
        alice.git(&clone, &["commit", "-qm", "more"]).ok();
        assert_store_clean(&alice, &clone);
    }
}

// ---------------------------------------------------------------------------------
// 8: the other ways commits are made
// ---------------------------------------------------------------------------------

#[test]
fn git_am_and_merge_commits_run_the_guard() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    for hook in ["pre-commit", "pre-merge-commit", "pre-applypatch"] {
        assert!(repo.join(".git/hooks").join(hook).exists(), "{hook}");
    }
    // A patch made from the (decrypted) diff of a new protected file.
    write(&repo, "secrets/new.yaml", "token: bypass-new-0005\n");
    alice.git(&repo, &["add", "secrets/new.yaml"]).ok();
    let diff = alice.git(&repo, &["diff", "--cached"]).ok().stdout_str();
    assert!(
        diff.contains("bypass-new-0005"),
        "textconv shows the plaintext: {diff}"
    );
    alice.git(&repo, &["reset", "-q", "--hard"]).ok();
    let patch = format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: T <t@e>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: [PATCH] leak\n\n---\n{diff}"
    );
    let head = alice.head(&repo);
    let out = alice.git_cmd(&repo, &["am"]).stdin(patch).run();
    assert!(!out.success(), "git am committed it:\n{}", out.describe());
    assert!(out.stderr.contains("commit refused"), "{}", out.describe());
    assert_eq!(alice.head(&repo), head);
    // The refused patch left plaintext in the index, which never matches the
    // (cleaned) working tree: reset first, then abort.
    alice.git(&repo, &["reset", "-q", "--hard"]).ok();
    alice.git(&repo, &["am", "--abort"]).ok();

    // A branch that got plaintext in with --no-verify, merged: the merge commit is refused.
    alice.git(&repo, &["checkout", "-q", "-b", "leaky"]).ok();
    write(&repo, "config/x.yaml", "token: bypass-new-0005\n");
    alice.git(&repo, &["add", "config/x.yaml"]).ok();
    let oid = alice
        .git(
            &repo,
            &["hash-object", "-w", "--no-filters", "config/x.yaml"],
        )
        .ok()
        .stdout_str();
    alice
        .git(
            &repo,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{},secrets/x.yaml", oid.trim()),
            ],
        )
        .ok();
    alice
        .git(&repo, &["rm", "-q", "--cached", "config/x.yaml"])
        .ok();
    alice
        .git(&repo, &["commit", "-q", "--no-verify", "-m", "leak"])
        .ok();
    alice.git(&repo, &["checkout", "-q", "-f", "main"]).ok();
    write(&repo, "README", "docs, edited\n");
    alice.git(&repo, &["commit", "-qam", "docs"]).ok();
    let head = alice.head(&repo);
    let out = alice.git(&repo, &["merge", "--no-edit", "leaky"]);
    assert!(!out.success(), "the merge committed:\n{}", out.describe());
    assert!(out.stderr.contains("commit refused"), "{}", out.describe());
    assert_eq!(alice.head(&repo), head);
    assert_store_clean(&alice, &repo);
}

// ---------------------------------------------------------------------------------
// 9: offboarding in a working tree
// ---------------------------------------------------------------------------------

#[test]
fn offboarding_works_in_a_working_tree_as_the_readme_says() {
    let alice_key = AgeKey::generate();
    let bob_key = AgeKey::generate();
    let alice = User::new(Some(&alice_key));
    let dir = alice.env.work.join("repo");
    std::fs::create_dir_all(&dir).expect("mkdir");
    alice.git(&dir, &["init", "-q", "-b", "main"]).ok();
    write(
        &dir,
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: ^secrets/\n    age: {},{}\n",
            alice_key.recipient, bob_key.recipient
        ),
    );
    alice.sops(&dir, &["init"]).ok();
    write(&dir, "secrets/db.yaml", DB);
    alice.git(&dir, &["add", "-A"]).ok();
    alice.git(&dir, &["commit", "-qm", "secrets"]).ok();
    let bob_opens = |spec: &str| {
        let blob = alice.blob(&dir, spec);
        alice
            .sops_cmd(&dir, &["decrypt", "--input-type", "yaml"])
            .env("SOPS_AGE_KEY", &bob_key.identity)
            .env_remove("SOPS_AGE_KEY_FILE")
            .stdin(blob.as_bytes())
            .run()
            .success()
    };
    assert!(bob_opens("HEAD:secrets/db.yaml"));

    // Step 1: remove Bob from .sops.yaml. An edit now warns that he still opens it.
    write(
        &dir,
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: ^secrets/\n    age: {}\n",
            alice_key.recipient
        ),
    );
    write(&dir, "secrets/db.yaml", &DB.replace("admin", "root"));
    let out = alice.git(&dir, &["add", "secrets/db.yaml"]).ok();
    assert!(out.stderr.contains("updatekeys"), "{}", out.describe());
    let status = alice.sops(&dir, &["status"]).ok();
    assert!(
        status.stdout_str().contains("differ from its .sops.yaml"),
        "{}",
        status.describe()
    );
    alice.git(&dir, &["commit", "-qam", "edit"]).ok();

    // Step 2 and 3, as the README writes them.
    alice
        .sops(&dir, &["updatekeys", "-y", "secrets/db.yaml"])
        .ok();
    assert_eq!(
        alice
            .git(&dir, &["status", "--porcelain"])
            .ok()
            .stdout_str(),
        "M  secrets/db.yaml\n",
        "updatekeys stages its change"
    );
    assert!(!bob_opens(":secrets/db.yaml"));
    let out = alice
        .sops(
            &dir,
            &[
                "rotate",
                "-i",
                "--rm-age",
                &bob_key.recipient,
                "secrets/db.yaml",
            ],
        )
        .ok();
    assert!(out.stderr.contains("rotated"), "{}", out.describe());
    assert_eq!(
        alice
            .git(&dir, &["status", "--porcelain"])
            .ok()
            .stdout_str(),
        "M  secrets/db.yaml\n"
    );
    assert_eq!(read(&dir, "secrets/db.yaml"), DB.replace("admin", "root"));
    alice.git(&dir, &["commit", "-qm", "offboard bob"]).ok();
    assert!(!bob_opens("HEAD:secrets/db.yaml"));
    assert_eq!(
        alice
            .git(&dir, &["status", "--porcelain"])
            .ok()
            .stdout_str(),
        ""
    );
    let status = alice.sops(&dir, &["status"]).ok();
    assert!(
        !status.stdout_str().contains("differ"),
        "{}",
        status.describe()
    );
    // A fresh clone decrypts the result.
    let clone = alice.clone(&dir, "clone");
    assert_eq!(read(&clone, "secrets/db.yaml"), DB.replace("admin", "root"));
    assert_store_clean(&alice, &dir);
}

// ---------------------------------------------------------------------------------
// 10: the server hook
// ---------------------------------------------------------------------------------

#[test]
fn the_server_hook_checks_everything_a_push_brings() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    // This test takes protection away (and git then hashes the working tree's
    // plaintext as it is): its repository holds only bypass values.
    let repo = alice.repo_bypass("repo");
    let server = alice.env.work.join("server.git");
    alice
        .git(
            &alice.env.work,
            &[
                "clone",
                "-q",
                "--bare",
                &repo.display().to_string(),
                "server.git",
            ],
        )
        .ok();
    let hook = server.join("hooks/pre-receive");
    std::fs::copy(common::manifest_dir().join("hooks/pre-receive"), &hook).expect("install hook");
    alice
        .git(
            &repo,
            &["remote", "add", "server", &server.display().to_string()],
        )
        .ok();
    alice.git(&repo, &["fetch", "-q", "server"]).ok();
    let push = |args: &[&str]| {
        let mut all = vec!["push", "-q", "server"];
        all.extend_from_slice(args);
        alice.git(&repo, &all)
    };
    // A normal push is accepted.
    write(
        &repo,
        "secrets/db.yaml",
        &BYPASS_DB.replace("admin", "root"),
    );
    alice.git(&repo, &["commit", "-qam", "edit"]).ok();
    push(&["main"]).ok();

    // A tag pointing at a tree with plaintext at a protected path.
    let blob = alice
        .git_cmd(&repo, &["hash-object", "-w", "--stdin", "--no-filters"])
        .stdin("password: bypass-push-0006\n")
        .run()
        .ok()
        .stdout_str();
    let blob = blob.trim();
    let attrs = alice
        .git(&repo, &["rev-parse", "HEAD:.gitattributes"])
        .ok()
        .stdout_str();
    let mktree = format!(
        "100644 blob {}\t.gitattributes\n040000 tree {}\tsecrets\n",
        attrs.trim(),
        alice
            .git_cmd(&repo, &["mktree"])
            .stdin(format!("100644 blob {blob}\tdb.yaml\n"))
            .run()
            .ok()
            .stdout_str()
            .trim()
    );
    let tree = alice
        .git_cmd(&repo, &["mktree"])
        .stdin(mktree)
        .run()
        .ok()
        .stdout_str();
    let tree = tree.trim().to_string();
    alice.git(&repo, &["tag", "tree-tag", &tree]).ok();
    let out = push(&["refs/tags/tree-tag"]);
    assert!(!out.success(), "tree tag accepted: {}", out.describe());
    assert!(out.stderr.contains("secrets/db.yaml"), "{}", out.describe());
    // An annotated tag pointing at the plaintext blob.
    alice
        .git(&repo, &["tag", "-a", "-m", "blob", "blob-tag", blob])
        .ok();
    let out = push(&["refs/tags/blob-tag"]);
    assert!(!out.success(), "blob tag accepted: {}", out.describe());
    // The textconv cache.
    alice
        .git(&repo, &["config", "diff.sops.cachetextconv", "true"])
        .ok();
    alice.git(&repo, &["log", "-p", "-1"]).ok();
    let notes = alice
        .git(&repo, &["for-each-ref", "refs/notes/textconv"])
        .ok()
        .stdout_str();
    assert!(!notes.is_empty(), "git made no textconv cache");
    let out = push(&["refs/notes/textconv/sops:refs/notes/textconv/sops"]);
    assert!(!out.success(), "notes accepted: {}", out.describe());
    alice
        .git(&repo, &["config", "--unset", "diff.sops.cachetextconv"])
        .ok();
    // A branch that takes protection away, committed with --no-verify.
    write(&repo, ".gitattributes", "");
    let rules = read(&repo, ".sops.yaml");
    write(
        &repo,
        ".sops.yaml",
        &rules.replace("path_regex: '", "path_regex: '^nothing/"),
    );
    write(&repo, "secrets/db.yaml", "password: bypass-push-0006\n");
    alice.git(&repo, &["add", "-A"]).ok();
    alice
        .git(&repo, &["commit", "-q", "--no-verify", "-m", "unprotect"])
        .ok();
    let out = push(&["main"]);
    assert!(
        !out.success(),
        "unprotecting push accepted: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("protection-removed"),
        "{}",
        out.describe()
    );
    // Nothing refused reached the server.
    assert_store_clean(&alice, &server);
    assert_store_clean(&alice, &repo);
    let objects = alice
        .git(&server, &["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    let objects = String::from_utf8_lossy(&objects.stdout);
    for refused in ["bypass-push-0006", "bypass-pw-0001", "bypass-env-0003"] {
        assert!(!objects.contains(refused), "{refused} reached the server");
    }
    // The hook is shipped executable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(common::manifest_dir().join("hooks/pre-receive"))
            .expect("hook")
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }
}

// ---------------------------------------------------------------------------------
// 11: the smaller ones
// ---------------------------------------------------------------------------------

#[test]
fn commit_with_a_path_leaves_no_phantom_staged_change() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    for mode in ["process", "one-shot"] {
        let repo = alice.repo(&format!("repo-{mode}"));
        if mode == "one-shot" {
            // Without a process command git runs `clean %f` once per file.
            for scope in ["--local", "--global"] {
                alice
                    .git(&repo, &["config", scope, "--unset", "filter.sops.process"])
                    .ok();
            }
        }
        write(&repo, "secrets/db.yaml", &DB.replace("admin", "root"));
        alice
            .git(&repo, &["commit", "-q", "secrets/db.yaml", "-m", "edit"])
            .ok();
        assert_eq!(
            alice
                .git(&repo, &["status", "--porcelain"])
                .ok()
                .stdout_str(),
            "",
            "{mode}"
        );
        assert_store_clean(&alice, &repo);
    }
}

#[test]
fn status_and_check_never_follow_symlinks_or_block_on_fifos() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    let outside = alice.env.work.join("outside.yaml");
    write(&alice.env.work, "outside.yaml", "creation_rules: [[[\n");
    std::fs::remove_file(repo.join("secrets/app.env")).expect("rm");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, repo.join("secrets/app.env")).expect("symlink");
        std::fs::remove_file(repo.join(".sops.yaml")).expect("rm");
        let fifo = std::ffi::CString::new(repo.join(".sops.yaml").to_str().expect("utf8"))
            .expect("cstring");
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    }
    let status = alice.sops(&repo, &["status"]).ok();
    assert!(
        status.stdout_str().contains("not a regular file"),
        "{}",
        status.describe()
    );
    let (code, _) = alice.check(&repo, &["--staged"]);
    assert_eq!(code, Some(0));
    assert_store_clean(&alice, &repo);
}

#[test]
fn a_file_name_that_is_not_utf8_does_not_stop_the_filter() {
    use std::os::unix::ffi::OsStrExt;
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    let name = std::ffi::OsStr::from_bytes(b"secrets/caf\xe9.yaml");
    std::fs::write(repo.join(name), "k: NEWSECRET-7d1e\n").expect("write");
    write(&repo, "secrets/ok.yaml", "k: v\n");
    let out = alice.git(&repo, &["add", "-A"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(out.stderr.contains("not UTF-8"), "{}", out.describe());
    std::fs::remove_file(repo.join(name)).expect("rm");
    alice.git(&repo, &["add", "-A"]).ok();
    alice.git(&repo, &["commit", "-qm", "ok"]).ok();
    assert_store_clean(&alice, &repo);
}

#[test]
fn rerere_is_warned_about() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    alice.git(&repo, &["config", "rerere.enabled", "true"]).ok();
    let out = alice.sops(&repo, &["status"]).ok();
    assert!(out.stderr.contains("rr-cache"), "{}", out.describe());
    let out = alice.sops(&repo, &["init"]).ok();
    assert!(out.stderr.contains("rr-cache"), "{}", out.describe());
    assert_store_clean(&alice, &repo);
}

#[test]
fn a_sops_yaml_file_at_a_binary_typed_path_is_accepted_by_clean_and_hook_alike() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    let enc = alice
        .sops_cmd(
            &repo,
            &["encrypt", "--age", &key.recipient, "--input-type", "yaml"],
        )
        .stdin(DB)
        .run()
        .ok()
        .stdout_str();
    write(&repo, "secrets/kubeconfig", &enc);
    alice.git(&repo, &["add", "secrets/kubeconfig"]).ok();
    assert_eq!(alice.blob(&repo, ":secrets/kubeconfig"), enc);
    alice.git(&repo, &["commit", "-qm", "kubeconfig"]).ok();
    let (code, f) = alice.check(&repo, &["--all"]);
    assert_eq!(code, Some(0), "{f:?}");
    assert_store_clean(&alice, &repo);
}

#[test]
fn init_chains_a_hook_that_only_mentions_the_check_in_a_comment() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let dir = alice.env.work.join("repo");
    std::fs::create_dir_all(dir.join(".git/hooks")).expect("mkdir");
    alice.git(&dir, &["init", "-q", "-b", "main"]).ok();
    let hook = dir.join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\n# TODO: git sops check\nexit 0\n").expect("hook");
    alice.sops(&dir, &["init"]).ok();
    assert!(dir.join(".git/hooks/pre-commit.local").exists());
    assert!(read(&dir, ".git/hooks/pre-commit").contains("git-sops hook"));
    assert_store_clean(&alice, &dir);
}

// ---------------------------------------------------------------------------------
// Found by the adversarial review
// ---------------------------------------------------------------------------------

#[test]
fn replace_refs_do_not_hide_plaintext_from_the_guard() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo_bypass("repo");
    let server = alice.env.work.join("server.git");
    alice
        .git(
            &alice.env.work,
            &[
                "clone",
                "-q",
                "--bare",
                &repo.display().to_string(),
                "server.git",
            ],
        )
        .ok();
    std::fs::copy(
        common::manifest_dir().join("hooks/pre-receive"),
        server.join("hooks/pre-receive"),
    )
    .expect("install hook");
    alice
        .git(
            &repo,
            &["remote", "add", "server", &server.display().to_string()],
        )
        .ok();
    let plain = alice
        .git_cmd(&repo, &["hash-object", "-w", "--stdin", "--no-filters"])
        .stdin("db:\n  password: bypass-replace-0007\n")
        .run()
        .ok()
        .stdout_str();
    let plain = plain.trim();
    let good = alice
        .git(&repo, &["rev-parse", "HEAD:secrets/db.yaml"])
        .ok()
        .stdout_str();
    // Locally: the replaced blob looks like the intact ciphertext to git...
    alice.git(&repo, &["replace", plain, good.trim()]).ok();
    alice
        .git(
            &repo,
            &[
                "update-index",
                "--cacheinfo",
                &format!("100644,{plain},secrets/db.yaml"),
            ],
        )
        .ok();
    // ...but not to the hook, nor to `check --history`.
    let out = alice.git(&repo, &["commit", "-q", "-m", "leak"]);
    assert!(!out.success(), "{}", out.describe());
    alice
        .git(&repo, &["commit", "-q", "--no-verify", "-m", "leak"])
        .ok();
    let (code, f) = alice.check(&repo, &["--history", "HEAD~1..HEAD"]);
    assert_eq!(code, Some(1), "{f:?}");
    // The server: the replace ref first, then the commit.
    let leak = alice.head(&repo);
    let _ = alice.git(
        &repo,
        &[
            "push",
            "-q",
            "server",
            &format!("refs/replace/{plain}:refs/replace/{plain}"),
        ],
    );
    let out = alice.git(
        &repo,
        &["push", "-q", "server", &format!("{leak}:refs/heads/leak")],
    );
    assert!(!out.success(), "accepted: {}", out.describe());
    let objects = alice
        .git(&server, &["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    assert!(!String::from_utf8_lossy(&objects.stdout).contains("bypass-replace-0007"));
}

#[test]
fn an_orphan_branch_without_the_rules_is_refused_by_the_server() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo_bypass("repo");
    let server = alice.env.work.join("server.git");
    alice
        .git(
            &alice.env.work,
            &[
                "clone",
                "-q",
                "--bare",
                &repo.display().to_string(),
                "server.git",
            ],
        )
        .ok();
    std::fs::copy(
        common::manifest_dir().join("hooks/pre-receive"),
        server.join("hooks/pre-receive"),
    )
    .expect("install hook");
    alice
        .git(
            &repo,
            &["remote", "add", "server", &server.display().to_string()],
        )
        .ok();
    alice
        .git(&repo, &["checkout", "-q", "--orphan", "orphan"])
        .ok();
    alice
        .git(
            &repo,
            &["rm", "-q", "--cached", ".gitattributes", ".sops.yaml"],
        )
        .ok();
    std::fs::remove_file(repo.join(".gitattributes")).expect("rm");
    std::fs::remove_file(repo.join(".sops.yaml")).expect("rm");
    alice
        .git(&repo, &["rm", "-r", "-q", "-f", "--cached", "secrets"])
        .ok();
    alice.git(&repo, &["add", "-A"]).ok();
    assert!(alice
        .blob(&repo, ":secrets/db.yaml")
        .contains("bypass-pw-0001"));
    alice
        .git(&repo, &["commit", "-q", "--no-verify", "-m", "orphan"])
        .ok();
    let out = alice.git(&repo, &["push", "-q", "server", "orphan"]);
    assert!(!out.success(), "accepted: {}", out.describe());
    assert!(
        out.stderr.contains("protection-removed"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_template_whose_own_selector_leaves_secrets_plain_follows_the_creation_rule() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    // `password` ends in `d`: the template's own selector leaves it plaintext.
    let template = alice
        .sops_cmd(
            &repo,
            &[
                "encrypt",
                "--age",
                &key.recipient,
                "--unencrypted-suffix",
                "d",
                "--input-type",
                "yaml",
            ],
        )
        .stdin("api:\n  password: CHANGEME\n  token: CHANGEME\n")
        .run()
        .ok()
        .stdout_str();
    assert!(template.contains("password: CHANGEME"));
    // A user without the key cannot commit it...
    let bob = User::new(None);
    let clone = bob.clone(&repo, "locked");
    write(&clone, "secrets/api.yaml", &template);
    let out = bob.git(&clone, &["add", "secrets/api.yaml"]);
    assert!(!out.success(), "{}", out.describe());
    // ...the guard reports it wherever it came from...
    let oid = bob
        .git_cmd(&clone, &["hash-object", "-w", "--no-filters", "--stdin"])
        .stdin(template.as_bytes())
        .run()
        .ok()
        .stdout_str();
    bob.git(
        &clone,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{},secrets/api.yaml", oid.trim()),
        ],
    )
    .ok();
    let (code, f) = bob.check(&clone, &["--staged"]);
    assert_eq!(code, Some(1), "{f:?}");
    assert!(has(&f, "secrets/api.yaml", "plaintext-value"), "{f:?}");
    // ...and a key holder's `git add` encrypts it under the rule, so the real
    // value filled in later is never committed in the clear.
    write(&repo, "secrets/api.yaml", &template);
    let out = alice.git(&repo, &["add", "secrets/api.yaml"]).ok();
    assert!(out.stderr.contains("creation rule"), "{}", out.describe());
    alice.git(&repo, &["commit", "-qm", "template"]).ok();
    assert!(!alice
        .blob(&repo, "HEAD:secrets/api.yaml")
        .contains("CHANGEME"));
    std::fs::remove_file(repo.join("secrets/api.yaml")).expect("rm");
    alice
        .git(&repo, &["checkout", "--", "secrets/api.yaml"])
        .ok();
    let filled = read(&repo, "secrets/api.yaml").replacen("CHANGEME", "NEWSECRET-7d1e", 1);
    write(&repo, "secrets/api.yaml", &filled);
    alice.git(&repo, &["commit", "-qam", "fill"]).ok();
    assert_store_clean(&alice, &repo);
    assert_store_clean(&bob, &clone);
}

#[test]
fn text_after_enc_and_entries_inside_the_sops_block_are_not_passed_through() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let origin = alice.repo("origin");
    let bob = User::new(None);
    let clone = bob.clone(&origin, "locked");
    let db = read(&clone, "secrets/db.yaml");
    let env = read(&clone, "secrets/app.env");
    let cases = [
        ("secrets/db.yaml", {
            let i = db.find("password: ENC[").expect("enc");
            let end = i + db[i..].find('\n').expect("eol");
            format!("{} NEWSECRET-7d1e{}", &db[..end], &db[end..])
        }),
        ("secrets/app.env", {
            let i = env.find("STRIPE_KEY=ENC[").expect("enc");
            let end = i + env[i..].find('\n').expect("eol");
            format!("{} NEWSECRET-7d1e{}", &env[..end], &env[end..])
        }),
        (
            "secrets/db.yaml",
            db.replacen("sops:\n", "sops:\n    leaked_note: NEWSECRET-7d1e\n", 1),
        ),
        (
            "secrets/db.yaml",
            db.replacen("sops:\n", "sops:\n    # NEWSECRET-7d1e\n", 1),
        ),
    ];
    for (path, text) in cases {
        assert!(
            text.contains("NEWSECRET-7d1e"),
            "{path}: the case was not built"
        );
        write(&clone, path, &text);
        let out = bob.git(&clone, &["add", path]);
        assert!(!out.success(), "{path}: stored\n{}", out.describe());
        assert_no_secret_in(&out);
        bob.git(&clone, &["checkout", "--", path]).ok();
    }
    assert_store_clean(&bob, &clone);
}

#[test]
fn an_exact_plaintext_copy_anywhere_is_found_by_the_known_blobs() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo_bypass("repo");
    std::fs::copy(repo.join("secrets/db.yaml"), repo.join("backup.yaml")).expect("cp");
    alice.git(&repo, &["add", "backup.yaml"]).ok();
    let (code, f) = alice.check(&repo, &["--staged"]);
    assert_eq!(code, Some(1), "{f:?}");
    assert!(has(&f, "backup.yaml", "decrypted-copy"), "{f:?}");
    let out = alice.git(&repo, &["commit", "-qm", "backup"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("git gc --prune=now"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_key_holders_added_value_is_stable_across_status() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    let blob = alice.blob(&repo, "HEAD:secrets/db.yaml");
    write(
        &repo,
        "secrets/db.yaml",
        &blob.replacen("db:", "new_token: NEWSECRET-7d1e\ndb:", 1),
    );
    alice.git(&repo, &["add", "secrets/db.yaml"]).ok();
    let staged = alice.blob(&repo, ":secrets/db.yaml");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Touch: git cleans the same mixed working tree again.
    let text = read(&repo, "secrets/db.yaml");
    write(&repo, "secrets/db.yaml", &text);
    assert_eq!(
        alice
            .git(&repo, &["status", "--porcelain"])
            .ok()
            .stdout_str(),
        "M  secrets/db.yaml\n"
    );
    assert_eq!(alice.blob(&repo, ":secrets/db.yaml"), staged);
    assert_store_clean(&alice, &repo);
}

// ---------------------------------------------------------------------------------
// Found by the second adversarial review
// ---------------------------------------------------------------------------------

/// A bare server with the shipped hook whose HEAD names a branch nobody pushed
/// (`git init --bare` without `init.defaultBranch`, a team that pushes `main`).
fn server_with_dangling_head(user: &User, repo: &Path) -> PathBuf {
    let server = user.env.work.join("server.git");
    user.git(&user.env.work, &["init", "-q", "--bare", "server.git"])
        .ok();
    user.git(&server, &["symbolic-ref", "HEAD", "refs/heads/master"])
        .ok();
    std::fs::copy(
        common::manifest_dir().join("hooks/pre-receive"),
        server.join("hooks/pre-receive"),
    )
    .expect("install hook");
    user.git(
        repo,
        &["remote", "add", "server", &server.display().to_string()],
    )
    .ok();
    user.git(repo, &["push", "-q", "server", "main"]).ok();
    server
}

#[test]
fn orphan_branches_are_checked_locally_and_on_a_server_whose_head_dangles() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo_bypass("repo");
    let server = server_with_dangling_head(&alice, &repo);
    alice.git(&repo, &["checkout", "-q", "--orphan", "o"]).ok();
    alice
        .git(&repo, &["rm", "-r", "-q", "-f", "--cached", "."])
        .ok();
    std::fs::remove_file(repo.join(".gitattributes")).expect("rm");
    std::fs::remove_file(repo.join(".sops.yaml")).expect("rm");
    alice.git(&repo, &["add", "secrets/db.yaml"]).ok();
    assert!(alice
        .blob(&repo, ":secrets/db.yaml")
        .contains("bypass-pw-0001"));
    // The hook remembers the latest branch for the unborn one...
    let out = alice.git(&repo, &["commit", "-q", "-m", "orphan"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(out.stderr.contains("commit refused"), "{}", out.describe());
    alice
        .git(&repo, &["commit", "-q", "--no-verify", "-m", "orphan"])
        .ok();
    // ...and so does the server, whose HEAD names no commit.
    let out = alice.git(&repo, &["push", "-q", "server", "o"]);
    assert!(!out.success(), "accepted: {}", out.describe());
    let objects = alice
        .git(&server, &["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    assert!(!String::from_utf8_lossy(&objects.stdout).contains("bypass-pw-0001"));
}

#[test]
fn a_binary_secret_moved_out_is_refused_by_the_server_without_known_blobs() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo_bypass("repo");
    let server = server_with_dangling_head(&alice, &repo);
    let _ = server;
    write(
        &repo,
        "secrets/tls.pem",
        "-----BEGIN KEY-----\nbypass-pem-0008-abcdefghijklmnopqrstuvwxyz\n-----END KEY-----\n",
    );
    alice.git(&repo, &["add", "-A"]).ok();
    alice.git(&repo, &["commit", "-qm", "pem"]).ok();
    alice.git(&repo, &["push", "-q", "server", "main"]).ok();
    alice.git(&repo, &["mv", "secrets/tls.pem", "tls.pem"]).ok();
    alice.git(&repo, &["add", "tls.pem"]).ok();
    alice
        .git(&repo, &["commit", "-q", "--no-verify", "-m", "move"])
        .ok();
    let out = alice.git(&repo, &["push", "-q", "server", "main"]);
    assert!(!out.success(), "accepted: {}", out.describe());
    assert!(out.stderr.contains("decrypted-copy"), "{}", out.describe());
}

#[test]
fn widening_a_rule_does_not_block_commits_and_edits_follow_it() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let dir = alice.env.work.join("repo");
    std::fs::create_dir_all(&dir).expect("mkdir");
    alice.git(&dir, &["init", "-q", "-b", "main"]).ok();
    let narrow = format!(
        "creation_rules:\n  - path_regex: ^secrets/\n    age: {}\n    encrypted_regex: ^password$\n",
        key.recipient
    );
    write(&dir, ".sops.yaml", &narrow);
    alice.sops(&dir, &["init"]).ok();
    write(&dir, "secrets/a.yaml", "db:\n  password: p1\n  user: bob\n");
    alice.git(&dir, &["add", "-A"]).ok();
    alice.git(&dir, &["commit", "-qm", "narrow"]).ok();
    assert!(alice
        .blob(&dir, "HEAD:secrets/a.yaml")
        .contains("user: bob"));
    // Widen the rule: commits go on; the unchanged file stays as it was.
    write(
        &dir,
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: ^secrets/\n    age: {}\n",
            key.recipient
        ),
    );
    alice.git(&dir, &["commit", "-qam", "widen"]).ok();
    write(&dir, "README", "x\n");
    alice.git(&dir, &["add", "README"]).ok();
    alice.git(&dir, &["commit", "-qm", "unrelated"]).ok();
    // The next edit encrypts it under the wider rule.
    write(&dir, "secrets/a.yaml", "db:\n  password: p2\n  user: bob\n");
    let out = alice.git(&dir, &["commit", "-qam", "edit"]).ok();
    assert!(out.stderr.contains("creation rule"), "{}", out.describe());
    assert!(!alice.blob(&dir, "HEAD:secrets/a.yaml").contains("bob"));
    alice.sops(&dir, &["check", "--all"]).ok();
}

#[test]
fn an_unreadable_committed_file_does_not_break_the_working_tree() {
    let key = AgeKey::generate();
    let alice = User::new(Some(&key));
    let repo = alice.repo("repo");
    let blob = alice
        .git_cmd(&repo, &["hash-object", "-w", "--no-filters", "--stdin"])
        .stdin("a: [\n")
        .run()
        .ok()
        .stdout_str();
    alice
        .git(
            &repo,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{},secrets/broken.yaml", blob.trim()),
            ],
        )
        .ok();
    alice
        .git(&repo, &["commit", "-q", "--no-verify", "-m", "broken"])
        .ok();
    let clone = alice.clone(&repo, "clone");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let text = read(&clone, "secrets/broken.yaml");
    write(&clone, "secrets/broken.yaml", &text); // racy: git cleans it again
    alice.git(&clone, &["status", "--porcelain"]).ok();
    write(&clone, "other.txt", "x\n");
    alice.git(&clone, &["add", "other.txt"]).ok();
    alice.git(&clone, &["stash"]).ok();
    // An edit of it is still refused, with the reason.
    write(&clone, "secrets/broken.yaml", "a: [\nb\n");
    let out = alice.git(&clone, &["add", "secrets/broken.yaml"]);
    assert!(!out.success(), "{}", out.describe());
}
