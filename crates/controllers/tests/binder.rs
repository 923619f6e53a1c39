//! The PV binder against a real API server, observed through the API: matching rules,
//! annotations, phases, events, crash-safety of half-done binds, concurrency, default class.

mod common;
mod support;

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;
use serde_json::json;
use volplane_api::wellknown::{
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER,
    ANN_DEFAULT_STORAGE_CLASS, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER,
};

use common::{ApiServer, eventually};
use support::*;

#[tokio::test]
async fn claim_gets_the_smallest_pv_of_its_class_mode_and_access_modes() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("match");
    namespace(client, &ns).await;
    let p = unique("pv");
    create_pv(client, &format!("{p}-class"), "1Gi", "slow", json!({})).await;
    create_pv(
        client,
        &format!("{p}-block"),
        "1Gi",
        "fast",
        json!({"spec": {"volumeMode": "Block"}}),
    )
    .await;
    create_pv(
        client,
        &format!("{p}-rox"),
        "1Gi",
        "fast",
        json!({"spec": {"accessModes": ["ReadOnlyMany"]}}),
    )
    .await;
    create_pv(client, &format!("{p}-small"), "512Mi", "fast", json!({})).await;
    create_pv(client, &format!("{p}-big"), "10Gi", "fast", json!({})).await;
    create_pv(client, &format!("{p}-fit"), "2Gi", "fast", json!({})).await;
    // Smaller, but with more access modes than asked: upstream prefers the tightest modes.
    create_pv(
        client,
        &format!("{p}-wide"),
        "1Gi",
        "fast",
        json!({"spec": {"accessModes": ["ReadWriteOnce", "ReadWriteMany"]}}),
    )
    .await;
    let _binder = start_binder(client);
    let all: Vec<String> = ["class", "block", "rox", "small", "big", "fit", "wide"]
        .iter()
        .map(|s| format!("{p}-{s}"))
        .collect();
    all_available(client, &all).await;
    create_claim(
        client,
        &ns,
        "data",
        "1Gi",
        json!({"spec": {"storageClassName": "fast"}}),
    )
    .await;

    let volume = bound_volume(client, &ns, "data").await;
    assert_eq!(volume, format!("{p}-fit"));
    let claim = get_claim(client, &ns, "data").await.unwrap();
    assert_eq!(annotation(&claim.metadata, ANN_BIND_COMPLETED), Some("yes"));
    assert_eq!(
        annotation(&claim.metadata, ANN_BOUND_BY_CONTROLLER),
        Some("yes")
    );
    let status = claim.status.unwrap();
    assert_eq!(status.capacity.unwrap()["storage"].0, "2Gi");
    assert_eq!(status.access_modes.unwrap(), ["ReadWriteOnce".to_string()]);
    let pv = pv_in_phase(client, &volume, "Bound").await;
    assert_eq!(
        annotation(&pv.metadata, ANN_BOUND_BY_CONTROLLER),
        Some("yes")
    );
    let claim_ref = pv.spec.unwrap().claim_ref.unwrap();
    assert_eq!(claim_ref.name.as_deref(), Some("data"));
    assert_eq!(claim_ref.namespace.as_deref(), Some(ns.as_str()));
    assert_eq!(claim_ref.uid, claim.metadata.uid);
    // The others were made Available and left alone.
    for other in ["class", "block", "rox", "small", "big", "wide"] {
        pv_in_phase(client, &format!("{p}-{other}"), "Available").await;
    }
}

