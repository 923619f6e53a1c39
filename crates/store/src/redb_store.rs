//! The embedded backend: one redb file, fsynced on every commit, writes batched by
//! group commit (`group_commit.rs`), watches and past-revision lists served from the
//! in-memory history ring (`history.rs`).
//!
//! Layout: table `kv` maps each key to its create revision, mod revision and value; table `meta`
//! holds the last committed revision (`revision`), written in the same transaction as the data.
//!
//! History is in memory only. After a restart the store is compacted at the revision it opened
//! at: lists at that revision or later work; watches must start at or after it. While running, the
//! ring keeps the last [`RedbOptions::history_capacity`] events; a list at a past revision undoes
//! those events on top of the current state, and a watch replays them. Anything older fails with
//! [`StoreError::Compacted`].
//!
//! Reads never wait for the writer: each one runs in its own redb read transaction (MVCC).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

pub use crate::group_commit::CommitStats;
use crate::group_commit::{GroupCommit, WriteOp, WriteOutcome};
use crate::history::History;
use crate::{
    KeyValue, ListOptions, ListPage, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// Key → encoded [`StoredValue`].
pub(crate) const KV_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// Store-wide counters.
pub(crate) const META_TABLE: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The `meta` key of the last committed revision.
pub(crate) const REVISION_KEY: &str = "revision";

/// How many events a watcher takes from the ring at a time.
const WATCH_READ_BATCH: usize = 1024;

/// Tuning of the embedded store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedbOptions {
    /// How many recent events are kept in memory for watches and past-revision lists.
    pub history_capacity: usize,
    /// At most this many writes share one commit.
    pub max_batch: usize,
    /// A watch that delivered nothing for this long sends a [`WatchEvent::Progress`].
    pub progress_interval: Duration,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            history_capacity: 100_000,
            max_batch: 4096,
            progress_interval: Duration::from_secs(5),
        }
    }
}

/// The encoding of a stored key's record: create revision and mod revision (little-endian u64),
/// then the value.
pub(crate) struct StoredValue;

impl StoredValue {
    const HEADER: usize = 16;

    pub fn encode(kv: &KeyValue) -> Vec<u8> {
        let mut record = Vec::with_capacity(Self::HEADER + kv.value.len());
        record.extend_from_slice(&kv.create_revision.to_le_bytes());
        record.extend_from_slice(&kv.mod_revision.to_le_bytes());
        record.extend_from_slice(&kv.value);
        record
    }

    pub fn decode(key: &str, record: &[u8]) -> Result<KeyValue, StoreError> {
        if record.len() < Self::HEADER {
            return Err(StoreError::Backend {
                message: format!(
                    "key {key}: stored record of {} bytes is truncated",
                    record.len()
                ),
                indeterminate: false,
            });
        }
        let (create, rest) = record.split_at(8);
        let (modified, value) = rest.split_at(8);
        Ok(KeyValue {
            key: key.to_string(),
            value: Bytes::copy_from_slice(value),
            create_revision: u64::from_le_bytes(create.try_into().expect("8 bytes")),
            mod_revision: u64::from_le_bytes(modified.try_into().expect("8 bytes")),
        })
    }
}

fn backend(context: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        message: format!("{context}: {error}"),
        indeterminate: false,
    }
}

/// The embedded store. See the [module documentation](self).
pub struct RedbStore {
    // Field order matters: the writer must stop (and drop its handle on the database) before the
    // database itself is dropped.
    writes: GroupCommit,
    db: Arc<Database>,
    history: Arc<History>,
    options: RedbOptions,
}

