//! Reading ahead for clean: the format and the staged blob of the files git
//! is about to send, fetched in batches.
//!
//! `git status` (or `add`, `diff`) after a touch cleans every stat-dirty
//! protected file, one request after another, in index order. Each request
//! needs the file's `sops-type` attribute and its staged blob; asking
//! `git check-attr` and `git cat-file` one path at a time costs two process
//! round trips per file, several times what git itself spends on the file
//! (issue 18). So once a process has cleaned a file and is asked for another,
//! it reads the index listing once (`git ls-files -s`) and, for a path not
//! read ahead yet, asks about it and the index entries after it in batches:
//! the `filter` and `sops-type` attributes of the next [`WINDOW`] paths, then
//! the blobs of those git hands to this filter, by object id. The blob
//! questions go out a window ahead of the answers being read, so that
//! `git cat-file` unpacks them while git and this filter work on the files
//! before (how far it gets ahead is bounded by the pipe between us).
//!
//! What is read ahead is exactly what the one-path questions would answer:
//! the stage-0 entry's blob is what `:path` names, and the attributes come
//! from the same `git check-attr`. A guess that git does not follow costs
//! only the reading. The listing is read again whenever the index file
//! changes (a rebase writes it between commits), and what was read ahead
//! for a path is used once.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::SystemTime;

use crate::git::cat_file::BlobReader;
use crate::git::check_attr::AttrReader;
use crate::git::{Git, GITLINK, SYMLINK};

/// Paths asked about per batch (their questions must fit in a pipe).
const WINDOW: usize = 64;
/// The filter driver name git-sops is configured as (`filter=sops`).
const DRIVER: &str = "sops";

/// The index file as last seen: size, modification time, inode.
type Stamp = (u64, Option<SystemTime>, u64);

/// What was read ahead for one path.
pub(crate) struct Ahead {
    /// The `sops-type` attribute as git reports it.
    pub sops_type: String,
    /// The staged blob (`None`: no stage-0 entry, or not a blob).
    pub staged: Option<Vec<u8>>,
}

pub(crate) struct ReadAhead {
    git: Git,
    /// Set once anything fails: then the filter asks one path at a time.
    broken: bool,
    index_file: Option<PathBuf>,
    stamp: Option<Stamp>,
    /// Stage-0 file entries in index order: path and object id.
    entries: Vec<(String, String)>,
    position: HashMap<String, usize>,
    attrs: Option<AttrReader>,
    blobs: Option<BlobReader>,
    /// Read ahead and not taken yet.
    ready: HashMap<String, Ahead>,
    /// Blobs asked for whose answers are still unread, in the order asked.
    pending: VecDeque<(String, String)>,
    /// The first entry whose attributes have not been asked for.
    next: usize,
}

impl ReadAhead {
    pub fn new(git: Git) -> ReadAhead {
        ReadAhead {
            git,
            broken: false,
            index_file: None,
            stamp: None,
            entries: Vec::new(),
            position: HashMap::new(),
            attrs: None,
            blobs: None,
            ready: HashMap::new(),
            pending: VecDeque::new(),
            next: 0,
        }
    }

    /// The attribute and staged blob of `path`, read ahead (now, with the
    /// paths after it, when not already); `None` when the filter should ask
    /// for this one path itself.
    pub fn take(&mut self, path: &str) -> Option<Ahead> {
        if self.broken {
            return None;
        }
        match self.try_take(path) {
            Ok(found) => found,
            Err(_) => {
                self.broken = true;
                self.attrs = None;
                self.blobs = None;
                self.ready.clear();
                self.pending.clear();
                None
            }
        }
    }

    /// The attribute and staged blob (`:path`) of one path, through the same
    /// two processes the batches use, the two questions in flight together:
    /// the first clean of a process (often the only one) reads no listing.
    pub fn one(&mut self, path: &str) -> Option<Ahead> {
        if self.broken || !self.pending.is_empty() {
            return None;
        }
        let found = self.try_one(path);
        if found.is_err() {
            self.broken = true;
            self.attrs = None;
            self.blobs = None;
        }
        found.ok()
    }

    fn try_one(&mut self, path: &str) -> std::io::Result<Ahead> {
        self.spawn()?;
        let (Some(attrs), Some(blobs)) = (self.attrs.as_mut(), self.blobs.as_mut()) else {
            return Err(std::io::Error::other("no git process"));
        };
        blobs.send_many(&[&format!(":{path}")])?;
        let row = attrs.read_many(&[path])?;
        let staged = blobs.next_answer()?;
        match &row[..] {
            [row] if row.len() == 2 => Ok(Ahead {
                sops_type: row[1].clone(),
                staged,
            }),
            _ => Err(std::io::Error::other("git check-attr answered otherwise")),
        }
    }

