//! Encrypted working trees (`sops.worktree encrypted`, the `sops-worktree`
//! attribute) with real git and a key available: the working tree holds
//! ciphertext, while `git diff`, `git log -p`, `git show`, merges (with and
//! without a conflict), `git sops edit`, `decrypt --extract`, `exec-file`,
//! `git stash` and clones keep working. After every step no plaintext of a test
//! secret exists anywhere on disk the test controls: the repositories (working
//! tree and `.git`, every file, and every object decompressed), `TMPDIR`,
//! `XDG_RUNTIME_DIR` (the editor's private directory), `HOME`, the key files
//! and the key cache. The secrets reach git-sops only through the environment
//! of a scripted editor, never through a file.
//!
//! git's own temporary files are made visible too: the merge driver and the
//! textconv driver are wrapped to append what git handed them (`%O %A %B`, the
//! textconv input file) to a file under the test root, which the scan then
//! reads: in encrypted mode those inputs must be ciphertext.

mod common;

use std::path::{Path, PathBuf};

use common::{Output, Repo};

const PW1: &str = "pw-alpha-7Qx91";
const PW2: &str = "pw-bravo-3Kd27";
const USER2: &str = "usr-charlie-5Lm40";
const OURS: &str = "pw-ours-8Zt63";
const THEIRS: &str = "pw-theirs-2Wq58";
const RESOLVED: &str = "pw-resolved-6Hn14";
const STASHED: &str = "pw-stashed-4Jc82";
const ALL: [&str; 7] = [PW1, PW2, USER2, OURS, THEIRS, RESOLVED, STASHED];

fn doc(password: &str, user: &str) -> String {
    format!("# the database\ndb:\n  user: {user}\n  password: {password}\nport: 5432\n")
}

/// A repository in encrypted mode, a scripted editor, a runtime dir under the
/// test root, and git's temp files for the drivers made visible.
fn setup() -> Repo {
    let mut repo = Repo::new();
    let run = repo.env.root.join("run");
    std::fs::create_dir_all(&run).expect("runtime dir");
    repo.env.set("XDG_RUNTIME_DIR", run.display().to_string());
    // The editor writes $NEW; with $EXPECT_MARKERS it first insists on seeing
    // conflict markers (without copying anything it was shown anywhere).
    let editor = repo.env.root.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nif [ -n \"$EXPECT_MARKERS\" ]; then grep -q '^<<<<<<<' \"$1\" || exit 3; fi\nprintf '%s' \"$NEW\" > \"$1\"\n",
    )
    .expect("editor");
    make_executable(&editor);
    repo.env.set("EDITOR", editor.display().to_string());
    repo.sops(&["init", "--encrypted-worktree"]).ok();
    assert_eq!(
        repo.git(&["config", "sops.worktree"])
            .ok()
            .stdout_str()
            .trim(),
        "encrypted"
    );
    let seen = repo.env.root.join("git-handed-to-drivers");
    repo.git(&[
        "config",
        "merge.sops.driver",
        &format!(
            "sh -c 'cat \"$1\" \"$2\" \"$3\" >> {}; exec git-sops merge \"$@\"' sh %O %A %B %L %P",
            seen.display()
        ),
    ])
    .ok();
    repo.git(&[
        "config",
        "diff.sops.textconv",
        &format!(
            "sh -c 'cat \"$1\" >> {}; exec git-sops textconv \"$1\"' sh",
            seen.display()
        ),
    ])
    .ok();
    repo.commit_all("set up");
    repo
}

fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// `git sops edit FILE` with the scripted editor writing `new`.
fn edit(repo: &Repo, dir: &Path, file: &str, new: &str, markers: bool) -> Output {
    let mut cmd = repo
        .env
        .git_sops()
        .current_dir(dir)
        .env("NEW", new)
        .args(["edit", file]);
    if markers {
        cmd = cmd.env("EXPECT_MARKERS", "1");
    }
    cmd.run()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// No test secret anywhere under the test root: every file as it is, and
/// every object of every repository there decompressed (`cat-file
/// --batch-all-objects` inflates loose objects and resolves packed ones,
/// unreachable ones included).
fn assert_no_plaintext(repo: &Repo, step: &str) {
    let hits = find_plaintext(repo, step);
    assert!(
        hits.is_empty(),
        "{step}: plaintext on disk:\n{}",
        hits.join("\n")
    );
    repo.env.assert_no_private_dirs();
}

/// Where a test secret is on disk under the test root.
fn find_plaintext(repo: &Repo, step: &str) -> Vec<String> {
    let mut files = Vec::new();
    files_under(&repo.env.root, &mut files);
    assert!(files.len() > 20, "{step}: the scan found the files");
    let mut hits = Vec::new();
    let mut git_dirs = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        for s in ALL {
            if contains(&bytes, s) {
                hits.push(format!("{} holds {s}", f.display()));
            }
        }
        if f.file_name().is_some_and(|n| n == "HEAD") {
            let dir = f.parent().expect("parent").to_path_buf();
            if dir.join("objects").is_dir() {
                git_dirs.push(dir);
            }
        }
    }
    assert!(!git_dirs.is_empty(), "{step}: no repository found");
    let mut objects = 0;
    for dir in &git_dirs {
        let out = repo
            .env
            .tool("git")
            .arg(format!("--git-dir={}", dir.display()))
            .args(["cat-file", "--batch-all-objects", "--batch", "--unordered"])
            .run()
            .ok();
        objects += out.stdout.len();
        for s in ALL {
            if contains(&out.stdout, s) {
                hits.push(format!("an object of {} holds {s}", dir.display()));
            }
        }
    }
    assert!(objects > 0, "{step}: no objects read");
    hits
}

fn is_ciphertext(_repo: &Repo, dir: &Path, rel: &str) -> bool {
    let text = std::fs::read_to_string(dir.join(rel)).expect("read");
    text.contains("ENC[AES256_GCM,") && text.contains("sops:")
}

fn extract(repo: &Repo, dir: &Path, file: &str, key: &str) -> String {
    repo.env
        .git_sops()
        .current_dir(dir)
        .args(["decrypt", "--extract", key, file])
        .run()
        .ok()
        .stdout_str()
        .trim_end()
        .to_string()
}

