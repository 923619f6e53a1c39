//! PATCH: JSON patch, merge patch, strategic merge patch and server-side apply, each applied to
//! the current object and then written like an update.

use serde_json::Value;
use volplane_patch::{ApplyError, ManagedFields, PatchError};

use crate::body::check_type_meta;
use crate::conversion;
use crate::managed_fields::schema_of;
use crate::object::{ObjectExt, now_rfc3339};
use crate::request::ResourceRequest;
use crate::server::ApiServer;
use crate::status::{ApiError, Cause};
use crate::validation_glue::check_fields;
use crate::write::{WriteOptions, WriteOutcome, compose, parse_precondition};

/// The four patch types, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_media_type(media_type: &str) -> Result<PatchType, ApiError> {
        match media_type {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

impl ApiServer {
    /// PATCH of an object or a subresource. `req.resource` is the served resource.
    pub async fn patch(
        &self,
        req: &ResourceRequest,
        patch_type: PatchType,
        patch: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        if patch_type == PatchType::Strategic && !req.resource.is_builtin() {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        if patch_type == PatchType::Apply {
            return self.apply_patch(req, patch, opts).await;
        }
        let precondition = match patch_type {
            PatchType::Merge | PatchType::Strategic => parse_precondition(&patch)?,
            _ => None,
        };
        let sreq = req.to_storage();
        let mut warnings = Vec::new();
        let mut outcome = self
            .write_loop(&sreq, opts, precondition, |current| {
                let served = conversion::served(req.resource, current.clone());
                let mut patched = apply_one(req, patch_type, &served, &patch)?;
                check_type_meta(req.resource, &mut patched)?;
                warnings = check_fields(req.resource, &mut patched, opts.field_validation)?;
                Ok(compose(
                    &sreq,
                    current,
                    conversion::stored(req.resource, patched),
                ))
            })
            .await?;
        outcome.warnings = warnings;
        Ok(outcome)
    }

    /// Server-side apply: creates the object when missing; otherwise merges the applied
    /// configuration by field ownership.
    async fn apply_patch(
        &self,
        req: &ResourceRequest,
        applied: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let manager = opts.field_manager.clone().ok_or_else(|| {
            ApiError::invalid_patch_options(
                "fieldManager: Required value: is required for apply patch",
            )
        })?;
        let force = req.query.flag("force");
        let mut applied = applied;
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "the object provided is unrecognized (must be of type map)",
            ));
        }
        check_type_meta(req.resource, &mut applied)?;
        let warnings = check_fields(req.resource, &mut applied, opts.field_validation)?;
        let sreq = req.to_storage();
        let subresource = req.subresource.map(|s| s.name()).unwrap_or("");
        let apply_opts = WriteOptions {
            applying: true,
            ..opts.clone()
        };
        for _ in 0..16 {
            let name = req.name.as_deref().unwrap_or_default();
            let key = sreq.resource.storage_key(req.namespace.as_deref(), name);
            let exists = self
                .store
                .get(&key)
                .await
                .map_err(crate::server::store_error)?
                .is_some();
            let result = if exists {
                self.write_loop(&sreq, &apply_opts, None, |current| {
                    let served = conversion::served(req.resource, current.clone());
                    let managed = ManagedFields::from_object(&served).map_err(apply_error)?;
                    let (merged, managed) = volplane_patch::apply_to_subresource(
                        Some(&served),
                        &applied,
                        &manager,
                        subresource,
                        force,
                        &managed,
                        schema_of(req),
                    )
                    .map_err(apply_error)?;
                    let mut merged = merged;
                    stamp(&mut merged, managed);
                    Ok(compose(
                        &sreq,
                        current,
                        conversion::stored(req.resource, merged),
                    ))
                })
                .await
            } else {
                let (mut created, managed) = volplane_patch::apply(
                    None,
                    &applied,
                    &manager,
                    force,
                    &ManagedFields::default(),
                    schema_of(req),
                )
                .map_err(apply_error)?;
                stamp(&mut created, managed);
                if created.name().is_none_or(str::is_empty) {
                    created.set_meta("name", Value::String(name.to_string()));
                }
                self.create(
                    &sreq,
                    conversion::stored(req.resource, created),
                    &apply_opts,
                )
                .await
            };
            match result {
                // Created by someone else meanwhile: apply to what is there now.
                Err(err) if !exists && err.code == 409 && err.reason == "AlreadyExists" => continue,
                Err(err) if exists && err.code == 404 => continue,
                other => {
                    return other.map(|mut o| {
                        o.warnings = warnings;
                        o
                    });
                }
            }
        }
        Err(ApiError::conflict(
            req.resource,
            req.name.as_deref().unwrap_or_default(),
        ))
    }
}

fn stamp(obj: &mut Value, mut managed: ManagedFields) {
    managed.stamp_time(&now_rfc3339());
    managed.write_into(obj);
}

fn apply_one(
    req: &ResourceRequest,
    patch_type: PatchType,
    current: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let result = match patch_type {
        PatchType::Json => volplane_patch::apply_json_patch(current, patch),
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("the patch is not a JSON object"));
            }
            Ok(volplane_patch::apply_merge_patch(current, patch))
        }
        PatchType::Strategic => {
            let schema = schema_of(req).ok_or_else(|| {
                ApiError::unsupported_media_type("application/strategic-merge-patch+json")
            })?;
            volplane_patch::apply_strategic_merge_patch(current, patch, schema)
        }
        PatchType::Apply => unreachable!("apply patches take their own path"),
    };
    result.map_err(patch_error)
}

fn patch_error(err: PatchError) -> ApiError {
    let mut api = ApiError::new(err.status_code(), err.reason(), err.to_string());
    if err.status_code() == 422 {
        api.message =
            format!("the server rejected our request due to an error in our request: {err}");
    }
    api
}

fn apply_error(err: ApplyError) -> ApiError {
    let mut api = ApiError::new(err.status_code(), err.reason(), err.to_string());
    api.details.causes = err
        .conflicts()
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict".into(),
            message: c.cause_message(),
            field: c.field.clone(),
        })
        .collect();
    api
}

impl ApiError {
    fn invalid_patch_options(detail: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("PatchOptions.meta.k8s.io \"\" is invalid: {detail}"),
        )
    }
}