#[tokio::test]
async fn empty_class_binds_only_empty_class_and_selectors_pick_labels() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("empty");
    namespace(client, &ns).await;
    let p = unique("pv");
    create_pv(client, &format!("{p}-classed"), "1Gi", "fast", json!({})).await;
    create_pv(client, &format!("{p}-plain"), "1Gi", "", json!({})).await;
    create_pv(
        client,
        &format!("{p}-gold"),
        "5Gi",
        "",
        json!({"metadata": {"labels": {"tier": "gold"}}}),
    )
    .await;
    let _binder = start_binder(client);
    let all: Vec<String> = ["classed", "plain", "gold"]
        .iter()
        .map(|s| format!("{p}-{s}"))
        .collect();
    all_available(client, &all).await;
    create_claim(client, &ns, "plain", "1Gi", json!({})).await;
    create_claim(
        client,
        &ns,
        "gold",
        "1Gi",
        json!({"spec": {"selector": {
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold", "platinum"]}]}}}),
    )
    .await;
    assert_eq!(
        bound_volume(client, &ns, "plain").await,
        format!("{p}-plain")
    );
    assert_eq!(bound_volume(client, &ns, "gold").await, format!("{p}-gold"));
    pv_in_phase(client, &format!("{p}-classed"), "Available").await;
}

#[tokio::test]
async fn a_pv_prebound_by_claim_ref_wins_over_a_smaller_fit() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("preb");
    namespace(client, &ns).await;
    let p = unique("pv");
    create_pv(client, &format!("{p}-small"), "1Gi", "", json!({})).await;
    create_pv(
        client,
        &format!("{p}-reserved"),
        "8Gi",
        "",
        json!({"spec": {"claimRef": {"name": "data", "namespace": ns}}}),
    )
    .await;
    let _binder = start_binder(client);
    all_available(client, &[format!("{p}-small"), format!("{p}-reserved")]).await;
    create_claim(client, &ns, "data", "1Gi", json!({})).await;
    assert_eq!(
        bound_volume(client, &ns, "data").await,
        format!("{p}-reserved")
    );
    let pv = pv_in_phase(client, &format!("{p}-reserved"), "Bound").await;
    // Pre-bound by the user: not marked as bound by the controller.
    assert_eq!(annotation(&pv.metadata, ANN_BOUND_BY_CONTROLLER), None);
    let other = create_claim(client, &ns, "other", "1Gi", json!({})).await;
    assert_eq!(
        bound_volume(client, &ns, "other").await,
        format!("{p}-small")
    );
    drop(other);
}

#[tokio::test]
async fn volume_name_binds_only_that_pv_and_reports_a_mismatch() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("vname");
    namespace(client, &ns).await;
    let p = unique("pv");
    create_pv(client, &format!("{p}-any"), "1Gi", "", json!({})).await;
    create_pv(client, &format!("{p}-chosen"), "3Gi", "", json!({})).await;
    create_pv(client, &format!("{p}-tiny"), "1Mi", "", json!({})).await;
    let _binder = start_binder(client);
    create_claim(
        client,
        &ns,
        "chosen",
        "1Gi",
        json!({"spec": {"volumeName": format!("{p}-chosen")}}),
    )
    .await;
    create_claim(
        client,
        &ns,
        "tiny",
        "1Gi",
        json!({"spec": {"volumeName": format!("{p}-tiny")}}),
    )
    .await;
    assert_eq!(
        bound_volume(client, &ns, "chosen").await,
        format!("{p}-chosen")
    );
    let note = event_note(client, &ns, "tiny", "VolumeMismatch").await;
    assert_eq!(
        note,
        format!("Cannot bind to requested volume \"{p}-tiny\": requested PV is too small")
    );
    let claim = get_claim(client, &ns, "tiny").await.unwrap();
    assert_eq!(claim_phase(&claim), "Pending");
    pv_in_phase(client, &format!("{p}-any"), "Available").await;

    // A claim naming a PV that does not exist yet binds once it is created.
    let later = format!("{p}-later");
    create_claim(
        client,
        &ns,
        "later",
        "1Gi",
        json!({"spec": {"volumeName": later}}),
    )
    .await;
    create_pv(client, &later, "1Gi", "", json!({})).await;
    assert_eq!(bound_volume(client, &ns, "later").await, later);
}

#[tokio::test]
async fn a_half_done_bind_is_finished_on_the_next_pass() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("half");
    namespace(client, &ns).await;
    let claim = create_claim(client, &ns, "data", "1Gi", json!({})).await;
    let name = unique("pv");
    // A controller died after writing the PV's claimRef (step 1 of 4).
    create_pv(
        client,
        &name,
        "1Gi",
        "",
        json!({
        "metadata": {"annotations": {ANN_BOUND_BY_CONTROLLER: "yes"}},
        "spec": {"claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "name": "data",
                              "namespace": ns, "uid": claim.metadata.uid}}}),
    )
    .await;
    set_pv_phase(client, &name, "Available").await;
    let _binder = start_binder(client);
    assert_eq!(bound_volume(client, &ns, "data").await, name);
    pv_in_phase(client, &name, "Bound").await;

    // Another died after step 3: the claim names its PV but its status is still Pending.
    let second = create_claim(client, &ns, "second", "1Gi", json!({})).await;
    let pv2 = unique("pv");
    create_pv(
        client,
        &pv2,
        "1Gi",
        "unused-class",
        json!({
        "metadata": {"annotations": {ANN_BOUND_BY_CONTROLLER: "yes"}},
        "spec": {"claimRef": {"name": "second", "namespace": ns, "uid": second.metadata.uid}}}),
    )
    .await;
    patch_claim(
        client,
        &ns,
        "second",
        json!({
        "metadata": {"annotations": {ANN_BIND_COMPLETED: "yes", ANN_BOUND_BY_CONTROLLER: "yes"}},
        "spec": {"volumeName": pv2}}),
    )
    .await;
    assert_eq!(bound_volume(client, &ns, "second").await, pv2);
    pv_in_phase(client, &pv2, "Bound").await;
}

