//! Concurrent data-key unwrap on checkout (issue 7): a clone of many
//! KMS-encrypted files makes at most one KMS `Decrypt` per distinct data key,
//! unwraps them concurrently (timed against a serial checkout with the same
//! simulated 50 ms KMS round trip: printed, never asserted), and a later checkout
//! only unwraps the keys of the files it writes. KMS is moto on loopback behind
//! a delaying, request-counting proxy (`prefetch_support`).
#![cfg(feature = "kms")] // AWS KMS (moto); an age-only build skips this file.

mod common;
mod kms_support;
mod prefetch_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kms_support::{shared, Sandbox};
use prefetch_support::DelayProxy;

const FILES: usize = 200;
const DUPLICATES: usize = 20;
const CHANGED: usize = 5;
const LIMIT: Duration = Duration::from_secs(120);

fn plaintext(i: usize, rev: usize) -> String {
    format!(
        "service: svc-{i:03}\ndatabase:\n    host: db-{i}.internal.example.com\n    user: app_{i}\n    password: pw-{i}-{rev}-Zq8xL2\napi_token: tok_{i}_9f8e7d6c5b4a\nport: {}\n",
        5000 + i
    )
}

struct World {
    sb: Sandbox,
}

impl World {
    fn git(&self, dir: &str, args: &[&str]) -> (String, Duration) {
        let out = self
            .sb
            .env
            .tool("git")
            .current_dir(self.sb.path(dir))
            .args(args)
            .time_limit(LIMIT)
            .run();
        assert!(
            out.success(),
            "git {args:?} in {dir} failed: {}",
            out.describe()
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.elapsed,
        )
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.sb.path(rel)
    }
}

fn assert_checked_out(w: &World, dir: &str, rev_of: impl Fn(usize) -> usize) {
    for i in 0..FILES {
        let got = std::fs::read_to_string(w.path(&format!("{dir}/secrets/s{i:03}.yaml")))
            .expect("checked-out file");
        assert_eq!(got, plaintext(i, rev_of(i)), "{dir}/secrets/s{i:03}.yaml");
    }
    for i in 0..DUPLICATES {
        let got = std::fs::read_to_string(w.path(&format!("{dir}/secrets/dup{i:03}.yaml")))
            .expect("checked-out duplicate");
        assert_eq!(got, plaintext(i, 0), "{dir}/secrets/dup{i:03}.yaml");
    }
}

/// A sandbox ready for git with the git-sops drivers installed globally.
fn world(endpoint: &str) -> World {
    let mut sb = Sandbox::new(endpoint);
    sb.env.use_git();
    let w = World { sb };
    w.sb.git_sops(&["install", "--global"]).ok();
    w
}

#[test]
fn checkout_unwraps_each_data_key_once_and_concurrently() {
    let (moto, keys) = shared();
    let proxy = DelayProxy::start(moto.port);
    let w = world(&proxy.endpoint());

    // The origin: FILES files, each with its own data key, and DUPLICATES files
    // committed as the ciphertext of another (the same data key).
    std::fs::create_dir_all(w.path("origin/secrets")).expect("mkdir");
    w.git("origin", &["init", "-q", "-b", "main"]);
    w.sb.write(
        "origin/.sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    kms: {}\n",
            keys.a
        ),
    );
    w.sb.write(
        "origin/.gitattributes",
        "secrets/*.yaml filter=sops diff=sops -text\n",
    );
    for i in 0..FILES {
        w.sb.write(&format!("origin/secrets/s{i:03}.yaml"), &plaintext(i, 0));
    }
    w.git("origin", &["add", "."]);
    w.git("origin", &["commit", "-q", "-m", "secrets"]);
    for i in 0..DUPLICATES {
        let (blob, _) = w.git("origin", &["show", &format!("HEAD:secrets/s{i:03}.yaml")]);
        assert!(blob.contains("sops:"), "committed encrypted");
        w.sb.write(&format!("origin/secrets/dup{i:03}.yaml"), &blob);
    }
    w.git("origin", &["add", "."]);
    w.git("origin", &["commit", "-q", "-m", "duplicates"]);

    proxy.set_delay(Duration::from_millis(50));

    // Serial: `checkout-index` sends no `treeish`, so each file unwraps its key
    // when git smudges it, one round trip after another.
    proxy.reset();
    w.git(".", &["clone", "-q", "-n", "origin", "serial"]);
    w.git("serial", &["reset", "-q"]);
    let (_, serial) = w.git("serial", &["checkout-index", "-a", "-f"]);
    let serial_calls = proxy.count("Decrypt");
    assert_checked_out(&w, "serial", |_| 0);
    assert_eq!(
        serial_calls, FILES,
        "serial: one Decrypt per distinct data key"
    );

    // Clone: the first smudge names the tree; its keys are unwrapped concurrently.
    proxy.reset();
    let (_, clone) = w.git(".", &["clone", "-q", "origin", "clone"]);
    let clone_calls = proxy.count("Decrypt");
    assert_checked_out(&w, "clone", |_| 0);
    assert_eq!(
        clone_calls,
        FILES,
        "clone: exactly one Decrypt per distinct data key ({FILES} keys, {} files)",
        FILES + DUPLICATES
    );
    assert_eq!(proxy.count("Encrypt"), 0);
    eprintln!(
        "timing: cold checkout of {} files / {FILES} data keys at 50 ms per KMS call: serial {serial:?} ({serial_calls} calls), prefetched clone {clone:?} ({clone_calls} calls), {:.1}x",
        FILES + DUPLICATES,
        serial.as_secs_f64() / clone.as_secs_f64()
    );

    // Warm: the keys are cached, so a later command makes no KMS call.
    std::thread::sleep(Duration::from_millis(1100));
    proxy.reset();
    // In the past, so the index written by `status` is not racy against them.
    let when = std::time::SystemTime::now() - Duration::from_secs(5);
    for i in 0..FILES {
        touch(&w.path(&format!("clone/secrets/s{i:03}.yaml")), when);
    }
    let (status, _) = w.git("clone", &["status", "--porcelain"]);
    assert_eq!(status, "", "touched files are not dirty");
    assert_eq!(proxy.count("Decrypt"), 0, "warm: no KMS call");

    // A later checkout with the cache off only unwraps the keys of the files it
    // writes: CHANGED edited files (their own keys) and CHANGED new ones.
    w.git("clone", &["config", "sops.cache", "false"]);
    w.git("clone", &["status", "--porcelain"]);
    for i in 0..CHANGED {
        w.sb.write(&format!("origin/secrets/s{i:03}.yaml"), &plaintext(i, 1));
        w.sb.write(
            &format!("origin/secrets/new{i}.yaml"),
            &plaintext(1000 + i, 0),
        );
    }
    proxy.set_delay(Duration::ZERO);
    w.git("origin", &["add", "."]);
    w.git("origin", &["commit", "-q", "-m", "change some"]);
    proxy.set_delay(Duration::from_millis(50));
    w.git("clone", &["fetch", "-q"]);
    proxy.reset();
    let (_, pull) = w.git("clone", &["merge", "-q", "--ff-only", "origin/main"]);
    assert_checked_out(&w, "clone", |i| usize::from(i < CHANGED));
    let pull_calls = proxy.count("Decrypt");
    eprintln!(
        "timing: checkout of {} changed files with the cache off: {pull:?} ({pull_calls} calls)",
        2 * CHANGED
    );
    assert_eq!(
        pull_calls,
        2 * CHANGED,
        "only the keys of the files the checkout writes"
    );
}

