//! The handful of Linux ioctls the driver needs and that neither std nor nix
//! wraps safely: loop device control, filesystem freeze/thaw, reflink and
//! block device size.
//!
//! This is the only module of the crate that uses `unsafe`: an ioctl is a
//! raw system call. Every call below passes a file descriptor borrowed from a
//! live `File` (so it stays open for the duration of the call) and either a
//! plain integer argument or a pointer to a `#[repr(C)]` value laid out as
//! the kernel's UAPI header declares it, which outlives the call.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

const LOOP_CLR_FD: u64 = 0x4C01;
const LOOP_SET_CAPACITY: u64 = 0x4C07;
const LOOP_SET_DIRECT_IO: u64 = 0x4C08;
const LOOP_CONFIGURE: u64 = 0x4C0A;
const LOOP_CTL_GET_FREE: u64 = 0x4C82;
/// `_IOWR('X', 119, int)`
const FIFREEZE: u64 = 0xC004_5877;
/// `_IOWR('X', 120, int)`
const FITHAW: u64 = 0xC004_5878;
/// `_IOW(0x94, 9, int)`
const FICLONE: u64 = 0x4004_9409;
/// `_IOR(0x12, 114, size_t)`
const BLKGETSIZE64: u64 = 0x8008_1272;

/// `LO_FLAGS_DIRECT_IO` from `<linux/loop.h>`.
const LO_FLAGS_DIRECT_IO: u32 = 16;
/// `LO_NAME_SIZE` from `<linux/loop.h>`.
const LO_NAME_SIZE: usize = 64;

/// `struct loop_info64` from `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config` from `<linux/loop.h>` (kernel 5.8+).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn ioctl_value(file: &File, request: u64, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: `file` is open for the whole call; the request takes an integer
    // argument, not a pointer.
    check(unsafe { libc::ioctl(file.as_raw_fd(), request as _, arg) })
}

/// Asks `/dev/loop-control` for the number of a free loop device (creating
/// one if needed).
pub fn loop_ctl_get_free(control: &File) -> io::Result<u32> {
    ioctl_value(control, LOOP_CTL_GET_FREE, 0).map(|n| n as u32)
}

/// Binds `backing` to the loop device `device` in one atomic step
/// (`LOOP_CONFIGURE`): fails with `EBUSY` if another process bound it first.
pub fn loop_configure(
    device: &File,
    backing: &File,
    direct_io: bool,
    file_name: &[u8],
) -> io::Result<()> {
    let mut name = [0u8; LO_NAME_SIZE];
    let len = file_name.len().min(LO_NAME_SIZE - 1);
    name[..len].copy_from_slice(&file_name[..len]);
    let config = LoopConfig {
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        info: LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: if direct_io { LO_FLAGS_DIRECT_IO } else { 0 },
            lo_file_name: name,
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        },
        reserved: [0; 8],
    };
    // SAFETY: both files are open for the call; `config` is a live, fully
    // initialised `struct loop_config` that the kernel only reads.
    check(unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            LOOP_CONFIGURE as _,
            &config as *const LoopConfig,
        )
    })
    .map(|_| ())
}

/// Unbinds the loop device (`LOOP_CLR_FD`); if it is still open elsewhere the
/// kernel detaches it when the last user closes it.
pub fn loop_clr_fd(device: &File) -> io::Result<()> {
    ioctl_value(device, LOOP_CLR_FD, 0).map(|_| ())
}

/// Makes the loop device re-read the size of its backing file.
pub fn loop_set_capacity(device: &File) -> io::Result<()> {
    ioctl_value(device, LOOP_SET_CAPACITY, 0).map(|_| ())
}

/// Switches direct I/O to the backing file on or off.
pub fn loop_set_direct_io(device: &File, on: bool) -> io::Result<()> {
    ioctl_value(device, LOOP_SET_DIRECT_IO, on as libc::c_ulong).map(|_| ())
}

/// Freezes the filesystem mounted at the directory `mount_point` is open on.
pub fn fs_freeze(mount_point: &File) -> io::Result<()> {
    ioctl_value(mount_point, FIFREEZE, 0).map(|_| ())
}

/// Thaws a filesystem frozen by [`fs_freeze`].
pub fn fs_thaw(mount_point: &File) -> io::Result<()> {
    ioctl_value(mount_point, FITHAW, 0).map(|_| ())
}

/// Makes `destination` share all of `source`'s extents (reflink).
pub fn ficlone(destination: &File, source: &File) -> io::Result<()> {
    ioctl_value(destination, FICLONE, source.as_raw_fd() as libc::c_ulong).map(|_| ())
}

/// The size in bytes of an open block device.
pub fn block_device_size(device: &File) -> io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: `device` is open; `size` is a live u64 the kernel writes once.
    check(unsafe { libc::ioctl(device.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) })?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_config_matches_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }
}