#[tokio::test]
async fn a_bind_to_a_claim_bound_elsewhere_is_undone() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("undo");
    namespace(client, &ns).await;
    let claim = create_claim(client, &ns, "data", "1Gi", json!({})).await;
    let (winner, loser) = (unique("pv"), unique("pv"));
    create_pv(client, &winner, "1Gi", "", json!({})).await;
    // Two controllers raced: one bound `loser` to the claim, the other finished with `winner`.
    create_pv(
        client,
        &loser,
        "1Gi",
        "",
        json!({
        "metadata": {"annotations": {ANN_BOUND_BY_CONTROLLER: "yes"}},
        "spec": {"claimRef": {"name": "data", "namespace": ns, "uid": claim.metadata.uid}}}),
    )
    .await;
    set_pv_phase(client, &loser, "Bound").await;
    patch_claim(
        client,
        &ns,
        "data",
        json!({
        "metadata": {"annotations": {ANN_BIND_COMPLETED: "yes", ANN_BOUND_BY_CONTROLLER: "yes"}},
        "spec": {"volumeName": winner}}),
    )
    .await;
    let _binder = start_binder(client);
    assert_eq!(bound_volume(client, &ns, "data").await, winner);
    let undone = pv_in_phase(client, &loser, "Available").await;
    assert!(undone.spec.unwrap().claim_ref.is_none());
    assert_eq!(annotation(&undone.metadata, ANN_BOUND_BY_CONTROLLER), None);
}

#[tokio::test]
async fn concurrent_claims_never_share_a_pv() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("many");
    namespace(client, &ns).await;
    let _binder = start_binder(client);
    let prefix = unique("pv");
    let count = 150;
    let creates = (0..count).map(|i| {
        let (client, ns, prefix) = (client.clone(), ns.clone(), prefix.clone());
        async move {
            create_claim(&client, &ns, &format!("c{i}"), "1Gi", json!({})).await;
            create_pv(&client, &format!("{prefix}-{i}"), "1Gi", "", json!({})).await;
        }
    });
    futures::future::join_all(creates).await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let bound = eventually(WAIT, "every claim bound", || async {
        let list = claims.list(&Default::default()).await.unwrap();
        let bound: Vec<_> = list
            .items
            .iter()
            .filter(|c| claim_phase(c) == "Bound")
            .cloned()
            .collect();
        (bound.len() == count).then_some(bound)
    })
    .await;
    let volumes: HashSet<String> = bound
        .iter()
        .map(|c| c.spec.as_ref().unwrap().volume_name.clone().unwrap())
        .collect();
    assert_eq!(volumes.len(), count, "two claims share a PV");
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for claim in &bound {
        let pv = pvs
            .get(claim.spec.as_ref().unwrap().volume_name.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(pv.spec.unwrap().claim_ref.unwrap().uid, claim.metadata.uid);
    }
}

