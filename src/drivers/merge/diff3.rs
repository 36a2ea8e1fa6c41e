//! A line-based three-way merge of plaintexts, in memory.
//!
//! Lines keep their terminators (`\n`, `\r\n`, or none for an unterminated last
//! line), so line endings and a missing final newline take part in the merge like
//! any other content. Each side is diffed against the base with Myers' algorithm
//! (linear space, [`diff`]); changes from both sides are then grouped:
//!
//! * changes whose base ranges overlap conflict, unless both sides made the same
//!   change;
//! * changes that only touch (one ends where the other starts) merge when both
//!   replace or delete base lines (two people editing two adjacent keys), and
//!   conflict when either is a pure insertion at that point (the order of the new
//!   lines relative to the other edit is a guess), as in git;
//! * everything else merges.
//!
//! A conflict is written with git's markers (`<<<<<<< ours`, `=======`,
//! `>>>>>>> theirs`) and refined the way git's default ("zealous") level does:
//! lines both sides agree on inside a conflicting region are taken out of it.
//!
//! The inputs are secrets: the result is built into a zeroizing buffer allocated
//! once at its final size, and no line is copied anywhere else.

use std::collections::HashMap;
use std::ops::Range;

use zeroize::Zeroizing;

/// One region where `a[a]` became `b[b]` (at least one of them non-empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub a: Range<usize>,
    pub b: Range<usize>,
}

/// How much work [`diff`] may do (in diagonal steps) before it settles for a
/// correct but not minimal answer for what is left (one replaced block).
const BUDGET: usize = 200_000_000;

/// The changes turning `a` into `b`, in order; maximal, so two changes are always
/// separated by at least one equal element.
pub fn diff<T: PartialEq>(a: &[T], b: &[T]) -> Vec<Change> {
    diff_within(a, b, BUDGET)
}

fn diff_within<T: PartialEq>(a: &[T], b: &[T], budget: usize) -> Vec<Change> {
    let mut myers = Myers {
        a,
        b,
        vf: Vec::new(),
        vb: Vec::new(),
        budget,
        equal: Vec::new(),
    };
    myers.compare(0..a.len(), 0..b.len());
    // Equal runs, in order, to the changes between them.
    let mut changes = Vec::new();
    let (mut ai, mut bi) = (0, 0);
    let runs = std::mem::take(&mut myers.equal);
    for (ea, eb, len) in runs
        .into_iter()
        .chain(std::iter::once((a.len(), b.len(), 0)))
    {
        if ea > ai || eb > bi {
            changes.push(Change {
                a: ai..ea,
                b: bi..eb,
            });
        }
        ai = ea + len;
        bi = eb + len;
    }
    changes
}

struct Myers<'a, T> {
    a: &'a [T],
    b: &'a [T],
    vf: Vec<usize>,
    vb: Vec<usize>,
    budget: usize,
    /// Equal runs found so far: (start in a, start in b, length), in order.
    equal: Vec<(usize, usize, usize)>,
}

