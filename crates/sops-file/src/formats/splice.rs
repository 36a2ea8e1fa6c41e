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

    #[test]
    fn refuses_overlap() {
        assert!(apply_edits(
            "abcdef",
            vec![Edit::replace(1..4, ""), Edit::replace(2..3, "")]
        )
        .is_err());
    }
}
