//! Which collection each comment belongs to (its AAD), exactly as sops 3.11 decides.
//!
//! sops encrypts a comment with the path of the map or list its YAML store puts the
//! comment in. That store reads comments from the head, line and foot comment
//! fields go-yaml v3 attaches to nodes, and go-yaml's attachment depends on token
//! positions, indentation, blank lines and even on how far its scanner runs ahead
//! of its parser. No simple rule of thumb reproduces it (a two-line comment block
//! closing a nested map is bound to that map, but the same block after a blank
//! line, or at a deeper column, or in a CRLF file, may be bound elsewhere), so this
//! module *replays* go-yaml on our parse, then applies sops' distribution:
//!
//! 1. **Tokens.** The source is cut into go-yaml's tokens: scalars (the spans the
//!    tree builder found), indicators (`-`, `?`, `:`, `,`, brackets, `---`,
//!    `...`, tags), and the tokens go-yaml inserts: `KEY` and
//!    `BLOCK-MAPPING-START` in front of a simple key when its `:` is found,
//!    `BLOCK-SEQUENCE-START` before the first `-` of an indented sequence, and
//!    `BLOCK-END` whenever a token starts left of the current indentation.
//! 2. **Comment groups** (go-yaml's scanner). A `#` after a token on its line is
//!    a *line* comment of that token (of the token before when it follows a `:` or
//!    `,`; a comment after a lone `-` is not one). The own-line comments between
//!    two tokens are cut into groups: the first group ends at the first empty line
//!    when it starts on the line right after the previous token (unless that token
//!    is a `:`) or left of the current block indentation, and is a *foot*; a group
//!    also ends where a comment line, or the next token, starts left of the block
//!    indentation at another column than the group's first line, and is a *foot*
//!    too; what is left before the next token is a *head*. An empty line is only
//!    noticed as such: the line break right after a comment is skipped, so two
//!    adjacent comment lines stay one group — except in CRLF files, where the `\n`
//!    of every `\r\n` looks like an empty line.
//! 3. **Block ends.** A closing block level's `BLOCK-END` is placed at the first
//!    comment of the gap at that level's column (else just before the gap), so a
//!    foot group at a closing map's column stays inside that map.
//! 4. **Attachment** (go-yaml's parser). Groups are handed to the parser when it
//!    reaches a token at or after the group's mark (the previous token for a first
//!    foot group, the split point for later ones, the comment itself for a head;
//!    heads wait past `BLOCK-END`s). The next event that takes comments — a
//!    scalar, a flow collection's start or end, a block map's end, a document's
//!    end — gets them as head, line and foot comments. Then go-yaml's composer
//!    moves feet: a value's foot to its key, a key's foot to the previous key, a
//!    block map's foot to its last key (each move *overwrites*, so sops loses the
//!    comment that was there).
//! 5. **sops' store.** Comments of keys and scalar values go into the map holding
//!    them (head and line before the entry, foot after it); comments of a nested
//!    map or list value go into that collection (head and line first, foot last);
//!    comments of list items go into the list; a document's go into its root.
//!
//! A plaintext is bound as it will be read once encrypted: followed by the `sops:`
//! entry git-sops appends to each document (see [`super::metadata`]), because a
//! comment at the end of a document can bind differently before a key than before
//! the end of the file. Comments go-yaml drops (it overwrites some foot comments and
//! ignores comments on directive lines) are never seen by sops; they stay in the
//! collection that contains them. If the replay cannot follow the input (go-yaml
//! would reject it), every comment falls back to the innermost collection that
//! contains it.
//!
//! The scanner and the parser are replayed interleaved, with go-yaml's look-ahead
//! (two tokens, more while a token may still turn out to be a simple key), because
//! a comment already handed to the parser no longer counts when the scanner later
//! places a `BLOCK-END` or turns a line comment into a head comment. Approximated:
//! go-yaml counts its 1024-character simple-key limit and 512-character comment
//! look-ahead in characters (here: bytes), tabs in indentation are taken as spaces
//! (go-yaml rejects most), and NEL, LS and PS are not line breaks here.

