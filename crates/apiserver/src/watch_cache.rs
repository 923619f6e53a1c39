//! The watch cache: every object of the store in memory, fed by one store watch.
//!
//! Lists and watches are served from here, never by scanning the store. The cache holds each
//! object's JSON (with `metadata.resourceVersion` filled in) and the few attributes selectors
//! need, in a persistent ordered map, so a list takes an O(1) snapshot and pages through it
//! without blocking writers. A ring of recent events lets watches resume from a resourceVersion;
//! one older than the ring answers 410 Expired, as upstream.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use imbl::OrdMap;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, watch};
use volplane_api::resources::{RESOURCES, ResourceInfo};
use volplane_store::{KeyValue, ListOptions, Revision, Store, StoreError, WatchEvent};

use crate::selectors::field_values;

/// One object as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    pub rv: Revision,
    /// The object's JSON, `metadata.resourceVersion` included.
    pub json: Bytes,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: Option<Map<String, Value>>,
    /// Values of the resource's selectable fields.
    pub fields: Vec<(&'static str, String)>,
    /// The uids of the object's owners (for the garbage collector).
    pub owners: Vec<String>,
    pub deleting: bool,
}

impl CachedObject {
    /// A copy whose `metadata.resourceVersion` says `rv`.
    pub fn at_revision(&self, rv: Revision) -> CachedObject {
        let mut value = self.value();
        value["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        CachedObject {
            rv,
            json: Bytes::from(serde_json::to_vec(&value).expect("serialises")),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            labels: self.labels.clone(),
            fields: self.fields.clone(),
            owners: self.owners.clone(),
            deleting: self.deleting,
        }
    }

    /// Parses the cached JSON (for handlers that modify or render the object).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("the cache holds only JSON it serialised")
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers receive it.
#[derive(Debug)]
pub struct CacheEvent {
    pub rv: Revision,
    pub kind: EventType,
    pub key: String,
    /// The object after the change (for deletions: its last state, at the deletion's revision).
    pub object: Arc<CachedObject>,
    /// The object before the change, when there was one.
    pub prev: Option<Arc<CachedObject>>,
}

/// The backlog of events a watch replays, and the receiver of every later event.
pub type Subscription = (Vec<Arc<CacheEvent>>, broadcast::Receiver<Arc<CacheEvent>>);

/// A watch that starts too far back: the ring no longer holds the events after `requested`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    pub requested: Revision,
    pub oldest: Revision,
}

struct CacheState {
    objects: OrdMap<String, Arc<CachedObject>>,
    /// uid → key, for owner references.
    keys_by_uid: HashMap<String, String>,
    /// owner uid → keys of the objects that name it as an owner.
    dependents: HashMap<String, BTreeSet<String>>,
    revision: Revision,
    /// Events with rv > `ring_floor`, oldest first.
    ring: VecDeque<Arc<CacheEvent>>,
    ring_floor: Revision,
}

/// Snapshots kept for paged lists, so every page reads the state of the first.
struct Snapshots {
    by_revision: VecDeque<(Revision, Instant, OrdMap<String, Arc<CachedObject>>)>,
}

const SNAPSHOT_LIMIT: usize = 32;
const SNAPSHOT_TTL: Duration = Duration::from_secs(300);

/// The cache. Cheap to share behind an `Arc`.
pub struct WatchCache {
    state: RwLock<CacheState>,
    snapshots: Mutex<Snapshots>,
    events: broadcast::Sender<Arc<CacheEvent>>,
    revision: watch::Sender<Revision>,
    ring_capacity: usize,
}

impl WatchCache {
    /// Loads every object under `/registry/` and starts following the store.
    pub async fn start(
        store: Arc<dyn Store>,
        ring_capacity: usize,
    ) -> Result<Arc<WatchCache>, StoreError> {
        let (events, _) = broadcast::channel(16_384);
        let (revision, _) = watch::channel(0);
        let cache = Arc::new(WatchCache {
            state: RwLock::new(CacheState {
                objects: OrdMap::new(),
                keys_by_uid: HashMap::new(),
                dependents: HashMap::new(),
                revision: 0,
                ring: VecDeque::new(),
                ring_floor: 0,
            }),
            snapshots: Mutex::new(Snapshots {
                by_revision: VecDeque::new(),
            }),
            events,
            revision,
            ring_capacity,
        });
        let at = cache.load(store.as_ref()).await?;
        let stream = store.watch("/registry/", at).await?;
        let feeder = Arc::clone(&cache);
        tokio::spawn(async move { feeder.follow(store, stream).await });
        Ok(cache)
    }

