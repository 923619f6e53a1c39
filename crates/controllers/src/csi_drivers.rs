//! How the controller-manager reaches each CSI driver's Controller service.
//!
//! A driver is known by name (the `provisioner` of a StorageClass, the `driver` of a CSI PV or
//! VolumeSnapshotClass) and reached on a unix socket. Endpoints come from two places:
//!
//! - the controller-manager's configuration (`--csi-driver NAME=unix:///path`; `volplane up`
//!   registers its built-in driver this way): [`Registry::register`];
//! - a CSIDriver object carrying the annotation `csi.volplane.io/controller-endpoint:
//!   unix:///path` ([`ANN_CONTROLLER_ENDPOINT`]), followed by [`follow_csi_drivers`]: the driver
//!   is registered while the object has the annotation and unregistered when the annotation or
//!   the object goes. A flag registration is never replaced or removed by an object.
//!
//! A loop that finds no endpoint for a driver reports it (event and `volplane why`) instead of
//! guessing. Every change of the registry is announced on [`Registry::changes`], so loops retry
//! the claims that waited for a driver at once instead of at their next backoff.
//!
//! The driver's capabilities (GetPluginCapabilities, ControllerGetCapabilities) are asked once
//! per registration and cached, as the sidecars ask them once at start.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::storage::v1::CSIDriver;
use kube::runtime::watcher;
use tokio::sync::OnceCell;
use volplane_csi::proto::{
    self, controller_service_capability::rpc::Type as Rpc,
    plugin_capability::service::Type as Service, volume_capability::access_mode::Mode,
};
use volplane_csi::{ClientError, ClientOptions, CsiClient};

/// Annotation of a CSIDriver object naming its Controller service endpoint (`unix:///path`).
pub const ANN_CONTROLLER_ENDPOINT: &str = "csi.volplane.io/controller-endpoint";

/// Why a driver cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No endpoint is registered for the driver.
    #[error(
        "no endpoint is registered for CSI driver {0:?} (the controller-manager reaches drivers named by --csi-driver NAME=unix:///path or by the csi.volplane.io/controller-endpoint annotation of their CSIDriver object)"
    )]
    Unknown(String),
    /// The endpoint is not a valid `unix:///path`.
    #[error("CSI driver {driver:?}: {source}")]
    Endpoint {
        /// The driver's name.
        driver: String,
        /// Why the endpoint is invalid.
        source: volplane_csi::ClientError,
    },
    /// The driver did not answer its capability RPCs.
    #[error("CSI driver {driver:?}: {}", status_text(source))]
    Capabilities {
        /// The driver's name.
        driver: String,
        /// What the driver answered.
        source: volplane_csi::ClientError,
    },
}

/// Where a registration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Flag,
    CsiDriverObject,
}

#[derive(Debug)]
struct Entry {
    client: CsiClient,
    endpoint: String,
    origin: Origin,
    capabilities: OnceCell<Arc<DriverCapabilities>>,
}

/// What a driver said it can do.
#[derive(Debug, Clone, Default)]
pub struct DriverCapabilities {
    /// Plugin capabilities (CONTROLLER_SERVICE, VOLUME_ACCESSIBILITY_CONSTRAINTS, ...).
    pub plugin: HashSet<Service>,
    /// Controller RPC capabilities (CREATE_DELETE_VOLUME, EXPAND_VOLUME, ...).
    pub controller: HashSet<Rpc>,
}

impl DriverCapabilities {
    /// The driver wants accessibility requirements and reports volume topology.
    pub fn supports_topology(&self) -> bool {
        self.plugin
            .contains(&Service::VolumeAccessibilityConstraints)
    }

    /// The driver supports `rpc`.
    pub fn has(&self, rpc: Rpc) -> bool {
        self.controller.contains(&rpc)
    }

