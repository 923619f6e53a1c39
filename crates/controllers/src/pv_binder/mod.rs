//! The PV binder: upstream's PersistentVolume controller (claim sync and volume sync) on
//! kube-runtime watchers, with many workers.
//!
//! - **Claim sync** ([`sync_claim`]): an unbound claim gets the PV a [`PvIndex`] finds for it
//!   (pre-bound, `spec.volumeName`, or the smallest fit), or — finding none — the default
//!   class, a `WaitForFirstConsumer` event, or a hand-off to its class's provisioner
//!   (`volume.kubernetes.io/storage-provisioner`); a bound claim whose PV is gone is `Lost`.
//! - **Volume sync** ([`sync_volume`]): phases `Available` / `Bound` / `Released`, undoing
//!   binds the controller made to a claim that went elsewhere, and reclaim
//!   ([`crate::reclaim`]) of released PVs.
//!
//! Binding writes both sides in upstream's order (PV `claimRef` + `bound-by-controller`, PV
//! status `Bound`, claim `volumeName` + `bind-completed` + `bound-by-controller`, claim status
//! `Bound`), each write conditional on the resourceVersion read, so a crash at any point
//! leaves a state the next pass finishes or undoes. Workers run concurrently; the index's
//! reservations keep two workers from choosing one PV, and the conditional writes keep two
//! controllers from binding it twice.

mod cache;
mod queue;
mod sync_claim;
mod sync_volume;
mod writes;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tracing::Instrument;

pub use cache::{ObjectCache, WaitingClaims};
pub use queue::WorkQueue;
pub(crate) use writes::volume_unbound;

use crate::matching;
use crate::pv_index::{PvIndex, Strategy, Upsert};
use crate::reclaim::Reclaimer;
use crate::{Context, Error};

/// How the binder runs.
#[derive(Debug, Clone)]
pub struct BinderOptions {
    /// How claims find PVs.
    pub strategy: Strategy,
    /// Concurrent claim workers (and as many volume workers).
    pub workers: usize,
    /// Every object is synced again this often (upstream: 15 s), so nothing waits forever
    /// on an event that was missed.
    pub resync: Duration,
}

impl BinderOptions {
    /// The indexed binder with `workers` concurrent workers per queue.
    pub fn indexed(workers: usize) -> Self {
        Self {
            strategy: Strategy::Indexed,
            workers: workers.max(1),
            resync: Duration::from_secs(15),
        }
    }

    /// Upstream's algorithm and concurrency: linear scan, one claim worker, one volume
    /// worker (the benchmark's baseline).
    pub fn upstream_baseline() -> Self {
        Self {
            strategy: Strategy::LinearScan,
            workers: 1,
            resync: Duration::from_secs(15),
        }
    }
}

impl Default for BinderOptions {
    fn default() -> Self {
        Self::indexed(32)
    }
}

/// Everything the workers share.
pub(crate) struct Binder {
    pub(crate) ctx: Arc<Context>,
    pub(crate) volumes: Arc<PvIndex>,
    pub(crate) claims: ObjectCache<PersistentVolumeClaim>,
    pub(crate) classes: Store<StorageClass>,
    pub(crate) nodes: Store<Node>,
    pub(crate) claim_queue: Arc<WorkQueue<String>>,
    pub(crate) volume_queue: Arc<WorkQueue<String>>,
    pub(crate) waiting: Mutex<WaitingClaims>,
    /// Claim uid → the last (reason, message) reported, so a claim synced again in the same
    /// situation does not get the same event again.
    pub(crate) reported: Mutex<std::collections::HashMap<String, (String, String)>>,
    pub(crate) reclaimer: Reclaimer,
    pub(crate) volume_api: Api<PersistentVolume>,
}

