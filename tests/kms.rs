//! AWS KMS master keys and the key-management commands, against a real KMS API
//! (moto 5.2.5 on loopback) and the real sops 3.11: round trips, interop both
//! ways (context, role, profile, key groups with Shamir), every failure class
//! with its own message in bounded time, `updatekeys` and `rotate`, and bad input
//! that must leave files untouched.
#![cfg(feature = "kms")] // AWS KMS (moto); an age-only build skips this file.

mod common;
mod kms_support;

use std::time::Duration;

use kms_support::{enc_values, enforcing, free_port, shared, yaml_field, Sandbox};

/// In sops' canonical YAML layout, so `sops decrypt` prints it back byte for byte.
const PLAIN: &str =
    "db:\n    user: admin\n    password: hunter2\nport: 5432\nregion: eu\nlist:\n    - a\n    - b\n";
const PLAIN_JSON: &str =
    "{\n\t\"db\": {\n\t\t\"password\": \"hunter2\"\n\t},\n\t\"port\": 5432\n}\n";

/// How long any single failure may take to be reported.
const FAIL_BOUND: Duration = Duration::from_secs(15);

fn sandbox() -> Sandbox {
    let (moto, _) = shared();
    Sandbox::new(&moto.endpoint())
}

fn keys() -> &'static kms_support::Keys {
    &shared().1
}

/// A loopback endpoint that refuses connections.
fn closed_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

