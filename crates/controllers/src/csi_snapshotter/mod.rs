//! The CSI snapshotter (external-snapshotter's `csi-snapshotter` sidecar), for every driver in
//! the [`Registry`]: takes the snapshot a dynamic VolumeSnapshotContent asks for
//! (`CreateSnapshot`, named `snapshot-<VolumeSnapshot uid>` so a retry or a restart finds the
//! same snapshot instead of cutting a second one), fills the content's status (handle, creation
//! time in nanoseconds, size in bytes, readiness), polls until the snapshot is ready, reads the
//! status of pre-provisioned contents (`ListSnapshots`), and on deletion calls `DeleteSnapshot`
//! (deletionPolicy `Delete`) before removing the content's
//! `snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection` finalizer.
//!
//! While `CreateSnapshot` has been sent without a final answer, the content carries
//! `snapshot.storage.kubernetes.io/volumesnapshot-being-created` and is not deleted, so a
//! snapshot the storage cuts late is never leaked. The VolumeSnapshot side is
//! [`crate::snapshot_controller`]'s.

mod decisions;
mod operations;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{self, Action, applier};
use serde_json::json;
use tracing::Instrument;
use volplane_api::snapshot::{VolumeSnapshotClass, VolumeSnapshotContent};
use volplane_api::wellknown::ANN_VOLUMESNAPSHOT_BEING_CREATED;

use crate::csi_drivers::Registry;
use crate::events::{Severity, reference_to};
use crate::informer::{Cache, each_object, informer};
use crate::snapshot_controller::cache::{self, Backoff, object_key};
use crate::snapshot_controller::decisions::{DELETION_POLICY_DELETE, has_annotation};
use crate::snapshot_controller::writes;
use crate::{Context, Error};
use decisions::{ANN_GROUP_SNAPSHOT_HANDLE, is_ready, should_delete};

/// Runs the CSI snapshotter for the drivers in `drivers` until a fatal error.
pub async fn run(ctx: Arc<Context>, drivers: Arc<Registry>) -> Result<(), Error> {
    let client = ctx.client.clone();
    let (trigger, queue) = cache::queue::<VolumeSnapshotContent>();
    let (contents, watch_contents) = informer(Api::<VolumeSnapshotContent>::all(client.clone()), {
        let trigger = trigger.clone();
        move |event| {
            each_object(event, |content, deleted| {
                if !deleted {
                    trigger.send(None, &object_key(content).1, "content changed");
                }
            })
        }
    });
    let (classes, watch_classes) = informer(Api::<VolumeSnapshotClass>::all(client.clone()), {
        let trigger = trigger.clone();
        let contents = contents.clone();
        // A class appearing can unblock contents waiting for it; classes change rarely.
        move |event| {
            each_object(event, |class, _| {
                let name = class.metadata.name.as_deref();
                let waiting = contents.state().into_iter().filter(|c| {
                    c.spec.volume_snapshot_class_name.as_deref() == name && !is_ready(c)
                });
                for content in waiting {
                    trigger.send(None, &object_key(content.as_ref()).1, "class changed");
                }
            })
        }
    });
    let snapshotter = Arc::new(Snapshotter {
        ctx: ctx.clone(),
        drivers,
        contents: contents.clone(),
        classes,
        backoff: Backoff::upstream(),
        polls: Backoff::upstream(),
        list_snapshots_support: Mutex::default(),
    });
    let config = controller::Config::default()
        .concurrency(u16::try_from(ctx.config.workers.max(1)).unwrap_or(u16::MAX));
    let reconciles = {
        let snapshotter = snapshotter.clone();
        async move {
            futures::join!(snapshotter.contents.ready(), snapshotter.classes.ready());
            tracing::info!(drivers = ?snapshotter.drivers.names(), "CSI snapshotter caches synced");
            applier(
                |content, this: Arc<Snapshotter>| -> BoxFuture<'static, Result<Action, Error>> {
                    async move { this.reconcile(content).await }.boxed()
                },
                |content, error, this| this.retry(&content, error),
                snapshotter.clone(),
                contents.store(),
                queue,
                config,
            )
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(?error, "content reconcile ended in error");
                }
            })
            .await;
        }
    };
    tokio::select! {
        () = async { futures::join!(watch_contents, watch_classes); } => {},
        () = reconciles => {},
    }
    Err(Error::Invalid("CSI snapshotter stopped".into()))
}

/// The snapshotter's state.
struct Snapshotter {
    ctx: Arc<Context>,
    drivers: Arc<Registry>,
    contents: Cache<VolumeSnapshotContent>,
    classes: Cache<VolumeSnapshotClass>,
    /// Retry delays after failures.
    backoff: Backoff,
    /// Poll delays while a snapshot is not ready yet.
    polls: Backoff,
    /// Whether each driver offers LIST_SNAPSHOTS (asked once per driver).
    list_snapshots_support: Mutex<HashMap<String, bool>>,
}

/// What the storage says about a snapshot.
#[derive(Debug, Clone, Copy)]
struct SnapshotState {
    ready: bool,
    created_ns: i64,
    size_bytes: i64,
}

