//! The Controller service of the built-in driver: volumes, publications,
//! snapshots, expansion, capacity.

use std::collections::HashMap;
use std::time::SystemTime;

use tracing::info;

use super::Core;
use super::capability::Capability;
use super::capacity::{self, Limits};
use super::error::{DriverError, DriverResult};
use super::ids;
use super::lock::OperationLock;
use super::pagination;
use super::parameters;
use super::quiesce;
use super::state::{ContentSource, SnapshotRecord, VolumeRecord};
use crate::host::{FsKind, image};
use crate::proto::{self, controller_service_capability::rpc::Type as Rpc};

/// The capabilities ControllerGetCapabilities reports.
pub const CAPABILITIES: &[Rpc] = &[
    Rpc::CreateDeleteVolume,
    Rpc::PublishUnpublishVolume,
    Rpc::ListVolumes,
    Rpc::GetCapacity,
    Rpc::CreateDeleteSnapshot,
    Rpc::ListSnapshots,
    Rpc::CloneVolume,
    Rpc::PublishReadonly,
    Rpc::ExpandVolume,
    Rpc::ListVolumesPublishedNodes,
    Rpc::VolumeCondition,
    Rpc::GetVolume,
    Rpc::SingleNodeMultiWriter,
    Rpc::ModifyVolume,
    Rpc::GetSnapshot,
];

/// The smallest block volume.
const MINIMUM_BLOCK_SIZE: u64 = capacity::ALIGNMENT;

/// A validated CreateVolume request.
struct NewVolume {
    id: String,
    name: String,
    capabilities: Vec<Capability>,
    fs_kind: Option<FsKind>,
    parameters: std::collections::BTreeMap<String, String>,
    mutable_parameters: std::collections::BTreeMap<String, String>,
    source: Option<ContentSource>,
}

impl Core {
    /// CreateVolume.
    pub fn create_volume(
        &self,
        req: proto::CreateVolumeRequest,
    ) -> DriverResult<proto::CreateVolumeResponse> {
        let new = self.check_create_volume(&req)?;
        let _lock = OperationLock::acquire(&self.state, &new.id)?;
        if let Some(existing) = self.read_volume(&new.id)? {
            return self.existing_volume(existing, &new, req.capacity_range.as_ref());
        }
        let limits = self.volume_limits(&new.capabilities, new.fs_kind);
        let record = match &new.source {
            None => {
                let size = capacity::resolve(req.capacity_range.as_ref(), limits)?;
                let image_path = self.state.image_path(&new.id);
                image::create_sparse(&image_path, size).map_err(DriverError::io(format!(
                    "create image {}",
                    image_path.display()
                )))?;
                self.volume_record(new, size)
            }
            Some(source) => {
                let size = self.populate(&new.id, source, req.capacity_range.as_ref(), limits)?;
                self.volume_record(new, size)
            }
        };
        self.state
            .write(&self.state.volume_path(&record.volume_id), &record)?;
        info!(volume_id = %record.volume_id, name = %record.name, bytes = record.capacity_bytes, "volume created");
        Ok(proto::CreateVolumeResponse {
            volume: Some(self.volume_proto(&record)),
        })
    }

    fn check_create_volume(&self, req: &proto::CreateVolumeRequest) -> DriverResult<NewVolume> {
        ids::check_name("name", &req.name)?;
        let capabilities =
            Capability::required_list("volume_capabilities", &req.volume_capabilities)?;
        if let Some(reason) = capabilities.iter().find_map(Capability::unsupported_reason) {
            return Err(DriverError::invalid("volume_capabilities", reason));
        }
        let fs_kind = self.requested_fs_kind(&req.parameters, &capabilities)?;
        let mutable_parameters = parameters::mutable_parameters(&req.mutable_parameters)?;
        self.check_requisite_topology(req.accessibility_requirements.as_ref())?;
        let source = content_source(req.volume_content_source.as_ref())?;
        Ok(NewVolume {
            id: ids::volume_id(&req.name),
            name: req.name.clone(),
            capabilities,
            fs_kind,
            parameters: req.parameters.clone().into_iter().collect(),
            mutable_parameters,
            source,
        })
    }

