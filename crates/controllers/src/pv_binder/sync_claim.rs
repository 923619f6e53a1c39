//! Claim sync (upstream's `syncClaim`, `syncUnboundClaim`, `syncBoundClaim`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;
use volplane_api::wellknown::{
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
};

use super::{Binder, is_not_found};
use crate::events::{Severity, reference_to};
use crate::matching::{self, Binding, Mismatch, NodeView};
use crate::{Error, default_class};

/// How soon a claim whose requested PV another worker holds looks again.
const RESERVED_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether `meta` has the annotation `key` (any value, as upstream's `HasAnnotation`).
pub(crate) fn has_annotation(meta: &ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

/// Whether the claim went through binding once (`pv.kubernetes.io/bind-completed`).
pub(crate) fn is_bind_completed(claim: &PersistentVolumeClaim) -> bool {
    has_annotation(&claim.metadata, ANN_BIND_COMPLETED)
}

fn volume_name(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

/// What an unbound claim that found no PV does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoMatch {
    /// It has no class and a default exists: assign it (and sync again).
    AssignDefaultClass(String),
    /// Its class is WaitForFirstConsumer and no node was selected yet.
    WaitForFirstConsumer,
    /// Its class does not exist.
    ClassNotFound(String),
    /// Its class names an in-tree plugin volplane does not have.
    NoPlugin(String),
    /// Its class names an external provisioner: hand the claim over to it.
    External(String),
    /// No class at all, nothing to provision with.
    NoClass,
}

/// Upstream's order once `findBestMatchForClaim` found nothing: default class, delayed
/// binding, provisioning, else "no storage class".
pub(crate) fn decide_no_match(
    claim: &PersistentVolumeClaim,
    delayed_without_node: bool,
    class: Option<&StorageClass>,
    default_class: Option<&str>,
) -> NoMatch {
    if !matching::claim_has_class(claim)
        && let Some(default) = default_class
    {
        return NoMatch::AssignDefaultClass(default.to_string());
    }
    let class_name = matching::claim_class(claim);
    if delayed_without_node {
        NoMatch::WaitForFirstConsumer
    } else if class_name.is_empty() {
        NoMatch::NoClass
    } else {
        match class {
            None => NoMatch::ClassNotFound(class_name.to_string()),
            Some(class) if class.provisioner.starts_with("kubernetes.io/") => {
                NoMatch::NoPlugin(class.provisioner.clone())
            }
            Some(class) => NoMatch::External(class.provisioner.clone()),
        }
    }
}

/// What a claim naming a PV in `spec.volumeName` does.
#[derive(Debug)]
pub(crate) enum Requested {
    /// The PV does not exist (yet).
    Missing,
    /// Bind it (unclaimed and fitting, or already claimed by this claim).
    Bind,
    /// Unclaimed but it does not fit.
    Mismatch(Mismatch),
    /// Claimed by another claim.
    ClaimedByOther {
        /// This claim's volumeName was set by the controller: should never happen.
        by_controller: bool,
    },
}

pub(crate) fn decide_requested(
    claim: &PersistentVolumeClaim,
    pv: Option<&PersistentVolume>,
) -> Requested {
    let Some(pv) = pv else {
        return Requested::Missing;
    };
    let claimed = pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_some());
    if !claimed {
        return match matching::check_requested_volume(claim, pv) {
            Ok(()) => Requested::Bind,
            Err(mismatch) => Requested::Mismatch(mismatch),
        };
    }
    if matching::is_volume_bound_to_claim(pv, claim) {
        Requested::Bind
    } else {
        Requested::ClaimedByOther {
            by_controller: has_annotation(&claim.metadata, ANN_BOUND_BY_CONTROLLER),
        }
    }
}

/// What a claim that was bound once does (upstream's `syncBoundClaim`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BoundClaim {
    /// `volumeName` was cleared.
    LostReference,
    /// The PV is gone.
    LostVolume,
    /// The PV is (or should be) this claim's: make both sides say so.
    Bind,
    /// The PV is bound to another claim.
    Misbound,
}

