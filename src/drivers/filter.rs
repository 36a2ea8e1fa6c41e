//! The clean and smudge filters, shared by the long-running `filter-process` and
//! the one-shot `clean %f` / `smudge %f` commands.
//!
//! Clean turns the working-tree plaintext into the blob git stores. It never
//! passes plaintext through: what it cannot encrypt is an error. It is
//! byte-stable: when the plaintext equals the decryption of the staged blob
//! (fallback `HEAD:path`) it returns that blob unchanged, and otherwise it keeps
//! that blob's data key and recipients and re-uses the IV of every unchanged value
//! (DESIGN.md invariant 2).
//!
//! Smudge decrypts; without a usable key it returns the ciphertext unchanged with
//! one warning (a locked clone must still check out), and anything that is not a
//! SOPS file passes through. A MAC failure or a tampered value is an error.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::filetype::FileTypes;
use super::keystore::key_cache;
use super::known_blobs::KnownBlobs;
use super::DriverError;
use crate::formats::Format;
use crate::git::cat_file::BlobReader;
use crate::git::Git;
use crate::sops::keycache::KeyCache;
use crate::sops::keygroups::{self, Keyring};
use crate::sops::{config, encrypt, file, metadata::Metadata, Error};

/// What smudge produced.
pub enum Smudged {
    Plaintext(Zeroizing<Vec<u8>>),
    /// The input is returned unchanged (not a SOPS file, or no key to open it).
    Unchanged,
}

pub struct Filter {
    git: Git,
    top: PathBuf,
    blobs: Option<BlobReader>,
    keyring: Keyring,
    keys: KeyCache,
    types: FileTypes,
    /// What stored blobs decrypt to, to recognise unchanged files cheaply.
    known: Option<KnownBlobs>,
    warned_locked: bool,
    /// The ciphertext each path was last smudged from (see `templates`).
    smudged: HashMap<String, Vec<u8>>,
    /// Trees whose data keys were prefetched, and how many keys that unwrapped.
    prefetched_trees: HashSet<String>,
    prefetched: usize,
    /// The tree being checked out, as git named it with the current smudge.
    treeish: String,
}

impl Filter {
    /// A filter for the repository containing `dir` (git runs filters at the top
    /// of the working tree).
    pub fn new(dir: impl Into<PathBuf>) -> Filter {
        let git = Git::new(dir);
        let top = git.toplevel().unwrap_or_else(|_| git.dir.clone());
        let keys = key_cache(&git);
        let types = FileTypes::new(git.clone());
        let known = KnownBlobs::open(&git);
        Filter {
            git,
            top,
            blobs: None,
            keyring: Keyring::new(),
            keys,
            types,
            known,
            warned_locked: false,
            smudged: HashMap::new(),
            prefetched_trees: HashSet::new(),
            prefetched: 0,
            treeish: String::new(),
        }
    }

    /// How many data keys this process unwrapped through a master key.
    pub fn unwraps(&self) -> usize {
        self.keys.unwraps() + self.prefetched
    }

    /// The tree the next smudge belongs to (empty: none named), whose
    /// attributes give the format of the file.
    pub fn checking_out(&mut self, treeish: &str) {
        treeish.clone_into(&mut self.treeish);
    }

    /// Before the smudges of a checkout of `treeish`: unwrap the data keys it
    /// will need concurrently (once per tree; best effort, see `prefetch`).
    pub fn prefetch(&mut self, treeish: &str) {
        if self.prefetched_trees.insert(treeish.to_string()) {
            self.prefetched += super::prefetch::tree(&self.git, treeish, &self.keys).unwrapped;
        }
    }

    /// The blobs `path` may have been checked out from, most authoritative first:
    /// staged (the on-disk index), `HEAD:path`, and the blob this process last
    /// smudged for it. git compares with its in-memory index, which during a
    /// rebase or merge can be ahead of the on-disk one; the smudged blob covers that.
    /// Candidate `which` (0: staged, 1: `HEAD:path`, 2: last smudged), read only
    /// when asked for: an unchanged file usually matches the first one, and every
    /// read is a round trip to `git cat-file`.
    fn template(&mut self, which: usize, path: &str) -> Option<Vec<u8>> {
        let spec = match which {
            0 => format!(":{path}"),
            1 => format!("HEAD:{path}"),
            _ => return self.smudged.get(path).cloned(),
        };
        if self.blobs.is_none() {
            self.blobs = BlobReader::spawn(&self.git).ok();
        }
        match self.blobs.as_mut()?.read(&spec) {
            Ok(blob) => blob,
            Err(_) => {
                self.blobs = None;
                None
            }
        }
    }

