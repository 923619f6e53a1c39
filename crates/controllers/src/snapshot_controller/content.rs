//! Reconciling one VolumeSnapshotContent on the controller's side (upstream's `syncContent`):
//! a bound content gets the bound-protection finalizer, and learns through an annotation when
//! its snapshot is being deleted. Creating and deleting the snapshot on the storage is the CSI
//! snapshotter's part.

use std::sync::Arc;

use kube::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::Instrument;
use volplane_api::snapshot::VolumeSnapshotContent;
use volplane_api::wellknown::FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND;

use super::decisions::{self, has_finalizer};
use super::writes;
use super::{RESYNC, SnapshotController};
use crate::Error;
use crate::events::{Severity, reference_to};

impl SnapshotController {
    /// Reconciles one content (with a span naming it) and forgets its backoff on success.
    pub(super) async fn reconcile_content(
        &self,
        content: Arc<VolumeSnapshotContent>,
    ) -> Result<Action, Error> {
        let name = content.metadata.name.clone().unwrap_or_default();
        let span = tracing::info_span!(
            "reconcile",
            kind = "VolumeSnapshotContent",
            key = %name,
            uid = content.metadata.uid.as_deref().unwrap_or_default(),
            resource_version = content.metadata.resource_version.as_deref().unwrap_or_default(),
        );
        let action = self.sync_content(&content).instrument(span).await?;
        self.backoff.reset(&format!("vsc/{name}"));
        Ok(action)
    }

    async fn sync_content(&self, content: &VolumeSnapshotContent) -> Result<Action, Error> {
        if !decisions::content_has_one_source(content) {
            // The source is immutable: only a new content fixes this, so no retry.
            self.ctx
                .event(
                    &reference_to(content),
                    Severity::Warning,
                    "ContentValidationError",
                    "Sync",
                    "Exactly one of VolumeHandle and SnapshotHandle should be specified",
                )
                .await;
            return Ok(Action::await_change());
        }
        let snapshot_ref = &content.spec.volume_snapshot_ref;
        if snapshot_ref.uid.as_deref().unwrap_or_default().is_empty() {
            // Pre-provisioned and not bound yet: binding is the snapshot's reconcile.
            return Ok(Action::await_change());
        }
        let api = Api::<VolumeSnapshotContent>::all(self.ctx.client.clone());
        if content.metadata.deletion_timestamp.is_none()
            && !has_finalizer(&content.metadata, FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND)
        {
            writes::add_finalizer(&api, content, FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND).await?;
            tracing::info!("added protection finalizer to the content");
            return Ok(Action::await_change());
        }
        let snapshot = match (&snapshot_ref.namespace, &snapshot_ref.name) {
            (Some(namespace), Some(name)) => self
                .snapshots
                .get(&ObjectRef::new(name).within(namespace))
                // Same name, other uid: the bound snapshot is gone and another took its name.
                .filter(|s| s.metadata.uid == snapshot_ref.uid),
            _ => None,
        };
        // A missing snapshot never deletes anything: the content may have been copied from
        // another cluster, and deleting it would delete the data.
        if let Some(snapshot) = snapshot
            && decisions::is_deletion_candidate(&snapshot)
        {
            self.mark_content_being_deleted(content).await?;
        }
        Ok(Action::requeue(RESYNC))
    }
}
