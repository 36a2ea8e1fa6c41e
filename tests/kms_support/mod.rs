//! A small harness for the AWS KMS tests: a real KMS API (moto 5.2.5, started on a
//! free loopback port), keys and IAM users created through that API, and a
//! [`Sandbox`]: the shared harness' isolated [`Env`] (no inherited
//! `AWS_*`/`SOPS_*`, a private `HOME`) pointed at it, with instance metadata off
//! and dummy credentials — so nothing leaves 127.0.0.1. Commands run through the
//! shared [`Cmd`] and give the shared [`Output`].
//!
//! * Each moto server runs under `sh`, which kills it when the test binary's end
//!   of a pipe closes: the server never outlives the test process, however the
//!   process ends. [`Moto`] is also killed on drop.
//! * Start-up waits at most [`START_TIMEOUT`]; every command runs under
//!   [`COMMAND_TIMEOUT`] ([`Cmd::time_limit`]) and is killed past it.
//! * A missing tool fails the test (never a skip); `scripts/provision-tools`
//!   installs them into `target/tools`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{git_sops_path, tool, Cmd, Env, Output};

pub const START_TIMEOUT: Duration = Duration::from_secs(60);
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
pub const ACCOUNT: &str = "123456789012";

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
        let out = Cmd::bare(moto_python(), "boto3")
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .time_limit(COMMAND_TIMEOUT)
            .run();
        assert!(out.success(), "boto3 setup failed: {}", out.describe());
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

/// An isolated [`Env`] pointed at a KMS endpoint with dummy credentials (no
/// instance metadata, never the real `~/.aws`: `AWS_CONFIG_FILE` and
/// `AWS_SHARED_CREDENTIALS_FILE` name `aws-config` and `aws-credentials` in the
/// work dir), every command bounded by [`COMMAND_TIMEOUT`]. Paths are relative to
/// the work dir, the cwd of every command.
pub struct Sandbox {
    pub env: Env,
}

impl Sandbox {
    /// A sandbox pointed at `endpoint` with dummy credentials.
    pub fn new(endpoint: &str) -> Sandbox {
        let mut env = Env::new();
        env.set_time_limit(COMMAND_TIMEOUT);
        for (k, v) in [
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ] {
            env.set(k, v);
        }
        let config = env.path("aws-config").display().to_string();
        let credentials = env.path("aws-credentials").display().to_string();
        env.set("AWS_CONFIG_FILE", config);
        env.set("AWS_SHARED_CREDENTIALS_FILE", credentials);
        Sandbox { env }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.env.path(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        self.env.write(name, text)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read")
    }

    /// Set (or with `None`, remove) an environment variable for later commands.
    pub fn set(&mut self, key: &str, value: Option<&str>) -> &mut Sandbox {
        match value {
            Some(v) => self.env.set(key, v),
            None => self.env.remove(key),
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
        self.env.tool("age-keygen").arg("-o").arg(&path).run().ok();
        let text = std::fs::read_to_string(&path).expect("key file");
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("public key line")
            .to_string();
        (path, recipient)
    }

    /// Run `git-sops ARGS` on a pseudo-terminal (util-linux `script`), typing
    /// `input`. The terminal carries both streams: `stdout` and `stderr` both hold it.
    pub fn git_sops_on_tty(&self, args: &str, input: &str) -> Output {
        let line = format!("{} {args}", git_sops_path().display());
        let mut out = self
            .env
            .tool("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(input)
            .run();
        out.stderr = String::from_utf8_lossy(&out.stdout).into_owned();
        out
    }

    fn with(cmd: Cmd, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = cmd.args(args);
        for (k, v) in extra {
            cmd = cmd.env(k, v);
        }
        cmd.run()
    }

    pub fn git_sops(&self, args: &[&str]) -> Output {
        Self::with(self.env.git_sops(), args, &[])
    }

    pub fn git_sops_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        Self::with(self.env.git_sops(), args, extra)
    }

    pub fn sops(&self, args: &[&str]) -> Output {
        Self::with(self.env.sops(), args, &[])
    }

    pub fn sops_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        Self::with(self.env.sops(), args, extra)
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
