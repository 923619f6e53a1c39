//! Making a volume's backing image consistent before it is copied
//! (snapshot, clone): a staged filesystem is frozen (FIFREEZE) for the
//! duration of the copy, a staged block device is flushed. Node records of
//! every node plugin sharing the state directory say where a volume is
//! staged on this host.

use std::fs::OpenOptions;
use std::path::PathBuf;

use tracing::warn;

use super::Core;
use super::error::{DriverError, DriverResult};
use super::state::NodeVolumeRecord;

/// Holds frozen filesystems; thaws them when dropped.
pub struct Quiesced<'a> {
    core: &'a Core,
    frozen: Vec<PathBuf>,
}

impl Drop for Quiesced<'_> {
    fn drop(&mut self) {
        for mount_point in &self.frozen {
            if let Err(e) = self.core.host.filesystems.thaw(mount_point) {
                warn!(mount_point = %mount_point.display(), error = %e, "thaw failed");
            }
        }
    }
}

/// Every node record for `volume_id` on this host.
pub fn stagings(core: &Core, volume_id: &str) -> DriverResult<Vec<NodeVolumeRecord>> {
    let mut records = Vec::new();
    for node_id in core.state.node_ids()? {
        let path = core.state.node_volume_path(&node_id, volume_id);
        if let Some(record) = core.state.read::<NodeVolumeRecord>(&path)? {
            records.push(record);
        }
    }
    Ok(records)
}

/// Freezes the staged filesystems of `volume_id` and flushes its loop
/// devices, so its image holds a consistent point in time until the
/// returned guard is dropped.
pub fn quiesce<'a>(core: &'a Core, volume_id: &str) -> DriverResult<Quiesced<'a>> {
    let mut guard = Quiesced {
        core,
        frozen: Vec::new(),
    };
    for record in stagings(core, volume_id)? {
        let mounted = core.host.mounter.mount_at(&record.staging_path);
        let mounted = mounted.map_err(DriverError::io("read the mount table"))?;
        if record.capability.is_block() || mounted.is_none() {
            continue;
        }
        core.host
            .filesystems
            .freeze(&record.staging_path)
            .map_err(DriverError::io(format!(
                "freeze {}",
                record.staging_path.display()
            )))?;
        guard.frozen.push(record.staging_path);
    }
    flush_loop_devices(core, volume_id)?;
    Ok(guard)
}

fn flush_loop_devices(core: &Core, volume_id: &str) -> DriverResult<()> {
    let image = core.state.image_path(volume_id);
    let devices = core.host.loops.find(&image);
    for device in devices.map_err(DriverError::io("list loop devices"))? {
        OpenOptions::new()
            .write(true)
            .open(&device)
            .and_then(|d| d.sync_all())
            .map_err(DriverError::io(format!("flush {}", device.display())))?;
    }
    Ok(())
}

/// Thaws every staged filesystem on this host: a driver killed during a
/// snapshot must not leave a volume frozen.
pub fn thaw_all(core: &Core) {
    let Ok(node_ids) = core.state.node_ids() else {
        return;
    };
    for node_id in node_ids {
        let dir = core.state.node_dir(&node_id).join("volumes");
        for volume_id in core.state.list_ids(&dir).unwrap_or_default() {
            let path = core.state.node_volume_path(&node_id, &volume_id);
            let Ok(Some(record)) = core.state.read::<NodeVolumeRecord>(&path) else {
                continue;
            };
            let mounted = core.host.mounter.mount_at(&record.staging_path);
            if !record.capability.is_block() && matches!(mounted, Ok(Some(_))) {
                let _ = core.host.filesystems.thaw(&record.staging_path);
            }
        }
    }
}
