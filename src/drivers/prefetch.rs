//! Concurrent data-key unwrap for a checkout. git never runs filters in
//! parallel: it smudges one file after another, so a cold checkout of N files
//! whose data keys are wrapped by AWS KMS would pay N round trips in a row. When
//! the first smudge request of a checkout or clone names the tree being checked
//! out (`treeish=`), the filter calls [`tree`]: it lists the protected files of
//! that tree which the checkout will write, reads their metadata through one
//! `git cat-file --batch`, and unwraps every data key that is not cached yet
//! with concurrent KMS calls ([`KeyCache::prefetch`]), filling the key cache. The
//! smudges that follow find their keys there.
//!
//! Why prefetch and not git's `delay` capability: delay only exists for checkout
//! (not `archive`), makes git re-send every delayed path, and needs a
//! `list_available_blobs` state machine; prefetch needs none of that and leaves
//! `smudge` itself unchanged.
//!
//! Everything here is best effort and silent: a failure leaves the key to the
//! normal per-file path, which reports it. Only what the normal path would
//! certainly unwrap through KMS is prefetched — a single key group without an age
//! key (age keys are local and cheap, and tried first by the normal path),
//! through its first KMS key — so the prefetch never makes a call the checkout
//! would not have made. Files whose blob equals the one in the index are not
//! written by a checkout and are skipped.

use std::collections::{HashMap, HashSet};

use crate::git::cat_file::BlobReader;
use crate::git::Git;
use sops_file::file;
use sops_file::keycache::{fingerprint, KeyCache};
use sops_file::metadata::Metadata;

/// What one prefetch did (for tests, benchmarks and `GIT_SOPS_TRACE`-style logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Protected files in the tree that the checkout will write.
    pub files: usize,
    /// Distinct data keys among them that were not cached.
    pub missing: usize,
    /// Data keys unwrapped (and cached) by the prefetch.
    pub unwrapped: usize,
}

/// Is `s` an object name (full or abbreviated hex)? Anything else is not passed to git.
fn is_object_name(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Unwrap, concurrently, the KMS-wrapped data keys of the protected files that
/// checking out `treeish` will write, into `keys`.
pub fn tree(git: &Git, treeish: &str, keys: &KeyCache) -> Stats {
    let mut stats = Stats::default();
    if !is_object_name(treeish) {
        return stats;
    }
    let Some(candidates) = changed_protected_blobs(git, treeish) else {
        return stats;
    };
    stats.files = candidates.len();
    if candidates.is_empty() {
        return stats;
    }
    let Ok(mut blobs) = BlobReader::spawn(git) else {
        return stats;
    };
    // One metadata per distinct data key (blobs are read one at a time and
    // dropped: memory stays in the number of distinct keys, not of files).
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    let mut metas: Vec<Metadata> = Vec::new();
    for (oid, path) in &candidates {
        let Ok(Some(blob)) = blobs.read(oid) else {
            continue;
        };
        // Only the metadata is needed, which reads the same in every format.
        let Some(meta) = file::sniff(path, &blob).map(|loaded| loaded.meta) else {
            continue;
        };
        let fp = fingerprint(&meta);
        if seen.insert(fp) && !keys.contains(&fp) {
            metas.push(meta);
        }
    }
    drop(blobs);
    stats.missing = metas.len();
    stats.unwrapped = keys.prefetch(&metas);
    stats
}

/// (blob id, path) of the YAML/JSON files with `filter=sops` (attributes as the
/// tree being checked out has them) whose blob differs from the index's, i.e.
/// the protected files the checkout will write.
fn changed_protected_blobs(git: &Git, treeish: &str) -> Option<Vec<(String, String)>> {
    let listing = git
        .run(&["ls-tree", "-r", "-z", "--full-tree", treeish])
        .ok()?;
    let index = index_blobs(git);
    let mut entries: Vec<(String, String)> = Vec::new();
    for rec in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        // "<mode> SP <type> SP <oid> TAB <path>"
        let rec = String::from_utf8_lossy(rec);
        let Some((head, path)) = rec.split_once('\t') else {
            continue;
        };
        let mut fields = head.split(' ');
        let (Some(_mode), Some("blob"), Some(oid)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if index.get(path).map(String::as_str) == Some(oid) {
            continue;
        }
        entries.push((oid.to_string(), path.to_string()));
    }
    if entries.is_empty() {
        return Some(entries);
    }
    let mut input = Vec::new();
    for (_, p) in &entries {
        input.extend_from_slice(p.as_bytes());
        input.push(0);
    }
    let source = format!("--source={treeish}");
    let out = git
        .run_with_input(
            &["check-attr", &source, "--stdin", "-z", "filter"],
            Some(&input),
        )
        .or_else(|_| git.run_with_input(&["check-attr", "--stdin", "-z", "filter"], Some(&input)))
        .ok()?;
    // -z output: path NUL attr NUL value NUL, per path.
    let fields: Vec<&[u8]> = out.split(|b| *b == 0).collect();
    let protected: HashSet<&[u8]> = fields
        .chunks(3)
        .filter(|c| c.len() == 3 && c[2] == b"sops")
        .map(|c| c[0])
        .collect();
    entries.retain(|(_, p)| protected.contains(p.as_bytes()));
    Some(entries)
}

/// path → blob id of the stage-0 entries in the on-disk index (empty when there
/// is none, as during a clone).
fn index_blobs(git: &Git) -> HashMap<String, String> {
    let Ok(out) = git.run(&["ls-files", "-s", "-z"]) else {
        return HashMap::new();
    };
    out.split(|b| *b == 0)
        .filter_map(|rec| {
            // "<mode> SP <oid> SP <stage> TAB <path>"
            let rec = String::from_utf8_lossy(rec);
            let (head, path) = rec.split_once('\t')?;
            let mut fields = head.split(' ');
            let oid = fields.nth(1)?;
            (fields.next()? == "0").then(|| (path.to_string(), oid.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_object_names_reach_git() {
        assert!(is_object_name("0123abcd"));
        assert!(is_object_name(&"a".repeat(40)));
        assert!(!is_object_name("--output=x"));
        assert!(!is_object_name("HEAD"));
        assert!(!is_object_name("abc"));
    }
}
