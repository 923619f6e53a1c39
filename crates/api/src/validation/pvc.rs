//! PersistentVolumeClaim rules (`ValidatePersistentVolumeClaimSpec`,
//! `ValidatePersistentVolumeClaimUpdate`).

use std::cmp::Ordering;

use serde_json::Value;

use super::meta::{is_dns1123_label, is_dns1123_subdomain, validate_label_selector};
use super::pv::{
    SUPPORTED_VOLUME_MODES, validate_access_modes, validate_class_name, validate_positive_quantity,
};
use super::{FieldError, Path, json};
use crate::quantity;

/// The beta annotation claims used before `storageClassName` existed.
const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

pub(super) fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = validate_spec(spec, &Path::new("spec"));
    if let Some(old) = old {
        errs.extend(validate_update(obj, old));
    }
    errs
}

/// A claim spec, also as embedded in ephemeral volumes and DataVolumes.
pub(super) fn validate_spec(spec: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if json::arr(spec, "accessModes").is_empty() {
        errs.push(FieldError::required(
            path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(selector) = json::get(spec, "selector") {
        errs.extend(validate_label_selector(selector, &path.child("selector")));
    }
    // Only the per-mode checks here: the "required" case was reported above with its claim
    // wording.
    if !json::arr(spec, "accessModes").is_empty() {
        errs.extend(validate_access_modes(spec, path, ""));
    }

    let storage_path = path.child("resources").key("storage");
    match spec
        .get("resources")
        .and_then(|r| json::get(r, "requests"))
        .and_then(|r| json::get(r, "storage"))
    {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(q) => errs.extend(validate_positive_quantity(q, &storage_path)),
    }

    if let Some(class) = json::str(spec, "storageClassName")
        && !class.is_empty()
    {
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

    let data_source = json::get(spec, "dataSource");
    let data_source_ref = json::get(spec, "dataSourceRef");
    if let Some(ds) = data_source {
        errs.extend(validate_data_source(ds, &path.child("dataSource"), false));
    }
    if let Some(dsr) = data_source_ref {
        errs.extend(validate_data_source(
            dsr,
            &path.child("dataSourceRef"),
            true,
        ));
    }
    let ref_namespace = data_source_ref
        .and_then(|r| json::str(r, "namespace"))
        .unwrap_or("");
    let data_source_path = Value::from(path.child("dataSource").as_str());
    if !ref_namespace.is_empty() {
        if data_source.is_some() {
            errs.push(FieldError::invalid(
                path,
                &data_source_path,
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
    } else if let (Some(ds), Some(dsr)) = (data_source, data_source_ref) {
        let same = json::get(ds, "apiGroup") == json::get(dsr, "apiGroup")
            && json::str_or_empty(ds, "kind") == json::str_or_empty(dsr, "kind")
            && json::str_or_empty(ds, "name") == json::str_or_empty(dsr, "name");
        if !same {
            errs.push(FieldError::invalid(
                path,
                &data_source_path,
                "must match dataSourceRef",
            ));
        }
    }

    if let Some(vac) = json::str(spec, "volumeAttributesClassName")
        && !vac.is_empty()
    {
        errs.extend(validate_class_name(
            vac,
            &path.child("volumeAttributesClassName"),
        ));
    }
    errs
}

/// `validateDataSource` / `validateDataSourceRef`: name and kind, a core-group source must be a
/// claim, a group must be a DNS subdomain, a namespace (refs only) a DNS label.
fn validate_data_source(ds: &Value, path: &Path, is_ref: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if json::str_or_empty(ds, "name").is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    }
    let kind = json::str_or_empty(ds, "kind");
    if kind.is_empty() {
        errs.push(FieldError::required(path.child("kind"), ""));
    }
    let group = json::str_or_empty(ds, "apiGroup");
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid_str(
            path,
            kind,
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() {
        for msg in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid_str(path.child("apiGroup"), group, &msg));
        }
    }
    if is_ref {
        let ns = json::str_or_empty(ds, "namespace");
        if !ns.is_empty() {
            for msg in is_dns1123_label(ns) {
                errs.push(FieldError::invalid_str(path.child("namespace"), ns, &msg));
            }
        }
    }
    errs
}

fn storage_request(spec: &Value) -> Option<&str> {
    spec.get("resources")?
        .get("requests")?
        .get("storage")?
        .as_str()
}

/// A claim's spec is frozen after creation, except: `volumeName` may be set once, a bound
/// claim's storage request may change (but not below its capacity), the volume attributes class
/// may change, and `storageClassName` may be set once from nil (the beta-annotation upgrade).
fn validate_update(obj: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    let mut new_clone = spec.clone();
    let mut old_clone = old_spec.clone();
    if !new_clone.is_object() {
        new_clone = Value::Object(Default::default());
    }
    if !old_clone.is_object() {
        old_clone = Value::Object(Default::default());
    }

    if json::str_or_empty(old_spec, "volumeName").is_empty() {
        match json::get(spec, "volumeName") {
            Some(v) => old_clone["volumeName"] = v.clone(),
            None => {
                old_clone.as_object_mut().map(|o| o.remove("volumeName"));
            }
        }
    }

    let old_annotation = old
        .pointer("/metadata/annotations")
        .and_then(|a| json::str(a, BETA_STORAGE_CLASS_ANNOTATION));
    let new_class = json::str(spec, "storageClassName");
    if json::get(old_spec, "storageClassName").is_none()
        && let Some(new_class) = new_class
    {
        // Setting the class once is allowed when it agrees with the old beta annotation (or
        // there was none).
        if old_annotation.is_none_or(|a| a == new_class) {
            new_clone
                .as_object_mut()
                .map(|o| o.remove("storageClassName"));
        }
    }

    let bound = obj.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    if bound
        && let Some(requests) = new_clone
            .get_mut("resources")
            .and_then(|r| r.get_mut("requests"))
            .and_then(Value::as_object_mut)
    {
        match old_spec.pointer("/resources/requests/storage") {
            Some(v) => {
                requests.insert("storage".into(), v.clone());
            }
            None => {
                requests.remove("storage");
            }
        }
    }
    for clone in [&mut new_clone, &mut old_clone] {
        clone
            .as_object_mut()
            .map(|o| o.remove("volumeAttributesClassName"));
    }

    if new_clone != old_clone {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and \
             volumeAttributesClassName for bound claims",
        ));
    }

    let new_size = storage_request(spec).unwrap_or("0");
    let old_size = storage_request(old_spec).unwrap_or("0");
    if quantity::compare(new_size, old_size) == Some(Ordering::Less) {
        // Shrinking is allowed only back towards the capacity actually provisioned, so that an
        // expansion that failed can be retried smaller; never to or below it.
        let status_size = old
            .pointer("/status/capacity/storage")
            .and_then(Value::as_str)
            .unwrap_or("0");
        if quantity::compare(new_size, status_size) != Some(Ordering::Greater) {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than status.capacity",
            ));
        }
    }

    let new_mode = json::get(spec, "volumeMode");
    if new_mode != json::get(old_spec, "volumeMode") {
        errs.push(FieldError::invalid(
            "volumeMode",
            new_mode.unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }

    if let Some(old_vac) = json::get(old_spec, "volumeAttributesClassName")
        && json::get(spec, "volumeAttributesClassName") != Some(old_vac)
    {
        match json::get(spec, "volumeAttributesClassName") {
            None => errs.push(FieldError::forbidden(
                "spec.volumeAttributesClassName",
                "update from non-nil value to nil is forbidden",
            )),
            Some(v) if v.as_str() == Some("") => errs.push(FieldError::forbidden(
                "spec.volumeAttributesClassName",
                "update from non-nil value to an empty string is forbidden",
            )),
            Some(_) => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldErrorReason;
    use serde_json::json;

    fn pvc(spec: Value) -> Value {
        json!({"metadata": {"name": "c", "namespace": "ns"}, "spec": spec})
    }

    fn good_spec() -> Value {
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn with(mut v: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut v
        } else {
            v.pointer_mut(parent).unwrap()
        };
        target[key] = value;
        v
    }

    #[test]
    fn valid_claim_passes() {
        assert!(validate(&pvc(good_spec()), None).is_empty());
    }

    #[test]
    fn access_modes_and_storage_request_are_required() {
        let errs = validate(&pvc(json!({})), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value"
            ]
        );
    }

    #[test]
    fn access_modes_must_be_supported() {
        let errs = validate(
            &pvc(with(good_spec(), "/accessModes", json!(["RWO"]))),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueNotSupported);
    }

    #[test]
    fn storage_request_must_be_a_positive_quantity() {
        let errs = validate(
            &pvc(with(good_spec(), "/resources/requests/storage", json!("0"))),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec!["spec.resources[storage]: Invalid value: \"0\": must be greater than zero"]
        );
        let errs = validate(
            &pvc(with(
                good_spec(),
                "/resources/requests/storage",
                json!("lots"),
            )),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("quantities must match"));
    }

    #[test]
    fn volume_mode_and_class_name_are_checked() {
        let errs = validate(&pvc(with(good_spec(), "/volumeMode", json!("Raw"))), None);
        assert_eq!(errs[0].field, "spec.volumeMode");
        let errs = validate(
            &pvc(with(good_spec(), "/storageClassName", json!("A_B"))),
            None,
        );
        assert_eq!(errs[0].field, "spec.storageClassName");
        // The empty class is a valid request for "no class".
        assert!(
            validate(
                &pvc(with(good_spec(), "/storageClassName", json!(""))),
                None
            )
            .is_empty()
        );
    }

    #[test]
    fn selector_is_validated() {
        let errs = validate(
            &pvc(with(
                good_spec(),
                "/selector",
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            )),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.selector.matchExpressions[0].values");
    }

    #[test]
    fn data_source_rules() {
        let errs = validate(&pvc(with(good_spec(), "/dataSource", json!({}))), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.dataSource.name: Required value",
                "spec.dataSource.kind: Required value",
                "spec.dataSource: Invalid value: \"\": must be 'PersistentVolumeClaim' when referencing the default apiGroup"
            ]
        );
        let snap =
            json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "s"});
        assert!(validate(&pvc(with(good_spec(), "/dataSource", snap.clone())), None).is_empty());
        let spec = with(
            with(good_spec(), "/dataSource", snap),
            "/dataSourceRef",
            json!({"kind": "PersistentVolumeClaim", "name": "other"}),
        );
        let errs = validate(&pvc(spec), None);
        assert_eq!(
            messages(&errs),
            vec!["spec: Invalid value: \"spec.dataSource\": must match dataSourceRef"]
        );
        let errs = validate(
            &pvc(with(
                good_spec(),
                "/dataSourceRef",
                json!({"apiGroup": "Bad_Group", "kind": "K", "name": "n", "namespace": "Bad"}),
            )),
            None,
        );
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].field, "spec.dataSourceRef.apiGroup");
        assert_eq!(errs[1].field, "spec.dataSourceRef.namespace");
    }

    #[test]
    fn spec_is_immutable_except_for_bound_claim_requests() {
        let old = pvc(good_spec());
        let grown = pvc(with(
            good_spec(),
            "/resources/requests/storage",
            json!("2Gi"),
        ));
        let errs = validate(&grown, Some(&old));
        assert_eq!(
            messages(&errs),
            vec![
                "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
            ]
        );
        let bound_old = with(
            old,
            "/status",
            json!({"phase": "Bound", "capacity": {"storage": "1Gi"}}),
        );
        let bound_grown = with(grown, "/status", json!({"phase": "Bound"}));
        assert!(validate(&bound_grown, Some(&bound_old)).is_empty());
        let changed_modes = with(bound_grown, "/spec/accessModes", json!(["ReadWriteMany"]));
        assert_eq!(validate(&changed_modes, Some(&bound_old)).len(), 1);
    }

    #[test]
    fn volume_name_may_be_set_once() {
        let old = pvc(good_spec());
        let bound = pvc(with(good_spec(), "/volumeName", json!("pv1")));
        assert!(validate(&bound, Some(&old)).is_empty());
        let rebound = pvc(with(good_spec(), "/volumeName", json!("pv2")));
        assert_eq!(validate(&rebound, Some(&bound)).len(), 1);
    }

    #[test]
    fn storage_class_may_be_set_once_from_nil() {
        let old = pvc(good_spec());
        let classed = pvc(with(good_spec(), "/storageClassName", json!("fast")));
        assert!(validate(&classed, Some(&old)).is_empty());
        let reclassed = pvc(with(good_spec(), "/storageClassName", json!("slow")));
        assert_eq!(validate(&reclassed, Some(&classed)).len(), 1);
    }

    #[test]
    fn shrinking_to_or_below_capacity_is_forbidden() {
        let status = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
        let old = with(
            pvc(with(
                good_spec(),
                "/resources/requests/storage",
                json!("4Gi"),
            )),
            "/status",
            status.clone(),
        );
        let to_capacity = with(pvc(good_spec()), "/status", status.clone());
        let errs = validate(&to_capacity, Some(&old));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
            ]
        );
        // Retrying a failed expansion with a smaller size above capacity is allowed.
        let retry = with(
            pvc(with(
                good_spec(),
                "/resources/requests/storage",
                json!("2Gi"),
            )),
            "/status",
            status,
        );
        assert!(validate(&retry, Some(&old)).is_empty());
    }

    #[test]
    fn volume_mode_is_immutable() {
        let old = pvc(good_spec());
        let new = pvc(with(good_spec(), "/volumeMode", json!("Block")));
        let errs = validate(&new, Some(&old));
        assert!(
            messages(&errs)
                .contains(&"volumeMode: Invalid value: \"Block\": field is immutable".to_string())
        );
    }

    #[test]
    fn volume_attributes_class_may_change_but_not_be_removed() {
        let old = pvc(with(
            good_spec(),
            "/volumeAttributesClassName",
            json!("gold"),
        ));
        let changed = pvc(with(
            good_spec(),
            "/volumeAttributesClassName",
            json!("silver"),
        ));
        assert!(validate(&changed, Some(&old)).is_empty());
        let errs = validate(&pvc(good_spec()), Some(&old));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.volumeAttributesClassName: Forbidden: update from non-nil value to nil is forbidden"
            ]
        );
    }

    #[test]
    fn data_source_may_not_accompany_a_cross_namespace_ref() {
        let spec = with(
            with(
                good_spec(),
                "/dataSource",
                json!({"kind": "PersistentVolumeClaim", "name": "a"}),
            ),
            "/dataSourceRef",
            json!({"kind": "PersistentVolumeClaim", "name": "a", "namespace": "other"}),
        );
        let errs = validate(&pvc(spec), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec: Invalid value: \"spec.dataSource\": may not be specified when dataSourceRef.namespace is specified"
            ]
        );
    }

    #[test]
    fn volume_attributes_class_name_is_checked_and_not_emptied() {
        let errs = validate(
            &pvc(with(
                good_spec(),
                "/volumeAttributesClassName",
                json!("Gold!"),
            )),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.volumeAttributesClassName");
        let old = pvc(with(
            good_spec(),
            "/volumeAttributesClassName",
            json!("gold"),
        ));
        let emptied = pvc(with(good_spec(), "/volumeAttributesClassName", json!("")));
        assert_eq!(
            messages(&validate(&emptied, Some(&old))),
            vec![
                "spec.volumeAttributesClassName: Forbidden: update from non-nil value to an empty string is forbidden"
            ]
        );
    }

    #[test]
    fn storage_class_may_not_be_set_against_the_beta_annotation() {
        let old = json!({"metadata": {"name": "c", "namespace": "ns",
            "annotations": {"volume.beta.kubernetes.io/storage-class": "fast"}}, "spec": good_spec()});
        let mut agreeing = old.clone();
        agreeing["spec"]["storageClassName"] = json!("fast");
        assert!(validate(&agreeing, Some(&old)).is_empty());
        let mut disagreeing = old.clone();
        disagreeing["spec"]["storageClassName"] = json!("slow");
        assert_eq!(validate(&disagreeing, Some(&old)).len(), 1);
    }
}
