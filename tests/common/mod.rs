//! Shared harness for the integration and interop tests.
//!
//! * Tools: `sops` 3.11, `age`, `age-keygen` are looked up in `target/tools/bin`
//!   (filled by `scripts/provision-tools`), then on `PATH`. A missing tool always
//!   fails the test (never a skip): in CI (`CI` set) it is a CI configuration
//!   error, locally the message tells the developer to run `scripts/test`.
//! * Isolation: every [`Env`] is a fresh temp dir with its own `HOME`,
//!   `XDG_CONFIG_HOME` and working directory; child processes get a cleared
//!   environment (no inherited `SOPS_*` / `AWS_*` / `GIT_*`), plus only what the
//!   test sets. The domain harnesses (`guard_support`, `kms_support`) are thin
//!   layers over [`Env`].
//! * Processes: every command to completion runs through [`Cmd::run`] (optionally
//!   bounded by [`Cmd::time_limit`] / [`Env::set_time_limit`]) and gives an
//!   [`Output`]: exit code, stdout, stderr, elapsed time, and the assertions on
//!   them.
//! * Trees: "the tree of a plaintext" is what sops 3.11 says it is: sops encrypts
//!   it and decrypts it again. [`Tree`] holds sops' canonical rendering in the
//!   document's own format (YAML keeps comments and every document) and, where sops
//!   can produce it, the `--output-type json` rendering as a `serde_json::Value`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SOPS_VERSION: &str = "3.11.0";

/// The public sops test key (`age/keysource_test.go` in getsops/sops). It is
/// published, so fixtures encrypted for it may be committed.
pub const SOPS_TEST_IDENTITY: &str =
    "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7";
pub const SOPS_TEST_RECIPIENT: &str =
    "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";

// ---------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn tools_bin_dir() -> PathBuf {
    manifest_dir().join("target/tools/bin")
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Absolute path of a reference tool. Panics (never skips) when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let provisioned = tools_bin_dir().join(name);
    if is_executable(&provisioned) {
        return provisioned;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return candidate;
            }
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI: the reference tool `{name}` is missing (looked in {} and on PATH). \
             In CI a missing tool is a failure, never a skip: the job must run `.ci/run` \
             / `scripts/test`, which provisions sops {SOPS_VERSION}, age and moto with \
             `scripts/provision-tools`.",
            tools_bin_dir().display()
        );
    }
    panic!(
        "the reference tool `{name}` is missing (looked in {} and on PATH). \
         Run the test suite with `scripts/test` (it provisions sops {SOPS_VERSION}, age \
         and moto into target/tools/bin via `scripts/provision-tools`), or run \
         `scripts/provision-tools` once and re-run cargo test.",
        tools_bin_dir().display()
    );
}

/// `sops`, checked once to be the pinned version: interop against another sops
/// would test the wrong thing.
pub fn sops_path() -> PathBuf {
    static SOPS: OnceLock<PathBuf> = OnceLock::new();
    SOPS.get_or_init(|| {
        let path = tool("sops");
        let out = Cmd::bare(&path, "sops")
            .args(["--version", "--disable-version-check"])
            .run();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("sops {SOPS_VERSION}")),
            "{} is not sops {SOPS_VERSION} (it says {text:?}); run `scripts/test` or \
             `scripts/provision-tools` to install the pinned version",
            path.display()
        );
        path
    })
    .clone()
}

pub fn git_sops_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_git-sops"))
}

fn child_path_var() -> std::ffi::OsString {
    let mut dirs = vec![tools_bin_dir()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH")
}

// ---------------------------------------------------------------------------------
// Age keys
// ---------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct AgeKey {
    pub identity: String,
    pub recipient: String,
}

impl AgeKey {
    /// The public sops test key.
    pub fn sops_test_key() -> AgeKey {
        AgeKey {
            identity: SOPS_TEST_IDENTITY.into(),
            recipient: SOPS_TEST_RECIPIENT.into(),
        }
    }

    /// A fresh throwaway identity made by the `age-keygen` CLI.
    pub fn generate() -> AgeKey {
        let text = Cmd::bare(tool("age-keygen"), "age-keygen")
            .run()
            .ok()
            .stdout_str();
        let identity = text
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .expect("age-keygen printed an identity")
            .to_string();
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("age-keygen printed the public key")
            .to_string();
        AgeKey {
            identity,
            recipient,
        }
    }