#[test]
fn round_trip_with_and_without_context() {
    let sb = sandbox();
    sb.write("plain.yaml", PLAIN);
    let enc = sb
        .git_sops(&["encrypt", "--kms", &keys().a, "plain.yaml"])
        .ok()
        .stdout_str();
    assert_eq!(yaml_field(&enc, "arn").as_deref(), Some(keys().a.as_str()));
    assert!(
        enc.contains("aws_profile: \"\""),
        "aws_profile is always written:\n{enc}"
    );
    assert!(!enc.contains("context:") && !enc.contains("role:"));
    sb.write("enc.yaml", &enc);
    let t = sb.git_sops(&["decrypt", "enc.yaml"]);
    let t = t.ok();
    assert_eq!(t.stdout_str(), PLAIN);
    eprintln!(
        "timing: decrypt with one KMS call (whole process): {:?}",
        t.elapsed
    );

    // A context is written sorted by key, between `arn` and `created_at`.
    let enc = sb
        .git_sops(&[
            "encrypt",
            "--kms",
            &keys().a,
            "--encryption-context",
            "team:payments,env:prod",
            "plain.yaml",
        ])
        .ok()
        .stdout_str();
    let block = &enc[enc.find("    kms:").expect("kms block")..];
    let order: Vec<usize> = [
        "- arn: ",
        "context:",
        "env: prod",
        "team: payments",
        "created_at: ",
        "enc: ",
        "aws_profile: ",
    ]
    .iter()
    .map(|f| {
        block
            .find(f)
            .unwrap_or_else(|| panic!("{f} missing:\n{block}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "field order:\n{block}"
    );
    sb.write("ctx.yaml", &enc);
    assert_eq!(
        sb.git_sops(&["decrypt", "ctx.yaml"]).ok().stdout_str(),
        PLAIN
    );

    // JSON, and SOPS_KMS_ARN instead of the flag.
    sb.write("plain.json", PLAIN_JSON);
    let enc = sb
        .git_sops_env(&["encrypt", "plain.json"], &[("SOPS_KMS_ARN", &keys().eu)])
        .ok()
        .stdout_str();
    assert!(enc.contains(&format!("\"arn\": \"{}\"", keys().eu)));
    sb.write("enc.json", &enc);
    assert_eq!(
        sb.git_sops(&["decrypt", "enc.json"]).ok().stdout_str(),
        PLAIN_JSON
    );
}

#[test]
fn sops_decrypts_our_kms_files() {
    let (moto, keys) = shared();
    let mut sb = sandbox();
    sb.write("plain.yaml", PLAIN);
    sb.write("plain.json", PLAIN_JSON);
    let role = "arn:aws:iam::123456789012:role/sops-interop";
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("plain", vec!["--kms".into(), keys.a.clone()]),
        (
            "context",
            vec![
                "--kms".into(),
                keys.b.clone(),
                "--encryption-context".into(),
                "app:web,env:prod".into(),
            ],
        ),
        ("role", vec!["--kms".into(), format!("{}+{role}", keys.c)]),
        ("region", vec!["--kms".into(), keys.eu.clone()]),
    ];
    for (name, flags) in &cases {
        for ext in ["yaml", "json"] {
            let mut args: Vec<&str> = vec!["encrypt"];
            args.extend(flags.iter().map(String::as_str));
            let input = format!("plain.{ext}");
            args.push(&input);
            let enc = sb.git_sops(&args).ok().stdout_str();
            let file = format!("out-{name}.{ext}");
            sb.write(&file, &enc);
            let before = moto.assumed_roles().len();
            let out = sb.sops(&["decrypt", &file]);
            let out = out.ok();
            let want = if ext == "yaml" { PLAIN } else { PLAIN_JSON };
            assert_eq!(out.stdout_str(), want, "sops decrypt of our {file}");
            if *name == "role" {
                let roles = moto.assumed_roles();
                assert!(roles.len() > before, "sops assumed the role");
                assert!(roles
                    .iter()
                    .any(|(r, s)| r == role && s.starts_with("sops@")));
                assert!(
                    enc.contains(&format!("role: {role}"))
                        || enc.contains(&format!("\"role\": \"{role}\""))
                );
            }
        }
    }

    // A profile: credentials only in a shared credentials file, under a profile.
    sb.write(
        "aws-credentials",
        "[team]\naws_access_key_id = test\naws_secret_access_key = test\n",
    );
    sb.write("aws-config", "[profile team]\nregion = us-east-1\n");
    sb.set("AWS_ACCESS_KEY_ID", None)
        .set("AWS_SECRET_ACCESS_KEY", None);
    let enc = sb
        .git_sops(&[
            "encrypt",
            "--kms",
            &keys.a,
            "--aws-profile",
            "team",
            "plain.yaml",
        ])
        .ok()
        .stdout_str();
    assert!(enc.contains("aws_profile: team"), "{enc}");
    sb.write("profile.yaml", &enc);
    assert_eq!(
        sb.sops(&["decrypt", "profile.yaml"]).ok().stdout_str(),
        PLAIN
    );
    // Without that profile there are no credentials at all.
    std::fs::remove_file(sb.path("aws-credentials")).expect("rm");
    sb.git_sops(&["decrypt", "profile.yaml"])
        .fails_with(128, &["no AWS credentials for profile \"team\""]);
}

#[test]
fn we_decrypt_sops_kms_files() {
    let (moto, keys) = shared();
    let mut sb = sandbox();
    sb.write("plain.yaml", PLAIN);
    let role = "arn:aws:iam::123456789012:role/from-sops";
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("plain", vec!["--kms".into(), keys.a.clone()]),
        (
            "context",
            vec![
                "--kms".into(),
                keys.b.clone(),
                "--encryption-context".into(),
                "Env:prod,app:x".into(),
            ],
        ),
        ("role", vec!["--kms".into(), format!("{}+{role}", keys.c)]),
        ("region", vec!["--kms".into(), keys.eu.clone()]),
    ];
    for (name, flags) in &cases {
        let mut args: Vec<&str> = vec!["encrypt"];
        args.extend(flags.iter().map(String::as_str));
        args.push("plain.yaml");
        let enc = sb.sops(&args).ok().stdout_str();
        let file = format!("out-{name}.yaml");
        sb.write(&file, &enc);
        let before = moto
            .assumed_roles()
            .iter()
            .filter(|(r, _)| r == role)
            .count();
        let out = sb.git_sops(&["decrypt", &file]);
        let out = out.ok();
        assert_eq!(out.stdout_str(), PLAIN, "our decrypt of sops' {file}");
        if *name == "role" {
            let roles = moto.assumed_roles();
            let ours: Vec<_> = roles.iter().filter(|(r, _)| r == role).collect();
            assert!(ours.len() > before, "git-sops assumed the role: {roles:?}");
            assert!(ours
                .iter()
                .all(|(_, s)| s.starts_with("sops@") && s.len() <= 64));
        }
    }

    // A profile, in a config file only.
    sb.write(
        "aws-credentials",
        "[ops]\naws_access_key_id = test\naws_secret_access_key = test\n",
    );
    sb.write("aws-config", "[profile ops]\nregion = eu-west-1\n");
    sb.set("AWS_ACCESS_KEY_ID", None)
        .set("AWS_SECRET_ACCESS_KEY", None);
    let enc = sb
        .sops(&[
            "encrypt",
            "--kms",
            &keys.a,
            "--aws-profile",
            "ops",
            "plain.yaml",
        ])
        .ok()
        .stdout_str();
    sb.write("profile.yaml", &enc);
    assert_eq!(
        sb.git_sops(&["decrypt", "profile.yaml"]).ok().stdout_str(),
        PLAIN
    );
}

#[test]
fn wrong_context_fails_clearly_and_writes_nothing() {
    let sb = sandbox();
    sb.write("plain.yaml", PLAIN);
    let enc = sb
        .git_sops(&[
            "encrypt",
            "--kms",
            &keys().a,
            "--encryption-context",
            "env:prod",
            "plain.yaml",
        ])
        .ok()
        .stdout_str();
    let tampered = enc.replace("env: prod", "env: dev");
    assert_ne!(tampered, enc);
    sb.write("wrong.yaml", &tampered);
    let r = sb.git_sops(&["decrypt", "wrong.yaml"]);
    let r = r.fails_with(
        128,
        &[
            "InvalidCiphertextException",
            "the encryption context {env:dev} is not the one it was encrypted with",
            &keys().a,
        ],
    );
    assert!(r.elapsed < FAIL_BOUND);
    // sops agrees that it cannot be opened.
    assert_ne!(sb.sops(&["decrypt", "wrong.yaml"]).code, Some(0));
    // Neither rotate nor updatekeys touches it.
    sb.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - kms: {}\n", keys().b),
    );
    sb.git_sops(&["rotate", "-i", "wrong.yaml"])
        .fails_with(128, &["InvalidCiphertextException"]);
    sb.git_sops(&["updatekeys", "--yes", "wrong.yaml"])
        .fails_with(128, &["InvalidCiphertextException"]);
    assert_eq!(sb.read("wrong.yaml"), tampered);
}

