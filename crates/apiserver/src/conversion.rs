//! Conversion between the stored form of an object and the form a resource serves.
//!
//! Only events differ: core/v1 and events.k8s.io/v1 serve the same stored objects (kept in the
//! core/v1 shape), so `kubectl describe` shows what controllers record through either API.

use std::borrow::Cow;

use serde_json::Value;
use volplane_api::resources::{self, ResourceInfo};

fn converts(resource: &ResourceInfo) -> bool {
    resource.group == "events.k8s.io"
}

/// The resource whose shape objects are stored in (core events for events.k8s.io).
pub fn storage_resource(resource: &'static ResourceInfo) -> &'static ResourceInfo {
    if converts(resource) {
        resources::find("", "v1", "events").expect("core events are served")
    } else {
        resource
    }
}

/// A stored object in the served form.
pub fn served(resource: &ResourceInfo, stored: Value) -> Value {
    if converts(resource) {
        volplane_api::events::to_events_v1(&stored)
    } else {
        stored
    }
}

/// Stored JSON bytes in the served form (unchanged, without copying, for most resources).
pub fn served_json<'a>(resource: &ResourceInfo, stored: &'a [u8]) -> Cow<'a, [u8]> {
    if !converts(resource) {
        return Cow::Borrowed(stored);
    }
    let value: Value = serde_json::from_slice(stored).expect("the cache holds JSON");
    Cow::Owned(serde_json::to_vec(&served(resource, value)).expect("serialises"))
}

/// An object in the served form turned into the stored form.
pub fn stored(resource: &ResourceInfo, served: Value) -> Value {
    if converts(resource) {
        volplane_api::events::from_events_v1(&served)
    } else {
        served
    }
}
