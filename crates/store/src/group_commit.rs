//! Group commit for the embedded store: one writer thread applies every pending write in one redb
//! write transaction and one fsync, then answers each write.
//!
//! Concurrent callers queue their writes; while the writer waits for a commit to reach the disk,
//! the next writes pile up and go into the next commit together. Each write still gets its own
//! revision (strictly increasing, in queue order) and its precondition is checked against the
//! state including the earlier writes of the same batch. A write whose precondition fails takes
//! no revision and changes nothing; the others in its batch are unaffected.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, Table};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::history::{Announcer, History};
use crate::redb_store::{KV_TABLE, META_TABLE, REVISION_KEY, StoredValue};
use crate::{KeyValue, Revision, StoreError, WatchEvent};

/// One write, as queued to the writer.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

/// What a successful write answers.
#[derive(Debug)]
pub(crate) enum WriteOutcome {
    /// A create or update; the new revision.
    Written(Revision),
    /// A delete; its revision and the deleted value.
    Deleted(Revision, KeyValue),
}

/// Bounds of the time the writer waits for the writers of its previous commit to queue their
/// next writes (a quarter of the previous commit's duration, within these bounds).
const GATHER_MIN: Duration = Duration::from_micros(50);
const GATHER_MAX: Duration = Duration::from_millis(1);

type Reply = oneshot::Sender<Result<WriteOutcome, StoreError>>;

struct PendingWrite {
    op: WriteOp,
    reply: Reply,
}

/// The queue in front of the writer thread. Dropping it lets the writer finish the queued writes
/// and waits for it to close the database.
pub(crate) struct GroupCommit {
    queue: Option<mpsc::Sender<PendingWrite>>,
    writer: Option<JoinHandle<()>>,
    counters: Arc<CommitCounters>,
}

/// Totals of the writer's commits so far, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Commits that reached the disk.
    pub commits: u64,
    /// Writes acknowledged by those commits (writes / commits = mean batch size).
    pub writes: u64,
    /// Time spent in those commits, fsync included.
    pub commit_time: Duration,
}

#[derive(Default)]
struct CommitCounters {
    commits: AtomicU64,
    writes: AtomicU64,
    commit_nanos: AtomicU64,
}

impl GroupCommit {
    /// Starts the writer thread. `revision` is the last committed revision; at most `max_batch`
    /// writes go into one commit.
    pub fn start(
        db: Arc<Database>,
        history: Arc<History>,
        announcer: Announcer,
        revision: Revision,
        max_batch: usize,
    ) -> Result<Self, StoreError> {
        let (queue, pending) = mpsc::channel();
        let counters = Arc::new(CommitCounters::default());
        let writer = Writer {
            counters: counters.clone(),
            db,
            history,
            announcer,
            revision,
            max_batch: max_batch.max(1),
        };
        let writer = std::thread::Builder::new()
            .name("volplane-store-writer".into())
            .spawn(move || writer.run(pending))
            .map_err(|e| StoreError::Backend {
                message: format!("cannot start the store writer thread: {e}"),
                indeterminate: false,
            })?;
        Ok(GroupCommit {
            queue: Some(queue),
            writer: Some(writer),
            counters,
        })
    }

    /// Totals of the commits so far.
    pub fn stats(&self) -> CommitStats {
        CommitStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            commit_time: Duration::from_nanos(self.counters.commit_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Queues a write and waits until it is durable (or refused).
    pub async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or_else(writer_gone)?;
        queue
            .send(PendingWrite { op, reply })
            .map_err(|_| writer_gone())?;
        // The writer answers every write it takes; a dropped reply means it died mid-batch.
        answer.await.map_err(|_| StoreError::Backend {
            message: "the store writer stopped before answering".into(),
            indeterminate: true,
        })?
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            // Joining makes sure the database file is closed when the store is gone, so that it
            // can be opened again at once.
            if writer.join().is_err() {
                tracing::error!("the store writer thread panicked");
            }
        }
    }
}

fn writer_gone() -> StoreError {
    StoreError::Backend {
        message: "the store writer has stopped".into(),
        indeterminate: false,
    }
}

