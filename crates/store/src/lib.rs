//! The revisioned object store behind the API server.
//!
//! One trait, [`Store`], and two backends: [`redb_store::RedbStore`] (embedded, fsync on every
//! commit, concurrent writes batched into one commit) and [`etcd_store::EtcdStore`] (etcd v3 over
//! gRPC, key layout as kube-apiserver). Values are opaque bytes; keys are strings such as
//! `/registry/persistentvolumeclaims/default/data`. Every write gets a new, strictly increasing
//! revision, which the API server exposes as `resourceVersion`.
//!
//! This crate knows nothing about Kubernetes objects and performs no validation of values.
//!
//! Compaction, as in etcd: after compacting at revision `r`, the state at `r` and later can still
//! be listed and a watch may start after `r` (`after >= r`); older revisions fail with
//! [`StoreError::Compacted`]. The embedded store keeps its history in memory only, so it is
//! compacted at the revision it opened at (see [`redb_store`]). [`bench`](mod@bench) measures the raw write
//! rate of a backend.

#![forbid(unsafe_code)]

pub mod bench;
mod etcd_proto;
pub mod etcd_store;
mod group_commit;
mod history;
pub mod redb_store;

use std::pin::Pin;

use futures::Stream;

/// A store revision. Revisions start at 1 and strictly increase with every write.
pub type Revision = u64;

/// One stored key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: bytes::Bytes,
    /// Revision of the write that created this key (as etcd's create_revision).
    pub create_revision: Revision,
    /// Revision of the last write to this key (as etcd's mod_revision).
    pub mod_revision: Revision,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Matching keys in lexicographic key order.
    pub items: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: Revision,
    /// True when more keys follow the last returned one.
    pub more: bool,
}

/// What a list asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only keys that start with this prefix.
    pub prefix: String,
    /// Only keys strictly greater than this one (the continue point of a paged list).
    pub start_after: Option<String>,
    /// At most this many items; 0 means no limit.
    pub limit: usize,
    /// Read at this revision; `None` means the current one.
    /// A revision older than the compacted one fails with [`StoreError::Compacted`].
    pub revision: Option<Revision>,
}

/// One change, as delivered to watchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or updated. `prev` is the previous value when the key existed before.
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// A key was deleted. `prev` is the value it had; `revision` the revision of the deletion.
    Delete { prev: KeyValue, revision: Revision },
    /// Progress notification: every change up to and including this revision has been delivered.
    Progress { revision: Revision },
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

/// Errors of every store operation.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A create found the key already present.
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    /// An update or delete found no such key.
    #[error("key {key} not found")]
    NotFound { key: String },
    /// An update or delete expected another mod revision; `current` is the one stored now.
    #[error("key {key} was modified: expected revision {expected}, found {current}")]
    Conflict {
        key: String,
        expected: Revision,
        current: Revision,
    },
    /// The requested revision has been compacted away; `compacted` is the oldest still available.
    #[error("revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than anything stored.
    #[error("revision {requested} is in the future (current is {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The backend failed (I/O, corruption, lost connection). The write may or may not have happened
    /// only when `indeterminate` is true; otherwise it did not.
    #[error("store backend failed: {message}")]
    Backend {
        message: String,
        indeterminate: bool,
    },
}

/// The revisioned key-value store the API server keeps every object in.
///
/// All writes are durable when they return `Ok` (fsynced locally, or committed by an etcd quorum).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value of one key at the current revision.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// A page of keys under a prefix, at the current or a given revision.
    async fn list(&self, options: ListOptions) -> Result<ListPage, StoreError>;

    /// Creates `key` if absent; returns the new revision. Present → [`StoreError::AlreadyExists`].
    async fn create(&self, key: &str, value: bytes::Bytes) -> Result<Revision, StoreError>;

    /// Replaces `key` if its mod revision is `expected`; returns the new revision.
    async fn update(
        &self,
        key: &str,
        value: bytes::Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError>;

    /// Deletes `key` if its mod revision is `expected` (any when `None`); returns the revision of
    /// the deletion and the value that was deleted.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError>;

    /// Every change to keys under `prefix` with revision > `after`, in revision order, followed by
    /// the live changes. `after` older than the compacted revision → [`StoreError::Compacted`]
    /// (returned by this call or as the first item of the stream).
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// The current revision (of the last committed write).
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Forgets history before `revision`: reads and watches at older revisions fail with
    /// [`StoreError::Compacted`] from then on.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
}
