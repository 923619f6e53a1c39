//! The common snapshot controller (external-snapshotter's `snapshot-controller`): binds each
//! VolumeSnapshot to a VolumeSnapshotContent — one it creates for a dynamic snapshot of a
//! claim, or the pre-provisioned one the snapshot names — and keeps the snapshot's status in
//! step with the content's, which the CSI snapshotter ([`crate::csi_snapshotter`]) fills.
//!
//! It never calls a CSI driver. It owns the finalizers
//! `snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection` and
//! `…/volumesnapshot-bound-protection` on snapshots, adds
//! `…/volumesnapshotcontent-bound-protection` to bound contents (the CSI snapshotter removes
//! it), and holds `…/pvc-as-source-protection` on a claim while a snapshot of it is taken.
//! Deleting a snapshot marks its content `…/volumesnapshot-being-deleted` and, with
//! deletionPolicy `Delete`, deletes the content; the snapshot goes once the content has.
//!
//! Two reconcilers share one set of caches: one per VolumeSnapshot ([`snapshot`]), one per
//! VolumeSnapshotContent ([`content`]). Reverse lookups (snapshots of a claim, claims restored
//! from a snapshot) are indexes kept from the watch events, never scans.

pub(crate) mod cache;
mod content;
pub(crate) mod decisions;
pub(crate) mod secrets;
mod snapshot;
pub(crate) mod writes;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use kube::runtime::controller::{self, Action, applier};
use volplane_api::snapshot::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};

use crate::informer::{Cache, each_object, informer};
use crate::{Context, Error};
use cache::{Backoff, RefIndex, Trigger, object_key};

/// How often every object is reconciled even without an event (upstream's `--resync-period`).
const RESYNC: Duration = Duration::from_secs(15 * 60);

/// Runs the snapshot controller until a fatal error.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    let client = ctx.client.clone();
    let (snapshot_trigger, snapshot_queue) = cache::queue::<VolumeSnapshot>();
    let (content_trigger, content_queue) = cache::queue::<VolumeSnapshotContent>();
    let snapshots_by_claim = Arc::new(RefIndex::new(decisions::source_claim_keys));
    let claims_by_snapshot = Arc::new(RefIndex::new(decisions::data_source_snapshot_keys));

    let (snapshots, watch_snapshots) = informer(Api::<VolumeSnapshot>::all(client.clone()), {
        let (snapshot_trigger, content_trigger) =
            (snapshot_trigger.clone(), content_trigger.clone());
        let index = snapshots_by_claim.clone();
        move |event| {
            index.apply(event);
            each_object(event, |snapshot, deleted| {
                on_snapshot_event(snapshot, deleted, &snapshot_trigger, &content_trigger)
            })
        }
    });
    let (contents, watch_contents) = informer(Api::<VolumeSnapshotContent>::all(client.clone()), {
        let (snapshot_trigger, content_trigger) =
            (snapshot_trigger.clone(), content_trigger.clone());
        move |event| {
            each_object(event, |content, deleted| {
                if !deleted {
                    content_trigger.send(None, &object_key(content).1, "content changed");
                }
                let r = &content.spec.volume_snapshot_ref;
                if let (Some(namespace), Some(name)) = (&r.namespace, &r.name) {
                    snapshot_trigger.send(Some(namespace), name, "content changed");
                }
            })
        }
    });
    let (claims, watch_claims) = informer(Api::<PersistentVolumeClaim>::all(client.clone()), {
        let snapshot_trigger = snapshot_trigger.clone();
        let (claim_index, snapshot_index) =
            (claims_by_snapshot.clone(), snapshots_by_claim.clone());
        move |event| {
            claim_index.apply(event);
            each_object(event, |claim, _| {
                let related = snapshot_index
                    .get(&object_key(claim))
                    .into_iter()
                    .chain(decisions::data_source_snapshot_keys(claim));
                for (namespace, name) in related {
                    snapshot_trigger.send(Some(&namespace), &name, "claim changed");
                }
            })
        }
    });
    let (volumes, watch_volumes) = informer(Api::<PersistentVolume>::all(client.clone()), {
        let snapshot_trigger = snapshot_trigger.clone();
        let snapshot_index = snapshots_by_claim.clone();
        move |event| {
            each_object(event, |volume, _| {
                let claim_ref = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
                if let Some((Some(namespace), Some(name))) =
                    claim_ref.map(|r| (r.namespace.clone(), r.name.clone()))
                {
                    for (namespace, name) in snapshot_index.get(&(namespace, name)) {
                        snapshot_trigger.send(Some(&namespace), &name, "volume changed");
                    }
                }
            })
        }
    });
    let (classes, watch_classes) = informer(Api::<VolumeSnapshotClass>::all(client.clone()), {
        let snapshot_trigger = snapshot_trigger.clone();
        let snapshots = snapshots.clone();
        // A class appearing or changing can unblock any snapshot not yet ready; classes change
        // rarely, so this is the one place that looks at every snapshot.
        move |event| {
            each_object(event, |_, _| {
                for snapshot in snapshots.state().iter().filter(|s| !decisions::is_ready(s)) {
                    let (namespace, name) = object_key(snapshot.as_ref());
                    snapshot_trigger.send(Some(&namespace), &name, "class changed");
                }
            })
        }
    });

    let controller = Arc::new(SnapshotController {
        ctx: ctx.clone(),
        snapshots: snapshots.clone(),
        contents: contents.clone(),
        claims,
        volumes,
        classes,
        snapshots_by_claim,
        claims_by_snapshot,
        backoff: Backoff::upstream(),
    });

    let loops = {
        let controller = controller.clone();
        let config = controller::Config::default().concurrency(workers(&ctx));
        async move {
            controller.wait_for_caches().await;
            tracing::info!("snapshot controller caches synced; reconciling");
            let snapshot_loop = applier(
                |snapshot,
                 this: Arc<SnapshotController>|
                 -> BoxFuture<'static, Result<Action, Error>> {
                    async move { this.reconcile_snapshot(snapshot).await }.boxed()
                },
                |snapshot, error, this| this.retry_snapshot(&snapshot, error),
                controller.clone(),
                snapshots.store(),
                snapshot_queue,
                config.clone(),
            )
            .for_each(|result| async move { log_result(result) });
            let content_loop = applier(
                |content,
                 this: Arc<SnapshotController>|
                 -> BoxFuture<'static, Result<Action, Error>> {
                    async move { this.reconcile_content(content).await }.boxed()
                },
                |content, error, this| this.retry_content(&content, error),
                controller.clone(),
                contents.store(),
                content_queue,
                config,
            )
            .for_each(|result| async move { log_result(result) });
            futures::join!(snapshot_loop, content_loop);
        }
    };
    let watches = async {
        futures::join!(
            watch_snapshots,
            watch_contents,
            watch_claims,
            watch_volumes,
            watch_classes
        );
    };
    tokio::select! {
        () = watches => {},
        () = loops => {},
    }
    // Watches retry for ever and queues stay open while their triggers live: getting here
    // means the runtime is shutting the loop down.
    Err(Error::Invalid("snapshot controller stopped".into()))
}

