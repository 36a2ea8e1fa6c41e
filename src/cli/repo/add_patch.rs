//! `git sops add -p [PATH...]`: `git add -p` for protected files, on their
//! plaintext (docs/architecture.md §4.10, README "Partial staging").
//!
//! Each protected path with unstaged changes is shown as git shows it, one
//! plaintext hunk at a time, with git's prompt and keys (y, n, q, a, d, s, e,
//! p, ?); what is chosen is applied to the staged plaintext in memory and
//! staged encrypted with the staged blob as template
//! ([`crate::drivers::partial`]). A new (intent-to-add) file, a deletion and a
//! plaintext that is not text are staged whole or not at all. The other paths
//! are handed to `git add -p` afterwards, with the rest of standard input.
//!
//! Answers are read from standard input one byte at a time, never buffered
//! ahead: what is left belongs to the editor and to that `git add -p`. `e`
//! writes the hunk (plaintext) to a 0600 file in a private 0700 directory
//! (as `edit` does), removed before the next prompt, also when a signal
//! arrives while the editor runs.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;

use zeroize::Zeroizing;

use crate::cli::child::{private_dir, write_private, Signals};
use crate::cli::report::{self, code, Failure};
use crate::drivers::filter::is_configuration;
use crate::drivers::partial::hunks::{render_all, Choice, Diff, Hunk};
use crate::drivers::partial::{Partial, Pending, Whole};
use crate::drivers::Notice;
use crate::git::Git;

/// What the user said about the rest of the run.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

pub(super) fn run(paths: &[PathBuf]) -> Result<(), Failure> {
    let here = Git::new(".");
    let top = here
        .toplevel()
        .map_err(|e| Failure::usage(format!("add -p works inside a git working tree: {e}")))?;
    let repo = Git::new(&top);
    // Tracked paths whose working-tree copy may differ from the index (a file
    // only touched is filtered out below, where the plaintexts are compared).
    let mut args: Vec<std::ffi::OsString> = ["diff-files", "--name-only", "-z", "--"]
        .map(Into::into)
        .to_vec();
    args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    let listed = here.run(&args).map_err(|e| Failure::io(e.to_string()))?;
    let mut names: Vec<String> = listed
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    names.dedup(); // a conflicted path is listed once per stage
    let filters = repo
        .check_attr("filter", &names)
        .map_err(|e| Failure::io(format!("cannot read the gitattributes: {e}")))?;
    let (protected, others): (Vec<_>, Vec<_>) = names
        .into_iter()
        .zip(filters)
        .partition(|(n, f)| f == "sops" && !is_configuration(n));

    let mut partial = Partial::new(top.clone());
    let mut input = Answers::stdin()?;
    let mut failed = false;
    let mut shown = false;
    let mut flow = Flow::Continue;
    for (path, _) in &protected {
        let pending = match partial.prepare(path) {
            Ok(p) => p,
            Err(e) => {
                report::notice(&Notice::from(&e));
                failed = true;
                continue;
            }
        };
        let result = match pending {
            Pending::Unchanged => continue,
            Pending::Hunks { staged, worktree } => {
                shown = true;
                by_hunks(&repo, &mut partial, &mut input, path, &staged, &worktree)
            }
            other => {
                shown = true;
                whole(&mut partial, &mut input, path, other)
            }
        };
        partial.take_notices().iter().for_each(report::notice);
        match result {
            Ok(f) => flow = f,
            Err(e) => {
                report::notice(&Notice::from(&e));
                failed = true;
            }
        }
        if flow == Flow::Quit {
            break;
        }
    }
    let others: Vec<String> = others.into_iter().map(|(n, _)| n).collect();
    if flow == Flow::Continue && !others.is_empty() {
        eprintln!(
            "git-sops: {} unprotected file(s) with changes: running `git add -p` for them",
            others.len()
        );
        let status = repo
            .command(
                ["add", "-p", "--"]
                    .into_iter()
                    .map(String::from)
                    .chain(others),
            )
            .status()
            .map_err(|e| Failure::io(format!("cannot run git add -p: {e}")))?;
        if !status.success() {
            return Err(Failure::silent(status.code().unwrap_or(code::GENERIC)));
        }
    } else if !shown && !failed {
        eprintln!("No changes.");
    }
    if failed {
        return Err(Failure::silent(code::GENERIC));
    }
    Ok(())
}

/// git's help lines, by key.
const HELP: &[(char, &str)] = &[
    ('y', "stage this hunk"),
    ('n', "do not stage this hunk"),
    (
        'q',
        "quit; do not stage this hunk or any of the remaining ones",
    ),
    ('a', "stage this hunk and all later hunks in the file"),
    (
        'd',
        "do not stage this hunk or any of the later hunks in the file",
    ),
    ('s', "split the current hunk into smaller hunks"),
    ('e', "manually edit the current hunk"),
    ('p', "print the current hunk"),
    ('?', "print help"),
];

