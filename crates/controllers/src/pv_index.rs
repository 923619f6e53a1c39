//! The binder's in-memory view of every PersistentVolume, and how a claim finds its PV in it.
//!
//! [`PvIndex`] holds the newest version of each PV seen (from the watch or from the binder's
//! own writes, whichever has the higher resourceVersion — upstream's `storeObjectUpdate`), the
//! PVs reserved by workers that are binding them (upstream's "assume cache": a PV chosen by
//! one worker is invisible to the others until the bind is written or abandoned), and a
//! [`Matcher`]:
//!
//! - [`Indexed`]: Available PVs filed in buckets by (class, attributes class, volume mode,
//!   access-mode set), each ordered by (capacity, name); a claim looks only at the buckets
//!   whose access-mode set contains its modes (at most 2^4) and takes the first PV at or above
//!   its request that passes the rest (selector, node affinity): O(log N) per claim.
//! - [`LinearScan`]: upstream's algorithm, the baseline: PVs bucketed by access-mode set only,
//!   each bucket scanned in full per claim ([`matching::find_matching_volume`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use volplane_api::quantity::Milli;

use crate::matching::{self, AccessModes, Binding, VolumeMode};

/// Which matching algorithm a [`PvIndex`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// [`Indexed`]: O(log N) per claim.
    Indexed,
    /// [`LinearScan`]: upstream's scan of the access-mode buckets.
    LinearScan,
}

/// Finds the PV for a claim among the PVs it was told about.
pub trait Matcher: Send {
    /// Files `pv` (a PV not currently filed).
    fn insert(&mut self, pv: &Arc<PersistentVolume>);
    /// Unfiles `pv` (the version that was filed).
    fn remove(&mut self, pv: &PersistentVolume);
    /// The PV to bind `claim` to: one pre-bound to it, else the smallest that fits, skipping
    /// names for which `excluded` is true. `volumes` holds every filed PV by name.
    fn find(
        &self,
        volumes: &HashMap<String, Arc<PersistentVolume>>,
        claim: &PersistentVolumeClaim,
        binding: Binding<'_>,
        excluded: &dyn Fn(&str) -> bool,
    ) -> Option<Arc<PersistentVolume>>;
}

/// The access-mode sets containing `wanted`, grouped by size, smallest sets first (upstream
/// prefers the PV whose modes exceed the claim's the least).
fn superset_groups(wanted: AccessModes) -> Vec<Vec<AccessModes>> {
    let mut groups: BTreeMap<u32, Vec<AccessModes>> = BTreeMap::new();
    for bits in 0..AccessModes::ALL_SETS {
        let set = AccessModes(bits);
        if set.contains_all(wanted) {
            groups.entry(set.count()).or_default().push(set);
        }
    }
    groups.into_values().collect()
}

fn name_of(pv: &PersistentVolume) -> &str {
    pv.metadata.name.as_deref().unwrap_or("")
}

/// Upstream binds only Available PVs that nobody claims and that are not being deleted.
fn is_unclaimed_available(pv: &PersistentVolume) -> bool {
    pv.metadata.deletion_timestamp.is_none()
        && matching::claim_ref_key(pv).is_none()
        && matching::volume_phase(pv) == "Available"
}

/// The bucket an Available PV is filed in, within its (class, attributes class).
type Shape = (VolumeMode, AccessModes);
/// Available PVs of one shape, smallest first.
type Bucket = BTreeSet<(Milli, String)>;

/// The O(log N) matcher: see the module documentation.
#[derive(Default)]
pub struct Indexed {
    /// class → attributes class → shape → bucket.
    available: HashMap<String, HashMap<String, BTreeMap<Shape, Bucket>>>,
    /// Claim `namespace/name` → PVs whose claimRef names it.
    prebound: HashMap<String, BTreeSet<String>>,
}

impl Indexed {
    fn bucket_mut(&mut self, pv: &PersistentVolume) -> &mut Bucket {
        let shape = (
            matching::volume_volume_mode(pv),
            matching::volume_access_modes(pv),
        );
        self.available
            .entry(matching::volume_class(pv).to_string())
            .or_default()
            .entry(matching::volume_attributes_class(pv).to_string())
            .or_default()
            .entry(shape)
            .or_default()
    }

