//! CDI's DataVolume (`cdi.kubevirt.io/v1beta1`): a claim and the data to fill it with, with
//! upstream's JSON field names.

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaimSpec, TypedLocalObjectReference, TypedObjectReference,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kubevirt::opaque_object;

/// A claim to create (`pvc` literally, or `storage` with CDI filling the gaps) and the data to
/// import into it (`source`, or a DataSource named by `sourceRef`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cdi.kubevirt.io",
    version = "v1beta1",
    kind = "DataVolume",
    plural = "datavolumes",
    shortname = "dv",
    shortname = "dvs",
    namespaced,
    status = "DataVolumeStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<DataVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<DataVolumeSourceRef>,
    /// The claim exactly as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PersistentVolumeClaimSpec>,
    /// The claim with defaults (access modes, volume mode, size) filled in by CDI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// `kubevirt` (a disk image, the default) or `archive` (a tar to unpack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<Vec<DataVolumeCheckpoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_checkpoint: Option<bool>,
    /// Allocate the whole size up front.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preallocation: Option<bool>,
}

/// Where the data comes from; exactly one member is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<DataVolumeSourceHttp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<DataVolumeSourceS3>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs: Option<DataVolumeSourceGcs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<DataVolumeSourceRegistry>,
    /// Clone another claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pvc: Option<DataVolumeSourcePvc>,
    /// Wait for an upload through the upload proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<DataVolumeSourceUpload>,
    /// An empty disk image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blank: Option<DataVolumeBlankImage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub imageio: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub vddk: Option<Value>,
    /// Restore a VolumeSnapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<DataVolumeSourceSnapshot>,
}

impl DataVolumeSource {
    /// The name of the one source set (`blank`, `http`, `pvc`…), if exactly one is.
    pub fn kind(&self) -> Option<&'static str> {
        let set: Vec<&'static str> = [
            ("http", self.http.is_some()),
            ("s3", self.s3.is_some()),
            ("gcs", self.gcs.is_some()),
            ("registry", self.registry.is_some()),
            ("pvc", self.pvc.is_some()),
            ("upload", self.upload.is_some()),
            ("blank", self.blank.is_some()),
            ("imageio", self.imageio.is_some()),
            ("vddk", self.vddk.is_some()),
            ("snapshot", self.snapshot.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        match set.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeSourceHttp {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_config_map: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_extra_headers: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeSourceS3 {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_config_map: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeSourceGcs {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
}

/// A container image holding a disk: `url` (`docker://…`) or an OpenShift `imageStream`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeSourceRegistry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_stream: Option<String>,
    /// `pod` (the default) or `node`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_config_map: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub platform: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DataVolumeSourcePvc {
    pub namespace: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DataVolumeSourceSnapshot {
    pub namespace: String,
    pub name: String,
}

/// The upload source carries no settings (an empty object).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DataVolumeSourceUpload {}

/// The blank source carries no settings (an empty object).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DataVolumeBlankImage {}

/// A DataSource (or other kind) to take the source from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DataVolumeSourceRef {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DataVolumeCheckpoint {
    pub previous: String,
    pub current: String,
}

/// A claim spec whose every field may be left to CDI.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_modes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<VolumeResourceRequirements>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_source: Option<TypedLocalObjectReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_source_ref: Option<TypedObjectReference>,
}

/// Phases a DataVolume moves through (COMPATIBILITY §7).
pub mod phase {
    pub const PENDING: &str = "Pending";
    pub const PVC_BOUND: &str = "PVCBound";
    pub const IMPORT_SCHEDULED: &str = "ImportScheduled";
    pub const IMPORT_IN_PROGRESS: &str = "ImportInProgress";
    pub const CLONE_SCHEDULED: &str = "CloneScheduled";
    pub const CLONE_IN_PROGRESS: &str = "CloneInProgress";
    pub const UPLOAD_SCHEDULED: &str = "UploadScheduled";
    pub const UPLOAD_READY: &str = "UploadReady";
    pub const WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";
    pub const PENDING_POPULATION: &str = "PendingPopulation";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const UNKNOWN: &str = "Unknown";
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeStatus {
    /// The claim populated (the DataVolume's own name unless adopted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `N/A` or a percentage such as `45.20%`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<i32>,
    /// Ready, Bound and Running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<DataVolumeCondition>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_volumes_round_trip_for_each_source() {
        for source in [
            json!({"blank": {}}),
            json!({"upload": {}}),
            json!({"http": {"url": "https://example.com/disk.qcow2", "certConfigMap": "ca"}}),
            json!({"registry": {"url": "docker://quay.io/containerdisks/fedora:40", "pullMethod": "node"}}),
            json!({"pvc": {"namespace": "ns", "name": "golden"}}),
            json!({"snapshot": {"namespace": "ns", "name": "snap"}}),
        ] {
            let manifest = json!({
                "apiVersion": "cdi.kubevirt.io/v1beta1",
                "kind": "DataVolume",
                "metadata": {"name": "dv", "namespace": "ns"},
                "spec": {
                    "source": source,
                    "storage": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Block",
                                "resources": {"requests": {"storage": "1Gi"}}},
                    "contentType": "kubevirt",
                    "preallocation": true
                },
                "status": {"phase": "ImportInProgress", "progress": "45.20%", "restartCount": 1,
                           "claimName": "dv",
                           "conditions": [{"type": "Running", "status": "True", "reason": "Pod is running"}]}
            });
            let dv: DataVolume = serde_json::from_value(manifest.clone()).unwrap();
            assert_eq!(serde_json::to_value(&dv).unwrap(), manifest);
            assert!(dv.spec.source.unwrap().kind().is_some());
        }
    }

    #[test]
    fn pvc_target_is_a_full_claim_spec() {
        let spec = json!({"source": {"blank": {}},
            "pvc": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                    "resources": {"requests": {"storage": "2Gi"}}}});
        let parsed: DataVolumeSpec = serde_json::from_value(spec.clone()).unwrap();
        assert_eq!(
            parsed.pvc.as_ref().unwrap().storage_class_name.as_deref(),
            Some("local")
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), spec);
    }

    #[test]
    fn kind_names_exactly_one_source() {
        let two = DataVolumeSource {
            blank: Some(DataVolumeBlankImage {}),
            upload: Some(DataVolumeSourceUpload {}),
            ..Default::default()
        };
        assert_eq!(two.kind(), None);
        let one = DataVolumeSource {
            blank: Some(DataVolumeBlankImage {}),
            ..Default::default()
        };
        assert_eq!(one.kind(), Some("blank"));
    }
}
