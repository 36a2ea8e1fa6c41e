//! What a plan becomes: the steps to run (through a [`Backend`], the AWS one
//! in `aws.rs`, an in-memory one in the tests), and per resource what was done
//! or why not. A failure on one resource is recorded and the others go on.

use super::plan::{Action, Change, Current, Drift};
use super::{Access, Desired, ResourceId, Service, Tags};

/// The AWS side, blocking, in bulk (the AWS implementation runs each list
/// concurrently, bounded, with throttling retries). Messages never hold values.
pub trait Backend {
    /// What AWS holds for each desired resource, in order.
    fn read(&self, items: &[Desired]) -> Vec<Result<Current, String>>;
    /// The resources tagged `git-sops:repository = repository` in each scope
    /// (service, region, credentials), with their tags.
    fn list_managed(
        &self,
        scopes: &[(Service, String, Access)],
        repository: &str,
    ) -> Result<Vec<(ResourceId, Access, Tags)>, String>;
    /// Run the steps; per step what was done, or why it failed.
    fn run(&self, steps: Vec<Step>) -> Vec<Result<String, String>>;
}

/// One resource's writes.
pub enum Step {
    /// Bring the resource to `desired` as `change` says (create, update, fix drift, adopt).
    Write {
        desired: Box<Desired>,
        change: Box<Change>,
    },
    /// Delete an orphan (Secrets Manager: with a recovery window).
    Delete {
        id: ResourceId,
        access: Access,
        recovery_days: i64,
    },
}

pub struct Options {
    pub adopt: bool,
    pub prune: bool,
    pub recovery_days: i64,
}

/// How one change ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Unchanged,
    /// Not attempted, and that is what was asked for (an orphan without --prune).
    Kept(String),
    /// Not attempted, and that is a failure of the run (adopt refused, plan error).
    Refused(String),
    Failed(String),
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Refused(_) | Outcome::Failed(_))
    }
}

/// `c` without what `opts` keeps: replica regions git does not name are
/// removed only with `--prune` (like orphans); the kept regions are returned.
fn without_kept(c: &Change, opts: &Options) -> (Change, Vec<String>) {
    let mut c = c.clone();
    let mut kept = Vec::new();
    if opts.prune {
        return (c, kept);
    }
    for d in &mut c.drift {
        if let Drift::Replicas { extra, .. } = d {
            kept.append(extra);
        }
    }
    c.drift
        .retain(|d| !matches!(d, Drift::Replicas { missing, extra } if missing.is_empty() && extra.is_empty()));
    (c, kept)
}

/// Whether applying `c` with `opts` writes anything (for the question asked
/// before apply: nothing to write, nothing to ask).
pub fn writes(c: &Change, opts: &Options) -> bool {
    match c.action {
        Action::Unchanged | Action::Error => false,
        Action::Adopt => opts.adopt,
        Action::Orphan => opts.prune,
        Action::Drift => !without_kept(c, opts).0.drift.is_empty(),
        _ => true,
    }
}

