//! Defaulting: the values kube-apiserver (and KubeVirt's mutating webhook) fill in when a client
//! leaves them out, so that stored objects read back as they would from a real cluster.
//!
//! Two entry points, because upstream has two moments:
//! - [`apply_defaults`] on every create and update, before validation (upstream's
//!   `SetDefaults_*`, run whenever a body is decoded). It only fills what is missing, so applying
//!   it twice changes nothing.
//! - [`prepare_for_create`] on create only (upstream's `PrepareForCreate` of each registry
//!   strategy): fields that must not come back once removed, such as a namespace's `kubernetes`
//!   finalizer, which the finalize subresource removes on purpose.

use serde_json::{Map, Value, json};

use crate::quantity;
use crate::resources::ResourceInfo;
use crate::wellknown::{FINALIZER_NAMESPACE_KUBERNETES, LABEL_METADATA_NAME};

/// File mode 0644, upstream's default for projected files.
const DEFAULT_FILE_MODE: i64 = 0o644;
const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// A projected service account token lives an hour unless asked otherwise.
const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Fills in upstream's defaults for `obj` of `resource`, in place. Kinds without defaults are
/// left untouched; so is anything that is not a JSON object.
pub fn apply_defaults(resource: &ResourceInfo, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (resource.group, resource.kind) {
        ("", "PersistentVolume") => default_persistent_volume(obj),
        ("", "PersistentVolumeClaim") => default_persistent_volume_claim(obj),
        ("", "Pod") => default_pod(obj),
        ("", "Namespace") => default_namespace(obj),
        ("", "Secret") => set_if_missing(obj, "type", json!("Opaque")),
        ("", "Node") => default_node(obj),
        ("storage.k8s.io", "StorageClass") => {
            set_if_missing(obj, "reclaimPolicy", json!("Delete"));
            set_if_missing(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("storage.k8s.io", "CSIDriver") => default_csi_driver(obj),
        ("kubevirt.io", "VirtualMachineInstance") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_vmi_spec(spec);
            }
        }
        _ => {}
    }
}

/// Create-time fields (upstream's `PrepareForCreate`): a namespace's `kubernetes` finalizer, a
/// new pod's `Pending` phase and QoS class, a new claim's `dataSource`/`dataSourceRef` mirrored
/// into each other. Call after [`apply_defaults`].
pub fn prepare_for_create(resource: &ResourceInfo, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (resource.group, resource.kind) {
        ("", "Namespace") => {
            let spec = child_object(obj, "spec");
            let finalizers = spec
                .entry("finalizers")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(list) = finalizers.as_array_mut()
                && !list
                    .iter()
                    .any(|f| f.as_str() == Some(FINALIZER_NAMESPACE_KUBERNETES))
            {
                list.push(json!(FINALIZER_NAMESPACE_KUBERNETES));
            }
        }
        ("", "Pod") => {
            let qos = pod_qos_class(obj.get("spec").unwrap_or(&Value::Null));
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = obj.get_mut("spec") {
                normalize_data_sources(spec);
            }
        }
        _ => {}
    }
}

fn set_if_missing(obj: &mut Value, key: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        match map.get(key) {
            Some(v) if !v.is_null() => {}
            _ => {
                map.insert(key.to_string(), value);
            }
        }
    }
}

/// The object at `obj[key]`, created empty when missing (or `null`).
fn child_object<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let map = obj.as_object_mut().expect("callers pass objects");
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("just made an object")
}

fn for_each_in_array(obj: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter(|i| i.is_object()) {
            f(item);
        }
    }
}

fn default_persistent_volume(obj: &mut Value) {
    let spec = child_object(obj, "spec");
    let mut spec_value = Value::Object(std::mem::take(spec));
    set_if_missing(
        &mut spec_value,
        "persistentVolumeReclaimPolicy",
        json!("Retain"),
    );
    set_if_missing(&mut spec_value, "volumeMode", json!("Filesystem"));
    default_shared_volume_sources(&mut spec_value);
    obj["spec"] = spec_value;
    let status = child_object(obj, "status");
    if status
        .get("phase")
        .is_none_or(|p| p.as_str().unwrap_or("").is_empty())
    {
        status.insert("phase".into(), json!("Pending"));
    }
}

