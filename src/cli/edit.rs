//! `git sops edit FILE`: the plaintext in `$SOPS_EDITOR`, `$EDITOR` or
//! `$VISUAL` (else vim, nano or vi, as sops), then encrypted again with the
//! file's own data key, so every value the edit did not touch keeps its exact
//! ciphertext and the change reviews as the lines that changed.
//!
//! The editor needs a file: it is a 0600 file in a private 0700 directory
//! (under `$XDG_RUNTIME_DIR`, a tmpfs, where there is one), named like the
//! original so the editor picks the right syntax, and removed on every way
//! out: success, an error, an unchanged file, SIGINT/SIGTERM/SIGHUP (passed
//! on to the editor). An edit that does not parse or cannot be encrypted is
//! shown with the reason, and the editor opens again on the same text, as in
//! sops; without a terminal to ask, nothing is written and git-sops stops.
//!
//! With `-s/--show-master-keys` the metadata block is in the editor too: its
//! settings are taken as edited, and changed recipients get the data key
//! wrapped for them (sops 3.11 keeps the `enc` typed there, and drops the
//! edit itself).
//!
//! A file that does not exist yet starts from sops' example for its format
//! and gets its keys from the flags or `.sops.yaml`. Inside a plaintext git
//! working tree a protected file already is plaintext (the filter decrypts it
//! on checkout and encrypts it on `git add`): the editor opens it directly. An
//! encrypted working tree (`sops.worktree encrypted`) keeps ciphertext on
//! disk, so the file is edited as any SOPS file (format from `sops-type`), and
//! a merge conflict kept there as git-sops' encrypted envelope opens with its
//! conflict markers; once they are gone it is encrypted with our side's data
//! key and IVs, so the resolution commits as the values that changed.

use std::io::BufRead;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::args::EditArgs;
use super::child::{private_dir, write_private, Signals};
use super::crypt::as_text;
use super::crypt::encrypt_spec;
use super::io::{format_named, write_atomically};
use super::report::{code, Failure};
use crate::drivers::staged::Protected;
use crate::worktree_mode;
use sops_file::decrypt::{self, Check};
use sops_file::encrypt;
use sops_file::file;
use sops_file::formats::apply_edits;
use sops_file::formats::Format;
use sops_file::keygroups::Recipient;
use sops_file::keygroups::{self, Keyring};
use sops_file::metadata::Metadata;
use sops_file::stash::IvStash;
use sops_file::Error;

