//! `git sops updatekeys` and `git sops rotate`: the key-management commands.
//!
//! `updatekeys` makes a file's master keys match its `.sops.yaml` creation rule
//! without touching the values: the file is loaded without decrypting values or
//! checking the MAC, the key groups are diffed by each key's sops string form,
//! and after confirmation the *same* data key is wrapped for the rule's keys. Only
//! the metadata block is rewritten (values, MAC, `lastmodified`, `version` and
//! the selectors stay byte for byte), as sops 3.11 does.
//!
//! `rotate` decrypts the file (checking the MAC), applies `--add-*` (to the first
//! key group) and `--rm-*` (from every group, matched by string form), and
//! encrypts every value again under a new data key, with a new `lastmodified`
//! and MAC. Together they are the offboarding story: remove a key from
//! `.sops.yaml`, `updatekeys` so it can no longer open the current data key, then
//! `rotate` so the values it may have seen are re-encrypted under a key it never had.

use std::io::Write;
use std::path::Path;

use super::args::{RotateArgs, UpdateKeysArgs};
use super::bulk::{self, Outcome, Progress, Report, Target};
use super::crypt::{age_recipients, kms_recipients, parse_encryption_context};
use super::io::write_atomically;
use super::report::Failure;
use crate::drivers::staged::StagedFile;
use sops_file::config;
use sops_file::datakey::DataKey;
use sops_file::decrypt;
use sops_file::encrypt::FreshIvs;
use sops_file::file;
use sops_file::formats::{apply_edits, Format, Store};
use sops_file::keycache::KeyCache;
use sops_file::keygroups::{
    self, diff_groups, key_string_form, GroupDiff, KeyGroupError, KeyName, Keyring, Recipient,
    WrapJob,
};
use sops_file::metadata::{KeyGroup, MasterKey, Metadata};
use sops_file::Error;

/// The change, in sops' layout (`+++` added, `---` removed, indented unchanged).
fn render_diff(old_threshold: usize, new_threshold: usize, diffs: &[GroupDiff]) -> String {
    let mut out = String::new();
    if old_threshold > 0 && old_threshold == new_threshold {
        out.push_str(&format!("shamir_threshold: {new_threshold}\n"));
    } else {
        if new_threshold > 0 {
            out.push_str(&format!("+++ shamir_threshold: {new_threshold}\n"));
        }
        if old_threshold > 0 {
            out.push_str(&format!("--- shamir_threshold: {old_threshold}\n"));
        }
    }
    for (i, d) in diffs.iter().enumerate() {
        out.push_str(&format!("Group {}\n", i + 1));
        for k in &d.common {
            out.push_str(&format!("    {} {}\n", k.kind, k.form));
        }
        for k in &d.added {
            out.push_str(&format!("+++ {} {}\n", k.kind, k.form));
        }
        for k in &d.removed {
            out.push_str(&format!("--- {} {}\n", k.kind, k.form));
        }
    }
    out
}

fn format_for(input_type: Option<&str>, name: &str) -> Result<Format, Failure> {
    match input_type {
        Some(t) => Format::from_name(t).ok_or_else(|| {
            Failure::usage(format!(
                "--input-type {t:?} is not supported; git-sops reads and writes yaml, json, dotenv, ini and binary"
            ))
        }),
        // As sops: any other extension is a binary file.
        None => Ok(Format::detect(name)),
    }
}

/// The file's format and, for a protected file of a git-sops working tree
/// (plaintext on disk), its staged encrypted original, which these commands
/// then read and rewrite instead.
fn source(
    input_type: Option<&str>,
    path: &Path,
    name: &str,
) -> Result<(Format, Option<StagedFile>), Failure> {
    let explicit = match input_type {
        Some(t) => Some(format_for(Some(t), name)?),
        None => None,
    };
    match StagedFile::locate(path, explicit)? {
        Some(s) => Ok((s.format, Some(s))),
        None => Ok((format_for(input_type, name)?, None)),
    }
}