impl<T: PartialEq> Myers<'_, T> {
    fn push_equal(&mut self, a: usize, b: usize, len: usize) {
        if len == 0 {
            return;
        }
        if let Some(last) = self.equal.last_mut() {
            if last.0 + last.2 == a && last.1 + last.2 == b {
                last.2 += len;
                return;
            }
        }
        self.equal.push((a, b, len));
    }

    fn compare(&mut self, mut a: Range<usize>, mut b: Range<usize>) {
        let prefix = self.a[a.clone()]
            .iter()
            .zip(&self.b[b.clone()])
            .take_while(|(x, y)| x == y)
            .count();
        self.push_equal(a.start, b.start, prefix);
        a.start += prefix;
        b.start += prefix;
        let suffix = self.a[a.clone()]
            .iter()
            .rev()
            .zip(self.b[b.clone()].iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        a.end -= suffix;
        b.end -= suffix;
        if !a.is_empty() && !b.is_empty() {
            if let Some((x, y)) = self.middle_snake(a.clone(), b.clone()) {
                self.compare(a.start..x, b.start..y);
                self.compare(x..a.end, y..b.end);
            }
            // Without a split (budget spent) the rest is one replaced block.
        }
        self.push_equal(a.end, b.end, suffix);
    }

    /// A point (x, y) on an optimal path from (a.start, b.start) to (a.end,
    /// b.end), so that the two halves can be compared separately. Both ranges are
    /// non-empty and differ in their first and last elements.
    fn middle_snake(&mut self, a: Range<usize>, b: Range<usize>) -> Option<(usize, usize)> {
        let n = a.len() as isize;
        let m = b.len() as isize;
        let delta = n - m;
        let odd = delta & 1 == 1;
        let d_max = (n + m + 1) / 2 + 1;
        let size = (2 * d_max + 2) as usize;
        let off = d_max + 1;
        self.vf.clear();
        self.vf.resize(size, 0);
        self.vb.clear();
        self.vb.resize(size, 0);
        let at = |k: isize| (k + off) as usize;
        for d in 0..d_max {
            let cost = (2 * d + 1) as usize;
            if self.budget < 2 * cost {
                self.budget = 0;
                return None;
            }
            self.budget -= 2 * cost;
            // Forward.
            let mut k = d;
            while k >= -d {
                let mut x = if k == -d || (k != d && self.vf[at(k - 1)] < self.vf[at(k + 1)]) {
                    self.vf[at(k + 1)] as isize
                } else {
                    self.vf[at(k - 1)] as isize + 1
                };
                let mut y = x - k;
                let (x0, y0) = (x, y);
                while x < n && y < m && self.a[a.start + x as usize] == self.b[b.start + y as usize]
                {
                    x += 1;
                    y += 1;
                }
                self.vf[at(k)] = x as usize;
                if odd && (k - delta).abs() < d {
                    let back = self.vb[at(-(k - delta))] as isize;
                    if x + back >= n {
                        return Some((a.start + x0 as usize, b.start + y0 as usize));
                    }
                }
                k -= 2;
            }
            // Backward (x counts from the end).
            let mut k = d;
            while k >= -d {
                let mut x = if k == -d || (k != d && self.vb[at(k - 1)] < self.vb[at(k + 1)]) {
                    self.vb[at(k + 1)] as isize
                } else {
                    self.vb[at(k - 1)] as isize + 1
                };
                let mut y = x - k;
                while x < n
                    && y < m
                    && self.a[a.start + (n - x - 1) as usize]
                        == self.b[b.start + (m - y - 1) as usize]
                {
                    x += 1;
                    y += 1;
                }
                self.vb[at(k)] = x as usize;
                if !odd && (k - delta).abs() <= d {
                    let fwd = self.vf[at(-(k - delta))] as isize;
                    if x + fwd >= n {
                        return Some((a.start + (n - x) as usize, b.start + (m - y) as usize));
                    }
                }
                k -= 2;
            }
        }
        None
    }
}

/// `text` split into lines, each with its terminator.
pub fn lines(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &c) in text.iter().enumerate() {
        if c == b'\n' {
            out.push(&text[start..=i]);
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Each line as a number, equal numbers for equal lines.
fn intern<'t>(ids: &mut HashMap<&'t [u8], u32>, lines: &[&'t [u8]]) -> Vec<u32> {
    lines
        .iter()
        .map(|l| {
            let next = ids.len() as u32;
            *ids.entry(l).or_insert(next)
        })
        .collect()
}

/// How conflicts are written.
#[derive(Clone, Debug)]
pub struct Markers<'a> {
    /// The marker length (git's `%L`, normally 7).
    pub size: usize,
    pub ours: &'a str,
    pub theirs: &'a str,
}

impl Default for Markers<'_> {
    fn default() -> Self {
        Markers {
            size: 7,
            ours: "ours",
            theirs: "theirs",
        }
    }
}

/// The result of a three-way merge.
pub struct Merged {
    /// The merged text, with conflict markers where the sides disagree.
    pub text: Zeroizing<Vec<u8>>,
    /// How many conflict blocks it holds.
    pub conflicts: usize,
}

/// A piece of the result: lines of one input, or a marker line.
enum Piece<'a> {
    Lines(&'a [&'a [u8]]),
    Marker(u8, &'a str),
}