    /// The text of a key file holding this identity.
    pub fn key_file_text(&self) -> String {
        format!(
            "# created: 2024-01-01T00:00:00Z\n# public key: {}\n{}\n",
            self.recipient, self.identity
        )
    }
}

// ---------------------------------------------------------------------------------
// Isolated environment and process running
// ---------------------------------------------------------------------------------

/// An isolated environment: temp `HOME`, `XDG_CONFIG_HOME`, work dir (the cwd of
/// every command), and a cleared environment for child processes.
pub struct Env {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
    pub xdg_config_home: PathBuf,
    pub work: PathBuf,
    vars: BTreeMap<String, String>,
    unset: Vec<String>,
    time_limit: Option<Duration>,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("git-sops-test-")
            .tempdir()
            .expect("temp dir");
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        let home = root.join("home");
        let xdg_config_home = root.join("xdg-config");
        let work = root.join("work");
        for d in [&home, &xdg_config_home, &work] {
            std::fs::create_dir_all(d).expect("create dir");
        }
        let mut vars = BTreeMap::new();
        vars.insert("HOME".into(), home.display().to_string());
        vars.insert(
            "XDG_CONFIG_HOME".into(),
            xdg_config_home.display().to_string(),
        );
        vars.insert("SOPS_DISABLE_VERSION_CHECK".into(), "1".into());
        vars.insert("TMPDIR".into(), root.display().to_string());
        vars.insert("LC_ALL".into(), "C.UTF-8".into());
        Env {
            _tmp: tmp,
            root,
            home,
            xdg_config_home,
            work,
            vars,
            unset: Vec::new(),
            time_limit: None,
        }
    }

    /// An environment whose `SOPS_AGE_KEY_FILE` holds these identities.
    pub fn with_keys(keys: &[&AgeKey]) -> Env {
        let mut env = Env::new();
        env.use_identities(keys);
        env
    }

    /// Write a key file (outside the work dir) and point `SOPS_AGE_KEY_FILE` at it.
    pub fn use_identities(&mut self, keys: &[&AgeKey]) -> PathBuf {
        let text: String = keys.iter().map(|k| k.key_file_text()).collect();
        let path = self.root.join("identities.txt");
        std::fs::write(&path, text).expect("write key file");
        self.set("SOPS_AGE_KEY_FILE", path.display().to_string());
        path
    }

    /// Ready for real git: `git-sops` and the pinned tools first on `PATH`, an
    /// isolated global git config (no system config), a fixed author.
    pub fn use_git(&mut self) {
        let bin = git_sops_path().parent().expect("binary dir").to_path_buf();
        let path = std::env::join_paths([bin, tools_bin_dir()].into_iter().chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("PATH");
        self.set("PATH", path.to_string_lossy().into_owned());
        let global = self.home.join(".gitconfig").display().to_string();
        self.set("GIT_CONFIG_GLOBAL", global);
        self.set("GIT_CONFIG_NOSYSTEM", "1");
        for (k, v) in [
            ("GIT_AUTHOR_NAME", "Test"),
            ("GIT_AUTHOR_EMAIL", "test@example.com"),
            ("GIT_COMMITTER_NAME", "Test"),
            ("GIT_COMMITTER_EMAIL", "test@example.com"),
        ] {
            self.set(k, v);
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.unset.retain(|k| k != key);
        self.vars.insert(key.into(), value.into());
    }

    pub fn remove(&mut self, key: &str) {
        self.vars.remove(key);
        self.unset.push(key.into());
    }

    /// Every later command of this environment is killed, and fails the test,
    /// past `limit` (see [`Cmd::time_limit`]).
    pub fn set_time_limit(&mut self, limit: Duration) {
        self.time_limit = Some(limit);
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.work.join(rel)
    }

    pub fn write(&self, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    pub fn read(&self, rel: impl AsRef<Path>) -> Vec<u8> {
        let p = self.path(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    pub fn exists(&self, rel: impl AsRef<Path>) -> bool {
        self.path(rel).exists()
    }

    /// Nothing git-sops keeps plaintext in (its `.git-sops-*` private
    /// directories) is left in the temp directory (`TMPDIR` is the root).
    pub fn assert_no_private_dirs(&self) {
        let left: Vec<String> = std::fs::read_dir(&self.root)
            .expect("read root")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".git-sops-"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// `program` in this environment: its variables only, the work dir as cwd.
    pub fn command(&self, program: &Path, label: &str) -> Cmd {
        let mut cmd = Cmd::bare(program, label).env("PATH", child_path_var());
        for (k, v) in &self.vars {
            cmd = cmd.env(k, v);
        }
        cmd.limit = self.time_limit;
        cmd.current_dir(&self.work)
    }

    /// The binary under test.
    pub fn git_sops(&self) -> Cmd {
        self.command(&git_sops_path(), "git-sops")
    }

    /// The pinned reference sops.
    pub fn sops(&self) -> Cmd {
        self.command(&sops_path(), "sops")
    }

    /// Any other provisioned tool (`age`, `age-keygen`).
    pub fn tool(&self, name: &str) -> Cmd {
        self.command(&tool(name), name)
    }
}

/// A throwaway repository under an isolated [`Env`] holding one age key, after
/// `git init -b main` and `git sops init secrets/**` (nothing committed): the
/// one way the git tests make a repository.
pub struct Repo {
    pub env: Env,
    pub dir: PathBuf,
    pub key: AgeKey,
}

impl Repo {
    pub fn new() -> Repo {
        let key = AgeKey::generate();
        let mut env = Env::with_keys(&[&key]);
        env.use_git();
        let dir = env.work.join("repo");
        std::fs::create_dir_all(&dir).expect("repo dir");
        let repo = Repo { env, dir, key };
        repo.git(&["init", "-q", "-b", "main"]).ok();
        repo.sops(&["init", "secrets/**"]).ok();
        repo
    }

    pub fn git(&self, args: &[&str]) -> Output {
        self.git_in(&self.dir, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.env.tool("git").current_dir(dir).args(args).run()
    }

    /// `git-sops ARGS` in the repository.
    pub fn sops(&self, args: &[&str]) -> Output {
        self.env.git_sops().current_dir(&self.dir).args(args).run()
    }

    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(rel)).expect("read")
    }

    pub fn text(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).expect("utf8")
    }

    pub fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]).ok();
        self.git(&["commit", "-q", "-m", message]).ok();
    }

    pub fn status(&self) -> String {
        self.git(&["status", "--porcelain"]).ok().stdout_str()
    }

    /// An object's content (`git cat-file -p SPEC`).
    pub fn blob(&self, spec: &str) -> Vec<u8> {
        self.git(&["cat-file", "-p", spec]).ok().stdout
    }

    pub fn blob_text(&self, spec: &str) -> String {
        self.git(&["cat-file", "-p", spec]).ok().stdout_str()
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

/// A command to run to completion: the one process runner of the tests.
pub struct Cmd {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    label: String,
    args: Vec<String>,
    limit: Option<Duration>,
}

impl Cmd {
    /// `program` with a cleared environment and the test process' cwd; most
    /// commands come from an [`Env`] instead.
    pub fn bare(program: impl AsRef<OsStr>, label: &str) -> Cmd {
        let mut cmd = Command::new(program);
        cmd.env_clear();
        Cmd {
            cmd,
            stdin: None,
            label: label.to_string(),
            args: Vec::new(),
            limit: None,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Cmd {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Cmd {
        self.cmd.env_remove(k);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Cmd {
        self.stdin = Some(bytes.as_ref().to_vec());
        self
    }

    /// Kill the command, and fail the test saying so, if it runs longer than
    /// `limit`.
    pub fn time_limit(mut self, limit: Duration) -> Cmd {
        self.limit = Some(limit);
        self
    }

    pub fn run(mut self) -> Output {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.label));
        let writer = self.stdin.take().map(|input| {
            let mut stdin = child.stdin.take().expect("stdin");
            // A child that exits early closes the pipe; that is its answer, not ours.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            })
        });
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        let status = match self.limit {
            None => child.wait().expect("wait for child"),
            Some(limit) => loop {
                if let Some(status) = child.try_wait().expect("wait for child") {
                    break status;
                }
                if start.elapsed() > limit {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "`{} {}` did not finish within {limit:?} and was killed",
                        self.label,
                        self.args.join(" ")
                    );
                }
                std::thread::sleep(Duration::from_millis(5));
            },
        };
        let elapsed = start.elapsed();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        Output {
            label: self.label,
            args: self.args,
            code: status.code(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned(),
            elapsed,
        }
    }
}

/// What a command did: the one output type of the tests.
pub struct Output {
    pub label: String,
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// From start to exit.
    pub elapsed: Duration,
}

impl Output {
    pub fn command_line(&self) -> String {
        format!("{} {}", self.label, self.args.join(" "))
    }

    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stderr ---\n{}\n--- stdout ({} bytes) ---\n{}",
            self.command_line(),
            self.code,
            self.stderr.trim_end(),
            self.stdout.len(),
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(4000)])
        )
    }

    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Assert exit 0 and no panic; returns self for chaining.
    pub fn ok(self) -> Output {
        self.assert_no_panic();
        assert!(self.success(), "expected success: {}", self.describe());
        self
    }

    /// Assert a non-zero exit (not a signal, not a panic).
    pub fn fails(self) -> Output {
        self.assert_no_panic();
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected a clean failure (non-zero exit): {}",
            self.describe()
        );
        self
    }

    /// Assert exit `code` and no panic; returns self for chaining.
    pub fn exits(self, code: i32) -> Output {
        self.assert_no_panic();
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}: {}",
            self.describe()
        );
        self
    }

    /// Assert exit `code`, no panic, and each needle in stderr.
    pub fn fails_with(self, code: i32, needles: &[&str]) -> Output {
        let out = self.exits(code);
        for n in needles {
            assert!(
                out.stderr.contains(n),
                "stderr lacks {n:?}: {}",
                out.describe()
            );
        }
        out
    }

    /// Assert that nothing this command started panicked (a git-sops run by git
    /// from a hook or filter included), whatever the exit code.
    pub fn nothing_panicked(self) -> Output {
        assert!(
            !self.stderr.contains("panicked"),
            "something panicked: {}",
            self.describe()
        );
        self.assert_no_panic();
        self
    }

    /// stdout and stderr together (stdout lossily decoded).
    pub fn all(&self) -> String {
        format!("{}\n{}", String::from_utf8_lossy(&self.stdout), self.stderr)
    }

    pub fn assert_no_panic(&self) {
        if self.label == "git-sops" {
            assert!(
                !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
                "git-sops panicked: {}",
                self.describe()
            );
            // 101 is Rust's panic exit code.
            assert_ne!(
                self.code,
                Some(101),
                "git-sops panicked: {}",
                self.describe()
            );
            assert!(
                self.code.is_some(),
                "git-sops was killed by a signal: {}",
                self.describe()
            );
        }
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap_or_else(|_| {
            panic!("stdout is not UTF-8: {}", self.describe());
        })
    }
}

