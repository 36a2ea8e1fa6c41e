//! `git sops publish plan|apply` (docs/publish.md): the command line around
//! `crate::publish`. Results on stdout (the plan, the apply report, as text or
//! JSON), questions and the summary's advice on stderr. Exit codes are in
//! report.rs (`code::PUBLISH_*`): plan 0 nothing to do, 2 changes, 1 error;
//! apply 0 everything done, 1 anything failed or refused.

use std::collections::BTreeSet;

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::report::{code, Failure};
use crate::git::Git;
use crate::publish::apply::{self, Backend, Options, Outcome};
use crate::publish::aws::Aws;
use crate::publish::desired::{self, Source};
use crate::publish::plan::{self, Action, Change};
use crate::publish::{Access, Service};

#[derive(Subcommand, Debug)]
pub(crate) enum PublishCommand {
    /// Show what apply would do: exit 0 nothing to do, 2 changes, 1 error
    Plan(PlanArgs),
    /// Do what plan shows (asks on a terminal; --yes in scripts)
    Apply(ApplyArgs),
}

#[derive(Args, Debug)]
pub(crate) struct PlanArgs {
    /// The commit to publish (committed blobs only, never the working tree)
    #[arg(long, default_value = "HEAD", value_name = "REV")]
    pub rev: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Only these files or folders (orphans are then looked for among their resources only)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Apply without asking
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Take over existing resources that lack the managed-by=git-sops tag
    #[arg(long)]
    pub adopt: bool,
    /// Delete orphans (resources this repository published whose source is gone)
    #[arg(long)]
    pub prune: bool,
    /// Days a pruned Secrets Manager secret stays recoverable (7-30)
    #[arg(long, default_value_t = 30, value_name = "DAYS", value_parser = clap::value_parser!(i64).range(7..=30))]
    pub recovery_window: i64,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

pub(crate) fn run(cmd: PublishCommand) -> Result<(), Failure> {
    match cmd {
        PublishCommand::Plan(a) => plan_cmd(&a),
        PublishCommand::Apply(a) => apply_cmd(&a),
    }
}

struct Planned {
    source: Source,
    changes: Vec<Change>,
    orphan_access: Vec<(crate::publish::ResourceId, Access)>,
}

fn compute(args: &PlanArgs, backend: &dyn Backend) -> Result<Planned, Failure> {
    let git = Git::new(".");
    git.toplevel()
        .map_err(|e| Failure::not_in_repository("publish", &e.to_string()))?;
    let prefix =
        String::from_utf8_lossy(&git.run(&["rev-parse", "--show-prefix"]).unwrap_or_default())
            .trim()
            .to_string();
    let only: Vec<String> = args
        .paths
        .iter()
        .map(|p| normalize(&format!("{prefix}{}", p.to_string_lossy())))
        .collect();
    let source = desired::read(&git, &args.rev, &only).map_err(Failure::publish)?;
    let mut changes = Vec::new();
    for (file, why) in &source.errors {
        changes.push(Change::error(
            crate::publish::ResourceId {
                service: Service::SecretsManager,
                region: String::new(),
                name: String::new(),
            },
            file.clone(),
            why.clone(),
        ));
    }
    let current = backend.read(&source.desired);
    for (i, (d, cur)) in source.desired.iter().zip(current).enumerate() {
        changes.push(match cur {
            Ok(cur) => plan::plan_one(i, d, &cur),
            Err(e) => Change::error(d.id.clone(), d.source.clone(), e),
        });
    }
    // Orphans: in every (service, region, credentials) the rules publish to.
    let scopes: BTreeSet<(Service, String, Access)> = source
        .desired
        .iter()
        .map(|d| (d.id.service, d.id.region.clone(), d.access.clone()))
        .chain(source.scopes.iter().cloned())
        .collect();
    let scopes: Vec<_> = scopes.into_iter().collect();
    let found = backend
        .list_managed(&scopes, &source.config.repository)
        .map_err(|e| {
            Failure::publish(crate::publish::PublishError::Aws(format!(
                "cannot list the published resources: {e}"
            )))
        })?;
    let in_scope = |src: &str| {
        only.is_empty()
            || only.iter().any(|o| {
                o.is_empty()
                    || src == o
                    || src.starts_with(&format!("{}/", o.trim_end_matches('/')))
            })
    };
    let found: Vec<_> = found
        .into_iter()
        .filter(|(_, _, t)| {
            in_scope(
                t.get(crate::publish::TAG_SOURCE)
                    .map(String::as_str)
                    .unwrap_or(""),
            )
        })
        .collect();
    let unreadable: BTreeSet<String> = source.errors.iter().map(|(f, _)| f.clone()).collect();
    let pairs: Vec<_> = found
        .iter()
        .map(|(id, _, t)| (id.clone(), t.clone()))
        .collect();
    let mut orphans = plan::orphans(&pairs, &source.desired, &unreadable);
    if !orphans.is_empty() && !only.is_empty() {
        // A resource tagged with a file inside PATH may be wanted by a file
        // outside it (a file moved out of the folder keeps its resource
        // names): orphans are confirmed against every file of the commit.
        let all = desired::read(&git, &args.rev, &[]).map_err(Failure::publish)?;
        let unreadable: BTreeSet<String> = all.errors.iter().map(|(f, _)| f.clone()).collect();
        let confirmed = plan::orphans(&pairs, &all.desired, &unreadable);
        orphans.retain(|o| confirmed.iter().any(|c| c.id == o.id));
    }
    changes.extend(orphans);
    let orphan_access = found.into_iter().map(|(id, a, _)| (id, a)).collect();
    Ok(Planned {
        source,
        changes,
        orphan_access,
    })
}

fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn plan_cmd(args: &PlanArgs) -> Result<(), Failure> {
    let aws = Aws::new();
    let p = compute(args, &aws)?;
    print_plan(&p, args.format);
    let errors = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Error)
        .count();
    if errors > 0 {
        return Err(Failure::publish_errors(errors));
    }
    if p.changes.iter().any(Change::is_change) {
        return Err(Failure::silent(code::PUBLISH_CHANGES));
    }
    Ok(())
}

