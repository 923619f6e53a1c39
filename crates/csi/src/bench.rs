//! The CSI benchmark: the built-in driver driven over its unix socket by
//! [`CsiClient`], and — in the same run, interleaved iteration by
//! iteration so both see the same machine load — the same work done
//! directly with the host operations (sparse file, loop device, mkfs,
//! mount, bind mount, copy) as the floor. Reports p50/p99 per step and
//! operations per second for both.
//!
//! Workloads (those the upstream csi-driver-host-path was measured with):
//! 1. CreateVolume + DeleteVolume, 1 GiB, mount access;
//! 2. create → stage → publish → write 1 MiB → unpublish → unstage →
//!    delete, mount access (ext4, made at stage), 64 MiB;
//! 3. the same with block access, 64 MiB;
//! 4. CreateSnapshot + DeleteSnapshot of a staged mount volume holding
//!    16 MiB of data;
//! 5. the same for a block volume.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::oneshot;

use crate::driver::{Driver, DriverConfig};
use crate::host::{FsKind, Host, MountOptions, image};
use crate::proto::{self, volume_capability::access_mode::Mode};
use crate::{ClientOptions, CsiClient, Endpoint, server};

const MIB: u64 = 1 << 20;
const NODE_CYCLE_BYTES: u64 = 64 * MIB;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Scratch directory (state, images, mount points); removed afterwards.
    pub work_dir: PathBuf,
    /// CreateVolume+DeleteVolume pairs.
    pub create_delete_pairs: usize,
    /// Full node cycles per access type.
    pub node_cycles: usize,
    /// Snapshot create+delete pairs per access type.
    pub snapshot_pairs: usize,
    /// fsync state records (the driver's default).
    pub sync_state: bool,
    /// An already running driver to measure (its state directory must be
    /// `work_dir/state`); `None` starts one in this process on a socket in
    /// `work_dir`.
    pub endpoint: Option<String>,
}

/// Latencies of one named step.
#[derive(Debug, Clone, Default)]
pub struct StepStats {
    samples: Vec<Duration>,
}

impl StepStats {
    fn push(&mut self, d: Duration) {
        self.samples.push(d);
    }

    /// The q-quantile (0..=1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut s = self.samples.clone();
        s.sort();
        if s.is_empty() {
            return 0.0;
        }
        let index = ((s.len() - 1) as f64 * q).round() as usize;
        s[index].as_secs_f64() * 1e3
    }
}

/// One workload measured through the driver and directly.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Its name.
    pub name: String,
    /// Iterations of each side.
    pub iterations: usize,
    /// Per-step latencies through the driver, in step order.
    pub driver: Vec<(String, StepStats)>,
    /// Per-step latencies of the direct floor.
    pub floor: Vec<(String, StepStats)>,
    /// Wall time of all driver iterations.
    pub driver_total: Duration,
    /// Wall time of all floor iterations.
    pub floor_total: Duration,
}

impl Workload {
    /// Driver iterations per second.
    pub fn driver_rate(&self) -> f64 {
        self.iterations as f64 / self.driver_total.as_secs_f64()
    }

    /// Floor iterations per second.
    pub fn floor_rate(&self) -> f64 {
        self.iterations as f64 / self.floor_total.as_secs_f64()
    }
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Whether state records were fsynced.
    pub sync_state: bool,
    /// Latency of an RPC that does no work (NodeGetCapabilities): the cost
    /// of the gRPC round trip over the unix socket.
    pub round_trip: StepStats,
    /// What one flush costs on the state directory's filesystem, three ways
    /// (see [`flush_probe`]).
    pub flushes: Vec<(&'static str, StepStats)>,
    /// The workloads.
    pub workloads: Vec<Workload>,
}

/// Times steps of one iteration.
struct Timer<'a> {
    steps: &'a mut BTreeMap<String, (usize, StepStats)>,
    order: usize,
    total: &'a mut Duration,
}

