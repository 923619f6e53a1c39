//! The registry of resources the API server serves.
//!
//! Each [`ResourceInfo`] is the single source of truth for a resource's names (kind, plural,
//! singular, short names, categories), its scope, its subresources and where its objects live in
//! the store. Discovery, routing, storage keys and kubectl's short names all come from here.

/// A subresource the API server serves under a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// `/status`: writes touch only `.status`; writes to the main resource never touch it.
    Status,
    /// `namespaces/{name}/finalize`: writes touch only `.spec.finalizers`.
    Finalize,
    /// `pods/{name}/binding`: the scheduler's way to set `spec.nodeName`.
    Binding,
    /// `pods/{name}/log`: the containers' output.
    Log,
}

impl Subresource {
    pub fn name(self) -> &'static str {
        match self {
            Subresource::Status => "status",
            Subresource::Finalize => "finalize",
            Subresource::Binding => "binding",
            Subresource::Log => "log",
        }
    }

    pub fn from_name(name: &str) -> Option<Subresource> {
        [
            Subresource::Status,
            Subresource::Finalize,
            Subresource::Binding,
            Subresource::Log,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// One served resource (a group, version and plural name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The store key segment(s) under `/registry/`: `pods`, `minions` (nodes, as upstream),
    /// `kubevirt.io/virtualmachines`. Two resources sharing one (core and events.k8s.io events)
    /// serve the same objects.
    pub storage: &'static str,
}

impl ResourceInfo {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of a list of these objects.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `plural` or `plural.group`, as upstream names a resource in messages and discovery.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_subresource(&self, sub: Subresource) -> bool {
        self.subresources.contains(&sub)
    }

    /// The store prefix of every object of this resource, ending in `/`.
    pub fn storage_prefix(&self) -> String {
        format!("/registry/{}/", self.storage)
    }

    /// The store prefix of this resource's objects in one namespace (or of all, when
    /// cluster-scoped), ending in `/`.
    pub fn storage_prefix_in(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/", self.storage, ns),
            _ => self.storage_prefix(),
        }
    }

    /// The store key of one object.
    pub fn storage_key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{}", self.storage_prefix_in(namespace), name)
    }

    /// True when this resource is served by the API server's own kinds rather than
    /// custom-resource-like ones (strategic merge patch applies only to built-in kinds).
    pub fn is_builtin(&self) -> bool {
        matches!(
            self.group,
            "" | "storage.k8s.io" | "coordination.k8s.io" | "events.k8s.io"
        )
    }
}

use Subresource::{Binding, Finalize, Log, Status};

// Positional on purpose: the table below reads as one row per resource.
#[allow(clippy::too_many_arguments)]
const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Subresource],
    storage: &'static str,
) -> ResourceInfo {
    ResourceInfo {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories,
        subresources,
        storage,
    }
}

