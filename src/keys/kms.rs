//! AWS KMS master keys, as sops uses them: the raw data key (or a 33-byte Shamir
//! share) is sent to KMS `Encrypt` under the key ARN with the entry's encryption
//! context, and the std-base64 `CiphertextBlob` becomes the metadata `enc`;
//! `Decrypt` sends it back with the same context. The region comes from the key
//! ARN, credentials from the standard chain (or the entry's `aws_profile`), and a
//! `role` is assumed through STS with the session name `sops@<hostname>`, exactly
//! as sops 3.11 does. `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_KMS` are honoured by
//! the SDK's own configuration loader.
//!
//! The AWS SDK is asynchronous; everything async stays inside this file behind a
//! blocking facade ([`encrypt`], [`decrypt`], and [`decrypt_many`], which runs a
//! checkout's unwraps concurrently on the same runtime). One current-thread tokio
//! runtime is created lazily per process, and one KMS client per (region, profile, role) is
//! kept for the life of the process, so credentials (and an assumed role's
//! session) are resolved once. Every call is bounded by a timeout
//! (`GIT_SOPS_KMS_TIMEOUT` seconds, default [`DEFAULT_TIMEOUT_SECS`]), and every
//! failure is classified into a [`KeyError`] that says what happened and what to
//! do: access denied, no credentials, rejected credentials, a role that cannot be
//! assumed, a wrong encryption context, a missing or disabled key, an unreachable
//! endpoint, a timeout.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::KeyError;

/// The default budget for one KMS call, retries and credential resolution included.
pub const DEFAULT_TIMEOUT_SECS: u64 = 20;

/// One KMS master key as the metadata (or a recipient) names it.
#[derive(Clone, Copy, Debug)]
pub struct KmsKeyRef<'a> {
    pub arn: &'a str,
    /// An IAM role ARN to assume first, or empty.
    pub role: &'a str,
    /// The encryption context, as (key, value) pairs.
    pub context: &'a [(String, String)],
    /// A shared-config profile, or empty for the default chain.
    pub aws_profile: &'a str,
}

/// The region of a KMS key ARN, by sops' own pattern
/// `^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+$`.
pub fn region_of(arn: &str) -> Result<String, KeyError> {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"^arn:aws[0-9A-Za-z_-]*:kms:(.+):[0-9]+:(?:key|alias)/.+$").ok()
    });
    re.as_ref()
        .and_then(|re| re.captures(arn))
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .ok_or_else(|| KeyError::KmsBadArn {
            arn: arn.to_string(),
        })
}

/// Check a role ARN before any network call (sops would only fail inside STS).
pub fn check_role(role: &str) -> Result<(), KeyError> {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"^arn:aws[0-9A-Za-z_-]*:iam::[0-9]+:role/[\x21-\x7e]+$").ok()
    });
    match re {
        Some(re) if re.is_match(role) => Ok(()),
        _ => Err(KeyError::KmsBadRole {
            role: role.to_string(),
        }),
    }
}

/// Check everything about a key that can be checked without the network.
pub fn check(key: &KmsKeyRef<'_>) -> Result<(), KeyError> {
    region_of(key.arn)?;
    if !key.role.is_empty() {
        check_role(key.role)?;
    }
    Ok(())
}

