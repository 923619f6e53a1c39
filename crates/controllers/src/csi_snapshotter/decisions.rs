//! The CSI snapshotter's decisions, as pure functions: when a content may be deleted, what
//! the snapshot is called, which class parameters reach the driver, which errors are final,
//! and what the content's status becomes from the storage's answer.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::jiff::Timestamp;
use tonic::Code;
use volplane_api::snapshot::{VolumeSnapshotContent, VolumeSnapshotContentStatus};
use volplane_api::wellknown::{
    ANN_VOLUMESNAPSHOT_BEING_CREATED, ANN_VOLUMESNAPSHOT_BEING_DELETED,
    PARAM_SNAPSHOTTER_LIST_SECRET_NAME, PARAM_SNAPSHOTTER_LIST_SECRET_NAMESPACE,
    PARAM_SNAPSHOTTER_SECRET_NAME, PARAM_SNAPSHOTTER_SECRET_NAMESPACE,
};

use super::SnapshotState;
use crate::snapshot_controller::decisions::has_annotation;

/// The prefix of parameters meant for the sidecars, not the driver.
const CSI_PARAMETER_PREFIX: &str = "csi.storage.k8s.io/";
/// Upstream's `--snapshot-name-prefix` default.
const SNAPSHOT_NAME_PREFIX: &str = "snapshot";
/// The annotation a member of a VolumeGroupSnapshot carries; such contents are cut by the
/// group snapshot, never one by one.
pub(super) const ANN_GROUP_SNAPSHOT_HANDLE: &str =
    "snapshot.storage.kubernetes.io/volumegroupsnapshot-handle";

/// Upstream's `shouldDelete`: the content is being deleted and either was never bound
/// (pre-provisioned), or its snapshot is being deleted — unless CreateSnapshot is still
/// unanswered.
pub(super) fn should_delete(content: &VolumeSnapshotContent) -> bool {
    if content.metadata.deletion_timestamp.is_none() {
        return false;
    }
    let unbound = content
        .spec
        .volume_snapshot_ref
        .uid
        .as_deref()
        .unwrap_or_default()
        .is_empty();
    if content.spec.source.snapshot_handle.is_some() && unbound {
        return true;
    }
    if has_annotation(&content.metadata, ANN_VOLUMESNAPSHOT_BEING_CREATED) {
        return false;
    }
    has_annotation(&content.metadata, ANN_VOLUMESNAPSHOT_BEING_DELETED)
}

pub(super) fn is_ready(content: &VolumeSnapshotContent) -> bool {
    content
        .status
        .as_ref()
        .and_then(|s| s.ready_to_use)
        .unwrap_or(false)
}

/// The CSI snapshot name for the VolumeSnapshot `uid` (upstream's default prefix, uid kept
/// whole): the same on every attempt, so CreateSnapshot is idempotent across restarts.
pub(super) fn snapshot_name(uid: &str) -> String {
    format!("{SNAPSHOT_NAME_PREFIX}-{uid}")
}

/// The class parameters passed to CreateSnapshot: every `csi.storage.k8s.io/` key is the
/// sidecar's and is dropped; an unknown one under that prefix is an error, as upstream.
pub(super) fn remove_prefixed_parameters(
    parameters: Option<&BTreeMap<String, String>>,
) -> Result<HashMap<String, String>, String> {
    const KNOWN: [&str; 4] = [
        PARAM_SNAPSHOTTER_SECRET_NAME,
        PARAM_SNAPSHOTTER_SECRET_NAMESPACE,
        PARAM_SNAPSHOTTER_LIST_SECRET_NAME,
        PARAM_SNAPSHOTTER_LIST_SECRET_NAMESPACE,
    ];
    let mut kept = HashMap::new();
    for (key, value) in parameters.into_iter().flatten() {
        if key.starts_with(CSI_PARAMETER_PREFIX) {
            if !KNOWN.contains(&key.as_str()) {
                return Err(format!(
                    "found unknown parameter key \"{key}\" with reserved namespace {CSI_PARAMETER_PREFIX}"
                ));
            }
        } else {
            kept.insert(key.clone(), value.clone());
        }
    }
    Ok(kept)
}

/// Whether a CreateSnapshot error says for sure that no snapshot is being cut. Timeouts,
/// cancellations, an unavailable or exhausted plugin and ABORTED (operation pending) may
/// still end with a snapshot; a failure before any answer (no gRPC status) is not final
/// either.
pub(super) fn is_final_error(error: &volplane_csi::ClientError) -> bool {
    match error.code() {
        None => false,
        Some(code) => !matches!(
            code,
            Code::Cancelled
                | Code::DeadlineExceeded
                | Code::Unavailable
                | Code::ResourceExhausted
                | Code::Aborted
        ),
    }
}

