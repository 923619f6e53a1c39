//! The API measurement: watchers attach to a fresh namespace, concurrent clients create PVCs over
//! keep-alive HTTPS connections, every watcher must see every ADDED event, then the PVCs are
//! listed as JSON and as kubectl's Table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde::de::IgnoredAny;
use volplane_store::redb_store::{CommitStats, RedbStore};
use volplane_store::{Store, WatchEvent};

use super::http_client::{Cluster, Connection};
use super::report::{Memory, ProcessMemory, cpu_time};
use super::{Latencies, StoreKind, baseline, claims};

/// How long watchers get, after the last create was answered, to deliver the last events.
const WATCH_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What kubectl sends as `Accept` for `kubectl get`.
const KUBECTL_TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// kubectl's default `--chunk-size`.
const KUBECTL_CHUNK_SIZE: usize = 500;

/// The API server under test.
pub enum Target {
    /// Started by the benchmark in this process, on a fresh temp data dir.
    InProcess {
        cluster: Cluster,
        /// The embedded store, for its commit statistics (`None` on etcd).
        redb: Option<Arc<RedbStore>>,
        /// The store the server writes to, watched directly for when each write committed.
        store: Arc<dyn Store>,
        _running: volplane_apiserver::Running,
        _data_dir: tempfile::TempDir,
    },
    /// Already running elsewhere (`--server`, `--kubeconfig`).
    External(Cluster),
}

impl Target {
    /// Starts an API server in this process on a fresh temp data dir, on `store`.
    pub async fn start_in_process(store: &StoreKind) -> anyhow::Result<Target> {
        let data_dir = baseline::temp_dir("volplane-bench-api-")?;
        let (store, redb): (Arc<dyn Store>, _) = match store {
            StoreKind::Embedded => {
                let redb = Arc::new(baseline::open_redb(data_dir.path())?);
                (redb.clone(), Some(redb))
            }
            StoreKind::Etcd(url) => {
                let etcd = volplane_store::etcd_store::EtcdStore::connect(url)
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                (Arc::new(etcd), None)
            }
        };
        let config = volplane_apiserver::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: data_dir.path().to_path_buf(),
        };
        let running = volplane_apiserver::start(config, store.clone())
            .await
            .context("starting the in-process API server")?;
        let cluster = Cluster::from_kubeconfig(&running.kubeconfig, None)?;
        Ok(Target::InProcess {
            cluster,
            redb,
            store,
            _running: running,
            _data_dir: data_dir,
        })
    }

    pub fn cluster(&self) -> &Cluster {
        match self {
            Target::InProcess { cluster, .. } | Target::External(cluster) => cluster,
        }
    }

    pub fn is_in_process(&self) -> bool {
        matches!(self, Target::InProcess { .. })
    }

    /// The store under an in-process server.
    fn store(&self) -> Option<&Arc<dyn Store>> {
        match self {
            Target::InProcess { store, .. } => Some(store),
            Target::External(_) => None,
        }
    }

    fn commit_stats(&self) -> Option<CommitStats> {
        match self {
            Target::InProcess {
                redb: Some(redb), ..
            } => Some(redb.commit_stats()),
            _ => None,
        }
    }
}

/// The create phase repeated with no watcher attached.
#[derive(Debug, Clone, Default)]
pub struct WithoutWatchers {
    pub creates: Latencies,
    pub creates_per_second: f64,
}

/// What to run.
pub struct Params {
    pub clients: usize,
    pub count: usize,
    pub watchers: usize,
    /// The watchers share one HTTP/2 connection instead of one HTTP/1.1 connection each.
    pub watch_http2: bool,
    /// Names this run's namespace and claims.
    pub run: String,
    /// The store's own process (a spawned etcd), whose CPU time the create phase is charged.
    pub store_pid: Option<u32>,
}

/// CPU time used during the create phase (100 watchers attached), by this process (with an
/// in-process server: server and benchmark clients together) and by the store's process.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateCpu {
    pub this_process: Option<Duration>,
    pub store_process: Option<Duration>,
}

impl CreateCpu {
    fn now(store_pid: Option<u32>) -> CreateCpu {
        CreateCpu {
            this_process: cpu_time("self"),
            store_process: store_pid.and_then(|pid| cpu_time(&pid.to_string())),
        }
    }

