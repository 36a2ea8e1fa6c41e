//! The hollow read of a YAML file (issue 18): what encrypting or decrypting a
//! whole file walks instead of a document tree.
//!
//! The built tree ([`Built`]: one list of items, leaves inline, strings mostly
//! left in the source, comments already placed in their collections) is
//! itself enough to walk. Converting it into the document tree made a second
//! copy of every value's place, larger than the first, and both were alive at
//! once; a large file's walk then held its text, that tree and the output
//! growing beside them. A hollow document
//! ([`crate::formats::Hollow`]) keeps this outline instead, and its top-level
//! collections are empty placeholders the walk reads through [`Outline::steps`],
//! one step at a time and without recursion, in the order and with the
//! positions the converted tree has (proved by the tests in `super::tests`).

use std::borrow::Cow;
use std::fmt;

use super::leaf_of;
use super::scan::{Lines, Source};
use super::tree::{Built, SkNode};
use crate::formats::{Span, Step};

/// The built tree of a hollow document, and what reading its leaves needs.
pub(crate) struct Outline {
    built: Built,
    lines: Lines,
    crlf: bool,
    step: usize,
    /// The top-level collections left here: (start, collection), in source order.
    tops: Vec<(usize, usize)>,
    /// Every collection, ordered by where it starts (a document's are together).
    by_start: Vec<usize>,
}

impl fmt::Debug for Outline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Outline({} collections)", self.built.colls.len())
    }
}

/// One open collection of a walk: its id, its next item and next comment.
struct Frame {
    coll: usize,
    item: usize,
    comment: usize,
}

impl Outline {
    pub(super) fn new(
        mut built: Built,
        lines: Lines,
        crlf: bool,
        step: usize,
        mut tops: Vec<(usize, usize)>,
    ) -> Outline {
        // In source order already (roots in order, their items in order);
        // sorted so that [`Outline::top`] never depends on it.
        tops.sort_unstable();
        // The conversion sorts each collection's comments as it interleaves
        // them; the walk reads them in that order.
        for c in &mut built.colls {
            c.comments.sort_by_key(|(s, _)| *s);
        }
        built.items.shrink_to_fit();
        let mut by_start: Vec<usize> = (0..built.colls.len()).collect();
        by_start.sort_by_key(|&c| built.colls[c].start);
        Outline {
            built,
            lines,
            crlf,
            step,
            tops,
            by_start,
        }
    }

    /// The top-level collection whose placeholder starts at `start`.
    fn top(&self, start: usize) -> Option<usize> {
        let i = self.tops.partition_point(|&(s, _)| s < start);
        self.tops
            .get(i)
            .filter(|&&(s, _)| s == start)
            .map(|&(_, c)| c)
    }

    /// Where the first item of the top-level collection whose placeholder
    /// starts at `start` begins (for a map: its first key).
    pub(super) fn first_item(&self, start: usize) -> Option<usize> {
        let coll = self.built.colls.get(self.top(start)?)?;
        self.built.items(coll).first().map(|item| item.start())
    }

    /// The latest end, at or before `before`, of a key, a value or a comment
    /// of the collections left here inside `within`, and whether it is a
    /// comment's (what `metadata` asks of a document's last line).
    pub(super) fn last_before(&self, within: &Span, before: usize) -> Option<(usize, bool)> {
        let first = self
            .by_start
            .partition_point(|&c| self.built.colls[c].start < within.start);
        let mut best: Option<(usize, bool)> = None;
        let mut consider = |end: usize, comment: bool| {
            if end <= before && best.is_none_or(|(b, _)| end >= b) {
                best = Some((end, comment));
            }
        };
        for &id in self.by_start.get(first..).unwrap_or(&[]) {
            let c = &self.built.colls[id];
            if c.start >= within.end {
                break;
            }
            for item in self.built.items(c) {
                if let Some(key_end) = item.key_end() {
                    consider(key_end, false);
                }
                if let SkNode::Leaf(leaf) = &item.node {
                    consider(leaf.span().end, false);
                }
            }
            for (_, comment) in &c.comments {
                consider(comment.span.end, true);
            }
        }
        best
    }

    /// The steps of the top-level collection whose placeholder starts at
    /// `start`, read from `text` (the source this outline was made of).
    pub(crate) fn steps<'s, E>(
        &'s self,
        text: &'s str,
        start: usize,
        f: &mut dyn FnMut(Step<'s>) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(top) = self.top(start) else {
            return Ok(());
        };
        let src = Source::again(text, &self.lines);
        let mut stack = vec![Frame {
            coll: top,
            item: 0,
            comment: 0,
        }];
        f(Step::Open)?;
        while let Some(frame) = stack.last_mut() {
            let Some(coll) = self.built.colls.get(frame.coll) else {
                break;
            };
            let items = self.built.items(coll);
            let next = items.get(frame.item);
            // Comments come before the first item they precede.
            if let Some((sort, comment)) = coll.comments.get(frame.comment) {
                if next.is_none_or(|item| *sort <= item.start()) {
                    frame.comment += 1;
                    f(Step::Comment(comment))?;
                    continue;
                }
            }
            let Some(item) = next else {
                stack.pop();
                f(Step::Close)?;
                if let Some(parent) = stack.last() {
                    f(self.end_of(parent.coll))?;
                }
                continue;
            };
            frame.item += 1;
            let id = frame.coll;
            if coll.is_map {
                let key = item.key(text).unwrap_or("");
                f(Step::Key(Cow::Borrowed(key)))?;
            }
            match &item.node {
                SkNode::Leaf(leaf) => {
                    let leaf = leaf_of(&src, &self.built, id, leaf.unpack(), self.crlf, self.step);
                    f(Step::Leaf(leaf))?;
                    f(self.end_of(id))?;
                }
                SkNode::Coll(child) => {
                    f(Step::Open)?;
                    stack.push(Frame {
                        coll: *child,
                        item: 0,
                        comment: 0,
                    });
                }
                // Only a tree that is checked has these, and it is never
                // walked; converted, it is an empty map.
                SkNode::Checked(_) => {
                    f(Step::Open)?;
                    f(Step::Close)?;
                    f(self.end_of(id))?;
                }
            }
        }
        Ok(())
    }

    /// The step that ends an item of collection `coll`.
    fn end_of<'s>(&self, coll: usize) -> Step<'s> {
        if self.built.colls.get(coll).is_some_and(|c| c.is_map) {
            Step::EndEntry
        } else {
            Step::EndItem
        }
    }
}
