//! DataVolume rules, as CDI's admission webhook states them (free-form messages). Checks that
//! need other objects (the source claim exists, sizes of clones) belong to the controller.

use serde_json::Value;

use super::{FieldError, FieldErrorReason, Path, json};
use crate::quantity;

const SOURCES: &[&str] = &[
    "http", "s3", "gcs", "registry", "pvc", "upload", "blank", "imageio", "vddk", "snapshot",
];
const ACCESS_MODES: &[&str] = &["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"];
/// Sources whose size cannot be learnt from the source: the target's size must be given.
const SIZED_SOURCES: &[&str] = &[
    "blank", "http", "s3", "gcs", "registry", "upload", "imageio", "vddk",
];

fn invalid(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError::custom(FieldErrorReason::FieldValueInvalid, field, message)
}

pub(super) fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    if let Some(old) = old {
        // The spec is fixed once created (the import has started from it); only multi-stage
        // checkpoints move, which volplane does not run.
        if obj.get("spec") != old.get("spec") {
            return vec![FieldError::custom(
                FieldErrorReason::FieldValueDuplicate,
                "DataVolume.Spec",
                "Cannot update DataVolume Spec",
            )];
        }
        return Vec::new();
    }
    validate_spec(spec, &Path::new("spec"))
}

/// CDI stops at the first problem, so at most one cause is reported.
pub(crate) fn validate_spec(spec: &Value, path: &Path) -> Vec<FieldError> {
    match first_problem(spec, path) {
        Some(e) => vec![e],
        None => Vec::new(),
    }
}