    fn since(self, start: CreateCpu) -> CreateCpu {
        let spent = |a: Option<Duration>, b: Option<Duration>| Some(a?.saturating_sub(b?));
        CreateCpu {
            this_process: spent(self.this_process, start.this_process),
            store_process: spent(self.store_process, start.store_process),
        }
    }
}

/// What the API measurement found.
#[derive(Debug, Clone, Default)]
pub struct ApiResult {
    /// Client-side latency of each create (request sent → 201 read).
    pub creates: Latencies,
    /// First create sent → last create answered.
    pub create_elapsed: Duration,
    pub creates_per_second: f64,
    /// Create sent → watcher received ADDED, over every (watcher, object) pair.
    pub watch_from_send: Latencies,
    /// Create answered → watcher received ADDED (0 when the event came first).
    pub watch_after_answer: Latencies,
    /// Create committed in the store → watcher received ADDED: the API server's own delivery
    /// time (in-process server only, whose store the benchmark watches directly).
    pub watch_from_commit: Option<Latencies>,
    /// The same creates again into a second namespace once every watcher has gone: what the
    /// watch fan-out costs, measured in the same run (`None` when the run had no watchers).
    pub without_watchers: Option<WithoutWatchers>,
    /// Events that reached their watcher before the create's answer reached its client.
    pub events_before_answer: usize,
    pub lists: Vec<ListTiming>,
    /// Server-side figures from `/metrics`, over the create phase.
    pub server: Option<ServerTiming>,
    /// Group commit over the create phase (in-process embedded store only).
    pub commits: Option<CommitStats>,
    /// This process's memory before and after (in-process server only).
    pub memory: Option<ProcessMemory>,
    /// This process's memory right after the create phase, before the lists.
    pub memory_after_creates: Option<Memory>,
    /// CPU time of the create phase.
    pub create_cpu: CreateCpu,
}

/// One timed list of all the run's PVCs.
#[derive(Debug, Clone)]
pub struct ListTiming {
    pub what: &'static str,
    pub elapsed: Duration,
    pub bytes: usize,
    pub items: usize,
    pub requests: usize,
}

/// Means from the server's `/metrics`, for the create phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerTiming {
    /// Mean time the server spent on one create (request parsed → answer built).
    pub create_mean: Option<Duration>,
    /// Mean duration of one store write (commit included).
    pub store_write_mean: Option<Duration>,
}

