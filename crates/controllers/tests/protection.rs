//! Storage object in-use protection against a real API server: a claim in use stays
//! Terminating until its pod goes or finishes; a PV stays while Bound.

mod common;
mod support;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use volplane_api::wellknown::{FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION};

use common::{ApiServer, eventually};
use support::*;

async fn delete_claim(client: &kube::Client, ns: &str, name: &str) {
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::default())
        .await
        .expect("claim deletion accepted");
}

async fn claim_gone(client: &kube::Client, ns: &str, name: &str) {
    eventually(WAIT, &format!("claim {name} gone"), || async {
        get_claim(client, ns, name).await.is_none().then_some(())
    })
    .await;
}

/// Stays there (Terminating, finalizer kept) for a while.
async fn claim_stays_terminating(client: &kube::Client, ns: &str, name: &str) {
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let claim = get_claim(client, ns, name)
            .await
            .expect("claim still exists");
        assert!(claim.metadata.deletion_timestamp.is_some());
        assert!(
            claim
                .metadata
                .finalizers
                .unwrap_or_default()
                .contains(&FINALIZER_PVC_PROTECTION.to_string())
        );
    }
}

#[tokio::test]
async fn a_claim_in_use_stays_terminating_until_its_pod_is_deleted() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("inuse");
    namespace(client, &ns).await;
    let _protection = start_protection(client);
    create_claim(client, &ns, "data", "1Gi", json!({})).await;
    create_claim(client, &ns, "idle", "1Gi", json!({})).await;
    // A node that does not exist: the API server deletes the pod at once when asked.
    create_pod(client, &ns, "web", &["data"], Some("node-x")).await;
    // An unscheduled pod never starts with a claim being deleted: it does not block.
    create_pod(client, &ns, "pending", &["idle"], None).await;
    delete_claim(client, &ns, "data").await;
    delete_claim(client, &ns, "idle").await;
    claim_gone(client, &ns, "idle").await;
    claim_stays_terminating(client, &ns, "data").await;
    Api::<Pod>::namespaced(client.clone(), &ns)
        .delete("web", &DeleteParams::default())
        .await
        .expect("pod deleted");
    claim_gone(client, &ns, "data").await;
}

#[tokio::test]
async fn a_claim_is_released_when_its_pod_succeeds() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("done");
    namespace(client, &ns).await;
    let _protection = start_protection(client);
    create_claim(client, &ns, "data", "1Gi", json!({})).await;
    create_pod(client, &ns, "job", &["data"], Some("node-x")).await;
    delete_claim(client, &ns, "data").await;
    claim_stays_terminating(client, &ns, "data").await;
    Api::<Pod>::namespaced(client.clone(), &ns)
        .patch_status(
            "job",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
        )
        .await
        .expect("pod status");
    claim_gone(client, &ns, "data").await;
}

#[tokio::test]
async fn an_ephemeral_volume_claim_is_kept_by_the_pod_that_owns_it() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("eph");
    namespace(client, &ns).await;
    let _protection = start_protection(client);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"nodeName": "node-x", "containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}]}
    }))
    .unwrap();
    let pod = Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    create_claim(client, &ns, "web-scratch", "1Gi", json!({"metadata": {"ownerReferences": [{
        "apiVersion": "v1", "kind": "Pod", "name": "web", "uid": pod.metadata.uid, "controller": true}]}})).await;
    delete_claim(client, &ns, "web-scratch").await;
    claim_stays_terminating(client, &ns, "web-scratch").await;
    Api::<Pod>::namespaced(client.clone(), &ns)
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    claim_gone(client, &ns, "web-scratch").await;
}

#[tokio::test]
async fn a_pv_stays_while_bound_and_goes_once_released() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("pvprot");
    namespace(client, &ns).await;
    let _binder = start_binder(client);
    let _protection = start_protection(client);
    let name = unique("pv");
    let pv = create_pv(client, &name, "1Gi", "", json!({})).await;
    assert!(
        pv.metadata
            .finalizers
            .unwrap()
            .contains(&FINALIZER_PV_PROTECTION.to_string())
    );
    create_claim(client, &ns, "data", "1Gi", json!({})).await;
    assert_eq!(bound_volume(client, &ns, "data").await, name);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    volumes
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let pv = get_pv(client, &name).await.expect("a bound PV is kept");
        assert!(pv.metadata.deletion_timestamp.is_some());
        assert_eq!(pv_phase(&pv), "Bound");
    }
    // The claim is not used by any pod: deleting it releases the PV, which then goes.
    delete_claim(client, &ns, "data").await;
    claim_gone(client, &ns, "data").await;
    eventually(WAIT, "released PV deleted", || async {
        get_pv(client, &name).await.is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn objects_missing_their_finalizer_get_it_back() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("addfin");
    namespace(client, &ns).await;
    create_claim(client, &ns, "data", "1Gi", json!({})).await;
    patch_claim(
        client,
        &ns,
        "data",
        json!({"metadata": {"finalizers": null}}),
    )
    .await;
    let name = unique("pv");
    create_pv(client, &name, "1Gi", "", json!({})).await;
    patch_pv(client, &name, json!({"metadata": {"finalizers": null}})).await;
    let _protection = start_protection(client);
    eventually(WAIT, "finalizers restored", || async {
        let claim = get_claim(client, &ns, "data").await?;
        let pv = get_pv(client, &name).await?;
        let has =
            |f: Option<Vec<String>>, want: &str| f.unwrap_or_default().iter().any(|x| x == want);
        (has(claim.metadata.finalizers, FINALIZER_PVC_PROTECTION)
            && has(pv.metadata.finalizers, FINALIZER_PV_PROTECTION))
        .then_some(())
    })
    .await;
}
