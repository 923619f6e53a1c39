//! Raw write-rate benchmarks of both backends (ignored by default; they take a while and want a
//! release build). Figures go to docs/benchmarks-store.md:
//!
//! ```text
//! cargo test -p volplane-store --release --test bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! `VOLPLANE_BENCH_PUTS` overrides the number of puts (default 10,000).

mod support;

use std::sync::Arc;

use volplane_store::Store;
use volplane_store::bench::{BenchResult, raw_put_rate};
use volplane_store::redb_store::RedbStore;

const VALUE_SIZE: usize = 600;

fn puts() -> usize {
    std::env::var("VOLPLANE_BENCH_PUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

async fn run(name: &str, store: Arc<dyn Store>, writers: usize) -> BenchResult {
    let total = puts();
    let result = raw_put_rate(store.clone(), writers, total, VALUE_SIZE)
        .await
        .expect("benchmark writes");
    println!("{name}: {result}");
    assert_eq!(result.puts, total);
    let stored = store
        .list(volplane_store::ListOptions {
            prefix: "/bench/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        stored.items.len(),
        total,
        "every acknowledged put is stored"
    );
    result
}

/// The disk's own rate of 4 KiB write + fsync, the ceiling of one writer committing each put.
#[test]
#[ignore = "benchmark"]
fn bench_disk_fsync_rate() {
    use std::io::{Seek, SeekFrom, Write};
    use std::time::Instant;
    let mut file = tempfile::tempfile().expect("temp file");
    let block = [0x5a_u8; 4096];
    let rounds = 500;
    let started = Instant::now();
    for i in 0..rounds {
        file.seek(SeekFrom::Start((i % 16) * 4096)).unwrap();
        file.write_all(&block).unwrap();
        file.sync_data().unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "disk: {rounds} write+fdatasync in {:.2} s: {:.0}/s, {:.2} ms each",
        elapsed.as_secs_f64(),
        rounds as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / rounds as f64
    );
}

async fn run_redb(name: &str, writers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("bench.redb")).unwrap());
    run(name, store.clone(), writers).await;
    let stats = store.commit_stats();
    println!(
        "{name}: {} commits, {:.1} writes per commit, {:.2} ms per commit",
        stats.commits,
        stats.writes as f64 / stats.commits.max(1) as f64,
        stats.commit_time.as_secs_f64() * 1e3 / stats.commits.max(1) as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_redb_1_writer() {
    run_redb("redb, 1 writer", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_redb_32_writers() {
    run_redb("redb, 32 writers (group commit)", 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_etcd_32_clients() {
    let harness = support::Harness::etcd().await;
    run(
        "etcd, 32 clients, create-if-absent txns",
        harness.store(),
        32,
    )
    .await;
}