pub(crate) fn decide_bound(
    claim: &PersistentVolumeClaim,
    pv: Option<&PersistentVolume>,
) -> BoundClaim {
    if volume_name(claim).is_empty() {
        return BoundClaim::LostReference;
    }
    let Some(pv) = pv else {
        return BoundClaim::LostVolume;
    };
    match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        None => BoundClaim::Bind,
        Some(r) if r.uid.is_some() && r.uid == claim.metadata.uid => BoundClaim::Bind,
        Some(_) => BoundClaim::Misbound,
    }
}

/// Syncs the claim `key` (`namespace/name`).
pub(crate) async fn sync_claim(binder: &Arc<Binder>, key: &str) -> Result<(), Error> {
    let Some(claim) = binder.claims.get(key) else {
        return Ok(());
    };
    let span = tracing::Span::current();
    span.record("uid", claim.metadata.uid.as_deref().unwrap_or(""));
    span.record(
        "resource_version",
        claim.metadata.resource_version.as_deref().unwrap_or(""),
    );
    if is_bind_completed(&claim) {
        sync_bound_claim(binder, claim).await
    } else if volume_name(&claim).is_empty() {
        sync_unbound_claim(binder, claim).await
    } else {
        sync_requested_volume(binder, claim).await
    }
}

async fn sync_unbound_claim(
    binder: &Arc<Binder>,
    claim: Arc<PersistentVolumeClaim>,
) -> Result<(), Error> {
    let class = binder.class(matching::claim_class(&claim));
    let delayed = class
        .as_ref()
        .is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
    let node = delayed.then(|| selected_node(binder, &claim)).flatten();
    let binding = if delayed {
        Binding::WaitForFirstConsumer {
            selected_node: node.as_ref(),
        }
    } else {
        Binding::Immediate
    };
    // Registered as waiting before looking, so a PV that becomes Available meanwhile wakes
    // the claim instead of slipping between the look and the registration.
    binder
        .waiting
        .lock()
        .expect("waiting lock")
        .wait_for_class(&claim);
    if let Some(reservation) = binder.volumes.find_and_reserve(&claim, binding) {
        binder
            .waiting
            .lock()
            .expect("waiting lock")
            .forget(&matching::claim_key(&claim));
        let volume = reservation.volume().clone();
        // The reservation is held across the writes and dropped after: by then the PV in
        // the index has its claimRef, or the bind failed and another claim may have it.
        let result = binder.bind(&volume, &claim).await;
        drop(reservation);
        return result;
    }
    let default = default_class::default_class(binder.classes.state().iter().map(|c| c.as_ref()))
        .and_then(|c| c.metadata.name.clone());
    let decision = decide_no_match(
        &claim,
        delayed && node.is_none(),
        class.as_deref(),
        default.as_deref(),
    );
    act_on_no_match(binder, &claim, decision).await
}

/// The selected node of a delayed-binding claim: the Node object's labels, or only its
/// hostname when the Node is not (yet) known.
fn selected_node(binder: &Binder, claim: &PersistentVolumeClaim) -> Option<NodeView> {
    let name = claim
        .metadata
        .annotations
        .as_ref()?
        .get(ANN_SELECTED_NODE)?;
    Some(match binder.nodes.get(&ObjectRef::new(name)) {
        Some(node) => NodeView::from_node(&node),
        None => NodeView::hostname_only(name),
    })
}