#[tokio::test]
async fn a_claim_whose_pv_is_deleted_is_lost() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("lost");
    namespace(client, &ns).await;
    let name = unique("pv");
    create_pv(client, &name, "1Gi", "", json!({})).await;
    let _binder = start_binder(client);
    create_claim(client, &ns, "data", "1Gi", json!({})).await;
    bound_volume(client, &ns, "data").await;
    force_delete_pv(client, &name).await;
    claim_in_phase(client, &ns, "data", "Lost").await;
    let note = event_note(client, &ns, "data", "ClaimLost").await;
    assert_eq!(
        note,
        "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmatched_claims_event_names_the_nearest_pv_and_its_failing_criterion() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("near");
    namespace(client, &ns).await;
    let static_class = unique("local");
    create_class(
        client,
        json!({"metadata": {"name": static_class},
        "provisioner": "kubernetes.io/no-provisioner"}),
    )
    .await;
    let small = unique("small");
    create_pv(client, &small, "1Gi", &static_class, json!({})).await;
    let elsewhere = unique("other-class");
    create_pv(client, &elsewhere, "10Gi", "", json!({})).await;
    let _binder = start_binder(client);
    all_available(client, &[small.clone(), elsewhere.clone()]).await;
    create_claim(
        client,
        &ns,
        "big",
        "5Gi",
        json!({"spec": {"storageClassName": static_class}}),
    )
    .await;
    create_claim(
        client,
        &ns,
        "rwx",
        "1Gi",
        json!({"spec": {"storageClassName": "", "accessModes": ["ReadWriteMany"]}}),
    )
    .await;

    let note = event_note(client, &ns, "big", "ProvisioningFailed").await;
    assert!(
        note.starts_with(
            "no volume plugin matched name: kubernetes.io/no-provisioner; \
             nearest PersistentVolume "
        ),
        "{note}"
    );
    assert!(note.contains(&format!("{small} (1Gi)")), "{note}");
    assert!(
        note.contains("capacity"),
        "the failing criterion is named: {note}"
    );
    let note = event_note(client, &ns, "rwx", "FailedBinding").await;
    assert!(
        note.starts_with(
            "no persistent volumes available for this claim and no storage class is set; \
             nearest PersistentVolume "
        ),
        "{note}"
    );
    assert!(note.contains(&format!("{elsewhere} (10Gi)")), "{note}");
    assert!(
        note.contains("ReadWriteMany"),
        "the missing access mode is named: {note}"
    );
}

#[tokio::test]
async fn unmatched_claims_are_handed_to_their_provisioner_or_told_why_not() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("prov");
    namespace(client, &ns).await;
    let external = unique("ext");
    create_class(
        client,
        json!({"metadata": {"name": external}, "provisioner": "example.csi.io"}),
    )
    .await;
    let static_class = unique("local");
    create_class(
        client,
        json!({"metadata": {"name": static_class},
        "provisioner": "kubernetes.io/no-provisioner"}),
    )
    .await;
    let _binder = start_binder(client);
    create_claim(
        client,
        &ns,
        "ext",
        "1Gi",
        json!({"spec": {"storageClassName": external}}),
    )
    .await;
    create_claim(
        client,
        &ns,
        "missing",
        "1Gi",
        json!({"spec": {"storageClassName": "nope"}}),
    )
    .await;
    create_claim(
        client,
        &ns,
        "static",
        "1Gi",
        json!({"spec": {"storageClassName": static_class}}),
    )
    .await;
    create_claim(client, &ns, "none", "1Gi", json!({})).await;

    let note = event_note(client, &ns, "ext", "ExternalProvisioning").await;
    assert_eq!(
        note,
        "Waiting for a volume to be created either by the external provisioner 'example.csi.io' \
         or manually by the system administrator. If volume creation is delayed, please verify \
         that the provisioner is running and correctly registered."
    );
    let claim = get_claim(client, &ns, "ext").await.unwrap();
    assert_eq!(
        annotation(&claim.metadata, ANN_STORAGE_PROVISIONER),
        Some("example.csi.io")
    );
    assert_eq!(
        annotation(&claim.metadata, ANN_BETA_STORAGE_PROVISIONER),
        Some("example.csi.io")
    );
    assert_eq!(claim_phase(&claim), "Pending");
    assert_eq!(
        event_note(client, &ns, "missing", "ProvisioningFailed").await,
        "storageclass.storage.k8s.io \"nope\" not found"
    );
    assert_eq!(
        event_note(client, &ns, "static", "ProvisioningFailed").await,
        "no volume plugin matched name: kubernetes.io/no-provisioner"
    );
    assert_eq!(
        event_note(client, &ns, "none", "FailedBinding").await,
        "no persistent volumes available for this claim and no storage class is set"
    );
    // The provisioner's PV, pre-bound to the claim, is bound by the binder.
    let name = unique("pvc");
    create_pv(
        client,
        &name,
        "1Gi",
        &external,
        json!({
        "spec": {"claimRef": {"name": "ext", "namespace": ns, "uid": claim.metadata.uid}}}),
    )
    .await;
    assert_eq!(bound_volume(client, &ns, "ext").await, name);
}