mod replay;

use super::doc_end;
use super::scan::{Opaque, RawComment, Source};
use super::tree::{Built, SkNode};
use replay::{Composer, GTree, NodeKind, Sim};

/// Where a comment goes: collection id and a sort position among its items
/// (it precedes every item whose start is at or after `sort`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) coll: usize,
    pub sort: usize,
}

/// `built`'s opaque ranges are used up (freed once the source is cut into tokens).
pub fn place(src: &Source<'_>, built: &mut Built, comments: &[RawComment]) -> Vec<Placement> {
    // Comments above everything else of the stream (a file's header) are
    // the first document's, before its first item, whichever node go-yaml
    // gives them (the document's head, the first key's) and whether or not
    // sops sees them (the fallback below puts them there too). Placed without
    // the replay, which holds a node per token of the whole file for as long
    // as it runs: on a large file with only a header comment, that was the
    // largest memory of a decryption (issue 18).
    let first_token = first_token(src.text);
    if let Some(&root) = built.roots.first() {
        if comments.iter().all(|c| c.hash < first_token) {
            built.opaque = Vec::new();
            return comments
                .iter()
                .map(|c| Placement {
                    coll: root,
                    sort: c.hash,
                })
                .collect();
        }
    }
    let placed = simulate(src, built, comments).unwrap_or_else(|| vec![None; comments.len()]);
    if placed.iter().all(Option::is_some) {
        return placed.into_iter().flatten().collect();
    }
    let built = &*built;
    placed
        .into_iter()
        .zip(containing(built, comments))
        .zip(comments)
        .map(|((p, coll), c)| p.unwrap_or(Placement { coll, sort: c.hash }))
        .collect()
}

/// Where the first thing of `text` that is not white space, a byte order mark
/// or a comment line starts.
fn first_token(text: &str) -> usize {
    let mut at = bom_len(text);
    while let Some(rest) = text.get(at..) {
        let line = rest.find('\n').map_or(rest, |n| &rest[..n]);
        let body = line.trim_start_matches([' ', '\t', '\r']);
        if !(body.is_empty() || body.starts_with('#')) {
            return at + (line.len() - body.len());
        }
        if line.len() == rest.len() {
            break;
        }
        at += line.len() + 1;
    }
    text.len()
}

/// For each comment (in source order), the innermost collection containing it,
/// or else the root of the document it is in.
fn containing(built: &Built, comments: &[RawComment]) -> Vec<usize> {
    let colls = &built.colls;
    let mut order: Vec<usize> = (0..colls.len()).collect();
    order.sort_by_key(|&i| (colls[i].start, std::cmp::Reverse(colls[i].end)));
    let mut open: Vec<usize> = Vec::new();
    let mut next = 0;
    comments
        .iter()
        .map(|c| {
            while next < order.len() && colls[order[next]].start <= c.hash {
                let id = order[next];
                while open
                    .last()
                    .is_some_and(|&o| colls[o].end <= colls[id].start)
                {
                    open.pop();
                }
                open.push(id);
                next += 1;
            }
            while open.last().is_some_and(|&o| colls[o].end <= c.hash) {
                open.pop();
            }
            open.last().copied().unwrap_or_else(|| {
                let k = built.roots.partition_point(|&r| colls[r].start <= c.hash);
                built.roots[k.saturating_sub(1).min(built.roots.len().saturating_sub(1))]
            })
        })
        .collect()
}

