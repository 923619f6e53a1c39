//! Writes: create, update, patch, delete — and what every write goes through: namespace and name
//! rules, system metadata, status isolation, defaulting, admission, validation, generation,
//! finalizers, and the store's revision preconditions.

use serde_json::{Value, json};
use volplane_api::resources::{ResourceInfo, Subresource};
use volplane_api::wellknown::{FINALIZER_FOREGROUND_DELETION, FINALIZER_ORPHAN};
use volplane_store::{Revision, StoreError};

use crate::admission;
use crate::object::{ObjectExt, now_rfc3339, spec_part};
use crate::request::ResourceRequest;
use crate::server::{ApiServer, encode_for_store, store_error};
use crate::status::ApiError;
use crate::validation_glue::{check_fields, validate};

/// How many times a write without a client precondition is retried after losing a race.
const MAX_RETRIES: usize = 16;

/// `?fieldValidation=`: what to do about unknown or duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// Options every write accepts in its query string.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    /// Set by server-side apply, which computes managed fields itself.
    pub applying: bool,
}

impl WriteOptions {
    /// Options of an internal write by `manager` (the API server's own controllers).
    pub fn internal(manager: &str) -> WriteOptions {
        WriteOptions {
            dry_run: false,
            field_manager: Some(manager.to_string()),
            field_validation: FieldValidation::Ignore,
            applying: false,
        }
    }

    /// `user_agent` names the field manager when the query does not (as upstream).
    pub fn from_request(
        req: &ResourceRequest,
        user_agent: Option<&str>,
    ) -> Result<WriteOptions, ApiError> {
        let field_validation = match req.query.get("fieldValidation") {
            None | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
                )));
            }
        };
        Ok(WriteOptions {
            dry_run: req.query.dry_run()?,
            field_manager: req
                .query
                .get("fieldManager")
                .or_else(|| user_agent.and_then(|ua| ua.split('/').next()))
                .map(String::from),
            field_validation,
            applying: false,
        })
    }
}

/// The result of a successful write.
#[derive(Debug)]
pub struct WriteOutcome {
    /// 200 or 201.
    pub code: u16,
    pub object: Value,
    /// `Warning` headers for the client (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

impl ApiServer {
    /// POST: creates a new object.
    pub async fn create(
        &self,
        req: &ResourceRequest,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let resource = req.resource;
        let warnings = check_fields(resource, &mut obj, opts.field_validation)?;
        prepare_create(req, &mut obj)?;
        let name = obj.name().unwrap_or_default().to_string();
        volplane_api::defaults::apply_defaults(resource, &mut obj);
        volplane_api::defaults::prepare_for_create(resource, &mut obj);
        admission::admit_create(self, resource, &mut obj).await?;
        validate(resource, &obj, None)?;
        crate::managed_fields::track(req, None, &mut obj, opts)?;
        if opts.dry_run {
            return Ok(WriteOutcome {
                code: 201,
                object: obj,
                warnings,
            });
        }
        let key = resource.storage_key(obj.namespace(), &name);
        let bytes = encode_for_store(&mut obj);
        let rv = match self.store.create(&key, bytes).await {
            Ok(rv) => rv,
            Err(StoreError::AlreadyExists { .. }) => {
                return Err(ApiError::already_exists(resource, &name));
            }
            Err(err) => return Err(store_error(err)),
        };
        obj.set_meta("resourceVersion", json!(rv.to_string()));
        tracing::debug!(resource = resource.plural, namespace = req.namespace.as_deref().unwrap_or(""), %name, rv, "created");
        Ok(WriteOutcome {
            code: 201,
            object: obj,
            warnings,
        })
    }

    /// PUT: replaces an object (or its status / finalizers, for those subresources).
    pub async fn update(
        &self,
        req: &ResourceRequest,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let warnings = check_fields(req.resource, &mut body, opts.field_validation)?;
        check_identity(req, &body)?;
        let precondition = parse_precondition(&body)?;
        let mut outcome = self
            .write_loop(req, opts, precondition, |current| {
                Ok(compose(req, current, body.clone()))
            })
            .await?;
        outcome.warnings = warnings;
        Ok(outcome)
    }