/// Wrap `secret` with KMS `Encrypt`; returns the std-base64 ciphertext blob for `enc`.
pub fn encrypt(key: &KmsKeyRef<'_>, secret: &[u8]) -> Result<String, KeyError> {
    check(key)?;
    let facade = facade()?;
    let client = facade.client(key)?;
    let call = client
        .encrypt()
        .key_id(key.arn)
        .plaintext(Blob::new(secret.to_vec()))
        .set_encryption_context(context_map(key.context))
        .send();
    let out = facade
        .rt
        .block_on(call)
        .map_err(|e| facade.remember(key, classify(e, key, Action::Encrypt)))?;
    let blob = out
        .ciphertext_blob()
        .ok_or_else(|| KeyError::Kms("KMS Encrypt returned no ciphertext".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
}

/// Unwrap an `enc` value with KMS `Decrypt`, naming the key ARN as sops does.
pub fn decrypt(key: &KmsKeyRef<'_>, enc: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let blob = base64::engine::general_purpose::STANDARD
        .decode(enc.trim())
        .map_err(|e| KeyError::KmsBadEnc(e.to_string()))?;
    check(key)?;
    let facade = facade()?;
    let client = facade.client(key)?;
    let call = client
        .decrypt()
        .key_id(key.arn)
        .ciphertext_blob(Blob::new(blob))
        .set_encryption_context(context_map(key.context))
        .send();
    let out = facade
        .rt
        .block_on(call)
        .map_err(|e| facade.remember(key, classify(e, key, Action::Decrypt)))?;
    let plain = out
        .plaintext()
        .ok_or_else(|| KeyError::Kms("KMS Decrypt returned no plaintext".into()))?;
    Ok(Zeroizing::new(plain.as_ref().to_vec()))
}

/// How many KMS calls [`decrypt_many`] keeps in flight by default.
pub const DEFAULT_IN_FLIGHT: usize = 16;

/// How many rounds [`decrypt_many`] gives calls that KMS throttled.
const THROTTLE_ROUNDS: u32 = 4;

/// Unwrap many `enc` values at once (a checkout's data keys): the `Decrypt`
/// calls run concurrently on the process's one runtime, at most `in_flight` at
/// a time. Each call keeps the SDK's own retries; calls that KMS still throttles
/// are tried again in a later round after a backoff, with half the concurrency.
/// The results are in the order of `jobs`, each as [`decrypt`] would report it.
pub fn decrypt_many(
    jobs: &[(KmsKeyRef<'_>, &str)],
    in_flight: usize,
) -> Vec<Result<Zeroizing<Vec<u8>>, KeyError>> {
    type Call = aws_sdk_kms::operation::decrypt::builders::DecryptFluentBuilder;
    let mut results: Vec<Option<Result<Zeroizing<Vec<u8>>, KeyError>>> =
        jobs.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, Call)> = Vec::new();
    for (i, (key, enc)) in jobs.iter().enumerate() {
        let prepared = base64::engine::general_purpose::STANDARD
            .decode(enc.trim())
            .map_err(|e| KeyError::KmsBadEnc(e.to_string()))
            .and_then(|blob| {
                check(key)?;
                let client = facade()?.client(key)?;
                Ok(client
                    .decrypt()
                    .key_id(key.arn)
                    .ciphertext_blob(Blob::new(blob))
                    .set_encryption_context(context_map(key.context)))
            });
        match prepared {
            Ok(call) => pending.push((i, call)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    if let (Ok(facade), false) = (facade(), pending.is_empty()) {
        let mut limit = in_flight.max(1);
        let mut backoff = Duration::from_millis(250);
        for round in 1..=THROTTLE_ROUNDS {
            let calls = std::mem::take(&mut pending);
            let done = facade.rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                let mut calls = calls.into_iter();
                let mut done = Vec::new();
                loop {
                    while set.len() < limit {
                        let Some((i, call)) = calls.next() else { break };
                        set.spawn(async move {
                            let out = call.clone().send().await;
                            (i, call, out)
                        });
                    }
                    match set.join_next().await {
                        Some(Ok(finished)) => done.push(finished),
                        // A panicked task: its job stays without a result (reported below).
                        Some(Err(_)) => {}
                        None => break,
                    }
                }
                done
            });
            for (i, call, out) in done {
                let (key, _) = &jobs[i];
                match out {
                    Ok(out) => {
                        results[i] = Some(
                            out.plaintext()
                                .map(|p| Zeroizing::new(p.as_ref().to_vec()))
                                .ok_or_else(|| {
                                    KeyError::Kms("KMS Decrypt returned no plaintext".into())
                                }),
                        );
                    }
                    Err(e) if round < THROTTLE_ROUNDS && is_throttling(e.code()) => {
                        pending.push((i, call));
                    }
                    Err(e) => {
                        results[i] =
                            Some(Err(facade.remember(key, classify(e, key, Action::Decrypt))));
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            // Throttled: back off (with jitter) and ask less at once.
            pending.sort_by_key(|(i, _)| *i);
            let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1);
            std::thread::sleep(backoff + Duration::from_millis(jitter));
            backoff *= 2;
            limit = (limit / 2).max(1);
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(KeyError::Kms(
                    "the KMS Decrypt call did not complete".into(),
                ))
            })
        })
        .collect()
}

/// The error codes AWS uses for "too many requests".
fn is_throttling(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "SlowDown"
        )
    )
}

fn context_map(context: &[(String, String)]) -> Option<HashMap<String, String>> {
    if context.is_empty() {
        None
    } else {
        Some(context.iter().cloned().collect())
    }
}

/// The per-process runtime and clients.
struct Facade {
    rt: tokio::runtime::Runtime,
    http: aws_sdk_kms::config::SharedHttpClient,
    timeout: Duration,
    clients: Mutex<HashMap<ClientId, aws_sdk_kms::Client>>,
    /// Failures of the environment (no credentials, unreachable endpoint,
    /// timeout, rejected credentials, a refused role) per client: later calls in
    /// this process fail at once instead of waiting for the network again (a
    /// checkout of many files without network must not pay the timeout per file).
    failed: Mutex<HashMap<ClientId, KeyError>>,
}

/// What a client is built from: region, profile, role.
type ClientId = (String, String, String);

fn client_id(key: &KmsKeyRef<'_>) -> Result<ClientId, KeyError> {
    Ok((
        region_of(key.arn)?,
        key.aws_profile.to_string(),
        key.role.to_string(),
    ))
}

/// A copy of a failure that says nothing about one key or blob, so it holds for
/// every call through the same client.
fn environmental(e: &KeyError) -> Option<KeyError> {
    Some(match e {
        KeyError::KmsNoCredentials { profile, detail } => KeyError::KmsNoCredentials {
            profile: profile.clone(),
            detail: detail.clone(),
        },
        KeyError::KmsBadCredentials { code, detail } => KeyError::KmsBadCredentials {
            code: code.clone(),
            detail: detail.clone(),
        },
        KeyError::KmsAssumeRole { role, detail } => KeyError::KmsAssumeRole {
            role: role.clone(),
            detail: detail.clone(),
        },
        KeyError::KmsUnreachable { endpoint, detail } => KeyError::KmsUnreachable {
            endpoint: endpoint.clone(),
            detail: detail.clone(),
        },
        KeyError::KmsTimeout { endpoint, secs } => KeyError::KmsTimeout {
            endpoint: endpoint.clone(),
            secs: *secs,
        },
        _ => return None,
    })
}

fn facade() -> Result<&'static Facade, KeyError> {
    static FACADE: OnceLock<Result<Facade, String>> = OnceLock::new();
    FACADE
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the AWS client runtime: {e}"))?;
            Ok(Facade {
                rt,
                http: https_client(),
                timeout: call_timeout(),
                clients: Mutex::new(HashMap::new()),
                failed: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
        .map_err(|e| KeyError::Kms(e.clone()))
}

/// hyper 1 + rustls on ring, with the proxy settings from the environment
/// (`HTTPS_PROXY`, `NO_PROXY`, ...), as the SDK's own default client does.
fn https_client() -> aws_sdk_kms::config::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

fn call_timeout() -> Duration {
    let secs = std::env::var("GIT_SOPS_KMS_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(DEFAULT_TIMEOUT_SECS as f64);
    Duration::from_secs_f64(secs.min(3600.0))
}

impl Facade {
    /// The client for this key's region, profile and role (built once), or the
    /// environmental failure an earlier call through it met.
    fn client(&self, key: &KmsKeyRef<'_>) -> Result<aws_sdk_kms::Client, KeyError> {
        let id = client_id(key)?;
        if let Some(e) = self
            .failed
            .lock()
            .ok()
            .and_then(|m| m.get(&id).and_then(environmental))
        {
            return Err(e);
        }
        if let Some(c) = self.clients.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(c);
        }
        let client = self.rt.block_on(self.build_client(id.0.clone(), key));
        if let Ok(mut m) = self.clients.lock() {
            m.insert(id, client.clone());
        }
        Ok(client)
    }

    /// Remember `e` for this key's client if it is environmental; returns it.
    fn remember(&self, key: &KmsKeyRef<'_>, e: KeyError) -> KeyError {
        if let (Some(copy), Ok(id)) = (environmental(&e), client_id(key)) {
            if let Ok(mut m) = self.failed.lock() {
                m.insert(id, copy);
            }
        }
        e
    }

    async fn build_client(&self, region: String, key: &KmsKeyRef<'_>) -> aws_sdk_kms::Client {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3).min(self.timeout))
            .operation_attempt_timeout((self.timeout / 2).max(Duration::from_secs(1)))
            .operation_timeout(self.timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region))
            .http_client(self.http.clone())
            .timeout_config(timeouts)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(200)),
            );
        if !key.aws_profile.is_empty() {
            loader = loader.profile_name(key.aws_profile);
        }
        let base = loader.load().await;
        let mut conf = aws_sdk_kms::config::Builder::from(&base);
        if !key.role.is_empty() {
            let provider = AssumeRoleProvider::builder(key.role)
                .session_name(session_name())
                .configure(&base)
                .build()
                .await;
            conf = conf.credentials_provider(provider);
        }
        aws_sdk_kms::Client::from_conf(conf.build())
    }
}