#[test]
fn a_key_holder_works_with_ciphertext_on_disk_and_plaintext_never_touches_it() {
    let repo = setup();
    let dir = repo.dir.clone();
    let file = "secrets/app.yaml";
    assert_no_plaintext(&repo, "init");

    // A new file, written through the editor: ciphertext on disk.
    std::fs::create_dir_all(dir.join("secrets")).expect("mkdir");
    edit(&repo, &dir, file, &doc(PW1, "admin"), false).ok();
    assert!(is_ciphertext(&repo, &dir, file));
    assert_no_plaintext(&repo, "edit (new file)");
    repo.commit_all("one");
    assert_eq!(repo.status(), "", "nothing dirty after the commit");
    // Clean passes the ciphertext through byte for byte.
    assert_eq!(repo.blob(&format!("HEAD:{file}")), repo.read(file));
    assert_no_plaintext(&repo, "commit");

    // status names the mode.
    let status = repo.sops(&["status"]).ok().stdout_str();
    assert!(status.contains("working tree: ciphertext"), "{status}");
    assert!(
        status.contains("mode: encrypted (sops.worktree)"),
        "{status}"
    );
    let shown = repo.sops(&["worktree"]).ok().stdout_str();
    assert!(shown.contains("working-tree mode: encrypted"), "{shown}");
    assert_no_plaintext(&repo, "status");

    // An edit keeps every other value's ciphertext: the raw change is the
    // password line, mac and lastmodified.
    let before = repo.text(file);
    edit(&repo, &dir, file, &doc(PW2, "admin"), false).ok();
    let after = repo.text(file);
    let old: std::collections::HashSet<&str> = before.lines().collect();
    let mut changed: Vec<&str> = after
        .lines()
        .filter(|l| !old.contains(l))
        .map(|l| l.trim_start().split(':').next().unwrap_or(""))
        .filter(|k| *k != "lastmodified")
        .collect();
    changed.sort();
    assert_eq!(changed, ["mac", "password"], "{after}");
    assert!(repo.status().contains("M secrets/app.yaml"));
    assert_no_plaintext(&repo, "edit");

    // git diff decrypts in memory, key by key.
    let diff = repo.git(&["diff"]).ok().stdout_str();
    assert!(diff.contains(&format!("-  password: {PW1}")), "{diff}");
    assert!(diff.contains(&format!("+  password: {PW2}")), "{diff}");
    assert!(!diff.contains("ENC["), "{diff}");
    assert_no_plaintext(&repo, "diff");
    repo.commit_all("two");
    let log = repo.git(&["log", "-p"]).ok().stdout_str();
    assert!(log.contains(&format!("+  password: {PW1}")), "{log}");
    assert!(log.contains(&format!("+  password: {PW2}")), "{log}");
    let show = repo.git(&["show", "HEAD"]).ok().stdout_str();
    assert!(show.contains(&format!("-  password: {PW1}")), "{show}");
    assert_no_plaintext(&repo, "commit, log -p, show");

    // With the textconv cache switched on, nothing decrypted is cached.
    repo.git(&["config", "diff.sops.cachetextconv", "true"])
        .ok();
    let cached = repo.git(&["log", "-p"]).ok().stdout_str();
    assert!(!cached.contains(PW1), "{cached}");
    assert_no_plaintext(&repo, "log -p with cachetextconv");
    repo.git(&["config", "--unset", "diff.sops.cachetextconv"])
        .ok();

    // The ways to use values read the ciphertext working-tree file.
    assert_eq!(extract(&repo, &dir, file, "[\"db\"][\"password\"]"), PW2);
    let out = repo
        .env
        .git_sops()
        .current_dir(&dir)
        .args(["exec-file", file, "grep -c pw-bravo {}"])
        .run()
        .ok();
    assert_eq!(out.stdout_str().trim(), "1");
    assert_no_plaintext(&repo, "decrypt --extract, exec-file");

    // sops 3.11 decrypts what was committed.
    let committed = repo.env.root.join("committed.yaml");
    std::fs::write(&committed, repo.blob(&format!("HEAD:{file}"))).expect("write");
    let plain = repo
        .env
        .sops()
        .args(["decrypt", "--extract", "[\"db\"][\"password\"]"])
        .arg(&committed)
        .run()
        .ok()
        .stdout_str();
    assert_eq!(plain, PW2);
    assert_no_plaintext(&repo, "sops decrypt");

    // git stash keeps ciphertext too.
    edit(&repo, &dir, file, &doc(STASHED, "admin"), false).ok();
    repo.git(&["stash"]).ok();
    assert_eq!(repo.status(), "");
    assert_no_plaintext(&repo, "stash");
    repo.git(&["stash", "pop"]).ok();
    assert!(is_ciphertext(&repo, &dir, file));
    assert_eq!(
        extract(&repo, &dir, file, "[\"db\"][\"password\"]"),
        STASHED
    );
    repo.git(&["checkout", "--", file]).ok();
    assert_no_plaintext(&repo, "stash pop, checkout");

    // A merge without a conflict: values merged, result encrypted on disk.
    repo.git(&["checkout", "-q", "-b", "feature"]).ok();
    edit(&repo, &dir, file, &doc(PW2, USER2), false).ok();
    repo.commit_all("feature: user");
    repo.git(&["checkout", "-q", "main"]).ok();
    edit(
        &repo,
        &dir,
        file,
        "# the database\ndb:\n  user: admin\n  password: pw-bravo-3Kd27\nport: 6543\n",
        false,
    )
    .ok();
    repo.commit_all("main: port");
    repo.git(&["merge", "-q", "--no-edit", "feature"]).ok();
    assert!(is_ciphertext(&repo, &dir, file));
    assert_eq!(extract(&repo, &dir, file, "[\"db\"][\"user\"]"), USER2);
    assert_eq!(extract(&repo, &dir, file, "[\"port\"]"), "6543");
    assert_eq!(repo.status(), "");
    assert_no_plaintext(&repo, "merge without conflict");

    // A conflict, with rerere on: the conflict stays encrypted on disk (and
    // rerere finds no markers to record); `git add` refuses the envelope;
    // `git sops edit` shows the markers and writes ciphertext.
    repo.git(&["config", "rerere.enabled", "true"]).ok();
    repo.git(&["checkout", "-q", "-b", "theirs"]).ok();
    edit(&repo, &dir, file, &doc(THEIRS, USER2), false).ok();
    repo.commit_all("theirs");
    repo.git(&["checkout", "-q", "main"]).ok();
    edit(&repo, &dir, file, &doc(OURS, USER2), false).ok();
    repo.commit_all("ours");
    let merge = repo.git(&["merge", "--no-edit", "theirs"]).fails();
    assert!(
        merge.all().contains("git sops edit"),
        "{}",
        merge.describe()
    );
    let on_disk = repo.text(file);
    assert!(
        on_disk.contains("git_sops_conflict") && !on_disk.contains("<<<<<<<"),
        "{on_disk}"
    );
    assert_no_plaintext(&repo, "merge with a conflict");
    let status = repo.sops(&["status"]).ok().stdout_str();
    assert!(status.contains("unresolved merge conflict"), "{status}");
    let diff = repo.git(&["diff"]);
    diff.assert_no_panic();
    repo.git(&["add", file]).fails();
    assert_no_plaintext(&repo, "status, diff, refused add during the conflict");
    // Saving with the markers left in is refused (no terminal: nothing written).
    let kept = edit(
        &repo,
        &dir,
        file,
        "<<<<<<< ours\na: 1\n=======\na: 2\n>>>>>>> theirs\n",
        true,
    );
    assert!(
        !kept.success() && kept.stderr.contains("conflict markers"),
        "{}",
        kept.describe()
    );
    assert_eq!(repo.text(file), on_disk);
    edit(&repo, &dir, file, &doc(RESOLVED, USER2), true).ok();
    assert!(is_ciphertext(&repo, &dir, file));
    assert!(!repo.text(file).contains("git_sops_conflict"));
    assert_no_plaintext(&repo, "edit resolving the conflict");
    repo.git(&["add", file]).ok();
    repo.git(&["commit", "-q", "--no-edit"]).ok();
    assert_eq!(repo.status(), "");
    let shown = repo.git(&["log", "-p", "--cc", "-1"]).ok().stdout_str();
    assert!(
        shown.contains(&format!("++  password: {RESOLVED}")),
        "{shown}"
    );
    assert_eq!(
        extract(&repo, &dir, file, "[\"db\"][\"password\"]"),
        RESOLVED
    );
    assert_no_plaintext(&repo, "commit of the resolution, log -p --cc");

    // git handed the drivers ciphertext only (the scan above read it all).
    let seen = std::fs::read_to_string(repo.env.root.join("git-handed-to-drivers")).expect("seen");
    assert!(
        seen.contains("git_sops_conflict") || seen.contains("ENC["),
        "{seen}"
    );

    // A clone with the drivers and the mode set globally: ciphertext on checkout.
    repo.sops(&["install", "--global"]).ok();
    repo.git(&["config", "--global", "sops.worktree", "encrypted"])
        .ok();
    let clone = repo.env.work.join("clone");
    repo.git(&[
        "clone",
        "-q",
        dir.to_str().expect("utf8"),
        clone.to_str().expect("utf8"),
    ])
    .ok();
    assert!(is_ciphertext(&repo, &clone, file));
    assert_eq!(
        repo.git_in(&clone, &["status", "--porcelain"])
            .ok()
            .stdout_str(),
        ""
    );
    let log = repo
        .git_in(&clone, &["log", "-p", "--cc", "-1", "--", file])
        .ok()
        .stdout_str();
    assert!(log.contains(RESOLVED), "{log}");
    assert_no_plaintext(&repo, "clone");
}

