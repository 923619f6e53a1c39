//! Mounting: a [`Mounter`] trait with the kernel implementation
//! ([`KernelMounter`], mount(2)/umount2(2) and `/proc/self/mountinfo`) and a
//! recording one ([`RecordingMounter`]) for tests that must not touch the host.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags};

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The mount source (`/dev/loop3`, or the source of a bind mount).
    pub source: String,
    /// The filesystem type (`ext4`, `xfs`, `devtmpfs` for a bound device…).
    pub fs_type: String,
    /// Whether the mount is read-only.
    pub read_only: bool,
}

/// Flags and filesystem data for mount(2), parsed from CSI `mount_flags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` bits.
    pub flags: u64,
    /// Filesystem-specific options, comma separated.
    pub data: String,
}

/// Why a CSI mount flag was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MountFlagError {
    /// The flag changes what kind of mount is made (bind, move, remount…),
    /// which the driver decides itself.
    #[error("mount flag {0:?} is not allowed")]
    NotAllowed(String),
    /// The flag is empty or contains characters mount(8) would not accept.
    #[error("mount flag {0:?} is malformed")]
    Malformed(String),
}

impl MountOptions {
    /// Parses CSI `mount_flags` (each entry may itself hold a comma list).
    pub fn parse(mount_flags: &[String]) -> Result<Self, MountFlagError> {
        let mut options = MountOptions::default();
        let mut data = Vec::new();
        for flag in mount_flags.iter().flat_map(|f| f.split(',')) {
            let flag = flag.trim();
            if flag.is_empty() || flag.chars().any(|c| c.is_control() || c == ' ') {
                return Err(MountFlagError::Malformed(flag.to_string()));
            }
            options.apply(flag, &mut data)?;
        }
        options.data = data.join(",");
        Ok(options)
    }

    fn apply(&mut self, flag: &str, data: &mut Vec<String>) -> Result<(), MountFlagError> {
        let (set, clear) = match flag {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "relatime" => (libc::MS_RELATIME, 0),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "lazytime" => (libc::MS_LAZYTIME, 0),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "defaults" => (0, 0),
            "bind" | "rbind" | "move" | "remount" | "shared" | "rshared" | "private"
            | "rprivate" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                return Err(MountFlagError::NotAllowed(flag.to_string()));
            }
            other => {
                data.push(other.to_string());
                return Ok(());
            }
        };
        self.flags = (self.flags | set) & !clear;
        Ok(())
    }

    /// Whether the options ask for a read-only mount.
    pub fn read_only(&self) -> bool {
        self.flags & libc::MS_RDONLY != 0
    }
}

/// Mount operations.
pub trait Mounter: Send + Sync {
    /// Mounts the filesystem on `device` at `target`.
    fn mount(
        &self,
        device: &Path,
        target: &Path,
        fs_type: &str,
        options: &MountOptions,
    ) -> io::Result<()>;
    /// Bind-mounts `source` (a directory or a device) at `target`, read-only
    /// when asked.
    fn bind(&self, source: &Path, target: &Path, read_only: bool) -> io::Result<()>;
    /// Unmounts `target`.
    fn unmount(&self, target: &Path) -> io::Result<()>;
    /// The current mount table.
    fn mounts(&self) -> io::Result<Vec<MountEntry>>;

    /// The topmost mount at exactly `target`, if any.
    fn mount_at(&self, target: &Path) -> io::Result<Option<MountEntry>> {
        Ok(self
            .mounts()?
            .into_iter()
            .rev()
            .find(|m| m.mount_point == target))
    }
}

/// The kernel's mount(2), umount2(2) and `/proc/self/mountinfo`.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelMounter;

impl Mounter for KernelMounter {
    fn mount(
        &self,
        device: &Path,
        target: &Path,
        fs_type: &str,
        options: &MountOptions,
    ) -> io::Result<()> {
        let flags = MsFlags::from_bits_truncate(options.flags as _);
        let data = (!options.data.is_empty()).then_some(options.data.as_str());
        nix::mount::mount(Some(device), target, Some(fs_type), flags, data).map_err(io::Error::from)
    }

