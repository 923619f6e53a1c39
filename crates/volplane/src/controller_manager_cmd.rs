//! `volplane controller-manager`: the storage control loops (binding, provisioning, reclaim,
//! protection, expansion, snapshots) as a client of an API server.
//!
//! ```text
//! volplane controller-manager --kubeconfig FILE \
//!     [--csi-driver local.csi.volplane.io=unix:///run/volplane/csi.sock]...
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use volplane_controllers::csi_drivers::{Registry, parse_flag};
use volplane_controllers::{Context, ManagerConfig};

/// Flags of `volplane controller-manager`.
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerManagerArgs {
    /// The kubeconfig of the API server (`volplane up` writes `<data-dir>/kubeconfig`).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// A CSI driver's controller endpoint, `NAME=unix:///path` (repeatable).
    #[arg(long = "csi-driver", value_name = "NAME=unix:///path", value_parser = parse_flag)]
    pub csi_drivers: Vec<(String, String)>,
    /// Concurrent reconciles per loop.
    #[arg(long, default_value_t = ManagerConfig::default().workers)]
    pub workers: usize,
}

/// Runs the controller-manager until a loop fails for good or a signal arrives.
pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let client = client_from(&args.kubeconfig).await?;
    let drivers = Arc::new(Registry::new());
    for (name, endpoint) in &args.csi_drivers {
        drivers.register(name, endpoint)?;
    }
    let config = ManagerConfig {
        workers: args.workers,
        ..ManagerConfig::default()
    };
    let ctx = Context::new(client, config);
    tokio::select! {
        result = volplane_controllers::manager::run(ctx, drivers) => {
            result.context("controller-manager")
        }
        _ = crate::serve::wait_for_signal() => Ok(()),
    }
}

/// A kube client for the kubeconfig file's current context.
pub async fn client_from(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading the kubeconfig {}", kubeconfig.display()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("loading the kubeconfig {}", kubeconfig.display()))?;
    // The API server names a writer's field manager after its user agent (up to the first
    // `/`), so managedFields say `volplane-controller-manager` as upstream says
    // `kube-controller-manager`; kube-rs sends no User-Agent of its own.
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!(
            "volplane-controller-manager/v",
            env!("CARGO_PKG_VERSION")
        )),
    ));
    kube::Client::try_from(config).context("building the API client")
}
