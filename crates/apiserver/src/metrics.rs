//! `/metrics` in the Prometheus text format: requests by verb, resource and code, request
//! latency, open watches, and store commit latency.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The API server's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    commits: Mutex<Histogram>,
    watches: AtomicI64,
}

impl Metrics {
    pub fn observe_request(&self, verb: &str, resource: &str, code: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default() += 1;
        if verb != "watch" {
            self.latency
                .lock()
                .expect("metrics lock")
                .entry((verb.to_string(), resource.to_string()))
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
    }

    pub fn observe_commit(&self, elapsed: Duration) {
        self.commits
            .lock()
            .expect("metrics lock")
            .observe(elapsed.as_secs_f64());
    }

    pub fn watch_started(&self) {
        self.watches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn watch_ended(&self) {
        self.watches.fetch_sub(1, Ordering::Relaxed);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Requests answered, by verb, resource and HTTP code.\n# TYPE apiserver_request_total counter\n");
        for ((verb, resource, code), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{resource}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Request latency, by verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, resource), h) in self.latency.lock().expect("metrics lock").iter() {
            h.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &format!("verb=\"{verb}\",resource=\"{resource}\""),
            );
        }
        out.push_str("# HELP apiserver_registered_watchers Open watches.\n# TYPE apiserver_registered_watchers gauge\n");
        let _ = writeln!(
            out,
            "apiserver_registered_watchers {}",
            self.watches.load(Ordering::Relaxed)
        );
        out.push_str("# HELP volplane_store_commit_duration_seconds Latency of store writes.\n# TYPE volplane_store_commit_duration_seconds histogram\n");
        self.commits.lock().expect("metrics lock").render(
            &mut out,
            "volplane_store_commit_duration_seconds",
            "",
        );
        out
    }
}

/// A store that records the latency of every write in [`Metrics`].
pub struct TimedStore {
    inner: std::sync::Arc<dyn volplane_store::Store>,
    metrics: std::sync::Arc<Metrics>,
}

impl TimedStore {
    pub fn new(
        inner: std::sync::Arc<dyn volplane_store::Store>,
        metrics: std::sync::Arc<Metrics>,
    ) -> TimedStore {
        TimedStore { inner, metrics }
    }
}

use volplane_store::{KeyValue, ListOptions, ListPage, Revision, StoreError, WatchStream};

#[async_trait::async_trait]
impl volplane_store::Store for TimedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, options: ListOptions) -> Result<ListPage, StoreError> {
        self.inner.list(options).await
    }
    async fn create(&self, key: &str, value: bytes::Bytes) -> Result<Revision, StoreError> {
        let started = std::time::Instant::now();
        let result = self.inner.create(key, value).await;
        self.metrics.observe_commit(started.elapsed());
        result
    }
    async fn update(
        &self,
        key: &str,
        value: bytes::Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        let started = std::time::Instant::now();
        let result = self.inner.update(key, value, expected).await;
        self.metrics.observe_commit(started.elapsed());
        result
    }
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        let started = std::time::Instant::now();
        let result = self.inner.delete(key, expected).await;
        self.metrics.observe_commit(started.elapsed());
        result
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        self.inner.watch(prefix, after).await
    }
    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision().await
    }
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe_request(
            "create",
            "persistentvolumeclaims",
            201,
            Duration::from_millis(3),
        );
        m.observe_commit(Duration::from_millis(2));
        m.watch_started();
        let text = m.render();
        assert!(text.contains("apiserver_request_total{verb=\"create\",resource=\"persistentvolumeclaims\",code=\"201\"} 1"));
        assert!(text.contains("apiserver_request_duration_seconds_bucket{verb=\"create\",resource=\"persistentvolumeclaims\",le=\"0.005\"} 1"));
        assert!(text.contains("apiserver_registered_watchers 1"));
        assert!(text.contains("volplane_store_commit_duration_seconds_count{} 1"));
    }
}
