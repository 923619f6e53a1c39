//! Per-volume (and per-snapshot) serialisation. Each operation takes an
//! exclusive, non-blocking open-file-description lock (`F_OFD_SETLK`) on
//! one byte of `locks/operations.lock`, at an offset derived from the id. A
//! second operation on the same id — in this process (every lock opens the
//! file anew, so it has its own open file description) or in another driver
//! process sharing the state directory — fails at once with ABORTED, as the
//! specification recommends. The kernel drops the lock when the holder
//! closes the file or dies, so a crash never leaves a volume locked, and no
//! file is created per id.

use std::fs::{File, OpenOptions};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use sha2::{Digest, Sha256};

use super::error::{DriverError, DriverResult};
use super::state::StateDir;

/// A held lock; released on drop (when its file is closed).
#[derive(Debug)]
pub struct OperationLock {
    _file: File,
}

/// The byte locked for `id`: 62 bits of SHA-256(id), so two ids share a
/// byte with negligible probability.
pub fn lock_offset(id: &str) -> i64 {
    let hash = Sha256::digest(id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash[..8]);
    (u64::from_le_bytes(bytes) >> 2) as i64
}

impl OperationLock {
    /// Takes the lock for `id` or fails with [`DriverError::OperationPending`].
    pub fn acquire(state: &StateDir, id: &str) -> DriverResult<Self> {
        let path = state.lock_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(DriverError::io(format!("open lock {}", path.display())))?;
        let mut request = zeroed_flock();
        request.l_type = libc::F_WRLCK as _;
        request.l_whence = libc::SEEK_SET as _;
        request.l_start = lock_offset(id);
        request.l_len = 1;
        match fcntl(&file, FcntlArg::F_OFD_SETLK(&request)) {
            Ok(_) => Ok(Self { _file: file }),
            Err(Errno::EAGAIN | Errno::EACCES) => {
                Err(DriverError::OperationPending(id.to_string()))
            }
            Err(errno) => Err(DriverError::Io {
                context: format!("lock {id} in {}", path.display()),
                source: errno.into(),
            }),
        }
    }
}

/// A `libc::flock` with every field zero, built field by field (no
/// `mem::zeroed`, which would need `unsafe`).
fn zeroed_flock() -> libc::flock {
    libc::flock {
        l_type: 0,
        l_whence: 0,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_operation_on_the_same_id_is_aborted() {
        let dir = tempfile::Builder::new()
            .prefix("vp-lock")
            .tempdir()
            .unwrap();
        let state = StateDir::open(dir.path(), false).unwrap();
        let held = OperationLock::acquire(&state, "vol-a").unwrap();
        let err = OperationLock::acquire(&state, "vol-a").unwrap_err();
        assert_eq!(err.code(), tonic::Code::Aborted);
        assert!(OperationLock::acquire(&state, "vol-b").is_ok());
        drop(held);
        assert!(OperationLock::acquire(&state, "vol-a").is_ok());
    }
}
