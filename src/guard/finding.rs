//! A finding: one reason a blob must not be committed, as plain data — the path,
//! the commit (history scans only), the key path in sops' `["a"]["b"]` syntax,
//! the line, a stable kind name for machines and a sentence for people. A
//! finding never carries a secret: a plaintext value shows up at most as a
//! two-character prefix followed by `****` ([`mask`]).

use serde_json::json;

/// What is wrong. The names ([`Kind::name`]) are part of the JSON output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A protected file with no `sops` metadata at all: a plaintext file.
    NotEncrypted,
    /// A protected file that is not valid YAML/JSON (so it cannot be a SOPS file).
    Unparseable,
    /// The `sops` block is there but sops would refuse to load it.
    BadMetadata,
    /// The MAC is missing or not an `ENC[...]` value.
    BadMac,
    /// A leaf the file's own selector says must be encrypted holds plaintext.
    PlaintextValue,
    /// A non-empty comment in a position the selector encrypts is plaintext.
    PlaintextComment,
    /// A value that starts like `ENC[...]` but is not in sops' format.
    MalformedValue,
    /// A protected path whose format the guard cannot tell (an unknown `sops-type`).
    UnsupportedFormat,
    /// The merge driver's encrypted conflict envelope: a merge left unresolved.
    UnresolvedConflict,
    /// A `.sops.yaml` `path_regex` matches the path but `.gitattributes` gives it no `filter=sops`.
    MissingAttribute,
    /// A file that looks like decrypted SOPS output (by name, or a `sops` block over plaintext).
    DecryptedFile,
    /// `.sops.yaml` cannot be read, so which paths it protects is unknown.
    BadConfig,
    /// A path a parent protected (or that held a SOPS file) loses its protection.
    ProtectionRemoved,
    /// An unprotected file holds the plaintext of a SOPS file the same change deletes.
    DecryptedCopy,
    /// With a key: the file's MAC or a value does not authenticate.
    AuthenticationFailed,
    /// A warning, never a refusal: the file's stored keys (KMS ARN, role,
    /// encryption context, age recipients) differ from what its creation rule
    /// renders for its path now.
    KeyDrift,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NotEncrypted => "not-encrypted",
            Kind::Unparseable => "unparseable",
            Kind::BadMetadata => "bad-metadata",
            Kind::BadMac => "bad-mac",
            Kind::PlaintextValue => "plaintext-value",
            Kind::PlaintextComment => "plaintext-comment",
            Kind::MalformedValue => "malformed-value",
            Kind::UnsupportedFormat => "unsupported-format",
            Kind::UnresolvedConflict => "unresolved-conflict",
            Kind::MissingAttribute => "missing-attribute",
            Kind::DecryptedFile => "decrypted-file",
            Kind::BadConfig => "bad-config",
            Kind::ProtectionRemoved => "protection-removed",
            Kind::DecryptedCopy => "decrypted-copy",
            Kind::AuthenticationFailed => "authentication-failed",
            Kind::KeyDrift => "key-drift",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Repository-relative path.
    pub path: String,
    /// The commit that holds the blob (`--history` only).
    pub commit: Option<String>,
    /// sops' key path (`["db"]["password"]`), when the finding is about one entry.
    pub key_path: Option<String>,
    /// 1-based line in the blob, when known.
    pub line: Option<usize>,
    pub kind: Kind,
    /// What is wrong, without the secret.
    pub message: String,
}

impl Finding {
    /// A finding about a whole blob; the path is filled in by the caller.
    pub fn new(kind: Kind, message: impl Into<String>) -> Finding {
        Finding {
            path: String::new(),
            commit: None,
            key_path: None,
            line: None,
            kind,
            message: message.into(),
        }
    }

    pub fn at(mut self, line: usize) -> Finding {
        self.line = (line > 0).then_some(line);
        self
    }

    pub fn key(mut self, key_path: String) -> Finding {
        self.key_path = Some(key_path);
        self
    }

    /// `path:line: kind at KEY: message`, prefixed by the abbreviated commit in
    /// history scans (the `rev:path` form `git grep` uses).
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.commit {
            out.extend(c.chars().take(12));
            out.push(':');
        }
        out.push_str(&self.path);
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
        }
        out.push_str(": ");
        out.push_str(self.kind.name());
        if let Some(k) = &self.key_path {
            out.push_str(" at ");
            out.push_str(k);
        }
        out.push_str(": ");
        out.push_str(&self.message);
        out
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        json!({
            "path": self.path,
            "commit": self.commit,
            "key_path": self.key_path,
            "line": self.line,
            "kind": self.kind.name(),
            "severity": if self.kind == Kind::KeyDrift { "warning" } else { "error" },
            "message": self.message,
        })
    }
}

/// The findings as a pretty-printed JSON array.
pub(crate) fn to_json_array(findings: &[Finding]) -> String {
    let array = serde_json::Value::Array(findings.iter().map(Finding::to_json).collect());
    serde_json::to_string_pretty(&array).unwrap_or_else(|_| "[]".to_string())
}

pub use sops_file::form::mask;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_names_commit_path_line_and_key() {
        let mut f = Finding::new(Kind::PlaintextValue, "plaintext")
            .at(3)
            .key("[\"db\"]".into());
        f.path = "s/a.yaml".into();
        assert_eq!(
            f.to_text(),
            "s/a.yaml:3: plaintext-value at [\"db\"]: plaintext"
        );
        f.commit = Some("0123456789abcdef0123".into());
        assert!(f.to_text().starts_with("0123456789ab:s/a.yaml:3:"));
        let v = f.to_json();
        assert_eq!(v["kind"], "plaintext-value");
        assert_eq!(v["line"], 3);
    }
}