    /// The read–modify–write loop shared by update and patch: `make` builds the new object from
    /// the current one; a lost race is retried unless the client gave a resourceVersion.
    pub(crate) async fn write_loop<F>(
        &self,
        req: &ResourceRequest,
        opts: &WriteOptions,
        precondition: Option<Revision>,
        mut make: F,
    ) -> Result<WriteOutcome, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let resource = req.resource;
        let name = req.name.clone().unwrap_or_default();
        let key = resource.storage_key(req.namespace.as_deref(), &name);
        for _ in 0..MAX_RETRIES {
            let (current, current_rv) = self.read_current(resource, &key, &name).await?;
            if precondition.is_some_and(|p| p != current_rv) {
                return Err(ApiError::conflict(resource, &name));
            }
            let new = make(&current)?;
            match self
                .commit_update(req, &key, &current, current_rv, new, opts)
                .await
            {
                Err(CommitError::Lost) if precondition.is_none() => continue,
                Err(CommitError::Lost) => return Err(ApiError::conflict(resource, &name)),
                Err(CommitError::Api(err)) => return Err(err),
                Ok(outcome) => return Ok(outcome),
            }
        }
        Err(ApiError::conflict(resource, &name))
    }

    async fn commit_update(
        &self,
        req: &ResourceRequest,
        key: &str,
        current: &Value,
        current_rv: Revision,
        mut new: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, CommitError> {
        let resource = req.resource;
        forbid_new_finalizers_while_deleting(resource, current, &new)?;
        bump_generation(current, &mut new);
        volplane_api::defaults::apply_defaults(resource, &mut new);
        admission::admit_update(self, resource, current, &mut new).await?;
        validate(resource, &new, Some(current))?;
        crate::managed_fields::track(req, Some(current), &mut new, opts)?;
        if same_object(current, &new) {
            return Ok(WriteOutcome {
                code: 200,
                object: current.clone(),
                warnings: Vec::new(),
            });
        }
        if opts.dry_run {
            return Ok(WriteOutcome {
                code: 200,
                object: new,
                warnings: Vec::new(),
            });
        }
        if new.deletion_timestamp().is_some() && !pending_finalizers(&new) {
            return self.remove(resource, key, current_rv, new).await;
        }
        let bytes = encode_for_store(&mut new);
        let rv = match self.store.update(key, bytes, current_rv).await {
            Ok(rv) => rv,
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. }) => {
                return Err(CommitError::Lost);
            }
            Err(err) => return Err(store_error(err).into()),
        };
        new.set_meta("resourceVersion", json!(rv.to_string()));
        tracing::debug!(resource = resource.plural, key = %req.key(), rv, "updated");
        Ok(WriteOutcome {
            code: 200,
            object: new,
            warnings: Vec::new(),
        })
    }

    /// Removes an object from the store for good (its last finalizer is gone).
    async fn remove(
        &self,
        resource: &ResourceInfo,
        key: &str,
        expected: Revision,
        mut last: Value,
    ) -> Result<WriteOutcome, CommitError> {
        match self.store.delete(key, Some(expected)).await {
            Ok((rv, _)) => {
                last.set_meta("resourceVersion", json!(rv.to_string()));
                tracing::debug!(resource = resource.plural, key, rv, "deleted");
                Ok(WriteOutcome {
                    code: 200,
                    object: last,
                    warnings: Vec::new(),
                })
            }
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. }) => {
                Err(CommitError::Lost)
            }
            Err(err) => Err(store_error(err).into()),
        }
    }

    /// DELETE: removes an object, or marks it for deletion while finalizers remain.
    pub async fn delete(
        &self,
        req: &ResourceRequest,
        options: &DeleteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let resource = req.resource;
        let name = req.name.clone().unwrap_or_default();
        let key = resource.storage_key(req.namespace.as_deref(), &name);
        for _ in 0..MAX_RETRIES {
            let (current, current_rv) = self.read_current(resource, &key, &name).await?;
            options.check_preconditions(resource, &name, &current, current_rv)?;
            let mut next = current.clone();
            if let Some(finalizer) = options.propagation_finalizer() {
                next.add_finalizer(finalizer);
            }
            let graceful = admission::graceful_deletion(self, resource, &current, options).await;
            let outcome = if !pending_finalizers(&next) && !graceful {
                if options.dry_run {
                    return Ok(WriteOutcome {
                        code: 200,
                        object: current,
                        warnings: Vec::new(),
                    });
                }
                self.remove(resource, &key, current_rv, current).await
            } else {
                mark_deleting(resource, &mut next, options);
                if same_object(&current, &next) || options.dry_run {
                    return Ok(WriteOutcome {
                        code: 200,
                        object: next,
                        warnings: Vec::new(),
                    });
                }
                let opts = WriteOptions::internal("api-server");
                self.commit_update(req, &key, &current, current_rv, next, &opts)
                    .await
            };
            match outcome {
                Err(CommitError::Lost) => continue,
                Err(CommitError::Api(err)) => return Err(err),
                Ok(outcome) => return Ok(outcome),
            }
        }
        Err(ApiError::conflict(resource, &name))
    }

    /// DELETE on a collection: deletes every object the selectors match.
    pub async fn delete_collection(
        &self,
        req: &ResourceRequest,
        options: &DeleteOptions,
    ) -> Result<(), ApiError> {
        let page = self.list_objects(req).await?;
        for obj in page.items {
            let mut one = req.clone();
            one.name = Some(obj.name.clone());
            one.verb = crate::request::Verb::Delete;
            match self.delete(&one, options).await {
                Ok(_) => {}
                Err(err) if err.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// True while something must still happen before a deleted object may go: metadata finalizers,
/// or a namespace's spec finalizers.
fn pending_finalizers(obj: &Value) -> bool {
    !obj.finalizers().is_empty()
        || obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

/// Why a commit did not happen.
pub(crate) enum CommitError {
    /// Another write changed the object first (or deleted it): read again and retry.
    Lost,
    Api(ApiError),
}

impl From<ApiError> for CommitError {
    fn from(err: ApiError) -> CommitError {
        CommitError::Api(err)
    }
}

/// Namespace, name and system metadata of a new object.
fn prepare_create(req: &ResourceRequest, obj: &mut Value) -> Result<(), ApiError> {
    let resource = req.resource;
    if resource.namespaced {
        let ns = req.namespace.as_deref().ok_or_else(|| {
            ApiError::method_not_allowed("the server does not allow this method on the requested resource: POST to a namespaced resource needs a namespace in the URL")
        })?;
        match obj.namespace() {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => obj.set_meta("namespace", json!(ns)),
        }
    } else {
        obj.remove_meta("namespace");
    }
    if obj
        .meta_str("resourceVersion")
        .is_some_and(|rv| !rv.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if obj.name().is_none_or(str::is_empty)
        && let Some(prefix) = obj.meta_str("generateName").filter(|p| !p.is_empty())
    {
        let name = format!("{prefix}{}", random_suffix());
        obj.set_meta("name", json!(name));
    }
    let meta = obj.meta_mut();
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "resourceVersion",
    ] {
        meta.remove(field);
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.insert("generation".into(), json!(1));
    // Status belongs to controllers: a new object starts without one (nodes register theirs).
    if resource.has_subresource(Subresource::Status) && resource.kind != "Node" {
        obj.as_object_mut()
            .expect("checked to be an object")
            .remove("status");
    }
    Ok(())
}

/// Five characters from upstream's alphabet for generateName (no vowels, no look-alikes).
fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The object's name and namespace in the body must be those of the URL.
fn check_identity(req: &ResourceRequest, body: &Value) -> Result<(), ApiError> {
    let url_name = req.name.as_deref().unwrap_or_default();
    match body.name() {
        Some(n) if n == url_name => {}
        Some(n) if !n.is_empty() => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({url_name})"
            )));
        }
        _ => {
            return Err(ApiError::bad_request(
                "name is required in the object for an update",
            ));
        }
    }
    if let (Some(ns), Some(body_ns)) = (req.namespace.as_deref(), body.namespace())
        && !body_ns.is_empty()
        && body_ns != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// The resourceVersion a client put in its object, which makes the write conditional.
pub(crate) fn parse_precondition(body: &Value) -> Result<Option<Revision>, ApiError> {
    match body.meta_str("resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => rv.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resourceVersion {rv:?}: not a revision this server issued"
            ))
        }),
    }
}

