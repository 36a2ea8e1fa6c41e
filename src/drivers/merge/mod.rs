//! The merge driver, `git-sops merge %O %A %B %L %P` (`merge.sops.driver`).
//!
//! git hands the driver the three stages in repository form, i.e. ciphertext, as
//! temporary files; what it leaves in `%A` is stored as the merged blob and then
//! smudged into the working tree. Exit 0 means merged, anything else a conflict.
//!
//! * Byte-level fast paths first, which need no key (so a locked clone merges
//!   whatever only one side changed): ours == theirs or theirs == base keeps ours,
//!   ours == base takes theirs.
//! * Otherwise all three are decrypted and their plaintexts merged line by line
//!   ([`diff3`], in memory: no plaintext temp file). A clean result must parse as
//!   the file's format; it is encrypted with ours' data key and metadata (theirs'
//!   when only theirs changed the keys or settings, e.g. `git sops rotate` on their
//!   branch), re-using the IV of every value either side already had, so values
//!   neither side changed keep their exact `ENC[...]` text and only edited
//!   values, `mac` and `lastmodified` change.
//! * A conflict never puts plaintext in `%A` (git stores it even then): the
//!   merged text with conflict markers goes into an encrypted conflict envelope
//!   ([`envelope`]) that smudge turns into the marked-up plaintext (an
//!   encrypted working tree keeps the envelope on disk, and `git sops edit`
//!   shows the markers in memory). Without a key,
//!   or for a binary file whose contents are not text, `%A` keeps ours.

pub mod diff3;

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::{DriverError, Notice};
use crate::cache::data_keys::key_cache;
use crate::cache::CacheDir;
use crate::git::Git;
use sops_file::datakey::DataKey;
use sops_file::file::{self, Loaded, Opened};
use sops_file::formats::Format;
use sops_file::keycache::{fingerprint, KeyCache};
use sops_file::keygroups::Keyring;
use sops_file::metadata::Metadata;

use sops_file::conflict::{self as envelope, open_conflict};

/// What git passes to the driver.
#[derive(Clone, Debug)]
pub struct Request {
    /// `%O`: the common ancestor's blob (an empty file when there is none).
    pub base: PathBuf,
    /// `%A`: ours; the result is written here.
    pub ours: PathBuf,
    /// `%B`: theirs.
    pub theirs: PathBuf,
    /// `%L`: the conflict-marker length.
    pub(crate) marker_size: usize,
    /// `%P`: the path in the repository.
    pub path: String,
    /// `%X` / `%Y`: labels for the conflict markers (`ours` / `theirs` without them).
    pub(crate) ours_label: Option<String>,
    pub(crate) theirs_label: Option<String>,
}

/// How a merge ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Merged,
    /// Not merged: what happened and what to do (one line, without the path).
    Conflict(String),
}

/// What the merge driver did, and what it has to tell the user.
#[derive(Debug, PartialEq, Eq)]
pub struct Merge {
    pub outcome: Outcome,
    pub notices: Vec<Notice>,
}

/// The three versions of the file (ciphertext, as git stores them).
pub(crate) struct Inputs<'a> {
    pub base: &'a [u8],
    pub ours: &'a [u8],
    pub theirs: &'a [u8],
}

/// What the driver decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// The new content of `%A`; `None` leaves ours in place.
    pub write: Option<Vec<u8>>,
    /// `Some(message)` when the merge conflicts.
    pub conflict: Option<String>,
    /// Things to tell the user about a merge that succeeded.
    pub warnings: Vec<String>,
}

impl Resolution {
    fn keep_ours() -> Resolution {
        Resolution {
            write: None,
            conflict: None,
            warnings: Vec::new(),
        }
    }

    fn write(bytes: &[u8]) -> Resolution {
        Resolution {
            write: Some(bytes.to_vec()),
            ..Resolution::keep_ours()
        }
    }

    /// A conflict that leaves ours in `%A`.
    fn conflict_keeping_ours(message: String) -> Resolution {
        Resolution {
            conflict: Some(message),
            ..Resolution::keep_ours()
        }
    }
}

