//! Pod rules for what concerns storage: volumes (`ValidateVolumes`) and the containers' volume
//! mounts and devices (`validateVolumeMounts`, `validateVolumeDevices`), and which fields an
//! update may change (`ValidatePodUpdate`). The rest of a pod's spec (probes, ports, resources,
//! security) is not validated here.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::meta::is_dns1123_label;
use super::pv::{validate_csi_driver_name, validate_host_path, validate_nfs};
use super::pvc::validate_spec as validate_claim_spec;
use super::{FieldError, Path, json};
use crate::quantity;

/// Every pod VolumeSource member, in upstream's order.
const POD_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "flexVolume",
    "cinder",
    "cephfs",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
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

const CONTAINER_LISTS: &[&str] = &["initContainers", "containers", "ephemeralContainers"];
const MOUNT_PROPAGATION_MODES: &[&str] = &["Bidirectional", "HostToContainer", "None"];
/// `0777`: the largest file mode a volume may set.
const MAX_FILE_MODE: i64 = 0o777;

pub(super) fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let path = Path::new("spec");
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let (volumes, mut errs) = validate_volumes(spec, &path.child("volumes"));
    let pod_name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    errs.extend(validate_claims_of_ephemeral_volumes(
        spec,
        pod_name,
        &path.child("volumes"),
    ));
    for list in CONTAINER_LISTS {
        for (i, container) in json::arr(spec, list).iter().enumerate() {
            let cp = path.child(list).index(i);
            errs.extend(validate_volume_mounts(container, &volumes, &cp));
            errs.extend(validate_volume_devices(container, &volumes, &cp));
        }
    }
    if let Some(old) = old {
        errs.extend(validate_update(
            spec,
            old.get("spec").unwrap_or(&Value::Null),
        ));
    }
    errs
}

/// The largest `activeDeadlineSeconds` (Go's `math.MaxInt32`).
const MAX_ACTIVE_DEADLINE_SECONDS: i64 = i32::MAX as i64;

