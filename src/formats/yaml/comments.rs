//! Which collection each comment belongs to.
//!
//! A comment's AAD is the path of the map or list that holds it, so a comment we
//! encrypt in place must land in the same collection when real sops reads the file
//! back. sops takes comments from go-yaml v3, which attaches them to nodes with an
//! indentation- and blank-line-sensitive algorithm (`scannerc.go`
//! `yaml_parser_scan_comments` and `yaml_parser_unroll_indent`, then the decoder
//! moves foot comments onto keys, then sops' `appendCommentToMap/List`). This module
//! emulates that algorithm on the gap between two tokens:
//!
//! * **Inline comments** (code before the `#` on its line) belong to the collection
//!   of the item on that line and are placed before that item; after a key with no
//!   inline value (`a: # c` above a nested block) that is the map holding `a`; after
//!   a flow collection's closing bracket it is that flow collection (or the list
//!   holding it).
//! * **Own-line comments** between the previous token P and the next token N are
//!   grouped and split the way go-yaml does: the first comment group directly after P
//!   becomes a *foot of P* (it goes to P's collection) unless it is dedented below the
//!   innermost block indentation and followed by a blank line; later groups at a
//!   different column become *foot* comments that are attached to the end of the
//!   deepest closing block collection whose indentation equals the group's column
//!   (a closing map keeps them; a closing sequence hands them to its parent, as
//!   go-yaml moves a sequence's foot comment to its key); everything else is a
//!   *head* comment of N and goes to N's collection (the document root at the end).
//! * Comments inside flow collections belong to the innermost flow collection.
//!
//! Checked against sops 3.11 on the cases in the tests (`comment_placement_*`);
//! go-yaml has further corner cases (comments between an explicit `?` key and its
//! value, comments before `---`) that are only approximated.
//!
//! Placement is linear in the size of the file (plus a log factor): the flow
//! collection around each comment comes from one sweep over all of them, items
//! are found by binary search, and the closing levels of a gap are matched to its
//! comment groups through a table by column, not by rescanning the groups.

use std::collections::HashMap;

use super::scan::{RawComment, Source};
use super::tree::{Built, MarkKind};

/// Where a comment goes: collection id and a sort position among its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub coll: usize,
    pub sort: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenMark {
    Prev,
    At(usize),
}

struct Emitted {
    members: Vec<usize>,
    foot: bool,
    token_mark: TokenMark,
    start_off: usize,
    start_col: usize,
    scan_mark: usize,
    end_off: usize,
}

pub fn place(src: &Source<'_>, built: &Built, comments: &[RawComment]) -> Vec<Placement> {
    let mut out = vec![
        Placement {
            coll: built.roots.first().copied().unwrap_or(0),
            sort: 0,
        };
        comments.len()
    ];
    let flows = innermost_flows(built, comments);
    let mut i = 0;
    while i < comments.len() {
        let c = &comments[i];
        if let Some(f) = flows[i] {
            out[i] = Placement {
                coll: f,
                sort: c.hash,
            };
            i += 1;
            continue;
        }
        let p = prev_mark(built, c.hash);
        if !c.own_line {
            out[i] = inline(src, built, p, c.hash);
            i += 1;
            continue;
        }
        let n = next_mark(built, c.hash);
        // The gap: consecutive own-line comments with the same P and N.
        let mut j = i + 1;
        while j < comments.len()
            && comments[j].own_line
            && next_mark(built, comments[j].hash) == n
            && flows[j].is_none()
        {
            j += 1;
        }
        let placed = gap(src, built, p, n, &comments[i..j]);
        out[i..j].copy_from_slice(&placed);
        i = j;
    }
    out
}

/// For each comment, the innermost flow collection around its `#`: one sweep over
/// the comments and the flow collections in source order, keeping the open
/// collections on a stack (flow collections nest properly).
fn innermost_flows(built: &Built, comments: &[RawComment]) -> Vec<Option<usize>> {
    let colls = &built.colls;
    let mut flows: Vec<usize> = (0..colls.len()).filter(|&id| colls[id].flow).collect();
    flows.sort_by_key(|&id| (colls[id].start, std::cmp::Reverse(colls[id].end)));
    let mut order: Vec<usize> = (0..comments.len()).collect();
    order.sort_by_key(|&i| comments[i].hash);
    let mut out = vec![None; comments.len()];
    let mut open: Vec<usize> = Vec::new();
    let mut next = 0;
    for i in order {
        let at = comments[i].hash;
        while let Some(&id) = flows.get(next).filter(|&&id| colls[id].start < at) {
            while open
                .last()
                .is_some_and(|&top| colls[top].end <= colls[id].start)
            {
                open.pop();
            }
            open.push(id);
            next += 1;
        }
        while open.last().is_some_and(|&top| colls[top].end <= at) {
            open.pop();
        }
        out[i] = open.last().copied();
    }
    out
}

