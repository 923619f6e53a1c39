//! `cargo bench -p volplane-controllers --bench binding`: how fast the PV binder binds.
//!
//! 1. **Matching cost** (in memory): time per claim to find its PV with the index and with
//!    upstream's linear scan, among N = 1k, 10k, 100k PVs of mixed classes, modes, access
//!    modes and sizes.
//! 2. **End to end**: an API server in this process (embedded store), N PVs and N matching
//!    claims created concurrently, then the binder started; the time until every claim is
//!    Bound, with the API writes it took. The same for upstream's algorithm and concurrency
//!    (linear scan, one worker) on a smaller count, since it binds at a few tens per second.
//!
//! Environment: `VP_BENCH_COUNT` (10000), `VP_BENCH_BASELINE_COUNT` (1000),
//! `VP_BENCH_WORKERS` (32), `VP_BENCH_SKIP_E2E=1` (matching only), `VP_BENCH_SKIP_MATCHING=1`
//! (end to end only).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim};
use kube::api::PostParams;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use volplane_controllers::matching::Binding;
use volplane_controllers::pv_binder::{self, BinderOptions};
use volplane_controllers::pv_index::{Indexed, LinearScan, Matcher};
use volplane_controllers::{Context, ManagerConfig};

const CLASSES: [&str; 4] = ["fast", "slow", "standard", ""];
const MODES: [&str; 2] = ["Filesystem", "Block"];
const ACCESS: [&[&str]; 4] = [
    &["ReadWriteOnce"],
    &["ReadWriteOnce", "ReadOnlyMany"],
    &["ReadWriteMany"],
    &["ReadOnlyMany"],
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The i-th PV of the mixed population (deterministic).
fn pv_manifest(prefix: &str, i: usize) -> serde_json::Value {
    let size = 1 + (i * 7919) % 100;
    json!({
        "metadata": {"name": format!("{prefix}-{i}")},
        "spec": {"capacity": {"storage": format!("{size}Gi")},
                 "accessModes": ACCESS[i % 4],
                 "volumeMode": MODES[(i / 4) % 2],
                 "storageClassName": CLASSES[(i / 8) % 4],
                 "hostPath": {"path": format!("/tmp/{prefix}-{i}")}},
        "status": {"phase": "Available"}
    })
}

/// The i-th claim: same class, mode and access modes as the i-th PV, asking for at most its
/// size, so every claim can be bound.
fn claim_manifest(ns: &str, i: usize) -> serde_json::Value {
    let size = 1 + (i * 7919) % 100;
    let request = 1 + (i * 31) % size;
    json!({
        "metadata": {"name": format!("claim-{i}"), "namespace": ns},
        "spec": {"resources": {"requests": {"storage": format!("{request}Gi")}},
                 "accessModes": ACCESS[i % 4],
                 "volumeMode": MODES[(i / 4) % 2],
                 "storageClassName": CLASSES[(i / 8) % 4]}
    })
}

// ---------------------------------------------------------------------------------------
// 1. Matching cost in memory.

struct MatchRow {
    volumes: usize,
    indexed_ns: f64,
    linear_ns: f64,
}

fn matching_cost(n: usize) -> MatchRow {
    let volumes: HashMap<String, Arc<PersistentVolume>> = (0..n)
        .map(|i| {
            let pv: PersistentVolume = serde_json::from_value(pv_manifest("pv", i)).unwrap();
            (format!("pv-{i}"), Arc::new(pv))
        })
        .collect();
    let mut indexed = Indexed::default();
    let mut linear = LinearScan::default();
    for pv in volumes.values() {
        indexed.insert(pv);
        linear.insert(pv);
    }
    let claims: Vec<PersistentVolumeClaim> = (0..2000)
        .map(|i| serde_json::from_value(claim_manifest("bench", i * 13 + 5)).unwrap())
        .collect();
    let time = |matcher: &dyn Matcher, count: usize| {
        let started = Instant::now();
        let mut found = 0usize;
        for claim in claims.iter().cycle().take(count) {
            if matcher
                .find(&volumes, claim, Binding::Immediate, &|_| false)
                .is_some()
            {
                found += 1;
            }
        }
        assert!(found > 0);
        started.elapsed().as_nanos() as f64 / count as f64
    };
    // The scan touches every PV of a bucket: fewer rounds keep 100k short.
    let linear_rounds = (2_000_000 / n.max(1)).clamp(50, 2000);
    MatchRow {
        volumes: n,
        indexed_ns: time(&indexed, 20_000),
        linear_ns: time(&linear, linear_rounds),
    }
}

// ---------------------------------------------------------------------------------------
// 2. End to end.

struct E2eRow {
    label: String,
    claims: usize,
    workers: usize,
    available_s: f64,
    bound_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    writes: u64,
    conflicts: u64,
}

/// Creates `count` objects with `concurrency` requests in flight.
async fn create_all<K>(api: &Api<K>, manifests: Vec<serde_json::Value>, concurrency: usize)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    futures::stream::iter(manifests)
        .map(|manifest| async move {
            let object: K = serde_json::from_value(manifest).unwrap();
            api.create(&PostParams::default(), &object)
                .await
                .expect("create");
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
}

/// Counts of write requests (2xx) and conflicts (409) the server answered so far.
async fn write_counts(client: &Client) -> (u64, u64) {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap_or_default();
    let (mut writes, mut conflicts) = (0, 0);
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let n: u64 = value.parse().unwrap_or(0);
        let is_write = ["update", "patch", "create", "delete"]
            .iter()
            .any(|verb| labels.contains(&format!("verb=\"{verb}\"")));
        if !is_write || labels.contains("events") {
            continue;
        }
        if labels.contains("code=\"409\"") {
            conflicts += n;
        } else if labels.contains("code=\"2") {
            writes += n;
        }
    }
    (writes, conflicts)
}

fn spawn_binder(client: &Client, options: BinderOptions) -> tokio::task::JoinHandle<()> {
    let ctx = Context::new(client.clone(), ManagerConfig::default());
    tokio::spawn(async move {
        let _ = pv_binder::run(ctx, options).await;
    })
}

/// Waits until every claim of `ns` is Bound; returns each claim's time to Bound from `start`.
async fn wait_all_bound(client: &Client, ns: &str, count: usize, start: Instant) -> Vec<Duration> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let stream = watcher(api, watcher::Config::default());
    futures::pin_mut!(stream);
    let mut bound: HashMap<String, Duration> = HashMap::new();
    while bound.len() < count {
        let event = tokio::time::timeout(Duration::from_secs(600), stream.next())
            .await
            .expect("binding made progress within 10 minutes");
        let claim = match event {
            Some(Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c))) => c,
            Some(Err(error)) => panic!("watch: {error}"),
            _ => continue,
        };
        if claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound") {
            let name = claim.metadata.name.unwrap_or_default();
            bound.entry(name).or_insert_with(|| start.elapsed());
        }
    }
    bound.into_values().collect()
}

