//! The AWS plumbing of the KMS keys, shared with other AWS services a tool on
//! top of this crate talks to (git-sops' `publish`: Secrets Manager and SSM), so
//! there is one way to reach AWS per process: the same shared-config loader
//! (credential chain, profiles, SSO, `credential_process`), the same AssumeRole
//! with sops' session name `sops@<hostname>`, the same `AWS_ENDPOINT_URL*`
//! handling, timeouts (`GIT_SOPS_KMS_TIMEOUT`), retries, HTTPS stack (hyper 1 +
//! rustls on ring) and the one current-thread tokio runtime. See the parent
//! module for the whole, and docs/publish.md for the publish side.
//!
//! What is exposed is deliberately small: an [`SdkConfig`] per (region,
//! profile, role), built once per process and cached; [`block_on`] on the one
//! runtime; [`run_bounded`] (many futures, at most N in flight);
//! [`retry_throttled`] (a call again after a jittered backoff while AWS says
//! "too many requests"); and [`error_text`] (an SDK error as one line).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use aws_config::SdkConfig;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

use super::client::facade;
use crate::keys::KeyError;

/// (region, profile, role)
type ConfigId = (String, String, String);

fn configs() -> &'static Mutex<HashMap<ConfigId, SdkConfig>> {
    static CONFIGS: OnceLock<Mutex<HashMap<ConfigId, SdkConfig>>> = OnceLock::new();
    CONFIGS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The SDK configuration for `region` with the credentials of `profile` (empty:
/// the default chain) and, when `role` is not empty, that role assumed with
/// sops' session name. Built once per process per (region, profile, role) and
/// shared with the KMS clients. A bad role ARN is refused before any call.
pub fn sdk_config(region: &str, profile: &str, role: &str) -> Result<SdkConfig, KeyError> {
    if !role.is_empty() {
        super::check_role(role)?;
    }
    let id = (region.to_string(), profile.to_string(), role.to_string());
    if let Some(c) = configs().lock().ok().and_then(|m| m.get(&id).cloned()) {
        return Ok(c);
    }
    let facade = facade()?;
    let conf = facade
        .rt
        .block_on(facade.load_config(region, profile, role));
    if let Ok(mut m) = configs().lock() {
        m.insert(id, conf.clone());
    }
    Ok(conf)
}

/// Run `fut` to completion on the process's one runtime.
pub fn block_on<F: Future>(fut: F) -> Result<F::Output, KeyError> {
    Ok(facade()?.rt.block_on(fut))
}

/// Run every future on the one runtime, at most `in_flight` at a time; the
/// results are in the order of `futures` (`None` for a task that panicked).
pub fn run_bounded<T, Fut>(futures: Vec<Fut>, in_flight: usize) -> Result<Vec<Option<T>>, KeyError>
where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let n = futures.len();
    let limit = in_flight.max(1);
    let done = block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        let mut pending = futures.into_iter().enumerate();
        let mut results: Vec<Option<T>> = (0..n).map(|_| None).collect();
        loop {
            while set.len() < limit {
                let Some((i, fut)) = pending.next() else {
                    break;
                };
                set.spawn(async move { (i, fut.await) });
            }
            match set.join_next().await {
                Some(Ok((i, out))) => results[i] = Some(out),
                Some(Err(_)) => {}
                None => break,
            }
        }
        results
    })?;
    Ok(done)
}

/// How many times [`retry_throttled`] calls again after a throttling answer
/// (on top of the SDK's own retries of the same request).
pub const THROTTLE_RETRIES: u32 = 5;

/// Call `make()` and await it; while the answer is a throttling error
/// (`code_of` gives its AWS error code), wait with exponential backoff and jitter
/// (250 ms doubling) and call again, at most [`THROTTLE_RETRIES`] more times.
pub async fn retry_throttled<T, E, Fut>(
    mut make: impl FnMut() -> Fut,
    code_of: impl Fn(&E) -> Option<String>,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(250);
    let mut tries = 0;
    loop {
        match make().await {
            Err(e) if tries < THROTTLE_RETRIES && is_throttling(code_of(&e).as_deref()) => {
                tries += 1;
                let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1);
                tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                backoff *= 2;
            }
            other => return other,
        }
    }
}

/// The error codes AWS uses for "too many requests".
pub fn is_throttling(code: Option<&str>) -> bool {
    super::batch::is_throttling(code)
}

/// The AWS error code of an SDK error, when it is a service error.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<String> {
    match err {
        SdkError::ServiceError(se) => se.err().code().map(str::to_string),
        _ => None,
    }
}

/// An SDK error as one line: the AWS code and message for a service error, else
/// the chain of causes (timeouts, an unreachable endpoint, missing credentials,
/// a refused AssumeRole). AWS error messages name resources, never values.
pub fn error_text<E>(err: &SdkError<E, aws_sdk_kms::config::http::HttpResponse>) -> String
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    if let SdkError::ServiceError(se) = err {
        let code = se.err().code().unwrap_or("error");
        let msg = se.err().message().unwrap_or("");
        return format!("{code}: {msg}");
    }
    super::classify::chain_text(err)
}