pub(super) fn edit(args: &EditArgs) -> Result<(), Failure> {
    let shown = args.file.display().to_string();
    let explicit = match &args.input_type {
        Some(t) => Some(format_named(t, "--input-type")?),
        None => None,
    };
    let protected = Protected::locate(&args.file, explicit)?;
    let on_disk = match std::fs::read(&args.file) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Failure::new(
                format!("{shown}: cannot read it: {e}"),
                code::COULD_NOT_READ_INPUT_FILE,
            ))
        }
    };
    let conflict = on_disk
        .as_deref()
        .is_some_and(sops_file::conflict::is_conflict);
    if let (Some(p), false) = (&protected, conflict) {
        let encrypted_tree = worktree_mode::is_encrypted(&p.git, &p.path);
        let ciphertext = on_disk
            .as_deref()
            .is_some_and(|b| file::load_as_configured(&p.path, p.format, b).is_some());
        // A plaintext working tree: the file on disk is the plaintext (or a
        // new file is written as plaintext and encrypted on `git add`). An
        // encrypted one keeps ciphertext on disk: edit in memory as below.
        if !ciphertext && (on_disk.is_some() || !encrypted_tree) {
            let what = if encrypted_tree {
                "is plaintext on disk although this working tree keeps protected files encrypted (`git add` it, then `git sops worktree encrypted` replaces it with ciphertext)"
            } else if on_disk.is_some() {
                "is already plaintext in this working tree (git-sops decrypts it on checkout and encrypts it when you `git add` it)"
            } else {
                "is protected in this repository: it is written as plaintext here and encrypted when you `git add` it"
            };
            eprintln!("git-sops: {shown} {what}; opening it in the editor directly");
            let signals = Signals::catch();
            return run_editor(&signals, &args.file);
        }
    }
    let format = explicit
        .or(protected.as_ref().map(|p| p.format))
        .unwrap_or_else(|| Format::detect(&shown));
    if args.show_master_keys && format == Format::Binary {
        return Err(Failure::usage(format!(
            "{shown}: --show-master-keys needs a YAML, JSON, dotenv or INI file; a binary file's plaintext has no place for the metadata"
        ))
        .with_hint("change its keys with `git sops updatekeys` or `git sops rotate --add-age/--rm-age`"));
    }
    if let Some(t) = &args.output_type {
        let output = format_named(t, "--output-type")?;
        if output != format {
            return Err(Failure::usage(format!(
                "{shown}: edit writes the file back as {}; convert it with `git sops decrypt --output-type {}` and `git sops encrypt` instead",
                format.name(),
                output.name()
            )));
        }
    }
    let session = match on_disk {
        Some(bytes) if conflict => open_conflict(&shown, protected.as_ref(), format, &bytes)?,
        Some(bytes) => open_existing(&shown, format, &bytes, args.ignore_mac)?,
        None => {
            // Said before the editor opens, not after the work is done.
            if let Some(dir) = args.file.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    return Err(Failure::new(
                        format!("{shown}: the directory {} does not exist", dir.display()),
                        code::COULD_NOT_WRITE_OUTPUT_FILE,
                    ));
                }
            }
            let spec = encrypt_spec(&args.keys, &shown, &shown)?;
            let (key, meta) =
                encrypt::new_metadata(&spec).map_err(|e| Failure::from_sops(&shown, e))?;
            Session {
                key,
                meta,
                ivs: IvStash::default(),
                plaintext: Zeroizing::new(example(format).as_bytes().to_vec()),
                conflict: false,
            }
        }
    };
    if session.conflict && args.show_master_keys {
        return Err(Failure::usage(format!(
            "{shown}: has an unresolved merge conflict; resolve it without --show-master-keys first"
        )));
    }
    let conflict = session.conflict;
    let out = edit_until_valid(&shown, &args.file, format, session, args.show_master_keys)?;
    write_atomically(&args.file, &out).map_err(|e| {
        Failure::new(
            format!("{shown}: cannot write it: {e}; the file was not changed"),
            code::COULD_NOT_WRITE_OUTPUT_FILE,
        )
    })?;
    if conflict {
        eprintln!(
            "git-sops: {shown}: conflict resolved (ciphertext on disk); `git add {}` marks it resolved",
            crate::drivers::shell_word(&shown)
        );
    }
    Ok(())
}

/// What an edit starts from: the file's data key and metadata, the IVs of
/// its values, and its plaintext.
struct Session {
    key: sops_file::datakey::DataKey,
    meta: sops_file::metadata::Metadata,
    ivs: IvStash,
    plaintext: Zeroizing<Vec<u8>>,
    /// The plaintext is a merge conflict's, with markers the edit must remove.
    conflict: bool,
}

fn open_existing(
    shown: &str,
    format: Format,
    bytes: &[u8],
    ignore_mac: bool,
) -> Result<Session, Failure> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Failure::input(format!("{shown}: not UTF-8 text, so not a SOPS file")))?;
    let loaded = file::read(format, text).map_err(|e| Failure::from_sops(shown, e))?;
    let key = keygroups::recover(&loaded.meta, &Keyring::new())
        .map_err(|e| Failure::from_sops(shown, e.into()))?;
    let check = if ignore_mac {
        Check::IgnoreMac
    } else {
        Check::Mac
    };
    let opened = loaded
        .open_with(&key, check)
        .map_err(|e| Failure::from_sops(shown, e))?;
    for w in &opened.warnings {
        eprintln!("git-sops: warning: {shown}: {w}");
    }
    Ok(Session {
        key,
        meta: loaded.meta,
        ivs: opened.ivs,
        plaintext: opened.plaintext,
        conflict: false,
    })
}

