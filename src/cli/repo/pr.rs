//! `git sops sync` and `git sops review`: the pull-request helpers
//! (`crate::setup::sync`, `crate::guard::review`; README "Pull requests on
//! GitHub", examples/github/sync-and-review.yml). This file says what sync did
//! and renders a review as Markdown or JSON; neither ever holds a value.

use std::io::Write;

use serde_json::{json, Value};

use super::{here, ReviewFormat};
use crate::cli::report::Failure;
use crate::guard::review::{self, FileReview, Keys, Reencryption, Review};
use crate::setup::sync::{self, Synced};

pub(super) fn sync(base: &str) -> Result<(), Failure> {
    let r = sync::sync(&here(), base).map_err(Failure::sync)?;
    let short = |id: &str| id.chars().take(12).collect::<String>();
    match &r.outcome {
        Synced::UpToDate => eprintln!(
            "git-sops: sync: {} already contains {base} ({}); nothing to do",
            r.branch,
            short(&r.base)
        ),
        Synced::FastForward => eprintln!(
            "git-sops: sync: {} had no commits of its own; fast-forwarded to {base} ({})",
            r.branch,
            short(&r.base)
        ),
        Synced::Merged { commit, resolved } => {
            eprintln!(
                "git-sops: sync: merged {base} ({}) into {}: merge commit {}",
                short(&r.base),
                r.branch,
                short(commit)
            );
            if resolved.is_empty() {
                eprintln!("git-sops: sync: no protected file was changed on both sides");
            } else {
                eprintln!(
                    "git-sops: sync: {} protected file(s) changed on both sides, merged by value: {}",
                    resolved.len(),
                    resolved.join(", ")
                );
            }
            eprintln!(
                "git-sops: sync: push it (`git push`); a host's plain merge of {} now applies cleanly",
                r.branch
            );
        }
    }
    // The new tip on stdout, for scripts (the CI workflow compares it).
    let tip = match &r.outcome {
        Synced::Merged { commit, .. } => commit.clone(),
        Synced::FastForward => r.base.clone(),
        Synced::UpToDate => r.before.clone(),
    };
    println!("{tip}");
    Ok(())
}

pub(super) fn review(range: &str, format: ReviewFormat, with_keys: bool) -> Result<(), Failure> {
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::review(format!("cannot read the current directory: {e}")))?;
    let r = review::review(&cwd, range, with_keys).map_err(|e| Failure::review(e.to_string()))?;
    let text = match format {
        ReviewFormat::Markdown => markdown(&r),
        ReviewFormat::Json => format!("{:#}\n", to_json(&r)),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::review(format!("cannot write to standard output: {e}")))
}

/// Text from the repository (paths, key names, rules) inside Markdown code
/// spans: no backtick can close the span, no line break can end the list item.
fn code(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            '`' => '\'',
            // Control characters, and the invisible ones that reorder or
            // break what a reader sees (bidi overrides, line/paragraph
            // separators, zero-width marks): a key name cannot disguise a line.
            c if c.is_control() || invisible(c) => '�',
            c => c,
        })
        .collect();
    format!("`{clean}`")
}

/// Characters that change how text displays without showing themselves.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
        | '\u{2028}' | '\u{2029}' // line and paragraph separators
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // bidi isolates
        | '\u{FEFF}' // zero-width no-break space
        | '\u{00AD}' // soft hyphen
    )
}

fn keys_line(out: &mut String, label: &str, keys: &Keys) {
    if keys.is_empty() {
        return;
    }
    let listed: Vec<String> = keys.listed.iter().map(|k| code(k)).collect();
    let more = keys.total - keys.listed.len();
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    out.push_str(&format!("- {label}: {}{more}\n", listed.join(", ")));
}