#[test]
fn unreachable_endpoint_is_reported_quickly() {
    let (moto, keys) = shared();
    let sb = Sandbox::new(&moto.endpoint());
    sb.write("plain.yaml", PLAIN);
    let enc = sb
        .git_sops(&["encrypt", "--kms", &keys.a, "plain.yaml"])
        .ok()
        .stdout_str();
    sb.write("enc.yaml", &enc);
    let dead = closed_endpoint();
    let r = sb.git_sops_env(&["decrypt", "enc.yaml"], &[("AWS_ENDPOINT_URL", &dead)]);
    let r = r.fails_with(
        128,
        &[
            &format!("could not reach AWS KMS at {dead}"),
            "Connection refused",
            "AWS_ENDPOINT_URL",
        ],
    );
    eprintln!(
        "timing: unreachable endpoint reported after {:?}",
        r.elapsed
    );
    assert!(r.elapsed < FAIL_BOUND, "took {:?}", r.elapsed);
    // AWS_ENDPOINT_URL_KMS wins over AWS_ENDPOINT_URL.
    let r = sb.git_sops_env(
        &["decrypt", "enc.yaml"],
        &[
            ("AWS_ENDPOINT_URL", &dead),
            ("AWS_ENDPOINT_URL_KMS", &moto.endpoint()),
        ],
    );
    r.ok();
    // Encrypting to an unreachable KMS writes nothing.
    let r = sb.git_sops_env(
        &["encrypt", "-i", "--kms", &keys.a, "plain.yaml"],
        &[("AWS_ENDPOINT_URL", &dead)],
    );
    r.fails_with(
        1,
        &[
            "could not encrypt the data key for kms",
            "could not reach AWS KMS",
        ],
    );
    assert_eq!(sb.read("plain.yaml"), PLAIN);
}