/// The object to store for a client's write through the main resource or a subresource: each
/// writes only its own part, the rest comes from the current object, and fields only the server
/// sets keep their current values.
pub(crate) fn compose(req: &ResourceRequest, current: &Value, body: Value) -> Value {
    let mut next = compose_parts(req, current, body);
    keep_system_metadata(current, &mut next);
    next
}

fn compose_parts(req: &ResourceRequest, current: &Value, body: Value) -> Value {
    let resource = req.resource;
    match req.subresource {
        Some(Subresource::Status) => {
            with_field(current.clone(), "status", body.get("status").cloned())
        }
        Some(Subresource::Finalize) => with_spec_finalizers(current.clone(), &body),
        _ if resource.kind == "Namespace" => {
            // A namespace's spec.finalizers change only through /finalize.
            let next = with_field(body, "status", current.get("status").cloned());
            with_spec_finalizers(next, current)
        }
        _ if resource.has_subresource(Subresource::Status) => {
            with_field(body, "status", current.get("status").cloned())
        }
        _ => body,
    }
}

/// `obj` with the `spec.finalizers` of `from` (none when `from` has none).
fn with_spec_finalizers(mut obj: Value, from: &Value) -> Value {
    let finalizers = from.pointer("/spec/finalizers").cloned();
    let map = obj.as_object_mut().expect("objects are maps");
    let spec = map.entry("spec").or_insert(json!({}));
    *spec = with_field(std::mem::take(spec), "finalizers", finalizers);
    obj
}

