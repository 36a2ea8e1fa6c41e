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
use crate::git::ls_tree::TreeEntry;
use crate::git::{is_object_name, AttrSource, Git};
use sops_file::file;
use sops_file::keycache::{fingerprint, prefetchable, KeyCache};
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
    // One metadata per distinct data key that is not cached and that the
    // prefetch would unwrap (blobs are read one at a time and dropped: memory
    // stays in the number of such keys, not of files; an age-only repository
    // keeps none, issue 18).
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
            stats.missing += 1;
            if prefetchable(&meta) {
                metas.push(meta);
            }
        }
    }
    drop(blobs);
    (_, stats.unwrapped) = keys.prefetch(&metas);
    stats
}

/// (blob id, path) of the files with `filter=sops` (attributes as the tree being
/// checked out has them) whose blob differs from the index's, i.e. the protected
/// files the checkout will write.
fn changed_protected_blobs(git: &Git, treeish: &str) -> Option<Vec<(String, String)>> {
    let index = index_blobs(git);
    let entries: Vec<TreeEntry> = git
        .tree_entries(treeish)
        .ok()?
        .into_iter()
        .filter(|e| e.kind == "blob" && index.get(&e.path) != Some(&e.oid))
        .collect();
    if entries.is_empty() {
        return Some(Vec::new());
    }
    let paths: Vec<&[u8]> = entries.iter().map(|e| e.path.as_slice()).collect();
    let filters = git
        .check_attrs(AttrSource::Tree(treeish), &["filter"], &paths)
        .or_else(|_| git.check_attrs(AttrSource::WorkTree, &["filter"], &paths))
        .ok()?;
    Some(
        entries
            .into_iter()
            .zip(filters)
            .filter(|(_, row)| row.first().is_some_and(|f| f == "sops"))
            .map(|(e, _)| (e.oid, String::from_utf8_lossy(&e.path).into_owned()))
            .collect(),
    )
}

/// path → blob id of the stage-0 entries in the on-disk index (empty when there
/// is none, as during a clone).
fn index_blobs(git: &Git) -> HashMap<Vec<u8>, String> {
    git.index_entries(&[])
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.stage == 0)
        .map(|e| (e.path, e.oid))
        .collect()
}