fn touch(path: &Path, when: std::time::SystemTime) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open to touch");
    f.set_modified(when).expect("set mtime");
}

/// Binary and dotenv files through git with a KMS key: committed as sops files
/// that real sops decrypts, checked out byte for byte by a clone whose prefetch
/// finds their data keys too (one Decrypt per file).
#[test]
fn binary_and_dotenv_files_with_kms_through_git() {
    let (moto, keys) = shared();
    let proxy = DelayProxy::start(moto.port);
    let w = world(&proxy.endpoint());
    std::fs::create_dir_all(w.path("origin/secrets")).expect("mkdir");
    w.git("origin", &["init", "-q", "-b", "main"]);
    w.sb.write(
        "origin/.sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: secrets/\n    kms: {}\n",
            keys.a
        ),
    );
    w.sb.write(
        "origin/.gitattributes",
        "secrets/** filter=sops diff=sops merge=sops -text\n",
    );
    let p12: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 256) as u8).collect();
    let dotenv = "# ci\nexport DB_PASSWORD=kms-s3cret\nEMPTY=\nURL=postgres://u:p@h/db?x=1\n";
    std::fs::write(w.path("origin/secrets/store.p12"), &p12).expect("write");
    w.sb.write("origin/secrets/app.env", dotenv);
    w.git("origin", &["add", "."]);
    w.git("origin", &["commit", "-q", "-m", "secrets"]);
    for (path, ty) in [
        ("secrets/store.p12", "binary"),
        ("secrets/app.env", "dotenv"),
    ] {
        let (blob, _) = w.git("origin", &["show", &format!("HEAD:{path}")]);
        assert!(
            blob.contains(keys.a.as_str()),
            "{path}: wrapped by the KMS key:\n{blob}"
        );
        assert!(!blob.contains("kms-s3cret"), "{path}: {blob}");
        let name = format!("blob.{ty}");
        w.sb.write(&name, &blob);
        let out = w.path(&format!("sops-out.{ty}"));
        w.sb.sops(&[
            "decrypt",
            "--input-type",
            ty,
            "--output-type",
            ty,
            "--output",
            out.to_str().expect("utf8"),
            &name,
        ])
        .ok();
        let got = std::fs::read(&out).expect("sops output");
        if ty == "binary" {
            assert!(
                got == p12,
                "sops decrypts the binary blob to the exact bytes"
            );
        } else {
            let got = String::from_utf8(got).expect("utf8");
            assert!(got.contains("DB_PASSWORD=kms-s3cret"), "{got}");
        }
    }
    proxy.reset();
    w.git(".", &["clone", "-q", "origin", "clone"]);
    assert!(std::fs::read(w.path("clone/secrets/store.p12")).expect("read") == p12);
    assert_eq!(
        std::fs::read_to_string(w.path("clone/secrets/app.env")).expect("read"),
        dotenv
    );
    assert_eq!(proxy.count("Decrypt"), 2, "one Decrypt per data key");
    let (status, _) = w.git("clone", &["status", "--porcelain"]);
    assert_eq!(status, "");
}