/// The replay: each comment's placement, `None` for the comments sops never sees;
/// `None` altogether when go-yaml would not read the input the way we do.
/// `built`'s opaque ranges are freed once they are read.
pub(super) fn simulate(
    src: &Source<'_>,
    built: &mut Built,
    comments: &[RawComment],
) -> Option<Vec<Option<Placement>>> {
    if comments.is_empty() {
        return Some(Vec::new());
    }
    let inserts = metadata_inserts(src, built, comments);
    // The tokens are cut from the source as the replay reads them (a list of
    // them took several times a large file's size, issue 18); a first pass
    // counts them and finds what go-yaml would not read as we do.
    let mut lexer = Lexer::new(src, &built.opaque, comments);
    let mut count = 0usize;
    while lexer.next().ok()?.is_some() {
        count += 1;
    }
    let positions: Vec<(usize, usize)> = comments.iter().map(|c| (c.hash, c.text.end)).collect();
    let lexer = Lexer::new(src, &built.opaque, comments);
    let nodes = if inserts.is_empty() {
        let units = Units::new(lexer, count, Vec::new(), Vec::new());
        let mut composer = Composer::default();
        Sim::new(src, units, &positions).run(&mut composer)?;
        composer.finish()
    } else {
        let (text, positions, shifts, extra) = with_inserts(src.text, &positions, &inserts);
        let vsrc = Source::new(&text);
        let units = Units::new(lexer, count, shifts, extra);
        let mut composer = Composer::default();
        Sim::new(&vsrc, units, &positions).run(&mut composer)?;
        composer.finish()
    };
    // Only the tokens needed the scalar ranges (issue 18).
    built.opaque = Vec::new();
    distribute(built, &nodes, comments.len(), !inserts.is_empty())
}

// ---------------------------------------------------------------------------------
// Lexing: the source as go-yaml's scanner sees it
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum U {
    /// A scalar; `trailing`: plain and block scalars, whose scanner eats the
    /// whitespace and line breaks after them.
    Scalar {
        trailing: bool,
    },
    DocStart,
    DocEnd,
    Directive,
    Dash,
    Question,
    Colon,
    Comma,
    FlowOpen {
        map: bool,
    },
    FlowClose {
        map: bool,
    },
    /// A tag or an anchor.
    Property,
    Alias,
}

#[derive(Clone, Copy, Debug)]
struct Unit {
    u: U,
    start: usize,
    end: usize,
}

