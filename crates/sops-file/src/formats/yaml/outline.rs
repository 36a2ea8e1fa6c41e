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
use super::tree::{Built, Item, PLeaf, SkNode};
use crate::formats::{Comment, Step};

/// The built tree of a hollow document, and what reading its leaves needs.
pub(crate) struct Outline {
    built: Built,
    lines: Lines,
    crlf: bool,
    step: usize,
    /// The top-level collections left here: (start, collection), in source order.
    tops: Vec<(usize, usize)>,
}

impl fmt::Debug for Outline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Outline({} collections)", self.built.colls.len())
    }
}

/// What [`Outline::traverse`] meets, in the converted tree's order.
enum Ev<'s> {
    /// A collection begins.
    Open,
    /// The innermost collection ends.
    Close,
    Comment(&'s Comment),
    /// A map item, before its value.
    Key(&'s Item),
    /// A leaf, an item of collection `.0`.
    Leaf(usize, &'s PLeaf),
    /// An item of collection `.0` ends.
    End(usize),
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
        Outline {
            built,
            lines,
            crlf,
            step,
            tops,
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

    /// The ends of the keys, values and comments of the top-level collection
    /// whose placeholder starts at `start`, in the order the converted tree
    /// holds them, each with whether it is a comment's (what `metadata` asks
    /// of a document's last line: ties go to the later one, so the order is
    /// the tree's).
    pub(super) fn ends(&self, start: usize, f: &mut dyn FnMut(usize, bool)) {
        let _ = self.traverse(start, &mut |ev| {
            match ev {
                Ev::Comment(c) => f(c.span.end, true),
                Ev::Key(item) => f(item.key_end().unwrap_or(0), false),
                Ev::Leaf(_, leaf) => f(leaf.span().end, false),
                Ev::Open | Ev::Close | Ev::End(_) => {}
            }
            Ok::<(), ()>(())
        });
    }

    /// The steps of the top-level collection whose placeholder starts at
    /// `start`, read from `text` (the source this outline was made of).
    pub(crate) fn steps<'s, E>(
        &'s self,
        text: &'s str,
        start: usize,
        f: &mut dyn FnMut(Step<'s>) -> Result<(), E>,
    ) -> Result<(), E> {
        let src = Source::again(text, &self.lines);
        self.traverse(start, &mut |ev| {
            f(match ev {
                Ev::Open => Step::Open,
                Ev::Close => Step::Close,
                Ev::Comment(c) => Step::Comment(c),
                Ev::Key(item) => Step::Key(Cow::Borrowed(item.key(text).unwrap_or(""))),
                Ev::Leaf(coll, leaf) => Step::Leaf(leaf_of(
                    &src,
                    &self.built,
                    coll,
                    leaf.unpack(),
                    self.crlf,
                    self.step,
                )),
                Ev::End(coll) => self.end_of(coll),
            })
        })
    }

    /// The top-level collection whose placeholder starts at `start`, depth
    /// first, without recursion: each collection's comments before the first
    /// item they precede (as the conversion interleaves them), a map item's
    /// key before its value.
    fn traverse<'s, E>(
        &'s self,
        start: usize,
        f: &mut dyn FnMut(Ev<'s>) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(top) = self.top(start) else {
            return Ok(());
        };
        let mut stack = vec![Frame {
            coll: top,
            item: 0,
            comment: 0,
        }];
        f(Ev::Open)?;
        while let Some(frame) = stack.last_mut() {
            let Some(coll) = self.built.colls.get(frame.coll) else {
                break;
            };
            let items = self.built.items(coll);
            let next = items.get(frame.item);
            if let Some((sort, comment)) = coll.comments.get(frame.comment) {
                if next.is_none_or(|item| *sort <= item.start()) {
                    frame.comment += 1;
                    f(Ev::Comment(comment))?;
                    continue;
                }
            }
            let Some(item) = next else {
                stack.pop();
                f(Ev::Close)?;
                if let Some(parent) = stack.last() {
                    f(Ev::End(parent.coll))?;
                }
                continue;
            };
            frame.item += 1;
            let id = frame.coll;
            if coll.is_map {
                f(Ev::Key(item))?;
            }
            match &item.node {
                SkNode::Leaf(leaf) => {
                    f(Ev::Leaf(id, leaf))?;
                    f(Ev::End(id))?;
                }
                SkNode::Coll(child) => {
                    f(Ev::Open)?;
                    stack.push(Frame {
                        coll: *child,
                        item: 0,
                        comment: 0,
                    });
                }
                // Only a tree that is checked has these, and it is never
                // walked; converted, it is an empty map.
                SkNode::Checked(_) => {
                    f(Ev::Open)?;
                    f(Ev::Close)?;
                    f(Ev::End(id))?;
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
