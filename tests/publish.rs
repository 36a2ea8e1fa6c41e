//! `git sops publish plan|apply` against moto 5.2.5's Secrets Manager, SSM, KMS
//! and STS on loopback, with SOPS files written by the real sops 3.11 under a
//! `.sops.yaml` that carries git-sops' `publish` section (so sops is shown to
//! accept it). Each test uses its own repository name and secret names, so the
//! tests share one moto server.
//!
//! What moto 5.2.5 does not do, and so is not proven here: Secrets Manager does
//! not check that a `KmsKeyId` exists (git-sops' own `kms:DescribeKey` check is
//! what fails the missing-key secret below), resource policies are stored but
//! never evaluated, replicas are recorded without a second region's copy being
//! readable as in AWS, and no request is ever throttled (the delay proxy of the
//! benchmark suite injects `ThrottlingException`s instead).
#![cfg(feature = "publish")]

mod common;
mod kms_support;
mod prefetch_support;

use std::time::{Duration, Instant};

use common::AgeKey;
use kms_support::{shared, Sandbox};
use prefetch_support::DelayProxy;

struct World {
    sb: Sandbox,
}

fn config(repo: &str, recipient: &str, rules: &str) -> String {
    format!(
        "creation_rules:\n  - path_regex: \\.yaml$\n    age: {recipient}\ngit_sops:\n  repository: {repo}\n  publish:\n{rules}"
    )
}

impl World {
    /// A git repository in a sandbox pointed at `endpoint`, with an age key.
    fn new(endpoint: &str, repo: &str, rules: &str) -> World {
        let key = AgeKey::generate();
        let mut sb = Sandbox::new(endpoint);
        sb.env.use_identities(&[&key]);
        sb.env.use_git();
        let w = World { sb };
        w.git(&["init", "-q", "-b", "main"]);
        w.sb.write(".sops.yaml", &config(repo, &key.recipient, rules));
        w
    }

    fn git(&self, args: &[&str]) -> common::Output {
        self.sb.env.tool("git").args(args).run().ok()
    }

    /// Write `plain` as a SOPS file at `path` with the real sops (which reads
    /// the `.sops.yaml` with the publish section), without committing.
    fn secret(&self, path: &str, plain: &str) {
        let p = self.sb.write(path, plain);
        self.sb
            .sops(&["encrypt", "-i", &p.display().to_string()])
            .ok();
    }

    fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", msg]);
    }

    fn publish(&self, args: &[&str]) -> common::Output {
        let mut a = vec!["publish"];
        a.extend_from_slice(args);
        self.sb.git_sops(&a)
    }
}

/// boto3 against the shared server; `kw` is already in scope.
fn boto(script: &str) -> serde_json::Value {
    shared().0.boto(script)
}

fn version(name: &str) -> String {
    boto(&format!(
        "sm = boto3.client('secretsmanager', **kw)\nprint(json.dumps(sm.get_secret_value(SecretId={name:?})['VersionId']))\n"
    ))
    .as_str()
    .unwrap()
    .to_string()
}

fn value(name: &str) -> serde_json::Value {
    let s = boto(&format!(
        "sm = boto3.client('secretsmanager', **kw)\nprint(json.dumps(sm.get_secret_value(SecretId={name:?})['SecretString']))\n"
    ));
    serde_json::from_str(s.as_str().unwrap()).unwrap()
}

fn no_values(out: &common::Output, values: &[&str]) {
    for v in values {
        assert!(!out.all().contains(v), "a value leaked: {}", out.describe());
    }
}

const CAPTURE_RULE: &str = "    - path_regex: ^secrets/(?P<service>[^/]+)/(?P<stage>[^/]+)\\.yaml$\n      secretsmanager:\n        name: \"{repository}/{service}/{stage}\"\n        region: us-east-1\n        description: \"{service} in {stage}\"\n        tags: {team: \"{service}\"}\n";

