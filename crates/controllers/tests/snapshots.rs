//! Snapshots end to end: the snapshot controller and the CSI snapshotter against a real API
//! server and the built-in CSI driver on a real socket. Claims are bound by hand (the binder
//! is not under test): a CSI volume made with CreateVolume, a PV naming it, a claim naming the
//! PV, both statuses Bound.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{ApiServer, CsiDriver, eventually};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use volplane_api::snapshot::{VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent};
use volplane_controllers::csi_drivers::Registry;
use volplane_controllers::{Context, ManagerConfig, csi_snapshotter, snapshot_controller};
use volplane_csi::{DRIVER_NAME, proto};

const NS: &str = "default";
const SIZE: i64 = 64 << 20;
const WAIT: Duration = Duration::from_secs(30);

const AS_SOURCE: &str = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection";
const BOUND: &str = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection";
const CONTENT_BOUND: &str = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection";
const PVC_AS_SOURCE: &str = "snapshot.storage.kubernetes.io/pvc-as-source-protection";
const BEING_CREATED: &str = "snapshot.storage.kubernetes.io/volumesnapshot-being-created";
const BEING_DELETED: &str = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted";

/// An API server, the built-in driver, and the two snapshot loops (stopped on drop).
struct Env {
    loops: Vec<JoinHandle<()>>,
    api: ApiServer,
    driver: CsiDriver,
    registry: Arc<Registry>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop_loops();
    }
}

impl Env {
    async fn start() -> Self {
        let api = ApiServer::start().await;
        let driver = CsiDriver::start().await;
        let registry = Arc::new(Registry::new());
        registry.register(DRIVER_NAME, &driver.endpoint()).unwrap();
        let mut env = Self {
            loops: vec![],
            api,
            driver,
            registry,
        };
        env.start_loops();
        env
    }

    fn start_loops(&mut self) {
        let ctx = Context::new(self.api.client.clone(), ManagerConfig::default());
        let (c, r) = (ctx.clone(), self.registry.clone());
        self.loops.push(tokio::spawn(async move {
            let _ = snapshot_controller::run(c).await;
        }));
        self.loops.push(tokio::spawn(async move {
            let _ = csi_snapshotter::run(ctx, r).await;
        }));
    }

    fn stop_loops(&mut self) {
        for task in self.loops.drain(..) {
            task.abort();
        }
    }

    fn client(&self) -> kube::Client {
        self.api.client.clone()
    }

    fn snapshots(&self) -> Api<VolumeSnapshot> {
        Api::namespaced(self.client(), NS)
    }

    fn contents(&self) -> Api<VolumeSnapshotContent> {
        Api::all(self.client())
    }

