//! The CSI resizer against a real API server and the built-in CSI driver. The claim and its PV
//! are made and bound here as the provisioner and the binder would have.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{ApiServer, CsiDriver, eventually};
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use volplane_controllers::csi_drivers::Registry;
use volplane_controllers::{Context, ManagerConfig, expander};
use volplane_csi::proto::{self, volume_capability};

const DRIVER: &str = "local.csi.volplane.io";
const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(30);

struct Harness {
    api: ApiServer,
    driver: CsiDriver,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Harness {
    async fn start() -> Self {
        let api = ApiServer::start().await;
        let driver = CsiDriver::start().await;
        let registry = Arc::new(Registry::new());
        registry.register(DRIVER, &driver.endpoint()).unwrap();
        let ctx = Context::new(api.client.clone(), ManagerConfig::default());
        let task =
            tokio::spawn(async move { expander::run(ctx, registry).await.expect("expander runs") });
        Self { api, driver, task }
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.api.client.clone(), NS)
    }

    fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.api.client.clone())
    }

    /// A 64Mi ext4 volume, its PV and claim, Bound to each other.
    async fn bound_claim(&self, name: &str) -> String {
        let class: StorageClass = serde_json::from_value(json!({
            "metadata": { "name": "growable" }, "provisioner": DRIVER, "allowVolumeExpansion": true,
        }))
        .unwrap();
        let _ = Api::<StorageClass>::all(self.api.client.clone())
            .create(&PostParams::default(), &class)
            .await;
        let volume = self
            .driver
            .client
            .create_volume(proto::CreateVolumeRequest {
                name: format!("vol-{name}"),
                capacity_range: Some(proto::CapacityRange {
                    required_bytes: 64 << 20,
                    limit_bytes: 0,
                }),
                volume_capabilities: vec![proto::VolumeCapability {
                    access_mode: Some(volume_capability::AccessMode {
                        mode: volume_capability::access_mode::Mode::SingleNodeWriter as i32,
                    }),
                    access_type: Some(volume_capability::AccessType::Mount(
                        volume_capability::MountVolume {
                            fs_type: "ext4".into(),
                            ..Default::default()
                        },
                    )),
                }],
                ..Default::default()
            })
            .await
            .unwrap()
            .volume
            .unwrap();
        let pv_name = format!("pv-{name}");
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": NS },
            "spec": { "accessModes": ["ReadWriteOnce"], "storageClassName": "growable", "volumeName": pv_name,
                      "resources": { "requests": { "storage": "64Mi" } } },
        }))
        .unwrap();
        let claim = self
            .claims()
            .create(&PostParams::default(), &claim)
            .await
            .unwrap();
        let pv: PersistentVolume = serde_json::from_value(json!({
            "metadata": { "name": pv_name },
            "spec": { "accessModes": ["ReadWriteOnce"], "capacity": { "storage": "64Mi" },
                      "storageClassName": "growable", "persistentVolumeReclaimPolicy": "Delete",
                      "claimRef": { "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": NS,
                                    "name": name, "uid": claim.metadata.uid },
                      "csi": { "driver": DRIVER, "volumeHandle": volume.volume_id, "fsType": "ext4" } },
        }))
        .unwrap();
        self.volumes()
            .create(&PostParams::default(), &pv)
            .await
            .unwrap();
        let bound = json!({ "status": { "phase": "Bound" } });
        self.volumes()
            .patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&bound))
            .await
            .unwrap();
        let bound = json!({ "status": { "phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": { "storage": "64Mi" } } });
        self.claims()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&bound))
            .await
            .unwrap();
        volume.volume_id
    }

    async fn request(&self, name: &str, size: &str) {
        let patch = json!({ "spec": { "resources": { "requests": { "storage": size } } } });
        self.claims()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("resize allowed");
    }

    async fn driver_capacity(&self, handle: &str) -> i64 {
        let listed = self
            .driver
            .client
            .list_volumes(proto::ListVolumesRequest::default())
            .await
            .unwrap();
        listed
            .entries
            .into_iter()
            .filter_map(|e| e.volume)
            .find(|v| v.volume_id == handle)
            .unwrap()
            .capacity_bytes
    }

    async fn wait_event(&self, name: &str, reason: &str, containing: &str) -> String {
        let events: Api<Event> = Api::all(self.api.client.clone());
        eventually(WAIT, &format!("{reason} event on {name}"), || async {
            events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find_map(|e| {
                    let message = e.message.unwrap_or_default();
                    (e.involved_object.name.as_deref() == Some(name)
                        && e.reason.as_deref() == Some(reason)
                        && message.contains(containing))
                    .then_some(message)
                })
        })
        .await
    }
}