fn with_field(mut obj: Value, field: &str, value: Option<Value>) -> Value {
    let map = obj.as_object_mut().expect("objects are maps");
    match value {
        Some(v) => {
            map.insert(field.to_string(), v);
        }
        None => {
            map.remove(field);
        }
    }
    obj
}

/// Fields only the server sets survive any client write unchanged.
fn keep_system_metadata(current: &Value, new: &mut Value) {
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match current.meta().and_then(|m| m.get(field)).cloned() {
            Some(v) => new.set_meta(field, v),
            None => {
                new.remove_meta(field);
            }
        }
    }
    if new.meta().is_some_and(|m| !m.contains_key("managedFields"))
        && let Some(mf) = current.meta().and_then(|m| m.get("managedFields")).cloned()
    {
        new.set_meta("managedFields", mf);
    }
    for type_field in ["apiVersion", "kind"] {
        if let Some(v) = current.get(type_field).cloned() {
            new[type_field] = v;
        }
    }
}

fn forbid_new_finalizers_while_deleting(
    resource: &ResourceInfo,
    current: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if current.deletion_timestamp().is_none() {
        return Ok(());
    }
    let before = current.finalizers();
    let added: Vec<String> = new
        .finalizers()
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let name = current.name().unwrap_or_default();
    let message = format!(
        "{} \"{name}\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}",
        resource.kind
    );
    let cause = crate::status::Cause {
        reason: "FieldValueForbidden".into(),
        message: format!(
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
        ),
        field: "metadata.finalizers".into(),
    };
    Err(ApiError::invalid(resource, name, message, vec![cause]))
}

fn bump_generation(current: &Value, new: &mut Value) {
    let generation = current
        .meta()
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let next = if spec_part(current) != spec_part(new) {
        generation + 1
    } else {
        generation
    };
    new.set_meta("generation", json!(next));
}

/// True when storing `new` would change nothing (resourceVersion aside).
fn same_object(current: &Value, new: &Value) -> bool {
    let (Some(a), Some(b)) = (current.as_object(), new.as_object()) else {
        return current == new;
    };
    let same_meta = |x: Option<&Value>, y: Option<&Value>| {
        let empty = serde_json::Map::new();
        let x = x.and_then(Value::as_object).unwrap_or(&empty);
        let y = y.and_then(Value::as_object).unwrap_or(&empty);
        let without_rv = |m: &serde_json::Map<String, Value>| {
            m.keys().filter(|k| *k != "resourceVersion").count()
        };
        without_rv(x) == without_rv(y)
            && x.iter()
                .filter(|(k, _)| *k != "resourceVersion")
                .all(|(k, v)| y.get(k) == Some(v))
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| match k.as_str() {
            "metadata" => same_meta(Some(v), b.get("metadata")),
            _ => b.get(k) == Some(v),
        })
}