    /// Start the two git processes, if not running.
    fn spawn(&mut self) -> std::io::Result<()> {
        if self.attrs.is_none() {
            self.attrs = Some(
                AttrReader::spawn(&self.git, &["filter", super::sops_type::ATTRIBUTE], None)
                    .map_err(std::io::Error::other)?,
            );
        }
        if self.blobs.is_none() {
            self.blobs = Some(BlobReader::spawn(&self.git).map_err(std::io::Error::other)?);
        }
        Ok(())
    }

    fn try_take(&mut self, path: &str) -> std::io::Result<Option<Ahead>> {
        if !self.index_current() {
            self.reset()?;
            if !self.load() {
                self.broken = true;
                return Ok(None);
            }
        }
        let found = match self.ready.remove(path) {
            Some(ahead) => Some(ahead),
            None if self.pending.iter().any(|(p, _)| p == path) => self.answers_until(path)?,
            None => {
                // git went elsewhere: start over from this path.
                let Some(&start) = self.position.get(path) else {
                    return Ok(None);
                };
                self.reset()?;
                self.next = start;
                self.ask_window()?;
                self.answers_until(path)?
            }
        };
        // What git passed over it will not ask for in this pass: drop it, so
        // that what is kept stays within about two windows.
        if let Some(&here) = self.position.get(path) {
            let position = &self.position;
            self.ready
                .retain(|p, _| position.get(p).is_some_and(|&at| at > here));
        }
        // Keep the next window's blobs on their way.
        if self.pending.len() < WINDOW / 2 && self.next < self.entries.len() {
            self.ask_window()?;
        }
        Ok(found)
    }

    /// Read answers, in order, up to the one for `path`; those before it
    /// are kept for their turn.
    fn answers_until(&mut self, path: &str) -> std::io::Result<Option<Ahead>> {
        while let Some((asked, sops_type)) = self.pending.pop_front() {
            let staged = match self.blobs.as_mut() {
                Some(blobs) => blobs.next_answer()?,
                None => None,
            };
            let ahead = Ahead { sops_type, staged };
            if asked == path {
                return Ok(Some(ahead));
            }
            self.ready.insert(asked, ahead);
        }
        Ok(None)
    }

    /// Forget every guess, reading the answers still on their way.
    fn reset(&mut self) -> std::io::Result<()> {
        while self.pending.pop_front().is_some() {
            if let Some(blobs) = self.blobs.as_mut() {
                blobs.next_answer()?;
            }
        }
        self.ready.clear();
        Ok(())
    }

    /// Ask for the attributes of the next window of entries, and for the
    /// blobs of those git hands to this filter (answers read later).
    fn ask_window(&mut self) -> std::io::Result<()> {
        let start = self.next;
        let end = (start + WINDOW).min(self.entries.len());
        self.next = end;
        if start == end {
            return Ok(());
        }
        self.spawn()?;
        let window = &self.entries[start..end];
        let paths: Vec<&str> = window.iter().map(|(p, _)| p.as_str()).collect();
        let values = match self.attrs.as_mut() {
            Some(attrs) => attrs.read_many(&paths)?,
            None => return Ok(()),
        };
        let mut oids = Vec::new();
        for ((path, oid), row) in window.iter().zip(&values) {
            if let [filter, sops_type] = &row[..] {
                if filter == DRIVER && !super::is_configuration(path) {
                    oids.push(oid.as_str());
                    self.pending.push_back((path.clone(), sops_type.clone()));
                }
            }
        }
        if oids.is_empty() {
            return Ok(());
        }
        match self.blobs.as_mut() {
            Some(blobs) => blobs.send_many(&oids),
            None => Ok(()),
        }
    }

    /// Is the listing read from the index file as it is now?
    fn index_current(&mut self) -> bool {
        self.stamp.is_some() && self.stamp == self.index_file.as_deref().and_then(stamp)
    }

    /// Read the listing (again). `false` when it cannot be read.
    fn load(&mut self) -> bool {
        self.ready.clear();
        self.next = 0;
        self.entries.clear();
        self.position.clear();
        if self.index_file.is_none() {
            let Ok(file) =
                self.git
                    .run_text(&["rev-parse", "--path-format=absolute", "--git-path", "index"])
            else {
                return false;
            };
            self.index_file = Some(PathBuf::from(file.trim_end()));
        }
        // Stamp first: a change while listing makes the next request list again.
        self.stamp = self.index_file.as_deref().and_then(stamp);
        let Ok(entries) = self.git.index_entries(&[]) else {
            return false;
        };
        for e in entries {
            if e.stage != 0 || e.mode == GITLINK || e.mode == SYMLINK {
                continue;
            }
            let Ok(path) = String::from_utf8(e.path) else {
                continue; // never asked for: clean refuses such names
            };
            self.position.insert(path.clone(), self.entries.len());
            self.entries.push((path, e.oid));
        }
        self.stamp.is_some()
    }
}

fn stamp(file: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(file).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), meta.modified().ok(), inode))
}