    pub fn clean(&mut self, path: &str, input: &[u8]) -> Result<Vec<u8>, DriverError> {
        let format = self.types.format(path)?;
        // The staged blob is read once per request: it is both the known-blob
        // candidate and the first template.
        let staged = self.template(0, path);
        if let Some(staged) = &staged {
            if self
                .known
                .as_ref()
                .is_some_and(|k| k.matches(staged, format, input))
            {
                return Ok(staged.clone());
            }
        }
        // Conflict markers left by the merge driver would not parse (or, in a
        // binary secret, would be stored as its content): name them.
        if let Some(line) = conflict_markers(input) {
            return Err(DriverError::new(
                path,
                format!("has unresolved merge conflict markers (line {line}); nothing was staged"),
            )
            .hint("edit the file to keep the right values and remove the <<<<<<< ======= >>>>>>> lines, then `git add` it (or `git checkout --ours/--theirs` it)"));
        }
        let fail = |e: Error| {
            DriverError::new(path, format!("cannot encrypt it: {e}"))
                .hint("fix the file and run the git command again; git-sops never stores plaintext")
        };
        // Already SOPS (a locked clone's working tree, or a file committed as
        // ciphertext): store it exactly as it is. What cannot be encrypted is
        // refused here, before looking for keys.
        let encrypted = if format == Format::Binary {
            // Any SOPS file counts: one of another format under a name sops calls
            // binary (say `kubeconfig`) must not be wrapped a second time.
            file::sniff(path, input).is_some()
        } else {
            let text = std::str::from_utf8(input).map_err(|_| {
                DriverError::new(
                    path,
                    format!("not UTF-8 text, so it cannot be encrypted as {}; nothing was staged", format.name()),
                )
                .hint("set `sops-type=binary` for this path in .gitattributes to store it as a binary secret")
            })?;
            let doc = format.store().parse(text).map_err(|e| fail(e.into()))?;
            file::has_metadata(&doc)
        };
        if encrypted {
            return Ok(input.to_vec());
        }
        if let Some(out) = self.clean_with_templates(path, format, input, staged)? {
            return Ok(out);
        }
        // A new file: keys and selector from the creation rule for its path.
        let cfg = config::discover_from(&self.top)
            .map_err(|e| DriverError::new(path, format!("cannot encrypt a new protected file: {e}")))?
            .ok_or_else(|| {
                DriverError::new(path, "cannot encrypt a new protected file: there is no .sops.yaml with creation_rules")
                    .hint("create a .sops.yaml with a creation rule for this path (`git sops init` writes one)")
            })?;
        let rule = cfg
            .rule_for(&self.top.join(path).to_string_lossy())
            .map_err(|e| {
                DriverError::new(path, format!("cannot encrypt a new protected file: {e}"))
            })?;
        let spec = encrypt::EncryptSpec {
            key_groups: rule.key_groups,
            shamir_threshold: rule.shamir_threshold,
            selector: rule.selector,
            mac_only_encrypted: rule.mac_only_encrypted,
        };
        let (key, mut meta) = encrypt::new_metadata(&spec).map_err(fail)?;
        let out =
            file::seal(format, input, &key, &mut meta, &mut encrypt::FreshIvs).map_err(fail)?;
        self.keys.remember(&meta, &key);
        self.remember(&out, format, input);
        Ok(out)
    }

    fn remember(&mut self, blob: &[u8], format: Format, plaintext: &[u8]) {
        if let Some(known) = self.known.as_mut() {
            known.record(blob, format, plaintext);
        }
    }

