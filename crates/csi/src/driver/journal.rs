//! The controller's state journal: one flush per durable record change.
//!
//! Making a replaced record durable the POSIX way costs two flushes (the
//! new file, then its directory after the rename) and a removal one more;
//! on this project's disks each is a journal commit of the host
//! filesystem. Instead, a controller writes its volume and snapshot
//! records without fsync (still atomically, by rename) and appends the
//! change — path and new bytes, or a removal — to this journal, then
//! flushes the journal alone. The journal is a preallocated, zero-filled
//! file, so that flush overwrites blocks already allocated: data only, no
//! metadata commit.
//!
//! After a power loss the record files may be behind; opening the journal
//! hands back every change since the last checkpoint, in order, for the
//! owner (`StateDir`) to make the record files say again (idempotent: the
//! same bytes written again), so every acknowledged change is there.
//! A checkpoint (when the journal is full, when it is closed, and after a
//! replay) makes the whole filesystem durable with `syncfs` and starts a
//! new epoch; entries of older epochs are ignored, so the file is reused
//! without being cleared.
//!
//! Layout: two header slots (at 0 and 512; the valid one with the higher
//! epoch is current, so a torn header write loses nothing), entries from
//! 4096 on. An entry is a 32-byte head — magic, payload length, epoch,
//! sequence number, checksum (the first 8 bytes of SHA-256 over the rest
//! of the head and the payload) — and its payload: operation, path
//! relative to the state directory, record bytes. Replay stops at the
//! first entry that is torn, of another epoch or out of sequence.
//!
//! One controller owns the journal of a state directory: it holds an
//! open-file-description lock on the file while open (the kernel drops it
//! when the process dies), and a second controller waits for it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use sha2::{Digest, Sha256};
use tracing::warn;

/// Size of the journal file: the changes between two checkpoints.
pub const JOURNAL_BYTES: u64 = 4 << 20;
/// Where entries start (the header slots come before).
const ENTRIES_START: u64 = 4096;
const HEADER_SLOTS: [u64; 2] = [0, 512];
const HEADER_MAGIC: &[u8; 8] = b"VPJRNL01";
const ENTRY_MAGIC: &[u8; 4] = b"VPJE";
const ENTRY_HEAD: usize = 32;
/// How long opening waits for another controller to release the journal
/// (a predecessor that is shutting down).
const LOCK_WAIT: Duration = if cfg!(test) {
    Duration::from_millis(300)
} else {
    Duration::from_secs(10)
};

/// A change of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The record at the path now holds these bytes.
    Put(PathBuf, Vec<u8>),
    /// The record at the path is gone.
    Remove(PathBuf),
}

