//! The CSI snapshotter's operations: CreateSnapshot, the status of a snapshot on the storage,
//! DeleteSnapshot, and the content writes around them (status, annotation, finalizer), with
//! the secrets each call takes.

use std::collections::HashMap;
use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;
use volplane_api::snapshot::{VolumeSnapshotClass, VolumeSnapshotContent};
use volplane_api::wellknown::{
    ANN_SNAPSHOT_DELETION_SECRET_NAME, ANN_SNAPSHOT_DELETION_SECRET_NAMESPACE,
    ANN_VOLUMESNAPSHOT_BEING_CREATED, FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND,
};
use volplane_csi::proto;

use super::decisions::{
    ANN_GROUP_SNAPSHOT_HANDLE, content_status, is_final_error, now_ns, remove_prefixed_parameters,
    snapshot_name,
};
use super::{SnapshotState, Snapshotter};
use crate::Error;
use crate::snapshot_controller::cache::object_key;
use crate::snapshot_controller::decisions::{has_annotation, has_finalizer};
use crate::snapshot_controller::secrets::{self, SecretParams};
use crate::snapshot_controller::writes;

impl Snapshotter {
    /// Upstream's `createSnapshotWrapper`. On failure, returns the latest version of the
    /// content with the message.
    pub(super) async fn create_snapshot(
        &self,
        content: VolumeSnapshotContent,
    ) -> Result<VolumeSnapshotContent, (VolumeSnapshotContent, String)> {
        let name = object_key(&content).1;
        let (class, credentials) = match self.snapshot_input(&content).await {
            Ok(input) => input,
            Err(e) => {
                let message = format!(
                    "failed to get input parameters to create snapshot for content {name}: {e:?}"
                );
                return Err((content, message));
            }
        };
        let uid = content
            .spec
            .volume_snapshot_ref
            .uid
            .clone()
            .unwrap_or_default();
        let volume_handle = content
            .spec
            .source
            .volume_handle
            .clone()
            .unwrap_or_default();
        if uid.is_empty() {
            let message =
                format!("cannot create snapshot. Snapshot content {name} not bound to a snapshot");
            return Err((content, message));
        }
        let parameters =
            match remove_prefixed_parameters(class.as_ref().and_then(|c| c.parameters.as_ref())) {
                Ok(parameters) => parameters,
                Err(e) => {
                    let message = format!("failed to remove CSI Parameters of prefixed keys: {e}");
                    return Err((content, message));
                }
            };
        // Recorded before the call: if the answer never comes, the content is not deleted
        // and the snapshot not leaked.
        let content = match self.set_being_created(&content, true).await {
            Ok(updated) => updated,
            Err(e) => {
                let message = format!(
                    "failed to add VolumeSnapshotBeingCreated annotation on the content {name}: {e}"
                );
                return Err((content, message));
            }
        };
        let request = proto::CreateSnapshotRequest {
            source_volume_id: volume_handle.clone(),
            name: snapshot_name(&uid),
            secrets: credentials,
            parameters,
        };
        let client = match self.client(&content) {
            Ok(client) => client,
            Err(e) => return Err((content, e.to_string())),
        };
        let response = client.create_snapshot(request).await;
        let snapshot = match response.map(|r| r.snapshot) {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => {
                let message = format!(
                    "failed to take snapshot of the volume {volume_handle}: the driver answered no snapshot"
                );
                return Err((content, message));
            }
            Err(error) => {
                tracing::info!(%error, "CreateSnapshot failed");
                let content = if is_final_error(&error) {
                    match self.set_being_created(&content, false).await {
                        Ok(updated) => updated,
                        Err(e) => {
                            let message = format!(
                                "failed to remove VolumeSnapshotBeingCreated annotation from the content {name}: {e}"
                            );
                            return Err((content, message));
                        }
                    }
                } else {
                    content
                };
                let message = format!(
                    "failed to take snapshot of the volume {volume_handle}: {:?}",
                    error.to_string()
                );
                return Err((content, message));
            }
        };
        tracing::info!(snapshot_handle = %snapshot.snapshot_id, ready = snapshot.ready_to_use, "snapshot taken");
        let state = SnapshotState::from_csi(&snapshot);
        let content = match self
            .update_status(&content, &snapshot.snapshot_id, state)
            .await
        {
            Ok(updated) => updated,
            Err(e) => {
                let message =
                    format!("error updating status for volume snapshot content {name}: {e}");
                return Err((content, message));
            }
        };
        self.set_being_created(&content, false).await.map_err(|e| {
            let message = format!(
                "failed to remove VolumeSnapshotBeingCreated annotation on the content {name}: {e}"
            );
            (content.clone(), message)
        })
    }

