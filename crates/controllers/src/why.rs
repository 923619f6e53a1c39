//! `volplane why <kind>/<name>`: why an object is in the state it is in, in words — a Pending
//! claim's nearest candidate PVs and the criterion each fails (the binder's own
//! [`matching::check`]), the provisioner's last error, or the wait for a pod to be scheduled;
//! why a PV is Released or Failed; which finalizer holds a deletion and who holds it.
//!
//! Everything is read through the API, as any client would: it works against a cluster whose
//! controller-manager runs elsewhere, and it never changes anything.

use std::fmt;

use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{StorageClass, VolumeAttachment};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use volplane_api::snapshot::VolumeSnapshot;
use volplane_api::wellknown::{
    ANN_SELECTED_NODE, FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION, NO_PROVISIONER,
};

use crate::Error;
use crate::matching::{self, Binding, NodeView};

/// What `why` explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `pvc/NAME` in a namespace.
    Claim {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// `pv/NAME`.
    Volume {
        /// Its name.
        name: String,
    },
    /// `volumesnapshot/NAME` (`vs/NAME`) in a namespace.
    Snapshot {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

impl Target {
    /// Parses `KIND/NAME` (kinds as kubectl spells them: `pvc`, `persistentvolumeclaim[s]`,
    /// `pv`, `persistentvolume[s]`, `vs`, `volumesnapshot[s]`).
    pub fn parse(text: &str, namespace: &str) -> Result<Target, Error> {
        let (kind, name) = text
            .split_once('/')
            .filter(|(k, n)| !k.is_empty() && !n.is_empty())
            .ok_or_else(|| Error::Invalid(format!("expected KIND/NAME, got {text:?}")))?;
        let (namespace, name) = (namespace.to_string(), name.to_string());
        match kind.to_ascii_lowercase().as_str() {
            "pvc" | "persistentvolumeclaim" | "persistentvolumeclaims" => {
                Ok(Target::Claim { namespace, name })
            }
            "pv" | "persistentvolume" | "persistentvolumes" => Ok(Target::Volume { name }),
            "vs" | "volumesnapshot" | "volumesnapshots" => Ok(Target::Snapshot { namespace, name }),
            other => Err(Error::Invalid(format!(
                "volplane why explains pvc, pv and volumesnapshot objects, not {other:?}"
            ))),
        }
    }
}

/// The answer: the object, its state in one line, and the reasons behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// `persistentvolumeclaim/ns/name`, `persistentvolume/name`, …
    pub subject: String,
    /// The state in one line, e.g. `Pending`.
    pub state: String,
    /// One line per reason, most important first.
    pub reasons: Vec<String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} is {}", self.subject, self.state)?;
        for reason in &self.reasons {
            writeln!(f, "  - {reason}")?;
        }
        Ok(())
    }
}

/// Explains `target`.
pub async fn explain(client: &Client, target: &Target) -> Result<Explanation, Error> {
    match target {
        Target::Claim { namespace, name } => explain_claim(client, namespace, name).await,
        Target::Volume { name } => explain_volume(client, name).await,
        Target::Snapshot { namespace, name } => explain_snapshot(client, namespace, name).await,
    }
}

async fn explain_claim(client: &Client, namespace: &str, name: &str) -> Result<Explanation, Error> {
    let claim = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .get(name)
        .await?;
    let phase = claim
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    let mut explanation = Explanation {
        subject: format!("persistentvolumeclaim/{namespace}/{name}"),
        state: phase.clone(),
        reasons: Vec::new(),
    };
    if claim.metadata.deletion_timestamp.is_some() {
        explanation.state = format!("{phase}, being deleted");
        explanation.reasons = claim_finalizers(client, &claim).await?;
        return Ok(explanation);
    }
    let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
    explanation.reasons = match (phase.as_str(), volume_name) {
        ("Bound", Some(volume)) => vec![format!("it is bound to PersistentVolume {volume}")],
        ("Lost", volume) => vec![format!(
            "its PersistentVolume {} is gone or bound to another claim; Lost is final: \
             recreate the PV with this claimRef, or delete the claim",
            volume.unwrap_or_default()
        )],
        (_, Some(volume)) => requested_volume(client, &claim, &volume).await?,
        _ => pending_claim(client, &claim).await?,
    };
    Ok(explanation)
}

