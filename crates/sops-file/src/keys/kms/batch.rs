//! Many KMS calls at once (a checkout's unwraps, a bulk `updatekeys`' or
//! `rotate`'s wraps): `Decrypt` or `Encrypt` calls in flight together on the
//! process's one runtime, at most `in_flight` at a time, with rounds for the
//! calls KMS throttles. One loop serves both operations, so the bound and the
//! throttling behaviour are the same everywhere. See the parent module for the whole.

use std::time::Duration;

use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::builders::DecryptFluentBuilder;
use aws_sdk_kms::operation::decrypt::{DecryptError, DecryptOutput};
use aws_sdk_kms::operation::encrypt::builders::EncryptFluentBuilder;
use aws_sdk_kms::operation::encrypt::{EncryptError, EncryptOutput};
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use super::classify::{classify, Action};
use super::client::{context_map, facade, plaintext_of};
use super::KmsKeyRef;
use crate::keys::KeyError;

/// How many rounds [`run`] gives calls that KMS throttled.
const THROTTLE_ROUNDS: u32 = 4;

/// One prepared call.
#[derive(Clone)]
enum Call {
    Decrypt(DecryptFluentBuilder),
    Encrypt(EncryptFluentBuilder),
}

/// What one call returned.
enum Outcome {
    Decrypted(Result<DecryptOutput, SdkError<DecryptError, HttpResponse>>),
    Encrypted(Result<EncryptOutput, SdkError<EncryptError, HttpResponse>>),
}

impl Call {
    async fn send(self) -> Outcome {
        match self {
            Call::Decrypt(c) => Outcome::Decrypted(c.send().await),
            Call::Encrypt(c) => Outcome::Encrypted(c.send().await),
        }
    }
}

/// [`super::decrypt_many`] once each job's blob is read and its key checked
/// (`prepared`, in the order of `jobs`).
pub(super) fn decrypt_many(
    jobs: &[(KmsKeyRef<'_>, &str)],
    prepared: Vec<Result<Vec<u8>, KeyError>>,
    in_flight: usize,
) -> Vec<Result<Zeroizing<Vec<u8>>, KeyError>> {
    let keys: Vec<KmsKeyRef<'_>> = jobs.iter().map(|(k, _)| *k).collect();
    let calls = keys
        .iter()
        .zip(prepared)
        .map(|(key, blob)| {
            blob.and_then(|blob| {
                Ok(Call::Decrypt(
                    facade()?
                        .client(key)?
                        .decrypt()
                        .key_id(key.arn)
                        .ciphertext_blob(Blob::new(blob))
                        .set_encryption_context(context_map(key.context)),
                ))
            })
        })
        .collect();
    run(&keys, calls, in_flight)
}

/// [`super::encrypt_many`] once each job's key is checked: the ciphertext blob
/// of each secret (raw bytes), in the order of `jobs`.
pub(super) fn encrypt_many(
    jobs: &[(KmsKeyRef<'_>, &[u8])],
    checked: Vec<Result<(), KeyError>>,
    in_flight: usize,
) -> Vec<Result<Zeroizing<Vec<u8>>, KeyError>> {
    let keys: Vec<KmsKeyRef<'_>> = jobs.iter().map(|(k, _)| *k).collect();
    let calls = jobs
        .iter()
        .zip(checked)
        .map(|((key, secret), ok)| {
            ok.and_then(|()| {
                Ok(Call::Encrypt(
                    facade()?
                        .client(key)?
                        .encrypt()
                        .key_id(key.arn)
                        .plaintext(Blob::new(secret.to_vec()))
                        .set_encryption_context(context_map(key.context)),
                ))
            })
        })
        .collect();
    run(&keys, calls, in_flight)
}

/// Run the calls (one per key of `keys`; an `Err` is that job's result as is),
/// at most `in_flight` at once; calls KMS throttles are tried again in later
/// rounds after a backoff, with half the concurrency. Decrypt results are the
/// plaintext, Encrypt results the ciphertext blob.
fn run(
    keys: &[KmsKeyRef<'_>],
    calls: Vec<Result<Call, KeyError>>,
    in_flight: usize,
) -> Vec<Result<Zeroizing<Vec<u8>>, KeyError>> {
    let mut results: Vec<Option<Result<Zeroizing<Vec<u8>>, KeyError>>> =
        keys.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, Call)> = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        match call {
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
            let last = round == THROTTLE_ROUNDS;
            for (i, call, out) in done {
                let key = &keys[i];
                let throttled = match &out {
                    Outcome::Decrypted(Err(e)) => is_throttling(e.code()),
                    Outcome::Encrypted(Err(e)) => is_throttling(e.code()),
                    _ => false,
                };
                if throttled && !last {
                    pending.push((i, call));
                    continue;
                }
                results[i] = Some(match out {
                    Outcome::Decrypted(Ok(out)) => plaintext_of(out),
                    Outcome::Encrypted(Ok(out)) => out
                        .ciphertext_blob()
                        .map(|b| Zeroizing::new(b.as_ref().to_vec()))
                        .ok_or_else(|| KeyError::Kms("KMS Encrypt returned no ciphertext".into())),
                    Outcome::Decrypted(Err(e)) => {
                        Err(facade.remember(key, classify(e, key, Action::Decrypt)))
                    }
                    Outcome::Encrypted(Err(e)) => {
                        Err(facade.remember(key, classify(e, key, Action::Encrypt)))
                    }
                });
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
        .map(|r| r.unwrap_or_else(|| Err(KeyError::Kms("the KMS call did not complete".into()))))
        .collect()
}

/// The error codes AWS uses for "too many requests".
pub(super) fn is_throttling(code: Option<&str>) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_known() {
        assert!(is_throttling(Some("ThrottlingException")));
        assert!(!is_throttling(Some("AccessDeniedException")) && !is_throttling(None));
    }
}
