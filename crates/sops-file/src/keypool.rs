//! Data keys wrapped ahead of demand, for a process that encrypts many new files
//! one after another (the long-running clean filter during a `git add` of many
//! new files). git hands the filter one file at a time and waits for each answer,
//! so the filter cannot batch what it has not seen yet; with KMS recipients every
//! new file would wait one `Encrypt` round trip after another. Instead, once a
//! recipient set (key groups, every recipient's ARN, role, context and profile,
//! age recipients, the Shamir threshold: everything that shapes the wrapped keys)
//! has been asked for twice, fresh data keys for it are generated and wrapped in
//! the background, concurrently, through [`keygroups::wrap_many`] (the bounded,
//! throttling-aware KMS batch of a bulk `updatekeys`), while the filter answers git.
//!
//! * Every file still gets its own fresh random data key: a prepared key is
//!   handed out once and then forgotten here. Prepared keys live only in memory,
//!   in zeroizing [`DataKey`]s, are never written anywhere, and are dropped (and
//!   zeroized) when the pool is.
//! * What is prepared ahead is bounded by demand: at any time the keys prepared
//!   and not yet handed out number at most `min(`[`AHEAD_CAP`]`, handed out - 1)`
//!   (plus the one a waiting file asks for), per recipient set. The KMS calls
//!   spent on keys never used are therefore at most that many keys' worth (each
//!   key costs one `Encrypt` per KMS recipient), never more than the keys actually
//!   used; a single new file costs nothing extra. The allowance grows as files
//!   keep coming (roughly doubling every round trip), so a long run reaches the
//!   concurrency bound quickly.
//! * At most `kms::DEFAULT_IN_FLIGHT` (16) KMS calls run at once for the pool, in at
//!   most [`MAX_BATCHES`] batches, each on its own short-lived thread (the AWS
//!   runtime and its async code stay inside `keys::kms`).
//! * A failure while preparing (throttling past the batch's retry rounds, access
//!   denied, an unreachable endpoint) never fails a file by itself: the failed
//!   keys are dropped, preparing stops for that recipient set, and the next file
//!   that finds no prepared key wraps its own synchronously, as without the pool,
//!   which reports the real error if there still is one. After such a synchronous
//!   success preparing starts again from a small allowance.
//! * Sets without a KMS recipient are wrapped on demand (age wraps are local
//!   X25519 operations of microseconds); so are sets beyond the first
//!   [`MAX_SETS`] distinct ones of a process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::datakey::DataKey;
use super::keygroups::{self, KeyGroupError, Recipient, WrapJob};
use super::metadata::KeyGroup;
use crate::keys::kms;

/// The most keys prepared ahead (not yet handed out) for one recipient set:
/// enough to keep the full bound of concurrent calls in flight while the
/// filter is faster than KMS (it takes each key as it arrives). More would
/// only pile up keys that may end up unused (each costs a KMS call, and the
/// KMS service's own time, which a local KMS such as moto spends serially).
pub const AHEAD_CAP: usize = kms::DEFAULT_IN_FLIGHT;

/// The most distinct recipient sets one pool prepares keys for.
pub const MAX_SETS: usize = 8;

/// The most batches (threads) preparing keys at once. Keys are asked for one
/// at a time as files take them, so batches are often of one key: as many
/// batches as calls in flight keep the bound reachable.
pub const MAX_BATCHES: usize = kms::DEFAULT_IN_FLIGHT;

/// A data key wrapped for a recipient set: the key, its key groups and the
/// Shamir threshold, as [`keygroups::wrap_new`] returns them.
pub type Wrapped = (DataKey, Vec<KeyGroup>, usize);

/// Everything that determines the wrapped keys of a new file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RecipientSet {
    groups: Vec<Vec<Recipient>>,
    threshold: usize,
}

/// One recipient set's prepared keys and its demand.
#[derive(Default)]
struct SetState {
    ready: VecDeque<Wrapped>,
    /// Keys being wrapped by running batches.
    in_flight: usize,
    /// Keys handed out since the pool was created or preparing last failed.
    served: usize,
    /// A file is waiting for a key of this set.
    waiting: bool,
    /// The last batch failed: prepare nothing until a synchronous wrap succeeds.
    failed: bool,
    /// KMS calls per key (the set's KMS recipients).
    kms_calls: usize,
}

impl SetState {
    /// How many more keys may be prepared now (see the module documentation).
    fn want(&self) -> usize {
        if self.failed {
            return 0;
        }
        let allowance = (self.served + usize::from(self.waiting))
            .saturating_sub(1)
            .min(AHEAD_CAP + usize::from(self.waiting));
        allowance.saturating_sub(self.ready.len() + self.in_flight)
    }
}

