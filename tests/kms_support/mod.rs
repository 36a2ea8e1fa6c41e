//! A small harness for the AWS KMS tests: a real KMS API (moto 5.2.5, started on a
//! free loopback port), keys and IAM users created through that API, and a
//! sandbox that runs `git-sops` and the real `sops` 3.11 against it with an
//! isolated environment (no inherited `AWS_*`/`SOPS_*`, a private `HOME`,
//! instance metadata off, dummy credentials) — so nothing leaves 127.0.0.1.
//!
//! * Each moto server runs under `sh`, which kills it when the test binary's end
//!   of a pipe closes: the server never outlives the test process, however the
//!   process ends. [`Moto`] is also killed on drop.
//! * Start-up waits at most [`START_TIMEOUT`]; every command runs under
//!   [`COMMAND_TIMEOUT`] and is killed past it.
//! * A missing tool fails the test (never a skip); `scripts/provision-tools`
//!   installs them into `target/tools`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const START_TIMEOUT: Duration = Duration::from_secs(60);
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
pub const ACCOUNT: &str = "123456789012";

pub use crate::common::{git_sops_path as git_sops_bin, tool};

/// The moto virtualenv's python (it has boto3, which moto[server] brings).
fn moto_python() -> PathBuf {
    let server = tool("moto_server");
    let real = std::fs::canonicalize(&server).unwrap_or(server);
    real.parent()
        .map(|d| d.join("python"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| panic!("no python next to {}", real.display()))
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

/// Run a command with a time limit; kills it and panics past the limit.
pub fn run_bounded(cmd: &mut Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        si.write_all(input).expect("write stdin");
    }
    let out_pipe = child.stdout.take().expect("stdout");
    let err_pipe = child.stderr.take().expect("stderr");
    let reader = |mut p: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = p.read_to_end(&mut v);
            v
        })
    };
    let out_t = reader(Box::new(out_pipe));
    let err_t = reader(Box::new(err_pipe));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// A running moto server.