fn apply_cmd(args: &ApplyArgs) -> Result<(), Failure> {
    let aws = Aws::new();
    let p = compute(&args.plan, &aws)?;
    // Orphans are whatever carries this repository's name; a default name
    // (the checkout's folder) may be another repository's too.
    if args.prune && !p.source.config.repository_named {
        return Err(Failure::publish_prune_unnamed(&p.source.config.repository));
    }
    let text = args.plan.format == Format::Text;
    if text {
        print_plan(&p, Format::Text);
    }
    let opts = Options {
        adopt: args.adopt,
        prune: args.prune,
        recovery_days: args.recovery_window,
    };
    let work = p.changes.iter().any(|c| apply::writes(c, &opts));
    if work && !args.yes && !confirm()? {
        return Err(Failure::publish_declined());
    }
    let access = |id: &crate::publish::ResourceId| {
        p.orphan_access
            .iter()
            .find(|(o, _)| o == id)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    };
    let outcomes = if work {
        apply::apply(&aws, &p.changes, &p.source.desired, &access, &opts)
    } else {
        apply::apply(&Nothing, &p.changes, &p.source.desired, &access, &opts)
    };
    let failed = outcomes.iter().filter(|o| o.is_failure()).count();
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Done(_)))
        .count();
    if text {
        println!();
        for (c, o) in p.changes.iter().zip(&outcomes) {
            let (word, why) = match o {
                Outcome::Done(w) => ("done", w.as_str()),
                Outcome::Unchanged => continue,
                Outcome::Kept(w) => ("kept", w.as_str()),
                Outcome::Refused(w) => ("NOT DONE", w.as_str()),
                Outcome::Failed(w) => ("FAILED", w.as_str()),
            };
            println!("{word:>9}  {}  ({}): {why}", label(c), c.source);
        }
        let unchanged = outcomes
            .iter()
            .filter(|o| **o == Outcome::Unchanged)
            .count();
        println!(
            "Apply: {done} done, {unchanged} unchanged, {} kept, {failed} failed or not done.",
            outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Kept(_)))
                .count()
        );
    } else {
        let items: Vec<_> = p
            .changes
            .iter()
            .zip(&outcomes)
            .map(|(c, o)| {
                let mut v = change_json(c);
                let (status, detail) = match o {
                    Outcome::Done(w) => ("done", Some(w)),
                    Outcome::Unchanged => ("unchanged", None),
                    Outcome::Kept(w) => ("kept", Some(w)),
                    Outcome::Refused(w) => ("not_done", Some(w)),
                    Outcome::Failed(w) => ("failed", Some(w)),
                };
                v["outcome"] = json!({"status": status, "detail": detail});
                v
            })
            .collect();
        println!("{}", json!({"commit": p.source.commit, "results": items}));
    }
    if failed > 0 {
        return Err(Failure::publish_failed(failed, outcomes.len()));
    }
    Ok(())
}