#[derive(Default)]
struct State {
    sets: HashMap<RecipientSet, SetState>,
    /// KMS calls of all running batches.
    calls: usize,
    batches: usize,
    /// The pool was dropped: running batches throw their keys away.
    closed: bool,
    /// Keys prepared in total, and how many of them were handed out.
    prepared: usize,
    used: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a batch ends.
    done: Condvar,
}

/// What a pool has done, for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Keys wrapped in the background.
    pub prepared: usize,
    /// Of those, the keys handed out to files.
    pub used: usize,
}

/// New data keys for recipient sets, prepared ahead of demand (see the module
/// documentation). One per process that encrypts many new files.
pub struct KeyPool {
    shared: Arc<Shared>,
}

impl Default for KeyPool {
    fn default() -> Self {
        KeyPool::new()
    }
}

impl KeyPool {
    pub fn new() -> KeyPool {
        KeyPool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                done: Condvar::new(),
            }),
        }
    }

    /// A fresh data key wrapped for `groups` (as [`keygroups::wrap_new`]): one
    /// prepared ahead when there is one, else one wrapped now; either way a
    /// key no other file has or will get.
    pub fn wrap_new(
        &self,
        groups: &[Vec<Recipient>],
        threshold: usize,
    ) -> Result<Wrapped, KeyGroupError> {
        let groups: Vec<Vec<Recipient>> =
            groups.iter().filter(|g| !g.is_empty()).cloned().collect();
        let kms_calls = groups
            .iter()
            .flatten()
            .filter(|r| matches!(r, Recipient::Kms { .. }))
            .count();
        // Without KMS there is nothing to gain; a recipient that cannot be
        // wrapped is reported by the synchronous path, without a thread.
        if kms_calls == 0
            || groups
                .iter()
                .flatten()
                .any(|r| keygroups::check_recipient(r).is_err())
        {
            return keygroups::wrap_new(&groups, threshold);
        }
        let set = RecipientSet { groups, threshold };
        let Some(mut st) = self.lock() else {
            return keygroups::wrap_new(&set.groups, threshold);
        };
        if !st.sets.contains_key(&set) && st.sets.len() >= MAX_SETS {
            drop(st);
            return keygroups::wrap_new(&set.groups, threshold);
        }
        st.sets.entry(set.clone()).or_insert_with(|| SetState {
            kms_calls,
            ..SetState::default()
        });
        while let Some(s) = st.sets.get_mut(&set) {
            if let Some(wrapped) = s.ready.pop_front() {
                s.served += 1;
                s.waiting = false;
                st.used += 1;
                dispatch(&self.shared, &mut st);
                return Ok(wrapped);
            }
            s.waiting = true;
            dispatch(&self.shared, &mut st);
            if st.sets.get(&set).is_none_or(|s| s.in_flight == 0) {
                break;
            }
            st = match self.shared.done.wait(st) {
                Ok(st) => st,
                Err(_) => return keygroups::wrap_new(&set.groups, threshold),
            };
        }
        // Nothing prepared and nothing coming (the first key of a set, or
        // preparing failed): wrap this file's key here, as without a pool.
        if let Some(s) = st.sets.get_mut(&set) {
            s.waiting = false;
        }
        drop(st);
        let wrapped = keygroups::wrap_new(&set.groups, threshold);
        if let (Ok(_), Some(mut st)) = (&wrapped, self.lock()) {
            if let Some(s) = st.sets.get_mut(&set) {
                s.failed = false;
                s.served += 1;
            }
            dispatch(&self.shared, &mut st);
        }
        wrapped
    }

    /// Keys prepared and used so far.
    pub fn stats(&self) -> PoolStats {
        self.lock()
            .map(|st| PoolStats {
                prepared: st.prepared,
                used: st.used,
            })
            .unwrap_or_default()
    }

    fn lock(&self) -> Option<MutexGuard<'_, State>> {
        self.shared.state.lock().ok()
    }
}

impl Drop for KeyPool {
    /// Prepared keys are dropped (zeroized) now; batches still running drop
    /// theirs when they end (or with the process).
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.closed = true;
            st.sets.clear();
        }
    }
}

/// Start the batches the demand allows (called with the state locked, after
/// anything that changes demand or frees capacity).
fn dispatch(shared: &Arc<Shared>, st: &mut State) {
    if st.closed {
        return;
    }
    let sets: Vec<RecipientSet> = st.sets.keys().cloned().collect();
    for set in sets {
        if st.batches >= MAX_BATCHES {
            return;
        }
        let room = kms::DEFAULT_IN_FLIGHT.saturating_sub(st.calls);
        let Some(s) = st.sets.get_mut(&set) else {
            continue;
        };
        let per_key = s.kms_calls.max(1);
        // A set with more KMS recipients than the bound still gets one key at a time.
        let fits = if room == kms::DEFAULT_IN_FLIGHT {
            (room / per_key).max(1)
        } else {
            room / per_key
        };
        let n = s.want().min(fits);
        if n == 0 {
            continue;
        }
        let worker = Arc::clone(shared);
        let job = set.clone();
        let spawned = std::thread::Builder::new()
            .name("git-sops-keys".into())
            .spawn(move || prepare(&worker, job, n, per_key));
        match spawned {
            Ok(_) => {
                s.in_flight += n;
                st.calls += n * per_key;
                st.batches += 1;
            }
            // No thread to be had: the files wrap their own keys.
            Err(_) => s.failed = true,
        }
    }
}