    /// Upstream's `checkandUpdateContentStatusOperation`: a pre-provisioned content's status
    /// from the storage; a dynamic one is (re)created — CreateSnapshot by name is idempotent.
    pub(super) async fn check_and_update_status(
        &self,
        content: VolumeSnapshotContent,
    ) -> Result<VolumeSnapshotContent, (VolumeSnapshotContent, String)> {
        let Some(handle) = content.spec.source.snapshot_handle.clone() else {
            return self.create_snapshot(content).await;
        };
        let name = object_key(&content).1;
        let credentials = match self.list_credentials(&content).await {
            Ok(credentials) => credentials,
            Err(message) => return Err((content, message)),
        };
        let state = match self.snapshot_state(&content, &handle, credentials).await {
            Ok(state) => state,
            Err(message) => {
                tracing::warn!(%message, "could not read the snapshot's status");
                return Err((
                    content,
                    format!("failed to list snapshot for content {name}: {message:?}"),
                ));
            }
        };
        self.update_status(&content, &handle, state)
            .await
            .map_err(|e| (content.clone(), e.to_string()))
    }

    /// The ListSnapshots secret of a pre-provisioned content's class, if it names one.
    async fn list_credentials(
        &self,
        content: &VolumeSnapshotContent,
    ) -> Result<HashMap<String, String>, String> {
        let name = object_key(content).1;
        let Some(class_name) = &content.spec.volume_snapshot_class_name else {
            return Ok(HashMap::new());
        };
        let Some(class) = self.classes.get(&ObjectRef::new(class_name)) else {
            return Err(format!(
                "failed to get snapshot class {class_name} for snapshot content {name}: volumesnapshotclass.snapshot.storage.k8s.io {class_name:?} not found"
            ));
        };
        let reference = secrets::secret_reference(
            SecretParams::SnapshotterList,
            class.parameters.as_ref(),
            &name,
            None,
        )
        .map_err(|e| format!("failed to get secret reference for snapshot content {name}: {e}"))?;
        match reference {
            None => Ok(HashMap::new()),
            Some(reference) => secrets::credentials(&self.ctx.client, &reference)
                .await
                .map_err(|e| format!("failed to get credentials for snapshot content {name}: {e}")),
        }
    }