impl RedbStore {
    /// Opens (or creates) the store in the file at `path`, with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, RedbOptions::default())
    }

    /// Opens (or creates) the store in the file at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: RedbOptions) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let db = Database::create(path)
            .map_err(|e| backend(&format!("cannot open {}", path.display()), e))?;
        let revision = Self::prepare(&db).map_err(|e| backend("cannot prepare tables", e))?;
        let db = Arc::new(db);
        let (history, announcer) = History::new(revision, options.history_capacity);
        let history = Arc::new(history);
        let writes = GroupCommit::start(
            db.clone(),
            history.clone(),
            announcer,
            revision,
            options.max_batch,
        )?;
        tracing::info!(path = %path.display(), revision, "opened embedded store");
        Ok(RedbStore {
            writes,
            db,
            history,
            options,
        })
    }

    /// Creates the tables if missing and reads the last committed revision.
    fn prepare(db: &Database) -> Result<Revision, redb::Error> {
        let transaction = db.begin_write()?;
        let revision = {
            transaction.open_table(KV_TABLE)?;
            let meta = transaction.open_table(META_TABLE)?;
            meta.get(REVISION_KEY)?.map(|r| r.value()).unwrap_or(0)
        };
        transaction.commit()?;
        Ok(revision)
    }

    /// The oldest revision whose state can still be listed; watches must start at or after it.
    pub fn compacted_revision(&self) -> Revision {
        self.history.compacted_revision()
    }

    /// Totals of the commits so far (how many, how many writes they carried, time spent).
    pub fn commit_stats(&self) -> CommitStats {
        self.writes.stats()
    }

    async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        self.writes.write(op).await
    }
}

/// Reads one page from a read transaction, at its revision or (undoing recent events) at an
/// older one. `None` when the history does not hold the snapshot's newest commit yet.
fn list_in_snapshot(
    db: &Database,
    history: &History,
    options: &ListOptions,
) -> Result<Option<ListPage>, StoreError> {
    let read = db.begin_read().map_err(|e| backend("read", e))?;
    let meta = read
        .open_table(META_TABLE)
        .map_err(|e| backend("read", e))?;
    let snapshot_revision = meta
        .get(REVISION_KEY)
        .map_err(|e| backend("read", e))?
        .map(|r| r.value())
        .unwrap_or(0);
    let revision = options.revision.unwrap_or(snapshot_revision);
    if revision > snapshot_revision {
        return Err(StoreError::FutureRevision {
            requested: revision,
            current: snapshot_revision,
        });
    }
    // Keys whose state at `revision` differs from the snapshot: `None` = absent then.
    let mut undone: BTreeMap<String, Option<KeyValue>> = BTreeMap::new();
    if revision < snapshot_revision {
        let Some(events) = history.events_between(revision, snapshot_revision, &options.prefix)?
        else {
            return Ok(None);
        };
        // Newest first, so that each key ends with its state before the oldest later change.
        for event in events.into_iter().rev() {
            match event {
                WatchEvent::Put { kv, prev } => {
                    undone.insert(kv.key, prev);
                }
                WatchEvent::Delete { prev, .. } => {
                    undone.insert(prev.key.clone(), Some(prev));
                }
                WatchEvent::Progress { .. } => {}
            }
        }
    }

    let lower: Bound<&str> = match &options.start_after {
        Some(after) if after.as_str() >= options.prefix.as_str() => Bound::Excluded(after),
        _ => Bound::Included(&options.prefix),
    };
    let wanted = if options.limit == 0 {
        usize::MAX
    } else {
        options.limit
    };
    let kv = read.open_table(KV_TABLE).map_err(|e| backend("read", e))?;
    let mut stored = kv
        .range::<&str>((lower, Bound::Unbounded))
        .map_err(|e| backend("read", e))?
        .map(|entry| {
            let (key, record) = entry.map_err(|e| backend("read", e))?;
            StoredValue::decode(key.value(), record.value())
        })
        .take_while(|kv| match kv {
            Ok(kv) => kv.key.starts_with(&options.prefix),
            Err(_) => true,
        })
        .peekable();
    let mut changed = undone
        .range::<str, _>((lower, Bound::Unbounded))
        .take_while(|(key, _)| key.starts_with(&options.prefix))
        .peekable();

    let mut items = Vec::new();
    let mut more = false;
    loop {
        // Merge the snapshot's keys with the undone ones; an undone key replaces the stored one.
        let next = match (stored.peek(), changed.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) => return Err(stored.next().expect("peeked").unwrap_err()),
            (Some(Ok(from_store)), Some((key, _))) if from_store.key.as_str() < key.as_str() => {
                stored.next().expect("peeked")?.into()
            }
            (Some(Ok(from_store)), Some((key, _))) if from_store.key.as_str() == key.as_str() => {
                stored.next();
                changed.next().expect("peeked").1.clone()
            }
            (_, Some(_)) => changed.next().expect("peeked").1.clone(),
            (Some(Ok(_)), None) => stored.next().expect("peeked")?.into(),
        };
        let Some(item) = next else { continue };
        if items.len() == wanted {
            more = true;
            break;
        }
        items.push(item);
    }
    Ok(Some(ListPage {
        items,
        revision,
        more,
    }))
}