impl Change {
    fn path(&self) -> &Path {
        match self {
            Change::Put(path, _) | Change::Remove(path) => path,
        }
    }
}

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading, writing or flushing the journal (or replaying into the
    /// state directory) failed.
    #[error("state journal {path}: {source}")]
    Io {
        /// The journal or record file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Another controller kept the journal locked for longer than the wait.
    #[error("state journal {path} is held by another controller process")]
    Busy {
        /// The journal file.
        path: String,
    },
    /// The change does not fit in an empty journal, or names a path outside
    /// the state directory.
    #[error("state journal cannot hold a change of {path}: {reason}")]
    Unjournalable {
        /// The record.
        path: String,
        /// Why.
        reason: &'static str,
    },
}

/// Where the next entry goes.
#[derive(Debug)]
struct Position {
    epoch: u64,
    sequence: u64,
    offset: u64,
}

/// An open, locked journal.
#[derive(Debug)]
pub struct Journal {
    root: PathBuf,
    path: PathBuf,
    file: File,
    position: Mutex<Position>,
    /// Cleared only by tests that simulate a power loss.
    checkpoint_on_drop: bool,
}

impl Journal {
    /// Opens (creating) the journal of the state directory `root` and waits
    /// for its lock. Returns the journal and the changes an unclean stop
    /// left in it, oldest first (paths relative to `root`): the caller makes
    /// the record files say them, then calls [`Journal::checkpoint`]. Until
    /// then new entries go after them, so nothing is lost if it does not.
    pub fn open(root: &Path) -> Result<(Self, Vec<Change>), JournalError> {
        let path = journal_path(root);
        let file = create_or_open(&path)?;
        lock(&file, &path)?;
        let epoch = current_epoch(&file).map_err(io_error(&path))?;
        let (changes, offset) = read_entries(&file, epoch).map_err(io_error(&path))?;
        let journal = Journal {
            root: root.to_path_buf(),
            path,
            file,
            position: Mutex::new(Position {
                epoch,
                sequence: changes.len() as u64,
                offset,
            }),
            checkpoint_on_drop: true,
        };
        Ok((journal, changes))
    }

    /// Makes everything on the state directory's filesystem durable, then
    /// starts a new, empty epoch: what the journal held needs no replay.
    pub fn checkpoint(&self) -> Result<(), JournalError> {
        self.checkpoint_at(&mut self.position.lock().expect("journal lock poisoned"))
    }

    /// Whether the state directory `root` has a journal.
    pub fn exists(root: &Path) -> bool {
        journal_path(root).exists()
    }

    /// Records `change` (already made to the record file, not yet durable)
    /// and makes it durable. Concurrent callers share flushes.
    pub fn record(&self, change: &Change) -> Result<(), JournalError> {
        let relative =
            change
                .path()
                .strip_prefix(&self.root)
                .map_err(|_| JournalError::Unjournalable {
                    path: change.path().display().to_string(),
                    reason: "outside the state directory",
                })?;
        {
            let mut position = self.position.lock().expect("journal lock poisoned");
            let mut entry = encode(&position, change, relative)?;
            if position.offset + entry.len() as u64 > JOURNAL_BYTES {
                self.checkpoint_at(&mut position)?;
                // The entry carries the epoch, which the checkpoint changed.
                entry = encode(&position, change, relative)?;
            }
            self.file
                .write_all_at(&entry, position.offset)
                .map_err(io_error(&self.path))?;
            position.offset += entry.len() as u64;
            position.sequence += 1;
        }
        // Outside the lock: a flush covers every entry written before it,
        // so writers that queue behind one flush find theirs already done.
        self.file.sync_data().map_err(io_error(&self.path))
    }

    fn checkpoint_at(&self, position: &mut Position) -> Result<(), JournalError> {
        let root = File::open(&self.root).map_err(io_error(&self.root))?;
        nix::unistd::syncfs(&root).map_err(|e| io_error(&self.root)(e.into()))?;
        let epoch = position.epoch + 1;
        let slot = HEADER_SLOTS[(epoch % 2) as usize];
        self.file
            .write_all_at(&header(epoch), slot)
            .and_then(|()| self.file.sync_data())
            .map_err(io_error(&self.path))?;
        *position = Position {
            epoch,
            sequence: 0,
            offset: ENTRIES_START,
        };
        Ok(())
    }
}

#[cfg(test)]
impl Journal {
    /// Closes the journal as a power loss would: no checkpoint.
    pub(crate) fn lose_power(mut self) {
        self.checkpoint_on_drop = false;
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // A clean stop leaves nothing to replay, so a later start that does
        // not journal (--sync-state=false) cannot have its changes undone by
        // an old entry.
        let mut position = self.position.lock().expect("journal lock poisoned");
        if self.checkpoint_on_drop
            && position.sequence > 0
            && let Err(e) = self.checkpoint_at(&mut position)
        {
            warn!(error = %e, "state journal: checkpoint at close failed");
        }
    }
}

fn journal_path(root: &Path) -> PathBuf {
    root.join("journal").join("records.wal")
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Opens the journal, creating it zero-filled and durable first if it does
/// not exist yet (a crash while creating leaves only `records.wal.new`).
fn create_or_open(path: &Path) -> Result<File, JournalError> {
    let open = || OpenOptions::new().read(true).write(true).open(path);
    match open() {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error(path)(e)),
        Err(_) => {}
    }
    let dir = path
        .parent()
        .expect("the journal is inside the state directory");
    let fresh = path.with_extension("wal.new");
    let create = || -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&fresh)?;
        // Zeros written, not a hole or fallocate: overwriting then changes
        // no block allocation, so a flush of an entry is data only.
        let zeros = vec![0u8; 1 << 20];
        for chunk in 0..JOURNAL_BYTES / zeros.len() as u64 {
            file.write_all_at(&zeros, chunk * zeros.len() as u64)?;
        }
        file.write_all_at(&header(0), HEADER_SLOTS[0])?;
        file.sync_all()?;
        fs::rename(&fresh, path)?;
        File::open(dir)?.sync_all()
    };
    create().map_err(io_error(path))?;
    open().map_err(io_error(path))
}

