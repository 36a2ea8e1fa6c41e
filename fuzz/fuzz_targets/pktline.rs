//! git's long-running filter protocol over any byte stream: the loop ends with
//! `Ok` or an error, never panics, and writes no more than a bounded multiple
//! of what it read (an in-memory filter echoes clean input and leaves smudge
//! input unchanged, refusing one path).
#![no_main]

use std::io::{self, Cursor, Write};

use git_sops::drivers::filter::protocol::{serve, FilterOps};
use git_sops::drivers::DriverError;
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

struct Echo;

impl FilterOps for Echo {
    fn clean(&mut self, path: &str, input: &[u8]) -> Result<Vec<u8>, DriverError> {
        if path == "bad" {
            return Err(DriverError::new(path, "refused"));
        }
        Ok(input.to_vec())
    }

    fn smudge(
        &mut self,
        _path: &str,
        _input: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DriverError> {
        Ok(None)
    }
}

/// Counts what the loop writes, keeping none of it.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut out = Counter(0);
    let _ = serve(Cursor::new(data), &mut out, &mut Echo);
    // Each request of at least 4 bytes (a flush) gets at most ~40 bytes of
    // status and framing; content is echoed once, in packets of 4 + 65516.
    assert!(
        out.0 <= 64 + 2 * data.len() + 40 * (data.len() / 4 + 1),
        "{} bytes written for {} read",
        out.0,
        data.len()
    );
});
