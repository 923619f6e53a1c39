//! Test harnesses: a store of each backend on throwaway storage, cleaned up on drop.

#![allow(dead_code)]

pub use volplane_testkit::etcd;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use volplane_store::etcd_store::EtcdStore;
use volplane_store::redb_store::{RedbOptions, RedbStore};
use volplane_store::{Store, StoreError, WatchEvent, WatchStream};

/// Where a harness keeps its data.
enum Backend {
    Redb {
        dir: tempfile::TempDir,
        options: RedbOptions,
    },
    Etcd(etcd::EtcdServer),
}

/// One store under test. Field order: the store is dropped before its storage.
pub struct Harness {
    store: Option<Arc<dyn Store>>,
    backend: Backend,
}

impl Harness {
    /// An embedded store in a fresh temporary directory.
    pub fn redb() -> Harness {
        Self::redb_with(RedbOptions::default())
    }

    /// An embedded store with the given options in a fresh temporary directory.
    pub fn redb_with(options: RedbOptions) -> Harness {
        let dir = tempfile::Builder::new()
            .prefix("volplane-redb-")
            .tempdir()
            .expect("temp dir");
        let mut harness = Harness {
            store: None,
            backend: Backend::Redb { dir, options },
        };
        harness.store = Some(harness.open_redb());
        harness
    }

    /// An etcd store on a fresh etcd server.
    pub async fn etcd() -> Harness {
        let server = tokio::task::spawn_blocking(etcd::EtcdServer::start)
            .await
            .expect("etcd start task");
        let store = EtcdStore::connect(&server.url())
            .await
            .expect("connect to etcd");
        Harness {
            store: Some(Arc::new(store)),
            backend: Backend::Etcd(server),
        }
    }

    fn open_redb(&self) -> Arc<dyn Store> {
        let Backend::Redb { dir, options } = &self.backend else {
            unreachable!("redb harness")
        };
        Arc::new(
            RedbStore::open_with(dir.path().join("store.redb"), options.clone())
                .expect("open redb store"),
        )
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self.backend, Backend::Redb { .. })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone().expect("store is open")
    }

    /// Stops the store abruptly and starts it again on the same data: the redb file is closed
    /// and reopened; etcd is killed with SIGKILL and restarted. Callers must have dropped their
    /// clones of [`Harness::store`].
    pub async fn restart(&mut self) {
        let store = self.store.take().expect("store is open");
        assert_eq!(
            Arc::strong_count(&store),
            1,
            "test still holds the store while restarting it"
        );
        drop(store);
        let store: Arc<dyn Store> = match &mut self.backend {
            Backend::Redb { .. } => self.open_redb(),
            Backend::Etcd(server) => {
                tokio::task::block_in_place(|| server.kill_and_restart());
                Arc::new(
                    EtcdStore::connect(&server.url())
                        .await
                        .expect("reconnect to etcd"),
                )
            }
        };
        self.store = Some(store);
    }
}

/// How long a test waits for a watch event before failing.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The next change (not progress notification) on a watch; panics after [`WATCH_TIMEOUT`].
pub async fn next_change(stream: &mut WatchStream) -> WatchEvent {
    loop {
        let item = tokio::time::timeout(WATCH_TIMEOUT, stream.next())
            .await
            .expect("watch event within the timeout")
            .expect("watch stream still open")
            .expect("watch event, not an error");
        if !matches!(item, WatchEvent::Progress { .. }) {
            return item;
        }
    }
}

/// Asserts that no change arrives on the watch within `wait`.
pub async fn assert_no_change(stream: &mut WatchStream, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_elapsed) => return,
            Ok(Some(Ok(WatchEvent::Progress { .. }))) => continue,
            Ok(other) => panic!("expected no change, got {other:?}"),
        }
    }
}

/// Asserts that a watch after `after` fails as compacted (from the call or as the first item),
/// and returns the error's `compacted` revision.
pub async fn assert_watch_compacted(store: &dyn Store, prefix: &str, after: u64) -> u64 {
    let error = match store.watch(prefix, after).await {
        Err(error) => error,
        Ok(mut stream) => loop {
            match tokio::time::timeout(WATCH_TIMEOUT, stream.next())
                .await
                .expect("watch answer within the timeout")
            {
                Some(Ok(WatchEvent::Progress { .. })) => continue,
                Some(Err(error)) => break error,
                other => panic!("watch after {after} should be compacted, got {other:?}"),
            }
        },
    };
    match error {
        StoreError::Compacted {
            requested,
            compacted,
        } => {
            assert_eq!(requested, after);
            compacted
        }
        other => panic!("watch after {after} should be compacted, got {other:?}"),
    }
}