#[test]
fn a_silent_endpoint_times_out() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (moto, keys) = shared();
    let sb = Sandbox::new(&moto.endpoint());
    sb.write("plain.yaml", PLAIN);
    // Two keys in the group: the second is not given another 2 s, because a
    // timeout holds for every call through the same client in this process.
    let enc = sb
        .git_sops(&[
            "encrypt",
            "--kms",
            &format!("{},{}", keys.a, keys.b),
            "plain.yaml",
        ])
        .ok()
        .stdout_str();
    sb.write("enc.yaml", &enc);
    let silent = format!("http://127.0.0.1:{port}");
    let r = sb.git_sops_env(
        &["decrypt", "enc.yaml"],
        &[("AWS_ENDPOINT_URL", &silent), ("GIT_SOPS_KMS_TIMEOUT", "2")],
    );
    let r = r.fails_with(
        128,
        &[
            &format!("AWS KMS at {silent} did not answer within 2 s"),
            "GIT_SOPS_KMS_TIMEOUT",
        ],
    );
    eprintln!(
        "timing: silent endpoint reported after {:?} (budget 2 s)",
        r.elapsed
    );
    assert_eq!(r.stderr.matches("did not answer within 2 s").count(), 2);
    assert!(
        r.elapsed < Duration::from_millis(3900),
        "took {:?}",
        r.elapsed
    );
    drop(holder);
}

#[test]
fn no_credentials_is_reported() {
    let mut sb = sandbox();
    sb.write("plain.yaml", PLAIN);
    let enc = sb
        .git_sops(&["encrypt", "--kms", &keys().a, "plain.yaml"])
        .ok()
        .stdout_str();
    sb.write("enc.yaml", &enc);
    sb.set("AWS_ACCESS_KEY_ID", None)
        .set("AWS_SECRET_ACCESS_KEY", None);
    let r = sb.git_sops(&["decrypt", "enc.yaml"]);
    let r = r.fails_with(
        128,
        &[
            "no AWS credentials (",
            "no credentials found",
            "aws sso login",
            "AWS_PROFILE",
        ],
    );
    assert!(r.elapsed < FAIL_BOUND);
    sb.git_sops(&["encrypt", "--kms", &keys().a, "plain.yaml"])
        .fails_with(1, &["no AWS credentials"]);
}

#[test]
fn access_denied_and_rejected_credentials_are_reported() {
    let (moto, world) = enforcing();
    let mut sb = Sandbox::new(&moto.endpoint());
    sb.write("plain.yaml", PLAIN);
    // Allowed to encrypt, not to decrypt.
    sb.as_user(&world.encrypt_only);
    let enc = sb
        .git_sops(&["encrypt", "--kms", &world.key, "plain.yaml"])
        .ok()
        .stdout_str();
    sb.write("enc.yaml", &enc);
    let r = sb.git_sops(&["decrypt", "enc.yaml"]);
    let r = r.fails_with(
        128,
        &[
            "AWS denied kms:Decrypt",
            "not authorized to perform: kms:Decrypt",
            "key policy or IAM",
        ],
    );
    assert!(r.elapsed < FAIL_BOUND);
    // sops is refused too (same file, same identity).
    assert_eq!(sb.sops(&["decrypt", "enc.yaml"]).code, Some(128));
    // The user with kms:Decrypt opens it.
    sb.as_user(&world.no_sts);
    assert_eq!(
        sb.git_sops(&["decrypt", "enc.yaml"]).ok().stdout_str(),
        PLAIN
    );
    // Credentials AWS does not know.
    sb.set("AWS_ACCESS_KEY_ID", Some("AKIAUNKNOWN000000000"))
        .set("AWS_SECRET_ACCESS_KEY", Some("x"));
    sb.git_sops(&["decrypt", "enc.yaml"])
        .fails_with(128, &["AWS rejected the credentials (InvalidClientTokenId"]);
}