/// What an update may change in a running pod's spec (upstream's `ValidatePodUpdate`): container
/// images, a shorter `activeDeadlineSeconds`, added tolerations, a negative grace period turned
/// into 1, removed scheduling gates. Everything else, `nodeName` included (the scheduler binds
/// through the `binding` subresource), is fixed.
fn validate_update(spec: &Value, old_spec: &Value) -> Vec<FieldError> {
    let path = Path::new("spec");
    let deadline_path = path.child("activeDeadlineSeconds");
    let new_deadline = json::get(spec, "activeDeadlineSeconds");
    let old_deadline = json::get(old_spec, "activeDeadlineSeconds");
    match (new_deadline, old_deadline) {
        (Some(new), old) => {
            let n = new.as_i64().unwrap_or(-1);
            if !(0..=MAX_ACTIVE_DEADLINE_SECONDS).contains(&n) {
                return vec![FieldError::invalid(
                    deadline_path,
                    new,
                    &format!("must be between 0 and {MAX_ACTIVE_DEADLINE_SECONDS}, inclusive"),
                )];
            }
            if old.and_then(Value::as_i64).is_some_and(|o| o < n) {
                return vec![FieldError::invalid(
                    deadline_path,
                    new,
                    "must be less than or equal to previous value",
                )];
            }
        }
        (None, Some(_)) => {
            return vec![FieldError::invalid(
                deadline_path,
                &Value::Null,
                "must not update from a positive integer to nil value",
            )];
        }
        (None, None) => {}
    }

    let mut munged = spec.clone();
    if !munged.is_object() {
        munged = Value::Object(Default::default());
    }
    for list in ["containers", "initContainers"] {
        let old_list = json::arr(old_spec, list);
        if let Some(new_list) = munged.get_mut(list).and_then(Value::as_array_mut) {
            // Only images may change, container by container; a different number of
            // containers is caught by the comparison below.
            if new_list.len() == old_list.len() {
                for (new_c, old_c) in new_list.iter_mut().zip(old_list) {
                    match (new_c.as_object_mut(), old_c.get("image")) {
                        (Some(c), Some(image)) => {
                            c.insert("image".into(), image.clone());
                        }
                        (Some(c), None) => {
                            c.remove("image");
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let map = munged.as_object_mut().expect("made an object above");
    let restore =
        |map: &mut serde_json::Map<String, Value>, key: &str| match json::get(old_spec, key) {
            Some(v) => {
                map.insert(key.into(), v.clone());
            }
            None => {
                map.remove(key);
            }
        };
    restore(map, "activeDeadlineSeconds");
    let old_tolerations = json::arr(old_spec, "tolerations");
    let new_tolerations = json::arr(spec, "tolerations");
    if old_tolerations.iter().all(|t| new_tolerations.contains(t)) {
        restore(map, "tolerations");
    }
    let old_grace = json::get(old_spec, "terminationGracePeriodSeconds").and_then(Value::as_i64);
    let new_grace = json::get(spec, "terminationGracePeriodSeconds").and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
        restore(map, "terminationGracePeriodSeconds");
    }
    let old_gates = json::arr(old_spec, "schedulingGates");
    if json::arr(spec, "schedulingGates")
        .iter()
        .all(|g| old_gates.contains(g))
    {
        restore(map, "schedulingGates");
    }
    let mut old_normalised = old_spec.clone();
    if !old_normalised.is_object() {
        old_normalised = Value::Object(Default::default());
    }
    if munged != old_normalised {
        return vec![FieldError::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,\
             `spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` \
             (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow \
             it to be set to 1 if it was previously negative)",
        )];
    }
    Vec::new()
}

/// A claim volume may not name the claim an ephemeral volume of the same pod creates
/// (`<pod>-<volume>`): that claim belongs to the ephemeral volume.
fn validate_claims_of_ephemeral_volumes(
    spec: &Value,
    pod_name: &str,
    path: &Path,
) -> Vec<FieldError> {
    if pod_name.is_empty() {
        return Vec::new();
    }
    let volumes = json::arr(spec, "volumes");
    let created: HashSet<String> = volumes
        .iter()
        .filter(|v| json::get(v, "ephemeral").is_some())
        .map(|v| format!("{pod_name}-{}", json::str_or_empty(v, "name")))
        .collect();
    let mut errs = Vec::new();
    for (i, volume) in volumes.iter().enumerate() {
        if let Some(claim) = json::get(volume, "persistentVolumeClaim") {
            let claim_name = json::str_or_empty(claim, "claimName");
            if created.contains(claim_name) {
                errs.push(FieldError::invalid_str(
                    path.index(i)
                        .child("persistentVolumeClaim")
                        .child("claimName"),
                    claim_name,
                    "must not reference a PVC that gets created for an ephemeral volume",
                ));
            }
        }
    }
    errs
}

/// What the mount checks need to know of a volume: which source it has.
struct VolumeInfo<'a> {
    source: Option<&'a str>,
}

impl VolumeInfo<'_> {
    /// Only claims (and ephemeral claims) can be block devices.
    fn can_be_block(&self) -> bool {
        matches!(self.source, Some("persistentVolumeClaim" | "ephemeral"))
    }
}

fn validate_volumes<'a>(
    spec: &'a Value,
    path: &Path,
) -> (HashMap<&'a str, VolumeInfo<'a>>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut names: HashMap<&str, VolumeInfo> = HashMap::new();
    for (i, volume) in json::arr(spec, "volumes").iter().enumerate() {
        let vp = path.index(i);
        let name = json::str_or_empty(volume, "name");
        let (source, source_errs) = validate_volume_source(volume, &vp);
        let mut name_errs = Vec::new();
        if name.is_empty() {
            name_errs.push(FieldError::required(vp.child("name"), ""));
        } else {
            for msg in is_dns1123_label(name) {
                name_errs.push(FieldError::invalid_str(vp.child("name"), name, &msg));
            }
        }
        if !name.is_empty() && names.contains_key(name) {
            name_errs.push(FieldError::duplicate(vp.child("name"), &Value::from(name)));
        }
        // Like upstream, a volume with any error is not recorded, so mounts of it are reported
        // as not found as well.
        if name_errs.is_empty() && source_errs.is_empty() {
            names.insert(name, VolumeInfo { source });
        }
        errs.extend(source_errs);
        errs.extend(name_errs);
    }
    (names, errs)
}

/// Exactly one source, then that source's own rules. Returns the source's name.
fn validate_volume_source<'a>(
    volume: &'a Value,
    path: &Path,
) -> (Option<&'a str>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut found: Option<&str> = None;
    for source in POD_SOURCES {
        let Some(value) = json::get(volume, source) else {
            continue;
        };
        let sp = path.child(source);
        if found.is_some() {
            errs.push(FieldError::forbidden(
                &sp,
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        found = Some(source);
        errs.extend(match *source {
            "hostPath" => validate_host_path(value, &sp),
            "emptyDir" => validate_empty_dir(value, &sp),
            "nfs" => validate_nfs(value, &sp),
            "secret" => validate_secret(value, &sp),
            "configMap" => validate_config_map(value, &sp),
            "downwardAPI" => validate_downward_api(value, &sp),
            "projected" => validate_projected(value, &sp),
            "persistentVolumeClaim" => {
                if json::str_or_empty(value, "claimName").is_empty() {
                    vec![FieldError::required(sp.child("claimName"), "")]
                } else {
                    Vec::new()
                }
            }
            "csi" => {
                validate_csi_driver_name(json::str_or_empty(value, "driver"), &sp.child("driver"))
            }
            "ephemeral" => validate_ephemeral(value, &sp),
            _ => Vec::new(),
        });
    }
    if found.is_none() {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    (found, errs)
}

fn validate_empty_dir(source: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(limit) = json::get(source, "sizeLimit") {
        let s = limit.as_str().unwrap_or("");
        match quantity::parse(s) {
            None => errs.push(FieldError::invalid(
                path.child("sizeLimit"),
                limit,
                quantity::QUANTITY_FORMAT_ERROR,
            )),
            Some(q) if q.0 < 0 => errs.push(FieldError::forbidden(
                path.child("sizeLimit"),
                "SizeLimit field must be a valid resource quantity",
            )),
            Some(_) => {}
        }
    }
    errs
}

fn validate_file_mode(source: &Value, field: &str, path: &Path) -> Vec<FieldError> {
    match json::get(source, field) {
        Some(mode)
            if !mode
                .as_i64()
                .is_some_and(|m| (0..=MAX_FILE_MODE).contains(&m)) =>
        {
            vec![FieldError::invalid(
                path.child(field),
                mode,
                "must be a number between 0 and 0777 (octal), both inclusive",
            )]
        }
        _ => Vec::new(),
    }
}

/// `validateLocalDescendingPath`: relative, no `..` element.
fn validate_local_descending_path(p: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if p.starts_with('/') {
        errs.push(FieldError::invalid_str(path, p, "must be a relative path"));
    }
    if p.split(['/', '\\']).any(|part| part == "..") {
        errs.push(FieldError::invalid_str(path, p, "must not contain '..'"));
    }
    errs
}

/// `validateKeyToPath`: a key, a relative path, a valid mode.
fn validate_key_to_path(item: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if json::str_or_empty(item, "key").is_empty() {
        errs.push(FieldError::required(path.child("key"), ""));
    }
    let p = json::str_or_empty(item, "path");
    if p.is_empty() {
        errs.push(FieldError::required(path.child("path"), ""));
    }
    errs.extend(validate_local_non_reserved_path(p, &path.child("path")));
    errs.extend(validate_file_mode(item, "mode", path));
    errs
}

/// `validateLocalNonReservedPath`: a descending path that does not start with `..` (reserved
/// for the atomic writer's own files).
fn validate_local_non_reserved_path(p: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_local_descending_path(p, path);
    if p.starts_with("..") {
        errs.push(FieldError::invalid_str(path, p, "must not start with '..'"));
    }
    errs
}

fn validate_secret(source: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if json::str_or_empty(source, "secretName").is_empty() {
        errs.push(FieldError::required(path.child("secretName"), ""));
    }
    errs.extend(validate_file_mode(source, "defaultMode", path));
    for (i, item) in json::arr(source, "items").iter().enumerate() {
        errs.extend(validate_key_to_path(item, &path.child("items").index(i)));
    }
    errs
}

fn validate_config_map(source: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if json::str_or_empty(source, "name").is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    }
    errs.extend(validate_file_mode(source, "defaultMode", path));
    for (i, item) in json::arr(source, "items").iter().enumerate() {
        errs.extend(validate_key_to_path(item, &path.child("items").index(i)));
    }
    errs
}

/// One downward API file: a path and exactly one of fieldRef / resourceFieldRef.
fn validate_downward_api_file(item: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = json::str_or_empty(item, "path");
    if p.is_empty() {
        errs.push(FieldError::required(path.child("path"), ""));
    }
    errs.extend(validate_local_non_reserved_path(p, &path.child("path")));
    errs.extend(validate_file_mode(item, "mode", path));
    let field_ref = json::get(item, "fieldRef");
    let resource_ref = json::get(item, "resourceFieldRef");
    match (field_ref, resource_ref) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            &Value::from("resource"),
            "fieldRef and resourceFieldRef can not be specified simultaneously",
        )),
        (None, None) => errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        )),
        (Some(f), None) => {
            if json::str_or_empty(f, "fieldPath").is_empty() {
                errs.push(FieldError::required(
                    path.child("fieldRef").child("fieldPath"),
                    "",
                ));
            }
        }
        (None, Some(r)) => {
            if json::str_or_empty(r, "resource").is_empty() {
                errs.push(FieldError::required(
                    path.child("resourceFieldRef").child("resource"),
                    "",
                ));
            }
        }
    }
    errs
}

