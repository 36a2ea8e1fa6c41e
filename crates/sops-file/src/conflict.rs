//! The conflict envelope: what git-sops' merge driver writes to `%A` when the
//! sides conflict. git stores `%A` in the object store even on a conflict (a
//! loose, unreachable blob), so it must not be plaintext. It is a
//! valid sops JSON document holding one encrypted value, the merged plaintext with
//! conflict markers, under the key `git_sops_conflict`:
//!
//! ```json
//! {
//!     "git_sops_conflict": "ENC[AES256_GCM,data:...,type:str]",
//!     "sops": { ...ours' key groups..., "lastmodified": ..., "mac": ... }
//! }
//! ```
//!
//! It is encrypted with ours' data key and key groups, so whoever could read the
//! file can read the envelope, and `sops decrypt --input-type json` reads it too.
//! The smudge filter turns it into the plaintext with markers
//! ([`open_conflict`]); once the user resolves the markers, `git add` encrypts
//! the file again with `HEAD` (ours) as its template.

use zeroize::Zeroizing;

use crate::datakey::DataKey;
use crate::formats::json::JsonStore;
use crate::formats::{find_entry, Node};
use crate::keycache::KeyCache;
use crate::keygroups::Keyring;
use crate::metadata::Metadata;
use crate::{binary, decrypt, Error};

/// The key of the one value.
pub const KEY: &str = "git_sops_conflict";

/// Encrypt `text` (a merge result with conflict markers) with `key` for the key
/// groups of `meta` (ours'); a new `lastmodified` and MAC.
pub fn seal(text: &[u8], key: &DataKey, meta: &Metadata) -> Result<Vec<u8>, Error> {
    let mut meta = meta.clone();
    // The one value is always encrypted, whatever ours' selector says.
    meta.selector = None;
    binary::seal_named(KEY, text, key, &mut meta).map(String::into_bytes)
}

/// Whether `blob` is a conflict envelope. Cheap for anything else: the envelope
/// starts with `{` and the `"git_sops_conflict"` key, as [`seal`] writes it.
pub fn is_conflict(blob: &[u8]) -> bool {
    load(blob).is_some()
}

fn load(blob: &[u8]) -> Option<(crate::formats::Document, Metadata)> {
    let rest = blob.trim_ascii_start().strip_prefix(b"{")?;
    let rest = rest.trim_ascii_start().strip_prefix(b"\"")?;
    if !rest.starts_with(KEY.as_bytes()) || rest.get(KEY.len()) != Some(&b'"') {
        return None;
    }
    let text = std::str::from_utf8(blob).ok()?;
    let (doc, meta) = decrypt::load(&JsonStore, text).ok()?;
    let root = doc.docs.first()?;
    let Node::Leaf(_) = &find_entry(root, KEY)?.value else {
        return None;
    };
    Some((doc, meta))
}

/// The plaintext (with conflict markers) of a conflict envelope the merge driver
/// wrote; `None` when `blob` is not one. An error when no key opens it or it was
/// tampered with (the MAC is checked).
pub fn open_conflict(
    blob: &[u8],
    keys: &KeyCache,
    keyring: &Keyring,
) -> Option<Result<Zeroizing<Vec<u8>>, Error>> {
    let (doc, meta) = load(blob)?;
    Some(
        keys.recover(&meta, keyring)
            .map_err(Error::from)
            .and_then(|key| binary::open_named(KEY, &doc, &meta, &key, false)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keycache::PersistentKeys;

    fn meta() -> Metadata {
        Metadata {
            key_groups: vec![vec![crate::metadata::MasterKey::Age(
                crate::metadata::AgeKey {
                    recipient: "age1test".into(),
                    enc:
                        "-----BEGIN AGE ENCRYPTED FILE-----\nx\n-----END AGE ENCRYPTED FILE-----\n"
                            .into(),
                },
            )]],
            shamir_threshold: 0,
            lastmodified: String::new(),
            mac: String::new(),
            selector: Some(crate::selectors::Selector::default_suffix()),
            mac_only_encrypted: false,
            version: "3.11.0".into(),
        }
    }

    struct Fixed;

    impl PersistentKeys for Fixed {
        fn get(&self, _: &[u8; 32]) -> Option<DataKey> {
            Some(DataKey::from_bytes([3u8; 32]))
        }
        fn put(&self, _: &[u8; 32], _: &DataKey) {}
    }

    #[test]
    fn an_envelope_round_trips_and_hides_its_text() {
        let text = b"a: 1\n<<<<<<< ours\nb: hunter2\n=======\nb: swordfish\n>>>>>>> theirs\n";
        let key = DataKey::from_bytes([3u8; 32]);
        let blob = seal(text, &key, &meta()).unwrap();
        let s = String::from_utf8(blob.clone()).unwrap();
        assert!(!s.contains("hunter2") && !s.contains("<<<<<<<"), "{s}");
        assert!(s.starts_with("{\n\t\"git_sops_conflict\": \"ENC["), "{s}");
        assert!(!s.contains("unencrypted_suffix"), "{s}");
        assert!(is_conflict(&blob));
        let keys = KeyCache::new(Some(Box::new(Fixed)));
        let back = open_conflict(&blob, &keys, &Keyring::new())
            .unwrap()
            .unwrap();
        assert_eq!(back.as_slice(), text);
        // Tampering is detected.
        let other = seal(b"x\n", &key, &meta()).unwrap();
        let other = String::from_utf8(other).unwrap();
        let mac_line = |s: &str| {
            s.lines()
                .find(|l| l.contains("\"mac\""))
                .unwrap()
                .to_string()
        };
        let forged = s.replace(&mac_line(&s), &mac_line(&other));
        assert!(open_conflict(forged.as_bytes(), &keys, &Keyring::new())
            .unwrap()
            .is_err());
    }

    #[test]
    fn other_files_are_not_envelopes() {
        for blob in [
            &b""[..],
            b"{\"data\": \"ENC[...]\", \"sops\": {}}",
            b"git_sops_conflict: x\n",
            b"{\"git_sops_conflict\": \"x\"}",
            b"{\"git_sops_conflictx\": 1}",
            b"\xff\xfe",
        ] {
            assert!(!is_conflict(blob));
            assert!(open_conflict(blob, &KeyCache::default(), &Keyring::new()).is_none());
        }
    }
}
