//! The commands git runs: the long-running filter (`filter-process`), the
//! one-shot `clean` and `smudge`, `textconv` and the merge driver
//! (`crate::drivers`). stdout belongs to git.

use std::io::{Read, Write};
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::{driver_failure, here};
use crate::cli::report::{self, Failure};
use crate::drivers::filter::protocol;
use crate::drivers::filter::{Filter, Smudged};
use crate::drivers::{merge, textconv};
use sops_file::keygroups::Keyring;

pub(super) fn filter_process() -> Result<(), Failure> {
    let mut filter = Filter::long_running(".");
    let stdin = std::io::stdin().lock();
    protocol::serve(stdin, raw_stdout(), &mut filter, &mut |n| {
        report::notice(&n)
    })
    .map_err(|e| Failure::io(format!("filter-process: protocol error: {e}")))
}

/// stdout without the standard library's line buffering: the protocol writer
/// buffers each response itself and writes it in one go, where `Stdout` would
/// split it at its last newline into two writes (and keep a copy of the tail,
/// plaintext after a smudge, in a buffer nobody wipes).
#[cfg(unix)]
fn raw_stdout() -> Box<dyn Write> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout().lock()),
    }
}

#[cfg(not(unix))]
fn raw_stdout() -> Box<dyn Write> {
    Box::new(std::io::stdout().lock())
}

pub(super) fn clean(path: std::ffi::OsString) -> Result<(), Failure> {
    let input = read_stdin()?;
    let path = path.into_string().map_err(|p| {
        Failure::io(format!(
            "{}: the file name is not UTF-8, which git-sops cannot handle; nothing was staged",
            p.to_string_lossy()
        ))
    })?;
    let mut filter = Filter::one_shot(".");
    let out = filter.clean(&path, &input);
    filter.take_notices().iter().for_each(report::notice);
    write_stdout(&out.map_err(driver_failure)?)
}

pub(super) fn smudge(path: std::ffi::OsString) -> Result<(), Failure> {
    let input = read_stdin()?;
    let Ok(path) = path.into_string() else {
        eprintln!("git-sops: warning: a file name is not UTF-8, which git-sops cannot handle; it stays encrypted");
        return write_stdout(&input);
    };
    let mut filter = Filter::new(".");
    let out = filter.smudge(&path, &input);
    filter.take_notices().iter().for_each(report::notice);
    match out.map_err(driver_failure)? {
        Smudged::Plaintext(text) => write_stdout(&text),
        Smudged::Unchanged => write_stdout(&input),
    }
}

pub(super) fn textconv(file: PathBuf) -> Result<(), Failure> {
    let content = std::fs::read(&file)
        .map(Zeroizing::new)
        .map_err(|e| Failure::io(format!("{}: cannot read it: {e}", file.display())))?;
    // Asked once per git command (git runs textconv once per blob).
    let session = crate::cache::textconv_session::TextconvSession::of(&here());
    // git stores textconv output when this is on: never print plaintext then.
    if session.cached {
        eprintln!("git-sops: warning: diff.sops.cachetextconv is set, so git stores what textconv prints (under refs/notes/textconv/sops): showing no decrypted values. Run `git config --unset-all diff.sops.cachetextconv` (and `git sops install`)");
    }
    let out = textconv::render(
        &file.to_string_lossy(),
        &content,
        || crate::cache::data_keys::key_cache(session.cache.as_ref()),
        &Keyring::new(),
        session.cached,
    );
    write_stdout(&out)
}

/// The merge driver: exit 0 merged, 1 conflict (git keeps the index stages and
/// reports the conflict; `%A` is never plaintext).
pub(super) fn run_merge(
    base: PathBuf,
    ours: PathBuf,
    theirs: PathBuf,
    marker_size: &str,
    path: String,
    labels: Vec<String>,
) -> Result<(), Failure> {
    let request = merge::Request {
        base,
        ours,
        theirs,
        // git passes a number; anything else gets git's default.
        marker_size: marker_size.parse().ok().filter(|n| *n > 0).unwrap_or(7),
        ours_label: labels.get(1).cloned(),
        theirs_label: labels.get(2).cloned(),
        path,
    };
    let merged = merge::run(&here(), &request).map_err(driver_failure)?;
    merged.notices.iter().for_each(report::notice);
    match merged.outcome {
        merge::Outcome::Merged => Ok(()),
        merge::Outcome::Conflict(message) => {
            eprintln!("git-sops: CONFLICT in {}: {message}", request.path);
            // Not a failure of git-sops: the conflict is git's to report. Exit
            // 1 through the normal return, so every buffer is wiped on the way.
            Err(Failure::silent(1))
        }
    }
}

/// A one-shot filter's input: plaintext for clean, so it is wiped when dropped.
fn read_stdin() -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut input = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| Failure::io(format!("cannot read standard input: {e}")))?;
    Ok(input)
}

fn write_stdout(data: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)
        .and_then(|_| out.flush())
        .map_err(|e| Failure::io(format!("cannot write to standard output: {e}")))
}
