//! The local static provisioner with real tmpfs mounts under a temp discovery directory.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use volplane_api::wellknown::{ANN_PROVISIONED_BY, LABEL_HOSTNAME};
use volplane_controllers::local_static::{LocalStaticConfig, discover_local_volumes, pv_name};
use volplane_controllers::matching::VolumeMode;

use common::{ApiServer, eventually};
use support::*;

/// A discovery directory whose tmpfs mounts are unmounted on drop.
struct Disks {
    dir: tempfile::TempDir,
    mounted: Vec<PathBuf>,
}

impl Disks {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vp-disks-")
            .tempdir()
            .unwrap();
        Self {
            dir,
            mounted: Vec::new(),
        }
    }

    fn mount_tmpfs(&mut self, name: &str, size: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs at {}", path.display());
        self.mounted.push(path.clone());
        path
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        for path in self.mounted.iter().rev() {
            let _ = Command::new("umount").arg(path).status();
        }
    }
}

#[tokio::test]
async fn every_mount_point_becomes_one_local_pv_and_discovery_is_idempotent() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let mut disks = Disks::new();
    let disk1 = disks.mount_tmpfs("disk1", "16m");
    disks.mount_tmpfs("disk2", "32m");
    std::fs::create_dir(disks.path().join("not-a-mount")).unwrap();
    let node = unique("node");
    let config = LocalStaticConfig {
        discovery_dir: disks.path().to_path_buf(),
        ..LocalStaticConfig::default()
    };
    let report = discover_local_volumes(client, &node, &config)
        .await
        .unwrap();
    let expected = [
        pv_name("disk1", &node, "local-storage"),
        pv_name("disk2", &node, "local-storage"),
    ];
    assert_eq!(report.created, expected);
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(
        report.skipped[0].1.contains("is not an actual mountpoint"),
        "{:?}",
        report.skipped
    );

    let pv = get_pv(client, &expected[0]).await.unwrap();
    assert_eq!(
        annotation(&pv.metadata, ANN_PROVISIONED_BY),
        Some(format!("local-volume-provisioner-{node}").as_str())
    );
    let spec = pv.spec.unwrap();
    assert_eq!(
        spec.capacity.unwrap()["storage"].0,
        (16u64 << 20).to_string()
    );
    assert_eq!(spec.local.unwrap().path, disk1.to_string_lossy());
    assert_eq!(spec.storage_class_name.as_deref(), Some("local-storage"));
    assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
    assert_eq!(spec.access_modes.unwrap(), ["ReadWriteOnce".to_string()]);
    let term = &spec
        .node_affinity
        .unwrap()
        .required
        .unwrap()
        .node_selector_terms[0];
    let requirement = &term.match_expressions.as_ref().unwrap()[0];
    assert_eq!(requirement.key, LABEL_HOSTNAME);
    assert_eq!(requirement.operator, "In");
    assert_eq!(requirement.values.as_deref(), Some(&[node.clone()][..]));

    let again = discover_local_volumes(client, &node, &config)
        .await
        .unwrap();
    assert!(again.created.is_empty());
    assert_eq!(again.existing, expected);
}

#[tokio::test]
async fn a_released_local_pv_is_cleaned_and_created_again() {
    let server = ApiServer::start().await;
    let client = &server.client;
    let _binder = start_binder(client);
    let _protection = start_protection(client);
    let mut disks = Disks::new();
    let disk = disks.mount_tmpfs("disk1", "8m");
    let node = unique("node");
    let config = LocalStaticConfig {
        discovery_dir: disks.path().to_path_buf(),
        volume_mode: VolumeMode::Filesystem,
        ..LocalStaticConfig::default()
    };
    let report = discover_local_volumes(client, &node, &config)
        .await
        .unwrap();
    let name = report.created[0].clone();
    let ns = unique("local");
    namespace(client, &ns).await;
    create_claim(
        client,
        &ns,
        "data",
        "1Mi",
        json!({"spec": {"storageClassName": "local-storage"}}),
    )
    .await;
    assert_eq!(bound_volume(client, &ns, "data").await, name);
    std::fs::write(disk.join("old"), b"tenant data").unwrap();
    force_delete_claim(client, &ns, "data").await;
    let released = pv_in_phase(client, &name, "Released").await;
    let old_uid = released.metadata.uid.clone();

    let cleaned = discover_local_volumes(client, &node, &config)
        .await
        .unwrap();
    assert_eq!(cleaned.cleaned, std::slice::from_ref(&name));
    assert!(!disk.join("old").exists(), "the filesystem was emptied");
    // Once the old PV is gone, the next pass creates it again, Available.
    let fresh = eventually(WAIT, "local PV created again", || async {
        discover_local_volumes(client, &node, &config)
            .await
            .unwrap();
        get_pv(client, &name)
            .await
            .filter(|pv| pv.metadata.uid != old_uid)
    })
    .await;
    assert!(fresh.spec.unwrap().claim_ref.is_none());
    pv_in_phase(client, &name, "Available").await;
}