/// Runs the binder until a fatal error: watches PVs, claims, StorageClasses and Nodes,
/// waits for the first complete list of each, then starts the workers and the periodic
/// resync.
pub async fn run(ctx: Arc<Context>, options: BinderOptions) -> Result<(), Error> {
    let client = ctx.client.clone();
    let (classes, class_writer) = reflector::store();
    let (nodes, node_writer) = reflector::store();
    let binder = Arc::new(Binder {
        volumes: PvIndex::new(options.strategy),
        claims: ObjectCache::new(),
        classes,
        nodes,
        claim_queue: WorkQueue::new(),
        volume_queue: WorkQueue::new(),
        waiting: Mutex::new(WaitingClaims::default()),
        reported: Mutex::new(Default::default()),
        reclaimer: Reclaimer::new(),
        volume_api: Api::all(client.clone()),
        ctx,
    });
    let (volumes_synced, mut volumes_ready) = watch::channel(false);
    let (claims_synced, mut claims_ready) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(watch_volumes(binder.clone(), volumes_synced));
    tasks.spawn(watch_claims(binder.clone(), claims_synced));
    tasks.spawn(watch_classes(binder.clone(), class_writer));
    tasks.spawn(drive(
        watcher(Api::<Node>::all(client), watcher::Config::default())
            .default_backoff()
            .reflect(node_writer)
            .map_ok(|_| ()),
    ));
    volumes_ready.wait_for(|ready| *ready).await.ok();
    claims_ready.wait_for(|ready| *ready).await.ok();
    binder.classes.wait_until_ready().await.ok();
    tracing::info!(
        volumes = binder.volumes.len(),
        claims = binder.claims.keys().len(),
        workers = options.workers,
        strategy = ?options.strategy,
        "PV binder synced, starting workers"
    );
    for _ in 0..options.workers {
        tasks.spawn(claim_worker(binder.clone()));
        tasks.spawn(volume_worker(binder.clone()));
    }
    tasks.spawn(resync(binder.clone(), options.resync));
    // Every task loops forever; one ending means the loop cannot go on.
    match tasks.join_next().await {
        Some(Err(panic)) => Err(Error::Invalid(format!("PV binder task failed: {panic}"))),
        _ => Err(Error::Invalid("PV binder task stopped".into())),
    }
}

/// Polls a stream that does its work in its items, logging errors (the watcher retries).
async fn drive<S, E>(stream: S)
where
    S: futures::Stream<Item = Result<(), E>>,
    E: std::fmt::Display,
{
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        if let Err(error) = item {
            tracing::warn!(%error, "watch failed, retrying");
        }
    }
}

async fn watch_volumes(binder: Arc<Binder>, synced: watch::Sender<bool>) {
    let stream = watcher(binder.volume_api.clone(), watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut listed = HashSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(pv)) => {
                listed.insert(pv.metadata.name.clone().unwrap_or_default());
                binder.volume_changed(pv);
            }
            Ok(watcher::Event::InitDone) => {
                for gone in binder.volumes.retain(&listed) {
                    binder.volume_queue.add(gone);
                }
                synced.send_replace(true);
            }
            Ok(watcher::Event::Apply(pv)) => binder.volume_changed(pv),
            Ok(watcher::Event::Delete(pv)) => binder.volume_deleted(&pv),
            Err(error) => tracing::warn!(%error, "PV watch failed, retrying"),
        }
    }
}

async fn watch_claims(binder: Arc<Binder>, synced: watch::Sender<bool>) {
    let api: Api<PersistentVolumeClaim> = Api::all(binder.ctx.client.clone());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut listed = HashSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(claim)) => {
                listed.insert(matching::claim_key(&claim));
                binder.claim_changed(claim);
            }
            Ok(watcher::Event::InitDone) => {
                for gone in binder.claims.retain(&listed) {
                    binder.claim_deleted(&gone);
                }
                synced.send_replace(true);
            }
            Ok(watcher::Event::Apply(claim)) => binder.claim_changed(claim),
            Ok(watcher::Event::Delete(claim)) => {
                binder.claims.remove(&matching::claim_key(&claim));
                binder.claim_deleted(&claim);
            }
            Err(error) => tracing::warn!(%error, "claim watch failed, retrying"),
        }
    }
}

/// A class appearing or changing (a new default, a binding mode) can unblock every unbound
/// claim, as upstream's periodic resync would find.
async fn watch_classes(binder: Arc<Binder>, writer: reflector::store::Writer<StorageClass>) {
    let api: Api<StorageClass> = Api::all(binder.ctx.client.clone());
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    futures::pin_mut!(stream);
    while let Some(class) = stream.next().await {
        match class {
            Ok(_) => binder.enqueue_unbound_claims(),
            Err(error) => tracing::warn!(%error, "StorageClass watch failed, retrying"),
        }
    }
}

