//! Bulk key operations (issue 14): `updatekeys` and `rotate` with `--all` (every
//! SOPS file of the repository) and `--dry-run`, a per-file report when some
//! files fail, a progress line only on a terminal, and, with many KMS-wrapped
//! files, concurrent unwraps and wraps (timed against the serial code when a
//! baseline binary is given: printed, never asserted).

mod common;
#[cfg(feature = "kms")]
mod kms_support;
#[cfg(feature = "kms")]
mod prefetch_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{git_sops_path, AgeKey, Env, Output, Repo};

const YAML: &str = "db:\n    user: admin\n    password: hunter2-bulk-yaml-secret\n";
const JSON: &str = "{\n\t\"token\": \"bulk-json-secret-token-77\"\n}\n";
const DOTENV: &str = "API_KEY=bulk-dotenv-secret-key-42\n";
const LEGACY: &str = "legacy: bulk-legacy-secret-value-13\n";
/// Every secret of the files above: none may reach a git object as plaintext.
const SECRETS: [&str; 4] = [
    "hunter2-bulk-yaml-secret",
    "bulk-json-secret-token-77",
    "bulk-dotenv-secret-key-42",
    "bulk-legacy-secret-value-13",
];

/// The protected files and their plaintexts.
const PROTECTED: [(&str, &str); 3] = [
    ("secrets/app.yaml", YAML),
    ("secrets/api.json", JSON),
    ("secrets/env/app.env", DOTENV),
];

struct World {
    repo: Repo,
    /// The key the files are encrypted for at first (the repository's).
    old: AgeKey,
    /// The key `.sops.yaml` names after the change.
    new: AgeKey,
}

fn rules(recipient: &str) -> String {
    format!("creation_rules:\n  - path_regex: ^(secrets|legacy)/\n    age: {recipient}\n")
}

/// A repository with three protected files (YAML, JSON, dotenv) and one file
/// written by sops itself that a rule covers but `.gitattributes` does not
/// protect, all committed for the repository's key; then `.sops.yaml` names a
/// new key instead. The identities file holds both keys.
fn world() -> World {
    let mut repo = Repo::new();
    let old = repo.key.clone();
    let new = AgeKey::generate();
    repo.env.use_identities(&[&old, &new]);
    repo.write(".sops.yaml", rules(&old.recipient));
    for (path, text) in PROTECTED {
        repo.write(path, text);
    }
    repo.write("legacy/plain.yaml", LEGACY);
    let enc = repo
        .env
        .sops()
        .current_dir(&repo.dir)
        .args(["encrypt", "legacy/plain.yaml"])
        .run()
        .ok()
        .stdout;
    std::fs::remove_file(repo.dir.join("legacy/plain.yaml")).expect("rm");
    repo.write("legacy/old.yaml", enc);
    // --no-verify: the guard (rightly) says legacy/ is covered by a rule but not
    // protected; a repository that keeps sops' own files there is what is modelled.
    repo.git(&["add", "-A"]).ok();
    repo.git(&["commit", "-q", "--no-verify", "-m", "secrets"])
        .ok();
    assert_eq!(repo.status(), "", "clean after the commit");
    repo.write(".sops.yaml", rules(&new.recipient));
    World { repo, old, new }
}