/// Every resource the API server serves, in discovery order.
#[rustfmt::skip]
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    res("", "v1", "Namespace", "namespaces", "namespace", false, &["ns"], &[], &[Status, Finalize], "namespaces"),
    res("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false, &["pv"], &[], &[Status], "persistentvolumes"),
    res("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, &["pvc"], &[], &[Status], "persistentvolumeclaims"),
    res("", "v1", "Pod", "pods", "pod", true, &["po"], &["all"], &[Status, Binding, Log], "pods"),
    res("", "v1", "Node", "nodes", "node", false, &["no"], &[], &[Status], "minions"),
    res("", "v1", "ConfigMap", "configmaps", "configmap", true, &["cm"], &[], &[], "configmaps"),
    res("", "v1", "Secret", "secrets", "secret", true, &[], &[], &[], "secrets"),
    res("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, &["sa"], &[], &[], "serviceaccounts"),
    res("", "v1", "Event", "events", "event", true, &["ev"], &[], &[], "events"),
    // events.k8s.io/v1: the same objects as core/v1 events, in the newer shape
    res("events.k8s.io", "v1", "Event", "events", "event", true, &["ev"], &[], &[], "events"),
    // storage.k8s.io/v1
    res("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", false, &["sc"], &[], &[], "storageclasses"),
    res("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", "volumeattachment", false, &[], &[], &[Status], "volumeattachments"),
    res("storage.k8s.io", "v1", "CSIDriver", "csidrivers", "csidriver", false, &[], &[], &[], "csidrivers"),
    res("storage.k8s.io", "v1", "CSINode", "csinodes", "csinode", false, &[], &[], &[], "csinodes"),
    res("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities", "csistoragecapacity", true, &[], &[], &[], "csistoragecapacities"),
    // coordination.k8s.io/v1
    res("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, &[], &[], &[], "leases"),
    // snapshot.storage.k8s.io/v1
    res("snapshot.storage.k8s.io", "v1", "VolumeSnapshot", "volumesnapshots", "volumesnapshot", true, &["vs"], &[], &[Status], "snapshot.storage.k8s.io/volumesnapshots"),
    res("snapshot.storage.k8s.io", "v1", "VolumeSnapshotContent", "volumesnapshotcontents", "volumesnapshotcontent", false, &["vsc", "vscs"], &[], &[Status], "snapshot.storage.k8s.io/volumesnapshotcontents"),
    res("snapshot.storage.k8s.io", "v1", "VolumeSnapshotClass", "volumesnapshotclasses", "volumesnapshotclass", false, &["vsclass", "vsclasses"], &[], &[], "snapshot.storage.k8s.io/volumesnapshotclasses"),
    // kubevirt.io/v1
    res("kubevirt.io", "v1", "VirtualMachine", "virtualmachines", "virtualmachine", true, &["vm", "vms"], &["all"], &[Status], "kubevirt.io/virtualmachines"),
    res("kubevirt.io", "v1", "VirtualMachineInstance", "virtualmachineinstances", "virtualmachineinstance", true, &["vmi", "vmis"], &["all"], &[Status], "kubevirt.io/virtualmachineinstances"),
    res("kubevirt.io", "v1", "VirtualMachineInstanceMigration", "virtualmachineinstancemigrations", "virtualmachineinstancemigration", true, &["vmim", "vmims"], &["all"], &[Status], "kubevirt.io/virtualmachineinstancemigrations"),
    // cdi.kubevirt.io/v1beta1
    res("cdi.kubevirt.io", "v1beta1", "DataVolume", "datavolumes", "datavolume", true, &["dv", "dvs"], &["all"], &[Status], "cdi.kubevirt.io/datavolumes"),
];

/// The resource served at `group`/`version` under `plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of an object's `apiVersion` and `kind`.
pub fn find_by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// The API groups served, each with its versions, in discovery order (core group first, as "").
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_names_are_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} served twice",
                    a.group_resource()
                );
            }
        }
    }

    #[test]
    fn storage_keys_follow_kube_apiserver_layout() {
        let pvc = find("", "v1", "persistentvolumeclaims").unwrap();
        assert_eq!(
            pvc.storage_key(Some("default"), "data"),
            "/registry/persistentvolumeclaims/default/data"
        );
        let node = find("", "v1", "nodes").unwrap();
        assert_eq!(node.storage_key(None, "n1"), "/registry/minions/n1");
        let vm = find("kubevirt.io", "v1", "virtualmachines").unwrap();
        assert_eq!(
            vm.storage_key(Some("ns"), "vm1"),
            "/registry/kubevirt.io/virtualmachines/ns/vm1"
        );
    }

    #[test]
    fn core_and_events_group_share_event_storage() {
        let core = find("", "v1", "events").unwrap();
        let newer = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.storage_prefix(), newer.storage_prefix());
    }

    #[test]
    fn groups_list_core_first() {
        let groups = groups();
        assert_eq!(groups[0], ("", vec!["v1"]));
        assert!(
            groups
                .iter()
                .any(|(g, v)| *g == "cdi.kubevirt.io" && v == &["v1beta1"])
        );
    }
}