async fn act_on_no_match(
    binder: &Arc<Binder>,
    claim: &Arc<PersistentVolumeClaim>,
    decision: NoMatch,
) -> Result<(), Error> {
    match decision {
        NoMatch::AssignDefaultClass(class) => {
            let updated = default_class::with_class(claim, &class);
            binder.write_claim(updated).await?;
            tracing::info!(class, "assigned the default StorageClass");
            return Ok(());
        }
        NoMatch::WaitForFirstConsumer => {
            let message = "waiting for first consumer to be created before binding";
            binder
                .report(claim, Severity::Normal, "WaitForFirstConsumer", message)
                .await;
        }
        NoMatch::ClassNotFound(class) => {
            let message = format!("storageclass.storage.k8s.io {class:?} not found");
            binder
                .report(claim, Severity::Warning, "ProvisioningFailed", &message)
                .await;
        }
        NoMatch::NoPlugin(provisioner) => {
            let message = format!("no volume plugin matched name: {provisioner}");
            binder
                .report_with_nearest(claim, Severity::Warning, "ProvisioningFailed", &message)
                .await;
        }
        NoMatch::External(provisioner) => hand_to_provisioner(binder, claim, &provisioner).await?,
        NoMatch::NoClass => {
            let message =
                "no persistent volumes available for this claim and no storage class is set";
            binder
                .report_with_nearest(claim, Severity::Normal, "FailedBinding", message)
                .await;
        }
    }
    set_pending(binder, claim).await
}

/// Upstream's `provisionClaimOperationExternal`: annotate the claim with the provisioner
/// (both keys) so that provisioner takes it, and say so.
async fn hand_to_provisioner(
    binder: &Arc<Binder>,
    claim: &Arc<PersistentVolumeClaim>,
    provisioner: &str,
) -> Result<(), Error> {
    let annotations = claim.metadata.annotations.as_ref();
    let current = annotations.and_then(|a| a.get(ANN_STORAGE_PROVISIONER));
    let claim = if current.map(String::as_str) != Some(provisioner) {
        let mut changed = claim.as_ref().clone();
        let annotations = changed.metadata.annotations.get_or_insert_default();
        annotations.insert(ANN_BETA_STORAGE_PROVISIONER.into(), provisioner.into());
        annotations.insert(ANN_STORAGE_PROVISIONER.into(), provisioner.into());
        binder.write_claim(changed).await?
    } else {
        claim.clone()
    };
    let message = format!(
        "Waiting for a volume to be created either by the external provisioner '{provisioner}' \
         or manually by the system administrator. If volume creation is delayed, please verify \
         that the provisioner is running and correctly registered."
    );
    binder
        .report(&claim, Severity::Normal, "ExternalProvisioning", &message)
        .await;
    Ok(())
}

async fn set_pending(binder: &Binder, claim: &Arc<PersistentVolumeClaim>) -> Result<(), Error> {
    let Some(claim) = binder.claims.get(&matching::claim_key(claim)) else {
        return Ok(());
    };
    if let Some(changed) = super::writes::claim_in_phase(&claim, "Pending", None) {
        binder.write_claim_status(changed).await?;
    }
    Ok(())
}

async fn sync_requested_volume(
    binder: &Arc<Binder>,
    claim: Arc<PersistentVolumeClaim>,
) -> Result<(), Error> {
    let name = volume_name(&claim).to_string();
    let key = matching::claim_key(&claim);
    // Registered before looking, as in the unbound case; forgotten unless the PV is missing.
    binder
        .waiting
        .lock()
        .expect("waiting lock")
        .wait_for_volume(&key, &name);
    let pv = binder.volumes.get(&name);
    let decision = decide_requested(&claim, pv.as_deref());
    if !matches!(decision, Requested::Missing) {
        binder.waiting.lock().expect("waiting lock").forget(&key);
    }
    match decision {
        Requested::Missing => set_pending(binder, &claim).await,
        Requested::Bind => {
            let Some(reservation) = binder.volumes.reserve(&name, &key) else {
                // Another worker is binding it to another claim: look again once it is done.
                binder.claim_queue.add_after(key, RESERVED_RETRY);
                return Ok(());
            };
            let volume = reservation.volume().clone();
            let result = binder.bind(&volume, &claim).await;
            drop(reservation);
            result
        }
        Requested::Mismatch(mismatch) => {
            let message = format!(
                "Cannot bind to requested volume {name:?}: {}",
                mismatch.upstream_reason(&name)
            );
            binder
                .report(&claim, Severity::Warning, "VolumeMismatch", &message)
                .await;
            set_pending(binder, &claim).await
        }
        Requested::ClaimedByOther { by_controller } => {
            let message = format!("volume {name:?} already bound to a different claim.");
            binder
                .report(&claim, Severity::Warning, "FailedBinding", &message)
                .await;
            if by_controller {
                return Err(Error::Invalid(format!(
                    "invalid binding of claim {key:?} to volume {name:?}: volume already claimed by another claim"
                )));
            }
            set_pending(binder, &claim).await
        }
    }
}

