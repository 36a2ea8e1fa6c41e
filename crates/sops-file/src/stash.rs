//! The IV stash: when a document is re-encrypted with the same data key, every
//! value whose (path, type, plaintext) is unchanged reuses the IV it had, so its
//! `ENC[...]` text comes out byte-identical (sops does the same in `sops edit`).
//! Only changed values get fresh IVs, which keeps a one-value edit a one-line
//! diff in git. Entries are keyed by a hash, so the stash holds no plaintext.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::cipher::{random_iv, TypeTag};
use super::encrypt::Ivs;

#[derive(Default)]
pub struct IvStash {
    ivs: HashMap<[u8; 32], [u8; 32]>,
}

fn slot(aad: &str, tag: TypeTag, plaintext: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(aad.as_bytes());
    h.update([0]);
    h.update(tag.as_str().as_bytes());
    h.update([0]);
    h.update(plaintext);
    h.finalize().into()
}

impl IvStash {
    /// Remember the IV a value was found encrypted with. Only 32-byte IVs are
    /// kept: values written with another length get a fresh one on re-encryption.
    pub fn record(&mut self, aad: &str, tag: TypeTag, plaintext: &[u8], iv: &[u8]) {
        if let Ok(iv) = <[u8; 32]>::try_from(iv) {
            self.ivs.insert(slot(aad, tag, plaintext), iv);
        }
    }

    /// Add the IVs of `other` (the stash of another version of the file under the
    /// same data key, e.g. the other side of a merge) that this stash does not
    /// already have an IV for; on a collision this stash's IV wins. Both stashes
    /// must come from the same data key: an IV is only ever handed out again for
    /// the (path, type, plaintext) it was found with, so the merged file repeats
    /// ciphertext one of its inputs already holds and nothing else.
    pub fn absorb(&mut self, other: IvStash) {
        for (slot, iv) in other.ivs {
            self.ivs.entry(slot).or_insert(iv);
        }
    }

    pub fn len(&self) -> usize {
        self.ivs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ivs.is_empty()
    }
}

impl Ivs for IvStash {
    fn iv(&mut self, aad: &str, tag: TypeTag, plaintext: &[u8]) -> [u8; 32] {
        // Each remembered IV is handed out once: two identical values at the same
        // path (list items) must not end up sharing one IV with a third new one.
        self.ivs
            .remove(&slot(aad, tag, plaintext))
            .unwrap_or_else(random_iv)
    }

    fn has(&self, aad: &str, tag: TypeTag, plaintext: &[u8]) -> bool {
        self.ivs.contains_key(&slot(aad, tag, plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_adds_missing_ivs_and_keeps_its_own() {
        let mut ours = IvStash::default();
        ours.record("a:", TypeTag::Str, b"1", &[1u8; 32]);
        ours.record("b:", TypeTag::Str, b"2", &[2u8; 32]);
        let mut theirs = IvStash::default();
        theirs.record("b:", TypeTag::Str, b"2", &[9u8; 32]);
        theirs.record("c:", TypeTag::Str, b"3", &[3u8; 32]);
        ours.absorb(theirs);
        assert_eq!(ours.len(), 3);
        assert_eq!(ours.iv("b:", TypeTag::Str, b"2"), [2u8; 32]);
        assert_eq!(ours.iv("c:", TypeTag::Str, b"3"), [3u8; 32]);
        assert_eq!(ours.iv("a:", TypeTag::Str, b"1"), [1u8; 32]);
        // Handed out once: a second identical value gets a fresh IV.
        assert_ne!(ours.iv("a:", TypeTag::Str, b"1"), [1u8; 32]);
    }
}
