//! What the provisioner asks the driver for, and the PV it writes for the answer — pure
//! functions of the claim, its class and the driver's reply.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
    SecretReference,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Resource;
use kube::api::ObjectMeta;
use volplane_api::wellknown;
use volplane_csi::proto::{self, volume_capability};

use super::secrets::FSTYPE;
use crate::csi_drivers;

/// The name of the volume (and PV) provisioned for a claim: `pvc-<claim uid>`. Deterministic,
/// so a CreateVolume repeated after a crash finds the volume made before it.
pub fn volume_name(claim: &PersistentVolumeClaim) -> Option<String> {
    claim.metadata.uid.as_ref().map(|uid| format!("pvc-{uid}"))
}

/// Whether the claim asks for a raw block volume.
pub fn is_block(claim: &PersistentVolumeClaim) -> bool {
    claim.spec.as_ref().and_then(|s| s.volume_mode.as_deref()) == Some("Block")
}

/// The storage the claim requests, in bytes (0 when it requests none).
pub fn requested_bytes(claim: &PersistentVolumeClaim) -> Result<i64, String> {
    let Some(quantity) = claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    else {
        return Ok(0);
    };
    volplane_api::quantity::to_bytes(&quantity.0)
        .and_then(|b| i64::try_from(b).ok())
        .ok_or_else(|| format!("storage request {:?} is not a size", quantity.0))
}

/// The filesystem the class asks for (`csi.storage.k8s.io/fstype`, or the deprecated `fstype`).
pub fn fs_type(parameters: &BTreeMap<String, String>) -> Result<String, String> {
    let found: Vec<&String> = parameters
        .iter()
        .filter(|(k, _)| k.as_str() == FSTYPE || k.eq_ignore_ascii_case("fstype"))
        .map(|(_, v)| v)
        .collect();
    match found.as_slice() {
        [] => Ok(String::new()),
        [one] => Ok(one.to_string()),
        _ => Err(format!(
            "fstype specified in parameters with both \"fstype\" and \"{FSTYPE}\" keys"
        )),
    }
}

/// One volume capability per access mode of the claim: block, or mount with the class's
/// filesystem and mount options.
pub fn volume_capabilities(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    fs_type: &str,
    single_node_multi_writer: bool,
) -> Result<Vec<proto::VolumeCapability>, String> {
    let modes = claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default();
    modes
        .iter()
        .map(|mode| {
            let mode =
                csi_drivers::access_mode(std::slice::from_ref(mode), single_node_multi_writer)?;
            Ok(capability(
                is_block(claim),
                fs_type,
                class.mount_options.clone().unwrap_or_default(),
                mode,
            ))
        })
        .collect()
}

/// A volume capability.
pub fn capability(
    block: bool,
    fs_type: &str,
    mount_flags: Vec<String>,
    mode: volume_capability::access_mode::Mode,
) -> proto::VolumeCapability {
    let access_type = if block {
        volume_capability::AccessType::Block(volume_capability::BlockVolume {})
    } else {
        volume_capability::AccessType::Mount(volume_capability::MountVolume {
            fs_type: fs_type.to_string(),
            mount_flags,
            volume_mount_group: String::new(),
        })
    };
    proto::VolumeCapability {
        access_mode: Some(volume_capability::AccessMode { mode: mode as i32 }),
        access_type: Some(access_type),
    }
}

/// The secrets the PV carries for later CSI calls.
#[derive(Debug, Clone, Default)]
pub struct VolumeSecrets {
    /// The provisioner secret, remembered for DeleteVolume.
    pub provisioner: Option<SecretReference>,
    /// `controllerPublishSecretRef`.
    pub controller_publish: Option<SecretReference>,
    /// `nodeStageSecretRef`.
    pub node_stage: Option<SecretReference>,
    /// `nodePublishSecretRef`.
    pub node_publish: Option<SecretReference>,
    /// `controllerExpandSecretRef`.
    pub controller_expand: Option<SecretReference>,
    /// `nodeExpandSecretRef`.
    pub node_expand: Option<SecretReference>,
}

/// Everything the PV is made from.
pub struct NewVolume<'a> {
    /// The claim.
    pub claim: &'a PersistentVolumeClaim,
    /// Its class.
    pub class: &'a StorageClass,
    /// The driver.
    pub driver: &'a str,
    /// The provisioner instance (`storage.kubernetes.io/csiProvisionerIdentity`).
    pub identity: &'a str,
    /// The driver's answer.
    pub volume: &'a proto::Volume,
    /// The capacity to record (the driver's, or the request when it reported 0).
    pub capacity_bytes: i64,
    /// The filesystem (ignored for block volumes).
    pub fs_type: &'a str,
    /// Secret references.
    pub secrets: &'a VolumeSecrets,
    /// Whether the driver reports topology (then the PV gets node affinity).
    pub topology: bool,
}