#[test]
fn create_update_unchanged_orphan_prune() {
    let (moto, _) = shared();
    let w = World::new(&moto.endpoint(), "t-life", CAPTURE_RULE);
    w.secret(
        "secrets/payments/prod.yaml",
        "user: pay\npassword: s3cret-one\n",
    );
    w.secret("secrets/orders/dev.yaml", "token: tok-xyz\n");
    w.commit("two");
    // sops 3.11 still reads the files and the config.
    let dec = w.sb.sops(&["decrypt", "secrets/payments/prod.yaml"]).ok();
    assert!(dec.stdout_str().contains("s3cret-one"));

    let plan = w.publish(&["plan"]).exits(2);
    no_values(&plan, &["s3cret-one", "tok-xyz", "pay\n"]);
    assert!(
        plan.stdout_str()
            .contains("create    secretsmanager us-east-1 t-life/payments/prod"),
        "{}",
        plan.describe()
    );
    assert!(
        plan.stdout_str().contains("added password"),
        "{}",
        plan.describe()
    );
    let json = w.publish(&["plan", "--format", "json"]).exits(2);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["summary"]["create"], 2);

    w.publish(&["apply", "--yes"]).ok();
    assert_eq!(
        value("t-life/payments/prod"),
        serde_json::json!({"user": "pay", "password": "s3cret-one"})
    );
    let tags = boto("sm = boto3.client('secretsmanager', **kw)\nd = sm.describe_secret(SecretId='t-life/payments/prod')\nprint(json.dumps({t['Key']: t['Value'] for t in d['Tags']}))\n");
    assert_eq!(tags["managed-by"], "git-sops");
    assert_eq!(tags["team"], "payments");
    assert_eq!(tags["git-sops:source"], "secrets/payments/prod.yaml");
    assert_eq!(tags["git-sops:repository"], "t-life");

    // Nothing to do: exit 0, and apply creates no version.
    let v1 = version("t-life/payments/prod");
    w.publish(&["plan"]).exits(0);
    w.publish(&["apply", "--yes"]).ok();
    assert_eq!(version("t-life/payments/prod"), v1);

    // One key changes: the plan names it (fingerprints, no values); the
    // working tree is not what is published, the commit is.
    w.sb.sops(&[
        "set",
        "secrets/payments/prod.yaml",
        "[\"password\"]",
        "\"s3cret-two\"",
    ])
    .ok();
    w.publish(&["plan"]).exits(0);
    w.commit("rotate");
    let plan = w.publish(&["plan"]).exits(2);
    no_values(&plan, &["s3cret-one", "s3cret-two"]);
    let text = plan.stdout_str();
    assert!(
        text.contains("update    secretsmanager us-east-1 t-life/payments/prod"),
        "{text}"
    );
    assert!(text.contains("changed password"), "{text}");
    assert!(!text.contains("changed user"), "{text}");
    w.publish(&["apply", "--yes"]).ok();
    assert_eq!(value("t-life/payments/prod")["password"], "s3cret-two");
    let v2 = version("t-life/payments/prod");
    assert_ne!(v2, v1);
    w.publish(&["apply", "--yes"]).ok();
    assert_eq!(version("t-life/payments/prod"), v2);

    // A file leaves git: its secret is an orphan, kept without --prune.
    w.git(&["rm", "-q", "secrets/orders/dev.yaml"]);
    w.commit("drop orders");
    let plan = w.publish(&["plan"]).exits(2);
    assert!(
        plan.stdout_str()
            .contains("orphan    secretsmanager us-east-1 t-life/orders/dev"),
        "{}",
        plan.describe()
    );
    let kept = w.publish(&["apply", "--yes"]).ok();
    assert!(kept.stdout_str().contains("kept"), "{}", kept.describe());
    // Pruning needs the repository named in .sops.yaml: by the default name
    // (the checkout's folder) it could delete another repository's secrets.
    let named = std::fs::read_to_string(w.sb.path(".sops.yaml")).unwrap();
    w.sb.write(".sops.yaml", &named.replace("  repository: t-life\n", ""));
    w.commit("unnamed");
    let refused = w.publish(&["apply", "--yes", "--prune"]).exits(1);
    assert!(
        refused.stderr.contains("names no `repository`"),
        "{}",
        refused.describe()
    );
    let d = boto("sm = boto3.client('secretsmanager', **kw)\nprint(json.dumps('DeletedDate' in sm.describe_secret(SecretId='t-life/orders/dev')))\n");
    assert_eq!(d, false);
    w.sb.write(".sops.yaml", &named);
    w.commit("named again");
    w.publish(&["apply", "--yes", "--prune", "--recovery-window", "7"])
        .ok();
    let d = boto("sm = boto3.client('secretsmanager', **kw)\nprint(json.dumps('DeletedDate' in sm.describe_secret(SecretId='t-life/orders/dev')))\n");
    assert_eq!(d, true);
    w.publish(&["plan"]).exits(0);
}

