//! Binary files (docs/sops-format.md §5.5): any bytes, wrapped as sops wraps them.
//!
//! The whole plaintext is one `type:str` value under the key `data` (AAD `data:`),
//! so it may hold any bytes, including non-UTF-8 ones; the MAC is the SHA-512 of
//! those bytes. The encrypted file is a JSON document laid out as sops writes it
//! (one tab per level): `{"data": "ENC[...]", "sops": {...}}`. The metadata has no
//! selector (sops writes no `unencrypted_suffix` for binary files). An empty file
//! gives `"data": ""`, which is not encrypted. The plaintext never goes through a
//! text store, so its bytes come back exactly.
//!
//! [`seal_named`] and [`open_named`] do the same under another key name (the
//! merge driver's conflict envelope uses `git_sops_conflict`): the AAD is then
//! `<name>:`, exactly what sops uses for a top-level string of that name, so the
//! result is still an ordinary sops JSON document.

use zeroize::Zeroizing;

use super::cipher::{self, EncValue, TypeTag};
use super::datakey::DataKey;
use super::encrypt::{new_metadata, EncryptSpec};
use super::keygroups::{self, Keyring};
use super::mac::{self, MacHasher};
use super::metadata::{now_rfc3339, Metadata, SOPS_VERSION};
use super::{decrypt, Error};
use crate::formats::json::{json_string, JsonStore};
use crate::formats::{apply_edits, find_entry, Document, FormatError, Node, Scalar, Store};

/// The key of the one value in sops' binary envelope.
pub(crate) const DATA: &str = "data";

/// Encrypt `data` for `spec` into sops' JSON envelope.
pub fn encrypt(data: &[u8], spec: &EncryptSpec) -> Result<String, Error> {
    let (key, mut meta) = new_metadata(spec)?;
    meta.selector = None;
    seal(data, &key, &mut meta)
}

/// Encrypt `data` with `key`, filling in `lastmodified` and the MAC of `meta`.
pub fn seal(data: &[u8], key: &DataKey, meta: &mut Metadata) -> Result<String, Error> {
    seal_named(DATA, data, key, meta)
}

/// [`seal`] with the value stored under `name` instead of `data`.
pub(crate) fn seal_named(
    name: &str,
    data: &[u8],
    key: &DataKey,
    meta: &mut Metadata,
) -> Result<String, Error> {
    let aad = format!("{name}:");
    let value = if data.is_empty() {
        String::new()
    } else {
        cipher::encrypt(key, data, &aad, TypeTag::Str, &cipher::random_iv())
    };
    let mut hasher = MacHasher::new(meta.mac_only_encrypted);
    hasher.leaf(data, true);
    meta.lastmodified = now_rfc3339();
    // The block is written in 3.11's layout, whatever version wrote it before.
    meta.version = SOPS_VERSION.to_string();
    meta.mac = mac::seal(key, &hasher.finish(), &meta.lastmodified);
    let src = format!("{{\n\t{}: {}\n}}\n", json_string(name), json_string(&value));
    let doc = JsonStore.parse(&src)?;
    let edits = JsonStore.insert_metadata(&src, &doc, &meta.to_value());
    let out = apply_edits(&src, edits)?;
    Ok(out.to_string())
}

fn damaged(message: impl Into<String>) -> Error {
    Error::Format(FormatError::Unsupported {
        line: 0,
        column: 0,
        message: format!(
            "not a sops binary file: {} (expected {{\"data\": \"ENC[...]\", \"sops\": {{...}}}})",
            message.into()
        ),
    })
}

