//! What the snapshot loops keep beside their caches ([`crate::informer::Cache`], one watch per
//! kind): reverse indexes kept from the same events, the queues that turn an event about one
//! object into reconciles of the objects it concerns, and the per-object retry backoff.
//!
//! Each kind is watched once per loop; the store is updated before any trigger is sent, so a
//! reconcile started by an event sees at least that event's state.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::controller::{ReconcileReason, ReconcileRequest};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

/// Sends reconcile requests for objects of kind `K` to one applier.
pub(crate) struct Trigger<K: Resource<DynamicType = ()>> {
    sender: mpsc::UnboundedSender<ReconcileRequest<K>>,
}

impl<K: Resource<DynamicType = ()>> Clone for Trigger<K> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
        }
    }
}

impl<K: Resource<DynamicType = ()>> Trigger<K> {
    /// Asks for a reconcile of `name` (in `namespace` for namespaced kinds).
    pub(crate) fn send(&self, namespace: Option<&str>, name: &str, why: &str) {
        let mut obj_ref = ObjectRef::<K>::new(name);
        if let Some(namespace) = namespace {
            obj_ref = obj_ref.within(namespace);
        }
        // A closed queue means the loop is shutting down; nothing is left to trigger.
        let _ = self.sender.unbounded_send(ReconcileRequest {
            obj_ref,
            reason: ReconcileReason::Custom {
                reason: why.to_string(),
            },
        });
    }
}

/// A trigger and the queue stream an applier consumes.
pub(crate) fn queue<K: Resource<DynamicType = ()> + Send + 'static>() -> (
    Trigger<K>,
    impl Stream<Item = Result<ReconcileRequest<K>, Infallible>> + Send + 'static,
) {
    let (sender, receiver) = mpsc::unbounded();
    (Trigger { sender }, receiver.map(Ok))
}

/// `(namespace, name)` of an object or of what it names.
pub(crate) type Key = (String, String);

/// A reverse index: for each key, the objects whose `keys_of` contains it (e.g. for a claim,
/// the snapshots taken of it). Kept current from the same watch events as the store, with the
/// same relist semantics (a relist replaces the whole index at its end).
pub(crate) struct RefIndex<K> {
    keys_of: fn(&K) -> Vec<Key>,
    state: Mutex<IndexState>,
}

#[derive(Default)]
struct IndexState {
    live: Index,
    relist: Option<Index>,
}

#[derive(Default)]
struct Index {
    keys_by_object: HashMap<Key, Vec<Key>>,
    objects_by_key: HashMap<Key, BTreeSet<Key>>,
}

impl Index {
    fn insert(&mut self, object: Key, keys: Vec<Key>) {
        self.remove(&object);
        for key in &keys {
            self.objects_by_key
                .entry(key.clone())
                .or_default()
                .insert(object.clone());
        }
        if !keys.is_empty() {
            self.keys_by_object.insert(object, keys);
        }
    }

    fn remove(&mut self, object: &Key) {
        for key in self.keys_by_object.remove(object).unwrap_or_default() {
            if let Some(objects) = self.objects_by_key.get_mut(&key) {
                objects.remove(object);
                if objects.is_empty() {
                    self.objects_by_key.remove(&key);
                }
            }
        }
    }
}

impl<K: Resource> RefIndex<K> {
    /// An empty index of what `keys_of` says each object names.
    pub(crate) fn new(keys_of: fn(&K) -> Vec<Key>) -> Self {
        Self {
            keys_of,
            state: Mutex::default(),
        }
    }

