//! The controller-manager killed with SIGKILL in the middle of a burst of 1,000 bindings and
//! provisions, then restarted: every claim ends Bound to exactly one PV, no PV is bound twice,
//! and the CSI driver holds exactly the volumes the PVs name (nothing leaked, nothing lost).
//!
//! Every role is its own process here, as on a multi-machine install: `volplane apiserver`,
//! `volplane csi-driver --controller` and `volplane controller-manager`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use volplane_csi::proto::ListVolumesRequest;
use volplane_csi::{ClientOptions, CsiClient};
use volplane_testkit::{Cluster, Daemon};

const DRIVER: &str = "local.csi.volplane.io";
const STATIC: usize = 500;
const DYNAMIC: usize = 500;
const NAMESPACE: &str = "default";

fn binary() -> &'static Path {
    env!("CARGO_BIN_EXE_volplane").as_ref()
}

/// The CSI driver (controller service only: nothing is mounted) on a socket in its own dir.
struct Driver {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    _process: Daemon,
}

impl Driver {
    fn start() -> Driver {
        let dir = tempfile::Builder::new()
            .prefix("vp-crash-csi-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("csi.sock");
        let args: Vec<String> = [
            "csi-driver",
            "--endpoint",
            &format!("unix://{}", socket.display()),
            "--node-id",
            "node-1",
            "--topology-host",
            "node-1",
            "--state-dir",
            &dir.path().join("state").display().to_string(),
            "--controller",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let process = Daemon::start(binary(), &args);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "the CSI driver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Driver {
            _dir: dir,
            socket,
            _process: process,
        }
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    async fn volume_ids(&self) -> BTreeSet<String> {
        let client = CsiClient::connect(&self.endpoint(), ClientOptions::default()).unwrap();
        let mut ids = BTreeSet::new();
        let mut token = String::new();
        loop {
            let page = client
                .list_volumes(ListVolumesRequest {
                    max_entries: 500,
                    starting_token: token,
                })
                .await
                .expect("ListVolumes");
            for entry in page.entries {
                ids.insert(entry.volume.expect("a volume").volume_id);
            }
            if page.next_token.is_empty() {
                return ids;
            }
            token = page.next_token;
        }
    }
}

async fn create_all<K>(api: &Api<K>, objects: Vec<K>)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    stream::iter(objects)
        .for_each_concurrent(32, |object| async move {
            api.create(&PostParams::default(), &object)
                .await
                .expect("create");
        })
        .await;
}

async fn setup(client: &Client) {
    let classes: Api<StorageClass> = Api::all(client.clone());
    for class in [
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "crash-static"},
               "provisioner": "kubernetes.io/no-provisioner"}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "crash-dynamic"}, "provisioner": DRIVER,
               "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
    ] {
        classes
            .create(
                &PostParams::default(),
                &serde_json::from_value(class).unwrap(),
            )
            .await
            .expect("class");
    }
    let volumes = (0..STATIC)
        .map(|i| {
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": format!("static-pv-{i:04}")},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "storageClassName": "crash-static",
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": format!("/tmp/vp-crash-static-{i}")}}
            }))
            .unwrap()
        })
        .collect();
    create_all(&Api::<PersistentVolume>::all(client.clone()), volumes).await;
    let claim = |name: String, class: &str, size: &str| {
        serde_json::from_value::<PersistentVolumeClaim>(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                     "resources": {"requests": {"storage": size}}}
        }))
        .unwrap()
    };
    let claims = (0..STATIC)
        .map(|i| claim(format!("static-{i:04}"), "crash-static", "1Gi"))
        .chain((0..DYNAMIC).map(|i| claim(format!("dynamic-{i:04}"), "crash-dynamic", "16Mi")))
        .collect();
    create_all(
        &Api::<PersistentVolumeClaim>::namespaced(client.clone(), NAMESPACE),
        claims,
    )
    .await;
}

async fn bound_claims(client: &Client) -> Vec<PersistentVolumeClaim> {
    Api::<PersistentVolumeClaim>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .expect("list claims")
        .items
        .into_iter()
        .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
        .collect()
}

