//! The merge driver (`merge.sops.driver = git-sops merge %O %A %B %L %P`) against
//! real git, real sops 3.11 and age: merges, rebases and cherry-picks of branches
//! that both touched a protected file merge by value; overlapping edits conflict
//! without plaintext ever reaching the object store; locked clones merge what
//! they can and fail cleanly otherwise; dotenv, JSON and binary files; a data-key
//! rotation on one branch.

mod common;

use std::collections::BTreeSet;

use common::{Env, Repo};

const YAML: &str = "# database settings
db:
  host: db.internal
  user: admin
  password: hunter2 # rotate quarterly
  port: 5432
api:
  token: tok-api-7f3a
  webhook_secret: whsec_base_1
smtp:
  password: smtp-pass-base
";

/// Every plaintext value of [`YAML`] and the edits the tests make.
const SECRETS: [&str; 12] = [
    "hunter2",
    "rotate quarterly",
    "tok-api-7f3a",
    "whsec_base_1",
    "smtp-pass-base",
    "db.internal",
    "hunter3",
    "hunter4",
    "root-user",
    "smtp-pass-new",
    "tok-api-ours",
    "resolved-pw",
];

impl Repo {
    /// Decrypt a blob with git-sops.
    fn decrypt(&self, blob: &[u8], input_type: &str) -> Vec<u8> {
        self.env
            .git_sops()
            .args(["decrypt", "--input-type", input_type])
            .stdin(blob)
            .run()
            .ok()
            .stdout
    }

    /// Decrypt a blob with the reference sops (output in its own layout).
    fn sops_decrypt(&self, blob: &[u8], input_type: &str) -> String {
        self.env
            .sops()
            .args([
                "decrypt",
                "--input-type",
                input_type,
                "--output-type",
                input_type,
                "/dev/stdin",
            ])
            .stdin(blob)
            .run()
            .ok()
            .stdout_str()
    }

    /// The base commit: `secrets/app.yaml` and a README, on `main`.
    fn with_base(self) -> Repo {
        self.write("secrets/app.yaml", YAML);
        self.write("README", "docs\n");
        self.commit_all("base");
        self
    }

    /// On a new branch `name` from `from`: edit, commit, come back to `main`.
    fn branch(&self, name: &str, from: &str, edit: impl FnOnce(&Repo)) {
        self.git(&["checkout", "-q", "-b", name, from]).ok();
        edit(self);
        self.commit_all(name);
        self.git(&["checkout", "-q", "main"]).ok();
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.text(rel);
        assert!(text.contains(from), "{rel} has no {from:?}:\n{text}");
        self.write(rel, text.replacen(from, to, 1));
    }

    /// Every object in the repository, printed.
    fn all_objects(&self) -> Vec<u8> {
        self.git(&["cat-file", "--batch-all-objects", "--batch"])
            .ok()
            .stdout
    }

    fn assert_no_plaintext_in_objects(&self, secrets: &[&str]) {
        let objects = self.all_objects();
        let text = String::from_utf8_lossy(&objects);
        for s in secrets {
            assert!(
                !text.contains(s),
                "plaintext {s:?} reached the object store"
            );
        }
        for marker in ["<<<<<<<", ">>>>>>>"] {
            assert!(
                !text.contains(marker),
                "a conflict marker (plaintext) reached the object store"
            );
        }
    }

    /// The conflict envelopes among all objects.
    fn envelopes(&self) -> Vec<Vec<u8>> {
        let list = self
            .git(&["cat-file", "--batch-all-objects", "--batch-check"])
            .ok()
            .stdout_str();
        list.lines()
            .filter(|l| l.split(' ').nth(1) == Some("blob"))
            .filter_map(|l| l.split(' ').next())
            .map(|id| self.blob(id))
            .filter(|b| b.starts_with(b"{\n\t\"git_sops_conflict\": \"ENC["))
            .collect()
    }
}

fn enc_values(blob: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(blob);
    let mut out = BTreeSet::new();
    let mut rest = &text[..];
    while let Some(i) = rest.find("ENC[") {
        let end = rest[i..].find(']').map_or(rest.len(), |e| i + e + 1);
        out.insert(rest[i..end].to_string());
        rest = &rest[end..];
    }
    out
}

