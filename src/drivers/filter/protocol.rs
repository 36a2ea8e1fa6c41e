//! git's long-running filter protocol, version 2 (`filter.sops.process`): the
//! handshake, then one clean or smudge request after another until git closes
//! the pipe. Only the literal statuses `success` and `error` are sent (any other
//! status makes git kill the process); `delay` is not advertised. stdout belongs
//! to the protocol: every diagnostic goes to stderr.
//!
//! Plaintext passes through here in both directions (clean's input, smudge's
//! output) and is held only in zeroizing buffers. What cannot be wiped from this
//! side: the kernel's pipe buffers and git's own copies.

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

use super::{Filter, Smudged};
use crate::drivers::{DriverError, Notice};
use crate::git::pktline::{PktReader, PktWriter};

/// What the protocol loop asks of a filter (a seam for in-memory tests).
pub trait FilterOps {
    fn clean(&mut self, path: &str, input: &[u8]) -> Result<Vec<u8>, DriverError>;
    /// `None`: return the input unchanged.
    fn smudge(
        &mut self,
        path: &str,
        input: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DriverError>;
    /// The metadata git sent with a smudge request, given before every smudge
    /// (all empty when git sent none; checkout, clone and archive send
    /// `treeish=`; see [`SmudgeMeta`]).
    fn smudge_meta(&mut self, _meta: &SmudgeMeta<'_>) {}
    /// What the filter has to tell the user since it was last asked.
    fn take_notices(&mut self) -> Vec<Notice> {
        Vec::new()
    }
}

/// The optional header lines of a smudge request (git ≥ 2.27): the ref and
/// tree being checked out and the blob being smudged, each empty when absent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SmudgeMeta<'a> {
    pub reference: &'a str,
    pub treeish: &'a str,
    pub blob: &'a str,
}

impl FilterOps for Filter {
    fn clean(&mut self, path: &str, input: &[u8]) -> Result<Vec<u8>, DriverError> {
        Filter::clean(self, path, input)
    }

