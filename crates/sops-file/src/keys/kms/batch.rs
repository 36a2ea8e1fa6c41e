//! The concurrent unwrap of many data keys (a checkout's): `Decrypt` calls in
//! flight together on the process's one runtime, with rounds for the calls KMS
//! throttles. See the parent module for the whole.

use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use super::classify::{classify, Action};
use super::client::{context_map, facade, plaintext_of};
use super::KmsKeyRef;
use crate::keys::KeyError;

/// How many rounds [`decrypt_many`] gives calls that KMS throttled.
const THROTTLE_ROUNDS: u32 = 4;

/// [`super::decrypt_many`] once each job's blob is read and its key checked
/// (`prepared`, in the order of `jobs`).
pub(super) fn decrypt_many(
    jobs: &[(KmsKeyRef<'_>, &str)],
    prepared: Vec<Result<Vec<u8>, KeyError>>,
    in_flight: usize,
) -> Vec<Result<Zeroizing<Vec<u8>>, KeyError>> {
    type Call = aws_sdk_kms::operation::decrypt::builders::DecryptFluentBuilder;
    let mut results: Vec<Option<Result<Zeroizing<Vec<u8>>, KeyError>>> =
        jobs.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, Call)> = Vec::new();
    for (i, ((key, _), blob)) in jobs.iter().zip(prepared).enumerate() {
        let call = blob.and_then(|blob| {
            Ok(facade()?
                .client(key)?
                .decrypt()
                .key_id(key.arn)
                .ciphertext_blob(Blob::new(blob))
                .set_encryption_context(context_map(key.context)))
        });
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
            for (i, call, out) in done {
                let (key, _) = &jobs[i];
                match out {
                    Ok(out) => {
                        results[i] = Some(plaintext_of(out));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_known() {
        assert!(is_throttling(Some("ThrottlingException")));
        assert!(!is_throttling(Some("AccessDeniedException")) && !is_throttling(None));
    }
}
