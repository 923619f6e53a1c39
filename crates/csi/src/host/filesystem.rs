//! Filesystems on volumes: recognise one from its superblock, make one
//! (mkfs.ext4 / mkfs.xfs), grow one online, freeze and thaw one.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::process::Command;

use super::ioctl;

/// The filesystems the driver makes and grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext4 (the default).
    Ext4,
    /// XFS.
    Xfs,
}

impl FsKind {
    /// Parses a CSI `fs_type` (empty means the default, ext4).
    pub fn parse(fs_type: &str) -> Option<Self> {
        match fs_type {
            "" | "ext4" => Some(Self::Ext4),
            "xfs" => Some(Self::Xfs),
            _ => None,
        }
    }

    /// The name mount(2) knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ext4 => "ext4",
            Self::Xfs => "xfs",
        }
    }

    /// The smallest volume this filesystem can be made on (mkfs.xfs refuses
    /// filesystems under 300 MiB).
    pub fn minimum_size(self) -> u64 {
        match self {
            Self::Ext4 => 16 << 20,
            Self::Xfs => 300 << 20,
        }
    }
}

/// A filesystem found on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsInfo {
    /// Which filesystem.
    pub kind: FsKind,
    /// Its size in bytes, from the superblock.
    pub size_bytes: u64,
}

/// Filesystem operations. The real implementation is [`HostFilesystems`].
pub trait Filesystems: Send + Sync {
    /// The filesystem on `device`, if there is one the driver knows.
    fn probe(&self, device: &Path) -> io::Result<Option<FsInfo>>;
    /// Whether the first `bytes` of `device` are all zero.
    fn is_blank(&self, device: &Path, bytes: usize) -> io::Result<bool>;
    /// Waits (up to `timeout`) until no one holds `device` exclusively — a
    /// mkfs left running by a killed driver, for instance.
    fn wait_unclaimed(&self, device: &Path, timeout: std::time::Duration) -> io::Result<()>;
    /// Makes a filesystem of `kind` on `device`.
    fn make(&self, device: &Path, kind: FsKind) -> io::Result<()>;
    /// Grows the filesystem on `device`, mounted at `mount_point`, to the
    /// size of the device (online; ext4 needs CAP_SYS_RESOURCE for this).
    fn grow(&self, device: &Path, mount_point: &Path, kind: FsKind) -> io::Result<()>;
    /// Grows the unmounted ext4 filesystem on `device` to the size of the
    /// device (checked first, as resize2fs requires). XFS can only be grown
    /// mounted: this is a no-op for it.
    fn grow_offline(&self, device: &Path, kind: FsKind) -> io::Result<()>;
    /// Freezes the filesystem mounted at `mount_point` (a consistent image on
    /// the device until [`Filesystems::thaw`]).
    fn freeze(&self, mount_point: &Path) -> io::Result<()>;
    /// Thaws a frozen filesystem; thawing one that is not frozen is not an
    /// error.
    fn thaw(&self, mount_point: &Path) -> io::Result<()>;
}

/// e2fsprogs, xfsprogs and the freeze ioctls.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostFilesystems;

impl Filesystems for HostFilesystems {
    fn probe(&self, device: &Path) -> io::Result<Option<FsInfo>> {
        let mut head = vec![0u8; 2048];
        let mut file = File::open(device)?;
        file.read_exact(&mut head)?;
        Ok(parse_superblock(&head))
    }

    fn is_blank(&self, device: &Path, bytes: usize) -> io::Result<bool> {
        let mut head = vec![0u8; bytes];
        File::open(device)?.read_exact(&mut head)?;
        Ok(head.iter().all(|b| *b == 0))
    }

