//! age master keys, as sops uses them: one ASCII-armored age file per recipient,
//! wrapping the raw data key. Identities are discovered the way sops 3.11 does:
//! `SOPS_AGE_KEY` (inline), `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD` (its output),
//! and the default key file `<config dir>/sops/age/keys.txt`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age::x25519;
use zeroize::Zeroizing;

use super::KeyError;

/// The longest armored age file read as a wrapped data key. One X25519 stanza
/// (what sops writes) is about 300 bytes armored; this leaves room for a
/// dozen stanzas of any kind (plugins, grease).
pub(crate) const MAX_ENC_LEN: usize = 4 * 1024;

/// The default key file: `$XDG_CONFIG_HOME/sops/age/keys.txt` (also on macOS when
/// set, as sops does), else the platform config dir (`~/.config` on Linux).
pub fn default_key_file() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("sops/age/keys.txt"));
    }
    directories::BaseDirs::new().map(|d| d.config_dir().join("sops/age/keys.txt"))
}

/// Wrap `secret` for one recipient: the armored age file sops stores in `enc`.
pub fn wrap(recipient: &str, secret: &[u8]) -> Result<String, KeyError> {
    let r = x25519::Recipient::from_str(recipient.trim())
        .map_err(|_| KeyError::BadAgeRecipient(recipient.to_string()))?;
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .map_err(|e| KeyError::AgeEncrypt(e.to_string()))?;
    let mut out = Vec::new();
    let io_err = |e: std::io::Error| KeyError::AgeEncrypt(e.to_string());
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(io_err)?;
    let mut writer = encryptor.wrap_output(armor).map_err(io_err)?;
    writer.write_all(secret).map_err(io_err)?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(io_err)?;
    String::from_utf8(out).map_err(|e| KeyError::AgeEncrypt(e.to_string()))
}

/// The age identities available to this process, with where each came from.
pub struct Identities {
    keys: Vec<x25519::Identity>,
    /// Human-readable names of the sources that were read (for error messages).
    pub sources: Vec<String>,
}

impl Identities {
    /// Discover identities like sops. A source that is configured but broken (an
    /// unreadable `SOPS_AGE_KEY_FILE`, a failing `SOPS_AGE_KEY_CMD`) is an error; a
    /// missing default key file is not.
    pub fn discover() -> Result<Identities, KeyError> {
        let mut ids = Identities {
            keys: Vec::new(),
            sources: Vec::new(),
        };
        if let Ok(inline) = std::env::var("SOPS_AGE_KEY") {
            if !inline.trim().is_empty() {
                ids.add_text("SOPS_AGE_KEY", &Zeroizing::new(inline))?;
            }
        }
        if let Some(path) = std::env::var_os("SOPS_AGE_KEY_FILE").filter(|p| !p.is_empty()) {
            ids.add_file(Path::new(&path), true)?;
        }
        if let Ok(cmd) = std::env::var("SOPS_AGE_KEY_CMD") {
            if !cmd.trim().is_empty() {
                let output = run_key_cmd(&cmd)?;
                ids.add_text(&format!("SOPS_AGE_KEY_CMD ({cmd})"), &output)?;
            }
        }
        if let Some(path) = default_key_file() {
            ids.add_file(&path, false)?;
        }
        Ok(ids)
    }

    /// Identities from explicit text (tests, and callers that hold a key).
    pub fn from_text(source_name: &str, text: &str) -> Result<Identities, KeyError> {
        let mut ids = Identities {
            keys: Vec::new(),
            sources: Vec::new(),
        };
        ids.add_text(source_name, text)?;
        Ok(ids)
    }

