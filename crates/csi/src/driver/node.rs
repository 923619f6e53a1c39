//! The Node service of the built-in driver: stage (loop device, mkfs on
//! first use, mount), publish (bind mounts), stats, expansion.
//!
//! Every step first records what it is about to do in the node record and
//! then makes the host match it, checking the host (mount table, loop
//! devices' backing files) rather than trusting the record. A call retried
//! after a crash at any point therefore finishes the job.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::info;

use super::Core;
use super::capability::{AccessType, Capability};
use super::controller::required;
use super::error::{DriverError, DriverResult};
use super::lock::OperationLock;
use super::parameters;
use super::state::{NodeVolumeRecord, TargetRecord, VolumeRecord};
use crate::host::{FsKind, MountOptions};
use crate::proto::{self, node_service_capability::rpc::Type as Rpc};

/// The capabilities NodeGetCapabilities reports.
pub const CAPABILITIES: &[Rpc] = &[
    Rpc::StageUnstageVolume,
    Rpc::GetVolumeStats,
    Rpc::ExpandVolume,
    Rpc::VolumeCondition,
    Rpc::SingleNodeMultiWriter,
];

/// Bytes at the start of a device that must be zero before the driver
/// makes a filesystem on it (so data that is not a known filesystem is
/// never overwritten).
const BLANK_CHECK_BYTES: usize = 64 << 10;

