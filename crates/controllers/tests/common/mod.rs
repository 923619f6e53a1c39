//! Test harness shared by the controller tests: a real API server (in this process, embedded
//! store in a temp dir, TLS, token) and, when a test needs one, the built-in CSI driver on a
//! real unix socket. Guards clean up on drop, also when the test fails: the driver's mounts and
//! loop devices are released and the temp dirs removed.
#![allow(dead_code)]

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use volplane_csi::driver::{Driver, DriverConfig};
use volplane_csi::host::Host;
use volplane_csi::{ClientOptions, CsiClient, Endpoint, server};

/// The node the test driver reports (NodeGetInfo) and its topology value.
pub const NODE: &str = "node-a";
pub const TOPOLOGY_HOST: &str = "node-a";

/// An API server on a fresh embedded store.
pub struct ApiServer {
    dir: tempfile::TempDir,
    pub addr: std::net::SocketAddr,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
}

impl ApiServer {
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vp-ctrl-api-")
            .tempdir()
            .expect("temp dir");
        let store = volplane_store::redb_store::RedbStore::open(dir.path().join("store.redb"))
            .expect("store opens");
        let config = volplane_apiserver::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
        };
        let running = volplane_apiserver::start(config, Arc::new(store))
            .await
            .expect("API server starts");
        let client = client_for(&running.kubeconfig).await;
        Self {
            dir,
            addr: running.addr,
            kubeconfig: running.kubeconfig,
            client,
        }
    }

    /// A kubectl bound to this server (private cache dir).
    pub fn kubectl(&self) -> volplane_testkit::Kubectl {
        volplane_testkit::Kubectl::new(&self.kubeconfig)
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_for(kubeconfig: &std::path::Path) -> kube::Client {
    kube::Client::try_from(volplane_testkit::kube_config_for(kubeconfig).await)
        .expect("kube client")
}

/// The built-in driver `local.csi.volplane.io` (controller + node) served from this process.
pub struct CsiDriver {
    dir: tempfile::TempDir,
    pub root: PathBuf,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub client: CsiClient,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl CsiDriver {
    pub async fn start() -> Self {
        // Tests need crash safety, not power-loss safety; fsync per record only slows them.
        Self::start_with(|config| config.sync_state = false).await
    }

    /// The driver with its configuration changed by `configure` (the node id and topology
    /// are set first).
    pub async fn start_with(configure: impl FnOnce(&mut DriverConfig)) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vp-ctrl-csi-")
            .tempdir()
            .expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().canonicalize().unwrap();
        let socket = root.join("csi.sock");
        let state_dir = root.join("state");
        let mut config = DriverConfig::new(NODE, &state_dir);
        config.topology_host = Some(TOPOLOGY_HOST.into());
        configure(&mut config);
        let driver = Driver::new(config, Host::kernel()).expect("driver starts");
        let endpoint = Endpoint::from_path(&socket);
        let listener = server::bind(&endpoint).expect("bind socket");
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            server::serve(driver, &endpoint, listener, shutdown)
                .await
                .expect("driver serves");
        });
        let options = ClientOptions {
            timeout: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_millis(20),
        };
        let client =
            CsiClient::connect(&format!("unix://{}", socket.display()), options).expect("client");
        Self {
            dir,
            root,
            socket,
            state_dir,
            client,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// The endpoint to register with the controller-manager.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A scratch directory under the driver's root (released on drop), e.g. for staging paths.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

impl Drop for CsiDriver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        volplane_csi::host::release_everything_under(&self.root);
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
