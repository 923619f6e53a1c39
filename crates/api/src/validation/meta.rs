//! `metadata` rules shared by every kind (apimachinery's `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate`), and the name/label checks other rules reuse.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::json;
use super::{FieldError, Path};
use crate::resources::ResourceInfo;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
/// Upstream's `TotalAnnotationSizeLimitB`: keys and values together.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

static DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{DNS1123_LABEL_FMT}$")).expect("valid regex"));
static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*$")).expect("valid regex")
});
static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").expect("valid regex")
});
static LABEL_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").expect("valid regex")
});

fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// The messages of apimachinery's `IsDNS1123Label`; empty when `value` is a valid label.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !DNS1123_LABEL.is_match(value) {
        errs.push(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
             and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', \
             regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                .to_string(),
        );
    }
    errs
}

/// The messages of apimachinery's `IsDNS1123Subdomain`; empty when `value` is valid.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !DNS1123_SUBDOMAIN.is_match(value) {
        errs.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' \
             or '.', and must start and end with an alphanumeric character (e.g. 'example.com', \
             regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .to_string(),
        );
    }
    errs
}

const QUALIFIED_NAME_ERR: &str = "name part must consist of alphanumeric characters, '-', '_' or \
     '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
     '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// The messages of apimachinery's `IsQualifiedName` (`[prefix/]name`, as label and annotation
/// keys and finalizers are); empty when valid.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for msg in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            name
        }
        _ => {
            errs.push(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and \
                 must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  \
                 or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') \
                 with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                    .to_string(),
            );
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !QUALIFIED_NAME.is_match(name) {
        errs.push(QUALIFIED_NAME_ERR.to_string());
    }
    errs
}

/// The messages of apimachinery's `IsValidLabelValue`.
pub(crate) fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !LABEL_VALUE.is_match(value) {
        errs.push(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' \
             or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or \
             'my_value',  or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                .to_string(),
        );
    }
    errs
}

/// How a kind's names are checked (each kind's `ValidateNameFunc` upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameRule {
    /// DNS-1123 label: namespaces.
    Label,
    /// DNS-1123 subdomain: everything else served here.
    Subdomain,
}

fn name_rule(resource: &ResourceInfo) -> NameRule {
    match (resource.group, resource.kind) {
        ("", "Namespace") => NameRule::Label,
        _ => NameRule::Subdomain,
    }
}

/// apimachinery's `NameIsDNS*` with `prefix`: a generateName may end in '-', which upstream
/// masks before checking.
fn check_name(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = if prefix && name.ends_with('-') {
        masked = format!("{}a", &name[..name.len() - 1]);
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Label => is_dns1123_label(name),
        NameRule::Subdomain => is_dns1123_subdomain(name),
    }
}

/// `metadata` of any object: name or generateName, namespace presence, labels, annotations,
/// finalizers, ownerReferences.
pub(crate) fn validate_object_meta(resource: &ResourceInfo, obj: &Value) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    let mut errs = Vec::new();
    let rule = name_rule(resource);

    let name = json::str_or_empty(meta, "name");
    let generate_name = json::str_or_empty(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in check_name(rule, generate_name, true) {
            errs.push(FieldError::invalid_str(
                path.child("generateName"),
                generate_name,
                &msg,
            ));
        }
    }
    if name.is_empty() {
        // The API server fills the name from generateName before validating; a missing name
        // here means neither was given.
        errs.push(FieldError::required(
            path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in check_name(rule, name, false) {
            errs.push(FieldError::invalid_str(path.child("name"), name, &msg));
        }
    }

    let namespace = json::str_or_empty(meta, "namespace");
    if resource.namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(path.child("namespace"), ""));
        } else {
            for msg in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid_str(
                    path.child("namespace"),
                    namespace,
                    &msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            path.child("namespace"),
            "not allowed on this type",
        ));
    }

    errs.extend(validate_labels(meta, &path.child("labels")));
    errs.extend(validate_annotations(meta, &path.child("annotations")));
    errs.extend(validate_finalizers(meta, &path.child("finalizers")));
    errs.extend(validate_owner_references(
        meta,
        &path.child("ownerReferences"),
    ));
    errs
}