#[test]
fn adopt_is_refused_without_the_flag() {
    let (moto, _) = shared();
    boto("sm = boto3.client('secretsmanager', **kw)\nsm.create_secret(Name='t-adopt/legacy/prod', SecretString='{\"old\": \"x\"}')\nprint('0')\n");
    let w = World::new(&moto.endpoint(), "t-adopt", CAPTURE_RULE);
    w.secret("secrets/legacy/prod.yaml", "new: value-n\n");
    w.commit("one");
    let plan = w.publish(&["plan"]).exits(2);
    assert!(
        plan.stdout_str().contains("adopt     secretsmanager"),
        "{}",
        plan.describe()
    );
    let out = w.publish(&["apply", "--yes"]).exits(1);
    assert!(
        out.stdout_str().contains("NOT DONE") && out.stdout_str().contains("--adopt"),
        "{}",
        out.describe()
    );
    assert_eq!(
        value("t-adopt/legacy/prod"),
        serde_json::json!({"old": "x"})
    );
    w.publish(&["apply", "--yes", "--adopt"]).ok();
    assert_eq!(
        value("t-adopt/legacy/prod"),
        serde_json::json!({"new": "value-n"})
    );
    w.publish(&["plan"]).exits(0);
}

#[test]
fn tag_and_policy_drift_is_fixed_without_a_new_version() {
    let (moto, _) = shared();
    let rules = format!(
        "{CAPTURE_RULE}        policy: '{{\"Version\": \"2012-10-17\", \"Statement\": [{{\"Effect\": \"Allow\", \"Principal\": {{\"AWS\": \"arn:aws:iam::222222222222:root\"}}, \"Action\": \"secretsmanager:GetSecretValue\", \"Resource\": \"*\"}}]}}'\n"
    );
    let w = World::new(&moto.endpoint(), "t-drift", &rules);
    w.secret("secrets/api/prod.yaml", "key: k-1\n");
    w.commit("one");
    w.publish(&["apply", "--yes"]).ok();
    let v1 = version("t-drift/api/prod");
    boto("sm = boto3.client('secretsmanager', **kw)\nsm.tag_resource(SecretId='t-drift/api/prod', Tags=[{'Key': 'team', 'Value': 'someone-else'}])\nsm.delete_resource_policy(SecretId='t-drift/api/prod')\nprint('0')\n");
    let plan = w.publish(&["plan"]).exits(2);
    let text = plan.stdout_str();
    assert!(text.contains("drift     secretsmanager"), "{text}");
    assert!(text.contains("team: \"someone-else\" -> \"api\""), "{text}");
    assert!(text.contains("resource policy differs"), "{text}");
    w.publish(&["apply", "--yes"]).ok();
    w.publish(&["plan"]).exits(0);
    assert_eq!(version("t-drift/api/prod"), v1);
}

