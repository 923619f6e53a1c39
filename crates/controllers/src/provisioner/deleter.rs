//! The deleter half of the provisioner: a Released PV with reclaim policy `Delete` whose
//! volume a registered CSI driver made (`pv.kubernetes.io/provisioned-by`, else
//! `spec.csi.driver`) gets DeleteVolume, then the PV is deleted and the provisioner finalizer
//! removed. A PV the user deleted while Released goes the same way (the finalizer kept it).
//!
//! Never while the volume is in use: a VolumeAttachment for the PV, or a Node listing
//! `kubernetes.io/csi/<driver>^<handle>` in `status.volumesInUse`, makes the deleter wait and
//! say so (`VolumeFailedDelete`); a deleted VolumeAttachment retries the PV at once. DeleteVolume
//! errors are reported the same way and retried with backoff.
//!
//! A PV being deleted with another reclaim policy only loses the provisioner finalizer.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, SecretReference};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::Instrument;
use volplane_api::wellknown;
use volplane_csi::proto;

use super::Provisioner;
use super::secrets::{self, SecretKind};
use crate::csi_drivers::status_text;
use crate::events::{Severity, reference_to};

/// Why a PV's volume was not deleted yet; the loop retries it.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// Deletion must wait or failed (already reported as an event).
    #[error("persistentvolume {name}: {message}")]
    Failed {
        /// The PV.
        name: String,
        /// The reason.
        message: String,
    },
    /// The API server refused a write.
    #[error("persistentvolume {name}: {source}")]
    Api {
        /// The PV.
        name: String,
        /// The API error.
        source: kube::Error,
    },
}

/// The PV a VolumeAttachment attaches (it retries that PV's deletion when it changes or goes).
pub(crate) fn volume_of_attachment(
    attachment: VolumeAttachment,
) -> Option<ObjectRef<PersistentVolume>> {
    attachment
        .spec
        .source
        .persistent_volume_name
        .map(|name| ObjectRef::new(&name))
}

pub(crate) fn error_policy(
    pv: Arc<PersistentVolume>,
    error: &DeleteError,
    p: Arc<Provisioner>,
) -> Action {
    tracing::debug!(%error, "volume deletion will be retried");
    Action::requeue(p.backoff.failed(&format!(
        "pv/{}",
        pv.metadata.name.as_deref().unwrap_or_default()
    )))
}

/// What the deleter does with a PV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing (not ours, not released, or already done).
    Nothing,
    /// Remove the provisioner finalizer only (a PV being deleted that keeps its volume).
    RemoveFinalizer,
    /// Delete the volume of `driver`, then the PV.
    Delete {
        /// The driver that made the volume.
        driver: String,
    },
}

/// The deleter's decision for a PV (external-provisioner `shouldDelete` plus the finalizer
/// handling of PVs being deleted).
pub fn decide(pv: &PersistentVolume) -> Decision {
    let has_finalizer = pv
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == wellknown::FINALIZER_EXTERNAL_PROVISIONER);
    let deleting = pv.metadata.deletion_timestamp.is_some();
    if deleting && !has_finalizer {
        return Decision::Nothing;
    }
    let spec = pv.spec.clone().unwrap_or_default();
    let Some(csi) = spec.csi.as_ref() else {
        return Decision::Nothing;
    };
    let policy = spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .unwrap_or("Retain");
    if policy != "Delete" {
        return if deleting {
            Decision::RemoveFinalizer
        } else {
            Decision::Nothing
        };
    }
    if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Released") {
        return Decision::Nothing;
    }
    let driver = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(wellknown::ANN_PROVISIONED_BY))
        .cloned()
        .unwrap_or_else(|| csi.driver.clone());
    Decision::Delete { driver }
}

