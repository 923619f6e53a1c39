//! Side effects on the host: loop devices, mounts, filesystems and backing
//! images. Each kind of effect sits behind a trait with a kernel
//! implementation, so the driver's decisions can be tested without root.

pub mod filesystem;
pub mod image;
mod ioctl;
pub mod loopdev;
pub mod mounter;

use std::sync::Arc;

pub use filesystem::{Filesystems, FsInfo, FsKind, HostFilesystems};
pub use loopdev::{KernelLoopDevices, LoopDevices};
pub use mounter::{KernelMounter, MountEntry, MountOptions, Mounter, RecordingMounter};

/// The host operations the driver performs, bundled.
#[derive(Clone)]
pub struct Host {
    /// Mounts and the mount table.
    pub mounter: Arc<dyn Mounter>,
    /// Loop devices.
    pub loops: Arc<dyn LoopDevices>,
    /// Filesystems on devices.
    pub filesystems: Arc<dyn Filesystems>,
}

impl Host {
    /// The real host: the kernel and the filesystem tools.
    pub fn kernel() -> Self {
        Self {
            mounter: Arc::new(KernelMounter),
            loops: Arc::new(KernelLoopDevices),
            filesystems: Arc::new(HostFilesystems),
        }
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

/// Unmounts everything mounted under `root` (deepest first, lazily) and
/// detaches every loop device whose backing file lies under `root`.
///
/// Best effort by design: test guards and shutdown paths call it while
/// tearing down, when an error has nowhere useful to go.
pub fn release_everything_under(root: &std::path::Path) {
    let mut mounts: Vec<std::path::PathBuf> = KernelMounter
        .mounts()
        .map(|m| {
            m.into_iter()
                .map(|m| m.mount_point)
                .filter(|p| p.starts_with(root))
                .collect()
        })
        .unwrap_or_default();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for mount in mounts {
        let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
    }
    for (device, backing) in loopdev::bound_loop_devices().unwrap_or_default() {
        if backing.starts_with(root) {
            let _ = KernelLoopDevices.detach(&device);
        }
    }
}