// ---------------------------------------------------------------------------------
// Formats and trees
// ---------------------------------------------------------------------------------

/// `yaml` or `json`, from a file name.
pub fn ext_of(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "json"
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        "yaml"
    } else if name.ends_with(".env") {
        "env"
    } else if name.ends_with(".ini") {
        "ini"
    } else {
        panic!("unknown format for {name}")
    }
}

/// What sops 3.11 says a document is.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// `sops decrypt` in the file's own format: sops' canonical rendering, with
    /// comments (YAML) and every document.
    pub canonical: String,
    /// `sops decrypt --output-type json` (first document only; `None` when sops
    /// cannot render the tree as JSON, e.g. `.inf`).
    pub json: Option<Value>,
    /// The same JSON as text (keeps key order and duplicate keys).
    pub json_text: Option<String>,
}

/// sops-decrypt an encrypted document into its [`Tree`]. Panics with sops' error
/// if sops cannot decrypt it.
pub fn sops_tree(env: &Env, encrypted: &[u8], ext: &str, what: &str) -> Tree {
    let name = format!("tree-input.enc.{ext}");
    env.write(&name, encrypted);
    let out = env
        .sops()
        .args(["decrypt", "--input-type", ext, "--output-type", ext, &name])
        .run();
    assert!(
        out.success(),
        "{what}: sops {SOPS_VERSION} cannot decrypt it: {}\n--- the encrypted file ---\n{}",
        out.describe(),
        String::from_utf8_lossy(encrypted)
    );
    let canonical = out.stdout_str();
    let json_out = env
        .sops()
        .args([
            "decrypt",
            "--input-type",
            ext,
            "--output-type",
            "json",
            &name,
        ])
        .run();
    let (json, json_text) = if json_out.success() {
        let text = json_out.stdout_str();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: sops printed invalid JSON ({e}): {text}"));
        (Some(value), Some(text))
    } else {
        (None, None)
    };
    Tree {
        canonical,
        json,
        json_text,
    }
}