fn staged_text(staged: &StagedFile, name: &str) -> Result<String, Failure> {
    String::from_utf8(staged.blob.clone())
        .map_err(|_| Failure::input(format!("{name}: the staged copy is not UTF-8 text")))
}

fn read_text(path: &Path, name: &str) -> Result<String, Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| Failure::io(format!("{name}: cannot read it: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure::input(format!(
            "{name}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn sops_failure(name: &str) -> impl Fn(Error) -> Failure + '_ {
    move |e| Failure::from_sops(name, e)
}

fn keys_failure(name: &str) -> impl Fn(KeyGroupError) -> Failure + '_ {
    move |e| Failure::from_sops(name, Error::Keys(e))
}

/// Ask on the terminal; refuse when there is none. `what` names the file, or
/// the number of files (a run over several files asks once).
fn confirm(what: &str) -> Result<bool, Failure> {
    super::io::ask("Is this okay?")?.ok_or_else(|| Failure::needs_confirmation(what))
}

/// Put a group's keys in the order sops (and git-sops) reads them back:
/// kms, gcp_kms, hckms, azure_kv, hc_vault, pgp, age (stable within a type).
fn in_load_order(mut group: KeyGroup) -> KeyGroup {
    const ORDER: [&str; 7] = [
        "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "pgp", "age",
    ];
    group.sort_by_key(|k| {
        ORDER
            .iter()
            .position(|o| *o == k.kind())
            .unwrap_or(ORDER.len())
    });
    group
}

/// Replace the metadata block of an encrypted file and nothing else: remove the
/// old block, then insert the new one in the file's own layout.
fn rewrite_metadata(
    store: &dyn Store,
    src: &str,
    doc: &sops_file::formats::Document,
    meta: &Metadata,
) -> Result<String, Error> {
    let stripped = apply_edits(src, store.remove_metadata(src, doc))?;
    let bare = store.parse(&stripped)?;
    let out = apply_edits(
        &stripped,
        store.insert_metadata(&stripped, &bare, &meta.to_value()),
    )?;
    // Never write what would not load back as exactly this metadata.
    let (_, again) = decrypt::load(store, &out)?;
    if &again != meta {
        return Err(Error::Metadata(
            sops_file::metadata::MetadataError::Malformed {
                field: "sops".into(),
                why: "internal error: the rewritten metadata does not read back the same".into(),
            },
        ));
    }
    let mut out = out;
    Ok(std::mem::take(&mut *out))
}

/// A file read for a key command: its format and text, and for a protected
/// plaintext working-tree file the staged original that is read and
/// rewritten instead.
struct Source {
    format: Format,
    staged: Option<StagedFile>,
    text: String,
}

fn read_source(input_type: Option<&str>, t: &Target) -> Result<Source, Failure> {
    let (format, staged) = source(input_type, &t.path, &t.name).map_err(|f| named(f, t))?;
    let text = match &staged {
        Some(s) => staged_text(s, &t.name)?,
        None => read_text(&t.path, &t.name)?,
    };
    Ok(Source {
        format,
        staged,
        text,
    })
}

/// A failure about `t` that names it by its path on disk (an absolute one with
/// `--all`), named as the run shows it instead.
fn named(mut f: Failure, t: &Target) -> Failure {
    let shown = t.path.display().to_string();
    if shown != t.name {
        if let Some(rest) = f.message.strip_prefix(&shown) {
            f.message = format!("{}{rest}", t.name);
        }
    }
    f
}

/// What `updatekeys` will do to one file, worked out before anything is
/// unwrapped, wrapped or written (and all a dry run shows).
struct UpdatePlan {
    src: Source,
    doc: sops_file::formats::Document,
    meta: Metadata,
    diffs: Vec<GroupDiff>,
    /// (old, new) threshold as shown: 0 with several groups means "all of them".
    shown: (usize, usize),
    threshold: usize,
    /// Whether the keys or the threshold change at all.
    changes: bool,
    /// The rule's keys git-sops wraps for, per group.
    wrappable: Vec<Vec<Recipient>>,
    /// Keys git-sops cannot wrap for that stay as they are (see `plan_update`).
    kept: Vec<MasterKey>,
}

