//! The server roles: `volplane up` and `volplane apiserver`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use volplane_store::Store;

/// Flags shared by the server roles.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Where the embedded store, credentials and kubeconfig live.
    #[arg(long, default_value = "./volplane-data")]
    pub data_dir: PathBuf,
    /// The address the API server listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// The store: `embedded` (redb under --data-dir) or `etcd://host:port`.
    #[arg(long, default_value = "embedded")]
    pub store: String,
}

/// Opens the store the flags name.
pub async fn open_store(args: &ServeArgs) -> anyhow::Result<Arc<dyn Store>> {
    if args.store == "embedded" {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
        let path = args.data_dir.join("store.redb");
        let store = volplane_store::redb_store::RedbStore::open(&path)
            .with_context(|| format!("opening the embedded store {}", path.display()))?;
        return Ok(Arc::new(store));
    }
    if args.store.starts_with("etcd://") {
        let store = volplane_store::etcd_store::EtcdStore::connect(&args.store)
            .await
            .with_context(|| format!("connecting to {}", args.store))?;
        return Ok(Arc::new(store));
    }
    anyhow::bail!(
        "--store must be `embedded` or `etcd://host:port`, not {:?}",
        args.store
    )
}

/// `volplane up`: every role in one process — the API server, the built-in CSI driver
/// `local.csi.volplane.io` (state under `<data-dir>/csi`) and the controller-manager, which
/// reaches the API through the kubeconfig like any other client. If a role fails for good the
/// process exits non-zero, so a supervisor restarts everything from the store's state.
pub async fn up(args: ServeArgs) -> anyhow::Result<()> {
    let running = start_apiserver(&args).await?;
    let csi_endpoint = start_builtin_csi_driver(&args.data_dir)?;
    let client = crate::controller_manager_cmd::client_from(&running.kubeconfig).await?;
    let drivers = std::sync::Arc::new(volplane_controllers::csi_drivers::Registry::new());
    drivers.register(volplane_csi::DRIVER_NAME, &csi_endpoint)?;
    let ctx =
        volplane_controllers::Context::new(client, volplane_controllers::ManagerConfig::default());
    announce(&running);
    tokio::select! {
        result = volplane_controllers::manager::run(ctx, drivers) => {
            result.context("controller-manager")
        }
        _ = wait_for_signal() => Ok(()),
    }
}

/// `volplane apiserver`: serves the API until interrupted.
pub async fn apiserver(args: ServeArgs) -> anyhow::Result<()> {
    let running = start_apiserver(&args).await?;
    announce(&running);
    wait_for_signal().await;
    Ok(())
}

async fn start_apiserver(args: &ServeArgs) -> anyhow::Result<volplane_apiserver::Running> {
    let store = open_store(args).await?;
    let config = volplane_apiserver::Config {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
    };
    volplane_apiserver::start(config, store)
        .await
        .context("starting the API server")
}

fn announce(running: &volplane_apiserver::Running) {
    let kubeconfig =
        std::fs::canonicalize(&running.kubeconfig).unwrap_or(running.kubeconfig.clone());
    println!("volplane is serving on https://{}", running.addr);
    println!("export KUBECONFIG={}", kubeconfig.display());
}

/// Serves the built-in driver (controller and node) on `<data-dir>/csi/csi.sock` in this
/// process; returns its endpoint.
fn start_builtin_csi_driver(data_dir: &std::path::Path) -> anyhow::Result<String> {
    use volplane_csi::{Driver, DriverConfig, Endpoint, host::Host, server};
    let dir = std::path::absolute(data_dir.join("csi")).context("the CSI state directory")?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the CSI state directory {}", dir.display()))?;
    let config = DriverConfig::new(node_name(), dir.join("state"));
    let driver = Driver::new(config, Host::kernel())
        .with_context(|| format!("starting the CSI driver in {}", dir.display()))?;
    let endpoint = Endpoint::from_path(dir.join("csi.sock"));
    let listener = server::bind(&endpoint).context("binding the CSI driver's socket")?;
    let url = format!("unix://{}", endpoint.path().display());
    tokio::spawn(async move {
        if let Err(error) = server::serve(driver, &endpoint, listener, std::future::pending()).await
        {
            tracing::error!(%error, "the built-in CSI driver stopped");
        }
    });
    Ok(url)
}

/// This machine's node name: its hostname, lower-cased (as the kubelet names its Node).
pub fn node_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