#[test]
fn plaintext_dropped_into_an_encrypted_path_is_still_encrypted() {
    let repo = setup();
    repo.write("secrets/dropped.yaml", "token: dropped-plain-1\n");
    let add = repo.git(&["add", "secrets/dropped.yaml"]).ok();
    assert!(
        add.stderr
            .contains("plaintext on disk in an encrypted working tree"),
        "{}",
        add.describe()
    );
    let blob = repo.blob_text(":secrets/dropped.yaml");
    assert!(
        blob.contains("ENC[") && !blob.contains("dropped-plain-1"),
        "{blob}"
    );
    let status = repo.sops(&["status"]).ok().stdout_str();
    assert!(status.contains("working tree: PLAINTEXT"), "{status}");
    // Committing and switching again replaces the plaintext with the ciphertext.
    repo.git(&["commit", "-q", "-m", "dropped"]).ok();
    repo.sops(&["worktree", "encrypted"]).ok();
    assert_eq!(
        repo.read("secrets/dropped.yaml"),
        repo.blob("HEAD:secrets/dropped.yaml")
    );
    assert_eq!(repo.status(), "");
    // `git blame` cleans the textconv of the working-tree file, plaintext
    // made in memory: no false alarm about plaintext on disk.
    let blame = repo.git(&["blame", "secrets/dropped.yaml"]).ok();
    assert!(
        !blame.stderr.contains("plaintext on disk"),
        "{}",
        blame.describe()
    );
    assert_no_plaintext(&repo, "blame");
}