fn plan_update(
    args: &UpdateKeysArgs,
    t: &Target,
    cfg: &Result<Option<config::Config>, config::ConfigError>,
) -> Result<UpdatePlan, Failure> {
    let name = t.name.as_str();
    let src = read_source(args.input_type.as_deref(), t)?;
    let (doc, meta) = decrypt::load(src.format.store(), &src.text).map_err(sops_failure(name))?;
    let cfg = match cfg {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return Err(Failure::input(format!(
                "{name}: no .sops.yaml with creation_rules was found from the current directory upwards; updatekeys takes the keys from the rule for the file"
            ))
            .with_hint("run it from inside the repository, or pass --config PATH")),
        Err(e) => return Err(Failure::input(format!("{name}: {e}"))),
    };
    let rule = cfg
        .rule_for(&t.path.to_string_lossy())
        .map_err(|e| Failure::input(format!("{name}: {e}")))?;
    let groups: Vec<Vec<Recipient>> = rule
        .key_groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .collect();
    if groups.is_empty() {
        return Err(Failure::input(format!(
            "{name}: the .sops.yaml rule for this file names no keys; refusing to leave it without any"
        )));
    }
    // sops: the file's threshold (or the flag's), capped at the number of groups.
    let old_threshold = meta.shamir_threshold;
    let threshold = args
        .shamir_secret_sharing_threshold
        .unwrap_or(old_threshold)
        .min(groups.len());
    let diffs = diff_groups(&meta.key_groups, &groups);
    let changes = threshold != old_threshold
        || diffs
            .iter()
            .any(|d| !d.added.is_empty() || !d.removed.is_empty());
    // Shown as it will be written: 0 with several groups means "all of them".
    let shown = |t: usize, n: usize| if t == 0 && n > 1 { n } else { t };
    let shown = (
        shown(old_threshold, meta.key_groups.len()),
        shown(threshold, groups.len()),
    );

    // Keys git-sops cannot wrap for (pgp, gcp_kms, ...) can stay as they are only
    // when their `enc` still wraps what they will need: the whole data key, i.e.
    // a single group before and after. Checked before anything is asked or
    // unwrapped, so a file that cannot be done fails up front.
    let single = groups.len() == 1 && meta.key_groups.len() == 1;
    let mut kept = Vec::new();
    let mut wrappable: Vec<Vec<Recipient>> = Vec::new();
    for g in groups.iter().filter(|_| changes) {
        let mut w = Vec::new();
        for r in g {
            if let Recipient::Unsupported { kind, .. } = r {
                let name_r = KeyName::of_recipient(r);
                let existing = meta
                    .key_groups
                    .first()
                    .into_iter()
                    .flatten()
                    .find(|k| single && KeyName::of_key(k) == name_r);
                match existing {
                    Some(k) => kept.push(k.clone()),
                    None => {
                        return Err(Failure::input(format!(
                            "{name}: git-sops cannot encrypt the data key for {kind} key {}; nothing was written",
                            r.string_form()
                        ))
                        .with_hint("run `sops updatekeys` for this file, or use age or AWS KMS keys in the rule"))
                    }
                }
            } else {
                w.push(r.clone());
            }
        }
        wrappable.push(w);
    }
    Ok(UpdatePlan {
        src,
        doc,
        meta,
        diffs,
        shown,
        threshold,
        changes,
        wrappable,
        kept,
    })
}

