//! AWS KMS master keys, as sops uses them: the raw data key (or a 33-byte Shamir
//! share) is sent to KMS `Encrypt` under the key ARN with the entry's encryption
//! context, and the std-base64 `CiphertextBlob` becomes the metadata `enc`;
//! `Decrypt` sends it back with the same context. The region comes from the key
//! ARN, credentials from the standard chain (or the entry's `aws_profile`), and a
//! `role` is assumed through STS with the session name `sops@<hostname>`, exactly
//! as sops 3.11 does. `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_KMS` are honoured by
//! the SDK's own configuration loader.
//!
//! The AWS SDK is asynchronous; everything async stays inside this module behind a
//! blocking facade ([`encrypt`], [`decrypt`], and [`decrypt_many`], which runs a
//! checkout's unwraps concurrently on the same runtime, and [`encrypt_many`], a
//! bulk key command's wraps). One current-thread tokio
//! runtime is created lazily per process, and one KMS client per (region, profile, role) is
//! kept for the life of the process, so credentials (and an assumed role's
//! session) are resolved once. Every call is bounded by a timeout
//! (`GIT_SOPS_KMS_TIMEOUT` seconds, default [`DEFAULT_TIMEOUT_SECS`]), and every
//! failure is classified into a [`KeyError`] that says what happened and what to
//! do: access denied, no credentials, rejected credentials, a role that cannot be
//! assumed, a wrong encryption context, a missing or disabled key, an unreachable
//! endpoint, a timeout.
//!
//! The parts: this file holds what needs no SDK (the key reference, ARN and role
//! checks) and the public calls; `client` the runtime and the per-process client
//! cache; `batch` the concurrent unwrap and wrap of many data keys; `classify` what an SDK
//! failure means. Without the `kms` cargo feature only this file is built, and
//! every call that would reach AWS fails with [`KeyError::KmsNotBuilt`].
//! `aws` exposes the same configuration, runtime and bounded concurrency to
//! other AWS services (git-sops' `publish`), so there is one path to AWS.

use std::sync::OnceLock;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::KeyError;

#[cfg(feature = "kms")]
pub mod aws;
#[cfg(feature = "kms")]
mod batch;
#[cfg(feature = "kms")]
mod classify;
#[cfg(feature = "kms")]
mod client;

/// The default budget for one KMS call, retries and credential resolution included.
#[cfg(feature = "kms")]
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 20;

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
pub(crate) fn region_of(arn: &str) -> Result<String, KeyError> {
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
pub(crate) fn check_role(role: &str) -> Result<(), KeyError> {
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
    #[cfg(feature = "kms")]
    let wrapped = client::encrypt(key, secret);
    #[cfg(not(feature = "kms"))]
    let wrapped = {
        let _ = secret;
        Err(KeyError::KmsNotBuilt)
    };
    wrapped
}

/// Unwrap an `enc` value with KMS `Decrypt`, naming the key ARN as sops does.
pub fn decrypt(key: &KmsKeyRef<'_>, enc: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let blob = blob_of(enc)?;
    check(key)?;
    #[cfg(feature = "kms")]
    let plain = client::decrypt(key, blob);
    #[cfg(not(feature = "kms"))]
    let plain = {
        let _ = blob;
        Err(KeyError::KmsNotBuilt)
    };
    plain
}

/// How many KMS calls [`decrypt_many`] keeps in flight by default.
pub(crate) const DEFAULT_IN_FLIGHT: usize = 16;

/// Unwrap many `enc` values at once (a checkout's data keys): the `Decrypt`
/// calls run concurrently on the process's one runtime, at most `in_flight` at
/// a time. Each call keeps the SDK's own retries; calls that KMS still throttles
/// are tried again in a later round after a backoff, with half the concurrency.
/// The results are in the order of `jobs`, each as [`decrypt`] would report it.
pub(crate) fn decrypt_many(
    jobs: &[(KmsKeyRef<'_>, &str)],
    in_flight: usize,
) -> Vec<Result<Zeroizing<Vec<u8>>, KeyError>> {
    let prepared = jobs.iter().map(|(key, enc)| {
        let blob = blob_of(enc)?;
        check(key)?;
        Ok(blob)
    });
    #[cfg(feature = "kms")]
    let results = batch::decrypt_many(jobs, prepared.collect(), in_flight);
    #[cfg(not(feature = "kms"))]
    let results = {
        let _ = in_flight;
        prepared
            .map(|p| p.and(Err(KeyError::KmsNotBuilt)))
            .collect()
    };
    results
}

/// Wrap many secrets at once (a bulk `updatekeys` or `rotate`): the `Encrypt`
/// calls run concurrently like [`decrypt_many`]'s, with the same bound and the
/// same rounds for throttled calls. The results are in the order of `jobs`,
/// each as [`encrypt`] would report it (the std-base64 blob for `enc`).
pub(crate) fn encrypt_many(
    jobs: &[(KmsKeyRef<'_>, &[u8])],
    in_flight: usize,
) -> Vec<Result<String, KeyError>> {
    let checked = jobs.iter().map(|(key, _)| check(key));
    #[cfg(feature = "kms")]
    let results = batch::encrypt_many(jobs, checked.collect(), in_flight)
        .into_iter()
        .map(|r| r.map(|blob| base64::engine::general_purpose::STANDARD.encode(blob.as_slice())))
        .collect();
    #[cfg(not(feature = "kms"))]
    let results = {
        let _ = in_flight;
        checked.map(|c| c.and(Err(KeyError::KmsNotBuilt))).collect()
    };
    results
}

/// The ciphertext blob of an `enc` value.
fn blob_of(enc: &str) -> Result<Vec<u8>, KeyError> {
    base64::engine::general_purpose::STANDARD
        .decode(enc.trim())
        .map_err(|e| KeyError::KmsBadEnc(e.to_string()))
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
    }
}