/// A claim that names its PV in `spec.volumeName` binds only that PV.
async fn requested_volume(
    client: &Client,
    claim: &PersistentVolumeClaim,
    volume: &str,
) -> Result<Vec<String>, Error> {
    let Some(pv) = Api::<PersistentVolume>::all(client.clone())
        .get_opt(volume)
        .await?
    else {
        return Ok(vec![format!(
            "it asks for PersistentVolume {volume} (spec.volumeName), which does not exist"
        )]);
    };
    Ok(vec![match matching::check_requested_volume(claim, &pv) {
        Ok(()) => format!(
            "it asks for PersistentVolume {volume} (spec.volumeName), which fits: the binder \
             completes the binding on its next pass"
        ),
        Err(mismatch) => format!(
            "it asks for PersistentVolume {volume} (spec.volumeName), which does not fit: \
             {mismatch}"
        ),
    }])
}

async fn pending_claim(
    client: &Client,
    claim: &PersistentVolumeClaim,
) -> Result<Vec<String>, Error> {
    let class_name = matching::claim_class(claim).to_string();
    let class = if class_name.is_empty() {
        None
    } else {
        Api::<StorageClass>::all(client.clone())
            .get_opt(&class_name)
            .await?
    };
    let mut reasons = Vec::new();
    let delayed = class
        .as_ref()
        .is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
    let selected = claim.annotations().get(ANN_SELECTED_NODE).cloned();
    if delayed && selected.is_none() {
        reasons.push(format!(
            "waiting for a pod to be scheduled: StorageClass {class_name} binds with \
             WaitForFirstConsumer, so the claim binds or is provisioned once a pod that uses it \
             is scheduled to a node ({ANN_SELECTED_NODE})"
        ));
        return Ok(reasons);
    }
    if !class_name.is_empty() && class.is_none() {
        reasons.push(format!("its StorageClass {class_name:?} does not exist"));
    }
    let node = selected.as_deref().map(NodeView::hostname_only);
    let binding = if delayed {
        Binding::WaitForFirstConsumer {
            selected_node: node.as_ref(),
        }
    } else {
        Binding::Immediate
    };
    let volumes = Api::<PersistentVolume>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let candidates = matching::nearest_candidates(claim, &volumes, binding, 5);
    if let Some(fit) = candidates.iter().find(|c| c.mismatch.is_none()) {
        reasons.push(format!(
            "PersistentVolume {} ({}) fits: the binder binds it on its next pass",
            fit.volume, fit.capacity
        ));
        return Ok(reasons);
    }
    if let Some(class) = &class
        && class.provisioner != NO_PROVISIONER
    {
        reasons.push(provisioning_state(client, claim, &class.provisioner).await?);
    } else if volumes.is_empty() {
        reasons.push("no PersistentVolume exists, and nothing provisions one for it".into());
    } else {
        reasons.push(format!(
            "no PersistentVolume fits, and {} provisions none: create one that fits",
            if class_name.is_empty() {
                "no StorageClass is set, so nothing".to_string()
            } else {
                format!("StorageClass {class_name} ({NO_PROVISIONER})")
            }
        ));
    }
    for candidate in candidates {
        if let Some(mismatch) = candidate.mismatch {
            reasons.push(format!(
                "nearest PersistentVolume {} ({}): {mismatch}",
                candidate.volume, candidate.capacity
            ));
        }
    }
    Ok(reasons)
}

/// What the provisioner last said about the claim.
async fn provisioning_state(
    client: &Client,
    claim: &PersistentVolumeClaim,
    provisioner: &str,
) -> Result<String, Error> {
    let events = events_of(client, claim.namespace().as_deref(), claim.uid().as_deref()).await?;
    let failed = events
        .iter()
        .rev()
        .find(|e| e.reason.as_deref() == Some("ProvisioningFailed"));
    Ok(match failed {
        Some(event) => format!(
            "no PersistentVolume fits and provisioning by {provisioner} failed: {}",
            event.message.as_deref().unwrap_or("(no message)")
        ),
        None => format!(
            "no PersistentVolume fits; waiting for {provisioner} to provision a volume \
             (no error reported yet; if this lasts, check that the driver is registered with \
             the controller-manager)"
        ),
    })
}

/// The core/v1 Events about the object with `uid`, oldest first.
async fn events_of(
    client: &Client,
    namespace: Option<&str>,
    uid: Option<&str>,
) -> Result<Vec<Event>, Error> {
    let Some(uid) = uid else {
        return Ok(Vec::new());
    };
    let api: Api<Event> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::namespaced(client.clone(), "default"),
    };
    let mut events = api
        .list(&ListParams::default().fields(&format!("involvedObject.uid={uid}")))
        .await?
        .items;
    events.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
    });
    Ok(events)
}

