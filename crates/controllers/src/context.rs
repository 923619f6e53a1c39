//! What every control loop shares: the API client, the event recorder and the configuration.

use std::sync::Arc;

use kube::runtime::events::{Recorder, Reporter};

/// The controller-manager's configuration.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// The name the loops write events and field managers as (`volplane-controller-manager`).
    pub component: String,
    /// Concurrent reconciles per loop.
    pub workers: usize,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            component: "volplane-controller-manager".into(),
            workers: 16,
        }
    }
}

/// Shared by every loop; cheap to clone behind an [`Arc`].
pub struct Context {
    /// The API client.
    pub client: kube::Client,
    /// Configuration.
    pub config: ManagerConfig,
    /// Writes events.k8s.io/v1 Events as `config.component`.
    pub recorder: Recorder,
}

impl Context {
    /// A context for `client` with `config`.
    pub fn new(client: kube::Client, config: ManagerConfig) -> Arc<Self> {
        let reporter = Reporter {
            controller: config.component.clone(),
            instance: None,
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Arc::new(Self {
            client,
            config,
            recorder,
        })
    }
}

/// Why a control loop stopped or a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server answered with an error or could not be reached.
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    /// A watch stream of the loop failed for good.
    #[error("watch: {0}")]
    Watch(#[from] kube::runtime::watcher::Error),
    /// A CSI driver call failed.
    #[error("CSI driver {driver}: {source}")]
    Csi {
        /// The driver's name.
        driver: String,
        /// What the driver answered.
        source: volplane_csi::ClientError,
    },
    /// An object in the API does not have the shape the loop needs (named in the message).
    #[error("{0}")]
    Invalid(String),
}