struct Writer {
    counters: Arc<CommitCounters>,
    db: Arc<Database>,
    history: Arc<History>,
    announcer: Announcer,
    /// The last committed revision.
    revision: Revision,
    max_batch: usize,
}

/// A write taken into the batch's transaction, waiting for the commit.
struct Applied {
    reply: Reply,
    /// The write's own result; `None` when the batch failed before reaching it (the write then
    /// shares the batch's failure).
    result: Option<Result<WriteOutcome, StoreError>>,
}

impl Writer {
    fn run(mut self, pending: mpsc::Receiver<PendingWrite>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        // Size and duration of the previous commit: how many writers are active, and how long
        // one commit takes.
        let mut previous_size = 1;
        let mut previous_duration = Duration::ZERO;
        while let Ok(first) = pending.recv() {
            batch.push(first);
            self.take_queued(&pending, &mut batch);
            // Writers answered by the previous commit are sending their next writes right now;
            // wait a moment for them instead of committing a fraction of them and making the
            // rest wait a whole commit. A single writer never waits.
            let window = (previous_duration / 4).clamp(GATHER_MIN, GATHER_MAX);
            let deadline = Instant::now() + window;
            while batch.len() < previous_size.min(self.max_batch) {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                match pending.recv_timeout(left) {
                    Ok(next) => {
                        batch.push(next);
                        self.take_queued(&pending, &mut batch);
                    }
                    Err(_) => break,
                }
            }
            previous_size = batch.len();
            let started = Instant::now();
            self.commit_batch(std::mem::take(&mut batch));
            previous_duration = started.elapsed();
        }
    }

