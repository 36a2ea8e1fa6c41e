//! Differential test of YAML comment binding against the real sops 3.11.
//!
//! sops encrypts every YAML comment with the path of the map or list that go-yaml
//! and sops' YAML store bind it to, so git-sops has to bind each comment exactly
//! as they do. This program writes random YAML documents with comments in every
//! position it can think of (head, inline, foot, between items, blank lines inside
//! comment blocks, nested maps and lists, indentless sequences, several
//! documents, 2- and 4-space indentation, CRLF, with and without a final newline)
//! and, for each document:
//!
//! * **path**: encrypts it with sops, opens sops' data key with the public test
//!   identity and finds, for every encrypted comment, the path that authenticates
//!   it; that path must be the one git-sops binds the comment to.
//! * **a**: `git-sops decrypt` of sops' file must print what `sops decrypt` prints,
//!   with no warning (no comment left encrypted).
//! * **b**: `sops decrypt` of git-sops' encryption must print what `sops decrypt`
//!   of sops' own encryption prints, with no "possibly unencrypted comment".
//! * **roundtrip**: `git-sops decrypt` of git-sops' encryption gives the document
//!   back byte for byte.
//!
//! It is a Rust example, not a script: finding the path sops used needs AES-GCM
//! (not in Python's standard library) and git-sops' own parser, and as part of the
//! crate it is type-checked and linted with everything else. It is not part of
//! the test suite (it takes minutes); a fixed sample of what it found lives in
//! `tests/comments/` and runs in `tests/interop.rs`.
//!
//! Run it with `scripts/yaml-comment-diff [--seed N] [--count N] [--jobs N]
//! [--out DIR] [--minimize N] [--quick]`, or on files with `--file PATH...`.
//! Failing documents (minimized when possible) are written to `--out`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sops_file::cipher::{self, EncValue};
use sops_file::datakey::DataKey;
use sops_file::decrypt;
use sops_file::formats::yaml;
use sops_file::formats::{apply_edits, Document, ListItem, Map, MapItem, Node, Store, Value};
use sops_file::keygroups::{self, Keyring};
use sops_file::keys::age::Identities;

/// The public sops test key (also in `tests/common`).
const IDENTITY: &str = "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7";
const RECIPIENT: &str = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";

// ---------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------