fn storage_status(claim: &PersistentVolumeClaim) -> (Option<String>, Option<String>) {
    let status = claim.status.clone().unwrap_or_default();
    (
        status
            .allocated_resources
            .and_then(|m| m.get("storage").map(|q| q.0.clone())),
        status
            .allocated_resource_statuses
            .and_then(|m| m.get("storage").cloned()),
    )
}

fn conditions(claim: &PersistentVolumeClaim) -> Vec<String> {
    let status = claim.status.clone().unwrap_or_default();
    status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.status == "True")
        .map(|c| c.type_)
        .collect()
}

#[tokio::test]
async fn controller_expansion_leaves_the_filesystem_to_the_node() {
    let h = Harness::start().await;
    let handle = h.bound_claim("data").await;
    h.request("data", "128Mi").await;

    let volumes = h.volumes();
    eventually(WAIT, "the PV at 128Mi", || async {
        let pv = volumes.get("pv-data").await.unwrap();
        (pv.spec.unwrap().capacity.unwrap()["storage"].0 == "128Mi").then_some(())
    })
    .await;
    let claims = h.claims();
    let claim = eventually(WAIT, "NodeResizePending", || async {
        let claim = claims.get("data").await.unwrap();
        (storage_status(&claim).1.as_deref() == Some("NodeResizePending")).then_some(claim)
    })
    .await;
    assert_eq!(storage_status(&claim).0.as_deref(), Some("128Mi"));
    assert!(
        conditions(&claim).contains(&"FileSystemResizePending".to_string()),
        "{:?}",
        conditions(&claim)
    );
    // The node finishes the expansion: until then the claim reports its old capacity.
    assert_eq!(claim.status.unwrap().capacity.unwrap()["storage"].0, "64Mi");
    assert_eq!(h.driver_capacity(&handle).await, 128 << 20);
    h.wait_event(
        "data",
        "Resizing",
        "External resizer is resizing volume pv-data",
    )
    .await;
    h.wait_event(
        "data",
        "FileSystemResizeRequired",
        "Require file system resize of volume on node",
    )
    .await;
}

#[tokio::test]
async fn an_infeasible_expansion_is_recorded_and_the_volume_kept() {
    let h = Harness::start().await;
    let handle = h.bound_claim("huge").await;
    h.request("huge", "100Pi").await;
    let claims = h.claims();
    let claim = eventually(WAIT, "ControllerResizeInfeasible", || async {
        let claim = claims.get("huge").await.unwrap();
        (storage_status(&claim).1.as_deref() == Some("ControllerResizeInfeasible")).then_some(claim)
    })
    .await;
    assert_eq!(storage_status(&claim).0.as_deref(), Some("100Pi"));
    assert!(
        conditions(&claim).contains(&"ControllerResizeError".to_string()),
        "{:?}",
        conditions(&claim)
    );
    h.wait_event("huge", "VolumeResizeFailed", "resize volume \"pv-huge\" by resizer \"local.csi.volplane.io\" failed: rpc error: code = OutOfRange").await;
    let pv = h.volumes().get("pv-huge").await.unwrap();
    assert_eq!(pv.spec.unwrap().capacity.unwrap()["storage"].0, "64Mi");
    assert_eq!(h.driver_capacity(&handle).await, 64 << 20);
}
