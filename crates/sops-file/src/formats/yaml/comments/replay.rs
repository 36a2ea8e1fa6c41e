//! go-yaml v3's scanner, parser and composer, replayed for comments only (see the
//! parent module for what they decide). The code follows go-yaml's own structure
//! (`scannerc.go`, `parserc.go`, `decode.go`) closely, state for state, so that it
//! can be compared with it line by line; tokens come from [`super::lex`] instead of
//! a scanner of scalars.

use std::collections::HashMap;

use super::{bom_len, Units, U};
use crate::formats::yaml::scan::Source;

// ---------------------------------------------------------------------------------
// go-yaml's scanner and parser, for comments only
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum T {
    StreamStart,
    StreamEnd,
    DocStart,
    DocEnd,
    Directive,
    BlockSeqStart,
    BlockMapStart,
    BlockEnd,
    BlockEntry,
    FlowSeqStart,
    FlowSeqEnd,
    FlowMapStart,
    FlowMapEnd,
    FlowEntry,
    Key,
    Value,
    Alias,
    Property,
    Scalar,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    t: T,
    start: i64,
}

/// go-yaml's token queue. Tokens keep their number from the start of the
/// stream (the parser's head and the simple keys refer to them by it), but
/// those the parser consumed long ago are forgotten: on a large file the
/// whole queue was several times its size (issue 18). Only the head, the
/// tokens after it and the last few are ever looked at; a simple key that may
/// still get a `KEY` inserted before it is never behind the head.
#[derive(Default)]
struct Toks {
    /// The number of the first token held.
    base: usize,
    items: Vec<Tok>,
}

/// Tokens kept behind the parser's head when the queue forgets.
const TOKS_KEPT: usize = 64;
/// How many consumed tokens the queue holds before it forgets them.
const TOKS_FORGET: usize = 4096;

impl Toks {
    fn len(&self) -> usize {
        self.base + self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, tok: Tok) {
        self.items.push(tok);
    }

    fn insert(&mut self, at: usize, tok: Tok) {
        let at = at.saturating_sub(self.base).min(self.items.len());
        self.items.insert(at, tok);
    }

    fn get(&self, number: usize) -> Option<Tok> {
        number
            .checked_sub(self.base)
            .and_then(|i| self.items.get(i))
            .copied()
    }

    fn last(&self) -> Option<&Tok> {
        self.items.last()
    }

    /// Forget the tokens well behind `head`, once there are many.
    fn consumed_to(&mut self, head: usize) {
        let behind = head.saturating_sub(self.base);
        if behind >= TOKS_FORGET + TOKS_KEPT {
            let forget = (behind - TOKS_KEPT).min(self.items.len().saturating_sub(TOKS_KEPT));
            self.items.drain(..forget);
            self.base += forget;
        }
    }
}

/// A comment text as go-yaml builds it: comment lines (raw comment indices) and
/// line breaks (`NL`); sops reads every non-empty line of it.
pub(super) type Text = Vec<u32>;
pub(super) const NL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupKind {
    Head,
    Line,
    Foot,
}

#[derive(Clone, Copy, Debug, Default)]
struct Mark {
    index: i64,
    line: i64,
    column: i64,
}

#[derive(Debug)]
struct Group {
    kind: GroupKind,
    token_mark: i64,
    start: Mark,
    /// Zero for line comments, as in go-yaml.
    end: i64,
    scan_mark: i64,
    text: Text,
    /// Handed to the parser (go-yaml clears the record then).
    taken: bool,
}