#[test]
fn the_attribute_sets_the_mode_per_path() {
    // Plaintext by default; one folder encrypted by attribute.
    let repo = Repo::new();
    let mut attrs = repo.text(".gitattributes");
    attrs.push_str("secrets/vault/** sops-worktree=encrypted\n");
    repo.write(".gitattributes", attrs);
    repo.write("secrets/plain.yaml", "a: plain-value-1\n");
    repo.write("secrets/vault/enc.yaml", "b: vault-value-1\n");
    repo.commit_all("both");
    for f in ["secrets/plain.yaml", "secrets/vault/enc.yaml"] {
        std::fs::remove_file(repo.dir.join(f)).expect("rm");
    }
    repo.git(&["checkout", "--", "."]).ok();
    assert_eq!(repo.text("secrets/plain.yaml"), "a: plain-value-1\n");
    assert_eq!(
        repo.read("secrets/vault/enc.yaml"),
        repo.blob("HEAD:secrets/vault/enc.yaml")
    );
    assert_eq!(repo.status(), "");
    let status = repo.sops(&["status"]).ok().stdout_str();
    assert!(
        status.contains("mode: encrypted (sops-worktree attribute)"),
        "{status}"
    );
    assert!(status.contains("mode: plaintext;"), "{status}");
    let diff_input = repo
        .git(&["log", "-p", "--", "secrets/vault/enc.yaml"])
        .ok()
        .stdout_str();
    assert!(diff_input.contains("+b: vault-value-1"), "{diff_input}");

    // Encrypted by config, one path plaintext by attribute: the stricter
    // wins, so the switch checks every protected file out as ciphertext and
    // `git sops worktree` says the attribute is ignored.
    let mut attrs = repo.text(".gitattributes");
    attrs.push_str("secrets/plain.yaml sops-worktree=plaintext\n");
    repo.write(".gitattributes", attrs);
    repo.commit_all("plain stays plain");
    repo.sops(&["worktree", "encrypted"]).ok();
    for f in ["secrets/plain.yaml", "secrets/vault/enc.yaml"] {
        assert_eq!(repo.read(f), repo.blob(&format!("HEAD:{f}")), "{f}");
    }
    let shown = repo.sops(&["worktree"]).ok().stdout_str();
    assert!(
        shown.contains(
            "secrets/plain.yaml: encrypted (its sops-worktree=plaintext attribute is ignored"
        ),
        "{shown}"
    );
}

