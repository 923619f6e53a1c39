//! Validation of objects before they are stored, with kube-apiserver's (and KubeVirt's and CDI's
//! admission webhooks') rules and messages.
//!
//! [`validate`] is the one entry point: it checks `metadata` for every kind, then the kind's own
//! rules, and with `old` the rules of an update (immutable fields). An empty result means the
//! object may be stored. [`status_error_message`] builds the message of the 422 `Invalid`
//! Status from the causes, exactly as upstream joins them.
//!
//! Everything works on `serde_json::Value`, because the API server holds objects as JSON and a
//! type mismatch has already been rejected when the body was decoded.

mod datavolume;
mod meta;
mod pod;
mod pv;
mod pvc;

mod storageclass;
mod vmi;
mod volumeattachment;

use std::fmt;

use serde_json::Value;

use crate::resources::ResourceInfo;

pub use meta::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name};
pub use vmi::{MAX_SERIAL_LEN, add_volume_options_bad_request, remove_volume_options_bad_request};

/// Why a field was rejected: the `reason` of a cause in an `Invalid` Status, spelled as upstream
/// (`metav1.CauseType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorReason {
    /// A referenced thing does not exist (a volumeMount naming no volume).
    FieldValueNotFound,
    /// A required field is missing or empty.
    FieldValueRequired,
    /// A value that must be unique appears twice.
    FieldValueDuplicate,
    /// A value is malformed or out of range.
    FieldValueInvalid,
    /// A value is not one of an enumerated set.
    FieldValueNotSupported,
    /// A value may not be set (or changed) here.
    FieldValueForbidden,
    /// A value is longer than allowed.
    FieldValueTooLong,
    /// A list has more items than allowed.
    FieldValueTooMany,
    /// A value has the wrong JSON type.
    FieldValueTypeInvalid,
}

impl FieldErrorReason {
    /// The wire spelling (`reason` of a `StatusCause`).
    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorReason::FieldValueNotFound => "FieldValueNotFound",
            FieldErrorReason::FieldValueRequired => "FieldValueRequired",
            FieldErrorReason::FieldValueDuplicate => "FieldValueDuplicate",
            FieldErrorReason::FieldValueInvalid => "FieldValueInvalid",
            FieldErrorReason::FieldValueNotSupported => "FieldValueNotSupported",
            FieldErrorReason::FieldValueForbidden => "FieldValueForbidden",
            FieldErrorReason::FieldValueTooLong => "FieldValueTooLong",
            FieldErrorReason::FieldValueTooMany => "FieldValueTooMany",
            FieldErrorReason::FieldValueTypeInvalid => "FieldValueTypeInvalid",
        }
    }
}

/// One rejected field: a cause of a 422 `Invalid` Status.
///
/// `message` is what upstream puts in the cause's `message` (the error body without the field,
/// e.g. `Required value: at least 1 access mode is required`); `Display` prints
/// `field: message`, the form used in the Status's top-level message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub reason: FieldErrorReason,
    /// The field path, e.g. `spec.accessModes`, `spec.resources[storage]`, `spec.volumes[0].name`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Formats a rejected value the way apimachinery's `field.Error` does: strings quoted, numbers
/// and booleans bare, `null` for nothing. Structured values are printed as compact JSON (upstream
/// prints a Go struct dump, which has no JSON equivalent).
fn format_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        other => other.to_string(),
    }
}

fn with_detail(body: String, detail: &str) -> String {
    if detail.is_empty() {
        body
    } else {
        format!("{body}: {detail}")
    }
}