/// Runs the measurement against `target`.
pub async fn measure(target: &Target, params: &Params) -> anyhow::Result<ApiResult> {
    let cluster = target.cluster();
    let namespace = format!("bench-{}", params.run);
    let mut control = cluster.connect().await?;
    create_namespace(&mut control, &namespace).await?;
    let collection = format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims");
    let list_rv = list_resource_version(&mut control, &collection).await?;

    // Everything is timed against one clock, in nanoseconds since `epoch`.
    let epoch = Instant::now();
    let prefix = claims::name_prefix(&params.run);

    let mut watchers = tokio::task::JoinSet::new();
    let (attached_tx, mut attached_rx) = tokio::sync::mpsc::channel(params.watchers.max(1));
    // With --watch-http2 every watcher is a stream of one HTTP/2 connection, as client-go
    // multiplexes a process's watches; otherwise each has its own HTTP/1.1 connection.
    let shared = if params.watch_http2 && params.watchers > 0 {
        Some(cluster.connect_http2().await?)
    } else {
        None
    };
    for _ in 0..params.watchers {
        let connection = match &shared {
            Some(shared) => shared.stream().expect("an HTTP/2 connection"),
            None => cluster.connect().await?,
        };
        let path =
            format!("{collection}?watch=1&resourceVersion={list_rv}&allowWatchBookmarks=true");
        let prefix = prefix.clone();
        let attached = attached_tx.clone();
        let count = params.count;
        watchers
            .spawn(async move { watch(connection, path, prefix, count, epoch, attached).await });
    }
    drop(attached_tx);
    for _ in 0..params.watchers {
        if attached_rx.recv().await.is_none() {
            // A watcher failed before attaching; its error comes out of the join below.
            break;
        }
    }
    if let Some(failed) = first_early_failure(&mut watchers) {
        return Err(failed);
    }

    let commit_clock = match target.store() {
        Some(store) => {
            Some(CommitClock::start(store, &namespace, &prefix, params.count, epoch).await?)
        }
        None => None,
    };
    let metrics_before = server_metrics(&mut control).await;
    let commits_before = target.commit_stats();
    let cpu_before = CreateCpu::now(params.store_pid);
    let (creates, create_elapsed, sent, answered) =
        create_claims(cluster, &namespace, params, epoch).await?;
    let create_cpu = CreateCpu::now(params.store_pid).since(cpu_before);
    let memory_after_creates = target.is_in_process().then(Memory::of_self).flatten();
    let metrics_after = server_metrics(&mut control).await;
    let commits = match (commits_before, target.commit_stats()) {
        (Some(before), Some(after)) => Some(CommitStats {
            commits: after.commits - before.commits,
            writes: after.writes - before.writes,
            commit_time: after.commit_time.saturating_sub(before.commit_time),
        }),
        _ => None,
    };

    let received = tokio::time::timeout(WATCH_DRAIN_TIMEOUT, async {
        let mut all = Vec::with_capacity(params.watchers);
        while let Some(joined) = watchers.join_next().await {
            all.push(joined.context("a watcher task failed")??);
        }
        anyhow::Ok(all)
    })
    .await
    .with_context(|| {
        format!(
            "watchers did not receive all {} ADDED events within {WATCH_DRAIN_TIMEOUT:?} of the last create",
            params.count
        )
    })??;
    let (watch_from_send, watch_after_answer, events_before_answer) =
        delivery_latencies(&received, &sent, &answered);
    let watch_from_commit = match commit_clock {
        Some(clock) => Some(since(&received, &clock.finish().await?)),
        None => None,
    };
    drop(received);

    eprintln!("api: creates done; listing {} PVCs …", params.count);
    let lists = list_claims(&mut control, &collection, params.count).await?;
    let without_watchers = if params.watchers > 0 {
        eprintln!("api: the same creates with no watcher attached …");
        Some(create_without_watchers(cluster, &mut control, &namespace, params, epoch).await?)
    } else {
        None
    };

    if !target.is_in_process() {
        delete_namespace(&mut control, &namespace).await;
        if params.watchers > 0 {
            delete_namespace(&mut control, &quiet_namespace(&namespace)).await;
        }
    }
    Ok(ApiResult {
        creates_per_second: creates.count as f64 / create_elapsed.as_secs_f64().max(1e-9),
        creates,
        create_elapsed,
        watch_from_send,
        watch_after_answer,
        watch_from_commit,
        without_watchers,
        events_before_answer,
        lists,
        server: match (metrics_before, metrics_after) {
            (Some(before), Some(after)) => Some(server_timing(&before, &after)),
            _ => None,
        },
        commits,
        memory: None,
        memory_after_creates,
        create_cpu,
    })
}

/// The namespace of the phase without watchers.
fn quiet_namespace(namespace: &str) -> String {
    format!("{namespace}-quiet")
}

/// Creates the run's claims again, in a namespace of their own, after every watcher of the
/// first phase has read its last event and closed its connection.
async fn create_without_watchers(
    cluster: &Cluster,
    control: &mut Connection,
    namespace: &str,
    params: &Params,
    epoch: Instant,
) -> anyhow::Result<WithoutWatchers> {
    let namespace = quiet_namespace(namespace);
    create_namespace(control, &namespace).await?;
    let (creates, elapsed, _, _) = create_claims(cluster, &namespace, params, epoch).await?;
    Ok(WithoutWatchers {
        creates_per_second: creates.count as f64 / elapsed.as_secs_f64().max(1e-9),
        creates,
    })
}

/// The error of a watcher that already ended (it can only have failed: none is done yet).
fn first_early_failure(
    watchers: &mut tokio::task::JoinSet<anyhow::Result<Vec<u64>>>,
) -> Option<anyhow::Error> {
    while let Some(joined) = watchers.try_join_next() {
        match joined {
            Err(err) => return Some(anyhow::Error::new(err).context("a watcher task failed")),
            Ok(Err(err)) => return Some(err.context("a watcher failed to attach")),
            Ok(Ok(_)) => {}
        }
    }
    None
}

async fn create_namespace(control: &mut Connection, namespace: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    control
        .send(
            Method::POST,
            "/api/v1/namespaces",
            None,
            Some(Bytes::from(serde_json::to_vec(&body)?)),
        )
        .await?
        .ok(&format!("creating namespace {namespace}"))?;
    Ok(())
}