    fn claims(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client(), NS)
    }

    async fn create<K>(&self, api: &Api<K>, object: Value) -> K
    where
        K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        let object: K = serde_json::from_value(object).expect("valid object");
        api.create(&PostParams::default(), &object)
            .await
            .expect("created")
    }

    /// A CSI volume on the driver.
    async fn volume(&self, name: &str) -> String {
        self.driver
            .client
            .create_volume(proto::CreateVolumeRequest {
                name: name.into(),
                capacity_range: Some(proto::CapacityRange {
                    required_bytes: SIZE,
                    limit_bytes: 0,
                }),
                volume_capabilities: vec![rwo()],
                ..Default::default()
            })
            .await
            .expect("CreateVolume")
            .volume
            .unwrap()
            .volume_id
    }

    /// A claim `name` Bound to a PV `pv-<name>` over a new CSI volume; returns the volume id.
    async fn bound_claim(&self, name: &str) -> String {
        let volume_id = self.volume(name).await;
        let pv_name = format!("pv-{name}");
        let claim: PersistentVolumeClaim = self
            .create(
                &self.claims(),
                json!({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": name, "namespace": NS},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                             "resources": {"requests": {"storage": "64Mi"}},
                             "volumeName": pv_name}
                }),
            )
            .await;
        let volumes: Api<PersistentVolume> = Api::all(self.client());
        self.create(
            &volumes,
            json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": pv_name},
                "spec": {"capacity": {"storage": "64Mi"}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                         "volumeMode": "Filesystem",
                         "csi": {"driver": DRIVER_NAME, "volumeHandle": volume_id, "fsType": "ext4"},
                         "claimRef": {"kind": "PersistentVolumeClaim", "namespace": NS, "name": name,
                                      "uid": claim.metadata.uid}}
            }),
        )
        .await;
        let bound = json!({"status": {"phase": "Bound"}});
        volumes
            .patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&bound))
            .await
            .expect("PV Bound");
        let bound = json!({"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                      "capacity": {"storage": "64Mi"}}});
        self.claims()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&bound))
            .await
            .expect("claim Bound");
        volume_id
    }

    async fn class(
        &self,
        name: &str,
        policy: &str,
        default: bool,
        parameters: Value,
    ) -> VolumeSnapshotClass {
        let mut class = json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": name},
            "driver": DRIVER_NAME, "deletionPolicy": policy, "parameters": parameters,
        });
        if default {
            class["metadata"]["annotations"] =
                json!({"snapshot.storage.kubernetes.io/is-default-class": "true"});
        }
        self.create(&Api::all(self.client()), class).await
    }

    async fn snapshot(&self, name: &str, claim: &str, class: Option<&str>) -> VolumeSnapshot {
        let mut spec = json!({"source": {"persistentVolumeClaimName": claim}});
        if let Some(class) = class {
            spec["volumeSnapshotClassName"] = json!(class);
        }
        self.create(
            &self.snapshots(),
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                   "metadata": {"name": name, "namespace": NS}, "spec": spec}),
        )
        .await
    }

    async fn ready(&self, name: &str) -> VolumeSnapshot {
        let api = self.snapshots();
        eventually(WAIT, &format!("snapshot {name} ready"), || async {
            let s = api.get(name).await.ok()?;
            let status = s.status.as_ref()?;
            (status.ready_to_use == Some(true)).then_some(s)
        })
        .await
    }

    /// Waits until the snapshot's `status.error` contains `text`; returns the message.
    async fn error_containing(&self, name: &str, text: &str) -> String {
        let api = self.snapshots();
        eventually(
            WAIT,
            &format!("snapshot {name} error with {text:?}"),
            || async {
                let s = api.get(name).await.ok()?;
                let message = s.status?.error?.message?;
                message.contains(text).then_some(message)
            },
        )
        .await
    }

    async fn content_of(&self, snapshot: &VolumeSnapshot) -> VolumeSnapshotContent {
        let name = snapshot
            .status
            .as_ref()
            .and_then(|s| s.bound_volume_snapshot_content_name.clone())
            .expect("bound");
        self.contents().get(&name).await.expect("content exists")
    }

    /// The driver's snapshots of `volume_id`.
    async fn driver_snapshots(&self, volume_id: &str) -> Vec<proto::Snapshot> {
        self.driver
            .client
            .list_snapshots(proto::ListSnapshotsRequest {
                source_volume_id: volume_id.into(),
                ..Default::default()
            })
            .await
            .expect("ListSnapshots")
            .entries
            .into_iter()
            .filter_map(|e| e.snapshot)
            .collect()
    }

    /// Waits for an event `reason` about object `name`; returns its note.
    async fn event(&self, name: &str, reason: &str) -> String {
        let events: Api<Event> = Api::namespaced(self.client(), NS);
        eventually(WAIT, &format!("event {reason} about {name}"), || async {
            let list = events.list(&Default::default()).await.ok()?;
            list.items.into_iter().find_map(|e| {
                let about = e.regarding.as_ref()?.name.as_deref()? == name;
                (about && e.reason.as_deref() == Some(reason)).then(|| e.note.unwrap_or_default())
            })
        })
        .await
    }

    async fn gone<K>(&self, api: &Api<K>, name: &str)
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        eventually(WAIT, &format!("{name} gone"), || async {
            matches!(api.get_opt(name).await, Ok(None)).then_some(())
        })
        .await
    }
}