#[test]
fn a_role_that_cannot_be_assumed_fails_clearly_and_writes_nothing() {
    let (moto, world) = enforcing();
    let mut sb = Sandbox::new(&moto.endpoint());
    sb.write("plain.yaml", PLAIN);
    sb.as_user(&world.no_sts);
    let r = sb.git_sops(&[
        "encrypt",
        "-i",
        "--kms",
        &format!("{}+{}", world.key, world.role),
        "plain.yaml",
    ]);
    let r = r.fails_with(
        1,
        &[
            &format!("could not assume role {}", world.role),
            "STS AssumeRole: AccessDenied",
            "trust policy",
        ],
    );
    assert!(r.elapsed < FAIL_BOUND);
    assert_eq!(sb.read("plain.yaml"), PLAIN);
}

#[test]
fn malformed_keys_fail_before_any_network_call() {
    // The endpoint is dead: these must fail on the input, not on the network.
    let sb = Sandbox::new(&closed_endpoint());
    sb.write("plain.yaml", PLAIN);
    sb.git_sops(&[
        "encrypt",
        "-i",
        "--kms",
        "arn:aws:kms:eu-west-1:key/abc",
        "plain.yaml",
    ])
    .fails_with(
        1,
        &[
            "is not an AWS KMS key ARN",
            "arn:aws:kms:REGION:ACCOUNT:key/KEY-ID",
        ],
    );
    sb.git_sops(&[
        "encrypt",
        "-i",
        "--kms",
        "arn:aws:kms:eu-west-1:123456789012:key/abc+arn:aws:iam::123456789012:user/bob",
        "plain.yaml",
    ])
    .fails_with(1, &["is not an IAM role ARN"]);
    sb.git_sops(&[
        "encrypt",
        "--kms",
        &keys().a,
        "--encryption-context",
        "a:b:c",
        "plain.yaml",
    ])
    .fails_with(6, &["--encryption-context", "not a key:value pair"]);
    // From .sops.yaml as well.
    sb.write(".sops.yaml", "creation_rules:\n  - kms: not-an-arn\n");
    sb.git_sops(&["encrypt", "-i", "plain.yaml"])
        .fails_with(1, &["\"not-an-arn\" is not an AWS KMS key ARN"]);
    assert_eq!(sb.read("plain.yaml"), PLAIN);
}

#[test]
fn an_enc_that_is_not_base64_fails_clearly_and_writes_nothing() {
    let sb = sandbox();
    sb.write("plain.yaml", PLAIN);
    let enc = sb
        .git_sops(&["encrypt", "--kms", &keys().a, "plain.yaml"])
        .ok()
        .stdout_str();
    let enc_line = enc
        .lines()
        .find(|l| l.trim_start().starts_with("enc: "))
        .expect("enc line");
    let broken = enc.replace(enc_line, "          enc: '%%% not base64 %%%'");
    sb.write("broken.yaml", &broken);
    sb.git_sops(&["decrypt", "broken.yaml"]).fails_with(
        128,
        &["is not valid base64", "restore it from version control"],
    );
    sb.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - kms: {}\n", keys().b),
    );
    sb.git_sops(&["updatekeys", "-y", "broken.yaml"])
        .fails_with(128, &["not valid base64"]);
    sb.git_sops(&["rotate", "-i", "broken.yaml"])
        .fails_with(128, &["not valid base64"]);
    assert_eq!(sb.read("broken.yaml"), broken);
}