/// Deletes the run's namespace on an external server (its PVCs go with it). Failing to is
/// reported, not fatal: the figures are already taken.
async fn delete_namespace(control: &mut Connection, namespace: &str) {
    let path = format!("/api/v1/namespaces/{namespace}");
    let outcome = match control.send(Method::DELETE, &path, None, None).await {
        Ok(answer) => answer
            .ok(&format!("deleting namespace {namespace}"))
            .map(drop),
        Err(err) => Err(err),
    };
    if let Err(err) = outcome {
        eprintln!("warning: {err:#}");
    }
}

async fn list_resource_version(
    control: &mut Connection,
    collection: &str,
) -> anyhow::Result<String> {
    #[derive(serde::Deserialize)]
    struct List {
        metadata: ListMeta,
    }
    #[derive(serde::Deserialize)]
    struct ListMeta {
        #[serde(rename = "resourceVersion")]
        resource_version: String,
    }
    let body = control
        .send(Method::GET, collection, None, None)
        .await?
        .ok("listing PVCs before watching")?;
    let list: List = serde_json::from_slice(&body).context("decoding the PVC list")?;
    Ok(list.metadata.resource_version)
}

/// One watcher: reads the watch stream until it has seen the ADDED event of every claim of the
/// run; returns when each arrived (nanoseconds since `epoch`, indexed by claim).
async fn watch(
    mut connection: Connection,
    path: String,
    prefix: String,
    count: usize,
    epoch: Instant,
    attached: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<Vec<u64>> {
    let response = connection.start(Method::GET, &path, None, None).await?;
    if response.status() != StatusCode::OK {
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        bail!(
            "watch {path}: the server answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let _ = attached.send(()).await;
    let mut lines = EventLines::new(&prefix, count);
    let mut body = response.into_body();
    while lines.seen < count {
        let frame = match body.frame().await {
            Some(frame) => frame.context("reading the watch stream")?,
            None => bail!(
                "the watch stream ended after {} of {count} ADDED events",
                lines.seen
            ),
        };
        let arrived = epoch.elapsed().as_nanos() as u64;
        if let Ok(data) = frame.into_data() {
            lines.feed(&data, arrived)?;
        }
    }
    Ok(lines.received)
}

/// The benchmark's side of a watch stream: when each of the run's claims arrived as ADDED.
/// It shares the two cores with the server, so it looks at bytes, not JSON: a newline search
/// (memchr), the event type at the line's start, and the claim's name; the rest of each
/// ~1 KiB line is never read (byte-by-byte scanning and a `str` search per line cost a tenth
/// of the machine with 100 watchers).
struct EventLines {
    name: memchr::memmem::Finder<'static>,
    received: Vec<u64>,
    seen: usize,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
}

impl EventLines {
    fn new(prefix: &str, count: usize) -> EventLines {
        let needle = format!("\"name\":\"{prefix}").into_bytes();
        EventLines {
            name: memchr::memmem::Finder::new(&needle).into_owned(),
            received: vec![u64::MAX; count],
            seen: 0,
            partial: Vec::new(),
        }
    }

    /// Takes one chunk of the body, which may end mid-line.
    fn feed(&mut self, data: &[u8], arrived: u64) -> anyhow::Result<()> {
        let mut rest = data;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            if self.partial.is_empty() {
                self.line(&rest[..end], arrived)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..end]);
                self.line(&line, arrived)?;
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    fn line(&mut self, line: &[u8], arrived: u64) -> anyhow::Result<()> {
        // Both volplane and upstream write the type first: `{"type":"ADDED","object":…}`.
        const ADDED: &[u8] = b"{\"type\":\"ADDED\"";
        const ERROR: &[u8] = b"{\"type\":\"ERROR\"";
        if line.starts_with(ERROR) {
            bail!("the watch failed: {}", String::from_utf8_lossy(line));
        }
        if !line.starts_with(ADDED) {
            return Ok(());
        }
        let Some(at) = self.name.find(line) else {
            return Ok(());
        };
        let digits = &line[at + self.name.needle().len()..];
        let Some(index) = std::str::from_utf8(&digits[..digits.len().min(7)])
            .ok()
            .and_then(claims::index_of)
        else {
            return Ok(());
        };
        if let Some(slot) = self.received.get_mut(index)
            && *slot == u64::MAX
        {
            *slot = arrived;
            self.seen += 1;
        }
        Ok(())
    }
}

/// Creates the run's claims from `params.clients` concurrent keep-alive connections. Returns
/// the create latencies, the elapsed time, and when each create was sent and answered.
async fn create_claims(
    cluster: &Cluster,
    namespace: &str,
    params: &Params,
    epoch: Instant,
) -> anyhow::Result<(Latencies, Duration, Vec<u64>, Vec<u64>)> {
    // Bodies are encoded up front so that client-side JSON work stays out of the timings.
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..params.count)
            .map(|i| {
                let claim = claims::manifest(namespace, &claims::name(&params.run, i));
                Bytes::from(serde_json::to_vec(&claim).expect("JSON values serialise"))
            })
            .collect(),
    );
    let sent: Arc<Vec<AtomicU64>> =
        Arc::new((0..params.count).map(|_| AtomicU64::new(0)).collect());
    let answered: Arc<Vec<AtomicU64>> =
        Arc::new((0..params.count).map(|_| AtomicU64::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let path = format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims");
    let mut connections = Vec::with_capacity(params.clients);
    for _ in 0..params.clients {
        connections.push(cluster.connect().await?);
    }
    let started = epoch.elapsed();
    let mut clients = tokio::task::JoinSet::new();
    for mut connection in connections {
        let (bodies, sent, answered, next, path) = (
            bodies.clone(),
            sent.clone(),
            answered.clone(),
            next.clone(),
            path.clone(),
        );
        clients.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else {
                    return anyhow::Ok(latencies);
                };
                let sent_at = epoch.elapsed().as_nanos() as u64;
                sent[index].store(sent_at, Ordering::Relaxed);
                let answer = connection
                    .send(Method::POST, &path, None, Some(body.clone()))
                    .await?;
                let answered_at = epoch.elapsed().as_nanos() as u64;
                answered[index].store(answered_at, Ordering::Relaxed);
                if answer.status != StatusCode::CREATED {
                    answer.ok(&format!("creating PVC #{index}"))?;
                    bail!("creating PVC #{index}: expected 201 Created");
                }
                latencies.push(answered_at - sent_at);
            }
        });
    }
    let mut latencies = Vec::with_capacity(params.count);
    while let Some(joined) = clients.join_next().await {
        latencies.extend(joined.context("a client task failed")??);
    }
    let answered: Vec<u64> = answered.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    let last = answered.iter().copied().max().unwrap_or(0);
    let elapsed = Duration::from_nanos(last).saturating_sub(started);
    let sent = sent.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    Ok((Latencies::from_nanos(latencies), elapsed, sent, answered))
}

