//! The local static provisioner (what sig-storage-local-static-provisioner does), as a
//! function the node agent calls periodically: every mount point directly under a discovery
//! directory (default `/mnt/disks`) becomes a local PV pinned to this node; for block mode,
//! every block device there.
//!
//! The PV is named `local-pv-<fnv32a(entry name, node, class)>` as upstream, so discovery is
//! idempotent and a PV deleted after its release is created again on the next pass.
//! Capacity is the filesystem's size (the device's size in block mode); node affinity is
//! `kubernetes.io/hostname In [<the node's hostname label>]`; the annotation
//! `pv.kubernetes.io/provisioned-by: local-volume-provisioner-<node>-<node uid>` marks the
//! PVs this node owns. Released PVs of this node with reclaim policy Delete are cleaned (the
//! filesystem emptied) and deleted here, as upstream's provisioner does — the PV binder
//! leaves externally provisioned PVs to their provisioner.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    LocalVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PersistentVolume, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use volplane_api::wellknown::{ANN_PROVISIONED_BY, LABEL_HOSTNAME};

use crate::Error;
use crate::matching::VolumeMode;
use crate::pv_binder::is_not_found;
use crate::reclaim::scrub_directory;

/// What to discover and how to describe it.
#[derive(Debug, Clone)]
pub struct LocalStaticConfig {
    /// The directory whose entries are volumes (`/mnt/disks`).
    pub discovery_dir: PathBuf,
    /// The StorageClass the PVs get (`local-storage`).
    pub storage_class: String,
    /// Filesystem: mount points are volumes; Block: block devices are.
    pub volume_mode: VolumeMode,
    /// The PVs' reclaim policy (`Delete`, as a StorageClass defaults it).
    pub reclaim_policy: String,
}

impl Default for LocalStaticConfig {
    fn default() -> Self {
        Self {
            discovery_dir: PathBuf::from("/mnt/disks"),
            storage_class: "local-storage".into(),
            volume_mode: VolumeMode::Filesystem,
            reclaim_policy: "Delete".into(),
        }
    }
}

/// What one discovery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// PVs created (names).
    pub created: Vec<String>,
    /// Volumes whose PV already existed (names).
    pub existing: Vec<String>,
    /// Released PVs cleaned and deleted (names).
    pub cleaned: Vec<String>,
    /// Entries that are not volumes, or could not be used, and why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Discovers the local volumes of `node_name` under `config.discovery_dir`, creates a PV for
/// each that has none, and cleans up this node's released PVs.
pub async fn discover_local_volumes(
    client: &Client,
    node_name: &str,
    config: &LocalStaticConfig,
) -> Result<Report, Error> {
    let node = Api::<Node>::all(client.clone()).get_opt(node_name).await?;
    let owner = provisioner_name(node_name, node.as_ref());
    let hostname = node
        .as_ref()
        .and_then(|n| n.metadata.labels.as_ref()?.get(LABEL_HOSTNAME).cloned())
        .unwrap_or_else(|| node_name.to_string());
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let mut report = Report::default();
    clean_released(&api, &owner, &mut report).await?;
    let found = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || find_volumes(&config))
            .await
            .map_err(|e| Error::Invalid(format!("discovery task: {e}")))?
    };
    let found = found.map_err(|e| {
        let dir = config.discovery_dir.display();
        Error::Invalid(format!("reading the discovery directory {dir}: {e}"))
    })?;
    for entry in found {
        match entry {
            Err((path, why)) => report.skipped.push((path, why)),
            Ok(volume) => {
                let pv = local_pv(&volume, node_name, &hostname, &owner, config);
                let name = pv.metadata.name.clone().unwrap_or_default();
                match api.create(&PostParams::default(), &pv).await {
                    Ok(_) => report.created.push(name),
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        report.existing.push(name)
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    Ok(report)
}

/// Upstream's provisioner name, which the PVs carry in `pv.kubernetes.io/provisioned-by`.
pub fn provisioner_name(node_name: &str, node: Option<&Node>) -> String {
    match node.and_then(|n| n.metadata.uid.as_deref()) {
        Some(uid) => format!("local-volume-provisioner-{node_name}-{uid}"),
        None => format!("local-volume-provisioner-{node_name}"),
    }
}

/// Upstream's `generatePVName`: FNV-1a (32 bit) over the entry name, node and class.
pub fn pv_name(entry: &str, node: &str, class: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in entry.bytes().chain(node.bytes()).chain(class.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("local-pv-{hash:x}")
}

/// A volume found on this node.
#[derive(Debug, Clone)]
struct LocalVolume {
    /// The entry's name in the discovery directory.
    entry: String,
    /// Its full path.
    path: PathBuf,
    /// Its size in bytes.
    capacity: u64,
}

type Found = Vec<Result<LocalVolume, (PathBuf, String)>>;

/// The entries of the discovery directory, each a volume or the reason it is not one.
fn find_volumes(config: &LocalStaticConfig) -> io::Result<Found> {
    let mounts = mount_points()?;
    let mut found = Vec::new();
    let mut entries: Vec<_> =
        std::fs::read_dir(&config.discovery_dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = config.discovery_dir.join(entry.file_name());
        let entry = entry.file_name().to_string_lossy().into_owned();
        let volume = match config.volume_mode {
            VolumeMode::Filesystem => filesystem_volume(&path, &mounts),
            VolumeMode::Block => block_volume(&path),
        };
        found.push(
            volume
                .map(|capacity| LocalVolume {
                    entry,
                    path: path.clone(),
                    capacity,
                })
                .map_err(|why| (path, why)),
        );
    }
    Ok(found)
}

/// The size of the filesystem mounted at `path`; an error unless `path` is a mount point.
fn filesystem_volume(path: &Path, mounts: &[PathBuf]) -> Result<u64, String> {
    let canonical = path.canonicalize().map_err(|e| e.to_string())?;
    if !canonical.is_dir() {
        return Err("not a directory".into());
    }
    if !mounts.contains(&canonical) {
        return Err(format!(
            "path {:?} is not an actual mountpoint",
            path.display().to_string()
        ));
    }
    let stat = nix::sys::statvfs::statvfs(&canonical).map_err(|e| e.to_string())?;
    Ok(stat.blocks() * stat.fragment_size())
}

/// The size of the block device at `path` (a device node or a link to one).
fn block_volume(path: &Path) -> Result<u64, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.file_type().is_block_device() {
        return Err("not a block device".into());
    }
    let rdev = metadata.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let sectors = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/size"))
        .map_err(|e| e.to_string())?;
    let sectors: u64 = sectors
        .trim()
        .parse()
        .map_err(|_| "unreadable device size")?;
    Ok(sectors * 512)
}

/// Every mount point of this mount namespace (`/proc/self/mountinfo`, octal escapes
/// decoded).
fn mount_points() -> io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mount_field(field)))
        .collect())
}

fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The PV for a discovered volume.
fn local_pv(
    volume: &LocalVolume,
    node_name: &str,
    hostname: &str,
    owner: &str,
    config: &LocalStaticConfig,
) -> PersistentVolume {
    let term = NodeSelectorTerm {
        match_expressions: Some(vec![NodeSelectorRequirement {
            key: LABEL_HOSTNAME.into(),
            operator: "In".into(),
            values: Some(vec![hostname.to_string()]),
        }]),
        match_fields: None,
    };
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(pv_name(&volume.entry, node_name, &config.storage_class)),
            annotations: Some(BTreeMap::from([(
                ANN_PROVISIONED_BY.to_string(),
                owner.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([(
                "storage".to_string(),
                Quantity(volume.capacity.to_string()),
            )])),
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            persistent_volume_reclaim_policy: Some(config.reclaim_policy.clone()),
            storage_class_name: Some(config.storage_class.clone()),
            volume_mode: Some(config.volume_mode.to_string()),
            local: Some(LocalVolumeSource {
                path: volume.path.to_string_lossy().into_owned(),
                fs_type: None,
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![term],
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

/// Upstream's deleter: this node's Released PVs with policy Delete get their filesystem
/// emptied, then the PV is deleted (the next discovery creates it again, Available).
async fn clean_released(
    api: &Api<PersistentVolume>,
    owner: &str,
    report: &mut Report,
) -> Result<(), Error> {
    let volumes = api.list(&ListParams::default()).await?;
    for pv in volumes
        .items
        .into_iter()
        .filter(|pv| needs_cleaning(pv, owner))
    {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let spec = pv.spec.as_ref();
        let path = spec
            .and_then(|s| s.local.as_ref())
            .map(|l| PathBuf::from(&l.path));
        let block = spec.and_then(|s| s.volume_mode.as_deref()) == Some("Block");
        let Some(path) = path else { continue };
        if block {
            // Wiping a device is not done here: the PV stays Released for an administrator.
            report
                .skipped
                .push((path, "cleaning block volumes is not supported".into()));
            continue;
        }
        let scrubbed = tokio::task::spawn_blocking({
            let path = path.clone();
            move || scrub_directory(&path)
        })
        .await
        .map_err(|e| Error::Invalid(format!("cleanup task: {e}")))?;
        if let Err(error) = scrubbed {
            report
                .skipped
                .push((path, format!("cleanup failed: {error}")));
            continue;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Err(error) if !is_not_found(&error) => return Err(error.into()),
            _ => report.cleaned.push(name),
        }
    }
    Ok(())
}

fn needs_cleaning(pv: &PersistentVolume, owner: &str) -> bool {
    let owned = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_PROVISIONED_BY))
        .is_some_and(|by| by == owner);
    let spec = pv.spec.as_ref();
    let delete = spec.and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Delete");
    let released = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    owned && delete && released && pv.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pv_names_are_upstreams_fnv_hash() {
        // FNV-1a 32 of "" is the offset basis.
        assert_eq!(pv_name("", "", ""), "local-pv-811c9dc5");
        // FNV-1a 32 of "a" is 0xe40c292c.
        assert_eq!(pv_name("a", "", ""), "local-pv-e40c292c");
        assert_eq!(
            pv_name("disk1", "node-a", "local-storage"),
            pv_name("disk1", "node-a", "local-storage")
        );
        assert_ne!(
            pv_name("disk1", "node-a", "local-storage"),
            pv_name("disk1", "node-b", "local-storage")
        );
    }

    #[test]
    fn mount_fields_decode_octal_escapes() {
        assert_eq!(unescape_mount_field("/mnt/my\\040disk"), "/mnt/my disk");
        assert_eq!(unescape_mount_field("/plain"), "/plain");
    }
}