/// The lines of a raw (no textconv) diff between two commits for one path,
/// without `lastmodified` (whole seconds: it changes or not with the clock).
fn raw_changes(repo: &Repo, from: &str, to: &str, path: &str) -> Vec<String> {
    repo.git(&["diff", "--no-textconv", from, to, "--", path])
        .ok()
        .stdout_str()
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
                && !l.contains("lastmodified")
        })
        .map(str::to_string)
        .collect()
}

fn two_edits_on_each_side(repo: &Repo) {
    repo.branch("feature", "main", |r| {
        r.edit("secrets/app.yaml", "hunter2", "hunter3");
        r.edit("secrets/app.yaml", "smtp-pass-base", "smtp-pass-new");
    });
    repo.edit("secrets/app.yaml", "user: admin", "user: root-user");
    repo.edit("secrets/app.yaml", "tok-api-7f3a", "tok-api-ours");
    repo.commit_all("ours");
}

const MERGED: &str = "# database settings
db:
  host: db.internal
  user: root-user
  password: hunter3 # rotate quarterly
  port: 5432
api:
  token: tok-api-ours
  webhook_secret: whsec_base_1
smtp:
  password: smtp-pass-new
";

#[test]
fn edits_to_different_keys_merge_by_value() {
    let repo = Repo::new().with_base();
    two_edits_on_each_side(&repo);
    let out = repo.git(&["merge", "--no-edit", "feature"]).ok();
    assert!(!out.stderr.contains("CONFLICT"), "{}", out.describe());
    assert_eq!(repo.text("secrets/app.yaml"), MERGED);
    assert_eq!(repo.status(), "");

    let merged = repo.blob("HEAD:secrets/app.yaml");
    assert_eq!(repo.decrypt(&merged, "yaml"), MERGED.as_bytes());
    // The reference sops reads the merged file.
    let by_sops = repo.sops_decrypt(&merged, "yaml");
    for v in [
        "root-user",
        "hunter3",
        "tok-api-ours",
        "smtp-pass-new",
        "whsec_base_1",
    ] {
        assert!(by_sops.contains(v), "sops output lacks {v}:\n{by_sops}");
    }
    assert!(!by_sops.contains("hunter2") && !by_sops.contains("smtp-pass-base"));

    // Every value keeps the exact ciphertext one side had: unchanged values
    // their base ENC, edited values the ENC of the side that edited them.
    let (base, ours, theirs) = (
        enc_values(&repo.blob("HEAD~1~1:secrets/app.yaml")),
        enc_values(&repo.blob("HEAD^1:secrets/app.yaml")),
        enc_values(&repo.blob("HEAD^2:secrets/app.yaml")),
    );
    let merged_encs = enc_values(&merged);
    let mac = |set: &BTreeSet<String>| set.iter().filter(|e| e.len() > 200).count();
    for e in merged_encs.iter().filter(|e| e.len() < 200) {
        assert!(
            ours.contains(e) || theirs.contains(e),
            "a value got new ciphertext: {e}"
        );
    }
    let unchanged: Vec<_> = base
        .iter()
        .filter(|e| ours.contains(*e) && theirs.contains(*e))
        .collect();
    assert!(unchanged.len() >= 4, "{unchanged:?}");
    for e in unchanged {
        assert!(merged_encs.contains(e));
    }
    assert_eq!(mac(&merged_encs), 1);
    // Relative to ours, the stored file changed only their two values, mac and
    // lastmodified.
    let changes = raw_changes(&repo, "HEAD^1", "HEAD", "secrets/app.yaml");
    assert_eq!(changes.len(), 6, "{changes:#?}");
    for l in &changes {
        assert!(
            ["password:", "mac:"].iter().any(|k| l.contains(k)),
            "unexpected raw change {l}"
        );
    }
    repo.assert_no_plaintext_in_objects(&SECRETS);
}