/// The new key groups of a planned file whose data key is `key`, wrapped (by
/// `wrap_many`, or nothing to wrap), written back: to the index for a staged
/// file, else the file itself.
fn finish_update(
    t: &Target,
    p: &UpdatePlan,
    key: &DataKey,
    wrapped: Result<(Vec<KeyGroup>, usize), KeyGroupError>,
) -> Result<String, Failure> {
    let name = t.name.as_str();
    let (mut key_groups, shamir_threshold) = wrapped.map_err(keys_failure(name))?;
    if let Some(first) = key_groups.first_mut() {
        first.extend(p.kept.iter().cloned());
    }
    let new_meta = Metadata {
        key_groups: key_groups.into_iter().map(in_load_order).collect(),
        shamir_threshold,
        ..p.meta.clone()
    };
    let out = rewrite_metadata(p.src.format.store(), &p.src.text, &p.doc, &new_meta)
        .map_err(sops_failure(name))?;
    match &p.src.staged {
        Some(s) => {
            s.stage(out.as_bytes(), &new_meta, key, None)?;
            Ok("synced with new keys (staged; the working tree keeps its plaintext)".into())
        }
        None => {
            write_atomically(&t.path, out.as_bytes()).map_err(|e| {
                Failure::io(format!("{name}: cannot write it: {e}; nothing was changed"))
            })?;
            Ok("synced with new keys".into())
        }
    }
}

/// The data key of each file, unwrapped together: first every KMS-wrapped key
/// at once with checkout's bounded concurrency ([`KeyCache::prefetch`]), then
/// each file from that cache (age keys are local). A file whose key cannot be
/// recovered gets its failure.
fn recover_all<'a, P>(
    metas: impl Iterator<Item = (&'a Target, &'a Metadata, P)>,
    keys: &KeyCache,
    keyring: &Keyring,
) -> Vec<(&'a Target, P, Result<DataKey, Failure>)> {
    let items: Vec<(&Target, &Metadata, P)> = metas.collect();
    let all: Vec<Metadata> = items.iter().map(|(_, m, _)| (*m).clone()).collect();
    keys.prefetch(&all);
    items
        .into_iter()
        .map(|(t, m, p)| {
            let key = keys.recover(m, keyring).map_err(keys_failure(&t.name));
            (t, p, key)
        })
        .collect()
}

/// The files of the run, and the `.sops.yaml` (or why it cannot be read).
fn run_files(
    command: &str,
    files: &[std::path::PathBuf],
    all: bool,
    cfg: &Result<Option<config::Config>, config::ConfigError>,
) -> Result<(Vec<Target>, Report), Failure> {
    let targets = bulk::targets(
        command,
        files,
        all,
        cfg.as_ref().ok().and_then(Option::as_ref),
    )?;
    if all && targets.is_empty() {
        eprintln!("git-sops: {command} --all: this repository has no SOPS files (no tracked file with filter=sops, nor one a .sops.yaml rule covers)");
    }
    let report = Report::new(all || targets.len() > 1);
    Ok((targets, report))
}

