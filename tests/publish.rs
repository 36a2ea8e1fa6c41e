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

fn replicas(name: &str) -> serde_json::Value {
    boto(&format!(
        "sm = boto3.client('secretsmanager', **kw)\nd = sm.describe_secret(SecretId={name:?})\nprint(json.dumps(sorted(r['Region'] for r in d.get('ReplicationStatus', []))))\n"
    ))
}

/// Replica regions: created with the secret, a missing one added
/// (ReplicateSecretToRegions, no new version), one git does not name reported
/// as drift and removed only with --prune (RemoveRegionsFromReplication). A
/// replica is listed in its own region with the primary's tags; it is not an
/// orphan of a rule that publishes to that region.
#[test]
fn replica_regions_created_added_and_removed_only_with_prune() {
    let (moto, _) = shared();
    let rules = format!(
        "{CAPTURE_RULE}        replica_regions: [us-west-2]\n    - path_regex: ^west/(?P<service>[^/]+)\\.yaml$\n      secretsmanager:\n        name: \"t-repl-west/{{service}}\"\n        region: us-west-2\n"
    );
    let w = World::new(&moto.endpoint(), "t-repl", &rules);
    w.secret("secrets/api/prod.yaml", "key: r-1\n");
    w.secret("west/api.yaml", "key: w-1\n");
    w.commit("two");
    w.publish(&["apply", "--yes"]).ok();
    assert_eq!(
        replicas("t-repl/api/prod"),
        serde_json::json!(["us-west-2"])
    );
    let v1 = version("t-repl/api/prod");
    // The replica in us-west-2 (where the second rule publishes) is no orphan.
    let plan = w.publish(&["plan"]).exits(0);
    assert!(
        !plan.stdout_str().contains("orphan "),
        "{}",
        plan.describe()
    );

    boto("sm = boto3.client('secretsmanager', **kw)\nsm.remove_regions_from_replication(SecretId='t-repl/api/prod', RemoveReplicaRegions=['us-west-2'])\nprint('0')\n");
    let plan = w.publish(&["plan"]).exits(2);
    assert!(
        plan.stdout_str()
            .contains("drift: replica regions missing: us-west-2"),
        "{}",
        plan.describe()
    );
    let out = w.publish(&["apply", "--yes"]).ok();
    assert!(
        out.stdout_str().contains("replicas added"),
        "{}",
        out.describe()
    );
    assert_eq!(
        replicas("t-repl/api/prod"),
        serde_json::json!(["us-west-2"])
    );
    assert_eq!(version("t-repl/api/prod"), v1);
    w.publish(&["plan"]).exits(0);

    // A replica git does not name: drift, kept without --prune.
    boto("sm = boto3.client('secretsmanager', **kw)\nsm.replicate_secret_to_regions(SecretId='t-repl/api/prod', AddReplicaRegions=[{'Region': 'eu-west-1'}])\nprint('0')\n");
    let plan = w.publish(&["plan"]).exits(2);
    assert!(
        plan.stdout_str()
            .contains("replica regions not named by git: eu-west-1"),
        "{}",
        plan.describe()
    );
    let out = w.publish(&["apply", "--yes"]).ok();
    assert!(
        out.stdout_str().contains("kept") && out.stdout_str().contains("eu-west-1"),
        "{}",
        out.describe()
    );
    assert_eq!(
        replicas("t-repl/api/prod"),
        serde_json::json!(["eu-west-1", "us-west-2"])
    );
    let out = w.publish(&["apply", "--yes", "--prune"]).ok();
    assert!(
        out.stdout_str().contains("replicas removed"),
        "{}",
        out.describe()
    );
    assert_eq!(
        replicas("t-repl/api/prod"),
        serde_json::json!(["us-west-2"])
    );
    assert_eq!(version("t-repl/api/prod"), v1);
    w.publish(&["plan"]).exits(0);
}

