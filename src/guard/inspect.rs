//! The check of one blob, with no keys and no decryption: pure computation over
//! its bytes, its path (for the format) and whether it is protected.
//!
//! A protected blob must be a SOPS document: parseable by its format's store (a
//! file of another extension by sops' binary store, which is JSON; dotenv and
//! INI through their stores, which present the flattened metadata as a `sops`
//! map), with a `sops` block that sops would load
//! (version, `lastmodified`, at least one master key, at most one selector), a
//! MAC that is an `ENC[...]` value, and every leaf and comment that the file's
//! *own recorded* selector encrypts in `ENC[...]` form. Nulls, empty strings and
//! blank comments are never encrypted by sops and so never findings; an empty
//! blob holds nothing to leak and passes.
//!
//! Comment policy: a non-empty plaintext comment where the selector encrypts
//! comments is a finding, like a plaintext value. sops only warns when it
//! decrypts such a file, but neither sops nor git-sops ever writes one: it was
//! pasted into the ciphertext by hand or through a bypass, and a pasted secret in
//! a comment leaks as surely as one in a value.
//!
//! An unprotected blob is only looked at for signs of decrypted SOPS output: a
//! `sops` block over plaintext values (reported per key), or a `*.dec.*` /
//! `*.decrypted.*` name on something that is not a fully encrypted SOPS file.

use super::finding::{Finding, Kind};
use super::rules::looks_decrypted_name;
use sops_file::form::{self, Problem, ProblemKind};
use sops_file::formats::Value;
use sops_file::formats::{find_entry, Document, Entry, Format, Node};
use sops_file::metadata::Metadata;
use sops_file::selectors::Selector;

/// The findings for one blob (paths left empty: the caller knows where the blob is).
///
/// `rule`: the `.sops.yaml` creation rule that covers a protected path (its
/// number and selector). Whatever it encrypts must be encrypted too, whatever
/// the file's own recorded selector says: a file encrypted with a narrower
/// selector (a "template" whose metadata leaves `password` plaintext) would
/// otherwise take every value filled into it later to git in the clear.
pub fn inspect(
    path: &str,
    format: Format,
    content: &[u8],
    protected: bool,
    rule: Option<(usize, &Selector)>,
) -> Vec<Finding> {
    inspect_with_metadata(path, format, content, protected, rule).0
}

/// [`inspect`], with the metadata of a protected SOPS file when it has readable
/// metadata (the guard's key-drift check reads the recipients from it instead
/// of parsing the file a second time).
pub fn inspect_with_metadata(
    path: &str,
    format: Format,
    content: &[u8],
    protected: bool,
    rule: Option<(usize, &Selector)>,
) -> (Vec<Finding>, Option<Metadata>) {
    if protected {
        // A SOPS file of another format under a name sops calls binary (say
        // `kubeconfig`) is stored as it is by clean, so it is judged as what it is.
        let format = match format {
            Format::Binary => sops_file::file::load_as_configured(path, format, content)
                .map_or(format, |l| l.format()),
            _ => format,
        };
        inspect_protected(format, content, rule)
    } else {
        (inspect_unprotected(path, content), None)
    }
}

/// Does the path need its content read at all when it is not protected?
pub fn worth_reading_unprotected(path: &str) -> bool {
    looks_decrypted_name(path) || Format::from_path(path).is_some()
}

fn inspect_protected(
    format: Format,
    content: &[u8],
    rule: Option<(usize, &Selector)>,
) -> (Vec<Finding>, Option<Metadata>) {
    let mut meta = None;
    let findings = findings_of_protected(format, content, rule, &mut meta);
    (findings, meta)
}

