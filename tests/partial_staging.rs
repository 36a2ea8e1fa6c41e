//! `git sops add -p` with real git and sops 3.11 (README "Partial staging",
//! docs/architecture.md §4.10): protected files are shown as plaintext hunks;
//! answering `y` then `n` stages exactly the first change, encrypted with the
//! staged blob as template (every untouched value keeps its ciphertext, the
//! MAC verifies for sops, the guard accepts the commit), the second change
//! stays in the working tree, and no plaintext reaches the object store. Also
//! q, a, d, s, e, ?, an intent-to-add file, an unprotected file handed to
//! `git add -p`, no changes, and a file no key opens.

mod common;

use common::{Output, Repo};

/// Ten values; `first`/`second` change lines 2 and 10 (seven equal lines
/// apart: two hunks), `near` changes line 4 (one hunk with line 2).
struct Case {
    name: &'static str,
    before: String,
    both: String,
    first: String,
    near: String,
}

fn case(name: &'static str, line: fn(usize, &str) -> String, open: &str, close: &str) -> Case {
    let text = |changed: &[(usize, &str)]| {
        let mut t = open.to_string();
        for i in 0..10 {
            let value = changed
                .iter()
                .find(|(n, _)| *n == i)
                .map_or(format!("value-{i}-orig"), |(_, v)| v.to_string());
            t.push_str(&line(i, &value));
        }
        t.push_str(close);
        t
    };
    Case {
        name,
        before: text(&[]),
        both: text(&[(1, "first-new-val"), (9, "second-new-val")]),
        first: text(&[(1, "first-new-val")]),
        near: text(&[(1, "first-new-val"), (3, "near-new-val")]),
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("secrets/app.yaml", |i, v| format!("k{i}: {v}\n"), "", ""),
        case(
            "secrets/app.json",
            |i, v| format!("  \"k{i}\": \"{v}\"{}\n", if i < 9 { "," } else { "" }),
            "{\n",
            "}\n",
        ),
        case("secrets/app.env", |i, v| format!("K{i}={v}\n"), "", ""),
    ]
}

fn committed(c: &Case) -> Repo {
    let repo = Repo::new();
    repo.write(c.name, &c.before);
    repo.write("notes.txt", "one\n");
    repo.commit_all("start");
    repo
}

fn add_p(repo: &Repo, paths: &[&str], answers: &str) -> Output {
    repo.env
        .git_sops()
        .current_dir(&repo.dir)
        .args(["add", "-p"])
        .args(paths)
        .stdin(answers)
        .run()
}

/// The staged blob decrypted by sops 3.11 (which checks the MAC).
fn staged_plaintext(repo: &Repo, path: &str) -> String {
    let blob = repo.blob(&format!(":{path}"));
    let ext = path.rsplit('.').next().unwrap_or("");
    let file = repo.env.write(format!("staged.{ext}"), &blob);
    let ty = if ext == "env" { "dotenv" } else { ext };
    repo.env
        .sops()
        .args(["decrypt", "--input-type", ty, "--output-type", ty])
        .arg(&file)
        .run()
        .ok()
        .stdout_str()
}

fn enc_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains("ENC[") && !l.contains("mac"))
        .map(str::to_string)
        .collect()
}

fn assert_no_plaintext_objects(repo: &Repo, needles: &[&str]) {
    let all = repo
        .git(&["cat-file", "--batch-all-objects", "--batch"])
        .ok()
        .stdout;
    let all = String::from_utf8_lossy(&all);
    for n in needles {
        assert!(!all.contains(n), "{n:?} is in git's objects");
    }
}

#[test]
fn yes_then_no_stages_exactly_the_first_change() {
    for c in cases() {
        let repo = committed(&c);
        let head = repo.blob_text(&format!("HEAD:{}", c.name));
        repo.write(c.name, &c.both);
        repo.write("notes.txt", "one\ntwo\n");
        // y, n for the protected file; y for notes.txt in the `git add -p` that follows.
        let out = add_p(&repo, &[], "y\nn\ny\n").ok();
        let shown = out.stdout_str();
        assert!(
            shown.contains("+k1: first-new-val") || shown.contains("first-new-val"),
            "{shown}"
        );
        assert!(
            shown.contains("(1/2) Stage this hunk [y,n,q,a,d,e,p,?]? "),
            "{shown}"
        );
        assert!(!shown.contains("ENC["), "ciphertext shown:\n{shown}");
        assert!(
            out.stderr.contains("running `git add -p`"),
            "{}",
            out.stderr
        );

        let staged = staged_plaintext(&repo, c.name);
        assert!(staged.contains("first-new-val"), "{}: {staged}", c.name);
        assert!(!staged.contains("second-new-val"), "{}: {staged}", c.name);
        assert!(staged.contains("value-9-orig"), "{}: {staged}", c.name);
        // The working tree keeps both changes; `git diff` shows the second only.
        assert_eq!(repo.text(c.name), c.both);
        let diff = repo.git(&["diff", "--", c.name]).ok().stdout_str();
        assert!(
            diff.contains("second-new-val")
                && !diff.contains("+k1: first")
                && !diff.contains("first-new-val\""),
            "{diff}"
        );
        // Every untouched value keeps its ciphertext: only the first value's line is new.
        let index = repo.blob_text(&format!(":{}", c.name));
        let (old, new) = (enc_lines(&head), enc_lines(&index));
        let changed: Vec<&String> = new.iter().filter(|l| !old.contains(l)).collect();
        assert_eq!(
            changed.len(),
            1,
            "{}: changed ENC lines {changed:?}",
            c.name
        );
        assert!(changed[0].contains("1"), "{changed:?}");
        // notes.txt went through git's own add -p.
        assert_eq!(repo.blob_text(":notes.txt"), "one\ntwo\n");
        // The guard (pre-commit hook) accepts the commit.
        repo.git(&["commit", "-q", "-m", "first only"]).ok();
        assert_no_plaintext_objects(&repo, &["first-new-val", "second-new-val", "value-5-orig"]);
        repo.env.assert_no_private_dirs();
    }
}