impl Timer<'_> {
    fn record(&mut self, step: &str, started: Instant) {
        let elapsed = started.elapsed();
        *self.total += elapsed;
        let order = self.order;
        self.order += 1;
        let entry = self
            .steps
            .entry(step.to_string())
            .or_insert((order, StepStats::default()));
        entry.1.push(elapsed);
    }
}

fn ordered(steps: BTreeMap<String, (usize, StepStats)>) -> Vec<(String, StepStats)> {
    let mut v: Vec<_> = steps.into_iter().collect();
    v.sort_by_key(|(_, (order, _))| *order);
    v.into_iter()
        .map(|(name, (_, stats))| (name, stats))
        .collect()
}

/// A workload being measured: the driver side and the floor side.
#[derive(Default)]
struct Run {
    driver: BTreeMap<String, (usize, StepStats)>,
    floor: BTreeMap<String, (usize, StepStats)>,
    driver_total: Duration,
    floor_total: Duration,
}

impl Run {
    fn driver(&mut self) -> Timer<'_> {
        Timer {
            steps: &mut self.driver,
            order: 0,
            total: &mut self.driver_total,
        }
    }

    fn floor(&mut self) -> Timer<'_> {
        Timer {
            steps: &mut self.floor,
            order: 0,
            total: &mut self.floor_total,
        }
    }

    fn finish(self, name: &str, iterations: usize) -> Workload {
        Workload {
            name: name.to_string(),
            iterations,
            driver: ordered(self.driver),
            floor: ordered(self.floor),
            driver_total: self.driver_total,
            floor_total: self.floor_total,
        }
    }
}

/// The environment of a benchmark run.
struct Bench {
    client: CsiClient,
    sync_state: bool,
    host: Host,
    dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
}

/// Runs every workload.
pub async fn run(options: BenchOptions) -> anyhow::Result<BenchReport> {
    fs::create_dir_all(&options.work_dir)?;
    let dir = options.work_dir.canonicalize()?;
    let mut bench = Bench::start(&dir, &options)?;
    let result = async {
        let round_trip = bench.round_trip(1000).await?;
        let flushes = flush_probe(&bench.floor_dir(), 200)?;
        let workloads = bench.all(&options).await?;
        anyhow::Ok(BenchReport {
            sync_state: options.sync_state,
            round_trip,
            flushes,
            workloads,
        })
    }
    .await;
    bench.stop();
    result
}

impl Bench {
    fn start(dir: &Path, options: &BenchOptions) -> anyhow::Result<Self> {
        let mut shutdown = None;
        let endpoint = match &options.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => {
                let mut config = DriverConfig::new("bench-node", dir.join("state"));
                config.sync_state = options.sync_state;
                let driver = Driver::new(config, Host::kernel())?;
                let endpoint = Endpoint::from_path(dir.join("csi.sock"));
                let listener = server::bind(&endpoint)?;
                let (tx, rx) = oneshot::channel::<()>();
                let serving = endpoint.clone();
                tokio::spawn(async move {
                    let _ = server::serve(driver, &serving, listener, async {
                        let _ = rx.await;
                    })
                    .await;
                });
                shutdown = Some(tx);
                endpoint.to_string()
            }
        };
        let client = CsiClient::connect(
            &endpoint,
            ClientOptions {
                attempts: 1,
                ..Default::default()
            },
        )?;
        Ok(Self {
            client,
            sync_state: options.sync_state,
            host: Host::kernel(),
            dir: dir.to_path_buf(),
            shutdown,
        })
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    async fn all(&mut self, options: &BenchOptions) -> anyhow::Result<Vec<Workload>> {
        Ok(vec![
            self.create_delete(options.create_delete_pairs).await?,
            self.node_cycles(options.node_cycles, false).await?,
            self.node_cycles(options.node_cycles, true).await?,
            self.snapshots(options.snapshot_pairs, false).await?,
            self.snapshots(options.snapshot_pairs, true).await?,
        ])
    }

