//! Readiness: how long the real `volplane up` binary (this executable, as a child process) takes
//! from being spawned to answering `/readyz`, on an empty store and on one preloaded with PVCs.
//!
//! Preloading goes through the store directly (many concurrent creates, batched by group
//! commit), with objects in the form the API server stores them, before the child starts.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use volplane_store::Store;

use super::http_client::{self, Cluster};
use super::report::Memory;
use super::{StoreKind, baseline, claims};

/// How long the child gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between `/readyz` attempts that failed at once (connection refused).
const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Concurrent writers while preloading.
const PRELOAD_WRITERS: usize = 256;

/// One readiness measurement.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// What the store held when the child started, in words.
    pub store_content: String,
    /// Objects preloaded for this measurement.
    pub preloaded: usize,
    /// How long preloading took.
    pub preload_elapsed: Duration,
    /// Spawn → first 200 from `/readyz`.
    pub ready_after: Duration,
    /// The child's memory once ready.
    pub child_memory: Option<Memory>,
}

/// Preloads `preload` PVCs into a fresh store of `kind` (a fresh data dir; on etcd, a namespace
/// of its own), then spawns `volplane up` on it and times `/readyz`.
pub async fn measure(kind: &StoreKind, preload: usize, run: &str) -> anyhow::Result<Readiness> {
    let data_dir = baseline::temp_dir("volplane-bench-ready-")?;
    let namespace = format!("preload-{run}");
    let mut preload_elapsed = Duration::ZERO;
    if preload > 0 {
        let store: Arc<dyn Store> = match kind {
            StoreKind::Embedded => Arc::new(baseline::open_redb(data_dir.path())?),
            StoreKind::Etcd(url) => Arc::new(
                volplane_store::etcd_store::EtcdStore::connect(url)
                    .await
                    .with_context(|| format!("connecting to {url}"))?,
            ),
        };
        let started = Instant::now();
        preload_claims(&store, &namespace, run, preload).await?;
        preload_elapsed = started.elapsed();
        // The embedded store's file must be closed before the child opens it.
        drop(store);
    }
    let store_content = match (kind, preload) {
        (StoreKind::Embedded, 0) => "empty data dir".to_string(),
        (StoreKind::Embedded, n) => format!("{n} PVCs"),
        (StoreKind::Etcd(_), 0) => "etcd as the API phase left it".to_string(),
        (StoreKind::Etcd(_), n) => format!("etcd with {n} more PVCs"),
    };
    let (ready_after, child_memory) = time_readyz(kind, data_dir.path()).await?;
    Ok(Readiness {
        store_content,
        preloaded: preload,
        preload_elapsed,
        ready_after,
        child_memory,
    })
}

/// Writes `count` claims as stored objects, from many concurrent writers.
async fn preload_claims(
    store: &Arc<dyn Store>,
    namespace: &str,
    run: &str,
    count: usize,
) -> anyhow::Result<()> {
    let created = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..PRELOAD_WRITERS.min(count) {
        let (store, next) = (store.clone(), next.clone());
        let (namespace, run, created) = (namespace.to_string(), run.to_string(), created.clone());
        writers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return anyhow::Ok(());
                }
                let name = format!("pre{}", claims::name(&run, index));
                let claim = claims::stored(&namespace, &name, index, &created);
                let key = format!("/registry/persistentvolumeclaims/{namespace}/{name}");
                let value = Bytes::from(serde_json::to_vec(&claim)?);
                store
                    .create(&key, value)
                    .await
                    .with_context(|| format!("preloading {key}"))?;
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.context("a preload writer failed")??;
    }
    Ok(())
}

/// Spawns `volplane up` on `data_dir` and polls `/readyz` until it answers 200. Returns the
/// time from spawn to ready and the child's memory then; the child is killed afterwards.
async fn time_readyz(
    kind: &StoreKind,
    data_dir: &Path,
) -> anyhow::Result<(Duration, Option<Memory>)> {
    let port = free_port()?;
    let log_path = data_dir.join("volplane-up.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut command = Command::new(&exe);
    command
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"));
    if let StoreKind::Etcd(url) = kind {
        command.arg("--store").arg(url);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("spawning {} up", exe.display()))?;
    let mut child = KillOnDrop(child);
    let server = format!("https://127.0.0.1:{port}");
    let ca_path = data_dir.join("ca.crt");
    let mut cluster: Option<Cluster> = None;
    loop {
        if let Some(status) = child.0.try_wait()? {
            bail!(
                "`volplane up` exited with {status} before it was ready:\n{}",
                log_tail(&log_path)
            );
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!(
                "`volplane up` did not answer /readyz within {READY_TIMEOUT:?}:\n{}",
                log_tail(&log_path)
            );
        }
        // The CA appears (written atomically) as the server starts; until then nothing can
        // be verified.
        if cluster.is_none()
            && let Ok(ca) = std::fs::read(&ca_path)
        {
            cluster = Some(Cluster::new(&server, &ca, None)?);
        }
        if let Some(cluster) = &cluster
            && http_client::ready(cluster, READY_TIMEOUT).await
        {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let ready_after = started.elapsed();
    let memory = Memory::of_pid(child.0.id());
    Ok((ready_after, memory))
}

/// A child process killed (by its PID) and reaped when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
