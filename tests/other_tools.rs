//! Other tools that meet git-sops in a repository, run for real (issue 17): VS
//! Code's git calls for its diff view and "stage selected ranges", the
//! pre-commit framework (PyPI `pre-commit`) and lint-staged (npm), both of which
//! stash unstaged changes around their hooks, `core.autocrlf=true` and
//! `core.eol=crlf`, git without git-sops on its PATH (a GUI client's own git),
//! and `git archive` (which smudges) next to `git sops archive` (which does not).
//! The tools are the pinned ones `scripts/provision-tools` installs; a missing
//! one fails the test (`common::tool`).

mod common;

use common::{tool, Repo};

const YAML: &str = "# database\ndb:\n  user: admin\n  password: hunter2 # rotate\n";
const JSON: &str = "{\n  \"stripe\": {\n    \"secret_key\": \"sk_live_51Habc\"\n  }\n}\n";
const DOTENV: &str = "API_TOKEN=tok-ci-7f3a\nDEBUG=false\n";
const FILES: [(&str, &str); 3] = [
    ("secrets/app.yaml", YAML),
    ("secrets/payments.json", JSON),
    ("secrets/prod.env", DOTENV),
];

/// A repository with the three protected files and one ordinary file committed.
fn committed() -> Repo {
    let repo = Repo::new();
    for (path, text) in FILES {
        repo.write(path, text);
    }
    repo.write("notes.txt", "plain notes\n");
    repo.commit_all("secrets");
    repo
}