struct Gen {
    rng: StdRng,
    step: usize,
    indentless: bool,
    comment: usize,
    value: usize,
    lines: Vec<String>,
    /// The last line is block scalar content (when `blocks_end` is the line count).
    block_last: bool,
    blocks_end: usize,
    /// The content column of a block scalar that only blank or comment lines
    /// follow yet: a "comment" there would be content.
    block_col: Option<usize>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut rng = StdRng::seed_from_u64(seed);
        let step = if rng.gen_bool(0.5) { 2 } else { 4 };
        let indentless = rng.gen_bool(0.3);
        Gen {
            rng,
            step,
            indentless,
            comment: 0,
            value: 0,
            lines: Vec::new(),
            block_last: false,
            blocks_end: 0,
            block_col: None,
        }
    }

    fn p(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn comment_text(&mut self) -> String {
        self.comment += 1;
        match self.rng.gen_range(0..20) {
            0 | 1 => format!("#c{}", self.comment),
            2 | 3 => format!("#  c{} two words", self.comment),
            4 => format!("# c{}  ", self.comment),
            _ => format!("# c{}", self.comment),
        }
    }

    fn inline(&mut self) -> String {
        let spaces = if self.p(0.8) { " " } else { "   " };
        format!("{spaces}{}", self.comment_text())
    }

    fn scalar(&mut self) -> String {
        self.value += 1;
        if self.rng.gen_range(0..40) == 0 {
            return format!("!!str s{}", self.value);
        }
        match self.rng.gen_range(0..8) {
            0 => format!("{}", self.value),
            1 => format!("'q{}'", self.value),
            2 => format!("\"d{}\"", self.value),
            3 => "true".into(),
            _ => format!("v{}", self.value),
        }
    }

    fn blank(&mut self) {
        if self.p(0.3) {
            self.lines.push(" ".repeat(self.rng.gen_range(1..4)));
        } else {
            self.lines.push(String::new());
        }
    }

    /// Maybe a block of comment lines at columns drawn from `cols` (the first is
    /// the natural one), with blank lines before, inside and after.
    fn comments(&mut self, p: f64, cols: &[usize]) {
        if !self.p(p) {
            return;
        }
        if self.p(0.15) {
            self.blank();
        }
        let n = match self.rng.gen_range(0..10) {
            0..=3 => 1,
            4..=7 => 2,
            _ => 3,
        };
        for i in 0..n {
            if i > 0 && self.p(0.2) {
                self.blank();
            }
            let mut col = if self.p(0.6) {
                cols[0]
            } else {
                cols[self.rng.gen_range(0..cols.len())]
            };
            if let Some(bc) = self.block_col {
                if col >= bc {
                    col = 0;
                }
            }
            let text = self.comment_text();
            self.lines.push(format!("{}{text}", " ".repeat(col)));
        }
        if self.p(0.25) {
            self.blank();
        }
    }

    fn cols(&mut self, col: usize, open: &[usize]) -> Vec<usize> {
        let mut cols = vec![col];
        cols.extend(open.iter().copied());
        cols.push(col + self.step);
        cols.push(0);
        if self.p(0.2) {
            cols.push(col + 1);
        }
        cols
    }

    /// A block map at `col`; its first key goes after `first` (a `- ` of a list
    /// item) when given.
    fn map(&mut self, col: usize, depth: usize, open: &[usize], first: Option<String>) {
        let n = self.rng.gen_range(1..=if depth == 0 { 4 } else { 3 });
        let mut inner = open.to_vec();
        inner.push(col);
        let mut first = first;
        for i in 0..n {
            let prefix = match first.take() {
                Some(p) => p,
                None => {
                    let cols = self.cols(col, open);
                    self.comments(0.35, &cols);
                    if self.p(0.08) {
                        self.blank();
                    }
                    " ".repeat(col)
                }
            };
            self.block_col = None;
            let key = match self.rng.gen_range(0..20) {
                0 => format!("'k{i}'"),
                1 => format!("\"k{i}\""),
                _ => format!("k{i}"),
            };
            let kind = if depth >= 3 {
                self.rng.gen_range(0..4)
            } else {
                self.rng.gen_range(0..14)
            };
            match kind {
                0..=3 => {
                    let v = self.scalar();
                    let c = if self.p(0.3) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{prefix}{key}: {v}{c}"));
                }
                4 => {
                    let c = if self.p(0.4) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{prefix}{key}:{c}"));
                }
                5 => {
                    // (A folded block comes back re-folded: one line only.)
                    let header = ["|", "|-"][self.rng.gen_range(0..2)];
                    self.lines.push(format!("{prefix}{key}: {header}"));
                    let pad = " ".repeat(col + self.step);
                    let n = if header == ">" {
                        1
                    } else {
                        self.rng.gen_range(1..=2)
                    };
                    for _ in 0..n {
                        let v = self.scalar();
                        self.lines.push(format!("{pad}text {v}"));
                    }
                    let end = self.lines.len();
                    self.block_last = true;
                    self.blocks_end = end;
                    self.block_col = Some(col + self.step);
                    continue;
                }
                6 => {
                    // (Quoted scalars in flow collections come back plain.)
                    self.value += 2;
                    let v = if self.p(0.5) {
                        format!("[v{}, {}]", self.value - 1, self.value)
                    } else {
                        format!("{{a: v{}}}", self.value)
                    };
                    let c = if self.p(0.3) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{prefix}{key}: {v}{c}"));
                }
                7 if self.p(0.4) => {
                    // A multi-line flow collection with comments inside.
                    let (open, close) = if self.p(0.5) { ("[", "]") } else { ("{", "}") };
                    let c = if self.p(0.3) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{prefix}{key}: {open}{c}"));
                    let pad = " ".repeat(col + self.step);
                    let n = self.rng.gen_range(1..=3);
                    for j in 0..n {
                        if self.p(0.3) {
                            let t = self.comment_text();
                            self.lines.push(format!("{pad}{t}"));
                        }
                        self.value += 1;
                        let item = if open == "[" {
                            format!("v{}", self.value)
                        } else {
                            format!("f{j}: v{}", self.value)
                        };
                        let comma = if j + 1 < n { "," } else { "" };
                        let c = if self.p(0.3) {
                            self.inline()
                        } else {
                            String::new()
                        };
                        self.lines.push(format!("{pad}{item}{comma}{c}"));
                    }
                    if self.p(0.3) {
                        let t = self.comment_text();
                        self.lines.push(format!("{pad}{t}"));
                    }
                    let c = if self.p(0.3) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{pad}{close}{c}"));
                }
                7..=9 => {
                    let c = if self.p(0.25) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{prefix}{key}:{c}"));
                    self.map(col + self.step, depth + 1, &inner, None);
                }
                _ => {
                    let c = if self.p(0.25) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{prefix}{key}:{c}"));
                    let lcol = if self.indentless {
                        col
                    } else {
                        col + self.step
                    };
                    self.list(lcol, depth + 1, &inner);
                }
            }
        }
        let cols = self.cols(col, open);
        self.comments(0.3, &cols);
    }

    fn list(&mut self, col: usize, depth: usize, open: &[usize]) {
        let n = self.rng.gen_range(1..=3);
        let mut inner = open.to_vec();
        inner.push(col);
        let pad = " ".repeat(col);
        for _ in 0..n {
            let cols = self.cols(col, open);
            self.comments(0.3, &cols);
            self.block_col = None;
            let kind = if depth >= 3 {
                self.rng.gen_range(0..3)
            } else {
                self.rng.gen_range(0..9)
            };
            match kind {
                0..=2 => {
                    let v = self.scalar();
                    let c = if self.p(0.3) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{pad}- {v}{c}"));
                }
                3..=5 => self.map(col + 2, depth + 1, &inner, Some(format!("{pad}- "))),
                6 => {
                    let c = if self.p(0.5) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{pad}-{c}"));
                    self.map(col + 2, depth + 1, &inner, None);
                }
                7 => {
                    let (a, b) = (self.scalar(), self.scalar());
                    self.lines.push(format!("{pad}- - {a}"));
                    self.lines.push(format!("{pad}  - {b}"));
                }
                _ => {
                    let c = if self.p(0.5) {
                        self.inline()
                    } else {
                        String::new()
                    };
                    self.lines.push(format!("{pad}-{c}"));
                }
            }
        }
        let cols = self.cols(col, open);
        self.comments(0.3, &cols);
    }

    fn document(mut self) -> String {
        let docs = match self.rng.gen_range(0..10) {
            0..=6 => 1,
            7..=8 => 2,
            _ => 3,
        };
        self.comments(0.3, &[0, 2]);
        if self.p(0.15) {
            self.lines.push("---".into());
        }
        for d in 0..docs {
            if d > 0 {
                if self.p(0.2) {
                    self.lines.push("...".into());
                }
                let c = if self.p(0.1) {
                    self.inline()
                } else {
                    String::new()
                };
                self.lines.push(format!("---{c}"));
                self.block_col = None;
                self.comments(0.3, &[0, 2]);
            }
            self.map(0, 0, &[], None);
        }
        let crlf = self.p(0.08);
        // (A block scalar ending the file without a line break comes back with
        // a `-` chomping indicator: always end such a file with one.)
        let final_newline =
            self.p(0.85) || (self.block_last && self.blocks_end == self.lines.len());
        let mut text = self.lines.join("\n");
        if final_newline {
            text.push('\n');
        }
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        if self.rng.gen_bool(0.03) {
            text.insert(0, '\u{feff}');
        }
        text
    }
}

