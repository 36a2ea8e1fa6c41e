//! pkt-line, the framing of git's long-running filter protocol
//! (gitprotocol-common(5)): four lowercase hex digits giving the packet length
//! including themselves, then the payload; `0000` is a flush packet. Generic over
//! `Read`/`Write` so the filter loop can be tested against in-memory transcripts.

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

/// The largest payload one packet may carry (65520 bytes in total).
pub(crate) const MAX_PAYLOAD: usize = 65516;

/// One packet as read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packet {
    Data(Vec<u8>),
    Flush,
}

pub(crate) struct PktReader<R> {
    inner: R,
}

impl<R: Read> PktReader<R> {
    pub fn new(inner: R) -> PktReader<R> {
        PktReader { inner }
    }

    /// The next packet; `Ok(None)` on a clean end of input (git closed the pipe).
    pub(crate) fn read_packet(&mut self) -> io::Result<Option<Packet>> {
        let mut header = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated pkt-line header",
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let len = std::str::from_utf8(&header)
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "bad pkt-line length {:?}",
                    String::from_utf8_lossy(&header)
                ))
            })?;
        match len {
            0 => Ok(Some(Packet::Flush)),
            1..=4 => Err(invalid(format!("unexpected pkt-line length {len}"))),
            _ if len - 4 > MAX_PAYLOAD => Err(invalid(format!("pkt-line too long ({len})"))),
            _ => {
                let mut payload = vec![0u8; len - 4];
                self.inner.read_exact(&mut payload)?;
                Ok(Some(Packet::Data(payload)))
            }
        }
    }

    /// Text lines up to the next flush (trailing `\n` removed). `Ok(None)` on EOF
    /// before any packet.
    pub(crate) fn read_lines(&mut self) -> io::Result<Option<Vec<String>>> {
        let Some(lines) = self.read_byte_lines()? else {
            return Ok(None);
        };
        lines
            .into_iter()
            .map(|l| String::from_utf8(l).map_err(|_| invalid("non-UTF-8 header line".into())))
            .collect::<io::Result<Vec<String>>>()
            .map(Some)
    }

    /// Lines up to the next flush as bytes (trailing `\n` removed): request
    /// headers carry path names, which git does not require to be UTF-8.
    pub(crate) fn read_byte_lines(&mut self) -> io::Result<Option<Vec<Vec<u8>>>> {
        let mut lines = Vec::new();
        loop {
            match self.read_packet()? {
                None if lines.is_empty() => return Ok(None),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "missing flush packet",
                    ))
                }
                Some(Packet::Flush) => return Ok(Some(lines)),
                Some(Packet::Data(mut line)) => {
                    if line.ends_with(b"\n") {
                        line.pop();
                    }
                    lines.push(line);
                }
            }
        }
    }

    /// Binary content up to the next flush, appended to `out`. Content is a
    /// file's plaintext on its way to clean, so no copy of it is left behind:
    /// each packet is wiped once appended, and `out` grows by moving into a new
    /// zeroizing buffer rather than by a reallocation that would free the old
    /// bytes unwiped.
    pub(crate) fn read_content(&mut self, out: &mut Zeroizing<Vec<u8>>) -> io::Result<()> {
        loop {
            match self.read_packet()? {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "content ended without a flush",
                    ))
                }
                Some(Packet::Flush) => return Ok(()),
                Some(Packet::Data(d)) => {
                    let d = Zeroizing::new(d);
                    if out.capacity() - out.len() < d.len() {
                        let want = (out.len() + d.len()).max(out.capacity() * 2);
                        let mut bigger = Zeroizing::new(Vec::with_capacity(want));
                        bigger.extend_from_slice(out);
                        *out = bigger;
                    }
                    out.extend_from_slice(&d);
                }
            }
        }
    }
}

/// Writes packets into its own buffer and hands them to the writer in one
/// `write` per [`PktWriter::flush`] (or whenever the buffer fills): a filter
/// response is a status line, content and three flush packets, and one
/// system call (one wake-up of git) per response instead of one per packet
/// matters when git cleans thousands of files. Content may be plaintext (a
/// smudge's output), so the buffer is zeroizing and never grows: its
/// capacity is fixed, and larger content goes out in several writes.
pub(crate) struct PktWriter<W> {
    inner: W,
    buf: Zeroizing<Vec<u8>>,
}

/// Room for one maximal packet with its header.
const BUFFER: usize = MAX_PAYLOAD + 4;

impl<W: Write> PktWriter<W> {
    pub fn new(inner: W) -> PktWriter<W> {
        PktWriter {
            inner,
            buf: Zeroizing::new(Vec::with_capacity(BUFFER)),
        }
    }

    /// Append `bytes`, writing the buffer out first when they would not fit
    /// (so it never reallocates, which would free a copy unwiped).
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.len() + bytes.len() > self.buf.capacity() {
            self.write_out()?;
        }
        if bytes.len() > self.buf.capacity() {
            return self.inner.write_all(bytes);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn write_out(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf)?;
            // `clear` keeps the capacity; the bytes are overwritten by later
            // packets and wiped when the writer is dropped.
            self.buf.clear();
        }
        Ok(())
    }

    fn packet(&mut self, payload: &[u8]) -> io::Result<()> {
        // An empty data packet (`0004`) is never sent.
        if payload.is_empty() {
            return Ok(());
        }
        let header = format!("{:04x}", payload.len() + 4);
        if self.buf.len() + 4 + payload.len() > self.buf.capacity() {
            self.write_out()?;
        }
        self.put(header.as_bytes())?;
        self.put(payload)
    }

    /// A text line; `\n` is appended as git expects.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        let mut payload = Vec::with_capacity(text.len() + 1);
        payload.extend_from_slice(text.as_bytes());
        payload.push(b'\n');
        self.packet(&payload)
    }

    pub(crate) fn flush_packet(&mut self) -> io::Result<()> {
        self.put(b"0000")
    }

    /// Content split into maximal packets (not followed by a flush).
    pub fn content(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(MAX_PAYLOAD) {
            self.packet(chunk)?;
        }
        Ok(())
    }

    /// Push everything written so far to git.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.inner.flush()
    }

    #[cfg(test)]
    pub(crate) fn into_inner(mut self) -> W {
        self.write_out().expect("in-memory write");
        self.inner
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_lines_content_and_flushes() {
        let mut w = PktWriter::new(Vec::new());
        w.line("git-filter-server").unwrap();
        w.flush_packet().unwrap();
        let big = vec![7u8; MAX_PAYLOAD * 2 + 10];
        w.content(&big).unwrap();
        w.flush_packet().unwrap();
        let bytes = w.into_inner();
        assert!(bytes.starts_with(b"0016git-filter-server\n0000"));
        let mut r = PktReader::new(&bytes[..]);
        assert_eq!(r.read_lines().unwrap().unwrap(), vec!["git-filter-server"]);
        let mut content = Zeroizing::new(Vec::new());
        r.read_content(&mut content).unwrap();
        assert_eq!(&content[..], &big[..]);
        assert_eq!(r.read_packet().unwrap(), None);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(PktReader::new(&b"zzzz"[..]).read_packet().is_err());
        assert!(PktReader::new(&b"0003"[..]).read_packet().is_err());
        assert!(PktReader::new(&b"0009abc"[..]).read_packet().is_err());
        assert!(PktReader::new(&b"00"[..]).read_packet().is_err());
        assert!(PktReader::new(&b"0008abcd"[..]).read_lines().is_err());
        let mut w = PktWriter::new(Vec::new());
        w.content(b"").unwrap();
        assert!(w.into_inner().is_empty());
    }
}
