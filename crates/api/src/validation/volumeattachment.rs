//! VolumeAttachment rules (`ValidateVolumeAttachment`, `ValidateVolumeAttachmentUpdate`).

use serde_json::Value;

use super::meta::is_dns1123_subdomain;
use super::pv::{validate_csi_driver_name, validate_spec as validate_pv_spec};
use super::{FieldError, Path, json};

pub(super) fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let path = Path::new("spec");
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = validate_csi_driver_name(
        json::str_or_empty(spec, "attacher"),
        &path.child("attacher"),
    );

    let node = json::str_or_empty(spec, "nodeName");
    if node.is_empty() {
        errs.push(FieldError::required(path.child("nodeName"), ""));
    } else {
        for msg in is_dns1123_subdomain(node) {
            errs.push(FieldError::invalid_str(path.child("nodeName"), node, &msg));
        }
    }

    let sp = path.child("source");
    let source = spec.get("source").unwrap_or(&Value::Null);
    let pv_name = json::get(source, "persistentVolumeName");
    let inline = json::get(source, "inlineVolumeSpec");
    match (pv_name, inline) {
        (None, None) => errs.push(FieldError::required(
            &sp,
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            &sp,
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(name), None) => {
            if name.as_str().unwrap_or("").is_empty() {
                errs.push(FieldError::required(
                    sp.child("persistentVolumeName"),
                    "must specify non empty persistentVolumeName",
                ));
            }
        }
        (None, Some(inline)) => {
            errs.extend(validate_inline_spec(inline, &sp.child("inlineVolumeSpec")))
        }
    }

    if let Some(old) = old {
        // The spec names what is attached where; a different attachment is a different object.
        if obj.get("spec") != old.get("spec") {
            errs.push(FieldError::invalid("spec", spec, "field is immutable"));
        }
    }
    errs
}

/// An inline (migrated in-tree) volume: a CSI source without claim, capacity, class or node
/// affinity, reclaimed only by Retain.
fn validate_inline_spec(spec: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if json::get(spec, "claimRef").is_some() {
        errs.push(FieldError::forbidden(
            path.child("claimRef"),
            "may not be specified in the context of inline volumes",
        ));
    }
    if json::obj(spec, "capacity").is_some_and(|c| !c.is_empty()) {
        errs.push(FieldError::forbidden(
            path.child("capacity"),
            "may not be specified in the context of inline volumes",
        ));
    }
    if json::get(spec, "csi").is_none() {
        errs.push(FieldError::required(
            path.child("csi"),
            "has to be specified in the context of inline volumes",
        ));
    }
    let policy = json::str_or_empty(spec, "persistentVolumeReclaimPolicy");
    if !policy.is_empty() && policy != "Retain" {
        errs.push(FieldError::forbidden(
            path.child("persistentVolumeReclaimPolicy"),
            "may only be Retain in the context of inline volumes",
        ));
    }
    if json::get(spec, "nodeAffinity").is_some() {
        errs.push(FieldError::forbidden(
            path.child("nodeAffinity"),
            "may not be specified in the context of inline volumes",
        ));
    }
    if !json::str_or_empty(spec, "storageClassName").is_empty() {
        errs.push(FieldError::forbidden(
            path.child("storageClassName"),
            "may not be specified in the context of inline volumes",
        ));
    }
    // The remaining rules (access modes, exactly one source, the CSI fields) are those of a
    // PV; capacity and the inline-only prohibitions were checked above.
    errs.extend(validate_pv_spec(spec, path).into_iter().filter(|e| {
        !e.field.starts_with(path.child("capacity").as_str())
            && !e.field.starts_with(path.child("nodeAffinity").as_str())
            && !e.field.starts_with(path.child("storageClassName").as_str())
            && !e
                .field
                .starts_with(path.child("persistentVolumeReclaimPolicy").as_str())
    }));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn va(spec: Value) -> Value {
        json!({"metadata": {"name": "csi-abc"}, "spec": spec})
    }

    fn good_spec() -> Value {
        json!({"attacher": "local.volplane.io", "nodeName": "node-1",
               "source": {"persistentVolumeName": "pv1"}})
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn valid_attachment_passes() {
        assert!(validate(&va(good_spec()), None).is_empty());
    }

    #[test]
    fn attacher_and_node_are_required() {
        let errs = validate(
            &va(json!({"source": {"persistentVolumeName": "pv1"}})),
            None,
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.attacher: Required value",
                "spec.nodeName: Required value"
            ]
        );
        let mut spec = good_spec();
        spec["nodeName"] = json!("Node_1");
        spec["attacher"] = json!("bad attacher");
        let errs = validate(&va(spec), None);
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].field, "spec.attacher");
        assert_eq!(errs[1].field, "spec.nodeName");
    }

    #[test]
    fn exactly_one_source() {
        let mut spec = good_spec();
        spec["source"] = json!({});
        assert_eq!(
            messages(&validate(&va(spec.clone()), None)),
            vec![
                "spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName"
            ]
        );
        spec["source"] = json!({"persistentVolumeName": "pv1", "inlineVolumeSpec": {}});
        assert_eq!(
            messages(&validate(&va(spec.clone()), None)),
            vec![
                "spec.source: Forbidden: must specify exactly one of inlineVolumeSpec and persistentVolumeName"
            ]
        );
        spec["source"] = json!({"persistentVolumeName": ""});
        assert_eq!(
            messages(&validate(&va(spec), None)),
            vec![
                "spec.source.persistentVolumeName: Required value: must specify non empty persistentVolumeName"
            ]
        );
    }

    #[test]
    fn inline_specs_must_be_csi_without_capacity() {
        let mut spec = good_spec();
        spec["source"] = json!({"inlineVolumeSpec": {
            "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            "hostPath": {"path": "/x"}}});
        let errs = validate(&va(spec.clone()), None);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.source.inlineVolumeSpec.capacity: Forbidden: may not be specified in the context of inline volumes",
                "spec.source.inlineVolumeSpec.csi: Required value: has to be specified in the context of inline volumes"
            ]
        );
        spec["source"] = json!({"inlineVolumeSpec": {
            "accessModes": ["ReadWriteOnce"], "csi": {"driver": "d.example.com", "volumeHandle": "h"}}});
        assert!(validate(&va(spec), None).is_empty());
    }

    #[test]
    fn spec_is_immutable() {
        let old = va(good_spec());
        let mut spec = good_spec();
        spec["nodeName"] = json!("node-2");
        let errs = validate(&va(spec), Some(&old));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        assert!(errs[0].message.ends_with("field is immutable"));
        // Status changes are not spec changes.
        let mut with_status = va(good_spec());
        with_status["status"] = json!({"attached": true});
        assert!(validate(&with_status, Some(&old)).is_empty());
    }

    #[test]
    fn inline_specs_may_not_claim_classify_pin_or_recycle() {
        let mut spec = good_spec();
        spec["source"] = json!({"inlineVolumeSpec": {
            "accessModes": ["ReadWriteOnce"], "csi": {"driver": "d.example.com", "volumeHandle": "h"},
            "claimRef": {"name": "c"}, "storageClassName": "fast",
            "persistentVolumeReclaimPolicy": "Delete",
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Exists"}]}]}}}});
        let fields: Vec<String> = validate(&va(spec), None)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "spec.source.inlineVolumeSpec.claimRef",
                "spec.source.inlineVolumeSpec.persistentVolumeReclaimPolicy",
                "spec.source.inlineVolumeSpec.nodeAffinity",
                "spec.source.inlineVolumeSpec.storageClassName"
            ]
        );
    }
}