#[test]
fn overlapping_edits_conflict_without_plaintext_in_the_object_store() {
    let repo = Repo::new().with_base();
    repo.branch("feature", "main", |r| {
        r.edit("secrets/app.yaml", "hunter2", "hunter3");
        r.edit("secrets/app.yaml", "smtp-pass-base", "smtp-pass-new");
    });
    repo.edit("secrets/app.yaml", "hunter2", "hunter4");
    repo.commit_all("ours");
    let out = repo.git(&["merge", "--no-edit", "feature"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("git-sops: CONFLICT in secrets/app.yaml: both sides changed the same lines (1 conflict)"),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("`git add secrets/app.yaml`"));
    assert!(out
        .stdout_str()
        .contains("CONFLICT (content): Merge conflict in secrets/app.yaml"));

    // %A went into the object store (git writes it even on a conflict): it is
    // the encrypted envelope, which git-sops and sops both decrypt.
    repo.assert_no_plaintext_in_objects(&SECRETS);
    let envelopes = repo.envelopes();
    assert_eq!(envelopes.len(), 1, "one conflict envelope");
    let expected = "# database settings
db:
  host: db.internal
  user: admin
<<<<<<< ours
  password: hunter4 # rotate quarterly
=======
  password: hunter3 # rotate quarterly
>>>>>>> theirs
  port: 5432
api:
  token: tok-api-7f3a
  webhook_secret: whsec_base_1
smtp:
  password: smtp-pass-new
";
    let opened = repo.decrypt(&envelopes[0], "json");
    let value: serde_json::Value = serde_json::from_slice(&opened).expect("JSON");
    assert_eq!(value["git_sops_conflict"], expected);
    let by_sops = repo.sops_decrypt(&envelopes[0], "json");
    let value: serde_json::Value = serde_json::from_str(&by_sops).expect("JSON");
    assert_eq!(value["git_sops_conflict"], expected);
    // Encrypted for ours' recipients.
    let envelope = String::from_utf8(envelopes[0].clone()).expect("utf8");
    let ours = String::from_utf8(repo.blob("HEAD:secrets/app.yaml")).expect("utf8");
    let recipient = ours
        .lines()
        .find_map(|l| l.trim().strip_prefix("- recipient: "))
        .expect("recipient");
    assert!(envelope.contains(recipient), "{envelope}");

    // The working tree holds the plaintext with markers (smudge opens the envelope).
    assert_eq!(repo.text("secrets/app.yaml"), expected);
    // Status and the combined diff work during the conflict; an unresolved
    // file cannot be added.
    assert!(repo.status().contains("UU secrets/app.yaml"));
    let diff = repo.git(&["diff"]).ok().stdout_str();
    assert!(
        diff.contains("++<<<<<<< ours\n +  password: hunter4"),
        "{diff}"
    );
    let add = repo.git(&["add", "secrets/app.yaml"]).fails();
    assert!(
        add.stderr.contains("secrets/app.yaml")
            && add
                .stderr
                .contains("unresolved merge conflict markers (line "),
        "{}",
        add.describe()
    );

    // Staging the envelope itself (by going around the filter) is caught by the guard.
    let oid = repo
        .env
        .tool("git")
        .current_dir(&repo.dir)
        .args(["hash-object", "-w", "--no-filters", "--stdin"])
        .stdin(&envelopes[0])
        .run()
        .ok()
        .stdout_str();
    let cacheinfo = format!("100644,{},secrets/app.yaml", oid.trim());
    repo.git(&["update-index", "--cacheinfo", &cacheinfo]).ok();
    let check = repo.sops(&["check", "--staged"]).fails();
    let report = format!("{}{}", check.stdout_str(), check.stderr);
    assert!(
        report.contains("secrets/app.yaml") && report.contains("merge-conflict envelope"),
        "{}",
        check.describe()
    );

    // Resolve, commit: encrypted with ours as the template.
    let resolved = MERGED_CONFLICT_RESOLVED;
    repo.write("secrets/app.yaml", resolved);
    repo.git(&["add", "secrets/app.yaml"]).ok();
    repo.git(&["commit", "-q", "--no-edit"]).ok();
    assert_eq!(repo.status(), "");
    let blob = repo.blob("HEAD:secrets/app.yaml");
    assert_eq!(repo.decrypt(&blob, "yaml"), resolved.as_bytes());
    assert!(repo.sops_decrypt(&blob, "yaml").contains("resolved-pw"));
    // Values nobody touched keep ours' ciphertext.
    let ours_encs = enc_values(&repo.blob("HEAD^1:secrets/app.yaml"));
    let kept = enc_values(&blob).intersection(&ours_encs).count();
    assert!(kept >= 5, "only {kept} values kept their ciphertext");
    repo.assert_no_plaintext_in_objects(&SECRETS);
}

const MERGED_CONFLICT_RESOLVED: &str = "# database settings
db:
  host: db.internal
  user: admin
  password: resolved-pw # rotate quarterly
  port: 5432
api:
  token: tok-api-7f3a
  webhook_secret: whsec_base_1
smtp:
  password: smtp-pass-new
";

#[test]
fn rebase_and_cherry_pick_use_the_driver() {
    let repo = Repo::new().with_base();
    two_edits_on_each_side(&repo);
    // Rebase feature onto main.
    repo.git(&["checkout", "-q", "feature"]).ok();
    let out = repo.git(&["rebase", "main"]).ok();
    assert!(!out.stderr.contains("CONFLICT"), "{}", out.describe());
    assert_eq!(repo.text("secrets/app.yaml"), MERGED);
    assert_eq!(repo.status(), "");
    let blob = repo.blob("HEAD:secrets/app.yaml");
    assert_eq!(repo.decrypt(&blob, "yaml"), MERGED.as_bytes());

    // Cherry-pick feature's original commit onto main.
    repo.git(&["checkout", "-q", "main"]).ok();
    let picked = repo.git(&["rev-parse", "feature@{1}"]).ok().stdout_str();
    let out = repo.git(&["cherry-pick", picked.trim()]).ok();
    assert!(!out.stderr.contains("CONFLICT"), "{}", out.describe());
    assert_eq!(repo.text("secrets/app.yaml"), MERGED);
    assert_eq!(repo.status(), "");
    repo.assert_no_plaintext_in_objects(&SECRETS);
}

/// A clone of `repo` with the drivers installed but no key.
fn locked_clone(repo: &Repo) -> Repo {
    let mut env = Env::new();
    env.use_git();
    env.git_sops().args(["install", "--global"]).run().ok();
    let dir = env.work.join("locked");
    env.tool("git")
        .args([
            "clone",
            "-q",
            repo.dir.to_str().expect("utf8"),
            dir.to_str().expect("utf8"),
        ])
        .run()
        .ok();
    Repo {
        env,
        dir,
        key: repo.key.clone(),
    }
}

#[test]
fn a_locked_clone_merges_one_sided_changes_and_fails_cleanly_on_conflicts() {
    let repo = Repo::new().with_base();
    repo.branch("one", "main", |r| {
        r.edit("secrets/app.yaml", "hunter2", "hunter3")
    });
    repo.branch("two", "main", |r| {
        r.edit("secrets/app.yaml", "hunter2", "hunter4")
    });
    repo.branch("docs", "main", |r| r.write("README", "more docs\n"));
    let locked = locked_clone(&repo);
    let ciphertext_one = locked.blob("origin/one:secrets/app.yaml");

    // Only one side changed the secret: merges, stays encrypted.
    locked
        .git(&["checkout", "-q", "-b", "l1", "origin/docs"])
        .ok();
    locked.git(&["merge", "--no-edit", "origin/one"]).ok();
    assert_eq!(locked.read("secrets/app.yaml"), ciphertext_one);
    assert_eq!(locked.status(), "");

    // Both changed it: a clean conflict, ours stays (encrypted) in the working tree.
    locked
        .git(&["checkout", "-q", "-b", "l2", "origin/one"])
        .ok();
    let out = locked.git(&["merge", "--no-edit", "origin/two"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("git-sops: CONFLICT in secrets/app.yaml: both sides changed it and no key available here opens our version"),
        "{}",
        out.describe()
    );
    assert!(out
        .stderr
        .contains("git checkout --ours -- secrets/app.yaml"));
    assert!(!out.stderr.contains("panicked"));
    assert_eq!(locked.read("secrets/app.yaml"), ciphertext_one);
    locked.git(&["merge", "--abort"]).ok();
    assert_eq!(locked.status(), "");

    // The driver's fast paths need no key.
    let base = locked.blob("origin/main:secrets/app.yaml");
    let two = locked.blob("origin/two:secrets/app.yaml");
    let driver = |o: &[u8], a: &[u8], b: &[u8]| {
        locked.write("O.tmp", o);
        locked.write("A.tmp", a);
        locked.write("B.tmp", b);
        let out = locked
            .env
            .git_sops()
            .current_dir(&locked.dir)
            .args(["merge", "O.tmp", "A.tmp", "B.tmp", "7", "secrets/app.yaml"])
            .run();
        out.assert_no_panic();
        (out.code, locked.read("A.tmp"), out.stderr)
    };
    assert_eq!(
        driver(&base, &base, &two),
        (Some(0), two.clone(), String::new())
    );
    assert_eq!(
        driver(&base, &two, &base),
        (Some(0), two.clone(), String::new())
    );
    assert_eq!(
        driver(&base, &two, &two),
        (Some(0), two.clone(), String::new())
    );
    let (code, a, stderr) = driver(&base, &ciphertext_one, &two);
    assert_eq!((code, a), (Some(1), ciphertext_one.clone()));
    assert!(stderr.contains("no key available here"), "{stderr}");
}

#[test]
fn dotenv_ini_and_json_files_merge_by_value() {
    let repo = Repo::new();
    let env = "DB_USER=admin\nDB_PASSWORD=hunter2\n# the API\nAPI_TOKEN=tok-api-7f3a\nSMTP_PASSWORD=smtp-pass-base\n";
    let json = "{\n  \"db\": {\n    \"user\": \"admin\",\n    \"password\": \"hunter2\"\n  },\n  \"retries\": 3,\n  \"token\": \"tok-api-7f3a\"\n}\n";
    repo.write("secrets/app.env", env);
    repo.write("secrets/app.json", json);
    let ini = "[db]\nuser = admin\npassword = hunter2\n\n[api]\n; the API\ntoken = tok-api-7f3a\n";
    repo.write("secrets/app.ini", ini);
    repo.commit_all("base");
    repo.branch("feature", "main", |r| {
        r.edit("secrets/app.env", "smtp-pass-base", "smtp-pass-new");
        r.edit("secrets/app.json", "tok-api-7f3a", "tok-api-theirs");
        r.edit("secrets/app.ini", "tok-api-7f3a", "tok-api-theirs");
    });
    repo.edit("secrets/app.env", "DB_USER=admin", "DB_USER=root-user");
    repo.edit("secrets/app.json", "\"admin\"", "\"root-user\"");
    repo.edit("secrets/app.ini", "user = admin", "user = root-user");
    repo.commit_all("ours");
    let out = repo.git(&["merge", "--no-edit", "feature"]).ok();
    assert!(!out.stderr.contains("CONFLICT"), "{}", out.describe());
    let env_merged = "DB_USER=root-user\nDB_PASSWORD=hunter2\n# the API\nAPI_TOKEN=tok-api-7f3a\nSMTP_PASSWORD=smtp-pass-new\n";
    let json_merged = "{\n  \"db\": {\n    \"user\": \"root-user\",\n    \"password\": \"hunter2\"\n  },\n  \"retries\": 3,\n  \"token\": \"tok-api-theirs\"\n}\n";
    assert_eq!(repo.text("secrets/app.env"), env_merged);
    assert_eq!(repo.text("secrets/app.json"), json_merged);
    let ini_merged =
        "[db]\nuser = root-user\npassword = hunter2\n\n[api]\n; the API\ntoken = tok-api-theirs\n";
    assert_eq!(repo.text("secrets/app.ini"), ini_merged);
    assert_eq!(repo.status(), "");
    for (path, ty, plain) in [
        ("secrets/app.env", "dotenv", env_merged),
        ("secrets/app.json", "json", json_merged),
        ("secrets/app.ini", "ini", ini_merged),
    ] {
        let blob = repo.blob(&format!("HEAD:{path}"));
        assert_eq!(repo.decrypt(&blob, ty), plain.as_bytes(), "{path}");
        let by_sops = repo.sops_decrypt(&blob, ty);
        assert!(by_sops.contains("root-user"), "{path}: {by_sops}");
        let changes = raw_changes(&repo, "HEAD^1", "HEAD", path);
        assert_eq!(
            changes.len(),
            4,
            "{path}: their value and the MAC: {changes:#?}"
        );
    }
    repo.assert_no_plaintext_in_objects(&SECRETS);

    // A dotenv conflict: the markers reach the working tree, never the store.
    repo.branch("f2", "main", |r| {
        r.edit("secrets/app.env", "hunter2", "hunter3")
    });
    repo.edit("secrets/app.env", "hunter2", "hunter4");
    repo.commit_all("ours 2");
    let out = repo.git(&["merge", "--no-edit", "f2"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("CONFLICT in secrets/app.env"));
    assert!(repo.text("secrets/app.env").contains(
        "<<<<<<< ours\nDB_PASSWORD=hunter4\n=======\nDB_PASSWORD=hunter3\n>>>>>>> theirs\n"
    ));
    repo.assert_no_plaintext_in_objects(&SECRETS);
    repo.git(&["merge", "--abort"]).ok();
}

#[test]
fn binary_files_take_fast_paths_merge_text_and_conflict_otherwise() {
    let repo = Repo::new();
    repo.write("secrets/key.bin", b"\xff\x00hunter2\x01");
    repo.write(
        "secrets/notes.txt",
        "line 1\nline 2 hunter2\nline 3\nline 4\n",
    );
    repo.write("README", "docs\n");
    repo.commit_all("base");
    repo.branch("feature", "main", |r| {
        r.write("secrets/key.bin", b"\xff\x00hunter3\x01");
        r.edit("secrets/notes.txt", "line 4", "line 4 smtp-pass-new");
    });
    repo.write("secrets/key.bin", b"\xff\x00hunter4\x01");
    repo.edit("secrets/notes.txt", "line 1", "line 1 root-user");
    repo.commit_all("ours");
    let out = repo.git(&["merge", "--no-edit", "feature"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    // Text merges line by line.
    assert!(
        !out.stderr.contains("CONFLICT in secrets/notes.txt"),
        "{}",
        out.describe()
    );
    assert_eq!(
        repo.text("secrets/notes.txt"),
        "line 1 root-user\nline 2 hunter2\nline 3\nline 4 smtp-pass-new\n"
    );
    // Non-text bytes conflict: ours stays, with advice.
    assert!(
        out.stderr
            .contains("git-sops: CONFLICT in secrets/key.bin: both sides changed this binary file"),
        "{}",
        out.describe()
    );
    assert!(out
        .stderr
        .contains("git checkout --theirs -- secrets/key.bin"));
    assert_eq!(repo.read("secrets/key.bin"), b"\xff\x00hunter4\x01");
    repo.assert_no_plaintext_in_objects(&SECRETS);
    repo.git(&["checkout", "--theirs", "--", "secrets/key.bin"])
        .ok();
    assert_eq!(repo.read("secrets/key.bin"), b"\xff\x00hunter3\x01");
    repo.git(&["add", "secrets/key.bin"]).ok();
    repo.git(&["commit", "-q", "--no-edit"]).ok();
    assert_eq!(repo.status(), "");
    let blob = repo.blob("HEAD:secrets/key.bin");
    assert_eq!(repo.decrypt(&blob, "binary"), b"\xff\x00hunter3\x01");
    let notes = repo.blob("HEAD:secrets/notes.txt");
    assert_eq!(
        repo.decrypt(&notes, "binary"),
        b"line 1 root-user\nline 2 hunter2\nline 3\nline 4 smtp-pass-new\n"
    );
    repo.assert_no_plaintext_in_objects(&SECRETS);

    // The fast paths, through the driver directly.
    let base = repo.blob("HEAD~1~1:secrets/key.bin");
    let theirs = repo.blob("feature:secrets/key.bin");
    for (o, a, b, want) in [
        (&base, &base, &theirs, &theirs),
        (&base, &theirs, &base, &theirs),
    ] {
        repo.write("O.tmp", o);
        repo.write("A.tmp", a);
        repo.write("B.tmp", b);
        repo.sops(&["merge", "O.tmp", "A.tmp", "B.tmp", "7", "secrets/key.bin"])
            .ok();
        assert_eq!(&repo.read("A.tmp"), want);
    }
}

/// Rotate a committed file the way a user of a locked-down branch would: the
/// ciphertext from the index, `git sops rotate`, committed as it is.
fn rotate(repo: &Repo, path: &str) {
    let tmp = repo.env.root.join("rotate.yaml");
    std::fs::write(&tmp, repo.blob(&format!("HEAD:{path}"))).expect("write");
    repo.sops(&["rotate", "-i", tmp.to_str().expect("utf8")])
        .ok();
    std::fs::copy(&tmp, repo.dir.join(path)).expect("copy");
}

#[test]
fn a_rotation_on_their_branch_and_an_edit_on_ours() {
    let repo = Repo::new().with_base();
    repo.branch("rotated", "main", |r| rotate(r, "secrets/app.yaml"));
    let rotated = repo.blob("rotated:secrets/app.yaml");
    assert_ne!(rotated, repo.blob("main:secrets/app.yaml"));
    repo.edit("secrets/app.yaml", "hunter2", "hunter3");
    repo.commit_all("ours");
    let out = repo.git(&["merge", "--no-edit", "rotated"]).ok();
    assert!(!out.stderr.contains("CONFLICT"), "{}", out.describe());
    let expected = YAML.replace("hunter2", "hunter3");
    assert_eq!(repo.text("secrets/app.yaml"), expected);
    assert_eq!(repo.status(), "");
    let merged = repo.blob("HEAD:secrets/app.yaml");
    assert_eq!(repo.decrypt(&merged, "yaml"), expected.as_bytes());
    assert!(repo.sops_decrypt(&merged, "yaml").contains("hunter3"));
    // Their new data key: the wrapped key is theirs, values they did not
    // change keep their (rotated) ciphertext.
    let wrapped = |blob: &[u8]| {
        String::from_utf8_lossy(blob)
            .split("-----BEGIN AGE ENCRYPTED FILE-----")
            .nth(1)
            .and_then(|rest| rest.split("-----END").next())
            .expect("an age key")
            .to_string()
    };
    assert_eq!(wrapped(&merged), wrapped(&rotated));
    let kept = enc_values(&merged)
        .intersection(&enc_values(&rotated))
        .count();
    assert!(kept >= 5, "only {kept} values kept the rotated ciphertext");
    assert!(enc_values(&merged)
        .intersection(&enc_values(&repo.blob("HEAD^1:secrets/app.yaml")))
        .next()
        .is_none());
    repo.assert_no_plaintext_in_objects(&SECRETS);
}

#[test]
fn a_file_added_on_both_branches() {
    let repo = Repo::new().with_base();
    // Same plaintext, encrypted twice (different data keys): merges.
    repo.branch("feature", "main", |r| {
        r.write("secrets/new.yaml", "a: hunter3\nb: 2\n")
    });
    repo.write("secrets/new.yaml", "a: hunter3\nb: 2\n");
    repo.commit_all("ours");
    assert_ne!(
        repo.blob("main:secrets/new.yaml"),
        repo.blob("feature:secrets/new.yaml")
    );
    repo.git(&["merge", "--no-edit", "feature"]).ok();
    assert_eq!(repo.text("secrets/new.yaml"), "a: hunter3\nb: 2\n");
    assert_eq!(
        repo.blob("HEAD:secrets/new.yaml"),
        repo.blob("HEAD^1:secrets/new.yaml")
    );
    // Different plaintexts: only the differing lines conflict.
    repo.branch("f2", "main", |r| {
        r.write("secrets/other.yaml", "a: 1\nb: hunter3\nc: 3\n")
    });
    repo.write("secrets/other.yaml", "a: 1\nb: hunter4\nc: 3\n");
    repo.commit_all("ours 2");
    let out = repo.git(&["merge", "--no-edit", "f2"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert_eq!(
        repo.text("secrets/other.yaml"),
        "a: 1\n<<<<<<< ours\nb: hunter4\n=======\nb: hunter3\n>>>>>>> theirs\nc: 3\n"
    );
    repo.assert_no_plaintext_in_objects(&SECRETS);
}

#[test]
fn install_and_init_configure_the_merge_driver() {
    let repo = Repo::new();
    let get = |k: &str| repo.git(&["config", "--get", k]).ok().stdout_str();
    assert_eq!(
        get("merge.sops.driver").trim(),
        "git-sops merge %O %A %B %L %P"
    );
    assert!(!get("merge.sops.name").trim().is_empty());
    let attributes = repo.text(".gitattributes");
    assert_eq!(
        attributes,
        "secrets/** filter=sops diff=sops merge=sops -text\n.gitattributes -filter -diff -merge\n.sops.yaml -filter -diff -merge\n"
    );
    // An older line without the merge driver is upgraded, once.
    repo.write(".gitattributes", "config/** filter=sops diff=sops -text\n");
    let out = repo.sops(&["init", "config/**"]).ok();
    assert!(
        out.stderr.contains("added merge=sops"),
        "{}",
        out.describe()
    );
    assert_eq!(
        repo.text(".gitattributes"),
        "config/** filter=sops diff=sops merge=sops -text\n.gitattributes -filter -diff -merge\n.sops.yaml -filter -diff -merge\n"
    );
    let again = repo.sops(&["init", "config/**"]).ok();
    assert!(!again.stderr.contains("merge=sops"), "{}", again.describe());
    let attr = repo
        .git(&["check-attr", "merge", "--", "config/x.yaml"])
        .ok()
        .stdout_str();
    assert_eq!(attr.trim(), "config/x.yaml: merge: sops");
}
