//! `git sops policy`: print the KMS key policy (or the workload roles' IAM
//! policies) that `.sops.yaml`'s `git_sops.policy` section and templated
//! creation rules ask for, or compare an exported key policy with it
//! (`--check`). The policy itself is computed by `sops_file::policy`; this
//! file reads the config, prints, and chooses the exit code. README "One
//! central KMS key with least privilege" walks through its use.

use std::io::Write;

use sops_file::config;
use sops_file::policy::{self, Mapping};

use super::args::PolicyArgs;
use super::report::Failure;

pub fn run(args: &PolicyArgs) -> Result<(), Failure> {
    let cfg = config::discover(args.config.as_deref())
        .map_err(|e| Failure::input(e.to_string()))?
        .ok_or_else(|| {
            Failure::usage("policy: no .sops.yaml with creation_rules was found from the current directory upwards".into())
                .with_hint("run it from inside the repository, or pass --config PATH")
        })?;
    let mapping = Mapping::from_config(&cfg).map_err(|e| {
        Failure::input(format!("policy: {e}"))
            .with_hint("see README \"One central KMS key with least privilege\" for the git_sops.policy section")
    })?;
    let key = args.key.as_deref();
    if key.is_some() && mapping.principals_for(key).is_empty() {
        eprintln!(
            "git-sops: warning: no principal of git_sops.policy has files under {}; the policy grants no use of it",
            key.unwrap_or_default()
        );
    }
    if let Some(file) = &args.check {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::input(format!("{}: cannot read it: {e}", file.display())))?;
        let exported = policy::parse_exported(&text)
            .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
        let differences = policy::check(&mapping, key, &exported);
        let mut out = std::io::stdout().lock();
        for d in &differences {
            writeln!(out, "{d}").map_err(write_failure)?;
        }
        out.flush().map_err(write_failure)?;
        if differences.is_empty() {
            eprintln!(
                "git-sops: {}: grants exactly what git_sops.policy asks for",
                file.display()
            );
            return Ok(());
        }
        return Err(Failure::io(format!(
            "{}: {} difference(s) from what git_sops.policy asks for (listed above)",
            file.display(),
            differences.len()
        ))
        .with_hint("apply `git sops policy` output with `aws kms put-key-policy --policy-name default --policy file://...`, or change git_sops.policy"));
    }
    let document = if args.iam {
        mapping.iam_policies(key)
    } else {
        if mapping.admins.is_empty() {
            eprintln!("git-sops: warning: git_sops.policy names no `admins`: AWS refuses a key policy that does not let the caller manage the key (PutKeyPolicy's lockout safety check); list the key administrators");
        }
        mapping.key_policy(key)
    };
    let text = serde_json::to_string_pretty(&document)
        .map_err(|e| Failure::io(format!("cannot format the policy: {e}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|_| out.flush())
        .map_err(write_failure)
}

fn write_failure(e: std::io::Error) -> Failure {
    Failure::io(format!("cannot write to standard output: {e}"))
}