#[derive(Clone, Copy, Debug)]
struct SimpleKey {
    possible: bool,
    token: usize,
    index: usize,
    line: usize,
    column: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    StreamStart,
    ImplicitDocStart,
    DocStart,
    DocContent,
    DocEnd,
    BlockNode,
    BlockSeqFirst,
    BlockSeqEntry,
    IndentlessEntry,
    BlockMapFirstKey,
    BlockMapKey,
    BlockMapValue,
    FlowSeqFirst,
    FlowSeqEntry,
    FlowSeqPairKey,
    FlowSeqPairValue,
    FlowSeqPairEnd,
    FlowMapFirstKey,
    FlowMapKey,
    FlowMapValue,
    FlowMapEmptyValue,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EvKind {
    StreamStart,
    StreamEnd,
    DocStart,
    DocEnd,
    Scalar,
    SeqStart { flow: bool },
    SeqEnd,
    MapStart { flow: bool },
    MapEnd,
}

#[derive(Debug)]
struct Event {
    kind: EvKind,
    head: Text,
    line: Text,
    foot: Text,
}

impl Event {
    fn bare(kind: EvKind) -> Event {
        Event {
            kind,
            head: Vec::new(),
            line: Vec::new(),
            foot: Vec::new(),
        }
    }
}

/// go-yaml's scanner and parser, reduced to what decides where comments go: the
/// token queue with its inserted tokens, indentation levels, simple keys (they
/// decide how far the scanner runs ahead), the comment groups, and the parser's
/// state machine with its pending head, line, foot and stem comments.
pub(super) struct Sim<'s, 'a> {
    src: &'s Source<'a>,
    b: &'s [u8],
    ascii: bool,
    bom: usize,
    units: Units<'s>,
    /// (hash, end of text) of every comment, by index.
    comments: &'s [(usize, usize)],
    // Scanner.
    pos: usize,
    toks: Toks,
    groups: Vec<Group>,
    indent: i64,
    indents: Vec<i64>,
    flow: usize,
    simple_keys: Vec<SimpleKey>,
    /// Token number → index in `simple_keys` (go-yaml's `simple_keys_by_tok`;
    /// like it, keeps entries of keys that went stale).
    by_tok: HashMap<usize, usize>,
    simple_key_allowed: bool,
    stream_end: bool,
    // Parser.
    head: usize,
    groups_head: usize,
    head_comment: Text,
    line_comment: Text,
    foot_comment: Text,
    stem_comment: Option<Text>,
    state: State,
    states: Vec<State>,
}

fn is_break(c: u8) -> bool {
    c == b'\r' || c == b'\n'
}

fn is_breakz(c: u8) -> bool {
    c == 0 || is_break(c)
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn append(to: &mut Text, text: &[u32]) {
    if !to.is_empty() {
        to.push(NL);
    }
    to.extend_from_slice(text);
}

/// Enough steps for any input: every unit is fetched once and every event
/// consumes a token or changes state; this only guards against a loop.
const STEP_FACTOR: usize = 8;

impl<'s, 'a> Sim<'s, 'a> {
    pub(super) fn new(
        src: &'s Source<'a>,
        units: Units<'s>,
        comments: &'s [(usize, usize)],
    ) -> Self {
        let bom = bom_len(src.text);
        Sim {
            src,
            b: src.text.as_bytes(),
            ascii: src.text.is_ascii(),
            bom,
            units,
            comments,
            pos: bom,
            toks: Toks::default(),
            groups: Vec::new(),
            indent: -1,
            indents: Vec::new(),
            flow: 0,
            simple_keys: vec![SimpleKey {
                possible: false,
                token: 0,
                index: 0,
                line: 0,
                column: 0,
            }],
            by_tok: HashMap::new(),
            simple_key_allowed: true,
            stream_end: false,
            head: 0,
            groups_head: 0,
            head_comment: Vec::new(),
            line_comment: Vec::new(),
            foot_comment: Vec::new(),
            stem_comment: None,
            state: State::StreamStart,
            states: Vec::new(),
        }
    }

    fn byte(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn line(&self, at: usize) -> i64 {
        self.src.line_of(at.min(self.b.len())) as i64
    }

    /// go-yaml's column (characters; a leading BOM is not part of the text).
    fn column(&self, at: usize) -> i64 {
        let at = at.min(self.b.len());
        let col = if self.ascii {
            self.src.byte_col(at)
        } else {
            self.src.col(at)
        } as i64;
        if self.bom > 0 && self.src.line_of(at) == 0 {
            col - 1
        } else {
            col
        }
    }

    fn mark(&self, at: usize) -> Mark {
        Mark {
            index: at as i64,
            line: self.line(at),
            column: self.column(at),
        }
    }

    /// Line breaks since the last non-blank character before `at`.
    fn newlines(&self, at: usize) -> i64 {
        let mut n = 0;
        let mut i = at.min(self.b.len());
        while i > self.bom {
            match self.b[i - 1] {
                b'\n' => n += 1,
                b'\r' => {
                    if self.byte(i) != b'\n' {
                        n += 1;
                    }
                }
                b' ' | b'\t' => {}
                _ => break,
            }
            i -= 1;
        }
        n
    }

    fn comment_at(&self, hash: usize) -> Option<(u32, usize)> {
        let k = self.comments.partition_point(|(h, _)| *h < hash);
        match self.comments.get(k) {
            Some(&(h, end)) if h == hash => Some((k as u32, end)),
            _ => None,
        }
    }

    /// Parse the whole stream, handing each event to `composer`; `None` where
    /// go-yaml would fail.
    pub(super) fn run(&mut self, composer: &mut Composer) -> Option<()> {
        let limit = (self.units.len() + self.comments.len() + 8) * STEP_FACTOR;
        for _ in 0..limit {
            if self.state == State::End {
                return Some(());
            }
            let ev = self.parse()?;
            composer.feed(ev)?;
        }
        None
    }

    // --- scanner ----------------------------------------------------------------

    fn push_tok(&mut self, t: T, start: i64) {
        self.toks.push(Tok { t, start });
    }

    fn insert_tok(&mut self, at: usize, t: T, start: i64) {
        self.toks.insert(at, Tok { t, start });
    }

    fn remove_simple_key(&mut self) {
        if let Some(k) = self.simple_keys.last_mut() {
            if k.possible {
                k.possible = false;
                let token = k.token;
                self.by_tok.remove(&token);
            }
        }
    }

    /// A token that may turn out to be a simple key once its `:` is read.
    fn save_simple_key(&mut self, at: usize) {
        if !self.simple_key_allowed {
            return;
        }
        self.remove_simple_key();
        let level = self.simple_keys.len() - 1;
        let key = SimpleKey {
            possible: true,
            token: self.toks.len(),
            index: at,
            line: self.src.line_of(at),
            column: if self.flow == 0 { self.column(at) } else { 0 },
        };
        self.simple_keys[level] = key;
        self.by_tok.insert(key.token, level);
    }

    /// Whether the pending simple key of `level` can still be one (same line,
    /// near enough); marks it stale otherwise, as go-yaml does.
    fn simple_key_valid(&mut self, level: usize) -> bool {
        let Some(k) = self.simple_keys.get(level).copied() else {
            return false;
        };
        if !k.possible {
            return false;
        }
        let here = self.pos.min(self.b.len());
        if k.line < self.src.line_of(here) || k.index + 1024 < here {
            self.simple_keys[level].possible = false;
            return false;
        }
        true
    }

    /// Open a block level at `column` (with its start token) if it is deeper.
    fn roll_indent(&mut self, column: i64, at_token: Option<usize>, t: T, start: i64) {
        if self.flow > 0 || self.indent >= column {
            return;
        }
        self.indents.push(self.indent);
        self.indent = column;
        match at_token {
            Some(i) => self.insert_tok(i, t, start),
            None => self.push_tok(t, start),
        }
    }

    /// Close the block levels deeper than `column`. Each `BLOCK-END` is placed at
    /// the first comment of the gap at its level's column, so that comments at a
    /// closing level's column are handed to that level's end.
    fn unroll_indent(&mut self, column: i64, scan_mark: i64) {
        if self.flow > 0 {
            return;
        }
        let mut block_mark = scan_mark - 1;
        while self.indent > column {
            let mut stop = block_mark;
            for g in self.groups.iter().rev() {
                // A group handed to the parser is a cleared record in go-yaml.
                let (end, scan, start) = if g.taken {
                    (0, 0, Mark::default())
                } else {
                    (g.end, g.scan_mark, g.start)
                };
                if end < stop {
                    break;
                }
                if start.column == self.indent + 1 {
                    block_mark = start.index;
                }
                stop = scan;
            }
            self.push_tok(T::BlockEnd, block_mark);
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    /// Ensure the parser can look at token `head` (go-yaml keeps two tokens of
    /// look-ahead, more while the head may still become a simple key).
    fn fetch_more(&mut self) {
        // Each round reads a unit or ends the stream; the bound only guards the loop.
        for _ in 0..(self.units.len() + 16) * 2 {
            if self.head + 2 < self.toks.len() {
                let level = self.by_tok.get(&self.head).copied();
                let stalled = match level {
                    Some(l) => self.simple_key_valid(l),
                    None => false,
                };
                if !stalled || self.stream_end {
                    break;
                }
            }
            if self.stream_end {
                // Nothing more to read: go-yaml repeats the stream end.
                self.push_tok(T::StreamEnd, self.b.len() as i64);
                continue;
            }
            self.fetch_next();
        }
    }

    /// Scan the gap before the next unit (its comments), then the unit's token(s)
    /// and a comment on its line.
    fn fetch_next(&mut self) {
        if self.toks.is_empty() {
            self.push_tok(T::StreamStart, self.bom as i64);
            return;
        }
        let scan_mark = self.pos;
        self.scan_to_next_token(scan_mark);
        let unit = self.units.next();
        let start = unit.map_or(self.b.len(), |u| u.start);
        self.pos = self.pos.max(start);
        if self.flow == 0 {
            // (Columns are only needed in block context: long flow lines stay linear.)
            self.unroll_indent(self.column(start), scan_mark as i64);
        }
        let Some(unit) = unit else {
            // Stream end: go-yaml unrolls every level at the end.
            self.unroll_indent(-1, self.b.len() as i64);
            self.remove_simple_key();
            self.simple_key_allowed = false;
            self.push_tok(T::StreamEnd, self.b.len() as i64);
            self.stream_end = true;
            return;
        };
        let s = unit.start as i64;
        let col = if self.flow == 0 {
            self.column(unit.start)
        } else {
            0
        };
        // The mark line comments after this token attach to.
        let mut comment_mark = s;
        match unit.u {
            U::DocStart | U::DocEnd | U::Directive => {
                self.unroll_indent(-1, s);
                self.remove_simple_key();
                self.simple_key_allowed = false;
                let t = match unit.u {
                    U::DocStart => T::DocStart,
                    U::DocEnd => T::DocEnd,
                    _ => T::Directive,
                };
                self.push_tok(t, s);
                self.pos = unit.end;
                return;
            }
            U::Dash => {
                self.roll_indent(col, None, T::BlockSeqStart, s);
                self.remove_simple_key();
                self.simple_key_allowed = true;
                self.push_tok(T::BlockEntry, s);
                self.pos = unit.end;
                return;
            }
            U::Question => {
                self.roll_indent(col, None, T::BlockMapStart, s);
                self.remove_simple_key();
                self.simple_key_allowed = self.flow == 0;
                self.push_tok(T::Key, s);
            }
            U::Colon => {
                if self.flow == 0 {
                    comment_mark = self.toks.last().map_or(s, |t| t.start);
                }
                let level = self.simple_keys.len() - 1;
                if self.simple_key_valid(level) {
                    let k = self.simple_keys[level];
                    self.insert_tok(k.token, T::Key, k.index as i64);
                    self.roll_indent(k.column, Some(k.token), T::BlockMapStart, k.index as i64);
                    self.simple_keys[level].possible = false;
                    self.by_tok.remove(&k.token);
                    self.simple_key_allowed = false;
                } else {
                    self.roll_indent(col, None, T::BlockMapStart, s);
                    self.simple_key_allowed = self.flow == 0;
                }
                self.push_tok(T::Value, s);
            }
            U::Comma => {
                comment_mark = self.toks.last().map_or(s, |t| t.start);
                self.remove_simple_key();
                self.simple_key_allowed = true;
                self.push_tok(T::FlowEntry, s);
            }
            U::FlowOpen { map } => {
                self.save_simple_key(unit.start);
                self.flow += 1;
                self.simple_keys.push(SimpleKey {
                    possible: false,
                    token: self.toks.len(),
                    index: unit.start,
                    line: 0,
                    column: 0,
                });
                self.simple_key_allowed = true;
                self.push_tok(
                    if map {
                        T::FlowMapStart
                    } else {
                        T::FlowSeqStart
                    },
                    s,
                );
            }
            U::FlowClose { map } => {
                self.remove_simple_key();
                if self.flow > 0 {
                    self.flow -= 1;
                    if let Some(k) = self.simple_keys.pop() {
                        self.by_tok.remove(&k.token);
                    }
                }
                self.simple_key_allowed = false;
                self.push_tok(if map { T::FlowMapEnd } else { T::FlowSeqEnd }, s);
            }
            U::Property | U::Alias => {
                self.save_simple_key(unit.start);
                self.simple_key_allowed = false;
                let t = if unit.u == U::Alias {
                    T::Alias
                } else {
                    T::Property
                };
                self.push_tok(t, s);
            }
            U::Scalar { trailing } => {
                let block = matches!(self.byte(unit.start), b'|' | b'>');
                if block {
                    self.remove_simple_key();
                    self.simple_key_allowed = true;
                } else {
                    self.save_simple_key(unit.start);
                    self.simple_key_allowed = false;
                }
                self.push_tok(T::Scalar, s);
                if trailing {
                    // The scalar's scanner eats the blanks and line breaks after it.
                    let mut p = unit.end;
                    while p < self.b.len() && matches!(self.b[p], b' ' | b'\t' | b'\r' | b'\n') {
                        p += 1;
                    }
                    if self.b[unit.end.min(self.b.len())..p]
                        .iter()
                        .any(|&c| is_break(c))
                    {
                        self.simple_key_allowed = true;
                    }
                    self.pos = p;
                } else {
                    self.pos = unit.end;
                }
                self.scan_line_comment(comment_mark);
                return;
            }
        }
        self.pos = unit.end;
        self.scan_line_comment(comment_mark);
    }

    /// A comment on the line of the token just read.
    fn scan_line_comment(&mut self, token_mark: i64) {
        if self.newlines(self.pos) > 0 {
            return;
        }
        for peek in 0..512 {
            let c = self.byte(self.pos + peek);
            if is_blank(c) {
                continue;
            }
            if c == b'#' {
                let hash = self.pos + peek;
                if let Some((idx, end)) = self.comment_at(hash) {
                    let start = self.mark(hash);
                    self.groups.push(Group {
                        kind: GroupKind::Line,
                        token_mark,
                        start,
                        end: 0,
                        scan_mark: 0,
                        text: vec![idx],
                        taken: false,
                    });
                    self.pos = end;
                }
            }
            break;
        }
    }

    /// Skip whitespace and comments up to the next token (go-yaml's
    /// `yaml_parser_scan_to_next_token`).
    fn scan_to_next_token(&mut self, scan_mark: usize) {
        loop {
            while is_blank(self.byte(self.pos)) {
                self.pos += 1;
            }
            // A line comment left under the first entry of a block sequence
            // becomes a head comment of what follows (go-yaml's `- # c` case).
            let n = self.toks.len();
            let here = self.byte(self.pos);
            if n > 1
                && self
                    .toks
                    .get(n - 2)
                    .is_some_and(|t| t.t == T::BlockSeqStart)
                && self.toks.get(n - 1).is_some_and(|t| t.t == T::BlockEntry)
                && !is_break(here)
            {
                let line_now = self.line(self.pos);
                let pos = self.pos as i64;
                if let Some(g) = self.groups.last_mut() {
                    if !g.taken && g.kind == GroupKind::Line {
                        g.kind = GroupKind::Head;
                        if g.start.line == line_now - 1 {
                            g.token_mark = pos;
                        }
                    }
                }
            }
            if self.byte(self.pos) == b'#' {
                self.scan_comments(scan_mark);
            }
            let c = self.byte(self.pos);
            if is_break(c) {
                self.pos += if c == b'\r' && self.byte(self.pos + 1) == b'\n' {
                    2
                } else {
                    1
                };
                if self.flow == 0 {
                    self.simple_key_allowed = true;
                }
                continue;
            }
            break;
        }
    }

    /// go-yaml's `yaml_parser_scan_comments`, from the `#` at `self.pos`.
    fn scan_comments(&mut self, scan_mark_at: usize) {
        let Some(&last) = self.toks.last() else {
            return;
        };
        let n = self.toks.len();
        let token = if last.t == T::FlowEntry && n > 1 {
            self.toks.get(n - 2).unwrap_or(last)
        } else {
            last
        };
        let mut scan_mark = Mark {
            index: scan_mark_at as i64,
            line: self.line(scan_mark_at),
            column: 0,
        };
        let mut token_mark = token.start;
        let mut start_mark = Mark::default();
        let mut next_indent = self.indent.max(0);
        let mut recent_empty = false;
        let newlines = self.newlines(self.pos);
        let mut first_empty = newlines <= 1;
        let here = self.mark(self.pos);
        let mut line = here.line;
        let mut column = here.column;
        let mut text: Text = Vec::new();
        let foot_line = if scan_mark.line > 0 {
            let mut f = here.line - newlines + 1;
            if newlines == 0 && here.column > 1 {
                f += 1;
            }
            f
        } else {
            -1
        };
        let mut peek = 0usize;
        while peek < 512 {
            let at = self.pos + peek;
            let c = self.byte(at);
            column += 1;
            if is_blank(c) {
                peek += 1;
                continue;
            }
            let close_flow = self.flow > 0 && (c == b']' || c == b'}');
            if close_flow || is_breakz(c) {
                if close_flow || !recent_empty {
                    if close_flow
                        || first_empty
                            && (start_mark.line == foot_line && token.t != T::Value
                                || start_mark.column - 1 < next_indent)
                    {
                        if !text.is_empty() {
                            if start_mark.column - 1 < next_indent {
                                token_mark = start_mark.index;
                            }
                            let end = Mark {
                                index: at as i64,
                                line,
                                column,
                            };
                            self.groups.push(Group {
                                kind: GroupKind::Foot,
                                token_mark,
                                start: start_mark,
                                end: end.index,
                                scan_mark: scan_mark.index,
                                text: std::mem::take(&mut text),
                                taken: false,
                            });
                            scan_mark = end;
                            token_mark = end.index;
                        }
                    } else if !text.is_empty() && c != 0 {
                        text.push(NL);
                    }
                }
                if !is_break(c) {
                    break;
                }
                first_empty = false;
                recent_empty = true;
                column = 0;
                line += 1;
                peek += 1;
                continue;
            }
            if !text.is_empty()
                && (close_flow || column - 1 < next_indent && column != start_mark.column)
            {
                let end = Mark {
                    index: at as i64,
                    line,
                    column,
                };
                self.groups.push(Group {
                    kind: GroupKind::Foot,
                    token_mark,
                    start: start_mark,
                    end: end.index,
                    scan_mark: scan_mark.index,
                    text: std::mem::take(&mut text),
                    taken: false,
                });
                scan_mark = end;
                token_mark = end.index;
            }
            if c != b'#' {
                break;
            }
            let Some((idx, end)) = self.comment_at(at) else {
                break;
            };
            if text.is_empty() {
                start_mark = Mark {
                    index: at as i64,
                    line,
                    column,
                };
            } else {
                text.push(NL);
            }
            text.push(idx);
            recent_empty = false;
            self.pos = end.max(at + 1);
            // go-yaml resets its look-ahead and then steps past the line break.
            peek = 1;
            column = 0;
            line = self.line(self.pos);
            next_indent = self.indent.max(0);
        }
        if !text.is_empty() {
            self.groups.push(Group {
                kind: GroupKind::Head,
                token_mark: start_mark.index,
                start: start_mark,
                end: (self.pos + peek) as i64 - 1,
                scan_mark: scan_mark.index,
                text,
                taken: false,
            });
        }
    }

    // --- parser -----------------------------------------------------------------

    /// The parser's look at the next token: read far enough ahead, then take
    /// over every comment group that token has reached.
    fn peek(&mut self) -> Tok {
        if self.head + 2 >= self.toks.len() || self.by_tok.contains_key(&self.head) {
            self.fetch_more();
        }
        let tok = self.toks.get(self.head).unwrap_or(Tok {
            t: T::StreamEnd,
            start: self.b.len() as i64,
        });
        // Hand over every comment group whose mark the token has reached.
        while self.groups_head < self.groups.len()
            && tok.start >= self.groups[self.groups_head].token_mark
        {
            let g = &mut self.groups[self.groups_head];
            match g.kind {
                GroupKind::Head => {
                    if tok.t == T::BlockEnd {
                        break;
                    }
                    append(&mut self.head_comment, &g.text);
                }
                GroupKind::Foot => append(&mut self.foot_comment, &g.text),
                GroupKind::Line => append(&mut self.line_comment, &g.text),
            }
            g.taken = true;
            self.groups_head += 1;
        }
        tok
    }

    fn skip(&mut self) {
        self.head += 1;
        self.toks.consumed_to(self.head);
    }

    fn take_comments(&mut self, kind: EvKind) -> Event {
        self.stem_comment = None;
        Event {
            kind,
            head: std::mem::take(&mut self.head_comment),
            line: std::mem::take(&mut self.line_comment),
            foot: std::mem::take(&mut self.foot_comment),
        }
    }

    fn pop_state(&mut self) {
        self.state = self.states.pop().unwrap_or(State::End);
    }

    /// The next event (go-yaml's parser state machine).
    fn parse(&mut self) -> Option<Event> {
        match self.state {
            State::StreamStart => {
                let tok = self.peek();
                if tok.t != T::StreamStart {
                    return None;
                }
                self.state = State::ImplicitDocStart;
                self.skip();
                Some(Event::bare(EvKind::StreamStart))
            }
            State::ImplicitDocStart => self.document_start(true),
            State::DocStart => self.document_start(false),
            State::DocContent => {
                let tok = self.peek();
                if matches!(tok.t, T::Directive | T::DocStart | T::DocEnd | T::StreamEnd) {
                    self.pop_state();
                    return Some(Event::bare(EvKind::Scalar));
                }
                self.node(true, false)
            }
            State::DocEnd => {
                let tok = self.peek();
                if tok.t == T::DocEnd {
                    self.skip();
                }
                self.state = State::DocStart;
                let mut ev = self.take_comments(EvKind::DocEnd);
                if !ev.head.is_empty() && ev.foot.is_empty() {
                    ev.foot = std::mem::take(&mut ev.head);
                }
                Some(ev)
            }
            State::BlockNode => self.node(true, false),
            State::BlockSeqFirst | State::BlockSeqEntry => {
                if self.state == State::BlockSeqFirst {
                    self.peek();
                    self.skip();
                }
                let tok = self.peek();
                match tok.t {
                    T::BlockEntry => {
                        let prior = self.head_comment.len();
                        self.skip();
                        self.split_stem(prior);
                        let tok = self.peek();
                        if tok.t != T::BlockEntry && tok.t != T::BlockEnd {
                            self.states.push(State::BlockSeqEntry);
                            self.node(true, false)
                        } else {
                            self.state = State::BlockSeqEntry;
                            Some(Event::bare(EvKind::Scalar))
                        }
                    }
                    T::BlockEnd => {
                        self.pop_state();
                        self.skip();
                        Some(Event::bare(EvKind::SeqEnd))
                    }
                    _ => None,
                }
            }
            State::IndentlessEntry => {
                let tok = self.peek();
                if tok.t == T::BlockEntry {
                    let prior = self.head_comment.len();
                    self.skip();
                    self.split_stem(prior);
                    let tok = self.peek();
                    if !matches!(tok.t, T::BlockEntry | T::Key | T::Value | T::BlockEnd) {
                        self.states.push(State::IndentlessEntry);
                        self.node(true, false)
                    } else {
                        self.state = State::IndentlessEntry;
                        Some(Event::bare(EvKind::Scalar))
                    }
                } else {
                    self.pop_state();
                    Some(Event::bare(EvKind::SeqEnd))
                }
            }
            State::BlockMapFirstKey | State::BlockMapKey => {
                if self.state == State::BlockMapFirstKey {
                    self.peek();
                    self.skip();
                }
                let tok = self.peek();
                match tok.t {
                    T::Key => {
                        self.skip();
                        let tok = self.peek();
                        if !matches!(tok.t, T::Key | T::Value | T::BlockEnd) {
                            self.states.push(State::BlockMapValue);
                            self.node(true, true)
                        } else {
                            self.state = State::BlockMapValue;
                            Some(Event::bare(EvKind::Scalar))
                        }
                    }
                    T::BlockEnd => {
                        self.pop_state();
                        let ev = self.take_comments(EvKind::MapEnd);
                        self.skip();
                        Some(ev)
                    }
                    _ => None,
                }
            }
            State::BlockMapValue => {
                let tok = self.peek();
                if tok.t == T::Value {
                    self.skip();
                    let tok = self.peek();
                    if !matches!(tok.t, T::Key | T::Value | T::BlockEnd) {
                        self.states.push(State::BlockMapKey);
                        return self.node(true, true);
                    }
                }
                self.state = State::BlockMapKey;
                Some(Event::bare(EvKind::Scalar))
            }
            State::FlowSeqFirst | State::FlowSeqEntry => {
                let first = self.state == State::FlowSeqFirst;
                if first {
                    self.peek();
                    self.skip();
                }
                let mut tok = self.peek();
                if tok.t != T::FlowSeqEnd {
                    if !first {
                        if tok.t != T::FlowEntry {
                            return None;
                        }
                        self.skip();
                        tok = self.peek();
                    }
                    if tok.t == T::Key {
                        self.state = State::FlowSeqPairKey;
                        self.skip();
                        return Some(Event::bare(EvKind::MapStart { flow: true }));
                    } else if tok.t != T::FlowSeqEnd {
                        self.states.push(State::FlowSeqEntry);
                        return self.node(false, false);
                    }
                }
                self.pop_state();
                let ev = self.take_comments(EvKind::SeqEnd);
                self.skip();
                Some(ev)
            }
            State::FlowSeqPairKey => {
                let tok = self.peek();
                if !matches!(tok.t, T::Value | T::FlowEntry | T::FlowSeqEnd) {
                    self.states.push(State::FlowSeqPairValue);
                    return self.node(false, false);
                }
                self.skip();
                self.state = State::FlowSeqPairValue;
                Some(Event::bare(EvKind::Scalar))
            }
            State::FlowSeqPairValue => {
                let tok = self.peek();
                if tok.t == T::Value {
                    self.skip();
                    let tok = self.peek();
                    if tok.t != T::FlowEntry && tok.t != T::FlowSeqEnd {
                        self.states.push(State::FlowSeqPairEnd);
                        return self.node(false, false);
                    }
                }
                self.state = State::FlowSeqPairEnd;
                Some(Event::bare(EvKind::Scalar))
            }
            State::FlowSeqPairEnd => {
                self.peek();
                self.state = State::FlowSeqEntry;
                Some(Event::bare(EvKind::MapEnd))
            }
            State::FlowMapFirstKey | State::FlowMapKey => {
                let first = self.state == State::FlowMapFirstKey;
                if first {
                    self.peek();
                    self.skip();
                }
                let mut tok = self.peek();
                if tok.t != T::FlowMapEnd {
                    if !first {
                        if tok.t != T::FlowEntry {
                            return None;
                        }
                        self.skip();
                        tok = self.peek();
                    }
                    if tok.t == T::Key {
                        self.skip();
                        let tok = self.peek();
                        if !matches!(tok.t, T::Value | T::FlowEntry | T::FlowMapEnd) {
                            self.states.push(State::FlowMapValue);
                            return self.node(false, false);
                        }
                        self.state = State::FlowMapValue;
                        return Some(Event::bare(EvKind::Scalar));
                    } else if tok.t != T::FlowMapEnd {
                        self.states.push(State::FlowMapEmptyValue);
                        return self.node(false, false);
                    }
                }
                self.pop_state();
                let ev = self.take_comments(EvKind::MapEnd);
                self.skip();
                Some(ev)
            }
            State::FlowMapValue => {
                let tok = self.peek();
                if tok.t == T::Value {
                    self.skip();
                    let tok = self.peek();
                    if tok.t != T::FlowEntry && tok.t != T::FlowMapEnd {
                        self.states.push(State::FlowMapKey);
                        return self.node(false, false);
                    }
                }
                self.state = State::FlowMapKey;
                Some(Event::bare(EvKind::Scalar))
            }
            State::FlowMapEmptyValue => {
                self.peek();
                self.state = State::FlowMapKey;
                Some(Event::bare(EvKind::Scalar))
            }
            State::End => None,
        }
    }

    fn document_start(&mut self, implicit: bool) -> Option<Event> {
        let mut tok = self.peek();
        if !implicit {
            while tok.t == T::DocEnd {
                self.skip();
                tok = self.peek();
            }
        }
        if implicit && !matches!(tok.t, T::Directive | T::DocStart | T::StreamEnd) {
            self.states.push(State::DocEnd);
            self.state = State::BlockNode;
            // The head comment up to its last blank line is the document's.
            let mut head = Vec::new();
            let h = &self.head_comment;
            for i in (1..h.len()).rev() {
                if h[i] == NL {
                    if i == h.len() - 1 {
                        head = h[..i].to_vec();
                        self.head_comment = h[i + 1..].to_vec();
                        break;
                    } else if h[i - 1] == NL {
                        head = h[..i - 1].to_vec();
                        self.head_comment = h[i + 1..].to_vec();
                        break;
                    }
                }
            }
            let mut ev = Event::bare(EvKind::DocStart);
            ev.head = head;
            Some(ev)
        } else if tok.t != T::StreamEnd {
            while tok.t == T::Directive {
                self.skip();
                tok = self.peek();
            }
            if tok.t != T::DocStart {
                return None;
            }
            self.states.push(State::DocEnd);
            self.state = State::DocContent;
            self.skip();
            Some(Event::bare(EvKind::DocStart))
        } else {
            self.state = State::End;
            self.skip();
            Some(Event::bare(EvKind::StreamEnd))
        }
    }

    /// Under a `-` whose item is a block collection, the head comment read before
    /// the `-` becomes that collection's head (go-yaml's stem comment).
    fn split_stem(&mut self, stem_len: usize) {
        if stem_len == 0 {
            return;
        }
        let tok = self.peek();
        if tok.t != T::BlockSeqStart && tok.t != T::BlockMapStart {
            return;
        }
        let head = std::mem::take(&mut self.head_comment);
        let stem_len = stem_len.min(head.len());
        self.stem_comment = Some(head[..stem_len].to_vec());
        if head.len() > stem_len + 1 {
            self.head_comment = head[stem_len + 1..].to_vec();
        }
    }

    /// A node: scalar, alias or the start of a collection.
    fn node(&mut self, block: bool, indentless: bool) -> Option<Event> {
        let mut tok = self.peek();
        if tok.t == T::Alias {
            self.pop_state();
            let ev = self.take_comments(EvKind::Scalar);
            self.skip();
            return Some(ev);
        }
        let mut properties = false;
        while tok.t == T::Property {
            properties = true;
            self.skip();
            tok = self.peek();
        }
        if indentless && tok.t == T::BlockEntry {
            self.state = State::IndentlessEntry;
            return Some(Event::bare(EvKind::SeqStart { flow: false }));
        }
        match tok.t {
            T::Scalar => {
                self.pop_state();
                let ev = self.take_comments(EvKind::Scalar);
                self.skip();
                Some(ev)
            }
            T::FlowSeqStart => {
                self.state = State::FlowSeqFirst;
                Some(self.take_comments(EvKind::SeqStart { flow: true }))
            }
            T::FlowMapStart => {
                self.state = State::FlowMapFirstKey;
                Some(self.take_comments(EvKind::MapStart { flow: true }))
            }
            T::BlockSeqStart if block => {
                self.state = State::BlockSeqFirst;
                let mut ev = Event::bare(EvKind::SeqStart { flow: false });
                if let Some(stem) = self.stem_comment.take() {
                    ev.head = stem;
                }
                Some(ev)
            }
            T::BlockMapStart if block => {
                self.state = State::BlockMapFirstKey;
                let mut ev = Event::bare(EvKind::MapStart { flow: false });
                if let Some(stem) = self.stem_comment.take() {
                    ev.head = stem;
                }
                Some(ev)
            }
            _ if properties => {
                self.pop_state();
                Some(Event::bare(EvKind::Scalar))
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------
// go-yaml's composer: events to nodes, with its moves of foot comments
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodeKind {
    Doc,
    Scalar,
    Map { flow: bool },
    Seq,
}

/// A replayed node. Its comments sit behind one pointer, absent for the rest,
/// and its children (documents and collections only) in [`GTree::kids`]: a node
/// is made for every scalar of the file, and inline lists made the replay of a
/// large file cost several times its size (issue 18).
#[derive(Debug)]
pub(super) struct GNode {
    pub(super) kind: NodeKind,
    /// Its list in the tree's `kids`; [`NO_KIDS`] for a scalar.
    kids: u32,
    comments: Option<Box<[Text; 3]>>,
}

const NO_KIDS: u32 = u32::MAX;

const HEAD: usize = 0;
const LINE: usize = 1;
const FOOT: usize = 2;

impl GNode {
    fn new(kind: NodeKind, head: Text, line: Text, foot: Text) -> GNode {
        let none = head.is_empty() && line.is_empty() && foot.is_empty();
        GNode {
            kind,
            kids: NO_KIDS,
            comments: (!none).then(|| Box::new([head, line, foot])),
        }
    }

    fn text(&self, which: usize) -> &[u32] {
        self.comments.as_ref().map_or(&[], |c| &c[which])
    }

    pub(super) fn head(&self) -> &[u32] {
        self.text(HEAD)
    }

    pub(super) fn line(&self) -> &[u32] {
        self.text(LINE)
    }

    pub(super) fn foot(&self) -> &[u32] {
        self.text(FOOT)
    }

    fn set(&mut self, which: usize, text: Text) {
        match &mut self.comments {
            Some(c) => c[which] = text,
            None if text.is_empty() => {}
            None => {
                let mut c: Box<[Text; 3]> = Box::default();
                c[which] = text;
                self.comments = Some(c);
            }
        }
    }

    fn take_foot(&mut self) -> Text {
        self.comments
            .as_mut()
            .map_or_else(Vec::new, |c| std::mem::take(&mut c[FOOT]))
    }
}

/// The nodes of every document (the first `docs` entries are unused: roots are
/// listed in `GTree::docs`).
pub(super) struct GTree {
    pub(super) nodes: Vec<GNode>,
    /// The children of documents and collections, by node number.
    kids: Vec<Vec<u32>>,
    pub(super) docs: Vec<usize>,
}

impl GTree {
    /// The numbers of `node`'s children (none for a scalar).
    pub(super) fn children(&self, node: &GNode) -> &[u32] {
        self.kids
            .get(node.kids as usize)
            .map_or(&[], |k| k.as_slice())
    }
}

/// Builds the node tree as the parser hands over events (go-yaml's `parser` in
/// `decode.go`), so the events are never all held at once.
#[derive(Default)]
pub(super) struct Composer {
    nodes: Vec<GNode>,
    kids: Vec<Vec<u32>>,
    docs: Vec<usize>,
    stack: Vec<usize>,
}

impl Composer {
    fn feed(&mut self, ev: Event) -> Option<()> {
        let Event {
            kind,
            head,
            line,
            foot,
        } = ev;
        let nodes = &mut self.nodes;
        let kids = &mut self.kids;
        let stack = &mut self.stack;
        // A node that can have children gets its list of them.
        let mut with_kids = |mut node: GNode| -> Option<GNode> {
            node.kids = u32::try_from(kids.len()).ok().filter(|&k| k != NO_KIDS)?;
            kids.push(Vec::new());
            Some(node)
        };
        match kind {
            EvKind::StreamStart | EvKind::StreamEnd => {}
            EvKind::DocStart => {
                let doc = with_kids(GNode::new(NodeKind::Doc, head, Vec::new(), Vec::new()))?;
                nodes.push(doc);
                self.docs.push(nodes.len() - 1);
                stack.push(nodes.len() - 1);
            }
            EvKind::DocEnd => {
                let d = stack.pop()?;
                nodes[d].set(FOOT, foot);
            }
            EvKind::Scalar | EvKind::MapStart { .. } | EvKind::SeqStart { .. } => {
                let kind = match kind {
                    EvKind::MapStart { flow } => NodeKind::Map { flow },
                    EvKind::SeqStart { .. } => NodeKind::Seq,
                    _ => NodeKind::Scalar,
                };
                let node = GNode::new(kind, head, line, foot);
                if kind == NodeKind::Scalar {
                    nodes.push(node);
                    let id = nodes.len() - 1;
                    attach(nodes, kids, stack, id)?;
                } else {
                    nodes.push(with_kids(node)?);
                    stack.push(nodes.len() - 1);
                }
            }
            EvKind::MapEnd | EvKind::SeqEnd => {
                let id = stack.pop()?;
                nodes[id].set(LINE, line);
                nodes[id].set(FOOT, foot);
                let children = kids.get_mut(nodes[id].kids as usize)?;
                // Grown by doubling; complete now.
                children.shrink_to_fit();
                if nodes[id].kind == (NodeKind::Map { flow: false }) && !nodes[id].foot().is_empty()
                {
                    let n = children.len();
                    if n > 1 {
                        let key = children[n - 2] as usize;
                        let foot = nodes[id].take_foot();
                        nodes[key].set(FOOT, foot);
                    }
                }
                attach(nodes, kids, stack, id)?;
            }
        }
        Some(())
    }

    pub(super) fn finish(self) -> GTree {
        GTree {
            nodes: self.nodes,
            kids: self.kids,
            docs: self.docs,
        }
    }
}

/// A complete node becomes the next child of the node being built.
fn attach(nodes: &mut [GNode], kids: &mut [Vec<u32>], stack: &[usize], id: usize) -> Option<()> {
    let parent = *stack.last()?;
    let children = kids.get_mut(nodes[parent].kids as usize)?;
    children.push(u32::try_from(id).ok()?);
    if let NodeKind::Map { flow } = nodes[parent].kind {
        let n = children.len();
        if n % 2 == 1 {
            // A key: a foot comment on it was the previous key's.
            if !flow && !nodes[id].foot().is_empty() && n > 2 {
                let prev = children[n - 3] as usize;
                let foot = nodes[id].take_foot();
                nodes[prev].set(FOOT, foot);
            }
        } else {
            let key = children[n - 2] as usize;
            if nodes[key].foot().is_empty() && !nodes[id].foot().is_empty() {
                let foot = nodes[id].take_foot();
                nodes[key].set(FOOT, foot);
            }
        }
    }
    Some(())
}
