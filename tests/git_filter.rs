//! The git integration against real git: `git sops init`, the clean/smudge filter
//! in both the long-running (`filter.sops.process`) and the one-shot
//! (`clean %f` / `smudge %f`) modes, textconv, locked clones, and the everyday
//! commands on protected files. Each repository lives in an isolated HOME with
//! its own global git config; the unused filter mode's commands are set to
//! `false` so a test proves which mode ran.

mod common;

use std::path::Path;

use common::{Env, Repo};

const YAML: &str = r#"# database settings
db:
  user: admin
  password: hunter2 # rotate quarterly
  port: 5432
api_tokens:
  - name: ci
    token: tok-ci-7f3a
  - name: deploy
    token: "tok-deploy-91bc"
public_unencrypted: visible
"#;

const JSON: &str = "{\n  \"stripe\": {\"secret_key\": \"sk_live_51Habc\", \"webhook\": \"whsec_9zz\"},\n  \"retries\": 3\n}\n";

const SECRETS: [&str; 6] = [
    "hunter2",
    "tok-ci-7f3a",
    "tok-deploy-91bc",
    "sk_live_51Habc",
    "whsec_9zz",
    "rotate quarterly",
];

#[derive(Clone, Copy, Debug)]
enum Mode {
    Process,
    OneShot,
}

impl Repo {
    /// A repository set up with `git sops init`, in the given filter mode.
    fn in_mode(mode: Mode) -> Repo {
        let repo = Repo::new();
        repo.set_mode(mode);
        repo
    }

    fn set_mode(&self, mode: Mode) {
        match mode {
            Mode::Process => {
                self.git(&["config", "filter.sops.clean", "false"]).ok();
                self.git(&["config", "filter.sops.smudge", "false"]).ok();
            }
            Mode::OneShot => {
                // Without a process command git runs clean/smudge once per file.
                self.git(&["config", "--unset", "filter.sops.process"]).ok();
            }
        }
    }

    fn commit_secrets(&self) {
        self.write("secrets/app.yaml", YAML);
        self.write("secrets/payments.json", JSON);
        self.write("README", "not a secret\n");
        self.git(&["add", "-A"]).ok();
        self.git(&["commit", "-q", "-m", "secrets"]).ok();
    }
}

