//! A tree's entries (`git ls-tree -r -z --full-tree`), parsed here and nowhere
//! else. Paths stay bytes.

use super::command::{Git, GitError};
use super::SYMLINK;

/// One entry: `<mode> SP <type> SP <oid> TAB <path>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    pub mode: String,
    /// `blob`, `tree` or `commit` (a submodule).
    pub kind: String,
    pub oid: String,
    pub path: Vec<u8>,
}

impl TreeEntry {
    /// A blob that is a file (not a symbolic link).
    pub fn is_file(&self) -> bool {
        self.kind == "blob" && self.mode != SYMLINK
    }
}

impl Git {
    /// Every entry of `treeish`'s tree, recursively, paths from its top.
    pub(crate) fn tree_entries(&self, treeish: &str) -> Result<Vec<TreeEntry>, GitError> {
        Ok(parse(&self.run(&[
            "ls-tree",
            "-r",
            "-z",
            "--full-tree",
            treeish,
        ])?))
    }
}

/// Parse `ls-tree -z` output; malformed records are skipped.
pub fn parse(out: &[u8]) -> Vec<TreeEntry> {
    super::listing_records(out)
        .filter_map(|(fields, path)| match fields[..] {
            [mode, kind, oid] => Some(TreeEntry {
                mode: mode.to_string(),
                kind: kind.to_string(),
                oid: oid.to_string(),
                path: path.to_vec(),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_parsed_with_byte_paths() {
        let out = b"100644 blob aaaa\ta.yaml\x00120000 blob bbbb\tlink\x00160000 commit cccc\tsub\x00100644 blob dddd\tn\xffm\0";
        let entries = parse(out);
        assert_eq!(entries.len(), 4);
        assert!(entries[0].is_file() && !entries[1].is_file() && !entries[2].is_file());
        assert_eq!(entries[3].path, b"n\xffm");
    }
}
