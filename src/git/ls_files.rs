//! The index's entries (`git ls-files -s -z`), parsed here and nowhere else.
//! Paths stay bytes: git allows any bytes but NUL in a path.

use super::command::{Git, GitError};
use super::{GITLINK, SYMLINK};

/// One index entry: `<mode> SP <oid> SP <stage> TAB <path>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub mode: String,
    pub oid: String,
    /// 0, or 1–3 for the sides of a merge conflict.
    pub stage: u8,
    pub path: Vec<u8>,
}

impl IndexEntry {
    /// A blob (a file), not a submodule (gitlink) or a symbolic link.
    pub fn is_file(&self) -> bool {
        self.mode != GITLINK && self.mode != SYMLINK
    }
}

impl Git {
    /// Every entry of the index (all stages), paths from the top of the
    /// repository; with `paths`, only the entries for those paths.
    pub(crate) fn index_entries(&self, paths: &[&str]) -> Result<Vec<IndexEntry>, GitError> {
        let mut args = vec!["ls-files", "-s", "-z", "--full-name"];
        if !paths.is_empty() {
            args.push("--");
            args.extend(paths);
        }
        Ok(parse(&self.run(&args)?))
    }
}

/// Parse `ls-files -s -z` output; malformed records are skipped.
pub fn parse(out: &[u8]) -> Vec<IndexEntry> {
    super::listing_records(out)
        .filter_map(|(fields, path)| match fields[..] {
            [mode, oid, stage] => Some(IndexEntry {
                mode: mode.to_string(),
                oid: oid.to_string(),
                stage: stage.parse().ok()?,
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
        let out =
            b"100644 aaaa 0\tsecrets/a.yaml\x00160000 bbbb 0\tsub\x00100644 cccc 2\tx\xff\ty\0junk\0";
        let entries = parse(out);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].path, b"secrets/a.yaml");
        assert!(entries[0].is_file() && !entries[1].is_file());
        assert_eq!(
            (entries[2].stage, entries[2].path.as_slice()),
            (2, &b"x\xff\ty"[..])
        );
    }
}