    fn bind(&self, source: &Path, target: &Path, read_only: bool) -> io::Result<()> {
        nix::mount::mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        if read_only {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            if let Err(e) =
                nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
            {
                let _ = nix::mount::umount2(target, MntFlags::empty());
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        nix::mount::umount2(target, MntFlags::UMOUNT_NOFOLLOW).map_err(io::Error::from)
    }

    fn mounts(&self) -> io::Result<Vec<MountEntry>> {
        Ok(parse_mountinfo(&std::fs::read_to_string(
            "/proc/self/mountinfo",
        )?))
    }
}

/// Parses the text of `/proc/self/mountinfo`.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let fs_type = right.next()?.to_string();
    let source = unescape(right.next()?);
    let options = fields.get(5)?;
    Some(MountEntry {
        mount_point: PathBuf::from(unescape(fields.get(4)?)),
        source,
        fs_type,
        read_only: options.split(',').any(|o| o == "ro"),
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space…).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        match octal.and_then(|o| u8::from_str_radix(std::str::from_utf8(o).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One call made to a [`RecordingMounter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountCall {
    /// `mount(device, target, fs_type, options)`.
    Mount {
        /// Device mounted.
        device: PathBuf,
        /// Where.
        target: PathBuf,
        /// Filesystem type.
        fs_type: String,
        /// Options.
        options: MountOptions,
    },
    /// `bind(source, target, read_only)`.
    Bind {
        /// What is bound.
        source: PathBuf,
        /// Where.
        target: PathBuf,
        /// Read-only bind.
        read_only: bool,
    },
    /// `unmount(target)`.
    Unmount {
        /// What was unmounted.
        target: PathBuf,
    },
}

/// A [`Mounter`] that changes nothing on the host: it records each call and
/// keeps its own mount table, so unit tests can check what the driver would
/// have mounted.
#[derive(Debug, Default)]
pub struct RecordingMounter {
    calls: Mutex<Vec<MountCall>>,
    table: Mutex<Vec<MountEntry>>,
}

impl RecordingMounter {
    /// The calls made so far, oldest first.
    pub fn calls(&self) -> Vec<MountCall> {
        self.calls.lock().expect("mounter lock").clone()
    }

    fn record(&self, call: MountCall, entry: Option<MountEntry>) {
        self.calls.lock().expect("mounter lock").push(call);
        if let Some(entry) = entry {
            self.table.lock().expect("mounter lock").push(entry);
        }
    }
}

impl Mounter for RecordingMounter {
    fn mount(
        &self,
        device: &Path,
        target: &Path,
        fs_type: &str,
        options: &MountOptions,
    ) -> io::Result<()> {
        let entry = MountEntry {
            mount_point: target.to_path_buf(),
            source: device.display().to_string(),
            fs_type: fs_type.to_string(),
            read_only: options.read_only(),
        };
        let call = MountCall::Mount {
            device: device.to_path_buf(),
            target: target.to_path_buf(),
            fs_type: fs_type.to_string(),
            options: options.clone(),
        };
        self.record(call, Some(entry));
        Ok(())
    }

    fn bind(&self, source: &Path, target: &Path, read_only: bool) -> io::Result<()> {
        let entry = MountEntry {
            mount_point: target.to_path_buf(),
            source: source.display().to_string(),
            fs_type: "bind".to_string(),
            read_only,
        };
        let call = MountCall::Bind {
            source: source.to_path_buf(),
            target: target.to_path_buf(),
            read_only,
        };
        self.record(call, Some(entry));
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        let mut table = self.table.lock().expect("mounter lock");
        let Some(index) = table.iter().rposition(|m| m.mount_point == target) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        table.remove(index);
        drop(table);
        self.record(
            MountCall::Unmount {
                target: target.to_path_buf(),
            },
            None,
        );
        Ok(())
    }

    fn mounts(&self) -> io::Result<Vec<MountEntry>> {
        Ok(self.table.lock().expect("mounter lock").clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_parsed_with_escapes() {
        let text = "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext4 /dev/loop3 rw\n\
                    37 35 98:0 /x /mnt/c ro,relatime - xfs /dev/loop4 ro,nouuid\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(entries[0].source, "/dev/loop3");
        assert!(!entries[0].read_only);
        assert_eq!(entries[1].fs_type, "xfs");
        assert!(entries[1].read_only);
    }

    #[test]
    fn mount_flags_split_into_bits_and_data() {
        let flags = vec!["noatime,ro".to_string(), "data=ordered".to_string()];
        let options = MountOptions::parse(&flags).unwrap();
        assert_eq!(options.flags, libc::MS_NOATIME | libc::MS_RDONLY);
        assert_eq!(options.data, "data=ordered");
        assert!(options.read_only());
    }

    #[test]
    fn mount_flags_that_change_the_mount_kind_are_refused() {
        let err = MountOptions::parse(&["bind".to_string()]).unwrap_err();
        assert_eq!(err, MountFlagError::NotAllowed("bind".to_string()));
        assert!(MountOptions::parse(&["a b".to_string()]).is_err());
    }

    #[test]
    fn recording_mounter_tracks_its_own_table() {
        let mounter = RecordingMounter::default();
        let target = Path::new("/stage/v1");
        mounter
            .mount(
                Path::new("/dev/loop9"),
                target,
                "ext4",
                &MountOptions::default(),
            )
            .unwrap();
        assert!(mounter.mount_at(target).unwrap().is_some());
        mounter.unmount(target).unwrap();
        assert!(mounter.mount_at(target).unwrap().is_none());
        assert!(mounter.unmount(target).is_err());
        assert_eq!(mounter.calls().len(), 2);
    }
}
