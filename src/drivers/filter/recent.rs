//! The blob this filter process last made (clean) or was given (smudge) for each
//! path, for the templates of a later clean of the same path in the same git
//! command (see `Filter::template` for why those matter).
//!
//! One long-running filter process serves a whole `git add -A` or checkout, so
//! keeping every blob would make its memory grow with the number of files (issue
//! 18). Only the newest [`KEEP_ENTRIES`] blobs, at most [`KEEP_BYTES`] together,
//! keep their bytes; an older one keeps the object id git named it by (smudge),
//! and its bytes are read back from git when asked for, or, without one, is
//! handed back to the caller to be kept elsewhere (clean keeps it in the cache
//! folder) and is then only marked as pushed out. Every path still costs its name
//! and a few words, nothing in proportion to its content.

use std::collections::{HashMap, VecDeque};

/// How many blobs keep their bytes in memory.
pub(crate) const KEEP_ENTRIES: usize = 64;
/// How many bytes the blobs kept in memory may hold together.
pub(crate) const KEEP_BYTES: usize = 4 << 20;

struct Entry {
    /// Which insertion this is (stale queue entries name older ones).
    seq: u64,
    /// Never pushed out (see [`RecentBlobs::keeping_unnamed`]); not counted.
    pinned: bool,
    blob: Option<Vec<u8>>,
    object: Option<String>,
}

/// What is known of the blob of a path.
pub(crate) enum Recalled<'a> {
    Bytes(&'a [u8]),
    /// Pushed out of memory; git holds it as this object.
    Object(&'a str),
    /// Pushed out of memory and handed back to the caller by [`RecentBlobs::insert`].
    Elsewhere,
}

#[derive(Default)]
pub(crate) struct RecentBlobs {
    entries: HashMap<String, Entry>,
    /// Insertions whose blob may still be in memory, oldest first.
    order: VecDeque<(u64, String)>,
    seq: u64,
    /// Bytes of the blobs in memory that may be pushed out.
    bytes: usize,
    /// Keep the blobs git named no id for in memory, whatever their number.
    keep_unnamed: bool,
}

impl RecentBlobs {
    /// For a caller with nowhere else to keep a blob git named no id for
    /// (clean with the cache folder off, `sops.cache false`): those stay in
    /// memory, since forgetting one would let the second clean of a
    /// `git commit PATH` encrypt the file anew and the index differ from the
    /// commit. They are ciphertext; only the memory grows with them.
    pub(crate) fn keeping_unnamed() -> RecentBlobs {
        RecentBlobs {
            keep_unnamed: true,
            ..RecentBlobs::default()
        }
    }

    /// Remember `blob` as the blob of `path` (`object`: its id, when git named
    /// it). Returns the blobs pushed out of memory that git named no id for.
    pub(crate) fn insert(
        &mut self,
        path: &str,
        blob: Vec<u8>,
        object: Option<&str>,
    ) -> Vec<(String, Vec<u8>)> {
        self.seq += 1;
        let object = object.filter(|o| !o.is_empty()).map(str::to_string);
        let pinned = self.keep_unnamed && object.is_none();
        if !pinned {
            self.bytes += blob.len();
        }
        let entry = Entry {
            seq: self.seq,
            pinned,
            blob: Some(blob),
            object,
        };
        if let Some(old) = self.entries.insert(path.to_string(), entry) {
            if !old.pinned {
                self.bytes -= old.blob.map_or(0, |b| b.len());
            }
        }
        if pinned {
            return Vec::new();
        }
        self.order.push_back((self.seq, path.to_string()));
        let mut out = Vec::new();
        while self.order.len() > KEEP_ENTRIES || self.bytes > KEEP_BYTES {
            let Some((seq, path)) = self.order.pop_front() else {
                break;
            };
            let Some(entry) = self.entries.get_mut(&path).filter(|e| e.seq == seq) else {
                continue; // inserted again since: that insertion is queued too
            };
            let Some(blob) = entry.blob.take() else {
                continue;
            };
            self.bytes -= blob.len();
            if entry.object.is_none() {
                out.push((path, blob));
            }
        }
        out
    }

    pub(crate) fn get(&self, path: &str) -> Option<Recalled<'_>> {
        let entry = self.entries.get(path)?;
        Some(match (&entry.blob, &entry.object) {
            (Some(blob), _) => Recalled::Bytes(blob),
            (None, Some(object)) => Recalled::Object(object),
            (None, None) => Recalled::Elsewhere,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_hands_back_the_rest() {
        let mut r = RecentBlobs::default();
        let mut handed = Vec::new();
        for i in 0..KEEP_ENTRIES + 10 {
            let object = (i % 2 == 0).then(|| format!("oid{i}"));
            handed.extend(r.insert(&format!("p{i}"), vec![i as u8; 10], object.as_deref()));
        }
        // The 10 oldest left memory: the 5 with an object id are read back from git.
        assert_eq!(handed.len(), 5);
        assert!(matches!(r.get("p0"), Some(Recalled::Object("oid0"))));
        assert!(matches!(r.get("p1"), Some(Recalled::Elsewhere)));
        assert!(
            matches!(r.get(&format!("p{}", KEEP_ENTRIES + 9)), Some(Recalled::Bytes(b)) if b.len() == 10)
        );
        assert!(r.get("nope").is_none());
        assert_eq!(r.bytes, KEEP_ENTRIES * 10);
        // Inserting one path again and again keeps one blob.
        for _ in 0..1000 {
            r.insert("same", vec![1; 10], None);
        }
        assert!(r.order.len() <= KEEP_ENTRIES);
        assert!(matches!(r.get("same"), Some(Recalled::Bytes(_))));
        // A large blob pushes out older ones by size.
        r.insert("big", vec![0; KEEP_BYTES], None);
        assert!(r.bytes <= KEEP_BYTES);
    }

    #[test]
    fn keeping_unnamed_blobs_pushes_out_only_named_ones() {
        let mut r = RecentBlobs::keeping_unnamed();
        for i in 0..2 * KEEP_ENTRIES + 10 {
            let object = (i % 2 == 0).then(|| format!("oid{i}"));
            assert!(r
                .insert(&format!("p{i}"), vec![i as u8; 10], object.as_deref())
                .is_empty());
        }
        assert!(matches!(r.get("p1"), Some(Recalled::Bytes(_))));
        assert!(matches!(r.get("p0"), Some(Recalled::Object("oid0"))));
        // A path inserted again, named then unnamed, keeps the counts right.
        r.insert("p0", vec![0; 10], None);
        assert!(r.bytes <= KEEP_BYTES);
    }
}
