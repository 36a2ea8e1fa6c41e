//! The clean and smudge filters, shared by the long-running `filter-process` and
//! the one-shot `clean %f` / `smudge %f` commands.
//!
//! Clean turns the working-tree plaintext into the blob git stores. It never
//! passes plaintext through: what it cannot encrypt is an error. It is
//! byte-stable: when the plaintext equals the decryption of the staged blob
//! (fallback `HEAD:path`) it returns that blob unchanged, and otherwise it keeps
//! that blob's data key and recipients and re-uses the IV of every unchanged value
//! (docs/architecture.md §3).
//!
//! Clean stores a file that already is SOPS ciphertext as it is only when its
//! form is intact (every entry its own rules encrypt is `ENC[...]`, judged by
//! [`sops_file::form`] exactly as the guard judges it) and, where a key opens
//! it, its MAC verifies; anything else that looks like SOPS is refused. The files
//! that configure protection (`.gitattributes`, `.sops.yaml`, ...) are never
//! transformed.
//!
//! Smudge decrypts; without a usable key it returns the ciphertext unchanged with
//! one warning (a locked clone must still check out), and anything that is not a
//! SOPS file passes through. A file that fails authentication (MAC mismatch, a
//! tampered value) also stays ciphertext, with an error naming it, so that the
//! rest of the checkout completes.
//!
//! In an encrypted working tree ([`crate::worktree_mode`]: `sops.worktree` or the
//! `sops-worktree` attribute) smudge returns every blob unchanged, key or
//! not, so the working tree holds what the repository holds; clean then sees
//! that ciphertext and stores it as it is (the rules above for SOPS input
//! apply), while plaintext dropped into such a path is still encrypted, with
//! a warning that the plaintext file stays on disk.

pub mod prefetch;
pub mod protocol;
mod read_ahead;
mod recent;
pub mod sops_type;

use std::collections::HashSet;
use std::path::PathBuf;

use zeroize::Zeroizing;

use self::read_ahead::ReadAhead;
use self::sops_type::FileTypes;
use crate::cache::data_keys::key_cache;
use crate::cache::known_blobs::KnownBlobs;
use crate::cache::CacheDir;
use crate::drivers::{DriverError, Level, Notice};
use crate::git::cat_file::BlobReader;
use crate::git::Git;
use crate::worktree_mode::WorktreeMode;
use recent::{Recalled, RecentBlobs};
use sops_file::decrypt::Check;
use sops_file::formats::Format;
use sops_file::keycache::KeyCache;
use sops_file::keygroups::{self, Keyring, Recipient};
use sops_file::keypool::KeyPool;
use sops_file::selectors::Selector;
use sops_file::{config, encrypt, file, form, metadata::Metadata, Error};

/// What the previous versions of a file offer clean.
#[derive(Default)]
struct Templates {
    /// A blob that decrypts to the plaintext being cleaned, byte for byte.
    exact: Option<Vec<u8>>,
    /// The first one a key opens: its metadata, data key and IVs.
    usable: Option<(
        Metadata,
        sops_file::datakey::DataKey,
        sops_file::stash::IvStash,
    )>,
    /// The first one no key opens: its recipients.
    locked: Option<Metadata>,
}

/// What smudge produced.
pub(crate) enum Smudged {
    Plaintext(Zeroizing<Vec<u8>>),
    /// The input is returned unchanged (not a SOPS file, or no key to open it).
    Unchanged,
}

pub(crate) struct Filter {
    git: Git,
    top: PathBuf,
    blobs: Option<BlobReader>,
    keyring: Keyring,
    keys: KeyCache,
    types: FileTypes,
    /// What stored blobs decrypt to, to recognise unchanged files cheaply.
    known: Option<KnownBlobs>,
    warned_locked: bool,
    warned_config: bool,
    /// What to tell the user, taken by the caller after each request.
    notices: Vec<Notice>,
    /// What this process last cleaned each path to (the older ones in the
    /// cache folder, see `recent`).
    cleaned: RecentBlobs,
    /// Run as the one-shot `clean %f`: one process per file, so what an earlier
    /// process of the same git command cleaned is kept on disk.
    one_shot: bool,
    /// Clean's input comes from memory, not from the working tree.
    in_memory: bool,
    /// The ciphertext each path was last smudged from (see `templates`; the
    /// older ones by the object id git named them by).
    smudged: RecentBlobs,
    /// The object id git named the blob of the next smudge by (empty: none).
    smudge_blob: String,
    /// When this process started: a blob it cleaned and put in the cache folder
    /// is read back from there only if it is not older.
    started: std::time::Instant,
    /// Trees whose data keys were prefetched, and how many keys that unwrapped.
    prefetched_trees: HashSet<String>,
    prefetched: usize,
    /// The tree being checked out, as git named it with the current smudge.
    treeish: String,
    /// New data keys wrapped ahead of demand (the long-running filter only:
    /// git sends one file at a time, so a `git add` of many new KMS files would
    /// otherwise wait one KMS round trip per file; see `sops_file::keypool`).
    keys_ahead: Option<KeyPool>,
    /// Formats and staged blobs of the files git is likely to clean next.
    ahead: ReadAhead,
    /// Clean requests served so far.
    cleans: usize,
}

