//! KubeVirt's kinds (`kubevirt.io/v1`): VirtualMachine, VirtualMachineInstance and
//! VirtualMachineInstanceMigration, with upstream's JSON field names so KubeVirt manifests apply
//! unchanged.
//!
//! The storage side (disks, volumes, volume status, hotplug options) and what a typical VM
//! manifest carries (CPU, memory, machine, interfaces, networks, scheduling) are typed. Parts of
//! the domain volplane does not act on (firmware, clock, features, probes, GPUs, access
//! credentials…) are kept as opaque JSON so they round-trip without loss. Every optional field is
//! an `Option` so an object is written back exactly as it was read.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PersistentVolumeClaimVolumeSource as CorePvcVolumeSource,
    PodDNSConfig, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cdi::DataVolumeSpec;

/// The schema of a part kept as opaque JSON: any object, fields preserved.
pub(crate) fn opaque_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// The schema of a list of opaque objects.
pub(crate) fn opaque_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

/// The desired state of a running VM.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kubevirt.io",
    version = "v1",
    kind = "VirtualMachineInstance",
    plural = "virtualmachineinstances",
    shortname = "vmi",
    shortname = "vmis",
    namespaced,
    status = "VirtualMachineInstanceStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineInstanceSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// The guest's hardware: CPU, memory, devices.
    pub domain: DomainSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// None, LiveMigrate, LiveMigrateIfPossible or External.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eviction_strategy: Option<String>,
    /// `Paused` starts the guest paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// The volumes the disks (by the same name) are backed by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub liveness_probe: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub readiness_probe: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<Network>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<PodDNSConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_list")]
    pub access_credentials: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

/// The guest's virtual hardware.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<Machine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub firmware: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub clock: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub features: Option<Value>,
    pub devices: Devices,
    /// `shared` or `auto`.
    #[serde(rename = "ioThreadsPolicy", skip_serializing_if = "Option::is_none")]
    pub io_threads_policy: Option<String>,
    #[serde(rename = "ioThreads", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub io_threads: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub chassis: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub launch_security: Option<Value>,
}

/// Requests and limits of the VM (keys `cpu`, `memory`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, Quantity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, Quantity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overcommit_guest_overhead: Option<bool>,
}

/// CPU topology and model.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sockets: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// A libvirt CPU model, `host-model` or `host-passthrough`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<CpuFeature>>,
    #[serde(
        rename = "dedicatedCpuPlacement",
        skip_serializing_if = "Option::is_none"
    )]
    pub dedicated_cpu_placement: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub numa: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolate_emulator_thread: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub realtime: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuFeature {
    pub name: String,
    /// force, require, optional, disable or forbid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Guest memory.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hugepages: Option<Hugepages>,
    /// The memory the guest sees (defaults to the request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_guest: Option<Quantity>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hugepages {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<String>,
}

/// The QEMU machine type (`q35`, `pc`…).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Machine {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// The guest's devices.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Devices {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_virtio_transitional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_hotplug: Option<bool>,
    /// Disks, CD-ROMs and LUNs, each backed by the volume of the same name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<Disk>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub watchdog: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<Interface>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<Input>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattach_pod_interface: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattach_graphics_device: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattach_serial_console: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattach_mem_balloon: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattach_input_device: Option<bool>,
    #[serde(rename = "autoattachVSOCK", skip_serializing_if = "Option::is_none")]
    pub autoattach_vsock: Option<bool>,
    /// A virtio RNG fed from the host; present means enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rng: Option<Rng>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_multi_queue: Option<bool>,
    #[serde(
        rename = "networkInterfaceMultiqueue",
        skip_serializing_if = "Option::is_none"
    )]
    pub network_interface_multiqueue: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_list")]
    pub gpus: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub downward_metrics: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_list")]
    pub filesystems: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_list")]
    pub host_devices: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub client_passthrough: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub sound: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub tpm: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_serial_console: Option<bool>,
}

/// The host's random number generator, passed through (an empty object).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Rng {}

/// One disk of the guest: at most one of `disk`, `lun`, `cdrom` (none means `disk`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    /// Also the name of the volume backing the disk.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lun: Option<LunTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cdrom: Option<CdromTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_order: Option<u32>,
    /// Shown to the guest (`/dev/disk/by-id/*_<serial>`); how hotplugged disks are identified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(rename = "dedicatedIOThread", skip_serializing_if = "Option::is_none")]
    pub dedicated_io_thread: Option<bool>,
    /// none, writethrough or writeback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// native or threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub block_size: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shareable: Option<bool>,
    /// stop, ignore, report or enospace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_policy: Option<String>,
}

