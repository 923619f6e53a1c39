//! The snapshot controller's decisions, as pure functions of the objects (no I/O): which
//! content a snapshot is bound to and whether that binding holds, which class is the default,
//! what the content of a dynamic snapshot looks like, and what the snapshot's status becomes
//! from its content's status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, TypedLocalObjectReference,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use volplane_api::snapshot::{
    VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent, VolumeSnapshotContentSource,
    VolumeSnapshotContentSpec, VolumeSnapshotError, VolumeSnapshotStatus,
};
use volplane_api::wellknown::{
    ANN_DEFAULT_SNAPSHOT_CLASS, ANN_SNAPSHOT_DELETION_SECRET_NAME,
    ANN_SNAPSHOT_DELETION_SECRET_NAMESPACE, FINALIZER_VOLUMESNAPSHOT_AS_SOURCE,
    FINALIZER_VOLUMESNAPSHOT_BOUND, FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND,
};

use super::cache::Key;
use super::secrets::SecretRef;

/// The API group of the snapshot kinds.
pub(crate) const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";
/// `deletionPolicy` that deletes the snapshot on the storage with its content.
pub(crate) const DELETION_POLICY_DELETE: &str = "Delete";

/// `namespace/name` of a snapshot, as upstream names it in messages.
pub(crate) fn snapshot_key(snapshot: &VolumeSnapshot) -> String {
    format!(
        "{}/{}",
        snapshot.metadata.namespace.as_deref().unwrap_or_default(),
        snapshot.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The name of the content the controller creates for a dynamic snapshot.
pub(crate) fn dynamic_content_name(snapshot: &VolumeSnapshot) -> String {
    format!(
        "snapcontent-{}",
        snapshot.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Whether `meta` lists `finalizer`.
pub(crate) fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// Whether `meta` carries annotation `key`.
pub(crate) fn has_annotation(meta: &ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

/// `status.readyToUse` is true.
pub(crate) fn is_ready(snapshot: &VolumeSnapshot) -> bool {
    snapshot
        .status
        .as_ref()
        .and_then(|s| s.ready_to_use)
        .unwrap_or(false)
}

/// `status.boundVolumeSnapshotContentName`, when set and not empty.
pub(crate) fn bound_content_name(snapshot: &VolumeSnapshot) -> Option<&str> {
    snapshot
        .status
        .as_ref()
        .and_then(|s| s.bound_volume_snapshot_content_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Being deleted and still holding one of the controller's finalizers.
pub(crate) fn is_deletion_candidate(snapshot: &VolumeSnapshot) -> bool {
    snapshot.metadata.deletion_timestamp.is_some()
        && (has_finalizer(&snapshot.metadata, FINALIZER_VOLUMESNAPSHOT_AS_SOURCE)
            || has_finalizer(&snapshot.metadata, FINALIZER_VOLUMESNAPSHOT_BOUND))
}

/// The content points back at this very snapshot (name, namespace and uid).
pub(crate) fn is_ref_set(snapshot: &VolumeSnapshot, content: &VolumeSnapshotContent) -> bool {
    let r = &content.spec.volume_snapshot_ref;
    r.name == snapshot.metadata.name
        && r.namespace == snapshot.metadata.namespace
        && r.uid == snapshot.metadata.uid
}

/// The content names this snapshot, by name and namespace and — when its uid is set — by uid.
/// A pre-provisioned content may leave the uid empty until the controller binds it.
pub(crate) fn content_names_snapshot(
    snapshot: &VolumeSnapshot,
    content: &VolumeSnapshotContent,
) -> bool {
    let r = &content.spec.volume_snapshot_ref;
    let uid = r.uid.as_deref().unwrap_or_default();
    r.name == snapshot.metadata.name
        && r.namespace == snapshot.metadata.namespace
        && (uid.is_empty() || Some(uid) == snapshot.metadata.uid.as_deref())
}

/// Exactly one of `persistentVolumeClaimName` and `volumeSnapshotContentName` is set.
pub(crate) fn has_one_source(snapshot: &VolumeSnapshot) -> bool {
    let source = &snapshot.spec.source;
    source.persistent_volume_claim_name.is_some() != source.volume_snapshot_content_name.is_some()
}

/// Exactly one of `volumeHandle` and `snapshotHandle` is set.
pub(crate) fn content_has_one_source(content: &VolumeSnapshotContent) -> bool {
    let source = &content.spec.source;
    source.volume_handle.is_some() != source.snapshot_handle.is_some()
}

/// The claim a dynamic snapshot is taken of, as an index key.
pub(crate) fn source_claim_keys(snapshot: &VolumeSnapshot) -> Vec<Key> {
    snapshot
        .spec
        .source
        .persistent_volume_claim_name
        .iter()
        .map(|claim| {
            (
                snapshot.metadata.namespace.clone().unwrap_or_default(),
                claim.clone(),
            )
        })
        .collect()
}

/// The snapshots a claim is restored from (`dataSource` and `dataSourceRef` naming a
/// VolumeSnapshot), as index keys.
pub(crate) fn data_source_snapshot_keys(claim: &PersistentVolumeClaim) -> Vec<Key> {
    let namespace = claim.metadata.namespace.clone().unwrap_or_default();
    let Some(spec) = claim.spec.as_ref() else {
        return vec![];
    };
    let mut keys = Vec::new();
    if let Some(source) = spec.data_source.as_ref().filter(|s| names_snapshot(s)) {
        keys.push((namespace.clone(), source.name.clone()));
    }
    if let Some(source) = spec
        .data_source_ref
        .as_ref()
        .filter(|s| s.kind == "VolumeSnapshot" && s.api_group.as_deref() == Some(SNAPSHOT_GROUP))
    {
        let key = (
            source
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.clone()),
            source.name.clone(),
        );
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn names_snapshot(source: &TypedLocalObjectReference) -> bool {
    source.kind == "VolumeSnapshot" && source.api_group.as_deref() == Some(SNAPSHOT_GROUP)
}

/// A claim restored from a snapshot is still being provisioned: neither Bound nor Lost.
pub(crate) fn is_being_restored(claim: &PersistentVolumeClaim) -> bool {
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Bound") | Some("Lost"))
}

/// The PV's claimRef names this claim (and its uid, when the claimRef carries one).
pub(crate) fn is_volume_bound_to_claim(
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> bool {
    let Some(claim_ref) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    if claim_ref.name != claim.metadata.name || claim_ref.namespace != claim.metadata.namespace {
        return false;
    }
    let uid = claim_ref.uid.as_deref().unwrap_or_default();
    uid.is_empty() || Some(uid) == claim.metadata.uid.as_deref()
}

/// The default class of `driver`: exactly one class of that driver annotated
/// `snapshot.storage.kubernetes.io/is-default-class: "true"`.
pub(crate) fn default_class<'a>(
    classes: impl IntoIterator<Item = &'a VolumeSnapshotClass>,
    driver: &str,
) -> Result<&'a VolumeSnapshotClass, String> {
    let defaults: Vec<&VolumeSnapshotClass> = classes
        .into_iter()
        .filter(|class| {
            class.driver == driver
                && class
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANN_DEFAULT_SNAPSHOT_CLASS))
                    .is_some_and(|v| v == "true")
        })
        .collect();
    match defaults.as_slice() {
        [] => Err("cannot find default snapshot class".to_string()),
        [class] => Ok(class),
        more => Err(format!(
            "{} default snapshot classes were found",
            more.len()
        )),
    }
}

/// The content the controller creates for a dynamic snapshot of `volume` with `class`.
/// It carries the bound-protection finalizer from the start, so it cannot be deleted before
/// the CSI snapshotter has seen it.
pub(crate) fn new_dynamic_content(
    snapshot: &VolumeSnapshot,
    class: &VolumeSnapshotClass,
    volume_handle: &str,
    source_volume_mode: Option<String>,
    secret: Option<&SecretRef>,
) -> VolumeSnapshotContent {
    let annotations: BTreeMap<String, String> = secret
        .map(|s| {
            BTreeMap::from([
                (
                    ANN_SNAPSHOT_DELETION_SECRET_NAME.to_string(),
                    s.name.clone(),
                ),
                (
                    ANN_SNAPSHOT_DELETION_SECRET_NAMESPACE.to_string(),
                    s.namespace.clone(),
                ),
            ])
        })
        .unwrap_or_default();
    let mut content = VolumeSnapshotContent::new(
        &dynamic_content_name(snapshot),
        VolumeSnapshotContentSpec {
            volume_snapshot_ref: snapshot_reference(snapshot),
            deletion_policy: class.deletion_policy.clone(),
            driver: class.driver.clone(),
            volume_snapshot_class_name: class.metadata.name.clone(),
            source: VolumeSnapshotContentSource {
                volume_handle: Some(volume_handle.to_string()),
                snapshot_handle: None,
            },
            source_volume_mode,
        },
    );
    content.metadata.finalizers = Some(vec![FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND.to_string()]);
    if !annotations.is_empty() {
        content.metadata.annotations = Some(annotations);
    }
    content
}

/// A full reference to the snapshot, as `ref.GetReference` makes it.
fn snapshot_reference(snapshot: &VolumeSnapshot) -> ObjectReference {
    ObjectReference {
        api_version: Some(VolumeSnapshot::api_version(&()).into_owned()),
        kind: Some(VolumeSnapshot::kind(&()).into_owned()),
        name: snapshot.metadata.name.clone(),
        namespace: snapshot.metadata.namespace.clone(),
        uid: snapshot.metadata.uid.clone(),
        resource_version: snapshot.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// What the snapshot's status becomes from its content's status, or `None` when it already is
/// that. Fields once set stay (creation time, a non-zero restore size); readiness and the
/// error follow the content.
pub(crate) fn status_from_content(
    current: Option<&VolumeSnapshotStatus>,
    content: &VolumeSnapshotContent,
) -> Option<VolumeSnapshotStatus> {
    let content_status = content.status.as_ref();
    let created_at = content_status
        .and_then(|s| s.creation_time)
        .and_then(|ns| Timestamp::from_nanosecond(i128::from(ns)).ok())
        .map(Time);
    let size = content_status.and_then(|s| s.restore_size);
    let ready = content_status.and_then(|s| s.ready_to_use).unwrap_or(false);
    let error = content_status.and_then(|s| s.error.clone());

    let mut status = current.cloned().unwrap_or_default();
    if status.bound_volume_snapshot_content_name.is_none() {
        status.bound_volume_snapshot_content_name = content.metadata.name.clone();
    }
    if status.creation_time.is_none() {
        status.creation_time = created_at;
    }
    if status.ready_to_use != Some(ready) {
        status.ready_to_use = Some(ready);
    }
    let size_is_zero = status
        .restore_size
        .as_ref()
        .is_some_and(|q| volplane_api::quantity::to_bytes(&q.0) == Some(0));
    if let Some(size) = size
        && (status.restore_size.is_none() || (size_is_zero && size > 0))
    {
        status.restore_size = Some(Quantity(binary_si(size)));
    }
    status.error = error;
    if current == Some(&status) {
        None
    } else {
        Some(status)
    }
}

/// The status after an error of the controller: `error` replaced, readiness cleared when asked.
pub(crate) fn status_with_error(
    current: Option<&VolumeSnapshotStatus>,
    message: &str,
    set_ready_false: bool,
) -> VolumeSnapshotStatus {
    let mut status = current.cloned().unwrap_or_default();
    status.error = Some(VolumeSnapshotError {
        time: Some(Time(Timestamp::now())),
        message: Some(message.to_string()),
    });
    if set_ready_false {
        status.ready_to_use = Some(false);
    }
    status
}

/// The error message the status already carries.
pub(crate) fn error_message(status: Option<&VolumeSnapshotStatus>) -> Option<&str> {
    status
        .and_then(|s| s.error.as_ref())
        .and_then(|e| e.message.as_deref())
}

/// Bytes as a Kubernetes quantity in BinarySI canonical form (`1Gi`, `1536Mi`, `1000`).
pub(crate) fn binary_si(bytes: i64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes == 0 {
        return "0".into();
    }
    let mut value = bytes;
    let mut suffix = "";
    for next in SUFFIXES {
        if value % 1024 != 0 {
            break;
        }
        value /= 1024;
        suffix = next;
    }
    format!("{value}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use volplane_api::snapshot::{VolumeSnapshotContentStatus, VolumeSnapshotSpec};

    fn snapshot(uid: &str) -> VolumeSnapshot {
        let mut s = VolumeSnapshot::new("snap", VolumeSnapshotSpec::default());
        s.metadata.namespace = Some("ns".into());
        s.metadata.uid = Some(uid.into());
        s
    }

    fn content(status: Option<VolumeSnapshotContentStatus>) -> VolumeSnapshotContent {
        let mut c =
            VolumeSnapshotContent::new("snapcontent-1", VolumeSnapshotContentSpec::default());
        c.status = status;
        c
    }

    fn class(name: &str, driver: &str, default: Option<&str>) -> VolumeSnapshotClass {
        let mut c = VolumeSnapshotClass {
            driver: driver.into(),
            deletion_policy: "Delete".into(),
            ..Default::default()
        };
        c.metadata.name = Some(name.into());
        if let Some(v) = default {
            c.metadata.annotations =
                Some([(ANN_DEFAULT_SNAPSHOT_CLASS.to_string(), v.to_string())].into());
        }
        c
    }

    #[test]
    fn quantities_are_canonical_binary_si() {
        assert_eq!(binary_si(0), "0");
        assert_eq!(binary_si(1000), "1000");
        assert_eq!(binary_si(1024), "1Ki");
        assert_eq!(binary_si(1 << 30), "1Gi");
        assert_eq!(binary_si(1536 << 20), "1536Mi");
        assert_eq!(binary_si(64 << 20), "64Mi");
    }

    #[test]
    fn default_class_must_be_unique_per_driver() {
        let classes = [
            class("a", "d1", Some("true")),
            class("b", "d2", Some("true")),
            class("c", "d1", Some("false")),
            class("d", "d1", None),
        ];
        assert_eq!(
            default_class(&classes, "d1")
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            default_class(&classes, "d3").unwrap_err(),
            "cannot find default snapshot class"
        );
        let two = [
            class("a", "d1", Some("true")),
            class("b", "d1", Some("true")),
        ];
        assert_eq!(
            default_class(&two, "d1").unwrap_err(),
            "2 default snapshot classes were found"
        );
    }

    #[test]
    fn status_follows_the_content_and_keeps_what_was_set() {
        let c = content(Some(VolumeSnapshotContentStatus {
            snapshot_handle: Some("h".into()),
            creation_time: Some(1_700_000_000_123_456_789),
            restore_size: Some(1 << 30),
            ready_to_use: Some(true),
            ..Default::default()
        }));
        let s = status_from_content(None, &c).unwrap();
        assert_eq!(
            s.bound_volume_snapshot_content_name.as_deref(),
            Some("snapcontent-1")
        );
        assert_eq!(s.ready_to_use, Some(true));
        assert_eq!(s.restore_size, Some(Quantity("1Gi".into())));
        assert_eq!(
            s.creation_time.as_ref().unwrap().0.as_second(),
            1_700_000_000
        );
        // Nothing new: no update.
        assert_eq!(status_from_content(Some(&s), &c), None);

        // An error of the content replaces the snapshot's; readiness follows.
        let failed = content(Some(VolumeSnapshotContentStatus {
            ready_to_use: Some(false),
            error: Some(VolumeSnapshotError {
                time: None,
                message: Some("boom".into()),
            }),
            ..Default::default()
        }));
        let s2 = status_from_content(Some(&s), &failed).unwrap();
        assert_eq!(s2.ready_to_use, Some(false));
        assert_eq!(error_message(Some(&s2)), Some("boom"));
        assert_eq!(s2.restore_size, Some(Quantity("1Gi".into())));
    }

    #[test]
    fn an_error_of_the_controller_is_cleared_once_the_content_exists() {
        let before = status_with_error(None, "claim missing", true);
        assert_eq!(before.ready_to_use, Some(false));
        let s = status_from_content(Some(&before), &content(None)).unwrap();
        assert_eq!(s.error, None);
        assert_eq!(
            s.bound_volume_snapshot_content_name.as_deref(),
            Some("snapcontent-1")
        );
        assert_eq!(s.ready_to_use, Some(false));
    }

    #[test]
    fn content_binding_is_checked_by_name_namespace_and_uid() {
        let s = snapshot("u1");
        let mut c = content(None);
        c.spec.volume_snapshot_ref = ObjectReference {
            name: Some("snap".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        };
        assert!(content_names_snapshot(&s, &c));
        assert!(!is_ref_set(&s, &c));
        c.spec.volume_snapshot_ref.uid = Some("u1".into());
        assert!(is_ref_set(&s, &c));
        c.spec.volume_snapshot_ref.uid = Some("u2".into());
        assert!(!content_names_snapshot(&s, &c));
        c.spec.volume_snapshot_ref.uid = None;
        c.spec.volume_snapshot_ref.name = Some("other".into());
        assert!(!content_names_snapshot(&s, &c));
    }

    #[test]
    fn claims_name_snapshots_through_data_source_and_data_source_ref() {
        use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, TypedObjectReference};
        let mut claim = PersistentVolumeClaim::default();
        claim.metadata.namespace = Some("ns".into());
        claim.spec = Some(PersistentVolumeClaimSpec {
            data_source: Some(TypedLocalObjectReference {
                api_group: Some(SNAPSHOT_GROUP.into()),
                kind: "VolumeSnapshot".into(),
                name: "a".into(),
            }),
            data_source_ref: Some(TypedObjectReference {
                api_group: Some(SNAPSHOT_GROUP.into()),
                kind: "VolumeSnapshot".into(),
                name: "a".into(),
                namespace: None,
            }),
            ..Default::default()
        });
        assert_eq!(
            data_source_snapshot_keys(&claim),
            vec![("ns".into(), "a".into())]
        );
        claim.spec.as_mut().unwrap().data_source = Some(TypedLocalObjectReference {
            api_group: None,
            kind: "PersistentVolumeClaim".into(),
            name: "src".into(),
        });
        claim.spec.as_mut().unwrap().data_source_ref = None;
        assert!(data_source_snapshot_keys(&claim).is_empty());
    }

    #[test]
    fn dynamic_content_carries_the_class_and_the_deletion_secret() {
        let s = snapshot("u1");
        let c = class("gold", "d1", None);
        let secret = SecretRef {
            name: "creds".into(),
            namespace: "kube-system".into(),
        };
        let content =
            new_dynamic_content(&s, &c, "vol-1", Some("Filesystem".into()), Some(&secret));
        assert_eq!(content.metadata.name.as_deref(), Some("snapcontent-u1"));
        assert_eq!(content.spec.driver, "d1");
        assert_eq!(content.spec.deletion_policy, "Delete");
        assert_eq!(
            content.spec.volume_snapshot_class_name.as_deref(),
            Some("gold")
        );
        assert_eq!(content.spec.source.volume_handle.as_deref(), Some("vol-1"));
        assert!(is_ref_set(&s, &content));
        let ann = content.metadata.annotations.unwrap();
        assert_eq!(ann[ANN_SNAPSHOT_DELETION_SECRET_NAME], "creds");
        assert_eq!(ann[ANN_SNAPSHOT_DELETION_SECRET_NAMESPACE], "kube-system");
    }
}