fn prev_mark(built: &Built, at: usize) -> Option<usize> {
    let k = built.marks.partition_point(|m| m.start < at);
    if k == 0 {
        None
    } else {
        Some(k - 1)
    }
}

fn next_mark(built: &Built, at: usize) -> Option<usize> {
    let k = built.marks.partition_point(|m| m.start < at);
    if k < built.marks.len() {
        Some(k)
    } else {
        None
    }
}

fn doc_root(built: &Built, doc: usize) -> usize {
    built
        .roots
        .get(doc)
        .or(built.roots.last())
        .copied()
        .unwrap_or(0)
}

fn mark_doc(built: &Built, m: usize) -> usize {
    match built.marks[m].kind {
        MarkKind::Key { coll, .. }
        | MarkKind::Leaf { coll, .. }
        | MarkKind::Dash { coll, .. }
        | MarkKind::FlowStart { coll }
        | MarkKind::FlowEnd { coll } => built.colls[coll].doc,
        MarkKind::DocBoundary { doc } => doc,
    }
}

fn item_start(built: &Built, coll: usize, item: usize) -> usize {
    built.colls[coll]
        .items
        .get(item)
        .map_or(built.colls[coll].start, |i| i.start)
}

/// The item of `coll` that contains byte `at`, by start. Items are in source
/// order and do not overlap, so only the last two starting at or before `at` can.
fn item_containing(built: &Built, coll: usize, at: usize) -> Option<usize> {
    let items = &built.colls[coll].items;
    let k = items.partition_point(|i| i.start <= at);
    items[k.saturating_sub(2)..k]
        .iter()
        .find(|i| i.start <= at && at <= i.end)
        .map(|i| i.start)
}

fn inline(_src: &Source<'_>, built: &Built, p: Option<usize>, hash: usize) -> Placement {
    let Some(p) = p else {
        return Placement {
            coll: doc_root(built, 0),
            sort: hash,
        };
    };
    match built.marks[p].kind {
        MarkKind::Key { coll, item }
        | MarkKind::Leaf { coll, item, .. }
        | MarkKind::Dash { coll, item } => Placement {
            coll,
            sort: item_start(built, coll, item),
        },
        MarkKind::FlowStart { coll } => Placement { coll, sort: hash },
        MarkKind::FlowEnd { coll } => match built.colls[coll].parent {
            Some(parent) if !built.colls[parent].is_map => Placement {
                coll: parent,
                sort: item_containing(built, parent, built.colls[coll].start).unwrap_or(hash),
            },
            _ => Placement { coll, sort: hash },
        },
        MarkKind::DocBoundary { doc } => Placement {
            coll: doc_root(built, doc),
            sort: hash,
        },
    }
}

/// The collection a head comment of mark `n` goes to.
fn n_placement(built: &Built, p: Option<usize>, n: Option<usize>) -> usize {
    match n.map(|n| built.marks[n].kind) {
        Some(MarkKind::Key { coll, .. })
        | Some(MarkKind::Dash { coll, .. })
        | Some(MarkKind::Leaf { coll, .. })
        | Some(MarkKind::FlowStart { coll })
        | Some(MarkKind::FlowEnd { coll }) => coll,
        Some(MarkKind::DocBoundary { doc }) => {
            // Comments before `---`/`...` stay with the document they follow.
            let d = p.map_or(doc, |p| mark_doc(built, p));
            doc_root(built, d)
        }
        None => doc_root(built, p.map_or(0, |p| mark_doc(built, p))),
    }
}

