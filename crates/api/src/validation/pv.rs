//! PersistentVolume rules (`ValidatePersistentVolumeSpec`, `ValidatePersistentVolumeUpdate`).

use serde_json::Value;

use super::meta::{is_dns1123_subdomain, is_qualified_name};
use super::{FieldError, Path, json};
use crate::quantity;

pub(super) const SUPPORTED_ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
pub(super) const SUPPORTED_VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const SUPPORTED_RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

/// Every PersistentVolumeSource member, in upstream's order (the first set one counts, each
/// later one is "more than 1 volume type").
const PV_SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

pub(super) fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = validate_spec(spec, &Path::new("spec"));
    if let Some(old) = old {
        errs.extend(validate_update(
            spec,
            old.get("spec").unwrap_or(&Value::Null),
        ));
    }
    errs
}

/// Access modes: at least one (the message is given by the caller's context), each supported,
/// ReadWriteOncePod alone.
pub(super) fn validate_access_modes(
    spec: &Value,
    path: &Path,
    required_detail: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let modes = json::arr(spec, "accessModes");
    let p = path.child("accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(&p, required_detail));
    }
    let (mut rwop, mut other) = (false, false);
    for m in modes {
        let mode = m.as_str().unwrap_or("");
        if !SUPPORTED_ACCESS_MODES.contains(&mode) {
            errs.push(FieldError::not_supported(&p, m, SUPPORTED_ACCESS_MODES));
        } else if mode == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            &p,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

/// `must be greater than zero` for a quantity that must be positive
/// (`ValidatePositiveQuantityValue`), or the format error when it is not a quantity.
pub(super) fn validate_positive_quantity(value: &Value, path: &Path) -> Vec<FieldError> {
    let s = value.as_str().unwrap_or("");
    match quantity::parse(s) {
        None => vec![FieldError::invalid(
            path,
            value,
            quantity::QUANTITY_FORMAT_ERROR,
        )],
        Some(q) if !q.is_positive() => {
            vec![FieldError::invalid_str(
                path,
                s,
                "must be greater than zero",
            )]
        }
        Some(_) => Vec::new(),
    }
}

/// A storage class (or volume attributes class) name is a DNS-1123 subdomain (`ValidateClassName`).
pub(super) fn validate_class_name(name: &str, path: &Path) -> Vec<FieldError> {
    is_dns1123_subdomain(name)
        .iter()
        .map(|msg| FieldError::invalid_str(path, name, msg))
        .collect()
}

pub(super) fn validate_spec(spec: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_access_modes(spec, path, "");

    let cap_path = path.child("capacity");
    match json::obj(spec, "capacity") {
        None => {
            errs.push(FieldError::required(&cap_path, ""));
            errs.push(FieldError::not_supported(
                &cap_path,
                &Value::Null,
                &["storage"],
            ));
        }
        Some(capacity) => {
            if capacity.is_empty() {
                errs.push(FieldError::required(&cap_path, ""));
            }
            if !capacity.contains_key("storage") || capacity.len() > 1 {
                errs.push(FieldError::not_supported(
                    &cap_path,
                    &Value::Object(capacity.clone()),
                    &["storage"],
                ));
            }
            for (resource, qty) in capacity {
                errs.extend(validate_positive_quantity(qty, &cap_path.key(resource)));
            }
        }
    }

    let policy = json::str_or_empty(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && !SUPPORTED_RECLAIM_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            path.child("persistentVolumeReclaimPolicy"),
            &Value::from(policy),
            SUPPORTED_RECLAIM_POLICIES,
        ));
    }

    let mut node_affinity_specified = false;
    if let Some(affinity) = json::get(spec, "nodeAffinity") {
        let (specified, affinity_errs) =
            validate_volume_node_affinity(affinity, &path.child("nodeAffinity"));
        node_affinity_specified = specified;
        errs.extend(affinity_errs);
    }

    let mut num_volumes = 0;
    for source in PV_SOURCES {
        let Some(value) = json::get(spec, source) else {
            continue;
        };
        let sp = path.child(source);
        // flexVolume is counted but never refused as a second type upstream.
        if num_volumes > 0 && *source != "flexVolume" {
            errs.push(FieldError::forbidden(
                &sp,
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        num_volumes += 1;
        match *source {
            "hostPath" => errs.extend(validate_host_path(value, &sp)),
            "nfs" => errs.extend(validate_nfs(value, &sp)),
            "local" => {
                errs.extend(validate_local(value, &sp));
                if !node_affinity_specified {
                    errs.push(FieldError::required(
                        path.child("nodeAffinity"),
                        "Local volume requires node affinity",
                    ));
                }
            }
            "csi" => errs.extend(validate_csi_pv_source(value, &sp)),
            _ => {}
        }
    }
    if num_volumes == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }

    if let Some(host_path) = json::get(spec, "hostPath")
        && clean_path(json::str_or_empty(host_path, "path")) == "/"
        && policy == "Recycle"
    {
        errs.push(FieldError::forbidden(
            path.child("persistentVolumeReclaimPolicy"),
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }

    let class = json::str_or_empty(spec, "storageClassName");
    if !class.is_empty() {
        errs.extend(validate_class_name(class, &path.child("storageClassName")));
    }
    if let Some(mode) = json::get(spec, "volumeMode")
        && !SUPPORTED_VOLUME_MODES.contains(&mode.as_str().unwrap_or(""))
    {
        errs.push(FieldError::not_supported(
            path.child("volumeMode"),
            mode,
            SUPPORTED_VOLUME_MODES,
        ));
    }
    if let Some(vac) = json::get(spec, "volumeAttributesClassName") {
        let vac = vac.as_str().unwrap_or("");
        if vac.is_empty() {
            errs.push(FieldError::required(
                path.child("volumeAttributesClassName"),
                "an empty string is disallowed",
            ));
        } else {
            errs.extend(validate_class_name(
                vac,
                &path.child("volumeAttributesClassName"),
            ));
        }
        if json::get(spec, "csi").is_none() {
            errs.push(FieldError::required(
                path.child("csi"),
                "has to be specified when using volumeAttributesClassName",
            ));
        }
    }
    errs
}

/// Go's `path.Clean` for the one question asked of it here (is this `/`?).
fn clean_path(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if p.starts_with('/') && parts.is_empty() {
        "/".to_string()
    } else {
        parts.join("/")
    }
}

/// `validatePathNoBacksteps`: no `..` element.
pub(super) fn validate_no_backsteps(p: &str, path: &Path) -> Vec<FieldError> {
    if p.split(['/', '\\']).any(|part| part == "..") {
        vec![FieldError::invalid_str(path, p, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

/// hostPath: a path without `..`, a known type (shared with pod volumes).
pub(super) fn validate_host_path(source: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = json::str_or_empty(source, "path");
    if p.is_empty() {
        errs.push(FieldError::required(path.child("path"), ""));
        return errs;
    }
    errs.extend(validate_no_backsteps(p, &path.child("path")));
    if let Some(t) = json::get(source, "type")
        && !HOST_PATH_TYPES.contains(&t.as_str().unwrap_or("-"))
    {
        errs.push(FieldError::not_supported(
            path.child("type"),
            t,
            HOST_PATH_TYPES,
        ));
    }
    errs
}

/// nfs: server and an absolute path (shared with pod volumes).
pub(super) fn validate_nfs(source: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if json::str_or_empty(source, "server").is_empty() {
        errs.push(FieldError::required(path.child("server"), ""));
    }
    let p = json::str_or_empty(source, "path");
    if p.is_empty() {
        errs.push(FieldError::required(path.child("path"), ""));
    } else if !p.starts_with('/') {
        errs.push(FieldError::invalid_str(
            path.child("path"),
            p,
            "must be an absolute path",
        ));
    }
    errs
}

fn validate_local(source: &Value, path: &Path) -> Vec<FieldError> {
    let p = json::str_or_empty(source, "path");
    if p.is_empty() {
        return vec![FieldError::required(path.child("path"), "")];
    }
    validate_no_backsteps(p, &path.child("path"))
}

/// A CSI driver name (`ValidateCSIDriverName`): at most 63 characters, a DNS-1123 subdomain
/// once lower-cased.
pub(super) fn validate_csi_driver_name(driver: &str, path: &Path) -> Vec<FieldError> {
    if driver.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    if driver.len() > 63 {
        errs.push(FieldError::too_long(path, 63));
    }
    for msg in is_dns1123_subdomain(&driver.to_lowercase()) {
        errs.push(FieldError::invalid_str(path, driver, &msg));
    }
    errs
}

fn validate_secret_ref(source: &Value, field: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(r) = json::get(source, field) {
        let p = path.child(field);
        let name = json::str_or_empty(r, "name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), "name is required"));
        } else {
            for msg in is_dns1123_subdomain(name) {
                errs.push(FieldError::invalid_str(p.child("name"), name, &msg));
            }
        }
        let namespace = json::str_or_empty(r, "namespace");
        if namespace.is_empty() {
            errs.push(FieldError::required(
                p.child("namespace"),
                "namespace is required",
            ));
        }
    }
    errs
}

fn validate_csi_pv_source(source: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs =
        validate_csi_driver_name(json::str_or_empty(source, "driver"), &path.child("driver"));
    if json::str_or_empty(source, "volumeHandle").is_empty() {
        errs.push(FieldError::required(path.child("volumeHandle"), ""));
    }
    for r in [
        "controllerPublishSecretRef",
        "nodeStageSecretRef",
        "nodePublishSecretRef",
        "controllerExpandSecretRef",
        "nodeExpandSecretRef",
    ] {
        errs.extend(validate_secret_ref(source, r, path));
    }
    errs
}

/// `validateVolumeNodeAffinity`: `required` with at least one term; returns whether affinity is
/// effectively specified (local volumes need it).
fn validate_volume_node_affinity(affinity: &Value, path: &Path) -> (bool, Vec<FieldError>) {
    let Some(required) = json::get(affinity, "required") else {
        return (
            false,
            vec![FieldError::required(
                path.child("required"),
                "must specify required node constraints",
            )],
        );
    };
    (
        true,
        validate_node_selector(required, &path.child("required")),
    )
}

/// A `NodeSelector`: at least one term, each requirement with a valid operator.
pub(super) fn validate_node_selector(selector: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let terms = json::arr(selector, "nodeSelectorTerms");
    let tp = path.child("nodeSelectorTerms");
    if terms.is_empty() {
        errs.push(FieldError::required(
            &tp,
            "must have at least one node selector term",
        ));
    }
    for (i, term) in terms.iter().enumerate() {
        for list in ["matchExpressions", "matchFields"] {
            for (j, req) in json::arr(term, list).iter().enumerate() {
                let rp = tp.index(i).child(list).index(j);
                let key = json::str_or_empty(req, "key");
                if list == "matchExpressions" {
                    for msg in is_qualified_name(key) {
                        errs.push(FieldError::invalid_str(rp.child("key"), key, &msg));
                    }
                }
                let values = json::arr(req, "values");
                let op = json::str_or_empty(req, "operator");
                match op {
                    "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                        rp.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )),
                    "Exists" | "DoesNotExist" if !values.is_empty() => {
                        errs.push(FieldError::forbidden(
                            rp.child("values"),
                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                        ))
                    }
                    "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
                        rp.child("values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    )),
                    "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
                    other => errs.push(FieldError::invalid_str(
                        rp.child("operator"),
                        other,
                        "not a valid selector operator",
                    )),
                }
            }
        }
    }
    errs
}

/// What may change on an update: not the volume source, not the volume mode, not a node
/// affinity once set.
fn validate_update(spec: &Value, old_spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let source_of = |s: &Value| -> Vec<(String, Value)> {
        PV_SOURCES
            .iter()
            .filter_map(|k| json::get(s, k).map(|v| (k.to_string(), v.clone())))
            .collect()
    };
    let mut new_source = source_of(spec);
    let old_source = source_of(old_spec);
    // A CSI volume may gain a controllerExpandSecretRef it did not have (upstream allows this to
    // fix volumes provisioned before expansion secrets existed).
    if let (Some((_, old_csi)), Some((_, new_csi))) = (
        old_source.iter().find(|(k, _)| k == "csi"),
        new_source.iter_mut().find(|(k, _)| k == "csi"),
    ) && json::get(old_csi, "controllerExpandSecretRef").is_none()
        && let Some(o) = new_csi.as_object_mut()
    {
        o.remove("controllerExpandSecretRef");
    }
    if new_source != old_source {
        errs.push(FieldError::forbidden(
            "spec.persistentvolumesource",
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    let new_mode = json::get(spec, "volumeMode");
    if new_mode != json::get(old_spec, "volumeMode") {
        errs.push(FieldError::invalid(
            "volumeMode",
            new_mode.unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
    if let Some(old_affinity) = json::get(old_spec, "nodeAffinity") {
        let new_affinity = json::get(spec, "nodeAffinity");
        if new_affinity != Some(old_affinity) {
            errs.push(FieldError::invalid(
                "nodeAffinity",
                new_affinity.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
    if let Some(old_vac) = json::get(old_spec, "volumeAttributesClassName")
        && json::get(spec, "volumeAttributesClassName").is_none()
        && !old_vac.is_null()
    {
        errs.push(FieldError::forbidden(
            "spec.volumeAttributesClassName",
            "update from non-nil value to nil is forbidden",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pv(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"}, "spec": spec})
    }

    fn good_spec() -> Value {
        json!({
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "1Gi"},
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": "/tmp/pv1"}
        })
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn with(mut spec: Value, key: &str, value: Value) -> Value {
        spec[key] = value;
        spec
    }

    fn without(mut spec: Value, key: &str) -> Value {
        spec.as_object_mut().unwrap().remove(key);
        spec
    }

    #[test]
    fn valid_host_path_pv_passes() {
        assert!(validate(&pv(good_spec()), None).is_empty());
    }

    #[test]
    fn access_modes_are_required_and_checked() {
        let errs = validate(&pv(without(good_spec(), "accessModes")), None);
        assert_eq!(messages(&errs), vec!["spec.accessModes: Required value"]);
        let errs = validate(
            &pv(with(good_spec(), "accessModes", json!(["ReadMostly"]))),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.accessModes: Unsupported value: \"ReadMostly\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\""
            ]
        );
        let errs = validate(
            &pv(with(
                good_spec(),
                "accessModes",
                json!(["ReadWriteOncePod", "ReadOnlyMany"]),
            )),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"
            ]
        );
    }

    #[test]
    fn capacity_is_required_positive_and_storage_only() {
        let errs = validate(&pv(without(good_spec(), "capacity")), None);
        assert_eq!(errs[0].to_string(), "spec.capacity: Required value");
        let errs = validate(
            &pv(with(good_spec(), "capacity", json!({"storage": "0"}))),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec!["spec.capacity[storage]: Invalid value: \"0\": must be greater than zero"]
        );
        let errs = validate(
            &pv(with(
                good_spec(),
                "capacity",
                json!({"storage": "1Gi", "cpu": "1"}),
            )),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.starts_with("Unsupported value"));
    }

    #[test]
    fn reclaim_policy_must_be_known() {
        let errs = validate(
            &pv(with(
                good_spec(),
                "persistentVolumeReclaimPolicy",
                json!("Keep"),
            )),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Recycle\", \"Retain\""
            ]
        );
    }

    #[test]
    fn exactly_one_volume_source() {
        let errs = validate(&pv(without(good_spec(), "hostPath")), None);
        assert_eq!(
            messages(&errs),
            vec!["spec: Required value: must specify a volume type"]
        );
        let errs = validate(
            &pv(with(
                good_spec(),
                "nfs",
                json!({"server": "s", "path": "/x"}),
            )),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec!["spec.nfs: Forbidden: may not specify more than 1 volume type"]
        );
    }

    #[test]
    fn volume_mode_must_be_block_or_filesystem() {
        let errs = validate(&pv(with(good_spec(), "volumeMode", json!("Raw"))), None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.volumeMode");
    }

    #[test]
    fn storage_class_name_must_be_a_subdomain() {
        let errs = validate(
            &pv(with(good_spec(), "storageClassName", json!("Fast_SSD"))),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.storageClassName");
    }

    #[test]
    fn host_path_needs_a_path_without_backsteps_and_a_known_type() {
        let errs = validate(
            &pv(with(good_spec(), "hostPath", json!({"path": ""}))),
            None,
        );
        assert_eq!(messages(&errs), vec!["spec.hostPath.path: Required value"]);
        let errs = validate(
            &pv(with(good_spec(), "hostPath", json!({"path": "/a/../b"}))),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec!["spec.hostPath.path: Invalid value: \"/a/../b\": must not contain '..'"]
        );
        let errs = validate(
            &pv(with(
                good_spec(),
                "hostPath",
                json!({"path": "/a", "type": "Dir"}),
            )),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.hostPath.type");
    }

    #[test]
    fn recycling_root_host_path_is_forbidden() {
        let spec = with(good_spec(), "hostPath", json!({"path": "//"}));
        let errs = validate(
            &pv(with(
                spec,
                "persistentVolumeReclaimPolicy",
                json!("Recycle"),
            )),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath mount of '/'"
            ]
        );
    }

    #[test]
    fn local_volumes_need_node_affinity() {
        let spec = with(
            without(good_spec(), "hostPath"),
            "local",
            json!({"path": "/mnt/disk"}),
        );
        let errs = validate(&pv(spec.clone()), None);
        assert_eq!(
            messages(&errs),
            vec!["spec.nodeAffinity: Required value: Local volume requires node affinity"]
        );
        let affinity = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}});
        assert!(validate(&pv(with(spec.clone(), "nodeAffinity", affinity)), None).is_empty());
        let errs = validate(
            &pv(with(
                spec,
                "nodeAffinity",
                json!({"required": {"nodeSelectorTerms": []}}),
            )),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.nodeAffinity.required.nodeSelectorTerms: Required value: must have at least one node selector term"
            ]
        );
    }

    #[test]
    fn csi_needs_driver_and_volume_handle() {
        let spec = with(without(good_spec(), "hostPath"), "csi", json!({}));
        let errs = validate(&pv(spec), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.csi.driver: Required value",
                "spec.csi.volumeHandle: Required value"
            ]
        );
        let spec = with(
            without(good_spec(), "hostPath"),
            "csi",
            json!({"driver": "bad_driver!", "volumeHandle": "h",
                   "nodePublishSecretRef": {"name": "s"}}),
        );
        let errs = validate(&pv(spec), None);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].field, "spec.csi.driver");
        assert_eq!(
            errs[1].to_string(),
            "spec.csi.nodePublishSecretRef.namespace: Required value: namespace is required"
        );
    }

    #[test]
    fn nfs_path_must_be_absolute() {
        let spec = with(
            without(good_spec(), "hostPath"),
            "nfs",
            json!({"server": "s", "path": "x"}),
        );
        let errs = validate(&pv(spec), None);
        assert_eq!(
            messages(&errs),
            vec!["spec.nfs.path: Invalid value: \"x\": must be an absolute path"]
        );
    }

    #[test]
    fn source_and_volume_mode_are_immutable() {
        let old = pv(good_spec());
        let new = pv(with(good_spec(), "hostPath", json!({"path": "/other"})));
        let errs = validate(&new, Some(&old));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"
            ]
        );
        let new = pv(with(good_spec(), "volumeMode", json!("Block")));
        let errs = validate(&new, Some(&old));
        assert_eq!(
            messages(&errs),
            vec!["volumeMode: Invalid value: \"Block\": field is immutable"]
        );
        // Capacity and reclaim policy may change.
        let new = pv(with(
            good_spec(),
            "persistentVolumeReclaimPolicy",
            json!("Delete"),
        ));
        assert!(validate(&new, Some(&old)).is_empty());
    }

    #[test]
    fn node_affinity_is_immutable_once_set() {
        let affinity = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "k", "operator": "Exists"}]}]}});
        let other = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "j", "operator": "Exists"}]}]}});
        let old = pv(with(good_spec(), "nodeAffinity", affinity.clone()));
        assert!(validate(&pv(good_spec()), Some(&pv(good_spec()))).is_empty());
        // Setting it for the first time is allowed.
        assert!(validate(&old, Some(&pv(good_spec()))).is_empty());
        let errs = validate(&pv(with(good_spec(), "nodeAffinity", other)), Some(&old));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "nodeAffinity");
    }

    #[test]
    fn csi_may_gain_an_expand_secret() {
        let spec = with(
            without(good_spec(), "hostPath"),
            "csi",
            json!({"driver": "d.example.com", "volumeHandle": "h"}),
        );
        let old = pv(spec.clone());
        let new = pv(with(
            spec,
            "csi",
            json!({"driver": "d.example.com", "volumeHandle": "h",
                   "controllerExpandSecretRef": {"name": "s", "namespace": "n"}}),
        ));
        assert!(validate(&new, Some(&old)).is_empty());
    }

    #[test]
    fn volume_attributes_class_needs_a_name_and_csi() {
        let errs = validate(
            &pv(with(good_spec(), "volumeAttributesClassName", json!(""))),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.volumeAttributesClassName: Required value: an empty string is disallowed",
                "spec.csi: Required value: has to be specified when using volumeAttributesClassName"
            ]
        );
        let spec = with(
            without(good_spec(), "hostPath"),
            "csi",
            json!({"driver": "d.example.com", "volumeHandle": "h"}),
        );
        let errs = validate(
            &pv(with(
                spec.clone(),
                "volumeAttributesClassName",
                json!("Gold!"),
            )),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.volumeAttributesClassName");
        // Once set it may not be removed.
        let old = pv(with(
            spec.clone(),
            "volumeAttributesClassName",
            json!("gold"),
        ));
        let errs = validate(&pv(spec), Some(&old));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.volumeAttributesClassName: Forbidden: update from non-nil value to nil is forbidden"
            ]
        );
    }

    #[test]
    fn node_selector_requirements_are_checked() {
        let p = Path::new("na");
        let errs = validate_node_selector(
            &json!({"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "a", "operator": "Near", "values": ["x"]},
                {"key": "b", "operator": "Gt", "values": ["1", "2"]},
                {"key": "c", "operator": "In"},
                {"key": "bad key", "operator": "Exists"}]}]}),
            &p,
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert_eq!(
            errs[0].field,
            "na.nodeSelectorTerms[0].matchExpressions[0].operator"
        );
        assert_eq!(
            errs[1].field,
            "na.nodeSelectorTerms[0].matchExpressions[1].values"
        );
        assert_eq!(
            errs[2].field,
            "na.nodeSelectorTerms[0].matchExpressions[2].values"
        );
        assert_eq!(
            errs[3].field,
            "na.nodeSelectorTerms[0].matchExpressions[3].key"
        );
        let errs = validate(&pv(with(good_spec(), "nodeAffinity", json!({}))), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.nodeAffinity.required: Required value: must specify required node constraints"
            ]
        );
    }

    #[test]
    fn secret_ref_names_must_be_valid() {
        let spec = with(
            without(good_spec(), "hostPath"),
            "csi",
            json!({"driver": "d.example.com", "volumeHandle": "h",
                   "nodeStageSecretRef": {"name": "Bad_Name", "namespace": "ns"},
                   "controllerPublishSecretRef": {"namespace": "ns"}}),
        );
        let errs = validate(&pv(spec), None);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "spec.csi.controllerPublishSecretRef.name: Required value: name is required"
        );
        assert_eq!(errs[1].field, "spec.csi.nodeStageSecretRef.name");
    }

    #[test]
    fn long_csi_driver_names_are_too_long() {
        let spec = with(
            without(good_spec(), "hostPath"),
            "csi",
            json!({"driver": format!("{}.example.com", "a".repeat(60)), "volumeHandle": "h"}),
        );
        let errs = validate(&pv(spec), None);
        assert_eq!(
            errs[0].to_string(),
            "spec.csi.driver: Too long: may not be more than 63 bytes"
        );
    }

    #[test]
    fn local_path_is_required() {
        let affinity = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "k", "operator": "Exists"}]}]}});
        let spec = with(
            with(without(good_spec(), "hostPath"), "local", json!({})),
            "nodeAffinity",
            affinity,
        );
        assert_eq!(
            messages(&validate(&pv(spec), None)),
            vec!["spec.local.path: Required value"]
        );
    }
}