fn all_objects(repo: &Repo, dir: &Path) -> String {
    let out = repo
        .git_in(dir, &["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_no_secret_in_objects(repo: &Repo, dir: &Path) {
    let objects = all_objects(repo, dir);
    for s in SECRETS {
        assert!(
            !objects.contains(s),
            "plaintext {s:?} reached the object store"
        );
    }
    let notes = repo
        .git_in(dir, &["for-each-ref", "refs/notes"])
        .ok()
        .stdout_str();
    assert!(notes.trim().is_empty(), "unexpected notes refs: {notes}");
}

fn both_modes(test: impl Fn(Mode)) {
    for mode in [Mode::Process, Mode::OneShot] {
        test(mode);
    }
}

#[test]
fn commit_stores_only_sops_ciphertext_that_sops_decrypts() {
    both_modes(|mode| {
        let repo = Repo::in_mode(mode);
        repo.commit_secrets();
        assert_no_secret_in_objects(&repo, &repo.dir);
        for (path, plain) in [("secrets/app.yaml", YAML), ("secrets/payments.json", JSON)] {
            let blob = repo.blob_text(&format!("HEAD:{path}"));
            assert!(
                blob.contains("ENC[AES256_GCM,"),
                "{mode:?}: {path} is not encrypted:\n{blob}"
            );
            let ext = if path.ends_with(".json") {
                "json"
            } else {
                "yaml"
            };
            let out = repo
                .env
                .sops()
                .args([
                    "decrypt",
                    "--input-type",
                    ext,
                    "--output-type",
                    ext,
                    "/dev/stdin",
                ])
                .stdin(blob.as_bytes())
                .run()
                .ok();
            let ours = repo
                .env
                .git_sops()
                .args(["decrypt", "--input-type", ext])
                .stdin(blob.as_bytes())
                .run()
                .ok();
            assert_eq!(
                ours.stdout_str(),
                plain,
                "{mode:?}: git-sops decrypt of the blob"
            );
            assert!(
                out.stdout_str().contains("hunter2") || out.stdout_str().contains("sk_live_51Habc")
            );
            // The working tree holds the plaintext exactly.
            assert_eq!(repo.text(path), plain);
        }
        // The .sops.yaml and .gitattributes that init wrote are committed as plain files.
        assert!(repo
            .blob_text("HEAD:.gitattributes")
            .contains("secrets/** filter=sops diff=sops merge=sops -text"));
    });
}

#[test]
fn status_stays_clean_after_touch_renormalize_and_branch_switches() {
    both_modes(|mode| {
        let repo = Repo::in_mode(mode);
        repo.commit_secrets();
        assert_eq!(repo.status(), "", "{mode:?}: right after commit");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        for f in ["secrets/app.yaml", "secrets/payments.json"] {
            let p = repo.dir.join(f);
            let text = std::fs::read(&p).expect("read");
            std::fs::write(&p, text).expect("rewrite"); // same bytes, new mtime
        }
        assert_eq!(repo.status(), "", "{mode:?}: after touch");
        repo.git(&["add", "--renormalize", "."]).ok();
        assert_eq!(repo.status(), "", "{mode:?}: after add --renormalize");
        repo.git(&["checkout", "-q", "-b", "other"]).ok();
        repo.write("secrets/other.yaml", "k: v\n");
        repo.git(&["add", "-A"]).ok();
        repo.git(&["commit", "-q", "-m", "other"]).ok();
        repo.git(&["checkout", "-q", "main"]).ok();
        assert_eq!(repo.status(), "", "{mode:?}: after checkout main");
        repo.git(&["checkout", "-q", "other"]).ok();
        assert_eq!(repo.status(), "", "{mode:?}: after checkout other");
        assert_eq!(repo.text("secrets/app.yaml"), YAML);
        assert_eq!(repo.text("secrets/other.yaml"), "k: v\n");
    });
}

/// `git status` after a touch cleans every protected file in one filter
/// process, which reads their formats and staged blobs ahead in batches
/// (src/drivers/filter/read_ahead.rs): across several batches, with
/// unprotected files between the protected ones and a few files changed, it
/// reports exactly the changed ones, and `git add` keeps every unchanged
/// file's blob byte for byte.
#[test]
fn status_after_touching_many_files_reads_ahead_correctly() {
    let repo = Repo::in_mode(Mode::Process);
    let mut attributes = repo.text(".gitattributes");
    attributes.push_str("secrets/*.txt -filter -diff -merge\n");
    repo.write(".gitattributes", attributes);
    let rules = repo
        .text(".sops.yaml")
        .replace("^secrets/.*$", "^secrets/.*\\.yaml$");
    assert!(rules.contains(".yaml$"), "{rules}");
    repo.write(".sops.yaml", rules);
    let names: Vec<String> = (0..150).map(|i| format!("secrets/f{i:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        repo.write(&format!("{name}.yaml"), format!("k: secret-{i}\nn: {i}\n"));
        repo.write(&format!("{name}.txt"), format!("plain {i}\n"));
    }
    repo.commit_all("many");
    let staged = |repo: &Repo| repo.git(&["ls-files", "-s"]).ok().stdout_str();
    let before = staged(&repo);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let changed = [5, 70, 71, 140];
    for (i, name) in names.iter().enumerate() {
        for ext in ["yaml", "txt"] {
            let file = format!("{name}.{ext}");
            let text = repo.read(&file);
            repo.write(&file, text); // same bytes, new mtime
        }
        if changed.contains(&i) {
            repo.write(&format!("{name}.yaml"), format!("k: changed-{i}\nn: {i}\n"));
        }
    }
    let expected: String = changed
        .iter()
        .map(|i| format!(" M secrets/f{i:03}.yaml\n"))
        .collect();
    assert_eq!(repo.status(), expected);
    repo.git(&["add", "-A"]).ok();
    let after = staged(&repo);
    let (mut same, mut differ) = (0, 0);
    for (old, new) in before.lines().zip(after.lines()) {
        let path = old.split('\t').nth(1).expect("path");
        assert_eq!(Some(path), new.split('\t').nth(1), "same entries");
        let is_changed = changed
            .iter()
            .any(|i| path == format!("secrets/f{i:03}.yaml"));
        if is_changed {
            assert_ne!(old, new, "{path} was changed");
            let blob = String::from_utf8_lossy(&repo.blob(&format!(":{path}"))).into_owned();
            assert!(
                blob.contains("ENC[") && !blob.contains("changed-"),
                "{path}: {blob}"
            );
            differ += 1;
        } else {
            assert_eq!(old, new, "{path} is unchanged, so is its blob");
            same += 1;
        }
    }
    assert_eq!((same, differ), (2 * 150 + 2 - changed.len(), changed.len()));
    assert_eq!(
        repo.status(),
        expected.replace(" M ", "M  "),
        "staged, nothing else"
    );
}

#[test]
fn a_one_value_edit_is_a_one_value_diff() {
    both_modes(|mode| {
        let repo = Repo::in_mode(mode);
        repo.commit_secrets();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        repo.write("secrets/app.yaml", YAML.replace("hunter2", "hunter3"));
        let diff = repo.git(&["diff"]).ok().stdout_str();
        let changed: Vec<&str> = diff
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .collect();
        assert_eq!(
            changed,
            [
                "-  password: hunter2 # rotate quarterly",
                "+  password: hunter3 # rotate quarterly"
            ],
            "{mode:?}: textconv diff:\n{diff}"
        );
        repo.git(&["commit", "-q", "-am", "rotate"]).ok();
        let raw = repo
            .git(&["show", "--no-textconv", "--format=", "HEAD"])
            .ok()
            .stdout_str();
        let raw_changed: Vec<&str> = raw
            .lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .collect();
        assert_eq!(
            raw_changed.len(),
            6,
            "{mode:?}: raw diff should touch 3 lines:\n{raw}"
        );
        for l in &raw_changed {
            assert!(
                l.contains("password:") || l.contains("mac:") || l.contains("lastmodified:"),
                "{mode:?}: unexpected raw change {l:?}"
            );
        }
        assert_no_secret_in_objects(&repo, &repo.dir);
    });
}

#[test]
fn clones_with_and_without_a_key() {
    let repo = Repo::in_mode(Mode::Process);
    repo.commit_secrets();
    // With the key: the clone's working tree equals the original bytes. The
    // clone gets the driver from the (isolated) global config.
    repo.sops(&["install", "--global"]).ok();
    let unlocked = repo.env.work.join("unlocked");
    let out = repo.git(&[
        "clone",
        "-q",
        repo.dir.to_str().expect("utf8"),
        unlocked.to_str().expect("utf8"),
    ]);
    out.ok();
    assert_eq!(
        std::fs::read_to_string(unlocked.join("secrets/app.yaml")).expect("read"),
        YAML
    );
    assert_eq!(
        std::fs::read_to_string(unlocked.join("secrets/payments.json")).expect("read"),
        JSON
    );
    assert_eq!(
        repo.git_in(&unlocked, &["status", "--porcelain"])
            .ok()
            .stdout_str(),
        ""
    );

    // Without a key: clone succeeds, ciphertext stays, status is clean, one warning.
    let mut locked_env = Env::new();
    locked_env.use_git();
    locked_env.env_git_sops_install();
    let locked = locked_env.work.join("locked");
    let out = locked_env
        .tool("git")
        .args([
            "clone",
            "-q",
            repo.dir.to_str().expect("utf8"),
            locked.to_str().expect("utf8"),
        ])
        .run();
    let out = out.ok();
    assert_eq!(
        out.stderr.matches("no key to decrypt").count(),
        1,
        "one warning line:\n{}",
        out.stderr
    );
    let text = std::fs::read_to_string(locked.join("secrets/app.yaml")).expect("read");
    assert!(text.contains("ENC[AES256_GCM,") && !text.contains("hunter2"));
    let status = locked_env
        .tool("git")
        .current_dir(&locked)
        .args(["status", "--porcelain"])
        .run()
        .ok();
    assert_eq!(status.stdout_str(), "");
    // textconv shows fingerprints: which keys changed, never values.
    let log = locked_env
        .tool("git")
        .current_dir(&locked)
        .args(["log", "-p", "-1"])
        .run()
        .ok()
        .stdout_str();
    assert!(log.contains("password: <encrypted "), "{log}");
    assert!(log.contains("# sops: encrypted for age"), "{log}");
    assert!(!log.contains("hunter2"));
    // A locked clone can commit other files.
    std::fs::write(locked.join("README"), "changed\n").expect("write");
    locked_env
        .tool("git")
        .current_dir(&locked)
        .args(["commit", "-q", "-am", "docs"])
        .run()
        .ok();
    let files = locked_env
        .tool("git")
        .current_dir(&locked)
        .args(["show", "--name-only", "--format=", "HEAD"])
        .run()
        .ok()
        .stdout_str();
    assert_eq!(files.trim(), "README");
}

trait EnvExt {
    fn env_git_sops_install(&self);
}

impl EnvExt for Env {
    fn env_git_sops_install(&self) {
        self.git_sops().args(["install", "--global"]).run().ok();
    }
}

#[test]
fn everyday_commands_behave_as_on_plain_files() {
    both_modes(|mode| {
        let repo = Repo::in_mode(mode);
        repo.commit_secrets();
        // stash
        repo.write("secrets/app.yaml", YAML.replace("5432", "6543"));
        repo.git(&["stash", "-q"]).ok();
        assert_eq!(repo.text("secrets/app.yaml"), YAML, "{mode:?}: stash");
        repo.git(&["stash", "pop", "-q"]).ok();
        assert!(repo.text("secrets/app.yaml").contains("6543"));
        // checkout -- path
        repo.git(&["checkout", "--", "secrets/app.yaml"]).ok();
        assert_eq!(
            repo.text("secrets/app.yaml"),
            YAML,
            "{mode:?}: checkout -- path"
        );
        // reset --hard
        repo.write("secrets/app.yaml", "db: {}\n");
        repo.git(&["reset", "-q", "--hard"]).ok();
        assert_eq!(
            repo.text("secrets/app.yaml"),
            YAML,
            "{mode:?}: reset --hard"
        );
        // cherry-pick and rebase of a commit that edits a secret
        repo.git(&["checkout", "-q", "-b", "feature"]).ok();
        repo.write("secrets/app.yaml", YAML.replace("admin", "root"));
        repo.git(&["commit", "-q", "-am", "user"]).ok();
        repo.git(&["checkout", "-q", "main"]).ok();
        repo.write("README", "main moved\n");
        repo.git(&["commit", "-q", "-am", "readme"]).ok();
        repo.git(&["cherry-pick", "feature"]).ok();
        assert!(
            repo.text("secrets/app.yaml").contains("user: root"),
            "{mode:?}: cherry-pick"
        );
        repo.git(&["reset", "-q", "--hard", "HEAD~1"]).ok();
        repo.git(&["checkout", "-q", "feature"]).ok();
        repo.git(&["rebase", "-q", "main"]).ok();
        assert!(
            repo.text("secrets/app.yaml").contains("user: root"),
            "{mode:?}: rebase"
        );
        assert_eq!(repo.status(), "", "{mode:?}: after rebase");
        // log -p, show, blame read plaintext through textconv
        let log = repo.git(&["log", "-p", "-1"]).ok().stdout_str();
        assert!(
            log.contains("-  user: admin") && log.contains("+  user: root"),
            "{mode:?}: log -p:\n{log}"
        );
        let show = repo
            .git(&["show", "HEAD:secrets/app.yaml"])
            .ok()
            .stdout_str();
        assert!(
            show.contains("ENC["),
            "git show of a blob is the stored form"
        );
        // `git blame FILE` runs the working tree through textconv and then the
        // clean filter (a git quirk shared with git-crypt), so it shows
        // ciphertext; blaming a revision shows plaintext with per-line history.
        let blame = repo
            .git(&["blame", "HEAD", "--", "secrets/app.yaml"])
            .ok()
            .stdout_str();
        let user_line = blame
            .lines()
            .find(|l| l.contains("user: root"))
            .expect("user line");
        let port_line = blame
            .lines()
            .find(|l| l.contains("port: 5432"))
            .expect("port line");
        assert_ne!(
            user_line[..8],
            port_line[..8],
            "{mode:?}: lines come from different commits:\n{blame}"
        );
        assert!(
            blame.contains("user: root") && blame.contains("hunter2"),
            "{mode:?}: blame:\n{blame}"
        );
        assert_no_secret_in_objects(&repo, &repo.dir);
    });
}

#[test]
fn a_file_that_cannot_be_encrypted_fails_add_and_leaves_the_index_alone() {
    both_modes(|mode| {
        let repo = Repo::in_mode(mode);
        repo.commit_secrets();
        let before = repo.git(&["ls-files", "-s"]).ok().stdout_str();
        // A new protected file whose rule names a recipient that cannot be used.
        std::fs::write(
            repo.dir.join(".sops.yaml"),
            "creation_rules:\n  - path_regex: ^secrets/broken\n    age: age1notarecipient\n  - age: x\n",
        )
        .expect("write");
        repo.write("secrets/broken.yaml", "token: plaintext-must-not-leak\n");
        let out = repo.git(&["add", "secrets/broken.yaml"]).fails();
        assert!(
            out.stderr.contains("secrets/broken.yaml"),
            "{mode:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("age1notarecipient"),
            "{mode:?}: names the bad recipient: {}",
            out.stderr
        );
        assert_eq!(
            repo.git(&["ls-files", "-s"]).ok().stdout_str(),
            before,
            "{mode:?}: index unchanged"
        );
        // Broken YAML is refused too: never stored as plaintext.
        repo.write("secrets/app.yaml", "db: [unclosed\n");
        let out = repo.git(&["add", "secrets/app.yaml"]).fails();
        assert!(
            out.stderr.contains("secrets/app.yaml") && out.stderr.contains("line"),
            "{mode:?}: {}",
            out.stderr
        );
        assert_eq!(repo.git(&["ls-files", "-s"]).ok().stdout_str(), before);
        let objects = all_objects(&repo, &repo.dir);
        assert!(!objects.contains("plaintext-must-not-leak"));
    });
}

#[test]
fn init_is_idempotent_and_unlocks_an_existing_locked_clone() {
    let repo = Repo::in_mode(Mode::Process);
    repo.commit_secrets();
    // The test set the process-mode overrides; the first re-run restores them,
    // the second has nothing left to do.
    repo.sops(&["init", "secrets/**"]).ok();
    let again = repo.sops(&["init", "secrets/**"]).ok();
    assert!(again.stderr.contains("already set up"), "{}", again.stderr);
    // A clone made without the driver holds ciphertext; init decrypts it in place.
    let mut env2 = Env::with_keys(&[&repo.key]);
    env2.use_git();
    let clone = env2.work.join("c");
    env2.tool("git")
        .args([
            "clone",
            "-q",
            repo.dir.to_str().expect("utf8"),
            clone.to_str().expect("utf8"),
        ])
        .run()
        .ok();
    assert!(std::fs::read_to_string(clone.join("secrets/app.yaml"))
        .expect("read")
        .contains("ENC["));
    let out = env2
        .git_sops()
        .current_dir(&clone)
        .args(["init"])
        .run()
        .ok();
    assert!(out.stderr.contains("decrypted 2 file(s)"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(clone.join("secrets/app.yaml")).expect("read"),
        YAML
    );
    assert_eq!(
        env2.tool("git")
            .current_dir(&clone)
            .args(["status", "--porcelain"])
            .run()
            .ok()
            .stdout_str(),
        ""
    );
    // cachetextconv is removed wherever init finds it.
    env2.tool("git")
        .current_dir(&clone)
        .args(["config", "diff.sops.cachetextconv", "true"])
        .run()
        .ok();
    let out = env2
        .git_sops()
        .current_dir(&clone)
        .args(["init"])
        .run()
        .ok();
    assert!(
        out.stderr.contains("removed diff.sops.cachetextconv"),
        "{}",
        out.stderr
    );
    let status = env2
        .git_sops()
        .current_dir(&clone)
        .args(["status"])
        .run()
        .ok()
        .stdout_str();
    assert!(
        status.contains("secrets/app.yaml") && status.contains("index: encrypted"),
        "{status}"
    );
    assert!(status.contains("working tree: unlocked"), "{status}");
}

#[test]
fn worktrees_share_the_key_cache_under_the_common_dir() {
    let repo = Repo::in_mode(Mode::Process);
    repo.commit_secrets();
    let wt = repo.env.work.join("wt");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        wt.to_str().expect("utf8"),
        "-b",
        "wt",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(wt.join("secrets/app.yaml")).expect("read"),
        YAML
    );
    assert_eq!(
        repo.git_in(&wt, &["status", "--porcelain"])
            .ok()
            .stdout_str(),
        ""
    );
    let cache = repo.dir.join(".git/git-sops/datakeys");
    let entries: Vec<_> = std::fs::read_dir(&cache).expect("cache dir").collect();
    assert!(!entries.is_empty());
    use std::os::unix::fs::PermissionsExt;
    for e in entries {
        let mode = e
            .expect("entry")
            .metadata()
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "cached data keys must be private");
    }
}

#[test]
fn a_kms_key_that_cannot_be_reached_fails_add_and_leaves_the_index_alone() {
    both_modes(|mode| {
        let mut repo = Repo::in_mode(mode);
        // A KMS endpoint that refuses connections (a stopped server).
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        repo.env
            .set("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
        repo.env.set("AWS_ACCESS_KEY_ID", "test");
        repo.env.set("AWS_SECRET_ACCESS_KEY", "test");
        repo.env.set("AWS_EC2_METADATA_DISABLED", "true");
        std::fs::write(
            repo.dir.join(".sops.yaml"),
            "creation_rules:\n  - path_regex: ^secrets/\n    kms: arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000\n",
        )
        .expect("write");
        repo.write("secrets/kms.yaml", "token: kms-plaintext-must-not-leak\n");
        let before = repo.git(&["ls-files", "-s"]).ok().stdout_str();
        let out = repo.git(&["add", "secrets/kms.yaml"]).fails();
        assert!(
            out.stderr.contains("secrets/kms.yaml"),
            "{mode:?}: {}",
            out.stderr
        );
        if cfg!(feature = "kms") {
            assert!(
                out.stderr.contains("127.0.0.1"),
                "{mode:?}: names the endpoint: {}",
                out.stderr
            );
        } else {
            assert!(
                out.stderr.contains("no AWS KMS support"),
                "{mode:?}: {}",
                out.stderr
            );
        }
        assert_eq!(
            repo.git(&["ls-files", "-s"]).ok().stdout_str(),
            before,
            "{mode:?}: index unchanged"
        );
        assert!(!all_objects(&repo, &repo.dir).contains("kms-plaintext-must-not-leak"));
    });
}

/// `git commit PATH` cleans each file twice (for the commit's temporary index,
/// then for the real one); the long-running filter keeps what it cleaned so
/// the second answer is the first. It keeps only its newest blobs in memory
/// and the older ones in the cache folder; with the cache off (`sops.cache
/// false`) they must stay in memory, past that window too.
#[test]
fn commit_of_more_paths_than_the_filter_keeps_in_memory_leaves_the_index_equal_to_the_commit() {
    for cache in ["true", "false"] {
        let repo = Repo::in_mode(Mode::Process);
        repo.git(&["config", "sops.cache", cache]).ok();
        for i in 0..80 {
            repo.write(
                &format!("secrets/s{i:02}.yaml"),
                YAML.replace("admin", &format!("u{i}")),
            );
        }
        repo.git(&["add", "-A"]).ok();
        repo.git(&["commit", "-q", "-m", "eighty"]).ok();
        for i in 0..80 {
            repo.write(
                &format!("secrets/s{i:02}.yaml"),
                YAML.replace("admin", &format!("v{i}")),
            );
        }
        repo.git(&["commit", "-q", "-m", "all changed", "--", "secrets"])
            .ok();
        let staged = repo
            .git(&["diff", "--cached", "--name-only"])
            .ok()
            .stdout_str();
        assert_eq!(staged, "", "sops.cache {cache}: index differs from HEAD");
        let status = repo.git(&["status", "--porcelain"]).ok().stdout_str();
        assert_eq!(status, "", "sops.cache {cache}");
        assert!(repo.blob_text("HEAD:secrets/s79.yaml").contains("ENC["));
    }
}