/// The offset of the start of the line holding `at` (the text before it holds
/// only complete lines).
fn line_start_before(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn gap(
    src: &Source<'_>,
    built: &Built,
    p: Option<usize>,
    n: Option<usize>,
    comments: &[RawComment],
) -> Vec<Placement> {
    let sorted = |coll: usize| -> Vec<Placement> {
        comments
            .iter()
            .map(|c| Placement { coll, sort: c.hash })
            .collect()
    };
    let Some(p) = p else {
        return sorted(n_placement(built, None, n));
    };
    let pm = built.marks[p];
    // P's container and whether P is a VALUE token (key with nothing after it).
    let (container, prev_is_value) = match pm.kind {
        MarkKind::Key { coll, .. } => (coll, true),
        MarkKind::Leaf { coll, empty, .. } => (coll, empty),
        MarkKind::Dash { coll, .. } => (coll, false),
        MarkKind::FlowEnd { coll } => (built.colls[coll].parent.unwrap_or(coll), false),
        MarkKind::FlowStart { coll } => return sorted(coll),
        MarkKind::DocBoundary { doc } => {
            let d = n.map_or(doc, |n| mark_doc(built, n));
            let _ = d;
            return sorted(n_placement(built, None, n));
        }
    };
    // Block indentation levels open at P, innermost first.
    let mut levels = Vec::new();
    let mut cur = Some(container);
    while let Some(c) = cur {
        let coll = &built.colls[c];
        if !coll.flow && (coll.is_map || !coll.indentless) {
            levels.push(c);
        }
        cur = coll.parent;
    }
    let next_indent = levels.first().map_or(0, |&c| built.colls[c].indent);
    let n_col: i64 = match n.map(|n| built.marks[n]) {
        Some(m) if !matches!(m.kind, MarkKind::DocBoundary { .. }) => m.col as i64,
        _ => -1,
    };
    let n_start = n.map_or(src.text.len(), |n| built.marks[n].start);

    // --- yaml_parser_scan_comments, line by line ---
    let text = src.text;
    let first = &comments[0];
    let before = &text[pm.end.min(first.hash)..first.hash];
    let ws_tail = before.len() - before.trim_end_matches([' ', '\t', '\n', '\r']).len();
    let newlines = before[before.len() - ws_tail..].matches('\n').count();
    let first_line = src.line_of(first.hash);
    let p_line = src.line_of(pm.end.min(text.len()));
    let foot_line: i64 = if p_line > 0 {
        let mut f = first_line as i64 - newlines as i64 + 1;
        if newlines == 0 && src.col(first.hash) + 1 > 1 {
            f += 1;
        }
        f
    } else {
        -1
    };
    // go-yaml ends an indentless sequence (`key:` then `- item` at the key's
    // column) at the next key of its map; a comment at that column right before
    // such a key is that key's head comment, not the sequence's foot.
    let indentless_head = !built.colls[container].is_map
        && built.colls[container].indentless
        && n.is_some_and(|n| {
            let m = built.marks[n];
            matches!(m.kind, MarkKind::Key { .. })
                && m.col == src.col(first.hash)
                // A blank line in between keeps it the sequence's foot comment.
                && !text[first.hash..line_start_before(text, m.start)]
                    .lines()
                    .any(|l| l.trim().is_empty())
        });
    let mut first_empty = newlines <= 1 && !indentless_head;
    let mut scan_mark = pm.end;
    let mut token_mark = TokenMark::Prev;
    let mut group: Vec<usize> = Vec::new();
    let mut g_start = (0usize, 0usize, 0usize); // line, col, offset
    let mut emitted: Vec<Emitted> = Vec::new();

    let last_line = if n.is_some() {
        src.line_of(n_start)
    } else {
        src.line_count().saturating_sub(1)
    };
    let mut ci = 0;
    let mut line = first_line;
    while line <= last_line {
        let ls = src.line_start(line);
        let lt = src.line_text(line);
        let indent_bytes = lt.len() - lt.trim_start_matches([' ', '\t']).len();
        let is_comment = ci < comments.len() && comments[ci].hash == ls + indent_bytes;
        let blank = lt.trim().is_empty();
        if is_comment {
            let c = &comments[ci];
            let col = src.col(c.hash);
            if !group.is_empty() && col < next_indent && col != g_start.1 {
                emitted.push(Emitted {
                    members: std::mem::take(&mut group),
                    foot: true,
                    token_mark,
                    start_off: g_start.2,
                    start_col: g_start.1,
                    scan_mark,
                    end_off: c.hash,
                });
                scan_mark = c.hash;
                token_mark = TokenMark::At(c.hash);
            }
            if group.is_empty() {
                g_start = (line, col, c.hash);
            }
            group.push(ci);
            ci += 1;
            // The line break (or end of input) after the comment.
            let eol = c.text.end;
            // Observed with sops 3.11: a dedented first comment directly followed by
            // more content stays a foot of P; only a blank line or the end makes it
            // "unrelated to the prior token".
            let next_blank = line + 1 > last_line
                || src.line_start(line + 1) >= text.len()
                || src.line_text(line + 1).trim().is_empty();
            let dedented = g_start.1 < next_indent;
            if first_empty
                && (!dedented || next_blank)
                && ((g_start.0 as i64 == foot_line && !prev_is_value) || dedented)
            {
                let tm = if g_start.1 < next_indent {
                    TokenMark::At(g_start.2)
                } else {
                    token_mark
                };
                emitted.push(Emitted {
                    members: std::mem::take(&mut group),
                    foot: true,
                    token_mark: tm,
                    start_off: g_start.2,
                    start_col: g_start.1,
                    scan_mark,
                    end_off: eol,
                });
                scan_mark = eol;
                token_mark = TokenMark::At(eol);
            }
            first_empty = false;
        } else if blank {
            first_empty = false;
        } else {
            // The next token's line.
            let col = src.col(ls + indent_bytes);
            if !group.is_empty() && col < next_indent && col != g_start.1 {
                let off = ls + indent_bytes;
                emitted.push(Emitted {
                    members: std::mem::take(&mut group),
                    foot: true,
                    token_mark,
                    start_off: g_start.2,
                    start_col: g_start.1,
                    scan_mark,
                    end_off: off,
                });
                scan_mark = off;
            }
            break;
        }
        line += 1;
    }
    // Any comment the line walk did not reach (should not happen) joins the group.
    while ci < comments.len() {
        if group.is_empty() {
            g_start = (
                src.line_of(comments[ci].hash),
                src.col(comments[ci].hash),
                comments[ci].hash,
            );
        }
        group.push(ci);
        ci += 1;
    }
    if !group.is_empty() {
        emitted.push(Emitted {
            members: group,
            foot: false,
            token_mark: TokenMark::At(g_start.2),
            start_off: g_start.2,
            start_col: g_start.1,
            scan_mark,
            end_off: n_start.saturating_sub(1),
        });
    }

    // --- yaml_parser_unroll_indent: where each closing level's BLOCK-END sits ---
    let closing: Vec<usize> = levels
        .iter()
        .copied()
        .filter(|&c| (built.colls[c].indent as i64) > n_col)
        .collect();
    // Each closing level scans back from the last group through the groups that
    // follow on from each other (one ends at or after the next one's scan mark);
    // that chain is the same for every level, and a level's BLOCK-END moves to the
    // earliest group of the chain at its column. So: one table by column.
    let mut chain = emitted.len();
    while chain > 1 && emitted[chain - 2].end_off >= emitted[chain - 1].scan_mark {
        chain -= 1;
    }
    let mut earliest_at_col: HashMap<usize, usize> = HashMap::new();
    for e in emitted[chain.saturating_sub(1).min(emitted.len())..]
        .iter()
        .rev()
    {
        earliest_at_col.insert(e.start_col, e.start_off);
    }
    let mut block_mark = pm.end.saturating_sub(1);
    let mut ends = Vec::with_capacity(closing.len());
    for &lv in &closing {
        if let Some(&off) = earliest_at_col.get(&built.colls[lv].indent) {
            block_mark = off;
        }
        ends.push((lv, block_mark));
    }
    // The first level (innermost first) whose BLOCK-END is at or after a mark:
    // binary search over the running maximum.
    let mut running = Vec::with_capacity(ends.len());
    for &(_, bm) in &ends {
        running.push(running.last().map_or(bm, |&m: &usize| m.max(bm)));
    }
    let first_end_after = |tm: usize| ends.get(running.partition_point(|&m| m < tm));

    let head_target = n_placement(built, Some(p), n);
    let mut out = vec![
        Placement {
            coll: head_target,
            sort: 0
        };
        comments.len()
    ];
    for e in &emitted {
        let target = match (e.foot, e.token_mark) {
            (true, TokenMark::Prev) => {
                if prev_is_value {
                    head_target
                } else {
                    container
                }
            }
            (true, TokenMark::At(tm)) => first_end_after(tm).map_or(head_target, |&(lv, _)| {
                let coll = &built.colls[lv];
                if coll.is_map {
                    lv
                } else {
                    coll.parent.unwrap_or(lv)
                }
            }),
            (false, _) => head_target,
        };
        for &m in &e.members {
            out[m] = Placement {
                coll: target,
                sort: comments[m].hash,
            };
        }
    }
    out
}
