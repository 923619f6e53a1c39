//! CSI snapshots (`snapshot.storage.k8s.io/v1`): VolumeSnapshot, VolumeSnapshotContent and
//! VolumeSnapshotClass, field for field as kubernetes-csi/external-snapshotter defines them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user's request for a snapshot of a claim (or to import an existing content).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshot",
    plural = "volumesnapshots",
    shortname = "vs",
    namespaced,
    status = "VolumeSnapshotStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSpec {
    pub source: VolumeSnapshotSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

/// Exactly one: the claim to snapshot (dynamic) or the content that exists (pre-provisioned).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_content_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_volume_snapshot_content_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    /// The smallest claim size that can restore the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<VolumeSnapshotError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_group_snapshot_name: Option<String>,
}

/// The last error of snapshot creation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct VolumeSnapshotError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The snapshot on the storage system, bound to one VolumeSnapshot.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "snapshot.storage.k8s.io",
    version = "v1",
    kind = "VolumeSnapshotContent",
    plural = "volumesnapshotcontents",
    shortname = "vsc",
    shortname = "vscs",
    status = "VolumeSnapshotContentStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotContentSpec {
    pub volume_snapshot_ref: ObjectReference,
    /// `Delete` or `Retain`.
    pub deletion_policy: String,
    pub driver: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
    pub source: VolumeSnapshotContentSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_volume_mode: Option<String>,
}

/// Exactly one: the volume to snapshot (dynamic) or the snapshot's handle (pre-provisioned).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotContentSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_handle: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotContentStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_handle: Option<String>,
    /// Nanoseconds since the epoch, as the CSI driver reported it (not a `Time`, upstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    /// Bytes (not a quantity, upstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_to_use: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<VolumeSnapshotError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_group_snapshot_handle: Option<String>,
}

/// How snapshots of a driver are taken. Like StorageClass it has no `spec`, so it is a plain
/// struct with a hand-written [`kube::Resource`] instead of a derived custom resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotClass {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub driver: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    /// `Delete` or `Retain`.
    pub deletion_policy: String,
}

impl kube::Resource for VolumeSnapshotClass {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "VolumeSnapshotClass".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "snapshot.storage.k8s.io".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "volumesnapshotclasses".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    #[test]
    fn volume_snapshot_round_trips() {
        let manifest = json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": "snap", "namespace": "default"},
            "spec": {"source": {"persistentVolumeClaimName": "data"}, "volumeSnapshotClassName": "csi-snap"},
            "status": {"boundVolumeSnapshotContentName": "snapcontent-1", "readyToUse": true,
                       "restoreSize": "1Gi", "creationTime": "2026-01-01T00:00:00Z"}
        });
        let vs: VolumeSnapshot = serde_json::from_value(manifest.clone()).unwrap();
        assert_eq!(serde_json::to_value(&vs).unwrap(), manifest);
    }

    #[test]
    fn content_round_trips_with_integer_times_and_sizes() {
        let manifest = json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotContent",
            "metadata": {"name": "snapcontent-1"},
            "spec": {"volumeSnapshotRef": {"name": "snap", "namespace": "default"},
                     "deletionPolicy": "Delete", "driver": "local.volplane.io",
                     "source": {"volumeHandle": "vol-1"}, "sourceVolumeMode": "Filesystem"},
            "status": {"snapshotHandle": "snap-1", "creationTime": 1_700_000_000_000_000_000i64,
                       "restoreSize": 1_073_741_824, "readyToUse": true}
        });
        let c: VolumeSnapshotContent = serde_json::from_value(manifest.clone()).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), manifest);
    }

    #[test]
    fn class_round_trips_and_is_cluster_scoped() {
        let manifest = json!({
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": "csi-snap"},
            "driver": "local.volplane.io",
            "parameters": {"a": "b"},
            "deletionPolicy": "Retain"
        });
        let c: VolumeSnapshotClass = serde_json::from_value(manifest.clone()).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), manifest);
        assert_eq!(
            VolumeSnapshotClass::api_version(&()),
            "snapshot.storage.k8s.io/v1"
        );
        assert_eq!(
            VolumeSnapshotClass::url_path(&(), None),
            "/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses"
        );
    }
}
