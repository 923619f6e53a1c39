//! The garbage collector: deletes objects whose owners are gone, and carries out foreground and
//! orphan deletion (the `foregroundDeletion` and `orphan` finalizers).
//!
//! It runs inside the API server role because it is bookkeeping over stored objects, driven by
//! the watch cache's events and a periodic full pass that catches anything an event missed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use volplane_api::wellknown::{FINALIZER_FOREGROUND_DELETION, FINALIZER_ORPHAN};

use crate::object::ObjectExt;
use crate::request::{ResourceRequest, Verb};
use crate::server::ApiServer;
use crate::watch_cache::{CacheEvent, CachedObject, EventType, resource_of_key};
use crate::write::{DeleteOptions, WriteOptions};

const RESYNC: Duration = Duration::from_secs(30);

/// Runs until the process ends.
pub async fn run(server: Arc<ApiServer>) {
    let (_, _, mut events) = server.cache.snapshot_and_subscribe();
    full_pass(&server).await;
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => on_event(&server, &event).await,
                Err(RecvError::Lagged(_)) => full_pass(&server).await,
                Err(RecvError::Closed) => return,
            },
            _ = resync.tick() => full_pass(&server).await,
        }
    }
}

async fn on_event(server: &ApiServer, event: &CacheEvent) {
    let obj = &event.object;
    if event.kind == EventType::Deleted {
        for (key, dependent) in server.cache.dependents_of(&obj.uid) {
            collect_dependent(server, &key, &dependent).await;
        }
    } else if obj.deleting {
        settle_owner(server, &event.key, obj).await;
    }
    // A dependent that went away (or started going) may unblock its owner's foreground deletion.
    if event.kind == EventType::Deleted || obj.deleting {
        for owner_uid in &obj.owners {
            if let Some((key, owner)) = server.cache.by_uid(owner_uid)
                && owner.deleting
            {
                settle_owner(server, &key, &owner).await;
            }
        }
    }
}

async fn full_pass(server: &ApiServer) {
    let (objects, _) = server.cache.snapshot();
    for (key, obj) in objects.iter() {
        if obj.deleting {
            settle_owner(server, key, obj).await;
        }
        if !obj.owners.is_empty() {
            collect_dependent(server, key, obj).await;
        }
    }
}

/// A dependent none of whose owners exist is deleted; one with some gone loses those references.
async fn collect_dependent(server: &ApiServer, key: &str, obj: &CachedObject) {
    let live: Vec<&String> = obj
        .owners
        .iter()
        .filter(|u| server.cache.by_uid(u).is_some())
        .collect();
    if live.len() == obj.owners.len() {
        return;
    }
    let Some(req) = request_for(key, obj, Verb::Delete) else {
        return;
    };
    if live.is_empty() {
        if !obj.deleting {
            tracing::info!(key, "deleting an object whose owners are gone");
            let _ = server.delete(&req, &DeleteOptions::default()).await;
        }
        return;
    }
    let gone: Vec<String> = obj
        .owners
        .iter()
        .filter(|u| !live.contains(u))
        .cloned()
        .collect();
    remove_owner_references(server, &req, &gone).await;
}

/// An owner being deleted with `foregroundDeletion` or `orphan` finalizers.
async fn settle_owner(server: &ApiServer, key: &str, owner: &CachedObject) {
    let value = owner.value();
    let finalizers = value.finalizers();
    let dependents = server.cache.dependents_of(&owner.uid);
    if finalizers.iter().any(|f| f == FINALIZER_ORPHAN) {
        for (dep_key, dep) in &dependents {
            if let Some(req) = request_for(dep_key, dep, Verb::Update) {
                remove_owner_references(server, &req, std::slice::from_ref(&owner.uid)).await;
            }
        }
        remove_finalizer(server, key, owner, FINALIZER_ORPHAN).await;
        return;
    }
    if !finalizers
        .iter()
        .any(|f| f == FINALIZER_FOREGROUND_DELETION)
    {
        return;
    }
    let mut blocking = false;
    for (dep_key, dep) in &dependents {
        if blocks(&dep.value(), &owner.uid) {
            blocking = true;
        }
        if !dep.deleting
            && let Some(req) = request_for(dep_key, dep, Verb::Delete)
        {
            let options = DeleteOptions {
                propagation_policy: Some("Foreground".into()),
                ..Default::default()
            };
            let _ = server.delete(&req, &options).await;
        }
    }
    if !blocking {
        remove_finalizer(server, key, owner, FINALIZER_FOREGROUND_DELETION).await;
    }
}

/// True when `dep` names `owner_uid` with `blockOwnerDeletion: true`.
fn blocks(dep: &Value, owner_uid: &str) -> bool {
    dep.owner_uids()
        .iter()
        .any(|(uid, block)| uid == owner_uid && *block)
}

fn request_for(key: &str, obj: &CachedObject, verb: Verb) -> Option<ResourceRequest> {
    let resource = resource_of_key(key)?;
    let namespace = (!obj.namespace.is_empty()).then_some(obj.namespace.as_str());
    Some(ResourceRequest::internal(
        resource,
        namespace,
        Some(&obj.name),
        None,
        verb,
    ))
}

fn internal_write() -> WriteOptions {
    WriteOptions::internal("generic-garbage-collector")
}

async fn remove_owner_references(server: &ApiServer, req: &ResourceRequest, uids: &[String]) {
    let result = server
        .write_loop(req, &internal_write(), None, |current| {
            let mut next = current.clone();
            let refs: Vec<Value> = next
                .meta()
                .and_then(|m| m.get("ownerReferences"))
                .and_then(Value::as_array)
                .map(|refs| {
                    refs.iter()
                        .filter(|r| {
                            !r.get("uid")
                                .and_then(Value::as_str)
                                .is_some_and(|u| uids.iter().any(|x| x == u))
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if refs.is_empty() {
                next.remove_meta("ownerReferences");
            } else {
                next.set_meta("ownerReferences", json!(refs));
            }
            Ok(next)
        })
        .await;
    if let Err(err) = result {
        tracing::debug!(key = %req.key(), %err, "removing owner references");
    }
}

async fn remove_finalizer(server: &ApiServer, key: &str, obj: &CachedObject, finalizer: &str) {
    let Some(req) = request_for(key, obj, Verb::Update) else {
        return;
    };
    let result = server
        .write_loop(&req, &internal_write(), None, |current| {
            let mut next = current.clone();
            let kept: Vec<String> = next
                .finalizers()
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            next.set_finalizers(&kept);
            Ok(next)
        })
        .await;
    if let Err(err) = result {
        tracing::debug!(key, %err, finalizer, "removing finalizer");
    }
}