fn validate_downward_api(source: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_file_mode(source, "defaultMode", path);
    for (i, item) in json::arr(source, "items").iter().enumerate() {
        errs.extend(validate_downward_api_file(
            item,
            &path.child("items").index(i),
        ));
    }
    errs
}

/// `validateProjectionSources`: each source one kind, paths unique across sources.
fn validate_projected(source: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_file_mode(source, "defaultMode", path);
    let mut all_paths: HashSet<String> = HashSet::new();
    let sources_path = path.child("sources");
    for (i, projection) in json::arr(source, "sources").iter().enumerate() {
        let ip = sources_path.index(i);
        let mut count = 0;
        for kind in [
            "secret",
            "configMap",
            "downwardAPI",
            "serviceAccountToken",
            "clusterTrustBundle",
        ] {
            let Some(value) = json::get(projection, kind) else {
                continue;
            };
            count += 1;
            let kp = ip.child(kind);
            match kind {
                "secret" | "configMap" => {
                    let name = json::str_or_empty(value, "name");
                    if name.is_empty() {
                        errs.push(FieldError::required(kp.child("name"), ""));
                    }
                    for (j, item) in json::arr(value, "items").iter().enumerate() {
                        errs.extend(validate_key_to_path(item, &kp.child("items").index(j)));
                        let p = json::str_or_empty(item, "path");
                        if !p.is_empty() && !all_paths.insert(p.to_string()) {
                            errs.push(FieldError::invalid_str(
                                path,
                                name,
                                "conflicting duplicate paths",
                            ));
                        }
                    }
                }
                "downwardAPI" => {
                    for (j, item) in json::arr(value, "items").iter().enumerate() {
                        errs.extend(validate_downward_api_file(
                            item,
                            &kp.child("items").index(j),
                        ));
                        let p = json::str_or_empty(item, "path");
                        if !p.is_empty() && !all_paths.insert(p.to_string()) {
                            errs.push(FieldError::invalid_str(
                                path,
                                p,
                                "conflicting duplicate paths",
                            ));
                        }
                    }
                }
                "serviceAccountToken" => {
                    if let Some(seconds) = json::get(value, "expirationSeconds") {
                        let s = seconds.as_i64().unwrap_or(0);
                        if s < 600 {
                            errs.push(FieldError::invalid(
                                kp.child("expirationSeconds"),
                                seconds,
                                "may not specify a duration less than 10 minutes",
                            ));
                        } else if s > 1 << 32 {
                            errs.push(FieldError::invalid(
                                kp.child("expirationSeconds"),
                                seconds,
                                "may not specify a duration larger than 2^32 seconds",
                            ));
                        }
                    }
                    let p = json::str_or_empty(value, "path");
                    if p.is_empty() {
                        errs.push(FieldError::required(kp.child("path"), ""));
                    } else {
                        errs.extend(validate_local_non_reserved_path(p, &kp.child("path")));
                        if !all_paths.insert(p.to_string()) {
                            errs.push(FieldError::invalid_str(
                                path,
                                p,
                                "conflicting duplicate paths",
                            ));
                        }
                    }
                }
                _ => {
                    let p = json::str_or_empty(value, "path");
                    if p.is_empty() {
                        errs.push(FieldError::required(kp.child("path"), ""));
                    } else {
                        errs.extend(validate_local_non_reserved_path(p, &kp.child("path")));
                    }
                }
            }
        }
        if count > 1 {
            errs.push(FieldError::forbidden(
                &ip,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

/// An ephemeral volume's claim template: only labels and annotations in its metadata, and a
/// valid claim spec.
fn validate_ephemeral(source: &Value, path: &Path) -> Vec<FieldError> {
    let tp = path.child("volumeClaimTemplate");
    let Some(template) = json::get(source, "volumeClaimTemplate") else {
        return vec![FieldError::required(tp, "")];
    };
    let mut errs = Vec::new();
    if let Some(meta) = json::obj(template, "metadata") {
        for key in meta.keys() {
            if key != "labels" && key != "annotations" {
                errs.push(FieldError::invalid(
                    tp.child("metadata"),
                    &Value::Object(meta.clone()),
                    &format!("field {key} cannot be set"),
                ));
            }
        }
    }
    errs.extend(validate_claim_spec(
        template.get("spec").unwrap_or(&Value::Null),
        &tp.child("spec"),
    ));
    errs
}

fn validate_volume_mounts(
    container: &Value,
    volumes: &HashMap<&str, VolumeInfo>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let list_path = path.child("volumeMounts");
    let mut mount_paths: HashSet<&str> = HashSet::new();
    let devices: Vec<(&str, &str)> = json::arr(container, "volumeDevices")
        .iter()
        .map(|d| {
            (
                json::str_or_empty(d, "name"),
                json::str_or_empty(d, "devicePath"),
            )
        })
        .collect();
    for (i, mount) in json::arr(container, "volumeMounts").iter().enumerate() {
        let mp = list_path.index(i);
        let name = json::str_or_empty(mount, "name");
        if name.is_empty() {
            errs.push(FieldError::required(mp.child("name"), ""));
        }
        if !volumes.contains_key(name) {
            errs.push(FieldError::not_found(mp.child("name"), &Value::from(name)));
        }
        let mount_path = json::str_or_empty(mount, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(mp.child("mountPath"), ""));
        }
        if !mount_paths.insert(mount_path) {
            errs.push(FieldError::invalid_str(
                mp.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        if devices.iter().any(|(n, _)| *n == name) {
            errs.push(FieldError::invalid_str(
                mp.child("name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.iter().any(|(_, p)| *p == mount_path) {
            errs.push(FieldError::invalid_str(
                mp.child("mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        // Upstream reports the sub-path and propagation problems on the list's path, without
        // the index; kept so that clients matching on the field see the same one.
        let sub_path = json::str_or_empty(mount, "subPath");
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(
                sub_path,
                &list_path.child("subPath"),
            ));
        }
        let sub_path_expr = json::str_or_empty(mount, "subPathExpr");
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid_str(
                    mp.child("subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                sub_path_expr,
                &list_path.child("subPathExpr"),
            ));
        }
        if let Some(mode) = json::get(mount, "mountPropagation") {
            let pp = list_path.child("mountPropagation");
            if !MOUNT_PROPAGATION_MODES.contains(&mode.as_str().unwrap_or("")) {
                errs.push(FieldError::not_supported(
                    &pp,
                    mode,
                    MOUNT_PROPAGATION_MODES,
                ));
            } else if mode.as_str() == Some("Bidirectional")
                && !container
                    .pointer("/securityContext/privileged")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            {
                errs.push(FieldError::forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
    }
    errs
}

fn validate_volume_devices(
    container: &Value,
    volumes: &HashMap<&str, VolumeInfo>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut device_paths: HashSet<&str> = HashSet::new();
    let mut device_names: HashSet<&str> = HashSet::new();
    let mounts: Vec<(&str, &str)> = json::arr(container, "volumeMounts")
        .iter()
        .map(|m| {
            (
                json::str_or_empty(m, "name"),
                json::str_or_empty(m, "mountPath"),
            )
        })
        .collect();
    for (i, device) in json::arr(container, "volumeDevices").iter().enumerate() {
        let dp = path.child("volumeDevices").index(i);
        let name = json::str_or_empty(device, "name");
        let device_path = json::str_or_empty(device, "devicePath");
        if name.is_empty() {
            errs.push(FieldError::required(dp.child("name"), ""));
        }
        if device_names.contains(name) {
            errs.push(FieldError::invalid_str(
                dp.child("name"),
                name,
                "must be unique",
            ));
        }
        match volumes.get(name) {
            Some(v) if !v.can_be_block() => errs.push(FieldError::invalid_str(
                dp.child("name"),
                name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            )),
            Some(_) => {}
            None => errs.push(FieldError::not_found(dp.child("name"), &Value::from(name))),
        }
        if device_path.is_empty() {
            errs.push(FieldError::required(dp.child("devicePath"), ""));
        }
        if device_paths.contains(device_path) {
            errs.push(FieldError::invalid_str(
                dp.child("devicePath"),
                device_path,
                "must be unique",
            ));
        }
        if !device_path.is_empty() && device_path.split('/').any(|p| p == "..") {
            errs.push(FieldError::invalid_str(
                dp.child("devicePath"),
                device_path,
                "can not contain backsteps ('..')",
            ));
        } else {
            device_paths.insert(device_path);
        }
        if mounts.iter().any(|(n, _)| *n == name) {
            errs.push(FieldError::invalid_str(
                dp.child("name"),
                name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.iter().any(|(_, p)| *p == device_path) {
            errs.push(FieldError::invalid_str(
                dp.child("devicePath"),
                device_path,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !name.is_empty() {
            device_names.insert(name);
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldErrorReason;
    use serde_json::json;

    fn pod(volumes: Value, containers: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"},
               "spec": {"volumes": volumes, "containers": containers}})
    }

    fn container(mounts: Value) -> Value {
        json!([{"name": "c", "image": "busybox", "volumeMounts": mounts}])
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn volume_errors(volume: Value) -> Vec<String> {
        messages(&validate(&pod(json!([volume]), json!([])), None))
    }

    #[test]
    fn valid_pod_passes() {
        let p = pod(
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "c"}},
                   {"name": "cache", "emptyDir": {}}]),
            container(json!([{"name": "data", "mountPath": "/data"},
                             {"name": "cache", "mountPath": "/cache", "subPath": "a/b"}])),
        );
        assert!(validate(&p, None).is_empty(), "{:?}", validate(&p, None));
    }

    #[test]
    fn each_volume_has_exactly_one_source() {
        assert_eq!(
            volume_errors(json!({"name": "v"})),
            vec!["spec.volumes[0]: Required value: must specify a volume type"]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}})),
            vec!["spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"]
        );
    }

    #[test]
    fn volume_names_are_required_unique_labels() {
        let errs = validate(
            &pod(
                json!([{"name": "", "emptyDir": {}}, {"name": "A.b", "emptyDir": {}},
                        {"name": "x", "emptyDir": {}}, {"name": "x", "emptyDir": {}}]),
                json!([]),
            ),
            None,
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].to_string(), "spec.volumes[0].name: Required value");
        assert_eq!(errs[1].field, "spec.volumes[1].name");
        assert!(errs[1].message.contains("RFC 1123 label"));
        assert_eq!(
            errs[2].to_string(),
            "spec.volumes[3].name: Duplicate value: \"x\""
        );
    }

    #[test]
    fn source_specific_required_fields() {
        assert_eq!(
            volume_errors(json!({"name": "v", "persistentVolumeClaim": {}})),
            vec!["spec.volumes[0].persistentVolumeClaim.claimName: Required value"]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "secret": {}})),
            vec!["spec.volumes[0].secret.secretName: Required value"]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "configMap": {}})),
            vec!["spec.volumes[0].configMap.name: Required value"]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "hostPath": {"path": "/x/../y"}})),
            vec![
                "spec.volumes[0].hostPath.path: Invalid value: \"/x/../y\": must not contain '..'"
            ]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "csi": {}})),
            vec!["spec.volumes[0].csi.driver: Required value"]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "emptyDir": {"sizeLimit": "huge"}})).len(),
            1
        );
    }

    #[test]
    fn default_modes_and_item_paths_are_checked() {
        assert_eq!(
            volume_errors(json!({"name": "v", "configMap": {"name": "c", "defaultMode": 1000}})),
            vec![
                "spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive"
            ]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "secret": {"secretName": "s",
                "items": [{"key": "k", "path": "/abs"}]}})),
            vec![
                "spec.volumes[0].secret.items[0].path: Invalid value: \"/abs\": must be a relative path"
            ]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "configMap": {"name": "c",
                "items": [{"key": "k", "path": "..data"}]}})),
            vec![
                "spec.volumes[0].configMap.items[0].path: Invalid value: \"..data\": must not start with '..'"
            ]
        );
    }

    #[test]
    fn downward_api_items_need_one_reference() {
        assert_eq!(
            volume_errors(json!({"name": "v", "downwardAPI": {"items": [{"path": "labels"}]}})),
            vec![
                "spec.volumes[0].downwardAPI.items[0]: Required value: one of fieldRef and resourceFieldRef is required"
            ]
        );
    }

    #[test]
    fn projected_sources_are_one_kind_each_with_unique_paths() {
        let errs = volume_errors(json!({"name": "v", "projected": {"sources": [
            {"secret": {"name": "s"}, "configMap": {"name": "c"}}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.volumes[0].projected.sources[0]: Forbidden: may not specify more than 1 volume type per source"
            ]
        );
        let errs = volume_errors(json!({"name": "v", "projected": {"sources": [
            {"secret": {"name": "s", "items": [{"key": "a", "path": "x"}]}},
            {"configMap": {"name": "c", "items": [{"key": "b", "path": "x"}]}}]}}));
        assert_eq!(
            errs,
            vec!["spec.volumes[0].projected: Invalid value: \"c\": conflicting duplicate paths"]
        );
        let errs = volume_errors(json!({"name": "v", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 60}}]}}));
        assert_eq!(
            errs,
            vec![
                "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
            ]
        );
    }

    #[test]
    fn ephemeral_volumes_carry_a_valid_claim_template() {
        assert_eq!(
            volume_errors(json!({"name": "v", "ephemeral": {}})),
            vec!["spec.volumes[0].ephemeral.volumeClaimTemplate: Required value"]
        );
        let errs = volume_errors(json!({"name": "v", "ephemeral": {"volumeClaimTemplate": {
            "metadata": {"name": "x"}, "spec": {"accessModes": ["ReadWriteOnce"]}}}}));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].ends_with("field name cannot be set"));
        assert_eq!(
            errs[1],
            "spec.volumes[0].ephemeral.volumeClaimTemplate.spec.resources[storage]: Required value"
        );
    }

    #[test]
    fn mounts_must_name_existing_volumes_and_unique_paths() {
        let errs = validate(
            &pod(
                json!([{"name": "data", "emptyDir": {}}]),
                container(json!([{"name": "nope", "mountPath": "/a"},
                                  {"name": "data", "mountPath": "/a"},
                                  {"name": "", "mountPath": ""}])),
            ),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.containers[0].volumeMounts[0].name: Not found: \"nope\"",
                "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/a\": must be unique",
                "spec.containers[0].volumeMounts[2].name: Required value",
                "spec.containers[0].volumeMounts[2].name: Not found: \"\"",
                "spec.containers[0].volumeMounts[2].mountPath: Required value"
            ]
        );
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueNotFound);
    }

    #[test]
    fn relative_mount_paths_are_accepted_as_upstream_does() {
        let p = pod(
            json!([{"name": "d", "emptyDir": {}}]),
            container(json!([{"name": "d", "mountPath": "data"}])),
        );
        assert!(validate(&p, None).is_empty());
    }

    #[test]
    fn sub_paths_may_not_escape() {
        let errs = validate(
            &pod(
                json!([{"name": "d", "emptyDir": {}}]),
                container(
                    json!([{"name": "d", "mountPath": "/a", "subPath": "../etc"},
                                  {"name": "d", "mountPath": "/b", "subPath": "/etc"},
                                  {"name": "d", "mountPath": "/c", "subPath": "x", "subPathExpr": "$(POD)"}]),
                ),
            ),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.containers[0].volumeMounts.subPath: Invalid value: \"../etc\": must not contain '..'",
                "spec.containers[0].volumeMounts.subPath: Invalid value: \"/etc\": must be a relative path",
                "spec.containers[0].volumeMounts[2].subPathExpr: Invalid value: \"$(POD)\": subPathExpr and subPath are mutually exclusive"
            ]
        );
    }

    #[test]
    fn mount_propagation_is_checked() {
        let errs = validate(
            &pod(
                json!([{"name": "d", "emptyDir": {}}]),
                container(
                    json!([{"name": "d", "mountPath": "/a", "mountPropagation": "Bidirectional"}]),
                ),
            ),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueForbidden);
        let errs = validate(
            &pod(
                json!([{"name": "d", "emptyDir": {}}]),
                container(
                    json!([{"name": "d", "mountPath": "/a", "mountPropagation": "Sideways"}]),
                ),
            ),
            None,
        );
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueNotSupported);
    }

    #[test]
    fn init_containers_are_checked_too() {
        let p = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "volumes": [], "containers": [],
            "initContainers": [{"name": "i", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]}});
        let errs = validate(&p, None);
        assert_eq!(errs[0].field, "spec.initContainers[0].volumeMounts[0].name");
    }

    #[test]
    fn block_devices_come_from_claims_only() {
        let p = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "volumes": [{"name": "blk", "persistentVolumeClaim": {"claimName": "c"}},
                        {"name": "tmp", "emptyDir": {}}],
            "containers": [{"name": "c", "volumeDevices": [
                {"name": "blk", "devicePath": "/dev/xvda"},
                {"name": "tmp", "devicePath": "/dev/xvda"},
                {"name": "gone", "devicePath": ""}]}]}});
        let errs = validate(&p, None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.containers[0].volumeDevices[1].name: Invalid value: \"tmp\": can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                "spec.containers[0].volumeDevices[1].devicePath: Invalid value: \"/dev/xvda\": must be unique",
                "spec.containers[0].volumeDevices[2].name: Not found: \"gone\"",
                "spec.containers[0].volumeDevices[2].devicePath: Required value"
            ]
        );
    }

    #[test]
    fn a_volume_is_either_mounted_or_a_device() {
        let p = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "volumes": [{"name": "blk", "persistentVolumeClaim": {"claimName": "c"}}],
            "containers": [{"name": "c",
                "volumeMounts": [{"name": "blk", "mountPath": "/data"}],
                "volumeDevices": [{"name": "blk", "devicePath": "/dev/xvda"}]}]}});
        let errs = validate(&p, None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.containers[0].volumeMounts[0].name: Invalid value: \"blk\": must not already exist in volumeDevices",
                "spec.containers[0].volumeDevices[0].name: Invalid value: \"blk\": must not already exist in volumeMounts"
            ]
        );
    }

    #[test]
    fn more_volume_source_rules() {
        assert_eq!(
            volume_errors(json!({"name": "v", "emptyDir": {"sizeLimit": "-1Gi"}})),
            vec![
                "spec.volumes[0].emptyDir.sizeLimit: Forbidden: SizeLimit field must be a valid resource quantity"
            ]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "downwardAPI": {"items": [{"path": "x",
                "fieldRef": {"fieldPath": "metadata.name"}, "resourceFieldRef": {"resource": "limits.cpu"}}]}})),
            vec![
                "spec.volumes[0].downwardAPI.items[0]: Invalid value: \"resource\": fieldRef and resourceFieldRef can not be specified simultaneously"
            ]
        );
        assert_eq!(
            volume_errors(
                json!({"name": "v", "downwardAPI": {"items": [{"path": "x", "fieldRef": {}}]}})
            ),
            vec!["spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Required value"]
        );
        assert_eq!(
            volume_errors(
                json!({"name": "v", "configMap": {"name": "c", "items": [{"path": "p"}]}})
            ),
            vec!["spec.volumes[0].configMap.items[0].key: Required value"]
        );
        assert_eq!(
            volume_errors(json!({"name": "v", "projected": {"sources": [
                {"serviceAccountToken": {"path": "t", "expirationSeconds": 5_000_000_000i64}}]}}))
            .len(),
            1
        );
        assert_eq!(
            volume_errors(
                json!({"name": "v", "projected": {"sources": [{"clusterTrustBundle": {}}]}})
            ),
            vec!["spec.volumes[0].projected.sources[0].clusterTrustBundle.path: Required value"]
        );
    }

    #[test]
    fn privileged_containers_may_propagate_both_ways() {
        let p = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "volumes": [{"name": "d", "emptyDir": {}}],
            "containers": [{"name": "c", "securityContext": {"privileged": true},
                "volumeMounts": [{"name": "d", "mountPath": "/a", "mountPropagation": "Bidirectional"}]}]}});
        assert!(validate(&p, None).is_empty());
    }

    #[test]
    fn device_paths_may_not_escape_or_collide_with_mounts() {
        let p = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "a"}},
                        {"name": "b", "persistentVolumeClaim": {"claimName": "b"}},
                        {"name": "m", "emptyDir": {}}],
            "containers": [{"name": "c",
                "volumeMounts": [{"name": "m", "mountPath": "/data"}],
                "volumeDevices": [{"name": "a", "devicePath": "/dev/../x"},
                                  {"name": "b", "devicePath": "/data"},
                                  {"name": "b", "devicePath": "/dev/y"}]}]}});
        assert_eq!(
            messages(&validate(&p, None)),
            vec![
                "spec.containers[0].volumeMounts[0].mountPath: Invalid value: \"/data\": must not already exist as a path in volumeDevices",
                "spec.containers[0].volumeDevices[0].devicePath: Invalid value: \"/dev/../x\": can not contain backsteps ('..')",
                "spec.containers[0].volumeDevices[1].devicePath: Invalid value: \"/data\": must not already exist as a path in volumeMounts",
                "spec.containers[0].volumeDevices[2].name: Invalid value: \"b\": must be unique"
            ]
        );
        let p = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "a"}},
                        {"name": "m", "emptyDir": {}}],
            "containers": [{"name": "c",
                "volumeMounts": [{"name": "m", "mountPath": "/dev/xvda"}],
                "volumeDevices": [{"name": "a", "devicePath": "/dev/xvda"}]}]}});
        assert_eq!(
            messages(&validate(&p, None)),
            vec![
                "spec.containers[0].volumeMounts[0].mountPath: Invalid value: \"/dev/xvda\": must not already exist as a path in volumeDevices",
                "spec.containers[0].volumeDevices[0].devicePath: Invalid value: \"/dev/xvda\": must not already exist as a path in volumeMounts"
            ]
        );
    }

    #[test]
    fn mounts_of_a_broken_volume_are_not_found() {
        let errs = validate(
            &pod(
                json!([{"name": "v", "secret": {}}]),
                container(json!([{"name": "v", "mountPath": "/v"}])),
            ),
            None,
        );
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[1].reason, FieldErrorReason::FieldValueNotFound);
    }

    #[test]
    fn claims_of_ephemeral_volumes_are_not_claim_volumes() {
        let errs = validate(
            &pod(
                json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
                        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}},
                        {"name": "other", "persistentVolumeClaim": {"claimName": "p-scratch"}}]),
                json!([]),
            ),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.volumes[1].persistentVolumeClaim.claimName: Invalid value: \"p-scratch\": must not reference a PVC that gets created for an ephemeral volume"
            ]
        );
    }

    fn running_pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "image": "busybox:1.36"}],
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "activeDeadlineSeconds": 100}})
    }

    #[test]
    fn pod_updates_may_change_images_deadline_and_add_tolerations() {
        let old = running_pod();
        let mut new = running_pod();
        new["spec"]["containers"][0]["image"] = json!("busybox:1.37");
        new["spec"]["activeDeadlineSeconds"] = json!(50);
        new["spec"]["tolerations"] =
            json!([{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]);
        assert!(
            validate(&new, Some(&old)).is_empty(),
            "{:?}",
            validate(&new, Some(&old))
        );
    }

    #[test]
    fn pod_updates_may_not_change_anything_else() {
        let old = running_pod();
        let mut new = running_pod();
        new["spec"]["nodeName"] = json!("n2");
        let errs = validate(&new, Some(&old));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        assert!(errs[0].message.starts_with(
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        ));
        let mut removed_toleration = running_pod();
        removed_toleration["spec"]["tolerations"] = json!([]);
        assert_eq!(validate(&removed_toleration, Some(&old)).len(), 1);
        let mut new_volume = running_pod();
        new_volume["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}]);
        assert_eq!(validate(&new_volume, Some(&old)).len(), 1);
    }

    #[test]
    fn active_deadline_may_only_shrink() {
        let old = running_pod();
        let mut longer = running_pod();
        longer["spec"]["activeDeadlineSeconds"] = json!(200);
        assert_eq!(
            messages(&validate(&longer, Some(&old))),
            vec![
                "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
            ]
        );
        let mut removed = running_pod();
        removed["spec"]
            .as_object_mut()
            .unwrap()
            .remove("activeDeadlineSeconds");
        assert_eq!(
            messages(&validate(&removed, Some(&old))),
            vec![
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
            ]
        );
    }

    #[test]
    fn status_only_updates_pass() {
        let old = running_pod();
        let mut new = running_pod();
        new["status"] = json!({"phase": "Running"});
        assert!(validate(&new, Some(&old)).is_empty());
    }
}
