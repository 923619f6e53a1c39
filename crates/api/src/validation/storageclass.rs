//! StorageClass rules (`ValidateStorageClass`, `ValidateStorageClassUpdate`). A StorageClass has
//! no `spec`: its fields sit at the top level, and so do their paths.

use serde_json::Value;

use super::meta::is_qualified_name;
use super::{FieldError, Path, json};

/// Upstream's `maxProvisionerParameterLen`: how many parameters a class may carry.
const MAX_PARAMETERS: usize = 512;
/// Upstream's `maxProvisionerParameterSize`: all keys and values together.
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;
const SUPPORTED_RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const SUPPORTED_BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];

pub(super) fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();

    let provisioner = json::str_or_empty(obj, "provisioner");
    if provisioner.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        for msg in is_qualified_name(&provisioner.to_lowercase()) {
            errs.push(FieldError::invalid_str("provisioner", provisioner, &msg));
        }
    }

    if let Some(params) = json::obj(obj, "parameters") {
        if params.len() > MAX_PARAMETERS {
            errs.push(FieldError::too_long("parameters", MAX_PARAMETERS));
        } else {
            let mut total = 0usize;
            for (k, v) in params {
                if k.is_empty() {
                    errs.push(FieldError::invalid_str(
                        "parameters",
                        k,
                        "field can not be empty.",
                    ));
                }
                total += k.len() + v.as_str().map_or(0, str::len);
            }
            if total > MAX_PARAMETERS_SIZE {
                errs.push(FieldError::too_long("parameters", MAX_PARAMETERS_SIZE));
            }
        }
    }

    if let Some(policy) = json::get(obj, "reclaimPolicy")
        && !SUPPORTED_RECLAIM_POLICIES.contains(&policy.as_str().unwrap_or(""))
    {
        errs.push(FieldError::not_supported(
            "reclaimPolicy",
            policy,
            SUPPORTED_RECLAIM_POLICIES,
        ));
    }

    // Defaulting sets the binding mode; a class without one was not defaulted.
    match json::get(obj, "volumeBindingMode") {
        None => errs.push(FieldError::required("volumeBindingMode", "")),
        Some(mode) if !SUPPORTED_BINDING_MODES.contains(&mode.as_str().unwrap_or("")) => errs.push(
            FieldError::not_supported("volumeBindingMode", mode, SUPPORTED_BINDING_MODES),
        ),
        Some(_) => {}
    }

    for (i, term) in json::arr(obj, "allowedTopologies").iter().enumerate() {
        let tp = Path::new("allowedTopologies").index(i);
        let exprs = json::arr(term, "matchLabelExpressions");
        if exprs.is_empty() {
            errs.push(FieldError::required(
                tp.child("matchLabelExpressions"),
                "must contain at least one key/value pair",
            ));
        }
        for (j, req) in exprs.iter().enumerate() {
            let rp = tp.child("matchLabelExpressions").index(j);
            let key = json::str_or_empty(req, "key");
            for msg in is_qualified_name(key) {
                errs.push(FieldError::invalid_str(rp.child("key"), key, &msg));
            }
            if json::arr(req, "values").is_empty() {
                errs.push(FieldError::required(
                    rp.child("values"),
                    "must specify as least one value",
                ));
            }
        }
    }

    if let Some(old) = old {
        errs.extend(validate_update(obj, old));
    }
    errs
}