/// Run the driver: read the stages, merge, write `%A`.
pub fn run(git: &Git, req: &Request) -> Result<Merge, DriverError> {
    let path = req.path.as_str();
    let read = |p: &PathBuf, what: &str| {
        std::fs::read(p).map_err(|e| {
            DriverError::new(
                path,
                format!("cannot read {what} version ({}): {e}", p.display()),
            )
            .hint("git passes the merge driver `%O %A %B %L %P`; check merge.sops.driver (`git sops install` writes it)")
        })
    };
    // No common ancestor: git passes an empty file (or, some callers, none).
    let base = match std::fs::metadata(&req.base) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        _ => read(&req.base, "the common ancestor's")?,
    };
    let ours = read(&req.ours, "our")?;
    let theirs = read(&req.theirs, "their")?;
    let format = crate::drivers::filter::sops_type::format_for(git, path)?;
    let markers = diff3::Markers {
        size: req.marker_size,
        ours: label(req.ours_label.as_deref(), "ours"),
        theirs: label(req.theirs_label.as_deref(), "theirs"),
    };
    let inputs = Inputs {
        base: &base,
        ours: &ours,
        theirs: &theirs,
    };
    let keys = key_cache(CacheDir::of(git).as_ref());
    let resolution = resolve(format, &inputs, &keys, &Keyring::new(), &markers);
    let notices = resolution
        .warnings
        .iter()
        .map(|w| Notice::warning(path, w.as_str()))
        .collect();
    if let Some(bytes) = &resolution.write {
        std::fs::write(&req.ours, bytes).map_err(|e| {
            DriverError::new(
                path,
                format!(
                    "cannot write the merge result to {}: {e}",
                    req.ours.display()
                ),
            )
        })?;
    }
    let outcome = match resolution.conflict {
        Some(message) => {
            let message = if crate::worktree_mode::is_encrypted(git, path) {
                message.replace(MARKERS_IN_WORKTREE, MARKERS_ENCRYPTED)
            } else {
                message
            };
            Outcome::Conflict(message.replace("PATH", &super::shell_word(path)))
        }
        None => Outcome::Merged,
    };
    Ok(Merge { outcome, notices })
}

/// A marker label from git (`%X`/`%Y`); git before 2.44 passes the placeholder itself.
fn label<'a>(given: Option<&'a str>, default: &'a str) -> &'a str {
    match given {
        Some(l) if !(l.is_empty() || l.len() == 2 && l.starts_with('%')) => l,
        _ => default,
    }
}

/// One side, decrypted.
struct Side<'a> {
    bytes: &'a [u8],
    loaded: Loaded,
    key: DataKey,
    opened: Opened,
}

/// A file's keys and settings, without what every re-encryption changes.
fn settings(meta: &Metadata) -> Metadata {
    Metadata {
        lastmodified: String::new(),
        mac: String::new(),
        version: String::new(),
        ..meta.clone()
    }
}

/// Where the conflict markers of a conflict envelope end up, as smudge
/// writes it in a plaintext working tree ...
const MARKERS_IN_WORKTREE: &str =
    "the working tree copy has conflict markers: edit it, then `git add PATH`";
/// ... and in an encrypted one, which keeps the envelope as it is.
const MARKERS_ENCRYPTED: &str = "the conflict stays encrypted in the working tree: resolve the markers with `git sops edit PATH`, then `git add PATH`";

const TAKE_A_SIDE: &str = "take one side with `git checkout --ours -- PATH` or `git checkout --theirs -- PATH`, then `git add PATH`";