    async fn round_trip(&self, calls: usize) -> anyhow::Result<StepStats> {
        let mut stats = StepStats::default();
        for _ in 0..calls {
            let started = Instant::now();
            self.client
                .node_get_capabilities(proto::NodeGetCapabilitiesRequest {})
                .await?;
            stats.push(started.elapsed());
        }
        Ok(stats)
    }

    fn floor_dir(&self) -> PathBuf {
        self.dir.join("floor")
    }

    async fn create_delete(&mut self, pairs: usize) -> anyhow::Result<Workload> {
        let mut run = Run::default();
        fs::create_dir_all(self.floor_dir())?;
        for i in 0..pairs {
            let mut t = run.driver();
            let started = Instant::now();
            let volume = self
                .client
                .create_volume(create_request(
                    &format!("bench-cd-{i}"),
                    1 << 30,
                    mount_cap(),
                ))
                .await?;
            t.record("CreateVolume", started);
            let started = Instant::now();
            self.client
                .delete_volume(delete_request(&volume.volume.unwrap().volume_id))
                .await?;
            t.record("DeleteVolume", started);

            let mut t = run.floor();
            let path = self.floor_dir().join(format!("cd-{i}.img"));
            let started = Instant::now();
            image::create_sparse(&path, 1 << 30)?;
            t.record("create sparse image", started);
            let started = Instant::now();
            fs::remove_file(&path)?;
            t.record("unlink image", started);
        }
        Ok(run.finish("CreateVolume+DeleteVolume (1 GiB, mount)", pairs))
    }

    async fn node_cycles(&mut self, cycles: usize, block: bool) -> anyhow::Result<Workload> {
        let mut run = Run::default();
        for i in 0..cycles {
            self.driver_node_cycle(&mut run.driver(), i, block).await?;
            self.floor_node_cycle(&mut run.floor(), i, block)?;
        }
        let kind = if block {
            "block"
        } else {
            "mount, ext4 made at stage"
        };
        Ok(run.finish(&format!("node cycle ({kind}, 64 MiB, write 1 MiB)"), cycles))
    }

    async fn driver_node_cycle(
        &self,
        t: &mut Timer<'_>,
        i: usize,
        block: bool,
    ) -> anyhow::Result<()> {
        let cap = if block { block_cap() } else { mount_cap() };
        let kind = if block { "blk" } else { "mnt" };
        let staging = self.dir.join(format!("staging/{kind}-{i}"));
        let target = self.dir.join(format!("pods/{kind}-{i}/volume"));
        let started = Instant::now();
        let volume = self
            .client
            .create_volume(create_request(
                &format!("bench-{kind}-{i}"),
                NODE_CYCLE_BYTES,
                cap.clone(),
            ))
            .await?;
        t.record("CreateVolume", started);
        let id = volume.volume.unwrap().volume_id;
        let started = Instant::now();
        self.client
            .node_stage_volume(proto::NodeStageVolumeRequest {
                volume_id: id.clone(),
                staging_target_path: staging.display().to_string(),
                volume_capability: Some(cap.clone()),
                ..Default::default()
            })
            .await?;
        t.record("NodeStageVolume", started);
        let started = Instant::now();
        self.client
            .node_publish_volume(proto::NodePublishVolumeRequest {
                volume_id: id.clone(),
                staging_target_path: staging.display().to_string(),
                target_path: target.display().to_string(),
                volume_capability: Some(cap),
                ..Default::default()
            })
            .await?;
        t.record("NodePublishVolume", started);
        let started = Instant::now();
        write_mib(&target, block)?;
        t.record("write 1 MiB", started);
        let started = Instant::now();
        self.client
            .node_unpublish_volume(proto::NodeUnpublishVolumeRequest {
                volume_id: id.clone(),
                target_path: target.display().to_string(),
            })
            .await?;
        t.record("NodeUnpublishVolume", started);
        let started = Instant::now();
        self.client
            .node_unstage_volume(proto::NodeUnstageVolumeRequest {
                volume_id: id.clone(),
                staging_target_path: staging.display().to_string(),
            })
            .await?;
        t.record("NodeUnstageVolume", started);
        let started = Instant::now();
        self.client.delete_volume(delete_request(&id)).await?;
        t.record("DeleteVolume", started);
        Ok(())
    }