impl Disk {
    /// The bus the disk sits on, whichever target type it has.
    pub fn bus(&self) -> Option<&str> {
        self.disk
            .as_ref()
            .and_then(|d| d.bus.as_deref())
            .or_else(|| self.lun.as_ref().and_then(|l| l.bus.as_deref()))
            .or_else(|| self.cdrom.as_ref().and_then(|c| c.bus.as_deref()))
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskTarget {
    /// virtio, sata, scsi or usb.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    #[serde(rename = "readonly", skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LunTarget {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    #[serde(rename = "readonly", skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CdromTarget {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    #[serde(rename = "readonly", skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// open or closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tray: Option<String>,
}

/// A network interface of the guest, bound to the network of the same name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    /// e1000, e1000e, ne2k_pci, pcnet, rtl8139 or virtio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub bridge: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub slirp: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub masquerade: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub sriov: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub macvtap: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub passt: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<PluginBinding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Port>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_order: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub dhcp_options: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acpi_index: Option<i32>,
    /// `absent` asks for the interface to be removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PluginBinding {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Port {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    pub port: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Input {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
    pub name: String,
}

/// A network the guest's interfaces attach to: the pod network or a Multus one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Network {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodNetwork>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multus: Option<MultusNetwork>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PodNetwork {
    #[serde(rename = "vmNetworkCIDR", skip_serializing_if = "Option::is_none")]
    pub vm_network_cidr: Option<String>,
    #[serde(rename = "vmIPv6NetworkCIDR", skip_serializing_if = "Option::is_none")]
    pub vm_ipv6_network_cidr: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultusNetwork {
    pub network_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// A named volume; exactly one source is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub host_disk: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_init_no_cloud: Option<CloudInitSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_init_config_drive: Option<CloudInitSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub sysprep: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_disk: Option<ContainerDiskSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<EphemeralVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_disk: Option<EmptyDiskSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_volume: Option<DataVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub config_map: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub secret: Option<Value>,
    #[serde(rename = "downwardAPI", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub downward_api: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub service_account: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub downward_metrics: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_dump: Option<PersistentVolumeClaimVolumeSource>,
}

impl Volume {
    /// The claim backing the volume: a claim source's, or a DataVolume's (same name).
    pub fn claim_name(&self) -> Option<&str> {
        self.persistent_volume_claim
            .as_ref()
            .map(|p| p.claim_name.as_str())
            .or_else(|| self.data_volume.as_ref().map(|d| d.name.as_str()))
    }

    /// Whether the volume may be plugged into and out of a running guest.
    pub fn is_hotpluggable(&self) -> bool {
        self.persistent_volume_claim
            .as_ref()
            .and_then(|p| p.hotpluggable)
            .or_else(|| self.data_volume.as_ref().and_then(|d| d.hotpluggable))
            .unwrap_or(false)
    }
}

/// A claim in the VM's namespace, attached directly to QEMU.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimVolumeSource {
    pub claim_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hotpluggable: Option<bool>,
}

/// A DataVolume (and the claim of the same name it populates).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DataVolumeSource {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hotpluggable: Option<bool>,
}

/// cloud-init user and network data (NoCloud or ConfigDrive: the same fields).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudInitSource {
    #[serde(rename = "secretRef", skip_serializing_if = "Option::is_none")]
    pub user_data_secret_ref: Option<LocalObjectReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_data_secret_ref: Option<LocalObjectReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_data_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_data: Option<String>,
}

/// A disk image shipped in a container image.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDiskSource {
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
}

/// A copy-on-write layer over a claim, dropped with the VMI.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralVolumeSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<CorePvcVolumeSource>,
}

/// A sparse scratch disk living as long as the VMI.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EmptyDiskSource {
    pub capacity: Quantity,
}

/// The sources a volume can be hot-plugged from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HotplugVolumeSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_volume: Option<DataVolumeSource>,
}

/// The body of `addvolume`: a disk and its source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddVolumeOptions {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<Disk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_source: Option<HotplugVolumeSource>,
    /// `["All"]` for a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<String>>,
}

/// The body of `removevolume`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoveVolumeOptions {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<String>>,
}