/// sops-encrypt `plaintext` for `recipient` (extra args such as selectors go
/// before the file). Panics if sops refuses.
pub fn sops_encrypt(
    env: &Env,
    plaintext: &[u8],
    ext: &str,
    recipient: &str,
    extra: &[&str],
) -> Vec<u8> {
    sops_encrypt_as(
        env,
        plaintext,
        ext,
        recipient,
        extra,
        "sops refuses to encrypt this plaintext (a bad test input?)",
    )
}

/// [`sops_encrypt`] with the failure message for the caller's situation.
pub fn sops_encrypt_as(
    env: &Env,
    plaintext: &[u8],
    ext: &str,
    recipient: &str,
    extra: &[&str],
    what: &str,
) -> Vec<u8> {
    let name = format!("sops-input.{ext}");
    env.write(&name, plaintext);
    let out = env
        .sops()
        .arg("encrypt")
        .args([
            "--input-type",
            ext,
            "--output-type",
            ext,
            "--age",
            recipient,
        ])
        .args(extra)
        .arg(&name)
        .run();
    assert!(
        out.success(),
        "{what}: {}\n--- input ---\n{}",
        out.describe(),
        String::from_utf8_lossy(plaintext)
    );
    out.stdout
}

/// The tree of a plaintext, as sops sees it: sops encrypts it, then decrypts.
pub fn reference_tree(env: &Env, plaintext: &[u8], ext: &str, key: &AgeKey) -> (Tree, Vec<u8>) {
    let enc = sops_encrypt(env, plaintext, ext, &key.recipient, &[]);
    (sops_tree(env, &enc, ext, "reference (sops encrypt)"), enc)
}

