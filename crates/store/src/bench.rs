//! The raw write rate of a store: concurrent writers creating fresh keys as fast as the backend
//! acknowledges them. `volplane bench api` reports it as the baseline of the API benchmark.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::{Store, StoreError};

/// What [`raw_put_rate`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// Concurrent writers.
    pub writers: usize,
    /// Acknowledged writes.
    pub puts: usize,
    /// Wall time from the first write to the last answer.
    pub elapsed: Duration,
    /// `puts / elapsed`.
    pub puts_per_second: f64,
    /// Median latency of one write.
    pub p50: Duration,
    /// 99th percentile latency of one write.
    pub p99: Duration,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} puts by {} writers in {:.2} s: {:.0} puts/s, p50 {:.2} ms, p99 {:.2} ms",
            self.puts,
            self.writers,
            self.elapsed.as_secs_f64(),
            self.puts_per_second,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
        )
    }
}

/// The latency at quantile `q` (0..=1) of sorted latencies.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// `writers` concurrent tasks create `total` new keys (split evenly) with `value_size`-byte values
/// under `/bench/<run>/`, each waiting for its write to be acknowledged (durable) before the next.
/// Writes are create-if-absent, the API server's create. Fails on the first refused write.
pub async fn raw_put_rate(
    store: Arc<dyn Store>,
    writers: usize,
    total: usize,
    value_size: usize,
) -> Result<BenchResult, StoreError> {
    let writers = writers.max(1);
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let value = Bytes::from(vec![b'x'; value_size]);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let count = total / writers + usize::from(writer < total % writers);
        let store = store.clone();
        let value = value.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for i in 0..count {
                let key = format!("/bench/{run}/{writer:03}/{i:08}");
                let sent = Instant::now();
                store.create(&key, value.clone()).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, StoreError>(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(total);
    while let Some(joined) = tasks.join_next().await {
        let writer_latencies = joined.map_err(|e| StoreError::Backend {
            message: format!("benchmark writer failed: {e}"),
            indeterminate: true,
        })??;
        latencies.extend(writer_latencies);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(BenchResult {
        writers,
        puts: latencies.len(),
        elapsed,
        puts_per_second: latencies.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_picks_the_nearest_rank() {
        let sorted: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&sorted, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