    /// Clean against the previous versions of the file. `None` when none of them
    /// is a usable SOPS file (then the file is treated as new).
    fn clean_with_templates(
        &mut self,
        path: &str,
        format: Format,
        input: &[u8],
        mut staged: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, DriverError> {
        let mut usable = None;
        let mut locked = None;
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for which in 0..3 {
            let candidate = match which {
                0 => staged.take(),
                _ => self.template(which, path),
            };
            let Some(template) = candidate else {
                continue;
            };
            if seen.contains(&template) {
                continue;
            }
            seen.push(template.clone());
            if super::merge::is_conflict(&template) {
                continue; // its one value is no template for the file's values
            }
            let Some(loaded) = file::load(format, &template) else {
                continue;
            };
            let Ok(key) = self.keys.recover(&loaded.meta, &self.keyring) else {
                locked.get_or_insert(loaded.meta);
                continue;
            };
            // A damaged previous version is no template (its recipients still are).
            let Ok(opened) = loaded.open(&key) else {
                locked.get_or_insert(loaded.meta);
                continue;
            };
            if opened.plaintext.as_slice() == input {
                self.remember(&template, format, input);
                return Ok(Some(template));
            }
            usable.get_or_insert((loaded.meta, key, opened.ivs));
        }
        if let Some((mut meta, key, mut ivs)) = usable {
            // Same data key and recipients; unchanged values keep their IVs.
            let out = file::seal(format, input, &key, &mut meta, &mut ivs)
                .map_err(|e| DriverError::new(path, format!("cannot encrypt it: {e}")))?;
            self.remember(&out, format, input);
            return Ok(Some(out));
        }
        // No key for the previous version (a locked clone that replaced the file
        // with plaintext): a new data key for the same recipients.
        match locked {
            Some(meta) => self.reencrypt_for(path, format, input, &meta).map(Some),
            None => Ok(None),
        }
    }

    fn reencrypt_for(
        &mut self,
        path: &str,
        format: Format,
        input: &[u8],
        previous: &Metadata,
    ) -> Result<Vec<u8>, DriverError> {
        let groups: Vec<_> = previous
            .key_groups
            .iter()
            .map(|g| g.iter().map(|k| k.recipient()).collect())
            .collect();
        let fail =
            |e: Error| DriverError::new(path, format!("cannot encrypt it for its recipients: {e}"));
        let (key, key_groups, threshold) =
            keygroups::wrap_new(&groups, previous.shamir_threshold).map_err(|e| fail(e.into()))?;
        let mut meta = Metadata {
            key_groups,
            shamir_threshold: threshold,
            ..previous.clone()
        };
        let out =
            file::seal(format, input, &key, &mut meta, &mut encrypt::FreshIvs).map_err(fail)?;
        self.keys.remember(&meta, &key);
        self.remember(&out, format, input);
        Ok(out)
    }

    pub fn smudge(&mut self, path: &str, input: &[u8]) -> Result<Smudged, DriverError> {
        // A merge conflict (see `merge`): the text with conflict markers goes to the
        // working tree. It is never a clean template; clean falls back to HEAD.
        if let Some(opened) = super::merge::open_conflict(input, &self.keys, &self.keyring) {
            return Ok(match opened {
                Ok(text) => Smudged::Plaintext(text),
                Err(_) => Smudged::Unchanged,
            });
        }
        let format = self.types.format_in(path, &self.treeish)?;
        let Some(loaded) = file::load(format, input) else {
            if let Some(other) = file::sniff(path, input) {
                eprintln!(
                    "git-sops: warning: {path} holds a SOPS {} file, but git-sops reads this path as {}, so it stays encrypted; set `sops-type={}` for it in .gitattributes",
                    other.format().name(),
                    format.name(),
                    other.format().name()
                );
            } else if let Some(why) = file::why_unreadable(format, input) {
                eprintln!(
                    "git-sops: warning: {path} looks like a SOPS file but cannot be read ({why}); it is checked out as it is"
                );
            }
            return Ok(Smudged::Unchanged);
        };
        let key = match self.keys.recover(&loaded.meta, &self.keyring) {
            Ok(key) => key,
            Err(_) => {
                if !self.warned_locked {
                    self.warned_locked = true;
                    eprintln!(
                        "git-sops: warning: no key to decrypt {path}; it (and any other such file) stays encrypted in the working tree. `git sops status` shows which key opens it"
                    );
                }
                return Ok(Smudged::Unchanged);
            }
        };
        let opened = loaded.open(&key).map_err(|e| {
            DriverError::new(path, format!("refusing to check out: {e}")).hint(
                "the committed file was modified outside git-sops/sops; inspect it with `git show`",
            )
        })?;
        self.smudged.insert(path.to_string(), input.to_vec());
        self.remember(input, format, &opened.plaintext);
        Ok(Smudged::Plaintext(opened.plaintext))
    }
}

/// The line of the first `<<<<<<<` marker of a complete conflict block
/// (`<<<<<<<`, `=======`, `>>>>>>>` lines in that order), if any.
fn conflict_markers(input: &[u8]) -> Option<usize> {
    let mut start = None;
    let mut middle = false;
    for (n, line) in input.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"<<<<<<<") {
            start = Some(n + 1);
            middle = false;
        } else if start.is_some() && line.starts_with(b"=======") {
            middle = true;
        } else if middle && line.starts_with(b">>>>>>>") {
            return start;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::conflict_markers;

    #[test]
    fn conflict_markers_need_a_whole_block() {
        let block = b"a: 1\n<<<<<<< ours\nb: 2\n=======\nb: 3\n>>>>>>> theirs\n";
        assert_eq!(conflict_markers(block), Some(2));
        assert_eq!(
            conflict_markers(b"a: 1\r\n<<<<<<< ours\r\n=======\r\n>>>>>>> theirs\r\n"),
            Some(2)
        );
        assert_eq!(conflict_markers(b"# <<<<<<< not at line start\n"), None);
        assert_eq!(conflict_markers(b"<<<<<<< ours\nb: 2\n"), None);
        assert_eq!(conflict_markers(b"=======\n>>>>>>> x\n"), None);
    }
}