    /// ReadWriteOnce maps to SINGLE_NODE_MULTI_WRITER (and ReadWriteOncePod to
    /// SINGLE_NODE_SINGLE_WRITER) only for drivers with this capability.
    pub fn single_node_multi_writer(&self) -> bool {
        self.has(Rpc::SingleNodeMultiWriter)
    }
}

/// The drivers the controller-manager can call, by name.
#[derive(Debug)]
pub struct Registry {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
            changes: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) `driver` at `endpoint` (`unix:///path`). The connection is made
    /// on the first call, so a driver that starts later is still reached. Must be called within
    /// a tokio runtime (the lazy channel needs its reactor).
    pub fn register(&self, driver: &str, endpoint: &str) -> Result<(), RegistryError> {
        self.insert(driver, endpoint, Origin::Flag)
    }

    fn insert(&self, driver: &str, endpoint: &str, origin: Origin) -> Result<(), RegistryError> {
        let client = CsiClient::connect(endpoint, ClientOptions::default()).map_err(|source| {
            RegistryError::Endpoint {
                driver: driver.to_string(),
                source,
            }
        })?;
        let entry = Arc::new(Entry {
            client,
            endpoint: endpoint.to_string(),
            origin,
            capabilities: OnceCell::new(),
        });
        self.entries
            .write()
            .expect("registry lock")
            .insert(driver.to_string(), entry);
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Registers `driver` from its CSIDriver object's annotation, unless a flag registered it
    /// or the same endpoint is already registered.
    fn register_from_object(&self, driver: &str, endpoint: &str) -> Result<(), RegistryError> {
        let current = self.entry(driver);
        match current {
            Some(e) if e.origin == Origin::Flag || e.endpoint == endpoint => Ok(()),
            _ => self.insert(driver, endpoint, Origin::CsiDriverObject),
        }
    }

    /// Removes `driver` if (and only if) a CSIDriver object registered it.
    fn unregister_object(&self, driver: &str) {
        let mut entries = self.entries.write().expect("registry lock");
        if entries
            .get(driver)
            .is_some_and(|e| e.origin == Origin::CsiDriverObject)
        {
            entries.remove(driver);
            drop(entries);
            self.changes.send_modify(|n| *n += 1);
        }
    }

    fn entry(&self, driver: &str) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .expect("registry lock")
            .get(driver)
            .cloned()
    }

    /// The client for `driver`.
    pub fn get(&self, driver: &str) -> Result<CsiClient, RegistryError> {
        self.entry(driver)
            .map(|e| e.client.clone())
            .ok_or_else(|| RegistryError::Unknown(driver.to_string()))
    }

    /// The client for `driver` and its capabilities (asked once per registration).
    pub async fn connect(
        &self,
        driver: &str,
    ) -> Result<(CsiClient, Arc<DriverCapabilities>), RegistryError> {
        let entry = self
            .entry(driver)
            .ok_or_else(|| RegistryError::Unknown(driver.to_string()))?;
        let capabilities = entry
            .capabilities
            .get_or_try_init(|| ask_capabilities(&entry.client))
            .await
            .map_err(|source| RegistryError::Capabilities {
                driver: driver.to_string(),
                source,
            })?;
        Ok((entry.client.clone(), capabilities.clone()))
    }

    /// Whether `driver` is registered.
    pub fn contains(&self, driver: &str) -> bool {
        self.entries
            .read()
            .expect("registry lock")
            .contains_key(driver)
    }

    /// The registered driver names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .read()
            .expect("registry lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Changes with every registration or removal (the value counts them).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

async fn ask_capabilities(client: &CsiClient) -> Result<Arc<DriverCapabilities>, ClientError> {
    use proto::{controller_service_capability, plugin_capability};
    let plugin = client
        .get_plugin_capabilities(proto::GetPluginCapabilitiesRequest {})
        .await?
        .capabilities
        .into_iter()
        .filter_map(|c| match c.r#type {
            Some(plugin_capability::Type::Service(s)) => Service::try_from(s.r#type).ok(),
            _ => None,
        })
        .collect::<HashSet<_>>();
    let controller = if plugin.contains(&Service::ControllerService) {
        client
            .controller_get_capabilities(proto::ControllerGetCapabilitiesRequest {})
            .await?
            .capabilities
            .into_iter()
            .filter_map(|c| match c.r#type {
                Some(controller_service_capability::Type::Rpc(r)) => Rpc::try_from(r.r#type).ok(),
                None => None,
            })
            .collect()
    } else {
        HashSet::new()
    };
    Ok(Arc::new(DriverCapabilities { plugin, controller }))
}

/// Keeps `registry` in step with the `csi.volplane.io/controller-endpoint` annotations of
/// CSIDriver objects. Returns only if the watch ends.
pub async fn follow_csi_drivers(
    client: kube::Client,
    registry: Arc<Registry>,
) -> Result<(), crate::Error> {
    use kube::runtime::WatchStreamExt;
    let api = kube::Api::<CSIDriver>::all(client);
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => {
                apply_csi_driver(&registry, &d)
            }
            Ok(watcher::Event::Delete(d)) => {
                registry.unregister_object(d.metadata.name.as_deref().unwrap_or_default())
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "watching CSIDriver objects"),
        }
    }
    Ok(())
}