    /// Moves the writes already queued into the batch, up to its maximum size.
    fn take_queued(&self, pending: &mpsc::Receiver<PendingWrite>, batch: &mut Vec<PendingWrite>) {
        while batch.len() < self.max_batch {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
    }

    /// Applies the batch in one transaction, commits it with fsync, publishes its events and
    /// answers every write.
    fn commit_batch(&mut self, batch: Vec<PendingWrite>) {
        let started = Instant::now();
        let size = batch.len();
        let mut applied = Vec::with_capacity(size);
        let mut events = Vec::with_capacity(size);
        let mut next_revision = self.revision;
        let transaction = self.apply(batch, &mut applied, &mut events, &mut next_revision);
        let outcome = match transaction {
            Ok(None) => Ok(()),
            Ok(Some(transaction)) => transaction.commit().map_err(|e| StoreError::Backend {
                message: format!("commit failed: {e}"),
                // An fsync that failed may or may not have left the data on disk.
                indeterminate: true,
            }),
            Err(e) => Err(StoreError::Backend {
                message: format!("write transaction failed: {e}"),
                indeterminate: false,
            }),
        };
        match outcome {
            Ok(()) => {
                if next_revision > self.revision {
                    let counters = &self.counters;
                    counters.commits.fetch_add(1, Ordering::Relaxed);
                    counters
                        .writes
                        .fetch_add(next_revision - self.revision, Ordering::Relaxed);
                    counters.commit_nanos.fetch_add(
                        u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                    self.revision = next_revision;
                    self.history.publish(&self.announcer, events, next_revision);
                }
                tracing::debug!(
                    writes = size,
                    revision = self.revision,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "store commit"
                );
                for write in applied {
                    let answer = write.result.unwrap_or_else(|| {
                        Err(StoreError::Backend {
                            message: "write was not applied".into(),
                            indeterminate: false,
                        })
                    });
                    let _ = write.reply.send(answer);
                }
            }
            Err(error) => {
                tracing::error!(writes = size, %error, "store commit failed");
                for write in applied {
                    // Writes refused by their precondition keep their own answer; the others
                    // share the commit's fate.
                    let answer = match write.result {
                        Some(Err(refused)) => Err(refused),
                        Some(Ok(_)) | None => Err(error.clone()),
                    };
                    let _ = write.reply.send(answer);
                }
            }
        }
    }

    /// Applies every write of the batch to a new write transaction. Returns the transaction to
    /// commit, or `None` when no write changed anything. A storage error fails the whole batch;
    /// the writes taken so far are left in `applied` to be answered.
    fn apply(
        &self,
        batch: Vec<PendingWrite>,
        applied: &mut Vec<Applied>,
        events: &mut Vec<WatchEvent>,
        next_revision: &mut Revision,
    ) -> Result<Option<redb::WriteTransaction>, redb::Error> {
        let mut batch = batch.into_iter();
        let mut transaction = match self.db.begin_write() {
            Ok(transaction) => transaction,
            Err(e) => {
                applied.extend(batch.map(|w| Applied {
                    reply: w.reply,
                    result: None,
                }));
                return Err(e.into());
            }
        };
        let result = (|| -> Result<(), redb::Error> {
            transaction.set_durability(Durability::Immediate)?;
            let mut kv = transaction.open_table(KV_TABLE)?;
            for write in batch.by_ref() {
                let result = apply_one(&mut kv, &write.op, *next_revision + 1);
                let result = match result {
                    Ok(Ok((outcome, event))) => {
                        *next_revision += 1;
                        events.push(event);
                        Ok(outcome)
                    }
                    Ok(Err(refused)) => Err(refused),
                    Err(storage) => {
                        applied.push(Applied {
                            reply: write.reply,
                            result: None,
                        });
                        return Err(storage);
                    }
                };
                applied.push(Applied {
                    reply: write.reply,
                    result: Some(result),
                });
            }
            if *next_revision > self.revision {
                let mut meta = transaction.open_table(META_TABLE)?;
                meta.insert(REVISION_KEY, *next_revision)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Writes not reached yet are answered with the batch's failure too.
            applied.extend(batch.map(|w| Applied {
                reply: w.reply,
                result: None,
            }));
            return Err(e);
        }
        if *next_revision == self.revision {
            // Every write was refused: nothing to commit, no fsync.
            transaction.abort()?;
            return Ok(None);
        }
        Ok(Some(transaction))
    }
}

/// Applies one write at `revision`. The outer error is a storage failure; the inner one the
/// write's own refusal (precondition).
#[allow(clippy::type_complexity)]
fn apply_one(
    kv: &mut Table<'_, &'static str, &'static [u8]>,
    op: &WriteOp,
    revision: Revision,
) -> Result<Result<(WriteOutcome, WatchEvent), StoreError>, redb::Error> {
    let key = match op {
        WriteOp::Create { key, .. } | WriteOp::Update { key, .. } | WriteOp::Delete { key, .. } => {
            key
        }
    };
    let current = kv
        .get(key.as_str())?
        .map(|stored| StoredValue::decode(key, stored.value()));
    let current = match current {
        Some(Ok(kv)) => Some(kv),
        Some(Err(corrupt)) => return Ok(Err(corrupt)),
        None => None,
    };
    match op {
        WriteOp::Create { key, value } => {
            if current.is_some() {
                return Ok(Err(StoreError::AlreadyExists { key: key.clone() }));
            }
            let kv_new = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: revision,
                mod_revision: revision,
            };
            kv.insert(key.as_str(), StoredValue::encode(&kv_new).as_slice())?;
            Ok(Ok((
                WriteOutcome::Written(revision),
                WatchEvent::Put {
                    kv: kv_new,
                    prev: None,
                },
            )))
        }
        WriteOp::Update {
            key,
            value,
            expected,
        } => {
            let Some(prev) = current else {
                return Ok(Err(StoreError::NotFound { key: key.clone() }));
            };
            if prev.mod_revision != *expected {
                return Ok(Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    current: prev.mod_revision,
                }));
            }
            let kv_new = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            kv.insert(key.as_str(), StoredValue::encode(&kv_new).as_slice())?;
            Ok(Ok((
                WriteOutcome::Written(revision),
                WatchEvent::Put {
                    kv: kv_new,
                    prev: Some(prev),
                },
            )))
        }
        WriteOp::Delete { key, expected } => {
            let Some(prev) = current else {
                return Ok(Err(StoreError::NotFound { key: key.clone() }));
            };
            if let Some(expected) = expected
                && prev.mod_revision != *expected
            {
                return Ok(Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    current: prev.mod_revision,
                }));
            }
            kv.remove(key.as_str())?;
            Ok(Ok((
                WriteOutcome::Deleted(revision, prev.clone()),
                WatchEvent::Delete { prev, revision },
            )))
        }
    }
}
