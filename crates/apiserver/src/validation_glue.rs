//! The API server's side of validation: unknown-field checks by `fieldValidation`, and the
//! kind rules of `volplane_api::validation` turned into 422 Invalid.

use serde_json::Value;
use volplane_api::resources::ResourceInfo;

use crate::object::ObjectExt;
use crate::status::{ApiError, Cause};
use crate::write::FieldValidation;

/// Unknown fields: an error under Strict; otherwise dropped (as upstream's decoding drops them),
/// with a warning each under Warn.
pub fn check_fields(
    resource: &ResourceInfo,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let unknown = match mode {
        FieldValidation::Strict => volplane_api::schema_check::unknown_fields(resource, obj),
        _ => volplane_api::schema_check::prune_unknown_fields(resource, obj),
    };
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
        .collect();
    match mode {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            messages.join(", ")
        ))),
        FieldValidation::Warn => Ok(messages),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

/// The kind's rules; any violation → 422 with one cause per field.
pub fn validate(resource: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let errors = volplane_api::validation::validate(resource, obj, old);
    if errors.is_empty() {
        return Ok(());
    }
    let name = obj.name().unwrap_or_default();
    let message = volplane_api::validation::status_error_message(
        &volplane_api::validation::qualified_kind(resource),
        name,
        &errors,
    );
    let causes = errors
        .iter()
        .map(|e| Cause {
            reason: e.reason.as_str().to_string(),
            message: e.message.clone(),
            field: e.field.clone(),
        })
        .collect();
    Err(ApiError::invalid(resource, name, message, causes))
}
