//! `volplane bench`: measurements of the whole system, recorded in docs/benchmarks.md.
//!
//! `volplane bench api` measures the API server in one run: the store's raw write rate as the
//! baseline (`baseline`), the API under concurrent creates with watchers attached (`api`), and
//! how fast `volplane up` becomes ready (`readiness`). `report` prints the figures as text or as
//! a Markdown table and states whether the targets of issue 2 are met.

mod api;
mod baseline;
mod claims;
mod http_client;
mod readiness;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use self::http_client::Cluster;

/// `volplane bench …`
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(clap::Subcommand, Debug)]
enum BenchCommand {
    /// Creates, watches and lists PVCs through the API server and compares the create rate with
    /// the store's raw durable write rate measured in the same run.
    Api(ApiArgs),
}

/// Flags of `volplane bench api`.
#[derive(clap::Args, Debug, Clone)]
pub struct ApiArgs {
    /// Concurrent clients creating PVCs (also the writers of the raw group-commit baseline).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// PVCs to create (also the puts of the raw group-commit baseline; the one-writer baseline
    /// does at most 1,000).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Watchers attached to the namespace while the PVCs are created.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// The watchers are streams of one HTTP/2 connection (as client-go multiplexes a process's
    /// watches) instead of one HTTP/1.1 connection each (as kube-rs opens them).
    #[arg(long)]
    watch_http2: bool,
    /// Benchmark an API server that is already running at this URL instead of an in-process
    /// one (needs --kubeconfig for its CA and token).
    #[arg(long, requires = "kubeconfig")]
    server: Option<String>,
    /// The kubeconfig of the --server (its current context's CA and bearer token are used).
    #[arg(long, requires = "server")]
    kubeconfig: Option<PathBuf>,
    /// The store: `embedded` (redb in a temp dir) or `etcd://host:port`.
    #[arg(long, default_value = "embedded")]
    store: String,
    /// Start /usr/bin/etcd (or $VOLPLANE_ETCD) on free loopback ports in a temp dir and use it as
    /// the store; it is killed when the benchmark ends.
    #[arg(long, conflicts_with = "store")]
    spawn_etcd: bool,
    /// Objects to preload for the second readiness measurement (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    preload: usize,
    /// Same as --preload 0.
    #[arg(long)]
    skip_readiness_100k: bool,
    /// Skip both readiness measurements.
    #[arg(long)]
    skip_readiness: bool,
    /// Also print the results as a Markdown table (for docs/benchmarks.md).
    #[arg(long)]
    markdown: bool,
}

/// Where the benchmark keeps objects.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreKind {
    Embedded,
    Etcd(String),
}

impl StoreKind {
    fn describe(&self) -> String {
        match self {
            StoreKind::Embedded => "embedded redb".into(),
            StoreKind::Etcd(url) => format!("etcd at {url}"),
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Api(args) => run_api(args).await,
    }
}

async fn run_api(args: ApiArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients > 0 && args.count > 0,
        "--clients and --count must be positive"
    );
    // Kept alive (and killed on drop) for the whole run.
    let spawned_etcd = if args.spawn_etcd {
        let etcd =
            tokio::task::spawn_blocking(volplane_testkit::etcd::EtcdServer::try_start).await?;
        Some(etcd.map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let store = match &spawned_etcd {
        Some(etcd) => StoreKind::Etcd(etcd.url()),
        None if args.store == "embedded" => StoreKind::Embedded,
        None if args.store.starts_with("etcd://") => StoreKind::Etcd(args.store.clone()),
        None => anyhow::bail!(
            "--store must be `embedded` or `etcd://host:port`, not {:?}",
            args.store
        ),
    };
    let run = run_id();
    let mut report = report::Report {
        machine: report::machine(),
        store: store.describe(),
        clients: args.clients,
        count: args.count,
        watchers: args.watchers,
        ..Default::default()
    };

    eprintln!("baseline: raw store writes on {} …", store.describe());
    report.baseline = Some(baseline::measure(&store, args.clients, args.count).await?);
    report.print_baseline();

    eprintln!(
        "api: {} watchers, {} clients creating {} PVCs …",
        args.watchers, args.clients, args.count
    );
    let rss_before = report::Memory::of_self();
    let target = match (&args.server, &args.kubeconfig) {
        (Some(server), Some(kubeconfig)) => {
            api::Target::External(Cluster::from_kubeconfig(kubeconfig, Some(server))?)
        }
        _ => api::Target::start_in_process(&store).await?,
    };
    let params = api::Params {
        clients: args.clients,
        count: args.count,
        watchers: args.watchers,
        watch_http2: args.watch_http2,
        run: run.clone(),
        store_pid: spawned_etcd.as_ref().and_then(|etcd| etcd.pid()),
    };
    let mut api_result = api::measure(&target, &params).await?;
    if target.is_in_process() {
        api_result.memory = Some(report::ProcessMemory {
            before: rss_before,
            after: report::Memory::of_self(),
        });
    }
    report.api = Some(api_result);
    report.print_api();

    let preload = if args.skip_readiness_100k {
        0
    } else {
        args.preload
    };
    if !args.skip_readiness {
        eprintln!("readiness: `volplane up` on {} …", store.describe());
        let first = readiness::measure(&store, 0, &run)
            .await
            .context("readiness without preloaded objects")?;
        report.readiness.push(first);
        report.print_readiness(report.readiness.len() - 1);
        if preload > 0 {
            eprintln!("readiness: preloading {preload} PVCs …");
            let loaded = readiness::measure(&store, preload, &run)
                .await
                .with_context(|| format!("readiness with {preload} preloaded objects"))?;
            report.readiness.push(loaded);
            report.print_readiness(report.readiness.len() - 1);
        }
    }
    report.print_targets();
    if args.markdown {
        println!();
        print!("{}", report.markdown(&command_line()));
    }
    drop(target);
    drop(spawned_etcd);
    Ok(())
}

/// A short id that keeps this run's names apart from earlier runs' on a shared server.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:06x}", (nanos / 1000) & 0xff_ffff)
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("volplane {}", args.join(" "))
}

/// Latencies of one kind of operation, summarised.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    pub count: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latencies {
    /// Summarises latencies in nanoseconds (sorts them).
    pub fn from_nanos(mut nanos: Vec<u64>) -> Latencies {
        nanos.sort_unstable();
        let count = nanos.len();
        if count == 0 {
            return Latencies::default();
        }
        let at = |q: f64| {
            let index = ((count - 1) as f64 * q).round() as usize;
            Duration::from_nanos(nanos[index.min(count - 1)])
        };
        let sum: u128 = nanos.iter().map(|&n| u128::from(n)).sum();
        Latencies {
            count,
            mean: Duration::from_nanos((sum / count as u128) as u64),
            p50: at(0.50),
            p99: at(0.99),
            max: Duration::from_nanos(nanos[count - 1]),
        }
    }
}

/// Milliseconds with two decimals, for reports.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_pick_nearest_rank_quantiles() {
        let l = Latencies::from_nanos((1..=100).rev().map(|n| n * 1_000_000).collect());
        assert_eq!(l.count, 100);
        assert_eq!(l.p50, Duration::from_millis(51));
        assert_eq!(l.p99, Duration::from_millis(99));
        assert_eq!(l.max, Duration::from_millis(100));
        assert_eq!(Latencies::from_nanos(Vec::new()).count, 0);
    }
}