/// Assert two trees are equal, with a readable report.
pub fn assert_tree_eq(expected: &Tree, actual: &Tree, what: &str) {
    if expected.canonical != actual.canonical {
        panic!(
            "{what}: the trees differ (sops' canonical rendering)\n{}",
            text_diff(
                &expected.canonical,
                &actual.canonical,
                "reference",
                "actual"
            )
        );
    }
    match (&expected.json, &actual.json) {
        (Some(e), Some(a)) => {
            let (et, at) = (
                expected.json_text.as_deref().unwrap_or(""),
                actual.json_text.as_deref().unwrap_or(""),
            );
            assert!(
                e == a && et == at,
                "{what}: the JSON trees differ\n{}",
                text_diff(et, at, "reference", "actual")
            );
        }
        (None, None) => {}
        (e, a) => panic!(
            "{what}: sops renders one tree as JSON and not the other (reference: {}, actual: {})",
            e.is_some(),
            a.is_some()
        ),
    }
}

/// A line diff good enough for test failure messages.
pub fn text_diff(expected: &str, actual: &str, el: &str, al: &str) -> String {
    let e: Vec<&str> = expected.split_inclusive('\n').collect();
    let a: Vec<&str> = actual.split_inclusive('\n').collect();
    let mut out = String::new();
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let _ = writeln!(out, "first difference at line {}", first + 1);
    let from = first.saturating_sub(3);
    for (i, l) in e.iter().enumerate().skip(from).take(12) {
        let _ = writeln!(out, "{el:>9} {:>4}| {:?}", i + 1, l);
    }
    for (i, l) in a.iter().enumerate().skip(from).take(12) {
        let _ = writeln!(out, "{al:>9} {:>4}| {:?}", i + 1, l);
    }
    out
}

/// Assert byte equality, reporting the first difference readably.
pub fn assert_bytes_eq(expected: &[u8], actual: &[u8], what: &str) {
    if expected == actual {
        return;
    }
    let first = expected
        .iter()
        .zip(actual)
        .position(|(x, y)| x != y)
        .unwrap_or(expected.len().min(actual.len()));
    let ctx = |b: &[u8]| {
        let from = first.saturating_sub(60);
        let to = (first + 60).min(b.len());
        String::from_utf8_lossy(&b[from..to]).into_owned()
    };
    panic!(
        "{what}: bytes differ at offset {first} (expected {} bytes, got {})\n\
         expected around there: {:?}\n     got around there: {:?}\n{}",
        expected.len(),
        actual.len(),
        ctx(expected),
        ctx(actual),
        text_diff(
            &String::from_utf8_lossy(expected),
            &String::from_utf8_lossy(actual),
            "expected",
            "got"
        )
    );
}