/// A merge conflict kept encrypted on disk (the merge driver's envelope, left
/// as it is by an encrypted working tree): the merged text with its conflict
/// markers to edit, and our side (stage 2 of the index, else `HEAD`) as the
/// template, with their side's IVs where it shares our data key, so every
/// value either side already had keeps its ciphertext.
fn open_conflict(
    shown: &str,
    protected: Option<&Protected>,
    format: Format,
    bytes: &[u8],
) -> Result<Session, Failure> {
    let keys = sops_file::keycache::KeyCache::default();
    let keyring = Keyring::new();
    let text = match sops_file::conflict::open_conflict(bytes, &keys, &keyring) {
        Some(Ok(text)) => text,
        Some(Err(e)) => return Err(Failure::from_sops(shown, e)),
        None => return Err(Failure::input(format!("{shown}: not a merge conflict"))),
    };
    let Some(p) = protected else {
        return Err(Failure::input(format!(
            "{shown}: holds a git-sops merge conflict, but is not a protected path of a git working tree, so there is no side to take keys from"
        )));
    };
    let side = |spec: String| -> Option<(sops_file::datakey::DataKey, Metadata, IvStash)> {
        let blob = p.git.run(&["cat-file", "blob", &spec]).ok()?;
        let loaded = file::load(format, &blob)?;
        let key = keygroups::recover(&loaded.meta, &keyring).ok()?;
        let opened = loaded.open(&key).ok()?;
        Some((key, loaded.meta, opened.ivs))
    };
    let ours = side(format!(":2:{}", p.path)).or_else(|| side(format!("HEAD:{}", p.path)));
    let Some((key, meta, mut ivs)) = ours else {
        return Err(Failure::input(format!(
            "{shown}: holds a merge conflict, but our side (stage 2 of the index, or HEAD) cannot be opened with a local key"
        ))
        .with_hint(format!("take one side with `git checkout --ours -- {0}` or `--theirs`, then `git add {0}`", crate::drivers::shell_word(shown))));
    };
    if let Some((their_key, _, their_ivs)) = side(format!(":3:{}", p.path)) {
        if their_key.bytes() == key.bytes() {
            ivs.absorb(their_ivs);
        }
    }
    Ok(Session {
        key,
        meta,
        ivs,
        plaintext: text,
        conflict: true,
    })
}

