//! A work queue with client-go's semantics: a key is queued at most once, never handed to
//! two workers at a time (a key added while it is being processed is queued again when the
//! worker is done), and failed keys come back after a per-key exponential backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// The first retry delay of a failing key; doubled per failure up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(10);
/// The longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct State<K> {
    queue: VecDeque<K>,
    queued: HashSet<K>,
    processing: HashSet<K>,
    /// Added while processing: queued again by [`WorkQueue::done`].
    dirty: HashSet<K>,
    failures: HashMap<K, u32>,
}

/// See the module documentation. Cheap to share behind an [`Arc`].
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    ready: Notify,
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    /// An empty queue.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                processing: HashSet::new(),
                dirty: HashSet::new(),
                failures: HashMap::new(),
            }),
            ready: Notify::new(),
        })
    }

    /// Queues `key` unless it is queued already.
    pub fn add(&self, key: K) {
        let mut state = self.state.lock().expect("queue lock");
        if state.processing.contains(&key) {
            state.dirty.insert(key);
            return;
        }
        if state.queued.insert(key.clone()) {
            state.queue.push_back(key);
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: K, delay: Duration) {
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queues `key` after its backoff (which this failure doubles).
    pub fn add_rate_limited(self: &Arc<Self>, key: K) {
        let failures = {
            let mut state = self.state.lock().expect("queue lock");
            let failures = state.failures.entry(key.clone()).or_insert(0);
            *failures = failures.saturating_add(1);
            *failures
        };
        let delay = BASE_BACKOFF
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        self.add_after(key, delay);
    }

    /// Resets `key`'s backoff (it was processed successfully).
    pub fn forget(&self, key: &K) {
        self.state.lock().expect("queue lock").failures.remove(key);
    }

    /// The next key; the caller must call [`WorkQueue::done`] with it.
    pub async fn get(&self) -> K {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().expect("queue lock");
                if let Some(key) = state.queue.pop_front() {
                    state.queued.remove(&key);
                    state.processing.insert(key.clone());
                    let more = !state.queue.is_empty();
                    drop(state);
                    if more {
                        // Pass the wake-up on: one notify may stand for several adds.
                        self.ready.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; queues it again if it was added meanwhile.
    pub fn done(&self, key: &K) {
        let mut state = self.state.lock().expect("queue lock");
        state.processing.remove(key);
        if state.dirty.remove(key) && state.queued.insert(key.clone()) {
            state.queue.push_back(key.clone());
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Keys queued and not yet handed out.
    pub fn len(&self) -> usize {
        self.state.lock().expect("queue lock").queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_never_processed_twice_at_once() {
        let queue = WorkQueue::new();
        queue.add("a");
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.len(), 2);
        let first = queue.get().await;
        assert_eq!(first, "a");
        // Added while processing: held back until done.
        queue.add("a");
        assert_eq!(queue.get().await, "b");
        assert!(queue.is_empty());
        queue.done(&"a");
        assert_eq!(queue.get().await, "a");
    }

    #[tokio::test]
    async fn failed_keys_come_back_after_a_backoff() {
        let queue = WorkQueue::new();
        queue.add_rate_limited("x");
        let started = std::time::Instant::now();
        let key = tokio::time::timeout(Duration::from_secs(1), queue.get())
            .await
            .expect("key comes back");
        assert_eq!(key, "x");
        assert!(started.elapsed() >= BASE_BACKOFF);
    }
}
