//! Volume sync (upstream's `syncVolume`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use volplane_api::wellknown::{ANN_BOUND_BY_CONTROLLER, ANN_PROVISIONED_BY};

use super::sync_claim::has_annotation;
use super::{Binder, is_not_found};
use crate::events::{Severity, reference_to};
use crate::matching;
use crate::{Error, reclaim};

/// What a PV needs, given the claim its claimRef names (as found).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VolumeDecision {
    /// Unclaimed, or reserved for a claim not bound yet: Available.
    Available,
    /// Bound to a claim that is gone: Released, then reclaim.
    Released,
    /// The claim has no volumeName yet but the modes differ: tell both.
    VolumeModeMismatch,
    /// The claim has no volumeName yet: its sync will finish the bind.
    WaitForClaimSync,
    /// Both sides agree: Bound.
    Bound,
    /// Provisioned for a claim that got another PV, reclaim policy Delete: release it.
    ReleaseProvisioned,
    /// Bound (by the controller or the user) to a claim that went elsewhere: undo.
    Unbind,
}

/// Whether the PV has a claimRef with a uid (a real bind, not a reservation by name).
fn bound_uid(pv: &PersistentVolume) -> Option<&str> {
    let claim_ref = pv.spec.as_ref()?.claim_ref.as_ref()?;
    claim_ref.uid.as_deref().filter(|uid| !uid.is_empty())
}

/// Upstream's decision table, once the claim has been looked up (`claim` is `None` when it
/// does not exist or has another uid).
pub(crate) fn decide_volume(
    pv: &PersistentVolume,
    claim: Option<&PersistentVolumeClaim>,
) -> VolumeDecision {
    if bound_uid(pv).is_none() {
        return VolumeDecision::Available;
    }
    let Some(claim) = claim else {
        return VolumeDecision::Released;
    };
    let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref());
    let name = pv.metadata.name.as_deref();
    match volume_name {
        None | Some("") => {
            if matching::claim_volume_mode(claim) != matching::volume_volume_mode(pv) {
                VolumeDecision::VolumeModeMismatch
            } else {
                VolumeDecision::WaitForClaimSync
            }
        }
        Some(bound) if Some(bound) == name => VolumeDecision::Bound,
        Some(_) => {
            let delete = pv
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                == Some("Delete");
            if has_annotation(&pv.metadata, ANN_PROVISIONED_BY) && delete {
                VolumeDecision::ReleaseProvisioned
            } else {
                VolumeDecision::Unbind
            }
        }
    }
}

/// Syncs the PV `name`.
pub(crate) async fn sync_volume(binder: &Arc<Binder>, name: &str) -> Result<(), Error> {
    let Some(pv) = binder.volumes.get(name) else {
        return Ok(());
    };
    let span = tracing::Span::current();
    span.record("uid", pv.metadata.uid.as_deref().unwrap_or(""));
    span.record(
        "resource_version",
        pv.metadata.resource_version.as_deref().unwrap_or(""),
    );
    let claim = match bound_uid(&pv) {
        Some(uid) => find_claim(binder, &pv, uid).await?,
        None => None,
    };
    match decide_volume(&pv, claim.as_deref()) {
        VolumeDecision::Available => {
            binder.update_volume_phase(&pv, "Available").await?;
        }
        VolumeDecision::Released => release(binder, &pv).await?,
        VolumeDecision::VolumeModeMismatch => {
            let claim = claim.expect("decided with a claim");
            volume_mode_mismatch(binder, &pv, &claim).await;
        }
        VolumeDecision::WaitForClaimSync => {
            let claim = claim.expect("decided with a claim");
            binder.claim_queue.add(matching::claim_key(&claim));
        }
        VolumeDecision::Bound => {
            binder.update_volume_phase(&pv, "Bound").await?;
        }
        VolumeDecision::ReleaseProvisioned => release(binder, &pv).await?,
        VolumeDecision::Unbind => {
            if has_annotation(&pv.metadata, ANN_BOUND_BY_CONTROLLER) {
                tracing::info!(
                    "volume bound by the controller to a claim bound elsewhere, unbinding"
                );
            }
            binder.unbind_volume(&pv).await?;
        }
    }
    Ok(())
}