impl Binder {
    fn volume_changed(&self, pv: PersistentVolume) {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let claim = matching::claim_ref_key(&pv);
        let snapshot = pv.clone();
        let Upsert::Stored { became_available } = self.volumes.upsert(pv) else {
            return;
        };
        self.volume_queue.add(name);
        self.wake_claims_for(&snapshot, became_available);
        if let Some(claim) = claim {
            self.claim_queue.add(claim);
        }
    }

    /// Queues the waiting claims `pv` may satisfy (it appeared, or became Available — by
    /// the watch or by this binder's own write, whose watch event then looks stale).
    pub(crate) fn wake_claims_for(&self, pv: &PersistentVolume, became_available: bool) {
        let woken = self
            .waiting
            .lock()
            .expect("waiting lock")
            .wake(pv, became_available);
        for key in woken {
            self.claim_queue.add(key);
        }
    }

    fn volume_deleted(&self, pv: &PersistentVolume) {
        let name = pv.metadata.name.clone().unwrap_or_default();
        self.volumes.remove(&name);
        if let Some(claim) = matching::claim_ref_key(pv) {
            self.claim_queue.add(claim);
        }
    }

    fn claim_changed(&self, claim: PersistentVolumeClaim) {
        let key = matching::claim_key(&claim);
        if self.claims.upsert(key.clone(), claim) {
            self.claim_queue.add(key);
        }
    }

    /// A deleted claim releases its PV: the volume sync of that PV moves it to Released.
    fn claim_deleted(&self, claim: &PersistentVolumeClaim) {
        let key = matching::claim_key(claim);
        self.waiting.lock().expect("waiting lock").forget(&key);
        if let Some(uid) = &claim.metadata.uid {
            self.reported.lock().expect("reported lock").remove(uid);
        }
        if let Some(volume) = claim.spec.as_ref().and_then(|s| s.volume_name.clone()) {
            self.volume_queue.add(volume);
        }
    }

    fn enqueue_unbound_claims(&self) {
        for claim in self.claims.values() {
            if !sync_claim::is_bind_completed(&claim) {
                self.claim_queue.add(matching::claim_key(&claim));
            }
        }
    }
}

async fn claim_worker(binder: Arc<Binder>) {
    loop {
        let key = binder.claim_queue.get().await;
        let span = tracing::info_span!(
            "sync_claim",
            kind = "PersistentVolumeClaim",
            key = %key,
            uid = tracing::field::Empty,
            resource_version = tracing::field::Empty
        );
        let result = sync_claim::sync_claim(&binder, &key).instrument(span).await;
        finish(&binder.claim_queue, key, result);
    }
}

async fn volume_worker(binder: Arc<Binder>) {
    loop {
        let key = binder.volume_queue.get().await;
        let span = tracing::info_span!(
            "sync_volume",
            kind = "PersistentVolume",
            key = %key,
            uid = tracing::field::Empty,
            resource_version = tracing::field::Empty
        );
        let result = sync_volume::sync_volume(&binder, &key)
            .instrument(span)
            .await;
        finish(&binder.volume_queue, key, result);
    }
}

/// Forgets a key's backoff on success; retries it with backoff on failure (conflicts are
/// normal when the watch is behind our own writes, so they are logged at debug).
fn finish(queue: &Arc<WorkQueue<String>>, key: String, result: Result<(), Error>) {
    match result {
        Ok(()) => queue.forget(&key),
        Err(error) => {
            if is_conflict(&error) {
                tracing::debug!(%key, %error, "sync conflicted, retrying");
            } else {
                tracing::warn!(%key, %error, "sync failed, retrying");
            }
            queue.add_rate_limited(key.clone());
        }
    }
    queue.done(&key);
}

/// Whether `error` is a 409 (someone wrote the object since we read it).
pub(crate) fn is_conflict(error: &Error) -> bool {
    matches!(error, Error::Api(kube::Error::Api(status)) if status.code == 409)
}

/// Whether `error` is a 404.
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

async fn resync(binder: Arc<Binder>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        for key in binder.claims.keys() {
            binder.claim_queue.add(key);
        }
        for name in binder.volumes.names() {
            binder.volume_queue.add(name);
        }
    }
}