fn is_blankz_at(b: &[u8], i: usize) -> bool {
    matches!(b.get(i), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

fn bom_len(text: &str) -> usize {
    if text.starts_with('\u{feff}') {
        3
    } else {
        0
    }
}

/// Cuts the source into tokens, one at a time, in order: the scalar spans of
/// the tree and the indicators between them.
struct Lexer<'a> {
    src: &'a Source<'a>,
    /// The scalar texts, sorted.
    opaque: &'a [Opaque],
    comments: &'a [RawComment],
    pos: usize,
    oi: usize,
    ci: usize,
    flow: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a Source<'a>, opaque: &'a [Opaque], comments: &'a [RawComment]) -> Self {
        Lexer {
            src,
            opaque,
            comments,
            pos: bom_len(src.text),
            oi: 0,
            ci: 0,
            flow: 0,
        }
    }

    /// The next token; `Ok(None)` at the end; `Err` on anything go-yaml would
    /// not read as we do.
    fn next(&mut self) -> Result<Option<Unit>, Unreadable> {
        let src = self.src;
        let b = src.text.as_bytes();
        let bom = bom_len(src.text);
        let (opaque, comments) = (self.opaque, self.comments);
        let Lexer {
            pos, oi, ci, flow, ..
        } = self;
        loop {
            while *pos < b.len() && matches!(b[*pos], b' ' | b'\t' | b'\r' | b'\n') {
                *pos += 1;
            }
            if *pos >= b.len() {
                break;
            }
            while *ci < comments.len() && comments[*ci].hash < *pos {
                *ci += 1;
            }
            if *ci < comments.len() && comments[*ci].hash == *pos {
                *pos = comments[*ci].text.end.max(*pos + 1);
                continue;
            }
            while *oi < opaque.len() && opaque[*oi].start() < *pos {
                *oi += 1;
            }
            if *oi < opaque.len() && opaque[*oi].start() == *pos && opaque[*oi].end() > *pos {
                let trailing = !matches!(b[*pos], b'\'' | b'"');
                let unit = Unit {
                    u: U::Scalar { trailing },
                    start: *pos,
                    end: opaque[*oi].end(),
                };
                *pos = unit.end;
                return Ok(Some(unit));
            }
            let at = *pos;
            let next_pos = &mut *pos;
            let pos = at;
            let at_line_start = pos == bom || b[pos - 1] == b'\n';
            let three = |c: u8| {
                at_line_start
                    && b.get(pos..pos + 3) == Some(&[c, c, c][..])
                    && is_blankz_at(b, pos + 3)
            };
            let (u, len) = match b[pos] {
                b'-' if three(b'-') => (U::DocStart, 3),
                b'.' if three(b'.') => (U::DocEnd, 3),
                b'%' if at_line_start => {
                    let end = src.line_end(pos);
                    (U::Directive, end - pos)
                }
                b'-' if *flow == 0 && is_blankz_at(b, pos + 1) => (U::Dash, 1),
                b'?' if is_blankz_at(b, pos + 1) => (U::Question, 1),
                b':' => (U::Colon, 1),
                b',' if *flow > 0 => (U::Comma, 1),
                b'[' | b'{' => {
                    *flow += 1;
                    (
                        U::FlowOpen {
                            map: b[pos] == b'{',
                        },
                        1,
                    )
                }
                b']' | b'}' => {
                    *flow = flow.checked_sub(1).ok_or(Unreadable)?;
                    (
                        U::FlowClose {
                            map: b[pos] == b'}',
                        },
                        1,
                    )
                }
                b'!' | b'&' | b'*' => {
                    let mut e = pos + 1;
                    while e < b.len()
                        && !matches!(b[e], b' ' | b'\t' | b'\r' | b'\n')
                        && !(*flow > 0 && matches!(b[e], b',' | b'[' | b']' | b'{' | b'}'))
                    {
                        e += 1;
                    }
                    let u = if b[pos] == b'*' {
                        U::Alias
                    } else {
                        U::Property
                    };
                    (u, e - pos)
                }
                _ => return Err(Unreadable),
            };
            *next_pos = at + len;
            return Ok(Some(Unit {
                u,
                start: at,
                end: at + len,
            }));
        }
        Ok(None)
    }
}

/// go-yaml would not read the source as we do.
#[derive(Debug)]
struct Unreadable;

/// The tokens in the order the replay reads them, cut from the source one at
/// a time, and moved past the virtual `sops:` entries, whose tokens come in
/// between ([`with_inserts`]).
struct Units<'a> {
    lexer: Lexer<'a>,
    /// (offset in the source, shift of everything from there on), sorted.
    shifts: Vec<(usize, usize)>,
    /// The entries' tokens (sorted) and the next one to hand out.
    extra: Vec<Unit>,
    next_extra: usize,
    /// The next token of the source, moved.
    peeked: Option<Unit>,
    len: usize,
}

impl<'a> Units<'a> {
    /// `count`: how many tokens `lexer` cuts (it reads the whole source).
    fn new(lexer: Lexer<'a>, count: usize, shifts: Vec<(usize, usize)>, extra: Vec<Unit>) -> Self {
        Units {
            lexer,
            shifts,
            len: count.saturating_add(extra.len()),
            extra,
            next_extra: 0,
            peeked: None,
        }
    }

    /// How many tokens there are.
    fn len(&self) -> usize {
        self.len
    }

    fn shift(&self, p: usize) -> usize {
        let k = self.shifts.partition_point(|(at, _)| *at <= p);
        match k.checked_sub(1).and_then(|k| self.shifts.get(k)) {
            Some((_, by)) => p + by,
            None => p,
        }
    }

    /// The next token (a source token before an entry's at the same offset).
    fn next(&mut self) -> Option<Unit> {
        if self.peeked.is_none() {
            // The first pass read the whole source without an error.
            if let Ok(Some(u)) = self.lexer.next() {
                let start = self.shift(u.start);
                self.peeked = Some(Unit {
                    u: u.u,
                    start,
                    end: start + (u.end - u.start),
                });
            }
        }
        let extra = self.extra.get(self.next_extra).copied();
        match (self.peeked, extra) {
            (Some(u), Some(e)) if e.start < u.start => {
                self.next_extra += 1;
                Some(e)
            }
            (Some(u), _) => {
                self.peeked = None;
                Some(u)
            }
            (None, Some(e)) => {
                self.next_extra += 1;
                Some(e)
            }
            (None, None) => None,
        }
    }
}