    fn requested_fs_kind(
        &self,
        params: &HashMap<String, String>,
        capabilities: &[Capability],
    ) -> DriverResult<Option<FsKind>> {
        let from_parameters = parameters::volume_parameters(params)?;
        let mut kinds = capabilities.iter().filter_map(Capability::fs_kind);
        let from_capabilities = kinds.next();
        if kinds.any(|k| Some(k) != from_capabilities) {
            return Err(DriverError::invalid(
                "volume_capabilities",
                "different fs_type values",
            ));
        }
        match (from_parameters, from_capabilities) {
            (Some(p), Some(c)) if p != c => Err(DriverError::invalid(
                "parameters",
                format!(
                    "{} is {}, the capability asks for {}",
                    parameters::FSTYPE,
                    p.name(),
                    c.name()
                ),
            )),
            (p, c) => Ok(p.or(c)),
        }
    }

    fn check_requisite_topology(
        &self,
        req: Option<&proto::TopologyRequirement>,
    ) -> DriverResult<()> {
        let Some(requirement) = req else {
            return Ok(());
        };
        let ours = self.topology();
        if requirement.requisite.is_empty() || requirement.requisite.contains(&ours) {
            return Ok(());
        }
        Err(DriverError::ResourceExhausted(format!(
            "volumes can only be made accessible from {}={}",
            super::TOPOLOGY_KEY,
            self.topology_host
        )))
    }

    fn volume_limits(&self, capabilities: &[Capability], fs_kind: Option<FsKind>) -> Limits {
        let mount = capabilities.iter().any(|c| !c.is_block());
        let minimum = if mount {
            fs_kind.unwrap_or(FsKind::Ext4).minimum_size()
        } else {
            MINIMUM_BLOCK_SIZE
        };
        Limits {
            default: self.config.default_capacity,
            minimum,
            maximum: self.config.max_volume_size,
        }
    }

    fn existing_volume(
        &self,
        existing: VolumeRecord,
        new: &NewVolume,
        range: Option<&proto::CapacityRange>,
    ) -> DriverResult<proto::CreateVolumeResponse> {
        let same_kind = |block: bool| existing.capabilities.iter().any(|c| c.is_block() == block);
        let compatible = capacity::satisfies(existing.capacity_bytes, range)
            && existing.content_source == new.source
            && existing.parameters == new.parameters
            && existing.fs_kind == new.fs_kind
            && new.capabilities.iter().all(|c| same_kind(c.is_block()));
        if !compatible {
            return Err(DriverError::AlreadyExists(format!(
                "volume {:?} exists ({}) with different size, source, parameters or access type",
                new.name, existing.volume_id
            )));
        }
        Ok(proto::CreateVolumeResponse {
            volume: Some(self.volume_proto(&existing)),
        })
    }

    /// Copies a snapshot or volume into the new volume's image; returns its
    /// size.
    fn populate(
        &self,
        volume_id: &str,
        source: &ContentSource,
        range: Option<&proto::CapacityRange>,
        limits: Limits,
    ) -> DriverResult<u64> {
        let (source_id, source_image, source_size) = match source {
            ContentSource::Snapshot(id) => {
                let snapshot = self
                    .read_snapshot(id)?
                    .ok_or_else(|| DriverError::SnapshotNotFound(id.clone()))?;
                (
                    id.clone(),
                    self.state.snapshot_image_path(id),
                    snapshot.size_bytes,
                )
            }
            ContentSource::Volume(id) => {
                let volume = self
                    .read_volume(id)?
                    .ok_or_else(|| DriverError::VolumeNotFound(id.clone()))?;
                (id.clone(), self.state.image_path(id), volume.capacity_bytes)
            }
        };
        let _source_lock = OperationLock::acquire(&self.state, &source_id)?;
        let limits = Limits {
            default: source_size,
            minimum: limits.minimum.max(source_size),
            ..limits
        };
        let size = capacity::resolve(range, limits).map_err(|e| match e {
            DriverError::OutOfRange(m) => {
                DriverError::OutOfRange(format!("{m} (the source is {source_size} bytes)"))
            }
            other => other,
        })?;
        let _quiesced = match source {
            ContentSource::Volume(id) => Some(quiesce::quiesce(self, id)?),
            ContentSource::Snapshot(_) => None,
        };
        let destination = self.state.image_path(volume_id);
        image::copy(
            &source_image,
            &self.state.partial_path(&destination),
            &destination,
            size,
            self.state.durable(),
        )
        .map_err(DriverError::io(format!(
            "copy {} into {volume_id}",
            source_image.display()
        )))?;
        Ok(size)
    }