fn findings_of_protected(
    format: Format,
    content: &[u8],
    rule: Option<(usize, &Selector)>,
    found: &mut Option<Metadata>,
) -> Vec<Finding> {
    if sops_file::conflict::is_conflict(content) {
        // Encrypted, but not the file: sops (and everything reading it) would
        // see one `git_sops_conflict` value instead of the secrets.
        return vec![Finding::new(
            Kind::UnresolvedConflict,
            "the file is git-sops' encrypted merge-conflict envelope, not the secrets file: resolve the conflict (edit the file, `git add` it) before committing",
        )];
    }
    // A binary file is sops' JSON envelope.
    let store = format.store();
    let binary = format == Format::Binary;
    let format = format.name();
    let Ok(text) = std::str::from_utf8(content) else {
        return vec![Finding::new(
            Kind::NotEncrypted,
            "the file is not text, so it is not a SOPS file: it is committed as plaintext",
        )];
    };
    if text.trim().is_empty() {
        return Vec::new();
    }
    let doc = match store.parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            use sops_file::formats::FormatError;
            // Syntax messages may quote the offending text, so only its position is shown.
            let (line, why) = match &e {
                FormatError::Syntax { line, column, .. } => {
                    (*line, format!("it is not valid {format} (column {column})"))
                }
                FormatError::Unsupported { line, message, .. } => {
                    (*line, format!("sops cannot read it: {message}"))
                }
                FormatError::Empty { .. } => (0, "it holds no data, only comments".to_string()),
            };
            let f = if binary {
                Finding::new(
                    Kind::NotEncrypted,
                    "the file is not in sops' binary format (a JSON document with `data` and `sops`): it is committed as plaintext",
                )
            } else {
                Finding::new(
                    Kind::Unparseable,
                    format!("{why}, so it is not a SOPS file"),
                )
            };
            return vec![f.at(line)];
        }
    };
    let Some(entry) = sops_entry(&doc) else {
        // No metadata: every value sops would encrypt by default is a leaked secret.
        let leaks = check_tree(&doc, &Selector::default_suffix(), &Rules::plaintext_file());
        if leaks.is_empty() {
            return vec![Finding::new(
                Kind::NotEncrypted,
                "the file has no `sops` metadata: it is committed as plaintext",
            )];
        }
        return leaks;
    };
    let meta = match Metadata::from_value(&Value::from_node(&entry.value)) {
        Ok(meta) => meta,
        Err(e) => {
            return vec![Finding::new(
                Kind::BadMetadata,
                format!("{e}; sops cannot load this file"),
            )
            .at(entry.line)]
        }
    };
    let mac_line = match &entry.value {
        Node::Map(m) => find_entry(m, "mac").map_or(entry.line, |e| e.line),
        _ => entry.line,
    };
    let rules = Rules::recorded(&meta, false);
    let mut findings: Vec<Finding> = form::mac_problem(&meta, mac_line)
        .into_iter()
        .chain(
            doc.docs
                .iter()
                .filter_map(|root| find_entry(root, "sops"))
                .flat_map(form::metadata_problems),
        )
        .map(|p| rules.finding(p))
        .collect();
    let own = meta.effective_selector();
    findings.extend(check_tree(&doc, &own, &rules));
    if let Some((n, selector)) = rule.filter(|(_, s)| **s != own) {
        let by_rule = Rules::creation_rule(n, selector, &meta);
        for f in check_tree(&doc, selector, &by_rule) {
            let reported = findings
                .iter()
                .any(|g| g.line == f.line && g.key_path == f.key_path && g.kind == f.kind);
            if !reported {
                findings.push(f);
            }
        }
    }
    *found = Some(meta);
    findings
}

fn inspect_unprotected(path: &str, content: &[u8]) -> Vec<Finding> {
    let by_name = looks_decrypted_name(path);
    let name_finding = || {
        vec![Finding::new(
            Kind::DecryptedFile,
            "the name looks like decrypted SOPS output and the content is not an encrypted SOPS file; keep decrypted files out of git",
        )]
    };
    let Ok(text) = std::str::from_utf8(content) else {
        return if by_name { name_finding() } else { Vec::new() };
    };
    if let Some(format) = Format::from_path(path) {
        // Cheap test first: most YAML/JSON in a repository has nothing to do with sops.
        if text.contains("sops") && text.contains("lastmodified") {
            let loaded = format.store().parse(text).ok().and_then(|doc| {
                let meta = sops_entry(&doc)
                    .and_then(|e| Metadata::from_value(&Value::from_node(&e.value)).ok())?;
                Some((doc, meta))
            });
            if let Some((doc, meta)) = loaded {
                // A SOPS file outside the protected paths: fine while it is encrypted.
                return check_tree(
                    &doc,
                    &meta.effective_selector(),
                    &Rules::recorded(&meta, true),
                );
            }
        }
    }
    if by_name && !text.trim().is_empty() {
        name_finding()
    } else {
        Vec::new()
    }
}

fn sops_entry(doc: &Document) -> Option<&Entry> {
    doc.docs.first().and_then(|root| find_entry(root, "sops"))
}