async fn end_to_end(label: &str, count: usize, options: BinderOptions) -> E2eRow {
    let server = common::ApiServer::start().await;
    let client = server.client.clone();
    let ns = "bench";
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    create_all(&pvs, (0..count).map(|i| pv_manifest("pv", i)).collect(), 64).await;

    // New PVs are Pending until the binder's volume sync makes them Available (one status
    // write each); that is timed apart, with the binder that then stops.
    let started = Instant::now();
    let binder = spawn_binder(&client, options.clone());
    loop {
        let list = pvs.list(&Default::default()).await.unwrap();
        let available = list
            .items
            .iter()
            .filter(|pv| pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Available"));
        if available.count() == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let available_s = started.elapsed().as_secs_f64();
    binder.abort();

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    create_all(
        &claims,
        (0..count).map(|i| claim_manifest(ns, i)).collect(),
        64,
    )
    .await;
    let before = write_counts(&client).await;
    let started = Instant::now();
    let binder = spawn_binder(&client, options.clone());
    let mut latencies = wait_all_bound(&client, ns, count, started).await;
    let bound_s = started.elapsed().as_secs_f64();
    binder.abort();
    let after = write_counts(&client).await;
    latencies.sort();
    let percentile = |p: f64| {
        let at = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[at].as_secs_f64() * 1000.0
    };
    E2eRow {
        label: label.to_string(),
        claims: count,
        workers: options.workers,
        available_s,
        bound_s,
        p50_ms: percentile(0.5),
        p99_ms: percentile(0.99),
        writes: after.0 - before.0,
        conflicts: after.1 - before.1,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("## Matching cost per claim (in memory)\n");
    println!("| PVs | index (ns/claim) | linear scan (ns/claim) | scan ÷ index |");
    println!("|---:|---:|---:|---:|");
    let sizes: &[usize] = if std::env::var("VP_BENCH_SKIP_MATCHING").is_ok() {
        &[]
    } else {
        &[1_000, 10_000, 100_000]
    };
    for &n in sizes {
        let row = matching_cost(n);
        println!(
            "| {} | {:.0} | {:.0} | {:.0}× |",
            row.volumes,
            row.indexed_ns,
            row.linear_ns,
            row.linear_ns / row.indexed_ns
        );
    }
    if std::env::var("VP_BENCH_SKIP_E2E").is_ok() {
        return;
    }
    let count = env("VP_BENCH_COUNT", 10_000);
    let baseline_count = env("VP_BENCH_BASELINE_COUNT", 1_000);
    let workers = env("VP_BENCH_WORKERS", 32);
    let rows = runtime.block_on(async {
        vec![
            end_to_end(
                "index, concurrent workers",
                count,
                BinderOptions::indexed(workers),
            )
            .await,
            end_to_end(
                "upstream: linear scan, 1 worker",
                baseline_count,
                BinderOptions::upstream_baseline(),
            )
            .await,
        ]
    });
    println!("\n## End to end: claims created, then the binder started, until all Bound\n");
    println!(
        "| binder | claims | workers | PVs → Available (s) | all Bound (s) | binds/s | ms per claim | p50 / p99 time to Bound (ms) | API writes (per bind) | 409 conflicts |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.3} | {:.0} / {:.0} | {} ({:.2}) | {} |",
            row.label,
            row.claims,
            row.workers,
            row.available_s,
            row.bound_s,
            row.claims as f64 / row.bound_s,
            row.bound_s * 1000.0 / row.claims as f64,
            row.p50_ms,
            row.p99_ms,
            row.writes,
            row.writes as f64 / row.claims as f64,
            row.conflicts
        );
    }
    let ratio =
        (rows[1].bound_s / rows[1].claims as f64) / (rows[0].bound_s / rows[0].claims as f64);
    println!("\nPer-claim time, upstream ÷ index: {ratio:.1}×");
}