// ---------------------------------------------------------------------------------
// The `sops:` entry a plaintext will be followed by once encrypted
// ---------------------------------------------------------------------------------

/// For each block document with comments and without a `sops` entry: where
/// git-sops' metadata insertion puts the entry, and the text it inserts before the
/// key (line breaks only; the key text itself is added by [`with_inserts`]). Any
/// comment of a document may depend on it: go-yaml hands comments to the next
/// event that takes any, which may be the entry's key.
fn metadata_inserts(
    src: &Source<'_>,
    built: &Built,
    comments: &[RawComment],
) -> Vec<(usize, String)> {
    let text = src.text;
    let nl = if text
        .find('\n')
        .is_some_and(|i| i > 0 && text.as_bytes()[i - 1] == b'\r')
    {
        "\r\n"
    } else {
        "\n"
    };
    // The end of each document's last key or value.
    let last_value = &built.last_value;
    let mut out = Vec::new();
    let mut from = 0;
    for (doc, &root) in built.roots.iter().enumerate() {
        let coll = &built.colls[root];
        let at = doc_end(text, coll.end).max(from);
        let range = (from, at);
        from = at;
        if coll.flow
            || built
                .items(coll)
                .iter()
                .any(|i| i.key(text) == Some("sops"))
        {
            continue;
        }
        let c0 = comments.partition_point(|c| c.hash < range.0);
        let c1 = comments.partition_point(|c| c.hash < range.1);
        let in_doc = &comments[c0..c1.max(c0)];
        if in_doc.is_empty() {
            continue;
        }
        // As metadata insertion: a blank line first when the document's last
        // key, value or comment is a comment.
        let last_comment = in_doc.last().map_or(0, |c| c.text.end);
        let last_value = last_value.get(doc).copied().unwrap_or(0);
        let gap = if last_comment > last_value { nl } else { "" };
        let ends_with_break = at == 0 || text[..at].ends_with('\n');
        let prefix = if ends_with_break {
            gap.to_string()
        } else {
            format!("{nl}{gap}")
        };
        out.push((at, prefix));
    }
    out
}

const META_KEY: &str = "sops: x";

/// The text with a `sops: x` entry inserted at each point, the comment
/// positions moved to match, how the tokens move ((offset, shift from there
/// on), for [`Units`]) and the entries' tokens.
#[allow(clippy::type_complexity)]
fn with_inserts(
    text: &str,
    positions: &[(usize, usize)],
    inserts: &[(usize, String)],
) -> (String, Vec<(usize, usize)>, Vec<(usize, usize)>, Vec<Unit>) {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(text.len() + inserts.len() * 16);
    let mut shifts: Vec<(usize, usize)> = Vec::new(); // (original at, total shift from there)
    let mut extra = Vec::new();
    let mut last = 0;
    for (at, prefix) in inserts {
        out.push_str(&text[last..*at]);
        out.push_str(prefix);
        let key = out.len();
        out.push_str(META_KEY);
        let tail_break = if text[..*at].ends_with('\n') || *at == 0 {
            nl
        } else {
            ""
        };
        out.push_str(tail_break);
        extra.push(Unit {
            u: U::Scalar { trailing: true },
            start: key,
            end: key + 4,
        });
        extra.push(Unit {
            u: U::Colon,
            start: key + 4,
            end: key + 5,
        });
        extra.push(Unit {
            u: U::Scalar { trailing: true },
            start: key + 6,
            end: key + 7,
        });
        shifts.push((*at, out.len() - *at));
        last = *at;
    }
    out.push_str(&text[last..]);
    let shift = |p: usize| {
        let k = shifts.partition_point(|(at, _)| *at <= p);
        if k == 0 {
            p
        } else {
            p + shifts[k - 1].1
        }
    };
    let positions = positions
        .iter()
        .map(|&(h, e)| (shift(h), shift(h) + (e - h)))
        .collect();
    (out, positions, shifts, extra)
}