/// The rule in force, for messages: `encrypted_regex "^password$"`.
fn describe_selector(meta: &Metadata) -> String {
    match &meta.selector {
        Some(s) => format!("{} {:?}", s.field_name(), s.pattern()),
        None => "sops' default unencrypted_suffix \"_unencrypted\"".to_string(),
    }
}

/// How [`check_tree`] reports what it finds.
struct Rules {
    value_kind: Kind,
    comment_kind: Kind,
    /// Why the entry should be encrypted, completing "the value (..) is plaintext, but ...".
    why: String,
}

impl Rules {
    /// Under the selector recorded in the file. `decrypted`: the file is not
    /// protected, so plaintext means decrypted or hand-edited output.
    fn recorded(meta: &Metadata, decrypted: bool) -> Rules {
        let rule = describe_selector(meta);
        if decrypted {
            Rules {
                value_kind: Kind::DecryptedFile,
                comment_kind: Kind::DecryptedFile,
                why: format!("this file's rule ({rule}) says it must be encrypted; the file is not protected, but its `sops` block marks it as SOPS output: it looks decrypted or hand-edited"),
            }
        } else {
            Rules {
                value_kind: Kind::PlaintextValue,
                comment_kind: Kind::PlaintextComment,
                why: format!("this file's rule ({rule}) says it must be encrypted"),
            }
        }
    }

    /// The finding for one problem of the form.
    fn finding(&self, p: Problem) -> Finding {
        let kind = match p.kind {
            ProblemKind::PlaintextValue => self.value_kind,
            ProblemKind::PlaintextComment => self.comment_kind,
            ProblemKind::MalformedValue => Kind::MalformedValue,
            ProblemKind::BadMac => Kind::BadMac,
        };
        let message = match p.kind {
            ProblemKind::PlaintextValue | ProblemKind::PlaintextComment => {
                format!("{}, but {}", p.what, self.why)
            }
            ProblemKind::MalformedValue | ProblemKind::BadMac => p.what,
        };
        let mut f = Finding::new(kind, message).at(p.line);
        f.key_path = p.key_path;
        f
    }

    /// What the path's creation rule encrypts, which the file's own selector
    /// leaves plaintext.
    fn creation_rule(n: usize, selector: &Selector, meta: &Metadata) -> Rules {
        Rules {
            value_kind: Kind::PlaintextValue,
            comment_kind: Kind::PlaintextComment,
            why: format!(
                ".sops.yaml creation rule {n} ({} {:?}) says it must be encrypted; the file's own selector ({}) leaves it plaintext, so re-encrypt the file under the rule (`git add` does, where the rule's selector covers everything the file's does)",
                selector.field_name(),
                selector.pattern(),
                describe_selector(meta)
            ),
        }
    }

    /// A protected file without any `sops` metadata.
    fn plaintext_file() -> Rules {
        Rules {
            value_kind: Kind::NotEncrypted,
            comment_kind: Kind::NotEncrypted,
            why: "the file has no `sops` metadata: the whole file is committed as plaintext".into(),
        }
    }
}

/// The most findings one blob gets; the rest are counted in one more. A pushed
/// blob can hold millions of plaintext values, and the report is kept in memory.
const MAX_FINDINGS_PER_BLOB: usize = 1000;