    fn volume_record(&self, new: NewVolume, size: u64) -> VolumeRecord {
        VolumeRecord {
            volume_id: new.id,
            name: new.name,
            capacity_bytes: size,
            capabilities: new.capabilities,
            parameters: new.parameters,
            mutable_parameters: new.mutable_parameters,
            fs_kind: new.fs_kind,
            content_source: new.source,
            published_nodes: Default::default(),
        }
    }

    /// The wire form of a volume.
    pub fn volume_proto(&self, record: &VolumeRecord) -> proto::Volume {
        use proto::volume_content_source::{SnapshotSource, Type, VolumeSource};
        let content_source = record
            .content_source
            .as_ref()
            .map(|s| proto::VolumeContentSource {
                r#type: Some(match s {
                    ContentSource::Snapshot(id) => Type::Snapshot(SnapshotSource {
                        snapshot_id: id.clone(),
                    }),
                    ContentSource::Volume(id) => Type::Volume(VolumeSource {
                        volume_id: id.clone(),
                    }),
                }),
            });
        proto::Volume {
            capacity_bytes: record.capacity_bytes as i64,
            volume_id: record.volume_id.clone(),
            volume_context: HashMap::new(),
            content_source,
            accessible_topology: vec![self.topology()],
        }
    }

    /// Reads a volume record; ids the driver could not have issued are
    /// simply absent.
    pub fn read_volume(&self, id: &str) -> DriverResult<Option<VolumeRecord>> {
        if !ids::is_volume_id(id) {
            return Ok(None);
        }
        self.state.read(&self.state.volume_path(id))
    }

    /// Reads a snapshot record.
    pub fn read_snapshot(&self, id: &str) -> DriverResult<Option<SnapshotRecord>> {
        if !ids::is_snapshot_id(id) {
            return Ok(None);
        }
        self.state.read(&self.state.snapshot_path(id))
    }

    /// DeleteVolume.
    pub fn delete_volume(
        &self,
        req: proto::DeleteVolumeRequest,
    ) -> DriverResult<proto::DeleteVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        if !ids::is_volume_id(id) {
            return Ok(proto::DeleteVolumeResponse {});
        }
        let _lock = OperationLock::acquire(&self.state, id)?;
        if let Some(record) = self.read_volume(id)?
            && !record.published_nodes.is_empty()
        {
            return Err(DriverError::FailedPrecondition(format!(
                "volume {id} is still published to {:?}",
                record.published_nodes.keys().collect::<Vec<_>>()
            )));
        }
        if let Some(staged) = quiesce::stagings(self, id)?.first() {
            return Err(DriverError::FailedPrecondition(format!(
                "volume {id} is still staged at {}",
                staged.staging_path.display()
            )));
        }
        self.state.remove_volatile(&self.state.image_path(id))?;
        self.state.remove(&self.state.volume_path(id))?;
        info!(volume_id = %id, "volume deleted");
        Ok(proto::DeleteVolumeResponse {})
    }

    /// ControllerPublishVolume.
    pub fn controller_publish(
        &self,
        req: proto::ControllerPublishVolumeRequest,
    ) -> DriverResult<proto::ControllerPublishVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let node_id = required("node_id", &req.node_id)?;
        let capability = Capability::required("volume_capability", req.volume_capability.as_ref())?;
        if let Some(reason) = capability.unsupported_reason() {
            return Err(DriverError::invalid("volume_capability", reason));
        }
        let _lock = OperationLock::acquire(&self.state, id)?;
        let mut record = self
            .read_volume(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        let node = self.node_record(node_id)?;
        if let Some(readonly) = record.published_nodes.get(node_id) {
            if *readonly != req.readonly {
                return Err(DriverError::AlreadyExists(format!(
                    "volume {id} is published to {node_id} with readonly={readonly}"
                )));
            }
            return Ok(publish_response());
        }
        if !capability.mode.multi_node() && !record.published_nodes.is_empty() {
            return Err(DriverError::FailedPrecondition(format!(
                "volume {id} is published to {:?} and {:?} allows one node",
                record.published_nodes.keys().collect::<Vec<_>>(),
                capability.mode
            )));
        }
        if self.published_count(node_id)? >= node.max_volumes_per_node {
            return Err(DriverError::ResourceExhausted(format!(
                "node {node_id} has its maximum of {} volumes published",
                node.max_volumes_per_node
            )));
        }
        record
            .published_nodes
            .insert(node_id.to_string(), req.readonly);
        self.state.write(&self.state.volume_path(id), &record)?;
        info!(volume_id = %id, node_id, readonly = req.readonly, "volume published to node");
        Ok(publish_response())
    }

    fn node_record(&self, node_id: &str) -> DriverResult<super::state::NodeRecord> {
        if !ids::is_node_id(node_id) {
            return Err(DriverError::NodeNotFound(node_id.into()));
        }
        let path = self.state.node_dir(node_id).join("node.json");
        self.state
            .read(&path)?
            .ok_or_else(|| DriverError::NodeNotFound(node_id.into()))
    }

    fn published_count(&self, node_id: &str) -> DriverResult<i64> {
        let mut count = 0;
        for id in self.state.volume_ids()? {
            if let Some(record) = self.read_volume(&id)? {
                count += record.published_nodes.contains_key(node_id) as i64;
            }
        }
        Ok(count)
    }

    /// ControllerUnpublishVolume.
    pub fn controller_unpublish(
        &self,
        req: proto::ControllerUnpublishVolumeRequest,
    ) -> DriverResult<proto::ControllerUnpublishVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let _lock = OperationLock::acquire(&self.state, id)?;
        let Some(mut record) = self.read_volume(id)? else {
            return Ok(proto::ControllerUnpublishVolumeResponse {});
        };
        let before = record.published_nodes.len();
        if req.node_id.is_empty() {
            record.published_nodes.clear();
        } else {
            record.published_nodes.remove(&req.node_id);
        }
        if record.published_nodes.len() != before {
            self.state.write(&self.state.volume_path(id), &record)?;
            info!(volume_id = %id, node_id = %req.node_id, "volume unpublished from node");
        }
        Ok(proto::ControllerUnpublishVolumeResponse {})
    }

    /// ValidateVolumeCapabilities.
    pub fn validate_volume_capabilities(
        &self,
        req: proto::ValidateVolumeCapabilitiesRequest,
    ) -> DriverResult<proto::ValidateVolumeCapabilitiesResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let capabilities =
            Capability::required_list("volume_capabilities", &req.volume_capabilities)?;
        let record = self
            .read_volume(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        let refusal = capabilities
            .iter()
            .find_map(Capability::unsupported_reason)
            .or_else(|| self.parameters_mismatch(&record, &req.parameters));
        if let Some(message) = refusal {
            return Ok(proto::ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message,
            });
        }
        Ok(proto::ValidateVolumeCapabilitiesResponse {
            confirmed: Some(proto::validate_volume_capabilities_response::Confirmed {
                volume_context: req.volume_context,
                volume_capabilities: req.volume_capabilities,
                parameters: req.parameters,
                mutable_parameters: req.mutable_parameters,
            }),
            message: String::new(),
        })
    }

    fn parameters_mismatch(
        &self,
        record: &VolumeRecord,
        params: &HashMap<String, String>,
    ) -> Option<String> {
        let given: std::collections::BTreeMap<_, _> = params.clone().into_iter().collect();
        (!params.is_empty() && given != record.parameters)
            .then(|| "the parameters differ from those the volume was created with".to_string())
    }

    /// ListVolumes.
    pub fn list_volumes(
        &self,
        req: proto::ListVolumesRequest,
    ) -> DriverResult<proto::ListVolumesResponse> {
        let all = self.state.volume_ids()?;
        let (page, next_token) = pagination::page(
            &all,
            &req.starting_token,
            req.max_entries,
            ids::is_volume_id,
        )?;
        let mut entries = Vec::with_capacity(page.len());
        for id in page {
            let Some(record) = self.read_volume(id)? else {
                continue;
            };
            entries.push(proto::list_volumes_response::Entry {
                volume: Some(self.volume_proto(&record)),
                status: Some(proto::list_volumes_response::VolumeStatus {
                    published_node_ids: record.published_nodes.keys().cloned().collect(),
                    volume_condition: Some(self.volume_condition(&record)),
                }),
            });
        }
        Ok(proto::ListVolumesResponse {
            entries,
            next_token,
        })
    }

    /// The health of a volume as the controller sees it: its image exists
    /// and has the recorded size.
    fn volume_condition(&self, record: &VolumeRecord) -> proto::VolumeCondition {
        let message = match image::size(&self.state.image_path(&record.volume_id)) {
            Ok(size) if size >= record.capacity_bytes => return healthy(),
            Ok(size) => format!(
                "backing image is {size} bytes, expected {}",
                record.capacity_bytes
            ),
            Err(e) => format!("backing image unavailable: {e}"),
        };
        proto::VolumeCondition {
            abnormal: true,
            message,
        }
    }

    /// ControllerGetVolume.
    pub fn controller_get_volume(
        &self,
        req: proto::ControllerGetVolumeRequest,
    ) -> DriverResult<proto::ControllerGetVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let record = self
            .read_volume(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        Ok(proto::ControllerGetVolumeResponse {
            volume: Some(self.volume_proto(&record)),
            status: Some(proto::controller_get_volume_response::VolumeStatus {
                published_node_ids: record.published_nodes.keys().cloned().collect(),
                volume_condition: Some(self.volume_condition(&record)),
            }),
        })
    }

    /// GetCapacity: free space of the filesystem holding the images, on this
    /// host's topology segment; 0 elsewhere or for unsupported capabilities.
    pub fn get_capacity(
        &self,
        req: proto::GetCapacityRequest,
    ) -> DriverResult<proto::GetCapacityResponse> {
        let capabilities: Vec<Capability> = req
            .volume_capabilities
            .iter()
            .map(|c| Capability::from_proto("volume_capabilities", c))
            .collect::<DriverResult<_>>()?;
        let fs_kind = self.requested_fs_kind(&req.parameters, &capabilities)?;
        let limits = self.volume_limits(&capabilities, fs_kind);
        let elsewhere = req
            .accessible_topology
            .as_ref()
            .is_some_and(|t| *t != self.topology());
        let unsupported = capabilities
            .iter()
            .any(|c| c.unsupported_reason().is_some());
        let available = if elsewhere || unsupported {
            0
        } else {
            self.free_bytes()?
        };
        Ok(proto::GetCapacityResponse {
            available_capacity: available as i64,
            maximum_volume_size: Some(self.config.max_volume_size as i64),
            minimum_volume_size: Some(limits.minimum as i64),
        })
    }

    fn free_bytes(&self) -> DriverResult<u64> {
        let stat = nix::sys::statvfs::statvfs(&self.state.root().join("images"))
            .map_err(|e| DriverError::io("statvfs of the image directory")(e.into()))?;
        Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
    }

    /// ControllerExpandVolume: grows the backing image; the node grows the
    /// loop device and filesystem (NodeExpandVolume), online.
    pub fn controller_expand_volume(
        &self,
        req: proto::ControllerExpandVolumeRequest,
    ) -> DriverResult<proto::ControllerExpandVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        let range = req
            .capacity_range
            .as_ref()
            .ok_or(DriverError::MissingField("capacity_range"))?;
        if let Some(cap) = req.volume_capability.as_ref() {
            Capability::from_proto("volume_capability", cap)?;
        }
        let _lock = OperationLock::acquire(&self.state, id)?;
        let mut record = self
            .read_volume(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        let limits = Limits {
            default: record.capacity_bytes,
            minimum: record.capacity_bytes,
            maximum: self.config.max_volume_size,
        };
        let size = capacity::resolve(Some(range), limits)?;
        if size > record.capacity_bytes {
            let image_path = self.state.image_path(id);
            image::grow(&image_path, size)
                .map_err(DriverError::io(format!("grow {}", image_path.display())))?;
            record.capacity_bytes = size;
            self.state.write(&self.state.volume_path(id), &record)?;
            info!(volume_id = %id, bytes = size, "volume expanded");
        }
        Ok(proto::ControllerExpandVolumeResponse {
            capacity_bytes: record.capacity_bytes as i64,
            node_expansion_required: true,
        })
    }

    /// ControllerModifyVolume: changes mutable parameters, applying
    /// `directIO` at once to loop devices of a staged volume.
    pub fn controller_modify_volume(
        &self,
        req: proto::ControllerModifyVolumeRequest,
    ) -> DriverResult<proto::ControllerModifyVolumeResponse> {
        let id = required("volume_id", &req.volume_id)?;
        if req.mutable_parameters.is_empty() {
            return Err(DriverError::MissingField("mutable_parameters"));
        }
        let changes = parameters::mutable_parameters(&req.mutable_parameters)?;
        let _lock = OperationLock::acquire(&self.state, id)?;
        let mut record = self
            .read_volume(id)?
            .ok_or_else(|| DriverError::VolumeNotFound(id.into()))?;
        record.mutable_parameters.extend(changes);
        let direct_io = parameters::direct_io(&record.mutable_parameters);
        let devices = self.host.loops.find(&self.state.image_path(id));
        for device in devices.map_err(DriverError::io("list loop devices"))? {
            self.host
                .loops
                .set_direct_io(&device, direct_io)
                .map_err(DriverError::io(format!(
                    "set direct I/O on {}",
                    device.display()
                )))?;
        }
        self.state.write(&self.state.volume_path(id), &record)?;
        info!(volume_id = %id, direct_io, "volume modified");
        Ok(proto::ControllerModifyVolumeResponse {})
    }

    /// CreateSnapshot: a point-in-time copy of the volume's image, taken
    /// with the volume's filesystem frozen if it is staged.
    pub fn create_snapshot(
        &self,
        req: proto::CreateSnapshotRequest,
    ) -> DriverResult<proto::CreateSnapshotResponse> {
        let source_id = required("source_volume_id", &req.source_volume_id)?;
        ids::check_name("name", &req.name)?;
        parameters::snapshot_parameters(&req.parameters)?;
        let id = ids::snapshot_id(&req.name);
        let _lock = OperationLock::acquire(&self.state, &id)?;
        if let Some(existing) = self.read_snapshot(&id)? {
            if existing.source_volume_id != source_id {
                return Err(DriverError::AlreadyExists(format!(
                    "snapshot {:?} exists for volume {}",
                    req.name, existing.source_volume_id
                )));
            }
            return Ok(snapshot_response(&existing));
        }
        let _source_lock = OperationLock::acquire(&self.state, source_id)?;
        let volume = self
            .read_volume(source_id)?
            .ok_or_else(|| DriverError::VolumeNotFound(source_id.into()))?;
        let destination = self.state.snapshot_image_path(&id);
        let source_image = self.state.image_path(source_id);
        let created = SystemTime::now();
        {
            let _quiesced = quiesce::quiesce(self, source_id)?;
            image::copy(
                &source_image,
                &self.state.partial_path(&destination),
                &destination,
                0,
                self.state.durable(),
            )
            .map_err(DriverError::io(format!(
                "copy {source_id} into snapshot {id}"
            )))?;
        }
        let since_epoch = created
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let record = SnapshotRecord {
            snapshot_id: id.clone(),
            name: req.name.clone(),
            source_volume_id: source_id.to_string(),
            size_bytes: volume.capacity_bytes,
            created_seconds: since_epoch.as_secs() as i64,
            created_nanos: since_epoch.subsec_nanos() as i32,
        };
        self.state.write(&self.state.snapshot_path(&id), &record)?;
        info!(snapshot_id = %id, volume_id = %source_id, "snapshot created");
        Ok(snapshot_response(&record))
    }

    /// DeleteSnapshot.
    pub fn delete_snapshot(
        &self,
        req: proto::DeleteSnapshotRequest,
    ) -> DriverResult<proto::DeleteSnapshotResponse> {
        let id = required("snapshot_id", &req.snapshot_id)?;
        if !ids::is_snapshot_id(id) {
            return Ok(proto::DeleteSnapshotResponse {});
        }
        let _lock = OperationLock::acquire(&self.state, id)?;
        self.state
            .remove_volatile(&self.state.snapshot_image_path(id))?;
        self.state.remove(&self.state.snapshot_path(id))?;
        info!(snapshot_id = %id, "snapshot deleted");
        Ok(proto::DeleteSnapshotResponse {})
    }

    /// GetSnapshot.
    pub fn get_snapshot(
        &self,
        req: proto::GetSnapshotRequest,
    ) -> DriverResult<proto::GetSnapshotResponse> {
        let id = required("snapshot_id", &req.snapshot_id)?;
        let record = self
            .read_snapshot(id)?
            .ok_or_else(|| DriverError::SnapshotNotFound(id.into()))?;
        Ok(proto::GetSnapshotResponse {
            snapshot: Some(snapshot_proto(&record)),
        })
    }

    /// ListSnapshots, optionally filtered by snapshot id or source volume.
    pub fn list_snapshots(
        &self,
        req: proto::ListSnapshotsRequest,
    ) -> DriverResult<proto::ListSnapshotsResponse> {
        let candidates = if req.snapshot_id.is_empty() {
            self.state.snapshot_ids()?
        } else {
            vec![req.snapshot_id.clone()]
        };
        let mut matching = Vec::new();
        for id in candidates {
            let Some(record) = self.read_snapshot(&id)? else {
                continue;
            };
            if req.source_volume_id.is_empty() || record.source_volume_id == req.source_volume_id {
                matching.push((id, record));
            }
        }
        let ids: Vec<String> = matching.iter().map(|(id, _)| id.clone()).collect();
        let (page, next_token) = pagination::page(
            &ids,
            &req.starting_token,
            req.max_entries,
            ids::is_snapshot_id,
        )?;
        let entries = matching
            .iter()
            .filter(|(id, _)| page.contains(id))
            .map(|(_, record)| proto::list_snapshots_response::Entry {
                snapshot: Some(snapshot_proto(record)),
            })
            .collect();
        Ok(proto::ListSnapshotsResponse {
            entries,
            next_token,
        })
    }
}