/// A hostile (or careless) commit adds `sops-worktree=plaintext` for every
/// secret and changes one: pulling it into a clone whose config says
/// encrypted must not put plaintext on that clone's disk, neither in the
/// checkout the pull makes nor in any later one.
#[test]
fn a_committed_attribute_cannot_turn_a_clones_encrypted_mode_off() {
    let repo = setup();
    let file = "secrets/app.yaml";
    std::fs::create_dir_all(repo.dir.join("secrets")).expect("mkdir");
    edit(&repo, &repo.dir, file, &doc(PW1, "admin"), false).ok();
    repo.commit_all("one");
    // The attacker's branch, made in plaintext mode as any contributor can.
    repo.git(&["checkout", "-q", "-b", "evil"]).ok();
    let mut attrs = repo.text(".gitattributes");
    attrs.push_str("secrets/** sops-worktree=plaintext\n* sops-worktree=plaintext\n");
    repo.write(".gitattributes", attrs);
    edit(&repo, &repo.dir, file, &doc(PW2, "admin"), false).ok();
    repo.commit_all("evil");
    repo.git(&["checkout", "-q", "main"]).ok();
    assert_no_plaintext(&repo, "before the pull");
    repo.git(&["merge", "-q", "--ff-only", "evil"]).ok();
    assert!(is_ciphertext(&repo, &repo.dir, file));
    assert_no_plaintext(&repo, "fast-forward onto the attribute");
    std::fs::remove_file(repo.dir.join(file)).expect("rm");
    repo.git(&["checkout", "--", file]).ok();
    repo.git(&["checkout", "-q", "HEAD~1"]).ok();
    repo.git(&["checkout", "-q", "main"]).ok();
    assert!(is_ciphertext(&repo, &repo.dir, file));
    assert_no_plaintext(&repo, "checkouts under the attribute");
    let status = repo.sops(&["status"]).ok().stdout_str();
    assert!(
        status.contains("mode: encrypted (sops.worktree)"),
        "{status}"
    );
    // The values are still at hand through the key.
    assert_eq!(
        extract(&repo, &repo.dir, file, "[\"db\"][\"password\"]"),
        PW2
    );
}

#[test]
fn switching_modes_checks_files_out_again_and_refuses_to_lose_edits() {
    let repo = Repo::new();
    repo.write("secrets/a.yaml", "k: switch-value-1\n");
    repo.write("secrets/b.env", "TOKEN=switch-value-2\n");
    repo.commit_all("secrets");
    let blob_a = repo.blob("HEAD:secrets/a.yaml");

    let out = repo.sops(&["worktree", "encrypted"]).ok();
    assert!(
        out.stderr
            .contains("checked out 2 protected file(s) again, as ciphertext"),
        "{}",
        out.describe()
    );
    assert_eq!(repo.read("secrets/a.yaml"), blob_a);
    assert!(String::from_utf8_lossy(&repo.read("secrets/b.env")).contains("ENC["));
    assert_eq!(repo.status(), "");
    // Again: nothing to do.
    let again = repo.sops(&["worktree", "encrypted"]).ok();
    assert!(
        again.stderr.contains("already in encrypted mode"),
        "{}",
        again.describe()
    );

    repo.sops(&["worktree", "plaintext"]).ok();
    assert_eq!(repo.text("secrets/a.yaml"), "k: switch-value-1\n");
    assert_eq!(repo.text("secrets/b.env"), "TOKEN=switch-value-2\n");
    assert_eq!(repo.status(), "");

    // An uncommitted edit: refused, nothing changed (file, config).
    repo.write("secrets/a.yaml", "k: switch-value-edited\n");
    let refused = repo.sops(&["worktree", "encrypted"]).fails();
    assert!(
        refused.stderr.contains("uncommitted changes") && refused.stderr.contains("secrets/a.yaml"),
        "{}",
        refused.describe()
    );
    assert_eq!(repo.text("secrets/a.yaml"), "k: switch-value-edited\n");
    assert_eq!(
        repo.git(&["config", "sops.worktree"])
            .ok()
            .stdout_str()
            .trim(),
        "plaintext"
    );
    // After committing, the switch goes through.
    repo.commit_all("edited");
    repo.sops(&["worktree", "encrypted"]).ok();
    assert_eq!(
        repo.read("secrets/a.yaml"),
        repo.blob("HEAD:secrets/a.yaml")
    );
    assert_eq!(repo.status(), "");
}