#[test]
fn key_groups_with_shamir_both_ways_with_sops() {
    let (moto, keys) = shared();
    let sb = Sandbox::new(&moto.endpoint());
    let (id1, r1) = sb.age_identity("id1.txt");
    let (_id3, r3) = sb.age_identity("id3.txt");
    // Three groups, any two open the file: age (available), KMS with a context
    // (available), age whose identity is not given to anyone here.
    sb.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: \\.yaml$\n    shamir_threshold: 2\n    key_groups:\n      - age: [{r1}]\n      - kms:\n          - arn: {}\n            context: {{tier: gold, app: api}}\n      - age: [{r3}]\n",
            keys.a
        ),
    );
    sb.write("plain.yaml", PLAIN);
    let ours = sb.git_sops(&["encrypt", "plain.yaml"]).ok().stdout_str();
    assert!(
        ours.contains("shamir_threshold: 2") && ours.contains("key_groups:"),
        "{ours}"
    );
    sb.write("ours.yaml", &ours);
    let theirs = sb.sops(&["encrypt", "plain.yaml"]).ok().stdout_str();
    sb.write("theirs.yaml", &theirs);
    let id1 = id1.to_string_lossy().into_owned();
    for (who, file) in [("sops", "ours.yaml"), ("git-sops", "theirs.yaml")] {
        let env = [("SOPS_AGE_KEY_FILE", id1.as_str())];
        let out = if who == "sops" {
            sb.sops_env(&["decrypt", file], &env)
        } else {
            sb.git_sops_env(&["decrypt", file], &env)
        };
        let out = out.ok();
        assert_eq!(out.stdout_str(), PLAIN, "{who} decrypts {file}");
    }
    // Only one group can be opened when KMS is unreachable: a combined report.
    let dead = closed_endpoint();
    let r = sb.git_sops_env(
        &["decrypt", "theirs.yaml"],
        &[
            ("SOPS_AGE_KEY_FILE", id1.as_str()),
            ("AWS_ENDPOINT_URL", &dead),
        ],
    );
    r.fails_with(
        128,
        &[
            "key group 1 of 3:",
            "opened",
            "key group 2 of 3:",
            "could not reach AWS KMS",
            "key group 3 of 3:",
            "only 1 of the 2 key groups needed",
        ],
    );
    // KMS plus the age group: both are needed, and enough.
    let r = sb.git_sops_env(
        &["decrypt", "ours.yaml"],
        &[("SOPS_AGE_KEY_FILE", id1.as_str())],
    );
    r.ok();
}

