//! The tree walk shared by encryption, decryption and inspection: sops' walk order
//! (documents in order, maps and lists depth-first), the path of map keys (list
//! indices are not part of it) and the comment stack the comment selectors read.
//! The top-level `sops` metadata entry is not part of the tree and is skipped.
//!
//! The walk recurses once per nesting level; the parsers bound the depth
//! (`formats::MAX_DEPTH`). A hollow document (a JSON or YAML file read for
//! encryption or decryption) is walked step by step ([`walk_source`]: JSON
//! from its source, YAML from the parser's outline), in the same order with
//! the same positions, without recursion and without a tree.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use regex::Regex;

use crate::formats::{
    json, Comment, Document, FormatError, Leaf, List, ListItem, Map, MapItem, Node, Step,
};

/// What the walk hands to its visitor.
pub enum Visit<'a> {
    Leaf(&'a Leaf),
    Comment(&'a Comment),
}

/// The walk's position: map keys from the root, and the comment stack.
///
/// A value deep in a hostile file has a long path, and the walk asks about the
/// path once per value: so the AAD text is kept up to date as keys are entered
/// and left (not rebuilt per value), and [`Position::per_path`] keeps one answer
/// per path (a list of a million values under one key costs one answer).
pub struct Position<'a> {
    /// Read-only for visitors: only the walk changes it. A key read from
    /// the source with escapes in it is owned.
    pub path: Vec<Cow<'a, str>>,
    pub comments: CommentStack<'a>,
    /// [`aad`] of `path` without the root's lone `:`.
    aad: String,
    /// Changes whenever `path` does.
    generation: u64,
    /// (asker, generation, answer) of the last [`Position::per_path`] question.
    memo: Cell<Option<(usize, u64, bool)>>,
}

/// One level per open map or list, holding the comments seen since the last
/// non-comment item of that level. The comment selectors ask, for every leaf,
/// whether any comment on the stack matches their regex; a level may hold any
/// number of comments, so the answer is kept per level and only comments added
/// since the last question are tested (linear overall, not comments × leaves).
#[derive(Default)]
pub struct CommentStack<'a> {
    levels: Vec<Vec<&'a str>>,
    /// For the regex last asked about: per level, (comments tested, matches).
    memo: RefCell<(String, Vec<(usize, usize)>)>,
}

impl<'a> CommentStack<'a> {
    /// A stack holding `levels` (outermost first).
    #[cfg(test)]
    pub(crate) fn from_levels(levels: Vec<Vec<&'a str>>) -> CommentStack<'a> {
        CommentStack {
            levels,
            memo: RefCell::default(),
        }
    }

    fn open(&mut self) {
        self.levels.push(Vec::new());
    }

    fn close(&mut self) {
        self.levels.pop();
        self.memo.get_mut().1.truncate(self.levels.len());
    }

    fn push(&mut self, c: &'a str) {
        if let Some(level) = self.levels.last_mut() {
            level.push(c);
        }
    }

    fn clear_innermost(&mut self) {
        if let Some(level) = self.levels.last_mut() {
            level.clear();
        }
        let n = self.levels.len();
        if let Some(m) = self.memo.get_mut().1.get_mut(n.wrapping_sub(1)) {
            *m = (0, 0);
        }
    }

    /// How many comments on the stack `re` matches.
    pub(crate) fn count_matching(&self, re: &Regex) -> usize {
        let mut memo = self.memo.borrow_mut();
        let (pattern, counts) = &mut *memo;
        if pattern.as_str() != re.as_str() {
            *pattern = re.as_str().to_string();
            counts.clear();
        }
        counts.resize(self.levels.len(), (0, 0));
        let mut total = 0;
        for (level, (tested, matched)) in self.levels.iter().zip(counts.iter_mut()) {
            for c in level.iter().skip(*tested) {
                if re.is_match(c) {
                    *matched += 1;
                }
            }
            *tested = level.len();
            total += *matched;
        }
        total
    }

    /// Whether the last comment of the innermost level exists and `re` matches it.
    pub(crate) fn last_matches(&self, re: &Regex) -> bool {
        self.levels
            .last()
            .and_then(|level| level.last())
            .is_some_and(|c| re.is_match(c))
    }
}

impl<'a> Position<'a> {
    fn new() -> Position<'a> {
        Position {
            path: Vec::new(),
            comments: CommentStack::default(),
            aad: String::new(),
            generation: 0,
            memo: Cell::new(None),
        }
    }

    fn enter(&mut self, key: Cow<'a, str>) {
        self.aad.push_str(&key);
        self.aad.push(':');
        self.path.push(key);
        self.generation += 1;
    }

    fn leave(&mut self) {
        if let Some(key) = self.path.pop() {
            self.aad
                .truncate(self.aad.len().saturating_sub(key.len() + 1));
        }
        self.generation += 1;
    }

    /// sops' AAD of the current path.
    pub fn aad(&self) -> &str {
        if self.aad.is_empty() {
            ":"
        } else {
            &self.aad
        }
    }