/// Decide the merge of `inputs` for a file of `format`; pure apart from key
/// recovery (no file is read or written). Messages say `PATH` for the path.
pub(crate) fn resolve(
    format: Format,
    inputs: &Inputs,
    keys: &KeyCache,
    keyring: &Keyring,
    markers: &diff3::Markers,
) -> Resolution {
    let Inputs { base, ours, theirs } = *inputs;
    if ours == theirs || theirs == base {
        return Resolution::keep_ours();
    }
    if ours == base {
        return Resolution::write(theirs);
    }
    let what = if format == Format::Binary {
        "a SOPS binary file".to_string()
    } else {
        format!("a SOPS {} file", format.name())
    };
    let (lo, lt) = match (file::load(format, ours), file::load(format, theirs)) {
        (Some(lo), Some(lt)) => (lo, lt),
        (o, _) => {
            let side = if o.is_none() { "our" } else { "their" };
            return Resolution::conflict_keeping_ours(format!(
                "both sides changed it, and {side} version is not {what} (committed without the git-sops filter?), so it cannot be merged by value; the working tree keeps our version. Merge it by hand, or {}",
                TAKE_A_SIDE
            ));
        }
    };
    let locked = |side: &str| {
        Resolution::conflict_keeping_ours(format!(
            "both sides changed it and no key available here opens {side} version, so it cannot be merged; the working tree keeps our version, still encrypted. Merge where a key is available (`git sops status` shows which keys open it), or {}",
            TAKE_A_SIDE
        ))
    };
    let Ok(key_ours) = keys.recover(&lo.meta, keyring) else {
        return locked("our");
    };
    let key_theirs = if fingerprint(&lt.meta) == fingerprint(&lo.meta) {
        key_ours.clone()
    } else {
        match keys.recover(&lt.meta, keyring) {
            Ok(k) => k,
            Err(_) => return locked("their"),
        }
    };
    let open = |loaded: &Loaded, key: &DataKey, side: &str| {
        loaded.open(key).map_err(|e| {
            Resolution::conflict_keeping_ours(format!(
                "{side} version cannot be decrypted ({e}); the working tree keeps our version. Inspect it with `git show`, or {}",
                TAKE_A_SIDE
            ))
        })
    };
    let oo = match open(&lo, &key_ours, "our") {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ot = match open(&lt, &key_theirs, "their") {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ours = Side {
        bytes: ours,
        loaded: lo,
        key: key_ours,
        opened: oo,
    };
    let theirs = Side {
        bytes: theirs,
        loaded: lt,
        key: key_theirs,
        opened: ot,
    };
    let (base_plain, base_meta) = open_base(format, base, keys, keyring);
    merge_sides(format, &what, ours, theirs, &base_plain, base_meta, markers)
}

/// The base's plaintext and metadata. No base, or one that cannot be opened,
/// gives an empty text (a two-way merge: only what both sides agree on merges).
/// A base that is a conflict envelope (git's virtual merge base of a criss-cross
/// merge) gives its text with markers, as git uses; a base that is not SOPS
/// (the file before it was encrypted) is its own plaintext.
fn open_base(
    format: Format,
    base: &[u8],
    keys: &KeyCache,
    keyring: &Keyring,
) -> (Zeroizing<Vec<u8>>, Option<Metadata>) {
    if base.is_empty() {
        return (Zeroizing::new(Vec::new()), None);
    }
    if let Some(opened) = open_conflict(base, keys, keyring) {
        return (opened.unwrap_or_default(), None);
    }
    match file::load(format, base) {
        Some(lb) => {
            let plain = keys
                .recover(&lb.meta, keyring)
                .ok()
                .and_then(|key| lb.open(&key).ok())
                .map(|o| o.plaintext)
                .unwrap_or_default();
            (plain, Some(lb.meta))
        }
        None => (Zeroizing::new(base.to_vec()), None),
    }
}

fn merge_sides(
    format: Format,
    what: &str,
    ours: Side,
    theirs: Side,
    base: &[u8],
    base_meta: Option<Metadata>,
    markers: &diff3::Markers,
) -> Resolution {
    let mut warnings = Vec::new();
    // Whose data key and metadata the result gets.
    let (s_ours, s_theirs) = (settings(&ours.loaded.meta), settings(&theirs.loaded.meta));
    let use_theirs = match &base_meta {
        Some(b) => {
            let s_base = settings(b);
            let (ours_changed, theirs_changed) = (s_ours != s_base, s_theirs != s_base);
            if ours_changed && theirs_changed && s_ours != s_theirs {
                warnings.push("both sides changed its keys or settings (e.g. `git sops updatekeys` or `rotate` on both branches); the merge keeps ours. Run `git sops updatekeys` on it if .sops.yaml names other keys".to_string());
            }
            theirs_changed && !ours_changed
        }
        None => false,
    };
    let (chosen, other) = if use_theirs {
        (theirs, ours)
    } else {
        (ours, theirs)
    };
    let (p_ours, p_theirs) = if use_theirs {
        (&other.opened.plaintext, &chosen.opened.plaintext)
    } else {
        (&chosen.opened.plaintext, &other.opened.plaintext)
    };
    // A conflict is always written with ours' key and metadata.
    let (ours_key, ours_meta) = if use_theirs {
        (other.key.clone(), other.loaded.meta.clone())
    } else {
        (chosen.key.clone(), chosen.loaded.meta.clone())
    };

    let merged: Zeroizing<Vec<u8>> = if p_ours == p_theirs || p_theirs.as_slice() == base {
        p_ours.clone()
    } else if p_ours.as_slice() == base {
        p_theirs.clone()
    } else {
        let text = |b: &[u8]| std::str::from_utf8(b).is_ok();
        if format == Format::Binary && !(text(base) && text(p_ours) && text(p_theirs)) {
            return Resolution::conflict_keeping_ours(format!(
                "both sides changed this binary file, which is not text, so it cannot be merged line by line; the working tree keeps our version. {}",
                capitalise(TAKE_A_SIDE)
            ));
        }
        let m = diff3::merge3(base, p_ours, p_theirs, markers);
        if m.conflicts > 0 {
            return conflict_envelope(
                &m.text,
                &ours_key,
                &ours_meta,
                format!(
                    "both sides changed the same lines ({} conflict{}); {MARKERS_IN_WORKTREE}",
                    m.conflicts,
                    if m.conflicts == 1 { "" } else { "s" }
                ),
            );
        }
        m.text
    };

    // Unchanged plaintext under the chosen keys: that version, byte for byte.
    if merged.as_slice() == chosen.opened.plaintext.as_slice() {
        return Resolution {
            write: use_theirs.then(|| chosen.bytes.to_vec()),
            conflict: None,
            warnings,
        };
    }
    if merged.as_slice() == other.opened.plaintext.as_slice()
        && other.key.bytes() == chosen.key.bytes()
        && settings(&other.loaded.meta) == settings(&chosen.loaded.meta)
    {
        return Resolution {
            write: (!use_theirs).then(|| other.bytes.to_vec()),
            conflict: None,
            warnings,
        };
    }
    let mut meta = chosen.loaded.meta.clone();
    let Side {
        key,
        opened: Opened { ivs: mut stash, .. },
        ..
    } = chosen;
    if other.key.bytes() == key.bytes() {
        stash.absorb(other.opened.ivs);
    }
    match file::seal(format, &merged, &key, &mut meta, &mut stash) {
        Ok(bytes) => Resolution {
            write: Some(bytes),
            conflict: None,
            warnings,
        },
        Err(e) => conflict_envelope(
            &merged,
            &ours_key,
            &ours_meta,
            format!(
                "the changes merge line by line, but the result is not {what} ({e}); the working tree copy holds that result: fix it, then `git add PATH`"
            ),
        ),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A conflict whose text goes into `%A` encrypted (never as plaintext).
fn conflict_envelope(text: &[u8], key: &DataKey, meta: &Metadata, message: String) -> Resolution {
    match envelope::seal(text, key, meta) {
        Ok(bytes) => Resolution {
            write: Some(bytes),
            conflict: Some(message),
            warnings: Vec::new(),
        },
        Err(e) => Resolution::conflict_keeping_ours(format!(
            "both sides changed it and the conflict could not be written encrypted ({e}); the working tree keeps our version. {}",
            capitalise(TAKE_A_SIDE)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sops_file::conflict::is_conflict;
    use sops_file::encrypt::FreshIvs;
    use sops_file::metadata::{AgeKey, MasterKey};
    use sops_file::selectors::Selector;

    /// Metadata for a data key "wrapped" as `wrapped` (the tests never unwrap:
    /// the key cache is told the key).
    fn meta(wrapped: &str) -> Metadata {
        Metadata {
            key_groups: vec![vec![MasterKey::Age(AgeKey {
                recipient: "age1test".into(),
                enc: format!(
                    "-----BEGIN AGE ENCRYPTED FILE-----\n{wrapped}\n-----END AGE ENCRYPTED FILE-----\n"
                ),
            })]],
            shamir_threshold: 0,
            lastmodified: String::new(),
            mac: String::new(),
            selector: Some(Selector::default_suffix()),
            mac_only_encrypted: false,
            version: "3.11.0".into(),
        }
    }

    struct Keys {
        cache: KeyCache,
    }

    impl Keys {
        fn new() -> Keys {
            Keys {
                cache: KeyCache::default(),
            }
        }

        /// Encrypt `text` afresh under the key named `k`.
        fn encrypt(&self, format: Format, text: &str, k: u8) -> Vec<u8> {
            let key = DataKey::from_bytes([k; 32]);
            let mut m = meta(&format!("key{k}"));
            self.cache.remember(&m, &key);
            file::seal(format, text.as_bytes(), &key, &mut m, &mut FreshIvs).unwrap()
        }

        /// Re-encrypt `previous` with `text`, keeping its key and IVs (what clean does).
        fn edit(&self, format: Format, previous: &[u8], text: &str) -> Vec<u8> {
            let loaded = file::load(format, previous).unwrap();
            let key = self.cache.recover(&loaded.meta, &Keyring::new()).unwrap();
            let mut ivs = loaded.open(&key).unwrap().ivs;
            let mut m = loaded.meta.clone();
            file::seal(format, text.as_bytes(), &key, &mut m, &mut ivs).unwrap()
        }

        fn decrypt(&self, format: Format, blob: &[u8]) -> String {
            let loaded = file::load(format, blob).unwrap();
            let key = self.cache.recover(&loaded.meta, &Keyring::new()).unwrap();
            String::from_utf8(loaded.open(&key).unwrap().plaintext.to_vec()).unwrap()
        }

        fn resolve(&self, format: Format, base: &[u8], ours: &[u8], theirs: &[u8]) -> Resolution {
            resolve(
                format,
                &Inputs { base, ours, theirs },
                &self.cache,
                &Keyring::new(),
                &diff3::Markers::default(),
            )
        }
    }

    fn encs(blob: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(blob)
            .split("ENC[")
            .skip(1)
            .map(|s| s.split(']').next().unwrap().to_string())
            .collect()
    }

    const BASE: &str = "a: one\nb: two\nc: three\nd: four\n";

    #[test]
    fn fast_paths_compare_bytes_and_need_no_key() {
        let k = Keys::new();
        let base = k.encrypt(Format::Yaml, BASE, 1);
        let other = k.encrypt(Format::Yaml, "a: x\n", 1);
        let locked = KeyCache::default();
        let run = |o: &[u8], a: &[u8], b: &[u8]| {
            resolve(
                Format::Yaml,
                &Inputs {
                    base: o,
                    ours: a,
                    theirs: b,
                },
                &locked,
                &Keyring::new(),
                &diff3::Markers::default(),
            )
        };
        assert_eq!(run(&base, &base, &other), Resolution::write(&other));
        assert_eq!(run(&base, &other, &base), Resolution::keep_ours());
        assert_eq!(run(&base, &other, &other), Resolution::keep_ours());
        let r = run(&base, &other, &k.encrypt(Format::Yaml, "a: y\n", 1));
        assert_eq!(r.write, None);
        assert!(r
            .conflict
            .unwrap()
            .contains("no key available here opens our version"));
    }

    #[test]
    fn values_keep_the_ciphertext_of_the_side_that_has_them() {
        let k = Keys::new();
        let base = k.encrypt(Format::Yaml, BASE, 1);
        let ours = k.edit(Format::Yaml, &base, "a: ONE\nb: two\nc: three\nd: four\n");
        let theirs = k.edit(Format::Yaml, &base, "a: one\nb: two\nc: three\nd: FOUR\n");
        let r = k.resolve(Format::Yaml, &base, &ours, &theirs);
        assert_eq!(r.conflict, None);
        let merged = r.write.unwrap();
        assert_eq!(
            k.decrypt(Format::Yaml, &merged),
            "a: ONE\nb: two\nc: three\nd: FOUR\n"
        );
        let (m, o, t) = (encs(&merged), encs(&ours), encs(&theirs));
        // a from ours, b and c from both, d from theirs; only the MAC is new.
        assert_eq!(
            m[..4],
            [o[0].clone(), o[1].clone(), o[2].clone(), t[3].clone()]
        );
    }

    #[test]
    fn a_result_equal_to_ours_is_ours_byte_for_byte() {
        let k = Keys::new();
        let base = k.encrypt(Format::Yaml, BASE, 1);
        let ours = k.edit(Format::Yaml, &base, "a: ONE\nb: two\nc: three\nd: four\n");
        // Theirs re-encrypted the same plaintext (e.g. a fresh clean).
        let theirs = k.encrypt(Format::Yaml, BASE, 1);
        assert_ne!(theirs, base);
        assert_eq!(
            k.resolve(Format::Yaml, &base, &ours, &theirs),
            Resolution::keep_ours()
        );
    }

    #[test]
    fn only_their_new_key_wins_and_both_new_keys_keep_ours() {
        let k = Keys::new();
        let base = k.encrypt(Format::Yaml, BASE, 1);
        let ours = k.edit(Format::Yaml, &base, "a: ONE\nb: two\nc: three\nd: four\n");
        let rotated = k.encrypt(Format::Yaml, BASE, 2);
        let r = k.resolve(Format::Yaml, &base, &ours, &rotated);
        assert_eq!((r.conflict.as_deref(), r.warnings.len()), (None, 0));
        let merged = r.write.unwrap();
        assert_eq!(
            k.decrypt(Format::Yaml, &merged),
            "a: ONE\nb: two\nc: three\nd: four\n"
        );
        let loaded = file::load(Format::Yaml, &merged).unwrap();
        assert_eq!(fingerprint(&loaded.meta), fingerprint(&meta("key2")));
        let (m, t) = (encs(&merged), encs(&rotated));
        assert_eq!(m[1..4], t[1..4]);
        // Their rotation against ours: ours wins, with a warning.
        let ours_rotated = k.encrypt(Format::Yaml, "a: ONE\nb: two\nc: three\nd: four\n", 3);
        let r = k.resolve(Format::Yaml, &base, &ours_rotated, &rotated);
        assert_eq!(r.write, None);
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn conflicts_are_encrypted_with_ours_key() {
        let k = Keys::new();
        let base = k.encrypt(Format::Yaml, BASE, 1);
        let ours = k.edit(Format::Yaml, &base, "a: mine\nb: two\nc: three\nd: four\n");
        let theirs = k.encrypt(Format::Yaml, "a: yours\nb: two\nc: three\nd: four\n", 2);
        let r = k.resolve(Format::Yaml, &base, &ours, &theirs);
        assert!(r.conflict.unwrap().contains("1 conflict)"));
        let envelope = r.write.unwrap();
        assert!(is_conflict(&envelope));
        let text = open_conflict(&envelope, &k.cache, &Keyring::new())
            .unwrap()
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "<<<<<<< ours\na: mine\n=======\na: yours\n>>>>>>> theirs\nb: two\nc: three\nd: four\n"
        );
        let loaded = file::load(Format::Json, &envelope).unwrap();
        assert_eq!(fingerprint(&loaded.meta), fingerprint(&meta("key1")));
    }

    #[test]
    fn a_result_that_does_not_parse_is_a_conflict() {
        let k = Keys::new();
        let base = k.encrypt(Format::Yaml, "a: 1\nz: 0\n", 1);
        let ours = k.edit(Format::Yaml, &base, "a: 1\nb: 2\nz: 0\n");
        let theirs = k.edit(Format::Yaml, &base, "a: 1\nz: 0\nb: 3\n");
        let r = k.resolve(Format::Yaml, &base, &ours, &theirs);
        let message = r.conflict.unwrap();
        assert!(
            message.contains("the result is not a SOPS yaml file"),
            "{message}"
        );
        assert!(message.contains("duplicate key"), "{message}");
        let text = open_conflict(&r.write.unwrap(), &k.cache, &Keyring::new())
            .unwrap()
            .unwrap();
        assert_eq!(text.as_slice(), b"a: 1\nb: 2\nz: 0\nb: 3\n");
    }

    #[test]
    fn a_conflict_envelope_as_base_is_its_text() {
        // git's virtual merge base of a criss-cross merge.
        let k = Keys::new();
        let base = envelope::seal(
            b"a: 1\nb: 2\nc: 3\n",
            &DataKey::from_bytes([1; 32]),
            &meta("key1"),
        )
        .unwrap();
        let ours = k.encrypt(Format::Yaml, "a: 10\nb: 2\nc: 3\n", 1);
        let theirs = k.encrypt(Format::Yaml, "a: 1\nb: 2\nc: 30\n", 1);
        let r = k.resolve(Format::Yaml, &base, &ours, &theirs);
        assert_eq!(r.conflict, None);
        assert_eq!(
            k.decrypt(Format::Yaml, &r.write.unwrap()),
            "a: 10\nb: 2\nc: 30\n"
        );
    }

    #[test]
    fn no_base_merges_what_both_sides_agree_on() {
        let k = Keys::new();
        let ours = k.encrypt(Format::Yaml, "a: 1\nb: 2\n", 1);
        let theirs = k.encrypt(Format::Yaml, "a: 1\nb: 2\n", 2);
        assert_eq!(
            k.resolve(Format::Yaml, b"", &ours, &theirs),
            Resolution::keep_ours()
        );
        let theirs = k.encrypt(Format::Yaml, "a: 1\nb: 3\n", 2);
        assert!(k
            .resolve(Format::Yaml, b"", &ours, &theirs)
            .conflict
            .is_some());
    }

    #[test]
    fn a_side_that_is_not_sops_keeps_ours() {
        let k = Keys::new();
        let base = k.encrypt(Format::Yaml, BASE, 1);
        let ours = k.edit(Format::Yaml, &base, "a: ONE\nb: two\nc: three\nd: four\n");
        let r = k.resolve(Format::Yaml, &base, &ours, b"a: plaintext\n");
        assert_eq!(r.write, None);
        assert!(r
            .conflict
            .unwrap()
            .contains("their version is not a SOPS yaml file"));
    }

    #[test]
    fn binary_files_merge_text_and_keep_ours_otherwise() {
        let k = Keys::new();
        let base = k.encrypt(Format::Binary, "l1\nl2\nl3\n", 1);
        let ours = k.encrypt(Format::Binary, "L1\nl2\nl3\n", 1);
        let theirs = k.encrypt(Format::Binary, "l1\nl2\nL3\n", 1);
        let r = k.resolve(Format::Binary, &base, &ours, &theirs);
        assert_eq!(r.conflict, None);
        assert_eq!(k.decrypt(Format::Binary, &r.write.unwrap()), "L1\nl2\nL3\n");
        let key = DataKey::from_bytes([1; 32]);
        let bin = |b: &[u8]| {
            let mut m = meta("key1");
            file::seal(Format::Binary, b, &key, &mut m, &mut FreshIvs).unwrap()
        };
        let r = k.resolve(
            Format::Binary,
            &bin(b"\xff1"),
            &bin(b"\xff2"),
            &bin(b"\xff3"),
        );
        assert_eq!(r.write, None);
        assert!(r.conflict.unwrap().contains("not text"));
    }

    #[test]
    fn labels_fall_back_to_ours_and_theirs() {
        assert_eq!(label(Some("HEAD"), "ours"), "HEAD");
        assert_eq!(label(Some("%X"), "ours"), "ours");
        assert_eq!(label(Some(""), "ours"), "ours");
        assert_eq!(label(None, "theirs"), "theirs");
    }
}