// ---------------------------------------------------------------------------------
// Looking inside encrypted files (no decryption)
// ---------------------------------------------------------------------------------

pub fn enc_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]*,tag:[A-Za-z0-9+/=]*,type:([a-z]+)\]",
        )
        .unwrap()
    })
}

/// How many `ENC[...]` values of each type a file holds, the `mac` excluded.
pub fn enc_type_counts(encrypted: &[u8]) -> BTreeMap<String, usize> {
    let text = String::from_utf8_lossy(encrypted);
    let mut counts = BTreeMap::new();
    for m in enc_regex().captures_iter(&text) {
        let start = m.get(0).unwrap().start();
        let before = &text[..start];
        let before = before.trim_end_matches(['"', ' ']);
        if before.ends_with("mac:") || before.ends_with("\"mac\":") {
            continue;
        }
        *counts.entry(m[1].to_string()).or_insert(0) += 1;
    }
    counts
}

/// The structure of an encrypted document with every leaf reduced to
/// `"ENC:<type>"` or `"plain"`, the `sops` block removed and sops' list-comment
/// items (`- ENC[...,type:comment]`) dropped. Two files encrypt the same leaves
/// iff their shapes are equal. YAML: a list of documents.
pub fn shape(encrypted: &[u8], ext: &str) -> Value {
    let text = String::from_utf8_lossy(encrypted);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    match ext {
        "json" => {
            let v: Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
            Value::Array(vec![reduce_shape(strip_sops(v))])
        }
        _ => Value::Array(
            parse_yaml_docs(text)
                .into_iter()
                .map(|d| reduce_shape(strip_sops(d)))
                .collect(),
        ),
    }
}

fn strip_sops(v: Value) -> Value {
    match v {
        Value::Object(mut m) => {
            m.shift_remove("sops");
            Value::Object(m)
        }
        other => other,
    }
}

fn leaf_marker(s: &str) -> Option<Value> {
    enc_regex()
        .captures(s)
        .filter(|c| c.get(0).unwrap().start() == 0)
        .map(|c| Value::String(format!("ENC:{}", &c[1])))
}

fn reduce_shape(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, reduce_shape(v))).collect()),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|i| !matches!(i, Value::String(s) if leaf_marker(s) == Some(Value::String("ENC:comment".into()))))
                .map(reduce_shape)
                .collect(),
        ),
        Value::String(s) => leaf_marker(&s).unwrap_or(Value::String("plain".into())),
        Value::Null => Value::Null,
        _ => Value::String("plain".into()),
    }
}

