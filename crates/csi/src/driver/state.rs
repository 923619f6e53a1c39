//! The driver's on-disk state: one JSON record per volume, snapshot and
//! node-side volume, each replaced atomically (written beside, optionally
//! fsynced, renamed over), so a crash leaves either the old record or the
//! new one, never a torn one.
//!
//! Layout of the state directory:
//! ```text
//! volumes/<volume_id>.json        controller: the volume (VolumeRecord)
//! images/<volume_id>.img          its sparse backing image
//! snapshots/<snapshot_id>.json    controller: the snapshot (SnapshotRecord)
//! snapshot-images/<id>.img        the snapshot's point-in-time image
//! nodes/<node_id>/node.json       a registered node plugin (NodeRecord)
//! nodes/<node_id>/volumes/<id>.json   node: what it staged/published
//! locks/operations.lock          per-volume/snapshot byte-range locks
//! journal/records.wal            controller: the state journal (journal.rs)
//! ```
//!
//! A controller with durable state records each volume and snapshot change
//! in the journal (one flush) instead of fsyncing the record file and its
//! directory (two or three).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::capability::Capability;
use super::error::{DriverError, DriverResult};
use super::journal::{Change, Journal};
use crate::host::FsKind;

/// Where a volume's content came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContentSource {
    /// Restored from this snapshot.
    Snapshot(String),
    /// Cloned from this volume.
    Volume(String),
}

/// A volume, as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRecord {
    /// The id (derived from the name).
    pub volume_id: String,
    /// The CO's name for it.
    pub name: String,
    /// Size of the backing image in bytes.
    pub capacity_bytes: u64,
    /// The capabilities it was created with.
    pub capabilities: Vec<Capability>,
    /// CreateVolume parameters.
    pub parameters: BTreeMap<String, String>,
    /// Parameters ControllerModifyVolume may change.
    pub mutable_parameters: BTreeMap<String, String>,
    /// The filesystem to make at first stage, when the StorageClass set one.
    pub fs_kind: Option<FsKind>,
    /// Restore or clone source.
    pub content_source: Option<ContentSource>,
    /// Nodes it is ControllerPublished to, with the readonly flag.
    pub published_nodes: BTreeMap<String, bool>,
}

/// A snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRecord {
    /// The id (derived from the name).
    pub snapshot_id: String,
    /// The CO's name for it.
    pub name: String,
    /// The volume it was taken from.
    pub source_volume_id: String,
    /// The size of the source volume at that time (the restore size).
    pub size_bytes: u64,
    /// When it was taken: seconds since the epoch.
    pub created_seconds: i64,
    /// … and nanoseconds.
    pub created_nanos: i32,
}

/// A registered node plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    /// Its node id.
    pub node_id: String,
    /// How many volumes may be published to it.
    pub max_volumes_per_node: i64,
}

/// A publication of a volume at a target path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRecord {
    /// Published read-only.
    pub readonly: bool,
    /// The capability it was published with.
    pub capability: Capability,
    /// The driver created the target directory or file (and removes it).
    pub created_target: bool,
}

/// What a node plugin did with one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeVolumeRecord {
    /// The volume.
    pub volume_id: String,
    /// Where it is staged.
    pub staging_path: PathBuf,
    /// The capability it was staged with.
    pub capability: Capability,
    /// The driver created the staging directory (and removes it).
    pub created_staging_dir: bool,
    /// The device was blank when staged and the driver makes the
    /// filesystem: a retry after a crash during mkfs may format it again.
    #[serde(default)]
    pub formatting: bool,
    /// Its publications, by target path.
    pub targets: BTreeMap<PathBuf, TargetRecord>,
}

/// The state directory.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    sync: bool,
    sequence: AtomicU64,
    /// The controller's journal, when durable writes go through it.
    journal: Option<Journal>,
}