/// The content's status after the storage's answer, or `None` when nothing changes.
pub(super) fn content_status(
    current: Option<&VolumeSnapshotContentStatus>,
    handle: &str,
    state: SnapshotState,
) -> Option<VolumeSnapshotContentStatus> {
    let size = (state.size_bytes > 0).then_some(state.size_bytes);
    let Some(current) = current else {
        return Some(VolumeSnapshotContentStatus {
            snapshot_handle: Some(handle.to_string()),
            ready_to_use: Some(state.ready),
            creation_time: Some(state.created_ns),
            restore_size: size,
            ..Default::default()
        });
    };
    let mut status = current.clone();
    if status.snapshot_handle.is_none() {
        status.snapshot_handle = Some(handle.to_string());
    }
    if status.ready_to_use != Some(state.ready) {
        status.ready_to_use = Some(state.ready);
        if state.ready {
            status.error = None;
        }
    }
    if status.creation_time.is_none() {
        status.creation_time = Some(state.created_ns);
    }
    if status.restore_size.is_none() {
        status.restore_size = size;
    }
    (&status != current).then_some(status)
}

/// Nanoseconds since the epoch of the driver's creation time; now when it gave none.
pub(super) fn creation_ns(seconds_nanos: Option<(i64, i32)>) -> i64 {
    match seconds_nanos {
        Some((seconds, nanos)) if seconds != 0 || nanos != 0 => seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(nanos)),
        _ => now_ns(),
    }
}

pub(super) fn now_ns() -> i64 {
    i64::try_from(Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use volplane_api::snapshot::VolumeSnapshotContentSpec;

    fn content() -> VolumeSnapshotContent {
        VolumeSnapshotContent::new("c", VolumeSnapshotContentSpec::default())
    }

    fn annotate(content: &mut VolumeSnapshotContent, key: &str) {
        content
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(key.into(), "yes".into());
    }

    #[test]
    fn deletion_waits_for_the_snapshot_being_deleted_and_for_create_to_answer() {
        let mut c = content();
        c.spec.volume_snapshot_ref.uid = Some("u".into());
        annotate(&mut c, ANN_VOLUMESNAPSHOT_BEING_DELETED);
        assert!(!should_delete(&c), "not being deleted");
        c.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        assert!(should_delete(&c));
        annotate(&mut c, ANN_VOLUMESNAPSHOT_BEING_CREATED);
        assert!(!should_delete(&c), "CreateSnapshot unanswered");

        // A pre-provisioned content never bound goes at once.
        let mut c = content();
        c.spec.source.snapshot_handle = Some("h".into());
        c.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        assert!(should_delete(&c));
        // Bound, but its snapshot not being deleted: kept.
        c.spec.volume_snapshot_ref.uid = Some("u".into());
        assert!(!should_delete(&c));
    }

    #[test]
    fn sidecar_parameters_are_dropped_and_unknown_reserved_ones_refused() {
        let params: BTreeMap<String, String> = [
            (PARAM_SNAPSHOTTER_SECRET_NAME, "s"),
            (PARAM_SNAPSHOTTER_SECRET_NAMESPACE, "ns"),
            ("tier", "gold"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let kept = remove_prefixed_parameters(Some(&params)).unwrap();
        assert_eq!(
            kept,
            HashMap::from([("tier".to_string(), "gold".to_string())])
        );
        let bad: BTreeMap<String, String> =
            [("csi.storage.k8s.io/fstype".to_string(), "ext4".to_string())].into();
        let err = remove_prefixed_parameters(Some(&bad)).unwrap_err();
        assert!(err.contains("csi.storage.k8s.io/fstype"), "{err}");
        assert!(remove_prefixed_parameters(None).unwrap().is_empty());
    }

    #[test]
    fn only_answers_that_rule_out_a_pending_snapshot_are_final() {
        let status = |code| volplane_csi::ClientError::Status {
            rpc: "CreateSnapshot",
            code,
            message: String::new(),
        };
        assert!(is_final_error(&status(Code::InvalidArgument)));
        assert!(is_final_error(&status(Code::NotFound)));
        assert!(is_final_error(&status(Code::AlreadyExists)));
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Unavailable,
            Code::ResourceExhausted,
            Code::Aborted,
        ] {
            assert!(!is_final_error(&status(code)), "{code:?}");
        }
    }

    #[test]
    fn names_are_stable_per_snapshot() {
        assert_eq!(snapshot_name("1234-abcd"), "snapshot-1234-abcd");
    }

    #[test]
    fn status_keeps_first_values_and_clears_the_error_once_ready() {
        let state = SnapshotState {
            ready: false,
            created_ns: 5,
            size_bytes: 0,
        };
        let first = content_status(None, "h", state).unwrap();
        assert_eq!(first.snapshot_handle.as_deref(), Some("h"));
        assert_eq!(first.creation_time, Some(5));
        assert_eq!(first.restore_size, None);
        assert_eq!(content_status(Some(&first), "h", state), None);

        let mut failed = first.clone();
        failed.error = Some(Default::default());
        let ready = SnapshotState {
            ready: true,
            created_ns: 9,
            size_bytes: 1024,
        };
        let next = content_status(Some(&failed), "other", ready).unwrap();
        assert_eq!(next.snapshot_handle.as_deref(), Some("h"));
        assert_eq!(next.creation_time, Some(5));
        assert_eq!(next.restore_size, Some(1024));
        assert_eq!(next.ready_to_use, Some(true));
        assert_eq!(next.error, None);
    }

    #[test]
    fn creation_time_is_nanoseconds_or_now() {
        assert_eq!(creation_ns(Some((2, 5))), 2_000_000_005);
        let now = now_ns();
        assert!(creation_ns(None) >= now);
        assert!(creation_ns(Some((0, 0))) >= now);
    }
}
