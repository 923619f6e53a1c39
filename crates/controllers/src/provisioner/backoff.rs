//! Per-object exponential backoff for retries after failures (the rate-limited work queues of
//! the Go sidecars: 1 s doubling up to 5 min), and the "slow set" that holds back objects whose
//! last attempt failed in a way retrying soon cannot fix.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures per object key, turned into growing delays.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Delays start at `base` and double up to `max`.
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::default(),
        }
    }

    /// Records a failure of `key` and returns how long to wait before the next attempt.
    pub(crate) fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("backoff lock");
        let count = failures.entry(key.to_string()).or_insert(0);
        let delay = self
            .base
            .saturating_mul(2u32.saturating_pow(*count))
            .min(self.max);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets the failures of `key` (it succeeded or went away).
    pub(crate) fn forget(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }
}

/// Objects held back until a deadline, each with a tag that releases it early when it changes
/// (upstream keys infeasible provisioning by the class's uid).
#[derive(Debug, Default)]
pub(crate) struct SlowSet {
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl SlowSet {
    /// Holds `key` back for `hold` (keeps an earlier deadline if there is one).
    pub(crate) fn add(&self, key: &str, tag: &str, hold: Duration) {
        self.entries
            .lock()
            .expect("slow set lock")
            .entry(key.to_string())
            .or_insert_with(|| (Instant::now() + hold, tag.to_string()));
    }

    /// How long `key` is still held back (None when it is not, or its tag changed).
    pub(crate) fn remaining(&self, key: &str, tag: &str) -> Option<Duration> {
        let mut entries = self.entries.lock().expect("slow set lock");
        let (deadline, held_tag) = entries.get(key)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if held_tag != tag || left.is_zero() {
            entries.remove(key);
            return None;
        }
        Some(left)
    }

    /// Releases `key`.
    pub(crate) fn remove(&self, key: &str) {
        self.entries.lock().expect("slow set lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_and_reset() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| b.failed("k").as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        b.forget("k");
        assert_eq!(b.failed("k"), Duration::from_secs(1));
    }

    #[test]
    fn slow_entries_expire_or_leave_when_their_tag_changes() {
        let s = SlowSet::default();
        s.add("k", "class-1", Duration::from_secs(60));
        assert!(s.remaining("k", "class-1").is_some());
        assert!(s.remaining("k", "class-2").is_none());
        assert!(
            s.remaining("k", "class-1").is_none(),
            "a changed tag releases it"
        );
        s.add("k", "t", Duration::ZERO);
        assert!(s.remaining("k", "t").is_none());
    }
}
