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

/// `volplane up`: every role in one process. Today that is the API server; the controllers and
/// node agent join it as they are built.
pub async fn up(args: ServeArgs) -> anyhow::Result<()> {
    apiserver(args).await
}

/// `volplane apiserver`: serves the API until interrupted.
pub async fn apiserver(args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(&args).await?;
    let config = volplane_apiserver::Config {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
    };
    let running = volplane_apiserver::start(config, store)
        .await
        .context("starting the API server")?;
    let kubeconfig =
        std::fs::canonicalize(&running.kubeconfig).unwrap_or(running.kubeconfig.clone());
    println!("volplane is serving on https://{}", running.addr);
    println!("export KUBECONFIG={}", kubeconfig.display());
    wait_for_signal().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