#[async_trait::async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let read = self.db.begin_read().map_err(|e| backend("read", e))?;
        let kv = read.open_table(KV_TABLE).map_err(|e| backend("read", e))?;
        let stored = kv.get(key).map_err(|e| backend("read", e))?;
        stored
            .map(|record| StoredValue::decode(key, record.value()))
            .transpose()
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage, StoreError> {
        let db = self.db.clone();
        let history = self.history.clone();
        tokio::task::spawn_blocking(move || {
            loop {
                if let Some(page) = list_in_snapshot(&db, &history, &options)? {
                    return Ok(page);
                }
                // The snapshot saw a commit whose events are being published right now.
                std::thread::yield_now();
            }
        })
        .await
        .map_err(|e| backend("list task", e))?
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError> {
        match self
            .write(WriteOp::Create {
                key: key.to_string(),
                value,
            })
            .await?
        {
            WriteOutcome::Written(revision) => Ok(revision),
            WriteOutcome::Deleted(..) => unreachable!("a create answers Written"),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        match self
            .write(WriteOp::Update {
                key: key.to_string(),
                value,
                expected,
            })
            .await?
        {
            WriteOutcome::Written(revision) => Ok(revision),
            WriteOutcome::Deleted(..) => unreachable!("an update answers Written"),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        match self
            .write(WriteOp::Delete {
                key: key.to_string(),
                expected,
            })
            .await?
        {
            WriteOutcome::Deleted(revision, prev) => Ok((revision, prev)),
            WriteOutcome::Written(_) => unreachable!("a delete answers Deleted"),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let history = self.history.clone();
        let prefix = prefix.to_string();
        let progress_interval = self.options.progress_interval;
        let mut committed = history.subscribe();
        // Fail at once when the start is already compacted.
        let first = history.events_after(after, &prefix, WATCH_READ_BATCH)?;
        Ok(Box::pin(async_stream::stream! {
            let mut next = Some(first);
            let mut delivered_to = after;
            loop {
                let read = match next.take() {
                    Some(read) => read,
                    None => {
                        committed.borrow_and_update();
                        match history.events_after(delivered_to, &prefix, WATCH_READ_BATCH) {
                            Ok(read) => read,
                            Err(compacted) => {
                                // The watcher fell behind the ring.
                                yield Err(compacted);
                                break;
                            }
                        }
                    }
                };
                let caught_up = read.scanned_to >= *committed.borrow();
                delivered_to = read.scanned_to;
                for event in read.events {
                    yield Ok(event);
                }
                if caught_up {
                    match tokio::time::timeout(progress_interval, committed.changed()).await {
                        Ok(Ok(())) => {}
                        // The store is closed.
                        Ok(Err(_)) => break,
                        Err(_idle) => yield Ok(WatchEvent::Progress { revision: delivered_to }),
                    }
                }
            }
        }))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.history.committed_revision())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let current = self.history.committed_revision();
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        self.history.compact(revision);
        Ok(())
    }
}
