//! Helpers of the binder, reclaim, protection and local-static tests: objects from JSON,
//! waiting for what a user would see, reading events, and loops that stop when dropped.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use volplane_controllers::pv_binder::{self, BinderOptions};
use volplane_controllers::{Context, ManagerConfig, protection};

use crate::common::eventually;

/// How long a test waits for the loops to converge.
pub const WAIT: Duration = Duration::from_secs(20);

/// A name unique in this test process (tests share nothing but names must not collide
/// across cluster-scoped PVs of one server).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A spawned loop, aborted when dropped (so a failing test does not leave it running).
pub struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The controller context for a test.
pub fn context(client: &Client) -> Arc<Context> {
    let config = ManagerConfig {
        workers: 8,
        ..ManagerConfig::default()
    };
    Context::new(client.clone(), config)
}

/// Logs of the loops under test, when `VP_TEST_LOG` is set (e.g. `volplane_controllers=debug`).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("VP_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Starts the binder (indexed, 8 workers, fast resync).
pub fn start_binder(client: &Client) -> Running {
    init_logs();
    let mut options = BinderOptions::indexed(8);
    options.resync = Duration::from_secs(2);
    let ctx = context(client);
    Running(tokio::spawn(async move {
        let result = pv_binder::run(ctx, options).await;
        panic!("binder stopped: {result:?}");
    }))
}

/// Starts both protection controllers.
pub fn start_protection(client: &Client) -> Running {
    let ctx = context(client);
    Running(tokio::spawn(async move {
        let result = protection::run(ctx).await;
        panic!("protection stopped: {result:?}");
    }))
}

/// Creates a namespace named `name`.
pub async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

/// Creates a PV: `name`, `size`, class `class`, plus `extra` merged into the manifest.
pub async fn create_pv(
    client: &Client,
    name: &str,
    size: &str,
    class: &str,
    extra: Value,
) -> PersistentVolume {
    let mut manifest = json!({
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                 "storageClassName": class, "hostPath": {"path": format!("/tmp/{name}")}}
    });
    merge(&mut manifest, extra);
    let pv = serde_json::from_value(manifest).expect("PV manifest");
    Api::<PersistentVolume>::all(client.clone())
        .create(&PostParams::default(), &pv)
        .await
        .expect("PV created")
}

/// Creates a claim in `ns`: `name`, `size`, plus `extra` merged into the manifest (a
/// `"storageClassName": null` in `extra` removes the class).
pub async fn create_claim(
    client: &Client,
    ns: &str,
    name: &str,
    size: &str,
    extra: Value,
) -> PersistentVolumeClaim {
    let mut manifest = json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                 "storageClassName": ""}
    });
    merge(&mut manifest, extra);
    let claim = serde_json::from_value(manifest).expect("claim manifest");
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &claim)
        .await
        .expect("claim created")
}

/// Creates a StorageClass from a manifest.
pub async fn create_class(client: &Client, manifest: Value) {
    let class = serde_json::from_value(manifest).expect("class manifest");
    Api::<k8s_openapi::api::storage::v1::StorageClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await
        .expect("class created");
}

/// Merges `patch` into `base` (objects key by key; `null` removes a key).
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// Writes the PV's status phase (as an administrator or a half-done controller would).
pub async fn set_pv_phase(client: &Client, name: &str, phase: &str) {
    Api::<PersistentVolume>::all(client.clone())
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .expect("PV status");
}

/// Merge-patches a claim.
pub async fn patch_claim(client: &Client, ns: &str, name: &str, patch: Value) {
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("claim patched");
}

/// Merge-patches a PV.
pub async fn patch_pv(client: &Client, name: &str, patch: Value) {
    Api::<PersistentVolume>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("PV patched");
}

/// Deletes a claim without waiting for protection: its finalizers are dropped first.
pub async fn force_delete_claim(client: &Client, ns: &str, name: &str) {
    patch_claim(client, ns, name, json!({"metadata": {"finalizers": null}})).await;
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::default())
        .await
        .expect("claim deleted");
}

/// Deletes a PV without waiting for protection.
pub async fn force_delete_pv(client: &Client, name: &str) {
    patch_pv(client, name, json!({"metadata": {"finalizers": null}})).await;
    Api::<PersistentVolume>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
        .expect("PV deleted");
}

pub async fn get_claim(client: &Client, ns: &str, name: &str) -> Option<PersistentVolumeClaim> {
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .expect("claim read")
}

pub async fn get_pv(client: &Client, name: &str) -> Option<PersistentVolume> {
    Api::<PersistentVolume>::all(client.clone())
        .get_opt(name)
        .await
        .expect("PV read")
}

pub fn claim_phase(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn pv_phase(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Waits until the claim is in `phase`, returning it.
pub async fn claim_in_phase(
    client: &Client,
    ns: &str,
    name: &str,
    phase: &str,
) -> PersistentVolumeClaim {
    eventually(WAIT, &format!("claim {ns}/{name} {phase}"), || async {
        get_claim(client, ns, name)
            .await
            .filter(|c| claim_phase(c) == phase)
    })
    .await
}

/// Waits until the PV is in `phase`, returning it.
pub async fn pv_in_phase(client: &Client, name: &str, phase: &str) -> PersistentVolume {
    eventually(WAIT, &format!("PV {name} {phase}"), || async {
        get_pv(client, name)
            .await
            .filter(|pv| pv_phase(pv) == phase)
    })
    .await
}

/// Waits until every PV named is Available (the binder makes new PVs Available first, and a
/// claim created before that may legitimately take whichever PV is Available already).
pub async fn all_available(client: &Client, names: &[String]) {
    for name in names {
        pv_in_phase(client, name, "Available").await;
    }
}

/// Waits until the claim is bound, returning the PV's name.
pub async fn bound_volume(client: &Client, ns: &str, name: &str) -> String {
    let claim = claim_in_phase(client, ns, name, "Bound").await;
    claim
        .spec
        .unwrap()
        .volume_name
        .expect("bound claim names its PV")
}

/// The (reason, note) of every event about the object `name` (events of cluster-scoped
/// objects are in `default`).
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default()).await.expect("events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// Waits for an event with `reason` about `name`, returning its note.
pub async fn event_note(client: &Client, ns: &str, name: &str, reason: &str) -> String {
    eventually(WAIT, &format!("event {reason} on {name}"), || async {
        events(client, ns, name)
            .await
            .into_iter()
            .find(|(r, _)| r == reason)
            .map(|(_, note)| note)
    })
    .await
}

/// Creates a pod using `claims` (by name) scheduled to `node` (`None`: unscheduled).
pub async fn create_pod(
    client: &Client,
    ns: &str,
    name: &str,
    claims: &[&str],
    node: Option<&str>,
) -> Pod {
    let volumes: Vec<Value> = claims
        .iter()
        .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
        .collect();
    let mut manifest = json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": volumes}
    });
    if let Some(node) = node {
        manifest["spec"]["nodeName"] = json!(node);
    }
    let pod = serde_json::from_value(manifest).expect("pod manifest");
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod created")
}
