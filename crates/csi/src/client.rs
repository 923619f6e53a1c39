//! A typed CSI client for any driver on a unix socket.
//!
//! Every call has a deadline. The CSI specification requires every RPC to
//! be idempotent, so a call is retried — with exponential backoff, up to
//! [`ClientOptions::attempts`] times — when the answer says trying again is
//! the recovery: UNAVAILABLE (the plugin is restarting), ABORTED (another
//! operation on the volume is in flight; the spec asks callers to back off
//! and retry) and DEADLINE_EXCEEDED (the spec lets a CO retry a timed-out
//! call; the plugin continues where it left off). Any other code is
//! returned at once, kept in [`ClientError::Status`].

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Uri};
use tonic::{Code, Request, Response, Status};

use crate::endpoint::{Endpoint, EndpointError};
use crate::proto::{
    self, controller_client::ControllerClient, group_controller_client::GroupControllerClient,
    identity_client::IdentityClient, node_client::NodeClient,
};

/// Deadlines and retries.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Deadline of one attempt.
    pub timeout: Duration,
    /// Attempts per call (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            attempts: 5,
            backoff: Duration::from_millis(50),
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint string is not a unix socket endpoint.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The gRPC channel could not be set up.
    #[error("connect to {endpoint}: {source}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// The plugin answered with a non-OK status (after any retries).
    #[error("{rpc}: {code:?}: {message}")]
    Status {
        /// The RPC.
        rpc: &'static str,
        /// The gRPC code, as the plugin sent it.
        code: Code,
        /// The plugin's message.
        message: String,
    },
}

impl ClientError {
    /// The gRPC code, when the plugin answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Whether the specification makes retrying the recovery for this code.
pub fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Aborted | Code::DeadlineExceeded
    )
}

/// A client for the Identity, Controller, GroupController and Node services
/// of one plugin.
#[derive(Debug, Clone)]
pub struct CsiClient {
    channel: Channel,
    options: ClientOptions,
    endpoint: Endpoint,
}

macro_rules! rpcs {
    ($($client:ident :: $method:ident ( $req:ty ) -> $resp:ty = $rpc:literal;)*) => {
        $(
            #[doc = concat!("Calls `", $rpc, "`.")]
            pub async fn $method(&self, request: $req) -> Result<$resp, ClientError> {
                let channel = self.channel.clone();
                self.call($rpc, request, move |r| {
                    let mut client = $client::new(channel.clone());
                    async move { client.$method(r).await }
                })
                .await
            }
        )*
    };
}