async fn claim_finalizers(
    client: &Client,
    claim: &PersistentVolumeClaim,
) -> Result<Vec<String>, Error> {
    let mut reasons = Vec::new();
    for finalizer in claim.finalizers() {
        reasons.push(if finalizer == FINALIZER_PVC_PROTECTION {
            let users = pods_using(client, claim).await?;
            if users.is_empty() {
                format!(
                    "finalizer {finalizer}: no pod uses the claim any more; the protection \
                     controller removes it on its next pass"
                )
            } else {
                format!(
                    "finalizer {finalizer} is held by pod(s) using the claim: {} (it goes \
                     when they are deleted or finish)",
                    users.join(", ")
                )
            }
        } else {
            format!("finalizer {finalizer} is still set (removed by whoever added it)")
        });
    }
    if reasons.is_empty() {
        reasons.push("no finalizer is left: the claim goes at once".into());
    }
    Ok(reasons)
}

/// Non-terminated pods in the claim's namespace that use it.
async fn pods_using(client: &Client, claim: &PersistentVolumeClaim) -> Result<Vec<String>, Error> {
    let namespace = claim.namespace().unwrap_or_default();
    let name = claim.name_any();
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await?
        .items;
    Ok(pods
        .iter()
        .filter(|pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .filter(|pod| {
            let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
            volumes.is_some_and(|volumes| {
                volumes.iter().any(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .is_some_and(|c| c.claim_name == name)
                        || (v.ephemeral.is_some()
                            && format!("{}-{}", pod.name_any(), v.name) == name)
                })
            })
        })
        .map(|pod| format!("{namespace}/{}", pod.name_any()))
        .collect())
}

