//! The Identity service: plugin name and version, capabilities, Probe.

use super::Core;
use super::error::{DriverError, DriverResult};
use crate::proto::{self, plugin_capability};

impl Core {
    /// GetPluginInfo: the driver name and the binary's version.
    pub fn plugin_info(&self) -> proto::GetPluginInfoResponse {
        proto::GetPluginInfoResponse {
            name: super::DRIVER_NAME.to_string(),
            vendor_version: env!("CARGO_PKG_VERSION").to_string(),
            manifest: [(
                "stateDir".to_string(),
                self.state.root().display().to_string(),
            )]
            .into(),
        }
    }

    /// GetPluginCapabilities: CONTROLLER_SERVICE (when the controller is
    /// served), VOLUME_ACCESSIBILITY_CONSTRAINTS and ONLINE expansion.
    pub fn plugin_capabilities(&self) -> proto::GetPluginCapabilitiesResponse {
        use plugin_capability::service::Type as Service;
        use plugin_capability::volume_expansion::Type as Expansion;
        let service = |t: Service| proto::PluginCapability {
            r#type: Some(plugin_capability::Type::Service(
                plugin_capability::Service { r#type: t as i32 },
            )),
        };
        let mut capabilities = vec![service(Service::VolumeAccessibilityConstraints)];
        if self.config.controller {
            capabilities.insert(0, service(Service::ControllerService));
        }
        capabilities.push(proto::PluginCapability {
            r#type: Some(plugin_capability::Type::VolumeExpansion(
                plugin_capability::VolumeExpansion {
                    r#type: Expansion::Online as i32,
                },
            )),
        });
        proto::GetPluginCapabilitiesResponse { capabilities }
    }

    /// Probe: ready when the state directory is usable.
    pub fn probe(&self) -> DriverResult<proto::ProbeResponse> {
        let root = self.state.root();
        let usable = std::fs::metadata(root.join("volumes"))
            .and_then(|_| std::fs::metadata(root.join("locks")));
        usable.map_err(DriverError::io(format!(
            "state directory {}",
            root.display()
        )))?;
        Ok(proto::ProbeResponse { ready: Some(true) })
    }
}