fn apply_csi_driver(registry: &Registry, driver: &CSIDriver) {
    let name = driver.metadata.name.as_deref().unwrap_or_default();
    let endpoint = driver
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_CONTROLLER_ENDPOINT));
    match endpoint {
        Some(endpoint) => match registry.register_from_object(name, endpoint) {
            Ok(()) => tracing::debug!(
                driver = name,
                endpoint,
                "CSI driver endpoint from CSIDriver"
            ),
            Err(error) => tracing::warn!(driver = name, %error, "CSIDriver endpoint refused"),
        },
        None => registry.unregister_object(name),
    }
}

/// The CSI access mode for a set of Kubernetes access modes, as the CSI sidecars map them
/// (csi-lib-utils `ToCSIAccessMode`).
pub fn access_mode(modes: &[String], single_node_multi_writer: bool) -> Result<Mode, String> {
    let has = |m: &str| modes.iter().any(|x| x == m);
    let distinct: HashSet<&String> = modes.iter().collect();
    if has("ReadWriteOncePod") {
        if distinct.len() > 1 {
            return Err("Kubernetes does not support use of ReadWriteOncePod with other access modes on the same PersistentVolume".into());
        }
        return Ok(if single_node_multi_writer {
            Mode::SingleNodeSingleWriter
        } else {
            Mode::SingleNodeWriter
        });
    }
    if has("ReadWriteMany") {
        return Ok(Mode::MultiNodeMultiWriter);
    }
    match (has("ReadOnlyMany"), has("ReadWriteOnce")) {
        (true, true) => Err(
            "CSI does not support ReadOnlyMany and ReadWriteOnce on the same PersistentVolume"
                .into(),
        ),
        (true, false) => Ok(Mode::MultiNodeReaderOnly),
        (false, true) => Ok(if single_node_multi_writer {
            Mode::SingleNodeMultiWriter
        } else {
            Mode::SingleNodeWriter
        }),
        (false, false) => Err(format!("unsupported AccessMode combination: {modes:?}")),
    }
}

/// A byte count as the quantity upstream writes for it (`resource.NewQuantity(n, BinarySI)`):
/// the largest binary suffix that keeps it a whole number (`1Gi`, `1536`, `3Mi`).
pub fn quantity_from_bytes(bytes: i64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes == 0 {
        return "0".into();
    }
    let mut value = bytes;
    let mut suffix = "";
    for s in SUFFIXES {
        if value % 1024 != 0 {
            break;
        }
        value /= 1024;
        suffix = s;
    }
    format!("{value}{suffix}")
}