async fn explain_volume(client: &Client, name: &str) -> Result<Explanation, Error> {
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(name)
        .await?;
    let status = pv.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let spec = pv.spec.clone().unwrap_or_default();
    let claim = spec
        .claim_ref
        .as_ref()
        .map(|r| {
            format!(
                "{}/{}",
                r.namespace.as_deref().unwrap_or(""),
                r.name.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    let policy = spec
        .persistent_volume_reclaim_policy
        .clone()
        .unwrap_or_else(|| "Retain".into());
    let mut explanation = Explanation {
        subject: format!("persistentvolume/{name}"),
        state: phase.clone(),
        reasons: Vec::new(),
    };
    if pv.metadata.deletion_timestamp.is_some() {
        explanation.state = format!("{phase}, being deleted");
        explanation.reasons = volume_finalizers(client, &pv, &phase, &claim).await?;
        return Ok(explanation);
    }
    explanation.reasons = match phase.as_str() {
        "Bound" => vec![format!("it is bound to claim {claim}")],
        "Available" if claim != "/" && !claim.is_empty() => vec![format!(
            "it is reserved for claim {claim} (spec.claimRef) and binds when that claim exists"
        )],
        "Available" => vec!["no claim is bound to it; any claim it fits can bind it".into()],
        "Released" => released(client, &pv, &claim, &policy).await?,
        "Failed" => vec![format!(
            "reclaim policy {policy} failed: {}",
            status
                .message
                .clone()
                .or(status.reason.clone())
                .unwrap_or_else(|| "(no message)".into())
        )],
        other => vec![format!("phase {other}")],
    };
    Ok(explanation)
}

async fn released(
    client: &Client,
    pv: &PersistentVolume,
    claim: &str,
    policy: &str,
) -> Result<Vec<String>, Error> {
    let mut reasons = vec![format!("its claim {claim} was deleted")];
    match policy {
        "Retain" => reasons.push(
            "reclaim policy Retain keeps the volume and its data: delete the PV when done, or \
             remove spec.claimRef to make it Available again"
                .into(),
        ),
        "Delete" => {
            reasons.push("reclaim policy Delete: the volume is deleted, then the PV".into());
            reasons.extend(deletion_blockers(client, pv).await?);
        }
        other => reasons.push(format!(
            "reclaim policy {other}: the volume is being reclaimed"
        )),
    }
    Ok(reasons)
}

/// What keeps a Released PV's volume from being deleted: attachments, and the last error.
async fn deletion_blockers(client: &Client, pv: &PersistentVolume) -> Result<Vec<String>, Error> {
    let name = pv.name_any();
    let mut reasons = Vec::new();
    let attachments = Api::<VolumeAttachment>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for attachment in attachments
        .iter()
        .filter(|a| a.spec.source.persistent_volume_name.as_deref() == Some(name.as_str()))
    {
        reasons.push(format!(
            "it is still attached to node {} (VolumeAttachment {}): it is not deleted while \
             in use",
            attachment.spec.node_name,
            attachment.name_any()
        ));
    }
    let events = events_of(client, None, pv.uid().as_deref()).await?;
    if let Some(event) = events
        .iter()
        .rev()
        .find(|e| e.reason.as_deref() == Some("VolumeFailedDelete"))
    {
        reasons.push(format!(
            "the last deletion attempt failed: {}",
            event.message.as_deref().unwrap_or("(no message)")
        ));
    }
    Ok(reasons)
}

async fn volume_finalizers(
    client: &Client,
    pv: &PersistentVolume,
    phase: &str,
    claim: &str,
) -> Result<Vec<String>, Error> {
    let mut reasons = Vec::new();
    for finalizer in pv.finalizers() {
        if finalizer == FINALIZER_PV_PROTECTION {
            reasons.push(if phase == "Bound" {
                format!(
                    "finalizer {finalizer} is held while the volume is bound to claim {claim}: \
                     delete the claim first"
                )
            } else {
                format!(
                    "finalizer {finalizer}: the volume is no longer bound; the protection \
                     controller removes it on its next pass"
                )
            });
        } else if finalizer.starts_with("external-provisioner.volume.kubernetes.io") {
            let driver = pv
                .spec
                .as_ref()
                .and_then(|s| s.csi.as_ref())
                .map(|c| c.driver.clone())
                .unwrap_or_default();
            reasons.push(format!(
                "finalizer {finalizer} is held until the provisioner {driver} has deleted the \
                 volume"
            ));
            reasons.extend(deletion_blockers(client, pv).await?);
        } else {
            reasons.push(format!(
                "finalizer {finalizer} is still set (removed by whoever added it)"
            ));
        }
    }
    if reasons.is_empty() {
        reasons.push("no finalizer is left: the volume goes at once".into());
    }
    Ok(reasons)
}

async fn explain_snapshot(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Explanation, Error> {
    let snapshot = Api::<VolumeSnapshot>::namespaced(client.clone(), namespace)
        .get(name)
        .await?;
    let status = snapshot.status.clone().unwrap_or_default();
    let ready = status.ready_to_use == Some(true);
    let mut explanation = Explanation {
        subject: format!("volumesnapshot/{namespace}/{name}"),
        state: if ready { "ReadyToUse" } else { "not ready" }.into(),
        reasons: Vec::new(),
    };
    if snapshot.metadata.deletion_timestamp.is_some() {
        explanation.state.push_str(", being deleted");
        for finalizer in snapshot.finalizers() {
            explanation.reasons.push(format!(
                "finalizer {finalizer} is still set (the snapshot controller removes it once \
                 no claim is being restored from the snapshot and its content is handled)"
            ));
        }
        return Ok(explanation);
    }
    if let Some(error) = status.error.as_ref().and_then(|e| e.message.clone()) {
        explanation
            .reasons
            .push(format!("the last attempt failed: {error}"));
    }
    explanation
        .reasons
        .push(match &status.bound_volume_snapshot_content_name {
            Some(content) if ready => format!("its content {content} is ready to restore from"),
            Some(content) => format!("waiting for the driver to cut snapshot content {content}"),
            None => "no VolumeSnapshotContent is bound yet".into(),
        });
    Ok(explanation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_parsed_as_kubectl_spells_them() {
        assert_eq!(
            Target::parse("pvc/data", "ns").unwrap(),
            Target::Claim {
                namespace: "ns".into(),
                name: "data".into()
            }
        );
        assert_eq!(
            Target::parse("PersistentVolume/pv-1", "ns").unwrap(),
            Target::Volume {
                name: "pv-1".into()
            }
        );
        assert!(matches!(
            Target::parse("vs/s", "ns").unwrap(),
            Target::Snapshot { .. }
        ));
        assert!(Target::parse("pod/x", "ns").is_err());
        assert!(Target::parse("pvc", "ns").is_err());
        assert!(Target::parse("pvc/", "ns").is_err());
    }

    #[test]
    fn explanations_print_the_state_then_each_reason() {
        let explanation = Explanation {
            subject: "persistentvolumeclaim/ns/c".into(),
            state: "Pending".into(),
            reasons: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            explanation.to_string(),
            "persistentvolumeclaim/ns/c is Pending\n  - a\n  - b\n"
        );
    }
}
