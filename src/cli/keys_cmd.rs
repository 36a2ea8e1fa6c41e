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

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::args::{RotateArgs, UpdateKeysArgs};
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
use sops_file::keygroups::{
    self, diff_groups, key_string_form, GroupDiff, KeyGroupError, KeyName, Keyring, Recipient,
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

/// Run `each` over every file; report each failure as it happens and return the
/// first one (so later files are still processed).
fn for_each_file<'a, I>(
    files: I,
    mut each: impl FnMut(&Path) -> Result<(), Failure>,
) -> Result<(), Failure>
where
    I: IntoIterator<Item = &'a std::path::PathBuf>,
{
    let files: Vec<&std::path::PathBuf> = files.into_iter().collect();
    if let [only] = files.as_slice() {
        return each(only);
    }
    let mut first: Option<Failure> = None;
    let mut failed = 0;
    for f in &files {
        if let Err(e) = each(f) {
            eprintln!("{e}");
            failed += 1;
            first.get_or_insert(e);
        }
    }
    match first {
        None => Ok(()),
        Some(mut e) => {
            e.message = format!(
                "{failed} of {} files failed (each reported above); the others were updated",
                files.len()
            );
            e.hint = None;
            Err(e)
        }
    }
}

/// Ask on the terminal; refuse when there is none.
fn confirm(name: &str) -> Result<bool, Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::usage(format!(
            "{name}: not changing the keys without confirmation, and standard input is not a terminal to ask on; nothing was written"
        ))
        .with_hint("review the changes above and run again with --yes to apply them"));
    }
    let mut line = String::new();
    loop {
        eprint!("Is this okay? (y/n): ");
        let _ = std::io::stderr().flush();
        line.clear();
        let n = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::io(format!("cannot read the answer: {e}")))?;
        if n == 0 {
            return Ok(false);
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => {}
        }
    }
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

pub fn updatekeys(args: &UpdateKeysArgs) -> Result<(), Failure> {
    let keyring = Keyring::new();
    for_each_file(&args.files, |path| update_one(args, path, &keyring))
}