impl Core {
    /// Gives the volumes whose records a journal replay restored the image
    /// their record describes: a new volume's sparse image, or the size an
    /// expansion gave it, was not yet durable when the power went. (Copies
    /// for restores and clones are durable before their record is written.)
    pub fn repair_images(&self, replayed_volumes: &[String]) -> DriverResult<()> {
        for id in replayed_volumes {
            let Some(record) = self.read_volume(id)? else {
                continue;
            };
            let image_path = self.state.image_path(id);
            let missing = !image_path.exists();
            if missing && record.content_source.is_some() {
                tracing::error!(volume_id = %id, image = %image_path.display(), "the image of a restored or cloned volume is missing");
                continue;
            }
            image::create_sparse(&image_path, record.capacity_bytes).map_err(DriverError::io(
                format!("repair image {}", image_path.display()),
            ))?;
            if missing {
                info!(volume_id = %id, "recreated the image of a volume replayed from the journal");
            }
        }
        Ok(())
    }

    /// Removes backing images no record names: what a crash between writing
    /// the image and writing the record leaves when the CO never retries.
    pub fn remove_orphan_images(&self) -> DriverResult<()> {
        let root = self.state.root().to_path_buf();
        for (dir, records, id_ok) in [
            ("images", "volumes", ids::is_volume_id as fn(&str) -> bool),
            ("snapshot-images", "snapshots", ids::is_snapshot_id),
        ] {
            let entries =
                std::fs::read_dir(root.join(dir)).map_err(DriverError::io("list images"))?;
            for entry in entries {
                let path = entry.map_err(DriverError::io("list images"))?.path();
                let Some(id) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".img"))
                else {
                    continue;
                };
                if !id_ok(id) || root.join(records).join(format!("{id}.json")).exists() {
                    continue;
                }
                let Ok(_lock) = OperationLock::acquire(&self.state, id) else {
                    continue;
                };
                if !root.join(records).join(format!("{id}.json")).exists() {
                    info!(image = %path.display(), "removing orphaned image");
                    // Not durable: an orphan a power loss brings back is removed again.
                    self.state.remove_volatile(&path)?;
                }
            }
        }
        Ok(())
    }
}

