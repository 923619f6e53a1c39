//! Serving CSI services on a unix socket.

use std::future::Future;
use std::io;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tracing::info;

use crate::driver::Driver;
use crate::endpoint::Endpoint;
use crate::proto::{
    controller_server::ControllerServer, group_controller_server::GroupControllerServer,
    identity_server::IdentityServer, node_server::NodeServer,
};

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The socket could not be created.
    #[error("listen on {endpoint}: {source}")]
    Listen {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server on {endpoint}: {source}")]
    Transport {
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Binds the socket of `endpoint`, replacing a stale socket file a previous
/// (crashed) instance left behind.
pub fn bind(endpoint: &Endpoint) -> Result<UnixListener, ServeError> {
    let listen_error = |source| ServeError::Listen {
        endpoint: endpoint.to_string(),
        source,
    };
    let path = endpoint.path();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(listen_error)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(listen_error(e)),
        _ => {}
    }
    UnixListener::bind(path).map_err(listen_error)
}

/// Serves the driver's Identity service, and its Controller (with
/// GroupController) and Node services when enabled, on `listener` until
/// `shutdown` completes; the socket file is removed afterwards.
pub async fn serve(
    driver: Driver,
    endpoint: &Endpoint,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let config = &driver.core().config;
    let (controller, node) = (config.controller, config.node);
    let router = tonic::transport::Server::builder()
        .add_service(IdentityServer::new(driver.clone()))
        .add_optional_service(controller.then(|| ControllerServer::new(driver.clone())))
        .add_optional_service(controller.then(|| GroupControllerServer::new(driver.clone())))
        .add_optional_service(node.then(|| NodeServer::new(driver.clone())));
    info!(%endpoint, controller, node, "serving CSI");
    let result = router
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    let _ = std::fs::remove_file(endpoint.path());
    result.map_err(|source| ServeError::Transport {
        endpoint: endpoint.to_string(),
        source,
    })
}