    fn floor_node_cycle(&self, t: &mut Timer<'_>, i: usize, block: bool) -> anyhow::Result<()> {
        let kind = if block { "blk" } else { "mnt" };
        let image_path = self.floor_dir().join(format!("{kind}-{i}.img"));
        let staging = self.floor_dir().join(format!("staging/{kind}-{i}"));
        let target = self.floor_dir().join(format!("pods/{kind}-{i}/volume"));
        let started = Instant::now();
        fs::create_dir_all(self.floor_dir())?;
        image::create_sparse(&image_path, NODE_CYCLE_BYTES)?;
        t.record("create sparse image", started);
        let started = Instant::now();
        let device = self.host.loops.attach(&image_path, false)?;
        if !block {
            self.host.filesystems.make(&device, FsKind::Ext4)?;
            fs::create_dir_all(&staging)?;
            self.host
                .mounter
                .mount(&device, &staging, "ext4", &MountOptions::default())?;
        }
        t.record("losetup + mkfs.ext4 + mount", started);
        let started = Instant::now();
        fs::create_dir_all(target.parent().context("target parent")?)?;
        if block {
            fs::File::create(&target)?;
            self.host.mounter.bind(&device, &target, false)?;
        } else {
            fs::create_dir(&target)?;
            self.host.mounter.bind(&staging, &target, false)?;
        }
        t.record("bind mount", started);
        let started = Instant::now();
        write_mib(&target, block)?;
        t.record("write 1 MiB", started);
        let started = Instant::now();
        self.host.mounter.unmount(&target)?;
        if block {
            fs::remove_file(&target)?
        } else {
            fs::remove_dir(&target)?
        }
        t.record("umount bind", started);
        let started = Instant::now();
        if !block {
            self.host.mounter.unmount(&staging)?;
            fs::remove_dir(&staging)?;
        }
        self.host.loops.detach(&device)?;
        t.record("umount + losetup -d", started);
        let started = Instant::now();
        fs::remove_file(&image_path)?;
        t.record("unlink image", started);
        Ok(())
    }

    async fn snapshots(&mut self, pairs: usize, block: bool) -> anyhow::Result<Workload> {
        let cap = if block { block_cap() } else { mount_cap() };
        let kind = if block { "snapblk" } else { "snapmnt" };
        let staging = self.dir.join(format!("staging/{kind}"));
        let target = self.dir.join(format!("pods/{kind}/volume"));
        let volume = self
            .client
            .create_volume(create_request(
                &format!("bench-{kind}"),
                NODE_CYCLE_BYTES,
                cap.clone(),
            ))
            .await?;
        let id = volume.volume.unwrap().volume_id;
        self.client
            .node_stage_volume(proto::NodeStageVolumeRequest {
                volume_id: id.clone(),
                staging_target_path: staging.display().to_string(),
                volume_capability: Some(cap.clone()),
                ..Default::default()
            })
            .await?;
        self.client
            .node_publish_volume(proto::NodePublishVolumeRequest {
                volume_id: id.clone(),
                staging_target_path: staging.display().to_string(),
                target_path: target.display().to_string(),
                volume_capability: Some(cap),
                ..Default::default()
            })
            .await?;
        write_data(&target, block, 16 * MIB)?;
        let image_path = self.dir.join("state/images").join(format!("{id}.img"));
        let device = self
            .host
            .loops
            .find(&image_path)?
            .into_iter()
            .next()
            .context("loop device")?;
        let mut run = Run::default();
        for i in 0..pairs {
            let mut t = run.driver();
            let started = Instant::now();
            let snapshot = self
                .client
                .create_snapshot(proto::CreateSnapshotRequest {
                    source_volume_id: id.clone(),
                    name: format!("bench-{kind}-{i}"),
                    ..Default::default()
                })
                .await?;
            t.record("CreateSnapshot", started);
            let started = Instant::now();
            self.client
                .delete_snapshot(proto::DeleteSnapshotRequest {
                    snapshot_id: snapshot.snapshot.unwrap().snapshot_id,
                    ..Default::default()
                })
                .await?;
            t.record("DeleteSnapshot", started);
            self.floor_snapshot(&mut run.floor(), &image_path, &device, &staging, block, i)?;
        }
        self.client
            .node_unpublish_volume(proto::NodeUnpublishVolumeRequest {
                volume_id: id.clone(),
                target_path: target.display().to_string(),
            })
            .await?;
        self.client
            .node_unstage_volume(proto::NodeUnstageVolumeRequest {
                volume_id: id.clone(),
                staging_target_path: staging.display().to_string(),
            })
            .await?;
        self.client.delete_volume(delete_request(&id)).await?;
        let name = if block {
            "snapshot create+delete (block, 16 MiB written)"
        } else {
            "snapshot create+delete (mount, 16 MiB of files)"
        };
        Ok(run.finish(name, pairs))
    }