/// What is known of a running VM.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineInstanceStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Pending, Scheduling, Scheduled, Running, Succeeded, Failed or Unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_transition_timestamps: Option<Vec<PhaseTransitionTimestamp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<NetworkInterfaceStatus>>,
    #[serde(rename = "guestOSInfo", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub guest_os_info: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_state: Option<MigrationState>,
    /// BlockMigration or LiveMigration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launcher_container_image_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evacuation_node_name: Option<String>,
    /// Pod UID → node name of the pods running the VM (two during a migration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_pods: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_status: Option<Vec<VolumeStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub kernel_boot_status: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_freeze_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub topology_hints: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_machine_revision_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_user: Option<u64>,
    #[serde(rename = "VSOCKCID", skip_serializing_if = "Option::is_none")]
    pub vsock_cid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux_context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<Machine>,
    #[serde(rename = "currentCPUTopology", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub current_cpu_topology: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub memory: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_list")]
    pub migrated_volumes: Option<Vec<Value>>,
}

/// A condition of a VM, VMI or migration (Ready, LiveMigratable, Paused, …).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTransitionTimestamp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_transition_timestamp: Option<Time>,
}

/// An interface as the guest reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterfaceStatus {
    #[serde(rename = "ipAddress", skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "ipAddresses", skip_serializing_if = "Option::is_none")]
    pub ip_addresses: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_count: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_state: Option<String>,
}

/// A live migration in progress or done.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_timestamp: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_node_domain_ready_timestamp: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_node_domain_detected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_node_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_direct_migration_node_ports: Option<BTreeMap<String, i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_pod: Option<String>,
    /// The attachment pod holding the hotplugged volumes on the target node.
    #[serde(
        rename = "targetAttachmentPodUID",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_attachment_pod_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_requested: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(rename = "migrationUid", skip_serializing_if = "Option::is_none")]
    pub migration_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_policy_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub migration_configuration: Option<Value>,
}

/// Where one volume of a VMI stands (COMPATIBILITY §7): hotplug phases Pending → Bound →
/// AttachedToNode → MountedToPod → Ready, and Detaching → UnMountedFromPod on removal.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    pub name: String,
    /// The guest device (`sda`, `vdb`); upstream always writes it, empty until known.
    #[serde(default)]
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_info: Option<PersistentVolumeClaimInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hotplug_volume: Option<HotplugVolumeStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub memory_dump_volume: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub container_disk_volume: Option<Value>,
}

/// The pod holding a hotplugged volume on the VMI's node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HotplugVolumeStatus {
    #[serde(rename = "attachPodName", skip_serializing_if = "Option::is_none")]
    pub attach_pod_name: Option<String>,
    #[serde(rename = "attachPodUID", skip_serializing_if = "Option::is_none")]
    pub attach_pod_uid: Option<String>,
}

/// What the VM runtime needs to know of a volume's claim.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_modes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<BTreeMap<String, Quantity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, Quantity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preallocated: Option<bool>,
    /// The share of a filesystem claim kept free, as a decimal string in [0, 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem_overhead: Option<String>,
}

/// A VM: a VMI template and whether it should run.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kubevirt.io",
    version = "v1",
    kind = "VirtualMachine",
    plural = "virtualmachines",
    shortname = "vm",
    shortname = "vms",
    namespaced,
    status = "VirtualMachineStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineSpec {
    /// Deprecated in favour of `runStrategy`; the two exclude each other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    /// Always, RerunOnFailure, Manual, Halted, Once or WaitAsReceiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub instancetype: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub preference: Option<Value>,
    pub template: VirtualMachineInstanceTemplateSpec,
    /// DataVolumes created with (and owned by) the VM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_volume_templates: Option<Vec<DataVolumeTemplateSpec>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_volumes_strategy: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct VirtualMachineInstanceTemplateSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<VirtualMachineInstanceSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeTemplateSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    pub spec: DataVolumeSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub status: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_in_progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_in_progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// Stopped, Provisioning, Starting, Running, Paused, Stopping, Terminating, Migrating, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub printable_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_change_requests: Option<Vec<StateChangeRequest>>,
    /// Hotplug requests made with `--persist`, applied to the template by the VM controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_requests: Option<Vec<VolumeRequest>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_list")]
    pub volume_snapshot_statuses: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub start_failure: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub memory_dump_request: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub volume_update_state: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub instancetype_ref: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_object")]
    pub preference_ref: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StateChangeRequest {
    /// Start or Stop.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// One pending add or remove of a persisted hotplug volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_volume_options: Option<AddVolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_volume_options: Option<RemoveVolumeOptions>,
}