fn help(keys: &str) -> String {
    HELP.iter()
        .filter(|(k, _)| keys.contains(*k))
        .map(|(k, h)| format!("{k} - {h}\n"))
        .collect()
}

fn out(bytes: &[u8]) -> Result<(), Failure> {
    let mut o = std::io::stdout().lock();
    o.write_all(bytes)
        .and_then(|_| o.flush())
        .map_err(|e| Failure::io(format!("cannot write to standard output: {e}")))
}

fn header(path: &str, extra: &str) -> String {
    format!("diff --git a/{path} b/{path}\n{extra}--- a/{path}\n+++ b/{path}\n")
}

/// Ask until the answer is one of `keys` (lower case); `None` at the end of input.
fn ask(
    input: &mut Answers,
    prompt: &str,
    keys: &str,
    show: &dyn Fn() -> Result<(), Failure>,
) -> Result<Option<char>, Failure> {
    loop {
        out(format!(
            "{prompt} [{}]? ",
            keys.chars().map(String::from).collect::<Vec<_>>().join(",")
        )
        .as_bytes())?;
        let Some(answer) = input.line()? else {
            out(b"\n")?;
            return Ok(None);
        };
        let Some(c) = answer.chars().next().map(|c| c.to_ascii_lowercase()) else {
            continue;
        };
        match c {
            '?' => out(help(keys).as_bytes())?,
            'p' if keys.contains('p') => show()?,
            c if keys.contains(c) => return Ok(Some(c)),
            _ => out(format!("Unknown command '{answer}' (use '?' for help)\n").as_bytes())?,
        }
    }
}

/// A file staged whole or not at all.
fn whole(
    partial: &mut Partial,
    input: &mut Answers,
    path: &str,
    pending: Pending,
) -> Result<Flow, crate::drivers::DriverError> {
    let fail = |e: Failure| crate::drivers::DriverError::new(path, e.message);
    let (text, what, worktree) = match pending {
        Pending::Whole { worktree, why } => {
            let text = match why {
                Whole::New => {
                    let mut t = Zeroizing::new(header(path, "new file mode 100644\n").into_bytes());
                    t.extend_from_slice(&render_all(b'+', &worktree));
                    t
                }
                Whole::NotText => Zeroizing::new(format!("{}(its plaintext is not text: it is staged whole or not at all)\n", header(path, "")).into_bytes()),
                Whole::SopsOnDisk => Zeroizing::new(format!("{}(the working-tree copy is a SOPS file: it is staged as it is, whole or not at all)\n", header(path, "")).into_bytes()),
            };
            let what = if why == Whole::New {
                "Stage addition"
            } else {
                "Stage this file"
            };
            (text, what, Some(worktree))
        }
        Pending::Deleted => (
            Zeroizing::new(header(path, "deleted file mode 100644\n").into_bytes()),
            "Stage deletion",
            None,
        ),
        _ => return Ok(Flow::Continue),
    };
    out(&text).map_err(fail)?;
    let show = || out(&text);
    let answer = ask(input, &format!("(1/1) {what}"), "ynqadp?", &show).map_err(fail)?;
    match (answer, worktree) {
        (Some('y' | 'a'), Some(w)) => partial.stage(path, &w)?,
        (Some('y' | 'a'), None) => partial.stage_deletion(path)?,
        (Some('q') | None, _) => return Ok(Flow::Quit),
        _ => {}
    }
    Ok(Flow::Continue)
}

/// A file shown and staged hunk by hunk.
fn by_hunks(
    repo: &Git,
    partial: &mut Partial,
    input: &mut Answers,
    path: &str,
    staged: &[u8],
    worktree: &[u8],
) -> Result<Flow, crate::drivers::DriverError> {
    let fail = |e: Failure| crate::drivers::DriverError::new(path, e.message);
    let diff = Diff::new(staged, worktree);
    let mut hunks = diff.hunks();
    out(header(path, "").as_bytes()).map_err(fail)?;
    let mut flow = Flow::Continue;
    let mut i = 0;
    'hunks: while i < hunks.len() {
        if hunks[i].choice != Choice::Undecided {
            i += 1;
            continue;
        }
        let text = diff.render(&hunks[i]);
        out(&text).map_err(fail)?;
        let keys = if diff.splittable(&hunks[i]) {
            "ynqadsep?"
        } else {
            "ynqadep?"
        };
        let prompt = format!("({}/{}) Stage this hunk", i + 1, hunks.len());
        let show = || out(&text);
        let answer = ask(input, &prompt, keys, &show).map_err(fail)?;
        match answer {
            Some('y') => hunks[i].choice = Choice::Stage,
            Some('n') => hunks[i].choice = Choice::Skip,
            Some(c @ ('a' | 'd')) => {
                let choice = if c == 'a' {
                    Choice::Stage
                } else {
                    Choice::Skip
                };
                for h in hunks[i..]
                    .iter_mut()
                    .filter(|h| h.choice == Choice::Undecided)
                {
                    h.choice = choice.clone();
                }
            }
            Some('s') => {
                let parts = diff.split(&hunks[i]);
                out(format!("Split into {} hunks.\n", parts.len()).as_bytes()).map_err(fail)?;
                hunks.splice(i..=i, parts);
                continue 'hunks;
            }
            Some('e') => {
                edit(repo, input, &diff, &mut hunks[i]).map_err(fail)?;
                continue 'hunks;
            }
            // 'q', or the end of the answers: what was chosen so far is staged.
            _ => {
                flow = Flow::Quit;
                break 'hunks;
            }
        }
        i += 1;
    }
    match diff.result(&hunks) {
        Ok(Some(text)) => partial.stage(path, &text)?,
        Ok(None) => {}
        Err(why) => {
            return Err(crate::drivers::DriverError::new(
                path,
                format!("{why}; nothing was staged"),
            ))
        }
    }
    Ok(flow)
}

