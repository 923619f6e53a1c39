//! The gRPC services of the built-in driver. Each RPC runs the synchronous
//! logic of [`Core`] on the blocking thread pool (it mounts, formats and
//! copies) inside a tracing span that carries the RPC and the volume id.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::{Instrument, debug, info_span};

use super::error::{DriverError, DriverResult};
use super::{Core, Driver, controller, node};
use crate::proto::{
    self, controller_server::Controller, group_controller_server::GroupController,
    identity_server::Identity, node_server::Node,
};

impl Driver {
    async fn run<T, F>(
        &self,
        rpc: &'static str,
        object_id: &str,
        f: F,
    ) -> Result<Response<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Core) -> DriverResult<T> + Send + 'static,
    {
        let core: Arc<Core> = self.core().clone();
        let span = info_span!("csi", rpc, volume_id = %object_id);
        let inner = span.clone();
        let task = tokio::task::spawn_blocking(move || inner.in_scope(|| f(&core)));
        let result = task
            .instrument(span.clone())
            .await
            .map_err(|e| Status::internal(format!("{rpc} panicked: {e}")))?;
        span.in_scope(|| match &result {
            Ok(_) => debug!("ok"),
            Err(e) => debug!(code = ?e.code(), error = %e, "failed"),
        });
        result.map(Response::new).map_err(Status::from)
    }
}

#[tonic::async_trait]
impl Identity for Driver {
    async fn get_plugin_info(
        &self,
        _: Request<proto::GetPluginInfoRequest>,
    ) -> Result<Response<proto::GetPluginInfoResponse>, Status> {
        Ok(Response::new(self.core().plugin_info()))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<proto::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<proto::GetPluginCapabilitiesResponse>, Status> {
        Ok(Response::new(self.core().plugin_capabilities()))
    }

    async fn probe(
        &self,
        _: Request<proto::ProbeRequest>,
    ) -> Result<Response<proto::ProbeResponse>, Status> {
        self.run("Probe", "", |core| core.probe()).await
    }
}

fn controller_capabilities() -> proto::ControllerGetCapabilitiesResponse {
    use proto::controller_service_capability::{Rpc, Type};
    let capabilities = controller::CAPABILITIES
        .iter()
        .map(|t| proto::ControllerServiceCapability {
            r#type: Some(Type::Rpc(Rpc { r#type: *t as i32 })),
        })
        .collect();
    proto::ControllerGetCapabilitiesResponse { capabilities }
}

#[tonic::async_trait]
impl Controller for Driver {
    async fn create_volume(
        &self,
        r: Request<proto::CreateVolumeRequest>,
    ) -> Result<Response<proto::CreateVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = super::ids::volume_id(&r.name);
        self.run("CreateVolume", &id, move |c| c.create_volume(r))
            .await
    }

    async fn delete_volume(
        &self,
        r: Request<proto::DeleteVolumeRequest>,
    ) -> Result<Response<proto::DeleteVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("DeleteVolume", &id, move |c| c.delete_volume(r))
            .await
    }

    async fn controller_publish_volume(
        &self,
        r: Request<proto::ControllerPublishVolumeRequest>,
    ) -> Result<Response<proto::ControllerPublishVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("ControllerPublishVolume", &id, move |c| {
            c.controller_publish(r)
        })
        .await
    }

    async fn controller_unpublish_volume(
        &self,
        r: Request<proto::ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<proto::ControllerUnpublishVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("ControllerUnpublishVolume", &id, move |c| {
            c.controller_unpublish(r)
        })
        .await
    }

    async fn validate_volume_capabilities(
        &self,
        r: Request<proto::ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<proto::ValidateVolumeCapabilitiesResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("ValidateVolumeCapabilities", &id, move |c| {
            c.validate_volume_capabilities(r)
        })
        .await
    }

    async fn list_volumes(
        &self,
        r: Request<proto::ListVolumesRequest>,
    ) -> Result<Response<proto::ListVolumesResponse>, Status> {
        let r = r.into_inner();
        self.run("ListVolumes", "", move |c| c.list_volumes(r))
            .await
    }

    async fn get_capacity(
        &self,
        r: Request<proto::GetCapacityRequest>,
    ) -> Result<Response<proto::GetCapacityResponse>, Status> {
        let r = r.into_inner();
        self.run("GetCapacity", "", move |c| c.get_capacity(r))
            .await
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<proto::ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<proto::ControllerGetCapabilitiesResponse>, Status> {
        Ok(Response::new(controller_capabilities()))
    }

    async fn create_snapshot(
        &self,
        r: Request<proto::CreateSnapshotRequest>,
    ) -> Result<Response<proto::CreateSnapshotResponse>, Status> {
        let r = r.into_inner();
        let id = r.source_volume_id.clone();
        self.run("CreateSnapshot", &id, move |c| c.create_snapshot(r))
            .await
    }

    async fn delete_snapshot(
        &self,
        r: Request<proto::DeleteSnapshotRequest>,
    ) -> Result<Response<proto::DeleteSnapshotResponse>, Status> {
        let r = r.into_inner();
        self.run("DeleteSnapshot", "", move |c| c.delete_snapshot(r))
            .await
    }

    async fn list_snapshots(
        &self,
        r: Request<proto::ListSnapshotsRequest>,
    ) -> Result<Response<proto::ListSnapshotsResponse>, Status> {
        let r = r.into_inner();
        let id = r.source_volume_id.clone();
        self.run("ListSnapshots", &id, move |c| c.list_snapshots(r))
            .await
    }

    async fn get_snapshot(
        &self,
        r: Request<proto::GetSnapshotRequest>,
    ) -> Result<Response<proto::GetSnapshotResponse>, Status> {
        let r = r.into_inner();
        self.run("GetSnapshot", "", move |c| c.get_snapshot(r))
            .await
    }

    async fn controller_expand_volume(
        &self,
        r: Request<proto::ControllerExpandVolumeRequest>,
    ) -> Result<Response<proto::ControllerExpandVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("ControllerExpandVolume", &id, move |c| {
            c.controller_expand_volume(r)
        })
        .await
    }

    async fn controller_get_volume(
        &self,
        r: Request<proto::ControllerGetVolumeRequest>,
    ) -> Result<Response<proto::ControllerGetVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("ControllerGetVolume", &id, move |c| {
            c.controller_get_volume(r)
        })
        .await
    }

    async fn controller_modify_volume(
        &self,
        r: Request<proto::ControllerModifyVolumeRequest>,
    ) -> Result<Response<proto::ControllerModifyVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("ControllerModifyVolume", &id, move |c| {
            c.controller_modify_volume(r)
        })
        .await
    }
}

