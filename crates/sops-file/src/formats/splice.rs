//! Splicing: applying replacement text to byte spans of the original source.
//! This is the only way encrypted or decrypted output is produced, so everything
//! outside the replaced spans survives byte for byte.

use zeroize::Zeroizing;

use super::Span;

/// Replace `span` of the source with `text`. An empty span inserts.
/// The text is a decrypted value when decrypting, so it is wiped when the edit
/// is dropped, as every plaintext buffer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub span: Span,
    pub text: String,
}

impl Drop for Edit {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.text);
    }
}

impl Edit {
    pub fn replace(span: Span, text: impl Into<String>) -> Edit {
        Edit {
            span,
            text: text.into(),
        }
    }

    pub fn insert(at: usize, text: impl Into<String>) -> Edit {
        Edit::replace(at..at, text)
    }
}

/// Why a set of edits cannot be applied.
#[derive(Debug, thiserror::Error)]
#[error("internal error: overlapping or out-of-range edits at bytes {at}")]
pub struct SpliceError {
    pub at: usize,
}

/// Apply edits to `src`. Edits may come in any order; they must not overlap
/// (inserts at the same offset are applied in the order given).
pub fn apply_edits(src: &str, mut edits: Vec<Edit>) -> Result<Zeroizing<String>, SpliceError> {
    edits.sort_by_key(|e| (e.span.start, e.span.end));
    // The exact size (the edits do not overlap, checked below; a bad span only
    // makes the estimate off): decryption replaces long `ENC[...]` texts with
    // short plaintexts, and reserving the input's size on top of the edits cost
    // as much again as the whole output (issue 18). Never grown, so no copy of
    // the plaintext is left behind in a freed buffer.
    let added: usize = edits.iter().map(|e| e.text.len()).sum();
    let removed: usize = edits.iter().map(|e| e.span.len()).sum();
    let mut out = Zeroizing::new(String::with_capacity(
        (src.len() + added).saturating_sub(removed),
    ));
    let mut pos = 0;
    for edit in &edits {
        if edit.span.start < pos
            || edit.span.end < edit.span.start
            || edit.span.end > src.len()
            || !src.is_char_boundary(edit.span.start)
            || !src.is_char_boundary(edit.span.end)
        {
            return Err(SpliceError {
                at: edit.span.start,
            });
        }
        out.push_str(&src[pos..edit.span.start]);
        out.push_str(&edit.text);
        pos = edit.span.end;
    }
    out.push_str(&src[pos..]);
    Ok(out)
}

/// Edits applied as they are made, straight into the output, for edits made
/// in source order (a walk of a tree built from the source): the edits never
/// exist all at once beside the output, which for encryption is several times
/// the size of the input (issue 18).
///
/// The result is exactly [`apply_edits`]' for the same edits in the same order,
/// or nothing: an edit that [`apply_edits`] would have sorted before an earlier
/// one, or could not apply, stops the splicer ([`Splicer::finish`] is `None`),
/// and the caller makes its edits again and applies them with [`apply_edits`].
pub(crate) struct Splicer<'a> {
    src: &'a str,
    /// Not a `Zeroizing`, which wipes the whole capacity when dropped: the
    /// room reserved ahead is never touched, and wiping it would make the
    /// system back it with memory. [`Splicer`]'s drop wipes what was written.
    out: String,
    /// The source up to here is written.
    pos: usize,
    /// (start, end) of the last edit written: [`apply_edits`] orders by it.
    last: (usize, usize),
    /// Edits known before the walk (removing the metadata), sorted: each is
    /// written before the first later edit that sorts after it, as the stable
    /// sort of [`apply_edits`] places edits appended after the walk's.
    pending: std::vec::IntoIter<Edit>,
    next: Option<Edit>,
    /// The output holds a decrypted plaintext: it is never grown in place (a
    /// grown buffer can leave a copy behind), but copied and the old one wiped.
    secret: bool,
    failed: bool,
}

impl<'a> Splicer<'a> {
    /// A splicer for `src` whose output starts with room for `capacity` bytes.
    pub(crate) fn new(src: &'a str, capacity: usize, secret: bool, mut pending: Vec<Edit>) -> Self {
        pending.sort_by_key(|e| (e.span.start, e.span.end));
        let mut pending = pending.into_iter();
        let next = pending.next();
        Splicer {
            src,
            out: String::with_capacity(capacity),
            pos: 0,
            last: (0, 0),
            pending,
            next,
            secret,
            failed: false,
        }
    }

    /// Apply `edit` (its text is wiped when it is dropped, here).
    pub(crate) fn push(&mut self, edit: Edit) {
        if self.failed {
            return;
        }
        let key = (edit.span.start, edit.span.end);
        while let Some(known) = self.next.take() {
            if (known.span.start, known.span.end) >= key {
                self.next = Some(known);
                break;
            }
            self.write(&known);
            self.next = self.pending.next();
        }
        self.write(&edit);
    }