pub(crate) async fn reconcile_volume(
    pv: Arc<PersistentVolume>,
    p: Arc<Provisioner>,
) -> Result<Action, DeleteError> {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let span = tracing::info_span!(
        "delete",
        kind = "PersistentVolume",
        key = %name,
        uid = pv.metadata.uid.as_deref().unwrap_or_default(),
        resource_version = pv.metadata.resource_version.as_deref().unwrap_or_default(),
    );
    async move {
        p.caches.ready().await;
        let result = match decide(&pv) {
            Decision::Nothing => Ok(()),
            Decision::RemoveFinalizer => remove_finalizer(&p, &pv).await,
            Decision::Delete { driver } => delete(&p, &pv, &driver).await,
        };
        if result.is_ok() {
            p.backoff.forget(&format!("pv/{name}"));
        }
        result.map(|()| Action::await_change())
    }
    .instrument(span)
    .await
}

async fn delete(p: &Provisioner, pv: &PersistentVolume, driver: &str) -> Result<(), DeleteError> {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let fail = |message: String| DeleteError::Failed {
        name: name.clone(),
        message,
    };
    let csi = pv
        .spec
        .as_ref()
        .and_then(|s| s.csi.clone())
        .unwrap_or_default();
    if !p.drivers.contains(driver) {
        // Another provisioner may serve it; say nothing unless the PV carries our finalizer.
        if pv
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == wellknown::FINALIZER_EXTERNAL_PROVISIONER)
        {
            let message =
                crate::csi_drivers::RegistryError::Unknown(driver.to_string()).to_string();
            warn_volume(p, pv, &message).await;
            return Err(fail(message));
        }
        return Ok(());
    }
    if let Some(message) = in_use(p, pv, driver, &csi.volume_handle) {
        warn_volume(p, pv, &message).await;
        return Err(fail(message));
    }
    let (client, _) = p
        .drivers
        .connect(driver)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let request = proto::DeleteVolumeRequest {
        volume_id: csi.volume_handle.clone(),
        secrets: deletion_secrets(p, pv).await,
    };
    if let Err(error) = client.delete_volume(request).await {
        let message = status_text(&error);
        warn_volume(p, pv, &message).await;
        return Err(fail(message));
    }
    tracing::info!(volume_handle = %csi.volume_handle, "volume deleted");
    let api = Api::<PersistentVolume>::all(p.ctx.client.clone());
    let current = match api.delete(&name, &DeleteParams::default()).await {
        Ok(either) => either.left(),
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(source) => return Err(DeleteError::Api { name, source }),
    };
    match current {
        Some(current) => remove_finalizer(p, &current).await,
        None => Ok(()),
    }
}

/// Why the volume must not be deleted yet, if it is still attached or mounted somewhere.
fn in_use(p: &Provisioner, pv: &PersistentVolume, driver: &str, handle: &str) -> Option<String> {
    let name = pv.metadata.name.as_deref().unwrap_or_default();
    if let Some(attachment) = p
        .caches
        .attachments
        .find(|va| va.spec.source.persistent_volume_name.as_deref() == Some(name))
    {
        return Some(format!(
            "persistentvolume {name} is still attached to node {}",
            attachment.spec.node_name
        ));
    }
    let unique_name = format!("kubernetes.io/csi/{driver}^{handle}");
    p.caches
        .nodes
        .find(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.volumes_in_use.as_ref())
                .is_some_and(|v| v.contains(&unique_name))
        })
        .map(|node| {
            format!(
                "persistentvolume {name} is still in use by node {} (status.volumesInUse lists {unique_name})",
                node.metadata.name.as_deref().unwrap_or_default()
            )
        })
}

/// The provisioner secret for DeleteVolume: from the PV's deletion-secret annotations, else
/// resolved again from the class. A secret that cannot be read is skipped (it may be gone), as
/// upstream does.
async fn deletion_secrets(
    p: &Provisioner,
    pv: &PersistentVolume,
) -> std::collections::HashMap<String, String> {
    let annotations = pv.metadata.annotations.clone().unwrap_or_default();
    let reference = match (
        annotations.get(wellknown::ANN_PROVISIONER_DELETION_SECRET_NAME),
        annotations.get(wellknown::ANN_PROVISIONER_DELETION_SECRET_NAMESPACE),
    ) {
        (Some(name), Some(namespace)) => {
            (!name.is_empty() && !namespace.is_empty()).then(|| SecretReference {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
            })
        }
        _ => secret_from_class(p, pv),
    };
    match secrets::credentials(&p.ctx.client, reference.as_ref()).await {
        Ok(credentials) => credentials,
        Err(error) => {
            tracing::warn!(%error, "deleting without the provisioner secret");
            Default::default()
        }
    }
}