/// `DeleteOptions`, from the body or the query string.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn from_request(
        req: &ResourceRequest,
        body: Option<&Value>,
    ) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions {
            propagation_policy: req.query.get("propagationPolicy").map(String::from),
            grace_period_seconds: req
                .query
                .get("gracePeriodSeconds")
                .and_then(|g| g.parse().ok()),
            dry_run: req.query.dry_run()?,
            ..Default::default()
        };
        if let Some(body) = body.filter(|b| b.is_object()) {
            let text = |p: &str| body.pointer(p).and_then(Value::as_str).map(String::from);
            opts.propagation_policy = text("/propagationPolicy").or(opts.propagation_policy);
            if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                opts.propagation_policy = Some("Orphan".into());
            }
            opts.grace_period_seconds = body
                .get("gracePeriodSeconds")
                .and_then(Value::as_i64)
                .or(opts.grace_period_seconds);
            opts.precondition_uid = text("/preconditions/uid");
            opts.precondition_rv = text("/preconditions/resourceVersion");
            if let Some(dry) = body.get("dryRun").and_then(Value::as_array) {
                opts.dry_run |= dry.iter().any(|d| d == "All");
            }
        }
        match opts.propagation_policy.as_deref() {
            None | Some("Background" | "Foreground" | "Orphan") => Ok(opts),
            Some(other) => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }

    fn propagation_finalizer(&self) -> Option<&'static str> {
        match self.propagation_policy.as_deref() {
            Some("Foreground") => Some(FINALIZER_FOREGROUND_DELETION),
            Some("Orphan") => Some(FINALIZER_ORPHAN),
            _ => None,
        }
    }

    fn check_preconditions(
        &self,
        resource: &ResourceInfo,
        name: &str,
        current: &Value,
        current_rv: Revision,
    ) -> Result<(), ApiError> {
        let uid = current.uid().unwrap_or_default();
        if let Some(want) = self.precondition_uid.as_deref().filter(|w| *w != uid) {
            return Err(ApiError::conflict_with(
                resource,
                name,
                format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
        if let Some(want) = self
            .precondition_rv
            .as_deref()
            .filter(|w| *w != current_rv.to_string())
        {
            return Err(ApiError::conflict_with(
                resource,
                name,
                format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {current_rv}"
                ),
            ));
        }
        Ok(())
    }
}

fn mark_deleting(resource: &ResourceInfo, obj: &mut Value, options: &DeleteOptions) {
    if obj.deletion_timestamp().is_none() {
        obj.set_meta("deletionTimestamp", json!(now_rfc3339()));
        let grace = if resource.kind == "Pod" {
            options.grace_period_seconds.unwrap_or(30).max(0)
        } else {
            0
        };
        obj.set_meta("deletionGracePeriodSeconds", json!(grace));
    }
    if resource.kind == "Namespace" {
        obj["status"]["phase"] = json!("Terminating");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_object_ignores_only_resource_version() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"a": 1}});
        let b = json!({"metadata": {"name": "x", "resourceVersion": "2"}, "spec": {"a": 1}});
        assert!(same_object(&a, &b));
        let c = json!({"metadata": {"name": "x", "labels": {"l": "v"}}, "spec": {"a": 1}});
        assert!(!same_object(&a, &c));
        let d = json!({"metadata": {"name": "x"}, "spec": {"a": 2}});
        assert!(!same_object(&a, &d));
    }

    #[test]
    fn generation_bumps_only_on_spec_changes() {
        let current = json!({"metadata": {"generation": 3}, "spec": {"a": 1}, "status": {"p": 1}});
        let mut status_only = json!({"metadata": {}, "spec": {"a": 1}, "status": {"p": 2}});
        bump_generation(&current, &mut status_only);
        assert_eq!(status_only["metadata"]["generation"], 3);
        let mut spec_change = json!({"metadata": {}, "spec": {"a": 2}});
        bump_generation(&current, &mut spec_change);
        assert_eq!(spec_change["metadata"]["generation"], 4);
    }

    #[test]
    fn generate_name_suffix_uses_upstream_alphabet() {
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 5);
        assert!(
            suffix
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
    }
}
