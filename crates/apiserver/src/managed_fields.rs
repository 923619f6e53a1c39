//! `metadata.managedFields` bookkeeping for ordinary writes (server-side apply computes its own
//! in `patching`).

use serde_json::Value;
use volplane_patch::{ManagedFields, update_managed_fields_of_subresource};

use crate::object::now_rfc3339;
use crate::request::ResourceRequest;
use crate::status::ApiError;
use crate::write::WriteOptions;

/// Records in `new` that `opts.field_manager` now owns the fields it changed from `old`.
pub fn track(
    req: &ResourceRequest,
    old: Option<&Value>,
    new: &mut Value,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    if opts.applying {
        return Ok(());
    }
    let manager = opts.field_manager.as_deref().unwrap_or("unknown");
    let managed = match old {
        Some(old) => ManagedFields::from_object(old),
        None => ManagedFields::from_object(&Value::Null),
    }
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let schema = schema_of(req);
    let subresource = req.subresource.map(|s| s.name()).unwrap_or("");
    let mut updated = update_managed_fields_of_subresource(
        old.unwrap_or(&Value::Null),
        new,
        manager,
        subresource,
        &managed,
        schema,
    );
    updated.stamp_time(&now_rfc3339());
    updated.write_into(new);
    Ok(())
}

/// The strategic-merge / structured-merge schema of the request's kind, if it has one.
pub fn schema_of(req: &ResourceRequest) -> Option<&'static dyn volplane_patch::MergeSchema> {
    volplane_patch::schema_for(req.resource.group, req.resource.kind)
}