    fn find_prebound(
        &self,
        volumes: &HashMap<String, Arc<PersistentVolume>>,
        claim: &PersistentVolumeClaim,
        binding: Binding<'_>,
        excluded: &dyn Fn(&str) -> bool,
    ) -> Option<Arc<PersistentVolume>> {
        let names = self.prebound.get(&matching::claim_key(claim))?;
        names
            .iter()
            .filter(|name| !excluded(name))
            .filter_map(|name| volumes.get(name))
            .find(|pv| {
                matching::is_volume_bound_to_claim(pv, claim)
                    && matching::check(claim, pv, binding).is_ok()
            })
            .cloned()
    }

    /// The first PV of `bucket` at or above `request` that passes every check.
    fn first_fit(
        bucket: &Bucket,
        volumes: &HashMap<String, Arc<PersistentVolume>>,
        claim: &PersistentVolumeClaim,
        binding: Binding<'_>,
        excluded: &dyn Fn(&str) -> bool,
        request: Milli,
    ) -> Option<(Milli, Arc<PersistentVolume>)> {
        bucket
            .range((request, String::new())..)
            .filter(|(_, name)| !excluded(name))
            .filter_map(|(capacity, name)| Some((*capacity, volumes.get(name)?)))
            .find(|(_, pv)| matching::check(claim, pv, binding).is_ok())
            .map(|(capacity, pv)| (capacity, pv.clone()))
    }
}

impl Matcher for Indexed {
    fn insert(&mut self, pv: &Arc<PersistentVolume>) {
        if let Some(claim) = matching::claim_ref_key(pv) {
            self.prebound
                .entry(claim)
                .or_default()
                .insert(name_of(pv).to_string());
        }
        if is_unclaimed_available(pv) {
            let capacity = matching::volume_capacity(pv).1;
            let name = name_of(pv).to_string();
            self.bucket_mut(pv).insert((capacity, name));
        }
    }

    fn remove(&mut self, pv: &PersistentVolume) {
        if let Some(claim) = matching::claim_ref_key(pv)
            && let Some(names) = self.prebound.get_mut(&claim)
        {
            names.remove(name_of(pv));
            if names.is_empty() {
                self.prebound.remove(&claim);
            }
        }
        if is_unclaimed_available(pv) {
            let capacity = matching::volume_capacity(pv).1;
            let name = name_of(pv).to_string();
            self.bucket_mut(pv).remove(&(capacity, name));
        }
    }

    fn find(
        &self,
        volumes: &HashMap<String, Arc<PersistentVolume>>,
        claim: &PersistentVolumeClaim,
        binding: Binding<'_>,
        excluded: &dyn Fn(&str) -> bool,
    ) -> Option<Arc<PersistentVolume>> {
        if let Some(pv) = self.find_prebound(volumes, claim, binding, excluded) {
            return Some(pv);
        }
        if matches!(
            binding,
            Binding::WaitForFirstConsumer {
                selected_node: None
            }
        ) {
            return None;
        }
        let shapes = self
            .available
            .get(matching::claim_class(claim))?
            .get(matching::claim_attributes_class(claim))?;
        let mode = matching::claim_volume_mode(claim);
        let request = matching::claim_request(claim).1;
        for group in superset_groups(matching::claim_access_modes(claim)) {
            let best = group
                .iter()
                .filter_map(|access| shapes.get(&(mode, *access)))
                .filter_map(|bucket| {
                    Self::first_fit(bucket, volumes, claim, binding, excluded, request)
                })
                .min_by(|a, b| a.0.cmp(&b.0).then_with(|| name_of(&a.1).cmp(name_of(&b.1))));
            if let Some((_, pv)) = best {
                return Some(pv);
            }
        }
        None
    }
}

/// Upstream's matcher, the baseline: every PV filed by its access-mode set only; a claim
/// scans each set containing its modes (smallest sets first) in full.
#[derive(Default)]
pub struct LinearScan {
    by_access_modes: HashMap<AccessModes, BTreeMap<String, Arc<PersistentVolume>>>,
}

impl Matcher for LinearScan {
    fn insert(&mut self, pv: &Arc<PersistentVolume>) {
        self.by_access_modes
            .entry(matching::volume_access_modes(pv))
            .or_default()
            .insert(name_of(pv).to_string(), pv.clone());
    }

    fn remove(&mut self, pv: &PersistentVolume) {
        if let Some(bucket) = self
            .by_access_modes
            .get_mut(&matching::volume_access_modes(pv))
        {
            bucket.remove(name_of(pv));
        }
    }

