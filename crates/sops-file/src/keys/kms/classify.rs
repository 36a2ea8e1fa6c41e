//! What a failed KMS call means: every SDK error (service, timeout, dispatch,
//! credentials, a refused AssumeRole) becomes a [`KeyError`] that says what
//! happened and what to do. See the parent module for the whole.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

use super::{region_of, KmsKeyRef};
use crate::keys::KeyError;

#[derive(Clone, Copy)]
pub(super) enum Action {
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
pub(super) fn chain_text(err: &(dyn StdError + 'static)) -> String {
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
pub(super) fn classify<E>(err: SdkError<E>, key: &KmsKeyRef<'_>, action: Action) -> KeyError
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
            secs: super::client::facade()
                .map(|f| f.timeout.as_secs_f64())
                .unwrap_or(0.0),
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
                secs: super::client::facade()
                    .map(|f| f.timeout.as_secs_f64())
                    .unwrap_or(0.0),
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