    /// Upstream's `GetSnapshotStatus`: ListSnapshots by id; a driver without LIST_SNAPSHOTS
    /// is taken at its word that the snapshot exists and is ready.
    async fn snapshot_state(
        &self,
        content: &VolumeSnapshotContent,
        handle: &str,
        secrets: HashMap<String, String>,
    ) -> Result<SnapshotState, String> {
        let client = self.client(content).map_err(|e| e.to_string())?;
        if !self
            .supports_list_snapshots(&content.spec.driver, &client)
            .await?
        {
            return Ok(SnapshotState {
                ready: true,
                created_ns: now_ns(),
                size_bytes: 0,
            });
        }
        let response = client
            .list_snapshots(proto::ListSnapshotsRequest {
                snapshot_id: handle.to_string(),
                secrets,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let Some(snapshot) = response.entries.into_iter().find_map(|e| e.snapshot) else {
            return Err(format!("can not find snapshot for snapshotID {handle}"));
        };
        Ok(SnapshotState::from_csi(&snapshot))
    }

    async fn supports_list_snapshots(
        &self,
        driver: &str,
        client: &volplane_csi::CsiClient,
    ) -> Result<bool, String> {
        if let Some(known) = self
            .list_snapshots_support
            .lock()
            .expect("capability lock")
            .get(driver)
        {
            return Ok(*known);
        }
        let response = client
            .controller_get_capabilities(proto::ControllerGetCapabilitiesRequest {})
            .await
            .map_err(|e| e.to_string())?;
        let supported = response.capabilities.iter().any(|c| {
            matches!(
                &c.r#type,
                Some(proto::controller_service_capability::Type::Rpc(rpc))
                    if rpc.r#type == proto::controller_service_capability::rpc::Type::ListSnapshots as i32
            )
        });
        self.list_snapshots_support
            .lock()
            .expect("capability lock")
            .insert(driver.to_string(), supported);
        Ok(supported)
    }

    /// Writes what the storage said into the content's status (upstream's
    /// `updateSnapshotContentStatus`): handle, creation time and size once, readiness always,
    /// and the error cleared once ready.
    async fn update_status(
        &self,
        content: &VolumeSnapshotContent,
        handle: &str,
        state: SnapshotState,
    ) -> Result<VolumeSnapshotContent, kube::Error> {
        // The storage's answer must not be lost to a race with another writer of the content:
        // on a conflict, merge it into the latest version (only unset fields are filled, so
        // merging twice is harmless).
        const ATTEMPTS: u32 = 5;
        let mut current = content.clone();
        let mut attempt = 1;
        loop {
            let Some(status) = content_status(current.status.as_ref(), handle, state) else {
                return Ok(current);
            };
            let mut updated = current.clone();
            updated.status = Some(status);
            match writes::replace_status(&self.api(), &updated).await {
                Err(error) if writes::is_conflict(&error) && attempt < ATTEMPTS => {
                    attempt += 1;
                    current = self.api().get(&object_key(content).1).await?;
                }
                result => return result,
            }
        }
    }

    /// Upstream's `deleteCSISnapshotOperation`: DeleteSnapshot, then clear the status so the
    /// next pass removes the finalizer.
    pub(super) async fn delete_snapshot(
        &self,
        content: &VolumeSnapshotContent,
    ) -> Result<(), Error> {
        let name = object_key(content).1;
        let credentials = match self.credentials_from_annotations(content).await {
            Ok(credentials) => credentials,
            Err(message) => {
                self.warn(
                    content,
                    "SnapshotDeleteError",
                    "Failed to get snapshot credentials",
                )
                .await;
                return Err(Error::Invalid(format!(
                    "failed to get input parameters to delete snapshot for content {name}: {message:?}"
                )));
            }
        };
        let handle = content
            .status
            .as_ref()
            .and_then(|s| s.snapshot_handle.clone())
            .unwrap_or_default();
        let client = self.client(content)?;
        let result = client
            .delete_snapshot(proto::DeleteSnapshotRequest {
                snapshot_id: handle.clone(),
                secrets: credentials,
            })
            .await;
        if let Err(source) = result {
            self.warn(content, "SnapshotDeleteError", "Failed to delete snapshot")
                .await;
            return Err(Error::Csi {
                driver: content.spec.driver.clone(),
                source,
            });
        }
        tracing::info!(snapshot_handle = %handle, "snapshot deleted on the storage");
        let mut cleared = content.clone();
        if let Some(status) = cleared.status.as_mut() {
            status.snapshot_handle = None;
            status.ready_to_use = None;
            status.creation_time = None;
            status.restore_size = None;
        }
        if let Err(error) = writes::replace_status(&self.api(), &cleared).await {
            self.warn(
                content,
                "SnapshotDeleteError",
                "Failed to clear content status",
            )
            .await;
            return Err(error.into());
        }
        Ok(())
    }

    pub(super) async fn remove_finalizer(
        &self,
        content: &VolumeSnapshotContent,
    ) -> Result<(), Error> {
        if !has_finalizer(&content.metadata, FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND) {
            return Ok(());
        }
        writes::remove_finalizers(
            &self.api(),
            content,
            &[FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND],
        )
        .await?;
        tracing::info!("removed protection finalizer from the content");
        Ok(())
    }

    /// The class (required for a dynamic content) and the CreateSnapshot secret.
    async fn snapshot_input(
        &self,
        content: &VolumeSnapshotContent,
    ) -> Result<(Option<Arc<VolumeSnapshotClass>>, HashMap<String, String>), String> {
        let name = object_key(content).1;
        let class = match &content.spec.volume_snapshot_class_name {
            Some(class_name) => Some(self.classes.get(&ObjectRef::new(class_name)).ok_or_else(
                || format!("volumesnapshotclass.snapshot.storage.k8s.io {class_name:?} not found"),
            )?),
            None if content.spec.source.volume_handle.is_some()
                && !has_annotation(&content.metadata, ANN_GROUP_SNAPSHOT_HANDLE) =>
            {
                return Err(format!(
                    "failed to take snapshot {name} without a snapshot class"
                ));
            }
            None => None,
        };
        let credentials = self.credentials_from_annotations(content).await?;
        Ok((class, credentials))
    }

    /// The secret the controller recorded on the content (upstream's
    /// `GetCredentialsFromAnnotation`), used for both CreateSnapshot and DeleteSnapshot.
    async fn credentials_from_annotations(
        &self,
        content: &VolumeSnapshotContent,
    ) -> Result<HashMap<String, String>, String> {
        let annotations = content.metadata.annotations.clone().unwrap_or_default();
        let name = object_key(content).1;
        let (Some(secret_name), Some(secret_namespace)) = (
            annotations.get(ANN_SNAPSHOT_DELETION_SECRET_NAME),
            annotations.get(ANN_SNAPSHOT_DELETION_SECRET_NAMESPACE),
        ) else {
            return Ok(HashMap::new());
        };
        if secret_name.is_empty() || secret_namespace.is_empty() {
            return Err(format!(
                "cannot retrieve secrets for snapshot content {name:?}, err: secret name or namespace not specified"
            ));
        }
        let reference = secrets::SecretRef {
            name: secret_name.clone(),
            namespace: secret_namespace.clone(),
        };
        secrets::credentials(&self.ctx.client, &reference).await.map_err(|error| {
            tracing::warn!(%error, secret = %secret_name, "could not read the snapshotter secret");
            format!("cannot get credentials for snapshot content {name:?}")
        })
    }

    /// Sets (`true`) or removes the being-created annotation, returning the updated content.
    pub(super) async fn set_being_created(
        &self,
        content: &VolumeSnapshotContent,
        set: bool,
    ) -> Result<VolumeSnapshotContent, kube::Error> {
        if has_annotation(&content.metadata, ANN_VOLUMESNAPSHOT_BEING_CREATED) == set {
            return Ok(content.clone());
        }
        let value = set.then_some("yes");
        writes::set_annotation(
            &self.api(),
            content,
            ANN_VOLUMESNAPSHOT_BEING_CREATED,
            value,
        )
        .await
    }
}
