//! `volplane csi-driver`: the command-line arguments of the built-in driver
//! and the function that runs it until SIGTERM or SIGINT.

use std::path::PathBuf;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::driver::{Driver, DriverConfig};
use crate::endpoint::Endpoint;
use crate::host::Host;
use crate::server;

/// Arguments of `volplane csi-driver`.
#[derive(Debug, Clone, clap::Args)]
pub struct CsiDriverArgs {
    /// Socket to serve on, `unix:///path/csi.sock`.
    #[arg(long, env = "CSI_ENDPOINT")]
    pub endpoint: String,
    /// This node's id, reported by NodeGetInfo.
    #[arg(long, env = "NODE_ID")]
    pub node_id: String,
    /// Directory for the driver's records, backing images and snapshots.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Serve the Controller service (with neither flag: both services).
    #[arg(long)]
    pub controller: bool,
    /// Serve the Node service (with neither flag: both services).
    #[arg(long)]
    pub node: bool,
    /// Attach limit reported by NodeGetInfo and enforced on publish.
    #[arg(long, default_value_t = 256)]
    pub max_volumes_per_node: i64,
    /// Value of the `topology.local.csi.volplane.io/host` segment
    /// (default: the machine id).
    #[arg(long)]
    pub topology_host: Option<String>,
    /// fsync every state record (survives power loss, not only a crash).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sync_state: bool,
}

impl CsiDriverArgs {
    /// The driver configuration these arguments describe.
    pub fn config(&self) -> DriverConfig {
        let both = !self.controller && !self.node;
        let mut config = DriverConfig::new(self.node_id.clone(), self.state_dir.clone());
        config.controller = self.controller || both;
        config.node = self.node || both;
        config.max_volumes_per_node = self.max_volumes_per_node;
        config.topology_host = self.topology_host.clone();
        config.sync_state = self.sync_state;
        config
    }
}

/// The runtime the driver runs on: one thread drives the gRPC connections
/// (each RPC's work runs on the blocking pool). With two worker threads every
/// call paid cross-thread wake-ups and a unary round trip was a third slower
/// (docs/benchmarks-csi.md, session 4).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs the driver on the host until SIGTERM or SIGINT (on [`runtime`]).
pub async fn run(args: CsiDriverArgs) -> anyhow::Result<()> {
    let endpoint = Endpoint::parse(&args.endpoint)?;
    let driver = Driver::new(args.config(), Host::kernel()).with_context(|| {
        format!(
            "start the CSI driver on state directory {}",
            args.state_dir.display()
        )
    })?;
    let listener = server::bind(&endpoint)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("signal received, stopping the CSI driver");
    };
    server::serve(driver, &endpoint, listener, shutdown).await?;
    Ok(())
}