    fn wait_unclaimed(&self, device: &Path, timeout: std::time::Duration) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_EXCL)
                .open(device)
            {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn make(&self, device: &Path, kind: FsKind) -> io::Result<()> {
        let mut command = match kind {
            // Lazy inode table and journal initialisation and no discard: the
            // image is sparse already, so mkfs only writes metadata.
            FsKind::Ext4 => {
                let mut c = Command::new("mkfs.ext4");
                c.args(["-q", "-F", "-m", "0"])
                    .args(["-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"]);
                c
            }
            FsKind::Xfs => {
                let mut c = Command::new("mkfs.xfs");
                c.args(["-q", "-f", "-K"]);
                c
            }
        };
        run(command.arg(device))
    }

    fn grow(&self, device: &Path, mount_point: &Path, kind: FsKind) -> io::Result<()> {
        match kind {
            FsKind::Ext4 => run(Command::new("resize2fs").arg(device)),
            FsKind::Xfs => run(Command::new("xfs_growfs").arg(mount_point)),
        }
    }

    fn grow_offline(&self, device: &Path, kind: FsKind) -> io::Result<()> {
        if kind == FsKind::Xfs {
            return Ok(());
        }
        // e2fsck -p exits 1 when it corrected something: still fine to resize.
        let check = Command::new("e2fsck")
            .args(["-f", "-p"])
            .arg(device)
            .stdin(std::process::Stdio::null())
            .output()?;
        if !matches!(check.status.code(), Some(0 | 1)) {
            return Err(io::Error::other(format!(
                "e2fsck -f -p {} failed ({}): {}",
                device.display(),
                check.status,
                String::from_utf8_lossy(&check.stdout).trim()
            )));
        }
        run(Command::new("resize2fs").arg(device))
    }

    fn freeze(&self, mount_point: &Path) -> io::Result<()> {
        ioctl::fs_freeze(&File::open(mount_point)?)
    }

    fn thaw(&self, mount_point: &Path) -> io::Result<()> {
        match ioctl::fs_thaw(&File::open(mount_point)?) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other,
        }
    }
}

/// Runs a command and turns a failure into an error carrying its stderr.
pub fn run(command: &mut Command) -> io::Result<()> {
    let output = command.stdin(std::process::Stdio::null()).output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{:?} failed ({}): {}",
        command,
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// Recognises ext2/3/4 and XFS from the first 2 KiB of a device.
pub fn parse_superblock(head: &[u8]) -> Option<FsInfo> {
    if head.get(0..4) == Some(b"XFSB") {
        let block_size = u32::from_be_bytes(head.get(4..8)?.try_into().ok()?) as u64;
        let blocks = u64::from_be_bytes(head.get(8..16)?.try_into().ok()?);
        return Some(FsInfo {
            kind: FsKind::Xfs,
            size_bytes: block_size * blocks,
        });
    }
    let sb = head.get(1024..2048)?;
    if u16::from_le_bytes([sb[56], sb[57]]) != 0xEF53 {
        return None;
    }
    let le32 = |at: usize| u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]) as u64;
    let incompat_64bit = le32(0x60) & 0x80 != 0;
    let high = if incompat_64bit { le32(0x150) } else { 0 };
    let blocks = (high << 32) | le32(0x04);
    let block_size = 1024u64 << le32(0x18);
    Some(FsInfo {
        kind: FsKind::Ext4,
        size_bytes: blocks * block_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext4_superblock_gives_kind_and_size() {
        let mut head = vec![0u8; 2048];
        head[1024 + 56] = 0x53;
        head[1024 + 57] = 0xEF;
        head[1024 + 4..1024 + 8].copy_from_slice(&16384u32.to_le_bytes());
        head[1024 + 0x18..1024 + 0x1C].copy_from_slice(&2u32.to_le_bytes());
        let info = parse_superblock(&head).unwrap();
        assert_eq!(info.kind, FsKind::Ext4);
        assert_eq!(info.size_bytes, 16384 * 4096);
    }

    #[test]
    fn xfs_superblock_gives_kind_and_size() {
        let mut head = vec![0u8; 2048];
        head[0..4].copy_from_slice(b"XFSB");
        head[4..8].copy_from_slice(&4096u32.to_be_bytes());
        head[8..16].copy_from_slice(&76800u64.to_be_bytes());
        let info = parse_superblock(&head).unwrap();
        assert_eq!(info.kind, FsKind::Xfs);
        assert_eq!(info.size_bytes, 300 << 20);
    }

    #[test]
    fn zeroed_device_has_no_filesystem() {
        assert_eq!(parse_superblock(&[0u8; 2048]), None);
    }

    #[test]
    fn fs_type_names() {
        assert_eq!(FsKind::parse(""), Some(FsKind::Ext4));
        assert_eq!(FsKind::parse("xfs"), Some(FsKind::Xfs));
        assert_eq!(FsKind::parse("ntfs"), None);
    }
}