    async fn load(&self, store: &dyn Store) -> Result<Revision, StoreError> {
        let mut options = ListOptions {
            prefix: "/registry/".into(),
            limit: 10_000,
            ..Default::default()
        };
        let mut objects = OrdMap::new();
        let mut at = None;
        loop {
            let page = store.list(options.clone()).await?;
            let revision = *at.get_or_insert(page.revision);
            options.revision = Some(revision);
            for (key, obj) in decode_page(&page.items) {
                objects.insert(key, Arc::new(obj));
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => options.start_after = Some(last.key.clone()),
                _ => break,
            }
        }
        let revision = at.unwrap_or(0);
        let mut state = self.state.write().expect("cache lock poisoned");
        for (key, obj) in objects.iter() {
            index(&mut state, key, obj);
        }
        state.objects = objects;
        state.revision = revision;
        state.ring_floor = revision;
        drop(state);
        self.revision.send_replace(revision);
        tracing::info!(revision, "watch cache loaded");
        Ok(revision)
    }

    async fn follow(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        mut stream: volplane_store::WatchStream,
    ) {
        loop {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => self.apply(event),
                    Err(err) => {
                        tracing::error!(%err, "store watch failed");
                        break;
                    }
                }
            }
            // The store watch ended (etcd restart, lost connection): resume after what we have.
            let after = self.current_revision();
            loop {
                match store.watch("/registry/", after).await {
                    Ok(s) => {
                        stream = s;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(%err, after, "re-establishing the store watch");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    }

    fn apply(&self, event: WatchEvent) {
        let (kind, key, object, rv) = match event {
            WatchEvent::Progress { revision } => {
                self.advance(revision);
                return;
            }
            WatchEvent::Put { kv, prev } => {
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                let rv = kv.mod_revision;
                (kind, kv.key.clone(), decode(&kv, rv), rv)
            }
            WatchEvent::Delete { prev, revision } => (
                EventType::Deleted,
                prev.key.clone(),
                decode(&prev, revision),
                revision,
            ),
        };
        let Some(object) = object else {
            self.advance(rv);
            return;
        };
        let object = Arc::new(object);
        let mut state = self.state.write().expect("cache lock poisoned");
        let prev = match kind {
            EventType::Deleted => state.objects.remove(&key),
            _ => state.objects.insert(key.clone(), Arc::clone(&object)),
        };
        if let Some(prev) = &prev {
            unindex(&mut state, &key, prev);
        }
        if kind != EventType::Deleted {
            index(&mut state, &key, &object);
        }
        let event = Arc::new(CacheEvent {
            rv,
            kind,
            key,
            object,
            prev,
        });
        state.ring.push_back(Arc::clone(&event));
        while state.ring.len() > self.ring_capacity {
            if let Some(old) = state.ring.pop_front() {
                state.ring_floor = old.rv;
            }
        }
        state.revision = state.revision.max(rv);
        // Sent under the lock so a subscriber that read the ring under it misses nothing.
        let _ = self.events.send(event);
        drop(state);
        self.revision.send_if_modified(|r| {
            let changed = *r < rv;
            *r = (*r).max(rv);
            changed
        });
    }

    fn advance(&self, revision: Revision) {
        let mut state = self.state.write().expect("cache lock poisoned");
        state.revision = state.revision.max(revision);
        drop(state);
        self.revision.send_if_modified(|r| {
            let changed = *r < revision;
            *r = (*r).max(revision);
            changed
        });
    }

    /// The newest revision the cache has applied.
    pub fn current_revision(&self) -> Revision {
        self.state.read().expect("cache lock poisoned").revision
    }

    /// Waits until the cache has applied `revision` (for consistent reads after writes).
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.revision.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// One object.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.state
            .read()
            .expect("cache lock poisoned")
            .objects
            .get(key)
            .cloned()
    }

    /// A snapshot of every object and the revision it reflects.
    pub fn snapshot(&self) -> (OrdMap<String, Arc<CachedObject>>, Revision) {
        let state = self.state.read().expect("cache lock poisoned");
        (state.objects.clone(), state.revision)
    }

    /// Keeps a snapshot for the following pages of a paged list.
    pub fn keep_snapshot(&self, revision: Revision, objects: OrdMap<String, Arc<CachedObject>>) {
        let mut snaps = self.snapshots.lock().expect("snapshot lock poisoned");
        if snaps.by_revision.iter().any(|(rv, _, _)| *rv == revision) {
            return;
        }
        snaps
            .by_revision
            .push_back((revision, Instant::now(), objects));
        while snaps.by_revision.len() > SNAPSHOT_LIMIT {
            snaps.by_revision.pop_front();
        }
    }

    /// The snapshot a continue token refers to, if still kept.
    pub fn kept_snapshot(&self, revision: Revision) -> Option<OrdMap<String, Arc<CachedObject>>> {
        let mut snaps = self.snapshots.lock().expect("snapshot lock poisoned");
        snaps
            .by_revision
            .retain(|(_, at, _)| at.elapsed() < SNAPSHOT_TTL);
        snaps
            .by_revision
            .iter()
            .find(|(rv, _, _)| *rv == revision)
            .map(|(_, _, objects)| objects.clone())
    }

    /// The events after `after` still in the ring, and a receiver for every later one.
    pub fn subscribe(&self, after: Revision) -> Result<Subscription, TooOld> {
        let state = self.state.read().expect("cache lock poisoned");
        if after < state.ring_floor {
            return Err(TooOld {
                requested: after,
                oldest: state.ring_floor + 1,
            });
        }
        let start = state.ring.partition_point(|e| e.rv <= after);
        let backlog = state.ring.iter().skip(start).cloned().collect();
        let rx = self.events.subscribe();
        Ok((backlog, rx))
    }

    /// A snapshot of every object and a receiver for every event after it, taken atomically.
    pub fn snapshot_and_subscribe(
        &self,
    ) -> (
        OrdMap<String, Arc<CachedObject>>,
        Revision,
        broadcast::Receiver<Arc<CacheEvent>>,
    ) {
        let state = self.state.read().expect("cache lock poisoned");
        (
            state.objects.clone(),
            state.revision,
            self.events.subscribe(),
        )
    }

    /// Every object whose key starts with `prefix`, in key order.
    pub fn list_prefix(&self, prefix: &str) -> Vec<Arc<CachedObject>> {
        let state = self.state.read().expect("cache lock poisoned");
        range_of(&state.objects, prefix)
            .map(|(_, o)| Arc::clone(o))
            .collect()
    }

    /// Every object that names `owner_uid` as an owner, with its key.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<(String, Arc<CachedObject>)> {
        let state = self.state.read().expect("cache lock poisoned");
        let Some(keys) = state.dependents.get(owner_uid) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| state.objects.get(k).map(|o| (k.clone(), Arc::clone(o))))
            .collect()
    }

    /// The key and object with this uid, if the cache holds one.
    pub fn by_uid(&self, uid: &str) -> Option<(String, Arc<CachedObject>)> {
        let state = self.state.read().expect("cache lock poisoned");
        let key = state.keys_by_uid.get(uid)?;
        state.objects.get(key).map(|o| (key.clone(), Arc::clone(o)))
    }
}