    fn floor_snapshot(
        &self,
        t: &mut Timer<'_>,
        image_path: &Path,
        device: &Path,
        staging: &Path,
        block: bool,
        i: usize,
    ) -> anyhow::Result<()> {
        let copy = self.floor_dir().join(format!("snap-{i}.img"));
        let partial = self.floor_dir().join(format!("snap-{i}.partial"));
        fs::create_dir_all(self.floor_dir())?;
        let started = Instant::now();
        if block {
            OpenOptions::new().write(true).open(device)?.sync_all()?;
        } else {
            self.host.filesystems.freeze(staging)?;
        }
        let copied = image::copy(image_path, &partial, &copy, 0, self.sync_state);
        if !block {
            self.host.filesystems.thaw(staging)?;
        }
        copied?;
        t.record(
            if block {
                "fsync device + copy"
            } else {
                "freeze + copy + thaw"
            },
            started,
        );
        let started = Instant::now();
        fs::remove_file(&copy)?;
        t.record("unlink copy", started);
        Ok(())
    }
}

/// What making one small record durable costs on the filesystem of `dir`,
/// `n` times each: the state journal's way (overwrite a block of a
/// preallocated file, fdatasync), and the POSIX way for a new record (write
/// beside, fdatasync, rename, fsync the directory) and for a removal
/// (unlink, fsync the directory).
pub fn flush_probe(dir: &Path, n: usize) -> std::io::Result<Vec<(&'static str, StepStats)>> {
    use std::os::unix::fs::FileExt;
    let dir = dir.join("flush-probe");
    fs::create_dir_all(&dir)?;
    let directory = fs::File::open(&dir)?;
    let record = vec![b'r'; 700];
    let journal = fs::File::create(dir.join("journal"))?;
    journal.write_all_at(&vec![0u8; n * 4096], 0)?;
    journal.sync_all()?;
    let mut append = StepStats::default();
    let mut create = StepStats::default();
    let mut remove = StepStats::default();
    for i in 0..n {
        let started = Instant::now();
        journal.write_all_at(&record, (i * 4096) as u64)?;
        journal.sync_data()?;
        append.push(started.elapsed());

        let (beside, path) = (dir.join(format!("{i}.tmp")), dir.join(format!("{i}.json")));
        let started = Instant::now();
        fs::write(&beside, &record)?;
        fs::File::open(&beside)?.sync_data()?;
        fs::rename(&beside, &path)?;
        directory.sync_all()?;
        create.push(started.elapsed());

        let started = Instant::now();
        fs::remove_file(&path)?;
        directory.sync_all()?;
        remove.push(started.elapsed());
    }
    fs::remove_dir_all(&dir)?;
    Ok(vec![
        ("journal append (overwrite + fdatasync)", append),
        (
            "new record file (write, fdatasync, rename, fsync dir)",
            create,
        ),
        ("record removal (unlink, fsync dir)", remove),
    ])
}

