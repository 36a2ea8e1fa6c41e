//! Many new KMS-encrypted files in one `git add` (issue 18): the long-running
//! clean filter wraps data keys for a recipient set ahead of demand, in the
//! background and concurrently, instead of one KMS round trip per file after
//! another. Every file must still get its own data key that sops 3.11 opens,
//! the KMS `Encrypt` calls spent on keys never used must stay bounded, and a
//! throttled or refused call while preparing ahead must never cost a file.
//! KMS is moto on loopback behind a delaying, request-counting proxy
//! (`prefetch_support`); nothing here is timed against a limit.
#![cfg(feature = "kms")] // AWS KMS (moto); an age-only build skips this file.

mod common;
mod kms_support;
mod prefetch_support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use kms_support::{shared, Sandbox};
use prefetch_support::DelayProxy;

const FILES: usize = 60;
/// `sops_file::keypool::AHEAD_CAP`: the most keys prepared ahead and not used.
const AHEAD_CAP: usize = 16;
const LIMIT: Duration = Duration::from_secs(180);

fn plaintext(i: usize) -> String {
    format!("service: svc-{i:03}\ndatabase:\n    password: pw-{i}-Zq8xL2-new\napi_token: tok_{i}_9f8e7d6c\n")
}

struct World {
    sb: Sandbox,
    proxy: DelayProxy,
    /// The age identity named next to the KMS key, when there is one.
    age: Option<PathBuf>,
}

impl World {
    /// A repository `repo` whose rule names KMS key `a` (and, with `with_age`,
    /// an age recipient in the same key group, to read each file's data key);
    /// the drivers installed globally; FILES new protected files written.
    fn new(with_age: bool) -> World {
        let (moto, keys) = shared();
        let proxy = DelayProxy::start(moto.port);
        let mut sb = Sandbox::new(&proxy.endpoint());
        sb.env.use_git();
        sb.env.set_time_limit(LIMIT);
        sb.git_sops(&["install", "--global"]).ok();
        let age = with_age.then(|| sb.age_identity("age.txt"));
        std::fs::create_dir_all(sb.path("repo/secrets")).expect("mkdir");
        let w = World {
            sb,
            proxy,
            age: age.as_ref().map(|(p, _)| p.clone()),
        };
        w.git(&["init", "-q", "-b", "main"]);
        let age_line = age
            .map(|(_, r)| format!("    age: {r}\n"))
            .unwrap_or_default();
        w.sb.write(
            "repo/.sops.yaml",
            &format!(
                "creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    kms: {}\n{age_line}",
                keys.a
            ),
        );
        w.sb.write(
            "repo/.gitattributes",
            "secrets/*.yaml filter=sops diff=sops -text\n",
        );
        for i in 0..FILES {
            w.sb.write(&format!("repo/secrets/s{i:03}.yaml"), &plaintext(i));
        }
        w
    }

    fn git(&self, args: &[&str]) -> String {
        let out = self
            .sb
            .env
            .tool("git")
            .current_dir(self.sb.path("repo"))
            .args(args)
            .run();
        assert!(out.success(), "git {args:?} failed: {}", out.describe());
        out.stdout_str()
    }