/// A backend for an apply with nothing to write.
struct Nothing;

impl Backend for Nothing {
    fn read(&self, _: &[crate::publish::Desired]) -> Vec<Result<plan::Current, String>> {
        Vec::new()
    }
    fn list_managed(
        &self,
        _: &[(Service, String, Access)],
        _: &str,
    ) -> Result<Vec<(crate::publish::ResourceId, Access, crate::publish::Tags)>, String> {
        Ok(Vec::new())
    }
    fn run(&self, steps: Vec<apply::Step>) -> Vec<Result<String, String>> {
        steps.iter().map(|_| Err("not run".into())).collect()
    }
}

fn confirm() -> Result<bool, Failure> {
    super::io::ask("Apply these changes?")?.ok_or_else(Failure::publish_needs_yes)
}

fn label(c: &Change) -> String {
    if c.id.name.is_empty() {
        return "(file)".into();
    }
    c.id.to_string()
}

fn print_plan(p: &Planned, format: Format) {
    if format == Format::Json {
        let changes: Vec<_> = p.changes.iter().map(change_json).collect();
        let count = |a: Action| p.changes.iter().filter(|c| c.action == a).count();
        println!(
            "{}",
            json!({
                "commit": p.source.commit,
                "repository": p.source.config.repository,
                "changes": changes,
                "summary": {
                    "create": count(Action::Create), "update": count(Action::Update),
                    "drift": count(Action::Drift), "adopt": count(Action::Adopt),
                    "orphan": count(Action::Orphan), "unchanged": count(Action::Unchanged),
                    "error": count(Action::Error),
                },
            })
        );
        return;
    }
    let mut out = String::new();
    for c in &p.changes {
        let mark = match c.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Drift => "~",
            Action::Adopt => "!",
            Action::Orphan => "-",
            Action::Unchanged => "=",
            Action::Error => "x",
        };
        let extra = match c.action {
            Action::Create if c.restore => " (restores a secret scheduled for deletion)",
            Action::Adopt => " (not managed by git-sops from this repository; apply needs --adopt)",
            Action::Orphan => {
                " (published by this repository, source gone; apply --prune deletes it)"
            }
            _ => "",
        };
        out.push_str(&format!(
            "{mark} {:<9} {}  ({}){extra}\n",
            c.action.name(),
            label(c),
            c.source
        ));
        for k in &c.keys {
            let fp = match (&k.from, &k.to) {
                (Some(f), Some(t)) => format!(" {f} -> {t}"),
                (None, Some(t)) => format!(" {t}"),
                (Some(f), None) => format!(" {f}"),
                (None, None) => String::new(),
            };
            out.push_str(&format!("      {} {}{fp}\n", k.how, k.key));
        }
        for d in &c.drift {
            out.push_str(&format!("      drift: {}\n", d.describe()));
        }
        if let Some(e) = &c.error {
            out.push_str(&format!("      error: {e}\n"));
        }
    }
    let count = |a: Action| p.changes.iter().filter(|c| c.action == a).count();
    out.push_str(&format!(
        "Plan ({}): {} to create, {} to update, {} drifted, {} to adopt, {} orphaned, {} unchanged, {} errors.\n",
        &p.source.commit[..p.source.commit.len().min(12)],
        count(Action::Create),
        count(Action::Update),
        count(Action::Drift),
        count(Action::Adopt),
        count(Action::Orphan),
        count(Action::Unchanged),
        count(Action::Error),
    ));
    print!("{out}");
}

fn change_json(c: &Change) -> serde_json::Value {
    json!({
        "action": c.action.name(),
        "service": if c.id.name.is_empty() { None } else { Some(c.id.service.name()) },
        "region": if c.id.name.is_empty() { None } else { Some(&c.id.region) },
        "name": if c.id.name.is_empty() { None } else { Some(&c.id.name) },
        "source": c.source,
        "keys": c.keys.iter().map(|k| json!({"key": k.key, "change": k.how, "from": k.from, "to": k.to})).collect::<Vec<_>>(),
        "drift": c.drift.iter().map(|d| json!({"kind": d.kind(), "detail": d.describe()})).collect::<Vec<_>>(),
        "error": c.error,
    })
}
