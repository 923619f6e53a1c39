//! Deletion that the API server carries out itself: namespaces take their content with them, and
//! owner references cascade (background, foreground) or are dropped (orphan).

use std::time::Duration;

use volplane_testkit::{Cluster, Kubectl, eventually};

fn start() -> Cluster {
    Cluster::start(env!("CARGO_BIN_EXE_volplane").as_ref(), &[])
}

fn exists(k: &Kubectl, args: &[&str]) -> bool {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    k.run_with_input(&all, None).status.success()
}

/// Creates configmap `name` owned by configmap `owner` (blocking the owner's deletion).
fn create_dependent(k: &Kubectl, name: &str, owner: &str) {
    let uid = k.get_json(&["configmap", owner])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","ownerReferences":[{{"apiVersion":"v1","kind":"ConfigMap","name":"{owner}","uid":"{uid}","blockOwnerDeletion":true}}]}}}}"#
    );
    k.ok_with_input(&["create", "-f", "-"], Some(&manifest));
}

#[test]
fn deleting_a_namespace_deletes_its_content_then_itself() {
    let cluster = start();
    let k = cluster.kubectl();
    k.ok(&["create", "namespace", "doomed"]);
    k.ok(&["create", "configmap", "a", "-n", "doomed"]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "doomed",
        "--from-literal=k=v",
    ]);
    k.ok(&["delete", "namespace", "doomed", "--timeout=60s"]);
    assert!(!exists(&k, &["namespace", "doomed"]));
    assert!(!exists(&k, &["configmap", "a", "-n", "doomed"]));
    // A namespace with that name can be made again, empty.
    k.ok(&["create", "namespace", "doomed"]);
    assert!(
        k.ok(&["get", "configmaps", "-n", "doomed", "-o", "name"])
            .trim()
            .is_empty()
    );
}

#[test]
fn nothing_new_can_be_created_in_a_terminating_namespace() {
    let cluster = start();
    let k = cluster.kubectl();
    k.ok(&["create", "namespace", "closing"]);
    k.ok(&["create", "configmap", "held", "-n", "closing"]);
    k.hold(&["configmap", "held", "-n", "closing"]);
    k.ok(&["delete", "namespace", "closing", "--wait=false"]);
    eventually(Duration::from_secs(20), "namespace Terminating", || {
        let ns = k.get_json(&["namespace", "closing"]);
        (ns["status"]["phase"] == "Terminating").then_some(())
    });
    let err = k.fails(&["create", "configmap", "late", "-n", "closing"], None);
    assert!(err.contains("being terminated"), "{err}");
    k.release(&["configmap", "held", "-n", "closing"]);
    eventually(Duration::from_secs(30), "namespace gone", || {
        (!exists(&k, &["namespace", "closing"])).then_some(())
    });
}

#[test]
fn background_deletion_removes_dependents_after_the_owner() {
    let cluster = start();
    let k = cluster.kubectl();
    k.ok(&["create", "configmap", "owner"]);
    create_dependent(&k, "dep", "owner");
    k.ok(&["delete", "configmap", "owner"]);
    eventually(Duration::from_secs(30), "dependent collected", || {
        (!exists(&k, &["configmap", "dep"])).then_some(())
    });
}

#[test]
fn foreground_deletion_removes_dependents_before_the_owner() {
    let cluster = start();
    let k = cluster.kubectl();
    k.ok(&["create", "configmap", "owner"]);
    create_dependent(&k, "dep", "owner");
    // The dependent holds a finalizer, so the owner must wait for it.
    k.hold(&["configmap", "dep"]);
    k.ok(&[
        "delete",
        "configmap",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    eventually(Duration::from_secs(20), "dependent being deleted", || {
        k.get_json(&["configmap", "dep"])["metadata"]["deletionTimestamp"]
            .as_str()
            .map(|_| ())
    });
    let owner = k.get_json(&["configmap", "owner"]);
    assert!(
        owner["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "foregroundDeletion")
    );
    k.release(&["configmap", "dep"]);
    eventually(Duration::from_secs(30), "owner gone", || {
        (!exists(&k, &["configmap", "owner"])).then_some(())
    });
    assert!(!exists(&k, &["configmap", "dep"]));
}

#[test]
fn orphan_deletion_keeps_dependents_without_the_owner_reference() {
    let cluster = start();
    let k = cluster.kubectl();
    k.ok(&["create", "configmap", "owner"]);
    create_dependent(&k, "dep", "owner");
    k.ok(&[
        "delete",
        "configmap",
        "owner",
        "--cascade=orphan",
        "--timeout=60s",
    ]);
    eventually(Duration::from_secs(30), "owner gone", || {
        (!exists(&k, &["configmap", "owner"])).then_some(())
    });
    let dep = k.get_json(&["configmap", "dep"]);
    assert!(dep["metadata"].get("ownerReferences").is_none(), "{dep}");
    // And it stays: the collector must not take it later.
    std::thread::sleep(Duration::from_secs(1));
    assert!(exists(&k, &["configmap", "dep"]));
}
