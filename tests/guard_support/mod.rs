//! Harness for the plaintext-guard tests: throwaway repositories driven by real
//! git with an isolated `HOME`, `GIT_CONFIG_GLOBAL` and `XDG_CONFIG_HOME`, a
//! cleared environment (nothing leaks in from the machine or from a git hook the
//! test runner may itself be running under), and the binary under test first on
//! `PATH` so git can run `git-sops` from hooks and filters.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use crate::common::{
    git_sops_path as git_sops_bin, manifest_dir, sops_path as sops_bin,
    SOPS_TEST_IDENTITY as TEST_IDENTITY, SOPS_TEST_RECIPIENT as TEST_RECIPIENT,
};

/// What a command did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Out {
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "{} failed:\n{}", self.what, self.describe());
        self
    }

    pub fn code(self, code: i32) -> Out {
        assert_eq!(
            self.code,
            code,
            "{}: expected exit {code}:\n{}",
            self.what,
            self.describe()
        );
        self
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// An isolated sandbox: a temp root with `home/`, `xdg/`, `scratch/` and repos.
pub struct Sandbox {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    vars: Vec<(String, String)>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("git-sops-guard-")
            .tempdir()
            .expect("temp dir");
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        for d in ["home", "xdg", "scratch"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        let key_file = root.join("keys.txt");
        std::fs::write(
            &key_file,
            format!("# created: 2024-01-01T00:00:00Z\n# public key: {TEST_RECIPIENT}\n{TEST_IDENTITY}\n"),
        )
        .expect("key file");
        let bin_dir = git_sops_bin().parent().expect("bin dir").to_path_buf();
        let path = std::env::join_paths(
            [bin_dir, manifest_dir().join("target/tools/bin")]
                .into_iter()
                .chain(std::env::split_paths(
                    &std::env::var_os("PATH").unwrap_or_default(),
                )),
        )
        .expect("PATH");
        let s = |p: &Path| p.display().to_string();
        let vars = vec![
            ("PATH".into(), path.to_string_lossy().into_owned()),
            ("HOME".into(), s(&root.join("home"))),
            ("XDG_CONFIG_HOME".into(), s(&root.join("xdg"))),
            ("GIT_CONFIG_GLOBAL".into(), s(&root.join("home/.gitconfig"))),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_AUTHOR_NAME".into(), "Test".into()),
            ("GIT_AUTHOR_EMAIL".into(), "test@example.com".into()),
            ("GIT_COMMITTER_NAME".into(), "Test".into()),
            ("GIT_COMMITTER_EMAIL".into(), "test@example.com".into()),
            ("SOPS_AGE_KEY_FILE".into(), s(&key_file)),
            ("SOPS_DISABLE_VERSION_CHECK".into(), "1".into()),
            ("TMPDIR".into(), s(&root)),
            ("LC_ALL".into(), "C".into()),
        ];
        std::fs::write(
            root.join("home/.gitconfig"),
            "[init]\n\tdefaultBranch = main\n",
        )
        .expect("gitconfig");
        Sandbox {
            _tmp: tmp,
            root,
            vars,
        }
    }

    pub fn command(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        dir: &Path,
        args: &[&str],
    ) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear().current_dir(dir).args(args);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, mut cmd: Command, input: Option<&[u8]>) -> Out {
        let what = format!("{cmd:?}");
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            use std::io::Write;
            stdin.write_all(data).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        let r = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            what,
        };
        assert!(
            !r.stderr.contains("panicked"),
            "{} panicked:\n{}",
            r.what,
            r.describe()
        );
        r
    }

    /// A new repository (`git init`) at `root/<name>`.
    pub fn repo(&self, name: &str) -> Repo<'_> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).expect("repo dir");
        let r = Repo { sb: self, dir };
        r.git(&["init", "-q", "-b", "main"]).ok();
        r
    }

    /// Encrypt `text` with real sops 3.11 for the test recipient, outside any
    /// repository (so no `.sops.yaml` is found); `name` gives the format.
    pub fn sops_encrypt(&self, name: &str, text: &str, extra: &[&str]) -> String {
        let scratch = self.root.join("scratch");
        let file = scratch.join(name);
        std::fs::write(&file, text).expect("write plaintext");
        let mut args = vec!["encrypt", "--age", TEST_RECIPIENT];
        args.extend_from_slice(extra);
        let file_arg = file.display().to_string();
        args.push(&file_arg);
        let out = self
            .run(self.command(sops_bin(), &scratch, &args), None)
            .ok();
        let _ = std::fs::remove_file(&file);
        out.stdout
    }
}

pub struct Repo<'a> {
    pub sb: &'a Sandbox,
    pub dir: PathBuf,
}

impl Repo<'_> {
    pub fn git(&self, args: &[&str]) -> Out {
        self.sb.run(self.sb.command("git", &self.dir, args), None)
    }

    pub fn git_input(&self, args: &[&str], input: &[u8]) -> Out {
        self.sb
            .run(self.sb.command("git", &self.dir, args), Some(input))
    }

    pub fn sops(&self, args: &[&str]) -> Out {
        self.sb
            .run(self.sb.command(git_sops_bin(), &self.dir, args), None)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.join(rel)).expect("read")
    }

    /// Stage `text` at `rel` straight into the object store and the index, past
    /// every filter: `hash-object -w --no-filters` + `update-index --cacheinfo`.
    pub fn stage_raw(&self, rel: &str, text: &str) -> String {
        self.write(rel, text);
        let oid = self
            .git(&["hash-object", "-w", "--no-filters", rel])
            .ok()
            .stdout
            .trim()
            .to_string();
        self.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{oid},{rel}"),
        ])
        .ok();
        oid
    }

    /// The staged blob of a path.
    pub fn staged(&self, rel: &str) -> String {
        self.git(&["cat-file", "blob", &format!(":{rel}")])
            .ok()
            .stdout
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    /// `git sops check ARGS...`
    pub fn check(&self, args: &[&str]) -> Out {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        self.sops(&all)
    }

    /// `git sops check --format json ARGS...`, parsed.
    pub fn check_json(&self, args: &[&str]) -> (i32, Vec<serde_json::Value>) {
        let mut all = vec!["check", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.sops(&all);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "--format json printed invalid JSON ({e}):\n{}",
                out.describe()
            )
        });
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("not a JSON array: {v}"))
            .clone();
        (out.code, arr)
    }

    /// `git commit -q -m MSG ARGS...` (hooks run).
    pub fn commit(&self, msg: &str, args: &[&str]) -> Out {
        let mut all = vec!["commit", "-q", "-m", msg];
        all.extend_from_slice(args);
        self.git(&all)
    }
}