fn default_persistent_volume_claim(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
        set_if_missing(spec, "volumeMode", json!("Filesystem"));
    }
    let status = child_object(obj, "status");
    if status
        .get("phase")
        .is_none_or(|p| p.as_str().unwrap_or("").is_empty())
    {
        status.insert("phase".into(), json!("Pending"));
    }
}

/// A claim created with only `dataSource` gets the same reference as `dataSourceRef`, and one
/// with only a same-namespace `dataSourceRef` gets it as `dataSource` (upstream's
/// `NormalizeDataSources`, so old and new clients each see the field they know).
fn normalize_data_sources(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    let data_source = map.get("dataSource").filter(|v| !v.is_null()).cloned();
    let data_source_ref = map.get("dataSourceRef").filter(|v| !v.is_null()).cloned();
    match (data_source, data_source_ref) {
        (Some(ds), None) => {
            map.insert("dataSourceRef".into(), ds);
        }
        (None, Some(r)) => {
            let namespaced = r
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !namespaced {
                let mut ds = Map::new();
                for key in ["apiGroup", "kind", "name"] {
                    if let Some(v) = r.get(key) {
                        ds.insert(key.into(), v.clone());
                    }
                }
                map.insert("dataSource".into(), Value::Object(ds));
            }
        }
        _ => {}
    }
}

/// Defaults of volume sources a PV and a pod volume share.
fn default_shared_volume_sources(source: &mut Value) {
    if let Some(host_path) = source.get_mut("hostPath").filter(|v| v.is_object()) {
        set_if_missing(host_path, "type", json!(""));
    }
    if let Some(iscsi) = source.get_mut("iscsi").filter(|v| v.is_object()) {
        set_if_missing(iscsi, "iscsiInterface", json!("default"));
    }
    if let Some(rbd) = source.get_mut("rbd").filter(|v| v.is_object()) {
        set_if_missing(rbd, "pool", json!("rbd"));
        set_if_missing(rbd, "user", json!("admin"));
        set_if_missing(rbd, "keyring", json!("/etc/ceph/keyring"));
    }
}

const POD_VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_items_field_refs(source: &mut Value) {
    for_each_in_array(source, "items", |item| {
        if let Some(field_ref) = item.get_mut("fieldRef").filter(|v| v.is_object()) {
            set_if_missing(field_ref, "apiVersion", json!("v1"));
        }
    });
}

fn default_pod_volume(volume: &mut Value) {
    let has_source = POD_VOLUME_SOURCES
        .iter()
        .any(|s| volume.get(*s).is_some_and(|v| !v.is_null()));
    if !has_source {
        // A volume without a source is an emptyDir, upstream.
        volume["emptyDir"] = json!({});
        return;
    }
    default_shared_volume_sources(volume);
    for source in ["secret", "configMap"] {
        if let Some(s) = volume.get_mut(source).filter(|v| v.is_object()) {
            set_if_missing(s, "defaultMode", json!(DEFAULT_FILE_MODE));
        }
    }
    if let Some(s) = volume.get_mut("downwardAPI").filter(|v| v.is_object()) {
        set_if_missing(s, "defaultMode", json!(DEFAULT_FILE_MODE));
        default_items_field_refs(s);
    }
    if let Some(p) = volume.get_mut("projected").filter(|v| v.is_object()) {
        set_if_missing(p, "defaultMode", json!(DEFAULT_FILE_MODE));
        for_each_in_array(p, "sources", |source| {
            if let Some(d) = source.get_mut("downwardAPI").filter(|v| v.is_object()) {
                default_items_field_refs(d);
            }
            if let Some(t) = source
                .get_mut("serviceAccountToken")
                .filter(|v| v.is_object())
            {
                set_if_missing(
                    t,
                    "expirationSeconds",
                    json!(DEFAULT_TOKEN_EXPIRATION_SECONDS),
                );
            }
        });
    }
    if let Some(spec) = volume
        .pointer_mut("/ephemeral/volumeClaimTemplate/spec")
        .filter(|v| v.is_object())
    {
        set_if_missing(spec, "volumeMode", json!("Filesystem"));
    }
}