// ---------------------------------------------------------------------------------
// sops' YAML store: node comments into the tree
// ---------------------------------------------------------------------------------

/// The placement of every comment sops sees (`None` for those it never sees), or
/// `None` when the replayed tree does not have our tree's shape.
fn distribute(
    built: &Built,
    tree: &GTree,
    count: usize,
    virtual_entries: bool,
) -> Option<Vec<Option<Placement>>> {
    let mut out: Vec<Option<Placement>> = vec![None; count];
    let mut put = |text: &[u32], coll: usize, sort: usize| {
        for &c in text {
            if let Some(slot) = out.get_mut(c as usize) {
                *slot = Some(Placement { coll, sort });
            }
        }
    };
    if tree.docs.len() != built.roots.len() {
        return None;
    }
    // (replayed node, our collection, whether its own comments are handled here)
    let mut work: Vec<(usize, usize, bool)> = Vec::new();
    for (&d, &root) in tree.docs.iter().zip(&built.roots).rev() {
        let doc = &tree.nodes[d];
        let &[r] = tree.children(doc) else {
            return None;
        };
        let r = r as usize;
        put(doc.head(), root, 0);
        put(doc.line(), root, 0);
        put(doc.foot(), root, usize::MAX);
        work.push((r, root, true));
    }
    while let Some((n, coll, own)) = work.pop() {
        let node = &tree.nodes[n];
        let c = &built.colls[coll];
        if own {
            put(node.head(), coll, 0);
            put(node.line(), coll, 0);
            put(node.foot(), coll, usize::MAX);
        }
        let items = built.items(c);
        let before = |j: usize| items.get(j).map_or(usize::MAX, |i| i.start());
        let after = |j: usize| items.get(j).map_or(usize::MAX, |i| i.start() + 1);
        match node.kind {
            NodeKind::Map { .. } if c.is_map => {
                let children = tree.children(node);
                let pairs = children.len() / 2;
                let extra = usize::from(virtual_entries && c.parent.is_none());
                if !children.len().is_multiple_of(2)
                    || !(pairs == items.len() || pairs == items.len() + extra)
                {
                    return None;
                }
                for j in 0..pairs {
                    let k = &tree.nodes[children[2 * j] as usize];
                    let vid = children[2 * j + 1] as usize;
                    let v = &tree.nodes[vid];
                    put(k.head(), coll, before(j));
                    put(k.line(), coll, before(j));
                    put(k.foot(), coll, after(j));
                    let item = items.get(j).map(|i| &i.node);
                    match (v.kind, item) {
                        (NodeKind::Scalar, Some(SkNode::Leaf(_)) | None) => {
                            put(v.head(), coll, before(j));
                            put(v.line(), coll, before(j));
                            put(v.foot(), coll, after(j));
                        }
                        (NodeKind::Map { .. } | NodeKind::Seq, Some(SkNode::Coll(id))) => {
                            work.push((vid, *id, true));
                        }
                        _ => return None,
                    }
                }
            }
            NodeKind::Seq if !c.is_map => {
                let children = tree.children(node);
                if children.len() != items.len() {
                    return None;
                }
                for (j, &id) in children.iter().enumerate() {
                    let id = id as usize;
                    let item = &tree.nodes[id];
                    put(item.head(), coll, before(j));
                    put(item.line(), coll, before(j));
                    put(item.foot(), coll, after(j));
                    match (item.kind, &items[j].node) {
                        (NodeKind::Scalar, SkNode::Leaf(_)) => {}
                        (NodeKind::Map { .. } | NodeKind::Seq, SkNode::Coll(sub)) => {
                            work.push((id, *sub, false));
                        }
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    Some(out)
}
