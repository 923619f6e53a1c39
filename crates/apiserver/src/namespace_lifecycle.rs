//! Namespace lifecycle: a namespace being deleted has its content deleted, then its `kubernetes`
//! spec finalizer removed, and then goes away. Runs inside the API server role, like the
//! garbage collector, on the watch cache's events plus a periodic pass.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use volplane_api::resources::{RESOURCES, ResourceInfo, Subresource, find};

use crate::conversion::storage_resource;
use crate::request::{ResourceRequest, Verb};
use crate::server::ApiServer;
use crate::watch_cache::{CacheEvent, EventType};
use crate::write::{DeleteOptions, WriteOptions};

const RESYNC: Duration = Duration::from_secs(10);

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Runs until the process ends.
pub async fn run(server: Arc<ApiServer>) {
    let (_, _, mut events) = server.cache.snapshot_and_subscribe();
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

/// Creates the system namespaces that are missing.
pub async fn ensure_system_namespaces(server: &ApiServer) {
    let namespaces = find("", "v1", "namespaces").expect("namespaces are served");
    for name in SYSTEM_NAMESPACES {
        if server
            .cache
            .get(&namespaces.storage_key(None, name))
            .is_some()
        {
            continue;
        }
        let req = ResourceRequest::internal(namespaces, None, None, None, Verb::Create);
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        if let Err(err) = server.create(&req, obj, &internal_write()).await
            && err.code != 409
        {
            tracing::error!(namespace = name, %err, "creating a system namespace");
        }
    }
}

async fn on_event(server: &ApiServer, event: &CacheEvent) {
    let obj = &event.object;
    if event.key.starts_with("/registry/namespaces/") {
        if obj.deleting && event.kind != EventType::Deleted {
            finalize(server, &obj.name).await;
        }
    } else if event.kind == EventType::Deleted && !obj.namespace.is_empty() {
        let ns_key = format!("/registry/namespaces/{}", obj.namespace);
        if server.cache.get(&ns_key).is_some_and(|ns| ns.deleting) {
            finalize(server, &obj.namespace).await;
        }
    }
}

async fn full_pass(server: &ApiServer) {
    for ns in server.cache.list_prefix("/registry/namespaces/") {
        if ns.deleting {
            finalize(server, &ns.name).await;
        }
    }
}

/// Deletes what is left in the namespace; once nothing is, removes the `kubernetes` finalizer
/// and deletes the namespace itself.
async fn finalize(server: &ApiServer, namespace: &str) {
    let mut remaining = 0;
    // Each stored object once: resources served from another's storage (events.k8s.io events)
    // are skipped.
    let stored_here = |r: &&'static ResourceInfo| std::ptr::eq(storage_resource(r), *r);
    for resource in RESOURCES
        .iter()
        .filter(|r| r.namespaced)
        .filter(stored_here)
    {
        for obj in server
            .cache
            .list_prefix(&resource.storage_prefix_in(Some(namespace)))
        {
            remaining += 1;
            if obj.deleting {
                continue;
            }
            let req = ResourceRequest::internal(
                resource,
                Some(namespace),
                Some(&obj.name),
                None,
                Verb::Delete,
            );
            if let Err(err) = server.delete(&req, &DeleteOptions::default()).await
                && err.code != 404
            {
                tracing::warn!(namespace, name = %obj.name, %err, "deleting namespace content");
            }
        }
    }
    if remaining == 0 {
        remove_spec_finalizer(server, namespace).await;
    }
}

async fn remove_spec_finalizer(server: &ApiServer, namespace: &str) {
    let namespaces = find("", "v1", "namespaces").expect("namespaces are served");
    let req = ResourceRequest::internal(
        namespaces,
        None,
        Some(namespace),
        Some(Subresource::Finalize),
        Verb::Update,
    );
    let result = server
        .write_loop(&req, &internal_write(), None, |current| {
            let mut next = current.clone();
            if let Some(list) = next
                .pointer_mut("/spec/finalizers")
                .and_then(Value::as_array_mut)
            {
                list.retain(|f| f != "kubernetes");
            }
            Ok(next)
        })
        .await;
    if let Err(err) = result {
        tracing::debug!(namespace, %err, "finalizing namespace");
    }
}

fn internal_write() -> WriteOptions {
    WriteOptions::internal("namespace-controller")
}
