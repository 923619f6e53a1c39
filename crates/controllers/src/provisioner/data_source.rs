//! Pre-populated volumes: a claim's `dataSource` / `dataSourceRef` naming another claim (clone)
//! or a VolumeSnapshot (restore), checked as external-provisioner checks them and turned into
//! the CreateVolume `volume_content_source`.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::reflector::{ObjectRef, Store};
use volplane_api::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use volplane_csi::proto::{VolumeContentSource, volume_content_source};

use super::volume::requested_bytes;

/// The API group of VolumeSnapshot.
pub const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";

/// What a claim's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// Another claim, cloned.
    Claim {
        /// Its namespace (the claim's own).
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A VolumeSnapshot, restored.
    Snapshot {
        /// Its namespace (the claim's own).
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Any other kind: a volume populator's business, not the provisioner's.
    Populator(String),
}

/// The claim's data source (`dataSource` first, then `dataSourceRef`), or an error for a
/// source the provisioner cannot use.
pub fn data_source(claim: &PersistentVolumeClaim) -> Result<Option<DataSource>, String> {
    let Some(spec) = claim.spec.as_ref() else {
        return Ok(None);
    };
    let own_namespace = claim.metadata.namespace.clone().unwrap_or_default();
    let (kind, group, name, namespace) = if let Some(ds) = &spec.data_source {
        (ds.kind.clone(), ds.api_group.clone(), ds.name.clone(), None)
    } else if let Some(ds) = &spec.data_source_ref {
        (
            ds.kind.clone(),
            ds.api_group.clone(),
            ds.name.clone(),
            ds.namespace.clone(),
        )
    } else {
        return Ok(None);
    };
    if namespace
        .as_ref()
        .is_some_and(|n| !n.is_empty() && *n != own_namespace)
    {
        return Err("dataSourceRef namespace specified but the CrossNamespaceVolumeDataSource feature is disabled".into());
    }
    if name.is_empty() {
        return Err(format!(
            "the PVC source not found for PVC {}",
            claim.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    let group = group.unwrap_or_default();
    Ok(Some(match kind.as_str() {
        "VolumeSnapshot" => {
            if group != SNAPSHOT_GROUP {
                return Err(format!(
                    "the PVC source does not belong to the right APIGroup. Expected {SNAPSHOT_GROUP}, Got {group}"
                ));
            }
            DataSource::Snapshot {
                namespace: own_namespace,
                name,
            }
        }
        "PersistentVolumeClaim" if group.is_empty() => DataSource::Claim {
            namespace: own_namespace,
            name,
        },
        other => DataSource::Populator(other.to_string()),
    }))
}

/// The content source for cloning the claim `name`: it must be Bound, not being deleted, of a
/// class, no larger than the new claim, on a PV of the same driver bound back to it, and of
/// the same volume mode.
pub fn clone_source(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    source: (&str, &str),
    claims: &Store<PersistentVolumeClaim>,
    volumes: &Store<PersistentVolume>,
) -> Result<VolumeContentSource, String> {
    let (namespace, name) = source;
    let source_claim = claims
        .get(&ObjectRef::new(name).within(namespace))
        .ok_or_else(|| {
            format!("error getting PVC {name} (namespace {namespace:?}) from api server: persistentvolumeclaims {name:?} not found")
        })?;
    let phase = source_claim
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    if phase != "Bound" {
        return Err(format!(
            "the PVC DataSource {name} must have a status of Bound.  Got {phase:?}"
        ));
    }
    if source_claim.metadata.deletion_timestamp.is_some() {
        return Err(format!(
            "the PVC DataSource {name} is currently being deleted"
        ));
    }
    let source_spec = source_claim.spec.clone().unwrap_or_default();
    if source_spec.storage_class_name.is_none() {
        return Err(format!(
            "the source PVC ({name}) storageclass cannot be empty"
        ));
    }
    if claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_ref())
        .is_none()
    {
        return Err(format!(
            "the requested PVC ({}) storageclass cannot be empty",
            claim.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    let (requested, source_size) = (requested_bytes(claim)?, requested_bytes(&source_claim)?);
    if requested < source_size {
        return Err(format!(
            "error, new PVC request must be greater than or equal in size to the specified PVC data source, requested {requested} but source is {source_size}"
        ));
    }
    let volume_name = source_spec.volume_name.clone().unwrap_or_default();
    if volume_name.is_empty() {
        return Err(format!("volume name is empty in source PVC {name}"));
    }
    let invalid = || "claim in dataSource not bound or invalid".to_string();
    let pv = volumes
        .get(&ObjectRef::new(&volume_name))
        .ok_or_else(invalid)?;
    let pv_spec = pv.spec.clone().unwrap_or_default();
    let csi = pv_spec.csi.as_ref().ok_or_else(invalid)?;
    let bound_back = pv_spec.claim_ref.as_ref().is_some_and(|r| {
        r.uid == source_claim.metadata.uid
            && r.namespace.as_deref() == Some(namespace)
            && r.name.as_deref() == Some(name)
    });
    let pv_bound = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if csi.driver != class.provisioner || !bound_back || !pv_bound {
        return Err(invalid());
    }
    let wants_block = super::volume::is_block(claim);
    let source_block = pv_spec.volume_mode.as_deref() == Some("Block");
    if wants_block != source_block {
        let (from, to) = if source_block {
            ("Block", "Filesystem")
        } else {
            ("Filesystem", "Block")
        };
        return Err(format!(
            "the source PVC and destination PVCs must have the same volume mode for cloning.  Source is {from}, but new PVC requested {to}"
        ));
    }
    Ok(VolumeContentSource {
        r#type: Some(volume_content_source::Type::Volume(
            volume_content_source::VolumeSource {
                volume_id: csi.volume_handle.clone(),
            },
        )),
    })
}

/// The content source for restoring the VolumeSnapshot `name`: bound to a content of the same
/// driver that points back to it, ready, with a handle, and no larger than the new claim.
pub async fn snapshot_source(
    client: &kube::Client,
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    source: (&str, &str),
) -> Result<VolumeContentSource, String> {
    let (namespace, name) = source;
    let snapshot = kube::Api::<VolumeSnapshot>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| format!("error getting snapshot {name} from api server: {e}"))?;
    if snapshot.metadata.deletion_timestamp.is_some() {
        return Err(format!("snapshot {name} is being deleted"));
    }
    let not_bound = || format!("snapshot {name} not bound");
    let status = snapshot.status.clone().unwrap_or_default();
    let content_name = status
        .bound_volume_snapshot_content_name
        .clone()
        .ok_or_else(not_bound)?;
    let content = kube::Api::<VolumeSnapshotContent>::all(client.clone())
        .get(&content_name)
        .await
        .map_err(|_| not_bound())?;
    let snapshot_ref = &content.spec.volume_snapshot_ref;
    let points_back = snapshot_ref.uid == snapshot.metadata.uid
        && snapshot_ref.namespace.as_deref() == Some(namespace)
        && snapshot_ref.name.as_deref() == Some(name);
    if !points_back || content.spec.driver != class.provisioner {
        return Err(not_bound());
    }
    if status.ready_to_use != Some(true) {
        return Err(format!("snapshot {name} is not Ready"));
    }
    let handle = content
        .status
        .as_ref()
        .and_then(|s| s.snapshot_handle.clone())
        .ok_or_else(|| format!("snapshot handle {name} is not available"))?;
    if let Some(restore_size) = &status.restore_size {
        let requested = requested_bytes(claim)?;
        let restore = volplane_api::quantity::to_bytes(&restore_size.0).unwrap_or(0) as i64;
        if requested < restore {
            return Err(format!(
                "requested volume size {requested} is less than the size {restore} for the source snapshot {name}"
            ));
        }
    }
    Ok(VolumeContentSource {
        r#type: Some(volume_content_source::Type::Snapshot(
            volume_content_source::SnapshotSource {
                snapshot_id: handle,
            },
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimSpec, TypedLocalObjectReference, TypedObjectReference,
    };
    use kube::api::ObjectMeta;

    fn claim(
        source: Option<TypedLocalObjectReference>,
        source_ref: Option<TypedObjectReference>,
    ) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("new".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                data_source: source,
                data_source_ref: source_ref,
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn sources_are_recognised_by_kind_and_group() {
        let snap = TypedLocalObjectReference {
            api_group: Some(SNAPSHOT_GROUP.into()),
            kind: "VolumeSnapshot".into(),
            name: "s".into(),
        };
        assert_eq!(
            data_source(&claim(Some(snap), None)),
            Ok(Some(DataSource::Snapshot {
                namespace: "ns".into(),
                name: "s".into()
            }))
        );
        let pvc = TypedObjectReference {
            api_group: None,
            kind: "PersistentVolumeClaim".into(),
            name: "p".into(),
            namespace: None,
        };
        assert_eq!(
            data_source(&claim(None, Some(pvc))),
            Ok(Some(DataSource::Claim {
                namespace: "ns".into(),
                name: "p".into()
            }))
        );
        let wrong_group = TypedLocalObjectReference {
            api_group: Some("x.io".into()),
            kind: "VolumeSnapshot".into(),
            name: "s".into(),
        };
        assert!(data_source(&claim(Some(wrong_group), None)).is_err());
        let other = TypedLocalObjectReference {
            api_group: Some("x.io".into()),
            kind: "Image".into(),
            name: "i".into(),
        };
        assert_eq!(
            data_source(&claim(Some(other), None)),
            Ok(Some(DataSource::Populator("Image".into())))
        );
        let cross = TypedObjectReference {
            api_group: None,
            kind: "PersistentVolumeClaim".into(),
            name: "p".into(),
            namespace: Some("other".into()),
        };
        assert!(data_source(&claim(None, Some(cross))).is_err());
        assert_eq!(data_source(&claim(None, None)), Ok(None));
    }
}
