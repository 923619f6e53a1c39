//! Reconciling one VolumeSnapshot (upstream's `syncSnapshot`): class defaulting, finalizers,
//! binding to a content (creating it for a dynamic snapshot), status from the content, and
//! deletion.
//!
//! Every failure a user can act on is written to `status.error` with a Warning event (only
//! when the message changes, as upstream), then retried with backoff.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tracing::Instrument;
use volplane_api::snapshot::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};
use volplane_api::wellknown::{
    ANN_VOLUMESNAPSHOT_BEING_DELETED, FINALIZER_PVC_AS_SNAPSHOT_SOURCE,
    FINALIZER_VOLUMESNAPSHOT_AS_SOURCE, FINALIZER_VOLUMESNAPSHOT_BOUND,
};

use super::decisions::{
    self, DELETION_POLICY_DELETE, bound_content_name, has_finalizer, is_ready, snapshot_key,
};
use super::secrets::{self, SecretParams};
use super::writes::{self, is_conflict};
use super::{RESYNC, SnapshotController};
use crate::Error;
use crate::events::{Severity, reference_to};

impl SnapshotController {
    /// Reconciles one snapshot (with a span naming it) and forgets its backoff on success.
    pub(super) async fn reconcile_snapshot(
        &self,
        snapshot: Arc<VolumeSnapshot>,
    ) -> Result<Action, Error> {
        let key = snapshot_key(&snapshot);
        let span = tracing::info_span!(
            "reconcile",
            kind = "VolumeSnapshot",
            key = %key,
            uid = snapshot.metadata.uid.as_deref().unwrap_or_default(),
            resource_version = snapshot.metadata.resource_version.as_deref().unwrap_or_default(),
        );
        let action = self
            .sync_snapshot(snapshot.as_ref().clone())
            .instrument(span)
            .await?;
        self.backoff.reset(&format!("vs/{key}"));
        Ok(action)
    }

    async fn sync_snapshot(&self, snapshot: VolumeSnapshot) -> Result<Action, Error> {
        let snapshot = self.check_and_update_class(snapshot).await?;

        if let Err(error) = self
            .check_and_remove_claim_finalizer(&snapshot, false)
            .await
        {
            self.claim_finalizer_failed(&snapshot, &error).await;
        }
        if snapshot.metadata.deletion_timestamp.is_some() {
            return self.process_deletion(&snapshot).await;
        }
        if !decisions::has_one_source(&snapshot) {
            let message = "Exactly one of PersistentVolumeClaimName and VolumeSnapshotContentName should be specified";
            return Err(self
                .fail(&snapshot, true, "SnapshotValidationError", message)
                .await);
        }
        let snapshot = self.check_and_add_finalizers(snapshot).await?;
        if !is_ready(&snapshot) || bound_content_name(&snapshot).is_none() {
            self.sync_unready(snapshot).await?;
        } else {
            self.sync_ready(&snapshot).await?;
        }
        Ok(Action::requeue(RESYNC))
    }