const EDIT_GUIDE: &str = "# ---
# To remove '-' lines, make them ' ' lines (context).
# To remove '+' lines, delete them.
# Lines starting with # will be removed.
# If the patch applies cleanly, the edited hunk will immediately be marked for staging.
# If it does not apply cleanly, you will be given an opportunity to
# edit again.  If all lines of the hunk are removed, then the edit is
# aborted and the hunk is left unchanged.
";

/// `e`: the hunk in the editor until it applies, is emptied, or the user gives up.
fn edit(repo: &Git, input: &mut Answers, diff: &Diff, hunk: &mut Hunk) -> Result<(), Failure> {
    let editor = repo
        .run(&["var", "GIT_EDITOR"])
        .map(|e| String::from_utf8_lossy(&e).trim().to_string())
        .map_err(|e| Failure::io(format!("no editor for `e`: {e}")))?;
    let mut text =
        Zeroizing::new(b"# Manual hunk edit mode -- see bottom for a quick guide.\n".to_vec());
    text.extend_from_slice(&diff.render(hunk));
    text.extend_from_slice(EDIT_GUIDE.as_bytes());
    loop {
        let edited = in_editor(&editor, &text)?;
        match diff.apply_edit(hunk, &edited) {
            Ok(_) => return Ok(()),
            Err(why) => {
                out(format!("Your edited hunk does not apply ({why}).\n").as_bytes())?;
                let again = ask(input, "Edit again (saying \"no\" discards!)", "yn", &|| {
                    Ok(())
                })?;
                if again != Some('y') {
                    return Ok(());
                }
                text = edited;
            }
        }
    }
}

/// Run the editor on `text` in a private file; the edited text. The file and
/// its directory are gone when this returns, whatever happened.
fn in_editor(editor: &str, text: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
    // The hunk's plaintext: never in the repository's folders (cwd is in it).
    let dir = private_dir(std::path::Path::new("."))?;
    let file = dir.path().join("ADD_EDIT.patch");
    let signals = Signals::catch();
    write_private(&file, text)?;
    // As git runs its editor: the command line through the shell, the file as "$@".
    let status = signals
        .run(
            Command::new("sh")
                .arg("-c")
                .arg(format!("{editor} \"$@\""))
                .arg(editor)
                .arg(&file),
        )
        .map_err(|e| Failure::io(format!("cannot run the editor {editor}: {e}")));
    let edited = std::fs::read(&file).map(Zeroizing::new);
    drop(dir);
    if let Some(sig) = signals.seen() {
        return Err(Failure::new(
            format!(
                "stopped by signal {sig}; the hunk file was removed and nothing more was staged"
            ),
            code::GENERIC,
        ));
    }
    if !status?.success() {
        return Err(Failure::io(format!("the editor {editor} failed")));
    }
    edited.map_err(|e| Failure::io(format!("cannot read the edited hunk back: {e}")))
}

/// Standard input read one byte at a time (unbuffered), so what is not read
/// stays for the editor and `git add -p`.
struct Answers {
    file: std::fs::File,
}

impl Answers {
    fn stdin() -> Result<Answers, Failure> {
        let fd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Failure::io(format!("cannot read standard input: {e}")))?;
        Ok(Answers {
            file: std::fs::File::from(fd),
        })
    }

    /// The next line, trimmed; `None` at the end of input.
    fn line(&mut self) -> Result<Option<String>, Failure> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.file.read(&mut byte) {
                Ok(0) if line.is_empty() => return Ok(None),
                Ok(0) => break,
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::io(format!("cannot read standard input: {e}"))),
            }
        }
        Ok(Some(String::from_utf8_lossy(&line).trim().to_string()))
    }
}
