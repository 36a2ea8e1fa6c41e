//! A small HTTP/1.1 proxy on loopback in front of moto that adds a fixed delay
//! to every request (a simulated KMS round trip) and counts requests by their
//! `X-Amz-Target` (`TrentService.Decrypt`, `TrentService.Encrypt`, ...).
//! The client sends plain HTTP to it (`AWS_ENDPOINT_URL`); each connection is
//! forwarded to moto on its own connection, requests parsed (headers and
//! `Content-Length` body), responses streamed back untouched. [`DelayProxy::throttle`]
//! answers the next N requests of one operation itself with AWS' throttling error
//! (HTTP 400 `ThrottlingException`), without forwarding them;
//! [`DelayProxy::fail_quoting`] answers with a `ValidationException` whose
//! message quotes the request body (the worst an AWS error message could do).
//! [`DelayProxy::deny`] answers requests with `AccessDeniedException` (all of
//! them, or only those that arrive while another request of the operation is
//! being delayed: never a request made alone), [`DelayProxy::throttle_concurrent`]
//! with `ThrottlingException` only such requests, and
//! [`DelayProxy::max_concurrent`] says how many requests of an operation were
//! ever delayed at the same time.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct DelayProxy {
    pub port: u16,
    delay_ms: Arc<AtomicU64>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    throttles: Arc<Mutex<HashMap<String, usize>>>,
    quoting: Arc<Mutex<HashMap<String, usize>>>,
    extra: Arc<Extra>,
}

/// Denials and concurrency, by operation (the `X-Amz-Target` suffix).
#[derive(Default)]
struct Extra {
    /// (requests to fail, only those made while another one is in flight,
    /// the error code).
    deny: Mutex<HashMap<String, (usize, bool, &'static str)>>,
    /// Requests being delayed now, and the most ever at once.
    delayed: Mutex<HashMap<String, (usize, usize)>>,
}

impl DelayProxy {
    /// Answer the next `n` requests of `operation` with `AccessDeniedException`
    /// (counted, not forwarded); with `only_concurrent`, only requests that
    /// arrive while another request of `operation` is being delayed.
    pub fn deny(&self, operation: &str, n: usize, only_concurrent: bool) {
        self.extra.deny.lock().expect("deny").insert(
            operation.to_string(),
            (n, only_concurrent, "AccessDeniedException"),
        );
    }

    /// Answer the next `n` requests of `operation` that arrive while another
    /// request of it is being delayed with `ThrottlingException`.
    pub fn throttle_concurrent(&self, operation: &str, n: usize) {
        self.extra
            .deny
            .lock()
            .expect("deny")
            .insert(operation.to_string(), (n, true, "ThrottlingException"));
    }

    /// The most requests of `operation` ever delayed at the same time (with a
    /// delay set, the most in flight at once).
    pub fn max_concurrent(&self, operation: &str) -> usize {
        self.extra
            .delayed
            .lock()
            .expect("delayed")
            .get(operation)
            .map_or(0, |(_, max)| *max)
    }

    /// Answer the next `n` requests whose `X-Amz-Target` ends in `.operation`
    /// with a throttling error (they are counted, not forwarded).
    pub fn fail_quoting(&self, operation: &str, n: usize) {
        self.quoting
            .lock()
            .expect("quoting")
            .insert(operation.to_string(), n);
    }

    pub fn throttle(&self, operation: &str, n: usize) {
        self.throttles
            .lock()
            .expect("throttles")
            .insert(operation.to_string(), n);
    }

    /// Requests of every operation together.
    pub fn total(&self) -> usize {
        self.counts.lock().expect("counts").values().sum()
    }

    /// All counts, by `X-Amz-Target` (or `other`).
    pub fn counts(&self) -> HashMap<String, usize> {
        self.counts.lock().expect("counts").clone()
    }

