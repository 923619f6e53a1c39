//! The CSI provisioner and deleter against a real API server and the built-in CSI driver.
//!
//! The PV binder is not running here: where it would act, the test acts as it would (it sets
//! `volume.kubernetes.io/storage-provisioner`, binds source claims, marks PVs Released) and
//! checks what the provisioner writes.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{ApiServer, CsiDriver, eventually};
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, StorageClass, VolumeAttachment};
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use volplane_api::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use volplane_api::wellknown;
use volplane_controllers::csi_drivers::{ANN_CONTROLLER_ENDPOINT, Registry};
use volplane_controllers::{Context, ManagerConfig, provisioner};
use volplane_csi::proto::{self, volume_capability};

const DRIVER: &str = "local.csi.volplane.io";
const HOST_KEY: &str = "topology.local.csi.volplane.io/host";
const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(30);

/// An API server, the built-in driver and the provisioner loop (stopped on drop).
struct Harness {
    api: ApiServer,
    driver: CsiDriver,
    registry: Arc<Registry>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start() -> Self {
        let api = ApiServer::start().await;
        let driver = CsiDriver::start().await;
        let registry = Arc::new(Registry::new());
        registry.register(DRIVER, &driver.endpoint()).unwrap();
        let mut harness = Self {
            api,
            driver,
            registry,
            task: None,
        };
        harness.start_loop();
        harness
    }

    fn start_loop(&mut self) {
        let ctx = Context::new(self.api.client.clone(), ManagerConfig::default());
        let registry = self.registry.clone();
        self.task = Some(tokio::spawn(async move {
            provisioner::run(ctx, registry)
                .await
                .expect("provisioner runs");
        }));
    }

    fn stop_loop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    fn client(&self) -> kube::Client {
        self.api.client.clone()
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client(), NS)
    }

    fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client())
    }

    async fn create<K>(&self, api: &Api<K>, object: Value) -> K
    where
        K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        let object: K = serde_json::from_value(object).expect("object shape");
        api.create(&PostParams::default(), &object)
            .await
            .expect("create")
    }

    async fn class(&self, name: &str, extra: Value) -> StorageClass {
        let mut class = json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": { "name": name }, "provisioner": DRIVER,
        });
        merge(&mut class, extra);
        self.create(&Api::all(self.client()), class).await
    }

    /// A claim the binder has handed to `provisioner` (annotation set).
    async fn claim(
        &self,
        name: &str,
        class: &str,
        size: &str,
        extra: Value,
    ) -> PersistentVolumeClaim {
        let mut claim = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": { "name": name, "namespace": NS,
                          "annotations": { wellknown::ANN_STORAGE_PROVISIONER: DRIVER } },
            "spec": { "accessModes": ["ReadWriteOnce"], "storageClassName": class,
                      "resources": { "requests": { "storage": size } } },
        });
        merge(&mut claim, extra);
        self.create(&self.claims(), claim).await
    }

    async fn pv_for(&self, claim: &PersistentVolumeClaim) -> PersistentVolume {
        let name = format!("pvc-{}", claim.metadata.uid.as_deref().unwrap());
        let volumes = self.volumes();
        eventually(WAIT, &format!("PV {name}"), || async {
            volumes.get_opt(&name).await.unwrap()
        })
        .await
    }

    async fn driver_volumes(&self) -> BTreeSet<String> {
        let listed = self
            .driver
            .client
            .list_volumes(proto::ListVolumesRequest::default())
            .await
            .unwrap();
        listed
            .entries
            .into_iter()
            .filter_map(|e| e.volume.map(|v| v.volume_id))
            .collect()
    }

    /// Notes of the events about `name` with `reason`.
    async fn events(&self, name: &str, reason: &str) -> Vec<String> {
        let events: Api<Event> = Api::all(self.client());
        let list = events.list(&Default::default()).await.unwrap();
        list.items
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .map(|e| e.message.unwrap_or_default())
            .collect()
    }

    async fn wait_event(&self, name: &str, reason: &str, containing: &str) -> String {
        eventually(
            WAIT,
            &format!("{reason} event on {name} with {containing:?}"),
            || async {
                self.events(name, reason)
                    .await
                    .into_iter()
                    .find(|m| m.contains(containing))
            },
        )
        .await
    }

    /// What the binder does once the PV exists: claim and PV Bound to each other.
    async fn bind(&self, claim: &PersistentVolumeClaim, pv: &PersistentVolume) {
        let name = claim.metadata.name.clone().unwrap();
        let pv_name = pv.metadata.name.clone().unwrap();
        let patch = json!({ "spec": { "volumeName": pv_name } });
        self.claims()
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let status = json!({ "status": { "phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                         "capacity": pv.spec.as_ref().unwrap().capacity } });
        self.claims()
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        let pv_status = json!({ "status": { "phase": "Bound" } });
        self.volumes()
            .patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&pv_status))
            .await
            .unwrap();
    }

    /// A Node and its CSINode reporting the driver's topology key with `host`.
    async fn node(&self, name: &str, host: &str) {
        let node = json!({ "apiVersion": "v1", "kind": "Node",
                           "metadata": { "name": name, "labels": { HOST_KEY: host } } });
        self.create::<Node>(&Api::all(self.client()), node).await;
        let csi_node = json!({ "apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
                               "metadata": { "name": name },
                               "spec": { "drivers": [{ "name": DRIVER, "nodeID": name, "topologyKeys": [HOST_KEY] }] } });
        self.create::<CSINode>(&Api::all(self.client()), csi_node)
            .await;
    }

    /// Stages `handle` at a fresh path under the driver's dir (ext4, read-write).
    async fn stage(&self, handle: &str, path: &str) -> std::path::PathBuf {
        let staging = self.driver.path(path);
        self.driver
            .client
            .node_stage_volume(proto::NodeStageVolumeRequest {
                volume_id: handle.into(),
                staging_target_path: staging.display().to_string(),
                volume_capability: Some(mount_capability()),
                ..Default::default()
            })
            .await
            .expect("stage");
        staging
    }

    async fn unstage(&self, handle: &str, staging: &std::path::Path) {
        self.driver
            .client
            .node_unstage_volume(proto::NodeUnstageVolumeRequest {
                volume_id: handle.into(),
                staging_target_path: staging.display().to_string(),
            })
            .await
            .expect("unstage");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop_loop();
    }
}