/// One batch: `n` fresh keys wrapped for `set` concurrently (`per_key` KMS
/// calls each), then handed to the pool, or dropped when it is gone.
fn prepare(shared: &Arc<Shared>, set: RecipientSet, n: usize, per_key: usize) {
    let keys: Vec<DataKey> = (0..n).map(|_| DataKey::generate()).collect();
    let jobs: Vec<WrapJob<'_>> = keys
        .iter()
        .map(|key| WrapJob {
            key,
            groups: &set.groups,
            threshold: set.threshold,
        })
        .collect();
    // A panic inside the AWS code must not leave the waiting file waiting.
    let results =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| keygroups::wrap_many(&jobs)))
            .unwrap_or_default();
    drop(jobs);
    let Ok(mut guard) = shared.state.lock() else {
        return;
    };
    let st = &mut *guard;
    st.calls = st.calls.saturating_sub(n * per_key);
    st.batches = st.batches.saturating_sub(1);
    if let (false, Some(s)) = (st.closed, st.sets.get_mut(&set)) {
        s.in_flight = s.in_flight.saturating_sub(n);
        let mut results = results.into_iter();
        for key in keys {
            match results.next() {
                Some(Ok((groups, threshold))) => {
                    s.ready.push_back((key, groups, threshold));
                    st.prepared += 1;
                }
                // A failed key is dropped; the file that would have had it
                // wraps its own and reports the error if there still is one.
                // Preparing starts again from a small allowance after that.
                Some(Err(_)) | None => {
                    s.failed = true;
                    s.served = 0;
                }
            }
        }
    }
    dispatch(shared, st);
    drop(guard);
    shared.done.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(served: usize, waiting: bool, ready: usize, in_flight: usize) -> SetState {
        SetState {
            ready: (0..ready)
                .map(|_| (DataKey::generate(), Vec::new(), 0))
                .collect(),
            in_flight,
            served,
            waiting,
            ..SetState::default()
        }
    }

    #[test]
    fn nothing_is_prepared_ahead_of_a_single_file() {
        // The first file of a set wraps its own key; after it nothing is made
        // ahead, so a `git add` of one new file costs one Encrypt.
        assert_eq!(set(0, true, 0, 0).want(), 0);
        assert_eq!(set(1, false, 0, 0).want(), 0);
        // The second asks for its own key only; from then on ahead of demand.
        assert_eq!(set(1, true, 0, 0).want(), 1);
        assert_eq!(set(2, false, 0, 0).want(), 1);
        assert_eq!(set(5, true, 0, 2).want(), 3);
    }

    #[test]
    fn keys_prepared_and_unused_never_exceed_the_keys_used_nor_the_cap() {
        for served in 0..200 {
            for outstanding in 0..(2 * AHEAD_CAP) {
                let s = set(
                    served,
                    false,
                    outstanding / 2,
                    outstanding - outstanding / 2,
                );
                let after = outstanding + s.want();
                assert!(
                    after <= outstanding.max(served.saturating_sub(1).min(AHEAD_CAP)),
                    "served {served}, outstanding {outstanding}: {after}"
                );
            }
        }
        let mut failed = set(100, true, 0, 0);
        failed.failed = true;
        assert_eq!(failed.want(), 0, "nothing is prepared after a failure");
    }

    #[test]
    fn age_only_sets_and_bad_recipients_are_wrapped_on_demand() {
        let pool = KeyPool::new();
        let id = ::age::x25519::Identity::generate();
        let groups = vec![vec![Recipient::Age(id.to_public().to_string())]];
        let mut keys = Vec::new();
        for _ in 0..5 {
            let (key, wrapped, _) = pool.wrap_new(&groups, 0).expect("age wrap");
            assert_eq!(wrapped.len(), 1);
            keys.push(*key.bytes());
        }
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 5, "a fresh key every time");
        let bad = vec![vec![Recipient::Kms {
            arn: "not-an-arn".into(),
            role: String::new(),
            context: Vec::new(),
            aws_profile: String::new(),
        }]];
        assert!(matches!(
            pool.wrap_new(&bad, 0),
            Err(KeyGroupError::BadRecipient { .. })
        ));
        assert_eq!(
            pool.stats(),
            PoolStats::default(),
            "no thread, nothing prepared"
        );
    }
}