    /// A proxy to `upstream_port` on 127.0.0.1, initially without delay.
    pub fn start(upstream_port: u16) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let throttles = Arc::new(Mutex::new(HashMap::new()));
        let quoting = Arc::new(Mutex::new(HashMap::new()));
        let extra = Arc::new(Extra::default());
        let (d, c, t, q, x) = (
            delay_ms.clone(),
            counts.clone(),
            throttles.clone(),
            quoting.clone(),
            extra.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (d, c, t, q, x) = (d.clone(), c.clone(), t.clone(), q.clone(), x.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, upstream_port, &d, &c, &t, &q, &x);
                });
            }
        });
        DelayProxy {
            port,
            delay_ms,
            counts,
            throttles,
            quoting,
            extra,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests seen with this `X-Amz-Target` suffix (e.g. `Decrypt`).
    pub fn count(&self, operation: &str) -> usize {
        let counts = self.counts.lock().expect("counts");
        counts
            .iter()
            .filter(|(k, _)| k.rsplit('.').next() == Some(operation))
            .map(|(_, v)| *v)
            .sum()
    }

    pub fn reset(&self) {
        self.counts.lock().expect("counts").clear();
    }
}

/// Answer the client here with a KMS error `body` (the upstream connection
/// stays in step: nothing was sent to it).
fn answer_error(client: &TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut w = client.try_clone()?;
    write!(
        w,
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    w.write_all(body)?;
    w.flush()
}

fn serve(
    client: TcpStream,
    upstream_port: u16,
    delay_ms: &AtomicU64,
    counts: &Mutex<HashMap<String, usize>>,
    throttles: &Mutex<HashMap<String, usize>>,
    quoting: &Mutex<HashMap<String, usize>>,
    extra: &Extra,
) -> std::io::Result<()> {
    let upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    let mut up_read = upstream.try_clone()?;
    let mut client_write = client.try_clone()?;
    // Responses: streamed back as they come.
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Write);
    });
    let mut reader = BufReader::new(client);
    let mut upstream_w = upstream;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line)? == 0 {
                let _ = upstream_w.shutdown(Shutdown::Write);
                let _ = back.join();
                return Ok(());
            }
            let end = line == b"\r\n" || line == b"\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let header = |name: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let target = header("x-amz-target").unwrap_or_else(|| "other".into());
        *counts
            .lock()
            .expect("counts")
            .entry(target.clone())
            .or_default() += 1;
        let op = target.rsplit('.').next().unwrap_or("").to_string();
        let throttle = {
            let mut t = throttles.lock().expect("throttles");
            match t.get_mut(&op) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        let quote = {
            let mut t = quoting.lock().expect("quoting");
            match t.get_mut(&op) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        };
        let deny = {
            let mut d = extra.deny.lock().expect("deny");
            let busy = extra
                .delayed
                .lock()
                .expect("delayed")
                .get(&op)
                .is_some_and(|(now, _)| *now > 0);
            match d.get_mut(&op) {
                Some((n, only_concurrent, code)) if *n > 0 && (busy || !*only_concurrent) => {
                    *n -= 1;
                    Some(*code)
                }
                _ => None,
            }
        };
        if let Some(code) = deny {
            let body = serde_json::json!({
                "__type": code,
                "message": if code == "ThrottlingException" {
                    "Rate exceeded".to_string()
                } else {
                    format!("User: arn:aws:iam::123456789012:user/test is not authorized to perform: kms:{op}")
                },
            })
            .to_string();
            let body = body.as_bytes();
            answer_error(reader.get_ref(), body)?;
            continue;
        }
        if throttle || quote {
            // Answered here; the upstream connection stays in step (nothing sent).
            let quoted = serde_json::json!({
                "__type": "ValidationException",
                "message": format!("1 validation error detected: the request {}", String::from_utf8_lossy(&body)),
            })
            .to_string();
            let body: &[u8] = if throttle {
                br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#
            } else {
                quoted.as_bytes()
            };
            answer_error(reader.get_ref(), body)?;
            continue;
        }
        let ms = delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            {
                let mut d = extra.delayed.lock().expect("delayed");
                let e = d.entry(op.clone()).or_default();
                e.0 += 1;
                e.1 = e.1.max(e.0);
            }
            std::thread::sleep(Duration::from_millis(ms));
            if let Some(e) = extra.delayed.lock().expect("delayed").get_mut(&op) {
                e.0 -= 1;
            }
        }
        upstream_w.write_all(&head)?;
        upstream_w.write_all(&body)?;
        upstream_w.flush()?;
    }
}