fn first_problem(spec: &Value, path: &Path) -> Option<FieldError> {
    let pvc = json::get(spec, "pvc");
    let storage = json::get(spec, "storage");
    let source = json::get(spec, "source");
    let source_ref = json::get(spec, "sourceRef");

    let (target, target_name) = match (pvc, storage) {
        (None, None) => {
            return Some(invalid(path.child("PVC"), "Missing Data volume PVC"));
        }
        (Some(_), Some(_)) => {
            return Some(invalid(
                path.child("PVC").child("Storage"),
                "Duplicate storage definition, both target storage and target pvc defined",
            ));
        }
        (Some(p), None) => (p, "PVC"),
        (None, Some(s)) => (s, "Storage"),
    };

    match (source, source_ref) {
        (None, None) | (Some(_), Some(_)) => {
            return Some(invalid(
                path.child("source"),
                "Data volume should have either Source or SourceRef, or be externally populated",
            ));
        }
        _ => {}
    }

    let source_kind = source.map(|s| {
        SOURCES
            .iter()
            .filter(|k| json::get(s, k).is_some())
            .copied()
            .collect::<Vec<_>>()
    });

    // The size: required for sources that cannot tell it, and never zero or negative.
    let size = target
        .pointer("/resources/requests/storage")
        .filter(|v| !v.is_null());
    let size_path = path
        .child(target_name)
        .child("resources")
        .child("requests")
        .child("size");
    let needs_size = target_name == "PVC"
        || source_kind
            .as_ref()
            .is_some_and(|kinds| kinds.iter().any(|k| SIZED_SOURCES.contains(k)));
    match size {
        None if needs_size => {
            return Some(invalid(size_path, format!("{target_name} size is missing")));
        }
        Some(q) => {
            let positive = q
                .as_str()
                .and_then(quantity::parse)
                .is_some_and(|m| m.is_positive());
            if !positive {
                return Some(invalid(
                    size_path,
                    format!("{target_name} size can't be equal or less than zero"),
                ));
            }
        }
        None => {}
    }

    let modes = json::arr(target, "accessModes");
    let modes_path = path.child(target_name).child("accessModes");
    if target_name == "PVC" {
        // A `pvc` target is taken literally: exactly one mode. `storage` lets CDI pick.
        if modes.is_empty() {
            return Some(invalid(
                modes_path,
                "Required value: at least 1 access mode is required",
            ));
        }
        if modes.len() > 1 {
            return Some(invalid(modes_path, "PVC multiple accessModes"));
        }
    }
    for m in modes {
        let mode = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&mode) {
            return Some(invalid(
                modes_path,
                format!(
                    "Unsupported value: \"{mode}\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\""
                ),
            ));
        }
    }

    if let Some(r) = source_ref {
        let kind = json::str_or_empty(r, "kind");
        if kind.is_empty() {
            return Some(invalid(
                path.child("sourceRef").child("Kind"),
                "Missing sourceRef kind",
            ));
        }
        if kind != "DataSource" {
            return Some(invalid(
                path.child("sourceRef").child("Kind"),
                format!(
                    "Unsupported sourceRef kind {kind}, currently only DataSource is supported"
                ),
            ));
        }
        if json::str_or_empty(r, "name").is_empty() {
            return Some(invalid(
                path.child("sourceRef").child("Name"),
                "Missing sourceRef name",
            ));
        }
        return None;
    }

    let kinds = source_kind.unwrap_or_default();
    let source = source.unwrap_or(&Value::Null);
    match kinds.as_slice() {
        [] => return Some(invalid(path.child("source"), "Missing Data volume source")),
        [_] => {}
        _ => {
            return Some(invalid(
                path.child("source"),
                "Multiple Data volume sources",
            ));
        }
    }
    let kind = kinds[0];
    let content_type = json::str_or_empty(spec, "contentType");

    if let Some(url_field) = match kind {
        "http" => Some(("HTTP", json::str_or_empty(&source["http"], "url"))),
        "s3" => Some(("S3", json::str_or_empty(&source["s3"], "url"))),
        "gcs" => Some(("GCS", json::str_or_empty(&source["gcs"], "url"))),
        "imageio" => Some(("Imageio", json::str_or_empty(&source["imageio"], "url"))),
        "vddk" => Some(("VDDK", json::str_or_empty(&source["vddk"], "url"))),
        _ => None,
    } {
        let (name, url) = url_field;
        let problem = if url.is_empty() {
            Some("source URL is empty".to_string())
        } else if !(url.starts_with("http://")
            || url.starts_with("https://")
            || (kind == "gcs" && url.starts_with("gs://")))
        {
            Some(format!("Invalid source URL scheme: {url}"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Some(invalid(
                path.child("source").child(name).child("url"),
                format!("{} {problem}", path.child("source")),
            ));
        }
    }

    if !content_type.is_empty() && content_type != "kubevirt" && content_type != "archive" {
        return Some(invalid(
            path.child("contentType"),
            "ContentType not one of: kubevirt, archive",
        ));
    }
    if kind == "blank" && content_type == "archive" {
        return Some(invalid(
            path.child("contentType"),
            "SourceType cannot be blank and the contentType be archive",
        ));
    }

    if kind == "registry" {
        if !content_type.is_empty() && content_type != "kubevirt" {
            return Some(invalid(
                path.child("contentType"),
                "ContentType must be kubevirt when Source is Registry",
            ));
        }
        let registry = &source["registry"];
        let url = json::str(registry, "url");
        let image_stream = json::str(registry, "imageStream");
        match (url, image_stream) {
            (Some(_), Some(_)) | (None, None) => {
                return Some(invalid(
                    path.child("source").child("registry"),
                    "Source registry should have either URL or ImageStream",
                ));
            }
            (Some(url), None) => {
                let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
                if !["docker", "oci-archive"].contains(&scheme) {
                    return Some(invalid(
                        path.child("source").child("registry").child("url"),
                        format!("Illegal registry source URL scheme {url}"),
                    ));
                }
            }
            (None, Some(_)) => {}
        }
        let pull = json::str_or_empty(registry, "pullMethod");
        if !pull.is_empty() && pull != "pod" && pull != "node" {
            return Some(invalid(
                path.child("source").child("registry").child("pullMethod"),
                format!("ImportMethod {pull} is neither pod, node or \"\""),
            ));
        }
    }

    for (kind_name, field) in [("pvc", "PVC"), ("snapshot", "Snapshot")] {
        if kind == kind_name {
            let s = &source[kind_name];
            if json::str_or_empty(s, "namespace").is_empty()
                || json::str_or_empty(s, "name").is_empty()
            {
                let p = path.child("source").child(field);
                return Some(invalid(&p, format!("{p} source {field} is not valid")));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dv(spec: Value) -> Value {
        json!({"metadata": {"name": "dv", "namespace": "ns"}, "spec": spec})
    }

    fn messages(v: Value) -> Vec<String> {
        validate(&dv(v), None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn valid_blank_and_http_data_volumes_pass() {
        assert!(
            messages(json!({"source": {"blank": {}},
            "storage": {"resources": {"requests": {"storage": "1Gi"}}}}))
            .is_empty()
        );
        assert!(messages(json!({"source": {"http": {"url": "https://example.com/disk.img"}},
            "pvc": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})).is_empty());
    }

    #[test]
    fn target_pvc_or_storage_is_required_but_not_both() {
        assert_eq!(
            messages(json!({"source": {"blank": {}}})),
            vec!["spec.PVC: Missing Data volume PVC"]
        );
        assert_eq!(
            messages(json!({"source": {"blank": {}}, "pvc": {}, "storage": {}})),
            vec![
                "spec.PVC.Storage: Duplicate storage definition, both target storage and target pvc defined"
            ]
        );
    }

    #[test]
    fn exactly_one_source() {
        let storage = json!({"resources": {"requests": {"storage": "1Gi"}}});
        assert_eq!(
            messages(json!({"storage": storage})),
            vec![
                "spec.source: Data volume should have either Source or SourceRef, or be externally populated"
            ]
        );
        assert_eq!(
            messages(json!({"source": {}, "storage": storage})),
            vec!["spec.source: Missing Data volume source"]
        );
        assert_eq!(
            messages(json!({"source": {"blank": {}, "upload": {}}, "storage": storage})),
            vec!["spec.source: Multiple Data volume sources"]
        );
    }

    #[test]
    fn size_is_required_for_sources_that_cannot_tell_it() {
        for source in [
            json!({"blank": {}}),
            json!({"upload": {}}),
            json!({"http": {"url": "http://x/y"}}),
            json!({"registry": {"url": "docker://quay.io/x"}}),
        ] {
            assert_eq!(
                messages(json!({"source": source, "storage": {}})),
                vec!["spec.Storage.resources.requests.size: Storage size is missing"]
            );
        }
        // A clone learns its size from the source claim.
        assert!(
            messages(
                json!({"source": {"pvc": {"namespace": "ns", "name": "src"}},
            "storage": {}})
            )
            .is_empty()
        );
        assert_eq!(
            messages(
                json!({"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "0"}}}})
            ),
            vec![
                "spec.Storage.resources.requests.size: Storage size can't be equal or less than zero"
            ]
        );
    }

    #[test]
    fn pvc_target_needs_exactly_one_access_mode() {
        let base = json!({"resources": {"requests": {"storage": "1Gi"}}});
        assert_eq!(
            messages(json!({"source": {"blank": {}}, "pvc": base})),
            vec!["spec.PVC.accessModes: Required value: at least 1 access mode is required"]
        );
        let mut two = base.clone();
        two["accessModes"] = json!(["ReadWriteOnce", "ReadOnlyMany"]);
        assert_eq!(
            messages(json!({"source": {"blank": {}}, "pvc": two})),
            vec!["spec.PVC.accessModes: PVC multiple accessModes"]
        );
        let mut bad = base;
        bad["accessModes"] = json!(["ReadWriteOncePod"]);
        assert_eq!(
            messages(json!({"source": {"blank": {}}, "pvc": bad})).len(),
            1
        );
    }

    #[test]
    fn urls_must_be_http() {
        let storage = json!({"resources": {"requests": {"storage": "1Gi"}}});
        assert_eq!(
            messages(json!({"source": {"http": {"url": "ftp://x/y"}}, "storage": storage})),
            vec!["spec.source.HTTP.url: spec.source Invalid source URL scheme: ftp://x/y"]
        );
        assert_eq!(
            messages(json!({"source": {"http": {}}, "storage": storage})),
            vec!["spec.source.HTTP.url: spec.source source URL is empty"]
        );
    }

    #[test]
    fn content_type_rules() {
        let storage = json!({"resources": {"requests": {"storage": "1Gi"}}});
        assert_eq!(
            messages(json!({"source": {"blank": {}}, "storage": storage, "contentType": "iso"})),
            vec!["spec.contentType: ContentType not one of: kubevirt, archive"]
        );
        assert_eq!(
            messages(
                json!({"source": {"blank": {}}, "storage": storage, "contentType": "archive"})
            ),
            vec!["spec.contentType: SourceType cannot be blank and the contentType be archive"]
        );
    }

    #[test]
    fn registry_rules() {
        let storage = json!({"resources": {"requests": {"storage": "1Gi"}}});
        assert_eq!(
            messages(
                json!({"source": {"registry": {"url": "https://quay.io/x"}}, "storage": storage})
            ),
            vec!["spec.source.registry.url: Illegal registry source URL scheme https://quay.io/x"]
        );
        assert_eq!(
            messages(
                json!({"source": {"registry": {"url": "docker://quay.io/x", "pullMethod": "magic"}}, "storage": storage})
            ),
            vec![
                "spec.source.registry.pullMethod: ImportMethod magic is neither pod, node or \"\""
            ]
        );
    }

    #[test]
    fn clone_sources_name_namespace_and_name() {
        assert_eq!(
            messages(json!({"source": {"pvc": {"name": "src"}}, "storage": {}})),
            vec!["spec.source.PVC: spec.source.PVC source PVC is not valid"]
        );
        assert_eq!(
            messages(json!({"source": {"snapshot": {"namespace": "ns"}}, "storage": {}})),
            vec!["spec.source.Snapshot: spec.source.Snapshot source Snapshot is not valid"]
        );
    }

    #[test]
    fn source_ref_must_name_a_data_source() {
        assert_eq!(
            messages(json!({"sourceRef": {"kind": "Thing", "name": "x"}, "storage": {}})),
            vec![
                "spec.sourceRef.Kind: Unsupported sourceRef kind Thing, currently only DataSource is supported"
            ]
        );
        assert!(
            messages(json!({"sourceRef": {"kind": "DataSource", "name": "x"}, "storage": {}}))
                .is_empty()
        );
    }

    #[test]
    fn spec_is_immutable() {
        let old = dv(
            json!({"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}}),
        );
        let new = dv(
            json!({"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "2Gi"}}}}),
        );
        let errs = validate(&new, Some(&old));
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "DataVolume.Spec: Cannot update DataVolume Spec"
        );
        assert!(validate(&old, Some(&old)).is_empty());
    }

    #[test]
    fn registry_needs_exactly_one_of_url_and_image_stream_and_kubevirt_content() {
        let storage = json!({"resources": {"requests": {"storage": "1Gi"}}});
        assert_eq!(
            messages(json!({"source": {"registry": {}}, "storage": storage})),
            vec!["spec.source.registry: Source registry should have either URL or ImageStream"]
        );
        assert_eq!(
            messages(json!({"source": {"registry": {"url": "docker://x", "imageStream": "s"}}, "storage": storage})).len(),
            1
        );
        assert!(
            messages(json!({"source": {"registry": {"imageStream": "s"}}, "storage": storage}))
                .is_empty()
        );
        assert_eq!(
            messages(
                json!({"source": {"registry": {"url": "docker://x"}}, "storage": storage, "contentType": "archive"})
            ),
            vec!["spec.contentType: ContentType must be kubevirt when Source is Registry"]
        );
    }

    #[test]
    fn source_ref_needs_kind_and_name() {
        assert_eq!(
            messages(json!({"sourceRef": {"name": "x"}, "storage": {}})),
            vec!["spec.sourceRef.Kind: Missing sourceRef kind"]
        );
        assert_eq!(
            messages(json!({"sourceRef": {"kind": "DataSource"}, "storage": {}})),
            vec!["spec.sourceRef.Name: Missing sourceRef name"]
        );
        assert_eq!(
            messages(json!({"sourceRef": {"kind": "DataSource", "name": "x"}, "source": {"blank": {}}, "storage": {}})).len(),
            1
        );
    }

    #[test]
    fn gcs_accepts_its_own_scheme() {
        let storage = json!({"resources": {"requests": {"storage": "1Gi"}}});
        assert!(
            messages(
                json!({"source": {"gcs": {"url": "gs://bucket/disk.img"}}, "storage": storage})
            )
            .is_empty()
        );
        assert_eq!(
            messages(
                json!({"source": {"s3": {"url": "gs://bucket/disk.img"}}, "storage": storage})
            )
            .len(),
            1
        );
    }
}