#[test]
fn q_a_d_s_and_help() {
    let c = &cases()[0];
    let repo = committed(c);
    let unchanged_index = || repo.git(&["diff", "--cached", "--quiet"]).success();

    repo.write(c.name, &c.both);
    let out = add_p(&repo, &[c.name], "q\n").ok();
    assert!(out.stdout_str().contains("(1/2)"));
    assert!(unchanged_index(), "q staged something");

    add_p(&repo, &[c.name], "d\n").ok();
    assert!(unchanged_index(), "d staged something");

    let out = add_p(&repo, &[c.name], "?\nx\nn\ny\n").ok();
    let shown = out.stdout_str();
    assert!(shown.contains("y - stage this hunk"), "{shown}");
    assert!(shown.contains("d - do not stage this hunk or any of the later hunks in the file"));
    assert!(
        shown.contains("Unknown command 'x' (use '?' for help)"),
        "{shown}"
    );
    let staged = staged_plaintext(&repo, c.name);
    assert!(
        staged.contains("second-new-val") && !staged.contains("first-new-val"),
        "{staged}"
    );
    repo.git(&["reset", "-q"]).ok();

    add_p(&repo, &[c.name], "a\n").ok();
    assert!(
        repo.git(&["diff", "--quiet"]).success(),
        "a left changes unstaged"
    );
    repo.git(&["reset", "-q"]).ok();

    // Two changes two lines apart are one hunk; `s` splits it.
    repo.write(c.name, &c.near);
    let out = add_p(&repo, &[c.name], "s\ny\nn\n").ok();
    let shown = out.stdout_str();
    assert!(
        shown.contains("Stage this hunk [y,n,q,a,d,s,e,p,?]"),
        "{shown}"
    );
    assert!(shown.contains("Split into 2 hunks."), "{shown}");
    let staged = staged_plaintext(&repo, c.name);
    assert!(
        staged.contains("first-new-val") && !staged.contains("near-new-val"),
        "{staged}"
    );
    assert_eq!(staged, c.first);
    repo.git(&["commit", "-q", "-m", "split"]).ok();
}

#[test]
fn e_edits_the_plaintext_hunk_in_a_private_file() {
    let c = &cases()[0];
    let mut repo = committed(c);
    let editor = repo.env.write(
        "editor.sh",
        "#!/bin/sh\nls -l \"$1\" > \"$(dirname \"$0\")/mode\"\nsed -i 's/+k1: first-new-val/+k1: edited-val/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    repo.env.set("GIT_EDITOR", editor.display().to_string());
    repo.write(c.name, &c.both);
    add_p(&repo, &[c.name], "e\nn\n").ok();
    let staged = staged_plaintext(&repo, c.name);
    assert!(
        staged.contains("k1: edited-val") && !staged.contains("second-new-val"),
        "{staged}"
    );
    let mode = String::from_utf8(repo.env.read("mode")).unwrap();
    assert!(mode.starts_with("-rw-------"), "{mode}");
    repo.env.assert_no_private_dirs();
    assert_no_plaintext_objects(&repo, &["edited-val", "first-new-val"]);
}

#[test]
fn an_intent_to_add_file_is_staged_whole() {
    let repo = Repo::new();
    repo.write("secrets/new.yaml", "token: brand-new-token\n");
    repo.git(&["add", "-N", "secrets/new.yaml"]).ok();
    let out = add_p(&repo, &[], "y\n").ok();
    assert!(
        out.stdout_str()
            .contains("(1/1) Stage addition [y,n,q,a,d,p,?]? "),
        "{}",
        out.stdout_str()
    );
    assert!(staged_plaintext(&repo, "secrets/new.yaml").contains("brand-new-token"));
    repo.git(&["commit", "-q", "-m", "new"]).ok();
    assert_no_plaintext_objects(&repo, &["brand-new-token"]);
}

#[test]
fn no_changes_and_a_locked_file() {
    let c = &cases()[0];
    let repo = committed(c);
    let out = add_p(&repo, &[], "").ok();
    assert!(out.stderr.contains("No changes."), "{}", out.stderr);

    // Without the key (and without the data-key cache) the staged version cannot be opened.
    repo.git(&["config", "sops.cache", "false"]).ok();
    repo.write(c.name, &c.both);
    let out = repo
        .env
        .git_sops()
        .current_dir(&repo.dir)
        .env("SOPS_AGE_KEY_FILE", repo.env.root.join("no-such-key"))
        .args(["add", "-p"])
        .stdin("y\ny\n")
        .run()
        .fails_with(1, &["no key opens its staged version", "git sops status"]);
    assert!(!out.stdout_str().contains("Stage this hunk"));
    assert!(repo.git(&["diff", "--cached", "--quiet"]).success());
}

#[test]
fn plain_git_add_p_leaves_a_stale_mac_that_the_guard_refuses_naming_git_sops_add_p() {
    let c = &cases()[0];
    let repo = committed(c);
    repo.write(c.name, &c.both);
    // git's own add -p sees ciphertext hunks; stage only the first one.
    let out = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .args(["add", "-p", "--", c.name])
        .stdin("y\nn\nn\nn\n")
        .run()
        .ok();
    assert!(out.stdout_str().contains("ENC["), "{}", out.stdout_str());
    let refused = repo.git(&["commit", "-q", "-m", "partial"]).fails();
    assert!(
        refused.all().contains("git sops add -p"),
        "{}",
        refused.all()
    );
}
