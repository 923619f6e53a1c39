//! Crash safety: the driver runs as a separate `volplane-csi-driver`
//! process and is killed with SIGKILL between (and during) the steps of a
//! volume's life; a restarted driver must let the next call finish the job
//! and leave nothing mounted or attached.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use volplane_csi::proto;

const STEPS: [&str; 6] = [
    "create",
    "stage",
    "publish",
    "unpublish",
    "unstage",
    "delete",
];

struct Lifecycle {
    name: String,
    volume_id: String,
    staging: std::path::PathBuf,
    target: std::path::PathBuf,
}

impl Lifecycle {
    fn new(h: &Harness, name: &str) -> Self {
        Self {
            name: name.into(),
            volume_id: String::new(),
            staging: h.path(&format!("staging/{name}")),
            target: h.path(&format!("pods/{name}/v")),
        }
    }

    async fn step(&mut self, h: &Harness, step: &str) {
        match step {
            "create" => self.volume_id = h.create(&self.name, 32 * MIB, rwo()).await.volume_id,
            "stage" => h
                .stage(&self.volume_id, &self.staging, rwo())
                .await
                .expect("stage"),
            "publish" => {
                h.publish(&self.volume_id, &self.staging, &self.target, rwo(), false)
                    .await
                    .expect("publish");
                fs::write(self.target.join("data"), &self.name)
                    .expect("write to the published volume");
            }
            "unpublish" => h
                .unpublish(&self.volume_id, &self.target)
                .await
                .expect("unpublish"),
            "unstage" => h
                .unstage(&self.volume_id, &self.staging)
                .await
                .expect("unstage"),
            "delete" => h.delete(&self.volume_id).await.expect("delete"),
            other => unreachable!("{other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_between_any_two_steps_lets_the_next_call_finish_the_job() {
    for killed_after in 1..STEPS.len() {
        let mut h = Harness::process();
        let mut life = Lifecycle::new(&h, &format!("pvc-crash-{killed_after}"));
        for step in &STEPS[..killed_after] {
            life.step(&h, step).await;
        }
        h.kill9();
        h.spawn_process();
        for step in &STEPS[killed_after..] {
            life.step(&h, step).await;
        }
        h.assert_clean();
        assert_eq!(
            h.state_files("images"),
            0,
            "killed after {}",
            STEPS[killed_after - 1]
        );
        assert_eq!(h.state_files("volumes"), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_stage_then_a_retry_finishes_it() {
    for delay_ms in [0u64, 3, 10, 30, 100] {
        let mut h = Harness::process();
        let mut life = Lifecycle::new(&h, &format!("pvc-midstage-{delay_ms}"));
        life.step(&h, "create").await;
        let client = client(&h.socket, 1);
        let request = proto::NodeStageVolumeRequest {
            volume_id: life.volume_id.clone(),
            staging_target_path: life.staging.display().to_string(),
            volume_capability: Some(rwo()),
            ..Default::default()
        };
        let in_flight = tokio::spawn(async move { client.node_stage_volume(request).await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        h.kill9();
        let _ = in_flight.await;
        h.spawn_process();
        for step in &STEPS[1..] {
            life.step(&h, step).await;
        }
        h.assert_clean();
        assert_eq!(h.state_files("images"), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_snapshot_does_not_leave_the_volume_frozen() {
    for delay_ms in [1u64, 5, 20] {
        let mut h = Harness::process();
        let mut life = Lifecycle::new(&h, &format!("pvc-midsnap-{delay_ms}"));
        for step in &STEPS[..3] {
            life.step(&h, step).await;
        }
        fs::write(life.target.join("big"), vec![7u8; 8 << 20]).unwrap();
        let client = client(&h.socket, 1);
        let request = proto::CreateSnapshotRequest {
            source_volume_id: life.volume_id.clone(),
            name: format!("snap-midsnap-{delay_ms}"),
            ..Default::default()
        };
        let in_flight = tokio::spawn({
            let request = request.clone();
            async move { client.create_snapshot(request).await }
        });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        h.kill9();
        let _ = in_flight.await;
        h.spawn_process();
        let target = life.target.clone();
        let write =
            tokio::task::spawn_blocking(move || fs::write(target.join("after"), "writable"));
        tokio::time::timeout(Duration::from_secs(20), write)
            .await
            .expect("the volume is writable again (not frozen)")
            .unwrap()
            .unwrap();
        let snapshot = h
            .client
            .create_snapshot(request)
            .await
            .expect("the retried snapshot completes");
        assert!(snapshot.snapshot.unwrap().ready_to_use);
        for step in &STEPS[3..] {
            life.step(&h, step).await;
        }
        h.assert_clean();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_left_without_a_record_is_removed_at_start() {
    let mut h = Harness::process();
    let orphan = h
        .state_dir
        .join("images/vol-0123456789abcdef0123456789abcdef.img");
    fs::write(&orphan, b"").unwrap();
    let kept = h.create("pvc-kept", 16 * MIB, rwo()).await.volume_id;
    h.kill9();
    h.spawn_process();
    h.client.probe(Default::default()).await.unwrap();
    assert!(!orphan.exists());
    assert!(h.state_dir.join(format!("images/{kept}.img")).exists());
    h.delete(&kept).await.unwrap();
}

/// A power loss takes what the page cache held: here, every record file the
/// driver wrote since its last checkpoint (it flushes only its journal) and
/// the sparse images it created. The restarted driver replays its journal:
/// every acknowledged change is back, a deleted volume stays deleted.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_changes_survive_losing_the_unflushed_record_files() {
    let mut h = Harness::process();
    let kept = h.create("pvc-power-kept", 16 * MIB, rwo()).await;
    let grown = h.create("pvc-power-grown", 16 * MIB, rwo()).await.volume_id;
    let gone = h.create("pvc-power-gone", 16 * MIB, rwo()).await.volume_id;
    h.client
        .controller_expand_volume(proto::ControllerExpandVolumeRequest {
            volume_id: grown.clone(),
            capacity_range: Some(proto::CapacityRange {
                required_bytes: 32 * MIB,
                limit_bytes: 0,
            }),
            volume_capability: Some(rwo()),
            ..Default::default()
        })
        .await
        .expect("expand");
    let state_dir = h.state_dir.clone();
    let record = |id: &str| state_dir.join(format!("volumes/{id}.json"));
    let image = |id: &str| state_dir.join(format!("images/{id}.img"));
    let gone_record = fs::read(record(&gone)).unwrap();
    h.delete(&gone).await.unwrap();
    h.kill9();
    // What the power loss undoes: the new records and images are gone, the
    // expanded image is back at its old size, the deleted record is back.
    for path in [
        record(&kept.volume_id),
        image(&kept.volume_id),
        record(&grown),
    ] {
        fs::remove_file(path).unwrap();
    }
    fs::File::options()
        .write(true)
        .open(image(&grown))
        .unwrap()
        .set_len(16 * MIB as u64)
        .unwrap();
    fs::write(record(&gone), gone_record).unwrap();
    fs::write(image(&gone), b"").unwrap();

    h.spawn_process();
    assert!(record(&kept.volume_id).exists(), "replayed at start");
    let again = h.create("pvc-power-kept", 16 * MIB, rwo()).await;
    assert_eq!(
        again.volume_id, kept.volume_id,
        "the same volume, not a new one"
    );
    assert_eq!(
        fs::metadata(image(&kept.volume_id)).unwrap().len(),
        16 * MIB as u64
    );
    assert_eq!(fs::metadata(image(&grown)).unwrap().len(), 32 * MIB as u64);
    let listed = h
        .client
        .list_volumes(proto::ListVolumesRequest::default())
        .await
        .unwrap();
    let mut ids: Vec<_> = listed
        .entries
        .iter()
        .filter_map(|e| e.volume.as_ref().map(|v| v.volume_id.clone()))
        .collect();
    ids.sort();
    let mut expected = vec![kept.volume_id.clone(), grown.clone()];
    expected.sort();
    assert_eq!(ids, expected, "the deleted volume stays deleted");
    assert!(!image(&gone).exists());
    h.delete(&kept.volume_id).await.unwrap();
    h.delete(&grown).await.unwrap();
    h.assert_clean();
}