/// Label keys are qualified names, values valid label values (`ValidateLabels`).
pub(crate) fn validate_labels(meta: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(labels) = json::obj(meta, "labels") {
        for (k, v) in labels {
            for msg in is_qualified_name(k) {
                errs.push(FieldError::invalid_str(path, k, &msg));
            }
            let value = v.as_str().unwrap_or("");
            for msg in is_valid_label_value(value) {
                errs.push(FieldError::invalid_str(path, value, &msg));
            }
        }
    }
    errs
}

/// Annotation keys are qualified names (checked lower-cased, as upstream) and all of them
/// together at most 256 KiB (`ValidateAnnotations`).
pub(crate) fn validate_annotations(meta: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(annotations) = json::obj(meta, "annotations") {
        let mut total = 0usize;
        for (k, v) in annotations {
            for msg in is_qualified_name(&k.to_lowercase()) {
                errs.push(FieldError::invalid_str(path, k, &msg));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > TOTAL_ANNOTATION_SIZE_LIMIT {
            errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
        }
    }
    errs
}

/// Finalizer names that need no domain prefix (`IsStandardFinalizerName`).
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Finalizers are qualified names; unprefixed ones must be standard; orphan and
/// foregroundDeletion exclude each other (`ValidateFinalizers`).
fn validate_finalizers(meta: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let finalizers: Vec<&str> = json::arr(meta, "finalizers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in &finalizers {
        let msgs = is_qualified_name(f);
        let had_errors = !msgs.is_empty();
        for msg in msgs {
            errs.push(FieldError::invalid_str(path, f, &msg));
        }
        if !had_errors && !f.contains('/') && !STANDARD_FINALIZERS.contains(f) {
            errs.push(FieldError::invalid_str(
                path,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            &Value::Array(finalizers.iter().map(|f| Value::from(*f)).collect()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Each owner reference names its owner completely (`validateOwnerReference`).
fn validate_owner_references(meta: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut controllers = 0;
    for r in json::arr(meta, "ownerReferences") {
        let api_version = json::str_or_empty(r, "apiVersion");
        if api_version.is_empty() || api_version.ends_with('/') {
            errs.push(FieldError::invalid_str(
                path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if json::str_or_empty(r, "kind").is_empty() {
            errs.push(FieldError::invalid_str(
                path.child("kind"),
                "",
                "kind must not be empty",
            ));
        }
        if json::str_or_empty(r, "name").is_empty() {
            errs.push(FieldError::invalid_str(
                path.child("name"),
                "",
                "name must not be empty",
            ));
        }
        if json::str_or_empty(r, "uid").is_empty() {
            errs.push(FieldError::invalid_str(
                path.child("uid"),
                "",
                "uid must not be empty",
            ));
        }
        if json::bool_or_false(r, "controller") {
            controllers += 1;
        }
    }
    if controllers > 1 {
        errs.push(FieldError::invalid(
            path,
            meta.get("ownerReferences").unwrap_or(&Value::Null),
            "Only one reference can have Controller set to true",
        ));
    }
    errs
}

/// Fields of `metadata` that never change (`ValidateObjectMetaUpdate`).
pub(crate) fn validate_object_meta_update(obj: &Value, old: &Value) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    let old_meta = old.get("metadata").unwrap_or(&empty);
    let mut errs = Vec::new();
    for field in ["name", "namespace", "uid", "creationTimestamp"] {
        let new_value = json::get(meta, field).cloned().unwrap_or(Value::Null);
        let old_value = json::get(old_meta, field).cloned().unwrap_or(Value::Null);
        // An update that leaves a server-set field out keeps the stored value; only a different
        // value is a change.
        if !new_value.is_null() && new_value != old_value {
            errs.push(FieldError::invalid(
                path.child(field),
                &new_value,
                "field is immutable",
            ));
        }
    }
    errs
}

/// Checks a `metav1.LabelSelector` (`ValidateLabelSelector`): operators and their values, keys
/// and values of `matchLabels`.
pub(crate) fn validate_label_selector(selector: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, req) in json::arr(selector, "matchExpressions").iter().enumerate() {
        let rp = path.child("matchExpressions").index(i);
        let operator = json::str_or_empty(req, "operator");
        let values = json::arr(req, "values");
        match operator {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        rp.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        rp.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid_str(
                rp.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = json::str_or_empty(req, "key");
        for msg in is_qualified_name(key) {
            errs.push(FieldError::invalid_str(rp.child("key"), key, &msg));
        }
        for (j, v) in values.iter().enumerate() {
            let value = v.as_str().unwrap_or("");
            for msg in is_valid_label_value(value) {
                errs.push(FieldError::invalid_str(
                    rp.child("values").index(j),
                    value,
                    &msg,
                ));
            }
        }
    }
    if let Some(labels) = json::obj(selector, "matchLabels") {
        let lp = path.child("matchLabels");
        for (k, v) in labels {
            for msg in is_qualified_name(k) {
                errs.push(FieldError::invalid_str(&lp, k, &msg));
            }
            let value = v.as_str().unwrap_or("");
            for msg in is_valid_label_value(value) {
                errs.push(FieldError::invalid_str(&lp, value, &msg));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use crate::validation::FieldErrorReason;
    use serde_json::json;

    fn pvc_resource() -> &'static ResourceInfo {
        find("", "v1", "persistentvolumeclaims").unwrap()
    }

    fn fields(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn bad_name_gets_the_upstream_subdomain_message() {
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "Bad_Name", "namespace": "default"}}),
        );
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of"
        ));
    }

    #[test]
    fn name_or_generate_name_is_required() {
        let errs = validate_object_meta(pvc_resource(), &json!({"metadata": {"namespace": "ns"}}));
        assert_eq!(
            fields(&errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
    }

    #[test]
    fn generate_name_may_end_in_a_dash_but_must_otherwise_be_a_valid_name() {
        let ok = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "x-abcde", "generateName": "x-", "namespace": "ns"}}),
        );
        assert!(ok.is_empty(), "{ok:?}");
        let bad = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "x-abcde", "generateName": "X_", "namespace": "ns"}}),
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "metadata.generateName");
    }

    #[test]
    fn namespace_names_are_labels_not_subdomains() {
        let ns = find("", "v1", "namespaces").unwrap();
        let errs = validate_object_meta(ns, &json!({"metadata": {"name": "a.b"}}));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("RFC 1123 label"));
        let pv = find("", "v1", "persistentvolumes").unwrap();
        assert!(validate_object_meta(pv, &json!({"metadata": {"name": "a.b"}})).is_empty());
    }

    #[test]
    fn long_names_are_rejected() {
        let name = "a".repeat(254);
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": name, "namespace": "ns"}}),
        );
        assert!(
            errs[0]
                .message
                .ends_with("must be no more than 253 characters")
        );
    }

    #[test]
    fn namespaced_kinds_need_a_namespace_and_cluster_kinds_refuse_one() {
        let errs = validate_object_meta(pvc_resource(), &json!({"metadata": {"name": "a"}}));
        assert_eq!(fields(&errs), vec!["metadata.namespace: Required value"]);
        let pv = find("", "v1", "persistentvolumes").unwrap();
        let errs = validate_object_meta(pv, &json!({"metadata": {"name": "a", "namespace": "ns"}}));
        assert_eq!(
            fields(&errs),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn label_keys_and_values_are_checked() {
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "ns",
                "labels": {"bad key": "ok", "good/key": "bad value!", "example.com/x": "y"}}}),
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].to_string().starts_with(
                "metadata.labels: Invalid value: \"bad key\": name part must consist of"
            )
        );
        assert!(errs[1].to_string().starts_with(
            "metadata.labels: Invalid value: \"bad value!\": a valid label must be an empty string"
        ));
    }

    #[test]
    fn label_key_prefix_must_be_a_subdomain() {
        assert_eq!(is_qualified_name("Example.com/x").len(), 1);
        assert!(is_qualified_name("Example.com/x")[0].starts_with("prefix part a lowercase"));
        assert_eq!(is_qualified_name("a/b/c").len(), 1);
        assert!(is_qualified_name("a/").contains(&"name part must be non-empty".to_string()));
    }

    #[test]
    fn annotation_keys_are_checked_case_insensitively_and_size_is_limited() {
        let ok = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "ns",
                "annotations": {"Example.com/Key": "v"}}}),
        );
        assert!(ok.is_empty(), "{ok:?}");
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT + 1);
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "ns", "annotations": {"k": big}}}),
        );
        assert_eq!(
            fields(&errs),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "ns", "annotations": {"a b": "v"}}}),
        );
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn finalizers_must_be_qualified_or_standard() {
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "ns",
                "finalizers": ["kubernetes.io/pvc-protection", "foregroundDeletion", "mine"]}}),
        );
        assert_eq!(
            fields(&errs),
            vec![
                "metadata.finalizers: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "ns",
                "finalizers": ["orphan", "foregroundDeletion"]}}),
        );
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("cannot be both set"));
    }

    #[test]
    fn owner_references_must_be_complete() {
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "ns",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]}}),
        );
        assert_eq!(
            fields(&errs),
            vec!["metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty"]
        );
    }

    #[test]
    fn name_and_uid_are_immutable() {
        let old = json!({"metadata": {"name": "a", "uid": "1"}});
        let errs =
            validate_object_meta_update(&json!({"metadata": {"name": "b", "uid": "1"}}), &old);
        assert_eq!(
            fields(&errs),
            vec!["metadata.name: Invalid value: \"b\": field is immutable"]
        );
        let errs =
            validate_object_meta_update(&json!({"metadata": {"name": "a", "uid": "2"}}), &old);
        assert_eq!(errs.len(), 1);
        assert!(validate_object_meta_update(&json!({"metadata": {"name": "a"}}), &old).is_empty());
    }

    #[test]
    fn selector_operators_and_values_are_checked() {
        let p = Path::new("spec.selector");
        let errs = validate_label_selector(
            &json!({"matchExpressions": [
                {"key": "a", "operator": "In", "values": []},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Near"}
            ]}),
            &p,
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueRequired);
        assert_eq!(errs[1].reason, FieldErrorReason::FieldValueForbidden);
        assert_eq!(
            errs[2].to_string(),
            "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator"
        );
        let errs = validate_label_selector(&json!({"matchLabels": {"a": "b c"}}), &p);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn namespace_must_be_a_label() {
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "Bad_NS"}}),
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.namespace");
    }

    #[test]
    fn only_one_owner_reference_may_be_the_controller() {
        let owner =
            json!({"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": true});
        let errs = validate_object_meta(
            pvc_resource(),
            &json!({"metadata": {"name": "a", "namespace": "ns", "ownerReferences": [owner.clone(), owner]}}),
        );
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .ends_with("Only one reference can have Controller set to true")
        );
    }

    #[test]
    fn selector_keys_and_values_are_checked() {
        let errs = validate_label_selector(
            &json!({"matchExpressions": [{"key": "bad key", "operator": "In", "values": ["bad value!"]}]}),
            &Path::new("s"),
        );
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].field, "s.matchExpressions[0].key");
        assert_eq!(errs[1].field, "s.matchExpressions[0].values[0]");
    }
}