fn mount_capability() -> proto::VolumeCapability {
    proto::VolumeCapability {
        access_mode: Some(volume_capability::AccessMode {
            mode: volume_capability::access_mode::Mode::SingleNodeWriter as i32,
        }),
        access_type: Some(volume_capability::AccessType::Mount(
            volume_capability::MountVolume::default(),
        )),
    }
}

fn merge(target: &mut Value, extra: Value) {
    match (target, extra) {
        (Value::Object(t), Value::Object(e)) => {
            for (k, v) in e {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, e) => *t = e,
    }
}

fn handle(pv: &PersistentVolume) -> String {
    pv.spec
        .as_ref()
        .unwrap()
        .csi
        .as_ref()
        .unwrap()
        .volume_handle
        .clone()
}

fn bytes(pv: &PersistentVolume) -> u64 {
    let capacity = pv.spec.as_ref().unwrap().capacity.as_ref().unwrap();
    volplane_api::quantity::to_bytes(&capacity["storage"].0).unwrap()
}

#[tokio::test]
async fn immediate_claim_gets_a_prebound_pv_with_the_class_settings() {
    let h = Harness::start().await;
    let secret = json!({ "apiVersion": "v1", "kind": "Secret",
                         "metadata": { "name": "data-creds", "namespace": NS },
                         "stringData": { "token": "t" } });
    h.create::<Secret>(&Api::namespaced(h.client(), NS), secret)
        .await;
    h.class(
        "fast",
        json!({
            "reclaimPolicy": "Retain",
            "mountOptions": ["noatime"],
            "parameters": {
                "csi.storage.k8s.io/fstype": "xfs",
                "csi.storage.k8s.io/provisioner-secret-name": "${pvc.name}-creds",
                "csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}",
                "csi.storage.k8s.io/node-stage-secret-name": "${pv.name}",
                "csi.storage.k8s.io/node-stage-secret-namespace": "kube-system",
            },
        }),
    )
    .await;
    let claim = h.claim("data", "fast", "400Mi", json!({})).await;
    let pv = h.pv_for(&claim).await;

    let meta = &pv.metadata;
    let spec = pv.spec.clone().unwrap();
    let csi = spec.csi.clone().unwrap();
    let claim_ref = spec.claim_ref.clone().unwrap();
    assert_eq!(claim_ref.uid, claim.metadata.uid);
    assert_eq!(
        (claim_ref.name.as_deref(), claim_ref.namespace.as_deref()),
        (Some("data"), Some(NS))
    );
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    assert_eq!(spec.mount_options, Some(vec!["noatime".to_string()]));
    assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_string()]));
    assert!(bytes(&pv) >= 400 << 20);
    assert!(
        meta.finalizers
            .iter()
            .flatten()
            .any(|f| f == wellknown::FINALIZER_EXTERNAL_PROVISIONER)
    );
    let annotations = meta.annotations.clone().unwrap();
    assert_eq!(annotations[wellknown::ANN_PROVISIONED_BY], DRIVER);
    assert_eq!(
        annotations[wellknown::ANN_PROVISIONER_DELETION_SECRET_NAME],
        "data-creds"
    );
    assert_eq!(
        annotations[wellknown::ANN_PROVISIONER_DELETION_SECRET_NAMESPACE],
        NS
    );
    assert_eq!(csi.driver, DRIVER);
    assert_eq!(csi.fs_type.as_deref(), Some("xfs"));
    let stage_ref = csi.node_stage_secret_ref.unwrap();
    assert_eq!(stage_ref.name, meta.name);
    assert_eq!(stage_ref.namespace.as_deref(), Some("kube-system"));
    assert!(
        csi.volume_attributes
            .unwrap()
            .contains_key(wellknown::VOLUME_ATTRIBUTE_PROVISIONER_IDENTITY)
    );
    // The driver reports where the volume lives; that becomes the PV's node affinity.
    let terms = spec
        .node_affinity
        .unwrap()
        .required
        .unwrap()
        .node_selector_terms;
    let expression = &terms[0].match_expressions.as_ref().unwrap()[0];
    assert_eq!(
        (expression.key.as_str(), expression.operator.as_str()),
        (HOST_KEY, "In")
    );
    assert_eq!(
        expression.values.as_deref(),
        Some(&[common::TOPOLOGY_HOST.to_string()][..])
    );
    assert_eq!(
        h.driver_volumes().await,
        BTreeSet::from([csi.volume_handle])
    );

    h.wait_event(
        "data",
        "Provisioning",
        "External provisioner is provisioning volume for claim \"default/data\"",
    )
    .await;
    h.wait_event(
        "data",
        "ProvisioningSucceeded",
        &format!(
            "Successfully provisioned volume {}",
            meta.name.as_deref().unwrap()
        ),
    )
    .await;
}