async fn sync_bound_claim(
    binder: &Arc<Binder>,
    claim: Arc<PersistentVolumeClaim>,
) -> Result<(), Error> {
    let name = volume_name(&claim).to_string();
    let mut pv = binder.volumes.get(&name);
    if pv.is_none() && !name.is_empty() {
        // Lost is terminal: ask the API server before believing the cache.
        pv = fetch_volume(binder, &name).await?;
    }
    match decide_bound(&claim, pv.as_deref()) {
        BoundClaim::LostReference => {
            let message =
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!";
            binder
                .update_claim_phase_with_event(&claim, "Lost", "ClaimLost", message)
                .await
        }
        BoundClaim::LostVolume => {
            let message = "Bound claim has lost its PersistentVolume. Data on the volume is lost!";
            binder
                .update_claim_phase_with_event(&claim, "Lost", "ClaimLost", message)
                .await
        }
        BoundClaim::Bind => {
            let pv = pv.expect("decided with a volume");
            binder.bind(&pv, &claim).await
        }
        BoundClaim::Misbound => {
            let message = "Two claims are bound to the same volume, this one is bound incorrectly";
            binder
                .update_claim_phase_with_event(&claim, "Lost", "ClaimMisbound", message)
                .await
        }
    }
}

async fn fetch_volume(binder: &Binder, name: &str) -> Result<Option<Arc<PersistentVolume>>, Error> {
    let api: &Api<PersistentVolume> = &binder.volume_api;
    match api.get(name).await {
        Ok(pv) => {
            binder.volumes.upsert(pv);
            Ok(binder.volumes.get(name))
        }
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

impl Binder {
    pub(crate) fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        if name.is_empty() {
            return None;
        }
        self.classes.get(&ObjectRef::new(name))
    }

    /// Writes an event about the claim unless the last one reported for it said the same.
    pub(crate) async fn report(
        &self,
        claim: &PersistentVolumeClaim,
        severity: Severity,
        reason: &str,
        message: &str,
    ) {
        if self.first_report(claim, reason, message) {
            self.emit(claim, severity, reason, message).await;
        }
    }

    /// [`Self::report`] for a claim no PV fits, the message followed by the nearest PV and the
    /// criterion it fails (what `volplane why` says first), so `kubectl describe` shows why; a
    /// new event when the nearest PV or its reason changes. Finding it looks at every PV, as
    /// upstream's matching does on every sync, but only for claims nothing fits.
    pub(crate) async fn report_with_nearest(
        &self,
        claim: &PersistentVolumeClaim,
        severity: Severity,
        reason: &str,
        message: &str,
    ) {
        let volumes = self.volumes.volumes();
        let nearest = matching::nearest_candidates(
            claim,
            volumes.iter().map(|pv| pv.as_ref()),
            Binding::Immediate,
            1,
        );
        let message = match nearest.first() {
            Some(matching::Candidate {
                volume,
                capacity,
                mismatch: Some(mismatch),
            }) => format!("{message}; nearest PersistentVolume {volume} ({capacity}): {mismatch}"),
            _ => message.to_string(),
        };
        self.report(claim, severity, reason, &message).await;
    }

    /// Records `(reason, message)` as the claim's last report; false if it already was.
    fn first_report(&self, claim: &PersistentVolumeClaim, reason: &str, message: &str) -> bool {
        let uid = claim.metadata.uid.clone().unwrap_or_default();
        let entry = (reason.to_string(), message.to_string());
        let mut reported = self.reported.lock().expect("reported lock");
        if reported.get(&uid) == Some(&entry) {
            return false;
        }
        reported.insert(uid, entry);
        true
    }

    async fn emit(
        &self,
        claim: &PersistentVolumeClaim,
        severity: Severity,
        reason: &str,
        message: &str,
    ) {
        let regarding = reference_to(claim);
        self.ctx
            .event(&regarding, severity, reason, "Binding", message)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::tests::{pv, pvc};
    use serde_json::json;

    fn class(provisioner: &str) -> StorageClass {
        serde_json::from_value(json!({"metadata": {"name": "fast"}, "provisioner": provisioner}))
            .unwrap()
    }

    #[test]
    fn no_match_follows_upstreams_order() {
        let classless = pvc(json!({"spec": {"storageClassName": null}}));
        assert_eq!(
            decide_no_match(&classless, false, None, Some("std")),
            NoMatch::AssignDefaultClass("std".into())
        );
        assert_eq!(
            decide_no_match(&classless, false, None, None),
            NoMatch::NoClass
        );
        // "" is a class: never given the default.
        let empty = pvc(json!({"spec": {"storageClassName": ""}}));
        assert_eq!(
            decide_no_match(&empty, false, None, Some("std")),
            NoMatch::NoClass
        );
        let claim = pvc(json!({}));
        assert_eq!(
            decide_no_match(&claim, false, None, None),
            NoMatch::ClassNotFound("fast".into())
        );
        assert_eq!(
            decide_no_match(&claim, true, Some(&class("x.csi")), None),
            NoMatch::WaitForFirstConsumer
        );
        assert_eq!(
            decide_no_match(&claim, false, Some(&class("x.csi")), None),
            NoMatch::External("x.csi".into())
        );
        assert_eq!(
            decide_no_match(
                &claim,
                false,
                Some(&class("kubernetes.io/no-provisioner")),
                None
            ),
            NoMatch::NoPlugin("kubernetes.io/no-provisioner".into())
        );
    }

    #[test]
    fn a_requested_volume_is_checked_or_refused() {
        let claim = pvc(json!({"spec": {"volumeName": "pv"}}));
        assert!(matches!(decide_requested(&claim, None), Requested::Missing));
        assert!(matches!(
            decide_requested(&claim, Some(&pv(json!({})))),
            Requested::Bind
        ));
        let small = pv(json!({"spec": {"capacity": {"storage": "1Mi"}}}));
        assert!(matches!(
            decide_requested(&claim, Some(&small)),
            Requested::Mismatch(Mismatch::Capacity { .. })
        ));
        let other = pv(json!({"spec": {"claimRef": {"name": "x", "namespace": "ns"}}}));
        assert!(matches!(
            decide_requested(&claim, Some(&other)),
            Requested::ClaimedByOther {
                by_controller: false
            }
        ));
    }

    #[test]
    fn bound_claims_are_lost_only_when_their_volume_is() {
        let claim = pvc(json!({"spec": {"volumeName": "pv"}}));
        assert_eq!(decide_bound(&claim, None), BoundClaim::LostVolume);
        let unnamed = pvc(json!({}));
        assert_eq!(decide_bound(&unnamed, None), BoundClaim::LostReference);
        assert_eq!(decide_bound(&claim, Some(&pv(json!({})))), BoundClaim::Bind);
        let mine =
            pv(json!({"spec": {"claimRef": {"name": "data", "namespace": "ns", "uid": "uid-1"}}}));
        assert_eq!(decide_bound(&claim, Some(&mine)), BoundClaim::Bind);
        let other =
            pv(json!({"spec": {"claimRef": {"name": "data", "namespace": "ns", "uid": "uid-9"}}}));
        assert_eq!(decide_bound(&claim, Some(&other)), BoundClaim::Misbound);
    }
}