async fn wait_for_bound(client: &Client, at_least: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let bound = bound_claims(client).await.len();
        if bound >= at_least {
            return bound;
        }
        if Instant::now() >= deadline {
            diagnose(client).await;
            panic!("only {bound} of {at_least} claims Bound after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints what a GET and paged and unpaged lists say about the first claim still Pending.
async fn diagnose(client: &Client) {
    let api = Api::<PersistentVolumeClaim>::namespaced(client.clone(), NAMESPACE);
    let all = api.list(&ListParams::default()).await.expect("list");
    let Some(pending) = all
        .items
        .iter()
        .find(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound"))
    else {
        return;
    };
    let name = pending.name_any();
    let got = api.get(&name).await.expect("get");
    eprintln!(
        "DIAG {name}: list rv {:?} annotations {:?}; get rv {:?} annotations {:?}",
        pending.resource_version(),
        pending.annotations(),
        got.resource_version(),
        got.annotations()
    );
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await.expect("page");
        for claim in page.items.iter().filter(|c| c.name_any() == name) {
            eprintln!(
                "DIAG paged list (rv=\"\"): rv {:?}",
                claim.resource_version()
            );
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let any = api
        .list(&ListParams::default().limit(500).match_any())
        .await
        .expect("rv=0 list");
    for claim in any.items.iter().filter(|c| c.name_any() == name) {
        eprintln!(
            "DIAG list rv=0 first page: rv {:?}",
            claim.resource_version()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_controller_manager_finishes_every_binding_and_provision_exactly_once() {
    let cluster = Cluster::start_role(binary(), "apiserver", &[], &[("RUST_LOG", "warn")]);
    let driver = Driver::start();
    let client = cluster.kube_client().await;
    setup(&client).await;

    let args: Vec<String> = [
        "controller-manager",
        "--kubeconfig",
        &cluster.kubeconfig.display().to_string(),
        "--csi-driver",
        &format!("{DRIVER}={}", driver.endpoint()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut manager = Daemon::start(binary(), &args);
    // Kill it twice mid-burst: once early, once around the middle.
    for at_least in [100, (STATIC + DYNAMIC) / 2] {
        let bound = wait_for_bound(&client, at_least, Duration::from_secs(120)).await;
        assert!(
            manager.is_running(),
            "the controller-manager exited by itself"
        );
        manager.kill9();
        eprintln!("killed the controller-manager with {bound} claims Bound");
        manager.restart();
    }
    wait_for_bound(&client, STATIC + DYNAMIC, Duration::from_secs(240)).await;

    let claims = bound_claims(&client).await;
    let volumes: BTreeMap<String, PersistentVolume> = Api::<PersistentVolume>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list volumes")
        .items
        .into_iter()
        .map(|pv| (pv.name_any(), pv))
        .collect();
    let mut used = BTreeSet::new();
    for claim in &claims {
        let name = claim.name_any();
        let volume_name = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_else(|| panic!("claim {name} is Bound without spec.volumeName"));
        assert!(
            used.insert(volume_name.clone()),
            "PV {volume_name} is bound twice"
        );
        let pv = volumes
            .get(&volume_name)
            .unwrap_or_else(|| panic!("claim {name} names a missing PV {volume_name}"));
        let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        assert_eq!(
            claim_ref.and_then(|r| r.name.as_deref()),
            Some(name.as_str()),
            "PV {volume_name} points back at its claim"
        );
        assert_eq!(
            claim_ref.and_then(|r| r.uid.as_deref()),
            claim.metadata.uid.as_deref()
        );
        assert_eq!(
            pv.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Bound"),
            "PV {volume_name} is Bound"
        );
        let expected_prefix = if name.starts_with("static-") {
            "static-pv-"
        } else {
            "pvc-"
        };
        assert!(
            volume_name.starts_with(expected_prefix),
            "{name} → {volume_name}"
        );
    }
    assert_eq!(claims.len(), STATIC + DYNAMIC);

    let handles: BTreeSet<String> = volumes
        .values()
        .filter_map(|pv| pv.spec.as_ref()?.csi.as_ref())
        .filter(|csi| csi.driver == DRIVER)
        .map(|csi| csi.volume_handle.clone())
        .collect();
    assert_eq!(handles.len(), DYNAMIC, "one CSI PV per dynamic claim");
    assert_eq!(
        driver.volume_ids().await,
        handles,
        "the driver holds exactly the volumes the PVs name"
    );
}