#[test]
fn a_role_in_a_second_account() {
    let (moto, _) = shared();
    let rules = CAPTURE_RULE.replace(
        "      secretsmanager:",
        "      role: arn:aws:iam::222222222222:role/publisher\n      secretsmanager:",
    );
    let w = World::new(&moto.endpoint(), "t-role", &rules);
    w.secret("secrets/billing/prod.yaml", "a: b-val\n");
    w.commit("one");
    w.publish(&["apply", "--yes"]).ok();
    // The secret is in account 222222222222 (moto maps the role's session
    // credentials to the role's account), not in the default one.
    let v = boto(
        "sts = boto3.client('sts', **kw)\n\
         c = sts.assume_role(RoleArn='arn:aws:iam::222222222222:role/publisher', RoleSessionName='check')['Credentials']\n\
         other = boto3.client('secretsmanager', region_name='us-east-1', endpoint_url=ep, aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])\n\
         d = other.describe_secret(SecretId='t-role/billing/prod')\n\
         sm = boto3.client('secretsmanager', **kw)\n\
         mine = [s['Name'] for s in sm.list_secrets()['SecretList']]\n\
         print(json.dumps({'arn': d['ARN'], 'here': 't-role/billing/prod' in mine}))\n",
    );
    assert!(v["arn"].as_str().unwrap().contains(":222222222222:"), "{v}");
    assert_eq!(v["here"], false);
    let sessions = moto.assumed_roles();
    assert!(
        sessions
            .iter()
            .any(|(r, s)| r.ends_with("222222222222:role/publisher") && s.starts_with("sops@")),
        "{sessions:?}"
    );
    w.publish(&["plan"]).exits(0);
}

#[test]
fn a_missing_kms_key_fails_that_secret_and_the_others_are_applied() {
    let (moto, _) = shared();
    boto("kms = boto3.client('kms', **kw)\nk = kms.create_key()['KeyMetadata']['KeyId']\nkms.create_alias(AliasName='alias/t-half-good', TargetKeyId=k)\nprint('0')\n");
    let rules = "    - path_regex: ^secrets/(?P<service>[^/]+)\\.yaml$\n      secretsmanager:\n        name: \"t-half/{service}\"\n        region: us-east-1\n        kms_key_id: alias/t-half-{service}\n";
    let w = World::new(&moto.endpoint(), "t-half", rules);
    w.secret("secrets/good.yaml", "a: 1\n");
    w.secret("secrets/missing.yaml", "a: 2\n");
    w.commit("two");
    let plan = w.publish(&["plan"]).exits(1);
    assert!(
        plan.stdout_str()
            .contains("alias/t-half-missing does not exist"),
        "{}",
        plan.describe()
    );
    let out = w.publish(&["apply", "--yes"]).exits(1);
    let text = out.stdout_str();
    assert!(
        text.contains("done  secretsmanager us-east-1 t-half/good"),
        "{text}"
    );
    assert!(
        text.contains("NOT DONE  (file)")
            || text.contains("NOT DONE  secretsmanager us-east-1 t-half/missing"),
        "{text}"
    );
    assert!(
        out.stderr.contains("1 of 2 resources failed"),
        "{}",
        out.describe()
    );
    assert_eq!(value("t-half/good"), serde_json::json!({"a": 1}));
}

#[test]
fn throttling_is_retried() {
    let (moto, _) = shared();
    let proxy = DelayProxy::start(moto.port);
    let w = World::new(&proxy.endpoint(), "t-throttle", CAPTURE_RULE);
    for s in ["a", "b", "c"] {
        w.secret(&format!("secrets/{s}/prod.yaml"), "x: y\n");
    }
    w.commit("three");
    // More throttling answers than the SDK's own three attempts of one request.
    proxy.throttle("CreateSecret", 5);
    proxy.throttle("DescribeSecret", 4);
    w.publish(&["apply", "--yes"]).ok();
    for s in ["a", "b", "c"] {
        assert_eq!(
            value(&format!("t-throttle/{s}/prod")),
            serde_json::json!({"x": "y"})
        );
    }
    assert!(proxy.count("CreateSecret") >= 8, "{:?}", proxy.counts());
}