/// Every object in the repository, as text (for "no plaintext stored").
fn all_objects(repo: &Repo) -> String {
    let out = repo
        .git(&["cat-file", "--batch-all-objects", "--batch"])
        .ok();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_not_stored(repo: &Repo, secret: &str) {
    assert!(
        !all_objects(repo).contains(secret),
        "plaintext {secret:?} reached the object store"
    );
}

fn assert_sops(blob: &str, what: &str) {
    assert!(
        blob.contains("ENC[AES256_GCM,") && blob.contains("sops"),
        "{what} is not SOPS ciphertext:\n{blob}"
    );
}

// ---------------------------------------------------------------------------------
// VS Code (extensions/git/src/git.ts)
// ---------------------------------------------------------------------------------

/// The diff view's left side is `Repository.buffer()`: `git show --textconv
/// <ref>:<path>` with `HEAD` or `` (the index, `:path`); `detectObjectType`
/// reads the same command's first 4100 bytes for a NUL; `getObjectDetails`
/// runs `git ls-files --stage -- path` + `git cat-file -s OBJECT` (index) or
/// `git ls-tree -l HEAD -- path`. Each original must be the plaintext, byte for
/// byte what the working tree held when it was committed or staged.
#[test]
fn vscode_diff_originals_are_the_working_tree_bytes() {
    let repo = committed();
    for (path, text) in FILES {
        let head = repo
            .git(&["show", "--textconv", &format!("HEAD:{path}")])
            .ok();
        assert_eq!(
            head.stdout_str(),
            text,
            "{path}: git show --textconv HEAD:path"
        );
        assert!(
            !head.stdout.contains(&0),
            "{path}: a NUL makes VS Code call it binary"
        );
        assert_eq!(repo.text(path), text, "{path}: the working tree");

        // A staged edit: the index side (`:path`) is the staged plaintext.
        let edited = if path.ends_with(".json") {
            text.replace("sk_live_51Habc", "sk_live_staged")
        } else if path.ends_with(".env") {
            format!("{text}NEW_KEY=staged-value\n")
        } else {
            format!("{text}extra: staged-value\n")
        };
        repo.write(path, &edited);
        repo.git(&["add", path]).ok();
        let index = repo.git(&["show", "--textconv", &format!(":{path}")]).ok();
        assert_eq!(
            index.stdout_str(),
            edited,
            "{path}: git show --textconv :path"
        );

        // getObjectDetails: the sizes git reports are the stored ciphertext's.
        let stage = repo
            .git(&["ls-files", "--stage", "--", path])
            .ok()
            .stdout_str();
        let object = stage
            .split_whitespace()
            .nth(1)
            .expect("ls-files --stage object");
        let size: usize = repo
            .git(&["cat-file", "-s", object])
            .ok()
            .stdout_str()
            .trim()
            .parse()
            .expect("cat-file -s");
        let stored = repo.blob_text(object);
        assert_sops(&stored, path);
        assert_eq!(size, stored.len(), "{path}: cat-file -s");
        let tree = repo
            .git(&["ls-tree", "-l", "HEAD", "--", path])
            .ok()
            .stdout_str();
        assert!(tree.contains(path), "{path}: ls-tree -l: {tree}");
    }
    assert_not_stored(&repo, "staged-value");
    assert_not_stored(&repo, "sk_live_staged");
}

/// "Stage selected ranges" is `Repository.stage(path, data)`: `git hash-object
/// --stdin -w --path PATH` with the new plaintext, then `git update-index
/// --cacheinfo MODE HASH PATH`. `--path` runs the clean filter, so what is
/// written and staged is ciphertext that opens to exactly the data.
#[test]
fn vscode_stage_selected_ranges_stores_ciphertext() {
    let repo = committed();
    let data = "# database\ndb:\n  user: admin\n  password: range-staged # rotate\n";
    let hash = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .args(["hash-object", "--stdin", "-w", "--path", "secrets/app.yaml"])
        .stdin(data)
        .run()
        .ok()
        .stdout_str();
    let hash = hash.trim();
    assert_sops(&repo.blob_text(hash), "hash-object --path output");
    repo.git(&[
        "update-index",
        "--cacheinfo",
        "100644",
        hash,
        "secrets/app.yaml",
    ])
    .ok();
    let shown = repo
        .git(&["show", "--textconv", ":secrets/app.yaml"])
        .ok()
        .stdout_str();
    assert_eq!(shown, data);
    repo.sops(&["check", "--staged"]).ok();
    assert_not_stored(&repo, "range-staged");
}

// ---------------------------------------------------------------------------------
// pre-commit (PyPI) and lint-staged (npm): both stash unstaged changes
// ---------------------------------------------------------------------------------

const PRE_COMMIT_CONFIG: &str = "repos:
  - repo: local
    hooks:
      - id: no-tabs
        name: no tabs
        entry: sh -c '! grep -n \"\t\" \"$@\"' --
        language: system
        types: [text]
";

/// `pre-commit install` after `git sops init` keeps git-sops' hook as
/// `pre-commit.legacy` and runs it first. A commit of one staged file with an
/// unstaged edit (and a partially staged edit) of a protected file: pre-commit
/// stashes the unstaged changes (`git diff-index --binary`, a ciphertext patch),
/// checks out, runs its hooks and applies the patch back. The edits survive,
/// the commit holds only what was staged, encrypted, and git-sops' guard still
/// runs under the framework.
#[test]
fn pre_commit_framework_keeps_unstaged_edits_of_protected_files() {
    let repo = committed();
    let pre_commit = tool("pre-commit");
    let run = |args: &[&str]| {
        repo.env
            .command(&pre_commit, "pre-commit")
            .current_dir(&repo.dir)
            .args(args)
            .run()
    };
    repo.write(".pre-commit-config.yaml", PRE_COMMIT_CONFIG);
    repo.commit_all("pre-commit config");
    run(&["install"]).ok();
    assert!(repo.dir.join(".git/hooks/pre-commit.legacy").exists());
    repo.sops(&["doctor"])
        .ok()
        .stdout_str()
        .contains("pre-commit framework");

    // Unstaged only: secrets/app.yaml; partially staged: secrets/prod.env.
    let unstaged = YAML.replace("hunter2", "unstaged-pw");
    repo.write("secrets/app.yaml", &unstaged);
    let staged_env = format!("{DOTENV}STAGED=staged-env\n");
    repo.write("secrets/prod.env", &staged_env);
    repo.git(&["add", "secrets/prod.env"]).ok();
    let both_env = format!("{staged_env}LATER=unstaged-env\n");
    repo.write("secrets/prod.env", &both_env);
    repo.write("notes.txt", "plain notes\nmore\n");
    repo.git(&["add", "notes.txt"]).ok();

    let out = repo.git(&["commit", "-m", "notes"]).ok();
    assert!(
        out.all().contains("Stashing unstaged files"),
        "{}",
        out.all()
    );
    assert_eq!(repo.text("secrets/app.yaml"), unstaged);
    assert_eq!(repo.text("secrets/prod.env"), both_env);
    assert_eq!(
        repo.git(&["show", "--textconv", "HEAD:secrets/prod.env"])
            .ok()
            .stdout_str(),
        staged_env
    );
    assert_eq!(
        repo.git(&["show", "--textconv", "HEAD:secrets/app.yaml"])
            .ok()
            .stdout_str(),
        YAML
    );
    assert_sops(
        &repo.blob_text("HEAD:secrets/prod.env"),
        "committed prod.env",
    );
    for s in ["unstaged-pw", "unstaged-env", "staged-env"] {
        assert_not_stored(&repo, s);
    }

    // The guard still runs under the framework: plaintext staged with the
    // filter switched off is refused.
    repo.write("secrets/new.yaml", "token: leaked-by-tool\n");
    repo.git(&[
        "-c",
        "filter.sops.process=",
        "-c",
        "filter.sops.clean=",
        "-c",
        "filter.sops.required=false",
        "add",
        "secrets/new.yaml",
    ])
    .ok();
    let refused = repo.git(&["commit", "-m", "leak"]).fails();
    assert!(refused.all().contains("git-sops"), "{}", refused.all());
}

fn lint_staged(repo: &Repo, args: &[&str]) -> common::Output {
    repo.env
        .command(&tool("lint-staged"), "lint-staged")
        .current_dir(&repo.dir)
        .args(args)
        .run()
}

fn lint_staged_repo() -> Repo {
    let repo = committed();
    repo.write(
        ".lintstagedrc.json",
        "{\n  \"*.txt\": \"sh -c '! grep -n TODO \\\"$@\\\"' --\"\n}\n",
    );
    repo.commit_all("lint-staged config");
    repo.write("notes.txt", "plain notes\nmore\n");
    repo.git(&["add", "notes.txt"]).ok();
    repo
}

/// lint-staged leaves files that are not partially staged alone: an unstaged
/// edit of a protected file survives, nothing of it is stored.
#[test]
fn lint_staged_keeps_an_unstaged_edit_of_a_protected_file() {
    let repo = lint_staged_repo();
    let unstaged = YAML.replace("hunter2", "unstaged-pw");
    repo.write("secrets/app.yaml", &unstaged);
    lint_staged(&repo, &[]).ok();
    assert_eq!(repo.text("secrets/app.yaml"), unstaged);
    assert_eq!(repo.status(), "M  notes.txt\n M secrets/app.yaml\n");
    assert_not_stored(&repo, "unstaged-pw");
}

/// A partially staged protected file (staged edit plus a further unstaged one)
/// is kept with `--no-hide-partially-staged`, the setting README recommends.
#[test]
fn lint_staged_no_hide_partially_staged_keeps_a_partially_staged_protected_file() {
    let repo = lint_staged_repo();
    let staged = YAML.replace("hunter2", "staged-pw");
    repo.write("secrets/app.yaml", &staged);
    repo.git(&["add", "secrets/app.yaml"]).ok();
    let both = format!("{staged}extra: unstaged-value\n");
    repo.write("secrets/app.yaml", &both);
    lint_staged(&repo, &["--no-hide-partially-staged"]).ok();
    assert_eq!(repo.text("secrets/app.yaml"), both);
    assert_eq!(
        repo.git(&["show", "--textconv", ":secrets/app.yaml"])
            .ok()
            .stdout_str(),
        staged
    );
    assert_not_stored(&repo, "unstaged-value");
    assert_not_stored(&repo, "staged-pw");
}

/// The limitation README documents: by default lint-staged hides the unstaged
/// part of a partially staged file with `git diff --binary --unified=0`, which
/// (being porcelain `git diff`) runs the textconv driver, so the patch is
/// plaintext; `git apply --unidiff-zero` puts those lines into the file as git
/// sees it (ciphertext, through the clean filter), and the smudge filter then
/// refuses the unauthenticated result. The working-tree file is left as
/// ciphertext with the plaintext lines in it; nothing is stored and the index
/// is untouched. If this test starts failing, lint-staged changed: update the
/// README entry.
#[test]
fn lint_staged_default_mangles_a_partially_staged_protected_file_but_stores_nothing() {
    let repo = lint_staged_repo();
    let staged = YAML.replace("hunter2", "staged-pw");
    repo.write("secrets/app.yaml", &staged);
    repo.git(&["add", "secrets/app.yaml"]).ok();
    let both = format!("{staged}extra: unstaged-value\n");
    repo.write("secrets/app.yaml", &both);
    let out = lint_staged(&repo, &[]).ok();
    let left = repo.text("secrets/app.yaml");
    assert_ne!(
        left,
        both,
        "lint-staged now keeps it: update README ({})",
        out.all()
    );
    assert!(
        left.contains("ENC[AES256_GCM,") && left.contains("unstaged-value"),
        "{left}"
    );
    assert_eq!(
        repo.git(&["show", "--textconv", ":secrets/app.yaml"])
            .ok()
            .stdout_str(),
        staged
    );
    repo.sops(&["check", "--staged"]).ok();
    assert_not_stored(&repo, "unstaged-value");
    assert_not_stored(&repo, "staged-pw");
}

// ---------------------------------------------------------------------------------
// Line endings
// ---------------------------------------------------------------------------------

/// A clone made with `CONFIG` (`core.autocrlf=true`, `core.eol=crlf`), unlocked
/// by `git sops init`: protected files are `-text` (init writes that), so they
/// check out as their exact plaintext, and neither checkout, a re-run of init,
/// nor a touched file makes `git status` show a change.
fn line_endings_stay_clean(config: &str) {
    let repo = committed();
    let clone = repo.env.work.join("clone");
    repo.git(&[
        "clone",
        "-q",
        "-c",
        config,
        repo.dir.to_str().expect("utf8"),
        clone.to_str().expect("utf8"),
    ])
    .ok();
    let in_clone = |args: &[&str]| repo.git_in(&clone, args);
    let sops = |args: &[&str]| repo.env.git_sops().current_dir(&clone).args(args).run();
    sops(&["init", "secrets/**"]).ok();
    assert_eq!(
        in_clone(&["status", "--porcelain"]).ok().stdout_str(),
        "",
        "{config}: after init"
    );
    for (path, text) in FILES {
        let bytes = std::fs::read(clone.join(path)).expect("read");
        assert_eq!(String::from_utf8_lossy(&bytes), text, "{config}: {path}");
    }
    let again = sops(&["init", "secrets/**"]).ok();
    assert!(
        !again.all().contains(".gitattributes"),
        "{config}: init again: {}",
        again.all()
    );
    for (path, _) in FILES {
        std::fs::remove_file(clone.join(path)).expect("rm");
    }
    in_clone(&["checkout", "--", "."]).ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for (path, text) in FILES {
        assert_eq!(
            std::fs::read_to_string(clone.join(path)).expect("read"),
            text
        );
        // A newer mtime: git must compare the content through the filter.
        let bytes = std::fs::read(clone.join(path)).expect("read");
        std::fs::write(clone.join(path), bytes).expect("touch");
    }
    assert_eq!(
        in_clone(&["status", "--porcelain"]).ok().stdout_str(),
        "",
        "{config}: after checkout"
    );
    in_clone(&["diff", "--exit-code"]).ok();
    in_clone(&["add", "--renormalize", "."]).ok();
    assert_eq!(
        in_clone(&["status", "--porcelain"]).ok().stdout_str(),
        "",
        "{config}: renormalize"
    );
}

#[test]
fn autocrlf_true_checkout_and_status_stay_clean() {
    line_endings_stay_clean("core.autocrlf=true");
}

#[test]
fn eol_crlf_checkout_and_status_stay_clean() {
    line_endings_stay_clean("core.eol=crlf");
}

// ---------------------------------------------------------------------------------
// git without git-sops on PATH
// ---------------------------------------------------------------------------------

/// A GUI client running its own git with a PATH that lacks git-sops: the
/// filter is `required`, so `git add` of a protected file fails and stores
/// nothing (no index entry, no blob).
#[test]
fn git_add_without_git_sops_on_path_fails_and_stores_nothing() {
    let repo = committed();
    repo.write("secrets/new.yaml", "token: no-binary-secret\n");
    repo.write(
        "secrets/app.yaml",
        YAML.replace("hunter2", "no-binary-edit"),
    );
    let out = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .env("PATH", "/usr/bin:/bin")
        .args(["add", "secrets/new.yaml", "secrets/app.yaml"])
        .run()
        .fails();
    assert!(out.all().contains("filter"), "{}", out.all());
    let listed = repo
        .git(&["ls-files", "--", "secrets/new.yaml"])
        .ok()
        .stdout_str();
    assert_eq!(listed, "");
    assert_not_stored(&repo, "no-binary-secret");
    assert_not_stored(&repo, "no-binary-edit");
    // And the doctor says what is wrong, from git's PATH.
    let doctor = repo
        .env
        .git_sops()
        .current_dir(&repo.dir)
        .env("PATH", "/usr/bin:/bin")
        .arg("doctor")
        .run()
        .exits(1);
    assert!(
        doctor.stdout_str().contains("FAIL binary"),
        "{}",
        doctor.stdout_str()
    );
}

// ---------------------------------------------------------------------------------
// git archive
// ---------------------------------------------------------------------------------

fn archived(repo: &Repo, archive: &std::path::Path, path: &str) -> String {
    repo.env
        .tool("tar")
        .args(["-xOf", archive.to_str().expect("utf8"), path])
        .run()
        .ok()
        .stdout_str()
}

/// Plain `git archive` smudges: an unlocked clone exports plaintext. The
/// README's recipe (`-c filter.sops.process= -c filter.sops.smudge= -c
/// filter.sops.required=false`) and `git sops archive` export the committed
/// ciphertext; the other files are as plain `git archive` writes them.
#[test]
fn git_archive_exports_plaintext_and_git_sops_archive_ciphertext() {
    let repo = committed();
    let plain = repo.env.work.join("plain.tar");
    repo.git(&[
        "archive",
        "--format=tar",
        "-o",
        plain.to_str().expect("utf8"),
        "HEAD",
    ])
    .ok();
    assert_eq!(archived(&repo, &plain, "secrets/app.yaml"), YAML);

    let recipe = repo.env.work.join("recipe.tar");
    repo.git(&[
        "-c",
        "filter.sops.process=",
        "-c",
        "filter.sops.smudge=",
        "-c",
        "filter.sops.required=false",
        "archive",
        "--format=tar",
        "-o",
        recipe.to_str().expect("utf8"),
        "HEAD",
    ])
    .ok();
    let ours = repo.env.work.join("ours.tar");
    repo.sops(&[
        "archive",
        "--format=tar",
        "-o",
        ours.to_str().expect("utf8"),
        "HEAD",
    ])
    .ok();
    for archive in [&recipe, &ours] {
        for (path, _) in FILES {
            let inside = archived(&repo, archive, path);
            assert_eq!(inside, repo.blob_text(&format!("HEAD:{path}")), "{path}");
            assert_sops(&inside, path);
        }
        assert_eq!(archived(&repo, archive, "notes.txt"), "plain notes\n");
    }
    // To stdout, with a prefix and a path, as git archive takes them.
    let out = repo
        .sops(&[
            "archive",
            "--format=tar",
            "--prefix=rel/",
            "HEAD",
            "secrets",
        ])
        .ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rel/secrets/app.yaml") && !text.contains("hunter2"));
    // --remote would let the other side's config decide: refused.
    repo.sops(&["archive", "--remote=origin", "HEAD"]).exits(2);
    // A bad revision: git's own error and exit code.
    let bad = repo.sops(&["archive", "no-such-rev"]).fails();
    assert!(bad.all().contains("no-such-rev"), "{}", bad.all());
}

/// `--add-file` adds a working-tree file as it is: for a protected path that is
/// the plaintext, so `git sops archive` refuses it, in every spelling git takes
/// (and through a symlink); an unprotected file is added as usual.
#[test]
fn git_sops_archive_refuses_to_add_a_protected_working_tree_file() {
    let repo = committed();
    std::os::unix::fs::symlink("secrets/app.yaml", repo.dir.join("link.yaml")).expect("symlink");
    for args in [
        vec!["archive", "--add-file=secrets/app.yaml", "HEAD"],
        vec!["archive", "--add-file", "secrets/prod.env", "HEAD"],
        vec!["archive", "--add-fi=secrets/payments.json", "HEAD"],
        vec!["archive", "--add-file=link.yaml", "HEAD"],
    ] {
        let out = repo.sops(&args).fails_with(2, &["--add-file", "plaintext"]);
        for (_, text) in FILES {
            assert!(!out.all().contains(text), "{}", out.describe());
        }
    }
    let out = repo.sops(&["archive", "--add-file=notes.txt", "HEAD"]).ok();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}