/// Volume group snapshots are not implemented: GroupControllerGetCapabilities
/// reports none (and GetPluginCapabilities no GROUP_CONTROLLER_SERVICE), the
/// other RPCs answer UNIMPLEMENTED.
#[tonic::async_trait]
impl GroupController for Driver {
    async fn group_controller_get_capabilities(
        &self,
        _: Request<proto::GroupControllerGetCapabilitiesRequest>,
    ) -> Result<Response<proto::GroupControllerGetCapabilitiesResponse>, Status> {
        Ok(Response::new(
            proto::GroupControllerGetCapabilitiesResponse {
                capabilities: vec![],
            },
        ))
    }

    async fn create_volume_group_snapshot(
        &self,
        _: Request<proto::CreateVolumeGroupSnapshotRequest>,
    ) -> Result<Response<proto::CreateVolumeGroupSnapshotResponse>, Status> {
        Err(DriverError::Unimplemented("CreateVolumeGroupSnapshot").into())
    }

    async fn delete_volume_group_snapshot(
        &self,
        _: Request<proto::DeleteVolumeGroupSnapshotRequest>,
    ) -> Result<Response<proto::DeleteVolumeGroupSnapshotResponse>, Status> {
        Err(DriverError::Unimplemented("DeleteVolumeGroupSnapshot").into())
    }

    async fn get_volume_group_snapshot(
        &self,
        _: Request<proto::GetVolumeGroupSnapshotRequest>,
    ) -> Result<Response<proto::GetVolumeGroupSnapshotResponse>, Status> {
        Err(DriverError::Unimplemented("GetVolumeGroupSnapshot").into())
    }
}

fn node_capabilities() -> proto::NodeGetCapabilitiesResponse {
    use proto::node_service_capability::{Rpc, Type};
    let capabilities = node::CAPABILITIES
        .iter()
        .map(|t| proto::NodeServiceCapability {
            r#type: Some(Type::Rpc(Rpc { r#type: *t as i32 })),
        })
        .collect();
    proto::NodeGetCapabilitiesResponse { capabilities }
}

#[tonic::async_trait]
impl Node for Driver {
    async fn node_stage_volume(
        &self,
        r: Request<proto::NodeStageVolumeRequest>,
    ) -> Result<Response<proto::NodeStageVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("NodeStageVolume", &id, move |c| c.node_stage(r))
            .await
    }

    async fn node_unstage_volume(
        &self,
        r: Request<proto::NodeUnstageVolumeRequest>,
    ) -> Result<Response<proto::NodeUnstageVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("NodeUnstageVolume", &id, move |c| c.node_unstage(r))
            .await
    }

    async fn node_publish_volume(
        &self,
        r: Request<proto::NodePublishVolumeRequest>,
    ) -> Result<Response<proto::NodePublishVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("NodePublishVolume", &id, move |c| c.node_publish(r))
            .await
    }

    async fn node_unpublish_volume(
        &self,
        r: Request<proto::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<proto::NodeUnpublishVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("NodeUnpublishVolume", &id, move |c| c.node_unpublish(r))
            .await
    }

    async fn node_get_volume_stats(
        &self,
        r: Request<proto::NodeGetVolumeStatsRequest>,
    ) -> Result<Response<proto::NodeGetVolumeStatsResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("NodeGetVolumeStats", &id, move |c| {
            c.node_get_volume_stats(r)
        })
        .await
    }

    async fn node_expand_volume(
        &self,
        r: Request<proto::NodeExpandVolumeRequest>,
    ) -> Result<Response<proto::NodeExpandVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = r.volume_id.clone();
        self.run("NodeExpandVolume", &id, move |c| c.node_expand_volume(r))
            .await
    }

    async fn node_get_capabilities(
        &self,
        _: Request<proto::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<proto::NodeGetCapabilitiesResponse>, Status> {
        Ok(Response::new(node_capabilities()))
    }

    async fn node_get_info(
        &self,
        _: Request<proto::NodeGetInfoRequest>,
    ) -> Result<Response<proto::NodeGetInfoResponse>, Status> {
        Ok(Response::new(self.core().node_get_info()))
    }
}