/// sops' STS session name: `sops@` + the hostname with every character removed
/// that sops' pattern `[^a-zA-Z0-9=,.@-_]+` matches (note `@-_` is a range, so a
/// `-` is dropped and `@A-Z[\]^_` are kept), cut to 64 characters.
fn session_name() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    session_name_for(&host)
}

fn session_name_for(host: &str) -> String {
    let sanitized: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=,.".contains(*c) || ('@'..='_').contains(c))
        .collect();
    let mut name = format!("sops@{sanitized}");
    name.truncate(64);
    name
}

#[derive(Clone, Copy)]
enum Action {
    Encrypt,
    Decrypt,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Encrypt => "kms:Encrypt",
            Action::Decrypt => "kms:Decrypt",
        }
    }
}

/// Where KMS calls go, for messages.
fn endpoint(key: &KmsKeyRef<'_>) -> String {
    let over = |v: &str| std::env::var(v).ok().filter(|s| !s.trim().is_empty());
    over("AWS_ENDPOINT_URL_KMS")
        .or_else(|| over("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| {
            let region = region_of(key.arn).unwrap_or_default();
            format!("https://kms.{region}.amazonaws.com")
        })
}

fn describe_context(context: &[(String, String)]) -> String {
    if context.is_empty() {
        return "(none)".to_string();
    }
    let parts: Vec<String> = context.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{{{}}}", parts.join(","))
}