/// A minimal YAML reader for tests: every document as a `Value`, every scalar as
/// its text (untyped; nulls included as their text). Aliases are not expected.
pub fn parse_yaml_docs(text: &str) -> Vec<Value> {
    use saphyr_parser::{Event, Parser};
    enum Frame {
        List(Vec<Value>),
        Map(serde_json::Map<String, Value>, Option<String>),
    }
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(ev) = parser.next_event() {
        let (ev, _) = ev.unwrap_or_else(|e| panic!("test YAML reader: {e}\n{text}"));
        let value = match ev {
            Event::SequenceStart(..) => {
                stack.push(Frame::List(Vec::new()));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push(Frame::Map(serde_json::Map::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::List(items)) => Value::Array(items),
                Some(Frame::Map(m, _)) => Value::Object(m),
                None => continue,
            },
            Event::Scalar(s, ..) => Value::String(s.into_owned()),
            Event::Alias(_) => Value::String("*alias".into()),
            _ => continue,
        };
        match stack.last_mut() {
            None => docs.push(value),
            Some(Frame::List(items)) => items.push(value),
            Some(Frame::Map(m, pending)) => match pending.take() {
                None => {
                    *pending = Some(match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                }
                Some(k) => {
                    m.insert(k, value);
                }
            },
        }
    }
    docs
}

/// The text of an encrypted file with every `ENC[...]` and the `sops` metadata
/// removed: what anyone without a key can read.
pub fn readable_residue(encrypted: &[u8], ext: &str) -> String {
    let text = String::from_utf8_lossy(encrypted).into_owned();
    if ext == "json" {
        let v: Value = serde_json::from_str(&text).expect("JSON");
        let mut out = String::new();
        collect_json_residue(&strip_sops(v), &mut out);
        return out;
    }
    let without_enc = enc_regex().replace_all(&text, "");
    let mut out = String::new();
    let mut in_sops = false;
    for line in without_enc.split_inclusive('\n') {
        let l = line.trim_start_matches('\u{feff}');
        if l.starts_with("sops:") {
            in_sops = true;
            continue;
        }
        if in_sops {
            if l.starts_with(' ') || l.starts_with('\t') || l.trim().is_empty() {
                continue;
            }
            in_sops = false;
        }
        out.push_str(line);
    }
    out
}

fn collect_json_residue(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push_str(k);
                out.push('\n');
                collect_json_residue(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_json_residue(i, out)),
        Value::String(s) if leaf_marker(s).is_none() => {
            out.push_str(s);
            out.push('\n');
        }
        Value::String(_) => {}
        other => {
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

/// What sops' encryption of a document hides and shows: `hidden` holds the
/// string values at the positions sops encrypted and the comments it encrypted;
/// `shown` the keys, the unencrypted values and the unencrypted comments.
pub struct Visibility {
    pub hidden: Vec<String>,
    pub shown: Vec<String>,
}

pub fn visibility(sops_enc: &[u8], reference: &Tree, ext: &str) -> Visibility {
    let mut v = Visibility {
        hidden: Vec::new(),
        shown: Vec::new(),
    };
    let tree = if ext == "json" {
        Value::Array(reference.json.iter().cloned().collect())
    } else {
        Value::Array(parse_yaml_docs(&reference.canonical))
    };
    if !zip_encrypted(&shape(sops_enc, ext), &tree, &mut v) {
        // The structures do not line up (a sops rendering quirk): treat every
        // value as hidden and only keys as shown.
        v = Visibility {
            hidden: Vec::new(),
            shown: Vec::new(),
        };
        collect_strings(&tree, &mut v.hidden, &mut v.shown);
    }
    if ext != "json" {
        let sops_text = String::from_utf8_lossy(sops_enc);
        let plain_comments: Vec<&str> = sops_text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix('#'))
            .filter(|c| !c.starts_with("ENC["))
            .collect();
        v.shown.extend(plain_comments.iter().map(|c| c.to_string()));
        for line in reference.canonical.lines() {
            if let Some(c) = line.trim_start().strip_prefix('#') {
                if !plain_comments.contains(&c) {
                    v.hidden.push(c.to_string());
                }
            }
        }
    }
    v
}

/// Walk a shape and the decrypted tree together. False when the structures differ.
fn zip_encrypted(shape: &Value, tree: &Value, v: &mut Visibility) -> bool {
    match (shape, tree) {
        (Value::Object(s), Value::Object(t)) => {
            s.len() == t.len()
                && s.iter().zip(t).all(|((sk, sv), (tk, tv))| {
                    v.shown.push(tk.clone());
                    sk == tk && zip_encrypted(sv, tv, v)
                })
        }
        (Value::Array(s), Value::Array(t)) => {
            s.len() == t.len() && s.iter().zip(t).all(|(sv, tv)| zip_encrypted(sv, tv, v))
        }
        (Value::String(m), leaf) if !leaf.is_object() && !leaf.is_array() => {
            let text = match leaf {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if m.starts_with("ENC:") {
                v.hidden.push(text);
            } else {
                v.shown.push(text);
            }
            true
        }
        (Value::Null, _) => true,
        _ => false,
    }
}

fn collect_strings(v: &Value, hidden: &mut Vec<String>, keys: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            keys.push(k.clone());
            collect_strings(v, hidden, keys)
        }),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, hidden, keys)),
        Value::String(s) => hidden.push(s.clone()),
        _ => {}
    }
}

