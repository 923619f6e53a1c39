//! Test harness: a built-in driver on a real unix socket (in this process,
//! or as a separate `volplane-csi-driver` process) over a fresh state
//! directory, and a Drop guard that kills the process and removes every
//! mount and loop device under the test's directory, even when the test
//! fails.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use volplane_csi::driver::{Driver, DriverConfig};
use volplane_csi::host::Host;
use volplane_csi::host::loopdev;
use volplane_csi::host::mounter::{KernelMounter, Mounter};
use volplane_csi::proto;
use volplane_csi::proto::volume_capability::access_mode::Mode;
use volplane_csi::{ClientOptions, CsiClient, Endpoint, server};

pub const NODE: &str = "node-a";

/// A driver under test.
pub struct Harness {
    dir: tempfile::TempDir,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub client: CsiClient,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    child: Option<Child>,
}

impl Harness {
    fn new_dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix("vp-csi-")
            .tempdir()
            .expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().canonicalize().unwrap();
        (dir, root.join("state"), root.join("csi.sock"))
    }

    /// A controller+node driver served from this process.
    pub async fn in_process() -> Self {
        Self::in_process_with(|_| {}).await
    }

    /// Like [`Harness::in_process`], with a changed configuration.
    pub async fn in_process_with(configure: impl FnOnce(&mut DriverConfig)) -> Self {
        let (dir, state_dir, socket) = Self::new_dirs();
        let mut harness = Self {
            client: client(&socket, 3),
            dir,
            state_dir,
            socket,
            shutdown: None,
            server: None,
            child: None,
        };
        harness.start_in_process(configure);
        harness
    }

    /// (Re)starts the in-process server on the same state directory.
    pub fn start_in_process(&mut self, configure: impl FnOnce(&mut DriverConfig)) {
        let mut config = DriverConfig::new(NODE, &self.state_dir);
        config.topology_host = Some("test-host".into());
        configure(&mut config);
        let driver = Driver::new(config, Host::kernel()).expect("driver starts");
        let endpoint = Endpoint::from_path(&self.socket);
        let listener = server::bind(&endpoint).expect("bind socket");
        let (tx, rx) = oneshot::channel();
        self.server = Some(tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            server::serve(driver, &endpoint, listener, shutdown)
                .await
                .expect("serve");
        }));
        self.shutdown = Some(tx);
    }

    /// Stops the in-process server (as a clean shutdown would).
    pub async fn stop_in_process(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// A harness whose driver runs as a separate process.
    pub fn process() -> Self {
        let (dir, state_dir, socket) = Self::new_dirs();
        let mut harness = Self {
            client: client(&socket, 1),
            dir,
            state_dir,
            socket,
            shutdown: None,
            server: None,
            child: None,
        };
        harness.spawn_process();
        harness
    }

    /// Starts the driver process and waits for its socket.
    pub fn spawn_process(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let child = Command::new(env!("CARGO_BIN_EXE_volplane-csi-driver"))
            .arg(format!("--endpoint=unix://{}", self.socket.display()))
            .arg(format!("--node-id={NODE}"))
            .arg(format!("--state-dir={}", self.state_dir.display()))
            .arg("--topology-host=test-host")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn volplane-csi-driver");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        // The socket file appears at bind(), a moment before listen(): wait until it accepts.
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "driver socket did not start accepting"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // A fresh connection, as a CO makes after its plugin restarted (the
        // old channel may still report the failed reconnect to the dead
        // process once).
        self.client = client(&self.socket, 1);
    }

    /// Kills the driver process with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill -9");
            let status = child.wait().expect("reap driver");
            assert!(!status.success(), "the driver was killed");
        }
    }

    /// A path inside the test directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().canonicalize().unwrap().join(relative)
    }

    /// Mounts under the test directory.
    pub fn mounts(&self) -> Vec<PathBuf> {
        let root = self.dir.path().canonicalize().unwrap();
        KernelMounter
            .mounts()
            .unwrap()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(&root))
            .collect()
    }

    /// Loop devices whose backing file is under the test directory.
    pub fn loop_devices(&self) -> Vec<PathBuf> {
        let root = self.dir.path().canonicalize().unwrap();
        loopdev::bound_loop_devices()
            .unwrap()
            .into_iter()
            .filter(|(_, backing)| backing.starts_with(&root))
            .map(|(device, _)| device)
            .collect()
    }

    /// Fails unless nothing is mounted or attached under the test dir.
    pub fn assert_clean(&self) {
        assert_eq!(self.mounts(), Vec::<PathBuf>::new(), "mounts left behind");
        assert_eq!(
            self.loop_devices(),
            Vec::<PathBuf>::new(),
            "loop devices left behind"
        );
    }

    /// Whether `path` is a mount point.
    pub fn is_mounted(&self, path: &Path) -> bool {
        KernelMounter.mount_at(path).unwrap().is_some()
    }

    /// The number of files in a state subdirectory (`images`, `volumes`…).
    pub fn state_files(&self, sub: &str) -> usize {
        std::fs::read_dir(self.state_dir.join(sub))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let root = self
            .dir
            .path()
            .canonicalize()
            .unwrap_or_else(|_| self.dir.path().into());
        cleanup_host(&root);
    }
}