/// Open the editor on the plaintext until the result encrypts; the
/// encrypted file. The private directory is gone when this returns.
fn edit_until_valid(
    shown: &str,
    file: &Path,
    format: Format,
    mut session: Session,
    show_master_keys: bool,
) -> Result<Vec<u8>, Failure> {
    // Caught before the plaintext is written: a SIGTERM from here on is noted
    // and the private directory removed, never left behind by a dying process.
    let signals = Signals::catch();
    let dir = private_dir(file)?;
    let name = file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.path().join(name);
    let shown_text = if show_master_keys {
        with_metadata(shown, format, &session.plaintext, &session.meta)?
    } else {
        session.plaintext.clone()
    };
    write_private(&tmp, &shown_text)?;
    let original = Sha256::digest(&shown_text[..]);
    drop(shown_text);
    let result = loop {
        if let Err(e) = run_editor(&signals, &tmp) {
            break Err(e);
        }
        let edited = match std::fs::read(&tmp) {
            Ok(b) => Zeroizing::new(b),
            Err(e) => {
                break Err(Failure::new(
                    format!("cannot read the edited file back: {e}; nothing was written"),
                    code::COULD_NOT_READ_INPUT_FILE,
                ))
            }
        };
        if Sha256::digest(&edited[..]) == original {
            break Err(Failure::new(
                format!("{shown}: the file has not changed; nothing was written"),
                code::FILE_HAS_NOT_BEEN_MODIFIED,
            ));
        }
        if let (true, Some(line)) = (
            session.conflict,
            crate::drivers::filter::conflict_markers(&edited),
        ) {
            eprintln!("git-sops: error: {shown}: the conflict markers are still there (line {line}): keep the right values and remove the <<<<<<< ======= >>>>>>> lines");
            eprintln!(
                "  Press Enter to return to the editor, or Ctrl+C to stop (nothing is written)."
            );
            if let Err(stop) = wait_for_enter(&signals) {
                break Err(stop);
            }
            continue;
        }
        let sealed = if show_master_keys {
            without_metadata(format, &edited, &session).and_then(|(plain, mut meta)| {
                file::seal(format, &plain, &session.key, &mut meta, &mut session.ivs)
            })
        } else {
            let mut meta = session.meta.clone();
            file::seal(format, &edited, &session.key, &mut meta, &mut session.ivs)
        };
        match sealed {
            Ok(out) => break Ok(out),
            Err(e) => {
                let why = Failure::from_sops(shown, e);
                eprintln!("git-sops: error: {}", why.message);
                eprintln!("  Press Enter to return to the editor, or Ctrl+C to stop (nothing is written).");
                if let Err(stop) = wait_for_enter(&signals) {
                    break Err(stop);
                }
            }
        }
    };
    // The plaintext file goes before anything else happens.
    let removed = dir.close();
    let out = result?;
    removed.map_err(|e| {
        Failure::io(format!(
            "cannot remove the editor's private directory: {e}; nothing was written"
        ))
    })?;
    Ok(out)
}

/// `--show-master-keys`: the plaintext with the file's metadata block in
/// it, where sops puts it.
fn with_metadata(
    shown: &str,
    format: Format,
    plaintext: &[u8],
    meta: &Metadata,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let text = as_text(shown, plaintext)?;
    let store = format.store();
    let doc = store
        .parse(text)
        .map_err(|e| Failure::from_sops(shown, e.into()))?;
    let edits = store.insert_metadata(text, &doc, &meta.to_value());
    let out = apply_edits(text, edits).map_err(|e| Failure::from_sops(shown, Error::Splice(e)))?;
    Ok(Zeroizing::new(out.as_bytes().to_vec()))
}

/// The edited file of `--show-master-keys` split into its plaintext and its
/// metadata. The metadata's settings (selector, `mac_only_encrypted`) are
/// taken as edited; its keys only as recipients: when they are the ones the
/// file had, the wrapped data keys stay as they were, and when recipients were
/// added or removed, the file's data key is wrapped again for exactly the new
/// ones (sops would keep whatever `enc` was typed, and a new key could not
/// open the file).
fn without_metadata(
    format: Format,
    edited: &[u8],
    session: &Session,
) -> Result<(Zeroizing<Vec<u8>>, Metadata), Error> {
    let text = std::str::from_utf8(edited).map_err(|_| {
        Error::Format(sops_file::formats::FormatError::Unsupported {
            line: 0,
            column: 0,
            message: "not UTF-8 text".into(),
        })
    })?;
    let store = format.store();
    let (doc, mut meta) = decrypt::load(store, text)?;
    let plain = apply_edits(text, store.remove_metadata(text, &doc)).map_err(Error::Splice)?;
    let recipients = |m: &Metadata| -> Vec<Vec<Recipient>> {
        m.key_groups
            .iter()
            .map(|g| g.iter().map(Recipient::from).collect())
            .collect()
    };
    let wanted = recipients(&meta);
    if wanted == recipients(&session.meta) && meta.shamir_threshold == session.meta.shamir_threshold
    {
        meta.key_groups.clone_from(&session.meta.key_groups);
    } else {
        let (groups, threshold) = keygroups::wrap(&session.key, &wanted, meta.shamir_threshold)?;
        meta.key_groups = groups;
        meta.shamir_threshold = threshold;
    }
    Ok((Zeroizing::new(plain.as_bytes().to_vec()), meta))
}

