//! The built-in CSI driver `local.csi.volplane.io`: volumes are sparse
//! backing images in a state directory, attached through loop devices,
//! formatted at first stage and mounted; snapshots are point-in-time copies
//! of the image (reflink where the filesystem allows, else a sparse copy).
//!
//! The RPC logic is synchronous ([`Core`]); the gRPC services in
//! [`service`] run each call on the blocking pool inside a tracing span.

pub mod capability;
pub mod capacity;
pub mod controller;
pub mod error;
pub mod identity;
pub mod ids;
pub mod journal;
pub mod lock;
pub mod node;
pub mod pagination;
pub mod parameters;
pub mod quiesce;
pub mod service;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{DriverError, DriverResult};

use crate::host::Host;
use state::{NodeRecord, StateDir};

/// The driver's name, as GetPluginInfo reports it.
pub const DRIVER_NAME: &str = "local.csi.volplane.io";
/// The topology key: volumes are accessible on the host that holds their
/// backing images.
pub const TOPOLOGY_KEY: &str = "topology.local.csi.volplane.io/host";

/// How the driver is run.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// This node's id (NodeGetInfo).
    pub node_id: String,
    /// The state directory: records, images, locks.
    pub state_dir: PathBuf,
    /// Serve the Controller service.
    pub controller: bool,
    /// Serve the Node service.
    pub node: bool,
    /// The attach limit reported by NodeGetInfo and enforced by
    /// ControllerPublishVolume.
    pub max_volumes_per_node: i64,
    /// The value of the topology segment; defaults to the machine id.
    pub topology_host: Option<String>,
    /// fsync every state record (durable across power loss, not only
    /// across a driver crash).
    pub sync_state: bool,
    /// Capacity of a volume created without a capacity range.
    pub default_capacity: u64,
    /// The largest volume the driver creates.
    pub max_volume_size: u64,
}

impl DriverConfig {
    /// A controller+node driver with the default limits.
    pub fn new(node_id: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            node_id: node_id.into(),
            state_dir: state_dir.into(),
            controller: true,
            node: true,
            max_volumes_per_node: 256,
            topology_host: None,
            sync_state: true,
            default_capacity: 1 << 30,
            max_volume_size: 16 << 40,
        }
    }
}

/// The driver's shared state: configuration, host operations, state
/// directory.
#[derive(Debug)]
pub struct Core {
    /// Configuration.
    pub config: DriverConfig,
    /// Host operations.
    pub host: Host,
    /// On-disk state.
    pub state: StateDir,
    /// The topology segment value.
    pub topology_host: String,
}

/// The driver; cheap to clone (one shared [`Core`]).
#[derive(Debug, Clone)]
pub struct Driver {
    core: Arc<Core>,
}

impl Driver {
    /// Opens the state directory, registers the node plugin and thaws any
    /// filesystem a crashed snapshot left frozen.
    pub fn new(config: DriverConfig, host: Host) -> DriverResult<Self> {
        if !ids::is_node_id(&config.node_id) {
            return Err(DriverError::invalid(
                "node_id",
                "must be 1-128 characters of [A-Za-z0-9._-]",
            ));
        }
        let (state, replayed) = if config.controller {
            StateDir::open_controller(&config.state_dir, config.sync_state)?
        } else {
            (
                StateDir::open(&config.state_dir, config.sync_state)?,
                Vec::new(),
            )
        };
        let topology_host = match &config.topology_host {
            Some(host) => host.clone(),
            None => default_topology_host(),
        };
        let core = Core {
            config,
            host,
            state,
            topology_host,
        };
        if core.config.node {
            core.register_node()?;
        }
        if core.config.controller {
            core.repair_images(&replayed)?;
            core.remove_orphan_images()?;
        }
        quiesce::thaw_all(&core);
        Ok(Self {
            core: Arc::new(core),
        })
    }

    /// The shared core.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }
}

impl Core {
    fn register_node(&self) -> DriverResult<()> {
        let record = NodeRecord {
            node_id: self.config.node_id.clone(),
            max_volumes_per_node: self.config.max_volumes_per_node,
        };
        let path = self.state.node_dir(&self.config.node_id).join("node.json");
        self.state.write(&path, &record)
    }

    /// The topology segment of this host.
    pub fn topology(&self) -> crate::proto::Topology {
        crate::proto::Topology {
            segments: [(TOPOLOGY_KEY.to_string(), self.topology_host.clone())].into(),
        }
    }
}

fn default_topology_host() -> String {
    for source in ["/etc/machine-id", "/proc/sys/kernel/hostname"] {
        if let Ok(text) = std::fs::read_to_string(source) {
            let value = text.trim();
            if !value.is_empty() {
                return value.to_string();
            }
        }
    }
    "localhost".to_string()
}
