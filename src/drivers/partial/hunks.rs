//! The hunks of a plaintext diff, as `git add -p` shows them, and the text that
//! results from the ones chosen (docs/architecture.md §4.10).
//!
//! The diff is the merge driver's line diff ([`diff3::diff`], Myers, lines with
//! their terminators), so no diff crate is needed. A change is a maximal
//! replaced region; a hunk is a run of changes whose context overlaps (at most
//! `2 * CONTEXT` equal lines apart), as in git. Splitting a hunk makes each
//! change a hunk of its own. An edited hunk (`e`) replaces the old lines it
//! shows by the lines the user left. The result is always built from the
//! staged text: untouched lines are the staged lines, byte for byte.
//!
//! Everything here is plaintext: what is rendered goes into zeroizing buffers.

use std::ops::Range;

use zeroize::Zeroizing;

use crate::drivers::merge::diff3::{self, Change};

/// Lines of context around a change, git's default (`diff.context`).
pub const CONTEXT: usize = 3;

/// The diff of the staged plaintext (`old`) to the working-tree one (`new`).
pub struct Diff<'t> {
    old: Vec<&'t [u8]>,
    new: Vec<&'t [u8]>,
    changes: Vec<Change>,
}

/// A line of a hunk: its kind (`b' '`, `b'-'`, `b'+'`) and its text.
type Line<'t> = (u8, &'t [u8]);

/// What the user chose for a hunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    Undecided,
    Stage,
    Skip,
}

/// One hunk: the changes `changes` of the diff, or an edited replacement.
pub struct Hunk {
    changes: Range<usize>,
    pub choice: Choice,
    /// After `e`: the lines that replace `old[edited_range]` when staged.
    edited: Option<Vec<Zeroizing<Vec<u8>>>>,
}