/// A snapshot changed: reconcile it, and the contents it names (so a content learns that its
/// snapshot is being deleted, or is gone).
fn on_snapshot_event(
    snapshot: &VolumeSnapshot,
    deleted: bool,
    snapshots: &Trigger<VolumeSnapshot>,
    contents: &Trigger<VolumeSnapshotContent>,
) {
    let (namespace, name) = object_key(snapshot);
    if !deleted {
        snapshots.send(Some(&namespace), &name, "snapshot changed");
    }
    let mut names = vec![];
    if let Some(bound) = decisions::bound_content_name(snapshot) {
        names.push(bound.to_string());
    }
    match &snapshot.spec.source.volume_snapshot_content_name {
        Some(content) => names.push(content.clone()),
        None => names.push(decisions::dynamic_content_name(snapshot)),
    }
    names.dedup();
    for content in names {
        contents.send(None, &content, "snapshot changed");
    }
}

fn workers(ctx: &Context) -> u16 {
    u16::try_from(ctx.config.workers.max(1)).unwrap_or(u16::MAX)
}

fn log_result<K: kube::Resource, E: std::fmt::Debug, Q: std::fmt::Debug>(
    result: Result<(kube::runtime::reflector::ObjectRef<K>, Action), controller::Error<E, Q>>,
) where
    K::DynamicType: std::fmt::Debug,
{
    match result {
        Ok(_) => {}
        // The object went away between the trigger and the reconcile: nothing to do.
        Err(controller::Error::ObjectNotFound(obj_ref)) => {
            tracing::debug!(%obj_ref, "object gone before its reconcile")
        }
        Err(error) => tracing::debug!(?error, "reconcile failed"),
    }
}

/// The snapshot controller's state: the caches both reconcilers read.
pub(crate) struct SnapshotController {
    ctx: Arc<Context>,
    snapshots: Cache<VolumeSnapshot>,
    contents: Cache<VolumeSnapshotContent>,
    claims: Cache<PersistentVolumeClaim>,
    volumes: Cache<PersistentVolume>,
    classes: Cache<VolumeSnapshotClass>,
    /// For each claim, the dynamic snapshots taken of it.
    snapshots_by_claim: Arc<RefIndex<VolumeSnapshot>>,
    /// For each snapshot, the claims restored from it.
    claims_by_snapshot: Arc<RefIndex<PersistentVolumeClaim>>,
    backoff: Backoff,
}

impl SnapshotController {
    /// Waits until every cache holds a complete list, so no decision is taken on a partial view.
    async fn wait_for_caches(&self) {
        futures::join!(
            self.snapshots.ready(),
            self.contents.ready(),
            self.claims.ready(),
            self.volumes.ready(),
            self.classes.ready(),
        );
    }

    fn retry_snapshot(&self, snapshot: &VolumeSnapshot, error: &Error) -> Action {
        let key = format!("vs/{}", decisions::snapshot_key(snapshot));
        self.retry(&key, error)
    }

    fn retry_content(&self, content: &VolumeSnapshotContent, error: &Error) -> Action {
        let key = format!("vsc/{}", object_key(content).1);
        self.retry(&key, error)
    }

    /// Conflicts are routine (a write raced the cache) and retried at once; anything else
    /// backs off exponentially, as upstream's rate-limited queues do.
    fn retry(&self, key: &str, error: &Error) -> Action {
        if writes::is_conflict_error(error) {
            tracing::debug!(key, "conflict; retrying");
            return Action::requeue(Duration::from_millis(100));
        }
        let delay = self.backoff.next(key);
        tracing::info!(key, %error, ?delay, "sync failed; retrying");
        Action::requeue(delay)
    }
}
