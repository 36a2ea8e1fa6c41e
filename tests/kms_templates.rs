//! Templated creation rules (issue 16) against a real KMS and STS API (moto
//! 5.2.5 on loopback) and the real sops 3.11: a file created under a templated
//! rule carries the rendered key, role and encryption context; sops decrypts it
//! with that context and refuses a tampered one; sops ignores the `git_sops`
//! sections; a moved file is reported as drift and `updatekeys` fixes it; the
//! `git sops policy` output is valid policy JSON that moto accepts and whose
//! conditions match the contexts the files carry; templates that cannot render
//! are errors naming the rule, and nothing is written.
#![cfg(feature = "kms")]

mod common;
mod kms_support;

use std::sync::OnceLock;

use common::Repo;
use kms_support::{enc_values, shared, ACCOUNT};
use serde_json::Value as Json;

const PLAIN: &str = "db:\n    user: admin\n    password: hunter2\n";

/// A central key and two per-service keys with aliases, on the shared server.
struct World {
    central: String,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let (moto, _) = shared();
        let v = moto.boto(
            "kms = boto3.client('kms', **kw)\n\
             central = kms.create_key(Description='central')['KeyMetadata']['Arn']\n\
             for a in ['payments-prod', 'billing-prod']:\n\
             \x20   k = kms.create_key(Description=a)['KeyMetadata']['KeyId']\n\
             \x20   kms.create_alias(AliasName='alias/' + a, TargetKeyId=k)\n\
             print(json.dumps({'central': central}))\n",
        );
        World {
            central: v["central"].as_str().expect("central").to_string(),
        }
    })
}

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// The central-key config: plain `kms` for sops users, `git_sops` adds the
/// role and the context; plus the policy mapping.
fn central_config() -> String {
    format!(
        r#"creation_rules:
  - path_regex: ^secrets/(?P<service>[a-z]+)/(?P<stage>dev|prod)/
    kms: {central}
    git_sops:
      role: arn:aws:iam::{ACCOUNT}:role/{{service}}-{{stage}}
      context:
        service: "{{service}}"
        stage: "{{stage}}"
        path: "{{path}}"
git_sops:
  policy:
    admins: [arn:aws:iam::{ACCOUNT}:role/security-admin]
    principals:
      - name: PaymentsProd
        arn: arn:aws:iam::{ACCOUNT}:role/payments-prod
        access: read
        context: {{service: payments, stage: prod}}
      - name: BillingDev
        arn: arn:aws:iam::{ACCOUNT}:role/billing-dev
        access: read
        context: {{service: billing, stage: dev}}
      - name: Deploy
        arn: arn:aws:iam::{ACCOUNT}:role/deploy
        access: write
        context: {{service: [payments, billing], stage: [dev, prod]}}
"#,
        central = world().central
    )
}

/// A git-sops repository whose commands talk to moto.
fn repo(config: &str) -> Repo {
    let (moto, _) = shared();
    let mut r = Repo::new();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", moto.endpoint().as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("NO_PROXY", "127.0.0.1,localhost"),
    ] {
        r.env.set(k, v);
    }
    let cfg = r.env.root.join("aws-config").display().to_string();
    r.env.set("AWS_CONFIG_FILE", cfg.clone());
    r.env.set("AWS_SHARED_CREDENTIALS_FILE", cfg);
    r.env.set_time_limit(kms_support::COMMAND_TIMEOUT);
    r.write(".sops.yaml", config);
    r.commit_all("rules");
    r
}

/// The metadata of a staged or committed YAML SOPS file, as JSON.
fn metadata(text: &str) -> Json {
    let docs = common::parse_yaml_docs(text);
    docs[0]["sops"].clone()
}

fn kms_entry(text: &str) -> Json {
    metadata(text)["kms"][0].clone()
}

