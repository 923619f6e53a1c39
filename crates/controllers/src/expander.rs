//! The CSI resizer (kubernetes-csi external-resizer semantics, with RecoverVolumeExpansionFailure):
//! grows the volume of a Bound claim whose `spec.resources.requests.storage` exceeds its
//! `status.capacity` (the API server already refuses to grow unbound claims and claims whose
//! class lacks `allowVolumeExpansion`).
//!
//! One expansion, as the claim's status shows it:
//! 1. `status.allocatedResources.storage` = the size being made, `allocatedResourceStatuses
//!    .storage` = `ControllerResizeInProgress`, condition `Resizing`; event `Resizing`.
//! 2. ControllerExpandVolume (or, for a driver without EXPAND_VOLUME, nothing: the node grows it).
//! 3. The PV's `spec.capacity` becomes the size the driver reports. Then either
//!    - the driver needs the node to finish (`node_expansion_required`): condition
//!      `FileSystemResizePending`, status `NodeResizePending`, event `FileSystemResizeRequired`.
//!      The node agent finishes it (NodeExpandVolume, then `status.capacity` and the conditions)
//!      — that is the node agent's work, not this loop's; or
//!    - it does not: `status.capacity` = the new size, resize conditions and the status entry
//!      removed, annotation `volume.kubernetes.io/node-expansion-not-required`, event
//!      `VolumeResizeSuccessful`.
//!
//! Failures write `VolumeResizeFailed` and a `ControllerResizeError` condition; an infeasible
//! answer (INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND) sets `ControllerResizeInfeasible` and
//! holds the claim back for 5 min, so the user can lower the request again (recovery). Which
//! size to aim for after an interrupted or failed expansion follows upstream's
//! `expandAndRecover` table ([`plan`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::{Controller, watcher};
use serde_json::{Value, json};
use tracing::Instrument;
use volplane_api::{quantity, wellknown};
use volplane_csi::ClientError;
use volplane_csi::proto::{self, controller_service_capability::rpc::Type as Rpc};

use crate::csi_drivers::{self, Registry, quantity_from_bytes, status_text};
use crate::events::{Severity, reference_to};
use crate::provisioner::backoff::{Backoff, SlowSet};
use crate::provisioner::{object_key, registry_changes};
use crate::provisioner::{secrets, volume};
use crate::{Context, Error};

/// `allocatedResourceStatuses` values (upstream `ClaimResourceStatus`).
pub mod resize_status {
    /// The controller is expanding the volume.
    pub const CONTROLLER_IN_PROGRESS: &str = "ControllerResizeInProgress";
    /// The controller cannot expand the volume to the requested size.
    pub const CONTROLLER_INFEASIBLE: &str = "ControllerResizeInfeasible";
    /// The node must finish the expansion.
    pub const NODE_PENDING: &str = "NodeResizePending";
    /// The node is expanding the volume.
    pub const NODE_IN_PROGRESS: &str = "NodeResizeInProgress";
    /// The node cannot expand the volume to the requested size.
    pub const NODE_INFEASIBLE: &str = "NodeResizeInfeasible";
}

/// How long an infeasible expansion is held back.
const INFEASIBLE_HOLD: Duration = Duration::from_secs(300);
const RESIZING: &str = "Resizing";
const FS_RESIZE_PENDING: &str = "FileSystemResizePending";
const CONTROLLER_RESIZE_ERROR: &str = "ControllerResizeError";
const RESIZE_CONDITIONS: [&str; 4] = [
    RESIZING,
    FS_RESIZE_PENDING,
    CONTROLLER_RESIZE_ERROR,
    "NodeResizeError",
];