#[test]
fn updatekeys_rewraps_the_same_data_key_and_keeps_values_byte_identical() {
    let (moto, keys) = shared();
    let sb = Sandbox::new(&moto.endpoint());
    let (id1, r1) = sb.age_identity("id1.txt");
    let id1 = id1.to_string_lossy().into_owned();
    sb.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: \\.yaml$\n    kms: {}\n",
            keys.a
        ),
    );
    sb.write("secrets.yaml", PLAIN);
    sb.sops(&["encrypt", "-i", "secrets.yaml"]).ok();
    let before = sb.read("secrets.yaml");

    // Nothing to do yet.
    let r = sb.git_sops(&["updatekeys", "-y", "secrets.yaml"]);
    let r = r.ok();
    assert!(r.stderr.contains("already up to date"), "{}", r.stderr);
    assert_eq!(sb.read("secrets.yaml"), before);

    // Onboard a KMS key in another region and an age recipient.
    sb.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: \\.yaml$\n    kms: {},{}\n    age: {r1}\n",
            keys.a, keys.eu
        ),
    );
    // No terminal and no --yes: refuse, write nothing.
    let r = sb.git_sops(&["updatekeys", "secrets.yaml"]);
    r.fails_with(
        2,
        &[
            "+++ age ",
            &format!("+++ kms {}", keys.eu),
            &format!("    kms {}", keys.a),
            "--yes",
        ],
    );
    assert_eq!(sb.read("secrets.yaml"), before);
    sb.git_sops(&["updatekeys", "--yes", "secrets.yaml"]).ok();
    let after = sb.read("secrets.yaml");
    assert_eq!(
        enc_values(&after),
        enc_values(&before),
        "every ENC[...] byte-identical"
    );
    assert!(!enc_values(&after).is_empty());
    for f in ["lastmodified", "mac", "version", "unencrypted_suffix"] {
        assert_eq!(
            yaml_field(&after, f),
            yaml_field(&before, f),
            "{f} unchanged"
        );
    }
    assert_eq!(
        after[..after.find("\nsops:").expect("sops")],
        before[..before.find("\nsops:").expect("sops")]
    );
    // The new age recipient opens it with sops, without any KMS.
    let dead = closed_endpoint();
    let r = sb.sops_env(
        &["decrypt", "secrets.yaml"],
        &[("SOPS_AGE_KEY_FILE", &id1), ("AWS_ENDPOINT_URL", &dead)],
    );
    let r = r.ok();
    assert_eq!(r.stdout_str(), PLAIN);

    // Offboard: the rule keeps only the EU key; the age recipient is removed.
    sb.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: \\.yaml$\n    kms: {}\n",
            keys.eu
        ),
    );
    let r = sb.git_sops(&["updatekeys", "-y", "secrets.yaml"]);
    let r = r.ok();
    assert!(
        r.stderr.contains(&format!("--- age {r1}"))
            && r.stderr.contains(&format!("--- kms {}", keys.a)),
        "{}",
        r.stderr
    );
    let offboarded = sb.read("secrets.yaml");
    assert_eq!(enc_values(&offboarded), enc_values(&before));
    assert!(!offboarded.contains(&r1) && !offboarded.contains(&keys.a));
    assert_eq!(
        sb.sops(&["decrypt", "secrets.yaml"]).ok().stdout_str(),
        PLAIN
    );
    sb.git_sops_env(
        &["decrypt", "secrets.yaml"],
        &[("SOPS_AGE_KEY_FILE", &id1), ("AWS_ENDPOINT_URL", &dead)],
    )
    .fails_with(128, &["could not reach AWS KMS"]);

    // A file git-sops wrote in its own layout keeps every byte outside the block.
    sb.write("ours.yaml", "# top comment\nb: 2   # inline\na:\n  - x\n");
    sb.git_sops(&["encrypt", "-i", "ours.yaml"]).ok();
    let ours = sb.read("ours.yaml");
    sb.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: \\.yaml$\n    kms: {}\n    age: {r1}\n",
            keys.eu
        ),
    );
    sb.git_sops(&["updatekeys", "-y", "ours.yaml"]).ok();
    let updated = sb.read("ours.yaml");
    assert_eq!(
        ours[..ours.find("sops:").expect("sops")],
        updated[..updated.find("sops:").expect("sops")]
    );
    let r = sb.sops_env(
        &["decrypt", "ours.yaml"],
        &[("SOPS_AGE_KEY_FILE", &id1), ("AWS_ENDPOINT_URL", &dead)],
    );
    r.ok();
}

#[test]
fn updatekeys_to_key_groups_and_sops_reads_it() {
    let (moto, keys) = shared();
    let sb = Sandbox::new(&moto.endpoint());
    let (id1, r1) = sb.age_identity("id1.txt");
    let id1 = id1.to_string_lossy().into_owned();
    sb.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - kms: {}\n", keys.a),
    );
    sb.write("s.json", PLAIN_JSON);
    sb.git_sops(&["encrypt", "-i", "s.json"]).ok();
    let before = sb.read("s.json");
    sb.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - key_groups:\n      - kms:\n          - arn: {}\n            role: arn:aws:iam::123456789012:role/ci\n      - age: [{r1}]\n",
            keys.b
        ),
    );
    let r = sb.git_sops(&["updatekeys", "-y", "s.json"]);
    let r = r.ok();
    assert!(
        r.stderr.contains("Group 2") && r.stderr.contains("+++ shamir_threshold"),
        "{}",
        r.stderr
    );
    let after = sb.read("s.json");
    assert_eq!(enc_values(&after), enc_values(&before));
    assert!(
        after.contains("\"shamir_threshold\": 2") && after.contains("\"key_groups\""),
        "{after}"
    );
    let r = sb.sops_env(&["decrypt", "s.json"], &[("SOPS_AGE_KEY_FILE", &id1)]);
    let r = r.ok();
    assert_eq!(r.stdout_str(), PLAIN_JSON);
}

