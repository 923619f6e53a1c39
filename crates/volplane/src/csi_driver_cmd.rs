//! `volplane csi-driver`: runs the built-in CSI driver
//! `local.csi.volplane.io` on a unix socket until SIGTERM or SIGINT.
//!
//! ```text
//! volplane csi-driver --endpoint unix:///run/volplane/csi.sock \
//!     --node-id node-1 --state-dir /var/lib/volplane/csi [--controller] [--node]
//! ```
//! With neither `--controller` nor `--node` both services are served. The
//! arguments and the run loop live in `volplane_csi::cli`, shared with the
//! crate's standalone `volplane-csi-driver` test binary, so both are the same
//! entry point.

/// Arguments of `volplane csi-driver` (`--endpoint`, `--node-id`,
/// `--state-dir`, `--controller`, `--node`, `--max-volumes-per-node`,
/// `--topology-host`, `--sync-state`).
pub use volplane_csi::cli::CsiDriverArgs;

/// Runs the driver until SIGTERM or SIGINT.
pub async fn run(args: CsiDriverArgs) -> anyhow::Result<()> {
    volplane_csi::cli::run(args).await
}