impl<'t> Diff<'t> {
    pub fn new(old: &'t [u8], new: &'t [u8]) -> Diff<'t> {
        let (old, new) = (diff3::lines(old), diff3::lines(new));
        let changes = diff3::diff(&old, &new);
        Diff { old, new, changes }
    }

    /// The hunks, as git groups changes: context that touches or overlaps joins them.
    pub fn hunks(&self) -> Vec<Hunk> {
        let mut hunks: Vec<Hunk> = Vec::new();
        for (i, c) in self.changes.iter().enumerate() {
            match hunks.last_mut() {
                Some(h) if c.a.start - self.changes[h.changes.end - 1].a.end <= 2 * CONTEXT => {
                    h.changes.end = i + 1;
                }
                _ => hunks.push(Hunk {
                    changes: i..i + 1,
                    choice: Choice::Undecided,
                    edited: None,
                }),
            }
        }
        hunks
    }

    /// The old lines a hunk shows (its changes and their context); context
    /// never reaches into a neighbouring change.
    fn old_range(&self, h: &Hunk) -> Range<usize> {
        let (first, last) = (
            &self.changes[h.changes.start],
            &self.changes[h.changes.end - 1],
        );
        let low = match h.changes.start {
            0 => 0,
            i => self.changes[i - 1].a.end,
        };
        let high = self
            .changes
            .get(h.changes.end)
            .map_or(self.old.len(), |c| c.a.start);
        first.a.start.saturating_sub(CONTEXT).max(low)..(last.a.end + CONTEXT).min(high)
    }

    /// The hunk as `-`/`+`/` ` lines (each with its terminator, or none at the end
    /// of a file without a final newline), and its old and new line ranges.
    fn lines(&self, h: &Hunk) -> (Vec<Line<'_>>, Range<usize>, Range<usize>) {
        let range = self.old_range(h);
        let first = &self.changes[h.changes.start];
        // Equal lines keep their offset between old and new.
        let new_start = first.b.start - (first.a.start - range.start);
        let mut out = Vec::new();
        let mut at = range.start;
        for c in &self.changes[h.changes.clone()] {
            out.extend(self.old[at..c.a.start].iter().map(|l| (b' ', *l)));
            out.extend(self.old[c.a.clone()].iter().map(|l| (b'-', *l)));
            out.extend(self.new[c.b.clone()].iter().map(|l| (b'+', *l)));
            at = c.a.end;
        }
        out.extend(self.old[at..range.end].iter().map(|l| (b' ', *l)));
        let new_len = out.iter().filter(|(k, _)| *k != b'-').count();
        (out, range, new_start..new_start + new_len)
    }

    /// The hunk as git prints it: `@@ -a,b +c,d @@` and its lines.
    pub fn render(&self, h: &Hunk) -> Zeroizing<Vec<u8>> {
        let (lines, old, new) = self.lines(h);
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(format!("@@ -{} +{} @@\n", span(&old), span(&new)).as_bytes());
        for (kind, line) in lines {
            push_line(&mut out, kind, line);
        }
        out
    }

    /// Can `s` split the hunk (does it hold more than one change)?
    pub fn splittable(&self, h: &Hunk) -> bool {
        h.edited.is_none() && h.changes.len() > 1
    }

    /// The hunk split into one hunk per change.
    pub fn split(&self, h: &Hunk) -> Vec<Hunk> {
        h.changes
            .clone()
            .map(|i| Hunk {
                changes: i..i + 1,
                choice: Choice::Undecided,
                edited: None,
            })
            .collect()
    }

    /// Take the user's edit of the hunk (`render`'s text, edited): lines starting
    /// with `#` and the `@@` line are dropped, `-` and ` ` lines must be the old
    /// lines the hunk showed, `\ No newline` removes the previous line's end.
    /// `Ok(false)`: everything was removed (the edit is abandoned, as in git).
    pub fn apply_edit(&self, h: &mut Hunk, text: &[u8]) -> Result<bool, String> {
        let range = self.old_range(h);
        let mut old: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut new: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        // Which sides the previous line went to (for `\ No newline`).
        let mut last = (false, false);
        let mut any = false;
        for line in diff3::lines(text) {
            let Some((&kind, rest)) = line.split_first() else {
                continue;
            };
            let content = || Zeroizing::new(rest.to_vec());
            match kind {
                b'#' => continue,
                b'@' if line.starts_with(b"@@") => continue,
                b' ' => {
                    old.push(content());
                    new.push(content());
                    last = (true, true);
                }
                // An editor that strips trailing blanks turns an empty context line into "".
                b'\n' => {
                    old.push(Zeroizing::new(b"\n".to_vec()));
                    new.push(Zeroizing::new(b"\n".to_vec()));
                    last = (true, true);
                }
                b'-' => {
                    old.push(content());
                    last = (true, false);
                }
                b'+' => {
                    new.push(content());
                    last = (false, true);
                }
                b'\\' => {
                    for (side, lines) in [(last.0, &mut old), (last.1, &mut new)] {
                        if let Some(l) = lines.last_mut().filter(|_| side) {
                            if l.last() == Some(&b'\n') {
                                l.pop();
                            }
                        }
                    }
                    continue;
                }
                _ => return Err("a line does not start with ' ', '-', '+' or '#'".into()),
            }
            any = true;
        }
        if !any {
            return Ok(false);
        }
        let shown = &self.old[range];
        if old.len() != shown.len() || old.iter().zip(shown).any(|(a, b)| a.as_slice() != *b) {
            return Err("its context and '-' lines are not the lines the hunk showed".into());
        }
        h.edited = Some(new);
        h.choice = Choice::Stage;
        Ok(true)
    }

    /// The staged text with the chosen hunks applied; `None` when nothing
    /// was chosen. An error when two edited hunks claim the same line.
    pub fn result(&self, hunks: &[Hunk]) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        // (old range replaced, its new lines), in order.
        let mut parts: Vec<(Range<usize>, Vec<&[u8]>)> = Vec::new();
        for h in hunks.iter().filter(|h| h.choice == Choice::Stage) {
            match &h.edited {
                Some(lines) => parts.push((
                    self.old_range(h),
                    lines.iter().map(|l| l.as_slice()).collect(),
                )),
                None => parts.extend(
                    self.changes[h.changes.clone()]
                        .iter()
                        .map(|c| (c.a.clone(), self.new[c.b.clone()].to_vec())),
                ),
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        parts.sort_by_key(|(r, _)| (r.start, r.end));
        let mut out = Zeroizing::new(Vec::new());
        let mut at = 0;
        for (range, lines) in parts {
            if range.start < at {
                return Err("two edited hunks change the same lines".into());
            }
            self.old[at..range.start]
                .iter()
                .for_each(|l| out.extend_from_slice(l));
            lines.iter().for_each(|l| out.extend_from_slice(l));
            at = range.end;
        }
        self.old[at..].iter().for_each(|l| out.extend_from_slice(l));
        Ok(Some(out))
    }
}