/// Every leaf and comment `selector` encrypts must be `ENC[...]`.
fn check_tree(doc: &Document, selector: &Selector, rules: &Rules) -> Vec<Finding> {
    let (problems, more) = form::unencrypted(doc, selector, MAX_FINDINGS_PER_BLOB);
    let mut findings: Vec<Finding> = problems.into_iter().map(|p| rules.finding(p)).collect();
    if more > 0 {
        findings.push(Finding::new(
            rules.value_kind,
            format!(
                "{more} more values or comments are plaintext, but {} (only the first {MAX_FINDINGS_PER_BLOB} are listed)",
                rules.why
            ),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, content: &[u8], protected: bool) -> Vec<Finding> {
        inspect(path, Format::detect(path), content, protected, None)
    }

    const ENC: &str = "ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]";

    fn sops_block(extra: &str) -> String {
        format!(
            "\"sops\": {{\"age\": [{{\"recipient\": \"age1x\", \"enc\": \"x\"}}], \"lastmodified\": \"2024-01-01T00:00:00Z\", \"mac\": \"{ENC}\", {extra}\"version\": \"3.11.0\"}}"
        )
    }

    fn kinds(f: &[Finding]) -> Vec<Kind> {
        f.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn encrypted_json_passes_and_plaintext_is_found_without_the_value() {
        let good = format!(
            "{{\"db\": {{\"password\": \"{ENC}\", \"empty\": \"\", \"none\": null}}, {}}}",
            sops_block("")
        );
        assert!(check("s.json", good.as_bytes(), true).is_empty());
        let bad = format!(
            "{{\"db\": {{\"password\": \"correct-horse-battery\", \"port\": 5432}}, {}}}",
            sops_block("")
        );
        let f = check("s.json", bad.as_bytes(), true);
        assert_eq!(kinds(&f), vec![Kind::PlaintextValue, Kind::PlaintextValue]);
        assert_eq!(f[0].key_path.as_deref(), Some("[\"db\"][\"password\"]"));
        assert!(f[0].message.contains("co****"), "{}", f[0].message);
        assert!(!f[0].message.contains("correct-horse"));
        assert!(f[1].message.contains("(a number)"), "{}", f[1].message); // JSON numbers are floats in sops 3.11
    }

    #[test]
    fn the_files_own_selector_decides() {
        let text = format!(
            "{{\"password\": \"{ENC}\", \"user\": \"admin\", {}}}",
            sops_block("\"encrypted_regex\": \"^password$\", ")
        );
        assert!(check("s.json", text.as_bytes(), true).is_empty());
        let text = format!(
            "{{\"user_unencrypted\": \"admin\", \"pw\": \"{ENC}\", {}}}",
            sops_block("")
        );
        assert!(check("s.json", text.as_bytes(), true).is_empty());
    }

    #[test]
    fn metadata_and_mac_problems() {
        let none = "{\"password\": \"x\"}";
        assert_eq!(
            kinds(&check("s.json", none.as_bytes(), true)),
            vec![Kind::NotEncrypted]
        );
        let bad_mac = format!("{{\"a\": \"{ENC}\", {}}}", sops_block("")).replace(
            &format!("\"mac\": \"{ENC}\""),
            "\"mac\": \"ENC[AES256_GCM,data:zz]\"",
        );
        assert_eq!(
            kinds(&check("s.json", bad_mac.as_bytes(), true)),
            vec![Kind::BadMac]
        );
        let no_keys = format!("{{\"a\": \"{ENC}\", {}}}", sops_block("")).replace(
            "\"age\": [{\"recipient\": \"age1x\", \"enc\": \"x\"}], ",
            "",
        );
        assert_eq!(
            kinds(&check("s.json", no_keys.as_bytes(), true)),
            vec![Kind::BadMetadata]
        );
        assert_eq!(
            kinds(&check("s.json", b"{not json", true)),
            vec![Kind::Unparseable]
        );
        assert_eq!(
            kinds(&check("s.json", &[0xff, 0xfe], true)),
            vec![Kind::NotEncrypted]
        );
        assert_eq!(
            kinds(&check("s.env", b"A=b\n", true)),
            vec![Kind::NotEncrypted]
        );
        assert_eq!(
            kinds(&check("s.ini", b"[s]\nk = v\n", true)),
            vec![Kind::NotEncrypted]
        );
        assert_eq!(
            kinds(&check("key.pem", b"-----BEGIN", true)),
            vec![Kind::NotEncrypted]
        );
        assert!(check("s.json", b"", true).is_empty());
    }

    #[test]
    fn unprotected_files_only_when_they_look_decrypted() {
        assert!(check("config.json", b"{\"password\": \"x\"}", false).is_empty());
        assert_eq!(
            kinds(&check("db.dec.json", b"{\"password\": \"x\"}", false)),
            vec![Kind::DecryptedFile]
        );
        let enc = format!("{{\"a\": \"{ENC}\", {}}}", sops_block(""));
        assert!(check("db.dec.json", enc.as_bytes(), false).is_empty());
        let plain = format!("{{\"a\": \"plaintext-secret\", {}}}", sops_block(""));
        let f = check("config.json", plain.as_bytes(), false);
        assert_eq!(kinds(&f), vec![Kind::DecryptedFile]);
        assert_eq!(f[0].key_path.as_deref(), Some("[\"a\"]"));
    }
}