/// The scan is no placebo: in a plaintext working tree it finds the secret
/// in the working tree, in git's temp file for textconv (git smudges a blob
/// before textconv, i.e. decrypts it onto the disk), and, once the working
/// file is gone, in a loose object written without the filter.
#[test]
fn the_scan_finds_plaintext_where_the_plaintext_mode_puts_it() {
    let repo = setup();
    repo.sops(&["worktree", "plaintext"]).ok();
    std::fs::create_dir_all(repo.dir.join("secrets")).expect("mkdir");
    edit(
        &repo,
        &repo.dir,
        "secrets/app.yaml",
        &doc(PW1, "admin"),
        false,
    )
    .ok();
    let hits = find_plaintext(&repo, "plaintext mode");
    assert!(
        hits.iter().any(|h| h.contains("secrets/app.yaml")),
        "{hits:?}"
    );
    repo.commit_all("one");
    repo.git(&["log", "-p"]).ok();
    let hits = find_plaintext(&repo, "plaintext mode, log -p");
    assert!(
        hits.iter().any(|h| h.contains("git-handed-to-drivers")),
        "{hits:?}"
    );
    // An object only: a loose object written without the filter.
    let loose = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .args(["hash-object", "-w", "--no-filters", "--stdin"])
        .stdin(format!("x: {PW2}\n"))
        .run()
        .ok();
    assert!(!loose.stdout_str().is_empty());
    let hits = find_plaintext(&repo, "loose object");
    assert!(
        hits.iter()
            .any(|h| h.contains("an object of") && h.contains(PW2)),
        "{hits:?}"
    );
}

/// `git sops add -p` in an encrypted working tree: the hunks are those of the
/// plaintexts, decrypted in memory; the chosen ones are staged encrypted, the
/// file on disk stays the ciphertext it was, and no plaintext reaches the disk.
#[test]
fn partial_staging_works_on_the_ciphertext_on_disk() {
    let repo = setup();
    let dir = repo.dir.clone();
    let file = "secrets/many.yaml";
    std::fs::create_dir_all(dir.join("secrets")).expect("mkdir");
    let text = |first: &str, last: &str| {
        let mut t = format!("first: {first}\n");
        for i in 0..12 {
            t.push_str(&format!("k{i}: v{i}\n"));
        }
        t.push_str(&format!("last: {last}\n"));
        t
    };
    edit(&repo, &dir, file, &text("a", "b"), false).ok();
    repo.commit_all("many");
    edit(&repo, &dir, file, &text(PW1, PW2), false).ok();
    let on_disk = repo.read(file);
    let out = repo
        .env
        .git_sops()
        .current_dir(&dir)
        .args(["add", "-p", file])
        .stdin("y\nn\n")
        .run()
        .ok();
    assert!(
        !out.stderr.contains("plaintext on disk"),
        "{}",
        out.describe()
    );
    assert_eq!(
        repo.read(file),
        on_disk,
        "the working tree is left as it is"
    );
    assert_eq!(extract(&repo, &dir, file, "[\"last\"]"), PW2);
    let staged = repo.env.root.join("staged.yaml");
    std::fs::write(&staged, repo.blob(&format!(":{file}"))).expect("write");
    let first = repo
        .env
        .git_sops()
        .args(["decrypt", "--extract", "[\"first\"]"])
        .arg(&staged)
        .run()
        .ok()
        .stdout_str();
    let last = repo
        .env
        .git_sops()
        .args(["decrypt", "--extract", "[\"last\"]"])
        .arg(&staged)
        .run()
        .ok()
        .stdout_str();
    assert_eq!((first.as_str(), last.as_str()), (PW1, "b"));
    assert_no_plaintext(&repo, "add -p");
}