pub fn updatekeys(args: &UpdateKeysArgs) -> Result<(), Failure> {
    let cfg = config::discover(args.config.as_deref());
    let (targets, mut report) = run_files("updatekeys", &args.files, args.all, &cfg)?;
    let mut plans: Vec<(&Target, UpdatePlan)> = Vec::new();
    for t in &targets {
        match plan_update(args, t, &cfg) {
            Ok(p) if !p.changes => {
                report.record(&t.name, Outcome::Unchanged("already up to date".into()))
            }
            Ok(p) => plans.push((t, p)),
            Err(f) => report.record(&t.name, Outcome::Failed(f)),
        }
    }
    let verb = if args.dry_run { "would" } else { "will" };
    for (t, p) in &plans {
        eprintln!(
            "git-sops: {}: the following changes {verb} be made to the file's key groups:",
            t.name
        );
        eprint!("{}", render_diff(p.shown.0, p.shown.1, &p.diffs));
    }
    if args.dry_run {
        for (t, _) in &plans {
            let text = if report.is_bulk() {
                "its key groups would change as shown above"
            } else {
                "nothing was written (--dry-run)"
            };
            report.record(&t.name, Outcome::Done(text.into()));
        }
        return report.finish("updatekeys", true);
    }
    if !plans.is_empty() && !args.yes {
        let what = match plans.as_slice() {
            [(t, _)] if !report.is_bulk() => t.name.clone(),
            _ => format!("{} files", plans.len()),
        };
        match confirm(&what) {
            Ok(true) => {}
            Ok(false) => {
                for (t, _) in &plans {
                    report.record(&t.name, Outcome::Unchanged("left unchanged".into()));
                }
                return report.finish("updatekeys", false);
            }
            Err(f) => {
                // Files that already failed are still listed before the refusal.
                if report.is_bulk() {
                    let _ = report.finish("updatekeys", false);
                }
                return Err(f);
            }
        }
    }

    let mut progress = Progress::new("updatekeys", plans.len());
    progress.phase("unwrapping data keys");
    let keyring = Keyring::new();
    let keys = KeyCache::new(None);
    let recovered = recover_all(plans.iter().map(|(t, p)| (*t, &p.meta, p)), &keys, &keyring);
    let mut ready: Vec<(&Target, &UpdatePlan, DataKey)> = Vec::new();
    for (t, p, key) in recovered {
        match key {
            Ok(key) => ready.push((t, p, key)),
            Err(f) => {
                progress.tick();
                report.record(&t.name, Outcome::Failed(f));
            }
        }
    }
    progress.phase("wrapping data keys");
    // A rule of only keys git-sops cannot wrap for keeps them as they are.
    let needs_wrap = |p: &UpdatePlan| !p.wrappable.iter().all(|g| g.is_empty());
    let jobs: Vec<WrapJob<'_>> = ready
        .iter()
        .filter(|(_, p, _)| needs_wrap(p))
        .map(|(_, p, key)| WrapJob {
            key,
            groups: &p.wrappable,
            threshold: p.threshold,
        })
        .collect();
    let mut wrapped = keygroups::wrap_many(&jobs).into_iter();
    progress.phase("writing");
    for (t, p, key) in &ready {
        let w = if needs_wrap(p) {
            wrapped.next().unwrap_or(Err(KeyGroupError::NoRecipients))
        } else {
            Ok((vec![Vec::new()], 0))
        };
        let outcome = match finish_update(t, p, key, w) {
            Ok(text) => Outcome::Done(text),
            Err(f) => Outcome::Failed(f),
        };
        progress.tick();
        report.record(&t.name, outcome);
    }
    progress.clear();
    report.finish("updatekeys", false)
}

/// What `rotate` will do to one file, worked out before anything is unwrapped.
struct RotatePlan {
    src: Source,
    loaded: file::Loaded,
    /// The new key groups' recipients: the file's, with the additions and removals.
    recipients: Vec<Vec<Recipient>>,
    diffs: Vec<GroupDiff>,
}

fn plan_rotate(
    args: &RotateArgs,
    t: &Target,
    adds: &[Recipient],
    removes: &[Recipient],
) -> Result<RotatePlan, Failure> {
    let name = t.name.as_str();
    let src = read_source(args.input_type.as_deref(), t)?;
    let loaded = file::read(src.format, &src.text).map_err(sops_failure(name))?;
    let meta = &loaded.meta;

    // The new key groups: the file's, plus additions in group 0, minus removals.
    let mut groups: Vec<Vec<MasterKey>> = meta.key_groups.clone();
    let mut new_in_first: Vec<Recipient> = Vec::new();
    for r in adds {
        let n = KeyName::of_recipient(r);
        let present = groups.iter().flatten().any(|k| KeyName::of_key(k) == n)
            || new_in_first.iter().any(|o| KeyName::of_recipient(o) == n);
        if !present {
            new_in_first.push(r.clone());
        }
    }
    for r in removes {
        let n = KeyName::of_recipient(r);
        let before: usize = groups.iter().map(Vec::len).sum();
        for g in &mut groups {
            g.retain(|k| KeyName::of_key(k) != n);
        }
        new_in_first.retain(|o| KeyName::of_recipient(o) != n);
        if groups.iter().map(Vec::len).sum::<usize>() == before {
            eprintln!(
                "git-sops: warning: {name}: {} {} is not one of the file's keys",
                n.kind, n.form
            );
        }
    }
    let mut recipients: Vec<Vec<Recipient>> = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let mut rs = Vec::new();
        for k in g {
            if let MasterKey::Other { kind, .. } = k {
                return Err(Failure::input(format!(
                    "{name}: the file has the {kind} key {}, which git-sops cannot encrypt a new data key for; nothing was written",
                    key_string_form(k)
                ))
                .with_hint(format!("rotate this file with `sops rotate`, or remove that key first with `sops rotate --rm-{}`", kind.replace('_', "-"))));
            }
            rs.push(Recipient::from(k));
        }
        if gi == 0 {
            rs.extend(new_in_first.iter().cloned());
        }
        recipients.push(rs);
    }
    let empty: Vec<usize> = recipients
        .iter()
        .enumerate()
        .filter(|(_, g)| g.is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    if !empty.is_empty() && recipients.len() > 1 {
        return Err(Failure::input(format!(
            "{name}: these changes would leave key group(s) {empty:?} without any key; nothing was written"
        )));
    }
    if recipients.iter().all(|g| g.is_empty()) {
        return Err(Failure::input(format!(
            "{name}: these changes would leave the file without any key; nothing was written"
        )));
    }
    let diffs = diff_groups(&meta.key_groups, &recipients);
    Ok(RotatePlan {
        src,
        loaded,
        recipients,
        diffs,
    })
}