impl SnapshotState {
    /// The state a CSI CreateSnapshot or ListSnapshots answer reports.
    fn from_csi(snapshot: &volplane_csi::proto::Snapshot) -> SnapshotState {
        SnapshotState {
            ready: snapshot.ready_to_use,
            created_ns: decisions::creation_ns(
                snapshot
                    .creation_time
                    .as_ref()
                    .map(|t| (t.seconds, t.nanos)),
            ),
            size_bytes: snapshot.size_bytes,
        }
    }
}

impl Snapshotter {
    async fn reconcile(&self, content: Arc<VolumeSnapshotContent>) -> Result<Action, Error> {
        if !self.drivers.contains(&content.spec.driver) {
            // Another driver's content: its own snapshotter handles it.
            return Ok(Action::await_change());
        }
        let name = object_key(content.as_ref()).1;
        let span = tracing::info_span!(
            "reconcile",
            kind = "VolumeSnapshotContent",
            key = %name,
            driver = %content.spec.driver,
            uid = content.metadata.uid.as_deref().unwrap_or_default(),
            resource_version = content.metadata.resource_version.as_deref().unwrap_or_default(),
        );
        let action = self.sync(content.as_ref().clone()).instrument(span).await?;
        self.backoff.reset(&name);
        Ok(action)
    }

    /// Upstream's `syncContent`.
    async fn sync(&self, content: VolumeSnapshotContent) -> Result<Action, Error> {
        if should_delete(&content) {
            let handle = content
                .status
                .as_ref()
                .and_then(|s| s.snapshot_handle.as_deref());
            let in_group = content
                .status
                .as_ref()
                .is_some_and(|s| s.volume_group_snapshot_handle.is_some());
            if content.spec.deletion_policy == DELETION_POLICY_DELETE
                && handle.is_some()
                && !in_group
            {
                // The status update that follows triggers the pass that removes the finalizer;
                // the finalizer stays until the storage has let the snapshot go.
                self.delete_snapshot(&content).await?;
            } else {
                self.remove_finalizer(&content).await?;
            }
            return Ok(Action::await_change());
        }
        let name = object_key(&content).1;
        let in_group = has_annotation(&content.metadata, ANN_GROUP_SNAPSHOT_HANDLE);
        if content.spec.source.volume_handle.is_some() && content.status.is_none() && !in_group {
            let updated = match self.create_snapshot(content).await {
                Ok(updated) => updated,
                Err((latest, message)) => {
                    let message = format!("Failed to create snapshot: {message}");
                    return Err(self
                        .record_error(&latest, "SnapshotCreationFailed", &message)
                        .await);
                }
            };
            return Ok(self.poll_unless_ready(&name, &updated));
        }
        if is_ready(&content) {
            self.polls.reset(&name);
            if has_annotation(&content.metadata, ANN_VOLUMESNAPSHOT_BEING_CREATED) {
                self.set_being_created(&content, false).await?;
            }
            return Ok(Action::await_change());
        }
        match self.check_and_update_status(content).await {
            Ok(updated) => Ok(self.poll_unless_ready(&name, &updated)),
            Err((latest, message)) => {
                let message = format!("Failed to check and update snapshot content: {message}");
                Err(self
                    .record_error(&latest, "SnapshotContentCheckandUpdateFailed", &message)
                    .await)
            }
        }
    }

    fn poll_unless_ready(&self, name: &str, content: &VolumeSnapshotContent) -> Action {
        if is_ready(content) {
            self.polls.reset(name);
            Action::await_change()
        } else {
            Action::requeue(self.polls.next(name))
        }
    }

    /// Records `message` in the content's `status.error` (readyToUse false) with a Warning
    /// event — only when the message is new — and returns the error the reconcile fails with.
    async fn record_error(
        &self,
        content: &VolumeSnapshotContent,
        reason: &str,
        message: &str,
    ) -> Error {
        let name = object_key(content).1;
        let error = Error::Invalid(format!("content {name}: {message}"));
        let current = content
            .status
            .as_ref()
            .and_then(|s| s.error.as_ref())
            .and_then(|e| e.message.as_deref());
        if current == Some(message) {
            return error;
        }
        let patch = json!({
            "status": {
                "readyToUse": false,
                "error": {"time": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()), "message": message},
            }
        });
        let result = self
            .api()
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        if let Err(write_error) = result {
            tracing::debug!(%write_error, "could not record the error in the content's status");
        }
        // As upstream: the event is written even when the status could not be.
        self.warn(content, reason, message).await;
        error
    }

    async fn warn(&self, content: &VolumeSnapshotContent, reason: &str, note: &str) {
        self.ctx
            .event(
                &reference_to(content),
                Severity::Warning,
                reason,
                "Snapshot",
                note,
            )
            .await;
    }

    fn client(&self, content: &VolumeSnapshotContent) -> Result<volplane_csi::CsiClient, Error> {
        self.drivers
            .get(&content.spec.driver)
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    fn api(&self) -> Api<VolumeSnapshotContent> {
        Api::all(self.ctx.client.clone())
    }

    /// Conflicts are retried at once; other failures back off as upstream's queue does.
    fn retry(&self, content: &VolumeSnapshotContent, error: &Error) -> Action {
        if writes::is_conflict_error(error) {
            return Action::requeue(Duration::from_millis(100));
        }
        let name = object_key(content).1;
        let delay = self.backoff.next(&name);
        tracing::info!(content = %name, %error, ?delay, "snapshot operation failed; retrying");
        Action::requeue(delay)
    }
}