fn secret_from_class(p: &Provisioner, pv: &PersistentVolume) -> Option<SecretReference> {
    let spec = pv.spec.as_ref()?;
    let class = p
        .caches
        .classes
        .get(&ObjectRef::new(spec.storage_class_name.as_deref()?))?;
    let claim_ref = spec.claim_ref.as_ref()?;
    let claim = k8s_openapi::api::core::v1::PersistentVolumeClaim {
        metadata: kube::api::ObjectMeta {
            name: claim_ref.name.clone(),
            namespace: claim_ref.namespace.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let parameters: BTreeMap<String, String> = class.parameters.clone().unwrap_or_default();
    let name = pv.metadata.name.as_deref().unwrap_or_default();
    secrets::secret_reference(SecretKind::Provisioner, &parameters, name, Some(&claim))
        .ok()
        .flatten()
}

/// Removes the provisioner finalizer, conditional on the PV being the version we saw (a merge
/// patch carrying `resourceVersion` is refused with 409 otherwise, and retried).
async fn remove_finalizer(p: &Provisioner, pv: &PersistentVolume) -> Result<(), DeleteError> {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let current = pv.metadata.finalizers.clone().unwrap_or_default();
    let remaining: Vec<&String> = current
        .iter()
        .filter(|f| *f != wellknown::FINALIZER_EXTERNAL_PROVISIONER)
        .collect();
    if remaining.len() == current.len() {
        return Ok(());
    }
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": pv.metadata.resource_version, "finalizers": remaining }
    });
    let api = Api::<PersistentVolume>::all(p.ctx.client.clone());
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(DeleteError::Api { name, source }),
    }
}

async fn warn_volume(p: &Provisioner, pv: &PersistentVolume, note: &str) {
    p.ctx
        .event(
            &reference_to(pv),
            Severity::Warning,
            "VolumeFailedDelete",
            "Delete",
            note,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        CSIPersistentVolumeSource, PersistentVolumeSpec, PersistentVolumeStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    fn pv(policy: &str, phase: &str, finalizer: bool, deleting: bool) -> PersistentVolume {
        PersistentVolume {
            metadata: ObjectMeta {
                name: Some("pvc-1".into()),
                finalizers: finalizer
                    .then(|| vec![wellknown::FINALIZER_EXTERNAL_PROVISIONER.to_string()]),
                deletion_timestamp: deleting.then(|| Time(k8s_openapi::jiff::Timestamp::now())),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                persistent_volume_reclaim_policy: Some(policy.into()),
                csi: Some(CSIPersistentVolumeSource {
                    driver: "d.csi".into(),
                    volume_handle: "h".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn only_released_delete_volumes_are_deleted() {
        let delete = Decision::Delete {
            driver: "d.csi".into(),
        };
        assert_eq!(decide(&pv("Delete", "Released", true, false)), delete);
        assert_eq!(
            decide(&pv("Delete", "Released", true, true)),
            delete,
            "deleted by the user while Released"
        );
        assert_eq!(
            decide(&pv("Delete", "Bound", true, false)),
            Decision::Nothing
        );
        assert_eq!(
            decide(&pv("Retain", "Released", true, false)),
            Decision::Nothing
        );
        assert_eq!(
            decide(&pv("Retain", "Released", true, true)),
            Decision::RemoveFinalizer
        );
        assert_eq!(
            decide(&pv("Delete", "Released", false, true)),
            Decision::Nothing,
            "already done"
        );
    }
}