    fn smudge(
        &mut self,
        path: &str,
        input: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DriverError> {
        Ok(match Filter::smudge(self, path, input)? {
            Smudged::Plaintext(text) => Some(text),
            Smudged::Unchanged => None,
        })
    }

    fn smudge_meta(&mut self, meta: &SmudgeMeta<'_>) {
        self.checking_out(meta.treeish);
        self.smudging_blob(meta.blob);
        if !meta.treeish.is_empty() {
            self.prefetch(meta.treeish);
        }
    }

    fn take_notices(&mut self) -> Vec<Notice> {
        Filter::take_notices(self)
    }
}

fn protocol_error(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Serve git until it closes our stdin. What the filter has to say, and each
/// request it fails (git only learns "error"), goes to `report`.
pub fn serve<R: Read, W: Write>(
    input: R,
    output: W,
    filter: &mut dyn FilterOps,
    report: &mut dyn FnMut(Notice),
) -> io::Result<()> {
    let mut rd = PktReader::new(input);
    let mut wr = PktWriter::new(output);

    let welcome = rd
        .read_lines()?
        .ok_or_else(|| protocol_error("git closed the pipe before the handshake"))?;
    if welcome.first().map(String::as_str) != Some("git-filter-client")
        || !welcome.iter().any(|l| l == "version=2")
    {
        return Err(protocol_error(format!(
            "unexpected handshake from git: {welcome:?}"
        )));
    }
    wr.line("git-filter-server")?;
    wr.line("version=2")?;
    wr.flush_packet()?;
    wr.flush()?;
    let offered = rd
        .read_lines()?
        .ok_or_else(|| protocol_error("git closed the pipe during the handshake"))?;
    for cap in ["clean", "smudge"] {
        if offered.iter().any(|l| l == &format!("capability={cap}")) {
            wr.line(&format!("capability={cap}"))?;
        }
    }
    wr.flush_packet()?;
    wr.flush()?;

    while let Some(headers) = rd.read_byte_lines()? {
        let mut command = "";
        let mut pathname: Result<&str, String> = Ok("");
        let mut meta = SmudgeMeta::default();
        for line in &headers {
            let Some(eq) = line.iter().position(|b| *b == b'=') else {
                continue;
            };
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            // Only the path may be other than UTF-8 (git allows any bytes but NUL).
            let text = std::str::from_utf8(value);
            match (key, text) {
                (b"pathname", Ok(v)) => pathname = Ok(v),
                (b"pathname", Err(_)) => pathname = Err(String::from_utf8_lossy(value).into()),
                (b"command", Ok(v)) => command = v,
                (b"ref", Ok(v)) => meta.reference = v,
                (b"treeish", Ok(v)) => meta.treeish = v,
                (b"blob", Ok(v)) => meta.blob = v,
                _ => {}
            }
        }
        // A clean request's content is plaintext.
        let mut content = Zeroizing::new(Vec::new());
        // `list_available_blobs` (delay) carries no content; we never delay, so it
        // is answered with an error like any other unknown command.
        if command == "clean" || command == "smudge" {
            rd.read_content(&mut content)?;
        }
        if command == "smudge" {
            filter.smudge_meta(&meta);
        }
        let result = match (command, &pathname) {
            ("clean", Ok(path)) => filter
                .clean(path, &content)
                .map(|c| Some(Zeroizing::new(c))),
            ("smudge", Ok(path)) => filter.smudge(path, &content),
            // git-sops names paths in git commands and messages as text; a name
            // that is not UTF-8 is refused on the way in (nothing is stored) and
            // left as it is on the way out, and the process carries on.
            ("clean", Err(lossy)) => Err(DriverError::new(
                lossy,
                "the file name is not UTF-8, which git-sops cannot handle; nothing was staged",
            )
            .hint("rename the file to a UTF-8 name")),
            ("smudge", Err(lossy)) => {
                report(Notice::warning(
                    lossy,
                    "the file name is not UTF-8, which git-sops cannot handle; it stays encrypted",
                ));
                Ok(None)
            }
            (other, path) => Err(DriverError::new(
                path.as_deref().unwrap_or_else(|l| l.as_str()),
                format!("unsupported filter command {other:?}"),
            )),
        };
        for notice in filter.take_notices() {
            report(notice);
        }
        match result {
            Ok(out) => {
                wr.line("status=success")?;
                wr.flush_packet()?;
                wr.content(out.as_deref().map_or(&content[..], |o| &o[..]))?;
                wr.flush_packet()?;
                // An empty second status list: "unchanged, still success".
                wr.flush_packet()?;
            }
            Err(e) => {
                report(Notice::from(&e));
                wr.line("status=error")?;
                wr.flush_packet()?;
            }
        }
        wr.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Upper {
        metas: Vec<String>,
    }

    impl FilterOps for Upper {
        fn smudge_meta(&mut self, meta: &SmudgeMeta<'_>) {
            self.metas
                .push(format!("{}|{}|{}", meta.reference, meta.treeish, meta.blob));
        }

        fn clean(&mut self, path: &str, input: &[u8]) -> Result<Vec<u8>, DriverError> {
            if path == "bad" {
                return Err(DriverError::new(path, "refused"));
            }
            Ok(input.to_ascii_uppercase())
        }
        fn smudge(
            &mut self,
            _path: &str,
            _input: &[u8],
        ) -> Result<Option<Zeroizing<Vec<u8>>>, DriverError> {
            Ok(None)
        }
    }

    fn transcript(requests: &[(&str, &str, &[u8])]) -> Vec<u8> {
        let mut w = PktWriter::new(Vec::new());
        w.line("git-filter-client").unwrap();
        w.line("version=2").unwrap();
        w.flush_packet().unwrap();
        for cap in ["clean", "smudge", "delay"] {
            w.line(&format!("capability={cap}")).unwrap();
        }
        w.flush_packet().unwrap();
        for (cmd, path, content) in requests {
            w.line(&format!("command={cmd}")).unwrap();
            w.line(&format!("pathname={path}")).unwrap();
            if *cmd == "smudge" {
                w.line("ref=refs/heads/main").unwrap();
                w.line("treeish=abc=123").unwrap();
                w.line("blob=0123").unwrap();
            }
            w.flush_packet().unwrap();
            w.content(content).unwrap();
            w.flush_packet().unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn serves_a_recorded_session() {
        let input = transcript(&[
            ("clean", "a.yaml", b"a: x\n"),
            ("smudge", "a.yaml", b"A: X\n"),
            ("clean", "bad", b""),
        ]);
        let mut out = Vec::new();
        let mut upper = Upper::default();
        let mut notices = Vec::new();
        serve(&input[..], &mut out, &mut upper, &mut |n| notices.push(n)).unwrap();
        assert_eq!(upper.metas, ["refs/heads/main|abc=123|0123"]);
        // The failed request is reported, not printed by the loop itself.
        assert_eq!(notices.len(), 1);
        assert_eq!(
            (
                notices[0].level,
                notices[0].path.as_str(),
                notices[0].message.as_str()
            ),
            (crate::drivers::Level::Error, "bad", "refused")
        );
        let mut r = PktReader::new(&out[..]);
        assert_eq!(
            r.read_lines().unwrap().unwrap(),
            ["git-filter-server", "version=2"]
        );
        assert_eq!(
            r.read_lines().unwrap().unwrap(),
            ["capability=clean", "capability=smudge"]
        );
        for expected in [&b"A: X\n"[..], b"A: X\n"] {
            assert_eq!(r.read_lines().unwrap().unwrap(), ["status=success"]);
            let mut content = Zeroizing::new(Vec::new());
            r.read_content(&mut content).unwrap();
            assert_eq!(&content[..], expected);
            assert!(r.read_lines().unwrap().unwrap().is_empty());
        }
        assert_eq!(r.read_lines().unwrap().unwrap(), ["status=error"]);
        assert_eq!(r.read_packet().unwrap(), None);
    }

    #[test]
    fn refuses_a_foreign_handshake() {
        let mut w = PktWriter::new(Vec::new());
        w.line("git-foo-client").unwrap();
        w.flush_packet().unwrap();
        assert!(serve(
            &w.into_inner()[..],
            Vec::new(),
            &mut Upper::default(),
            &mut |_| {}
        )
        .is_err());
    }
}
