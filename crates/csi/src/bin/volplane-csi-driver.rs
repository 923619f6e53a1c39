//! The built-in CSI driver as a standalone process: the same entry point as
//! `volplane csi-driver` ([`volplane_csi::cli::run`]), built with this crate
//! so its tests (the kill -9 crash test) and benchmarks can run a real,
//! separate driver process.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "volplane-csi-driver",
    version,
    about = "The local.csi.volplane.io CSI driver"
)]
struct Cli {
    #[command(flatten)]
    args: volplane_csi::cli::CsiDriverArgs,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Cli::parse().args;
    volplane_csi::cli::runtime()?.block_on(volplane_csi::cli::run(args))
}