    /// `answer(path)`, computed once per path for the asker `asker` (any number
    /// that identifies the question, such as the address of a selector).
    pub(crate) fn per_path(
        &self,
        asker: usize,
        answer: impl FnOnce(&[Cow<'a, str>]) -> bool,
    ) -> bool {
        if let Some((a, g, v)) = self.memo.get() {
            if a == asker && g == self.generation {
                return v;
            }
        }
        let v = answer(&self.path);
        self.memo.set(Some((asker, self.generation, v)));
        v
    }
}

/// sops' AAD for a path: every key followed by `:` (so the root is `:`).
pub fn aad<S: AsRef<str>>(path: &[S]) -> String {
    if path.is_empty() {
        return ":".to_string();
    }
    path.iter().flat_map(|k| [k.as_ref(), ":"]).collect()
}

/// What the walk hands each value and comment to, with its position.
type Visitor<'v, 'a, E> = dyn FnMut(Visit<'_>, &Position<'a>) -> Result<(), E> + 'v;

/// Walk a document parsed whole ([`crate::formats::Store::parse`]). A hollow
/// one holds no values to visit without its source: use [`walk_source`].
pub fn walk<'a, E>(doc: &'a Document, visit: &mut Visitor<'_, 'a, E>) -> Result<(), E> {
    debug_assert!(
        doc.hollow.is_none(),
        "a hollow document walked without its source"
    );
    for root in &doc.docs {
        let mut pos = Position::new();
        walk_map(root, true, &mut pos, visit, &mut walk_node)?;
    }
    Ok(())
}

/// Walk a document from [`crate::formats::Store::parse_lean`] of `src`: a
/// hollow one ([`Hollow`]) has its top-level values read from `src` step by
/// step; any other is walked as [`walk`] does.
pub fn walk_source<'a, E: From<FormatError>>(
    doc: &'a Document,
    src: &'a str,
    visit: &mut Visitor<'_, 'a, E>,
) -> Result<(), E> {
    let Some(hollow) = &doc.hollow else {
        return walk(doc, visit);
    };
    for root in &doc.docs {
        let mut pos = Position::new();
        walk_map(
            root,
            true,
            &mut pos,
            visit,
            &mut |node, pos, visit| match (node, &hollow.yaml) {
                (Node::Leaf(at), None) => walk_steps(pos, visit, &mut |step| {
                    json::steps(src, at, hollow.lean, step)
                }),
                (Node::Map(Map { span, .. }) | Node::List(List { span, .. }), Some(outline)) => {
                    walk_steps(pos, visit, &mut |step| outline.steps(src, span.start, step))
                }
                _ => walk_node(node, pos, visit),
            },
        )?;
    }
    Ok(())
}

/// What reads a placeholder's steps (from the source, or from an outline)
/// and hands each to the walk.
type Steps<'f, 'a, E> = dyn FnMut(&mut dyn FnMut(Step<'a>) -> Result<(), E>) -> Result<(), E> + 'f;

/// Follow the steps `read` hands out for one placeholder.
fn walk_steps<'a, E>(
    pos: &mut Position<'a>,
    visit: &mut Visitor<'_, 'a, E>,
    read: &mut Steps<'_, 'a, E>,
) -> Result<(), E> {
    read(&mut |step| {
        match step {
            Step::Open => pos.comments.open(),
            Step::Close => pos.comments.close(),
            Step::Key(key) => pos.enter(key),
            Step::EndEntry => {
                pos.leave();
                clear_level(pos);
            }
            Step::EndItem => clear_level(pos),
            Step::Leaf(leaf) => visit(Visit::Leaf(&leaf), pos)?,
            Step::Comment(c) => {
                push_comment(pos, c);
                visit(Visit::Comment(c), pos)?;
            }
        }
        Ok(())
    })
}

/// How a walk goes into the value of a map entry.
type Descend<'d, 'v, 'a, E> =
    dyn FnMut(&'a Node, &mut Position<'a>, &mut Visitor<'v, 'a, E>) -> Result<(), E> + 'd;

/// `descend` reads the values of the entries of `map` (the top-level ones of
/// a hollow document from the source; any other as a tree).
fn walk_map<'a, 'v, E>(
    map: &'a Map,
    top: bool,
    pos: &mut Position<'a>,
    visit: &mut Visitor<'v, 'a, E>,
    descend: &mut Descend<'_, 'v, 'a, E>,
) -> Result<(), E> {
    pos.comments.open();
    for item in &map.items {
        match item {
            MapItem::Comment(c) => {
                push_comment(pos, c);
                visit(Visit::Comment(c), pos)?;
            }
            MapItem::Entry(e) if top && e.key == "sops" => {}
            MapItem::Entry(e) => {
                pos.enter(Cow::Borrowed(&e.key));
                descend(&e.value, pos, visit)?;
                pos.leave();
                clear_level(pos);
            }
        }
    }
    pos.comments.close();
    Ok(())
}

fn walk_list<'a, E>(
    list: &'a List,
    pos: &mut Position<'a>,
    visit: &mut Visitor<'_, 'a, E>,
) -> Result<(), E> {
    pos.comments.open();
    for item in &list.items {
        match item {
            ListItem::Comment(c) => {
                push_comment(pos, c);
                visit(Visit::Comment(c), pos)?;
            }
            ListItem::Node(n) => {
                walk_node(n, pos, visit)?;
                clear_level(pos);
            }
        }
    }
    pos.comments.close();
    Ok(())
}

fn walk_node<'a, E>(
    node: &'a Node,
    pos: &mut Position<'a>,
    visit: &mut Visitor<'_, 'a, E>,
) -> Result<(), E> {
    match node {
        Node::Map(m) => walk_map(m, false, pos, visit, &mut walk_node),
        Node::List(l) => walk_list(l, pos, visit),
        Node::Leaf(leaf) => visit(Visit::Leaf(leaf), pos),
    }
}

fn push_comment<'a>(pos: &mut Position<'a>, c: &'a Comment) {
    pos.comments.push(c.text.as_str());
}

fn clear_level(pos: &mut Position<'_>) {
    pos.comments.clear_innermost();
}
