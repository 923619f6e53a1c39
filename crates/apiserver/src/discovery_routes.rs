//! Discovery and OpenAPI paths: `/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`,
//! `/openapi/v3[/…]`. The documents are built by `volplane_api`; this module picks the one a
//! path asks for and the form the Accept header prefers (aggregated or legacy discovery).

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::Value;
use volplane_api::{discovery, openapi};

use crate::http::{Body, bytes_response, json_response};
use crate::status::ApiError;

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The answer for a discovery or OpenAPI path; `None` for any other path.
pub fn answer(path: &str, accept: Option<&str>) -> Option<Result<Response<Body>, ApiError>> {
    let aggregated = accept.is_some_and(|a| a.contains("as=APIGroupDiscoveryList"));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let doc = match segments.as_slice() {
        ["api"] if aggregated => {
            return Some(Ok(aggregated_response(discovery::aggregated_core())));
        }
        ["apis"] if aggregated => {
            return Some(Ok(aggregated_response(discovery::aggregated_groups())));
        }
        ["api"] => Some(discovery::api_versions("")),
        ["apis"] => Some(discovery::api_group_list()),
        ["api", version] => discovery::api_resource_list("", version),
        ["apis", group] => discovery::api_group_document(group),
        ["apis", group, version] => discovery::api_resource_list(group, version),
        ["openapi", "v3"] => Some(openapi::v3_index()),
        ["openapi", "v3", "api", version] => return Some(openapi_document("", version)),
        ["openapi", "v3", "apis", group, version] => return Some(openapi_document(group, version)),
        ["openapi", ..] => None,
        _ => return None,
    };
    Some(
        doc.map(|d| json_response(StatusCode::OK, &d))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            }),
    )
}

/// A group-version's OpenAPI document, served from its cached serialised form.
fn openapi_document(group: &str, version: &str) -> Result<Response<Body>, ApiError> {
    let json = openapi::v3_document_json(group, version).ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    })?;
    Ok(bytes_response(StatusCode::OK, json.as_bytes().to_vec()))
}

fn aggregated_response(doc: Value) -> Response<Body> {
    let mut resp = json_response(StatusCode::OK, &doc);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(AGGREGATED));
    resp
}