const SSM_PRUNE_RULE: &str = "    - path_regex: ^params/(?P<service>[^/]+)/(?P<stage>[^/]+)\\.yaml$\n      ssm:\n        path: \"/t-ssmp/{stage}/{service}/{key_path}\"\n        region: us-east-1\n        kms_key_id: alias/t-ssmp-a\n        tier: Standard\n";

fn parameters(names: &[&str]) -> serde_json::Value {
    boto(&format!(
        "ssm = boto3.client('ssm', **kw)\nnames = {names:?}\nr = ssm.get_parameters(Names=names, WithDecryption=True)['Parameters']\nd = {{}}\nfor n in names:\n    m = ssm.describe_parameters(ParameterFilters=[{{'Key': 'Name', 'Values': [n]}}])['Parameters']\n    if m: d[n] = [m[0].get('KeyId'), m[0].get('Tier')]\nprint(json.dumps({{p['Name']: [p['Version']] + d[p['Name']] for p in r}}))\n"
    ))
}

/// SSM: unchanged parameters get no PutParameter (their Version stays), KMS
/// key and tier drift is fixed, orphans (only parameters tagged with this
/// repository and managed-by=git-sops) are kept without --prune and deleted
/// at once with it, --prune needs the repository named, and a rule whose last
/// file left git still finds its orphans.
#[test]
fn ssm_orphans_prune_tier_and_kms_drift() {
    let (moto, _) = shared();
    boto("kms = boto3.client('kms', **kw)\nfor a in ['alias/t-ssmp-a', 'alias/t-ssmp-b']:\n    kms.create_alias(AliasName=a, TargetKeyId=kms.create_key()['KeyMetadata']['KeyId'])\nssm = boto3.client('ssm', **kw)\nssm.put_parameter(Name='/t-ssmp/prod/foreign/x', Value='f', Type='SecureString', Tags=[{'Key': 'git-sops:repository', 'Value': 't-ssmp'}, {'Key': 'git-sops:source', 'Value': 'params/foreign/prod.yaml'}])\nssm.put_parameter(Name='/t-ssmp/prod/other/y', Value='o', Type='SecureString', Tags=[{'Key': 'managed-by', 'Value': 'git-sops'}, {'Key': 'git-sops:repository', 'Value': 't-ssmp-other'}, {'Key': 'git-sops:source', 'Value': 'params/other/prod.yaml'}])\nprint('0')\n");
    let w = World::new(&moto.endpoint(), "t-ssmp", SSM_PRUNE_RULE);
    w.secret("params/db/prod.yaml", "user: u-ssmp\npassword: p-ssmp-1\n");
    w.secret("params/web/prod.yaml", "token: t-ssmp-1\n");
    w.commit("two");
    w.publish(&["apply", "--yes"]).ok();
    let all = [
        "/t-ssmp/prod/db/user",
        "/t-ssmp/prod/db/password",
        "/t-ssmp/prod/web/token",
    ];
    let v = parameters(&all);
    assert_eq!(v["/t-ssmp/prod/db/password"][1], "alias/t-ssmp-a", "{v}");
    assert_eq!(v["/t-ssmp/prod/db/password"][2], "Standard", "{v}");
    w.publish(&["plan"]).exits(0);
    w.publish(&["apply", "--yes"]).ok();
    assert_eq!(parameters(&all), v, "no PutParameter for unchanged values");

    // KMS key drift: the value is written again under the rule's key.
    boto("ssm = boto3.client('ssm', **kw)\nssm.put_parameter(Name='/t-ssmp/prod/db/password', Value='p-ssmp-1', Type='SecureString', KeyId='alias/t-ssmp-b', Overwrite=True)\nprint('0')\n");
    let plan = w.publish(&["plan"]).exits(2);
    assert!(
        plan.stdout_str()
            .contains("drift: kms key alias/t-ssmp-b -> alias/t-ssmp-a"),
        "{}",
        plan.describe()
    );
    no_values(&plan, &["p-ssmp-1", "u-ssmp", "t-ssmp-1"]);
    w.publish(&["apply", "--yes"]).ok();
    let after = parameters(&all);
    assert_eq!(after["/t-ssmp/prod/db/password"][1], "alias/t-ssmp-a");
    assert_eq!(after["/t-ssmp/prod/db/user"], v["/t-ssmp/prod/db/user"]);
    w.publish(&["plan"]).exits(0);

    // Tier drift (the rule now asks for Advanced).
    let text = std::fs::read_to_string(w.sb.path(".sops.yaml")).unwrap();
    w.sb.write(
        ".sops.yaml",
        &text.replace("tier: Standard", "tier: Advanced"),
    );
    w.commit("advanced");
    let plan = w.publish(&["plan"]).exits(2);
    assert!(
        plan.stdout_str()
            .contains("drift: tier Standard -> Advanced"),
        "{}",
        plan.describe()
    );
    w.publish(&["apply", "--yes"]).ok();
    assert_eq!(parameters(&all)["/t-ssmp/prod/web/token"][2], "Advanced");
    w.publish(&["plan"]).exits(0);

    // Orphans: kept without --prune; only this repository's managed parameters.
    w.git(&["rm", "-q", "params/web/prod.yaml"]);
    w.commit("drop web");
    let plan = w.publish(&["plan"]).exits(2);
    let text = plan.stdout_str();
    assert!(
        text.contains("orphan    ssm us-east-1 /t-ssmp/prod/web/token"),
        "{text}"
    );
    assert!(
        !text.contains("foreign") && !text.contains("other"),
        "{text}"
    );
    let out = w.publish(&["apply", "--yes"]).ok();
    assert!(out.stdout_str().contains("kept"), "{}", out.describe());
    assert!(parameters(&all)["/t-ssmp/prod/web/token"].is_array());
    // SSM prune goes through the same check as Secrets Manager's.
    let named = std::fs::read_to_string(w.sb.path(".sops.yaml")).unwrap();
    w.sb.write(".sops.yaml", &named.replace("  repository: t-ssmp\n", ""));
    w.commit("unnamed");
    let refused = w.publish(&["apply", "--yes", "--prune"]).exits(1);
    assert!(
        refused.stderr.contains("names no `repository`"),
        "{}",
        refused.describe()
    );
    assert!(parameters(&all)["/t-ssmp/prod/web/token"].is_array());
    w.sb.write(".sops.yaml", &named);
    w.commit("named");
    let out = w.publish(&["apply", "--yes", "--prune"]).ok();
    assert!(out.stdout_str().contains("deleted"), "{}", out.describe());
    let left = parameters(&[
        "/t-ssmp/prod/web/token",
        "/t-ssmp/prod/db/user",
        "/t-ssmp/prod/foreign/x",
        "/t-ssmp/prod/other/y",
    ]);
    assert!(left.get("/t-ssmp/prod/web/token").is_none(), "{left}");
    for kept in [
        "/t-ssmp/prod/db/user",
        "/t-ssmp/prod/foreign/x",
        "/t-ssmp/prod/other/y",
    ] {
        assert!(left.get(kept).is_some(), "{kept}: {left}");
    }
    w.publish(&["plan"]).exits(0);

    // The rule's last file leaves git: its parameters are still found.
    w.git(&["rm", "-q", "params/db/prod.yaml"]);
    w.sb.write("README", "x\n");
    w.commit("drop db");
    let plan = w.publish(&["plan"]).exits(2);
    assert!(
        plan.stdout_str()
            .contains("orphan    ssm us-east-1 /t-ssmp/prod/db/password"),
        "{}",
        plan.describe()
    );
    w.publish(&["apply", "--yes", "--prune"]).ok();
    assert_eq!(
        parameters(&["/t-ssmp/prod/db/user", "/t-ssmp/prod/db/password"]),
        serde_json::json!({})
    );
    w.publish(&["plan"]).exits(0);
}

