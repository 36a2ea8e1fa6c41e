//! Reading a file of the working tree as git sees it, and nothing more. git
//! tracks a symlink as its target string, never as what it points at, and never
//! tracks anything behind one; a FIFO or a device is not a file git would read.
//! `status`, `init` and `check --staged` read working-tree copies, and following
//! a symlink there could read a file outside the repository, while opening a
//! FIFO would block forever, so both are treated as "no regular file here".

use std::io::Read;
use std::path::{Component, Path};

/// The content of `rel` (repository-relative) under `top`, when it is a regular
/// file reached without passing through a symlink; `None` otherwise (missing,
/// a symlink, a FIFO, a folder, unreadable).
pub(crate) fn read_file(top: &Path, rel: &str) -> Option<Vec<u8>> {
    let rel = Path::new(rel);
    let mut dir = top.to_path_buf();
    let parts: Vec<Component<'_>> = rel.components().collect();
    let (last, parents) = parts.split_last()?;
    for part in parents {
        let Component::Normal(name) = part else {
            return None; // `..`, `/`: not a repository-relative path
        };
        dir.push(name);
        let meta = std::fs::symlink_metadata(&dir).ok()?;
        if !meta.is_dir() {
            return None;
        }
    }
    let Component::Normal(name) = last else {
        return None;
    };
    let mut file = open_no_follow(&dir.join(name))?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> Option<std::fs::File> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    std::fs::File::open(path).ok()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_reached_without_symlinks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let top = dir.path();
        std::fs::create_dir_all(top.join("a")).expect("mkdir");
        std::fs::write(top.join("a/f"), b"x").expect("write");
        std::fs::write(dir.path().join("outside"), b"secret").expect("write");
        std::os::unix::fs::symlink(top.join("outside"), top.join("a/link")).expect("symlink");
        std::os::unix::fs::symlink(top.join("a"), top.join("dirlink")).expect("symlink");
        let fifo = top.join("a/fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("UTF-8 temp path")).expect("no NUL");
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read_file(top, "a/f").as_deref(), Some(&b"x"[..]));
        assert_eq!(read_file(top, "a/link"), None);
        assert_eq!(read_file(top, "dirlink/f"), None);
        assert_eq!(read_file(top, "a/fifo"), None);
        assert_eq!(read_file(top, "a"), None);
        assert_eq!(read_file(top, "../outside"), None);
        assert_eq!(read_file(top, "missing"), None);
    }
}