impl Filter {
    /// A filter for the repository containing `dir` (git runs filters at the top
    /// of the working tree).
    pub fn new(dir: impl Into<PathBuf>) -> Filter {
        let git = Git::new(dir);
        let top = git.toplevel().unwrap_or_else(|_| git.dir.clone());
        let cache = CacheDir::of(&git);
        let keys = key_cache(cache.as_ref());
        let types = FileTypes::new(git.clone());
        let ahead = ReadAhead::new(git.clone());
        let known = KnownBlobs::open(cache.as_ref());
        // Pushed-out cleaned blobs go to the cache folder; without one they
        // stay (see `RecentBlobs::keeping_unnamed`).
        let cleaned = if known.is_some() {
            RecentBlobs::default()
        } else {
            RecentBlobs::keeping_unnamed()
        };
        Filter {
            git,
            top,
            blobs: None,
            keyring: Keyring::new(),
            keys,
            types,
            known,
            warned_locked: false,
            warned_config: false,
            notices: Vec::new(),
            cleaned,
            one_shot: false,
            in_memory: false,
            smudged: RecentBlobs::default(),
            smudge_blob: String::new(),
            started: std::time::Instant::now(),
            prefetched_trees: HashSet::new(),
            prefetched: 0,
            treeish: String::new(),
            keys_ahead: None,
            ahead,
            cleans: 0,
        }
    }

    /// A filter for git's long-running `filter-process`: it serves many files,
    /// so the data keys of new files are wrapped ahead of demand.
    pub(crate) fn long_running(dir: impl Into<PathBuf>) -> Filter {
        Filter {
            keys_ahead: Some(KeyPool::new()),
            ..Filter::new(dir)
        }
    }

    /// A fresh data key wrapped for `groups`, from the pool when there is one.
    fn wrap_new(
        &self,
        groups: &[Vec<Recipient>],
        threshold: usize,
    ) -> Result<sops_file::keypool::Wrapped, keygroups::KeyGroupError> {
        match &self.keys_ahead {
            Some(pool) => pool.wrap_new(groups, threshold),
            None => keygroups::wrap_new(groups, threshold),
        }
    }

    /// What the filter has to tell the user since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// A filter whose clean input is plaintext held in memory, not a file on
    /// disk (`git sops add -p`): no warning about plaintext on disk.
    pub(crate) fn in_memory(dir: impl Into<PathBuf>) -> Filter {
        Filter {
            in_memory: true,
            ..Filter::new(dir)
        }
    }

    /// A filter for one request of git's one-shot `clean %f` / `smudge %f`.
    pub(crate) fn one_shot(dir: impl Into<PathBuf>) -> Filter {
        Filter {
            one_shot: true,
            ..Filter::new(dir)
        }
    }

    /// The tree the next smudge belongs to (empty: none named), whose
    /// attributes give the format of the file.
    pub(crate) fn checking_out(&mut self, treeish: &str) {
        treeish.clone_into(&mut self.treeish);
    }

    /// The object id of the blob the next smudge gets (empty: git named none).
    pub(crate) fn smudging_blob(&mut self, blob: &str) {
        blob.clone_into(&mut self.smudge_blob);
    }

    /// Before the smudges of a checkout of `treeish`: unwrap the data keys it
    /// will need concurrently (once per tree; best effort, see `prefetch`).
    pub fn prefetch(&mut self, treeish: &str) {
        if self.prefetched_trees.insert(treeish.to_string()) {
            self.prefetched += self::prefetch::tree(&self.git, treeish, &self.keys).unwrapped;
        }
    }

