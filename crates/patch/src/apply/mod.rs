//! Server-side apply and managed-fields tracking (upstream structured-merge-diff semantics).
//!
//! - [`apply`]: merges an applied configuration into the live object for one field manager,
//!   detects conflicts with other managers (409 unless `force`), removes fields the manager
//!   applied before and no longer applies (unless someone else owns them), and returns the new
//!   object with the updated [`ManagedFields`].
//! - [`update_managed_fields`]: after an ordinary create/update/patch, gives the manager the
//!   fields that changed and takes them from everyone else.
//!
//! Lists are associative (by their upstream `listMapKey`s) or sets where the schema says so and
//! atomic otherwise; kinds without a schema (custom resources) use
//! [`crate::strategic::DeducedSchema`]: maps granular, lists atomic. `apiVersion`, `kind` and
//! server-owned metadata (`name`, `namespace`, `uid`, `resourceVersion`, `generation`,
//! `creationTimestamp`, `managedFields`, ...) are never tracked, as upstream.
//!
//! The returned object has no `metadata.managedFields`: the caller stamps the time
//! ([`ManagedFields::stamp_time`]) and writes them ([`ManagedFields::write_into`]).

mod fieldset;
mod managed_fields;
mod merge;

use serde_json::Value;

pub use fieldset::{FieldSet, PathElement, display_path};
pub use managed_fields::{ManagedFields, ManagedFieldsEntry, Operation};

use crate::error::{ApplyError, Conflict, Conflicts};
use crate::strategic::{DeducedSchema, MergeSchema};
use merge::{Comparison, Walker};

/// The manager upstream credits with the fields of an object that had no managed fields when
/// it was first applied to.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Server-side apply of `applied` by `manager` to `live` (`None`: the object does not exist and
/// is created). `managed` are the live object's managed fields. Returns the new object (without
/// `metadata.managedFields`) and its managed fields (the changed entry has no time yet).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    managed: &ManagedFields,
    schema: Option<&dyn MergeSchema>,
) -> Result<(Value, ManagedFields), ApplyError> {
    apply_to_subresource(live, applied, manager, "", force, managed, schema)
}

/// [`apply`] through a subresource (`status`): the entry is recorded with that subresource.
pub fn apply_to_subresource(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    managed: &ManagedFields,
    schema: Option<&dyn MergeSchema>,
) -> Result<(Value, ManagedFields), ApplyError> {
    let schema = schema.unwrap_or(&DeducedSchema);
    if !applied.is_object() || live.is_some_and(|l| !l.is_object()) {
        return Err(ApplyError::NotAnObject);
    }
    let applied = without_managed_fields(applied);
    let live = live.map(without_managed_fields);
    let untracked = untracked_fields();
    let mut managed = managed.clone();

    if let Some(live) = &live
        && managed.is_empty()
    {
        let fields = Walker::new(schema)
            .object_field_set(live)
            .difference(&untracked);
        if !fields.is_empty() {
            managed.entries.push(ManagedFieldsEntry {
                manager: BEFORE_FIRST_APPLY.to_owned(),
                operation: Operation::Update,
                api_version: api_version_of(live),
                time: None,
                subresource: subresource.to_owned(),
                fields,
            });
        }
    }

    let config_set = Walker::new(schema)
        .config_field_set(&applied)?
        .difference(&untracked);
    let mut object = Walker::new(schema).merge(live.as_ref(), &applied)?;

    let api_version = api_version_of(&applied);
    let position = managed
        .entries
        .iter()
        .position(|e| e.is_for(manager, Operation::Apply, subresource, None));
    let last_applied = match position {
        Some(i) => {
            let entry = &mut managed.entries[i];
            let last = std::mem::replace(&mut entry.fields, config_set.clone());
            if last != config_set || entry.api_version != api_version {
                entry.time = None;
            }
            entry.api_version = api_version.clone();
            last
        }
        None => {
            managed.entries.push(ManagedFieldsEntry {
                manager: manager.to_owned(),
                operation: Operation::Apply,
                api_version: api_version.clone(),
                time: None,
                subresource: subresource.to_owned(),
                fields: config_set.clone(),
            });
            FieldSet::new()
        }
    };

    let owned = managed
        .entries
        .iter()
        .fold(FieldSet::new(), |all, e| all.union(&e.fields));
    Walker::new(schema).prune(&mut object, &last_applied, &owned);

    let mut comparison = Comparison::default();
    let nothing = Value::Object(serde_json::Map::new());
    Walker::new(schema).compare(
        Some(live.as_ref().unwrap_or(&nothing)),
        Some(&object),
        false,
        &mut comparison,
    );
    let changed = comparison.modified.union(&comparison.added);

    let mut conflicts = Vec::new();
    for entry in &mut managed.entries {
        if entry.is_for(manager, Operation::Apply, subresource, None) {
            continue;
        }
        let lost = entry.fields.intersection(&changed);
        conflicts.extend(lost.paths().iter().map(|path| Conflict {
            manager: entry.manager.clone(),
            applied: entry.operation == Operation::Apply,
            api_version: entry.api_version.clone(),
            time: entry.time.clone(),
            subresource: entry.subresource.clone(),
            field: display_path(path),
        }));
        // Other managers lose what changed under them and what is gone.
        entry.fields = entry
            .fields
            .difference(&lost)
            .difference(&comparison.removed);
    }
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflicts(Conflicts(conflicts)));
    }
    managed.drop_empty();
    Ok((object, managed))
}