/// PATH filters: orphans are looked for among the filtered files' resources
/// only, and a resource tagged with a file inside the filter that a file
/// outside it still publishes (the file moved) is not an orphan either.
#[test]
fn path_filters_never_orphan_resources_outside_them() {
    let (moto, _) = shared();
    let rules = format!(
        "{CAPTURE_RULE}    - path_regex: ^moved/(?P<service>[^/]+)/(?P<stage>[^/]+)\\.yaml$\n      secretsmanager:\n        name: \"{{repository}}/{{service}}/{{stage}}\"\n        region: us-east-1\n"
    );
    let w = World::new(&moto.endpoint(), "t-filter", &rules);
    w.secret("secrets/a/prod.yaml", "k: fa\n");
    w.secret("secrets/b/prod.yaml", "k: fb\n");
    w.commit("two");
    w.publish(&["apply", "--yes"]).ok();
    let exists = |name: &str| -> bool {
        boto(&format!("sm = boto3.client('secretsmanager', **kw)\nprint(json.dumps('DeletedDate' not in sm.describe_secret(SecretId={name:?})))\n")) == true
    };
    w.git(&["rm", "-q", "secrets/b/prod.yaml"]);
    w.commit("drop b");
    let plan = w.publish(&["plan", "secrets/a"]).exits(0);
    assert!(
        !plan.stdout_str().contains("t-filter/b"),
        "{}",
        plan.describe()
    );
    w.publish(&["apply", "--yes", "--prune", "secrets/a"]).ok();
    assert!(exists("t-filter/b/prod"));
    // The deleted folder as the filter finds its orphan.
    let plan = w.publish(&["plan", "secrets/b"]).exits(2);
    assert!(
        plan.stdout_str()
            .contains("orphan    secretsmanager us-east-1 t-filter/b/prod"),
        "{}",
        plan.describe()
    );
    assert!(
        !plan.stdout_str().contains("t-filter/a"),
        "{}",
        plan.describe()
    );
    // A file moved out of the filter keeps its secret.
    w.sb.env.tool("mkdir").args(["-p", "moved/a"]).run().ok();
    w.git(&["mv", "secrets/a/prod.yaml", "moved/a/prod.yaml"]);
    w.commit("move a");
    let plan = w.publish(&["plan", "secrets"]).exits(2);
    assert!(
        !plan.stdout_str().contains("t-filter/a"),
        "{}",
        plan.describe()
    );
    w.publish(&["apply", "--yes", "--prune", "secrets"]).ok();
    assert!(exists("t-filter/a/prod"));
    assert!(!exists("t-filter/b/prod"));
    let plan = w.publish(&["plan"]).exits(2);
    assert!(
        plan.stdout_str()
            .contains("drift     secretsmanager us-east-1 t-filter/a/prod"),
        "{}",
        plan.describe()
    );
}