impl FieldError {
    /// A cause whose message is taken as is: the admission webhooks of KubeVirt and CDI write
    /// free-form messages instead of apimachinery's `Type: value: detail` bodies.
    pub fn custom(
        reason: FieldErrorReason,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            reason,
            field: field.into(),
            message: message.into(),
        }
    }

    /// `Required value[: detail]`.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        Self::custom(
            FieldErrorReason::FieldValueRequired,
            field,
            with_detail("Required value".into(), detail),
        )
    }

    /// `Invalid value: <value>[: detail]`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self::custom(
            FieldErrorReason::FieldValueInvalid,
            field,
            with_detail(format!("Invalid value: {}", format_value(value)), detail),
        )
    }

    /// [`FieldError::invalid`] for a string value.
    pub fn invalid_str(field: impl Into<String>, value: &str, detail: &str) -> Self {
        Self::invalid(field, &Value::String(value.to_string()), detail)
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let detail = if supported.is_empty() {
            String::new()
        } else {
            format!("supported values: {list}")
        };
        Self::custom(
            FieldErrorReason::FieldValueNotSupported,
            field,
            with_detail(
                format!("Unsupported value: {}", format_value(value)),
                &detail,
            ),
        )
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Self::custom(
            FieldErrorReason::FieldValueDuplicate,
            field,
            format!("Duplicate value: {}", format_value(value)),
        )
    }

    /// `Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: &Value) -> Self {
        Self::custom(
            FieldErrorReason::FieldValueNotFound,
            field,
            format!("Not found: {}", format_value(value)),
        )
    }

    /// `Forbidden: detail`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self::custom(
            FieldErrorReason::FieldValueForbidden,
            field,
            with_detail("Forbidden".into(), detail),
        )
    }

    /// `Too long: may not be more than N bytes`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::custom(
            FieldErrorReason::FieldValueTooLong,
            field,
            format!("Too long: may not be more than {max} {unit}"),
        )
    }

    /// `Too many: N: must have at most M items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::custom(
            FieldErrorReason::FieldValueTooMany,
            field,
            format!("Too many: {actual}: must have at most {max} {unit}"),
        )
    }

    /// `Invalid value: <value>: detail` with reason `FieldValueTypeInvalid`.
    pub fn type_invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self::custom(
            FieldErrorReason::FieldValueTypeInvalid,
            field,
            with_detail(format!("Invalid value: {}", format_value(value)), detail),
        )
    }
}

/// The `Kind` part of a 422 message: `PersistentVolumeClaim` for the core group,
/// `StorageClass.storage.k8s.io` otherwise (upstream prints a `schema.GroupKind`).
pub fn qualified_kind(resource: &ResourceInfo) -> String {
    if resource.group.is_empty() {
        resource.kind.to_string()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

/// The message of a 422 `Invalid` Status: `PersistentVolumeClaim "bad" is invalid: [c1, c2]`,
/// one cause without brackets, as upstream's `errors.NewInvalid` (identical causes are printed
/// once, as upstream's aggregate de-duplicates them). `kind` is [`qualified_kind`].
pub fn status_error_message(kind: &str, name: &str, errs: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let s = e.to_string();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    let body = match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    };
    format!("{kind} {name:?} is invalid: {body}")
}

/// Checks `obj` (of `resource`) before it is stored; with `old`, as an update of `old`.
/// Returns every violated rule; empty means valid. Kinds without rules of their own get only
/// the `metadata` checks.
pub fn validate(resource: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(obj, old));
    }
    errs.extend(meta::validate_object_meta(resource, obj));
    let kind_errs = match (resource.group, resource.kind) {
        ("", "PersistentVolume") => pv::validate(obj, old),
        ("", "PersistentVolumeClaim") => pvc::validate(obj, old),
        ("", "Pod") => pod::validate(obj, old),
        ("storage.k8s.io", "StorageClass") => storageclass::validate(obj, old),
        ("storage.k8s.io", "VolumeAttachment") => volumeattachment::validate(obj, old),
        ("kubevirt.io", "VirtualMachineInstance") => vmi::validate_vmi(obj),
        ("kubevirt.io", "VirtualMachine") => vmi::validate_vm(obj),
        ("cdi.kubevirt.io", "DataVolume") => datavolume::validate(obj, old),
        _ => Vec::new(),
    };
    errs.extend(kind_errs);
    errs
}