    /// Resolves the snapshot's class: the named one must exist; a dynamic snapshot without one
    /// gets its driver's default class written into `spec.volumeSnapshotClassName`.
    async fn check_and_update_class(
        &self,
        snapshot: VolumeSnapshot,
    ) -> Result<VolumeSnapshot, Error> {
        let deleting = snapshot.metadata.deletion_timestamp.is_some();
        if let Some(class) = &snapshot.spec.volume_snapshot_class_name {
            if self.class(class).is_none() && !deleting {
                let message = format!(
                    "Failed to get snapshot class with error volumesnapshotclass.snapshot.storage.k8s.io {class:?} not found"
                );
                return Err(self
                    .fail(&snapshot, false, "GetSnapshotClassFailed", &message)
                    .await);
            }
            return Ok(snapshot);
        }
        // A pre-provisioned snapshot needs no class; a snapshot being deleted needs none either.
        if snapshot.spec.source.volume_snapshot_content_name.is_some() || deleting {
            return Ok(snapshot);
        }
        let class = match self.default_class_for(&snapshot) {
            Ok(class) => class,
            Err(cause) => {
                let message = format!("Failed to set default snapshot class with error {cause}");
                return Err(self
                    .fail(&snapshot, false, "SetDefaultSnapshotClassFailed", &message)
                    .await);
            }
        };
        let patch = json!({
            "metadata": {"resourceVersion": snapshot.metadata.resource_version},
            "spec": {"volumeSnapshotClassName": class.metadata.name},
        });
        let updated = self
            .snapshot_api(&snapshot)
            .patch(
                snapshot.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        tracing::info!(
            class = class.metadata.name.as_deref(),
            "default snapshot class set"
        );
        Ok(updated)
    }

    fn default_class_for(
        &self,
        snapshot: &VolumeSnapshot,
    ) -> Result<Arc<VolumeSnapshotClass>, String> {
        let (_, volume) = self.volume_for_snapshot(snapshot)?;
        let Some(csi) = volume.spec.as_ref().and_then(|s| s.csi.as_ref()) else {
            return Err(format!(
                "snapshotting non-CSI volumes is not supported, snapshot:{}",
                snapshot_key(snapshot)
            ));
        };
        let classes = self.classes.state();
        let class = decisions::default_class(classes.iter().map(Arc::as_ref), &csi.driver)?;
        Ok(Arc::new(class.clone()))
    }

    /// Adds the as-source finalizer to every live snapshot, and the bound finalizer once the
    /// snapshot is bound to a content that will be deleted with it.
    async fn check_and_add_finalizers(
        &self,
        snapshot: VolumeSnapshot,
    ) -> Result<VolumeSnapshot, Error> {
        let content = if snapshot.spec.source.volume_snapshot_content_name.is_some() {
            self.preprovisioned_content(&snapshot).await?
        } else {
            self.dynamic_content(&snapshot).await?
        };
        let add_source = !has_finalizer(&snapshot.metadata, FINALIZER_VOLUMESNAPSHOT_AS_SOURCE);
        let add_bound = content.is_some_and(|c| c.spec.deletion_policy == DELETION_POLICY_DELETE)
            && bound_content_name(&snapshot).is_some()
            && !has_finalizer(&snapshot.metadata, FINALIZER_VOLUMESNAPSHOT_BOUND);
        if !add_source && !add_bound {
            return Ok(snapshot);
        }
        let mut finalizers = snapshot.metadata.finalizers.clone().unwrap_or_default();
        if add_source {
            finalizers.push(FINALIZER_VOLUMESNAPSHOT_AS_SOURCE.to_string());
        }
        if add_bound {
            finalizers.push(FINALIZER_VOLUMESNAPSHOT_BOUND.to_string());
        }
        let result =
            writes::set_finalizers(&self.snapshot_api(&snapshot), &snapshot, finalizers).await;
        match result {
            Ok(updated) => Ok(updated),
            Err(error) => {
                if !is_conflict(&error) {
                    let note = format!("Failed to check and update snapshot: {error}");
                    self.warn(&snapshot, "SnapshotFinalizerError", "AddFinalizer", note)
                        .await;
                }
                Err(error.into())
            }
        }
    }

    /// A snapshot not yet ready (or not yet bound): bind it and copy the content's status.
    async fn sync_unready(&self, snapshot: VolumeSnapshot) -> Result<(), Error> {
        if snapshot.spec.source.volume_snapshot_content_name.is_some() {
            let Some(content) = self.preprovisioned_content(&snapshot).await? else {
                return Err(self
                    .fail(
                        &snapshot,
                        true,
                        "SnapshotContentMissing",
                        "VolumeSnapshotContent is missing",
                    )
                    .await);
            };
            let content = match self.check_and_bind_content(&snapshot, &content).await {
                Ok(content) => content,
                Err(error) if writes::is_conflict_error(&error) => return Err(error),
                Err(error) => {
                    let message = format!("Snapshot failed to bind VolumeSnapshotContent, {error}");
                    return Err(self
                        .fail(&snapshot, true, "SnapshotBindFailed", &message)
                        .await);
                }
            };
            return self.update_status(&snapshot, &content).await;
        }

        if let Some(content) = self.dynamic_content(&snapshot).await? {
            if content.spec.source.snapshot_handle.is_some() {
                let message = format!(
                    "Snapshot handle should not be set in content {} for dynamic provisioning",
                    snapshot_key(&snapshot)
                );
                return Err(self
                    .fail(&snapshot, true, "SnapshotHandleSet", &message)
                    .await);
            }
            return self.update_status(&snapshot, &content).await;
        }
        let content = match self.create_content(&snapshot).await {
            Ok(content) => content,
            Err(message) => {
                let message = format!("Failed to create snapshot content with error {message}");
                return Err(self
                    .fail(&snapshot, true, "SnapshotContentCreationFailed", &message)
                    .await);
            }
        };
        self.update_status(&snapshot, &content).await
    }

    /// A ready, bound snapshot: check the binding still holds; keep the status current.
    async fn sync_ready(&self, snapshot: &VolumeSnapshot) -> Result<(), Error> {
        let name = bound_content_name(snapshot).unwrap_or_default();
        let Some(content) = self.contents.get(&ObjectRef::new(name)) else {
            return Err(self
                .fail(
                    snapshot,
                    true,
                    "SnapshotContentMissing",
                    "VolumeSnapshotContent is missing",
                )
                .await);
        };
        if !decisions::is_ref_set(snapshot, &content) {
            let message = "VolumeSnapshotContent is not bound to the VolumeSnapshot correctly";
            return Err(self.fail(snapshot, true, "SnapshotMisbound", message).await);
        }
        self.update_status(snapshot, &content).await
    }

    /// The content a pre-provisioned snapshot names, if it exists and names it back.
    async fn preprovisioned_content(
        &self,
        snapshot: &VolumeSnapshot,
    ) -> Result<Option<Arc<VolumeSnapshotContent>>, Error> {
        let name = snapshot
            .spec
            .source
            .volume_snapshot_content_name
            .as_deref()
            .unwrap_or_default();
        if name.is_empty() {
            return Err(Error::Invalid(format!(
                "empty VolumeSnapshotContentName for snapshot {}",
                snapshot_key(snapshot)
            )));
        }
        let Some(content) = self.contents.get(&ObjectRef::new(name)) else {
            return Ok(None);
        };
        if content.spec.source.snapshot_handle.is_none() {
            let message = "VolumeSnapshotContent is dynamically provisioned while expecting a pre-provisioned one";
            return Err(self
                .fail(snapshot, true, "SnapshotContentMismatch", message)
                .await);
        }
        if !decisions::content_names_snapshot(snapshot, &content) {
            let message =
                format!("VolumeSnapshotContent [{name}] is bound to a different snapshot");
            return Err(self
                .fail(snapshot, true, "SnapshotContentMisbound", &message)
                .await);
        }
        Ok(Some(content))
    }

    /// The content this controller created for a dynamic snapshot, if it exists and is bound
    /// to this very snapshot.
    async fn dynamic_content(
        &self,
        snapshot: &VolumeSnapshot,
    ) -> Result<Option<Arc<VolumeSnapshotContent>>, Error> {
        let name = decisions::dynamic_content_name(snapshot);
        let Some(content) = self.contents.get(&ObjectRef::new(&name)) else {
            return Ok(None);
        };
        if content.spec.source.volume_handle.is_none() {
            let message = format!(
                "VolumeSnapshotContent {name} is pre-provisioned while expecting a dynamically provisioned one"
            );
            return Err(self
                .fail(snapshot, true, "SnapshotContentMismatch", &message)
                .await);
        }
        if !decisions::is_ref_set(snapshot, &content) {
            let message =
                format!("VolumeSnapshotContent [{name}] is bound to a different snapshot");
            return Err(self
                .fail(snapshot, true, "SnapshotContentMisbound", &message)
                .await);
        }
        Ok(Some(content))
    }

    /// Completes a pre-provisioned binding: the content's `volumeSnapshotRef.uid` (and class,
    /// when the snapshot names one). Conditional on the content's version, so two snapshots
    /// racing for one content cannot both win.
    async fn check_and_bind_content(
        &self,
        snapshot: &VolumeSnapshot,
        content: &VolumeSnapshotContent,
    ) -> Result<Arc<VolumeSnapshotContent>, Error> {
        if !decisions::content_names_snapshot(snapshot, content) {
            return Err(Error::Invalid(format!(
                "Could not bind snapshot {} and content {}, the VolumeSnapshotRef does not match",
                snapshot.metadata.name.as_deref().unwrap_or_default(),
                content.metadata.name.as_deref().unwrap_or_default()
            )));
        }
        let uid_set = content
            .spec
            .volume_snapshot_ref
            .uid
            .as_deref()
            .is_some_and(|u| !u.is_empty());
        if uid_set && content.spec.volume_snapshot_class_name.is_some() {
            return Ok(Arc::new(content.clone()));
        }
        let mut spec = json!({"volumeSnapshotRef": {"uid": snapshot.metadata.uid}});
        if let Some(class) = &snapshot.spec.volume_snapshot_class_name {
            spec["volumeSnapshotClassName"] = json!(class);
        }
        let patch = json!({
            "metadata": {"resourceVersion": content.metadata.resource_version},
            "spec": spec,
        });
        let bound = Api::<VolumeSnapshotContent>::all(self.ctx.client.clone())
            .patch(
                content.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        tracing::info!(
            content = bound.metadata.name.as_deref(),
            "pre-provisioned content bound"
        );
        Ok(Arc::new(bound))
    }

    /// Creates the content of a dynamic snapshot (upstream's `createSnapshotContent`); an
    /// existing one of the same name is reused, so a crash between creating it and recording
    /// it in the status creates nothing twice.
    async fn create_content(
        &self,
        snapshot: &VolumeSnapshot,
    ) -> Result<Arc<VolumeSnapshotContent>, String> {
        self.ensure_claim_finalizer(snapshot).await?;
        let SnapshotInput {
            class,
            volume,
            content_name,
            secret,
        } = self.create_snapshot_input(snapshot).map_err(|e| {
            format!(
                "failed to get input parameters to create snapshot {}: {e:?}",
                name_of(snapshot)
            )
        })?;
        let spec = volume.spec.as_ref();
        let Some(csi) = spec.and_then(|s| s.csi.as_ref()) else {
            return Err(format!(
                "cannot find CSI PersistentVolumeSource for volume {}",
                volume.metadata.name.as_deref().unwrap_or_default()
            ));
        };
        let content = decisions::new_dynamic_content(
            snapshot,
            &class,
            &csi.volume_handle,
            spec.and_then(|s| s.volume_mode.clone()),
            secret.as_ref(),
        );
        let api = Api::<VolumeSnapshotContent>::all(self.ctx.client.clone());
        let created = match api.create(&PostParams::default(), &content).await {
            Ok(created) => created,
            Err(error) if is_already_exists(&error) => {
                tracing::info!(content = %content_name, "content exists; reusing it");
                api.get(&content_name)
                    .await
                    .map_err(|e| update_failed(snapshot, &e))?
            }
            Err(error) => {
                let note = format!(
                    "Error creating volume snapshot content object for snapshot {}: {error}.",
                    snapshot_key(snapshot)
                );
                self.warn(
                    snapshot,
                    "CreateSnapshotContentFailed",
                    "CreateContent",
                    note,
                )
                .await;
                return Err(update_failed(snapshot, &error));
            }
        };
        tracing::info!(content = %content_name, "content created");
        let note = format!(
            "Waiting for a snapshot {} to be created by the CSI driver.",
            snapshot_key(snapshot)
        );
        self.ctx
            .event(
                &reference_to(snapshot),
                Severity::Normal,
                "CreatingSnapshot",
                "CreateContent",
                note,
            )
            .await;
        Ok(Arc::new(created))
    }

    fn create_snapshot_input(&self, snapshot: &VolumeSnapshot) -> Result<SnapshotInput, String> {
        let Some(class_name) = &snapshot.spec.volume_snapshot_class_name else {
            return Err(format!(
                "failed to take snapshot {} without a snapshot class",
                name_of(snapshot)
            ));
        };
        let class = self.class(class_name).ok_or_else(|| {
            format!("volumesnapshotclass.snapshot.storage.k8s.io {class_name:?} not found")
        })?;
        let (_, volume) = self.volume_for_snapshot(snapshot)?;
        let content_name = decisions::dynamic_content_name(snapshot);
        let namespace = snapshot.metadata.namespace.as_deref().unwrap_or_default();
        let secret = secrets::secret_reference(
            SecretParams::Snapshotter,
            class.parameters.as_ref(),
            &content_name,
            Some((namespace, name_of(snapshot))),
        )?;
        Ok(SnapshotInput {
            class,
            volume,
            content_name,
            secret,
        })
    }

    /// The claim a dynamic snapshot is taken of and its bound PV, both ways bound.
    fn volume_for_snapshot(
        &self,
        snapshot: &VolumeSnapshot,
    ) -> Result<(Arc<PersistentVolumeClaim>, Arc<PersistentVolume>), String> {
        let claim = self.claim_of(snapshot)?;
        let claim_name = claim.metadata.name.as_deref().unwrap_or_default();
        let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some("Bound") {
            return Err(format!(
                "the PVC {claim_name} is not yet bound to a PV, will not attempt to take a snapshot"
            ));
        }
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .unwrap_or_default();
        let Some(volume) = self.volumes.get(&ObjectRef::new(volume_name)) else {
            return Err(format!(
                "failed to retrieve PV {volume_name} from the API server: \"persistentvolumes \\\"{volume_name}\\\" not found\""
            ));
        };
        if !decisions::is_volume_bound_to_claim(&volume, &claim) {
            tracing::warn!(
                volume = volume_name,
                claim = claim_name,
                "binding between PV and PVC is broken"
            );
            return Err("claim in dataSource not bound or invalid".to_string());
        }
        Ok((claim, volume))
    }

    fn claim_of(&self, snapshot: &VolumeSnapshot) -> Result<Arc<PersistentVolumeClaim>, String> {
        let Some(name) = &snapshot.spec.source.persistent_volume_claim_name else {
            return Err("the snapshot source PVC name is not specified".to_string());
        };
        if name.is_empty() {
            return Err(format!(
                "the PVC name is not specified in snapshot {}",
                snapshot_key(snapshot)
            ));
        }
        let namespace = snapshot.metadata.namespace.as_deref().unwrap_or_default();
        self.claims
            .get(&ObjectRef::new(name).within(namespace))
            .ok_or_else(|| {
                format!(
                    "failed to retrieve PVC {name} from the lister: \"persistentvolumeclaim \\\"{name}\\\" not found\""
                )
            })
    }

    /// Puts `pvc-as-source-protection` on the claim before its snapshot is taken.
    async fn ensure_claim_finalizer(&self, snapshot: &VolumeSnapshot) -> Result<(), String> {
        let claim = self.claim_of(snapshot).map_err(|cause| {
            tracing::info!(%cause, "cannot get claim from snapshot; it may be deleted already");
            format!(
                "snapshot controller failed to update {} on API server: cannot get claim from snapshot: {cause}",
                name_of(snapshot)
            )
        })?;
        if has_finalizer(&claim.metadata, FINALIZER_PVC_AS_SNAPSHOT_SOURCE) {
            return Ok(());
        }
        let claim_name = claim.metadata.name.as_deref().unwrap_or_default();
        if claim.metadata.deletion_timestamp.is_some() {
            return Err(format!(
                "snapshot controller failed to update {claim_name} on API server: cannot add finalizer on claim because it is being deleted"
            ));
        }
        writes::add_finalizer(
            &self.claim_api(&claim),
            claim.as_ref(),
            FINALIZER_PVC_AS_SNAPSHOT_SOURCE,
        )
        .await
        .map_err(|e| {
            format!("snapshot controller failed to update {claim_name} on API server: {e}")
        })?;
        tracing::info!(
            claim = claim_name,
            "added protection finalizer to the source claim"
        );
        Ok(())
    }

    /// Removes `pvc-as-source-protection` from the source claim once no snapshot of it (other
    /// than this one, when `skip_current`) is still being taken.
    async fn check_and_remove_claim_finalizer(
        &self,
        snapshot: &VolumeSnapshot,
        skip_current: bool,
    ) -> Result<(), kube::Error> {
        let Ok(claim) = self.claim_of(snapshot) else {
            return Ok(());
        };
        if !has_finalizer(&claim.metadata, FINALIZER_PVC_AS_SNAPSHOT_SOURCE) {
            return Ok(());
        }
        let claim_key = super::cache::object_key(claim.as_ref());
        let in_use = self
            .snapshots_by_claim
            .get(&claim_key)
            .into_iter()
            .filter(|(_, name)| !(skip_current && Some(name) == snapshot.metadata.name.as_ref()))
            .filter_map(|(namespace, name)| {
                self.snapshots
                    .get(&ObjectRef::new(&name).within(&namespace))
            })
            .any(|s| !is_ready(&s));
        if in_use {
            return Ok(());
        }
        writes::remove_finalizers(
            &self.claim_api(&claim),
            claim.as_ref(),
            &[FINALIZER_PVC_AS_SNAPSHOT_SOURCE],
        )
        .await?;
        tracing::info!(
            claim = claim_key.1,
            "removed protection finalizer from the source claim"
        );
        Ok(())
    }

    async fn claim_finalizer_failed(&self, snapshot: &VolumeSnapshot, error: &kube::Error) {
        if is_conflict(error) {
            return;
        }
        tracing::warn!(%error, "could not remove the source claim's finalizer");
        self.warn(
            snapshot,
            "ErrorPVCFinalizer",
            "RemoveFinalizer",
            "Error check and remove PVC Finalizer for VolumeSnapshot",
        )
        .await;
    }

    /// A snapshot with a deletionTimestamp: mark its content, delete it when the policy says
    /// so, and let the snapshot go (the bound finalizer stays until the content is gone).
    async fn process_deletion(&self, snapshot: &VolumeSnapshot) -> Result<Action, Error> {
        let content_name = match bound_content_name(snapshot) {
            Some(name) => Some(name.to_string()),
            None if snapshot.spec.source.persistent_volume_claim_name.is_some() => {
                Some(decisions::dynamic_content_name(snapshot))
            }
            None => None,
        };
        let content = content_name
            .and_then(|name| self.contents.get(&ObjectRef::new(&name)))
            .filter(|content| decisions::is_ref_set(snapshot, content));
        let delete_content = content
            .as_ref()
            .is_some_and(|c| c.spec.deletion_policy == DELETION_POLICY_DELETE);
        if !decisions::is_deletion_candidate(snapshot) {
            return Ok(Action::await_change());
        }
        if content.is_some() && self.is_being_restored(snapshot) {
            tracing::info!("snapshot is being used to restore a claim; deletion waits");
            self.warn(
                snapshot,
                "SnapshotDeletePending",
                "DeleteSnapshot",
                "Snapshot is being used to restore a PVC",
            )
            .await;
            return Ok(Action::await_change());
        }
        if let Some(content) = &content {
            self.mark_content_being_deleted(content).await?;
            if delete_content && content.metadata.deletion_timestamp.is_none() {
                let name = content.metadata.name.as_deref().unwrap_or_default();
                let api = Api::<VolumeSnapshotContent>::all(self.ctx.client.clone());
                if let Err(error) = api.delete(name, &DeleteParams::default()).await
                    && !writes::is_not_found(&error)
                {
                    self.warn(
                        snapshot,
                        "SnapshotContentObjectDeleteError",
                        "DeleteContent",
                        "Failed to delete snapshot content API object",
                    )
                    .await;
                    return Err(Error::Invalid(format!(
                        "failed to delete VolumeSnapshotContent {name} from API server: {error}"
                    )));
                }
                tracing::info!(content = name, "content deleted with its snapshot");
            }
        }
        let remove_bound = !(content.is_some() && delete_content);
        self.remove_snapshot_finalizers(snapshot, remove_bound)
            .await?;
        Ok(Action::await_change())
    }

    /// Some claim restored from this snapshot is not provisioned yet.
    fn is_being_restored(&self, snapshot: &VolumeSnapshot) -> bool {
        let key = super::cache::object_key(snapshot);
        self.claims_by_snapshot
            .get(&key)
            .into_iter()
            .filter_map(|(namespace, name)| {
                self.claims.get(&ObjectRef::new(&name).within(&namespace))
            })
            .any(|claim| decisions::is_being_restored(&claim))
    }

    /// Tells the CSI snapshotter the content's snapshot is being deleted.
    pub(super) async fn mark_content_being_deleted(
        &self,
        content: &VolumeSnapshotContent,
    ) -> Result<(), Error> {
        if decisions::has_annotation(&content.metadata, ANN_VOLUMESNAPSHOT_BEING_DELETED) {
            return Ok(());
        }
        let api = Api::<VolumeSnapshotContent>::all(self.ctx.client.clone());
        writes::set_annotation(&api, content, ANN_VOLUMESNAPSHOT_BEING_DELETED, Some("yes"))
            .await?;
        tracing::info!(
            content = content.metadata.name.as_deref(),
            "content marked: its snapshot is being deleted"
        );
        Ok(())
    }

    /// Removes the as-source finalizer (and the bound one when `remove_bound`), after the
    /// source claim's finalizer: once the snapshot is gone nothing would remove that one.
    async fn remove_snapshot_finalizers(
        &self,
        snapshot: &VolumeSnapshot,
        remove_bound: bool,
    ) -> Result<(), Error> {
        let mut remove = vec![FINALIZER_VOLUMESNAPSHOT_AS_SOURCE];
        if remove_bound {
            remove.push(FINALIZER_VOLUMESNAPSHOT_BOUND);
        }
        if !remove.iter().any(|f| has_finalizer(&snapshot.metadata, f)) {
            return Ok(());
        }
        if let Err(error) = self.check_and_remove_claim_finalizer(snapshot, true).await {
            self.claim_finalizer_failed(snapshot, &error).await;
            return Err(error.into());
        }
        writes::remove_finalizers(&self.snapshot_api(snapshot), snapshot, &remove).await?;
        tracing::info!(?remove, "removed finalizers from the snapshot");
        Ok(())
    }

    /// Copies the content's status into the snapshot's (upstream's `updateSnapshotStatus`),
    /// with the SnapshotCreated and SnapshotReady events on those transitions.
    async fn update_status(
        &self,
        snapshot: &VolumeSnapshot,
        content: &VolumeSnapshotContent,
    ) -> Result<(), Error> {
        let Some(status) = decisions::status_from_content(snapshot.status.as_ref(), content) else {
            return Ok(());
        };
        let was_created = snapshot
            .status
            .as_ref()
            .is_some_and(|s| s.creation_time.is_some());
        let was_ready = is_ready(snapshot);
        let mut updated = snapshot.clone();
        updated.status = Some(status);
        match writes::replace_status(&self.snapshot_api(snapshot), &updated).await {
            Ok(_) => {}
            Err(error) if is_conflict(&error) => return Err(error.into()),
            Err(error) => {
                let message = format!("Snapshot status update failed, {error}");
                return Err(self
                    .fail(snapshot, false, "SnapshotStatusUpdateFailed", &message)
                    .await);
            }
        }
        let key = snapshot_key(snapshot);
        let now_created = updated
            .status
            .as_ref()
            .is_some_and(|s| s.creation_time.is_some());
        if !was_created && now_created {
            tracing::info!("snapshot created by the CSI driver");
            let note = format!("Snapshot {key} was successfully created by the CSI driver.");
            self.ctx
                .event(
                    &reference_to(snapshot),
                    Severity::Normal,
                    "SnapshotCreated",
                    "CreateSnapshot",
                    note,
                )
                .await;
        }
        if !was_ready && is_ready(&updated) {
            tracing::info!("snapshot ready to use");
            let note = format!("Snapshot {key} is ready to use.");
            self.ctx
                .event(
                    &reference_to(snapshot),
                    Severity::Normal,
                    "SnapshotReady",
                    "CreateSnapshot",
                    note,
                )
                .await;
        }
        Ok(())
    }

    /// Records `message` in the snapshot's `status.error` with a Warning event `reason` (both
    /// only when the message is new), and returns the error the reconcile fails with.
    async fn fail(
        &self,
        snapshot: &VolumeSnapshot,
        set_ready_false: bool,
        reason: &str,
        message: &str,
    ) -> Error {
        let error = Error::Invalid(format!("{}: {message}", snapshot_key(snapshot)));
        if decisions::error_message(snapshot.status.as_ref()) == Some(message) {
            return error;
        }
        let mut updated = snapshot.clone();
        updated.status = Some(decisions::status_with_error(
            snapshot.status.as_ref(),
            message,
            set_ready_false,
        ));
        if let Err(write_error) =
            writes::replace_status(&self.snapshot_api(snapshot), &updated).await
        {
            tracing::debug!(%write_error, "could not record the error in the snapshot's status");
        }
        // As upstream: the event is written even when the status could not be.
        self.warn(snapshot, reason, "Sync", message).await;
        error
    }

    async fn warn(
        &self,
        snapshot: &VolumeSnapshot,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        self.ctx
            .event(
                &reference_to(snapshot),
                Severity::Warning,
                reason,
                action,
                note,
            )
            .await;
    }

    fn class(&self, name: &str) -> Option<Arc<VolumeSnapshotClass>> {
        self.classes.get(&ObjectRef::new(name))
    }

    fn snapshot_api(&self, snapshot: &VolumeSnapshot) -> Api<VolumeSnapshot> {
        Api::namespaced(
            self.ctx.client.clone(),
            snapshot.metadata.namespace.as_deref().unwrap_or_default(),
        )
    }

    fn claim_api(&self, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
        Api::namespaced(
            self.ctx.client.clone(),
            claim.metadata.namespace.as_deref().unwrap_or_default(),
        )
    }
}

/// What CreateSnapshot of a dynamic snapshot needs, resolved.
struct SnapshotInput {
    class: Arc<VolumeSnapshotClass>,
    volume: Arc<PersistentVolume>,
    content_name: String,
    secret: Option<secrets::SecretRef>,
}

fn name_of(snapshot: &VolumeSnapshot) -> &str {
    snapshot.metadata.name.as_deref().unwrap_or_default()
}

fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

/// Upstream's `controllerUpdateError` wording, so a message means the same thing here.
fn update_failed(snapshot: &VolumeSnapshot, error: &kube::Error) -> String {
    format!(
        "snapshot controller failed to update {} on API server: {error}",
        snapshot_key(snapshot)
    )
}
