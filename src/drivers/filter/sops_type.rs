//! Which SOPS format a path has inside git. As in sops, the extension decides
//! (`.yaml`/`.yml`, `.json`, `.env`, `.ini`, anything else binary); the
//! `sops-type` gitattribute overrides it per path, e.g.
//! `.env.* filter=sops diff=sops merge=sops sops-type=dotenv -text`, because
//! git's filter protocol tells the driver only the path and names such as
//! `.env.production` are common. (sops itself would need `--input-type` for
//! such a file; the README says so.)

use crate::drivers::DriverError;
use crate::git::check_attr::AttrReader;
use crate::git::Git;
use crate::worktree_mode::{self, ModeSource, WorktreeMode};
use sops_file::formats::Format;

/// The gitattribute that overrides the format of a path.
pub(crate) const ATTRIBUTE: &str = "sops-type";

/// The format of `path` given the value git reports for `sops-type`.
pub(crate) fn from_attribute(path: &str, value: &str) -> Result<Format, DriverError> {
    match value {
        "unspecified" | "unset" => Ok(Format::detect(path)),
        name => Format::from_name(name).ok_or_else(|| {
            let shown = if name == "set" {
                "sops-type (no value)"
            } else {
                name
            };
            DriverError::new(
                path,
                format!("unknown format {shown:?} in the sops-type gitattribute"),
            )
            .hint("use sops-type=yaml, json, dotenv, ini or binary in .gitattributes")
        }),
    }
}

/// The format of one path (one `git check-attr` call).
pub(crate) fn format_for(git: &Git, path: &str) -> Result<Format, DriverError> {
    let values = git
        .check_attr(ATTRIBUTE, &[path.to_string()])
        .map_err(|e| DriverError::new(path, format!("cannot read its gitattributes: {e}")))?;
    from_attribute(path, values.first().map_or("unspecified", String::as_str))
}

/// The formats (and working-tree modes, see [`crate::worktree_mode`]) of
/// many paths, for a long-running filter process: one `git check-attr`
/// process answers them all, both attributes in one round trip.
///
/// During a checkout or clone git writes files in index order, so a file such
/// as `.env.production` is smudged before the `.gitattributes` that types it
/// exists in the working tree (and the index on disk is written only at the
/// end). Smudges that name the tree being checked out therefore read the
/// attributes of that tree (`check-attr --source`, git ≥ 2.40).
pub(crate) struct FileTypes {
    git: Git,
    reader: Option<AttrReader>,
    /// The tree-ish and its reader, for smudges of a checkout.
    in_tree: Option<(String, Option<AttrReader>)>,
    /// The last answer, (path, tree-ish) → values: smudge and clean ask for
    /// the format and the mode of the same path one after the other.
    last: Option<(String, String, Vec<String>)>,
    /// `sops.worktree`, read once.
    configured: Option<(WorktreeMode, ModeSource)>,
}

/// The attributes read for each path, in this order.
const ATTRIBUTES: [&str; 2] = [ATTRIBUTE, worktree_mode::ATTRIBUTE];

impl FileTypes {
    pub fn new(git: Git) -> FileTypes {
        FileTypes {
            git,
            reader: None,
            in_tree: None,
            last: None,
            configured: None,
        }
    }

    /// The format of `path` as the working tree's attributes say.
    pub fn format(&mut self, path: &str) -> Result<Format, DriverError> {
        let values = self.values_in(path, "")?;
        from_attribute(path, &values[0])
    }

    /// The format of `path` as the attributes of `treeish` (an object name git
    /// sent with a smudge) say; the working tree's when that cannot be read.
    pub(crate) fn format_in(&mut self, path: &str, treeish: &str) -> Result<Format, DriverError> {
        let values = self.values_in(path, treeish)?;
        from_attribute(path, &values[0])
    }

    /// The working-tree mode of `path` (the attributes of `treeish` when it
    /// names one, else the working tree's), and where it came from.
    pub(crate) fn mode_in(
        &mut self,
        path: &str,
        treeish: &str,
    ) -> Result<(WorktreeMode, ModeSource), DriverError> {
        let configured = *self
            .configured
            .get_or_insert_with(|| worktree_mode::configured(&self.git));
        let values = self.values_in(path, treeish)?;
        Ok(worktree_mode::resolve(&values[1], configured))
    }

    /// Both attributes of `path`, from `treeish` when it is an object name.
    fn values_in(&mut self, path: &str, treeish: &str) -> Result<Vec<String>, DriverError> {
        let treeish = if crate::git::is_object_name(treeish) {
            treeish
        } else {
            ""
        };
        if let Some((p, t, values)) = &self.last {
            if p == path && t == treeish {
                return Ok(values.clone());
            }
        }
        let values = match self.read_in(path, treeish) {
            Some(values) => values,
            None => self.read_worktree(path)?,
        };
        self.last = Some((path.to_string(), treeish.to_string(), values.clone()));
        Ok(values)
    }

    /// From the tree being checked out; `None` when it cannot be read.
    fn read_in(&mut self, path: &str, treeish: &str) -> Option<Vec<String>> {
        if treeish.is_empty() {
            return None;
        }
        if self.in_tree.as_ref().map(|(t, _)| t.as_str()) != Some(treeish) {
            let reader = AttrReader::spawn(&self.git, &ATTRIBUTES, Some(treeish)).ok();
            self.in_tree = Some((treeish.to_string(), reader));
        }
        if let Some((_, Some(reader))) = self.in_tree.as_mut() {
            if let Ok(values) = reader.read(path) {
                return Some(values);
            }
        }
        if let Some((_, reader)) = self.in_tree.as_mut() {
            *reader = None; // an older git, or no such tree: use the working tree's
        }
        None
    }

    fn read_worktree(&mut self, path: &str) -> Result<Vec<String>, DriverError> {
        if self.reader.is_none() {
            self.reader = AttrReader::spawn(&self.git, &ATTRIBUTES, None).ok();
        }
        if let Some(reader) = self.reader.as_mut() {
            match reader.read(path) {
                Ok(values) if values.len() == ATTRIBUTES.len() => return Ok(values),
                _ => self.reader = None,
            }
        }
        let rows = self
            .git
            .check_attrs(
                crate::git::check_attr::AttrSource::WorkTree,
                &ATTRIBUTES,
                &[path.as_bytes()],
            )
            .map_err(|e| DriverError::new(path, format!("cannot read its gitattributes: {e}")))?;
        match rows.into_iter().next() {
            Some(values) if values.len() == ATTRIBUTES.len() => Ok(values),
            _ => Ok(vec!["unspecified".to_string(); ATTRIBUTES.len()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribute_overrides_the_extension() {
        assert_eq!(
            from_attribute("a/.env.prod", "unspecified").unwrap(),
            Format::Binary
        );
        assert_eq!(
            from_attribute("a/.env.prod", "dotenv").unwrap(),
            Format::Dotenv
        );
        assert_eq!(from_attribute("x.yaml", "unset").unwrap(), Format::Yaml);
        assert_eq!(from_attribute("x.yaml", "binary").unwrap(), Format::Binary);
        let err = from_attribute("x.yaml", "toml").unwrap_err();
        assert!(err.message.contains("\"toml\""), "{}", err.message);
        assert!(from_attribute("x.yaml", "set").is_err());
    }
}