/// An error as the Go sidecars print it (`rpc error: code = OutOfRange desc = ...`), so events
/// read as upstream's do.
pub fn status_text(error: &ClientError) -> String {
    match error {
        ClientError::Status { code, message, .. } => {
            format!("rpc error: code = {code:?} desc = {message}")
        }
        other => other.to_string(),
    }
}

/// Parses one `NAME=unix:///path` flag value.
pub fn parse_flag(value: &str) -> Result<(String, String), String> {
    let (name, endpoint) = value
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=unix:///path, got {value:?}"))?;
    if name.is_empty() || !endpoint.starts_with("unix://") {
        return Err(format!("expected NAME=unix:///path, got {value:?}"));
    }
    Ok((name.to_string(), endpoint.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_name_a_driver_and_a_unix_endpoint() {
        assert_eq!(
            parse_flag("local.csi.volplane.io=unix:///run/csi.sock").unwrap(),
            (
                "local.csi.volplane.io".into(),
                "unix:///run/csi.sock".into()
            )
        );
        assert!(parse_flag("no-endpoint").is_err());
        assert!(parse_flag("=unix:///x").is_err());
        assert!(parse_flag("d=tcp://x").is_err());
    }

    #[test]
    fn access_modes_map_as_the_sidecars_do() {
        let m = |modes: &[&str], snmw| {
            access_mode(
                &modes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                snmw,
            )
        };
        assert_eq!(m(&["ReadWriteOnce"], true), Ok(Mode::SingleNodeMultiWriter));
        assert_eq!(m(&["ReadWriteOnce"], false), Ok(Mode::SingleNodeWriter));
        assert_eq!(
            m(&["ReadWriteOncePod"], true),
            Ok(Mode::SingleNodeSingleWriter)
        );
        assert_eq!(m(&["ReadWriteOncePod"], false), Ok(Mode::SingleNodeWriter));
        assert_eq!(
            m(&["ReadWriteMany", "ReadWriteOnce"], true),
            Ok(Mode::MultiNodeMultiWriter)
        );
        assert_eq!(m(&["ReadOnlyMany"], true), Ok(Mode::MultiNodeReaderOnly));
        assert!(m(&["ReadOnlyMany", "ReadWriteOnce"], true).is_err());
        assert!(m(&["ReadWriteOncePod", "ReadWriteOnce"], true).is_err());
        assert!(m(&[], true).is_err());
    }

    #[test]
    fn byte_counts_become_binary_quantities() {
        assert_eq!(quantity_from_bytes(1 << 30), "1Gi");
        assert_eq!(quantity_from_bytes(3 << 20), "3Mi");
        assert_eq!(quantity_from_bytes(1536), "1536");
        assert_eq!(quantity_from_bytes(1000), "1000");
        assert_eq!(quantity_from_bytes(0), "0");
    }

    #[tokio::test]
    async fn object_registrations_never_replace_flags() {
        let registry = Registry::new();
        let changes = registry.changes();
        registry.register("a.csi", "unix:///tmp/flag.sock").unwrap();
        registry
            .register_from_object("a.csi", "unix:///tmp/object.sock")
            .unwrap();
        assert_eq!(
            registry.entry("a.csi").unwrap().endpoint,
            "unix:///tmp/flag.sock"
        );
        registry.unregister_object("a.csi");
        assert!(registry.contains("a.csi"));
        registry
            .register_from_object("b.csi", "unix:///tmp/b.sock")
            .unwrap();
        registry.unregister_object("b.csi");
        assert!(!registry.contains("b.csi"));
        assert_eq!(*changes.borrow(), 3);
    }

    #[tokio::test]
    async fn unknown_drivers_are_reported_by_name() {
        let registry = Registry::new();
        registry.register("a.csi", "unix:///tmp/none.sock").unwrap();
        assert!(registry.contains("a.csi"));
        assert_eq!(registry.names(), vec!["a.csi".to_string()]);
        let error = registry.get("b.csi").unwrap_err().to_string();
        assert!(error.contains("b.csi"), "{error}");
    }
}
