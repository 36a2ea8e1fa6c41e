//! The per-process side of the KMS facade: one current-thread tokio runtime,
//! one KMS client per (region, profile, role), built once, with the HTTPS stack,
//! timeouts and retries, and the environmental failures (no credentials, an
//! unreachable endpoint) remembered per client so a checkout of many files
//! without network pays the timeout once. See the parent module for the whole.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::classify::{classify, Action};
use super::{region_of, KmsKeyRef, DEFAULT_TIMEOUT_SECS};
use crate::keys::KeyError;

/// Wrap `secret` with KMS `Encrypt` (the key already checked).
pub(super) fn encrypt(key: &KmsKeyRef<'_>, secret: &[u8]) -> Result<String, KeyError> {
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

/// Unwrap a ciphertext blob with KMS `Decrypt` (the key already checked).
pub(super) fn decrypt(key: &KmsKeyRef<'_>, blob: Vec<u8>) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let facade = facade()?;
    let call = facade
        .client(key)?
        .decrypt()
        .key_id(key.arn)
        .ciphertext_blob(Blob::new(blob))
        .set_encryption_context(context_map(key.context))
        .send();
    let out = facade
        .rt
        .block_on(call)
        .map_err(|e| facade.remember(key, classify(e, key, Action::Decrypt)))?;
    plaintext_of(out)
}

/// The data key a `Decrypt` call returned.
pub(super) fn plaintext_of(
    out: aws_sdk_kms::operation::decrypt::DecryptOutput,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    out.plaintext()
        .map(|p| Zeroizing::new(p.as_ref().to_vec()))
        .ok_or_else(|| KeyError::Kms("KMS Decrypt returned no plaintext".into()))
}

pub(super) fn context_map(context: &[(String, String)]) -> Option<HashMap<String, String>> {
    if context.is_empty() {
        None
    } else {
        Some(context.iter().cloned().collect())
    }
}

/// The per-process runtime and clients.
pub(super) struct Facade {
    pub(super) rt: tokio::runtime::Runtime,
    http: aws_sdk_kms::config::SharedHttpClient,
    pub(super) timeout: Duration,
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

pub(super) fn facade() -> Result<&'static Facade, KeyError> {
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
    pub(super) fn client(&self, key: &KmsKeyRef<'_>) -> Result<aws_sdk_kms::Client, KeyError> {
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
    pub(super) fn remember(&self, key: &KmsKeyRef<'_>, e: KeyError) -> KeyError {
        if let (Some(copy), Ok(id)) = (environmental(&e), client_id(key)) {
            if let Ok(mut m) = self.failed.lock() {
                m.insert(id, copy);
            }
        }
        e
    }

    async fn build_client(&self, region: String, key: &KmsKeyRef<'_>) -> aws_sdk_kms::Client {
        let conf = self.load_config(&region, key.aws_profile, key.role).await;
        aws_sdk_kms::Client::from_conf(aws_sdk_kms::config::Builder::from(&conf).build())
    }

    /// The shared configuration of every AWS client of this process (KMS here,
    /// Secrets Manager and SSM through `super::aws`): region, the HTTPS stack,
    /// timeouts, retries, the profile's credentials and, with a role, an
    /// AssumeRole provider with sops' session name in their place.
    pub(super) async fn load_config(
        &self,
        region: &str,
        profile: &str,
        role: &str,
    ) -> aws_config::SdkConfig {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3).min(self.timeout))
            .operation_attempt_timeout((self.timeout / 2).max(Duration::from_secs(1)))
            .operation_timeout(self.timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .http_client(self.http.clone())
            .timeout_config(timeouts)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(200)),
            );
        if !profile.is_empty() {
            loader = loader.profile_name(profile);
        }
        let base = loader.load().await;
        if role.is_empty() {
            return base;
        }
        let provider = AssumeRoleProvider::builder(role)
            .session_name(session_name())
            .configure(&base)
            .build()
            .await;
        base.into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build()
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
