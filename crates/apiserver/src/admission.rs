//! Admission: what the API server adds or refuses before a write is validated and stored —
//! the default StorageClass, protection finalizers, namespace lifecycle, resize rules, and
//! whether a deletion is graceful.

use serde_json::{Value, json};
use volplane_api::resources::ResourceInfo;
use volplane_api::wellknown::{
    ANN_DEFAULT_STORAGE_CLASS, FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION,
};

use crate::object::ObjectExt;
use crate::server::{ApiServer, decode_stored, store_error};
use crate::status::ApiError;
use crate::write::DeleteOptions;

/// Mutations and checks on create.
pub async fn admit_create(
    server: &ApiServer,
    resource: &ResourceInfo,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if resource.namespaced {
        check_namespace_open(server, obj.namespace().unwrap_or_default()).await?;
    }
    match resource.kind {
        "PersistentVolumeClaim" => {
            if obj.pointer("/spec/storageClassName").is_none()
                && let Some(class) = default_storage_class(server)
            {
                obj["spec"]["storageClassName"] = json!(class);
            }
            obj.add_finalizer(FINALIZER_PVC_PROTECTION);
        }
        "PersistentVolume" => obj.add_finalizer(FINALIZER_PV_PROTECTION),
        _ => {}
    }
    Ok(())
}

/// Checks on update.
pub async fn admit_update(
    server: &ApiServer,
    resource: &ResourceInfo,
    current: &Value,
    new: &mut Value,
) -> Result<(), ApiError> {
    if resource.kind == "PersistentVolumeClaim"
        && requested_storage(new) != requested_storage(current)
    {
        check_resize_allowed(server, resource, current, new)?;
    }
    Ok(())
}

/// True when deleting `obj` must wait for someone to finish it: a pod on an existing node
/// waits for that node's agent to stop its containers.
pub async fn graceful_deletion(
    server: &ApiServer,
    resource: &ResourceInfo,
    obj: &Value,
    options: &DeleteOptions,
) -> bool {
    if resource.kind != "Pod" || options.grace_period_seconds == Some(0) {
        return false;
    }
    let Some(node) = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return false;
    };
    let terminal = matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    !terminal
        && server
            .cache
            .get(&format!("/registry/minions/{node}"))
            .is_some()
}

/// Namespaced objects can be created only in a namespace that exists and is not terminating.
async fn check_namespace_open(server: &ApiServer, namespace: &str) -> Result<(), ApiError> {
    let key = format!("/registry/namespaces/{namespace}");
    let deleting = match server.cache.get(&key) {
        Some(cached) => cached.deleting,
        // Not cached yet: the namespace may have been created an instant ago.
        None => match server.store.get(&key).await.map_err(store_error)? {
            Some(kv) => decode_stored(&kv)?.deletion_timestamp().is_some(),
            None => return Err(ApiError::not_found(namespaces(), namespace)),
        },
    };
    if deleting {
        let message = format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        );
        return Err(ApiError::forbidden(namespaces(), namespace, message));
    }
    Ok(())
}

fn namespaces() -> &'static ResourceInfo {
    volplane_api::resources::find("", "v1", "namespaces").expect("namespaces are served")
}

/// The default StorageClass: the newest one annotated as default (ties: the first by name).
fn default_storage_class(server: &ApiServer) -> Option<String> {
    let classes = server.cache.list_prefix("/registry/storageclasses/");
    classes
        .iter()
        .map(|c| c.value())
        .filter(|c| c.annotation(ANN_DEFAULT_STORAGE_CLASS) == Some("true"))
        .max_by(|a, b| {
            let created = |o: &Value| o.meta_str("creationTimestamp").unwrap_or("").to_string();
            created(a)
                .cmp(&created(b))
                .then_with(|| b.name().cmp(&a.name()))
        })
        .and_then(|c| c.name().map(String::from))
}

fn requested_storage(obj: &Value) -> Option<&Value> {
    obj.pointer("/spec/resources/requests/storage")
}

/// Growing a claim needs a bound claim whose class allows expansion (shrinking is refused by
/// validation).
fn check_resize_allowed(
    server: &ApiServer,
    resource: &ResourceInfo,
    current: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    let name = current.name().unwrap_or_default();
    let bound = current.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    let class = new
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let allows = server
        .cache
        .get(&format!("/registry/storageclasses/{class}"))
        .map(|c| c.value())
        .and_then(|c| c.get("allowVolumeExpansion").and_then(Value::as_bool))
        .unwrap_or(false);
    if bound && allows {
        return Ok(());
    }
    let message = format!(
        "{} \"{name}\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
        resource.plural
    );
    Err(ApiError::forbidden(resource, name, message))
}
