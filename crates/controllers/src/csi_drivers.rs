//! How the controller-manager reaches each CSI driver's Controller service.
//!
//! A driver is known by name (the `provisioner` of a StorageClass, the `driver` of a CSI PV or
//! VolumeSnapshotClass) and reached on a unix socket. Endpoints come from the controller-manager's
//! configuration (`--csi-driver NAME=unix:///path`; `volplane up` registers its built-in driver
//! this way). A loop that finds no endpoint for a driver reports it (event and `volplane why`)
//! instead of guessing.

use std::collections::HashMap;
use std::sync::RwLock;

use volplane_csi::{ClientOptions, CsiClient};

/// Why a driver cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No endpoint is registered for the driver.
    #[error("no endpoint is registered for CSI driver {0:?} (the controller-manager reaches drivers named by --csi-driver NAME=unix:///path)")]
    Unknown(String),
    /// The endpoint is not a valid `unix:///path`.
    #[error("CSI driver {driver:?}: {source}")]
    Endpoint {
        /// The driver's name.
        driver: String,
        /// Why the endpoint is invalid.
        source: volplane_csi::ClientError,
    },
}

/// The drivers the controller-manager can call, by name.
#[derive(Debug, Default)]
pub struct Registry {
    clients: RwLock<HashMap<String, CsiClient>>,
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
        let client = CsiClient::connect(endpoint, ClientOptions::default()).map_err(|source| {
            RegistryError::Endpoint {
                driver: driver.to_string(),
                source,
            }
        })?;
        self.clients
            .write()
            .expect("registry lock")
            .insert(driver.to_string(), client);
        Ok(())
    }

    /// The client for `driver`.
    pub fn get(&self, driver: &str) -> Result<CsiClient, RegistryError> {
        self.clients
            .read()
            .expect("registry lock")
            .get(driver)
            .cloned()
            .ok_or_else(|| RegistryError::Unknown(driver.to_string()))
    }

    /// Whether `driver` is registered.
    pub fn contains(&self, driver: &str) -> bool {
        self.clients.read().expect("registry lock").contains_key(driver)
    }

    /// The registered driver names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .clients
            .read()
            .expect("registry lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
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
            ("local.csi.volplane.io".into(), "unix:///run/csi.sock".into())
        );
        assert!(parse_flag("no-endpoint").is_err());
        assert!(parse_flag("=unix:///x").is_err());
        assert!(parse_flag("d=tcp://x").is_err());
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