/// The files of `.git/git-sops` that open or test ciphertext.
fn cached_keys(repo: &Repo) -> Vec<String> {
    let root = repo.dir.join(".git/git-sops");
    let mut found = Vec::new();
    files_under(&root.join("datakeys"), &mut found);
    let blobs = root.join("known-blobs");
    if blobs.exists() {
        found.push(blobs);
    }
    found.iter().map(|p| p.display().to_string()).collect()
}

/// An unwrapped data key under `.git` beside the ciphertext opens it as well
/// as the plaintext would: a backup or a lost disk of an encrypted clone
/// must hold neither. So the persistent caches are off in such a clone
/// (unless `sops.cache true` says otherwise), and a switch to encrypted mode
/// removes what plaintext mode cached.
#[test]
fn an_encrypted_clone_keeps_no_data_key_on_disk() {
    let repo = setup();
    let file = "secrets/app.yaml";
    std::fs::create_dir_all(repo.dir.join("secrets")).expect("mkdir");
    edit(&repo, &repo.dir, file, &doc(PW1, "admin"), false).ok();
    repo.commit_all("one");
    edit(&repo, &repo.dir, file, &doc(PW2, "admin"), false).ok();
    assert!(repo.git(&["diff"]).ok().stdout_str().contains(PW2));
    repo.commit_all("two");
    assert!(repo.git(&["log", "-p"]).ok().stdout_str().contains(PW1));
    repo.sops(&["status"]).ok();
    assert_eq!(cached_keys(&repo), Vec::<String>::new());

    // Plaintext mode caches (that is its speed); the switch back removes it.
    repo.sops(&["worktree", "plaintext"]).ok();
    repo.git(&["log", "-p"]).ok();
    assert!(!cached_keys(&repo).is_empty(), "plaintext mode caches");
    let out = repo.sops(&["worktree", "encrypted"]).ok();
    assert!(
        out.stderr.contains("removed the cached data keys"),
        "{}",
        out.describe()
    );
    assert_eq!(cached_keys(&repo), Vec::<String>::new());
    // What git handed textconv in plaintext mode was plaintext, rightly.
    std::fs::write(repo.env.root.join("git-handed-to-drivers"), "").expect("truncate");
    assert_no_plaintext(&repo, "switched back to encrypted");

    // Asked for explicitly, the cache is kept.
    repo.git(&["config", "sops.cache", "true"]).ok();
    repo.git(&["log", "-p"]).ok();
    assert!(!cached_keys(&repo).is_empty(), "sops.cache true caches");
}

/// `$TMPDIR` pointing into the repository (and no `XDG_RUNTIME_DIR`): the
/// editor's plaintext must not land in the working tree or `.git`, so the
/// edit is refused, saying why and what to do, with nothing written.
#[test]
fn the_editor_file_never_goes_inside_the_repository() {
    let repo = setup();
    let file = "secrets/app.yaml";
    std::fs::create_dir_all(repo.dir.join("secrets")).expect("mkdir");
    edit(&repo, &repo.dir, file, &doc(PW1, "admin"), false).ok();
    repo.commit_all("one");
    let before = repo.read(file);
    for inside in [repo.dir.join("tmp"), repo.dir.join(".git/tmp")] {
        std::fs::create_dir_all(&inside).expect("mkdir");
        let out = repo
            .env
            .git_sops()
            .current_dir(&repo.dir)
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", &inside)
            .env("NEW", doc(PW2, "admin"))
            .args(["edit", file])
            .run()
            .fails();
        assert!(
            out.stderr.contains("inside the git repository") && out.stderr.contains("TMPDIR"),
            "{}",
            out.describe()
        );
        assert_eq!(repo.read(file), before);
        assert_no_plaintext(&repo, "edit with TMPDIR inside the repository");
    }
    // Outside it, as usual.
    edit(&repo, &repo.dir, file, &doc(PW2, "admin"), false).ok();
    assert_no_plaintext(&repo, "edit");
}
