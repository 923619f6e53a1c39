//! The binder's writes: each is a pure "what the object should become" function (`None`
//! when nothing changes, so a settled object costs no write) and a method that writes it
//! conditionally on the resourceVersion read and stores the answer in the binder's cache.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use kube::Resource;
use kube::api::PostParams;
use volplane_api::wellknown::{ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER};

use super::Binder;
use crate::events::{Severity, reference_to};
use crate::matching;
use crate::pv_index::Upsert;
use crate::{Error, pv_binder::sync_claim::has_annotation};

/// Upstream's annotation carrying the capacity a claim had before an offline resize.
const ANN_PRE_RESIZE_CAPACITY: &str = "volume.alpha.kubernetes.io/pre-resize-capacity";

/// Upstream's `GetBindVolumeToClaim`: the PV with its claimRef pointing at the claim (uid
/// included) and `bound-by-controller` set unless the user had pre-bound it.
pub fn volume_bound_to_claim(
    pv: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> Option<PersistentVolume> {
    let prebound = matching::is_volume_bound_to_claim(pv, claim);
    let mut changed = pv.clone();
    let mut dirty = false;
    let current = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let same = current.is_some_and(|r| {
        r.name == claim.metadata.name
            && r.namespace == claim.metadata.namespace
            && r.uid == claim.metadata.uid
    });
    if !same {
        changed.spec.get_or_insert_default().claim_ref = Some(claim.object_ref(&()));
        dirty = true;
    }
    if !prebound && !has_annotation(&pv.metadata, ANN_BOUND_BY_CONTROLLER) {
        set_annotation(&mut changed.metadata, ANN_BOUND_BY_CONTROLLER, "yes");
        dirty = true;
    }
    dirty.then_some(changed)
}

/// The PV in `phase` with `message` (`None` when already in that phase).
pub fn volume_in_phase(
    pv: &PersistentVolume,
    phase: &str,
    message: Option<&str>,
) -> Option<PersistentVolume> {
    if matching::volume_phase(pv) == phase {
        return None;
    }
    let mut changed = pv.clone();
    let status = changed.status.get_or_insert_default();
    status.phase = Some(phase.to_string());
    status.message = message.filter(|m| !m.is_empty()).map(String::from);
    Some(changed)
}

/// Upstream's `bindClaimToVolume`: `volumeName`, `bound-by-controller` when the controller
/// chose the PV, and `bind-completed`.
pub fn claim_bound_to_volume(
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Option<PersistentVolumeClaim> {
    let name = pv.metadata.name.as_deref().unwrap_or("");
    let mut changed = claim.clone();
    let mut dirty = false;
    let current = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref());
    if current != Some(name) {
        changed.spec.get_or_insert_default().volume_name = Some(name.to_string());
        if !has_annotation(&claim.metadata, ANN_BOUND_BY_CONTROLLER) {
            set_annotation(&mut changed.metadata, ANN_BOUND_BY_CONTROLLER, "yes");
        }
        dirty = true;
    }
    if !has_annotation(&claim.metadata, ANN_BIND_COMPLETED) {
        set_annotation(&mut changed.metadata, ANN_BIND_COMPLETED, "yes");
        dirty = true;
    }
    dirty.then_some(changed)
}

/// Upstream's `updateClaimStatus`: the phase; with a PV, its access modes and — when the claim
/// is becoming Bound — its capacity; without one, neither.
pub fn claim_in_phase(
    claim: &PersistentVolumeClaim,
    phase: &str,
    pv: Option<&PersistentVolume>,
) -> Option<PersistentVolumeClaim> {
    let mut changed = claim.clone();
    let status = changed.status.get_or_insert_default();
    let becoming = status.phase.as_deref() != Some(phase);
    let mut dirty = becoming;
    status.phase = Some(phase.to_string());
    match pv {
        None => {
            dirty |= status.access_modes.take().is_some() | status.capacity.take().is_some();
        }
        Some(pv) => {
            let modes = pv.spec.as_ref().and_then(|s| s.access_modes.clone());
            if status.access_modes != modes {
                status.access_modes = modes;
                dirty = true;
            }
            if becoming {
                dirty |= set_bound_capacity(status, pv);
            }
        }
    }
    dirty.then_some(changed)
}

/// The capacity a claim reports once bound: the PV's, or its pre-resize capacity when the
/// PV still waits for a filesystem resize.
fn set_bound_capacity(
    status: &mut k8s_openapi::api::core::v1::PersistentVolumeClaimStatus,
    pv: &PersistentVolume,
) -> bool {
    let annotations = pv.metadata.annotations.as_ref();
    let capacity = match annotations.and_then(|a| a.get(ANN_PRE_RESIZE_CAPACITY)) {
        Some(pre) => k8s_openapi::apimachinery::pkg::api::resource::Quantity(pre.clone()),
        None => match pv
            .spec
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
        {
            Some(quantity) => quantity.clone(),
            None => return false,
        },
    };
    let current = status.capacity.as_ref().and_then(|c| c.get("storage"));
    if current == Some(&capacity) {
        return false;
    }
    status
        .capacity
        .get_or_insert_default()
        .insert("storage".into(), capacity);
    true
}

/// Upstream's `unbindVolume`: a PV the controller bound loses its claimRef (and the
/// annotation); one the user pre-bound keeps it without the uid, still reserved for that
/// claim name.
pub fn volume_unbound(pv: &PersistentVolume) -> PersistentVolume {
    let mut changed = pv.clone();
    if has_annotation(&pv.metadata, ANN_BOUND_BY_CONTROLLER) {
        changed.spec.get_or_insert_default().claim_ref = None;
        if let Some(annotations) = changed.metadata.annotations.as_mut() {
            annotations.remove(ANN_BOUND_BY_CONTROLLER);
        }
    } else if let Some(claim_ref) = changed.spec.as_mut().and_then(|s| s.claim_ref.as_mut()) {
        claim_ref.uid = None;
    }
    changed
}

fn set_annotation(meta: &mut kube::api::ObjectMeta, key: &str, value: &str) {
    meta.annotations
        .get_or_insert_default()
        .insert(key.to_string(), value.to_string());
}

fn name(meta: &kube::api::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

impl Binder {
    fn claim_api(&self, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
        let namespace = claim.metadata.namespace.as_deref().unwrap_or("default");
        Api::namespaced(self.ctx.client.clone(), namespace)
    }

    /// Writes the PV's spec and metadata; the cache gets the answer.
    pub(crate) async fn write_volume(
        &self,
        pv: PersistentVolume,
    ) -> Result<Arc<PersistentVolume>, Error> {
        let written = self
            .volume_api
            .replace(name(&pv.metadata), &PostParams::default(), &pv)
            .await?;
        Ok(self.remember_volume(written))
    }

    /// Writes the PV's status; the cache gets the answer.
    pub(crate) async fn write_volume_status(
        &self,
        pv: PersistentVolume,
    ) -> Result<Arc<PersistentVolume>, Error> {
        let written = self
            .volume_api
            .replace_status(name(&pv.metadata), &PostParams::default(), &pv)
            .await?;
        Ok(self.remember_volume(written))
    }

    fn remember_volume(&self, pv: PersistentVolume) -> Arc<PersistentVolume> {
        let name = name(&pv.metadata).to_string();
        let snapshot = pv.clone();
        if let Upsert::Stored { became_available } = self.volumes.upsert(pv) {
            self.wake_claims_for(&snapshot, became_available);
        }
        self.volumes.get(&name).expect("just stored")
    }

    /// Writes the claim's spec and metadata; the cache gets the answer.
    pub(crate) async fn write_claim(
        &self,
        claim: PersistentVolumeClaim,
    ) -> Result<Arc<PersistentVolumeClaim>, Error> {
        let written = self
            .claim_api(&claim)
            .replace(name(&claim.metadata), &PostParams::default(), &claim)
            .await?;
        Ok(self.remember_claim(written))
    }

    /// Writes the claim's status; the cache gets the answer.
    pub(crate) async fn write_claim_status(
        &self,
        claim: PersistentVolumeClaim,
    ) -> Result<Arc<PersistentVolumeClaim>, Error> {
        let written = self
            .claim_api(&claim)
            .replace_status(name(&claim.metadata), &PostParams::default(), &claim)
            .await?;
        Ok(self.remember_claim(written))
    }

    fn remember_claim(&self, claim: PersistentVolumeClaim) -> Arc<PersistentVolumeClaim> {
        let key = matching::claim_key(&claim);
        self.claims.upsert(key.clone(), claim);
        self.claims.get(&key).expect("just stored")
    }

    /// Upstream's `bind`: PV claimRef, PV phase, claim volumeName, claim phase — in this
    /// order, each skipped when already done, stopping at the first error (the next sync
    /// resumes from what was written).
    pub(crate) async fn bind(
        &self,
        pv: &Arc<PersistentVolume>,
        claim: &Arc<PersistentVolumeClaim>,
    ) -> Result<(), Error> {
        let mut pv = pv.clone();
        if let Some(changed) = volume_bound_to_claim(&pv, claim) {
            pv = self.write_volume(changed).await?;
        }
        if let Some(changed) = volume_in_phase(&pv, "Bound", None) {
            pv = self.write_volume_status(changed).await?;
        }
        let mut claim = claim.clone();
        if let Some(changed) = claim_bound_to_volume(&claim, &pv) {
            claim = self.write_claim(changed).await?;
        }
        if let Some(changed) = claim_in_phase(&claim, "Bound", Some(&pv)) {
            self.write_claim_status(changed).await?;
            tracing::info!(volume = name(&pv.metadata), "claim bound");
        }
        Ok(())
    }

    /// Sets the PV's phase (no event).
    pub(crate) async fn update_volume_phase(
        &self,
        pv: &Arc<PersistentVolume>,
        phase: &str,
    ) -> Result<Arc<PersistentVolume>, Error> {
        match volume_in_phase(pv, phase, None) {
            Some(changed) => {
                let written = self.write_volume_status(changed).await?;
                tracing::info!(phase, "volume entered phase");
                Ok(written)
            }
            None => Ok(pv.clone()),
        }
    }

    /// Sets the claim's phase and, when it changes, writes the event.
    pub(crate) async fn update_claim_phase_with_event(
        &self,
        claim: &Arc<PersistentVolumeClaim>,
        phase: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        if claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase) {
            return Ok(());
        }
        if let Some(changed) = claim_in_phase(claim, phase, None) {
            let written = self.write_claim_status(changed).await?;
            tracing::info!(phase, reason, "claim entered phase");
            let regarding = reference_to(written.as_ref());
            self.ctx
                .event(&regarding, Severity::Warning, reason, "Binding", message)
                .await;
        }
        Ok(())
    }

    /// Undoes a bind of the PV (see [`volume_unbound`]) and makes it Available.
    pub(crate) async fn unbind_volume(&self, pv: &Arc<PersistentVolume>) -> Result<(), Error> {
        let written = self.write_volume(volume_unbound(pv)).await?;
        self.update_volume_phase(&written, "Available").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::tests::{pv, pvc};
    use serde_json::json;

    #[test]
    fn binding_sets_claim_ref_and_annotations_once() {
        let claim = pvc(json!({}));
        let volume = pv(json!({}));
        let bound = volume_bound_to_claim(&volume, &claim).unwrap();
        let claim_ref = bound.spec.as_ref().unwrap().claim_ref.as_ref().unwrap();
        assert_eq!(claim_ref.uid.as_deref(), Some("uid-1"));
        assert!(has_annotation(&bound.metadata, ANN_BOUND_BY_CONTROLLER));
        assert!(volume_bound_to_claim(&bound, &claim).is_none());

        let claimed = claim_bound_to_volume(&claim, &bound).unwrap();
        assert_eq!(
            claimed.spec.as_ref().unwrap().volume_name.as_deref(),
            Some("pv")
        );
        assert!(has_annotation(&claimed.metadata, ANN_BIND_COMPLETED));
        assert!(claim_bound_to_volume(&claimed, &bound).is_none());

        let status = claim_in_phase(&claimed, "Bound", Some(&bound)).unwrap();
        let s = status.status.as_ref().unwrap();
        assert_eq!(s.capacity.as_ref().unwrap()["storage"].0, "1Gi");
        assert_eq!(
            s.access_modes.as_deref(),
            Some(&["ReadWriteOnce".to_string()][..])
        );
        assert!(claim_in_phase(&status, "Bound", Some(&bound)).is_none());
    }

    #[test]
    fn a_user_prebound_volume_is_not_marked_bound_by_controller() {
        let claim = pvc(json!({}));
        let volume = pv(json!({"spec": {"claimRef": {"name": "data", "namespace": "ns"}}}));
        let bound = volume_bound_to_claim(&volume, &claim).unwrap();
        assert!(!has_annotation(&bound.metadata, ANN_BOUND_BY_CONTROLLER));
        // Unbinding keeps the user's reservation, without the uid.
        let unbound = volume_unbound(&bound);
        let claim_ref = unbound.spec.as_ref().unwrap().claim_ref.as_ref().unwrap();
        assert_eq!(claim_ref.name.as_deref(), Some("data"));
        assert_eq!(claim_ref.uid, None);
    }

    #[test]
    fn unbinding_a_controller_bind_clears_the_claim_ref() {
        let volume = pv(
            json!({"metadata": {"annotations": {ANN_BOUND_BY_CONTROLLER: "yes"}},
            "spec": {"claimRef": {"name": "data", "namespace": "ns", "uid": "u"}}}),
        );
        let unbound = volume_unbound(&volume);
        assert!(unbound.spec.as_ref().unwrap().claim_ref.is_none());
        assert!(!has_annotation(&unbound.metadata, ANN_BOUND_BY_CONTROLLER));
    }
}
