//! The Kubernetes API on the wire.
//!
//! Serves discovery, OpenAPI, CRUD, list/watch (from [`watch_cache::WatchCache`], never by
//! scanning the store), the four patch types, subresources, admission and validation, Tables for
//! kubectl, `/metrics`, and bearer-token authentication over TLS. Objects live in a
//! [`volplane_store::Store`]; this crate is the only one that touches it.
//!
//! Main types: [`server::ApiServer`] (shared state), [`start`] (a running server).

pub mod admission;
pub mod body;
pub mod continue_token;
pub mod conversion;
pub mod credentials;
pub mod discovery_routes;
pub mod garbage_collector;
pub mod http;
pub mod managed_fields;
pub mod metrics;
pub mod namespace_lifecycle;
pub mod object;
pub mod patching;
pub mod protobuf;
pub mod read;
pub mod request;
pub mod selectors;
pub mod server;
pub mod status;
pub mod table;
pub mod validation_glue;
pub mod watch;
pub mod watch_cache;
pub mod write;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use volplane_store::{Store, StoreError};

use crate::credentials::CredentialsError;
use crate::server::ApiServer;

/// How many recent events the watch cache keeps for watches that resume.
pub const WATCH_HISTORY: usize = 100_000;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Credentials and the kubeconfig live here.
    pub data_dir: PathBuf,
}

/// Failures to start serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Making or loading the CA, certificate, token or kubeconfig failed.
    #[error("credentials: {0}")]
    Credentials(#[from] CredentialsError),
    /// Loading the watch cache from the store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Binding the listen address failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A serving API server.
pub struct Running {
    /// The address actually bound (the port is chosen when the configured one is 0).
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub server: Arc<ApiServer>,
}

/// Loads the cache, binds, and serves in background tasks until the process ends.
pub async fn start(config: Config, store: Arc<dyn Store>) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let credentials = credentials::ensure(&config.data_dir, addr)?;
    let metrics = Arc::new(metrics::Metrics::default());
    let store: Arc<dyn Store> = Arc::new(metrics::TimedStore::new(store, Arc::clone(&metrics)));
    let cache = watch_cache::WatchCache::start(Arc::clone(&store), WATCH_HISTORY).await?;
    let server = Arc::new(ApiServer {
        store,
        cache,
        token: credentials.token,
        metrics,
    });
    namespace_lifecycle::ensure_system_namespaces(&server).await;
    tokio::spawn(http::serve(Arc::clone(&server), listener, credentials.tls));
    tokio::spawn(garbage_collector::run(Arc::clone(&server)));
    tokio::spawn(namespace_lifecycle::run(Arc::clone(&server)));
    tracing::info!(%addr, kubeconfig = %credentials.kubeconfig_path.display(), "API server serving");
    Ok(Running {
        addr,
        kubeconfig: credentials.kubeconfig_path,
        server,
    })
}