/// Unmounts everything under `root` (deepest first, lazily) and detaches
/// every loop device backed by a file under it.
pub fn cleanup_host(root: &Path) {
    volplane_csi::host::release_everything_under(root);
}

/// A client with `attempts` tries per call.
pub fn client(socket: &Path, attempts: u32) -> CsiClient {
    let options = ClientOptions {
        timeout: Duration::from_secs(60),
        attempts,
        backoff: Duration::from_millis(20),
    };
    CsiClient::connect(&format!("unix://{}", socket.display()), options).expect("client")
}

pub fn mount_cap(mode: Mode, fs_type: &str) -> proto::VolumeCapability {
    use proto::volume_capability::{AccessMode, AccessType, MountVolume};
    proto::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: fs_type.into(),
            mount_flags: vec![],
            volume_mount_group: String::new(),
        })),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

pub fn block_cap(mode: Mode) -> proto::VolumeCapability {
    use proto::volume_capability::{AccessMode, AccessType, BlockVolume};
    proto::VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

pub fn rwo() -> proto::VolumeCapability {
    mount_cap(Mode::SingleNodeWriter, "")
}

pub const MIB: i64 = 1 << 20;

pub fn create_request(
    name: &str,
    bytes: i64,
    cap: proto::VolumeCapability,
) -> proto::CreateVolumeRequest {
    proto::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(proto::CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![cap],
        ..Default::default()
    }
}

impl Harness {
    pub async fn create(
        &self,
        name: &str,
        bytes: i64,
        cap: proto::VolumeCapability,
    ) -> proto::Volume {
        self.client
            .create_volume(create_request(name, bytes, cap))
            .await
            .expect("CreateVolume")
            .volume
            .unwrap()
    }

    pub async fn stage(
        &self,
        volume_id: &str,
        staging: &Path,
        cap: proto::VolumeCapability,
    ) -> Result<(), volplane_csi::ClientError> {
        self.client
            .node_stage_volume(proto::NodeStageVolumeRequest {
                volume_id: volume_id.into(),
                staging_target_path: staging.display().to_string(),
                volume_capability: Some(cap),
                ..Default::default()
            })
            .await
            .map(drop)
    }

    pub async fn unstage(
        &self,
        volume_id: &str,
        staging: &Path,
    ) -> Result<(), volplane_csi::ClientError> {
        self.client
            .node_unstage_volume(proto::NodeUnstageVolumeRequest {
                volume_id: volume_id.into(),
                staging_target_path: staging.display().to_string(),
            })
            .await
            .map(drop)
    }

    pub async fn publish(
        &self,
        volume_id: &str,
        staging: &Path,
        target: &Path,
        cap: proto::VolumeCapability,
        readonly: bool,
    ) -> Result<(), volplane_csi::ClientError> {
        self.client
            .node_publish_volume(proto::NodePublishVolumeRequest {
                volume_id: volume_id.into(),
                staging_target_path: staging.display().to_string(),
                target_path: target.display().to_string(),
                volume_capability: Some(cap),
                readonly,
                ..Default::default()
            })
            .await
            .map(drop)
    }

    pub async fn unpublish(
        &self,
        volume_id: &str,
        target: &Path,
    ) -> Result<(), volplane_csi::ClientError> {
        self.client
            .node_unpublish_volume(proto::NodeUnpublishVolumeRequest {
                volume_id: volume_id.into(),
                target_path: target.display().to_string(),
            })
            .await
            .map(drop)
    }

    pub async fn delete(&self, volume_id: &str) -> Result<(), volplane_csi::ClientError> {
        self.client
            .delete_volume(proto::DeleteVolumeRequest {
                volume_id: volume_id.into(),
                ..Default::default()
            })
            .await
            .map(drop)
    }

    pub async fn snapshot(
        &self,
        name: &str,
        source: &str,
    ) -> Result<proto::Snapshot, volplane_csi::ClientError> {
        self.client
            .create_snapshot(proto::CreateSnapshotRequest {
                source_volume_id: source.into(),
                name: name.into(),
                ..Default::default()
            })
            .await
            .map(|r| r.snapshot.unwrap())
    }
}

/// The gRPC code of a failed call (panics on success).
pub fn code<T: std::fmt::Debug>(result: Result<T, volplane_csi::ClientError>) -> tonic::Code {
    result
        .expect_err("the call should fail")
        .code()
        .expect("a gRPC status")
}