/// Merge `ours` and `theirs`, both derived from `base` (empty when there is none).
pub fn merge3(base: &[u8], ours: &[u8], theirs: &[u8], markers: &Markers) -> Merged {
    let (base_lines, ours_lines, theirs_lines) = (lines(base), lines(ours), lines(theirs));
    // Compare lines by number: one hash per line instead of one per comparison.
    let mut ids: HashMap<&[u8], u32> = HashMap::new();
    let bi = intern(&mut ids, &base_lines);
    let oi = intern(&mut ids, &ours_lines);
    let ti = intern(&mut ids, &theirs_lines);
    let crlf = [&ours_lines, &theirs_lines, &base_lines]
        .iter()
        .find_map(|ls| ls.first().filter(|l| l.ends_with(b"\n")))
        .is_some_and(|l| l.ends_with(b"\r\n"));
    let ours_changes = diff(&bi, &oi);
    let theirs_changes = diff(&bi, &ti);

    let mut pieces: Vec<Piece> = Vec::new();
    let mut conflicts = 0;
    // Walk the changes of both sides in base order, grouping those that interfere.
    let mut all: Vec<(bool, &Change)> = ours_changes
        .iter()
        .map(|c| (true, c))
        .chain(theirs_changes.iter().map(|c| (false, c)))
        .collect();
    all.sort_by_key(|(_, c)| (c.a.start, c.a.end));
    // Per side: the end of its last processed change, in (base, side) lines.
    let mut ours_end = (0usize, 0usize);
    let mut theirs_end = (0usize, 0usize);
    let mut pos = 0;
    let mut i = 0;
    while i < all.len() {
        let lo = all[i].1.a.start;
        let mut hi = all[i].1.a.end;
        let mut insertion_at_hi = all[i].1.a.is_empty();
        let mut j = i + 1;
        while j < all.len() {
            let n = &all[j].1.a;
            let joins = n.start < hi || (n.start == hi && (n.is_empty() || insertion_at_hi));
            if !joins {
                break;
            }
            if n.end > hi {
                hi = n.end;
                insertion_at_hi = false;
            } else if n.is_empty() && n.start == hi {
                insertion_at_hi = true;
            }
            j += 1;
        }
        let group = &all[i..j];
        pieces.push(Piece::Lines(&base_lines[pos..lo]));
        // Each side's lines for base[lo..hi].
        let region = |ours_side: bool, end: &mut (usize, usize)| -> (bool, Range<usize>) {
            let start = end.1 + (lo - end.0);
            let mut touched = false;
            for (side, c) in group {
                if *side == ours_side {
                    *end = (c.a.end, c.b.end);
                    touched = true;
                }
            }
            (touched, start..end.1 + (hi - end.0))
        };
        let (o_touched, o) = region(true, &mut ours_end);
        let (t_touched, t) = region(false, &mut theirs_end);
        match (o_touched, t_touched) {
            (true, false) => pieces.push(Piece::Lines(&ours_lines[o])),
            (false, true) => pieces.push(Piece::Lines(&theirs_lines[t])),
            _ if oi[o.clone()] == ti[t.clone()] => pieces.push(Piece::Lines(&ours_lines[o])),
            _ => {
                conflicts += push_conflict(
                    &mut pieces,
                    (&ours_lines, &oi, o),
                    (&theirs_lines, &ti, t),
                    markers,
                )
            }
        }
        pos = hi;
        i = j;
    }
    pieces.push(Piece::Lines(&base_lines[pos..]));
    let text = render(&pieces, markers.size, crlf);
    Merged { text, conflicts }
}

type Side<'a, 'b> = (&'a [&'a [u8]], &'b [u32], Range<usize>);