/// When each claim's write committed in the store, as a watch of the store itself (not the
/// API server's) sees it: the clock against which the server's watch delivery is measured.
struct CommitClock {
    committed: Arc<Vec<AtomicU64>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl CommitClock {
    async fn start(
        store: &Arc<dyn Store>,
        namespace: &str,
        prefix: &str,
        count: usize,
        epoch: Instant,
    ) -> anyhow::Result<CommitClock> {
        let key_prefix = format!("/registry/persistentvolumeclaims/{namespace}/{prefix}");
        let revision = store.current_revision().await?;
        let mut events = store.watch(&key_prefix, revision).await?;
        let committed: Arc<Vec<AtomicU64>> =
            Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
        let slots = committed.clone();
        let task = tokio::spawn(async move {
            let mut seen = 0;
            while seen < slots.len() {
                let Some(event) = events.next().await else {
                    bail!("the store's watch ended after {seen} creates");
                };
                let WatchEvent::Put { kv, prev: None } = event? else {
                    continue;
                };
                let at = epoch.elapsed().as_nanos() as u64;
                let index = kv.key.strip_prefix(&key_prefix).and_then(claims::index_of);
                if let Some(slot) = index.and_then(|i| slots.get(i))
                    && slot.swap(at, Ordering::Relaxed) == 0
                {
                    seen += 1;
                }
            }
            Ok(())
        });
        Ok(CommitClock { committed, task })
    }

    /// When each claim committed, once the store's watch has seen them all.
    async fn finish(self) -> anyhow::Result<Vec<u64>> {
        tokio::time::timeout(WATCH_DRAIN_TIMEOUT, self.task)
            .await
            .context("the store's watch did not see every create")?
            .context("the store watch task failed")??;
        Ok(self
            .committed
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect())
    }
}

/// Arrival minus `start[claim]` over every (watcher, claim) pair; 0 when the event arrived
/// first, which is counted too.
fn since(received: &[Vec<u64>], start: &[u64]) -> Latencies {
    let pairs = received
        .iter()
        .flat_map(|watcher| watcher.iter().zip(start));
    Latencies::from_nanos(
        pairs
            .map(|(&arrived, &at)| arrived.saturating_sub(at))
            .collect(),
    )
}

/// Delivery latencies over every (watcher, claim) pair: from the create being sent, from its
/// answer, and how many events reached their watcher before the answer reached its client.
fn delivery_latencies(
    received: &[Vec<u64>],
    sent: &[u64],
    answered: &[u64],
) -> (Latencies, Latencies, usize) {
    let before_answer = received
        .iter()
        .flat_map(|watcher| watcher.iter().zip(answered))
        .filter(|(arrived, answer)| arrived < answer)
        .count();
    (
        since(received, sent),
        since(received, answered),
        before_answer,
    )
}

/// Lists the run's claims three ways: one JSON list, one Table, and the Table in kubectl's
/// pages of 500 (what `kubectl get pvc` does). Each must return all `count` claims.
async fn list_claims(
    control: &mut Connection,
    collection: &str,
    count: usize,
) -> anyhow::Result<Vec<ListTiming>> {
    #[derive(serde::Deserialize)]
    struct Items {
        items: Vec<IgnoredAny>,
    }
    #[derive(serde::Deserialize)]
    struct Rows {
        rows: Vec<IgnoredAny>,
        #[serde(default)]
        metadata: PageMeta,
    }
    #[derive(serde::Deserialize, Default)]
    struct PageMeta {
        #[serde(rename = "continue", default)]
        continue_token: Option<String>,
    }

    let mut timings = Vec::new();
    let started = Instant::now();
    let body = control
        .send(Method::GET, collection, None, None)
        .await?
        .ok("listing PVCs as JSON")?;
    let elapsed = started.elapsed();
    let items = serde_json::from_slice::<Items>(&body)
        .context("decoding the PVC list")?
        .items
        .len();
    timings.push(ListTiming {
        what: "JSON",
        elapsed,
        bytes: body.len(),
        items,
        requests: 1,
    });

    let started = Instant::now();
    let body = control
        .send(Method::GET, collection, Some(KUBECTL_TABLE_ACCEPT), None)
        .await?
        .ok("listing PVCs as a Table")?;
    let elapsed = started.elapsed();
    let rows = serde_json::from_slice::<Rows>(&body)
        .context("decoding the PVC Table")?
        .rows
        .len();
    timings.push(ListTiming {
        what: "Table",
        elapsed,
        bytes: body.len(),
        items: rows,
        requests: 1,
    });

    let started = Instant::now();
    let (mut rows, mut bytes, mut requests) = (0, 0, 0);
    let mut continue_token: Option<String> = None;
    loop {
        let mut path = format!("{collection}?limit={KUBECTL_CHUNK_SIZE}");
        if let Some(token) = &continue_token {
            path.push_str("&continue=");
            path.push_str(&percent_encode(token));
        }
        let body = control
            .send(Method::GET, &path, Some(KUBECTL_TABLE_ACCEPT), None)
            .await?
            .ok("listing PVCs as Table pages")?;
        let page: Rows = serde_json::from_slice(&body).context("decoding a PVC Table page")?;
        rows += page.rows.len();
        bytes += body.len();
        requests += 1;
        continue_token = page.metadata.continue_token.filter(|t| !t.is_empty());
        if continue_token.is_none() {
            break;
        }
    }
    timings.push(ListTiming {
        what: "Table, pages of 500 (kubectl get)",
        elapsed: started.elapsed(),
        bytes,
        items: rows,
        requests,
    });

    for timing in &timings {
        if timing.items != count {
            bail!(
                "list ({}) returned {} PVCs, expected {count}",
                timing.what,
                timing.items
            );
        }
    }
    Ok(timings)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sums and counts of the server's create latency and store write latency histograms.
#[derive(Debug, Clone, Copy, Default)]
struct MetricSums {
    create: Option<(f64, f64)>,
    store_write: Option<(f64, f64)>,
}

/// Reads `/metrics`; `None` when the server has none we understand.
async fn server_metrics(control: &mut Connection) -> Option<MetricSums> {
    let answer = control
        .send(Method::GET, "/metrics", None, None)
        .await
        .ok()?;
    let body = answer.ok("reading /metrics").ok()?;
    let text = String::from_utf8_lossy(&body);
    let sum_and_count = |name: &str, labels: &[&str]| -> Option<(f64, f64)> {
        let value = |suffix: &str| -> Option<f64> {
            let metric = format!("{name}{suffix}");
            let mut total = None;
            for line in text.lines() {
                let Some(rest) = line.strip_prefix(&metric) else {
                    continue;
                };
                if !(rest.starts_with('{') || rest.starts_with(' ')) {
                    continue;
                }
                if !labels.iter().all(|l| rest.contains(l)) {
                    continue;
                }
                let v: f64 = rest.rsplit(' ').next()?.parse().ok()?;
                *total.get_or_insert(0.0) += v;
            }
            total
        };
        Some((value("_sum")?, value("_count")?))
    };
    Some(MetricSums {
        create: sum_and_count(
            "apiserver_request_duration_seconds",
            &["verb=\"create\"", "resource=\"persistentvolumeclaims\""],
        ),
        store_write: sum_and_count("volplane_store_commit_duration_seconds", &[]),
    })
}

fn server_timing(before: &MetricSums, after: &MetricSums) -> ServerTiming {
    let mean = |b: Option<(f64, f64)>, a: Option<(f64, f64)>| {
        let ((sum0, n0), (sum1, n1)) = (b.unwrap_or_default(), a?);
        let n = n1 - n0;
        (n > 0.0).then(|| Duration::from_secs_f64((sum1 - sum0) / n))
    };
    ServerTiming {
        create_mean: mean(before.create, after.create),
        store_write_mean: mean(before.store_write, after.store_write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watch line as the server writes it.
    fn event(kind: &str, name: &str) -> String {
        format!(
            "{{\"type\":\"{kind}\",\"object\":{{\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"b\"}}}}}}\n"
        )
    }

    #[test]
    fn event_lines_count_added_claims_once_across_frame_boundaries() {
        let prefix = claims::name_prefix("r1");
        let mut lines = EventLines::new(&prefix, 3);
        let stream = [
            event("ADDED", &claims::name("r1", 0)),
            event("MODIFIED", &claims::name("r1", 1)),
            event("ADDED", &claims::name("other", 1)),
            event("ADDED", &claims::name("r1", 2)),
            event("ADDED", &claims::name("r1", 0)),
        ]
        .concat();
        // Cut the stream into 7-byte frames, so lines and names straddle frames.
        for (at, frame) in stream.as_bytes().chunks(7).enumerate() {
            lines.feed(frame, at as u64).unwrap();
        }
        assert_eq!(lines.seen, 2);
        assert_ne!(lines.received[0], u64::MAX);
        assert_eq!(
            lines.received[1],
            u64::MAX,
            "MODIFIED and other runs' claims do not count"
        );
        assert_ne!(lines.received[2], u64::MAX);
        let first = event("ADDED", &claims::name("r1", 0)).len() as u64;
        assert_eq!(
            lines.received[0],
            (first - 1) / 7,
            "the frame holding the line's end"
        );
    }

    #[test]
    fn event_lines_fail_on_an_error_event() {
        let mut lines = EventLines::new(&claims::name_prefix("r1"), 1);
        let error = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}\n";
        let failure = lines.feed(error.as_bytes(), 0).unwrap_err().to_string();
        assert!(failure.contains("410"), "{failure}");
    }

    #[test]
    fn continue_tokens_are_percent_encoded() {
        assert_eq!(percent_encode("eyJ2Ijo=+/"), "eyJ2Ijo%3D%2B%2F");
    }

    #[test]
    fn delivery_counts_events_that_beat_the_answer() {
        let received = vec![vec![15, 40]];
        let (from_send, after_answer, before) = delivery_latencies(&received, &[10, 20], &[20, 30]);
        assert_eq!(from_send.max, Duration::from_nanos(20));
        assert_eq!(after_answer.mean, Duration::from_nanos(5));
        assert_eq!(after_answer.max, Duration::from_nanos(10));
        assert_eq!(before, 1);
    }
}
