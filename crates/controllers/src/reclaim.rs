//! Reclaim of Released PersistentVolumes, as upstream's PV controller does it
//! (`reclaimVolume`, `recycleVolumeOperation`, `deleteVolumeOperation`), called by the binder's
//! volume sync for every Released (or Failed) PV:
//!
//! - **Retain**: nothing; the PV stays Released until an administrator acts.
//! - **Recycle**: the volume's contents are scrubbed (hostPath and local volumes reachable at
//!   their path on this machine: everything inside the directory is deleted, the directory
//!   kept), then the PV is made Available again with its claimRef cleared. Volumes no
//!   recycler handles (CSI, NFS, …) become Failed with `VolumeFailedRecycle`.
//! - **Delete**: PVs provisioned by an external provisioner (a CSI driver, a local static
//!   provisioner: `pv.kubernetes.io/provisioned-by` not under `kubernetes.io/`, or
//!   `spec.csi`) are left to that provisioner, as upstream. hostPath PVs get upstream's
//!   testing deleter (only under `/tmp/`); other in-tree volumes have no deleter and become
//!   Failed with `VolumeFailedDelete`.
//!
//! Recycle and delete run in their own task (one per PV at a time), re-reading the PV and its
//! claim first, so a worker is never blocked on I/O and a PV re-bound meanwhile is left alone.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use volplane_api::wellknown::ANN_PROVISIONED_BY;

use crate::events::{Severity, reference_to};
use crate::pv_binder::is_not_found;
use crate::{Context, Error};

/// Upstream's annotation on PVs handed to a CSI driver by migration: the PV controller
/// stands down.
const ANN_MIGRATED_TO: &str = "pv.kubernetes.io/migrated-to";

/// What a Released PV's reclaim policy asks for, given its volume source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReclaimAction {
    /// Keep it Released.
    Retain,
    /// Scrub the directory, then make the PV Available.
    Recycle {
        /// The directory (hostPath or local path).
        path: PathBuf,
    },
    /// Remove the hostPath directory (only under `/tmp/`), then the PV.
    DeleteHostPath {
        /// The directory.
        path: PathBuf,
    },
    /// An external provisioner deletes it; nothing to do here.
    External,
    /// Mark the PV Failed with this Warning event.
    Fail {
        /// The event reason.
        reason: &'static str,
        /// The event message (and `status.message`).
        message: String,
    },
}

/// Decides the reclaim of `pv` (pure).
pub fn decide(pv: &PersistentVolume) -> ReclaimAction {
    let annotations = pv.metadata.annotations.as_ref();
    if annotations.is_some_and(|a| a.get(ANN_MIGRATED_TO).is_some_and(|v| !v.is_empty())) {
        return ReclaimAction::External;
    }
    let spec = pv.spec.clone().unwrap_or_default();
    match spec.persistent_volume_reclaim_policy.as_deref() {
        Some("Retain") | None => ReclaimAction::Retain,
        Some("Recycle") => match scrub_path(pv) {
            Some(path) => ReclaimAction::Recycle { path },
            None => ReclaimAction::Fail {
                reason: "VolumeFailedRecycle",
                message: "No recycler plugin found for the volume!".into(),
            },
        },
        Some("Delete") => decide_delete(pv),
        Some(_) => ReclaimAction::Fail {
            reason: "VolumeUnknownReclaimPolicy",
            message: "Volume has unrecognized PersistentVolumeReclaimPolicy".into(),
        },
    }
}

/// The directory a recycle scrubs: hostPath or local volumes.
fn scrub_path(pv: &PersistentVolume) -> Option<PathBuf> {
    let spec = pv.spec.as_ref()?;
    if let Some(host_path) = &spec.host_path {
        return Some(PathBuf::from(&host_path.path));
    }
    spec.local.as_ref().map(|local| PathBuf::from(&local.path))
}

/// Upstream's `findDeletablePlugin`: the provisioning plugin if known, else by spec.
fn decide_delete(pv: &PersistentVolume) -> ReclaimAction {
    let name = pv.metadata.name.as_deref().unwrap_or("");
    let provisioned_by = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_PROVISIONED_BY))
        .filter(|p| !p.is_empty());
    let spec = pv.spec.clone().unwrap_or_default();
    if let Some(plugin) = provisioned_by {
        if !plugin.starts_with("kubernetes.io/") {
            return ReclaimAction::External;
        }
        if plugin != "kubernetes.io/host-path" {
            return ReclaimAction::Fail {
                reason: "VolumeFailedDelete",
                message: format!("no volume plugin matched name: {plugin}"),
            };
        }
    }
    if spec.csi.is_some() {
        return ReclaimAction::External;
    }
    match spec.host_path {
        Some(host_path) => ReclaimAction::DeleteHostPath {
            path: PathBuf::from(host_path.path),
        },
        None => ReclaimAction::Fail {
            reason: "VolumeFailedDelete",
            message: format!(
                "error getting deleter volume plugin for volume {name:?}: no deletable volume plugin matched"
            ),
        },
    }
}

