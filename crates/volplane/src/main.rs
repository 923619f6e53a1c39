//! The `volplane` binary: every server role, `up` (all roles in one process), and the tools.
#![forbid(unsafe_code)]

mod bench;
mod controller_manager_cmd;
mod csi_driver_cmd;
mod serve;
mod why_cmd;

use clap::{Parser, Subcommand};

/// mimalloc, not glibc's malloc: every role runs many tasks on few threads, and glibc's arena
/// locks and consolidation took a quarter of the CPU in the binding benchmark (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// volplane: a Kubernetes-compatible storage control plane for containers and virtual machines.
#[derive(Parser)]
#[command(name = "volplane", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every role in one process on the embedded store (or `--store etcd://…`).
    Up(serve::ServeArgs),
    /// Runs just the API server.
    Apiserver(serve::ServeArgs),
    /// Runs the storage control loops (binding, provisioning, reclaim, protection, expansion,
    /// snapshots) against an API server.
    ControllerManager(controller_manager_cmd::ControllerManagerArgs),
    /// Runs the built-in CSI driver local.csi.volplane.io on a unix socket.
    CsiDriver(csi_driver_cmd::CsiDriverArgs),
    /// Explains why a claim is Pending, a PV Released or Failed, a snapshot not ready, or a
    /// deletion stuck (`volplane why pvc/NAME -n NS`).
    Why(why_cmd::WhyArgs),
    /// Benchmarks (`volplane bench api`).
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let runtime = match cli.command {
        Command::CsiDriver(_) => volplane_csi::cli::runtime()?,
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(async {
        match cli.command {
            Command::Up(args) => serve::up(args).await,
            Command::Apiserver(args) => serve::apiserver(args).await,
            Command::ControllerManager(args) => controller_manager_cmd::run(args).await,
            Command::CsiDriver(args) => csi_driver_cmd::run(args).await,
            Command::Why(args) => why_cmd::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    })
}

/// Logs go to stderr; `RUST_LOG` chooses the level (default `info`), `VOLPLANE_LOG_FORMAT=json`
/// makes them structured JSON lines.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("VOLPLANE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