/// The entries of `objects` whose key starts with `prefix`, in key order.
pub fn range_of<'a>(
    objects: &'a OrdMap<String, Arc<CachedObject>>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Arc<CachedObject>)> + 'a {
    objects
        .range(prefix.to_string()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
}

/// The resource whose objects live under `key`.
pub fn resource_of_key(key: &str) -> Option<&'static ResourceInfo> {
    let rest = key.strip_prefix("/registry/")?;
    RESOURCES
        .iter()
        .filter(|r| {
            rest.strip_prefix(r.storage)
                .is_some_and(|t| t.starts_with('/'))
        })
        .max_by_key(|r| r.storage.len())
}

fn index(state: &mut CacheState, key: &str, obj: &CachedObject) {
    if !obj.uid.is_empty() {
        state.keys_by_uid.insert(obj.uid.clone(), key.to_string());
    }
    for owner in &obj.owners {
        state
            .dependents
            .entry(owner.clone())
            .or_default()
            .insert(key.to_string());
    }
}

fn unindex(state: &mut CacheState, key: &str, obj: &CachedObject) {
    if state.keys_by_uid.get(&obj.uid).is_some_and(|k| k == key) {
        state.keys_by_uid.remove(&obj.uid);
    }
    for owner in &obj.owners {
        if let Some(keys) = state.dependents.get_mut(owner) {
            keys.remove(key);
            if keys.is_empty() {
                state.dependents.remove(owner);
            }
        }
    }
}