impl StateDir {
    /// Opens (creating) the state directory at `root`; `sync` makes every
    /// record write durable (fsync of the file and its directory).
    pub fn open(root: &Path, sync: bool) -> DriverResult<Self> {
        fs::create_dir_all(root).map_err(DriverError::io("create state directory"))?;
        let root = root
            .canonicalize()
            .map_err(DriverError::io("resolve state directory"))?;
        for dir in [
            "volumes",
            "images",
            "snapshots",
            "snapshot-images",
            "nodes",
            "locks",
        ] {
            fs::create_dir_all(root.join(dir))
                .map_err(DriverError::io("create state directory"))?;
        }
        let state = Self {
            root,
            sync,
            sequence: AtomicU64::new(0),
            journal: None,
        };
        state.remove_partial_files()?;
        Ok(state)
    }

    /// Opens the state directory for the controller: replays the journal
    /// (what an unclean stop left) and, with `sync`, keeps it for durable
    /// writes. Returns the ids of the volumes whose records were replayed.
    pub fn open_controller(root: &Path, sync: bool) -> DriverResult<(Self, Vec<String>)> {
        let mut state = Self::open(root, sync)?;
        if !sync && !Journal::exists(&state.root) {
            // Nothing to replay, and nothing will be journaled.
            return Ok((state, Vec::new()));
        }
        let journal_error = |e| state_error(&state.root.join("journal"), e);
        let (journal, replayed) = Journal::open(&state.root).map_err(journal_error)?;
        for change in &replayed {
            state.replay(change)?;
        }
        journal.checkpoint().map_err(journal_error)?;
        if !replayed.is_empty() {
            tracing::info!(changes = replayed.len(), "replayed the state journal");
        }
        if sync {
            state.journal = Some(journal);
        }
        let volumes: BTreeSet<String> = replayed
            .iter()
            .filter_map(|change| match change {
                Change::Put(path, _) => path
                    .strip_prefix("volumes")
                    .ok()?
                    .to_str()?
                    .strip_suffix(".json")
                    .map(String::from),
                Change::Remove(_) => None,
            })
            .collect();
        Ok((state, volumes.into_iter().collect()))
    }

    /// Makes a record file say what a journaled change says (no fsync: the
    /// checkpoint after the replay syncs everything).
    fn replay(&self, change: &Change) -> DriverResult<()> {
        match change {
            Change::Put(path, bytes) => self.replace(&self.root.join(path), bytes, false),
            Change::Remove(path) => self.remove_volatile(&self.root.join(path)).map(drop),
        }
    }

    /// Whether writes are made durable (fsync).
    pub fn durable(&self) -> bool {
        self.sync
    }

    /// The (canonical) root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a volume record.
    pub fn volume_path(&self, id: &str) -> PathBuf {
        self.root.join("volumes").join(format!("{id}.json"))
    }

    /// Path of a volume's backing image.
    pub fn image_path(&self, id: &str) -> PathBuf {
        self.root.join("images").join(format!("{id}.img"))
    }

    /// Path of a snapshot record.
    pub fn snapshot_path(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(format!("{id}.json"))
    }

    /// Path of a snapshot's image.
    pub fn snapshot_image_path(&self, id: &str) -> PathBuf {
        self.root.join("snapshot-images").join(format!("{id}.img"))
    }

    /// Where a copy into `destination` is written before being renamed.
    pub fn partial_path(&self, destination: &Path) -> PathBuf {
        let mut name = destination.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    }

    /// The directory of a node plugin.
    pub fn node_dir(&self, node_id: &str) -> PathBuf {
        self.root.join("nodes").join(node_id)
    }

    /// Path of a node-side volume record.
    pub fn node_volume_path(&self, node_id: &str, volume_id: &str) -> PathBuf {
        self.node_dir(node_id)
            .join("volumes")
            .join(format!("{volume_id}.json"))
    }