/// Takes the journal's exclusive lock, waiting up to [`LOCK_WAIT`].
fn lock(file: &File, path: &Path) -> Result<(), JournalError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let request = libc::flock {
            l_type: libc::F_WRLCK as _,
            l_whence: libc::SEEK_SET as _,
            l_start: 0,
            l_len: 1,
            l_pid: 0,
        };
        match fcntl(file, FcntlArg::F_OFD_SETLK(&request)) {
            Ok(_) => return Ok(()),
            Err(Errno::EAGAIN | Errno::EACCES) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(Errno::EAGAIN | Errno::EACCES) => {
                return Err(JournalError::Busy {
                    path: path.display().to_string(),
                });
            }
            Err(errno) => return Err(io_error(path)(errno.into())),
        }
    }
}

fn checksum(parts: &[&[u8]]) -> [u8; 8] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&digest[..8]);
    sum
}

fn header(epoch: u64) -> Vec<u8> {
    let mut bytes = HEADER_MAGIC.to_vec();
    bytes.extend_from_slice(&epoch.to_le_bytes());
    let sum = checksum(&[&bytes]);
    bytes.extend_from_slice(&sum);
    bytes
}

/// The epoch of the valid header slot with the highest epoch.
fn current_epoch(file: &File) -> io::Result<u64> {
    let mut best = None;
    for slot in HEADER_SLOTS {
        let mut bytes = [0u8; 24];
        file.read_exact_at(&mut bytes, slot)?;
        let epoch = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        if &bytes[..8] == HEADER_MAGIC && checksum(&[&bytes[..16]]) == bytes[16..24] {
            best = best.max(Some(epoch));
        }
    }
    best.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no valid journal header"))
}

fn encode(position: &Position, change: &Change, relative: &Path) -> Result<Vec<u8>, JournalError> {
    let unjournalable = |reason| JournalError::Unjournalable {
        path: relative.display().to_string(),
        reason,
    };
    let path = relative
        .to_str()
        .ok_or(unjournalable("path is not UTF-8"))?;
    let path_len = u16::try_from(path.len()).map_err(|_| unjournalable("path too long"))?;
    let (op, data): (u8, &[u8]) = match change {
        Change::Put(_, bytes) => (1, bytes),
        Change::Remove(_) => (2, &[]),
    };
    let mut payload = Vec::with_capacity(3 + path.len() + data.len());
    payload.push(op);
    payload.extend_from_slice(&path_len.to_le_bytes());
    payload.extend_from_slice(path.as_bytes());
    payload.extend_from_slice(data);
    if (ENTRY_HEAD + payload.len()) as u64 > JOURNAL_BYTES - ENTRIES_START {
        return Err(unjournalable("record larger than the journal"));
    }
    let mut head = Vec::with_capacity(ENTRY_HEAD + payload.len());
    head.extend_from_slice(ENTRY_MAGIC);
    head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    head.extend_from_slice(&position.epoch.to_le_bytes());
    head.extend_from_slice(&position.sequence.to_le_bytes());
    let sum = checksum(&[&head[4..24], &payload]);
    head.extend_from_slice(&sum);
    head.extend_from_slice(&payload);
    Ok(head)
}

/// The entries of `epoch`, in order, up to the first torn, foreign or
/// out-of-sequence one; and the offset after the last.
fn read_entries(file: &File, epoch: u64) -> io::Result<(Vec<Change>, u64)> {
    let mut changes = Vec::new();
    let mut offset = ENTRIES_START;
    while offset + ENTRY_HEAD as u64 <= JOURNAL_BYTES {
        let mut head = [0u8; ENTRY_HEAD];
        file.read_exact_at(&mut head, offset)?;
        let len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as u64;
        let entry_epoch = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        let sequence = u64::from_le_bytes(head[16..24].try_into().expect("8 bytes"));
        let end = offset + ENTRY_HEAD as u64 + len;
        if &head[..4] != ENTRY_MAGIC
            || entry_epoch != epoch
            || sequence != changes.len() as u64
            || end > JOURNAL_BYTES
        {
            break;
        }
        let mut payload = vec![0u8; len as usize];
        file.read_exact_at(&mut payload, offset + ENTRY_HEAD as u64)?;
        if checksum(&[&head[4..24], &payload]) != head[24..32] {
            break;
        }
        let Some(change) = decode(&payload) else {
            break;
        };
        changes.push(change);
        offset = end;
    }
    Ok((changes, offset))
}