/// Seal a rotated file under its new key and groups and write it: to the index
/// for a staged file with `-i`, else the file, `--output` or standard output.
fn finish_rotate(
    args: &RotateArgs,
    t: &Target,
    p: &RotatePlan,
    opened: &file::Opened,
    new_key: &DataKey,
    wrapped: Result<(Vec<KeyGroup>, usize), KeyGroupError>,
) -> Result<String, Failure> {
    let name = t.name.as_str();
    let (key_groups, shamir_threshold) = wrapped.map_err(keys_failure(name))?;
    let mut new_meta = Metadata {
        key_groups,
        shamir_threshold,
        ..p.loaded.meta.clone()
    };
    let out = file::seal(
        p.src.format,
        &opened.plaintext,
        new_key,
        &mut new_meta,
        &mut FreshIvs,
    )
    .map_err(sops_failure(name))?;
    if let (Some(s), true) = (&p.src.staged, args.in_place) {
        s.stage(&out, &new_meta, new_key, Some(&opened.plaintext))?;
        return Ok("rotated (new data key, every value re-encrypted; staged, the working tree keeps its plaintext)".into());
    }
    let target = if args.in_place {
        Some(t.path.clone())
    } else {
        args.output.clone()
    };
    match target {
        Some(to) => {
            write_atomically(&to, &out).map_err(|e| {
                Failure::io(format!(
                    "{}: cannot write it: {e}; nothing was changed",
                    to.display()
                ))
            })?;
            Ok("rotated (new data key, every value re-encrypted)".into())
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&out)
                .and_then(|_| stdout.flush())
                .map_err(|e| Failure::io(format!("cannot write to standard output: {e}")))?;
            Ok(String::new())
        }
    }
}