fn update_one(args: &UpdateKeysArgs, path: &Path, keyring: &Keyring) -> Result<(), Failure> {
    let name = path.display().to_string();
    let (format, staged) = source(args.input_type.as_deref(), path, &name)?;
    let store = format.store();
    let text = match &staged {
        Some(s) => staged_text(s, &name)?,
        None => read_text(path, &name)?,
    };
    let (doc, meta) = decrypt::load(store, &text).map_err(sops_failure(&name))?;
    let cfg = config::discover(args.config.as_deref())
        .map_err(|e| Failure::input(format!("{name}: {e}")))?
        .ok_or_else(|| {
            Failure::input(format!(
                "{name}: no .sops.yaml with creation_rules was found from the current directory upwards; updatekeys takes the keys from the rule for the file"
            ))
            .with_hint("run it from inside the repository, or pass --config PATH")
        })?;
    let rule = cfg
        .rule_for(&name)
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
    let keys_change = diffs
        .iter()
        .any(|d| !d.added.is_empty() || !d.removed.is_empty());
    if !keys_change && threshold == old_threshold {
        eprintln!("git-sops: {name}: already up to date");
        return Ok(());
    }
    eprintln!("git-sops: {name}: the following changes will be made to the file's key groups:");
    // Shown as it will be written: 0 with several groups means "all of them".
    let shown = |t: usize, n: usize| if t == 0 && n > 1 { n } else { t };
    eprint!(
        "{}",
        render_diff(
            shown(old_threshold, meta.key_groups.len()),
            shown(threshold, groups.len()),
            &diffs
        )
    );
    if !args.yes && !confirm(&name)? {
        eprintln!("git-sops: {name}: left unchanged");
        return Ok(());
    }

    // Keys git-sops cannot wrap for (pgp, gcp_kms, ...) can stay as they are only
    // when their `enc` still wraps what they will need: the whole data key, i.e.
    // a single group before and after.
    let single = groups.len() == 1 && meta.key_groups.len() == 1;
    let mut kept = Vec::new();
    let mut wrappable: Vec<Vec<Recipient>> = Vec::new();
    for g in &groups {
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

    let key: DataKey = keygroups::recover(&meta, keyring).map_err(keys_failure(&name))?;
    let (mut key_groups, shamir_threshold) = if wrappable.iter().all(|g| g.is_empty()) {
        (vec![Vec::new()], 0)
    } else {
        keygroups::wrap(&key, &wrappable, threshold).map_err(keys_failure(&name))?
    };
    if let Some(first) = key_groups.first_mut() {
        first.extend(kept);
    }
    let new_meta = Metadata {
        key_groups: key_groups.into_iter().map(in_load_order).collect(),
        shamir_threshold,
        ..meta.clone()
    };
    let out = rewrite_metadata(store, &text, &doc, &new_meta).map_err(sops_failure(&name))?;
    match &staged {
        Some(s) => {
            s.stage(out.as_bytes(), &new_meta, &key, None)?;
            eprintln!("git-sops: {name}: synced with new keys (staged; the working tree keeps its plaintext)");
        }
        None => {
            write_atomically(path, out.as_bytes()).map_err(|e| {
                Failure::io(format!("{name}: cannot write it: {e}; nothing was changed"))
            })?;
            eprintln!("git-sops: {name}: synced with new keys");
        }
    }
    Ok(())
}

pub fn rotate(args: &RotateArgs) -> Result<(), Failure> {
    if args.files.len() > 1 && !args.in_place {
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
    let keyring = Keyring::new();
    for_each_file(&args.files, |path| {
        rotate_one(args, path, &keyring, &adds, &removes)
    })
}

fn rotate_one(
    args: &RotateArgs,
    path: &Path,
    keyring: &Keyring,
    adds: &[Recipient],
    removes: &[Recipient],
) -> Result<(), Failure> {
    let name = path.display().to_string();
    let (format, staged) = source(args.input_type.as_deref(), path, &name)?;
    let text = match &staged {
        Some(s) => staged_text(s, &name)?,
        None => read_text(path, &name)?,
    };
    let loaded = file::read(format, &text).map_err(sops_failure(&name))?;
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

    let key = keygroups::recover(meta, keyring).map_err(keys_failure(&name))?;
    let opened = loaded.open(&key).map_err(sops_failure(&name))?;
    for w in &opened.warnings {
        eprintln!("git-sops: warning: {name}: {w}");
    }
    let (new_key, key_groups, shamir_threshold) =
        keygroups::wrap_new(&recipients, meta.shamir_threshold).map_err(keys_failure(&name))?;
    let mut new_meta = Metadata {
        key_groups,
        shamir_threshold,
        ..meta.clone()
    };
    let out = file::seal(
        format,
        &opened.plaintext,
        &new_key,
        &mut new_meta,
        &mut FreshIvs,
    )
    .map_err(sops_failure(&name))?;
    if let (Some(s), true) = (&staged, args.in_place) {
        s.stage(&out, &new_meta, &new_key, Some(&opened.plaintext))?;
        eprintln!("git-sops: {name}: rotated (new data key, every value re-encrypted; staged, the working tree keeps its plaintext)");
        return Ok(());
    }
    let target = if args.in_place {
        Some(path.to_path_buf())
    } else {
        args.output.clone()
    };
    match target {
        Some(t) => {
            write_atomically(&t, &out).map_err(|e| {
                Failure::io(format!(
                    "{}: cannot write it: {e}; nothing was changed",
                    t.display()
                ))
            })?;
            eprintln!("git-sops: {name}: rotated (new data key, every value re-encrypted)");
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&out)
                .and_then(|_| stdout.flush())
                .map_err(|e| Failure::io(format!("cannot write to standard output: {e}")))?;
        }
    }
    Ok(())
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