/// Runs the expander until a fatal error.
pub async fn run(ctx: Arc<Context>, drivers: Arc<Registry>) -> Result<(), Error> {
    let claims = Api::<PersistentVolumeClaim>::all(ctx.client.clone());
    let expander = Arc::new(Expander {
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        slow: SlowSet::default(),
        final_errors: Mutex::default(),
        drivers: drivers.clone(),
        ctx: ctx.clone(),
    });
    let config =
        Config::default().concurrency(ctx.config.workers.clamp(1, u16::MAX as usize) as u16);
    Controller::new(claims, watcher::Config::default())
        .with_config(config)
        .reconcile_all_on(registry_changes(&drivers))
        .run(reconcile, error_policy, expander)
        .for_each(|result| async move {
            crate::provisioner::log_outcome("PersistentVolumeClaim", result)
        })
        .await;
    Ok(())
}

struct Expander {
    ctx: Arc<Context>,
    drivers: Arc<Registry>,
    backoff: Backoff,
    /// Claims whose last expansion was infeasible.
    slow: SlowSet,
    /// Claims whose last expansion failed for good (not possibly still running).
    final_errors: Mutex<HashSet<String>>,
}

/// Why an expansion did not finish; the loop retries it.
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    /// The expansion failed (already reported as an event).
    #[error("claim {key}: {message}")]
    Failed {
        /// `namespace/name`.
        key: String,
        /// The reason.
        message: String,
    },
}

fn error_policy(
    claim: Arc<PersistentVolumeClaim>,
    error: &ExpandError,
    e: Arc<Expander>,
) -> Action {
    tracing::debug!(%error, "expansion will be retried");
    Action::requeue(e.backoff.failed(&object_key(claim.as_ref())))
}