// ---------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------

struct Tools {
    sops: PathBuf,
    git_sops: PathBuf,
    key_file: PathBuf,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Tools {
    fn run(&self, program: &Path, args: &[&str], dir: &Path) -> Out {
        let out = Command::new(program)
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("SOPS_AGE_KEY_FILE", &self.key_file)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("HOME", dir)
            .env("LC_ALL", "C.UTF-8")
            .output();
        match out {
            Ok(o) => Out {
                ok: o.status.success(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => Out {
                ok: false,
                stdout: String::new(),
                stderr: format!("cannot run {}: {e}", program.display()),
            },
        }
    }

    fn sops_encrypt(&self, dir: &Path, plain: &str) -> Out {
        let _ = std::fs::write(dir.join("plain.yaml"), plain);
        self.run(
            &self.sops,
            &[
                "encrypt",
                "--input-type",
                "yaml",
                "--output-type",
                "yaml",
                "--age",
                RECIPIENT,
                "plain.yaml",
            ],
            dir,
        )
    }

    fn sops_decrypt(&self, dir: &Path, name: &str, enc: &str) -> Out {
        let _ = std::fs::write(dir.join(name), enc);
        self.run(
            &self.sops,
            &[
                "decrypt",
                "--input-type",
                "yaml",
                "--output-type",
                "yaml",
                name,
            ],
            dir,
        )
    }

    fn gs_encrypt(&self, dir: &Path, plain: &str) -> Out {
        let _ = std::fs::write(dir.join("plain.yaml"), plain);
        self.run(
            &self.git_sops,
            &["encrypt", "--age", RECIPIENT, "plain.yaml"],
            dir,
        )
    }

    fn gs_decrypt(&self, dir: &Path, name: &str, enc: &str) -> Out {
        let _ = std::fs::write(dir.join(name), enc);
        self.run(&self.git_sops, &["decrypt", name], dir)
    }

    fn data_key(&self, enc: &str) -> Result<DataKey, String> {
        let (_, meta) = decrypt::load(&yaml::YamlStore, enc).map_err(|e| e.to_string())?;
        let ids = Identities::from_text("test key", IDENTITY).map_err(|e| e.to_string())?;
        let keyring = Keyring::with_age(ids);
        keygroups::recover(&meta, &keyring).map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------

/// Every comment of a parsed document with the AAD git-sops binds it to, and the
/// path of every collection (the candidates for sops' AADs).
fn git_sops_paths(doc: &Document) -> (Vec<(String, String)>, BTreeSet<String>) {
    fn aad(path: &[String]) -> String {
        if path.is_empty() {
            ":".into()
        } else {
            path.iter().map(|k| format!("{k}:")).collect()
        }
    }
    enum Work<'a> {
        Map(&'a Map, Vec<String>),
        Node(&'a Node, Vec<String>),
    }
    let mut comments = Vec::new();
    let mut paths = BTreeSet::new();
    let mut stack: Vec<Work<'_>> = doc
        .docs
        .iter()
        .rev()
        .map(|m| Work::Map(m, Vec::new()))
        .collect();
    while let Some(w) = stack.pop() {
        match w {
            Work::Map(m, path) => {
                paths.insert(aad(&path));
                let mut later = Vec::new();
                for item in &m.items {
                    match item {
                        MapItem::Comment(c) => comments.push((c.text.to_string(), aad(&path))),
                        MapItem::Entry(e) => {
                            let mut p = path.clone();
                            p.push(e.key.clone());
                            later.push(Work::Node(&e.value, p));
                        }
                    }
                }
                stack.extend(later.into_iter().rev());
            }
            Work::Node(Node::Map(m), path) => stack.push(Work::Map(m, path)),
            Work::Node(Node::List(l), path) => {
                paths.insert(aad(&path));
                let mut later = Vec::new();
                for item in &l.items {
                    match item {
                        ListItem::Comment(c) => comments.push((c.text.to_string(), aad(&path))),
                        ListItem::Node(n) => later.push(Work::Node(n, path.clone())),
                    }
                }
                stack.extend(later.into_iter().rev());
            }
            Work::Node(Node::Leaf(_), _) => {}
        }
    }
    (comments, paths)
}

/// For every encrypted comment of a sops file: its plaintext and the AAD that
/// opens it (`None` when no candidate does).
fn sops_comment_paths(
    enc: &str,
    key: &DataKey,
    candidates: &BTreeSet<String>,
) -> Vec<(String, Option<String>)> {
    let re = regex::Regex::new(r"ENC\[AES256_GCM,[^\]]*type:comment\]").unwrap_or_else(|e| {
        eprintln!("bad regex: {e}");
        std::process::exit(2)
    });
    let mut out = Vec::new();
    for m in re.find_iter(enc) {
        let Ok(v) = EncValue::parse(m.as_str()) else {
            continue;
        };
        let mut found = None;
        for aad in candidates {
            if let Ok(p) = cipher::decrypt(key, &v, aad) {
                found = Some((String::from_utf8_lossy(&p).into_owned(), aad.clone()));
                break;
            }
        }
        match found {
            Some((text, aad)) => out.push((text, Some(aad))),
            None => out.push((m.as_str().to_string(), None)),
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// git-sops binds a comment to another path than sops.
    Path,
    /// sops encrypts a comment that git-sops does not see.
    Missing,
    /// git-sops' decryption of sops' file: fails, warns, or differs from sops'.
    A,
    /// sops' decryption of git-sops' file: fails, warns, or differs.
    B,
    /// git-sops does not give its own encryption back byte for byte.
    Roundtrip,
    /// git-sops cannot encrypt what sops encrypts.
    Encrypt,
}

/// Not mismatches, but worth counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Note {
    GitSopsRefuses,
    SopsRefuses,
    /// sops drops a comment while parsing (go-yaml overwrites or ignores it).
    SopsDrops,
    /// sops cannot decrypt a comment of its own file.
    SopsSelf,
    /// git-sops' decryption of sops' file spells a value differently.
    ValueRendering,
    /// sops' decryption of git-sops' file lacks a comment sops keeps when it
    /// encrypts the same text.
    SopsRendering,
}

struct Verdict {
    mismatches: Vec<(Kind, String)>,
    notes: Vec<(Note, String)>,
    /// Every comment sops keeps: text, sops' path, git-sops' paths.
    paths: Vec<(String, String, String)>,
}

fn check(tools: &Tools, dir: &Path, plain: &str, quick: bool) -> Verdict {
    let mut v = Verdict {
        mismatches: Vec::new(),
        notes: Vec::new(),
        paths: Vec::new(),
    };
    let doc = match yaml::parse(plain) {
        Ok(d) => d,
        Err(e) => {
            v.notes.push((Note::GitSopsRefuses, e.to_string()));
            return v;
        }
    };
    let s = tools.sops_encrypt(dir, plain);
    if !s.ok {
        v.notes
            .push((Note::SopsRefuses, s.stderr.trim().to_string()));
        return v;
    }
    let sops_enc = s.stdout;
    let (ours, candidates) = git_sops_paths(&doc);
    // sops reads git-sops' file with the metadata entry after each document, so
    // that is the layout whose binding git-sops must reproduce: the plaintext
    // with an ordinary key where git-sops puts `sops:`.
    let with_entry = match with_metadata_key(plain, &doc) {
        Ok(t) => t,
        Err(e) => {
            v.mismatches.push((Kind::Encrypt, e));
            return v;
        }
    };
    let m = tools.sops_encrypt(dir, &with_entry);
    if !m.ok {
        v.mismatches.push((
            Kind::Encrypt,
            format!(
                "sops refuses the text with a metadata key: {}",
                m.stderr.trim()
            ),
        ));
        return v;
    }
    let key = match tools.data_key(&m.stdout) {
        Ok(k) => k,
        Err(e) => {
            v.mismatches
                .push((Kind::A, format!("git-sops cannot read sops' file: {e}")));
            return v;
        }
    };
    let mut candidates = candidates;
    candidates.insert(format!("{METADATA_STAND_IN}:"));
    let theirs = sops_comment_paths(&m.stdout, &key, &candidates);
    let mut ours_by_text: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (text, aad) in &ours {
        ours_by_text
            .entry(text.clone())
            .or_default()
            .push(aad.clone());
    }
    let mut seen = BTreeSet::new();
    for (text, aad) in &theirs {
        let Some(aad) = aad else {
            v.mismatches.push((
                Kind::Path,
                format!("sops' comment {text} opens with no path of the document"),
            ));
            continue;
        };
        seen.insert(text.clone());
        v.paths.push((
            text.clone(),
            aad.clone(),
            ours_by_text
                .get(text)
                .map(|l| l.join(" "))
                .unwrap_or_default(),
        ));
        match ours_by_text.get(text) {
            None => {
                // sops writes an empty line of a comment block as its own
                // (empty, so unencrypted) comment; everything else must be ours.
                v.mismatches.push((
                    Kind::Missing,
                    format!("sops has comment #{text} (at {aad}), git-sops does not"),
                ))
            }
            Some(list) if !list.contains(aad) => v.mismatches.push((
                Kind::Path,
                format!(
                    "#{text}: sops binds it to {aad}, git-sops to {}",
                    list.join(" ")
                ),
            )),
            Some(_) => {}
        }
    }
    for (text, aad) in &ours {
        if !text.is_empty() && !seen.contains(text) {
            v.notes.push((
                Note::SopsDrops,
                format!("#{text} (git-sops binds it to {aad})"),
            ));
        }
    }
    if quick {
        return v;
    }

    // (a) git-sops decrypts sops' file like sops.
    let reference = tools.sops_decrypt(dir, "sops.enc.yaml", &sops_enc);
    if !reference.ok {
        v.notes.push((
            Note::SopsSelf,
            format!(
                "sops cannot decrypt its own file: {}",
                reference.stderr.trim()
            ),
        ));
        return v;
    }
    let sops_warns = reference.stderr.contains("unencrypted comment");
    if sops_warns {
        // sops cannot open a comment of its own file (it re-reads its output with
        // another binding than it encrypted with); its decryption shows the
        // ciphertext where git-sops may show the text, so no text comparison.
        v.notes.push((
            Note::SopsSelf,
            "sops warns about a comment of its own file".into(),
        ));
    }
    if !sops_warns {
        // sops reads back every comment of its file with the path it encrypted it
        // with: git-sops must bind each one there too (this checks the binding of
        // sops' own layout, which git-sops' lenient decryption would hide).
        match (
            yaml::parse(&sops_enc).map_err(|e| e.to_string()),
            tools.data_key(&sops_enc),
        ) {
            (Ok(sdoc), Ok(skey)) => {
                let (bound, paths) = git_sops_paths(&sdoc);
                for (enc, aad) in bound {
                    let Ok(value) = EncValue::parse(&enc) else {
                        continue;
                    };
                    let opens = |p: &String| cipher::decrypt(&skey, &value, p).is_ok();
                    if !opens(&aad) {
                        let real = paths.iter().find(|p| opens(p)).cloned();
                        v.mismatches.push((
                            Kind::A,
                            format!(
                                "in sops' file, git-sops binds {enc} to {aad}, sops to {}",
                                real.unwrap_or_else(|| "(no path)".into())
                            ),
                        ));
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => v
                .mismatches
                .push((Kind::A, format!("git-sops cannot read sops' file: {e}"))),
        }
    }
    let a = tools.gs_decrypt(dir, "sops.enc.yaml", &sops_enc);
    if !a.ok {
        v.mismatches.push((
            Kind::A,
            format!("git-sops cannot decrypt sops' file: {}", a.stderr.trim()),
        ));
    } else if !sops_warns {
        if !a.stderr.trim().is_empty() {
            v.mismatches.push((
                Kind::A,
                format!("git-sops warns on sops' file: {}", a.stderr.trim()),
            ));
        }
        // Where every comment lands (line and text). Values may be spelled
        // differently (git-sops keeps sops' layout, sops re-renders).
        if comment_lines(&a.stdout) != comment_lines(&reference.stdout) {
            v.mismatches.push((
                Kind::A,
                format!(
                    "git-sops' decryption of sops' file has other comments than sops':\n{}",
                    diff(&reference.stdout, &a.stdout)
                ),
            ));
        } else if a.stdout != reference.stdout {
            v.notes.push((
                Note::ValueRendering,
                format!(
                    "git-sops' decryption of sops' file differs from sops' in values:\n{}",
                    diff(&reference.stdout, &a.stdout)
                ),
            ));
        }
    }

    // (b) sops decrypts every comment of git-sops' file.
    let g = tools.gs_encrypt(dir, plain);
    if !g.ok {
        v.mismatches.push((
            Kind::Encrypt,
            format!("git-sops cannot encrypt it: {}", g.stderr.trim()),
        ));
        return v;
    }
    let b = tools.sops_decrypt(dir, "ours.enc.yaml", &g.stdout);
    if !b.ok {
        v.mismatches.push((
            Kind::B,
            format!("sops cannot decrypt git-sops' file: {}", b.stderr.trim()),
        ));
    } else {
        if b.stderr.contains("unencrypted comment") || b.stdout.contains("ENC[") {
            v.mismatches.push((
                Kind::B,
                format!(
                    "sops cannot open a comment of git-sops' file: {}",
                    b.stderr.trim()
                ),
            ));
        }
        // Every comment sops keeps, once.
        let mut want: Vec<String> = theirs.iter().map(|(t, _)| format!("#{t}")).collect();
        let mut got: Vec<String> = b
            .stdout
            .lines()
            .map(|l| l.trim())
            .filter(|l| l.starts_with('#'))
            .map(|l| l.to_string())
            .collect();
        want.sort();
        got.sort();
        if want != got {
            // (go-yaml's emitter also drops some comments of sops' tree.)
            v.notes.push((
                Note::SopsRendering,
                format!(
                    "sops' decryption of git-sops' file has comments {got:?}, sops keeps {want:?}"
                ),
            ));
        }
    }
    let r = tools.gs_decrypt(dir, "ours.enc.yaml", &g.stdout);
    if !r.ok || r.stdout != plain {
        v.mismatches.push((
            Kind::Roundtrip,
            format!(
                "git-sops' round trip differs ({}):\n{}",
                r.stderr.trim(),
                diff(plain, &r.stdout)
            ),
        ));
    }
    v
}

/// Every comment line (trimmed) with its indentation, in order.
fn comment_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .map(|l| (l.len() - l.trim_start().len(), l.trim()))
        .filter(|(_, l)| l.starts_with('#'))
        .collect()
}

/// The key standing in for `sops` (sops would take a `sops` key for metadata).
const METADATA_STAND_IN: &str = "zsops";

/// `plain` with a `zsops: x` entry where git-sops appends its `sops:` entry.
fn with_metadata_key(plain: &str, doc: &Document) -> Result<String, String> {
    let store = yaml::YamlStore;
    let edits = store
        .insert_metadata(plain, doc, &Value::Str("x".into()))
        .into_iter()
        .map(|mut e| {
            e.text = e
                .text
                .replacen("sops:", &format!("{METADATA_STAND_IN}:"), 1);
            e
        })
        .collect();
    apply_edits(plain, edits)
        .map(|t| t.to_string())
        .map_err(|e| format!("cannot insert the metadata key: {e}"))
}

fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.split_inclusive('\n').collect();
    let a: Vec<&str> = actual.split_inclusive('\n').collect();
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let mut out = String::new();
    let from = first.saturating_sub(2);
    let _ = writeln!(out, "  first difference at line {}", first + 1);
    for (i, l) in e.iter().enumerate().skip(from).take(6) {
        let _ = writeln!(out, "  - {:>3} {l:?}", i + 1);
    }
    for (i, l) in a.iter().enumerate().skip(from).take(6) {
        let _ = writeln!(out, "  + {:>3} {l:?}", i + 1);
    }
    out
}

/// Drop lines while the document still shows a mismatch of `kind`.
fn minimize(tools: &Tools, dir: &Path, plain: &str, kind: Kind, quick: bool) -> String {
    let crlf = plain.contains("\r\n");
    let nl = if crlf { "\r\n" } else { "\n" };
    let final_nl = plain.ends_with('\n');
    let mut lines: Vec<String> = plain.lines().map(|l| l.to_string()).collect();
    let join = |lines: &[String]| {
        let mut t = lines.join(nl);
        if final_nl {
            t.push_str(nl);
        }
        t
    };
    let quick = quick || kind == Kind::Path || kind == Kind::Missing;
    let still = |text: &str| {
        check(tools, dir, text, quick)
            .mismatches
            .iter()
            .any(|(k, _)| *k == kind)
    };
    let mut changed = true;
    let mut budget = 400;
    while changed && budget > 0 {
        changed = false;
        let mut i = lines.len();
        while i > 0 && budget > 0 {
            i -= 1;
            let mut shorter = lines.clone();
            shorter.remove(i);
            budget -= 1;
            if !shorter.is_empty() && still(&join(&shorter)) {
                lines = shorter;
                changed = true;
            }
        }
    }
    join(&lines)
}

// ---------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------

struct Args {
    seed: u64,
    count: usize,
    jobs: usize,
    out: PathBuf,
    minimize: usize,
    quick: bool,
    files: Vec<PathBuf>,
    show: bool,
    git_sops: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: yaml_comment_diff [--seed N] [--count N] [--jobs N] [--out DIR] \
         [--minimize N] [--quick] [--show] [--git-sops PATH] [--file PATH...]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        seed: 1,
        count: 200,
        jobs: 1,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/yaml-comment-diff"),
        minimize: 10,
        quick: false,
        files: Vec::new(),
        show: false,
        git_sops: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let num = |it: &mut dyn Iterator<Item = String>| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--seed" => a.seed = num(&mut it),
            "--count" => a.count = num(&mut it) as usize,
            "--jobs" => a.jobs = (num(&mut it) as usize).max(1),
            "--minimize" => a.minimize = num(&mut it) as usize,
            "--out" => a.out = PathBuf::from(it.next().unwrap_or_else(|| usage())),
            "--quick" => a.quick = true,
            "--show" => a.show = true,
            "--git-sops" => a.git_sops = Some(PathBuf::from(it.next().unwrap_or_else(|| usage()))),
            "--file" => {
                a.files.extend(it.by_ref().map(PathBuf::from));
            }
            _ => usage(),
        }
    }
    a
}

fn tools(dir: &Path, git_sops: Option<PathBuf>) -> Tools {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sops = root.join("target/tools/bin/sops");
    let git_sops = git_sops.unwrap_or_else(|| root.join("target/debug/git-sops"));
    for p in [&sops, &git_sops] {
        if !p.exists() {
            eprintln!(
                "{} is missing: run scripts/yaml-comment-diff (it builds git-sops and \
                 provisions sops)",
                p.display()
            );
            std::process::exit(2);
        }
    }
    let key_file = dir.join("keys.txt");
    if let Err(e) = std::fs::write(&key_file, format!("{IDENTITY}\n")) {
        eprintln!("cannot write {}: {e}", key_file.display());
        std::process::exit(2);
    }
    Tools {
        sops,
        git_sops,
        key_file,
    }
}

fn main() {
    let args = args();
    let tmp = tempfile::Builder::new()
        .prefix("yaml-comment-diff-")
        .tempdir()
        .unwrap_or_else(|e| {
            eprintln!("cannot create a temp dir: {e}");
            std::process::exit(2)
        });
    let tools = tools(tmp.path(), args.git_sops.clone());

    let inputs: Vec<(String, String)> = if args.files.is_empty() {
        (0..args.count)
            .map(|i| {
                let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                (format!("seed{}-{i}", args.seed), Gen::new(seed).document())
            })
            .collect()
    } else {
        args.files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_else(|e| {
                    eprintln!("cannot read {}: {e}", p.display());
                    std::process::exit(2)
                });
                (p.display().to_string(), text)
            })
            .collect()
    };

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Verdict)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for j in 0..args.jobs {
            let (tools, inputs, next, results, quick) =
                (&tools, &inputs, &next, &results, args.quick);
            let dir = tmp.path().join(format!("job{j}"));
            let _ = std::fs::create_dir_all(&dir);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= inputs.len() {
                    break;
                }
                let v = check(tools, &dir, &inputs[i].1, quick);
                if let Ok(mut r) = results.lock() {
                    r.push((i, v));
                    if r.len() % 100 == 0 {
                        eprintln!("{} / {} documents", r.len(), inputs.len());
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);

    let mut by_kind: BTreeMap<Kind, Vec<usize>> = BTreeMap::new();
    let mut notes: BTreeMap<Note, usize> = BTreeMap::new();
    let mut comments = 0;
    let mut failing = 0;
    for (i, v) in &results {
        comments += inputs[*i].1.matches('#').count();
        let kinds: BTreeSet<Kind> = v.mismatches.iter().map(|(k, _)| *k).collect();
        if !kinds.is_empty() {
            failing += 1;
        }
        for k in kinds {
            by_kind.entry(k).or_default().push(*i);
        }
        let ns: BTreeSet<Note> = v.notes.iter().map(|(n, _)| *n).collect();
        for n in ns {
            *notes.entry(n).or_default() += 1;
        }
        if args.show || !args.files.is_empty() {
            println!("== {}", inputs[*i].0);
            for (k, m) in &v.mismatches {
                println!("  {k:?}: {m}");
            }
            for (n, m) in &v.notes {
                println!("  note {n:?}: {m}");
            }
            if !args.files.is_empty() {
                for (text, theirs, ours) in &v.paths {
                    println!("  #{text}: sops {theirs}, git-sops {ours}");
                }
            }
        }
    }

    let _ = std::fs::create_dir_all(&args.out);
    let dir = tmp.path().join("min");
    let _ = std::fs::create_dir_all(&dir);
    let mut minimized = 0;
    for (kind, docs) in &by_kind {
        for &i in docs.iter().take(args.minimize) {
            let (name, text) = &inputs[i];
            let small = if args.files.is_empty() {
                minimize(&tools, &dir, text, *kind, args.quick)
            } else {
                text.clone()
            };
            minimized += 1;
            let file = args.out.join(format!(
                "{}-{}.yaml",
                format!("{kind:?}").to_lowercase(),
                name.replace('/', "_")
            ));
            let _ = std::fs::write(&file, &small);
            let v = check(&tools, &dir, &small, args.quick);
            println!("--- {kind:?} {name} -> {}", file.display());
            println!("{}", small.replace('\r', "\\r"));
            for (k, m) in v.mismatches.iter().filter(|(k, _)| k == kind) {
                println!("  {k:?}: {m}");
            }
        }
    }

    println!(
        "{} documents ({} comment marks), {} with mismatches; minimized {}",
        results.len(),
        comments,
        failing,
        minimized
    );
    for (k, docs) in &by_kind {
        println!("  {k:?}: {} documents", docs.len());
    }
    for (n, count) in &notes {
        println!("  note {n:?}: {count} documents");
    }
    if failing > 0 {
        std::process::exit(1);
    }
}