/// A multi-line message on one line: lines joined with `; ` (a line ending in
/// `:` introduces the next), the SDK's "the credential provider was not
/// enabled" boilerplate shortened.
fn one_line(msg: &str) -> String {
    let mut out = String::new();
    for line in msg.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(&line.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out.replace("the credential provider was not enabled: ", "")
        .replace("the credential provider was not enabled", "not configured")
}

/// The messages of an error chain joined with `: ` on one line (each level's
/// Display only, skipping a level that merely repeats the one before).
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let msg = one_line(&e.to_string());
        if !msg.is_empty() && parts.last().is_none_or(|p| !p.contains(&msg)) {
            parts.push(msg);
        }
        cur = e.source();
    }
    let text = parts.join(": ");
    const MAX: usize = 600;
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

fn find_credentials_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a CredentialsError> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(c);
        }
        cur = e.source();
    }
    None
}

/// Turn an SDK error into what happened and what to do.
fn classify<E>(err: SdkError<E>, key: &KmsKeyRef<'_>, action: Action) -> KeyError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    if let SdkError::ServiceError(se) = &err {
        let (code, detail) = code_and_message(se.err(), se.raw());
        return classify_service(&code, detail, key, action);
    }
    if let SdkError::TimeoutError(_) = &err {
        return KeyError::KmsTimeout {
            endpoint: endpoint(key),
            secs: facade().map(|f| f.timeout.as_secs_f64()).unwrap_or(0.0),
        };
    }
    if let Some(cred) = find_credentials_error(&err) {
        return classify_credentials(cred, key);
    }
    if let SdkError::DispatchFailure(d) = &err {
        let detail = chain_text(&err);
        if d.is_timeout() {
            return KeyError::KmsTimeout {
                endpoint: endpoint(key),
                secs: facade().map(|f| f.timeout.as_secs_f64()).unwrap_or(0.0),
            };
        }
        if d.is_io() || d.is_other() {
            return KeyError::KmsUnreachable {
                endpoint: endpoint(key),
                detail,
            };
        }
    }
    KeyError::Kms(chain_text(&err))
}

