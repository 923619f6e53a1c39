//! The baseline: the store's own durable write rate (create-if-absent of 600-byte values, no
//! HTTP, JSON or admission), measured with `volplane_store::bench::raw_put_rate` on a fresh
//! store in the same run as the API figures, so the ratio holds on a noisy machine.

use std::sync::Arc;

use anyhow::Context;
use volplane_store::Store;
use volplane_store::bench::{BenchResult, raw_put_rate};
use volplane_store::etcd_store::EtcdStore;
use volplane_store::redb_store::RedbStore;

use super::StoreKind;

/// The size of the baseline's values: about one PVC manifest.
pub const VALUE_SIZE: usize = 600;

/// The one-writer baseline does at most this many puts (one fsync each: slow on purpose).
const SINGLE_WRITER_MAX_PUTS: usize = 1_000;

/// What the baseline measured.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// `writers` concurrent writers sharing commits (the API's situation).
    pub group: BenchResult,
    /// One writer, one commit per put.
    pub single: BenchResult,
    /// Writes per commit in the group run (embedded store only).
    pub writes_per_commit: Option<f64>,
}

/// Runs both baselines on a fresh store of `kind`.
pub async fn measure(kind: &StoreKind, writers: usize, puts: usize) -> anyhow::Result<Baseline> {
    let single_puts = puts.min(SINGLE_WRITER_MAX_PUTS);
    match kind {
        StoreKind::Embedded => {
            let (group, stats) = {
                let dir = temp_dir("volplane-bench-raw-")?;
                let store = Arc::new(open_redb(dir.path())?);
                let result = raw_put_rate(store.clone(), writers, puts, VALUE_SIZE)
                    .await
                    .context("raw redb group-commit baseline")?;
                (result, store.commit_stats())
            };
            let dir = temp_dir("volplane-bench-raw-")?;
            let store: Arc<dyn Store> = Arc::new(open_redb(dir.path())?);
            let single = raw_put_rate(store, 1, single_puts, VALUE_SIZE)
                .await
                .context("raw redb one-writer baseline")?;
            let writes_per_commit =
                (stats.commits > 0).then(|| stats.writes as f64 / stats.commits as f64);
            Ok(Baseline {
                group,
                single,
                writes_per_commit,
            })
        }
        StoreKind::Etcd(url) => {
            let store: Arc<dyn Store> = Arc::new(
                EtcdStore::connect(url)
                    .await
                    .with_context(|| format!("connecting to {url}"))?,
            );
            let group = raw_put_rate(store.clone(), writers, puts, VALUE_SIZE)
                .await
                .context("raw etcd create-transaction baseline")?;
            let single = raw_put_rate(store, 1, single_puts, VALUE_SIZE)
                .await
                .context("raw etcd one-client baseline")?;
            Ok(Baseline {
                group,
                single,
                writes_per_commit: None,
            })
        }
    }
}

/// A temp dir on the same disk as the default temp dir (where the in-process server keeps its
/// store too, so baseline and API share a disk).
pub fn temp_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a temp dir for the benchmark")
}

/// Opens the embedded store file in `dir`, named as `volplane up` names it.
pub fn open_redb(dir: &std::path::Path) -> anyhow::Result<RedbStore> {
    let path = dir.join("store.redb");
    RedbStore::open(&path).with_context(|| format!("opening the embedded store {}", path.display()))
}