/// Builds the cached form of a stored object at revision `rv`; `None` for undecodable values
/// (logged: the store holds something no API write put there).
fn decode(kv: &KeyValue, rv: Revision) -> Option<CachedObject> {
    let resource = resource_of_key(&kv.key)?;
    let mut value: Value = match serde_json::from_slice(&kv.value) {
        Ok(v) => v,
        Err(err) => {
            tracing::error!(key = %kv.key, %err, "undecodable object in the store");
            return None;
        }
    };
    let meta = value.get_mut("metadata")?.as_object_mut()?;
    meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    let str_of = |m: &Map<String, Value>, f: &str| {
        m.get(f).and_then(Value::as_str).unwrap_or("").to_string()
    };
    let owners = meta
        .get("ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid")?.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let cached = CachedObject {
        rv,
        namespace: str_of(meta, "namespace"),
        name: str_of(meta, "name"),
        uid: str_of(meta, "uid"),
        labels: meta.get("labels").and_then(Value::as_object).cloned(),
        deleting: meta.contains_key("deletionTimestamp"),
        owners,
        fields: field_values(resource.plural, &value),
        json: Bytes::from(serde_json::to_vec(&value).ok()?),
    };
    Some(cached)
}

/// Decodes a page of stored objects on every core: start-up time with many objects is this.
fn decode_page(items: &[KeyValue]) -> Vec<(String, CachedObject)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|kv| decode(kv, kv.mod_revision).map(|o| (kv.key.clone(), o)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("decoding does not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use volplane_store::redb_store::RedbStore;

    fn cm(name: &str, owner: Option<&str>) -> Bytes {
        let mut meta = serde_json::json!({"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": "x"}});
        if let Some(owner) = owner {
            meta["ownerReferences"] = serde_json::json!([{"uid": owner, "name": "o", "kind": "ConfigMap", "apiVersion": "v1"}]);
        }
        Bytes::from(
            serde_json::to_vec(
                &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}),
            )
            .unwrap(),
        )
    }

    async fn cache_with(ring: usize) -> (tempfile::TempDir, Arc<dyn Store>, Arc<WatchCache>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path().join("s.redb")).unwrap());
        store
            .create("/registry/configmaps/ns/before", cm("before", None))
            .await
            .unwrap();
        let cache = WatchCache::start(Arc::clone(&store), ring).await.unwrap();
        (dir, store, cache)
    }

    #[tokio::test]
    async fn loads_existing_objects_and_follows_new_writes_with_their_revision() {
        let (_dir, store, cache) = cache_with(100).await;
        assert!(cache.get("/registry/configmaps/ns/before").is_some());
        let rv = store
            .create("/registry/configmaps/ns/after", cm("after", None))
            .await
            .unwrap();
        assert!(cache.wait_for(rv, Duration::from_secs(5)).await);
        let after = cache.get("/registry/configmaps/ns/after").unwrap();
        assert_eq!(after.rv, rv);
        assert_eq!(after.value()["metadata"]["resourceVersion"], rv.to_string());
        assert_eq!(
            after
                .fields
                .iter()
                .find(|(f, _)| *f == "metadata.name")
                .unwrap()
                .1,
            "after"
        );
        assert_eq!(cache.list_prefix("/registry/configmaps/ns/").len(), 2);
    }

    #[tokio::test]
    async fn subscribe_replays_the_ring_and_refuses_what_it_no_longer_holds() {
        let (_dir, store, cache) = cache_with(3).await;
        let start = cache.current_revision();
        let mut last = start;
        for i in 0..5 {
            last = store
                .create(
                    &format!("/registry/configmaps/ns/c{i}"),
                    cm(&format!("c{i}"), None),
                )
                .await
                .unwrap();
        }
        assert!(cache.wait_for(last, Duration::from_secs(5)).await);
        let (backlog, _rx) = cache.subscribe(last - 2).unwrap();
        assert_eq!(
            backlog.iter().map(|e| e.rv).collect::<Vec<_>>(),
            vec![last - 1, last]
        );
        let too_old = cache.subscribe(start).unwrap_err();
        assert_eq!(too_old.requested, start);
    }

    #[tokio::test]
    async fn dependents_are_indexed_by_owner_uid_and_forgotten_on_delete() {
        let (_dir, store, cache) = cache_with(100).await;
        store
            .create("/registry/configmaps/ns/dep", cm("dep", Some("uid-before")))
            .await
            .unwrap();
        let (rv, _) = store
            .delete("/registry/configmaps/ns/before", None)
            .await
            .unwrap();
        assert!(cache.wait_for(rv, Duration::from_secs(5)).await);
        let deps = cache.dependents_of("uid-before");
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0].1.name, "dep");
        assert!(cache.by_uid("uid-before").is_none());
        let (rv, _) = store
            .delete("/registry/configmaps/ns/dep", None)
            .await
            .unwrap();
        assert!(cache.wait_for(rv, Duration::from_secs(5)).await);
        assert!(cache.dependents_of("uid-before").is_empty());
    }
}