/// The PV for a provisioned volume, bound in advance to its claim (the binder completes it).
pub fn persistent_volume(new: &NewVolume<'_>) -> PersistentVolume {
    let claim = new.claim;
    let spec = claim.spec.clone().unwrap_or_default();
    let mut attributes = BTreeMap::from([(
        wellknown::VOLUME_ATTRIBUTE_PROVISIONER_IDENTITY.to_string(),
        new.identity.to_string(),
    )]);
    attributes.extend(new.volume.volume_context.clone());
    let block = is_block(claim);
    let deletion = new.secrets.provisioner.clone().unwrap_or_default();
    let annotations = BTreeMap::from([
        (
            wellknown::ANN_PROVISIONED_BY.to_string(),
            new.driver.to_string(),
        ),
        (
            wellknown::ANN_PROVISIONER_DELETION_SECRET_NAME.to_string(),
            deletion.name.unwrap_or_default(),
        ),
        (
            wellknown::ANN_PROVISIONER_DELETION_SECRET_NAMESPACE.to_string(),
            deletion.namespace.unwrap_or_default(),
        ),
    ]);
    PersistentVolume {
        metadata: ObjectMeta {
            name: volume_name(claim),
            annotations: Some(annotations),
            finalizers: Some(vec![wellknown::FINALIZER_EXTERNAL_PROVISIONER.to_string()]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes.clone(),
            capacity: Some(BTreeMap::from([(
                "storage".to_string(),
                Quantity(csi_drivers::quantity_from_bytes(new.capacity_bytes)),
            )])),
            claim_ref: Some(claim.object_ref(&())),
            csi: Some(CSIPersistentVolumeSource {
                driver: new.driver.to_string(),
                volume_handle: new.volume.volume_id.clone(),
                fs_type: (!block && !new.fs_type.is_empty()).then(|| new.fs_type.to_string()),
                volume_attributes: Some(attributes),
                controller_publish_secret_ref: new.secrets.controller_publish.clone(),
                node_stage_secret_ref: new.secrets.node_stage.clone(),
                node_publish_secret_ref: new.secrets.node_publish.clone(),
                controller_expand_secret_ref: new.secrets.controller_expand.clone(),
                node_expand_secret_ref: new.secrets.node_expand.clone(),
                read_only: None,
            }),
            mount_options: new.class.mount_options.clone(),
            node_affinity: new
                .topology
                .then(|| super::topology::volume_node_affinity(&new.volume.accessible_topology))
                .flatten(),
            persistent_volume_reclaim_policy: Some(
                new.class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".into()),
            ),
            storage_class_name: new.class.metadata.name.clone(),
            volume_mode: spec.volume_mode.clone(),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
    use volume_capability::access_mode::Mode;

    fn claim(modes: &[&str], block: bool) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                namespace: Some("ns".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(modes.iter().map(|m| m.to_string()).collect()),
                volume_mode: block.then(|| "Block".into()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn class() -> StorageClass {
        StorageClass {
            metadata: ObjectMeta {
                name: Some("fast".into()),
                ..Default::default()
            },
            provisioner: "d.csi".into(),
            mount_options: Some(vec!["noatime".into()]),
            ..Default::default()
        }
    }

    #[test]
    fn each_access_mode_is_one_capability() {
        let caps = volume_capabilities(
            &claim(&["ReadWriteOnce", "ReadOnlyMany"], false),
            &class(),
            "xfs",
            true,
        )
        .unwrap();
        let modes: Vec<i32> = caps.iter().map(|c| c.access_mode.unwrap().mode).collect();
        assert_eq!(
            modes,
            [
                Mode::SingleNodeMultiWriter as i32,
                Mode::MultiNodeReaderOnly as i32
            ]
        );
        let Some(volume_capability::AccessType::Mount(m)) = &caps[0].access_type else {
            panic!()
        };
        assert_eq!(
            (m.fs_type.as_str(), m.mount_flags.as_slice()),
            ("xfs", &["noatime".to_string()][..])
        );
        let block = volume_capabilities(&claim(&["ReadWriteOncePod"], true), &class(), "xfs", true)
            .unwrap();
        assert!(matches!(
            block[0].access_type,
            Some(volume_capability::AccessType::Block(_))
        ));
        assert_eq!(
            block[0].access_mode.unwrap().mode,
            Mode::SingleNodeSingleWriter as i32
        );
    }

    #[test]
    fn fstype_comes_from_one_key() {
        let p = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(fs_type(&p(&[(FSTYPE, "xfs")])), Ok("xfs".into()));
        assert_eq!(fs_type(&p(&[("fsType", "ext4")])), Ok("ext4".into()));
        assert!(fs_type(&p(&[("fstype", "ext4"), (FSTYPE, "xfs")])).is_err());
    }

    #[test]
    fn the_pv_is_prebound_and_carries_the_class_policy() {
        let c = claim(&["ReadWriteOnce"], true);
        let volume = proto::Volume {
            capacity_bytes: 1 << 30,
            volume_id: "vol-1".into(),
            volume_context: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        };
        let pv = persistent_volume(&NewVolume {
            claim: &c,
            class: &class(),
            driver: "d.csi",
            identity: "id",
            volume: &volume,
            capacity_bytes: 1 << 30,
            fs_type: "ext4",
            secrets: &VolumeSecrets::default(),
            topology: true,
        });
        let spec = pv.spec.unwrap();
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-u-1"));
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(spec.capacity.unwrap()["storage"].0, "1Gi");
        assert_eq!(spec.claim_ref.unwrap().uid.as_deref(), Some("u-1"));
        let csi = spec.csi.unwrap();
        assert_eq!(csi.fs_type, None, "block volumes have no filesystem");
        assert_eq!(csi.volume_attributes.unwrap()["k"], "v");
        assert!(spec.node_affinity.is_none(), "no topology reported");
        let annotations = pv.metadata.annotations.unwrap();
        assert_eq!(annotations[wellknown::ANN_PROVISIONED_BY], "d.csi");
        assert_eq!(
            annotations[wellknown::ANN_PROVISIONER_DELETION_SECRET_NAME],
            ""
        );
    }
}
