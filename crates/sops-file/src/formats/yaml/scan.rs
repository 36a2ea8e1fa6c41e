//! Byte-level helpers over the source text: position conversion and span fix-ups.
//!
//! saphyr-parser reports positions as *character* indices and its scalar spans do
//! not always cover exactly the scalar's text (quoted scalars run on through a
//! trailing comment, block scalars start at their content instead of the `|`/`>`
//! header and end after trailing blank lines, properties like `!!str` are included).
//! Splicing needs exact byte ranges, so this module maps character indices to bytes
//! and re-scans the source around each scalar to find its true extent. It also finds
//! the comments, which saphyr does not report at all.

use std::borrow::Cow;
use std::ops::Range;

/// Character index → byte offset conversion, plus line starts, for one source text.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    /// (char index, byte offset) just after every non-ASCII char: between two
    /// of these every char is one byte, so the table stays empty for ASCII
    /// text (a table per char cost 8 bytes per input byte on large files).
    after_wide: Cow<'a, [(usize, usize)]>,
    /// Byte offsets of line starts (after `\n`).
    line_starts: Cow<'a, [usize]>,
}

/// The tables of a [`Source`], kept apart from its text (by the outline of a
/// hollow document, which outlives the parse: [`super::outline`]).
#[derive(Default)]
pub(crate) struct Lines {
    after_wide: Vec<(usize, usize)>,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Source<'a> {
        let after_wide = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices()
                .enumerate()
                .filter(|(_, (_, c))| !c.is_ascii())
                .map(|(ci, (bi, c))| (ci + 1, bi + c.len_utf8()))
                .collect()
        };
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Source {
            text,
            after_wide: Cow::Owned(after_wide),
            line_starts: Cow::Owned(line_starts),
        }
    }

    /// Its tables, to read `text` again later ([`Source::again`]).
    pub(crate) fn into_lines(self) -> Lines {
        Lines {
            after_wide: self.after_wide.into_owned(),
            line_starts: self.line_starts.into_owned(),
        }
    }

    /// The source of `text` with the tables [`Source::into_lines`] gave
    /// for it, without computing them again.
    pub(crate) fn again(text: &'a str, lines: &'a Lines) -> Source<'a> {
        Source {
            text,
            after_wide: Cow::Borrowed(&lines.after_wide),
            line_starts: Cow::Borrowed(&lines.line_starts),
        }
    }

    /// Byte offset of a saphyr character index (clamped to the text).
    pub fn byte(&self, char_index: usize) -> usize {
        let before = self.after_wide.partition_point(|(c, _)| *c <= char_index);
        let (ci, bi) = self.after_wide[..before].last().copied().unwrap_or((0, 0));
        (bi + (char_index - ci)).min(self.text.len())
    }

    /// 0-based line index of a byte offset.
    pub fn line_of(&self, at: usize) -> usize {
        match self.line_starts.binary_search(&at) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    pub(crate) fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len())
    }

    pub(crate) fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// End of the line containing `at`, before its `\r\n` or `\n`.
    pub(crate) fn line_end(&self, at: usize) -> usize {
        let b = self.text.as_bytes();
        let mut i = at.min(b.len());
        while i < b.len() && b[i] != b'\n' {
            i += 1;
        }
        if i > 0 && i <= b.len() && i > at && b[i - 1] == b'\r' {
            i - 1
        } else {
            i
        }
    }

    /// 0-based column in characters of a byte offset. Through the table of
    /// non-ASCII chars, not by counting: a file may be one long line.
    pub fn col(&self, at: usize) -> usize {
        let at = at.min(self.text.len());
        let ls = self.line_start(self.line_of(at));
        self.char_index(at) - self.char_index(ls)
    }

    /// Character index of byte offset `at` (a char boundary, `ls <= at`).
    fn char_index(&self, at: usize) -> usize {
        let k = self.after_wide.partition_point(|&(_, b)| b <= at);
        match k.checked_sub(1).and_then(|k| self.after_wide.get(k)) {
            Some(&(ci, bi)) => ci + (at - bi),
            None => at,
        }
    }

    /// 0-based column in bytes of a byte offset.
    pub(crate) fn byte_col(&self, at: usize) -> usize {
        at - self.line_start(self.line_of(at))
    }

    /// (1-based line, 1-based column in characters).
    pub(crate) fn line_col(&self, at: usize) -> (usize, usize) {
        (self.line_of(at) + 1, self.col(at) + 1)
    }

    /// Text of the line containing `at` (without line break).
    pub(crate) fn line_text(&self, line: usize) -> &'a str {
        let s = self.line_start(line);
        let e = self.line_end(s);
        self.text.get(s..e).unwrap_or("")
    }
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Skip node properties (`!tag`, `&anchor`) and the whitespace and comments after
/// them, starting at `at`. Returns the offset of the node's own text.
pub(crate) fn skip_properties(src: &str, mut at: usize, limit: usize) -> usize {
    let b = src.as_bytes();
    loop {
        while at < limit && (is_ws(b[at]) || b[at] == b'\n' || b[at] == b'\r') {
            at += 1;
        }
        if at < limit && b[at] == b'#' {
            while at < limit && b[at] != b'\n' {
                at += 1;
            }
            continue;
        }
        if at < limit && (b[at] == b'!' || b[at] == b'&') {
            if b[at] == b'!' && b.get(at + 1) == Some(&b'<') {
                while at < limit && b[at] != b'>' {
                    at += 1;
                }
                at += 1;
            } else {
                while at < limit && !is_ws(b[at]) && b[at] != b'\n' && b[at] != b'\r' {
                    at += 1;
                }
            }
            continue;
        }
        return at.min(b.len());
    }
}

