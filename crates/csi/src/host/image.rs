//! Backing images: sparse files that hold a volume's bytes, and copies of
//! them (snapshots, restores, clones) made by reflink where the filesystem
//! shares extents, otherwise by a copy that skips holes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Whence, lseek};

use super::ioctl;

/// How a copy was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// The copy shares the source's extents (copy-on-write).
    Reflink,
    /// Only the data extents were copied; holes stayed holes.
    Sparse,
}

/// Creates (or, after a crash, reuses) a sparse image of `size` bytes. An
/// existing image is only ever grown.
pub fn create_sparse(path: &Path, size: u64) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    if file.metadata()?.len() < size {
        file.set_len(size)?;
    }
    Ok(())
}

/// Grows the image at `path` to `size` bytes (never shrinks it).
pub fn grow(path: &Path, size: u64) -> io::Result<u64> {
    let file = OpenOptions::new().write(true).open(path)?;
    let current = file.metadata()?.len();
    if current < size {
        file.set_len(size)?;
        return Ok(size);
    }
    Ok(current)
}

/// The apparent size of the image.
pub fn size(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

/// Bytes actually allocated to the image on the host filesystem.
pub fn allocated(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.blocks() * 512)
}

/// Copies `source` to `destination` atomically: the copy is written to
/// `partial` and renamed into place, so a crash never leaves a half copy at
/// `destination`. The copy is then at least `size` bytes long; with
/// `durable` it is on stable storage before the rename, and the rename
/// before the return (the record that names the copy is journaled, and the
/// journal's flush does not carry directory changes).
pub fn copy(
    source: &Path,
    partial: &Path,
    destination: &Path,
    size: u64,
    durable: bool,
) -> io::Result<CopyMethod> {
    let src = File::open(source)?;
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(partial)?;
    let method = match ioctl::ficlone(&dst, &src) {
        Ok(()) => CopyMethod::Reflink,
        Err(e) if reflink_unsupported(&e) => {
            sparse_copy(&src, &dst)?;
            CopyMethod::Sparse
        }
        Err(e) => return Err(e),
    };
    let length = src.metadata()?.len().max(size);
    dst.set_len(length)?;
    if durable {
        dst.sync_all()?;
    }
    drop(dst);
    std::fs::rename(partial, destination)?;
    if durable && let Some(dir) = destination.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(method)
}

fn reflink_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOTTY)
    )
}

/// Copies the data extents of `src` into `dst` at the same offsets, found
/// with SEEK_DATA/SEEK_HOLE and moved in the kernel by copy_file_range(2).
pub fn sparse_copy(src: &File, dst: &File) -> io::Result<u64> {
    let length = src.metadata()?.len() as i64;
    dst.set_len(length as u64)?;
    let mut copied = 0u64;
    let mut offset = 0i64;
    while offset < length {
        let data = match lseek(src.as_fd(), offset, Whence::SeekData) {
            Ok(data) => data,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = lseek(src.as_fd(), data, Whence::SeekHole)?;
        copied += copy_range(src, dst, data, hole)?;
        offset = hole;
    }
    Ok(copied)
}

fn copy_range(src: &File, dst: &File, start: i64, end: i64) -> io::Result<u64> {
    let mut off_in = start;
    let mut off_out = start;
    while off_in < end {
        let chunk = (end - off_in) as usize;
        let n = nix::fcntl::copy_file_range(
            src.as_fd(),
            Some(&mut off_in),
            dst.as_fd(),
            Some(&mut off_out),
            chunk,
        )?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "source shrank during copy",
            ));
        }
    }
    Ok((end - start) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn sparse_copy_keeps_data_and_holes() {
        let dir = tempfile::Builder::new()
            .prefix("vp-image")
            .tempdir()
            .unwrap();
        let source = dir.path().join("a.img");
        create_sparse(&source, 64 << 20).unwrap();
        let mut f = OpenOptions::new().write(true).open(&source).unwrap();
        f.seek(SeekFrom::Start(32 << 20)).unwrap();
        f.write_all(&[7u8; 8192]).unwrap();
        drop(f);
        let dest = dir.path().join("b.img");
        copy(&source, &dir.path().join("b.partial"), &dest, 0, true).unwrap();
        assert_eq!(size(&dest).unwrap(), 64 << 20);
        assert!(allocated(&dest).unwrap() < 1 << 20, "the copy stays sparse");
        let mut buf = vec![0u8; 8192];
        let mut d = File::open(&dest).unwrap();
        d.seek(SeekFrom::Start(32 << 20)).unwrap();
        d.read_exact(&mut buf).unwrap();
        assert!(buf.iter().all(|b| *b == 7));
        assert!(!dir.path().join("b.partial").exists());
    }

    #[test]
    fn images_only_grow() {
        let dir = tempfile::Builder::new()
            .prefix("vp-image")
            .tempdir()
            .unwrap();
        let path = dir.path().join("a.img");
        create_sparse(&path, 4 << 20).unwrap();
        assert_eq!(grow(&path, 1 << 20).unwrap(), 4 << 20);
        assert_eq!(grow(&path, 8 << 20).unwrap(), 8 << 20);
        create_sparse(&path, 2 << 20).unwrap();
        assert_eq!(size(&path).unwrap(), 8 << 20);
    }
}
