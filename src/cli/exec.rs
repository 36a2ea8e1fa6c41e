//! `git sops exec-env` and `git sops exec-file`: run a command with the
//! decrypted values, the way sops 3.11 does (`/bin/sh -c COMMAND`, the child's
//! exit status returned, 255 when a signal ended it), so CI scripts written
//! for sops keep working.
//!
//! The plaintext goes to the child only: into its environment (never its argv),
//! or through a FIFO in a private 0700 directory, or with `--no-fifo` a 0600
//! file there. The directory is removed when the child exits, also when
//! git-sops is asked to stop by SIGINT, SIGTERM or SIGHUP (the signal is
//! passed on to the child first). SIGKILL cannot be caught; that is why the
//! FIFO, whose content never reaches a disk, is the default.
//!
//! Inside a git working tree a protected file is plaintext on disk (the filter
//! smudged it): that plaintext is what the command gets, as it is what the
//! user sees and edits. Where sops is unsafe, git-sops refuses: a `--filename`
//! that would leave the private directory, `--background` with a file that
//! would have to outlive git-sops.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::args::{ExecArgs, ExecEnvArgs, ExecFileArgs};
use super::child::{private_dir, write_private, Signals};
use super::crypt::{as_text, convert_plaintext, decrypt_content};
use super::io::format_named;
use super::report::{code, Failure};
use crate::drivers::staged::Protected;
use sops_file::formats::convert::val_to_string;
use sops_file::formats::{Format, MapItem, Node};

/// An environment variable for the command: its name and its secret value.
type Variable = (Vec<u8>, Zeroizing<Vec<u8>>);

/// sops' name for the plaintext file when `--filename` is not given.
const FALLBACK_FILENAME: &str = "tmp-file";

/// The exit status sops gives when the command was ended by a signal (Go's
/// `ExitCode()` is -1 then, and the process exits with 255).
const KILLED_BY_SIGNAL: i32 = 255;

pub(super) fn exec_env(args: &ExecEnvArgs) -> Result<(), Failure> {
    warn_background(&args.exec);
    // Later files win for a name they share; the first file's order is kept.
    let mut vars: Vec<Variable> = Vec::new();
    for file in &args.files {
        let (format, plaintext) = plaintext_of(file, &args.exec)?;
        for (name, value) in environment(&file.display().to_string(), format, &plaintext)? {
            match vars.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => vars.push((name, value)),
            }
        }
    }
    let mut cmd = shell(&args.command);
    if args.pristine {
        cmd.env_clear();
    }
    for (name, value) in &vars {
        cmd.env(OsStr::from_bytes(name), OsStr::from_bytes(value));
    }
    if let Some((uid, gid)) = user_ids(args.exec.user.as_deref())? {
        cmd.uid(uid).gid(gid);
    }
    if args.same_process {
        // Only returns when the exec failed.
        let e = cmd.exec();
        return Err(Failure::io(format!("cannot run the command: {e}")));
    }
    if args.exec.background {
        return cmd
            .spawn()
            .map(drop)
            .map_err(|e| Failure::io(format!("cannot run the command: {e}")));
    }
    run(cmd)
}