    /// The blobs `path` may have been checked out from, most authoritative first:
    /// staged (the on-disk index), `HEAD:path`, the blob this process last
    /// smudged for it, and the blob clean last made for it. git compares with
    /// its in-memory index, which during a rebase or merge can be ahead of the
    /// on-disk one; the smudged blob covers that. `git commit PATH` cleans the
    /// file twice (for the commit's temporary index, then for the real one,
    /// which the on-disk index does not show yet); the cleaned blob makes the
    /// second answer the first, or the index would differ from the commit.
    /// Candidate `which` (0: staged, 1: `HEAD:path`, 2: last smudged, 3: last
    /// cleaned), read only when asked for: an unchanged file usually matches the
    /// first one, and every read is a round trip to `git cat-file`.
    fn template(&mut self, which: usize, path: &str) -> Option<Vec<u8>> {
        let spec = match which {
            0 => format!(":{path}"),
            1 => format!("HEAD:{path}"),
            2 => match self.smudged.get(path)? {
                Recalled::Bytes(blob) => return Some(blob.to_vec()),
                Recalled::Object(id) if crate::git::is_object_name(id) => id.to_string(),
                Recalled::Object(_) | Recalled::Elsewhere => return None,
            },
            _ => {
                let known = self.known.as_ref();
                return match self.cleaned.get(path) {
                    Some(Recalled::Bytes(blob)) => Some(blob.to_vec()),
                    // Put in the cache folder by this process (see `clean`).
                    Some(_) => known?.last_cleaned(path, self.started.elapsed()),
                    None => known
                        .filter(|_| self.one_shot)?
                        .last_cleaned(path, ONE_COMMAND),
                };
            }
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

    /// Ask `git cat-file` for the staged blob of `path` ahead of
    /// [`Filter::template`]`(0, path)`, which reads the answer.
    fn ask_staged(&mut self, path: &str) {
        if self.blobs.is_none() {
            self.blobs = BlobReader::spawn(&self.git).ok();
        }
        if let Some(blobs) = self.blobs.as_mut() {
            if blobs.ask(&format!(":{path}")).is_err() {
                self.blobs = None;
            }
        }
    }

    pub fn clean(&mut self, path: &str, input: &[u8]) -> Result<Vec<u8>, DriverError> {
        if is_configuration(path) {
            // The files that say what is protected are never transformed, whatever
            // the attributes say (`git sops init '*'` would otherwise encrypt them,
            // and every clone would lose its rules).
            if !self.warned_config {
                self.warned_config = true;
                self.notices.push(Notice::warning(
                    path,
                    "configures git-sops, so it is stored as it is although .gitattributes gives it filter=sops",
                ).hint(format!("add `{path} -filter -diff -merge` after that line")));
            }
            return Ok(input.to_vec());
        }
        // The staged blob is read once per request: it is both the known-blob
        // candidate and the first template. `git cat-file` looks it up while
        // `git check-attr` answers for the format (two round trips in parallel).
        // From the second clean of a process on (a `git status` after a
        // touch cleans every file), both come read ahead in batches.
        let ahead = match self.cleans {
            0 => self.ahead.one(path),
            _ => self.ahead.take(path),
        };
        self.cleans += 1;
        let (format, staged) = match ahead {
            Some(a) => (sops_type::from_attribute(path, &a.sops_type), a.staged),
            None => {
                self.ask_staged(path);
                let format = self.types.format(path);
                (format, self.template(0, path))
            }
        };
        let format = format?;
        if let Some(staged) = &staged {
            if self
                .known
                .as_ref()
                .is_some_and(|k| k.matches(staged, format, input))
            {
                return Ok(staged.clone());
            }
        }
        let identical = staged.as_deref() == Some(input);
        let out = match self.clean_changed(path, format, input, staged) {
            Ok(out) => out,
            // A committed file that cannot be read (pushed past the guard, or
            // from before it) must not make `git status`, `git stash` or every
            // later commit fail: unchanged, it is what git already holds.
            Err(_) if identical || self.template(1, path).as_deref() == Some(input) => {
                return Ok(input.to_vec());
            }
            Err(e) => return Err(e),
        };
        if let (true, Some(known)) = (self.one_shot, &self.known) {
            known.remember_cleaned(path, &out);
        }
        let pushed_out = self.cleaned.insert(path, out.clone(), None);
        if let (false, Some(known)) = (self.one_shot, &self.known) {
            for (path, blob) in pushed_out {
                known.remember_cleaned(&path, &blob);
            }
        }
        Ok(out)
    }

    fn clean_changed(
        &mut self,
        path: &str,
        format: Format,
        input: &[u8],
        staged: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, DriverError> {
        // Conflict markers left by the merge driver would not parse (or, in a
        // binary secret, would be stored as its content): name them.
        // The merge driver's encrypted conflict envelope (an encrypted working
        // tree keeps it on disk): a SOPS file, but not this file's content.
        if sops_file::conflict::is_conflict(input) {
            let shown = crate::drivers::shell_word(path);
            return Err(DriverError::new(
                path,
                "is an unresolved merge conflict (git-sops' encrypted conflict envelope); nothing was staged",
            )
            .hint(format!("run `git sops edit {shown}` to resolve the conflict markers, or take one side with `git checkout --ours -- {shown}` / `--theirs`, then `git add` it")));
        }
        if let Some(line) = conflict_markers(input) {
            return Err(DriverError::new(
                path,
                format!("has unresolved merge conflict markers (line {line}); nothing was staged"),
            )
            .hint("edit the file to keep the right values and remove the <<<<<<< ======= >>>>>>> lines, then `git add` it (or `git checkout --ours/--theirs` it)"));
        }
        if let Some(loaded) = self.as_sops_file(path, format, input)? {
            return self.clean_sops_file(path, input, loaded, staged);
        }
        self.warn_plaintext_on_disk(path, format);
        if let Some(out) = self.clean_with_templates(path, format, input, staged)? {
            return Ok(out);
        }
        // A new file: keys and selector from the creation rule for its path.
        let rule = self.creation_rule(path)?;
        let fail = |e: Error| {
            DriverError::new(path, format!("cannot encrypt it: {e}"))
                .hint("fix the file and run the git command again; git-sops never stores plaintext")
                .caused_by(e)
        };
        let spec = encrypt::EncryptSpec {
            key_groups: rule.key_groups,
            shamir_threshold: rule.shamir_threshold,
            selector: rule.selector,
            mac_only_encrypted: rule.mac_only_encrypted,
        };
        let new = match &self.keys_ahead {
            Some(pool) => encrypt::new_metadata_from(pool, &spec),
            None => encrypt::new_metadata(&spec),
        };
        let (key, mut meta) = new.map_err(fail)?;
        let out =
            file::seal(format, input, &key, &mut meta, &mut encrypt::FreshIvs).map_err(fail)?;
        self.keys.remember(&meta, &key);
        self.remember(&out, format, input);
        Ok(out)
    }

    /// Plaintext was handed to clean for a path whose working tree is meant to
    /// hold ciphertext only: it is encrypted for git as always, but the file on
    /// disk stays plaintext until it is checked out again; say so.
    fn warn_plaintext_on_disk(&mut self, path: &str, format: Format) {
        if self.in_memory
            || !matches!(
                self.types.mode_in(path, ""),
                Ok((WorktreeMode::Encrypted, _))
            )
        {
            return;
        }
        // git also cleans plaintext it made in memory (`git blame` cleans
        // the textconv of the working-tree file): only a file on disk that
        // really is plaintext is worth the warning.
        let on_disk = crate::git::worktree::read_file(&self.top, path);
        if on_disk.is_none_or(|b| file::load_as_configured(path, format, &b).is_some()) {
            return;
        }
        let shown = crate::drivers::shell_word(path);
        self.notices.push(
            Notice::warning(
                path,
                "is plaintext on disk in an encrypted working tree (sops.worktree / sops-worktree); git stores it encrypted, but the plaintext file stays until it is checked out again",
            )
            .hint(format!("after `git add`, run `git sops worktree encrypted` (or `rm {shown} && git checkout -- {shown}`); edit it with `git sops edit {shown}` next time")),
        );
    }

    /// The creation rule `.sops.yaml` has for `path` now.
    fn creation_rule(&self, path: &str) -> Result<config::Rule, DriverError> {
        let cfg = config::discover_from(&self.top)
            .map_err(|e| DriverError::new(path, format!("cannot encrypt a new protected file: {e}")))?
            .ok_or_else(|| {
                DriverError::new(path, "cannot encrypt a new protected file: there is no .sops.yaml with creation_rules")
                    .hint("create a .sops.yaml with a creation rule for this path (`git sops init` writes one)")
            })?;
        cfg.rule_for(&self.top.join(path).to_string_lossy())
            .map_err(|e| {
                DriverError::new(path, format!("cannot encrypt a new protected file: {e}"))
            })
    }

    /// Warn when a file is being encrypted for other keys than its creation rule
    /// names now: someone removed from `.sops.yaml` can still open the new values
    /// until `updatekeys` and `rotate` run.
    fn warn_on_drift(&mut self, path: &str, meta: &Metadata) {
        let Ok(rule) = self.creation_rule(path) else {
            return;
        };
        if let Some(change) = keygroups::drift(&meta.key_groups, &rule.key_groups) {
            let file = crate::drivers::shell_word(path);
            self.notices.push(
                Notice::warning(
                    path,
                    format!("is encrypted for other keys than its .sops.yaml creation rule names ({change}); the old keys still open what you commit"),
                )
                .hint(format!("run `git sops updatekeys -y {file}` and `git sops rotate -i {file}`")),
            );
        }
    }

    /// The selector of `path`'s creation rule (sops' default when the rule
    /// names none); `None` without a rule, or for a binary file (one value).
    fn rule_selector(&self, path: &str, format: Format) -> Option<Selector> {
        if format == Format::Binary {
            return None;
        }
        let rule = self.creation_rule(path).ok()?;
        Some(rule.selector.unwrap_or_else(Selector::default_suffix))
    }

    /// Encrypt an existing file under its creation rule's selector when the
    /// rule asks more of it than its own recorded selector, and the switch
    /// leaves nothing plaintext that was encrypted. When each selector
    /// encrypts something the other leaves plaintext, neither can be used
    /// safely: refuse, so that nothing the rule protects is committed plain.
    fn follow_rule_selector(
        &mut self,
        path: &str,
        format: Format,
        plaintext: &[u8],
        meta: &mut Metadata,
    ) -> Result<(), DriverError> {
        let Some(rule) = self.rule_selector(path, format) else {
            return Ok(());
        };
        let own = meta.effective_selector();
        if rule == own {
            return Ok(());
        }
        let Ok(doc) = std::str::from_utf8(plaintext)
            .map_err(|_| ())
            .and_then(|t| format.store().parse(t).map_err(|_| ()))
        else {
            return Ok(()); // sealing reports what is wrong with the text
        };
        let (only_rule, only_own) = form::selector_difference(&doc, &rule, &own);
        if only_rule == 0 {
            return Ok(());
        }
        let describe = |s: &Selector| format!("{} {:?}", s.field_name(), s.pattern());
        if only_own == 0 {
            self.notices.push(Notice::new(
                Level::Note,
                path,
                format!(
                    "encrypted under its .sops.yaml creation rule's selector ({}) instead of its own ({}), which left {only_rule} value(s) the rule encrypts in plaintext",
                    describe(&rule),
                    describe(&own)
                ),
            ));
            meta.selector = (rule != Selector::default_suffix()).then_some(rule);
            return Ok(());
        }
        Err(DriverError::new(
            path,
            format!(
                "its own selector ({}) leaves {only_rule} value(s) in plaintext that its .sops.yaml creation rule's selector ({}) encrypts, and the rule's leaves {only_own} in plaintext that the file encrypts; nothing was staged",
                describe(&own),
                describe(&rule)
            ),
        )
        .hint("make one selector cover the other (for example widen the rule's encrypted_regex in .sops.yaml), then `git add` again"))
    }

    /// `input` as a SOPS file, when it is one; `None` when it is plaintext to
    /// encrypt. What is neither (a reserved `sops` entry that is not metadata,
    /// ciphertext without its metadata) is refused: storing it would store
    /// plaintext, and encrypting it would bury ciphertext nobody can open.
    fn as_sops_file(
        &self,
        path: &str,
        format: Format,
        input: &[u8],
    ) -> Result<Option<file::Loaded>, DriverError> {
        if format == Format::Binary {
            return Ok(file::load_as_configured(path, format, input));
        }
        let text = std::str::from_utf8(input).map_err(|_| {
            DriverError::new(
                path,
                format!("not UTF-8 text, so it cannot be encrypted as {}; nothing was staged", format.name()),
            )
            .hint("set `sops-type=binary` for this path in .gitattributes to store it as a binary secret")
        })?;
        let doc = format.store().parse(text).map_err(|e| {
            DriverError::new(path, format!("cannot encrypt it: {e}"))
                .hint("fix the file and run the git command again; git-sops never stores plaintext")
                .caused_by(e.into())
        })?;
        if file::has_metadata(&doc) {
            return match file::read(format, text) {
                Ok(loaded) => Ok(Some(loaded)),
                Err(e) => Err(DriverError::new(
                    path,
                    format!("has a top-level `sops` entry{}, which is reserved for SOPS metadata, but it is not valid metadata ({e}); nothing was staged", match format {
                        Format::Dotenv | Format::Ini => " (`sops_...` keys)",
                        _ => "",
                    }),
                )
                .hint(format!("if this was an encrypted file, restore it with `git checkout -- {}` and make your change again; otherwise rename that key", crate::drivers::shell_word(path)))),
            };
        }
        if let Some((line, key)) = form::first_enc_value(&doc) {
            return Err(DriverError::new(
                path,
                format!("line {line}: the value at {key} is SOPS ciphertext, but the file has no `sops` metadata, so nobody could decrypt it; nothing was staged"),
            )
            .hint(format!("the metadata block was removed: restore the file with `git checkout -- {}` and make your change again", crate::drivers::shell_word(path))));
        }
        Ok(None)
    }

    /// Clean a file that already is a SOPS file (a locked working tree, or a
    /// file encrypted by sops). It is stored as it is only when its form is
    /// intact (every entry its own rules encrypt is `ENC[...]`) and, where a key
    /// opens it, its MAC verifies. Plaintext entries in it are encrypted with
    /// its own data key when there is a key, and refused when there is none.
    fn clean_sops_file(
        &mut self,
        path: &str,
        input: &[u8],
        loaded: file::Loaded,
        staged: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, DriverError> {
        let format = loaded.format();
        // Exactly what git already holds adds nothing to the object store, and a
        // damaged committed file must not make `git status` fail; only plaintext
        // entries that a key can encrypt are worth a new blob then.
        let identical =
            staged.as_deref() == Some(input) || self.template(1, path).as_deref() == Some(input);
        let (doc, _) = loaded.document();
        let mut problems = form::check(doc, &loaded.meta, 0, 16);
        // What its creation rule encrypts must be encrypted too, whatever the
        // file's own selector says (a "template" that leaves `password` plain).
        if let Some(rule) = self.rule_selector(path, loaded.format()) {
            if rule != loaded.meta.effective_selector() {
                problems.extend(form::unencrypted(doc, &rule, 16).0);
            }
        }
        let key = self.keys.recover(&loaded.meta, &self.keyring).ok();
        let shown = crate::drivers::shell_word(path);
        let plaintext: Vec<&form::Problem> = problems
            .iter()
            .filter(|p| {
                matches!(
                    p.kind,
                    form::ProblemKind::PlaintextValue | form::ProblemKind::PlaintextComment
                )
            })
            .collect();
        if let Some(p) = problems.iter().find(|p| {
            matches!(
                p.kind,
                form::ProblemKind::MalformedValue | form::ProblemKind::BadMac
            )
        }) {
            if identical {
                return Ok(input.to_vec());
            }
            return Err(DriverError::new(
                path,
                format!(
                    "is a damaged SOPS file: {}{}; nothing was staged",
                    describe_at(p),
                    p.what
                ),
            )
            .hint(format!(
                "restore it with `git checkout HEAD -- {shown}` and make your change again"
            )));
        }
        let Some(key) = key else {
            if let (Some(p), false) = (plaintext.first(), identical) {
                return Err(DriverError::new(
                    path,
                    format!(
                        "you added or changed a value in a file you cannot decrypt ({}{}); nothing was staged",
                        describe_at(p),
                        p.what
                    ),
                )
                .hint(format!("ask someone who holds one of its keys to make the change, or see `git sops status`; `git checkout -- {shown}` undoes yours")));
            }
            // Locked: intact ciphertext is stored as it is.
            return Ok(input.to_vec());
        };
        if plaintext.is_empty() {
            if identical {
                return Ok(input.to_vec());
            }
            return match loaded.open(&key) {
                Ok(opened) => {
                    self.remember(input, format, &opened.plaintext);
                    Ok(input.to_vec())
                }
                Err(e) => Err(DriverError::new(
                    path,
                    format!("the SOPS file does not authenticate: {e}; nothing was staged"),
                )
                .hint(format!("a value was edited inside its ENC[...] or taken from another version; restore the file with `git checkout HEAD -- {shown}` and make your change again"))
                .caused_by(e)),
            };
        }
        // A key holder's ciphertext with new plaintext entries: encrypt them with
        // the file's own data key; every other value keeps its ciphertext.
        let opened = loaded.open_with(&key, Check::Mixed).map_err(|e| {
            DriverError::new(
                path,
                format!("cannot encrypt its plaintext values: {e}; nothing was staged"),
            )
            .hint(format!(
                "restore it with `git checkout HEAD -- {shown}` and make your change again"
            ))
            .caused_by(e)
        })?;
        // Already staged that way (`git status` cleans the same working tree
        // again): the same blob, not a new encryption of the new entries.
        if let Some(blob) = self
            .templates(path, format, &opened.plaintext, staged)
            .exact
        {
            // (Not the input itself: its plaintext entries are what needs encrypting.)
            if blob != input {
                return Ok(blob);
            }
        }
        let mut meta = loaded.meta.clone();
        self.follow_rule_selector(path, format, &opened.plaintext, &mut meta)?;
        let mut ivs = opened.ivs;
        let out = file::seal(format, &opened.plaintext, &key, &mut meta, &mut ivs)
            .map_err(|e| DriverError::new(path, format!("cannot encrypt it: {e}")).caused_by(e))?;
        self.notices.push(Notice::new(
            Level::Note,
            path,
            format!(
                "encrypted {} plaintext entr{} found in the SOPS file",
                plaintext.len(),
                if plaintext.len() == 1 { "y" } else { "ies" }
            ),
        ));
        self.warn_on_drift(path, &meta);
        self.remember(&out, format, &opened.plaintext);
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
        staged: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, DriverError> {
        let found = self.templates(path, format, input, staged);
        if let Some(blob) = found.exact {
            return Ok(Some(blob));
        }
        if let Some((mut meta, key, mut ivs)) = found.usable {
            // Same data key and recipients; unchanged values keep their IVs.
            self.follow_rule_selector(path, format, input, &mut meta)?;
            let out = file::seal(format, input, &key, &mut meta, &mut ivs).map_err(|e| {
                DriverError::new(path, format!("cannot encrypt it: {e}")).caused_by(e)
            })?;
            self.warn_on_drift(path, &meta);
            self.remember(&out, format, input);
            return Ok(Some(out));
        }
        // No key for the previous version (a locked clone that replaced the file
        // with plaintext): a new data key for the same recipients.
        match found.locked {
            Some(meta) => self.reencrypt_for(path, format, input, &meta).map(Some),
            None => Ok(None),
        }
    }

    /// Go through the previous versions of the file (see [`Filter::template`])
    /// until one decrypts to `plaintext` exactly.
    fn templates(
        &mut self,
        path: &str,
        format: Format,
        plaintext: &[u8],
        mut staged: Option<Vec<u8>>,
    ) -> Templates {
        let mut found = Templates::default();
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for which in 0..4 {
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
            if sops_file::conflict::is_conflict(&template) {
                continue; // its one value is no template for the file's values
            }
            let Some(loaded) = file::load(format, &template) else {
                continue;
            };
            let Ok(key) = self.keys.recover(&loaded.meta, &self.keyring) else {
                found.locked.get_or_insert(loaded.meta);
                continue;
            };
            // A damaged previous version is no template (its recipients still are).
            let Ok(opened) = loaded.open(&key) else {
                found.locked.get_or_insert(loaded.meta);
                continue;
            };
            if opened.plaintext.as_slice() == plaintext {
                self.remember(&template, format, plaintext);
                found.exact = Some(template);
                return found;
            }
            found.usable.get_or_insert((loaded.meta, key, opened.ivs));
        }
        found
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
            .map(|g| g.iter().map(Recipient::from).collect())
            .collect();
        let fail = |e: Error| {
            DriverError::new(path, format!("cannot encrypt it for its recipients: {e}"))
                .caused_by(e)
        };
        let (key, key_groups, threshold) = self
            .wrap_new(&groups, previous.shamir_threshold)
            .map_err(|e| fail(e.into()))?;
        let mut meta = Metadata {
            key_groups,
            shamir_threshold: threshold,
            ..previous.clone()
        };
        self.follow_rule_selector(path, format, input, &mut meta)?;
        let out =
            file::seal(format, input, &key, &mut meta, &mut encrypt::FreshIvs).map_err(fail)?;
        self.warn_on_drift(path, &meta);
        self.keys.remember(&meta, &key);
        self.remember(&out, format, input);
        Ok(out)
    }

    pub fn smudge(&mut self, path: &str, input: &[u8]) -> Result<Smudged, DriverError> {
        // An encrypted working tree (`worktree_mode`): the ciphertext, and a
        // merge conflict's envelope, go to disk as they are, key or not. Checked
        // first, so no plaintext is ever made for such a path.
        if self.types.mode_in(path, &self.treeish)?.0 == WorktreeMode::Encrypted {
            return Ok(Smudged::Unchanged);
        }
        self.decrypt(path, input)
    }

    /// What smudge does in a plaintext working tree: the plaintext of a blob
    /// a key opens (in memory; `git sops add -p` uses it in either mode).
    pub(crate) fn decrypt(&mut self, path: &str, input: &[u8]) -> Result<Smudged, DriverError> {
        // A merge conflict (see `merge`): the text with conflict markers goes to the
        // working tree. It is never a clean template; clean falls back to HEAD.
        if let Some(opened) = sops_file::conflict::open_conflict(input, &self.keys, &self.keyring) {
            return Ok(match opened {
                Ok(text) => Smudged::Plaintext(text),
                Err(_) => Smudged::Unchanged,
            });
        }
        let format = self.types.format_in(path, &self.treeish)?;
        let Some(loaded) = file::load(format, input) else {
            if let Some(other) = file::sniff(path, input) {
                self.notices.push(
                    Notice::warning(
                        path,
                        format!(
                            "holds a SOPS {} file, but git-sops reads this path as {}, so it stays encrypted",
                            other.format().name(),
                            format.name(),
                        ),
                    )
                    .hint(format!("set `sops-type={}` for it in .gitattributes", other.format().name())),
                );
            } else if let Some(why) = file::why_unreadable(format, input) {
                self.notices.push(Notice::warning(
                    path,
                    format!("looks like a SOPS file but cannot be read ({why}); it is checked out as it is"),
                ));
            }
            return Ok(Smudged::Unchanged);
        };
        let key = match self.keys.recover(&loaded.meta, &self.keyring) {
            Ok(key) => key,
            Err(_) => {
                if !self.warned_locked {
                    self.warned_locked = true;
                    self.notices.push(
                        Notice::warning(
                            path,
                            "no key to decrypt it; it (and any other such file) stays encrypted in the working tree",
                        )
                        .hint("`git sops status` shows which key opens it"),
                    );
                }
                return Ok(Smudged::Unchanged);
            }
        };
        let opened = match loaded.open(&key) {
            Ok(opened) => opened,
            Err(e) => {
                // One damaged file must not stop the checkout of every other one:
                // it stays ciphertext, and `git sops status` lists it as damaged.
                self.notices.push(
                    Notice::new(
                        Level::Error,
                        path,
                        format!("the committed file does not authenticate ({e}); it stays encrypted in the working tree"),
                    )
                    .hint(format!(
                        "it was changed outside git-sops/sops (a partial `git add -p`, or an edit inside ENC[...]); restore a good version with `git checkout <commit> -- {}` and commit it",
                        crate::drivers::shell_word(path)
                    )),
                );
                return Ok(Smudged::Unchanged);
            }
        };
        let object = std::mem::take(&mut self.smudge_blob);
        self.smudged.insert(path, input.to_vec(), Some(&object));
        self.remember(input, format, &opened.plaintext);
        Ok(Smudged::Plaintext(opened.plaintext))
    }
}

/// How long a one-shot clean's result stands for a second clean of the same
/// file: long enough for the two cleans of one `git commit PATH`, too short to
/// carry an old data key over to a file re-created later.
const ONE_COMMAND: std::time::Duration = std::time::Duration::from_secs(5);

/// Files that configure git-sops or git itself: never transformed by clean.
pub(crate) fn is_configuration(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        ".gitattributes" | ".gitignore" | ".gitmodules" | ".mailmap" | ".sops.yaml"
    )
}

/// "line N, KEY: " for a message about one problem of the form.
fn describe_at(p: &form::Problem) -> String {
    let mut at = String::new();
    if p.line > 0 {
        at.push_str(&format!("line {}", p.line));
    }
    if let Some(k) = &p.key_path {
        if !at.is_empty() {
            at.push_str(", ");
        }
        at.push_str(k);
    }
    if !at.is_empty() {
        at.push_str(": ");
    }
    at
}

/// The line of the first `<<<<<<<` marker of a complete conflict block
/// (`<<<<<<<`, `=======`, `>>>>>>>` lines in that order), if any.
pub(crate) fn conflict_markers(input: &[u8]) -> Option<usize> {
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