/// A whole new file (or the whole text, for all-or-nothing) as one hunk.
pub fn render_all(kind: u8, text: &[u8]) -> Zeroizing<Vec<u8>> {
    let lines = diff3::lines(text);
    let mut out = Zeroizing::new(Vec::new());
    let header = match kind {
        b'+' => format!("@@ -0,0 +{} @@\n", span(&(0..lines.len()))),
        _ => format!("@@ -{} +0,0 @@\n", span(&(0..lines.len()))),
    };
    out.extend_from_slice(header.as_bytes());
    for l in lines {
        push_line(&mut out, kind, l);
    }
    out
}

/// `start,len` as a hunk header writes it (1-based; `,1` left out, and an
/// empty range names the line before it).
fn span(r: &Range<usize>) -> String {
    match r.len() {
        0 => format!("{},0", r.start),
        1 => format!("{}", r.start + 1),
        n => format!("{},{n}", r.start + 1),
    }
}

fn push_line(out: &mut Vec<u8>, kind: u8, line: &[u8]) {
    out.push(kind);
    out.extend_from_slice(line);
    if line.last() != Some(&b'\n') {
        out.extend_from_slice(b"\n\\ No newline at end of file\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &[u8] = b"a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: 10\n";

    #[test]
    fn two_far_changes_are_two_hunks_and_each_stages_alone() {
        // Six equal lines apart would join (the contexts touch), as in git.
        let new = b"a: 1\nb: TWO\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: TEN\n";
        let d = Diff::new(OLD, new);
        let mut hunks = d.hunks();
        assert_eq!(hunks.len(), 2);
        assert_eq!(
            d.render(&hunks[0]).as_slice(),
            b"@@ -1,5 +1,5 @@\n a: 1\n-b: 2\n+b: TWO\n c: 3\n d: 4\n e: 5\n"
        );
        hunks[0].choice = Choice::Stage;
        let out = d.result(&hunks).unwrap().unwrap();
        assert_eq!(
            out.as_slice(),
            &b"a: 1\nb: TWO\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: 10\n"[..]
        );
        hunks[0].choice = Choice::Skip;
        assert!(d.result(&hunks).unwrap().is_none());
    }

    #[test]
    fn near_changes_join_and_split() {
        let new = b"a: 1\nb: TWO\nc: 3\nd: FOUR\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: 10\n";
        let d = Diff::new(OLD, new);
        let hunks = d.hunks();
        assert_eq!(hunks.len(), 1);
        assert!(d.splittable(&hunks[0]));
        let mut parts = d.split(&hunks[0]);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            d.render(&parts[1]).as_slice(),
            b"@@ -3,5 +3,5 @@\n c: 3\n-d: 4\n+d: FOUR\n e: 5\n f: 6\n g: 7\n"
        );
        parts[1].choice = Choice::Stage;
        let out = d.result(&parts).unwrap().unwrap();
        assert!(out.starts_with(b"a: 1\nb: 2\nc: 3\nd: FOUR\n"));
    }

    #[test]
    fn an_edit_replaces_the_shown_lines() {
        let new = b"a: 1\nb: TWO\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\ni: 9\nj: 10\n";
        let d = Diff::new(OLD, new);
        let mut hunks = d.hunks();
        let edit = b"# comment\n@@ -1,5 +1,5 @@\n a: 1\n-b: 2\n+b: edited\n c: 3\n d: 4\n e: 5\n";
        assert_eq!(d.apply_edit(&mut hunks[0], edit), Ok(true));
        let out = d.result(&hunks).unwrap().unwrap();
        assert!(out.starts_with(b"a: 1\nb: edited\nc: 3\n"));
        assert!(d.apply_edit(&mut hunks[0], b" a: 1\n-b: X\n").is_err());
        assert_eq!(d.apply_edit(&mut hunks[0], b"# nothing\n"), Ok(false));
    }

    #[test]
    fn a_missing_final_newline_is_shown_and_kept() {
        let d = Diff::new(b"a: 1\nb: 2", b"a: 1\nb: 3");
        let mut hunks = d.hunks();
        assert_eq!(
            d.render(&hunks[0]).as_slice(),
            b"@@ -1,2 +1,2 @@\n a: 1\n-b: 2\n\\ No newline at end of file\n+b: 3\n\\ No newline at end of file\n"
        );
        let edit = d.render(&hunks[0]);
        assert_eq!(d.apply_edit(&mut hunks[0], &edit), Ok(true));
        assert_eq!(d.result(&hunks).unwrap().unwrap().as_slice(), b"a: 1\nb: 3");
    }
}