/// Deletes everything inside `dir` and keeps `dir` (what upstream's recycler pod does with
/// `rm -rf` on the scrubbed mount). Symbolic links are removed, never followed.
pub fn scrub_directory(dir: &Path) -> io::Result<()> {
    let metadata = std::fs::symlink_metadata(dir)?;
    if !metadata.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", dir.display()),
        ));
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Upstream's hostPath deleter, which refuses anything but `/tmp/…` (it exists for tests).
fn delete_host_path(path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    let under_tmp = text
        .find("/tmp/")
        .is_some_and(|at| text.len() > at + "/tmp/".len());
    if !under_tmp {
        return Err(format!(
            "host_path deleter only supports /tmp/.+ but received provided {text}"
        ));
    }
    match std::fs::remove_dir_all(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error.to_string()),
        _ => Ok(()),
    }
}

/// Recycle and delete operations in flight, by PV name and uid (upstream's
/// `runningOperations`), so a PV synced again meanwhile does not start a second one.
#[derive(Default)]
pub struct Reclaimer {
    running: Arc<Mutex<HashSet<String>>>,
}

impl Reclaimer {
    /// No operation running.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Applies the reclaim policy of the Released (or Failed) `pv`.
pub async fn reclaim_volume(
    ctx: &Arc<Context>,
    reclaimer: &Reclaimer,
    pv: Arc<PersistentVolume>,
) -> Result<(), Error> {
    match decide(&pv) {
        ReclaimAction::Retain | ReclaimAction::External => Ok(()),
        ReclaimAction::Fail { reason, message } => mark_failed(ctx, &pv, reason, &message).await,
        action => {
            start_operation(ctx, reclaimer, pv, action);
            Ok(())
        }
    }
}

fn start_operation(
    ctx: &Arc<Context>,
    reclaimer: &Reclaimer,
    pv: Arc<PersistentVolume>,
    action: ReclaimAction,
) {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let operation = format!("{name}[{}]", pv.metadata.uid.as_deref().unwrap_or(""));
    if !reclaimer
        .running
        .lock()
        .expect("reclaimer lock")
        .insert(operation.clone())
    {
        return;
    }
    let running = reclaimer.running.clone();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Err(error) = run_operation(&ctx, &name, action).await {
            tracing::warn!(volume = name, %error, "reclaim failed, retried on the next sync");
        }
        running.lock().expect("reclaimer lock").remove(&operation);
    });
}

async fn run_operation(ctx: &Arc<Context>, name: &str, action: ReclaimAction) -> Result<(), Error> {
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    // The PV may have been re-bound or reclaimed while this waited: read it again.
    let Some(pv) = api.get_opt(name).await? else {
        return Ok(());
    };
    if !is_released(ctx, &pv).await? {
        return Ok(());
    }
    match action {
        ReclaimAction::Recycle { path } => recycle(ctx, &api, pv, &path).await,
        ReclaimAction::DeleteHostPath { path } => delete(ctx, &api, pv, &path).await,
        _ => Ok(()),
    }
}

async fn recycle(
    ctx: &Context,
    api: &Api<PersistentVolume>,
    pv: PersistentVolume,
    path: &Path,
) -> Result<(), Error> {
    let scrubbed = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || scrub_directory(&path))
            .await
            .map_err(|e| Error::Invalid(format!("scrub task: {e}")))?
    };
    if let Err(error) = scrubbed {
        let message = format!("Recycle failed: {error}");
        return mark_failed(ctx, &pv, "VolumeFailedRecycle", &message).await;
    }
    tracing::info!(volume = pv.metadata.name.as_deref(), "volume recycled");
    ctx.event(
        &reference_to(&pv),
        Severity::Normal,
        "VolumeRecycled",
        "Recycle",
        "Volume recycled",
    )
    .await;
    let name = pv.metadata.name.clone().unwrap_or_default();
    let unbound = crate::pv_binder::volume_unbound(&pv);
    let mut written = api.replace(&name, &PostParams::default(), &unbound).await?;
    let status = written.status.get_or_insert_default();
    status.phase = Some("Available".into());
    status.message = None;
    api.replace_status(&name, &PostParams::default(), &written)
        .await?;
    Ok(())
}

async fn delete(
    ctx: &Context,
    api: &Api<PersistentVolume>,
    pv: PersistentVolume,
    path: &Path,
) -> Result<(), Error> {
    let deleted = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || delete_host_path(&path))
            .await
            .map_err(|e| Error::Invalid(format!("delete task: {e}")))?
    };
    if let Err(message) = deleted {
        return mark_failed(ctx, &pv, "VolumeFailedDelete", &message).await;
    }
    let name = pv.metadata.name.clone().unwrap_or_default();
    tracing::info!(volume = name, "volume deleted");
    match api.delete(&name, &DeleteParams::default()).await {
        Err(error) if !is_not_found(&error) => Err(error.into()),
        _ => Ok(()),
    }
}