/// The error code and message of a service error. When the SDK could not read
/// them (an error body in an unexpected shape: a proxy's HTML page, or an XML
/// `ErrorResponse` where JSON was expected, as moto sends for IAM denials), they
/// are read from the raw response, and a bare 403 counts as access denied.
fn code_and_message<E: ProvideErrorMetadata>(
    err: &E,
    raw: &aws_sdk_kms::config::http::HttpResponse,
) -> (String, String) {
    let code = err.code().unwrap_or("").to_string();
    let message = err.message().unwrap_or("").to_string();
    if !code.is_empty() {
        return (code, message);
    }
    let body = raw
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let tag = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&close)? + start;
        Some(body[start..end].trim().to_string())
    };
    if let Some(code) = tag("Code") {
        return (code, tag("Message").unwrap_or(message));
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| v.get(*n).and_then(|x| x.as_str()))
                .unwrap_or("")
                .to_string()
        };
        let code = field(&["__type", "code", "Code"]);
        let code = code.rsplit('#').next().unwrap_or("").to_string();
        if !code.is_empty() {
            return (code, field(&["message", "Message"]));
        }
    }
    let status = raw.status().as_u16();
    let snippet: String = one_line(&body).chars().take(200).collect();
    let detail = format!(
        "HTTP {status}{}{snippet}",
        if snippet.is_empty() { "" } else { ": " }
    );
    match status {
        403 => ("AccessDenied".into(), detail),
        401 => ("UnrecognizedClientException".into(), detail),
        _ => (String::new(), detail),
    }
}

fn classify_service(code: &str, detail: String, key: &KmsKeyRef<'_>, action: Action) -> KeyError {
    match code {
        "AccessDeniedException" | "AccessDenied" => KeyError::KmsAccessDenied {
            action: action.name(),
            detail,
        },
        "InvalidCiphertextException" => KeyError::KmsWrongContext {
            context: describe_context(key.context),
        },
        "NotFoundException" => KeyError::KmsKeyNotFound {
            region: region_of(key.arn).unwrap_or_default(),
            detail,
        },
        "DisabledException" | "KMSInvalidStateException" | "KeyUnavailableException" => {
            KeyError::KmsKeyUnusable {
                code: code.to_string(),
                detail,
            }
        }
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "IncompleteSignature" => KeyError::KmsBadCredentials {
            code: code.to_string(),
            detail,
        },
        _ => KeyError::Kms(if code.is_empty() {
            detail
        } else {
            format!("{code}: {detail}")
        }),
    }
}

/// Why STS refused AssumeRole, when that is what failed: `Code: message`.
fn sts_reason(cred: &CredentialsError) -> Option<String> {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(cred);
    while let Some(e) = cur {
        if let Some(SdkError::ServiceError(se)) = e.downcast_ref::<SdkError<AssumeRoleError>>() {
            let (code, message) = code_and_message(se.err(), se.raw());
            return Some(format!("STS AssumeRole: {code}: {message}"));
        }
        cur = e.source();
    }
    None
}