    fn add_file(&mut self, path: &Path, required: bool) -> Result<(), KeyError> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => self.add_text(&name, &Zeroizing::new(text)),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(KeyError::Source {
                source_name: name,
                message: e.to_string(),
            }),
        }
    }

    fn add_text(&mut self, source_name: &str, text: &str) -> Result<(), KeyError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = x25519::Identity::from_str(line).map_err(|_| KeyError::BadIdentity {
                source_name: source_name.to_string(),
                line: i + 1,
            })?;
            self.keys.push(id);
        }
        self.sources.push(source_name.to_string());
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The recipients these identities can open (public; safe to print).
    pub fn recipients(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }

    /// Unwrap an armored age file from `enc` (at most [`MAX_ENC_LEN`] bytes).
    pub fn unwrap(&self, enc: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if self.keys.is_empty() {
            return Err(KeyError::NoIdentities {
                default_file: default_key_file()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.config/sops/age/keys.txt".into()),
            });
        }
        if enc.len() > MAX_ENC_LEN {
            // age reads a header again from its start each time it needs more
            // bytes, so a hostile header costs quadratic time; sops writes one
            // stanza per file (a few hundred bytes).
            return Err(KeyError::Damaged(format!(
                "it is {} bytes long; a data key wrapped by age is a few hundred bytes, and git-sops reads at most {MAX_ENC_LEN}",
                enc.len()
            )));
        }
        let reader = age::armor::ArmoredReader::new(enc.trim_start().as_bytes());
        let decryptor =
            age::Decryptor::new(reader).map_err(|e| KeyError::Damaged(e.to_string()))?;
        let identities = self.keys.iter().map(|k| k as &dyn age::Identity);
        match decryptor.decrypt(identities) {
            Ok(mut r) => {
                let mut out = Zeroizing::new(Vec::new());
                r.read_to_end(&mut out)
                    .map_err(|e| KeyError::Damaged(e.to_string()))?;
                Ok(out)
            }
            Err(age::DecryptError::NoMatchingKeys) => Err(KeyError::NoMatchingIdentity {
                tried: self.sources.join(", "),
            }),
            Err(e) => Err(KeyError::Damaged(e.to_string())),
        }
    }
}

fn run_key_cmd(cmd: &str) -> Result<Zeroizing<String>, KeyError> {
    let err = |message: String| KeyError::Source {
        source_name: format!("SOPS_AGE_KEY_CMD ({cmd})"),
        message,
    };
    // sops splits the command shell-style and runs it without a shell; running it
    // through `sh -c` accepts the same commands and quoting.
    let output = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| err(e.to_string()))?;
    if !output.status.success() {
        return Err(err(format!("the command failed ({})", output.status)));
    }
    let text =
        String::from_utf8(output.stdout).map_err(|_| err("the output is not UTF-8".into()))?;
    Ok(Zeroizing::new(text))
}

/// Create a new identity in a new key file at `path` (folders created, mode 0600,
/// an existing file is never overwritten); returns the recipient.
pub fn create_key_file(path: &Path, created: &str) -> std::io::Result<String> {
    let (text, recipient) = generate(created);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(recipient)
}

/// A new identity: returns (the key file text to store, the recipient). `created`
/// is the timestamp written in the header comment, as `age-keygen` does.
pub fn generate(created: &str) -> (Zeroizing<String>, String) {
    let id = x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let text = Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    ));
    (text, recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7";
    const RECIPIENT: &str = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";

    #[test]
    fn wraps_and_unwraps() {
        let enc = wrap(RECIPIENT, &[9u8; 32]).unwrap();
        assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(enc.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
        let ids = Identities::from_text("test", ID).unwrap();
        assert_eq!(ids.recipients(), vec![RECIPIENT.to_string()]);
        assert_eq!(ids.unwrap(&enc).unwrap().as_slice(), &[9u8; 32]);
        let (other, _) = generate("2024-01-01T00:00:00Z");
        let other = Identities::from_text("other", &other).unwrap();
        assert!(matches!(
            other.unwrap(&enc),
            Err(KeyError::NoMatchingIdentity { .. })
        ));
    }

    #[test]
    fn an_oversized_header_is_refused_before_age_reads_it() {
        let ids = Identities::from_text("test", ID).unwrap();
        let enc = wrap(RECIPIENT, &[9u8; 32]).unwrap();
        let padded = format!("{enc}{}", " ".repeat(MAX_ENC_LEN));
        let started = std::time::Instant::now();
        assert!(matches!(ids.unwrap(&padded), Err(KeyError::Damaged(m)) if m.contains("at most")));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn rejects_bad_identities_without_echoing_them() {
        let err = Identities::from_text("f", "# c\nAGE-SECRET-KEY-NOPE\n")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "the age identity in f is invalid on line 2: expected AGE-SECRET-KEY-1…"
        );
        assert!(matches!(
            wrap("age1nope", b"x"),
            Err(KeyError::BadAgeRecipient(_))
        ));
    }
}