pub(super) fn exec_file(args: &ExecFileArgs) -> Result<(), Failure> {
    if args.exec.background {
        return Err(Failure::usage(
            "exec-file --background is not supported: git-sops would have to leave the plaintext behind for a command it no longer watches (sops deprecates the flag)".into(),
        )
        .with_hint("run the command in the foreground, or start `git sops exec-file ...` itself in the background"));
    }
    let name = match &args.filename {
        Some(n) => {
            check_filename(n)?;
            Some(n.as_str())
        }
        None => None,
    };
    let (format, plaintext) = plaintext_of(&args.file, &args.exec)?;
    let output_format = match &args.output_type {
        Some(t) => format_named(t, "--output-type")?,
        None => format,
    };
    let shown = args.file.display().to_string();
    let plaintext = match (format, output_format) {
        (from, to) if from == to => plaintext,
        (Format::Binary, _) | (_, Format::Binary) => {
            return Err(Failure::usage(format!(
                "{shown}: cannot give a {} file to the command as {}",
                format.name(),
                output_format.name()
            )))
        }
        (from, to) => match convert_plaintext(&shown, from, to, as_text(&shown, &plaintext)?)? {
            Some(t) => Zeroizing::new(t.as_bytes().to_vec()),
            None => plaintext.clone(),
        },
    };
    let dir = private_dir(&args.file)?;
    let fifo = !args.no_fifo;
    let path = if fifo {
        let path = dir.path().join(name.unwrap_or(FALLBACK_FILENAME));
        make_fifo(&path)?;
        path
    } else {
        write_plain_file(dir.path(), name, &plaintext)?
    };
    let mut cmd = shell(&args.command.replace("{}", &path.to_string_lossy()));
    if let Some((uid, gid)) = user_ids(args.exec.user.as_deref())? {
        cmd.uid(uid).gid(gid);
        // The command runs as that user: the directory and the file become its.
        for p in [dir.path(), path.as_path()] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(|e| {
                Failure::io(format!(
                    "--user: cannot give {} to that user: {e}",
                    p.display()
                ))
            })?;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = fifo.then(|| feed_fifo(path.clone(), plaintext, Arc::clone(&stop)));
    let result = run(cmd);
    stop.store(true, Ordering::SeqCst);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    // Removing the directory removes the FIFO or the file with it.
    let removed = dir.close();
    result?;
    removed.map_err(|e| {
        Failure::io(format!(
            "cannot remove the private directory of the plaintext: {e}"
        ))
    })
}

fn warn_background(exec: &ExecArgs) {
    if exec.background {
        eprintln!("git-sops: warning: --background is deprecated in sops and will be removed there; the command's exit status is not returned");
    }
}

/// The decrypted content of `file` and its format.
fn plaintext_of(file: &Path, exec: &ExecArgs) -> Result<(Format, Zeroizing<Vec<u8>>), Failure> {
    let shown = file.display().to_string();
    let explicit = match &exec.input_type {
        Some(t) => Some(format_named(t, "--input-type")?),
        None => None,
    };
    let read = |path: &Path| {
        std::fs::read(path).map(Zeroizing::new).map_err(|e| {
            Failure::new(
                format!("{shown}: cannot read it: {e}"),
                code::COULD_NOT_READ_INPUT_FILE,
            )
        })
    };
    if let Some(protected) = Protected::plaintext(file, explicit)? {
        return Ok((protected.format, read(file)?));
    }
    let format = explicit.unwrap_or_else(|| Format::detect(&shown));
    let content = read(file)?;
    Ok((format, decrypt_content(&shown, format, &content, false)?))
}

/// The variables sops' exec-env sets from a plaintext: the top-level entries
/// of its first document, strings as they are and other scalars as sops
/// writes them in a dotenv file. A nested value, or a name an environment
/// cannot hold, is an error (sops' messages).
fn environment(shown: &str, format: Format, plaintext: &[u8]) -> Result<Vec<Variable>, Failure> {
    if format == Format::Binary {
        // sops reads a binary file as one value named `data`.
        return Ok(vec![(
            b"data".to_vec(),
            checked_value(shown, "data", plaintext)?,
        )]);
    }
    let doc = format
        .store()
        .parse(as_text(shown, plaintext)?)
        .map_err(|e| Failure::from_sops(shown, e.into()))?;
    let mut out = Vec::new();
    let Some(root) = doc.docs.first() else {
        return Ok(out);
    };
    for item in &root.items {
        let MapItem::Entry(entry) = item else {
            continue;
        };
        let key = entry.key.as_str();
        let Node::Leaf(leaf) = &entry.value else {
            return Err(Failure::input(format!(
                "{shown}: cannot use complex value in environment; offending key {key}"
            )));
        };
        if key.contains('=') {
            return Err(Failure::input(format!(
                "{shown}: cannot use keys with '=' in environment: {key}"
            )));
        }
        if key.is_empty() || key.contains('\0') {
            return Err(Failure::input(format!(
                "{shown}: an empty name, or one with a NUL byte, cannot be an environment variable"
            )));
        }
        let value = Zeroizing::new(val_to_string(&leaf.value).into_bytes());
        out.push((key.as_bytes().to_vec(), checked_value(shown, key, &value)?));
    }
    Ok(out)
}

fn checked_value(shown: &str, key: &str, value: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
    if value.contains(&0) {
        return Err(Failure::input(format!(
            "{shown}: the value of {key} holds a NUL byte, which an environment variable cannot"
        )));
    }
    Ok(Zeroizing::new(value.to_vec()))
}

/// `/bin/sh -c COMMAND`, as sops runs it.
fn shell(command: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    cmd
}

/// `--user`: the user's uid and primary gid (sops uses the uid as the gid,
/// which is only right where they happen to be equal).
fn user_ids(user: Option<&str>) -> Result<Option<(u32, u32)>, Failure> {
    let Some(user) = user else {
        return Ok(None);
    };
    let id = |flag: &str| -> Result<u32, Failure> {
        let out = Command::new("id")
            .args([flag, "--", user])
            .output()
            .map_err(|e| Failure::io(format!("--user {user}: cannot run `id`: {e}")))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|_| out.status.success())
            .ok_or_else(|| Failure::usage(format!("--user {user}: there is no such user")))
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// `--filename` names a file inside the private directory, nothing else.
fn check_filename(name: &str) -> Result<(), Failure> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Failure::usage(format!(
            "--filename {name:?}: give a plain file name; the file is always created in a private directory"
        )));
    }
    Ok(())
}