pub struct Moto {
    pub port: u16,
    child: Child,
    /// Closing this makes the wrapper shell kill moto.
    lifeline: Option<ChildStdin>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let server = tool("moto_server");
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("moto.log");
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port();
            // `cat` returns when our end of stdin closes (drop, exit or crash).
            let script = format!(
                "\"$0\" -H 127.0.0.1 -p {port} >\"$1\" 2>&1 & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null"
            );
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .arg(&server)
                .arg(&log)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn moto_server");
            let lifeline = child.stdin.take();
            let start = Instant::now();
            while start.elapsed() < START_TIMEOUT {
                if http_get(port, "/moto-api/").is_some() {
                    return Moto {
                        port,
                        child,
                        lifeline,
                        log,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            drop(lifeline);
            let _ = child.kill();
            let _ = child.wait();
            last_err = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("moto_server did not start within {START_TIMEOUT:?}:\n{last_err}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// moto's view of its state (`/moto-api/data.json`).
    pub fn data(&self) -> serde_json::Value {
        let body = http_get(self.port, "/moto-api/data.json").expect("moto data.json");
        serde_json::from_str(&body).expect("moto data.json is JSON")
    }

    /// The STS sessions moto has handed out: (role ARN, session name).
    pub fn assumed_roles(&self) -> Vec<(String, String)> {
        let d = self.data();
        d["sts"]["AssumedRole"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        (
                            r["role_arn"].as_str().unwrap_or("").to_string(),
                            r["session_name"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Run a boto3 script against this server; it gets `ep` (the endpoint) and
    /// `kw` (client arguments with dummy credentials) and prints JSON.
    pub fn boto(&self, script: &str) -> serde_json::Value {
        let prelude = format!(
            "import boto3, json, urllib.request\nep = {ep:?}\nkw = dict(region_name='us-east-1', endpoint_url=ep, aws_access_key_id='test', aws_secret_access_key='test')\n",
            ep = self.endpoint()
        );
        let mut cmd = Command::new(moto_python());
        cmd.arg("-c")
            .arg(format!("{prelude}{script}"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1,localhost");
        let out = run_bounded(&mut cmd, None, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "boto3 setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "boto3 setup printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP GET on loopback (no client library needed), bounded in time.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = format!("127.0.0.1:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(dechunk(body));
    }
    Some(body.to_string())
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Keys made on the shared server: three in us-east-1, one in eu-west-1.
pub struct Keys {
    pub a: String,
    pub b: String,
    pub c: String,
    pub eu: String,
}

/// The server most tests share (no IAM enforcement: any credentials work).
pub fn shared() -> &'static (Moto, Keys) {
    static SHARED: OnceLock<(Moto, Keys)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let moto = Moto::start();
        let v = moto.boto(
            "us = boto3.client('kms', **kw)\n\
             eu = boto3.client('kms', **dict(kw, region_name='eu-west-1'))\n\
             arn = lambda c: c.create_key(Description='git-sops test')['KeyMetadata']['Arn']\n\
             print(json.dumps({'a': arn(us), 'b': arn(us), 'c': arn(us), 'eu': arn(eu)}))\n",
        );
        let s = |k: &str| v[k].as_str().expect("key arn").to_string();
        let keys = Keys {
            a: s("a"),
            b: s("b"),
            c: s("c"),
            eu: s("eu"),
        };
        (moto, keys)
    })
}

/// Credentials of an IAM user on the IAM-enforcing server.
#[derive(Clone)]
pub struct User {
    pub access_key: String,
    pub secret: String,
}

pub struct AuthWorld {
    pub key: String,
    /// May call kms:Encrypt only.
    pub encrypt_only: User,
    /// May call kms:Encrypt and kms:Decrypt, but not sts:AssumeRole.
    pub no_sts: User,
    /// An existing role (trusting everyone); `no_sts` may still not assume it.
    pub role: String,
}

/// A second server that enforces IAM (moto's `reset-auth`), set up first with
/// a key, users with limited policies and a role. Every request after the setup
/// must be signed by one of those users, and their policies are evaluated: this
/// is how AccessDenied, rejected credentials and a refused AssumeRole are made.
pub fn enforcing() -> &'static (Moto, AuthWorld) {
    static AUTH: OnceLock<(Moto, AuthWorld)> = OnceLock::new();
    AUTH.get_or_init(|| {
        let moto = Moto::start();
        let v = moto.boto(
            "kms = boto3.client('kms', **kw)\n\
             iam = boto3.client('iam', **kw)\n\
             key = kms.create_key()['KeyMetadata']['Arn']\n\
             def user(name, actions):\n\
             \x20   iam.create_user(UserName=name)\n\
             \x20   iam.put_user_policy(UserName=name, PolicyName='p', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': actions, 'Resource': '*'}]}))\n\
             \x20   k = iam.create_access_key(UserName=name)['AccessKey']\n\
             \x20   return [k['AccessKeyId'], k['SecretAccessKey']]\n\
             enc = user('encrypt-only', ['kms:Encrypt'])\n\
             nosts = user('no-sts', ['kms:Encrypt', 'kms:Decrypt'])\n\
             role = iam.create_role(RoleName='deploy', AssumeRolePolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': '*'}, 'Action': 'sts:AssumeRole'}]}))['Role']['Arn']\n\
             req = urllib.request.Request(ep + '/moto-api/reset-auth', data=b'0', method='POST', headers={'Content-Type': 'text/plain'})\n\
             urllib.request.urlopen(req, timeout=10).read()\n\
             print(json.dumps({'key': key, 'enc': enc, 'nosts': nosts, 'role': role}))\n",
        );
        let user = |k: &str| User {
            access_key: v[k][0].as_str().expect("access key").to_string(),
            secret: v[k][1].as_str().expect("secret").to_string(),
        };
        let world = AuthWorld {
            key: v["key"].as_str().expect("key").to_string(),
            encrypt_only: user("enc"),
            no_sts: user("nosts"),
            role: v["role"].as_str().expect("role").to_string(),
        };
        (moto, world)
    })
}

/// A sandbox: a temp dir (also `HOME` and the working directory) and the
/// environment every command there gets.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn ok(&self) -> &Run {
        assert_eq!(
            self.status, 0,
            "expected success, got {}:\n{}",
            self.status, self.stderr
        );
        self
    }
    pub fn fails_with(&self, code: i32, needles: &[&str]) -> &Run {
        assert_eq!(
            self.status, code,
            "expected exit {code}, got {}:\nstdout: {}\nstderr: {}",
            self.status, self.stdout, self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr lacks {n:?}:\n{}",
                self.stderr
            );
        }
        self
    }
}

impl Sandbox {
    /// A sandbox pointed at `endpoint` with dummy credentials.
    pub fn new(endpoint: &str) -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().to_string_lossy().into_owned();
        let env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
            ("HOME".into(), home.clone()),
            ("XDG_CONFIG_HOME".into(), format!("{home}/.config")),
            ("AWS_ENDPOINT_URL".into(), endpoint.to_string()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            // Never the real ~/.aws of whoever runs the tests.
            ("AWS_CONFIG_FILE".into(), format!("{home}/aws-config")),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                format!("{home}/aws-credentials"),
            ),
            ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
        ];
        Sandbox { dir, env }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read")
    }

    /// Set (or with `None`, remove) an environment variable for later commands.
    pub fn set(&mut self, key: &str, value: Option<&str>) -> &mut Sandbox {
        self.env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.env.push((key.to_string(), v.to_string()));
        }
        self
    }

    /// Use these credentials instead of the dummy ones.
    pub fn as_user(&mut self, u: &User) -> &mut Sandbox {
        self.set("AWS_ACCESS_KEY_ID", Some(&u.access_key));
        self.set("AWS_SECRET_ACCESS_KEY", Some(&u.secret))
    }

    /// A new age identity in this sandbox; returns (identity file, recipient).
    pub fn age_identity(&self, name: &str) -> (PathBuf, String) {
        let path = self.path(name);
        let mut cmd = Command::new(tool("age-keygen"));
        cmd.arg("-o").arg(&path);
        let out = run_bounded(&mut cmd, None, COMMAND_TIMEOUT);
        assert!(out.status.success(), "age-keygen failed");
        let text = std::fs::read_to_string(&path).expect("key file");
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("public key line")
            .to_string();
        (path, recipient)
    }

    /// A command that runs in this sandbox with its environment.
    pub fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(self.dir.path()).env_clear();
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Run `git-sops ARGS` on a pseudo-terminal (util-linux `script`), typing `input`.
    pub fn git_sops_on_tty(&self, args: &str, input: &str) -> Run {
        let line = format!("{} {args}", git_sops_bin().display());
        let mut cmd = self.command(Path::new("script"), &["-qec", &line, "/dev/null"]);
        let start = Instant::now();
        let out = run_bounded(&mut cmd, Some(input.as_bytes()), COMMAND_TIMEOUT);
        Run {
            status: out.status.code().unwrap_or(-1),
            // The terminal carries both streams.
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stdout).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    fn run(&self, program: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(program, args);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let start = Instant::now();
        let out = run_bounded(&mut cmd, None, COMMAND_TIMEOUT);
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    pub fn git_sops(&self, args: &[&str]) -> Run {
        self.run(&git_sops_bin(), args, &[])
    }

    pub fn git_sops_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        self.run(&git_sops_bin(), args, extra)
    }

    pub fn sops(&self, args: &[&str]) -> Run {
        self.run(&tool("sops"), args, &[])
    }

    pub fn sops_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        self.run(&tool("sops"), args, extra)
    }
}

/// The `ENC[...]` values of a file outside its `sops` block, in order.
pub fn enc_values(text: &str) -> Vec<String> {
    let body = match text.find("\nsops:") {
        Some(i) => &text[..i],
        None => text.split("\"sops\":").next().unwrap_or(text),
    };
    body.match_indices("ENC[")
        .map(|(i, _)| {
            let end = body[i..].find(']').map(|e| i + e + 1).unwrap_or(body.len());
            body[i..end].to_string()
        })
        .collect()
}

/// The value of a `key: value` line of the YAML metadata (first match).
pub fn yaml_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim_start()
            .trim_start_matches("- ")
            .strip_prefix(&format!("{key}: "))
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}
