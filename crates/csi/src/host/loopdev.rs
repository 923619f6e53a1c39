//! Loop devices: attach a backing image, find the devices bound to an image
//! (how the driver recognises what it attached before a crash), grow, detach.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::ioctl;

/// How many times `attach` retries when another process takes the free loop
/// device between `LOOP_CTL_GET_FREE` and `LOOP_CONFIGURE`.
const ATTACH_ATTEMPTS: usize = 64;

/// Loop device operations. The kernel implementation is [`KernelLoopDevices`].
pub trait LoopDevices: Send + Sync {
    /// Binds `image` to a free loop device and returns the device path.
    fn attach(&self, image: &Path, direct_io: bool) -> io::Result<PathBuf>;
    /// Every loop device currently bound to `image`.
    fn find(&self, image: &Path) -> io::Result<Vec<PathBuf>>;
    /// Unbinds `device`; a device that is already free is not an error.
    fn detach(&self, device: &Path) -> io::Result<()>;
    /// Makes `device` pick up the current size of its image; returns the
    /// device size in bytes.
    fn refresh_capacity(&self, device: &Path) -> io::Result<u64>;
    /// The size of `device` in bytes.
    fn size(&self, device: &Path) -> io::Result<u64>;
    /// Switches direct I/O on `device` on or off.
    fn set_direct_io(&self, device: &Path, on: bool) -> io::Result<()>;
}

/// Loop devices driven through `/dev/loop-control` and the loop ioctls.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelLoopDevices;

impl LoopDevices for KernelLoopDevices {
    fn attach(&self, image: &Path, direct_io: bool) -> io::Result<PathBuf> {
        let backing = OpenOptions::new().read(true).write(true).open(image)?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")?;
        let name = image.as_os_str().as_bytes();
        for _ in 0..ATTACH_ATTEMPTS {
            let number = ioctl::loop_ctl_get_free(&control)?;
            let path = PathBuf::from(format!("/dev/loop{number}"));
            let device = match open_rw(&path) {
                Ok(device) => device,
                // The node may appear a moment after LOOP_CTL_GET_FREE.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            match ioctl::loop_configure(&device, &backing, direct_io, name) {
                Ok(()) => return Ok(path),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "no free loop device after {ATTACH_ATTEMPTS} attempts"
        )))
    }

    fn find(&self, image: &Path) -> io::Result<Vec<PathBuf>> {
        Ok(bound_loop_devices()?
            .into_iter()
            .filter(|(_, backing)| backing == image)
            .map(|(device, _)| device)
            .collect())
    }

    fn detach(&self, device: &Path) -> io::Result<()> {
        let file = match open_rw(device) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match ioctl::loop_clr_fd(&file) {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(()),
            other => other,
        }
    }

    fn refresh_capacity(&self, device: &Path) -> io::Result<u64> {
        let file = open_rw(device)?;
        ioctl::loop_set_capacity(&file)?;
        ioctl::block_device_size(&file)
    }

    fn size(&self, device: &Path) -> io::Result<u64> {
        ioctl::block_device_size(&File::open(device)?)
    }

    fn set_direct_io(&self, device: &Path, on: bool) -> io::Result<()> {
        ioctl::loop_set_direct_io(&open_rw(device)?, on)
    }
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path)
}

/// Every bound loop device with the path of its backing file, read from
/// `/sys/block/loop*/loop/backing_file`. A backing file that was deleted
/// keeps the kernel's " (deleted)" suffix.
pub fn bound_loop_devices() -> io::Result<Vec<(PathBuf, PathBuf)>> {
    let mut bound = Vec::new();
    for entry in std::fs::read_dir("/sys/block")? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("loop") {
            continue;
        }
        let file = Path::new("/sys/block").join(name).join("loop/backing_file");
        match std::fs::read_to_string(&file) {
            Ok(backing) => bound.push((
                PathBuf::from(format!("/dev/{name}")),
                PathBuf::from(backing.trim_end_matches('\n')),
            )),
            Err(e) if unbound(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(bound)
}

/// Whether reading a loop device's `backing_file` failed because the device
/// is not bound: the file is absent when it never was, and reading it fails
/// with ENXIO or ENODEV while another process detaches it under our scan.
fn unbound(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(e.raw_os_error(), Some(libc::ENXIO | libc::ENODEV))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_detached_during_the_scan_counts_as_unbound() {
        assert!(unbound(&io::Error::from_raw_os_error(libc::ENODEV)));
        assert!(unbound(&io::Error::from_raw_os_error(libc::ENXIO)));
        assert!(unbound(&io::ErrorKind::NotFound.into()));
        assert!(!unbound(&io::Error::from_raw_os_error(libc::EIO)));
        assert!(!unbound(&io::Error::from_raw_os_error(libc::EACCES)));
    }
}