pub fn rotate(args: &RotateArgs) -> Result<(), Failure> {
    if (args.all || args.files.len() > 1) && !args.in_place && !args.dry_run {
        return Err(Failure::usage(
            "rotating more than one file needs --in-place (-i)".into(),
        ));
    }
    let context = parse_encryption_context(args.encryption_context.as_deref())?;
    let profile = args.aws_profile.as_deref().unwrap_or("");
    let mut adds = kms_recipients(&args.add_kms, &context, profile);
    adds.extend(age_recipients(&args.add_age));
    let mut removes = kms_recipients(&args.rm_kms, &context, profile);
    removes.extend(age_recipients(&args.rm_age));
    // A malformed key to add is refused before any file is touched.
    for r in &adds {
        keygroups::check_recipient(r)
            .map_err(|e| Failure::usage(format!("--add-{}: {e}", r.kind())))?;
    }
    // Only `--all` reads .sops.yaml: which tracked SOPS files its rules cover.
    let cfg = if args.all {
        config::discover(None)
    } else {
        Ok(None)
    };
    let (targets, mut report) = run_files("rotate", &args.files, args.all, &cfg)?;
    let mut plans: Vec<(&Target, RotatePlan)> = Vec::new();
    for t in &targets {
        match plan_rotate(args, t, &adds, &removes) {
            Ok(p) => plans.push((t, p)),
            Err(f) => report.record(&t.name, Outcome::Failed(f)),
        }
    }
    if args.dry_run {
        let keys_change = !adds.is_empty() || !removes.is_empty();
        for (t, p) in &plans {
            if keys_change {
                let thr = p.loaded.meta.shamir_threshold;
                eprintln!(
                    "git-sops: {}: the following changes would be made to the file's key groups:",
                    t.name
                );
                eprint!("{}", render_diff(thr, thr, &p.diffs));
            }
            let text = if report.is_bulk() {
                "would get a new data key, every value re-encrypted"
            } else {
                "would get a new data key, every value re-encrypted; nothing was written (--dry-run)"
            };
            report.record(&t.name, Outcome::Done(text.into()));
        }
        return report.finish("rotate", true);
    }

    let mut progress = Progress::new("rotate", plans.len());
    progress.phase("unwrapping data keys");
    let keyring = Keyring::new();
    let keys = KeyCache::new(None);
    let recovered = recover_all(
        plans.iter().map(|(t, p)| (*t, &p.loaded.meta, p)),
        &keys,
        &keyring,
    );
    let mut ready: Vec<(&Target, &RotatePlan, file::Opened, DataKey)> = Vec::new();
    for (t, p, key) in recovered {
        let opened = key.and_then(|key| p.loaded.open(&key).map_err(sops_failure(&t.name)));
        match opened {
            Ok(opened) => {
                if !opened.warnings.is_empty() {
                    progress.clear();
                    for w in &opened.warnings {
                        eprintln!("git-sops: warning: {}: {w}", t.name);
                    }
                }
                ready.push((t, p, opened, DataKey::generate()));
            }
            Err(f) => {
                progress.tick();
                report.record(&t.name, Outcome::Failed(f));
            }
        }
    }
    progress.phase("wrapping new data keys");
    let jobs: Vec<WrapJob<'_>> = ready
        .iter()
        .map(|(_, p, _, key)| WrapJob {
            key,
            groups: &p.recipients,
            threshold: p.loaded.meta.shamir_threshold,
        })
        .collect();
    let wrapped = keygroups::wrap_many(&jobs);
    progress.phase("writing");
    for ((t, p, opened, key), w) in ready.iter().zip(wrapped) {
        let outcome = match finish_rotate(args, t, p, opened, key, w) {
            Ok(text) if text.is_empty() => None,
            Ok(text) => Some(Outcome::Done(text)),
            Err(f) => Some(Outcome::Failed(f)),
        };
        progress.tick();
        // None: printed to standard output, nothing to say on stderr.
        if let Some(o) = outcome {
            report.record(&t.name, o);
        }
    }
    progress.clear();
    report.finish("rotate", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sops_file::metadata::AgeKey;

    fn age(r: &str) -> MasterKey {
        MasterKey::Age(AgeKey {
            recipient: r.into(),
            enc: String::new(),
        })
    }

    #[test]
    fn diffs_groups_by_string_form_like_sops() {
        let ours = vec![vec![age("age1a"), age("age1b")]];
        let theirs = vec![
            vec![
                Recipient::Age("age1b".into()),
                Recipient::Age("age1c".into()),
            ],
            vec![Recipient::Kms {
                arn: "arn:aws:kms:eu-west-1:1:key/k".into(),
                role: "arn:aws:iam::1:role/r".into(),
                context: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
                aws_profile: "p".into(),
            }],
        ];
        let d = diff_groups(&ours, &theirs);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].common.len(), 1);
        assert_eq!(d[0].added[0].form, "age1c");
        assert_eq!(d[0].removed[0].form, "age1a");
        assert_eq!(
            d[1].added[0].form,
            "arn:aws:kms:eu-west-1:1:key/k+arn:aws:iam::1:role/r|a:1,b:2|p"
        );
        let text = render_diff(0, 2, &d);
        assert!(text.starts_with("+++ shamir_threshold: 2\nGroup 1\n    age age1b\n"));
        assert!(text.contains("--- age age1a\n"));
    }
}