#[test]
fn ssm_parameters_one_per_leaf() {
    let (moto, _) = shared();
    let rules = "    - path_regex: ^params/(?P<service>[^/]+)/(?P<stage>[^/]+)\\.yaml$\n      ssm:\n        path: \"/t-ssm/{stage}/{service}/{key_path}\"\n        region: us-east-1\n        tier: Standard\n        tags: {team: \"{service}\"}\n";
    let w = World::new(&moto.endpoint(), "t-ssm", rules);
    w.secret(
        "params/db/prod.yaml",
        "db:\n    user: u1\n    password: p-secret\nport: 5432\n",
    );
    w.commit("one");
    let plan = w.publish(&["plan"]).exits(2);
    no_values(&plan, &["p-secret"]);
    w.publish(&["apply", "--yes"]).ok();
    let get = "ssm = boto3.client('ssm', **kw)\nr = ssm.get_parameters(Names=['/t-ssm/prod/db/db/user', '/t-ssm/prod/db/db/password', '/t-ssm/prod/db/port'], WithDecryption=True)['Parameters']\nprint(json.dumps({p['Name']: [p['Value'], p['Type'], p['Version']] for p in r}))\n";
    let v = boto(get);
    assert_eq!(v["/t-ssm/prod/db/db/password"][0], "p-secret");
    assert_eq!(v["/t-ssm/prod/db/db/password"][1], "SecureString");
    assert_eq!(v["/t-ssm/prod/db/port"][0], "5432");
    w.publish(&["plan"]).exits(0);
    w.publish(&["apply", "--yes"]).ok();
    assert_eq!(boto(get), v, "no new versions for unchanged values");
}

#[test]
fn sops_and_the_guard_accept_the_publish_section() {
    let (moto, _) = shared();
    let w = World::new(&moto.endpoint(), "t-compat", CAPTURE_RULE);
    // sops 3.11 encrypts by the creation rule of this .sops.yaml and decrypts.
    w.secret("secrets/x/prod.yaml", "k: v1\n");
    let dec = w.sb.sops(&["decrypt", "secrets/x/prod.yaml"]).ok();
    assert_eq!(dec.stdout_str(), "k: v1\n");
    w.commit("one");
    w.sb.git_sops(&["check", "--all"]).ok();
    // Bad publish rules are publish's error (exit 1), not sops' or the guard's.
    let text = std::fs::read_to_string(w.sb.path(".sops.yaml")).unwrap();
    w.sb.write(
        ".sops.yaml",
        &text.replace("name: \"{repository}", "name: \"{nope}"),
    );
    w.commit("bad rule");
    w.sb.sops(&["decrypt", "secrets/x/prod.yaml"]).ok();
    let out = w.publish(&["plan"]).exits(1);
    assert!(out.stderr.contains("{nope}"), "{}", out.describe());
    // Usage errors of publish are 1, never 2 ("changes").
    w.publish(&["plan", "--no-such-flag"]).exits(1);
    w.publish(&["apply"]).exits(1);
}

/// The benchmark of benches/PUBLISH.md: `plan` over 200 files (10 services x
/// 3 stages, some with several files per stage) against moto behind the
/// delay proxy (50 ms per request), first with nothing published, then after
/// apply with everything unchanged. Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn bench_plan_200_files() {
    let (moto, _) = shared();
    let proxy = DelayProxy::start(moto.port);
    let rules = "    - path_regex: ^secrets/(?P<service>[^/]+)/(?P<stage>[^/]+)/(?P<name>[^/]+)\\.yaml$\n      secretsmanager:\n        name: \"bench/{service}/{stage}/{name}\"\n        region: us-east-1\n        tags: {team: \"{service}\"}\n";
    let w = World::new(&proxy.endpoint(), "bench", rules);
    let mut n = 0;
    'outer: for i in 0..7 {
        for s in 0..10 {
            for st in ["dev", "staging", "prod"] {
                if n == 200 {
                    break 'outer;
                }
                w.secret(
                    &format!("secrets/svc{s}/{st}/app{i}.yaml"),
                    &format!("user: u{n}\npassword: p{n}\nurl: https://x/{n}\n"),
                );
                n += 1;
            }
        }
    }
    w.commit("200");
    proxy.set_delay(Duration::from_millis(50));
    for (label, args) in [
        ("plan (nothing published)", &["plan"][..]),
        ("apply (create 200)", &["apply", "--yes"][..]),
        ("plan (200 unchanged)", &["plan"][..]),
        ("apply (200 unchanged)", &["apply", "--yes"][..]),
    ] {
        proxy.reset();
        let t = Instant::now();
        let out = w.publish(args);
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.code == Some(0) || out.code == Some(2),
            "{}",
            out.describe()
        );
        let mut counts: Vec<_> = proxy.counts().into_iter().collect();
        counts.sort();
        println!(
            "BENCH {label}: {secs:.2} s, {} requests {counts:?}",
            proxy.total()
        );
    }
}