/// How long a stage waits for a device another process (a mkfs left by a
/// killed driver) holds exclusively.
const UNCLAIMED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Core {
    fn node_record_path(&self, volume_id: &str) -> PathBuf {
        self.state.node_volume_path(&self.config.node_id, volume_id)
    }

    fn read_node_record(&self, volume_id: &str) -> DriverResult<Option<NodeVolumeRecord>> {
        if !super::ids::is_volume_id(volume_id) {
            return Ok(None);
        }
        self.state.read(&self.node_record_path(volume_id))
    }

    fn write_node_record(&self, record: &NodeVolumeRecord) -> DriverResult<()> {
        self.state
            .write_volatile(&self.node_record_path(&record.volume_id), record)
    }

    /// NodeStageVolume.
    pub fn node_stage(
        &self,
        req: proto::NodeStageVolumeRequest,
    ) -> DriverResult<proto::NodeStageVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let staging = PathBuf::from(required("staging_target_path", &req.staging_target_path)?);
        let capability = Capability::required("volume_capability", req.volume_capability.as_ref())?;
        if let Some(reason) = capability.unsupported_reason() {
            return Err(DriverError::invalid("volume_capability", reason));
        }
        let _lock = OperationLock::acquire(&self.state, id)?;
        let volume = self
            .read_volume(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        let record = match self.read_node_record(id)? {
            Some(existing) => check_same_stage(existing, &staging, &capability)?,
            None => self.begin_stage(&volume, staging, capability)?,
        };
        self.ensure_staged(&volume, &record)?;
        info!(volume_id = %id, staging = %record.staging_path.display(), "volume staged");
        Ok(proto::NodeStageVolumeResponse {})
    }

    /// The first stage of a volume on this node: attach the loop device,
    /// decide whether the device needs a filesystem, and record it all.
    fn begin_stage(
        &self,
        volume: &VolumeRecord,
        staging: PathBuf,
        capability: Capability,
    ) -> DriverResult<NodeVolumeRecord> {
        let created_staging_dir = ensure_dir(&staging)?;
        let device = self.ensure_loop_device(volume)?;
        let formatting = !capability.is_block() && self.needs_filesystem(&device)?;
        let record = NodeVolumeRecord {
            volume_id: volume.volume_id.clone(),
            staging_path: staging,
            capability,
            created_staging_dir,
            formatting,
            targets: Default::default(),
        };
        self.write_node_record(&record)?;
        Ok(record)
    }

    /// Whether the device is blank (and so gets a filesystem); a device
    /// holding data that is not a known filesystem is never formatted.
    fn needs_filesystem(&self, device: &Path) -> DriverResult<bool> {
        let probe = self
            .host
            .filesystems
            .probe(device)
            .map_err(DriverError::io(format!("probe {}", device.display())))?;
        if probe.is_some() {
            return Ok(false);
        }
        let blank = self.host.filesystems.is_blank(device, BLANK_CHECK_BYTES);
        if !blank.map_err(DriverError::io(format!("read {}", device.display())))? {
            return Err(DriverError::FailedPrecondition(format!(
                "{} holds data that is not an ext4 or xfs filesystem; refusing to format it",
                device.display()
            )));
        }
        Ok(true)
    }

    /// The loop device of the volume, attaching one if there is none.
    fn ensure_loop_device(&self, volume: &VolumeRecord) -> DriverResult<PathBuf> {
        let image = self.state.image_path(&volume.volume_id);
        if !image.exists() {
            return Err(DriverError::VolumeNotFound(volume.volume_id.clone()));
        }
        let found = self
            .host
            .loops
            .find(&image)
            .map_err(DriverError::io("list loop devices"))?;
        if let Some(device) = found.into_iter().next() {
            return Ok(device);
        }
        let direct_io = parameters::direct_io(&volume.mutable_parameters);
        self.host
            .loops
            .attach(&image, direct_io)
            .map_err(DriverError::io(format!("attach {}", image.display())))
    }

    fn ensure_staged(&self, volume: &VolumeRecord, record: &NodeVolumeRecord) -> DriverResult<()> {
        let device = self.ensure_loop_device(volume)?;
        let AccessType::Mount { mount_flags, .. } = &record.capability.access_type else {
            return Ok(());
        };
        if let Some(mounted) = self.mount_at(&record.staging_path)? {
            if Path::new(&mounted.source) != device {
                return Err(DriverError::FailedPrecondition(format!(
                    "{} is already a mount of {}",
                    record.staging_path.display(),
                    mounted.source
                )));
            }
            return Ok(());
        }
        let wanted = record.capability.fs_kind().or(volume.fs_kind);
        let kind = self.ensure_filesystem(&device, wanted, record.formatting)?;
        let grow = self.filesystem_smaller_than_device(&device)?;
        if grow {
            self.host
                .filesystems
                .grow_offline(&device, kind)
                .map_err(DriverError::io(format!(
                    "grow the filesystem on {}",
                    device.display()
                )))?;
        }
        let mut options = MountOptions::parse(mount_flags)
            .map_err(|e| DriverError::invalid("volume_capability", e.to_string()))?;
        if kind == FsKind::Xfs {
            // Clones and restores carry the source's XFS UUID.
            options.data = [options.data.as_str(), "nouuid"]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(",");
        }
        self.host
            .mounter
            .mount(&device, &record.staging_path, kind.name(), &options)
            .map_err(DriverError::io(format!(
                "mount {} at {}",
                device.display(),
                record.staging_path.display()
            )))?;
        if grow && kind == FsKind::Xfs {
            self.host
                .filesystems
                .grow(&device, &record.staging_path, kind)
                .map_err(DriverError::io(format!(
                    "grow the filesystem on {}",
                    device.display()
                )))?;
        }
        Ok(())
    }

    /// Makes the filesystem on first use; returns the filesystem the device
    /// holds.
    fn ensure_filesystem(
        &self,
        device: &Path,
        wanted: Option<FsKind>,
        formatting: bool,
    ) -> DriverResult<FsKind> {
        self.host
            .filesystems
            .wait_unclaimed(device, UNCLAIMED_TIMEOUT)
            .map_err(DriverError::io(format!(
                "wait for {} to be free",
                device.display()
            )))?;
        let probe = self
            .host
            .filesystems
            .probe(device)
            .map_err(DriverError::io(format!("probe {}", device.display())))?;
        match (probe, wanted) {
            (Some(found), Some(wanted)) if found.kind != wanted => {
                Err(DriverError::FailedPrecondition(format!(
                    "{} holds {}, {} was asked for",
                    device.display(),
                    found.kind.name(),
                    wanted.name()
                )))
            }
            (Some(found), _) => Ok(found.kind),
            (None, _) if !formatting => Err(DriverError::FailedPrecondition(format!(
                "{} holds no ext4 or xfs filesystem and was not blank when staged",
                device.display()
            ))),
            (None, wanted) => {
                let kind = wanted.unwrap_or(FsKind::Ext4);
                self.host
                    .filesystems
                    .make(device, kind)
                    .map_err(DriverError::io(format!("mkfs.{}", kind.name())))?;
                info!(device = %device.display(), fs = kind.name(), "filesystem created");
                Ok(kind)
            }
        }
    }

    /// Whether the filesystem is smaller than its device: a restore or clone
    /// into a larger volume, or a volume expanded while it was not staged.
    fn filesystem_smaller_than_device(&self, device: &Path) -> DriverResult<bool> {
        let fs = self
            .host
            .filesystems
            .probe(device)
            .map_err(DriverError::io("probe"))?;
        let device_size = self
            .host
            .loops
            .size(device)
            .map_err(DriverError::io("device size"))?;
        Ok(fs.is_some_and(|fs| fs.size_bytes + (1 << 20) <= device_size))
    }

    fn mount_at(&self, path: &Path) -> DriverResult<Option<crate::host::MountEntry>> {
        self.host
            .mounter
            .mount_at(path)
            .map_err(DriverError::io("read the mount table"))
    }

    /// NodeUnstageVolume.
    pub fn node_unstage(
        &self,
        req: proto::NodeUnstageVolumeRequest,
    ) -> DriverResult<proto::NodeUnstageVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let staging = PathBuf::from(required("staging_target_path", &req.staging_target_path)?);
        let _lock = OperationLock::acquire(&self.state, id)?;
        let Some(record) = self.read_node_record(id)? else {
            self.detach_unrecorded_loop_devices(id)?;
            return Ok(proto::NodeUnstageVolumeResponse {});
        };
        if record.staging_path != staging {
            return Ok(proto::NodeUnstageVolumeResponse {});
        }
        for target in record.targets.keys() {
            if self.mount_at(target)?.is_some() {
                return Err(DriverError::FailedPrecondition(format!(
                    "volume {id} is still published at {}",
                    target.display()
                )));
            }
        }
        if !record.capability.is_block() && self.mount_at(&staging)?.is_some() {
            self.host
                .mounter
                .unmount(&staging)
                .map_err(DriverError::io(format!("unmount {}", staging.display())))?;
        }
        self.detach_loop_devices(id)?;
        if record.created_staging_dir {
            remove_if_present(&staging)?;
        }
        self.state.remove_volatile(&self.node_record_path(id))?;
        info!(volume_id = %id, "volume unstaged");
        Ok(proto::NodeUnstageVolumeResponse {})
    }

    /// A crash between attaching the loop device and writing the node
    /// record leaves a device no record names: detach it, unless another
    /// node plugin on this host has the volume staged.
    fn detach_unrecorded_loop_devices(&self, id: &str) -> DriverResult<()> {
        if !super::ids::is_volume_id(id) || !super::quiesce::stagings(self, id)?.is_empty() {
            return Ok(());
        }
        self.detach_loop_devices(id)
    }

    fn detach_loop_devices(&self, id: &str) -> DriverResult<()> {
        let image = self.state.image_path(id);
        let devices = self
            .host
            .loops
            .find(&image)
            .map_err(DriverError::io("list loop devices"))?;
        for device in devices {
            self.host
                .loops
                .detach(&device)
                .map_err(DriverError::io(format!("detach {}", device.display())))?;
        }
        Ok(())
    }

    /// NodePublishVolume.
    pub fn node_publish(
        &self,
        req: proto::NodePublishVolumeRequest,
    ) -> DriverResult<proto::NodePublishVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let target = PathBuf::from(required("target_path", &req.target_path)?);
        let staging = PathBuf::from(required("staging_target_path", &req.staging_target_path)?);
        let capability = Capability::required("volume_capability", req.volume_capability.as_ref())?;
        if let Some(reason) = capability.unsupported_reason() {
            return Err(DriverError::invalid("volume_capability", reason));
        }
        let readonly = req.readonly || capability.mode.read_only();
        let _lock = OperationLock::acquire(&self.state, id)?;
        let volume = self
            .read_volume(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        let mut record = self.staged_record(id, &staging)?;
        if capability.is_block() != record.capability.is_block() {
            return Err(DriverError::FailedPrecondition(format!(
                "volume {id} is staged for {} access",
                if record.capability.is_block() {
                    "block"
                } else {
                    "mount"
                }
            )));
        }
        match record.targets.get(&target) {
            Some(existing)
                if existing.readonly != readonly || existing.capability != capability =>
            {
                return Err(DriverError::AlreadyExists(format!(
                    "volume {id} is published at {} with a different capability or readonly flag",
                    target.display()
                )));
            }
            Some(_) => {}
            None => {
                check_single_publication(&record, &capability)?;
                let created_target = ensure_target(&target, capability.is_block())?;
                let publication = TargetRecord {
                    readonly,
                    capability: capability.clone(),
                    created_target,
                };
                record.targets.insert(target.clone(), publication);
                self.write_node_record(&record)?;
            }
        }
        self.ensure_published(&volume, &record, &target, readonly)?;
        info!(volume_id = %id, target = %target.display(), readonly, "volume published");
        Ok(proto::NodePublishVolumeResponse {})
    }

    fn staged_record(&self, id: &str, staging: &Path) -> DriverResult<NodeVolumeRecord> {
        let record = self.read_node_record(id)?;
        let staged = record
            .filter(|r| r.staging_path == staging)
            .ok_or_else(|| {
                DriverError::FailedPrecondition(format!(
                    "volume {id} is not staged at {}",
                    staging.display()
                ))
            })?;
        if !staged.capability.is_block() && self.mount_at(staging)?.is_none() {
            return Err(DriverError::FailedPrecondition(format!(
                "volume {id}: the staging mount at {} is gone; stage it again",
                staging.display()
            )));
        }
        Ok(staged)
    }

    fn ensure_published(
        &self,
        volume: &VolumeRecord,
        record: &NodeVolumeRecord,
        target: &Path,
        readonly: bool,
    ) -> DriverResult<()> {
        if self.mount_at(target)?.is_some() {
            return Ok(());
        }
        let source = if record.capability.is_block() {
            self.ensure_loop_device(volume)?
        } else {
            record.staging_path.clone()
        };
        self.host
            .mounter
            .bind(&source, target, readonly)
            .map_err(DriverError::io(format!(
                "bind {} at {}",
                source.display(),
                target.display()
            )))
    }

    /// NodeUnpublishVolume: unmounts the target and removes what the driver
    /// created there.
    pub fn node_unpublish(
        &self,
        req: proto::NodeUnpublishVolumeRequest,
    ) -> DriverResult<proto::NodeUnpublishVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let target = PathBuf::from(required("target_path", &req.target_path)?);
        let _lock = OperationLock::acquire(&self.state, id)?;
        let mut record = self.read_node_record(id)?;
        if self.mount_at(&target)?.is_some() {
            self.host
                .mounter
                .unmount(&target)
                .map_err(DriverError::io(format!("unmount {}", target.display())))?;
        }
        let publication = record.as_mut().and_then(|r| r.targets.remove(&target));
        if publication.as_ref().is_some_and(|p| p.created_target) {
            remove_if_present(&target)?;
        }
        if let Some(record) = record.filter(|_| publication.is_some()) {
            self.write_node_record(&record)?;
            info!(volume_id = %id, target = %target.display(), "volume unpublished");
        }
        Ok(proto::NodeUnpublishVolumeResponse {})
    }

    /// NodeGetVolumeStats.
    pub fn node_get_volume_stats(
        &self,
        req: proto::NodeGetVolumeStatsRequest,
    ) -> DriverResult<proto::NodeGetVolumeStatsResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let path = PathBuf::from(required("volume_path", &req.volume_path)?);
        let record = self
            .read_node_record(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        let not_found = || DriverError::PathNotFound {
            volume_id: id.into(),
            path: path.display().to_string(),
        };
        if (path != record.staging_path && !record.targets.contains_key(&path)) || !path.exists() {
            return Err(not_found());
        }
        let mounted = self.mount_at(&path)?.is_some();
        let condition = if mounted || record.capability.is_block() && path == record.staging_path {
            proto::VolumeCondition {
                abnormal: false,
                message: "volume is healthy".into(),
            }
        } else {
            proto::VolumeCondition {
                abnormal: true,
                message: format!("{} is not mounted", path.display()),
            }
        };
        let usage = if record.capability.is_block() {
            self.block_usage(id)?
        } else {
            filesystem_usage(&path)?
        };
        Ok(proto::NodeGetVolumeStatsResponse {
            usage,
            volume_condition: Some(condition),
        })
    }

    fn block_usage(&self, id: &str) -> DriverResult<Vec<proto::VolumeUsage>> {
        let image = self.state.image_path(id);
        let device = self
            .host
            .loops
            .find(&image)
            .map_err(DriverError::io("list loop devices"))?;
        let size = match device.first() {
            Some(device) => self
                .host
                .loops
                .size(device)
                .map_err(DriverError::io("device size"))?,
            None => crate::host::image::size(&image).map_err(DriverError::io("image size"))?,
        };
        Ok(vec![proto::VolumeUsage {
            available: 0,
            total: size as i64,
            used: 0,
            unit: proto::volume_usage::Unit::Bytes as i32,
        }])
    }

    /// NodeExpandVolume: the loop device picks up the grown image, then the
    /// filesystem is grown online.
    pub fn node_expand_volume(
        &self,
        req: proto::NodeExpandVolumeRequest,
    ) -> DriverResult<proto::NodeExpandVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let path = PathBuf::from(required("volume_path", &req.volume_path)?);
        let _lock = OperationLock::acquire(&self.state, id)?;
        let record = self
            .read_node_record(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        if path != record.staging_path && !record.targets.contains_key(&path) {
            return Err(DriverError::PathNotFound {
                volume_id: id.into(),
                path: path.display().to_string(),
            });
        }
        let image = self.state.image_path(id);
        let devices = self
            .host
            .loops
            .find(&image)
            .map_err(DriverError::io("list loop devices"))?;
        let device = devices.into_iter().next().ok_or_else(|| {
            DriverError::FailedPrecondition(format!(
                "volume {id} has no loop device; stage it first"
            ))
        })?;
        let size = self
            .host
            .loops
            .refresh_capacity(&device)
            .map_err(DriverError::io(format!("resize {}", device.display())))?;
        let required_bytes = req
            .capacity_range
            .as_ref()
            .map_or(0, |r| r.required_bytes.max(0) as u64);
        if required_bytes > size {
            return Err(DriverError::OutOfRange(format!(
                "volume {id} is {size} bytes; expand it with ControllerExpandVolume first"
            )));
        }
        if !record.capability.is_block() {
            let kind = self
                .host
                .filesystems
                .probe(&device)
                .map_err(DriverError::io("probe"))?
                .map_or(FsKind::Ext4, |f| f.kind);
            self.host
                .filesystems
                .grow(&device, &record.staging_path, kind)
                .map_err(DriverError::io(format!("grow the filesystem of {id}")))?;
        }
        info!(volume_id = %id, bytes = size, "volume expanded on node");
        Ok(proto::NodeExpandVolumeResponse {
            capacity_bytes: size as i64,
        })
    }

    /// NodeGetInfo.
    pub fn node_get_info(&self) -> proto::NodeGetInfoResponse {
        proto::NodeGetInfoResponse {
            node_id: self.config.node_id.clone(),
            max_volumes_per_node: self.config.max_volumes_per_node,
            accessible_topology: Some(self.topology()),
        }
    }
}