fn classify_credentials(cred: &CredentialsError, key: &KmsKeyRef<'_>) -> KeyError {
    let full = chain_text(cred);
    let detail = full.trim_start_matches("not configured: ").to_string();
    let profile = if key.aws_profile.is_empty() {
        std::env::var("AWS_PROFILE").unwrap_or_default()
    } else {
        key.aws_profile.to_string()
    };
    match cred {
        CredentialsError::CredentialsNotLoaded(_) => KeyError::KmsNoCredentials { profile, detail },
        CredentialsError::ProviderTimedOut(_) => KeyError::KmsNoCredentials { profile, detail },
        CredentialsError::InvalidConfiguration(_) => KeyError::KmsNoCredentials { profile, detail },
        _ if !key.role.is_empty() => {
            // The assume-role provider reports STS failures as provider errors;
            // missing base credentials still come through as "not loaded" above.
            let detail = sts_reason(cred).unwrap_or(detail);
            let lower = detail.to_ascii_lowercase();
            if lower.contains("no providers in chain provided credentials")
                || lower.contains("credentialsnotloaded")
            {
                KeyError::KmsNoCredentials { profile, detail }
            } else if lower.contains("invalidclienttokenid")
                || lower.contains("signaturedoesnotmatch")
                || lower.contains("expiredtoken")
            {
                KeyError::KmsBadCredentials {
                    code: "sts".into(),
                    detail,
                }
            } else {
                KeyError::KmsAssumeRole {
                    role: key.role.to_string(),
                    detail,
                }
            }
        }
        _ => KeyError::KmsNoCredentials { profile, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_arn_as_sops_parses_it() {
        assert_eq!(
            region_of("arn:aws:kms:eu-west-1:123456789012:key/abcd").unwrap(),
            "eu-west-1"
        );
        assert_eq!(
            region_of("arn:aws-us-gov:kms:us-gov-west-1:1:alias/x").unwrap(),
            "us-gov-west-1"
        );
        for bad in [
            "",
            "abcd",
            "arn:aws:kms:eu-west-1:123:key/",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:eu-west-1:acct:key/x",
        ] {
            assert!(
                matches!(region_of(bad), Err(KeyError::KmsBadArn { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn roles_are_checked_before_any_call() {
        assert!(check_role("arn:aws:iam::123456789012:role/team/deploy").is_ok());
        assert!(check_role("arn:aws:iam::123:user/bob").is_err());
        assert!(check_role("deploy").is_err());
    }

    #[test]
    fn bad_base64_fails_without_a_network_call() {
        let key = KmsKeyRef {
            arn: "arn:aws:kms:eu-west-1:1:key/k",
            role: "",
            context: &[],
            aws_profile: "",
        };
        assert!(matches!(
            decrypt(&key, "not base64!"),
            Err(KeyError::KmsBadEnc(_))
        ));
    }

    #[test]
    fn many_reports_bad_input_per_job_without_a_network_call() {
        let good = KmsKeyRef {
            arn: "arn:aws:kms:eu-west-1:1:key/k",
            role: "",
            context: &[],
            aws_profile: "",
        };
        let bad_arn = KmsKeyRef {
            arn: "not-an-arn",
            ..good
        };
        let out = decrypt_many(&[(good, "not base64!"), (bad_arn, "AAAA")], 4);
        assert!(matches!(out[0], Err(KeyError::KmsBadEnc(_))));
        assert!(matches!(out[1], Err(KeyError::KmsBadArn { .. })));
        assert!(decrypt_many(&[], 4).is_empty());
        assert!(is_throttling(Some("ThrottlingException")));
        assert!(!is_throttling(Some("AccessDeniedException")) && !is_throttling(None));
    }

    #[test]
    fn session_name_matches_sops() {
        assert_eq!(
            session_name_for("build-42.example.com\n"),
            "sops@build42.example.com"
        );
        assert_eq!(session_name_for("Ünïcode_[x]^"), "sops@ncode_[x]^");
        assert_eq!(session_name_for(&"h".repeat(80)).len(), 64);
    }

    #[test]
    fn session_name_is_sanitized_and_bounded() {
        let n = session_name();
        assert!(n.starts_with("sops@"));
        assert!(n.len() <= 64);
        assert!(n[5..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=,.@[\\]^_".contains(c)));
    }

    #[test]
    fn service_errors_are_classified() {
        let key = KmsKeyRef {
            arn: "arn:aws:kms:eu-west-1:1:key/k",
            role: "",
            context: &[("a".into(), "1".into())],
            aws_profile: "",
        };
        let c = |code: &str| classify_service(code, "m".into(), &key, Action::Decrypt);
        assert!(matches!(
            c("AccessDeniedException"),
            KeyError::KmsAccessDenied { .. }
        ));
        assert!(matches!(
            c("InvalidCiphertextException"),
            KeyError::KmsWrongContext { .. }
        ));
        assert!(matches!(
            c("NotFoundException"),
            KeyError::KmsKeyNotFound { .. }
        ));
        assert!(matches!(
            c("DisabledException"),
            KeyError::KmsKeyUnusable { .. }
        ));
        assert!(matches!(
            c("UnrecognizedClientException"),
            KeyError::KmsBadCredentials { .. }
        ));
        assert!(c("InvalidCiphertextException")
            .to_string()
            .contains("{a:1}"));
    }
}