/// Run the editor on `path`; a signal to git-sops, or an editor that fails,
/// ends the edit.
fn run_editor(signals: &Signals, path: &Path) -> Result<(), Failure> {
    let mut cmd = editor_command()?;
    cmd.arg(path);
    let status = signals.run(&mut cmd).map_err(|e| {
        Failure::new(
            format!("could not run the editor: {e}"),
            code::NO_EDITOR_FOUND,
        )
    })?;
    if let Some(sig) = signals.seen() {
        return Err(interrupted(sig));
    }
    if !status.success() {
        return Err(Failure::new(
            format!("the editor exited with {status}; nothing was written"),
            code::NO_EDITOR_FOUND,
        ));
    }
    Ok(())
}

fn interrupted(sig: i32) -> Failure {
    Failure::new(
        format!("stopped by signal {sig}; nothing was written"),
        128 + sig,
    )
}

/// `$SOPS_EDITOR`, `$EDITOR` or `$VISUAL` split into words as a shell would
/// (sops' rule), else the first of vim, nano and vi on `PATH`.
fn editor_command() -> Result<Command, Failure> {
    for var in ["SOPS_EDITOR", "EDITOR", "VISUAL"] {
        let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = value.to_string_lossy();
        let words = shlex::split(&value)
            .filter(|w| !w.is_empty())
            .ok_or_else(|| {
                Failure::new(format!("invalid ${var}: {value}"), code::NO_EDITOR_FOUND)
            })?;
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]);
        return Ok(cmd);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["vim", "nano", "vi"] {
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            return Ok(Command::new(found));
        }
    }
    Err(Failure::new(
        "no editor available: set SOPS_EDITOR or EDITOR (git-sops otherwise looks for vim, nano and vi, and found none)".into(),
        code::NO_EDITOR_FOUND,
    ))
}

/// Wait for the user to press Enter; a signal or the end of the input (no
/// terminal to ask) stops the edit instead.
fn wait_for_enter(signals: &Signals) -> Result<(), Failure> {
    let (tx, rx) = std::sync::mpsc::channel();
    // The read blocks; the thread is left behind if a signal comes first
    // (the process ends soon after).
    std::thread::spawn(move || {
        let mut line = String::new();
        let n = std::io::stdin().lock().read_line(&mut line).unwrap_or(0);
        let _ = tx.send(n);
    });
    loop {
        if let Some(sig) = signals.take() {
            return Err(interrupted(sig));
        }
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(0) => {
                return Err(Failure::input(
                    "the edit cannot be encrypted (see above) and there is no terminal to go back to the editor; nothing was written".into(),
                ))
            }
            Ok(_) => return Ok(()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Failure::input(
                    "cannot read standard input; nothing was written".into(),
                ))
            }
        }
    }
}

/// sops 3.11's example file for a new file of `format`, byte for byte.
fn example(format: Format) -> &'static str {
    match format {
        Format::Yaml => "hello: Welcome to SOPS! Edit this file as you please!\nexample_key: example_value\n# Example comment\nexample_array:\n    - example_value1\n    - example_value2\nexample_number: 1234.56789\nexample_booleans:\n    - true\n    - false\n",
        Format::Json => "{\n\t\"hello\": \"Welcome to SOPS! Edit this file as you please!\",\n\t\"example_key\": \"example_value\",\n\t\"example_array\": [\n\t\t\"example_value1\",\n\t\t\"example_value2\"\n\t],\n\t\"example_number\": 1234.56789,\n\t\"example_booleans\": [\n\t\ttrue,\n\t\tfalse\n\t]\n}\n",
        Format::Dotenv => "# This is an example file.\nhello=Welcome to SOPS! Edit this file as you please!\nexample_key=example_value\nexample_multiline=foo\\nbar\\nbaz\n",
        Format::Ini => "; This is an example file.\n[Welcome!]\nhello       = Welcome to SOPS! Edit this file as you please!\nexample_key = example_value\n",
        Format::Binary => "Welcome to SOPS! Edit this file as you please!",
    }
}