/// `IfNotPresent`, except `Always` for images tagged `latest` or not tagged (and not pinned by
/// digest), as upstream decides.
pub fn default_image_pull_policy(image: &str) -> &'static str {
    let (name, has_digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    let tag = last_segment.split_once(':').map(|(_, t)| t);
    match tag {
        Some("latest") => "Always",
        Some(_) => "IfNotPresent",
        None if has_digest => "IfNotPresent",
        None => "Always",
    }
}

fn default_probe(probe: &mut Value) {
    set_if_missing(probe, "timeoutSeconds", json!(1));
    set_if_missing(probe, "periodSeconds", json!(10));
    set_if_missing(probe, "successThreshold", json!(1));
    set_if_missing(probe, "failureThreshold", json!(3));
    if let Some(http) = probe.get_mut("httpGet").filter(|v| v.is_object()) {
        set_if_missing(http, "path", json!("/"));
        set_if_missing(http, "scheme", json!("HTTP"));
    }
}

fn default_container(container: &mut Value, host_network: bool) {
    set_if_missing(
        container,
        "terminationMessagePath",
        json!(DEFAULT_TERMINATION_MESSAGE_PATH),
    );
    set_if_missing(container, "terminationMessagePolicy", json!("File"));
    let policy =
        default_image_pull_policy(container.get("image").and_then(Value::as_str).unwrap_or(""));
    set_if_missing(container, "imagePullPolicy", json!(policy));
    for_each_in_array(container, "ports", |port| {
        set_if_missing(port, "protocol", json!("TCP"));
        if host_network && let Some(p) = port.get("containerPort").cloned() {
            set_if_missing(port, "hostPort", p);
        }
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = container.get_mut(probe).filter(|v| v.is_object()) {
            default_probe(p);
        }
    }
    for_each_in_array(container, "env", |env| {
        if let Some(field_ref) = env
            .pointer_mut("/valueFrom/fieldRef")
            .filter(|v| v.is_object())
        {
            set_if_missing(field_ref, "apiVersion", json!("v1"));
        }
    });
    // Limits without requests request the limits.
    if let Some(resources) = container.get_mut("resources").filter(|v| v.is_object())
        && let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned()
    {
        let requests = child_object(resources, "requests");
        for (k, v) in limits {
            requests.entry(k).or_insert(v);
        }
    }
}

fn default_pod(obj: &mut Value) {
    let spec = child_object(obj, "spec");
    let mut spec_value = Value::Object(std::mem::take(spec));
    let spec = &mut spec_value;
    set_if_missing(spec, "dnsPolicy", json!("ClusterFirst"));
    set_if_missing(spec, "restartPolicy", json!("Always"));
    set_if_missing(spec, "securityContext", json!({}));
    set_if_missing(
        spec,
        "terminationGracePeriodSeconds",
        json!(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS),
    );
    set_if_missing(spec, "schedulerName", json!(DEFAULT_SCHEDULER_NAME));
    set_if_missing(spec, "enableServiceLinks", json!(true));
    let host_network = spec
        .get("hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for_each_in_array(spec, list, |c| default_container(c, host_network));
    }
    for_each_in_array(spec, "volumes", default_pod_volume);
    obj["spec"] = spec_value;
}

/// Upstream's QoS classification: BestEffort without any request or limit, Guaranteed when
/// every container's cpu and memory limits are set and equal to its requests, else Burstable.
fn pod_qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| {
            spec.get(*list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        let relevant = |m: Option<&Map<String, Value>>| {
            m.is_some_and(|m| m.keys().any(|k| k == "cpu" || k == "memory"))
        };
        if relevant(requests) || relevant(limits) {
            any = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(resource)).and_then(Value::as_str);
            let request = requests
                .and_then(|r| r.get(resource))
                .and_then(Value::as_str)
                .or(limit);
            match (limit, request) {
                (Some(l), Some(r))
                    if quantity::compare(l, r) == Some(std::cmp::Ordering::Equal) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn default_namespace(obj: &mut Value) {
    if let Some(name) = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        let metadata = child_object(obj, "metadata");
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        // Upstream overwrites the label: it always names the namespace itself.
        labels[LABEL_METADATA_NAME] = json!(name);
    }
    let status = child_object(obj, "status");
    if status
        .get("phase")
        .is_none_or(|p| p.as_str().unwrap_or("").is_empty())
    {
        status.insert("phase".into(), json!("Active"));
    }
}

fn default_node(obj: &mut Value) {
    if let Some(status) = obj.get_mut("status").filter(|s| s.is_object())
        && status.get("allocatable").is_none_or(Value::is_null)
        && let Some(capacity) = status.get("capacity").cloned()
    {
        status["allocatable"] = capacity;
    }
}

fn default_csi_driver(obj: &mut Value) {
    let spec = child_object(obj, "spec");
    let mut spec_value = Value::Object(std::mem::take(spec));
    set_if_missing(&mut spec_value, "attachRequired", json!(true));
    set_if_missing(&mut spec_value, "podInfoOnMount", json!(false));
    set_if_missing(&mut spec_value, "storageCapacity", json!(false));
    set_if_missing(
        &mut spec_value,
        "fsGroupPolicy",
        json!("ReadWriteOnceWithFSType"),
    );
    set_if_missing(&mut spec_value, "requiresRepublish", json!(false));
    set_if_missing(&mut spec_value, "seLinuxMount", json!(false));
    set_if_missing(
        &mut spec_value,
        "volumeLifecycleModes",
        json!(["Persistent"]),
    );
    obj["spec"] = spec_value;
}

/// KubeVirt's VMI defaults that volplane relies on: every volume has a disk, a disk without a
/// target is a `disk`, buses default per device (virtio disks, sata CD-ROMs; LUNs scsi, the only
/// bus volplane accepts for them), CD-ROMs are read-only with the tray closed, the machine is
/// `q35`, and a VMI without networks gets the pod network on a bridge interface.
fn default_vmi_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    let domain = child_object(spec, "domain");
    let devices = domain
        .entry("devices")
        .or_insert_with(|| Value::Object(Map::new()));
    if !devices.is_object() {
        *devices = Value::Object(Map::new());
    }

    let volume_names: Vec<(String, bool)> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let name = v.get("name")?.as_str()?.to_string();
            // A memory dump volume is written by the launcher, never shown to the guest.
            let hidden = v.get("memoryDump").is_some_and(|m| !m.is_null());
            Some((name, hidden))
        })
        .collect();

    let devices = spec.pointer_mut("/domain/devices").expect("created above");
    let disks = devices
        .as_object_mut()
        .expect("an object")
        .entry("disks")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(disks) = disks.as_array_mut() {
        for (name, hidden) in &volume_names {
            let has_disk = disks
                .iter()
                .any(|d| d.get("name").and_then(Value::as_str) == Some(name));
            if !has_disk && !hidden {
                disks.push(json!({"name": name}));
            }
        }
        for disk in disks.iter_mut().filter(|d| d.is_object()) {
            let has_target = ["disk", "lun", "cdrom"]
                .iter()
                .any(|t| disk.get(*t).is_some_and(|v| !v.is_null()));
            if !has_target {
                disk["disk"] = json!({});
            }
            for (target, bus) in [("disk", "virtio"), ("lun", "scsi"), ("cdrom", "sata")] {
                if let Some(t) = disk.get_mut(target).filter(|v| v.is_object()) {
                    set_if_missing(t, "bus", json!(bus));
                }
            }
            if let Some(cdrom) = disk.get_mut("cdrom").filter(|v| v.is_object()) {
                set_if_missing(cdrom, "readonly", json!(true));
                set_if_missing(cdrom, "tray", json!("closed"));
            }
        }
        if disks.is_empty() {
            devices.as_object_mut().expect("an object").remove("disks");
        }
    }

    let domain = spec.get_mut("domain").expect("created above");
    let machine = child_object(domain, "machine");
    if machine
        .get("type")
        .is_none_or(|t| t.as_str().unwrap_or("").is_empty())
    {
        machine.insert("type".into(), json!("q35"));
    }

    let autoattach = spec
        .pointer("/domain/devices/autoattachPodInterface")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let has_interfaces = spec
        .pointer("/domain/devices/interfaces")
        .and_then(Value::as_array)
        .is_some_and(|i| !i.is_empty());
    let has_networks = spec
        .get("networks")
        .and_then(Value::as_array)
        .is_some_and(|n| !n.is_empty());
    if autoattach && !has_interfaces && !has_networks {
        spec["domain"]["devices"]["interfaces"] = json!([{"name": "default", "bridge": {}}]);
        spec["networks"] = json!([{"name": "default", "pod": {}}]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    fn defaulted(group: &str, plural: &str, mut obj: Value) -> Value {
        let r = crate::resources::RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .unwrap();
        apply_defaults(r, &mut obj);
        obj
    }

    #[test]
    fn persistent_volume_defaults() {
        let pv = defaulted(
            "",
            "persistentvolumes",
            json!({"metadata": {"name": "pv"},
            "spec": {"hostPath": {"path": "/x"}, "rbd": {"image": "i"}}}),
        );
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["spec"]["hostPath"]["type"], "");
        assert_eq!(pv["spec"]["rbd"]["pool"], "rbd");
        assert_eq!(pv["status"]["phase"], "Pending");
        let kept = defaulted(
            "",
            "persistentvolumes",
            json!({"spec": {"persistentVolumeReclaimPolicy": "Delete",
            "volumeMode": "Block"}, "status": {"phase": "Bound"}}),
        );
        assert_eq!(kept["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(kept["spec"]["volumeMode"], "Block");
        assert_eq!(kept["status"]["phase"], "Bound");
    }

    #[test]
    fn claim_defaults() {
        let pvc = defaulted(
            "",
            "persistentvolumeclaims",
            json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
        );
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["status"]["phase"], "Pending");
    }

    #[test]
    fn storage_class_defaults() {
        let sc = defaulted(
            "storage.k8s.io",
            "storageclasses",
            json!({"provisioner": "p"}),
        );
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        let kept = defaulted(
            "storage.k8s.io",
            "storageclasses",
            json!({"reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        assert_eq!(kept["reclaimPolicy"], "Retain");
        assert_eq!(kept["volumeBindingMode"], "WaitForFirstConsumer");
    }

    #[test]
    fn pod_spec_and_container_defaults() {
        let pod = defaulted(
            "",
            "pods",
            json!({"spec": {"containers": [
            {"name": "a", "image": "busybox", "ports": [{"containerPort": 80}],
             "livenessProbe": {"httpGet": {"port": 80}},
             "resources": {"limits": {"cpu": "1"}}},
            {"name": "b", "image": "busybox:1.36"},
            {"name": "c", "image": "registry:5000/busybox:latest"},
            {"name": "d", "image": "busybox@sha256:abc"},
            {"name": "e", "image": "registry:5000/busybox", "imagePullPolicy": "Never"}]}}),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        let c = &spec["containers"];
        assert_eq!(c[0]["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c[0]["terminationMessagePolicy"], "File");
        assert_eq!(c[0]["imagePullPolicy"], "Always");
        assert_eq!(c[1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[2]["imagePullPolicy"], "Always");
        assert_eq!(c[3]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[4]["imagePullPolicy"], "Never");
        assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
        assert_eq!(c[0]["livenessProbe"]["periodSeconds"], 10);
        assert_eq!(c[0]["livenessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c[0]["resources"]["requests"]["cpu"], "1");
    }

    #[test]
    fn registry_port_is_not_a_tag() {
        assert_eq!(default_image_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(
            default_image_pull_policy("localhost:5000/app:v1"),
            "IfNotPresent"
        );
    }

    #[test]
    fn pod_volume_defaults() {
        let pod = defaulted(
            "",
            "pods",
            json!({"spec": {"containers": [], "volumes": [
            {"name": "cm", "configMap": {"name": "c"}},
            {"name": "s", "secret": {"secretName": "s"}},
            {"name": "hp", "hostPath": {"path": "/x"}},
            {"name": "nothing"},
            {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
            {"name": "d", "downwardAPI": {"items": []}},
            {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            {"name": "ed", "emptyDir": {}}]}}),
        );
        let v = &pod["spec"]["volumes"];
        assert_eq!(v[0]["configMap"]["defaultMode"], 420);
        assert_eq!(v[1]["secret"]["defaultMode"], 420);
        assert_eq!(v[2]["hostPath"]["type"], "");
        assert_eq!(v[3]["emptyDir"], json!({}));
        assert_eq!(v[4]["projected"]["defaultMode"], 420);
        assert_eq!(
            v[4]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
        assert_eq!(
            v[4]["projected"]["sources"][1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(v[5]["downwardAPI"]["defaultMode"], 420);
        assert_eq!(
            v[6]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(v[7]["emptyDir"], json!({}));
    }

    #[test]
    fn defaulting_twice_changes_nothing() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}],
                                   "volumes": [{"name": "v"}]}});
        let once = defaulted("", "pods", pod);
        let twice = defaulted("", "pods", once.clone());
        assert_eq!(once, twice);
    }

    #[test]
    fn namespace_defaults_and_create_time_finalizer() {
        let ns_res = find("", "v1", "namespaces").unwrap();
        let mut ns = json!({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "other"}}});
        apply_defaults(ns_res, &mut ns);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
        assert_eq!(ns["status"]["phase"], "Active");
        // Defaulting alone never brings the finalizer back: the finalize subresource removes it.
        assert!(ns.get("spec").is_none());
        prepare_for_create(ns_res, &mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        prepare_for_create(ns_res, &mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    }

    #[test]
    fn new_pods_are_pending_with_a_qos_class() {
        let pods = find("", "v1", "pods").unwrap();
        let mut best_effort =
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running"}});
        prepare_for_create(pods, &mut best_effort);
        assert_eq!(
            best_effort["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        let mut guaranteed = json!({"spec": {"containers": [{"name": "a", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}}]}});
        prepare_for_create(pods, &mut guaranteed);
        assert_eq!(guaranteed["status"]["qosClass"], "Guaranteed");
        let mut burstable = json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"memory": "1Gi"}}}]}});
        prepare_for_create(pods, &mut burstable);
        assert_eq!(burstable["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn new_claims_mirror_data_source_and_ref() {
        let pvcs = find("", "v1", "persistentvolumeclaims").unwrap();
        let mut only_source =
            json!({"spec": {"dataSource": {"kind": "PersistentVolumeClaim", "name": "src"}}});
        prepare_for_create(pvcs, &mut only_source);
        assert_eq!(
            only_source["spec"]["dataSourceRef"],
            json!({"kind": "PersistentVolumeClaim", "name": "src"})
        );
        let mut only_ref = json!({"spec": {"dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io",
            "kind": "VolumeSnapshot", "name": "s"}}});
        prepare_for_create(pvcs, &mut only_ref);
        assert_eq!(only_ref["spec"]["dataSource"]["kind"], "VolumeSnapshot");
        let mut cross_ns = json!({"spec": {"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "s", "namespace": "other"}}});
        prepare_for_create(pvcs, &mut cross_ns);
        assert!(cross_ns["spec"].get("dataSource").is_none());
    }

    #[test]
    fn secret_type_defaults_to_opaque() {
        let s = defaulted("", "secrets", json!({"data": {}}));
        assert_eq!(s["type"], "Opaque");
        let t = defaulted("", "secrets", json!({"type": "kubernetes.io/tls"}));
        assert_eq!(t["type"], "kubernetes.io/tls");
    }

    #[test]
    fn node_allocatable_defaults_to_capacity() {
        let n = defaulted("", "nodes", json!({"status": {"capacity": {"cpu": "2"}}}));
        assert_eq!(n["status"]["allocatable"], json!({"cpu": "2"}));
    }

    #[test]
    fn csi_driver_defaults() {
        let d = defaulted(
            "storage.k8s.io",
            "csidrivers",
            json!({"metadata": {"name": "d"}}),
        );
        assert_eq!(d["spec"]["attachRequired"], true);
        assert_eq!(d["spec"]["volumeLifecycleModes"], json!(["Persistent"]));
        assert_eq!(d["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
    }

    #[test]
    fn vmi_disks_buses_machine_and_network_defaults() {
        let vmi = defaulted(
            "kubevirt.io",
            "virtualmachineinstances",
            json!({"spec": {
            "domain": {"devices": {"disks": [
                {"name": "root"}, {"name": "iso", "cdrom": {}}, {"name": "l", "lun": {}},
                {"name": "fast", "disk": {"bus": "scsi"}}]}},
            "volumes": [{"name": "root", "containerDisk": {"image": "i"}},
                        {"name": "iso", "containerDisk": {"image": "i"}},
                        {"name": "l", "persistentVolumeClaim": {"claimName": "c"}},
                        {"name": "fast", "persistentVolumeClaim": {"claimName": "f"}},
                        {"name": "cloudinit", "cloudInitNoCloud": {"userData": "x"}},
                        {"name": "dump", "memoryDump": {"claimName": "m"}}]}}),
        );
        let disks = &vmi["spec"]["domain"]["devices"]["disks"];
        assert_eq!(disks[0]["disk"]["bus"], "virtio");
        assert_eq!(
            disks[1]["cdrom"],
            json!({"bus": "sata", "readonly": true, "tray": "closed"})
        );
        assert_eq!(disks[2]["lun"]["bus"], "scsi");
        assert_eq!(disks[3]["disk"]["bus"], "scsi");
        assert_eq!(
            disks[4],
            json!({"name": "cloudinit", "disk": {"bus": "virtio"}})
        );
        assert_eq!(disks.as_array().unwrap().len(), 5);
        assert_eq!(vmi["spec"]["domain"]["machine"]["type"], "q35");
        assert_eq!(
            vmi["spec"]["networks"],
            json!([{"name": "default", "pod": {}}])
        );
        assert_eq!(
            vmi["spec"]["domain"]["devices"]["interfaces"],
            json!([{"name": "default", "bridge": {}}])
        );
    }

    #[test]
    fn vmi_without_pod_interface_gets_no_network() {
        let vmi = defaulted(
            "kubevirt.io",
            "virtualmachineinstances",
            json!({"spec": {
            "domain": {"devices": {"autoattachPodInterface": false}, "machine": {"type": "pc"}}}}),
        );
        assert!(vmi["spec"].get("networks").is_none());
        assert_eq!(vmi["spec"]["domain"]["machine"]["type"], "pc");
        assert!(vmi["spec"]["domain"]["devices"].get("disks").is_none());
    }

    #[test]
    fn kinds_without_defaults_are_untouched() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "b"}});
        assert_eq!(defaulted("", "configmaps", cm.clone()), cm);
    }

    #[test]
    fn probes_env_host_ports_and_ephemeral_containers() {
        let pod = defaulted(
            "",
            "pods",
            json!({"spec": {"hostNetwork": true,
            "containers": [{"name": "a", "image": "x:1",
                "readinessProbe": {"exec": {"command": ["true"]}},
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}],
            "initContainers": [{"name": "i", "image": "busybox:1"}]}}),
        );
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["readinessProbe"]["timeoutSeconds"], 1);
        assert_eq!(c["readinessProbe"]["successThreshold"], 1);
        assert_eq!(c["readinessProbe"]["failureThreshold"], 3);
        assert_eq!(c["ports"][0]["hostPort"], 8080);
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            pod["spec"]["ephemeralContainers"][0]["imagePullPolicy"],
            "Always"
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["terminationMessagePolicy"],
            "File"
        );
    }

    #[test]
    fn iscsi_gets_the_default_interface() {
        let pv = defaulted(
            "",
            "persistentvolumes",
            json!({"spec": {"iscsi": {"targetPortal": "t", "iqn": "i", "lun": 0}}}),
        );
        assert_eq!(pv["spec"]["iscsi"]["iscsiInterface"], "default");
    }

    #[test]
    fn non_objects_are_ignored() {
        let mut v = json!("not an object");
        apply_defaults(find("", "v1", "pods").unwrap(), &mut v);
        prepare_for_create(find("", "v1", "pods").unwrap(), &mut v);
        assert_eq!(v, json!("not an object"));
    }
}