    /// Path of the operation lock file (see `lock.rs`).
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("locks").join("operations.lock")
    }

    /// Reads a record; `Ok(None)` if there is none.
    pub fn read<T: DeserializeOwned>(&self, path: &Path) -> DriverResult<Option<T>> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_error(path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| state_error(path, e))
    }

    /// Replaces a record atomically; durably when the state directory was
    /// opened with `sync`.
    pub fn write<T: Serialize>(&self, path: &Path, record: &T) -> DriverResult<()> {
        self.write_with(path, record, self.sync)
    }

    /// Replaces a record atomically without fsync: for records that mirror
    /// host state the driver re-checks anyway (node records: after a power
    /// loss the mounts and loop devices they describe are gone too, and the
    /// CO stages again).
    pub fn write_volatile<T: Serialize>(&self, path: &Path, record: &T) -> DriverResult<()> {
        self.write_with(path, record, false)
    }

    fn write_with<T: Serialize>(&self, path: &Path, record: &T, sync: bool) -> DriverResult<()> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| state_error(path, e))?;
        let journal = self.journal.as_ref().filter(|_| sync);
        self.replace(path, &bytes, sync && journal.is_none())?;
        match journal {
            Some(journal) => journal
                .record(&Change::Put(path.to_path_buf(), bytes))
                .map_err(|e| state_error(path, e)),
            None if sync => self.sync_parent(path),
            None => Ok(()),
        }
    }

    /// Replaces the file at `path` with `bytes` atomically (written beside,
    /// renamed over); `sync_file` fsyncs the new file before the rename.
    fn replace(&self, path: &Path, bytes: &[u8], sync_file: bool) -> DriverResult<()> {
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".tmp-{}-{seq}", std::process::id()));
        let temporary = PathBuf::from(temporary);
        Self::write_file(&temporary, bytes, sync_file)
            .and_then(|()| fs::rename(&temporary, path))
            .map_err(|e| {
                let _ = fs::remove_file(&temporary);
                state_error(path, e)
            })
    }

    fn write_file(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    }

    fn sync_parent(&self, path: &Path) -> DriverResult<()> {
        if !self.sync {
            return Ok(());
        }
        let parent = path.parent().unwrap_or(&self.root);
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| state_error(parent, e))
    }

    /// Removes a record; one that is already gone is not an error. Durable
    /// when the state directory was opened with `sync`.
    pub fn remove(&self, path: &Path) -> DriverResult<()> {
        let removed = self.remove_volatile(path)?;
        match &self.journal {
            // A record already gone needs no entry: every earlier change of it was journaled
            // before the removal that took it (and replayed at start), so a retried delete
            // costs no flush.
            Some(_) if !removed => Ok(()),
            Some(journal) => journal
                .record(&Change::Remove(path.to_path_buf()))
                .map_err(|e| state_error(path, e)),
            None => self.sync_parent(path),
        }
    }

    /// Removes a file without fsync: an image (an image left by a power
    /// loss without its record is removed at the next start) or a node
    /// record. Returns whether there was one to remove.
    pub fn remove_volatile(&self, path: &Path) -> DriverResult<bool> {
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(state_error(path, e)),
        }
    }

    /// The ids of the records in `dir` (`volumes`, `snapshots`, or a node's
    /// `volumes`), sorted.
    pub fn list_ids(&self, dir: &Path) -> DriverResult<Vec<String>> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(state_error(dir, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let name = entry.map_err(|e| state_error(dir, e))?.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) {
                ids.push(id.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// All volume ids, sorted.
    pub fn volume_ids(&self) -> DriverResult<Vec<String>> {
        self.list_ids(&self.root.join("volumes"))
    }

    /// All snapshot ids, sorted.
    pub fn snapshot_ids(&self) -> DriverResult<Vec<String>> {
        self.list_ids(&self.root.join("snapshots"))
    }

    /// The ids of all registered node plugins.
    pub fn node_ids(&self) -> DriverResult<Vec<String>> {
        let dir = self.root.join("nodes");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| state_error(&dir, e))? {
            let entry = entry.map_err(|e| state_error(&dir, e))?;
            if let Some(name) = entry.file_name().to_str()
                && entry.path().join("node.json").exists()
            {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes what a crash can leave half-written: `*.tmp-*` records and
    /// `*.partial` image copies.
    fn remove_partial_files(&self) -> DriverResult<()> {
        for dir in ["volumes", "snapshots", "images", "snapshot-images"] {
            let dir = self.root.join(dir);
            for entry in fs::read_dir(&dir).map_err(|e| state_error(&dir, e))? {
                let path = entry.map_err(|e| state_error(&dir, e))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.contains(".tmp-") || name.ends_with(".partial") {
                    self.remove_volatile(&path)?;
                }
            }
        }
        Ok(())
    }
}

fn state_error(path: &Path, error: impl std::fmt::Display) -> DriverError {
    DriverError::State {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_replaced_atomically_and_partials_removed() {
        let dir = tempfile::Builder::new()
            .prefix("vp-state")
            .tempdir()
            .unwrap();
        let state = StateDir::open(dir.path(), true).unwrap();
        let path = state.volume_path("vol-x");
        let record = NodeRecord {
            node_id: "n".into(),
            max_volumes_per_node: 3,
        };
        state.write(&path, &record).unwrap();
        assert_eq!(state.read::<NodeRecord>(&path).unwrap(), Some(record));
        assert_eq!(state.volume_ids().unwrap(), vec!["vol-x".to_string()]);
        fs::write(dir.path().join("volumes/vol-y.json.tmp-1-1"), b"{").unwrap();
        fs::write(dir.path().join("images/vol-y.img.partial"), b"").unwrap();
        drop(state);
        let state = StateDir::open(dir.path(), false).unwrap();
        assert_eq!(state.volume_ids().unwrap(), vec!["vol-x".to_string()]);
        assert!(!dir.path().join("images/vol-y.img.partial").exists());
        state.remove(&path).unwrap();
        state.remove(&path).unwrap();
        assert_eq!(state.read::<NodeRecord>(&path).unwrap(), None);
    }

    #[test]
    fn a_controller_replays_the_changes_a_power_loss_took_from_the_record_files() {
        let dir = tempfile::Builder::new()
            .prefix("vp-state")
            .tempdir_in("/var/tmp")
            .unwrap();
        let record = |n: &str| NodeRecord {
            node_id: n.into(),
            max_volumes_per_node: 1,
        };
        let (mut state, replayed) = StateDir::open_controller(dir.path(), true).unwrap();
        assert!(replayed.is_empty());
        let (a, b) = (state.volume_path("vol-a"), state.volume_path("vol-b"));
        state.write(&a, &record("one")).unwrap();
        state.write(&b, &record("bee")).unwrap();
        state.write(&a, &record("two")).unwrap();
        state.remove(&b).unwrap();
        // The power goes: the journal was flushed, the record files were not.
        state.journal.take().unwrap().lose_power();
        drop(state);
        fs::remove_file(&a).unwrap();
        fs::write(&b, b"{\"stale\"").unwrap();

        let (state, replayed) = StateDir::open_controller(dir.path(), true).unwrap();
        assert_eq!(replayed, vec!["vol-a".to_string(), "vol-b".to_string()]);
        assert_eq!(state.read::<NodeRecord>(&a).unwrap(), Some(record("two")));
        assert!(!b.exists());
        drop(state);
        let (_state, replayed) = StateDir::open_controller(dir.path(), true).unwrap();
        assert!(replayed.is_empty(), "the replay was checkpointed");
    }

    #[test]
    fn a_corrupt_record_is_an_internal_error() {
        let dir = tempfile::Builder::new()
            .prefix("vp-state")
            .tempdir()
            .unwrap();
        let state = StateDir::open(dir.path(), false).unwrap();
        let path = state.volume_path("vol-bad");
        fs::write(&path, b"not json").unwrap();
        let err = state.read::<VolumeRecord>(&path).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
    }
}
