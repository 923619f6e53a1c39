//! Decoding request bodies: size limit, JSON or YAML, type meta checks.

use bytes::Bytes;
use serde_json::Value;
use volplane_api::resources::ResourceInfo;

use crate::status::ApiError;

/// Upstream's limit on a request body (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The media type of a request body, without parameters.
pub fn media_type(content_type: Option<&str>) -> &str {
    content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
}

/// Decodes a body as JSON (or YAML when the media type says so) into an object.
pub fn decode_value(content_type: Option<&str>, body: &Bytes) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large());
    }
    let value: Value = match media_type(content_type) {
        "application/yaml" | "application/apply-patch+yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the body of the request is not valid UTF-8"))?;
            // JSON is YAML; serde_json parses the common case faster and with upstream's messages.
            match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) => serde_saphyr::from_str(text).map_err(|e| {
                    ApiError::bad_request(format!("error converting YAML to JSON: {e}"))
                })?,
            }
        }
        "application/json"
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "" => {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("json: {e}")))?
        }
        crate::protobuf::MEDIA_TYPE => crate::protobuf::decode(body).map_err(protobuf_error)?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    Ok(value)
}

/// Protobuf bodies of kinds or encodings we cannot read are 415; malformed ones 400.
fn protobuf_error(err: crate::protobuf::ProtobufError) -> ApiError {
    use crate::protobuf::ProtobufError::{UnknownKind, UnsupportedContentEncoding};
    match err {
        UnknownKind { .. } | UnsupportedContentEncoding(_) => ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request could not be decoded: {err}"),
        ),
        other => ApiError::bad_request(format!(
            "the body of the request could not be decoded: {other}"
        )),
    }
}

/// Decodes an object body and checks it is an object of `resource` (filling in a missing
/// apiVersion/kind, as upstream accepts bodies without them only when they're implied).
pub fn decode_object(
    resource: &ResourceInfo,
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<Value, ApiError> {
    let mut obj = decode_value(content_type, body)?;
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is unrecognized (must be of type map)",
        ));
    }
    check_type_meta(resource, &mut obj)?;
    Ok(obj)
}

/// Checks `apiVersion` and `kind` against the resource of the URL.
pub fn check_type_meta(resource: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let expected_version = resource.api_version();
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(String::from);
    let kind = obj.get("kind").and_then(Value::as_str).map(String::from);
    match (&api_version, &kind) {
        (None, _) | (_, None) => {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                truncate(&obj.to_string(), 200)
            )));
        }
        (Some(_), Some(k)) if k != resource.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                resource.kind
            )));
        }
        (Some(v), _) if *v != expected_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
        _ => {}
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use volplane_api::resources::find;

    fn pvc() -> &'static ResourceInfo {
        find("", "v1", "persistentvolumeclaims").unwrap()
    }

    #[test]
    fn malformed_json_is_bad_request() {
        let err = decode_object(
            pvc(),
            Some("application/json"),
            &Bytes::from_static(b"{\"a\":"),
        )
        .unwrap_err();
        assert_eq!((err.code, err.reason), (400, "BadRequest"));
    }

    #[test]
    fn yaml_bodies_are_accepted() {
        let body = Bytes::from_static(
            b"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: x\n",
        );
        let obj = decode_object(pvc(), Some("application/yaml"), &body).unwrap();
        assert_eq!(obj["metadata"]["name"], "x");
    }

    #[test]
    fn wrong_kind_is_rejected() {
        let body = Bytes::from_static(
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
        );
        let err = decode_object(pvc(), None, &body).unwrap_err();
        assert!(
            err.message.contains("does not match the expected kind"),
            "{}",
            err.message
        );
    }

    #[test]
    fn oversized_body_is_413() {
        let body = Bytes::from(vec![b' '; MAX_BODY_BYTES + 1]);
        assert_eq!(decode_value(None, &body).unwrap_err().code, 413);
    }
}