fn check_same_stage(
    existing: NodeVolumeRecord,
    staging: &Path,
    capability: &Capability,
) -> DriverResult<NodeVolumeRecord> {
    if existing.staging_path != staging {
        return Err(DriverError::FailedPrecondition(format!(
            "volume {} is already staged at {}",
            existing.volume_id,
            existing.staging_path.display()
        )));
    }
    if existing.capability.access_type != capability.access_type {
        return Err(DriverError::AlreadyExists(format!(
            "volume {} is staged at {} with a different capability",
            existing.volume_id,
            staging.display()
        )));
    }
    Ok(existing)
}

fn check_single_publication(
    record: &NodeVolumeRecord,
    capability: &Capability,
) -> DriverResult<()> {
    let single =
        capability.mode.single_publication() || record.capability.mode.single_publication();
    if single && !record.targets.is_empty() {
        return Err(DriverError::FailedPrecondition(format!(
            "volume {} is SINGLE_NODE_SINGLE_WRITER and already published at {:?}",
            record.volume_id,
            record.targets.keys().collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// Creates the directory if it is missing; returns whether it did.
fn ensure_dir(path: &Path) -> DriverResult<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(path).map_err(DriverError::io(format!("create {}", path.display())))?;
    Ok(true)
}

/// Creates the publish target (a directory, or a file for block access) if
/// it is missing; returns whether it did.
fn ensure_target(path: &Path, block: bool) -> DriverResult<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(DriverError::io(format!("create {}", parent.display())))?;
    }
    let made = if block {
        fs::File::create(path).map(drop)
    } else {
        fs::create_dir(path)
    };
    made.map_err(DriverError::io(format!("create {}", path.display())))?;
    Ok(true)
}

fn remove_if_present(path: &Path) -> DriverResult<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(DriverError::io(format!("remove {}", path.display())))
}

fn filesystem_usage(path: &Path) -> DriverResult<Vec<proto::VolumeUsage>> {
    let stat = nix::sys::statvfs::statvfs(path)
        .map_err(|e| DriverError::io(format!("statvfs {}", path.display()))(e.into()))?;
    let fragment = stat.fragment_size() as i64;
    let total = stat.blocks() as i64 * fragment;
    let inodes = stat.files() as i64;
    Ok(vec![
        proto::VolumeUsage {
            available: stat.blocks_available() as i64 * fragment,
            total,
            used: total - stat.blocks_free() as i64 * fragment,
            unit: proto::volume_usage::Unit::Bytes as i32,
        },
        proto::VolumeUsage {
            available: stat.files_available() as i64,
            total: inodes,
            used: inodes - stat.files_free() as i64,
            unit: proto::volume_usage::Unit::Inodes as i32,
        },
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::driver::{Driver, DriverConfig};
    use crate::host::mounter::MountCall;
    use crate::host::{Filesystems, FsInfo, Host, LoopDevices, RecordingMounter};

    /// Loop devices that exist only in memory.
    #[derive(Default)]
    struct FakeLoops {
        bound: Mutex<HashMap<PathBuf, PathBuf>>,
    }

    impl LoopDevices for FakeLoops {
        fn attach(&self, image: &Path, _direct_io: bool) -> io::Result<PathBuf> {
            let mut bound = self.bound.lock().unwrap();
            let device = PathBuf::from(format!("/dev/fakeloop{}", bound.len()));
            bound.insert(device.clone(), image.to_path_buf());
            Ok(device)
        }
        fn find(&self, image: &Path) -> io::Result<Vec<PathBuf>> {
            let bound = self.bound.lock().unwrap();
            Ok(bound
                .iter()
                .filter(|(_, i)| *i == image)
                .map(|(d, _)| d.clone())
                .collect())
        }
        fn detach(&self, device: &Path) -> io::Result<()> {
            self.bound.lock().unwrap().remove(device);
            Ok(())
        }
        fn refresh_capacity(&self, device: &Path) -> io::Result<u64> {
            self.size(device)
        }
        fn size(&self, device: &Path) -> io::Result<u64> {
            let image = self
                .bound
                .lock()
                .unwrap()
                .get(device)
                .cloned()
                .ok_or(io::ErrorKind::NotFound)?;
            Ok(std::fs::metadata(image)?.len())
        }
        fn set_direct_io(&self, _: &Path, _: bool) -> io::Result<()> {
            Ok(())
        }
    }

    /// Filesystems that exist only in memory.
    #[derive(Default)]
    struct FakeFilesystems {
        made: Mutex<HashMap<PathBuf, FsKind>>,
    }

    impl Filesystems for FakeFilesystems {
        fn is_blank(&self, device: &Path, _: usize) -> io::Result<bool> {
            Ok(!self.made.lock().unwrap().contains_key(device))
        }
        fn probe(&self, device: &Path) -> io::Result<Option<FsInfo>> {
            let made = self.made.lock().unwrap();
            Ok(made.get(device).map(|kind| FsInfo {
                kind: *kind,
                size_bytes: 64 << 20,
            }))
        }
        fn wait_unclaimed(&self, _: &Path, _: std::time::Duration) -> io::Result<()> {
            Ok(())
        }
        fn make(&self, device: &Path, kind: FsKind) -> io::Result<()> {
            self.made.lock().unwrap().insert(device.to_path_buf(), kind);
            Ok(())
        }
        fn grow(&self, _: &Path, _: &Path, _: FsKind) -> io::Result<()> {
            Ok(())
        }
        fn grow_offline(&self, _: &Path, _: FsKind) -> io::Result<()> {
            Ok(())
        }
        fn freeze(&self, _: &Path) -> io::Result<()> {
            Ok(())
        }
        fn thaw(&self, _: &Path) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stage_and_publish_decisions_with_recording_host() {
        let dir = tempfile::Builder::new()
            .prefix("vp-node-unit")
            .tempdir()
            .unwrap();
        let mounter = Arc::new(RecordingMounter::default());
        let filesystems = Arc::new(FakeFilesystems::default());
        let loops = Arc::new(FakeLoops::default());
        let host = Host {
            mounter: mounter.clone(),
            loops: loops.clone(),
            filesystems: filesystems.clone(),
        };
        let mut config = DriverConfig::new("n1", dir.path().join("state"));
        config.sync_state = false;
        let driver = Driver::new(config, host).unwrap();
        let core = driver.core();
        let cap = Capability {
            access_type: AccessType::Mount {
                fs_type: "xfs".into(),
                mount_flags: vec!["noatime".into()],
            },
            mode: crate::driver::capability::AccessMode::SingleNodeWriter,
        };
        let create = proto::CreateVolumeRequest {
            name: "pvc-unit".into(),
            capacity_range: Some(proto::CapacityRange {
                required_bytes: 300 << 20,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![cap.to_proto()],
            ..Default::default()
        };
        let volume_id = core
            .create_volume(create)
            .unwrap()
            .volume
            .unwrap()
            .volume_id;
        let staging = dir.path().join("staging");
        let stage = proto::NodeStageVolumeRequest {
            volume_id: volume_id.clone(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(cap.to_proto()),
            ..Default::default()
        };
        core.node_stage(stage.clone()).unwrap();
        let device = PathBuf::from("/dev/fakeloop0");
        assert_eq!(
            filesystems.made.lock().unwrap().get(&device),
            Some(&FsKind::Xfs)
        );
        let MountCall::Mount {
            fs_type,
            options,
            target,
            ..
        } = &mounter.calls()[0]
        else {
            panic!("first call is the staging mount: {:?}", mounter.calls());
        };
        assert_eq!((fs_type.as_str(), target), ("xfs", &staging));
        assert_eq!(options.data, "nouuid");
        assert_eq!(options.flags, libc::MS_NOATIME);
        core.node_stage(stage).unwrap();
        assert_eq!(mounter.calls().len(), 1, "a repeated stage changes nothing");

        let target = dir.path().join("pod/volume");
        let publish = |readonly| proto::NodePublishVolumeRequest {
            volume_id: volume_id.clone(),
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(cap.to_proto()),
            readonly,
            ..Default::default()
        };
        core.node_publish(publish(true)).unwrap();
        assert_eq!(
            mounter.calls()[1],
            MountCall::Bind {
                source: staging.clone(),
                target: target.clone(),
                read_only: true
            }
        );
        let err = core.node_publish(publish(false)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::AlreadyExists);
        let unstage = proto::NodeUnstageVolumeRequest {
            volume_id: volume_id.clone(),
            staging_target_path: staging.display().to_string(),
        };
        assert_eq!(
            core.node_unstage(unstage.clone()).unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
        core.node_unpublish(proto::NodeUnpublishVolumeRequest {
            volume_id: volume_id.clone(),
            target_path: target.display().to_string(),
        })
        .unwrap();
        assert!(!target.exists(), "the target the driver created is removed");
        core.node_unstage(unstage).unwrap();
        assert_eq!(
            mounter.calls().last(),
            Some(&MountCall::Unmount {
                target: staging.clone()
            })
        );
        assert!(
            loops.bound.lock().unwrap().is_empty(),
            "the loop device is detached"
        );
        assert!(!staging.exists());
    }
}