fn decode(payload: &[u8]) -> Option<Change> {
    let (&op, rest) = payload.split_first()?;
    let path_len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let path = std::str::from_utf8(rest.get(2..2 + path_len)?).ok()?;
    let path = PathBuf::from(path);
    // A journal entry never names anything outside the state directory.
    if path.is_absolute()
        || path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return None;
    }
    let data = rest.get(2 + path_len..)?;
    match op {
        1 => Some(Change::Put(path, data.to_vec())),
        2 if data.is_empty() => Some(Change::Remove(path)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("vp-journal")
            .tempdir_in("/var/tmp")
            .unwrap()
    }

    #[test]
    fn changes_left_by_an_unclean_stop_are_replayed_in_order() {
        let dir = state_dir();
        let root = dir.path();
        let (journal, replayed) = Journal::open(root).unwrap();
        assert!(replayed.is_empty());
        let a = root.join("volumes/a.json");
        let b = root.join("volumes/b.json");
        journal
            .record(&Change::Put(a.clone(), b"one".to_vec()))
            .unwrap();
        journal
            .record(&Change::Put(b.clone(), b"bee".to_vec()))
            .unwrap();
        journal
            .record(&Change::Put(a.clone(), b"two".to_vec()))
            .unwrap();
        journal.record(&Change::Remove(b.clone())).unwrap();
        // A power loss: the record files never got written; no checkpoint.
        journal.lose_power();
        let (journal, replayed) = Journal::open(root).unwrap();
        assert_eq!(
            replayed,
            vec![
                Change::Put("volumes/a.json".into(), b"one".to_vec()),
                Change::Put("volumes/b.json".into(), b"bee".to_vec()),
                Change::Put("volumes/a.json".into(), b"two".to_vec()),
                Change::Remove("volumes/b.json".into()),
            ]
        );
        // Entries recorded before the replay is checkpointed go after it.
        journal
            .record(&Change::Put(b.clone(), b"again".to_vec()))
            .unwrap();
        journal.lose_power();
        let (journal, replayed) = Journal::open(root).unwrap();
        assert_eq!(replayed.len(), 5);
        assert_eq!(
            replayed[4],
            Change::Put("volumes/b.json".into(), b"again".to_vec())
        );
        journal.checkpoint().unwrap();
        drop(journal);
        let (_journal, replayed) = Journal::open(root).unwrap();
        assert!(replayed.is_empty(), "the replay was checkpointed");
    }

    #[test]
    fn a_torn_entry_ends_the_replay_and_a_full_journal_checkpoints() {
        let dir = state_dir();
        let root = dir.path();
        let (journal, _) = Journal::open(root).unwrap();
        let path = root.join("snapshots/s.json");
        journal
            .record(&Change::Put(path.clone(), b"kept".to_vec()))
            .unwrap();
        let torn_at = journal.position.lock().unwrap().offset;
        journal
            .record(&Change::Put(path.clone(), b"torn".to_vec()))
            .unwrap();
        journal.file.write_all_at(b"X", torn_at + 40).unwrap();
        journal.lose_power();
        let (journal, replayed) = Journal::open(root).unwrap();
        assert_eq!(
            replayed,
            vec![Change::Put("snapshots/s.json".into(), b"kept".to_vec())]
        );
        journal.checkpoint().unwrap();
        // Fill the journal a few times over: it checkpoints and reuses itself.
        let before = journal.position.lock().unwrap().epoch;
        let big = vec![b'x'; 300 << 10];
        for _ in 0..40 {
            journal
                .record(&Change::Put(path.clone(), big.clone()))
                .unwrap();
        }
        let epoch = journal.position.lock().unwrap().epoch;
        assert!(epoch >= before + 2, "epoch {before} → {epoch}");
        journal.lose_power();
        let (_journal, replayed) = Journal::open(root).unwrap();
        assert!(
            replayed.len() < 14,
            "only the changes since the last checkpoint"
        );
        assert!(!replayed.is_empty());
    }

    #[test]
    fn a_second_controller_waits_for_the_journal_then_gives_up() {
        let dir = state_dir();
        let (first, _) = Journal::open(dir.path()).unwrap();
        let err = Journal::open(dir.path()).unwrap_err();
        assert!(matches!(err, JournalError::Busy { .. }), "{err}");
        drop(first);
        Journal::open(dir.path()).expect("free once the owner closed it");
    }

    #[test]
    fn entries_naming_paths_outside_the_state_directory_are_refused() {
        let dir = state_dir();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let err = journal
            .record(&Change::Remove(PathBuf::from("/etc/passwd")))
            .unwrap_err();
        assert!(matches!(err, JournalError::Unjournalable { .. }), "{err}");
        let mut payload = vec![1u8];
        payload.extend_from_slice(&5u16.to_le_bytes());
        payload.extend_from_slice(b"../x1");
        assert_eq!(decode(&payload), None);
    }
}