impl CsiClient {
    /// A client for `endpoint` (`unix:///path`). The connection is made on
    /// the first call and re-made after the plugin restarts.
    pub fn connect(endpoint: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let endpoint = Endpoint::parse(endpoint)?;
        let path = endpoint.path().to_path_buf();
        let connector = tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        });
        // The URI is required by tonic but unused: the connector dials the
        // socket.
        let channel = tonic::transport::Endpoint::from_static("http://csi.local")
            .connect_timeout(options.timeout)
            .connect_with_connector_lazy(connector);
        Ok(Self {
            channel,
            options,
            endpoint,
        })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn call<Q, R, F, Fut>(
        &self,
        rpc: &'static str,
        request: Q,
        send: F,
    ) -> Result<R, ClientError>
    where
        Q: Clone,
        F: Fn(Request<Q>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let mut backoff = self.options.backoff;
        let mut attempt = 1;
        loop {
            let mut req = Request::new(request.clone());
            req.set_timeout(self.options.timeout);
            match send(req).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if is_retryable(status.code()) && attempt < self.options.attempts => {
                    tracing::debug!(rpc, code = ?status.code(), attempt, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(status) => {
                    return Err(ClientError::Status {
                        rpc,
                        code: status.code(),
                        message: status.message().to_string(),
                    });
                }
            }
        }
    }

    rpcs! {
        IdentityClient::get_plugin_info(proto::GetPluginInfoRequest) -> proto::GetPluginInfoResponse = "GetPluginInfo";
        IdentityClient::get_plugin_capabilities(proto::GetPluginCapabilitiesRequest) -> proto::GetPluginCapabilitiesResponse = "GetPluginCapabilities";
        IdentityClient::probe(proto::ProbeRequest) -> proto::ProbeResponse = "Probe";
        ControllerClient::create_volume(proto::CreateVolumeRequest) -> proto::CreateVolumeResponse = "CreateVolume";
        ControllerClient::delete_volume(proto::DeleteVolumeRequest) -> proto::DeleteVolumeResponse = "DeleteVolume";
        ControllerClient::controller_publish_volume(proto::ControllerPublishVolumeRequest) -> proto::ControllerPublishVolumeResponse = "ControllerPublishVolume";
        ControllerClient::controller_unpublish_volume(proto::ControllerUnpublishVolumeRequest) -> proto::ControllerUnpublishVolumeResponse = "ControllerUnpublishVolume";
        ControllerClient::validate_volume_capabilities(proto::ValidateVolumeCapabilitiesRequest) -> proto::ValidateVolumeCapabilitiesResponse = "ValidateVolumeCapabilities";
        ControllerClient::list_volumes(proto::ListVolumesRequest) -> proto::ListVolumesResponse = "ListVolumes";
        ControllerClient::get_capacity(proto::GetCapacityRequest) -> proto::GetCapacityResponse = "GetCapacity";
        ControllerClient::controller_get_capabilities(proto::ControllerGetCapabilitiesRequest) -> proto::ControllerGetCapabilitiesResponse = "ControllerGetCapabilities";
        ControllerClient::create_snapshot(proto::CreateSnapshotRequest) -> proto::CreateSnapshotResponse = "CreateSnapshot";
        ControllerClient::delete_snapshot(proto::DeleteSnapshotRequest) -> proto::DeleteSnapshotResponse = "DeleteSnapshot";
        ControllerClient::list_snapshots(proto::ListSnapshotsRequest) -> proto::ListSnapshotsResponse = "ListSnapshots";
        ControllerClient::get_snapshot(proto::GetSnapshotRequest) -> proto::GetSnapshotResponse = "GetSnapshot";
        ControllerClient::controller_expand_volume(proto::ControllerExpandVolumeRequest) -> proto::ControllerExpandVolumeResponse = "ControllerExpandVolume";
        ControllerClient::controller_get_volume(proto::ControllerGetVolumeRequest) -> proto::ControllerGetVolumeResponse = "ControllerGetVolume";
        ControllerClient::controller_modify_volume(proto::ControllerModifyVolumeRequest) -> proto::ControllerModifyVolumeResponse = "ControllerModifyVolume";
        GroupControllerClient::group_controller_get_capabilities(proto::GroupControllerGetCapabilitiesRequest) -> proto::GroupControllerGetCapabilitiesResponse = "GroupControllerGetCapabilities";
        GroupControllerClient::create_volume_group_snapshot(proto::CreateVolumeGroupSnapshotRequest) -> proto::CreateVolumeGroupSnapshotResponse = "CreateVolumeGroupSnapshot";
        GroupControllerClient::delete_volume_group_snapshot(proto::DeleteVolumeGroupSnapshotRequest) -> proto::DeleteVolumeGroupSnapshotResponse = "DeleteVolumeGroupSnapshot";
        GroupControllerClient::get_volume_group_snapshot(proto::GetVolumeGroupSnapshotRequest) -> proto::GetVolumeGroupSnapshotResponse = "GetVolumeGroupSnapshot";
        NodeClient::node_stage_volume(proto::NodeStageVolumeRequest) -> proto::NodeStageVolumeResponse = "NodeStageVolume";
        NodeClient::node_unstage_volume(proto::NodeUnstageVolumeRequest) -> proto::NodeUnstageVolumeResponse = "NodeUnstageVolume";
        NodeClient::node_publish_volume(proto::NodePublishVolumeRequest) -> proto::NodePublishVolumeResponse = "NodePublishVolume";
        NodeClient::node_unpublish_volume(proto::NodeUnpublishVolumeRequest) -> proto::NodeUnpublishVolumeResponse = "NodeUnpublishVolume";
        NodeClient::node_get_volume_stats(proto::NodeGetVolumeStatsRequest) -> proto::NodeGetVolumeStatsResponse = "NodeGetVolumeStats";
        NodeClient::node_expand_volume(proto::NodeExpandVolumeRequest) -> proto::NodeExpandVolumeResponse = "NodeExpandVolume";
        NodeClient::node_get_capabilities(proto::NodeGetCapabilitiesRequest) -> proto::NodeGetCapabilitiesResponse = "NodeGetCapabilities";
        NodeClient::node_get_info(proto::NodeGetInfoRequest) -> proto::NodeGetInfoResponse = "NodeGetInfo";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_codes_are_retried() {
        assert!(is_retryable(Code::Unavailable));
        assert!(is_retryable(Code::Aborted));
        assert!(!is_retryable(Code::NotFound));
        assert!(!is_retryable(Code::AlreadyExists));
        assert!(!is_retryable(Code::InvalidArgument));
    }
}