/// Upstream's `isVolumeReleased`: bound (claimRef with uid) to a claim that no longer exists
/// with that uid, or that is bound to another PV.
async fn is_released(ctx: &Context, pv: &PersistentVolume) -> Result<bool, Error> {
    let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return Ok(false);
    };
    let Some(uid) = claim_ref.uid.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(false);
    };
    let namespace = claim_ref.namespace.as_deref().unwrap_or("");
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    let claim = api.get_opt(claim_ref.name.as_deref().unwrap_or("")).await?;
    Ok(match claim {
        Some(claim) if claim.metadata.uid.as_deref() == Some(uid) => {
            let bound_to = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref());
            bound_to.is_some_and(|v| !v.is_empty() && Some(v) != pv.metadata.name.as_deref())
        }
        _ => true,
    })
}

/// Upstream's `updateVolumePhaseWithEvent(Failed)`: the phase, the message, and the event —
/// only when the phase changes.
async fn mark_failed(
    ctx: &Context,
    pv: &PersistentVolume,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    if pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") {
        return Ok(());
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let mut failed = pv.clone();
    let status = failed.status.get_or_insert_default();
    status.phase = Some("Failed".into());
    status.message = Some(message.to_string());
    let name = pv.metadata.name.clone().unwrap_or_default();
    let written = api
        .replace_status(&name, &PostParams::default(), &failed)
        .await?;
    tracing::info!(volume = name, reason, message, "volume failed");
    ctx.event(
        &reference_to(&written),
        Severity::Warning,
        reason,
        "Reclaim",
        message,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::tests::pv;
    use serde_json::json;

    #[test]
    fn policies_and_sources_decide_the_action() {
        let retain = pv(json!({"spec": {"persistentVolumeReclaimPolicy": "Retain"}}));
        assert_eq!(decide(&retain), ReclaimAction::Retain);
        let recycle = pv(json!({"spec": {"persistentVolumeReclaimPolicy": "Recycle"}}));
        assert_eq!(
            decide(&recycle),
            ReclaimAction::Recycle {
                path: "/tmp/x".into()
            }
        );
        let csi_recycle = pv(json!({"spec": {"persistentVolumeReclaimPolicy": "Recycle",
            "hostPath": null, "csi": {"driver": "d", "volumeHandle": "h"}}}));
        assert_eq!(
            decide(&csi_recycle),
            ReclaimAction::Fail {
                reason: "VolumeFailedRecycle",
                message: "No recycler plugin found for the volume!".into()
            }
        );
        let csi_delete = pv(json!({"spec": {"persistentVolumeReclaimPolicy": "Delete",
            "hostPath": null, "csi": {"driver": "d", "volumeHandle": "h"}}}));
        assert_eq!(decide(&csi_delete), ReclaimAction::External);
        let provisioned = pv(
            json!({"metadata": {"annotations": {ANN_PROVISIONED_BY: "local-volume-provisioner-n-u"}},
            "spec": {"persistentVolumeReclaimPolicy": "Delete", "hostPath": null,
                     "local": {"path": "/mnt/disks/a"}}}),
        );
        assert_eq!(decide(&provisioned), ReclaimAction::External);
        let local = pv(
            json!({"spec": {"persistentVolumeReclaimPolicy": "Delete", "hostPath": null,
            "local": {"path": "/mnt/disks/a"}}}),
        );
        assert_eq!(
            decide(&local),
            ReclaimAction::Fail {
                reason: "VolumeFailedDelete",
                message: "error getting deleter volume plugin for volume \"pv\": no deletable volume plugin matched".into()
            }
        );
    }

    #[test]
    fn the_host_path_deleter_only_deletes_under_tmp() {
        let error = delete_host_path(Path::new("/data/x")).unwrap_err();
        assert_eq!(
            error,
            "host_path deleter only supports /tmp/.+ but received provided /data/x"
        );
        assert!(delete_host_path(Path::new("/tmp/")).is_err());
        let dir = tempfile::Builder::new()
            .prefix("vp-del-")
            .tempdir_in("/tmp")
            .unwrap();
        let target = dir.path().join("vol");
        std::fs::create_dir(&target).unwrap();
        delete_host_path(&target).unwrap();
        assert!(!target.exists());
    }

    #[test]
    fn scrubbing_empties_the_directory_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        scrub_directory(dir.path()).unwrap();
        assert!(dir.path().is_dir());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(
            outside.path().join("keep").exists(),
            "links are not followed"
        );
    }
}
