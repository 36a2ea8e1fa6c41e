//! Harness for the plaintext-guard tests: throwaway repositories driven by real
//! git in the shared harness' isolated [`Env`] (its own `HOME`,
//! `GIT_CONFIG_GLOBAL` and `XDG_CONFIG_HOME`, a cleared environment: nothing leaks
//! in from the machine or from a git hook the test runner may itself be running
//! under, and the binary under test first on `PATH` so git can run `git-sops` from
//! hooks and filters). Every command's output is checked for a panic.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::common::{AgeKey, Env, Output, SOPS_TEST_RECIPIENT};

/// An isolated [`Env`] ready for git ([`Env::use_git`]), holding the sops test
/// identity, with `init.defaultBranch = main` in its global git config and
/// `LC_ALL=C`; repositories are made at `root/<name>`, `root/scratch` is outside
/// every repository.
pub struct Sandbox {
    pub env: Env,
    pub root: PathBuf,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let mut env = Env::new();
        env.use_git();
        env.use_identities(&[&AgeKey::sops_test_key()]);
        env.set("LC_ALL", "C");
        let root = env.root.clone();
        std::fs::create_dir_all(root.join("scratch")).expect("mkdir");
        std::fs::write(
            env.home.join(".gitconfig"),
            "[init]\n\tdefaultBranch = main\n",
        )
        .expect("gitconfig");
        Sandbox { env, root }
    }

    /// `git ARGS` in `dir`; nothing it runs may panic.
    pub fn git(&self, dir: &Path, args: &[&str]) -> Output {
        self.env
            .tool("git")
            .current_dir(dir)
            .args(args)
            .run()
            .nothing_panicked()
    }

    /// `git-sops ARGS` in `dir`; it may not panic.
    pub fn git_sops(&self, dir: &Path, args: &[&str]) -> Output {
        self.env
            .git_sops()
            .current_dir(dir)
            .args(args)
            .run()
            .nothing_panicked()
    }

    /// The real sops 3.11 in `dir`.
    pub fn sops(&self, dir: &Path, args: &[&str]) -> Output {
        self.env
            .sops()
            .current_dir(dir)
            .args(args)
            .run()
            .nothing_panicked()
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
        let mut args = vec!["encrypt", "--age", SOPS_TEST_RECIPIENT];
        args.extend_from_slice(extra);
        let file_arg = file.display().to_string();
        args.push(&file_arg);
        let out = self.sops(&scratch, &args).ok();
        let _ = std::fs::remove_file(&file);
        out.stdout_str()
    }
}

pub struct Repo<'a> {
    pub sb: &'a Sandbox,
    pub dir: PathBuf,
}

impl Repo<'_> {
    pub fn git(&self, args: &[&str]) -> Output {
        self.sb.git(&self.dir, args)
    }

    pub fn git_input(&self, args: &[&str], input: &[u8]) -> Output {
        self.sb
            .env
            .tool("git")
            .current_dir(&self.dir)
            .args(args)
            .stdin(input)
            .run()
            .nothing_panicked()
    }

    pub fn sops(&self, args: &[&str]) -> Output {
        self.sb.git_sops(&self.dir, args)
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
            .stdout_str()
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
            .stdout_str()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
            .ok()
            .stdout_str()
            .trim()
            .to_string()
    }

    /// `git sops check ARGS...`
    pub fn check(&self, args: &[&str]) -> Output {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        self.sops(&all)
    }

    /// `git sops check --format json ARGS...`, parsed.
    pub fn check_json(&self, args: &[&str]) -> (i32, Vec<serde_json::Value>) {
        let mut all = vec!["check", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.sops(&all);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "--format json printed invalid JSON ({e}):\n{}",
                out.describe()
            )
        });
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("not a JSON array: {v}"))
            .clone();
        let code = out
            .code
            .unwrap_or_else(|| panic!("killed by a signal: {}", out.describe()));
        (code, arr)
    }

    /// `git commit -q -m MSG ARGS...` (hooks run).
    pub fn commit(&self, msg: &str, args: &[&str]) -> Output {
        let mut all = vec!["commit", "-q", "-m", msg];
        all.extend_from_slice(args);
        self.git(&all)
    }
}