#[test]
fn rotate_gives_a_new_data_key_that_sops_still_opens() {
    let (moto, keys) = shared();
    let sb = Sandbox::new(&moto.endpoint());
    let (id1, r1) = sb.age_identity("id1.txt");
    let id1 = id1.to_string_lossy().into_owned();
    sb.write("secrets.yaml", PLAIN);
    sb.sops(&[
        "encrypt",
        "-i",
        "--kms",
        &keys.a,
        "--age",
        &r1,
        "secrets.yaml",
    ])
    .ok();
    let before = sb.read("secrets.yaml");

    // Offboard the age recipient and bring in a second KMS key.
    let r = sb.git_sops(&[
        "rotate",
        "-i",
        "--rm-age",
        &r1,
        "--add-kms",
        &keys.eu,
        "secrets.yaml",
    ]);
    r.ok();
    let after = sb.read("secrets.yaml");
    let (old, new) = (enc_values(&before), enc_values(&after));
    assert_eq!(old.len(), new.len());
    assert!(
        old.iter().zip(&new).all(|(a, b)| a != b),
        "every value re-encrypted"
    );
    assert_ne!(yaml_field(&after, "mac"), yaml_field(&before, "mac"));
    assert_eq!(
        yaml_field(&after, "version"),
        yaml_field(&before, "version")
    );
    assert!(!after.contains(&r1) && after.contains(&keys.eu) && after.contains(&keys.a));
    assert_eq!(
        sb.sops(&["decrypt", "secrets.yaml"]).ok().stdout_str(),
        PLAIN
    );
    // The removed identity no longer opens it, even with sops.
    let dead = closed_endpoint();
    assert_eq!(
        sb.sops_env(
            &["decrypt", "secrets.yaml"],
            &[("SOPS_AGE_KEY_FILE", &id1), ("AWS_ENDPOINT_URL", &dead)]
        )
        .code,
        Some(128)
    );
    // Without -i the result goes to stdout and the file stays.
    let r = sb.git_sops(&["rotate", "secrets.yaml"]);
    let r = r.ok();
    assert!(r.stdout_str().contains("sops:"));
    assert_eq!(sb.read("secrets.yaml"), after);

    // A value changed outside sops: the MAC check refuses, nothing written.
    let removed_line = after
        .lines()
        .find(|l| l.starts_with("region: "))
        .expect("region line");
    let tampered = after.replacen(&format!("{removed_line}\n"), "", 1);
    sb.write("tampered.yaml", &tampered);
    sb.git_sops(&["rotate", "-i", "tampered.yaml"])
        .fails_with(51, &["MAC"]);
    assert_eq!(sb.read("tampered.yaml"), tampered);
    // A malformed key to add is refused before anything happens.
    sb.git_sops(&[
        "rotate",
        "-i",
        "--add-kms",
        "arn:aws:kms:nope",
        "secrets.yaml",
    ])
    .fails_with(2, &["is not an AWS KMS key ARN"]);
    assert_eq!(sb.read("secrets.yaml"), after);
}

#[test]
fn updatekeys_asks_on_a_terminal() {
    let (moto, keys) = shared();
    let sb = Sandbox::new(&moto.endpoint());
    sb.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - kms: {}\n", keys.a),
    );
    sb.write("s.yaml", PLAIN);
    sb.git_sops(&["encrypt", "-i", "s.yaml"]).ok();
    let before = sb.read("s.yaml");
    sb.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - kms: {}\n", keys.b),
    );
    // An unclear answer asks again; "n" leaves the file alone.
    let r = sb.git_sops_on_tty("updatekeys s.yaml", "maybe\nn\n");
    let r = r.ok();
    assert_eq!(
        r.stderr.matches("Is this okay? (y/n)").count(),
        2,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("left unchanged"));
    assert_eq!(sb.read("s.yaml"), before);
    let r = sb.git_sops_on_tty("updatekeys s.yaml", "y\n");
    let r = r.ok();
    assert!(r.stderr.contains("synced with new keys"), "{}", r.stderr);
    let after = sb.read("s.yaml");
    assert!(after.contains(&keys.b) && !after.contains(&keys.a));
    assert_eq!(enc_values(&after), enc_values(&before));
    assert_eq!(sb.sops(&["decrypt", "s.yaml"]).ok().stdout_str(), PLAIN);
}