/// The claim the PV's claimRef names, if it exists with that uid. The cache may lag behind
/// a claim created an instant ago, and releasing a PV by mistake starts its reclaim, so a
/// miss is confirmed with the API server (as upstream does).
async fn find_claim(
    binder: &Binder,
    pv: &PersistentVolume,
    uid: &str,
) -> Result<Option<Arc<PersistentVolumeClaim>>, Error> {
    let key = matching::claim_ref_key(pv).unwrap_or_default();
    if let Some(claim) = binder.claims.get(&key)
        && claim.metadata.uid.as_deref() == Some(uid)
    {
        return Ok(Some(claim));
    }
    let phase = matching::volume_phase(pv);
    if phase == "Released" || phase == "Failed" {
        return Ok(None);
    }
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let namespace = claim_ref.and_then(|r| r.namespace.as_deref()).unwrap_or("");
    let name = claim_ref.and_then(|r| r.name.as_deref()).unwrap_or("");
    let api: Api<PersistentVolumeClaim> = Api::namespaced(binder.ctx.client.clone(), namespace);
    match api.get(name).await {
        Ok(claim) if claim.metadata.uid.as_deref() == Some(uid) => {
            binder.claims.upsert(key.clone(), claim);
            Ok(binder.claims.get(&key))
        }
        Ok(_) => Ok(None),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Marks the PV Released (once: a Failed PV stays Failed so the user sees what went wrong)
/// and applies its reclaim policy.
async fn release(binder: &Binder, pv: &Arc<PersistentVolume>) -> Result<(), Error> {
    let phase = matching::volume_phase(pv);
    let pv = if phase != "Released" && phase != "Failed" {
        tracing::info!(
            policy = pv
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref()),
            "volume released, applying its reclaim policy"
        );
        binder.update_volume_phase(pv, "Released").await?
    } else {
        pv.clone()
    };
    reclaim::reclaim_volume(&binder.ctx, &binder.reclaimer, pv).await
}

async fn volume_mode_mismatch(
    binder: &Binder,
    pv: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) {
    let pv_name = pv.metadata.name.as_deref().unwrap_or("");
    let claim_name = claim.metadata.name.as_deref().unwrap_or("");
    let volume_message = format!(
        "Cannot bind PersistentVolume to requested PersistentVolumeClaim {claim_name:?} due to incompatible volumeMode."
    );
    binder
        .ctx
        .event(
            &reference_to(pv),
            Severity::Warning,
            "VolumeMismatch",
            "Binding",
            volume_message,
        )
        .await;
    let claim_message = format!(
        "Cannot bind PersistentVolume {pv_name:?} to requested PersistentVolumeClaim due to incompatible volumeMode."
    );
    binder
        .report(claim, Severity::Warning, "VolumeMismatch", &claim_message)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::tests::{pv, pvc};
    use serde_json::json;

    fn bound_pv(extra: serde_json::Value) -> PersistentVolume {
        let mut volume =
            pv(json!({"spec": {"claimRef": {"name": "data", "namespace": "ns", "uid": "uid-1"}}}));
        let patch: PersistentVolume = serde_json::from_value(json!({"metadata": extra})).unwrap();
        volume.metadata.annotations = patch.metadata.annotations;
        volume
    }

    #[test]
    fn unclaimed_and_name_reserved_volumes_are_available() {
        assert_eq!(
            decide_volume(&pv(json!({})), None),
            VolumeDecision::Available
        );
        let reserved = pv(json!({"spec": {"claimRef": {"name": "data", "namespace": "ns"}}}));
        assert_eq!(decide_volume(&reserved, None), VolumeDecision::Available);
    }

    #[test]
    fn a_volume_whose_claim_is_gone_is_released() {
        assert_eq!(
            decide_volume(&bound_pv(json!({})), None),
            VolumeDecision::Released
        );
    }

    #[test]
    fn a_half_done_bind_waits_for_the_claim_sync() {
        let claim = pvc(json!({}));
        assert_eq!(
            decide_volume(&bound_pv(json!({})), Some(&claim)),
            VolumeDecision::WaitForClaimSync
        );
        let block = pvc(json!({"spec": {"volumeMode": "Block"}}));
        assert_eq!(
            decide_volume(&bound_pv(json!({})), Some(&block)),
            VolumeDecision::VolumeModeMismatch
        );
        let bound = pvc(json!({"spec": {"volumeName": "pv"}}));
        assert_eq!(
            decide_volume(&bound_pv(json!({})), Some(&bound)),
            VolumeDecision::Bound
        );
    }

    #[test]
    fn a_claim_bound_elsewhere_undoes_or_releases_the_volume() {
        let elsewhere = pvc(json!({"spec": {"volumeName": "other"}}));
        let by_controller = bound_pv(json!({"annotations": {ANN_BOUND_BY_CONTROLLER: "yes"}}));
        assert_eq!(
            decide_volume(&by_controller, Some(&elsewhere)),
            VolumeDecision::Unbind
        );
        let mut provisioned = bound_pv(json!({"annotations": {ANN_PROVISIONED_BY: "x.csi"}}));
        provisioned
            .spec
            .as_mut()
            .unwrap()
            .persistent_volume_reclaim_policy = Some("Delete".into());
        assert_eq!(
            decide_volume(&provisioned, Some(&elsewhere)),
            VolumeDecision::ReleaseProvisioned
        );
    }
}