    fn write(&mut self, edit: &Edit) {
        let span = &edit.span;
        let key = (span.start, span.end);
        if self.failed
            || key < self.last
            || span.start < self.pos
            || span.end < span.start
            || span.end > self.src.len()
            || !self.src.is_char_boundary(span.start)
            || !self.src.is_char_boundary(span.end)
        {
            self.failed = true;
            return;
        }
        self.last = key;
        let src = self.src;
        let gap = &src[self.pos..span.start];
        self.room(gap.len() + edit.text.len());
        self.out.push_str(gap);
        self.out.push_str(&edit.text);
        self.pos = span.end;
    }

    /// Make room for `more` bytes. A secret output is copied into a new buffer
    /// and the old one wiped; any other grows in place (for a large buffer the
    /// allocator moves pages rather than copying them).
    fn room(&mut self, more: usize) {
        let needed = self.out.len().saturating_add(more);
        if needed <= self.out.capacity() {
            return;
        }
        let capacity = needed.max(self.out.capacity().saturating_mul(2));
        if self.secret {
            let mut grown = String::with_capacity(capacity);
            grown.push_str(&self.out);
            wipe(std::mem::replace(&mut self.out, grown));
        } else {
            self.out.reserve(capacity - self.out.len());
        }
    }

    /// Write the pending edits; whether every edit so far was written (else
    /// [`Splicer::finish`] is `None`).
    pub(crate) fn settle(&mut self) -> bool {
        while let Some(known) = self.next.take() {
            self.write(&known);
            self.next = self.pending.next();
        }
        !self.failed
    }

    /// The output, with the pending edits and the rest of the source; `None`
    /// when an edit came out of order or could not be applied.
    pub(crate) fn finish(mut self) -> Option<Zeroizing<String>> {
        if !self.settle() {
            return None;
        }
        let src = self.src;
        let rest = &src[self.pos..];
        self.room(rest.len());
        self.out.push_str(rest);
        let mut out = std::mem::take(&mut self.out);
        // A plaintext is wiped, capacity and all, when its owner drops it:
        // room reserved ahead and never used would then be touched.
        if self.secret && out.capacity() - out.len() > out.len() / 8 {
            let exact = String::from(out.as_str());
            wipe(std::mem::replace(&mut out, exact));
        }
        Some(Zeroizing::new(out))
    }
}

impl Drop for Splicer<'_> {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.out));
    }
}

/// Wipe what was written to `s` (not the rest of its capacity), then free it.
fn wipe(s: String) {
    let mut bytes = s.into_bytes();
    zeroize::Zeroize::zeroize(bytes.as_mut_slice());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_in_span_order() {
        let out = apply_edits(
            "a: x\nb: y\n",
            vec![Edit::replace(8..9, "Y"), Edit::replace(3..4, "X")],
        )
        .unwrap();
        assert_eq!(out.as_str(), "a: X\nb: Y\n");
    }

    /// The splicer writes what [`apply_edits`] writes, or stops.
    #[test]
    fn the_splicer_agrees_with_apply_edits() {
        let src = "a: x\nb: y\nc: z\n";
        let cases: Vec<(Vec<Edit>, Vec<Edit>)> = vec![
            (
                vec![Edit::replace(3..4, "X"), Edit::replace(8..9, "YY")],
                vec![],
            ),
            (
                vec![Edit::replace(3..4, "X")],
                vec![Edit::replace(4..9, ""), Edit::insert(0, "#")],
            ),
            (vec![Edit::insert(4, "1")], vec![Edit::insert(4, "2")]),
            (
                vec![Edit::replace(8..9, "Y"), Edit::replace(3..4, "X")],
                vec![],
            ),
            (
                vec![Edit::replace(3..9, "X"), Edit::replace(8..9, "Y")],
                vec![],
            ),
            (vec![Edit::replace(3..40, "X")], vec![]),
        ];
        for (walk, pending) in cases {
            let mut all = walk.clone();
            all.extend(pending.clone());
            let expected = apply_edits(src, all).ok();
            let mut splicer = Splicer::new(src, 0, true, pending);
            for e in &walk {
                splicer.push(e.clone());
            }
            match splicer.finish() {
                Some(out) => assert_eq!(Some(out), expected),
                None => assert!(splicer_may_stop(&walk)),
            }
        }
    }

    /// Whether the walk's edits are out of order or overlapping (the splicer stops then).
    fn splicer_may_stop(walk: &[Edit]) -> bool {
        walk.windows(2).any(|w| {
            (w[1].span.start, w[1].span.end) < (w[0].span.start, w[0].span.end)
                || w[1].span.start < w[0].span.end
        }) || walk.iter().any(|e| e.span.end > 16)
    }

    #[test]
    fn refuses_overlap() {
        assert!(apply_edits(
            "abcdef",
            vec![Edit::replace(1..4, ""), Edit::replace(2..3, "")]
        )
        .is_err());
    }
}