fn storage(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Option<String> {
    map.and_then(|m| m.get("storage")).map(|q| q.0.clone())
}

fn is_larger(a: &str, b: &str) -> bool {
    quantity::compare(a, b) == Some(std::cmp::Ordering::Greater)
}

/// Whether a claim asks for more than it has (upstream `pvcNeedResize`).
pub fn needs_resize(claim: &PersistentVolumeClaim) -> bool {
    let (Some(spec), Some(status)) = (claim.spec.as_ref(), claim.status.as_ref()) else {
        return false;
    };
    if status.phase.as_deref() != Some("Bound")
        || spec.volume_name.as_deref().unwrap_or("").is_empty()
    {
        return false;
    }
    let requested = storage(spec.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let actual = storage(status.capacity.as_ref()).unwrap_or_else(|| "0".into());
    requested.is_some_and(|r| is_larger(&r, &actual))
}

/// What the expander does next for a claim that needs resizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: the node is finishing an expansion the PV already has.
    Nothing,
    /// Expand to `size`; `update_status` is false when the status already records that size.
    Expand {
        /// The target size (a quantity).
        size: String,
        /// Whether the in-progress status must be written.
        update_status: bool,
    },
}

/// The size to expand to, from the PV's size, the claim's request and what the status
/// records of earlier attempts (upstream `expandAndRecover`).
pub fn plan(claim: &PersistentVolumeClaim, pv_size: &str, has_final_error: bool) -> Plan {
    let spec_size = claim
        .spec
        .as_ref()
        .and_then(|s| storage(s.resources.as_ref().and_then(|r| r.requests.as_ref())))
        .unwrap_or_else(|| "0".into());
    let status = claim.status.clone().unwrap_or_default();
    let allocated = storage(status.allocated_resources.as_ref());
    let resize_status = status
        .allocated_resource_statuses
        .as_ref()
        .and_then(|s| s.get("storage").cloned())
        .unwrap_or_default();
    let allocated_or_spec = || allocated.clone().unwrap_or_else(|| spec_size.clone());
    use resize_status::*;
    let size = if is_larger(&spec_size, pv_size) {
        match resize_status.as_str() {
            NODE_INFEASIBLE => allocated_or_spec(),
            NODE_PENDING | NODE_IN_PROGRESS => {
                let size = allocated_or_spec();
                if !is_larger(&size, pv_size) {
                    return Plan::Nothing;
                }
                size
            }
            CONTROLLER_IN_PROGRESS if !has_final_error => allocated_or_spec(),
            _ => spec_size.clone(),
        }
    } else {
        match resize_status.as_str() {
            NODE_IN_PROGRESS | NODE_PENDING => return Plan::Nothing,
            NODE_INFEASIBLE | CONTROLLER_IN_PROGRESS | CONTROLLER_INFEASIBLE => allocated_or_spec(),
            "" if allocated.is_some() => allocated_or_spec(),
            _ if has_condition(claim, FS_RESIZE_PENDING) => return Plan::Nothing,
            _ => spec_size.clone(),
        }
    };
    let update_status = allocated
        .as_deref()
        .is_none_or(|a| quantity::compare(a, &size) != Some(std::cmp::Ordering::Equal));
    Plan::Expand {
        size,
        update_status,
    }
}

fn has_condition(claim: &PersistentVolumeClaim, type_: &str) -> bool {
    claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// The claim's conditions with `new` resize conditions merged in: other conditions stay, a
/// resize condition of the same type is replaced (kept as is when its status is unchanged, so
/// its transition time holds), other resize conditions stay only with `keep_old`.
pub fn merge_resize_conditions(
    old: &[PersistentVolumeClaimCondition],
    new: Vec<PersistentVolumeClaimCondition>,
    keep_old: bool,
) -> Vec<PersistentVolumeClaimCondition> {
    let mut pending: Vec<Option<PersistentVolumeClaimCondition>> =
        new.into_iter().map(Some).collect();
    let mut merged = Vec::new();
    for condition in old {
        if !RESIZE_CONDITIONS.contains(&condition.type_.as_str()) {
            merged.push(condition.clone());
            continue;
        }
        match pending
            .iter_mut()
            .find(|n| n.as_ref().is_some_and(|n| n.type_ == condition.type_))
        {
            Some(slot) => {
                let replacement = slot.take().expect("found above");
                merged.push(
                    if replacement.status == condition.status
                        && replacement.message == condition.message
                    {
                        condition.clone()
                    } else {
                        replacement
                    },
                );
            }
            None if keep_old => merged.push(condition.clone()),
            None => {}
        }
    }
    merged.extend(pending.into_iter().flatten());
    merged
}

fn condition(type_: &str, message: Option<String>) -> PersistentVolumeClaimCondition {
    PersistentVolumeClaimCondition {
        type_: type_.into(),
        status: "True".into(),
        last_transition_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
        message,
        ..Default::default()
    }
}

/// Whether an expansion error is final (the operation is surely not running) and whether it is
/// infeasible (the request cannot succeed as it is).
fn classify(error: &ClientError) -> (bool, bool) {
    use tonic::Code;
    match error.code() {
        None => (false, false),
        Some(
            Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Unavailable
            | Code::ResourceExhausted
            | Code::Aborted,
        ) => (false, false),
        Some(Code::InvalidArgument | Code::OutOfRange | Code::NotFound) => (true, true),
        Some(_) => (true, false),
    }
}

async fn reconcile(
    claim: Arc<PersistentVolumeClaim>,
    e: Arc<Expander>,
) -> Result<Action, ExpandError> {
    let key = object_key(claim.as_ref());
    let span = tracing::info_span!(
        "expand",
        kind = "PersistentVolumeClaim",
        key = %key,
        uid = claim.metadata.uid.as_deref().unwrap_or_default(),
        resource_version = claim.metadata.resource_version.as_deref().unwrap_or_default(),
    );
    async move {
        let action = sync(&e, &claim, &key).await?;
        if action == Action::await_change() {
            e.backoff.forget(&key);
        }
        Ok(action)
    }
    .instrument(span)
    .await
}

async fn sync(
    e: &Expander,
    claim: &PersistentVolumeClaim,
    key: &str,
) -> Result<Action, ExpandError> {
    if !needs_resize(claim) {
        return Ok(Action::await_change());
    }
    let fail = |message: String| ExpandError::Failed {
        key: key.to_string(),
        message,
    };
    // Expansions are rare: the PV is read fresh rather than from a cache that may not show
    // this loop's own last write yet.
    let pv_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .unwrap_or_default();
    let pvs = Api::<PersistentVolume>::all(e.ctx.client.clone());
    let Some(pv) = pvs
        .get_opt(&pv_name)
        .await
        .map_err(|err| fail(err.to_string()))?
    else {
        return Ok(Action::await_change());
    };
    let spec = pv.spec.clone().unwrap_or_default();
    let Some(csi) = spec.csi.clone() else {
        return Ok(Action::await_change());
    };
    let bound_here = spec
        .claim_ref
        .as_ref()
        .is_some_and(|r| r.uid == claim.metadata.uid && r.namespace == claim.metadata.namespace);
    if !bound_here || !e.drivers.contains(&csi.driver) {
        return Ok(Action::await_change());
    }
    let status = claim.status.clone().unwrap_or_default();
    let resize_status = status
        .allocated_resource_statuses
        .as_ref()
        .and_then(|s| s.get("storage").cloned());
    if resize_status.as_deref() == Some(resize_status::CONTROLLER_INFEASIBLE) {
        e.slow.add(key, "", INFEASIBLE_HOLD);
    }
    let pv_size = storage(spec.capacity.as_ref()).unwrap_or_else(|| "0".into());
    let has_final_error = e.final_errors.lock().expect("final errors").contains(key);
    let Plan::Expand {
        size,
        update_status,
    } = plan(claim, &pv_size, has_final_error)
    else {
        return Ok(Action::await_change());
    };
    if !update_status && let Some(left) = e.slow.remaining(key, "") {
        tracing::debug!(
            ?left,
            "skipping volume expansion: it previously failed with an infeasible error"
        );
        return Ok(Action::requeue(left));
    }
    let claim = mark_in_progress(e, claim, &size, update_status)
        .await
        .map_err(|err| fail(format!("marking pvc {key:?} as resizing failed: {err}")))?;
    let note = format!("External resizer is resizing volume {pv_name}");
    e.ctx
        .event(
            &reference_to(&claim),
            Severity::Normal,
            "Resizing",
            "Resize",
            note,
        )
        .await;
    match expand(e, &claim, &pv, &size).await {
        Ok(()) => Ok(Action::await_change()),
        Err(message) => {
            e.ctx
                .event(
                    &reference_to(&claim),
                    Severity::Warning,
                    "VolumeResizeFailed",
                    "Resize",
                    &message,
                )
                .await;
            Err(fail(message))
        }
    }
}

/// Step 1: the in-progress status. Returns the claim as written.
async fn mark_in_progress(
    e: &Expander,
    claim: &PersistentVolumeClaim,
    size: &str,
    update_status: bool,
) -> Result<PersistentVolumeClaim, kube::Error> {
    let old = claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let conditions = merge_resize_conditions(&old, vec![condition(RESIZING, None)], !update_status);
    let mut status = json!({
        "conditions": conditions,
        "allocatedResources": { "storage": size },
    });
    if update_status {
        status["allocatedResourceStatuses"] =
            json!({ "storage": resize_status::CONTROLLER_IN_PROGRESS });
    }
    let updated = patch_status(e, claim, status, true).await?;
    set_node_expansion_not_required(e, &updated, false).await
}

/// Steps 2 and 3.
async fn expand(
    e: &Expander,
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    size: &str,
) -> Result<(), String> {
    let key = object_key(claim);
    let pv_name = pv.name_any();
    let driver = pv
        .spec
        .as_ref()
        .and_then(|s| s.csi.as_ref())
        .map(|c| c.driver.clone())
        .unwrap_or_default();
    let result = call_driver(e, pv, size).await;
    let (capacity_bytes, node_expansion_required) = match result {
        Ok(answer) => answer,
        Err(Failure::Driver(error)) => {
            let (final_error, infeasible) = classify(&error);
            let message = format!(
                "resize volume {pv_name:?} by resizer {driver:?} failed: {}",
                status_text(&error)
            );
            record_failure(e, claim, &key, final_error, infeasible, &message).await?;
            return Err(message);
        }
        Err(Failure::Other(message)) => return Err(message),
    };
    e.final_errors.lock().expect("final errors").remove(&key);
    e.slow.remove(&key);
    let new_size = quantity_from_bytes(capacity_bytes);
    let patch = json!({ "spec": { "capacity": { "storage": new_size } } });
    Api::<PersistentVolume>::all(e.ctx.client.clone())
        .patch(&pv_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|err| format!("error updating pv {pv_name:?} by resizer: updating capacity of PV {pv_name:?} to {new_size} failed: {err}"))?;
    tracing::info!(pv = %pv_name, capacity = %new_size, node_expansion_required, "volume expanded");
    if node_expansion_required {
        mark_node_expansion_pending(e, claim).await
    } else {
        mark_finished(e, claim, &new_size).await
    }
    .map_err(|err| format!("mark PVC {key:?} after resize failed: {err}"))
}

enum Failure {
    Driver(ClientError),
    Other(String),
}

/// ControllerExpandVolume, or — for a driver that only expands on nodes — the requested size
/// with node expansion required (upstream's trivial resizer).
async fn call_driver(
    e: &Expander,
    pv: &PersistentVolume,
    size: &str,
) -> Result<(i64, bool), Failure> {
    let spec = pv.spec.clone().unwrap_or_default();
    let csi = spec.csi.clone().unwrap_or_default();
    let bytes = quantity::to_bytes(size)
        .and_then(|b| i64::try_from(b).ok())
        .ok_or_else(|| Failure::Other(format!("{size:?} is not a size")))?;
    let (client, caps) = e
        .drivers
        .connect(&csi.driver)
        .await
        .map_err(|err| Failure::Other(err.to_string()))?;
    if !caps.has(Rpc::ExpandVolume) {
        return Ok((bytes, true));
    }
    let modes = spec.access_modes.clone().unwrap_or_default();
    let mode = csi_drivers::access_mode(&modes, caps.single_node_multi_writer())
        .map_err(Failure::Other)?;
    let block = spec.volume_mode.as_deref() == Some("Block");
    let fs_type = csi.fs_type.clone().unwrap_or_default();
    let capability = volume::capability(
        block,
        &fs_type,
        spec.mount_options.clone().unwrap_or_default(),
        mode,
    );
    let secrets = secrets::credentials(&e.ctx.client, csi.controller_expand_secret_ref.as_ref())
        .await
        .map_err(Failure::Other)?;
    let request = proto::ControllerExpandVolumeRequest {
        volume_id: csi.volume_handle.clone(),
        capacity_range: Some(proto::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        secrets,
        volume_capability: Some(capability),
    };
    let response = client
        .controller_expand_volume(request)
        .await
        .map_err(Failure::Driver)?;
    Ok((response.capacity_bytes, response.node_expansion_required))
}

/// Records a failed ControllerExpandVolume in the claim's status, as upstream does.
async fn record_failure(
    e: &Expander,
    claim: &PersistentVolumeClaim,
    key: &str,
    final_error: bool,
    infeasible: bool,
    message: &str,
) -> Result<(), String> {
    if !final_error {
        e.slow.remove(key);
        e.final_errors.lock().expect("final errors").remove(key);
        return Ok(());
    }
    e.final_errors
        .lock()
        .expect("final errors")
        .insert(key.to_string());
    if !infeasible {
        e.slow.remove(key);
    }
    let old = claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let error = condition(
        CONTROLLER_RESIZE_ERROR,
        Some(format!("failed to expand pvc with {message}")),
    );
    let mut status = json!({ "conditions": merge_resize_conditions(&old, vec![error], true) });
    if infeasible {
        status["allocatedResourceStatuses"] =
            json!({ "storage": resize_status::CONTROLLER_INFEASIBLE });
    }
    // No resourceVersion check: the failure must be recorded even over a newer claim.
    patch_status(e, claim, status, false)
        .await
        .map(|_| ())
        .map_err(|err| format!("resizing failed in controller with {message} but failed to update PVC {key} with: {err}"))
}

async fn mark_node_expansion_pending(
    e: &Expander,
    claim: &PersistentVolumeClaim,
) -> Result<(), kube::Error> {
    let old = claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let pending = condition(
        FS_RESIZE_PENDING,
        Some(
            "Waiting for user to (re-)start a pod to finish file system resize of volume on node."
                .into(),
        ),
    );
    let status = json!({
        "conditions": merge_resize_conditions(&old, vec![pending], true),
        "allocatedResourceStatuses": { "storage": resize_status::NODE_PENDING },
    });
    let updated = patch_status(e, claim, status, true).await?;
    set_node_expansion_not_required(e, &updated, false).await?;
    let note = "Require file system resize of volume on node";
    e.ctx
        .event(
            &reference_to(claim),
            Severity::Normal,
            "FileSystemResizeRequired",
            "Resize",
            note,
        )
        .await;
    Ok(())
}

async fn mark_finished(
    e: &Expander,
    claim: &PersistentVolumeClaim,
    size: &str,
) -> Result<(), kube::Error> {
    let old = claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let others = claim
        .status
        .as_ref()
        .and_then(|s| s.allocated_resource_statuses.as_ref())
        .is_some_and(|m| m.keys().any(|k| k != "storage"));
    let statuses = if others {
        json!({ "storage": null })
    } else {
        Value::Null
    };
    let status = json!({
        "capacity": { "storage": size },
        "conditions": merge_resize_conditions(&old, vec![], false),
        "allocatedResourceStatuses": statuses,
    });
    let updated = patch_status(e, claim, status, true).await?;
    set_node_expansion_not_required(e, &updated, true).await?;
    e.ctx
        .event(
            &reference_to(claim),
            Severity::Normal,
            "VolumeResizeSuccessful",
            "Resize",
            "Resize volume succeeded",
        )
        .await;
    Ok(())
}

/// Merge-patches the claim's status; with `check_version` the patch carries the claim's
/// resourceVersion, so it fails with 409 if the claim changed meanwhile.
async fn patch_status(
    e: &Expander,
    claim: &PersistentVolumeClaim,
    status: Value,
    check_version: bool,
) -> Result<PersistentVolumeClaim, kube::Error> {
    let mut patch = json!({ "status": status });
    if check_version {
        patch["metadata"] = json!({ "resourceVersion": claim.resource_version() });
    }
    claims_api(e, claim)
        .patch_status(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
}

/// Sets or removes `volume.kubernetes.io/node-expansion-not-required` (metadata, so not part
/// of the status patch).
async fn set_node_expansion_not_required(
    e: &Expander,
    claim: &PersistentVolumeClaim,
    set: bool,
) -> Result<PersistentVolumeClaim, kube::Error> {
    let present = claim
        .annotations()
        .contains_key(wellknown::ANN_NODE_EXPANSION_NOT_REQUIRED);
    if present == set {
        return Ok(claim.clone());
    }
    let value = if set { json!("true") } else { Value::Null };
    let patch = json!({ "metadata": { "annotations": { wellknown::ANN_NODE_EXPANSION_NOT_REQUIRED: value } } });
    claims_api(e, claim)
        .patch(
            &claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
}

fn claims_api(e: &Expander, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
    Api::namespaced(
        e.ctx.client.clone(),
        claim.metadata.namespace.as_deref().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn claim(
        spec: &str,
        capacity: &str,
        allocated: Option<&str>,
        status: Option<&str>,
    ) -> PersistentVolumeClaim {
        let q = |s: &str| BTreeMap::from([("storage".to_string(), Quantity(s.into()))]);
        PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                volume_name: Some("pv".into()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(q(spec)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(PersistentVolumeClaimStatus {
                phase: Some("Bound".into()),
                capacity: Some(q(capacity)),
                allocated_resources: allocated.map(q),
                allocated_resource_statuses: status
                    .map(|s| BTreeMap::from([("storage".to_string(), s.to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn expand(size: &str, update_status: bool) -> Plan {
        Plan::Expand {
            size: size.into(),
            update_status,
        }
    }

    #[test]
    fn only_bound_claims_asking_for_more_need_resizing() {
        assert!(needs_resize(&claim("2Gi", "1Gi", None, None)));
        assert!(!needs_resize(&claim("1Gi", "1Gi", None, None)));
        assert!(!needs_resize(&claim("1024Mi", "1Gi", None, None)));
    }

    #[test]
    fn a_new_expansion_aims_at_the_request() {
        assert_eq!(
            plan(&claim("2Gi", "1Gi", None, None), "1Gi", false),
            expand("2Gi", true)
        );
    }

    #[test]
    fn an_interrupted_controller_expansion_resumes_its_size_unless_it_failed_for_good() {
        let c = claim(
            "3Gi",
            "1Gi",
            Some("2Gi"),
            Some(resize_status::CONTROLLER_IN_PROGRESS),
        );
        assert_eq!(plan(&c, "1Gi", false), expand("2Gi", false));
        assert_eq!(plan(&c, "1Gi", true), expand("3Gi", true));
    }

    #[test]
    fn node_expansion_in_flight_is_left_to_the_node() {
        let c = claim("2Gi", "1Gi", Some("2Gi"), Some(resize_status::NODE_PENDING));
        assert_eq!(plan(&c, "2Gi", false), Plan::Nothing);
        let bigger = claim("3Gi", "1Gi", Some("2Gi"), Some(resize_status::NODE_PENDING));
        assert_eq!(
            plan(&bigger, "2Gi", false),
            Plan::Nothing,
            "the node finishes 2Gi first"
        );
    }

    #[test]
    fn after_an_infeasible_request_a_smaller_one_is_tried() {
        // The user lowered the request from 100Ti to 3Gi after ControllerResizeInfeasible.
        let c = claim(
            "3Gi",
            "1Gi",
            Some("100Ti"),
            Some(resize_status::CONTROLLER_INFEASIBLE),
        );
        assert_eq!(plan(&c, "1Gi", true), expand("3Gi", true));
        let same = claim(
            "100Ti",
            "1Gi",
            Some("100Ti"),
            Some(resize_status::CONTROLLER_INFEASIBLE),
        );
        assert_eq!(plan(&same, "1Gi", true), expand("100Ti", false));
    }

    #[test]
    fn an_expanded_pv_with_unrecorded_status_is_finished_at_the_allocated_size() {
        let c = claim(
            "2Gi",
            "1Gi",
            Some("2Gi"),
            Some(resize_status::CONTROLLER_IN_PROGRESS),
        );
        assert_eq!(plan(&c, "2Gi", false), expand("2Gi", false));
    }

    #[test]
    fn resize_conditions_are_replaced_and_others_kept() {
        let other = PersistentVolumeClaimCondition {
            type_: "ModifyingVolume".into(),
            status: "True".into(),
            ..Default::default()
        };
        let resizing = condition(RESIZING, None);
        let merged = merge_resize_conditions(
            &[other.clone(), resizing.clone()],
            vec![condition(FS_RESIZE_PENDING, None)],
            true,
        );
        let types: Vec<&str> = merged.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["ModifyingVolume", RESIZING, FS_RESIZE_PENDING]);
        let cleared = merge_resize_conditions(&[other, resizing], vec![], false);
        assert_eq!(cleared.len(), 1);
    }

    #[test]
    fn infeasible_errors_are_final() {
        let status = |code| ClientError::Status {
            rpc: "ControllerExpandVolume",
            code,
            message: String::new(),
        };
        assert_eq!(classify(&status(tonic::Code::OutOfRange)), (true, true));
        assert_eq!(classify(&status(tonic::Code::Internal)), (true, false));
        assert_eq!(classify(&status(tonic::Code::Unavailable)), (false, false));
    }
}