/// The managed fields after an ordinary create, update or patch by `manager` that turned `old`
/// into `new` (`old` is `Value::Null` on create): changed and added fields become the
/// manager's (operation `Update`, keyed by the object's `apiVersion`) and leave every other
/// manager; removed fields leave every manager.
pub fn update_managed_fields(
    old: &Value,
    new: &Value,
    manager: &str,
    managed: &ManagedFields,
    schema: Option<&dyn MergeSchema>,
) -> ManagedFields {
    update_managed_fields_of_subresource(old, new, manager, "", managed, schema)
}

/// [`update_managed_fields`] for a write through a subresource (`status`).
pub fn update_managed_fields_of_subresource(
    old: &Value,
    new: &Value,
    manager: &str,
    subresource: &str,
    managed: &ManagedFields,
    schema: Option<&dyn MergeSchema>,
) -> ManagedFields {
    let schema = schema.unwrap_or(&DeducedSchema);
    let old = without_managed_fields(old);
    let new = without_managed_fields(new);
    // A create compares with an empty object, as upstream.
    let old = if old.is_object() {
        old
    } else {
        Value::Object(serde_json::Map::new())
    };
    let mut comparison = Comparison::default();
    Walker::new(schema).compare(Some(&old), Some(&new), false, &mut comparison);
    // Set operations in place: on a create (the common write) nothing else is owned, and
    // copying the sets was most of the cost.
    let mut changed = comparison.modified;
    changed.add_all(comparison.added);
    changed.remove_all(&untracked_fields());
    let removed = comparison.removed;
    let api_version = api_version_of(&new);
    let is_ours = |e: &ManagedFieldsEntry| {
        e.is_for(
            manager,
            Operation::Update,
            subresource,
            api_version.as_deref(),
        )
    };

    let mut managed = managed.clone();
    if managed.entries.iter().any(|e| !is_ours(e)) {
        let mut taken = changed.clone();
        taken.add_all(removed.clone());
        for entry in managed.entries.iter_mut().filter(|e| !is_ours(e)) {
            entry.fields.remove_all(&taken);
        }
    }
    let entry = match managed.entries.iter().position(is_ours) {
        Some(i) => &mut managed.entries[i],
        None => {
            managed.entries.push(ManagedFieldsEntry {
                manager: manager.to_owned(),
                operation: Operation::Update,
                api_version: api_version.clone(),
                time: None,
                subresource: subresource.to_owned(),
                fields: FieldSet::new(),
            });
            managed.entries.last_mut().expect("just pushed")
        }
    };
    let mut fields = entry.fields.clone();
    fields.remove_all(&removed);
    fields.add_all(changed);
    if fields != entry.fields {
        entry.time = None;
    }
    entry.fields = fields;
    managed.drop_empty();
    managed
}

fn api_version_of(object: &Value) -> Option<String> {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.shift_remove("managedFields");
    }
    object
}

/// Fields upstream never tracks (its "strip" set).
fn untracked_fields() -> FieldSet {
    let field = |name: &str| PathElement::Field(name.to_owned());
    let mut set = FieldSet::new();
    set.insert(&[field("apiVersion")]);
    set.insert(&[field("kind")]);
    set.insert(&[field("metadata")]);
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&[field("metadata"), field(name)]);
    }
    set
}

#[cfg(test)]
mod tests;