    fn find(
        &self,
        _volumes: &HashMap<String, Arc<PersistentVolume>>,
        claim: &PersistentVolumeClaim,
        binding: Binding<'_>,
        excluded: &dyn Fn(&str) -> bool,
    ) -> Option<Arc<PersistentVolume>> {
        let groups = superset_groups(matching::claim_access_modes(claim));
        groups
            .iter()
            .flatten()
            .filter_map(|access| self.by_access_modes.get(access))
            .find_map(|bucket| {
                matching::find_matching_volume(claim, bucket.values(), binding, excluded).cloned()
            })
    }
}

/// What [`PvIndex::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// The index already had this or a newer version; nothing changed.
    Stale,
    /// The PV was stored.
    Stored {
        /// It is now an Available, unclaimed PV (and was not before): waiting claims may fit.
        became_available: bool,
    },
}

struct Inner {
    volumes: HashMap<String, Arc<PersistentVolume>>,
    matcher: Box<dyn Matcher>,
    /// PV name → `namespace/name` of the claim a worker is binding it to.
    reservations: HashMap<String, String>,
}

/// Every PV the binder knows, the matcher over them and the reservations; shared by the
/// workers (one short lock per operation).
pub struct PvIndex {
    inner: Mutex<Inner>,
}

impl PvIndex {
    /// An empty index using `strategy`.
    pub fn new(strategy: Strategy) -> Arc<Self> {
        let matcher: Box<dyn Matcher> = match strategy {
            Strategy::Indexed => Box::<Indexed>::default(),
            Strategy::LinearScan => Box::<LinearScan>::default(),
        };
        Arc::new(Self {
            inner: Mutex::new(Inner {
                volumes: HashMap::new(),
                matcher,
                reservations: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("PV index lock")
    }

    /// Stores `pv` unless the index has the same or a newer resourceVersion.
    pub fn upsert(&self, pv: PersistentVolume) -> Upsert {
        let pv = Arc::new(pv);
        let name = name_of(&pv).to_string();
        let mut inner = self.lock();
        let old = inner.volumes.get(&name).cloned();
        if let Some(old) = &old {
            if !is_newer(pv.as_ref(), old.as_ref()) {
                return Upsert::Stale;
            }
            inner.matcher.remove(old);
        }
        inner.matcher.insert(&pv);
        let became_available =
            is_unclaimed_available(&pv) && !old.as_deref().is_some_and(is_unclaimed_available);
        inner.volumes.insert(name, pv);
        Upsert::Stored { became_available }
    }

    /// Forgets the PV `name` (deleted), returning the last version known.
    pub fn remove(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        let mut inner = self.lock();
        let old = inner.volumes.remove(name)?;
        inner.matcher.remove(&old);
        Some(old)
    }

    /// Forgets every PV not in `keep` (after a re-list), returning their names.
    pub fn retain(&self, keep: &HashSet<String>) -> Vec<String> {
        let gone: Vec<String> = {
            let inner = self.lock();
            inner
                .volumes
                .keys()
                .filter(|name| !keep.contains(*name))
                .cloned()
                .collect()
        };
        for name in &gone {
            self.remove(name);
        }
        gone
    }

    /// The newest version of the PV `name`.
    pub fn get(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.lock().volumes.get(name).cloned()
    }

    /// Every PV's name.
    pub fn names(&self) -> Vec<String> {
        self.lock().volumes.keys().cloned().collect()
    }

    /// Every PV (a snapshot of the index), e.g. to explain why a claim found none.
    pub fn volumes(&self) -> Vec<Arc<PersistentVolume>> {
        self.lock().volumes.values().cloned().collect()
    }

    /// How many PVs are known.
    pub fn len(&self) -> usize {
        self.lock().volumes.len()
    }

    /// Whether no PV is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The claim (`namespace/name`) a worker is binding the PV `name` to, if any.
    pub fn reserved_by(&self, name: &str) -> Option<String> {
        self.lock().reservations.get(name).cloned()
    }

    /// Finds the PV for `claim` and reserves it for the claim in the same step, so no other
    /// worker picks it until the returned [`Reservation`] is dropped.
    pub fn find_and_reserve(
        self: &Arc<Self>,
        claim: &PersistentVolumeClaim,
        binding: Binding<'_>,
    ) -> Option<Reservation> {
        let key = matching::claim_key(claim);
        let mut inner = self.lock();
        let found = {
            let reservations = &inner.reservations;
            let excluded = |name: &str| reservations.get(name).is_some_and(|by| *by != key);
            inner
                .matcher
                .find(&inner.volumes, claim, binding, &excluded)?
        };
        let volume_name = name_of(&found).to_string();
        inner.reservations.insert(volume_name.clone(), key.clone());
        Some(Reservation {
            index: self.clone(),
            volume: found,
            volume_name,
            claim: key,
        })
    }

    /// Reserves the PV `name` for `claim` (a claim naming it in `spec.volumeName`); `None`
    /// when another claim holds it.
    pub fn reserve(self: &Arc<Self>, name: &str, claim: &str) -> Option<Reservation> {
        let mut inner = self.lock();
        let volume = inner.volumes.get(name)?.clone();
        if inner
            .reservations
            .get(name)
            .is_some_and(|by| by.as_str() != claim)
        {
            return None;
        }
        inner
            .reservations
            .insert(name.to_string(), claim.to_string());
        Some(Reservation {
            index: self.clone(),
            volume,
            volume_name: name.to_string(),
            claim: claim.to_string(),
        })
    }

    fn release(&self, volume: &str, claim: &str) {
        let mut inner = self.lock();
        if inner.reservations.get(volume).is_some_and(|by| by == claim) {
            inner.reservations.remove(volume);
        }
    }
}

/// A PV held for one claim while a worker binds it; released on drop (bind written — the PV
/// is then no longer Available in the index — or abandoned).
pub struct Reservation {
    index: Arc<PvIndex>,
    volume: Arc<PersistentVolume>,
    volume_name: String,
    claim: String,
}

impl Reservation {
    /// The PV as it was when reserved.
    pub fn volume(&self) -> &Arc<PersistentVolume> {
        &self.volume
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.index.release(&self.volume_name, &self.claim);
    }
}

/// Whether `new` is a later version than `old`: resourceVersions compared as integers, as
/// upstream's PV controller does; unparsable ones count as newer.
pub fn is_newer<K: kube::Resource>(new: &K, old: &K) -> bool {
    let version = |o: &K| {
        o.meta()
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (version(new), version(old)) {
        (Some(new), Some(old)) => new > old,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::tests::{pv, pvc};
    use serde_json::json;

    fn volume(name: &str, size: &str, modes: &[&str], rv: u64) -> PersistentVolume {
        pv(
            json!({"metadata": {"name": name, "resourceVersion": rv.to_string()},
                  "spec": {"capacity": {"storage": size}, "accessModes": modes}}),
        )
    }

    fn both() -> [Arc<PvIndex>; 2] {
        [
            PvIndex::new(Strategy::Indexed),
            PvIndex::new(Strategy::LinearScan),
        ]
    }

    fn found(index: &Arc<PvIndex>, claim: &PersistentVolumeClaim) -> Option<String> {
        index
            .find_and_reserve(claim, Binding::Immediate)
            .map(|r| r.volume().metadata.name.clone().unwrap())
    }

    #[test]
    fn smallest_fit_from_the_tightest_access_modes() {
        for index in both() {
            index.upsert(volume("rwo-5", "5Gi", &["ReadWriteOnce"], 1));
            index.upsert(volume("rwo-2", "2Gi", &["ReadWriteOnce"], 1));
            index.upsert(volume("rwo-1", "1Gi", &["ReadWriteOnce"], 1));
            index.upsert(volume(
                "rwx-2",
                "2Gi",
                &["ReadWriteOnce", "ReadWriteMany"],
                1,
            ));
            let claim = pvc(json!({"spec": {"resources": {"requests": {"storage": "1500Mi"}}}}));
            assert_eq!(found(&index, &claim).as_deref(), Some("rwo-2"));
            let rwx = pvc(json!({"spec": {"accessModes": ["ReadWriteMany"]}}));
            assert_eq!(found(&index, &rwx).as_deref(), Some("rwx-2"));
            let huge = pvc(json!({"spec": {"resources": {"requests": {"storage": "6Gi"}}}}));
            assert_eq!(found(&index, &huge), None);
        }
    }

    #[test]
    fn a_reserved_volume_is_invisible_to_other_claims_until_released() {
        for index in both() {
            index.upsert(volume("only", "1Gi", &["ReadWriteOnce"], 1));
            let first = pvc(json!({"metadata": {"name": "a"}}));
            let second = pvc(json!({"metadata": {"name": "b"}}));
            let held = index.find_and_reserve(&first, Binding::Immediate).unwrap();
            assert_eq!(index.reserved_by("only").as_deref(), Some("ns/a"));
            assert!(
                index
                    .find_and_reserve(&second, Binding::Immediate)
                    .is_none()
            );
            drop(held);
            assert_eq!(found(&index, &second).as_deref(), Some("only"));
        }
    }

    #[test]
    fn newer_versions_replace_older_ones_and_refile_them() {
        for index in both() {
            assert_eq!(
                index.upsert(volume("v", "1Gi", &["ReadWriteOnce"], 5)),
                Upsert::Stored {
                    became_available: true
                }
            );
            let mut bound = volume("v", "1Gi", &["ReadWriteOnce"], 7);
            bound.spec.as_mut().unwrap().claim_ref = Some(Default::default());
            bound.status.as_mut().unwrap().phase = Some("Bound".into());
            assert!(matches!(index.upsert(bound), Upsert::Stored { .. }));
            // An older event arriving late does not undo the newer state.
            assert_eq!(
                index.upsert(volume("v", "1Gi", &["ReadWriteOnce"], 6)),
                Upsert::Stale
            );
            assert_eq!(found(&index, &pvc(json!({}))), None);
            index.remove("v");
            assert!(index.is_empty());
        }
    }

    #[test]
    fn a_prebound_volume_wins_over_a_smaller_one() {
        for index in both() {
            index.upsert(volume("small", "1Gi", &["ReadWriteOnce"], 1));
            let mut mine = volume("mine", "9Gi", &["ReadWriteOnce"], 1);
            mine.spec.as_mut().unwrap().claim_ref =
                Some(k8s_openapi::api::core::v1::ObjectReference {
                    name: Some("data".into()),
                    namespace: Some("ns".into()),
                    ..Default::default()
                });
            index.upsert(mine);
            assert_eq!(found(&index, &pvc(json!({}))).as_deref(), Some("mine"));
        }
    }

    #[test]
    fn selectors_skip_to_the_next_fit_in_the_bucket() {
        for index in both() {
            index.upsert(volume("plain", "1Gi", &["ReadWriteOnce"], 1));
            let mut labelled = volume("labelled", "3Gi", &["ReadWriteOnce"], 1);
            labelled.metadata.labels = Some([("tier".to_string(), "gold".to_string())].into());
            index.upsert(labelled);
            let claim = pvc(json!({"spec": {"selector": {"matchLabels": {"tier": "gold"}}}}));
            assert_eq!(found(&index, &claim).as_deref(), Some("labelled"));
        }
    }

    #[test]
    fn both_strategies_agree_on_a_mixed_population() {
        let [indexed, linear] = both();
        let classes = ["fast", "slow", ""];
        let modes: [&[&str]; 3] = [
            &["ReadWriteOnce"],
            &["ReadWriteOnce", "ReadOnlyMany"],
            &["ReadWriteMany"],
        ];
        for i in 0..300u64 {
            let mut v = volume(
                &format!("pv-{i:03}"),
                &format!("{}Gi", 1 + i % 7),
                modes[(i % 3) as usize],
                1,
            );
            v.spec.as_mut().unwrap().storage_class_name =
                Some(classes[(i % 5 % 3) as usize].into());
            indexed.upsert(v.clone());
            linear.upsert(v);
        }
        for i in 0..200u64 {
            let claim = pvc(json!({"metadata": {"name": format!("c-{i}")},
                "spec": {"storageClassName": classes[(i % 3) as usize],
                         "accessModes": modes[(i % 2) as usize],
                         "resources": {"requests": {"storage": format!("{}Gi", 1 + i % 6)}}}}));
            let a = indexed.find_and_reserve(&claim, Binding::Immediate);
            let b = linear.find_and_reserve(&claim, Binding::Immediate);
            let capacity = |r: &Option<Reservation>| {
                r.as_ref().map(|r| matching::volume_capacity(r.volume()).1)
            };
            assert_eq!(capacity(&a), capacity(&b), "claim {i}");
            // Keep both reserved so later claims see the same remaining population... by
            // binding the same PV in both (names may differ among equal sizes).
            if let (Some(a), Some(b)) = (a, b) {
                let name = a.volume().metadata.name.clone().unwrap();
                let other = b.volume().metadata.name.clone().unwrap();
                indexed.remove(&name);
                linear.remove(&other);
            }
        }
    }
}
