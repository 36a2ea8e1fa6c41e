//! Running a child (the command of `exec-env`/`exec-file`, the editor of
//! `edit`) while git-sops holds plaintext it must remove afterwards: SIGINT,
//! SIGTERM and SIGHUP sent to git-sops are noted instead of ending it, and
//! passed on to the child, so git-sops always gets to clean up. SIGKILL cannot
//! be caught; the commands keep what a SIGKILL would leave behind small (a
//! FIFO by default, a 0600 file in a private 0700 directory otherwise).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::report::Failure;

/// The signals that ask git-sops to stop, noted while an instance lives.
pub(super) struct Signals {
    pending: Arc<AtomicUsize>,
    /// The last signal seen, kept after it was passed on.
    seen: AtomicUsize,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    /// Start noting SIGINT, SIGTERM and SIGHUP. A child started afterwards
    /// gets the default dispositions back (exec resets caught signals).
    pub(super) fn catch() -> Signals {
        let pending = Arc::new(AtomicUsize::new(0));
        let ids = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP]
            .into_iter()
            .filter_map(|sig| {
                signal_hook::flag::register_usize(sig, Arc::clone(&pending), sig as usize).ok()
            })
            .collect();
        Signals {
            pending,
            seen: AtomicUsize::new(0),
            ids,
        }
    }

    /// A signal that arrived since the last call, if any.
    pub(super) fn take(&self) -> Option<i32> {
        let sig = self.pending.swap(0, Ordering::SeqCst);
        if sig == 0 {
            return None;
        }
        self.seen.store(sig, Ordering::SeqCst);
        i32::try_from(sig).ok()
    }

    /// The last signal that arrived while catching, if any.
    pub(super) fn seen(&self) -> Option<i32> {
        let _ = self.take();
        match self.seen.load(Ordering::SeqCst) {
            0 => None,
            sig => i32::try_from(sig).ok(),
        }
    }

    /// Run `cmd` to its end, passing on every signal noted meanwhile.
    pub(super) fn run(&self, cmd: &mut Command) -> io::Result<ExitStatus> {
        let mut child = cmd.spawn()?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if let (Some(sig), Ok(pid)) = (self.take(), libc::pid_t::try_from(child.id())) {
                // SAFETY: kill(2) takes plain integers and touches no memory of
                // ours; the pid is our own child, not yet reaped.
                unsafe {
                    libc::kill(pid, sig);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// A fresh directory only this user can enter, on a tmpfs where there is one
/// (`$XDG_RUNTIME_DIR`, else `/dev/shm` unless `$TMPDIR` names a place), else
/// in `$TMPDIR`: memory-backed, so what an editor is given reaches no disk
/// unless the system swaps. Never inside the git repository `file` is in (its
/// working tree or git dir): a `$TMPDIR` pointing there would put plaintext
/// where an encrypted working tree promises none, and where `git add -A`
/// reaches.
pub(super) fn private_dir(file: &Path) -> Result<tempfile::TempDir, Failure> {
    let mut bases: Vec<PathBuf> = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .into_iter()
        .collect();
    // Not when TMPDIR is set on purpose to somewhere else than /tmp (a test,
    // a policy); /dev/shm may also be missing or read-only (containers).
    if std::env::var_os("TMPDIR").is_none() {
        bases.push(PathBuf::from("/dev/shm"));
    }
    bases.push(std::env::temp_dir());
    let avoid = repository_dirs(file);
    let mut last = None;
    for base in bases {
        let real = base.canonicalize().unwrap_or_else(|_| base.clone());
        if let Some(repo) = avoid.iter().find(|r| real.starts_with(r)) {
            last = Some(format!(
                "{} is inside the git repository at {}, where no plaintext may go",
                base.display(),
                repo.display()
            ));
            continue;
        }
        // Created 0700 in one step (tempfile's default follows the umask).
        match tempfile::Builder::new()
            .prefix(".git-sops-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
        {
            Ok(dir) => return Ok(dir),
            Err(e) => last = Some(format!("{}: {e}", base.display())),
        }
    }
    Err(Failure::io(format!(
        "cannot create a private directory for the plaintext: {}; set TMPDIR (or XDG_RUNTIME_DIR) to a directory of yours outside the repository",
        last.unwrap_or_else(|| "no place to create it".to_string())
    )))
}

/// The working tree and git dirs of the repository `file` is in (resolved),
/// none outside a repository.
fn repository_dirs(file: &Path) -> Vec<PathBuf> {
    let dir = match file.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    // The file may be new, in a folder still to be made: its nearest ancestor.
    let Some(dir) = dir.ancestors().find(|d| d.is_dir()).map(Path::to_path_buf) else {
        return Vec::new();
    };
    let git = crate::git::Git::new(&dir);
    [git.toplevel().ok(), git.common_dir().ok()]
        .into_iter()
        .flatten()
        .filter_map(|d| d.canonicalize().ok())
        .collect()
}

/// Write `data` to a new file at `path` that only this user can read (0600,
/// never an existing file or a symlink's target).
pub(super) fn write_private(path: &Path, data: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| {
        Failure::io(format!(
            "cannot write the plaintext file {}: {e}",
            path.display()
        ))
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(data).map_err(fail)
}