    /// `git add -A` and commit with a simulated KMS round trip; returns the
    /// number of KMS `Encrypt` requests.
    fn add_and_commit(&self, delay_ms: u64) -> usize {
        self.proxy.set_delay(Duration::from_millis(delay_ms));
        self.proxy.reset();
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "new secrets"]);
        let encrypts = self.proxy.count("Encrypt");
        self.proxy.set_delay(Duration::ZERO);
        assert_eq!(
            self.git(&["status", "--porcelain"]),
            "",
            "clean after the commit"
        );
        encrypts
    }

    fn blob(&self, i: usize) -> String {
        self.git(&["cat-file", "-p", &format!("HEAD:secrets/s{i:03}.yaml")])
    }

    /// Every committed file is a SOPS file with a KMS entry, no plaintext, and
    /// a sample of them (first, last and some between) opens with sops 3.11
    /// through KMS alone.
    fn assert_committed_files_are_sops(&self) {
        for i in 0..FILES {
            let blob = self.blob(i);
            assert!(
                blob.contains("\nsops:\n") && blob.contains("    kms:\n"),
                "s{i:03}: {blob}"
            );
            assert!(
                !blob.contains(&format!("pw-{i}-Zq8xL2")),
                "s{i:03} holds plaintext"
            );
        }
        for i in [0, 1, 2, 17, FILES / 2, FILES - 2, FILES - 1] {
            let file = self.sb.write(&format!("check-{i}.yaml"), &self.blob(i));
            let out = self
                .sb
                .env
                .sops()
                .env_remove("SOPS_AGE_KEY_FILE")
                .args(["decrypt", "--input-type", "yaml", "--output-type", "yaml"])
                .arg(&file)
                .run();
            assert!(out.success(), "sops decrypt s{i:03}: {}", out.describe());
            assert_eq!(out.stdout_str(), plaintext(i), "s{i:03}");
        }
    }

    /// Each file's data key, read through its age entry with `age -d`.
    fn data_keys(&self) -> Vec<Vec<u8>> {
        let identity = self.age.as_ref().expect("an age recipient");
        (0..FILES)
            .map(|i| {
                let blob = self.blob(i);
                let mut armored = String::new();
                for line in blob
                    .lines()
                    .map(str::trim)
                    .skip_while(|l| *l != "-----BEGIN AGE ENCRYPTED FILE-----")
                {
                    armored.push_str(line);
                    armored.push('\n');
                    if line == "-----END AGE ENCRYPTED FILE-----" {
                        break;
                    }
                }
                assert!(armored.contains("-----END AGE"), "s{i:03}: {blob}");
                let out = self
                    .sb
                    .env
                    .tool("age")
                    .args(["-d", "-i"])
                    .arg(identity)
                    .stdin(armored)
                    .run();
                assert!(out.success(), "age -d s{i:03}: {}", out.describe());
                out.stdout
            })
            .collect()
    }
}

/// The `Encrypt` requests of a `git add` of FILES new files: one per file, plus
/// at most min(AHEAD_CAP, FILES - 1) prepared ahead and never used.
fn assert_bounded(encrypts: usize, failed: usize) {
    assert!(
        encrypts >= FILES && encrypts <= FILES + AHEAD_CAP.min(FILES - 1) + failed,
        "{encrypts} Encrypt requests for {FILES} new files ({failed} refused)"
    );
}

#[test]
fn many_new_files_get_their_own_data_keys_wrapped_ahead_and_concurrently() {
    let w = World::new(true);
    let encrypts = w.add_and_commit(50);
    let concurrent = w.proxy.max_concurrent("Encrypt");
    println!("{FILES} new files: {encrypts} Encrypt requests, at most {concurrent} at once");
    assert_bounded(encrypts, 0);
    // git hands over one file at a time: only wrapping ahead overlaps calls.
    assert!(concurrent > 1, "Encrypt calls never overlapped");
    w.assert_committed_files_are_sops();
    let keys = w.data_keys();
    assert!(keys.iter().all(|k| k.len() == 32), "32-byte data keys");
    let distinct: HashSet<&Vec<u8>> = keys.iter().collect();
    assert_eq!(distinct.len(), FILES, "every file has its own data key");

    // One more new file in a later `git add`: a new filter process, one
    // Encrypt, nothing prepared ahead for it.
    w.sb.write("repo/secrets/one.yaml", &plaintext(999));
    w.proxy.reset();
    w.git(&["add", "secrets/one.yaml"]);
    assert_eq!(
        w.proxy.count("Encrypt"),
        1,
        "a single new file costs one Encrypt"
    );
    assert_eq!(w.git(&["status", "--porcelain"]), "A  secrets/one.yaml\n");
}

