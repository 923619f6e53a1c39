//! Reclaim of released PVs through the binder's volume sync: Retain, Recycle, Delete and the
//! Failed cases, observed through the API (phases, claimRef, events) and on disk.

mod common;
mod support;

use serde_json::{Value, json};

use common::{ApiServer, eventually};
use support::*;

/// A PV bound to a claim that is then deleted; returns the PV's name.
async fn release(server: &ApiServer, ns: &str, spec: Value) -> String {
    let client = &server.client;
    let name = unique("pv");
    create_pv(client, &name, "1Gi", "", json!({"spec": spec})).await;
    let claim = unique("c");
    create_claim(
        client,
        ns,
        &claim,
        "1Gi",
        json!({"spec": {"volumeName": name}}),
    )
    .await;
    bound_volume(client, ns, &claim).await;
    force_delete_claim(client, ns, &claim).await;
    name
}

#[tokio::test]
async fn retain_keeps_a_released_pv_with_its_claim_ref() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("retain");
    namespace(client, &ns).await;
    let _binder = start_binder(client);
    let name = release(
        &server,
        &ns,
        json!({"persistentVolumeReclaimPolicy": "Retain"}),
    )
    .await;
    let pv = pv_in_phase(client, &name, "Released").await;
    assert!(pv.spec.unwrap().claim_ref.is_some());
    // Still Released after a few resyncs.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(pv_phase(&get_pv(client, &name).await.unwrap()), "Released");
}

#[tokio::test]
async fn recycle_scrubs_the_directory_and_makes_the_pv_available() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("recycle");
    namespace(client, &ns).await;
    let dir = tempfile::Builder::new()
        .prefix("vp-recycle-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
    std::fs::write(dir.path().join("sub/deeper/file"), b"old data").unwrap();
    std::fs::write(dir.path().join(".hidden"), b"old data").unwrap();
    let _binder = start_binder(client);
    let path = dir.path().to_string_lossy().into_owned();
    let name = release(
        &server,
        &ns,
        json!({"persistentVolumeReclaimPolicy": "Recycle",
        "hostPath": {"path": path}}),
    )
    .await;
    let pv = eventually(WAIT, "recycled PV Available without claimRef", || async {
        get_pv(client, &name).await.filter(|pv| {
            pv_phase(pv) == "Available" && pv.spec.as_ref().unwrap().claim_ref.is_none()
        })
    })
    .await;
    assert_eq!(
        annotation(
            &pv.metadata,
            volplane_api::wellknown::ANN_BOUND_BY_CONTROLLER
        ),
        None
    );
    assert!(dir.path().is_dir(), "the directory itself is kept");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(
        event_note(client, "default", &name, "VolumeRecycled").await,
        "Volume recycled"
    );
    // And it can be claimed again.
    create_claim(client, &ns, "again", "1Gi", json!({})).await;
    assert_eq!(bound_volume(client, &ns, "again").await, name);
}

#[tokio::test]
async fn volumes_without_recycler_or_deleter_fail_with_upstreams_events() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("fail");
    namespace(client, &ns).await;
    let _binder = start_binder(client);
    let csi = json!({"hostPath": null, "csi": {"driver": "example.csi.io", "volumeHandle": "h1"}});
    let mut recycle_csi = csi.clone();
    merge(
        &mut recycle_csi,
        json!({"persistentVolumeReclaimPolicy": "Recycle"}),
    );
    let name = release(&server, &ns, recycle_csi).await;
    let pv = pv_in_phase(client, &name, "Failed").await;
    assert_eq!(
        pv.status.unwrap().message.as_deref(),
        Some("No recycler plugin found for the volume!")
    );
    assert_eq!(
        event_note(client, "default", &name, "VolumeFailedRecycle").await,
        "No recycler plugin found for the volume!"
    );

    let local = release(
        &server,
        &ns,
        json!({"persistentVolumeReclaimPolicy": "Delete",
        "hostPath": null, "local": {"path": "/mnt/disks/x"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a"]}]}]}}}),
    )
    .await;
    pv_in_phase(client, &local, "Failed").await;
    assert_eq!(
        event_note(client, "default", &local, "VolumeFailedDelete").await,
        format!(
            "error getting deleter volume plugin for volume \"{local}\": no deletable volume plugin matched"
        )
    );

    let outside = release(
        &server,
        &ns,
        json!({"persistentVolumeReclaimPolicy": "Delete",
        "hostPath": {"path": "/data/x"}}),
    )
    .await;
    pv_in_phase(client, &outside, "Failed").await;
    assert_eq!(
        event_note(client, "default", &outside, "VolumeFailedDelete").await,
        "host_path deleter only supports /tmp/.+ but received provided /data/x"
    );
}

#[tokio::test]
async fn delete_leaves_csi_volumes_to_their_provisioner_and_deletes_tmp_host_paths() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("delete");
    namespace(client, &ns).await;
    let _binder = start_binder(client);
    let _protection = start_protection(client);
    let mut csi = json!({"persistentVolumeReclaimPolicy": "Delete", "hostPath": null,
        "csi": {"driver": "example.csi.io", "volumeHandle": "h2"}});
    let csi_pv = release(&server, &ns, csi.take()).await;
    pv_in_phase(client, &csi_pv, "Released").await;

    let dir = tempfile::Builder::new()
        .prefix("vp-delete-")
        .tempdir_in("/tmp")
        .unwrap();
    let target = dir.path().join("volume");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("f"), b"x").unwrap();
    let host = release(
        &server,
        &ns,
        json!({"persistentVolumeReclaimPolicy": "Delete",
        "hostPath": {"path": target.to_string_lossy()}}),
    )
    .await;
    eventually(WAIT, "hostPath PV deleted", || async {
        get_pv(client, &host).await.is_none().then_some(())
    })
    .await;
    assert!(!target.exists());
    // The CSI PV is still there, Released, for the external provisioner to delete.
    assert_eq!(
        pv_phase(&get_pv(client, &csi_pv).await.unwrap()),
        "Released"
    );
}