#[tokio::test]
async fn block_claims_get_block_volumes_without_a_filesystem() {
    let h = Harness::start().await;
    h.class(
        "raw",
        json!({ "parameters": { "csi.storage.k8s.io/fstype": "ext4" } }),
    )
    .await;
    let claim = h
        .claim(
            "disk",
            "raw",
            "8Mi",
            json!({ "spec": { "volumeMode": "Block", "accessModes": ["ReadWriteOncePod"] } }),
        )
        .await;
    let pv = h.pv_for(&claim).await;
    let spec = pv.spec.unwrap();
    assert_eq!(spec.volume_mode.as_deref(), Some("Block"));
    assert_eq!(spec.csi.unwrap().fs_type, None);
    assert_eq!(
        spec.access_modes,
        Some(vec!["ReadWriteOncePod".to_string()])
    );
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
}

#[tokio::test]
async fn wait_for_first_consumer_waits_for_the_selected_node() {
    let h = Harness::start().await;
    h.class(
        "late",
        json!({ "volumeBindingMode": "WaitForFirstConsumer" }),
    )
    .await;
    h.node(common::NODE, common::TOPOLOGY_HOST).await;
    let claim = h.claim("late", "late", "16Mi", json!({})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        h.volumes()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        h.events("late", "Provisioning").await.is_empty(),
        "nothing happens before a node is selected"
    );
    assert!(h.driver_volumes().await.is_empty());

    let patch =
        json!({ "metadata": { "annotations": { wellknown::ANN_SELECTED_NODE: common::NODE } } });
    h.claims()
        .patch("late", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let pv = h.pv_for(&claim).await;
    let terms = pv
        .spec
        .unwrap()
        .node_affinity
        .unwrap()
        .required
        .unwrap()
        .node_selector_terms;
    let expression = &terms[0].match_expressions.as_ref().unwrap()[0];
    assert_eq!(
        expression.values.as_deref(),
        Some(&[common::TOPOLOGY_HOST.to_string()][..])
    );
}

#[tokio::test]
async fn allowed_topologies_become_the_requisite_topology() {
    let h = Harness::start().await;
    let allowed = |host: &str| json!({ "allowedTopologies": [{ "matchLabelExpressions": [{ "key": HOST_KEY, "values": [host] }] }] });
    h.class("here", allowed(common::TOPOLOGY_HOST)).await;
    h.class("elsewhere", allowed("node-b")).await;
    let here = h.claim("here", "here", "16Mi", json!({})).await;
    h.pv_for(&here).await;
    // The driver can only make volumes on its own host: a class allowing only another host fails.
    h.claim("elsewhere", "elsewhere", "16Mi", json!({})).await;
    h.wait_event("elsewhere", "ProvisioningFailed", "ResourceExhausted")
        .await;
    assert_eq!(h.driver_volumes().await.len(), 1);
}

#[tokio::test]
async fn a_node_that_cannot_host_the_volume_is_unselected() {
    let h = Harness::start().await;
    h.class(
        "late",
        json!({ "volumeBindingMode": "WaitForFirstConsumer" }),
    )
    .await;
    h.node("node-b", "node-b").await;
    let selected = |node: &str| json!({ "metadata": { "annotations": { wellknown::ANN_SELECTED_NODE: node } } });
    for (claim, node) in [("far", "node-b"), ("ghost", "no-such-node")] {
        h.claim(claim, "late", "16Mi", selected(node)).await;
        let claims = h.claims();
        eventually(
            WAIT,
            &format!("selected-node removed from {claim}"),
            || async {
                let c = claims.get(claim).await.unwrap();
                (!c.metadata
                    .annotations
                    .unwrap_or_default()
                    .contains_key(wellknown::ANN_SELECTED_NODE))
                .then_some(())
            },
        )
        .await;
    }
    h.wait_event("far", "ProvisioningFailed", "ResourceExhausted")
        .await;
    h.wait_event("ghost", "ProvisioningFailed", "no-such-node")
        .await;
    assert!(
        h.volumes()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(h.driver_volumes().await.is_empty());
}

#[tokio::test]
async fn a_failing_create_volume_is_reported_and_retried() {
    let h = Harness::start().await;
    h.class("fast", json!({})).await;
    h.claim("huge", "fast", "100Pi", json!({})).await;
    let events = eventually(WAIT, "two ProvisioningFailed events", || async {
        let events = h.events("huge", "ProvisioningFailed").await;
        // Repeated events are one Event object with a growing count; count the retries by
        // the series the recorder keeps.
        let list: Api<Event> = Api::all(h.client());
        let retried = list
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.involved_object.name.as_deref() == Some("huge")
                    && e.reason.as_deref() == Some("ProvisioningFailed")
                    && (e.count.unwrap_or(1) > 1
                        || e.series
                            .as_ref()
                            .and_then(|s| s.count)
                            .is_some_and(|c| c > 1))
            });
        (retried && !events.is_empty()).then_some(events)
    })
    .await;
    assert!(
        events[0].starts_with(
            "failed to provision volume with StorageClass \"fast\": rpc error: code = OutOfRange"
        ),
        "{events:?}"
    );
    assert!(
        h.volumes()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(h.driver_volumes().await.is_empty());
}

#[tokio::test]
async fn a_driver_without_endpoint_is_named_until_its_csidriver_registers_one() {
    let h = Harness::start().await;
    let other = "other.csi.example.com";
    h.class("other", json!({ "provisioner": other })).await;
    let claim = h
        .claim(
            "other",
            "other",
            "16Mi",
            json!({ "metadata": { "annotations": { wellknown::ANN_STORAGE_PROVISIONER: other } } }),
        )
        .await;
    h.wait_event(
        "other",
        "ProvisioningFailed",
        &format!("no endpoint is registered for CSI driver \"{other}\""),
    )
    .await;
    // The same built-in driver, reached under another name through its CSIDriver object.
    let csi_driver = json!({ "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                             "metadata": { "name": other, "annotations": { ANN_CONTROLLER_ENDPOINT: h.driver.endpoint() } },
                             "spec": {} });
    h.create::<CSIDriver>(&Api::all(h.client()), csi_driver)
        .await;
    let pv = h.pv_for(&claim).await;
    assert_eq!(pv.spec.unwrap().csi.unwrap().driver, other);
    Api::<CSIDriver>::all(h.client())
        .delete(other, &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "the registration to go", || async {
        (!h.registry.contains(other)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_restarted_provisioner_makes_one_volume_and_one_pv_per_claim() {
    let mut h = Harness::start().await;
    h.class("fast", json!({})).await;
    h.stop_loop();
    let mut claims = Vec::new();
    for i in 0..30 {
        claims.push(h.claim(&format!("c-{i}"), "fast", "16Mi", json!({})).await);
    }
    h.start_loop();
    // Stop it in the middle of the burst, then start again.
    eventually(WAIT, "some volumes", || async {
        (!h.driver_volumes().await.is_empty()).then_some(())
    })
    .await;
    h.stop_loop();
    h.start_loop();
    let mut handles = BTreeSet::new();
    for claim in &claims {
        handles.insert(handle(&h.pv_for(claim).await));
    }
    assert_eq!(handles.len(), claims.len());
    assert_eq!(
        h.volumes()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        claims.len()
    );
    assert_eq!(h.driver_volumes().await, handles);
}

#[tokio::test]
async fn delete_reclaim_waits_for_the_attachment_then_deletes_volume_and_pv() {
    let h = Harness::start().await;
    h.class("fast", json!({})).await;
    let claim = h.claim("gone", "fast", "16Mi", json!({})).await;
    let pv = h.pv_for(&claim).await;
    let pv_name = pv.metadata.name.clone().unwrap();
    let attachment = json!({ "apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                             "metadata": { "name": "csi-test-attachment" },
                             "spec": { "attacher": DRIVER, "nodeName": common::NODE,
                                       "source": { "persistentVolumeName": pv_name } } });
    h.create::<VolumeAttachment>(&Api::all(h.client()), attachment)
        .await;
    // The claim is deleted and the binder releases the PV.
    let released = json!({ "status": { "phase": "Released" } });
    h.volumes()
        .patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&released))
        .await
        .unwrap();
    h.wait_event(
        &pv_name,
        "VolumeFailedDelete",
        &format!(
            "persistentvolume {pv_name} is still attached to node {}",
            common::NODE
        ),
    )
    .await;
    assert_eq!(h.driver_volumes().await, BTreeSet::from([handle(&pv)]));

    Api::<VolumeAttachment>::all(h.client())
        .delete("csi-test-attachment", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "the CSI volume deleted", || async {
        h.driver_volumes().await.is_empty().then_some(())
    })
    .await;
    let volumes = h.volumes();
    let deleting = eventually(
        WAIT,
        "the PV deleted, provisioner finalizer removed",
        || async {
            let pv = volumes.get_opt(&pv_name).await.unwrap()?;
            let finalizers = pv.metadata.finalizers.clone().unwrap_or_default();
            (pv.metadata.deletion_timestamp.is_some()
                && !finalizers
                    .iter()
                    .any(|f| f == wellknown::FINALIZER_EXTERNAL_PROVISIONER))
            .then_some(finalizers)
        },
    )
    .await;
    // What remains is pv-protection, which the protection controller removes for an unbound PV.
    assert_eq!(
        deleting,
        vec![wellknown::FINALIZER_PV_PROTECTION.to_string()]
    );
    let patch = json!({ "metadata": { "finalizers": null } });
    volumes
        .patch(&pv_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually(WAIT, "the PV gone", || async {
        volumes
            .get_opt(&pv_name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_clone_has_the_data_of_its_source() {
    let h = Harness::start().await;
    h.class("fast", json!({})).await;
    let source = h.claim("source", "fast", "32Mi", json!({})).await;
    let source_pv = h.pv_for(&source).await;
    h.bind(&source, &source_pv).await;
    let staging = h.stage(&handle(&source_pv), "stage-source").await;
    std::fs::write(staging.join("hello.txt"), b"cloned bytes").unwrap();
    h.unstage(&handle(&source_pv), &staging).await;

    let clone = h.claim("clone", "fast", "32Mi", json!({ "spec": { "dataSource": { "kind": "PersistentVolumeClaim", "name": "source" } } })).await;
    let clone_pv = h.pv_for(&clone).await;
    assert_ne!(handle(&clone_pv), handle(&source_pv));
    let staging = h.stage(&handle(&clone_pv), "stage-clone").await;
    assert_eq!(
        std::fs::read(staging.join("hello.txt")).unwrap(),
        b"cloned bytes"
    );
    h.unstage(&handle(&clone_pv), &staging).await;

    // A clone smaller than its source is refused.
    h.claim(
        "small",
        "fast",
        "16Mi",
        json!({ "spec": { "dataSource": { "kind": "PersistentVolumeClaim", "name": "source" } } }),
    )
    .await;
    h.wait_event(
        "small",
        "ProvisioningFailed",
        "must be greater than or equal in size",
    )
    .await;
}

#[tokio::test]
async fn a_restored_snapshot_has_the_data_of_its_volume() {
    let h = Harness::start().await;
    h.class("fast", json!({})).await;
    let source = h.claim("source", "fast", "32Mi", json!({})).await;
    let source_pv = h.pv_for(&source).await;
    let staging = h.stage(&handle(&source_pv), "stage-source").await;
    std::fs::write(staging.join("hello.txt"), b"snapshotted bytes").unwrap();
    h.unstage(&handle(&source_pv), &staging).await;
    let snapshot = h
        .driver
        .client
        .create_snapshot(proto::CreateSnapshotRequest {
            source_volume_id: handle(&source_pv),
            name: "snapshot-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot
        .unwrap();

    // What the snapshot controllers would have written: a VolumeSnapshot bound to its content.
    let snapshots: Api<VolumeSnapshot> = Api::namespaced(h.client(), NS);
    let vs = h
        .create(
            &snapshots,
            json!({
                "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": { "name": "snap", "namespace": NS },
                "spec": { "source": { "volumeSnapshotContentName": "snapcontent-1" } },
            }),
        )
        .await;
    let contents: Api<VolumeSnapshotContent> = Api::all(h.client());
    h.create(&contents, json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
        "metadata": { "name": "snapcontent-1" },
        "spec": { "deletionPolicy": "Delete", "driver": DRIVER,
                  "source": { "snapshotHandle": snapshot.snapshot_id },
                  "volumeSnapshotRef": { "name": "snap", "namespace": NS, "uid": vs.metadata.uid } },
    })).await;
    let content_status = json!({ "status": { "snapshotHandle": snapshot.snapshot_id, "readyToUse": true,
                                             "restoreSize": snapshot.size_bytes } });
    contents
        .patch_status(
            "snapcontent-1",
            &PatchParams::default(),
            &Patch::Merge(&content_status),
        )
        .await
        .unwrap();
    let not_ready = json!({ "status": { "boundVolumeSnapshotContentName": "snapcontent-1", "readyToUse": false } });
    snapshots
        .patch_status("snap", &PatchParams::default(), &Patch::Merge(&not_ready))
        .await
        .unwrap();

    let source_ref = json!({ "spec": { "dataSourceRef": { "apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap" } } });
    let restored = h.claim("restored", "fast", "32Mi", source_ref).await;
    h.wait_event(
        "restored",
        "ProvisioningFailed",
        "snapshot snap is not Ready",
    )
    .await;
    let ready = json!({ "status": { "readyToUse": true, "restoreSize": volplane_controllers::csi_drivers::quantity_from_bytes(snapshot.size_bytes) } });
    snapshots
        .patch_status("snap", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();

    let restored_pv = h.pv_for(&restored).await;
    let staging = h.stage(&handle(&restored_pv), "stage-restored").await;
    assert_eq!(
        std::fs::read(staging.join("hello.txt")).unwrap(),
        b"snapshotted bytes"
    );
    h.unstage(&handle(&restored_pv), &staging).await;
}

/// The burst: 1,000 claims provisioned by the built-in driver. Run with `--ignored
/// --nocapture`; it prints the time from the first claim to the last PV (the binder is not
/// part of it).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn thousand_claims_are_provisioned() {
    use futures::StreamExt;
    let h = Harness::start().await;
    h.class("fast", json!({})).await;
    let start = std::time::Instant::now();
    futures::stream::iter(0..1000)
        .map(|i| {
            let h = &h;
            async move {
                h.claim(&format!("burst-{i}"), "fast", "16Mi", json!({}))
                    .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let created = start.elapsed();
    eventually(Duration::from_secs(120), "1000 PVs", || async {
        (h.volumes()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len()
            == 1000)
            .then_some(())
    })
    .await;
    eprintln!(
        "1000 claims created in {created:?}, all provisioned after {:?}",
        start.elapsed()
    );
    assert_eq!(h.driver_volumes().await.len(), 1000);
}
