//! The writes both snapshot loops make. Each is conditional on the resourceVersion the loop
//! read (a merge patch or update carrying it answers 409 if the object moved on), so a
//! decision taken on a stale cache never overwrites a newer state; the loop retries on the
//! next event instead.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Replaces the object's finalizers with `finalizers`.
pub(crate) async fn set_finalizers<K>(
    api: &Api<K>,
    object: &K,
    finalizers: Vec<String>,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    patch_metadata(api, object, json!({"finalizers": finalizers})).await
}

/// Adds `finalizer` (kept last, as upstream appends).
pub(crate) async fn add_finalizer<K>(
    api: &Api<K>,
    object: &K,
    finalizer: &str,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut finalizers = object.meta().finalizers.clone().unwrap_or_default();
    finalizers.push(finalizer.to_string());
    set_finalizers(api, object, finalizers).await
}

/// Removes each of `remove` from the object's finalizers.
pub(crate) async fn remove_finalizers<K>(
    api: &Api<K>,
    object: &K,
    remove: &[&str],
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let finalizers = object
        .meta()
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !remove.contains(&f.as_str()))
        .collect();
    set_finalizers(api, object, finalizers).await
}

/// Sets annotation `key` to `value`, or removes it when `value` is `None`.
pub(crate) async fn set_annotation<K>(
    api: &Api<K>,
    object: &K,
    key: &str,
    value: Option<&str>,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    patch_metadata(api, object, json!({"annotations": { key: value }})).await
}

/// Merge-patches `fields` into the object's metadata, conditional on the version read (a
/// concurrent change answers 409 instead of being overwritten).
async fn patch_metadata<K>(
    api: &Api<K>,
    object: &K,
    mut fields: serde_json::Value,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let meta = object.meta();
    fields["resourceVersion"] = json!(meta.resource_version);
    api.patch(
        meta.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &Patch::Merge(&json!({ "metadata": fields })),
    )
    .await
}

/// Writes `object`'s status through the status subresource.
pub(crate) async fn replace_status<K>(api: &Api<K>, object: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    api.replace_status(
        object.meta().name.as_deref().unwrap_or_default(),
        &PostParams::default(),
        object,
    )
    .await
}

/// The API server answered 409: the object moved on since it was read.
pub(crate) fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// The API server answered 404.
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// The loop failed because a write raced another: routine, retried at once.
pub(crate) fn is_conflict_error(error: &crate::Error) -> bool {
    matches!(error, crate::Error::Api(api) if is_conflict(api))
}