/// A field path under construction (`spec.volumes[0].name`), built like apimachinery's
/// `field.Path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    pub(crate) fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }

    pub(crate) fn index(&self, i: usize) -> Self {
        Path(format!("{}[{}]", self.0, i))
    }

    pub(crate) fn key(&self, k: &str) -> Self {
        Path(format!("{}[{}]", self.0, k))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

/// Small accessors over JSON objects, so the rules read like the upstream Go they mirror.
pub(crate) mod json {
    use serde_json::Value;

    static EMPTY: Vec<Value> = Vec::new();

    /// The field `key` of `v` when `v` is an object and the field is not `null`.
    pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
        v.get(key).filter(|x| !x.is_null())
    }

    pub(crate) fn str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        v.get(key).and_then(Value::as_str)
    }

    /// The string field `key`, or "" when absent (Go's zero value).
    pub(crate) fn str_or_empty<'a>(v: &'a Value, key: &str) -> &'a str {
        str(v, key).unwrap_or("")
    }

    pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
        v.get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(EMPTY.as_slice())
    }

    pub(crate) fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a serde_json::Map<String, Value>> {
        v.get(key).and_then(Value::as_object)
    }

    pub(crate) fn bool_or_false(v: &Value, key: &str) -> bool {
        v.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    #[test]
    fn single_cause_is_printed_without_brackets() {
        let errs = vec![FieldError::required("spec.accessModes", "")];
        assert_eq!(
            status_error_message("PersistentVolumeClaim", "bad", &errs),
            "PersistentVolumeClaim \"bad\" is invalid: spec.accessModes: Required value"
        );
    }

    #[test]
    fn several_causes_are_bracketed_and_deduplicated() {
        let errs = vec![
            FieldError::required("spec.accessModes", ""),
            FieldError::required("spec.resources[storage]", ""),
            FieldError::required("spec.accessModes", ""),
        ];
        assert_eq!(
            status_error_message("PersistentVolumeClaim", "bad", &errs),
            "PersistentVolumeClaim \"bad\" is invalid: [spec.accessModes: Required value, spec.resources[storage]: Required value]"
        );
    }

    #[test]
    fn grouped_kinds_are_qualified_with_their_group() {
        let sc = find("storage.k8s.io", "v1", "storageclasses").unwrap();
        assert_eq!(qualified_kind(sc), "StorageClass.storage.k8s.io");
        let pvc = find("", "v1", "persistentvolumeclaims").unwrap();
        assert_eq!(qualified_kind(pvc), "PersistentVolumeClaim");
    }

    #[test]
    fn messages_follow_apimachinery_formatting() {
        assert_eq!(
            FieldError::invalid_str("metadata.name", "Bad_Name", "detail").to_string(),
            "metadata.name: Invalid value: \"Bad_Name\": detail"
        );
        assert_eq!(
            FieldError::invalid("x", &json!(5), "").to_string(),
            "x: Invalid value: 5"
        );
        assert_eq!(
            FieldError::not_supported("spec.volumeMode", &json!("Raw"), &["Block", "Filesystem"])
                .to_string(),
            "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\""
        );
        assert_eq!(
            FieldError::duplicate("a", &json!("x")).message,
            "Duplicate value: \"x\""
        );
        assert_eq!(
            FieldError::not_found("a", &json!("x")).message,
            "Not found: \"x\""
        );
        assert_eq!(
            FieldError::forbidden("spec", "no").to_string(),
            "spec: Forbidden: no"
        );
        assert_eq!(
            FieldError::too_long("parameters", 512).message,
            "Too long: may not be more than 512 bytes"
        );
        assert_eq!(
            FieldError::too_many("x", 5, 4).message,
            "Too many: 5: must have at most 4 items"
        );
        assert_eq!(
            FieldError::type_invalid("x", &json!(true), "expected string").reason,
            FieldErrorReason::FieldValueTypeInvalid
        );
    }

    #[test]
    fn kinds_without_rules_of_their_own_still_get_metadata_checks() {
        let cm = find("", "v1", "configmaps").unwrap();
        let errs = validate(
            cm,
            &json!({"metadata": {"name": "Bad_Name", "namespace": "default"}}),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
    }

    #[test]
    fn paths_are_built_like_field_path() {
        let p = Path::new("spec").child("volumes").index(0).child("name");
        assert_eq!(p.as_str(), "spec.volumes[0].name");
        assert_eq!(
            Path::new("spec")
                .child("resources")
                .key("storage")
                .to_string(),
            "spec.resources[storage]"
        );
    }
}