/// The plaintext as a 0600 file in `dir`: `name`, or sops' `tmp-file`
/// followed by a random number.
fn write_plain_file(dir: &Path, name: Option<&str>, data: &[u8]) -> Result<PathBuf, Failure> {
    let path = match name {
        Some(n) => dir.join(n),
        None => {
            let suffix: u32 = rand::random();
            dir.join(format!("{FALLBACK_FILENAME}{suffix}"))
        }
    };
    write_private(&path, data)?;
    Ok(path)
}

fn make_fifo(path: &Path) -> Result<(), Failure> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Failure::usage("the FIFO's path holds a NUL byte".into()))?;
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call;
    // mkfifo only reads it.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    if rc != 0 {
        return Err(Failure::io(format!(
            "cannot create the FIFO {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Write the plaintext into the FIFO for the command, beside it. Nothing here
/// blocks: the FIFO is opened and written without blocking and retried while
/// the command runs, so a command that never reads it (or stops reading)
/// cannot keep git-sops waiting once `stop` is set.
fn feed_fifo(
    path: PathBuf,
    data: Zeroizing<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::{ErrorKind, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let pause = || std::thread::sleep(Duration::from_millis(2));
        let mut fifo = loop {
            // Never through a symlink, and only into a FIFO: with `--user` the
            // command owns the private directory and can put anything in its
            // place, which git-sops (often root then) must not write into.
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
                .open(&path);
            match opened {
                Ok(f) => {
                    use std::os::unix::fs::FileTypeExt;
                    if !f.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
                        return;
                    }
                    break f;
                }
                // ENXIO: no reader has opened it yet.
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) && !stop.load(Ordering::SeqCst) => {
                    pause()
                }
                Err(_) => return,
            }
        };
        let mut rest = &data[..];
        while !rest.is_empty() {
            match fifo.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock && !stop.load(Ordering::SeqCst) => {
                    pause()
                }
                // The reader closed it (EPIPE), or the command is gone.
                Err(_) => return,
            }
        }
    })
}

/// Run the command and wait for it, passing on SIGINT, SIGTERM and SIGHUP
/// sent to git-sops, so that the caller can clean up whatever happens. The
/// command's exit status becomes git-sops' own.
fn run(mut cmd: Command) -> Result<(), Failure> {
    let status = Signals::catch()
        .run(&mut cmd)
        .map_err(|e| Failure::io(format!("cannot run the command: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure::silent(code)),
        None => {
            let sig = status.signal().unwrap_or(0);
            Err(Failure::new(
                format!("the command was ended by signal {sig}"),
                KILLED_BY_SIGNAL,
            ))
        }
    }
}