/// A conflict between `ours` and `theirs` lines, refined the way git does: lines
/// both sides agree on are not part of it. Returns how many conflict blocks it
/// became.
fn push_conflict<'a>(
    pieces: &mut Vec<Piece<'a>>,
    (ours_lines, oi, o): Side<'a, '_>,
    (theirs_lines, ti, t): Side<'a, '_>,
    markers: &'a Markers,
) -> usize {
    let mut blocks = 0;
    let mut o_at = o.start;
    for c in diff(&oi[o.clone()], &ti[t.clone()]) {
        let ca = o.start + c.a.start..o.start + c.a.end;
        let cb = t.start + c.b.start..t.start + c.b.end;
        pieces.push(Piece::Lines(&ours_lines[o_at..ca.start]));
        pieces.push(Piece::Marker(b'<', markers.ours));
        pieces.push(Piece::Lines(&ours_lines[ca.clone()]));
        pieces.push(Piece::Marker(b'=', ""));
        pieces.push(Piece::Lines(&theirs_lines[cb]));
        pieces.push(Piece::Marker(b'>', markers.theirs));
        blocks += 1;
        o_at = ca.end;
    }
    pieces.push(Piece::Lines(&ours_lines[o_at..o.end]));
    blocks
}

/// The pieces as one buffer, allocated once (no stray copies of the plaintext).
fn render(pieces: &[Piece], size: usize, crlf: bool) -> Zeroizing<Vec<u8>> {
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut len = 0;
    let mut unterminated = false;
    for p in pieces {
        match p {
            Piece::Lines(ls) => {
                for l in ls.iter() {
                    len += l.len();
                    unterminated = !l.ends_with(b"\n");
                }
            }
            Piece::Marker(_, label) => {
                if unterminated {
                    len += eol.len();
                }
                len += size + eol.len();
                if !label.is_empty() {
                    len += 1 + label.len();
                }
                unterminated = false;
            }
        }
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let mut unterminated = false;
    for p in pieces {
        match p {
            Piece::Lines(ls) => {
                for l in ls.iter() {
                    out.extend_from_slice(l);
                    unterminated = !l.ends_with(b"\n");
                }
            }
            Piece::Marker(c, label) => {
                if unterminated {
                    out.extend_from_slice(eol);
                }
                out.extend(std::iter::repeat_n(*c, size));
                if !label.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(label.as_bytes());
                }
                out.extend_from_slice(eol);
                unterminated = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(base: &str, ours: &str, theirs: &str) -> (String, usize) {
        let r = merge3(
            base.as_bytes(),
            ours.as_bytes(),
            theirs.as_bytes(),
            &Markers::default(),
        );
        (String::from_utf8(r.text.to_vec()).unwrap(), r.conflicts)
    }

    fn apply(a: &[char], b: &[char], changes: &[Change]) -> Vec<char> {
        let mut out = Vec::new();
        let mut at = 0;
        for c in changes {
            out.extend_from_slice(&a[at..c.a.start]);
            out.extend_from_slice(&b[c.b.clone()]);
            at = c.a.end;
        }
        out.extend_from_slice(&a[at..]);
        out
    }

    fn edit_cost(changes: &[Change]) -> usize {
        changes.iter().map(|c| c.a.len() + c.b.len()).sum()
    }

    /// The classic LCS by dynamic programming, for comparison.
    fn lcs_len(a: &[char], b: &[char]) -> usize {
        let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                t[i][j] = if a[i] == b[j] {
                    t[i + 1][j + 1] + 1
                } else {
                    t[i + 1][j].max(t[i][j + 1])
                };
            }
        }
        t[0][0]
    }

    #[test]
    fn diff_is_correct_and_minimal() {
        let cases = [
            ("abcabba", "cbabac"),
            ("", "abc"),
            ("abc", ""),
            ("abc", "abc"),
            ("abcdef", "azcdxf"),
            ("xaaaaaay", "aaaa"),
            ("the quick brown fox", "a quick brown dog jumps"),
            ("aaaaabbbbb", "bbbbbaaaaa"),
        ];
        for (a, b) in cases {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            let changes = diff(&a, &b);
            assert_eq!(apply(&a, &b, &changes), b, "{a:?} -> {b:?}");
            assert_eq!(
                edit_cost(&changes),
                a.len() + b.len() - 2 * lcs_len(&a, &b),
                "{a:?} -> {b:?}: not minimal"
            );
            for w in changes.windows(2) {
                assert!(w[0].a.end < w[1].a.start || w[0].b.end < w[1].b.start);
            }
        }
    }

    #[test]
    fn diff_of_pseudo_random_sequences() {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..300 {
            let la = next() % 30;
            let lb = next() % 30;
            let a: Vec<char> = (0..la)
                .map(|_| (b'a' + (next() % 4) as u8) as char)
                .collect();
            let b: Vec<char> = (0..lb)
                .map(|_| (b'a' + (next() % 4) as u8) as char)
                .collect();
            let changes = diff(&a, &b);
            assert_eq!(apply(&a, &b, &changes), b);
            assert_eq!(edit_cost(&changes), a.len() + b.len() - 2 * lcs_len(&a, &b));
        }
    }

    #[test]
    fn a_spent_budget_still_gives_a_correct_diff() {
        let a: Vec<char> = "abcdefghij".repeat(20).chars().collect();
        let b: Vec<char> = "jihgfedcba".repeat(20).chars().collect();
        for budget in [0, 10, 1000] {
            let changes = diff_within(&a, &b, budget);
            assert_eq!(apply(&a, &b, &changes), b);
        }
    }

    #[test]
    fn lines_keep_their_terminators() {
        assert_eq!(lines(b"a\nb\r\nc"), vec![&b"a\n"[..], b"b\r\n", b"c"]);
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"\n\n"), vec![&b"\n"[..], b"\n"]);
    }

    const BASE: &str = "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\n";

    #[test]
    fn separate_edits_merge() {
        let (text, n) = m(
            BASE,
            "a: 10\nb: 2\nc: 3\nd: 4\ne: 5\n",
            "a: 1\nb: 2\nc: 3\nd: 4\ne: 50\n",
        );
        assert_eq!((text.as_str(), n), ("a: 10\nb: 2\nc: 3\nd: 4\ne: 50\n", 0));
    }

    #[test]
    fn adjacent_replacements_merge() {
        let (text, n) = m(
            BASE,
            "a: 1\nb: 20\nc: 3\nd: 4\ne: 5\n",
            "a: 1\nb: 2\nc: 30\nd: 4\ne: 5\n",
        );
        assert_eq!((text.as_str(), n), ("a: 1\nb: 20\nc: 30\nd: 4\ne: 5\n", 0));
        // A deletion next to a replacement.
        let (text, n) = m(
            BASE,
            "a: 1\nc: 3\nd: 4\ne: 5\n",
            "a: 1\nb: 2\nc: 30\nd: 4\ne: 5\n",
        );
        assert_eq!((text.as_str(), n), ("a: 1\nc: 30\nd: 4\ne: 5\n", 0));
    }

    #[test]
    fn insertions_and_deletions_merge() {
        let (text, n) = m(
            BASE,
            "top: 0\na: 1\nb: 2\nc: 3\nd: 4\ne: 5\n",
            "a: 1\nb: 2\nd: 4\ne: 5\nf: 6\n",
        );
        assert_eq!(
            (text.as_str(), n),
            ("top: 0\na: 1\nb: 2\nd: 4\ne: 5\nf: 6\n", 0)
        );
    }

    #[test]
    fn the_same_change_on_both_sides_merges() {
        let ours = "a: 1\nb: 22\nc: 3\nd: 4\ne: 5\nf: 6\n";
        let (text, n) = m(BASE, ours, ours);
        assert_eq!((text.as_str(), n), (ours, 0));
        let (text, n) = m(
            BASE,
            "a: 1\nb: 22\nc: 3\nd: 4\ne: 5\n",
            "a: 1\nb: 22\nc: 3\nd: 4\ne: 55\n",
        );
        assert_eq!((text.as_str(), n), ("a: 1\nb: 22\nc: 3\nd: 4\ne: 55\n", 0));
    }

    #[test]
    fn overlapping_edits_conflict() {
        let (text, n) = m(
            BASE,
            "a: 1\nb: ours\nc: 3\nd: 4\ne: 5\n",
            "a: 1\nb: theirs\nc: 3\nd: 4\ne: 5\n",
        );
        assert_eq!(n, 1);
        assert_eq!(
            text,
            "a: 1\n<<<<<<< ours\nb: ours\n=======\nb: theirs\n>>>>>>> theirs\nc: 3\nd: 4\ne: 5\n"
        );
    }

    #[test]
    fn insertions_at_the_same_place_conflict() {
        let (text, n) = m("a\nb\n", "a\nx\nb\n", "a\ny\nb\n");
        assert_eq!(n, 1);
        assert_eq!(text, "a\n<<<<<<< ours\nx\n=======\ny\n>>>>>>> theirs\nb\n");
    }

    #[test]
    fn an_insertion_next_to_an_edit_conflicts() {
        let (_, n) = m("a\nb\nc\n", "a\nB\nc\n", "a\nb\nnew\nc\n");
        assert_eq!(n, 1);
        let (_, n) = m("a\nb\nc\n", "a\nb\nnew\nc\n", "a\nb\nC\n");
        assert_eq!(n, 1);
    }

    #[test]
    fn a_deletion_against_an_edit_conflicts() {
        let (text, n) = m("a\nb\nc\n", "a\nc\n", "a\nB\nc\n");
        assert_eq!(n, 1);
        assert_eq!(text, "a\n<<<<<<< ours\n=======\nB\n>>>>>>> theirs\nc\n");
    }

    #[test]
    fn no_base_merges_what_both_sides_share() {
        let (text, n) = m("", "k: 1\n", "k: 1\n");
        assert_eq!((text.as_str(), n), ("k: 1\n", 0));
        let (text, n) = m("", "a: 1\nb: 2\nc: 3\n", "a: 1\nb: 9\nc: 3\n");
        assert_eq!(n, 1);
        assert_eq!(
            text,
            "a: 1\n<<<<<<< ours\nb: 2\n=======\nb: 9\n>>>>>>> theirs\nc: 3\n"
        );
    }

    #[test]
    fn markers_follow_size_labels_and_line_endings() {
        let r = merge3(
            b"a\r\nb\r\n",
            b"a\r\nx\r\n",
            b"a\r\ny\r\n",
            &Markers {
                size: 9,
                ours: "HEAD",
                theirs: "feature",
            },
        );
        assert_eq!(
            String::from_utf8(r.text.to_vec()).unwrap(),
            "a\r\n<<<<<<<<< HEAD\r\nx\r\n=========\r\ny\r\n>>>>>>>>> feature\r\n"
        );
    }

    #[test]
    fn a_missing_final_newline_is_kept_or_terminated_before_a_marker() {
        let (text, n) = m("a\nb", "a\nb", "A\nb");
        assert_eq!((text.as_str(), n), ("A\nb", 0));
        let (text, n) = m("a\nb", "a\nx", "a\ny");
        assert_eq!(n, 1);
        assert_eq!(text, "a\n<<<<<<< ours\nx\n=======\ny\n>>>>>>> theirs\n");
        // Adding a final newline on one side and editing another line on the other.
        let (text, n) = m("a\nb\nc", "a\nb\nc\n", "A\nb\nc");
        assert_eq!((text.as_str(), n), ("A\nb\nc\n", 0));
    }

    #[test]
    fn conflicts_are_refined_to_the_lines_that_differ() {
        let (text, n) = m("a\nb\nc\nd\n", "a\nB1\nc\nD1\n", "a\nB2\nc\nD2\n");
        assert_eq!(n, 2);
        assert_eq!(
            text,
            "a\n<<<<<<< ours\nB1\n=======\nB2\n>>>>>>> theirs\nc\n<<<<<<< ours\nD1\n=======\nD2\n>>>>>>> theirs\n"
        );
    }

    #[test]
    fn chains_of_overlaps_form_one_region() {
        // ours changes b..c, theirs changes c..d: one conflict over b..d.
        let (text, n) = m("a\nb\nc\nd\ne\n", "a\nB\nC\nd\ne\n", "a\nb\nC'\nD\ne\n");
        assert_eq!(n, 1);
        assert_eq!(
            text,
            "a\n<<<<<<< ours\nB\nC\nd\n=======\nb\nC'\nD\n>>>>>>> theirs\ne\n"
        );
    }

    #[test]
    fn the_result_buffer_is_allocated_once() {
        let r = merge3(b"a\nb", b"a\nx", b"a\ny", &Markers::default());
        assert_eq!(r.text.len(), r.text.capacity());
    }
}