fn context(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = kms_entry(text)["context"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// `sops decrypt` of `text` written outside the repository.
fn sops_decrypt(r: &Repo, name: &str, text: &str) -> common::Output {
    let path = r.env.work.join(name);
    std::fs::write(&path, text).expect("write");
    r.env
        .sops()
        .current_dir(&r.env.work)
        .args(["decrypt", name])
        .run()
}

#[test]
fn a_new_file_carries_the_rendered_role_and_context_and_sops_decrypts_it() {
    let (moto, _) = shared();
    let r = repo(&central_config());
    r.write("secrets/payments/prod/db.yaml", PLAIN);
    r.git(&["add", "secrets/payments/prod/db.yaml"]).ok();
    let blob = r.blob_text(":secrets/payments/prod/db.yaml");
    let k = kms_entry(&blob);
    assert_eq!(k["arn"], world().central.as_str(), "{blob}");
    assert_eq!(k["role"], role("payments-prod").as_str(), "{blob}");
    assert_eq!(
        context(&blob),
        pairs(&[
            ("path", "secrets/payments/prod/db.yaml"),
            ("service", "payments"),
            ("stage", "prod")
        ])
    );

    // sops 3.11 opens it with no template support: the context is in the file.
    let before = moto.assumed_roles().len();
    let out = sops_decrypt(&r, "db.yaml", &blob).ok();
    assert_eq!(out.stdout_str(), PLAIN);
    let roles = moto.assumed_roles();
    assert!(roles.len() > before, "sops assumed the rendered role");
    assert!(
        roles
            .iter()
            .any(|(a, s)| a == &role("payments-prod") && s.starts_with("sops@")),
        "{roles:?}"
    );
    // The same session name from git-sops (other tests share the server, so
    // look for this role's new session rather than counting).
    let before = moto.assumed_roles().len();
    let gs = r.env.work.join("copy.yaml");
    std::fs::write(&gs, &blob).expect("write");
    r.env
        .git_sops()
        .current_dir(&r.env.work)
        .args(["decrypt", "copy.yaml"])
        .run()
        .ok();
    assert!(moto.assumed_roles()[before..]
        .iter()
        .any(|(a, s)| a == &role("payments-prod") && s.starts_with("sops@")));

    // A tampered context (the file claims another stage) is refused by KMS.
    let tampered = blob.replacen("stage: prod", "stage: dev", 1);
    assert_ne!(tampered, blob);
    let out = sops_decrypt(&r, "tampered.yaml", &tampered);
    assert!(!out.success(), "sops must refuse a tampered context");
    assert!(!out.stdout_str().contains("hunter2"));
    let out = r
        .env
        .git_sops()
        .current_dir(&r.env.work)
        .args(["decrypt", "tampered.yaml"])
        .run();
    assert_eq!(out.code, Some(128), "{}", out.describe());
}

#[test]
fn sops_ignores_the_git_sops_sections() {
    let r = repo(&central_config());
    r.env.write("plain.yaml", PLAIN);
    // sops 3.11 reads the same .sops.yaml (unknown fields ignored) and uses the
    // rule's plain fields: the central key, no role, no context.
    let out = r
        .env
        .sops()
        .current_dir(&r.dir)
        .args([
            "encrypt",
            "--filename-override",
            "secrets/payments/prod/x.yaml",
            r.env.path("plain.yaml").to_str().expect("utf8"),
        ])
        .run()
        .ok();
    let text = out.stdout_str();
    let k = kms_entry(&text);
    assert_eq!(k["arn"], world().central.as_str());
    assert!(
        k.get("role").is_none() && k.get("context").is_none(),
        "{text}"
    );
}

#[test]
fn a_moved_file_is_drift_and_updatekeys_fixes_it() {
    // The per-service-key variant: the key itself is templated (an alias).
    let config = format!(
        r#"creation_rules:
  - path_regex: ^secrets/(?P<service>[a-z]+)/(?P<stage>dev|prod)/
    kms: {central}
    git_sops:
      kms:
        - arn: arn:aws:kms:us-east-1:{ACCOUNT}:alias/{{service}}-{{stage}}
          role: arn:aws:iam::{ACCOUNT}:role/{{service}}-{{stage}}
      context: {{service: "{{service}}", stage: "{{stage}}"}}
"#,
        central = world().central
    );
    let r = repo(&config);
    r.write("secrets/payments/prod/db.yaml", PLAIN);
    r.commit_all("payments secret");
    let blob = r.blob_text("HEAD:secrets/payments/prod/db.yaml");
    assert_eq!(
        kms_entry(&blob)["arn"],
        format!("arn:aws:kms:us-east-1:{ACCOUNT}:alias/payments-prod").as_str()
    );
    r.sops(&["check", "--all"]).ok();

    r.git(&["mv", "secrets/payments", "secrets/billing"]).ok();
    // status and check report it from the metadata alone (no key needed: the
    // check runs without credentials).
    let status = r.sops(&["status"]).ok().stdout_str();
    assert!(
        status.contains("secrets/billing/prod/db.yaml")
            && status.contains("differ from its .sops.yaml creation rule 1")
            && status.contains("alias/billing-prod"),
        "{status}"
    );
    let check = r
        .env
        .git_sops()
        .current_dir(&r.dir)
        .args(["check"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .run();
    let check = check.ok(); // a warning, not a refusal
    let out = check.stdout_str();
    assert!(
        out.contains("secrets/billing/prod/db.yaml: key-drift:") && out.contains("service:billing"),
        "{}",
        check.describe()
    );
    let json = r.sops(&["check", "--format", "json"]).ok().stdout_str();
    let v: Json = serde_json::from_str(&json).expect("json");
    assert_eq!(v[0]["kind"], "key-drift");
    assert_eq!(v[0]["severity"], "warning");
    r.git(&["commit", "-q", "-m", "move"]).ok();
    assert!(r
        .sops(&["check", "--all"])
        .ok()
        .stdout_str()
        .contains("key-drift"));

    // updatekeys re-wraps the same data key for the rendered key, role and context.
    let values = enc_values(&blob);
    r.sops(&["updatekeys", "-y", "secrets/billing/prod/db.yaml"])
        .ok();
    let fixed = r.blob_text(":secrets/billing/prod/db.yaml");
    assert_eq!(enc_values(&fixed), values, "values untouched");
    let k = kms_entry(&fixed);
    assert_eq!(
        k["arn"],
        format!("arn:aws:kms:us-east-1:{ACCOUNT}:alias/billing-prod").as_str()
    );
    assert_eq!(k["role"], role("billing-prod").as_str());
    assert_eq!(
        context(&fixed),
        pairs(&[("service", "billing"), ("stage", "prod")])
    );
    assert_eq!(metadata(&fixed)["kms"].as_array().map(Vec::len), Some(1));
    r.git(&["commit", "-q", "-m", "updatekeys"]).ok();
    let all = r.sops(&["check", "--all"]).ok().stdout_str();
    assert!(!all.contains("key-drift"), "{all}");
    assert!(!r.sops(&["status"]).ok().stdout_str().contains("differ"));
    assert_eq!(
        sops_decrypt(&r, "fixed.yaml", &fixed).ok().stdout_str(),
        PLAIN
    );
}

#[test]
fn policy_is_valid_json_that_matches_the_files_and_moto_accepts() {
    let (moto, _) = shared();
    let r = repo(&central_config());
    let files = [
        "secrets/payments/prod/db.yaml",
        "secrets/billing/dev/db.yaml",
        "secrets/billing/prod/api.yaml",
    ];
    for f in files {
        r.write(f, PLAIN);
    }
    r.commit_all("secrets");

    let out = r.sops(&["policy"]).ok().stdout_str();
    let policy: Json = serde_json::from_str(&out).expect("policy is JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().expect("statements");
    let mut sids: Vec<&str> = statements
        .iter()
        .map(|s| s["Sid"].as_str().expect("sid"))
        .collect();
    sids.sort();
    sids.dedup();
    assert_eq!(sids.len(), statements.len(), "unique Sids");
    let grants: Vec<&Json> = statements
        .iter()
        .filter(|s| s.get("Condition").is_some())
        .collect();
    // Each principal is named exactly once.
    let mut principals: Vec<&str> = grants
        .iter()
        .map(|s| s["Principal"]["AWS"].as_str().expect("principal"))
        .collect();
    principals.sort();
    let n = principals.len();
    principals.dedup();
    assert_eq!((n, principals.len()), (3, 3));

    // Who can open each file, by evaluating the conditions against the context
    // each file carries (read from every file's metadata).
    let allows = |s: &Json, ctx: &[(String, String)]| -> bool {
        s["Condition"]["StringEquals"]
            .as_object()
            .expect("StringEquals")
            .iter()
            .all(|(k, v)| {
                let key = k
                    .strip_prefix("kms:EncryptionContext:")
                    .expect("context key");
                let have = ctx.iter().find(|(c, _)| c == key).map(|(_, v)| v.as_str());
                let want: Vec<&str> = match v {
                    Json::String(s) => vec![s.as_str()],
                    Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
                    _ => vec![],
                };
                have.is_some_and(|h| want.contains(&h))
            })
    };
    for f in files {
        let ctx = context(&r.blob_text(&format!("HEAD:{f}")));
        let mut readers: Vec<&str> = grants
            .iter()
            .filter(|s| allows(s, &ctx))
            .map(|s| s["Sid"].as_str().expect("sid"))
            .collect();
        readers.sort();
        let want: Vec<&str> = match f {
            "secrets/payments/prod/db.yaml" => vec!["Deploy", "PaymentsProd"],
            "secrets/billing/dev/db.yaml" => vec!["BillingDev", "Deploy"],
            _ => vec!["Deploy"],
        };
        assert_eq!(readers, want, "{f}: {ctx:?}");
    }
    let deploy = grants
        .iter()
        .find(|s| s["Sid"] == "Deploy")
        .expect("deploy");
    assert_eq!(
        deploy["Action"],
        serde_json::json!(["kms:Decrypt", "kms:Encrypt"])
    );

    // moto accepts it as a key policy (moto stores it; it does not evaluate
    // the conditions) and gives it back; --check of that export is clean.
    let iam = r.sops(&["policy", "--iam"]).ok().stdout_str();
    let iam: Json = serde_json::from_str(&iam).expect("iam json");
    assert!(iam["PaymentsProd"]["Statement"][0]["Resource"]
        .as_str()
        .is_some_and(|s| s == world().central));
    let exported = moto.boto(&format!(
        "kms = boto3.client('kms', **kw)\n\
         iam = boto3.client('iam', **kw)\n\
         policy = {policy:?}\n\
         k = kms.create_key(Policy=policy)['KeyMetadata']['KeyId']\n\
         kms.put_key_policy(KeyId=k, PolicyName='default', Policy=policy)\n\
         for name, doc in json.loads({iam:?}).items():\n\
         \x20   iam.create_policy(PolicyName='git-sops-' + name, PolicyDocument=json.dumps(doc))\n\
         print(json.dumps(kms.get_key_policy(KeyId=k, PolicyName='default')))\n",
        policy = out,
        iam = serde_json::to_string(&iam).expect("iam")
    ));
    let export = r.env.work.join("exported.json");
    std::fs::write(&export, exported.to_string()).expect("write");
    r.sops(&["policy", "--check", export.to_str().expect("utf8")])
        .ok();

    // A broader export: an unconditioned grant and a widened stage.
    let mut broad = policy.clone();
    let st = broad["Statement"].as_array_mut().expect("statements");
    for s in st.iter_mut() {
        if s["Sid"] == "PaymentsProd" {
            s["Condition"]["StringEquals"]["kms:EncryptionContext:stage"] =
                serde_json::json!(["prod", "dev"]);
        }
    }
    st.retain(|s| s["Sid"] != "BillingDev");
    st.push(serde_json::json!({"Sid": "Root", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"}));
    std::fs::write(&export, broad.to_string()).expect("write");
    let out = r
        .sops(&["policy", "--check", export.to_str().expect("utf8")])
        .fails();
    let text = out.stdout_str();
    assert!(
        text.contains("missing: ") && text.contains("billing-dev"),
        "{text}"
    );
    assert!(
        text.contains("broader: statement PaymentsProd") && text.contains("dev"),
        "{text}"
    );
    assert!(text.contains("broader: statement Root"), "{text}");
}

#[test]
fn templates_that_cannot_render_are_errors_naming_the_rule_and_nothing_is_written() {
    let central = &world().central;
    for (config, file, needles) in [
        (
            format!("creation_rules:\n  - path_regex: ^secrets/(?P<service>[a-z]+)/\n    kms: {central}\n    git_sops:\n      context: {{team: '{{team}}'}}\n"),
            "secrets/payments/db.yaml",
            vec!["creation rule 1", "{team}", "git_sops.context.team"],
        ),
        (
            format!("creation_rules:\n  - path_regex: ^other/\n    kms: {central}\n  - path_regex: ^secrets/(?:(?P<service>[a-z]+)/)?\n    kms: {central}\n    git_sops:\n      context: {{service: '{{service}}'}}\n"),
            "secrets/db.yaml",
            vec!["creation rule 2", "{service}", "did not capture"],
        ),
    ] {
        let r = repo(&config);
        r.write(file, PLAIN);
        let out = r.git(&["add", file]).fails();
        for n in &needles {
            assert!(out.stderr.contains(n), "{n}: {}", out.describe());
        }
        assert!(r.status().contains("?? secrets/"), "nothing staged: {}", r.status());
        let out = r.sops(&["encrypt", "-i", file]).fails();
        for n in &needles {
            assert!(out.stderr.contains(n), "{n}: {}", out.describe());
        }
        assert_eq!(r.text(file), PLAIN, "nothing written");
    }
}