/// End (exclusive) of a quoted scalar starting with its quote at `start`.
pub(crate) fn quoted_end(src: &str, start: usize) -> usize {
    let b = src.as_bytes();
    let Some(&q) = b.get(start) else {
        return start;
    };
    let mut i = start + 1;
    while i < b.len() {
        if q == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// A block scalar header: `|` or `>` with its indicators.
pub(crate) struct BlockHeader {
    /// Offset of the `|`/`>`.
    pub start: usize,
    /// End of the indicators (`|-2` → after `2`).
    pub end: usize,
    pub keep: bool,
    /// A comment follows the header on its line.
    pub(crate) has_comment: bool,
}

/// Find the header of a block scalar: the last `|`/`>` before `content_start`
/// (saphyr's span start for the scalar) that is not inside a comment, scanning
/// forward from `from` (the end of the previous event).
pub(crate) fn block_header(src: &str, from: usize, content_start: usize) -> Option<BlockHeader> {
    let b = src.as_bytes();
    let mut i = from;
    let mut found = None;
    let limit = content_start.min(b.len());
    while i < limit {
        let c = b[i];
        if c == b'#' && (i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n' | b'\r')) {
            while i < limit && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if (c == b'|' || c == b'>') && found.is_none() {
            found = Some(i);
            break;
        }
        if c == b'!' || c == b'&' {
            while i < limit && !is_ws(b[i]) && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    let start = found?;
    let mut e = start + 1;
    let mut keep = false;
    while e < b.len() {
        match b[e] {
            b'+' => keep = true,
            b'-' => {}
            b'1'..=b'9' => {}
            _ => break,
        }
        e += 1;
    }
    let mut j = e;
    while j < b.len() && is_ws(b[j]) {
        j += 1;
    }
    let has_comment = j < b.len() && b[j] == b'#';
    Some(BlockHeader {
        start,
        end: e,
        keep,
        has_comment,
    })
}

/// The extent of a block scalar's text: from the header to the end of its last
/// content line, given its content indentation. `trailing_newlines` is the number of
/// line breaks at the end of the decoded value; with keep chomping the blank lines
/// they stand for are included (up to, not including, the last line break).
pub(crate) fn block_end(
    src: &Source<'_>,
    header: &BlockHeader,
    content_indent: usize,
    trailing_newlines: usize,
) -> usize {
    let text = src.text;
    let header_line = src.line_of(header.start);
    let mut end = src.line_end(header.end);
    let mut line = header_line + 1;
    let mut last_content_line = header_line;
    while line < src.line_count() {
        let ls = src.line_start(line);
        if ls >= text.len() {
            break;
        }
        let t = src.line_text(line);
        let spaces = t.bytes().take_while(|&c| c == b' ').count();
        let rest = &t[spaces..];
        if rest.is_empty() {
            if spaces > content_indent {
                last_content_line = line;
            }
        } else if spaces < content_indent {
            break;
        } else {
            last_content_line = line;
        }
        line += 1;
    }
    if last_content_line > header_line {
        end = src.line_end(src.line_start(last_content_line));
    }
    // With keep chomping, include the blank lines of the value, all but the final
    // line break (with no content line, the header's break counts as the first).
    let extra = if last_content_line == header_line {
        trailing_newlines
    } else {
        trailing_newlines.saturating_sub(1)
    };
    if header.keep && extra > 0 {
        let mut l = last_content_line + extra;
        if l >= src.line_count() {
            l = src.line_count() - 1;
        }
        end = src.line_end(src.line_start(l));
    }
    end
}

/// A position as the built tree keeps it: YAML texts are at most
/// `tree::MAX_TEXT` long (refused beyond), so it always fits.
pub(crate) fn pos32(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

/// A byte range no comment can start in (a scalar's or key's text), as the
/// built tree lists them: one per scalar of the file, so kept in `u32`s
/// (YAML texts are at most 4 GiB, `tree::MAX_TEXT`; issue 18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Opaque {
    start: u32,
    end: u32,
}

impl Opaque {
    pub(crate) fn new(span: &Range<usize>) -> Opaque {
        Opaque {
            start: pos32(span.start),
            end: pos32(span.end),
        }
    }

    pub(crate) fn start(&self) -> usize {
        self.start as usize
    }

    pub(crate) fn end(&self) -> usize {
        self.end as usize
    }
}

/// A comment found in the source: the `#` offset and the text range after it.
#[derive(Clone, Debug)]
pub(crate) struct RawComment {
    pub hash: usize,
    pub text: Range<usize>,
}

/// Find every comment outside the `opaque` ranges (scalar texts, sorted by start):
/// a `#` at a line start or after whitespace, running to the end of its line.
pub(crate) fn find_comments(src: &Source<'_>, opaque: &[Opaque]) -> Vec<RawComment> {
    let b = src.text.as_bytes();
    let mut out = Vec::new();
    let mut k = 0;
    let mut i = 0;
    while i < b.len() {
        while k < opaque.len() && opaque[k].end() <= i {
            k += 1;
        }
        if k < opaque.len() && opaque[k].start() <= i && i < opaque[k].end() {
            i = opaque[k].end();
            continue;
        }
        if b[i] == b'#'
            && (i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n' | b'\r') || is_bom_before(b, i))
        {
            let end = src.line_end(i);
            out.push(RawComment {
                hash: i,
                text: i + 1..end,
            });
            i = end;
            continue;
        }
        i += 1;
    }
    out
}

fn is_bom_before(b: &[u8], i: usize) -> bool {
    i == 3 && b.starts_with(&[0xEF, 0xBB, 0xBF])
}

#[cfg(test)]
mod source_tests {
    use super::Source;

    #[test]
    fn char_indices_map_to_bytes() {
        for text in ["", "plain: ascii\n", "é: ü\n€x\n", "a𝄞b\u{feff}c", "ééé"] {
            let src = Source::new(text);
            let mut expected: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            expected.push(text.len());
            for (ci, bi) in expected.iter().enumerate() {
                assert_eq!(src.byte(ci), *bi, "{text:?} char {ci}");
            }
            assert_eq!(src.byte(expected.len() + 5), text.len(), "clamped");
        }
    }

    #[test]
    fn columns_count_chars_from_the_line_start() {
        for text in [
            "",
            "a: b\n  c\n",
            "é: ü\n€x\n  é€𝄞x\n",
            "\u{feff}a: 1\r\nb: é\n",
        ] {
            let src = Source::new(text);
            for (at, _) in text.char_indices().chain([(text.len(), ' ')]) {
                let ls = text[..at].rfind('\n').map_or(0, |i| i + 1);
                assert_eq!(
                    src.col(at),
                    text[ls..at].chars().count(),
                    "{text:?} at {at}"
                );
            }
        }
    }
}