#[tokio::test]
async fn wait_for_first_consumer_binds_on_the_selected_node() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("wffc");
    namespace(client, &ns).await;
    let class = unique("local");
    create_class(client, json!({"metadata": {"name": class},
        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"})).await;
    let affinity = |node: &str| {
        json!({"spec": {"local": {"path": "/mnt/disks/a"}, "hostPath": null,
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}})
    };
    let (on_a, on_b) = (unique("pv-a"), unique("pv-b"));
    create_pv(client, &on_a, "1Gi", &class, affinity("node-a")).await;
    create_pv(client, &on_b, "1Gi", &class, affinity("node-b")).await;
    let _binder = start_binder(client);
    create_claim(
        client,
        &ns,
        "data",
        "1Gi",
        json!({"spec": {"storageClassName": class}}),
    )
    .await;
    let note = event_note(client, &ns, "data", "WaitForFirstConsumer").await;
    assert_eq!(
        note,
        "waiting for first consumer to be created before binding"
    );
    assert_eq!(
        claim_phase(&get_claim(client, &ns, "data").await.unwrap()),
        "Pending"
    );
    // The scheduler picked node-b (no Node object: its hostname is its name).
    patch_claim(
        client,
        &ns,
        "data",
        json!({"metadata": {"annotations": {ANN_SELECTED_NODE: "node-b"}}}),
    )
    .await;
    assert_eq!(bound_volume(client, &ns, "data").await, on_b);
    pv_in_phase(client, &on_a, "Available").await;
}

#[tokio::test]
async fn a_new_default_class_is_given_to_existing_classless_claims() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let ns = unique("default");
    namespace(client, &ns).await;
    let binder = start_binder(client);
    create_claim(
        client,
        &ns,
        "classless",
        "1Gi",
        json!({"spec": {"storageClassName": null}}),
    )
    .await;
    create_claim(client, &ns, "empty", "1Gi", json!({})).await;
    event_note(client, &ns, "classless", "FailedBinding").await;
    // Stopped while two defaults appear, so the test sees which one wins, not which came first.
    drop(binder);
    let (old, new) = (unique("old"), unique("new"));
    create_class(
        client,
        json!({"metadata": {"name": old, "annotations": {ANN_DEFAULT_STORAGE_CLASS: "true"}},
        "provisioner": "example.csi.io"}),
    )
    .await;
    // Creation times have a resolution of one second: make the second one newer.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    create_class(
        client,
        json!({"metadata": {"name": new, "annotations": {ANN_DEFAULT_STORAGE_CLASS: "true"}},
        "provisioner": "example.csi.io"}),
    )
    .await;
    let _binder = start_binder(client);
    let claim = eventually(WAIT, "default class assigned", || async {
        get_claim(client, &ns, "classless")
            .await
            .filter(|c| c.spec.as_ref().unwrap().storage_class_name.is_some())
    })
    .await;
    assert_eq!(
        claim.spec.unwrap().storage_class_name.as_deref(),
        Some(new.as_str())
    );
    // "" means "no class": never given the default.
    let empty = get_claim(client, &ns, "empty").await.unwrap();
    assert_eq!(empty.spec.unwrap().storage_class_name.as_deref(), Some(""));
    // Admission gives new claims the newest default too.
    let fresh = create_claim(
        client,
        &ns,
        "fresh",
        "1Gi",
        json!({"spec": {"storageClassName": null}}),
    )
    .await;
    assert_eq!(
        fresh.spec.unwrap().storage_class_name.as_deref(),
        Some(new.as_str())
    );
}