fn validate_update(obj: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // A missing map and an empty one are the same to upstream's reflect.DeepEqual after decoding
    // only when both are absent; keep that strictness but treat null as absent.
    if json::get(obj, "parameters") != json::get(old, "parameters") {
        errs.push(FieldError::forbidden(
            "parameters",
            "updates to parameters are forbidden.",
        ));
    }
    if json::get(obj, "provisioner") != json::get(old, "provisioner") {
        errs.push(FieldError::forbidden(
            "provisioner",
            "updates to provisioner are forbidden.",
        ));
    }
    if json::get(obj, "reclaimPolicy") != json::get(old, "reclaimPolicy") {
        errs.push(FieldError::forbidden(
            "reclaimPolicy",
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    let mode = json::get(obj, "volumeBindingMode");
    if mode != json::get(old, "volumeBindingMode") {
        errs.push(FieldError::invalid(
            "volumeBindingMode",
            mode.unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sc() -> Value {
        json!({"metadata": {"name": "fast"}, "provisioner": "local.volplane.io",
               "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
               "parameters": {"type": "ssd"}})
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn valid_class_passes() {
        assert!(validate(&sc(), None).is_empty());
    }

    #[test]
    fn provisioner_is_required_and_qualified() {
        let mut v = sc();
        v.as_object_mut().unwrap().remove("provisioner");
        assert_eq!(
            messages(&validate(&v, None)),
            vec!["provisioner: Required value"]
        );
        v["provisioner"] = json!("bad provisioner");
        let errs = validate(&v, None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "provisioner");
        // Upper case is accepted: upstream checks the lower-cased name.
        v["provisioner"] = json!("Example.COM/Disk");
        assert!(validate(&v, None).is_empty());
    }

    #[test]
    fn at_most_512_parameters() {
        let mut v = sc();
        let params: serde_json::Map<String, Value> =
            (0..513).map(|i| (format!("k{i}"), json!("v"))).collect();
        v["parameters"] = Value::Object(params);
        assert_eq!(
            messages(&validate(&v, None)),
            vec!["parameters: Too long: may not be more than 512 bytes"]
        );
    }

    #[test]
    fn parameter_keys_may_not_be_empty() {
        let mut v = sc();
        v["parameters"] = json!({"": "x"});
        assert_eq!(
            messages(&validate(&v, None)),
            vec!["parameters: Invalid value: \"\": field can not be empty."]
        );
    }

    #[test]
    fn parameters_total_size_is_limited() {
        let mut v = sc();
        v["parameters"] = json!({"k": "x".repeat(MAX_PARAMETERS_SIZE)});
        assert_eq!(
            messages(&validate(&v, None)),
            vec!["parameters: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn reclaim_policy_is_delete_or_retain() {
        let mut v = sc();
        v["reclaimPolicy"] = json!("Recycle");
        assert_eq!(
            messages(&validate(&v, None)),
            vec![
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\""
            ]
        );
    }

    #[test]
    fn binding_mode_is_required_and_known() {
        let mut v = sc();
        v["volumeBindingMode"] = json!("Later");
        assert_eq!(validate(&v, None)[0].field, "volumeBindingMode");
        v.as_object_mut().unwrap().remove("volumeBindingMode");
        assert_eq!(
            messages(&validate(&v, None)),
            vec!["volumeBindingMode: Required value"]
        );
    }

    #[test]
    fn allowed_topologies_need_keys_and_values() {
        let mut v = sc();
        v["allowedTopologies"] =
            json!([{"matchLabelExpressions": [{"key": "zone", "values": []}]}]);
        assert_eq!(
            messages(&validate(&v, None)),
            vec![
                "allowedTopologies[0].matchLabelExpressions[0].values: Required value: must specify as least one value"
            ]
        );
    }

    #[test]
    fn parameters_provisioner_reclaim_policy_and_binding_mode_are_immutable() {
        let old = sc();
        let mut new = sc();
        new["parameters"] = json!({"type": "hdd"});
        new["provisioner"] = json!("other.example.com");
        new["reclaimPolicy"] = json!("Retain");
        new["volumeBindingMode"] = json!("WaitForFirstConsumer");
        assert_eq!(
            messages(&validate(&new, Some(&old))),
            vec![
                "parameters: Forbidden: updates to parameters are forbidden.",
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
                "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable"
            ]
        );
        // Other fields (allowVolumeExpansion, labels) may change.
        let mut new = sc();
        new["allowVolumeExpansion"] = json!(true);
        assert!(validate(&new, Some(&old)).is_empty());
    }

    #[test]
    fn allowed_topology_terms_need_expressions_and_valid_keys() {
        let mut v = sc();
        v["allowedTopologies"] =
            json!([{}, {"matchLabelExpressions": [{"key": "bad key", "values": ["a"]}]}]);
        let errs = validate(&v, None);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "allowedTopologies[0].matchLabelExpressions: Required value: must contain at least one key/value pair"
        );
        assert_eq!(
            errs[1].field,
            "allowedTopologies[1].matchLabelExpressions[0].key"
        );
    }
}