/// Lines of at least 4 characters of the texts sops hides: the leak candidates.
pub fn secret_candidates(sops_enc: &[u8], reference: &Tree, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = visibility(sops_enc, reference, ext)
        .hidden
        .iter()
        .flat_map(|t| t.lines().map(|l| l.trim().to_string()).collect::<Vec<_>>())
        .filter(|l| l.chars().count() >= 4)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Nothing sops hides may be readable in our file: each text sops encrypted
/// occurs in our readable residue at most as often as in what sops leaves
/// readable (keys, unencrypted values and comments), counted on the tree so that
/// quoting and escaping differences do not matter.
pub fn assert_no_leaks(ours: &[u8], sops: &[u8], reference: &Tree, ext: &str, what: &str) {
    let ours_r = readable_residue(ours, ext);
    let vis = visibility(sops, reference, ext);
    for s in secret_candidates(sops, reference, ext) {
        let o = ours_r.matches(&s).count();
        let r: usize = vis.shown.iter().map(|t| t.matches(&s).count()).sum();
        assert!(
            o <= r,
            "{what}: {s:?} is readable {o} time(s) in our encrypted file but sops leaves it \
             readable only {r} time(s) (a value or comment that should be encrypted leaked)\n\
             --- ours ---\n{}",
            String::from_utf8_lossy(ours)
        );
    }
}

/// Everything (d) asks: same leaves encrypted with the same types, same number of
/// encrypted comments, nothing readable that sops would hide.
pub fn assert_same_encryption(ours: &[u8], sops: &[u8], reference: &Tree, ext: &str, what: &str) {
    let (so, ss) = (shape(ours, ext), shape(sops, ext));
    // Compared as text: serde_json's map equality ignores key order.
    let (so, ss) = (
        serde_json::to_string_pretty(&so).unwrap(),
        serde_json::to_string_pretty(&ss).unwrap(),
    );
    if so != ss {
        panic!(
            "{what}: our file encrypts different leaves (or types) than sops does\n{}\n--- ours ---\n{}",
            text_diff(&ss, &so, "sops", "ours"),
            String::from_utf8_lossy(ours)
        );
    }
    let (co, cs) = (enc_type_counts(ours), enc_type_counts(sops));
    assert_eq!(
        co.get("comment"),
        cs.get("comment"),
        "{what}: number of encrypted comments differs (ours {co:?}, sops {cs:?})\n--- ours ---\n{}",
        String::from_utf8_lossy(ours)
    );
    assert_no_leaks(ours, sops, reference, ext, what);
}

/// The `sops` metadata of an encrypted file (first document), as JSON.
pub fn metadata(encrypted: &[u8], ext: &str) -> Value {
    let text = String::from_utf8_lossy(encrypted);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let doc = if ext == "json" {
        serde_json::from_str(text).expect("JSON")
    } else {
        parse_yaml_docs(text)
            .into_iter()
            .next()
            .expect("a document")
    };
    doc.get("sops")
        .cloned()
        .unwrap_or_else(|| panic!("no sops metadata in:\n{text}"))
}

/// The age recipients named in a file's metadata.
pub fn age_recipients(encrypted: &[u8], ext: &str) -> Vec<String> {
    let meta = metadata(encrypted, ext);
    meta.get("age")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("recipient").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Read a file from `tests/<dir>/<name>`.
pub fn fixture(dir: &str, name: &str) -> Vec<u8> {
    let p = manifest_dir().join("tests").join(dir).join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The file names in `tests/<dir>`.
pub fn fixture_names(dir: &str) -> Vec<String> {
    let p = manifest_dir().join("tests").join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "README.md")
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------
// Collecting several independent checks into one report
// ---------------------------------------------------------------------------------

thread_local! {
    static IN_CHECK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A panic inside [`Checks::check`] is collected and reported once at the end;
/// don't also print it when it happens (other threads keep the default hook).
fn quiet_panics_in_checks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CHECK.with(|c| c.get()) {
                default(info);
            }
        }));
    });
}

/// Runs independent checks and reports every failure at the end, so one test
/// failure gives the whole picture of a corpus file (a, b, c, d).
#[derive(Default)]
pub struct Checks {
    failures: Vec<String>,
}

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    pub fn check(&mut self, name: &str, f: impl FnOnce()) {
        quiet_panics_in_checks();
        IN_CHECK.with(|c| c.set(true));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        IN_CHECK.with(|c| c.set(false));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".into());
            self.failures.push(format!("[{name}] {msg}"));
        }
    }

    pub fn finish(self, what: &str) {
        if !self.failures.is_empty() {
            panic!(
                "{what}: {} check(s) failed:\n\n{}",
                self.failures.len(),
                self.failures.join("\n\n")
            );
        }
    }
}
