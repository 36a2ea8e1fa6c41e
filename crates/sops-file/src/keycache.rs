//! A cache of unwrapped data keys, so that one git command unwraps each distinct
//! data key at most once (a KMS round trip or an age decryption per file would
//! dominate `git status` and checkout), and — with a persistent store — later
//! commands make none. Entries are keyed by a fingerprint of the file's wrapped
//! keys: the same wrapped keys always unwrap to the same data key.

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::datakey::DataKey;
use super::keygroups::{self, KeyGroupError, Keyring};
use super::metadata::{KmsKey, MasterKey, Metadata};
use crate::keys::kms::{self, KmsKeyRef};

/// Where cached data keys persist between processes (git-sops keeps them under
/// the git common dir; see `cache::data_keys` in git-sops).
pub trait PersistentKeys {
    fn get(&self, fingerprint: &[u8; 32]) -> Option<DataKey>;
    fn put(&self, fingerprint: &[u8; 32], key: &DataKey);
}

/// The fingerprint of a file's key material: every wrapped key, in order.
pub fn fingerprint(meta: &Metadata) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(meta.shamir_threshold.to_le_bytes());
    for (gi, group) in meta.key_groups.iter().enumerate() {
        h.update(gi.to_le_bytes());
        for key in group {
            let enc = match key {
                MasterKey::Age(k) => k.enc.as_str(),
                MasterKey::Kms(k) => k.enc.as_str(),
                MasterKey::Other { .. } => "",
            };
            h.update(key.kind().as_bytes());
            h.update([0]);
            h.update(key.identifier().as_bytes());
            h.update([0]);
            h.update(enc.as_bytes());
            h.update([0]);
        }
    }
    h.finalize().into()
}

#[derive(Default)]
pub struct KeyCache {
    memory: RefCell<HashMap<[u8; 32], DataKey>>,
    persistent: Option<Box<dyn PersistentKeys>>,
    /// How many data keys were unwrapped through a master key (for tests and benchmarks).
    unwraps: RefCell<usize>,
}

impl KeyCache {
    pub fn new(persistent: Option<Box<dyn PersistentKeys>>) -> KeyCache {
        KeyCache {
            persistent,
            ..KeyCache::default()
        }
    }

    /// The data key of `meta`: from the cache, else unwrapped and remembered.
    pub fn recover(&self, meta: &Metadata, keyring: &Keyring) -> Result<DataKey, KeyGroupError> {
        let fp = fingerprint(meta);
        if let Some(key) = self.memory.borrow().get(&fp) {
            return Ok(key.clone());
        }
        if let Some(key) = self.persistent.as_ref().and_then(|p| p.get(&fp)) {
            self.memory.borrow_mut().insert(fp, key.clone());
            return Ok(key);
        }
        let key = keygroups::recover(meta, keyring)?;
        *self.unwraps.borrow_mut() += 1;
        self.remember(meta, &key);
        Ok(key)
    }

    /// Remember the data key of a file this process just wrote.
    pub fn remember(&self, meta: &Metadata, key: &DataKey) {
        let fp = fingerprint(meta);
        if let Some(p) = &self.persistent {
            p.put(&fp, key);
        }
        self.memory.borrow_mut().insert(fp, key.clone());
    }

    /// Whether the data key with this fingerprint is cached (in memory or on disk).
    pub fn contains(&self, fingerprint: &[u8; 32]) -> bool {
        self.memory.borrow().contains_key(fingerprint)
            || self
                .persistent
                .as_ref()
                .is_some_and(|p| p.get(fingerprint).is_some())
    }

    pub fn unwraps(&self) -> usize {
        *self.unwraps.borrow()
    }

    /// Unwrap at once, with concurrent KMS calls, the data keys of `metas` that
    /// are not cached, and remember them. Only
    /// what [`KeyCache::recover`] would certainly unwrap through KMS is fetched
    /// (a single key group without an age key, through its first KMS key), so
    /// this never makes a call that recovering the files one by one would not
    /// have made. Best effort: a key that fails is left to `recover`, which
    /// reports why. Returns (distinct data keys not cached, keys unwrapped).
    pub fn prefetch(&self, metas: &[Metadata]) -> (usize, usize) {
        let mut seen = std::collections::HashSet::new();
        let missing: Vec<&Metadata> = metas
            .iter()
            .filter(|m| {
                let fp = fingerprint(m);
                seen.insert(fp) && !self.contains(&fp)
            })
            .collect();
        let wanted: Vec<(&Metadata, &KmsKey)> = missing
            .iter()
            .filter_map(|m| kms_key_to_prefetch(m).map(|k| (*m, k)))
            .collect();
        let jobs: Vec<(KmsKeyRef<'_>, &str)> = wanted
            .iter()
            .map(|(_, k)| {
                let key = KmsKeyRef {
                    arn: &k.arn,
                    role: &k.role,
                    context: &k.context,
                    aws_profile: &k.aws_profile,
                };
                (key, k.enc.as_str())
            })
            .collect();
        let mut unwrapped = 0;
        for ((meta, _), result) in wanted
            .iter()
            .zip(kms::decrypt_many(&jobs, kms::DEFAULT_IN_FLIGHT))
        {
            if let Some(key) = result.ok().and_then(|s| DataKey::from_slice(&s)) {
                self.remember(meta, &key);
                unwrapped += 1;
            }
        }
        (missing.len(), unwrapped)
    }
}

/// Whether [`KeyCache::prefetch`] would unwrap anything for `meta` (when its
/// data key is not cached): a caller gathering metadata for it need not keep
/// the others.
pub fn prefetchable(meta: &Metadata) -> bool {
    kms_key_to_prefetch(meta).is_some()
}

/// The KMS key [`KeyCache::recover`] would unwrap this file's data key with,
/// when that is certain: one key group, no age key in it (age is tried first),
/// and then the group's first KMS key in file order.
fn kms_key_to_prefetch(meta: &Metadata) -> Option<&KmsKey> {
    let [group] = meta.key_groups.as_slice() else {
        return None;
    };
    if group.iter().any(|k| matches!(k, MasterKey::Age(_))) {
        return None;
    }
    group.iter().find_map(|k| match k {
        MasterKey::Kms(k) => Some(k),
        _ => None,
    })
}