fn rwo() -> proto::VolumeCapability {
    use proto::volume_capability::{AccessMode, AccessType, MountVolume, access_mode::Mode};
    proto::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

fn finalizers<K: Resource>(object: &K) -> Vec<String> {
    object.meta().finalizers.clone().unwrap_or_default()
}

fn annotations<K: Resource>(object: &K) -> Vec<String> {
    object
        .meta()
        .annotations
        .clone()
        .unwrap_or_default()
        .into_keys()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dynamic_snapshot_becomes_ready_with_its_size_time_and_a_snapshot_on_the_driver() {
    let env = Env::start().await;
    let volume_id = env.bound_claim("data").await;
    env.class("csi-snap", "Delete", false, json!({})).await;
    let created = env.snapshot("snap", "data", Some("csi-snap")).await;
    let uid = created.metadata.uid.clone().unwrap();

    let snapshot = env.ready("snap").await;
    let status = snapshot.status.clone().unwrap();
    let content_name = format!("snapcontent-{uid}");
    assert_eq!(
        status.bound_volume_snapshot_content_name.as_deref(),
        Some(content_name.as_str())
    );
    assert_eq!(
        status.restore_size.as_ref().map(|q| q.0.as_str()),
        Some("64Mi")
    );
    assert!(status.creation_time.is_some());
    assert_eq!(status.error, None);

    let content = env.content_of(&snapshot).await;
    assert_eq!(content.spec.driver, DRIVER_NAME);
    assert_eq!(content.spec.deletion_policy, "Delete");
    assert_eq!(
        content.spec.volume_snapshot_class_name.as_deref(),
        Some("csi-snap")
    );
    assert_eq!(
        content.spec.source.volume_handle.as_deref(),
        Some(volume_id.as_str())
    );
    assert_eq!(
        content.spec.source_volume_mode.as_deref(),
        Some("Filesystem")
    );
    let r = &content.spec.volume_snapshot_ref;
    assert_eq!(
        (r.namespace.as_deref(), r.name.as_deref(), r.uid.as_deref()),
        (Some(NS), Some("snap"), Some(uid.as_str()))
    );
    let content_status = content.status.clone().unwrap();
    assert_eq!(content_status.ready_to_use, Some(true));
    assert_eq!(content_status.restore_size, Some(SIZE));
    assert!(
        content_status.creation_time.unwrap() > 1_600_000_000_000_000_000,
        "nanoseconds"
    );
    assert!(finalizers(&content).contains(&CONTENT_BOUND.to_string()));
    assert!(!annotations(&content).contains(&BEING_CREATED.to_string()));

    // The driver holds exactly that snapshot, named after the VolumeSnapshot.
    let on_driver = env.driver_snapshots(&volume_id).await;
    assert_eq!(on_driver.len(), 1);
    assert_eq!(
        Some(on_driver[0].snapshot_id.clone()),
        content_status.snapshot_handle
    );
    assert!(on_driver[0].ready_to_use);

    // Protection: both snapshot finalizers; the claim's is released once the snapshot is ready.
    let snapshot = eventually(WAIT, "bound finalizer", || async {
        let s = env.snapshots().get("snap").await.ok()?;
        finalizers(&s).contains(&BOUND.to_string()).then_some(s)
    })
    .await;
    assert!(finalizers(&snapshot).contains(&AS_SOURCE.to_string()));
    eventually(WAIT, "claim finalizer released", || async {
        let claim = env.claims().get("data").await.ok()?;
        (!finalizers(&claim).contains(&PVC_AS_SOURCE.to_string())).then_some(())
    })
    .await;
    let created = env.event("snap", "SnapshotCreated").await;
    assert_eq!(
        created,
        "Snapshot default/snap was successfully created by the CSI driver."
    );
    env.event("snap", "SnapshotReady").await;
    env.event("snap", "CreatingSnapshot").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_is_a_point_in_time_copy_of_the_volume() {
    let env = Env::start().await;
    let volume_id = env.bound_claim("data").await;
    env.class("csi-snap", "Delete", true, json!({})).await;
    let (_source_stage, source) = stage_and_publish(&env, &volume_id, "source").await;
    write(&source.join("file"), "v1");

    env.snapshot("before", "data", None).await;
    let snapshot = env.ready("before").await;
    write(&source.join("file"), "v2");

    let handle = env
        .content_of(&snapshot)
        .await
        .status
        .unwrap()
        .snapshot_handle
        .unwrap();
    let restored = env
        .driver
        .client
        .create_volume(proto::CreateVolumeRequest {
            name: "restored".into(),
            capacity_range: Some(proto::CapacityRange {
                required_bytes: SIZE,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![rwo()],
            volume_content_source: Some(proto::VolumeContentSource {
                r#type: Some(proto::volume_content_source::Type::Snapshot(
                    proto::volume_content_source::SnapshotSource {
                        snapshot_id: handle,
                    },
                )),
            }),
            ..Default::default()
        })
        .await
        .expect("restore")
        .volume
        .unwrap()
        .volume_id;
    let (_restored_stage, restored_target) = stage_and_publish(&env, &restored, "restored").await;
    assert_eq!(
        std::fs::read_to_string(restored_target.join("file")).unwrap(),
        "v1"
    );
    assert_eq!(std::fs::read_to_string(source.join("file")).unwrap(), "v2");
}

/// Stages and publishes `volume_id` under the driver's dir; returns (staging, target).
async fn stage_and_publish(env: &Env, volume_id: &str, name: &str) -> (PathBuf, PathBuf) {
    let staging = env.driver.path(&format!("staging/{name}"));
    let target = env.driver.path(&format!("pods/{name}/mount"));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    env.driver
        .client
        .node_stage_volume(proto::NodeStageVolumeRequest {
            volume_id: volume_id.into(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(rwo()),
            ..Default::default()
        })
        .await
        .expect("NodeStageVolume");
    env.driver
        .client
        .node_publish_volume(proto::NodePublishVolumeRequest {
            volume_id: volume_id.into(),
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(rwo()),
            ..Default::default()
        })
        .await
        .expect("NodePublishVolume");
    (staging, target)
}

fn write(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_without_a_class_gets_the_default_class_of_its_driver() {
    let env = Env::start().await;
    env.bound_claim("data").await;
    env.class("ours-not-default", "Delete", false, json!({}))
        .await;
    let api: Api<VolumeSnapshotClass> = Api::all(env.client());
    // A default of another driver and a non-default of ours must both be passed over.
    let mut foreign: VolumeSnapshotClass = serde_json::from_value(json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
        "metadata": {"name": "foreign", "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}},
        "driver": "other.csi.example.com", "deletionPolicy": "Delete"
    }))
    .unwrap();
    api.create(&PostParams::default(), &foreign).await.unwrap();
    env.class("ours", "Retain", true, json!({})).await;

    env.snapshot("snap", "data", None).await;
    let snapshot = env.ready("snap").await;
    assert_eq!(
        snapshot.spec.volume_snapshot_class_name.as_deref(),
        Some("ours")
    );
    let content = env.content_of(&snapshot).await;
    assert_eq!(content.spec.deletion_policy, "Retain");
    // Retain: no bound finalizer on the snapshot.
    assert!(!finalizers(&snapshot).contains(&BOUND.to_string()));

    // Two defaults for one driver: nothing is chosen, and the snapshot says why.
    foreign.metadata.name = Some("ours-too".into());
    foreign.driver = DRIVER_NAME.into();
    api.create(&PostParams::default(), &foreign).await.unwrap();
    env.snapshot("ambiguous", "data", None).await;
    let message = env
        .error_containing("ambiguous", "default snapshot class")
        .await;
    assert_eq!(
        message,
        "Failed to set default snapshot class with error 2 default snapshot classes were found"
    );
    env.event("ambiguous", "SetDefaultSnapshotClassFailed")
        .await;
    let ambiguous = env.snapshots().get("ambiguous").await.unwrap();
    assert_eq!(ambiguous.spec.volume_snapshot_class_name, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_provisioned_content_binds_only_the_snapshot_it_names() {
    let env = Env::start().await;
    let volume_id = env.volume("imported").await;
    let cut = env
        .driver
        .client
        .create_snapshot(proto::CreateSnapshotRequest {
            source_volume_id: volume_id.clone(),
            name: "made-outside".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot
        .unwrap();
    let content: VolumeSnapshotContent = env
        .create(
            &env.contents(),
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                   "metadata": {"name": "imported-content"},
                   "spec": {"deletionPolicy": "Delete", "driver": DRIVER_NAME,
                            "source": {"snapshotHandle": cut.snapshot_id},
                            "volumeSnapshotRef": {"name": "imported", "namespace": NS}}}),
        )
        .await;
    assert!(content.status.is_none());
    let import = json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": "imported", "namespace": NS},
        "spec": {"source": {"volumeSnapshotContentName": "imported-content"}}});
    let snapshot: VolumeSnapshot = env.create(&env.snapshots(), import.clone()).await;

    let ready = env.ready("imported").await;
    let status = ready.status.clone().unwrap();
    assert_eq!(
        status.bound_volume_snapshot_content_name.as_deref(),
        Some("imported-content")
    );
    assert_eq!(
        status.restore_size.as_ref().map(|q| q.0.as_str()),
        Some("64Mi")
    );
    assert_eq!(
        status.creation_time.as_ref().unwrap().0.as_second(),
        cut.creation_time.as_ref().unwrap().seconds
    );
    let content = eventually(WAIT, "content protected", || async {
        let c = env.contents().get("imported-content").await.ok()?;
        finalizers(&c)
            .contains(&CONTENT_BOUND.to_string())
            .then_some(c)
    })
    .await;
    assert_eq!(content.spec.volume_snapshot_ref.uid, snapshot.metadata.uid);
    assert_eq!(
        content.status.as_ref().unwrap().snapshot_handle.as_deref(),
        Some(cut.snapshot_id.as_str())
    );

    // Another snapshot naming the same content is refused, with the reason.
    let mut thief = import.clone();
    thief["metadata"]["name"] = json!("thief");
    env.create::<VolumeSnapshot>(&env.snapshots(), thief).await;
    let message = env
        .error_containing("thief", "bound to a different snapshot")
        .await;
    assert_eq!(
        message,
        "VolumeSnapshotContent [imported-content] is bound to a different snapshot"
    );
    env.event("thief", "SnapshotContentMisbound").await;
    let thief = env.snapshots().get("thief").await.unwrap();
    assert_eq!(thief.status.unwrap().ready_to_use, Some(false));

    // Deleting the snapshot (policy Delete) deletes the storage snapshot made outside.
    env.snapshots()
        .delete("imported", &DeleteParams::default())
        .await
        .unwrap();
    env.gone(&env.snapshots(), "imported").await;
    env.gone(&env.contents(), "imported-content").await;
    assert!(env.driver_snapshots(&volume_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_policy_delete_removes_the_content_and_the_storage_snapshot() {
    let env = Env::start().await;
    let volume_id = env.bound_claim("data").await;
    env.class("csi-snap", "Delete", false, json!({})).await;
    env.snapshot("snap", "data", Some("csi-snap")).await;
    let snapshot = env.ready("snap").await;
    let content_name = env.content_of(&snapshot).await.metadata.name.unwrap();
    assert_eq!(env.driver_snapshots(&volume_id).await.len(), 1);

    env.snapshots()
        .delete("snap", &DeleteParams::default())
        .await
        .unwrap();
    env.gone(&env.snapshots(), "snap").await;
    env.gone(&env.contents(), &content_name).await;
    assert!(
        env.driver_snapshots(&volume_id).await.is_empty(),
        "DeleteSnapshot was called"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_policy_retain_keeps_the_content_and_the_storage_snapshot() {
    let env = Env::start().await;
    let volume_id = env.bound_claim("data").await;
    env.class("keep", "Retain", false, json!({})).await;
    env.snapshot("snap", "data", Some("keep")).await;
    let snapshot = env.ready("snap").await;
    let content_name = env.content_of(&snapshot).await.metadata.name.unwrap();

    env.snapshots()
        .delete("snap", &DeleteParams::default())
        .await
        .unwrap();
    env.gone(&env.snapshots(), "snap").await;
    let content = eventually(WAIT, "content marked", || async {
        let c = env.contents().get(&content_name).await.ok()?;
        annotations(&c)
            .contains(&BEING_DELETED.to_string())
            .then_some(c)
    })
    .await;
    assert!(content.metadata.deletion_timestamp.is_none());
    assert_eq!(content.status.unwrap().ready_to_use, Some(true));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        env.contents()
            .get_opt(&content_name)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(env.driver_snapshots(&volume_id).await.len(), 1);

    // Deleting the retained content later lets it go without touching the storage.
    env.contents()
        .delete(&content_name, &DeleteParams::default())
        .await
        .unwrap();
    env.gone(&env.contents(), &content_name).await;
    assert_eq!(env.driver_snapshots(&volume_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_of_a_missing_claim_says_so_and_recovers_when_the_claim_appears() {
    let env = Env::start().await;
    env.class("csi-snap", "Delete", false, json!({})).await;
    env.snapshot("early", "later", Some("csi-snap")).await;

    let message = env.error_containing("early", "later").await;
    assert!(
        message.starts_with("Failed to create snapshot content with error"),
        "{message}"
    );
    assert!(
        message.contains("persistentvolumeclaim \\\"later\\\" not found"),
        "{message}"
    );
    let note = env.event("early", "SnapshotContentCreationFailed").await;
    assert_eq!(note, message);
    let early = env.snapshots().get("early").await.unwrap();
    assert_eq!(early.status.unwrap().ready_to_use, Some(false));
    assert!(
        env.contents()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let volume_id = env.bound_claim("later").await;
    let ready = env.ready("early").await;
    assert_eq!(ready.status.unwrap().error, None);
    assert_eq!(env.driver_snapshots(&volume_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_snapshot_is_reported_and_keeps_its_claim_protected_until_deleted() {
    let env = Env::start().await;
    let volume_id = env.bound_claim("data").await;
    // The built-in driver refuses parameters it does not know.
    env.class("bad", "Delete", false, json!({"color": "blue"}))
        .await;
    env.snapshot("snap", "data", Some("bad")).await;

    // The driver's answer reaches the snapshot's status (first as the creation's error, then
    // as the retries', as upstream words them) and the content's events.
    let message = env.error_containing("snap", "color").await;
    assert!(
        message.contains("failed to take snapshot of the volume"),
        "{message}"
    );
    assert!(message.contains("InvalidArgument"), "{message}");
    let content_name = env
        .snapshots()
        .get("snap")
        .await
        .unwrap()
        .status
        .unwrap()
        .bound_volume_snapshot_content_name
        .unwrap();
    let note = env.event(&content_name, "SnapshotCreationFailed").await;
    assert!(
        note.starts_with("Failed to create snapshot: failed to take snapshot of the volume"),
        "{note}"
    );
    assert!(note.contains("unknown parameter \\\"color\\\""), "{note}");
    let content = env.contents().get(&content_name).await.unwrap();
    let status = content.status.clone().unwrap();
    assert_eq!(
        (status.ready_to_use, status.snapshot_handle),
        (Some(false), None)
    );
    // INVALID_ARGUMENT is final: no CreateSnapshot is pending between retries.
    eventually(WAIT, "no CreateSnapshot pending", || async {
        let c = env.contents().get(&content_name).await.ok()?;
        (!annotations(&c).contains(&BEING_CREATED.to_string())).then_some(())
    })
    .await;
    let claim = env.claims().get("data").await.unwrap();
    assert!(finalizers(&claim).contains(&PVC_AS_SOURCE.to_string()));
    assert!(env.driver_snapshots(&volume_id).await.is_empty());

    env.snapshots()
        .delete("snap", &DeleteParams::default())
        .await
        .unwrap();
    env.gone(&env.snapshots(), "snap").await;
    env.gone(&env.contents(), &content_name).await;
    let claim = env.claims().get("data").await.unwrap();
    assert!(!finalizers(&claim).contains(&PVC_AS_SOURCE.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_being_restored_is_not_deleted_until_its_claim_is_bound() {
    let env = Env::start().await;
    env.bound_claim("data").await;
    env.class("csi-snap", "Delete", false, json!({})).await;
    env.snapshot("snap", "data", Some("csi-snap")).await;
    let snapshot = env.ready("snap").await;
    let content_name = env.content_of(&snapshot).await.metadata.name.unwrap();
    env.create::<PersistentVolumeClaim>(
        &env.claims(),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "restore", "namespace": NS},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                        "resources": {"requests": {"storage": "64Mi"}},
                        "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"}}}),
    )
    .await;

    env.snapshots()
        .delete("snap", &DeleteParams::default())
        .await
        .unwrap();
    env.event("snap", "SnapshotDeletePending").await;
    let pending = env.snapshots().get("snap").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(finalizers(&pending).contains(&AS_SOURCE.to_string()));
    assert!(
        env.contents()
            .get(&content_name)
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );

    // The restore finishes (as the provisioner and binder would record it): the deletion goes on.
    let bound = json!({"status": {"phase": "Bound"}});
    env.claims()
        .patch_status("restore", &PatchParams::default(), &Patch::Merge(&bound))
        .await
        .unwrap();
    env.gone(&env.snapshots(), "snap").await;
    env.gone(&env.contents(), &content_name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loops_restarted_after_create_snapshot_reuse_the_snapshot_already_cut() {
    let mut env = Env::start().await;
    env.stop_loops();
    let volume_id = env.bound_claim("data").await;
    env.class("csi-snap", "Delete", false, json!({})).await;
    let snapshot = env.snapshot("snap", "data", Some("csi-snap")).await;
    let uid = snapshot.metadata.uid.clone().unwrap();

    // What a crash leaves: the content created and marked, CreateSnapshot answered by the
    // storage, the answer never recorded.
    env.create::<VolumeSnapshotContent>(
        &env.contents(),
        json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
               "metadata": {"name": format!("snapcontent-{uid}"),
                            "finalizers": [CONTENT_BOUND],
                            "annotations": {BEING_CREATED: "yes"}},
               "spec": {"deletionPolicy": "Delete", "driver": DRIVER_NAME,
                        "volumeSnapshotClassName": "csi-snap",
                        "source": {"volumeHandle": volume_id},
                        "volumeSnapshotRef": {"apiVersion": "snapshot.storage.k8s.io/v1",
                                              "kind": "VolumeSnapshot", "name": "snap",
                                              "namespace": NS, "uid": uid}}}),
    )
    .await;
    let cut = env
        .driver
        .client
        .create_snapshot(proto::CreateSnapshotRequest {
            source_volume_id: volume_id.clone(),
            name: format!("snapshot-{uid}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot
        .unwrap();

    env.start_loops();
    let ready = env.ready("snap").await;
    let content = env.content_of(&ready).await;
    assert_eq!(
        content.status.unwrap().snapshot_handle,
        Some(cut.snapshot_id)
    );
    assert_eq!(
        env.driver_snapshots(&volume_id).await.len(),
        1,
        "no second snapshot"
    );
    assert_eq!(
        env.contents()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let content = env
        .contents()
        .get(&content.metadata.name.unwrap())
        .await
        .unwrap();
    assert!(!annotations(&content).contains(&BEING_CREATED.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn loops_killed_mid_way_and_restarted_end_with_one_snapshot() {
    let mut env = Env::start().await;
    env.class("csi-snap", "Delete", false, json!({})).await;
    let mut volumes = vec![];
    for round in 0..4 {
        let claim = format!("data-{round}");
        volumes.push(env.bound_claim(&claim).await);
        env.snapshot(&format!("snap-{round}"), &claim, Some("csi-snap"))
            .await;
        // Kill at a different point each round: right away, then progressively later.
        tokio::time::sleep(Duration::from_millis(40 * round)).await;
        env.stop_loops();
        env.start_loops();
    }
    for round in 0..4 {
        env.ready(&format!("snap-{round}")).await;
    }
    for volume_id in &volumes {
        assert_eq!(
            env.driver_snapshots(volume_id).await.len(),
            1,
            "{volume_id}"
        );
    }
    assert_eq!(
        env.contents()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        4
    );
}

/// Throughput: `SNAPSHOT_BURST` (default 200) claims snapshotted at once, time until all are
/// ready. Run with `cargo test -p volplane-controllers --test snapshots -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement"]
async fn burst_of_snapshots_all_become_ready() {
    let count: usize = std::env::var("SNAPSHOT_BURST")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let env = Env::start().await;
    env.class("csi-snap", "Delete", true, json!({})).await;
    for i in 0..count {
        env.bound_claim(&format!("data-{i}")).await;
    }
    let started = std::time::Instant::now();
    futures::stream::iter(0..count)
        .for_each_concurrent(32, |i| {
            let env = &env;
            async move {
                env.snapshot(&format!("snap-{i}"), &format!("data-{i}"), None)
                    .await;
            }
        })
        .await;
    let created = started.elapsed();
    // Polled slowly: listing every snapshot 20 times a second would load the API server more
    // than the loops do.
    loop {
        let list = env.snapshots().list(&Default::default()).await.unwrap();
        let ready = list
            .items
            .iter()
            .filter(|s| s.status.as_ref().and_then(|s| s.ready_to_use) == Some(true));
        if ready.count() == count {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not all ready"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{count} snapshots: created in {created:?}, all ready after {elapsed:?} ({:.1}/s)",
        count as f64 / elapsed.as_secs_f64()
    );
    let events: Api<Event> = Api::namespaced(env.client(), NS);
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for e in events.list(&Default::default()).await.unwrap().items {
        if e.type_.as_deref() == Some("Warning") {
            eprintln!("warning: {:?} {:?}", e.reason, e.note);
        }
        *reasons.entry(e.reason.unwrap_or_default()).or_default() += 1;
    }
    eprintln!("events: {reasons:?}");
    let on_driver = env
        .driver
        .client
        .list_snapshots(proto::ListSnapshotsRequest::default())
        .await
        .unwrap()
        .entries
        .len();
    assert_eq!(on_driver, count);
}