fn write_mib(target: &Path, block: bool) -> anyhow::Result<()> {
    write_data(target, block, MIB)
}

fn write_data(target: &Path, block: bool, bytes: u64) -> anyhow::Result<()> {
    let chunk = vec![0x5Au8; MIB as usize];
    let mut file = if block {
        OpenOptions::new().write(true).open(target)?
    } else {
        fs::File::create(target.join("data"))?
    };
    for _ in 0..bytes / MIB {
        file.write_all(&chunk)?;
    }
    if bytes > MIB {
        file.sync_all()?;
    }
    Ok(())
}

fn mount_cap() -> proto::VolumeCapability {
    use proto::volume_capability::{AccessMode, AccessType, MountVolume};
    proto::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

fn block_cap() -> proto::VolumeCapability {
    use proto::volume_capability::{AccessMode, AccessType, BlockVolume};
    proto::VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

fn create_request(
    name: &str,
    bytes: u64,
    cap: proto::VolumeCapability,
) -> proto::CreateVolumeRequest {
    proto::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(proto::CapacityRange {
            required_bytes: bytes as i64,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![cap],
        ..Default::default()
    }
}

fn delete_request(id: &str) -> proto::DeleteVolumeRequest {
    proto::DeleteVolumeRequest {
        volume_id: id.into(),
        ..Default::default()
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "state records fsynced: {}\n", self.sync_state)?;
        writeln!(
            f,
            "gRPC round trip over the unix socket (NodeGetCapabilities): p50 {:.3} ms, p99 {:.3} ms\n",
            self.round_trip.quantile_ms(0.5),
            self.round_trip.quantile_ms(0.99)
        )?;
        for (what, stats) in &self.flushes {
            writeln!(
                f,
                "durable write on the state directory's filesystem, {what}: p50 {:.3} ms, p99 {:.3} ms",
                stats.quantile_ms(0.5),
                stats.quantile_ms(0.99)
            )?;
        }
        if !self.flushes.is_empty() {
            writeln!(f)?;
        }
        writeln!(
            f,
            "| workload | driver ops/s | floor ops/s | driver / floor |"
        )?;
        writeln!(f, "|---|---:|---:|---:|")?;
        for w in &self.workloads {
            writeln!(
                f,
                "| {} | {:.1} | {:.1} | {:.0} % |",
                w.name,
                w.driver_rate(),
                w.floor_rate(),
                100.0 * w.driver_rate() / w.floor_rate()
            )?;
        }
        for w in &self.workloads {
            writeln!(f, "\n**{}** ({} iterations)\n", w.name, w.iterations)?;
            writeln!(f, "| side | step | p50 ms | p99 ms |")?;
            writeln!(f, "|---|---|---:|---:|")?;
            for (side, steps) in [("driver", &w.driver), ("floor", &w.floor)] {
                for (step, stats) in steps {
                    writeln!(
                        f,
                        "| {side} | {step} | {:.3} | {:.3} |",
                        stats.quantile_ms(0.5),
                        stats.quantile_ms(0.99)
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flush_probe_times_each_way_and_leaves_nothing_behind() {
        let dir = tempfile::Builder::new()
            .prefix("vp-flush-probe")
            .tempdir_in("/var/tmp")
            .unwrap();
        let flushes = flush_probe(dir.path(), 3).unwrap();
        assert_eq!(flushes.len(), 3);
        for (what, stats) in &flushes {
            assert_eq!(stats.samples.len(), 3, "{what}");
            assert!(stats.quantile_ms(0.5) > 0.0, "{what}");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