/// apply without --yes asks on a terminal: "n" writes nothing, "y" applies;
/// without a terminal it writes nothing and exits 1.
#[test]
fn apply_asks_on_a_terminal() {
    let (moto, _) = shared();
    let w = World::new(&moto.endpoint(), "t-tty", CAPTURE_RULE);
    w.secret("secrets/q/prod.yaml", "k: tty-val-1\n");
    w.commit("one");
    let missing = || {
        boto("sm = boto3.client('secretsmanager', **kw)\nprint(json.dumps('t-tty/q/prod' not in [s['Name'] for s in sm.list_secrets()['SecretList']]))\n") == true
    };
    let out = w.publish(&["apply"]).exits(1);
    assert!(missing(), "{}", out.describe());
    let out = w.sb.git_sops_on_tty("publish apply", "n\n").exits(1);
    assert!(
        out.stderr.contains("Apply these changes?"),
        "{}",
        out.describe()
    );
    assert!(missing(), "{}", out.describe());
    let out = w.sb.git_sops_on_tty("publish apply", "y\n").ok();
    assert!(!missing(), "{}", out.describe());
    no_values(&out, &["tty-val-1"]);
    assert_eq!(value("t-tty/q/prod"), serde_json::json!({"k": "tty-val-1"}));
    // Nothing to do: no question.
    w.publish(&["apply"]).ok();
}