#[test]
fn throttling_while_wrapping_ahead_loses_no_file() {
    let w = World::new(false);
    // Fewer throttles than the SDK's and the batch's retries need to give up on
    // a call: every call succeeds in the end, after rounds of backoff.
    // (Only calls made while another is in flight: a file's own call is made
    // alone, and three throttles in a row would fail it, as they would without
    // wrapping ahead.)
    w.proxy.throttle_concurrent("Encrypt", 10);
    let encrypts = w.add_and_commit(20);
    assert_bounded(encrypts, 10);
    w.assert_committed_files_are_sops();
}

#[test]
fn a_refused_call_while_wrapping_ahead_falls_back_and_loses_no_file() {
    let w = World::new(false);
    // AccessDenied, but only for calls made while another one is in flight:
    // calls made ahead in batches fail, a file's own call (alone) never does.
    const REFUSED: usize = 12;
    w.proxy.deny("Encrypt", REFUSED, true);
    let encrypts = w.add_and_commit(20);
    assert_bounded(encrypts, REFUSED);
    w.assert_committed_files_are_sops();
}

#[test]
fn a_key_refused_for_good_fails_the_add_with_the_real_error() {
    let w = World::new(false);
    w.proxy.deny("Encrypt", usize::MAX, false);
    let out =
        w.sb.env
            .tool("git")
            .current_dir(w.sb.path("repo"))
            .args(["add", "-A"])
            .run();
    assert!(!out.success(), "git add succeeded without KMS");
    assert!(
        out.stderr.contains("AWS denied kms:Encrypt") || out.stderr.contains("AccessDenied"),
        "{}",
        out.stderr
    );
    assert!(
        w.proxy.count("Encrypt") <= 3,
        "{} Encrypt requests after a refusal",
        w.proxy.count("Encrypt")
    );
    let staged = w.git(&["ls-files", "--", "secrets"]);
    assert_eq!(staged, "", "nothing staged");
}

/// Two recipient sets whose new files alternate (git cleans in path order):
/// each file is encrypted for its own rule's key only, never with a key
/// prepared for the other set, and sops opens both kinds.
#[test]
fn files_of_two_rules_in_turn_each_get_keys_for_their_own_rule() {
    let w = World::new(false);
    let (_, keys) = shared();
    w.sb.write(
        "repo/.sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: -a\\.yaml$\n    kms: {}\n  - path_regex: -b\\.yaml$\n    kms: {}\n",
            keys.a, keys.b
        ),
    );
    const PAIRS: usize = 30;
    for i in 0..PAIRS {
        for side in ["a", "b"] {
            w.sb.write(
                &format!("repo/secrets/p{i:03}-{side}.yaml"),
                &format!("token: {side}-{i}-secret\n"),
            );
        }
    }
    w.proxy.set_delay(Duration::from_millis(20));
    w.proxy.reset();
    w.git(&["add", "secrets/*-a.yaml", "secrets/*-b.yaml"]);
    let encrypts = w.proxy.count("Encrypt");
    w.proxy.set_delay(Duration::ZERO);
    assert!(
        (2 * PAIRS..=2 * PAIRS + 2 * AHEAD_CAP).contains(&encrypts),
        "{encrypts} Encrypt requests"
    );
    for i in 0..PAIRS {
        for (side, arn) in [("a", &keys.a), ("b", &keys.b)] {
            let name = format!("secrets/p{i:03}-{side}.yaml");
            let blob = w.git(&["cat-file", "-p", &format!(":{name}")]);
            let arns: Vec<&str> = blob
                .lines()
                .filter_map(|l| l.trim().strip_prefix("- arn: "))
                .collect();
            assert_eq!(arns, [arn.as_str()], "{name}: {blob}");
            if i % 10 == 9 {
                let file = w.sb.write(&format!("check-{i}-{side}.yaml"), &blob);
                let out =
                    w.sb.env
                        .sops()
                        .args(["decrypt", "--input-type", "yaml", "--output-type", "yaml"])
                        .arg(&file)
                        .run();
                assert!(out.success(), "sops decrypt {name}: {}", out.describe());
                assert_eq!(out.stdout_str(), format!("token: {side}-{i}-secret\n"));
            }
        }
    }
}