impl World {
    fn sops_opens(&self, encrypted: &[u8], name: &str, key: &AgeKey) -> Option<String> {
        let keyfile = self.repo.env.root.join("only-one-key.txt");
        std::fs::write(&keyfile, key.key_file_text()).expect("key file");
        let tmp = self.repo.env.root.join(format!(
            "check-{}",
            Path::new(name).file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&tmp, encrypted).expect("write");
        let ty = match Path::new(name).extension().and_then(|e| e.to_str()) {
            Some("json") => "json",
            Some("yaml") => "yaml",
            _ => "dotenv",
        };
        let out = self
            .repo
            .env
            .sops()
            .env("SOPS_AGE_KEY_FILE", &keyfile)
            .args(["decrypt", "--input-type", ty, "--output-type", ty])
            .arg(&tmp)
            .run();
        out.success().then(|| out.stdout_str())
    }

    /// `git sops ARGS` run in `dir` (repository-relative).
    fn git_sops_in(&self, dir: &str, args: &[&str]) -> Output {
        self.repo
            .env
            .git_sops()
            .current_dir(self.repo.dir.join(dir))
            .args(args)
            .run()
    }
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

fn assert_no_plaintext_in_objects(repo: &Repo) {
    let all = repo
        .git(&["cat-file", "--batch-all-objects", "--batch"])
        .ok()
        .stdout;
    let text = String::from_utf8_lossy(&all);
    for s in SECRETS {
        assert!(!text.contains(s), "{s} reached a git object");
    }
}

#[test]
fn updatekeys_all_rekeys_every_sops_file_from_a_subdirectory() {
    let w = world();
    let out = w
        .git_sops_in("secrets/env", &["updatekeys", "--all", "-y"])
        .ok();
    // Repository-relative names in the report, no progress on a pipe.
    for name in [
        "secrets/app.yaml",
        "secrets/api.json",
        "secrets/env/app.env",
        "legacy/old.yaml",
    ] {
        assert!(
            out.stderr
                .contains(&format!("done: {name}: synced with new keys")),
            "{name}: {}",
            out.stderr
        );
    }
    assert!(out
        .stderr
        .contains("4 files: 4 done, 0 unchanged, 0 failed"));
    assert!(!out.stderr.contains('\r') && !out.stderr.contains("/4 files"));
    // Staged, working tree plaintext; the rule-covered sops file is rewritten on disk.
    let status = w.repo.status();
    for (path, text) in PROTECTED {
        assert!(status.contains(&format!("M  {path}")), "{status}");
        assert_eq!(w.repo.text(path), text, "working tree keeps its plaintext");
        let blob = w.repo.blob(&format!(":{path}"));
        assert_eq!(
            w.sops_opens(&blob, path, &w.new).as_deref(),
            Some(text),
            "{path}: sops opens it with the new key"
        );
        assert_eq!(
            w.sops_opens(&blob, path, &w.old),
            None,
            "{path}: the removed key no longer opens it"
        );
    }
    assert!(status.contains(" M legacy/old.yaml"), "{status}");
    let legacy = w.repo.read("legacy/old.yaml");
    assert_eq!(
        w.sops_opens(&legacy, "old.yaml", &w.new).as_deref(),
        Some(LEGACY)
    );
    assert_eq!(w.sops_opens(&legacy, "old.yaml", &w.old), None);
    // Again: nothing left to do.
    let again = w.git_sops_in("", &["updatekeys", "--all", "-y"]).ok();
    assert!(
        again
            .stderr
            .contains("4 files: 0 done, 4 unchanged, 0 failed"),
        "{}",
        again.stderr
    );
    w.repo
        .git(&["commit", "-q", "--no-verify", "-am", "rekey"])
        .ok();
    assert_no_plaintext_in_objects(&w.repo);
}

#[test]
fn dry_run_shows_each_file_and_group_and_writes_nothing() {
    let w = world();
    let before = snapshot(&w.repo.dir);
    let out = w
        .git_sops_in("", &["updatekeys", "--all", "--dry-run"])
        .ok();
    for name in ["secrets/app.yaml", "secrets/api.json", "legacy/old.yaml"] {
        assert!(
            out.stderr.contains(&format!(
                "{name}: the following changes would be made to the file's key groups:\nGroup 1\n+++ age {}\n--- age {}\n",
                w.new.recipient, w.old.recipient
            )),
            "{name}: {}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains("4 files: 4 would change, 0 up to date, 0 failed; nothing was written"),
        "{}",
        out.stderr
    );
    let out = w
        .git_sops_in(
            "",
            &[
                "rotate",
                "--all",
                "--dry-run",
                "--add-age",
                &w.new.recipient,
                "--rm-age",
                &w.old.recipient,
            ],
        )
        .ok();
    assert!(
        out.stderr
            .contains("would get a new data key, every value re-encrypted"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!("--- age {}", w.old.recipient)));
    // Working tree, index and every file under .git are as they were.
    assert_eq!(snapshot(&w.repo.dir), before, "a dry run wrote something");
}

#[test]
fn rotate_all_gives_every_file_a_new_data_key() {
    let w = world();
    let blobs_before: Vec<String> = PROTECTED
        .iter()
        .map(|(p, _)| w.repo.blob_text(&format!(":{p}")))
        .collect();
    let out = w.git_sops_in("", &["rotate", "--all", "-i"]).ok();
    assert!(
        out.stderr
            .contains("4 files: 4 done, 0 unchanged, 0 failed"),
        "{}",
        out.stderr
    );
    for ((path, text), before) in PROTECTED.iter().zip(&blobs_before) {
        let after = w.repo.blob_text(&format!(":{path}"));
        let old_values = kms_free_enc_values(before);
        let new_values = kms_free_enc_values(&after);
        assert_eq!(old_values.len(), new_values.len());
        assert!(!old_values.is_empty());
        for v in &new_values {
            assert!(
                !old_values.contains(v),
                "{path}: a value was not re-encrypted"
            );
        }
        // Still for the file's own (old) key: rotate keeps the keys.
        assert_eq!(
            w.sops_opens(after.as_bytes(), path, &w.old).as_deref(),
            Some(*text)
        );
    }
    assert_eq!(
        w.sops_opens(&w.repo.read("legacy/old.yaml"), "old.yaml", &w.old)
            .as_deref(),
        Some(LEGACY)
    );
    w.repo
        .git(&["commit", "-q", "--no-verify", "-am", "rotate"])
        .ok();
    assert_no_plaintext_in_objects(&w.repo);
}

/// The `ENC[...]` values of a file.
fn kms_free_enc_values(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"ENC\[[^\]]*\]").expect("regex");
    re.find_iter(text)
        .map(|m| m.as_str().to_string())
        .filter(|v| !v.contains("type:comment"))
        .collect()
}

/// Stage `bytes` as `path`'s blob without the filter.
fn stage_raw(repo: &Repo, path: &str, bytes: &[u8]) {
    let oid = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .args(["hash-object", "-w", "--no-filters", "--stdin"])
        .stdin(bytes)
        .run()
        .ok()
        .stdout_str();
    let info = format!("100644,{},{path}", oid.trim());
    repo.git(&["update-index", "--cacheinfo", &info]).ok();
}

#[test]
fn a_bad_file_among_good_ones_fails_alone_with_a_report() {
    let w = world();
    // secrets/api.json: a value changed behind sops' back (its MAC no longer
    // matches); legacy/old.yaml: for a key nobody here holds.
    let api = w.repo.blob_text(":secrets/api.json");
    let damaged = api.replacen("ENC[AES256_GCM,data:", "ENC[AES256_GCM,data:AA", 1);
    stage_raw(&w.repo, "secrets/api.json", damaged.as_bytes());
    let stranger = AgeKey::generate();
    // Encrypted outside the repository (no .sops.yaml there) for a stranger.
    let outside = w.repo.env.root.join("foreign.yaml");
    std::fs::write(&outside, LEGACY).expect("write");
    let foreign = w
        .repo
        .env
        .sops()
        .current_dir(&w.repo.env.root)
        .args(["encrypt", "--age", &stranger.recipient, "foreign.yaml"])
        .run()
        .ok()
        .stdout;
    w.repo.write("legacy/old.yaml", foreign);

    let out = w.git_sops_in("", &["rotate", "--all", "-i"]);
    let out = out.fails();
    assert!(
        out.stderr
            .contains("4 files: 2 done, 0 unchanged, 2 failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("  FAILED: secrets/api.json: "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("  FAILED: legacy/old.yaml: could not decrypt the data key"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("done: secrets/app.yaml: rotated"));
    assert!(out.stderr.contains("done: secrets/env/app.env: rotated"));
    assert!(out.stderr.contains("2 of 4 files failed"));
    // The first failure's sops code: no key (128), found while unwrapping,
    // before the MAC check of api.json.
    assert_eq!(out.code, Some(128), "{}", out.describe());
    assert_eq!(w.repo.blob_text(":secrets/api.json"), damaged, "left alone");
    let status = w.repo.status();
    assert!(status.contains("M  secrets/app.yaml") && status.contains("M  secrets/env/app.env"));

    // updatekeys: only the file without a key fails (values are not read).
    let out = w.git_sops_in("", &["updatekeys", "--all", "-y"]).exits(128);
    assert!(
        out.stderr
            .contains("4 files: 3 done, 0 unchanged, 1 failed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("FAILED: legacy/old.yaml"));
}

#[test]
fn without_yes_one_question_for_all_files_and_none_without_a_terminal() {
    let w = world();
    let before = snapshot(&w.repo.dir);
    let out = w.git_sops_in("", &["updatekeys", "--all"]).exits(2);
    assert!(
        out.stderr
            .contains("4 files: not changing the keys without confirmation"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&w.repo.dir), before);
    // On a terminal: asked once, and a progress line.
    let line = format!("{} updatekeys --all", git_sops_path().display());
    let out = w
        .repo
        .env
        .tool("script")
        .current_dir(&w.repo.dir)
        .args(["-qec", &line, "/dev/null"])
        .stdin("y\n")
        .run()
        .ok();
    let tty = out.stdout_str();
    assert_eq!(tty.matches("Is this okay? (y/n)").count(), 1, "{tty}");
    assert!(tty.contains("updatekeys: 4/4 files"), "{tty}");
    assert!(tty.contains("4 files: 4 done"), "{tty}");
}

#[test]
fn all_outside_a_repository_and_with_files_is_a_usage_error() {
    let env = Env::new();
    let out = env
        .git_sops()
        .args(["updatekeys", "--all", "-y"])
        .run()
        .exits(2);
    assert!(
        out.stderr.contains("inside a git repository"),
        "{}",
        out.stderr
    );
    let out = env
        .git_sops()
        .args(["rotate", "--all", "-i"])
        .run()
        .exits(2);
    assert!(
        out.stderr.contains("inside a git repository"),
        "{}",
        out.stderr
    );
    env.git_sops()
        .args(["updatekeys", "--all", "-y", "a.yaml"])
        .run()
        .exits(2);
}

/// 200 KMS-wrapped files behind a simulated 50 ms KMS round trip: `updatekeys`
/// and `rotate -i` on all of them, timed. With `GIT_SOPS_BASELINE` naming a
/// git-sops built from before bulk operations, the same runs with it are timed
/// too and the ratio printed (`cargo test --test bulk_keys -- --nocapture kms`).
#[cfg(feature = "kms")]
#[test]
fn many_kms_files_are_unwrapped_and_wrapped_concurrently() {
    use kms_support::{shared, Sandbox};
    use prefetch_support::DelayProxy;
    use std::time::Duration;

    const FILES: usize = 200;
    let (moto, keys) = shared();
    let proxy = DelayProxy::start(moto.port);
    let mut sb = Sandbox::new(&proxy.endpoint());
    sb.env.set_time_limit(Duration::from_secs(300));
    let names: Vec<String> = (0..FILES).map(|i| format!("s{i:03}.yaml")).collect();
    let setup = |dir: &str, kms: &str| {
        sb.write(
            &format!("{dir}/.sops.yaml"),
            &format!("creation_rules:\n  - kms: {kms}\n"),
        );
    };
    let baseline = std::env::var_os("GIT_SOPS_BASELINE").map(PathBuf::from);
    let mut dirs = vec!["new"];
    if baseline.is_some() {
        dirs.push("old");
    }
    for dir in &dirs {
        setup(dir, &keys.a);
        for (i, n) in names.iter().enumerate() {
            sb.write(&format!("{dir}/{n}"), &format!("password: pw-{i}-secret\n"));
        }
        // One process per file, before the simulated delay is switched on.
        for n in &names {
            sb.env
                .git_sops()
                .current_dir(sb.path(dir))
                .args(["encrypt", "-i", n])
                .run()
                .ok();
        }
        setup(dir, &keys.b);
    }
    proxy.set_delay(Duration::from_millis(50));
    let time = |program: &Path, dir: &str, args: &[&str]| {
        proxy.reset();
        let out = sb
            .env
            .command(program, "git-sops")
            .current_dir(sb.path(dir))
            .args(args)
            .args(&names)
            .run()
            .ok();
        (out.elapsed, proxy.count("Decrypt"), proxy.count("Encrypt"))
    };
    let new_bin = git_sops_path();
    let up = time(&new_bin, "new", &["updatekeys", "-y"]);
    let rot = time(&new_bin, "new", &["rotate", "-i"]);
    println!(
        "bulk, {FILES} KMS files, 50 ms per KMS call: updatekeys {:?} ({} Decrypt, {} Encrypt), rotate -i {:?} ({} Decrypt, {} Encrypt)",
        up.0, up.1, up.2, rot.0, rot.1, rot.2
    );
    assert_eq!(
        (up.1, up.2),
        (FILES, FILES),
        "one Decrypt and one Encrypt per file"
    );
    assert_eq!((rot.1, rot.2), (FILES, FILES));
    let check = sb
        .env
        .sops()
        .current_dir(sb.path("new"))
        .args(["decrypt", &names[FILES - 1]])
        .run()
        .ok();
    assert_eq!(
        check.stdout_str(),
        format!("password: pw-{}-secret\n", FILES - 1)
    );
    if let Some(old) = baseline {
        let up_old = time(&old, "old", &["updatekeys", "-y"]);
        let rot_old = time(&old, "old", &["rotate", "-i"]);
        println!(
            "baseline (serial): updatekeys {:?}, rotate -i {:?}; speed-up updatekeys x{:.1}, rotate x{:.1}",
            up_old.0,
            rot_old.0,
            up_old.0.as_secs_f64() / up.0.as_secs_f64(),
            rot_old.0.as_secs_f64() / rot.0.as_secs_f64()
        );
    } else {
        println!(
            "set GIT_SOPS_BASELINE to a git-sops built before bulk key operations to time it too"
        );
    }
}