/// Apply `changes` (from the plan of `desired`); `orphan_access` gives the
/// credentials each orphan was found with. The outcomes are in plan order.
pub fn apply(
    backend: &dyn Backend,
    changes: &[Change],
    desired: &[Desired],
    orphan_access: &dyn Fn(&ResourceId) -> Access,
    opts: &Options,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = changes.iter().map(|_| None).collect();
    let mut steps = Vec::new();
    let mut at = Vec::new();
    let mut kept_replicas: Vec<String> = changes.iter().map(|_| String::new()).collect();
    for (i, c) in changes.iter().enumerate() {
        let decided = match c.action {
            Action::Unchanged => Some(Outcome::Unchanged),
            Action::Error => Some(Outcome::Refused(
                c.error.clone().unwrap_or_else(|| "error".into()),
            )),
            Action::Adopt if !opts.adopt => Some(Outcome::Refused(
                "exists without this repository's managed-by=git-sops tags; not overwritten (use --adopt)".into(),
            )),
            Action::Orphan if !opts.prune => Some(Outcome::Kept(
                "orphaned; kept (use --prune to delete)".into(),
            )),
            Action::Orphan => {
                steps.push(Step::Delete {
                    id: c.id.clone(),
                    access: orphan_access(&c.id),
                    recovery_days: opts.recovery_days,
                });
                at.push(i);
                None
            }
            _ => {
                let (change, kept) = without_kept(c, opts);
                if !kept.is_empty() {
                    kept_replicas[i] = format!(
                        "replica regions {} not named by git; kept (use --prune to remove)",
                        kept.join(", ")
                    );
                }
                match c.desired.and_then(|d| desired.get(d)) {
                    _ if change.action == Action::Drift && change.drift.is_empty() => {
                        Some(Outcome::Kept(kept_replicas[i].clone()))
                    }
                    Some(d) => {
                        steps.push(Step::Write {
                            desired: Box::new(d.clone()),
                            change: Box::new(change),
                        });
                        at.push(i);
                        None
                    }
                    None => Some(Outcome::Failed("internal: no desired state".into())),
                }
            }
        };
        outcomes[i] = decided;
    }
    for (i, r) in at.into_iter().zip(backend.run(steps)) {
        outcomes[i] = Some(match r {
            Ok(done) if kept_replicas[i].is_empty() => Outcome::Done(done),
            Ok(done) => Outcome::Done(format!("{done}; {}", kept_replicas[i])),
            Err(e) => Outcome::Failed(e),
        });
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed("the step did not complete".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::plan::plan_one;
    use crate::publish::{Fingerprinter, SecretText};
    use std::cell::RefCell;

    /// Secrets in memory; a name in `fail` fails its write.
    struct Memory {
        state: RefCell<Vec<(ResourceId, Current)>>,
        fail: Vec<String>,
        writes: RefCell<usize>,
    }

    impl Backend for Memory {
        fn read(&self, items: &[Desired]) -> Vec<Result<Current, String>> {
            let s = self.state.borrow();
            items
                .iter()
                .map(|d| {
                    Ok(s.iter()
                        .find(|(id, _)| *id == d.id)
                        .map(|(_, c)| c.clone())
                        .unwrap_or_default())
                })
                .collect()
        }
        fn list_managed(
            &self,
            _: &[(Service, String, Access)],
            _: &str,
        ) -> Result<Vec<(ResourceId, Access, Tags)>, String> {
            Ok(Vec::new())
        }
        fn run(&self, steps: Vec<Step>) -> Vec<Result<String, String>> {
            steps
                .into_iter()
                .map(|s| match s {
                    Step::Write { desired, .. } if self.fail.contains(&desired.id.name) => {
                        Err("KMS key not found".into())
                    }
                    Step::Write { desired, .. } => {
                        *self.writes.borrow_mut() += 1;
                        let cur = Current {
                            exists: true,
                            value: Some(desired.value.clone()),
                            tags: desired.tags.clone(),
                            ..Current::default()
                        };
                        let mut s = self.state.borrow_mut();
                        s.retain(|(id, _)| *id != desired.id);
                        s.push((desired.id.clone(), cur));
                        Ok("written".into())
                    }
                    Step::Delete { .. } => Ok("deleted".into()),
                })
                .collect()
        }
    }

    fn d(name: &str, value: &str) -> Desired {
        let mut tags = Tags::new();
        tags.insert("managed-by".into(), "git-sops".into());
        Desired {
            id: ResourceId {
                service: Service::SecretsManager,
                region: "r".into(),
                name: name.into(),
            },
            access: Access::default(),
            source: format!("{name}.yaml"),
            rule: 1,
            value: SecretText::new(value.into()),
            kms_key_id: None,
            description: None,
            tags,
            policy: None,
            replica_regions: Vec::new(),
            tier: None,
            document: true,
            fingerprints: Fingerprinter::from_data_key(&[1; 32]),
        }
    }

    fn plan(b: &Memory, ds: &[Desired]) -> Vec<Change> {
        b.read(ds)
            .iter()
            .enumerate()
            .map(|(i, c)| plan_one(i, &ds[i], c.as_ref().unwrap()))
            .collect()
    }

    #[test]
    fn a_failing_resource_does_not_stop_the_others_and_a_second_apply_writes_nothing() {
        let b = Memory {
            state: RefCell::new(Vec::new()),
            fail: vec!["bad".into()],
            writes: RefCell::new(0),
        };
        let ds = vec![d("a", "{\"x\":1}"), d("bad", "{}"), d("c", "{}")];
        let opts = Options {
            adopt: false,
            prune: false,
            recovery_days: 30,
        };
        let out = apply(&b, &plan(&b, &ds), &ds, &|_| Access::default(), &opts);
        assert!(matches!(out[0], Outcome::Done(_)));
        assert!(matches!(out[1], Outcome::Failed(_)));
        assert!(matches!(out[2], Outcome::Done(_)));
        assert_eq!(*b.writes.borrow(), 2);
        let good: Vec<Desired> = vec![ds[0].clone(), ds[2].clone()];
        let out = apply(&b, &plan(&b, &good), &good, &|_| Access::default(), &opts);
        assert_eq!(out, [Outcome::Unchanged, Outcome::Unchanged]);
        assert_eq!(*b.writes.borrow(), 2);
    }

    #[test]
    fn unmanaged_secrets_are_refused_without_adopt() {
        let ds = vec![d("a", "{}")];
        let b = Memory {
            state: RefCell::new(vec![(
                ds[0].id.clone(),
                Current {
                    exists: true,
                    value: Some(SecretText::new("{}".into())),
                    ..Current::default()
                },
            )]),
            fail: Vec::new(),
            writes: RefCell::new(0),
        };
        let opts = Options {
            adopt: false,
            prune: false,
            recovery_days: 30,
        };
        let out = apply(&b, &plan(&b, &ds), &ds, &|_| Access::default(), &opts);
        assert!(matches!(&out[0], Outcome::Refused(m) if m.contains("--adopt")));
        let opts = Options {
            adopt: true,
            ..opts
        };
        let out = apply(&b, &plan(&b, &ds), &ds, &|_| Access::default(), &opts);
        assert!(matches!(out[0], Outcome::Done(_)));
    }
}