/// Decrypt a binary envelope with the keys this process can use.
pub fn decrypt(
    envelope: &[u8],
    keyring: &Keyring,
    ignore_mac: bool,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let text = std::str::from_utf8(envelope).map_err(|e| {
        damaged(format!(
            "the file is not UTF-8 JSON (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let (doc, meta) = decrypt::load(&JsonStore, text).map_err(|e| match e {
        Error::Format(f) => damaged(format!("its JSON is damaged: {f}")),
        other => other,
    })?;
    let key = keygroups::recover(&meta, keyring)?;
    open(&doc, &meta, &key, ignore_mac)
}

/// Open a loaded envelope with its data key.
pub fn open(
    doc: &Document,
    meta: &Metadata,
    key: &DataKey,
    ignore_mac: bool,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    open_named(DATA, doc, meta, key, ignore_mac)
}

/// [`open`] for a value stored under `name` instead of `data`.
pub(crate) fn open_named(
    name: &str,
    doc: &Document,
    meta: &Metadata,
    key: &DataKey,
    ignore_mac: bool,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let root = doc.docs.first().ok_or_else(|| damaged("no JSON object"))?;
    let entry =
        find_entry(root, name).ok_or_else(|| damaged(format!("it has no `{name}` entry")))?;
    let Node::Leaf(leaf) = &entry.value else {
        return Err(damaged(format!("`{name}` is not a string")));
    };
    let Scalar::Str(value) = &leaf.value else {
        return Err(damaged(format!("`{name}` is not a string")));
    };
    let bytes = if value.is_empty() {
        Zeroizing::new(Vec::new())
    } else {
        let value_err = |source| Error::Value {
            path: format!("[{name:?}]"),
            line: leaf.line,
            source,
        };
        let enc = EncValue::parse(value).map_err(value_err)?;
        cipher::decrypt(key, &enc, &format!("{name}:")).map_err(value_err)?
    };
    if !ignore_mac {
        let mut hasher = MacHasher::new(meta.mac_only_encrypted);
        hasher.leaf(&bytes, true);
        decrypt::verify_mac(key, meta, hasher.finish())?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes([7u8; 32])
    }

    fn meta() -> Metadata {
        Metadata {
            key_groups: vec![vec![]],
            shamir_threshold: 0,
            lastmodified: String::new(),
            mac: String::new(),
            selector: None,
            mac_only_encrypted: false,
            version: "3.11.0".into(),
        }
    }

    fn round_trip(data: &[u8]) -> String {
        let mut m = meta();
        let out = seal(data, &key(), &mut m).unwrap();
        let doc = JsonStore.parse(&out).unwrap();
        let back = open(&doc, &m, &key(), false).unwrap();
        assert_eq!(back.as_slice(), data);
        out
    }

    #[test]
    fn any_bytes_round_trip() {
        round_trip(b"hello\n");
        round_trip(&[0xff, 0x00, 0xfe, b'\n', 0x80]);
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
        round_trip(&big);
    }

    #[test]
    fn empty_file_is_an_empty_string() {
        let out = round_trip(b"");
        assert!(
            out.starts_with("{\n\t\"data\": \"\",\n\t\"sops\": {\n"),
            "{out}"
        );
    }

    #[test]
    fn envelope_is_laid_out_like_sops() {
        let out = round_trip(b"x");
        assert!(
            out.starts_with("{\n\t\"data\": \"ENC[AES256_GCM,data:"),
            "{out}"
        );
        assert!(out.contains(",type:str]\",\n\t\"sops\": {\n"), "{out}");
        assert!(out.ends_with("\t}\n}\n"), "{out}");
        assert!(!out.contains("unencrypted_suffix"));
    }

    #[test]
    fn tampering_is_detected() {
        let mut m = meta();
        let out = seal(b"abc", &key(), &mut m).unwrap();
        let doc = JsonStore.parse(&out).unwrap();
        let mut other = meta();
        let out2 = seal(b"abd", &key(), &mut other).unwrap();
        let doc2 = JsonStore.parse(&out2).unwrap();
        // The value of one file with the MAC of the other.
        assert!(matches!(
            open(&doc2, &m, &key(), false),
            Err(Error::MacMismatch { .. })
        ));
        assert!(open(&doc, &m, &key(), false).is_ok());
    }

    #[test]
    fn another_key_name_round_trips_and_is_bound_to_its_name() {
        let mut m = meta();
        let out = seal_named("git_sops_conflict", b"x\ny\n", &key(), &mut m).unwrap();
        assert!(
            out.starts_with("{\n\t\"git_sops_conflict\": \"ENC[AES256_GCM,data:"),
            "{out}"
        );
        let doc = JsonStore.parse(&out).unwrap();
        let back = open_named("git_sops_conflict", &doc, &m, &key(), false).unwrap();
        assert_eq!(back.as_slice(), b"x\ny\n");
        assert!(open(&doc, &m, &key(), false).is_err());
        // The value cannot be moved under another name (the AAD differs).
        let moved = out.replace("\"git_sops_conflict\"", "\"data\"");
        let doc = JsonStore.parse(&moved).unwrap();
        assert!(matches!(
            open(&doc, &m, &key(), false),
            Err(Error::Value { .. })
        ));
    }

    #[test]
    fn damaged_envelopes_are_clear_errors() {
        let keyring = Keyring::new();
        for bad in [
            &b"\xff\xfe"[..],
            b"{\"data\": ",
            b"[]",
            b"{\"data\": \"x\"}",
        ] {
            let err = decrypt(bad, &keyring, false).unwrap_err().to_string();
            assert!(!err.is_empty());
        }
    }
}
