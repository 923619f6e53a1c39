//! Errors answered as Kubernetes `Status` objects, with upstream reasons, codes and messages.

use serde_json::{Value, json};
use volplane_api::resources::ResourceInfo;

/// One cause of an error, as listed in `Status.details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// An API error: everything needed to build the `Status` the client receives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Upstream `StatusReason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, …).
    pub reason: &'static str,
    pub message: String,
    /// `Status.details`, boxed: errors travel through every `Result` of a request.
    pub details: Box<Details>,
}

/// The `details` of a `Status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// `details.name`.
    pub name: Option<String>,
    /// `details.group`, omitted when empty.
    pub group: Option<String>,
    /// `details.kind`: the plural resource for 404/409, the Kind for 422.
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds`.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn with_details(mut self, resource: &ResourceInfo, name: &str) -> ApiError {
        self.details.name = Some(name.to_string());
        self.details.kind = Some(resource.plural.to_string());
        if !resource.group.is_empty() {
            self.details.group = Some(resource.group.to_string());
        }
        self
    }

    pub fn not_found(resource: &ResourceInfo, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", resource.group_resource(), name),
        )
        .with_details(resource, name)
    }

    pub fn already_exists(resource: &ResourceInfo, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", resource.group_resource(), name),
        )
        .with_details(resource, name)
    }

    pub fn conflict(resource: &ResourceInfo, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                resource.group_resource(),
                name
            ),
        )
        .with_details(resource, name)
    }

    /// A 409 Conflict with a message of its own (e.g. a precondition or an apply conflict).
    pub fn conflict_with(resource: &ResourceInfo, name: &str, message: String) -> ApiError {
        let mut err = ApiError::conflict(resource, name);
        err.message = message;
        err
    }

    /// 422 Invalid listing each cause; `message` already names the object and its causes.
    pub fn invalid(
        resource: &ResourceInfo,
        name: &str,
        message: String,
        causes: Vec<Cause>,
    ) -> ApiError {
        let mut err = ApiError::new(422, "Invalid", message);
        err.details.name = Some(name.to_string());
        err.details.kind = Some(resource.kind.to_string());
        if !resource.group.is_empty() {
            err.details.group = Some(resource.group.to_string());
        }
        err.details.causes = causes;
        err
    }

    /// 403 Forbidden for one object (admission refusing a write).
    pub fn forbidden(resource: &ResourceInfo, name: &str, message: String) -> ApiError {
        ApiError::new(403, "Forbidden", message).with_details(resource, name)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {content_type}"
            ),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::new(406, "NotAcceptable", message)
    }

    pub fn too_large() -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    /// 410 Gone with reason `Expired`: the requested resourceVersion is too old.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// 504 Timeout, with a hint to retry.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        let mut err = ApiError::new(504, "Timeout", message);
        err.details.retry_after = Some(1);
        err
    }

    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        ApiError::new(501, "NotImplemented", message)
    }

    /// The `Status` object sent to the client.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        if let Some(name) = &self.details.name {
            details.insert("name".into(), json!(name));
        }
        if let Some(group) = &self.details.group {
            details.insert("group".into(), json!(group));
        }
        if let Some(kind) = &self.details.kind {
            details.insert("kind".into(), json!(kind));
        }
        if !self.details.causes.is_empty() {
            let causes: Vec<Value> = self
                .details
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(secs) = self.details.retry_after {
            details.insert("retryAfterSeconds".into(), json!(secs));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// The `Status` a successful deletion answers when the object is gone.
pub fn success_status(resource: &ResourceInfo, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource.plural, "uid": uid});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;
    use volplane_api::resources::find;

    #[test]
    fn not_found_matches_upstream_shape() {
        let pvc = find("", "v1", "persistentvolumeclaims").unwrap();
        let status = ApiError::not_found(pvc, "x").to_status();
        assert_eq!(
            status,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"persistentvolumeclaims \"x\" not found","reason":"NotFound",
                   "details":{"name":"x","kind":"persistentvolumeclaims"},"code":404})
        );
    }

    #[test]
    fn grouped_resources_carry_group_in_details_and_message() {
        let sc = find("storage.k8s.io", "v1", "storageclasses").unwrap();
        let status = ApiError::already_exists(sc, "fast").to_status();
        assert_eq!(
            status["message"],
            "storageclasses.storage.k8s.io \"fast\" already exists"
        );
        assert_eq!(status["details"]["group"], "storage.k8s.io");
    }

    #[test]
    fn invalid_lists_causes_with_kind() {
        let pvc = find("", "v1", "persistentvolumeclaims").unwrap();
        let cause = Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: "spec.accessModes".into(),
        };
        let status = ApiError::invalid(pvc, "bad", "m".into(), vec![cause]).to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["details"]["kind"], "PersistentVolumeClaim");
        assert_eq!(status["details"]["causes"][0]["field"], "spec.accessModes");
    }
}