/// No value reaches stdout or stderr: plan and apply as text and JSON,
/// including an apply that fails on a missing KMS key and writes that AWS
/// answers with an error message quoting the request (the proxy's
/// `fail_quoting`; moto's own messages never quote a value).
#[test]
fn values_never_in_output() {
    let (moto, _) = shared();
    let proxy = DelayProxy::start(moto.port);
    let rules = "    - path_regex: ^secrets/(?P<service>[^/]+)\\.yaml$\n      secretsmanager:\n        name: \"t-leak/{service}\"\n        region: us-east-1\n    - path_regex: ^secrets/nokey\\.yaml$\n      secretsmanager:\n        name: \"t-leak-nokey\"\n        region: us-east-1\n        kms_key_id: alias/t-leak-missing\n    - path_regex: ^secrets/(?P<service>[^/]+)\\.yaml$\n      ssm:\n        path: \"/t-leak/{service}/{key_path}\"\n        region: us-east-1\n";
    let w = World::new(&proxy.endpoint(), "t-leak", rules);
    let values = [
        "Leak-Alpha-7731",
        "leak\"quoted\\beta-88",
        "Leak-Gamma-5150",
        "Leak-Delta-4242",
    ];
    w.secret(
        "secrets/one.yaml",
        "alpha: Leak-Alpha-7731\nbeta: 'leak\"quoted\\beta-88'\n",
    );
    w.secret("secrets/two.yaml", "gamma: Leak-Gamma-5150\n");
    w.secret("secrets/nokey.yaml", "delta: Leak-Delta-4242\n");
    w.commit("three");
    for args in [&["plan"][..], &["plan", "--format", "json"][..]] {
        let out = w.publish(args).exits(1);
        no_values(&out, &values);
    }
    proxy.fail_quoting("CreateSecret", 1);
    proxy.fail_quoting("PutParameter", 1);
    let out = w.publish(&["apply", "--yes"]).exits(1);
    no_values(&out, &values);
    let text = out.stdout_str();
    assert!(
        text.contains("alias/t-leak-missing does not exist"),
        "{text}"
    );
    assert!(
        text.contains("AWS's message is not shown: it quotes a value"),
        "{text}"
    );
    assert!(text.contains("ValidationException"), "{text}");
    proxy.fail_quoting("PutSecretValue", 1);
    proxy.fail_quoting("CreateSecret", 1);
    let out = w.publish(&["apply", "--yes", "--format", "json"]).exits(1);
    no_values(&out, &values);
    // Which create failed above depends on the order of concurrent calls:
    // bring both secrets into being first, so the next write is an update.
    proxy.fail_quoting("PutSecretValue", 0);
    proxy.fail_quoting("CreateSecret", 0);
    let out = w.publish(&["apply", "--yes"]).exits(1); // nokey still fails
    no_values(&out, &values);
    w.secret("secrets/two.yaml", "gamma: Leak-Gamma-5151\n");
    w.commit("rotate");
    proxy.fail_quoting("PutSecretValue", 1);
    let out = w.publish(&["apply", "--yes", "--format", "json"]).exits(1);
    no_values(&out, &values);
    assert!(
        out.stdout_str()
            .contains("PutSecretValue: ValidationException (AWS"),
        "{}",
        out.describe()
    );
    w.publish(&["apply", "--yes"]).exits(1);
    let out = w.publish(&["plan"]).exits(1);
    no_values(&out, &values);
}