fn markdown(r: &Review) -> String {
    let short = |id: &str| id.chars().take(12).collect::<String>();
    let mut out = format!(
        "## git-sops review: `{}`..`{}`\n\n",
        short(&r.from),
        short(&r.to)
    );
    if r.files.is_empty() && r.rules.is_empty() && r.protection.is_empty() {
        out.push_str("No protected file, creation rule or protection changed.\n");
        return out;
    }
    if !r.files.is_empty() {
        out.push_str(&format!(
            "{} protected file(s) changed. Values are never shown.\n",
            r.files.len()
        ));
    }
    for f in &r.files {
        file_markdown(&mut out, f, r.with_keys);
    }
    if r.files_not_reviewed > 0 {
        out.push_str(&format!(
            "\n{} more protected file(s) changed but were not reviewed (limit {}).\n",
            r.files_not_reviewed,
            review::MAX_FILES
        ));
    }
    if !r.rules.is_empty() {
        out.push_str("\n### `.sops.yaml` creation rules\n\n");
        for l in &r.rules {
            out.push_str(&format!("- {}\n", code(l)));
        }
    }
    if !r.protection.is_empty() {
        out.push_str("\n### Protection\n\n");
        for p in &r.protection {
            out.push_str(&format!(
                "- {}: {} → {}\n",
                code(&p.path),
                p.before,
                p.after
            ));
        }
    }
    out
}

fn file_markdown(out: &mut String, f: &FileReview, with_keys: bool) {
    out.push_str(&format!(
        "\n### {} ({}, {})\n\n",
        code(&f.path),
        f.status.name(),
        f.format
    ));
    let before = out.len();
    keys_line(out, "added", &f.added);
    match f.reencrypted {
        Some(Reencryption::NewDataKey) => out.push_str(&format!(
            "- re-encrypted (new data key): every value has new ciphertext ({} value(s){})\n",
            f.changed.total,
            if f.value_changed.is_some() { "" } else { "; without a key it cannot say which values changed" }
        )),
        Some(Reencryption::EveryValue) => out.push_str(&format!(
            "- every value re-encrypted under the same data key ({} value(s); written by a tool that does not keep ciphertext, e.g. plain `sops`)\n",
            f.changed.total
        )),
        None => keys_line(out, "changed", &f.changed),
    }
    keys_line(out, "removed", &f.removed);
    if let Some(v) = &f.value_changed {
        if f.reencrypted.is_some() {
            keys_line(out, "values that changed", v);
        }
    }
    if let Some(same) = &f.same_value {
        keys_line(out, "re-encrypted, same value", same);
    }
    for l in &f.recipients {
        out.push_str(&format!("- recipients: {}\n", code(l)));
    }
    for l in &f.settings {
        out.push_str(&format!("- settings: {}\n", code(l)));
    }
    for n in &f.notes {
        out.push_str(&format!("- note: {n}\n"));
    }
    if out.len() == before {
        out.push_str(if with_keys {
            "- only `mac`/`lastmodified` changed\n"
        } else {
            "- no key added, changed or removed (only `mac`/`lastmodified`)\n"
        });
    }
}

fn keys_json(k: &Keys) -> Value {
    json!({ "keys": k.listed, "total": k.total })
}

fn to_json(r: &Review) -> Value {
    let files: Vec<Value> = r
        .files
        .iter()
        .map(|f| {
            json!({
                "path": f.path,
                "status": f.status.name(),
                "format": f.format,
                "added": keys_json(&f.added),
                "changed": keys_json(&f.changed),
                "removed": keys_json(&f.removed),
                "reencrypted": match f.reencrypted {
                    Some(Reencryption::NewDataKey) => Value::from("new-data-key"),
                    Some(Reencryption::EveryValue) => Value::from("every-value"),
                    None => Value::Null,
                },
                "same_value": f.same_value.as_ref().map(keys_json),
                "value_changed": f.value_changed.as_ref().map(keys_json),
                "recipients": f.recipients,
                "settings": f.settings,
                "notes": f.notes,
            })
        })
        .collect();
    let protection: Vec<Value> = r
        .protection
        .iter()
        .map(|p| json!({ "path": p.path, "before": p.before, "after": p.after }))
        .collect();
    json!({
        "from": r.from,
        "to": r.to,
        "with_keys": r.with_keys,
        "files": files,
        "files_not_reviewed": r.files_not_reviewed,
        "creation_rules": r.rules,
        "protection": protection,
    })
}