/// A request to live-migrate a VMI.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kubevirt.io",
    version = "v1",
    kind = "VirtualMachineInstanceMigration",
    plural = "virtualmachineinstancemigrations",
    shortname = "vmim",
    shortname = "vmims",
    namespaced,
    status = "VirtualMachineInstanceMigrationStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineInstanceMigrationSpec {
    /// The VMI to migrate, in the migration's namespace.
    #[serde(rename = "vmiName", skip_serializing_if = "Option::is_none")]
    pub vmi_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_node_selector: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineInstanceMigrationStatus {
    /// Pending, Scheduling, Scheduled, PreparingTarget, TargetReady, Running, Succeeded, Failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_transition_timestamps: Option<Vec<PhaseTransitionTimestamp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_state: Option<MigrationState>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    /// A VM as KubeVirt's documentation writes one, with a DataVolume template, cloud-init and
    /// the scheduling fields; it must come back unchanged.
    fn typical_vm() -> Value {
        json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {"name": "fedora", "namespace": "default", "labels": {"app": "fedora"}},
            "spec": {
                "runStrategy": "Always",
                "dataVolumeTemplates": [{
                    "metadata": {"name": "fedora-root"},
                    "spec": {
                        "source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}},
                        "storage": {"accessModes": ["ReadWriteOnce"],
                                    "resources": {"requests": {"storage": "5Gi"}}}
                    }
                }],
                "template": {
                    "metadata": {"labels": {"kubevirt.io/domain": "fedora"}},
                    "spec": {
                        "domain": {
                            "cpu": {"cores": 2, "sockets": 1, "threads": 1, "model": "host-passthrough"},
                            "memory": {"guest": "2Gi"},
                            "resources": {"requests": {"memory": "2Gi", "cpu": "1"}},
                            "machine": {"type": "q35"},
                            "firmware": {"bootloader": {"efi": {"secureBoot": false}}},
                            "features": {"acpi": {}, "smm": {"enabled": true}},
                            "devices": {
                                "disks": [
                                    {"name": "root", "disk": {"bus": "virtio"}, "bootOrder": 1},
                                    {"name": "cloudinit", "cdrom": {"bus": "sata", "readonly": true}},
                                    {"name": "data", "lun": {"bus": "scsi"}, "serial": "DATA01", "cache": "none"}
                                ],
                                "interfaces": [{"name": "default", "masquerade": {}, "model": "virtio",
                                                "ports": [{"name": "ssh", "port": 22}]}],
                                "rng": {},
                                "autoattachGraphicsDevice": false
                            }
                        },
                        "networks": [{"name": "default", "pod": {}}],
                        "volumes": [
                            {"name": "root", "dataVolume": {"name": "fedora-root"}},
                            {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config\npassword: fedora\n"}},
                            {"name": "data", "persistentVolumeClaim": {"claimName": "data", "hotpluggable": true}}
                        ],
                        "terminationGracePeriodSeconds": 180,
                        "nodeSelector": {"kubernetes.io/arch": "amd64"},
                        "evictionStrategy": "LiveMigrate",
                        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
                    }
                }
            },
            "status": {"printableStatus": "Running", "ready": true, "created": true,
                       "volumeRequests": [{"addVolumeOptions": {"name": "hp",
                           "disk": {"name": "hp", "disk": {"bus": "scsi"}, "serial": "HP1"},
                           "volumeSource": {"dataVolume": {"name": "hp-dv", "hotpluggable": true}}}}]}
        })
    }

    #[test]
    fn typical_vm_manifest_round_trips_unchanged() {
        let manifest = typical_vm();
        let vm: VirtualMachine = serde_json::from_value(manifest.clone()).unwrap();
        assert_eq!(serde_json::to_value(&vm).unwrap(), manifest);
        let template = vm.spec.template.spec.as_ref().unwrap();
        let disks = template.domain.devices.disks.as_ref().unwrap();
        assert_eq!(disks[2].bus(), Some("scsi"));
        let volumes = template.volumes.as_ref().unwrap();
        assert_eq!(volumes[0].claim_name(), Some("fedora-root"));
        assert!(volumes[2].is_hotpluggable());
        assert!(!volumes[0].is_hotpluggable());
    }

    #[test]
    fn vmi_status_round_trips_with_volume_status() {
        let manifest = json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance",
            "metadata": {"name": "v", "namespace": "default"},
            "spec": {"domain": {"devices": {}}},
            "status": {
                "phase": "Running",
                "nodeName": "node-1",
                "conditions": [{"type": "Ready", "status": "True"}],
                "interfaces": [{"ipAddress": "10.0.0.5", "ipAddresses": ["10.0.0.5"], "mac": "52:54:00:00:00:01", "name": "default"}],
                "migrationState": {"targetNode": "node-2", "completed": true, "migrationUid": "u1",
                                   "targetAttachmentPodUID": "p2"},
                "volumeStatus": [
                    {"name": "root", "target": "vda", "phase": "Ready"},
                    {"name": "hp", "target": "", "phase": "AttachedToNode", "reason": "SuccessfulCreate",
                     "hotplugVolume": {"attachPodName": "hp-volume-abc", "attachPodUID": "uid-1"},
                     "persistentVolumeClaimInfo": {"claimName": "hp", "accessModes": ["ReadWriteOnce"],
                        "volumeMode": "Filesystem", "capacity": {"storage": "1Gi"},
                        "requests": {"storage": "1Gi"}, "filesystemOverhead": "0.055"}}
                ],
                "VSOCKCID": 3,
                "guestOSInfo": {"id": "fedora"}
            }
        });
        let vmi: VirtualMachineInstance = serde_json::from_value(manifest.clone()).unwrap();
        assert_eq!(serde_json::to_value(&vmi).unwrap(), manifest);
        let status = vmi.status.unwrap();
        let hp = &status.volume_status.unwrap()[1];
        assert_eq!(
            hp.hotplug_volume
                .as_ref()
                .unwrap()
                .attach_pod_uid
                .as_deref(),
            Some("uid-1")
        );
    }

    #[test]
    fn volume_status_always_writes_target() {
        let vs = VolumeStatus {
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&vs).unwrap(),
            json!({"name": "x", "target": ""})
        );
    }

    #[test]
    fn migration_round_trips_and_names_its_resource() {
        let manifest = json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": "m", "namespace": "default"},
            "spec": {"vmiName": "v"},
            "status": {"phase": "Succeeded", "migrationState": {"sourceNode": "a", "targetNode": "b"}}
        });
        let m: VirtualMachineInstanceMigration = serde_json::from_value(manifest.clone()).unwrap();
        assert_eq!(serde_json::to_value(&m).unwrap(), manifest);
        assert_eq!(
            VirtualMachineInstanceMigration::plural(&()),
            "virtualmachineinstancemigrations"
        );
        assert_eq!(VirtualMachineInstance::api_version(&()), "kubevirt.io/v1");
    }

    #[test]
    fn add_volume_options_use_upstream_names() {
        let body = json!({"name": "v1", "disk": {"name": "v1", "disk": {"bus": "scsi"}, "serial": "S1", "cache": "none"},
                          "volumeSource": {"persistentVolumeClaim": {"claimName": "c", "hotpluggable": true}},
                          "dryRun": ["All"]});
        let opts: AddVolumeOptions = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(serde_json::to_value(&opts).unwrap(), body);
        let remove: RemoveVolumeOptions = serde_json::from_value(json!({"name": "v1"})).unwrap();
        assert_eq!(remove.name, "v1");
    }

    #[test]
    fn schemas_generate() {
        let schema = schemars::schema_for!(VirtualMachineSpec);
        let text = serde_json::to_string(&schema).unwrap();
        assert!(text.contains("dataVolumeTemplates"));
        assert!(text.contains("x-kubernetes-preserve-unknown-fields"));
    }

    #[test]
    fn crds_generate_with_the_served_names() {
        use kube::CustomResourceExt;
        for (crd, plural) in [
            (VirtualMachine::crd(), "virtualmachines"),
            (VirtualMachineInstance::crd(), "virtualmachineinstances"),
            (
                VirtualMachineInstanceMigration::crd(),
                "virtualmachineinstancemigrations",
            ),
            (crate::cdi::DataVolume::crd(), "datavolumes"),
            (crate::snapshot::VolumeSnapshot::crd(), "volumesnapshots"),
            (
                crate::snapshot::VolumeSnapshotContent::crd(),
                "volumesnapshotcontents",
            ),
        ] {
            assert_eq!(crd.spec.names.plural, plural);
            let served = crate::resources::RESOURCES
                .iter()
                .find(|r| r.plural == plural)
                .unwrap();
            assert_eq!(crd.spec.group, served.group);
            assert_eq!(crd.spec.names.kind, served.kind);
            assert_eq!(crd.spec.scope == "Namespaced", served.namespaced);
            assert_eq!(
                crd.spec.names.short_names.clone().unwrap_or_default(),
                served
                    .short_names
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
            );
        }
    }
}