    /// Applies one watch event.
    pub(crate) fn apply(&self, event: &watcher::Event<K>) {
        let mut state = self.state.lock().expect("index lock");
        match event {
            watcher::Event::Init => state.relist = Some(Index::default()),
            watcher::Event::InitApply(object) => {
                let keys = (self.keys_of)(object);
                let target = match state.relist.as_mut() {
                    Some(relist) => relist,
                    None => &mut state.live,
                };
                target.insert(object_key(object), keys);
            }
            watcher::Event::InitDone => {
                if let Some(relist) = state.relist.take() {
                    state.live = relist;
                }
            }
            watcher::Event::Apply(object) => {
                let keys = (self.keys_of)(object);
                state.live.insert(object_key(object), keys);
            }
            watcher::Event::Delete(object) => state.live.remove(&object_key(object)),
        }
    }

    /// The objects that name `key`.
    pub(crate) fn get(&self, key: &Key) -> Vec<Key> {
        let state = self.state.lock().expect("index lock");
        state
            .live
            .objects_by_key
            .get(key)
            .map(|objects| objects.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The `(namespace, name)` of an object (namespace empty for cluster-scoped kinds).
pub(crate) fn object_key<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Exponential retry delays per object, as upstream's rate-limited work queues: doubling from
/// `start` up to `max`, forgotten after a success.
pub(crate) struct Backoff {
    start: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// external-snapshotter's defaults (`--retry-interval-start=1s`, `--retry-interval-max=5m`).
    pub(crate) fn upstream() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(300))
    }

    /// Delays from `start` doubling to `max`.
    pub(crate) fn new(start: Duration, max: Duration) -> Self {
        Self {
            start,
            max,
            failures: Mutex::default(),
        }
    }

    /// The delay before the next attempt on `key`, counting this failure.
    pub(crate) fn next(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("backoff lock");
        let count = failures.entry(key.to_string()).or_insert(0);
        let delay = self
            .start
            .checked_mul(2u32.saturating_pow(*count))
            .unwrap_or(self.max)
            .min(self.max);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets the failures of `key`.
    pub(crate) fn reset(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn map(namespace: &str, name: &str, names: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.namespace = Some(namespace.into());
        cm.metadata.name = Some(name.into());
        cm.data = Some([("names".to_string(), names.to_string())].into());
        cm
    }

    fn names(cm: &ConfigMap) -> Vec<Key> {
        let namespace = cm.metadata.namespace.clone().unwrap_or_default();
        cm.data
            .as_ref()
            .and_then(|d| d.get("names"))
            .map_or(vec![], |n| {
                n.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| (namespace.clone(), s.to_string()))
                    .collect()
            })
    }

    fn key(ns: &str, name: &str) -> Key {
        (ns.into(), name.into())
    }

    #[test]
    fn index_follows_updates_and_deletes() {
        let index = RefIndex::new(names);
        index.apply(&watcher::Event::Apply(map("a", "x", "c1,c2")));
        index.apply(&watcher::Event::Apply(map("a", "y", "c1")));
        assert_eq!(
            index.get(&key("a", "c1")),
            vec![key("a", "x"), key("a", "y")]
        );
        index.apply(&watcher::Event::Apply(map("a", "x", "c2")));
        assert_eq!(index.get(&key("a", "c1")), vec![key("a", "y")]);
        index.apply(&watcher::Event::Delete(map("a", "y", "c1")));
        assert!(index.get(&key("a", "c1")).is_empty());
        assert_eq!(index.get(&key("a", "c2")), vec![key("a", "x")]);
        assert!(index.get(&key("b", "c2")).is_empty());
    }

    #[test]
    fn a_relist_replaces_the_index_when_it_completes() {
        let index = RefIndex::new(names);
        index.apply(&watcher::Event::Apply(map("a", "gone", "c1")));
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(map("a", "kept", "c1")));
        // Until the relist completes, the old view answers.
        assert_eq!(index.get(&key("a", "c1")), vec![key("a", "gone")]);
        index.apply(&watcher::Event::InitDone);
        assert_eq!(index.get(&key("a", "c1")), vec![key("a", "kept")]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| backoff.next("k").as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        assert_eq!(backoff.next("other").as_secs(), 1);
        backoff.reset("k");
        assert_eq!(backoff.next("k").as_secs(), 1);
    }
}