/// A REQUIRED string field.
pub fn required<'a>(field: &'static str, value: &'a str) -> DriverResult<&'a str> {
    if value.is_empty() {
        Err(DriverError::MissingField(field))
    } else {
        Ok(value)
    }
}

fn content_source(
    source: Option<&proto::VolumeContentSource>,
) -> DriverResult<Option<ContentSource>> {
    use proto::volume_content_source::Type;
    let Some(source) = source else {
        return Ok(None);
    };
    match &source.r#type {
        None => Err(DriverError::invalid(
            "volume_content_source",
            "type is required",
        )),
        Some(Type::Snapshot(s)) => Ok(Some(ContentSource::Snapshot(
            required("volume_content_source.snapshot.snapshot_id", &s.snapshot_id)?.to_string(),
        ))),
        Some(Type::Volume(v)) => Ok(Some(ContentSource::Volume(
            required("volume_content_source.volume.volume_id", &v.volume_id)?.to_string(),
        ))),
    }
}

fn publish_response() -> proto::ControllerPublishVolumeResponse {
    proto::ControllerPublishVolumeResponse {
        publish_context: HashMap::new(),
    }
}

fn healthy() -> proto::VolumeCondition {
    proto::VolumeCondition {
        abnormal: false,
        message: "volume is healthy".to_string(),
    }
}

fn snapshot_proto(record: &SnapshotRecord) -> proto::Snapshot {
    proto::Snapshot {
        size_bytes: record.size_bytes as i64,
        snapshot_id: record.snapshot_id.clone(),
        source_volume_id: record.source_volume_id.clone(),
        creation_time: Some(prost_types::Timestamp {
            seconds: record.created_seconds,
            nanos: record.created_nanos,
        }),
        ready_to_use: true,
        group_snapshot_id: String::new(),
    }
}

fn snapshot_response(record: &SnapshotRecord) -> proto::CreateSnapshotResponse {
    proto::CreateSnapshotResponse {
        snapshot: Some(snapshot_proto(record)),
    }
}
