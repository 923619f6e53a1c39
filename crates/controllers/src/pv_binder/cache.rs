//! The binder's caches of claims and the registry of claims waiting for a PV.
//!
//! Why a cache of its own instead of a reflector store: binding writes four objects in a row
//! and the watch reports them later. Upstream's controller keeps "the last known version" of
//! every object, updated by the watch *and* by its own writes, whichever is newer, so a sync
//! triggered by an old event does not try to redo a bind it already wrote.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use volplane_api::quantity::Milli;

use crate::matching;
use crate::pv_index::is_newer;

/// Objects by key (`namespace/name`), newest resourceVersion wins.
pub struct ObjectCache<K> {
    objects: Mutex<HashMap<String, Arc<K>>>,
}

impl<K: kube::Resource> ObjectCache<K> {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            objects: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `object` under `key` unless the cache has the same or a newer version; returns
    /// whether it was stored.
    pub fn upsert(&self, key: String, object: K) -> bool {
        let mut objects = self.objects.lock().expect("cache lock");
        if let Some(old) = objects.get(&key)
            && !is_newer(&object, old)
        {
            return false;
        }
        objects.insert(key, Arc::new(object));
        true
    }

    /// The newest version under `key`.
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.objects.lock().expect("cache lock").get(key).cloned()
    }

    /// Forgets `key`, returning the last version.
    pub fn remove(&self, key: &str) -> Option<Arc<K>> {
        self.objects.lock().expect("cache lock").remove(key)
    }

    /// Every key.
    pub fn keys(&self) -> Vec<String> {
        self.objects
            .lock()
            .expect("cache lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Every object.
    pub fn values(&self) -> Vec<Arc<K>> {
        self.objects
            .lock()
            .expect("cache lock")
            .values()
            .cloned()
            .collect()
    }

    /// Forgets every key not in `keep` (after a re-list), returning the objects dropped.
    pub fn retain(&self, keep: &HashSet<String>) -> Vec<Arc<K>> {
        let mut objects = self.objects.lock().expect("cache lock");
        let gone: Vec<String> = objects
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        gone.iter().filter_map(|k| objects.remove(k)).collect()
    }
}

impl<K: kube::Resource> Default for ObjectCache<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a claim that found no PV waits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiting {
    /// For any Available PV of `class` with at least `request`.
    Class(String, Milli),
    /// For the PV named in its `spec.volumeName` to appear.
    Volume(String),
}

/// Claims that found no PV, filed so that a PV becoming Available wakes only the claims it
/// could satisfy (by class and size) instead of every pending claim. A woken claim leaves
/// the registry; it registers again if it still finds nothing.
#[derive(Default)]
pub struct WaitingClaims {
    by_class: HashMap<String, BTreeSet<(Milli, String)>>,
    by_volume: HashMap<String, HashSet<String>>,
    registered: HashMap<String, Waiting>,
}

impl WaitingClaims {
    /// `claim` waits for a PV of its class and size.
    pub fn wait_for_class(&mut self, claim: &PersistentVolumeClaim) {
        let key = matching::claim_key(claim);
        let class = matching::claim_class(claim).to_string();
        let request = matching::claim_request(claim).1;
        self.forget(&key);
        self.by_class
            .entry(class.clone())
            .or_default()
            .insert((request, key.clone()));
        self.registered.insert(key, Waiting::Class(class, request));
    }

    /// `claim` waits for the PV `volume` to appear.
    pub fn wait_for_volume(&mut self, claim: &str, volume: &str) {
        self.forget(claim);
        self.by_volume
            .entry(volume.to_string())
            .or_default()
            .insert(claim.to_string());
        self.registered
            .insert(claim.to_string(), Waiting::Volume(volume.to_string()));
    }

    /// Removes `claim` from the registry.
    pub fn forget(&mut self, claim: &str) {
        match self.registered.remove(claim) {
            Some(Waiting::Class(class, request)) => {
                if let Some(set) = self.by_class.get_mut(&class) {
                    set.remove(&(request, claim.to_string()));
                }
            }
            Some(Waiting::Volume(volume)) => {
                if let Some(set) = self.by_volume.get_mut(&volume) {
                    set.remove(claim);
                }
            }
            None => {}
        }
    }

    /// The claims `pv` may satisfy, removed from the registry: those waiting for it by name,
    /// and, if it is Available, those of its class asking no more than its capacity.
    pub fn wake(&mut self, pv: &PersistentVolume, available: bool) -> Vec<String> {
        let name = pv.metadata.name.as_deref().unwrap_or("");
        let mut woken: Vec<String> = self.by_volume.remove(name).into_iter().flatten().collect();
        if available && let Some(set) = self.by_class.get_mut(matching::volume_class(pv)) {
            let capacity = matching::volume_capacity(pv).1;
            let fitting: Vec<(Milli, String)> = set
                .iter()
                .take_while(|(request, _)| *request <= capacity)
                .cloned()
                .collect();
            for entry in fitting {
                set.remove(&entry);
                woken.push(entry.1);
            }
        }
        for claim in &woken {
            self.registered.remove(claim);
        }
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::tests::{pv, pvc};
    use serde_json::json;

    #[test]
    fn an_available_volume_wakes_only_claims_it_can_hold() {
        let mut waiting = WaitingClaims::default();
        for (name, size) in [("small", "1Gi"), ("big", "10Gi")] {
            waiting.wait_for_class(&pvc(json!({"metadata": {"name": name},
                "spec": {"resources": {"requests": {"storage": size}}}})));
        }
        waiting.wait_for_class(&pvc(json!({"metadata": {"name": "other"},
            "spec": {"storageClassName": "slow"}})));
        let woken = waiting.wake(&pv(json!({"spec": {"capacity": {"storage": "2Gi"}}})), true);
        assert_eq!(woken, ["ns/small"]);
        // Woken claims left the registry.
        assert!(waiting.wake(&pv(json!({})), true).is_empty());
    }

    #[test]
    fn claims_naming_a_volume_wake_when_it_appears() {
        let mut waiting = WaitingClaims::default();
        waiting.wait_for_volume("ns/data", "pv-1");
        assert!(
            waiting
                .wake(&pv(json!({"metadata": {"name": "pv-2"}})), false)
                .is_empty()
        );
        let woken = waiting.wake(&pv(json!({"metadata": {"name": "pv-1"}})), false);
        assert_eq!(woken, ["ns/data"]);
    }
}
