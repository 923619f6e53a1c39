//! The API server's shared state: the store, the watch cache, credentials and metrics.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use volplane_api::resources::ResourceInfo;
use volplane_store::{KeyValue, Revision, Store, StoreError};

use crate::metrics::Metrics;
use crate::object::ObjectExt;
use crate::status::ApiError;
use crate::watch_cache::WatchCache;

/// Everything a request handler needs. One per API server process.
pub struct ApiServer {
    pub store: Arc<dyn Store>,
    pub cache: Arc<WatchCache>,
    /// The bearer token every request must present.
    pub token: String,
    pub metrics: Arc<Metrics>,
}

/// How long a read waits for the cache to catch up with the store before answering 504.
pub const CACHE_CATCH_UP: Duration = Duration::from_secs(10);

impl ApiServer {
    /// Waits until the cache reflects every write acknowledged so far, so a read after a write
    /// sees it (upstream's consistent reads from cache).
    pub async fn consistent_cache(&self) -> Result<Revision, ApiError> {
        let revision = self.store.current_revision().await.map_err(store_error)?;
        if !self.cache.wait_for(revision, CACHE_CATCH_UP).await {
            return Err(ApiError::timeout(format!(
                "Too large resource version: {revision}, current: {}",
                self.cache.current_revision()
            )));
        }
        Ok(revision)
    }

    /// The stored object at `key` with its revision written into `metadata.resourceVersion`.
    pub async fn read_current(
        &self,
        resource: &ResourceInfo,
        key: &str,
        name: &str,
    ) -> Result<(Value, Revision), ApiError> {
        let kv = self.store.get(key).await.map_err(store_error)?;
        let kv = kv.ok_or_else(|| ApiError::not_found(resource, name))?;
        Ok((decode_stored(&kv)?, kv.mod_revision))
    }
}

/// A stored value as an object, `metadata.resourceVersion` set from the store's revision.
pub fn decode_stored(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    obj.set_meta(
        "resourceVersion",
        Value::String(kv.mod_revision.to_string()),
    );
    Ok(obj)
}

/// The bytes stored for an object: its JSON without `metadata.resourceVersion`, which the store's
/// revision supplies (as kube-apiserver stores objects).
/// The caller sets `resourceVersion` again once the store has answered with the revision.
pub fn encode_for_store(obj: &mut Value) -> Bytes {
    obj.remove_meta("resourceVersion");
    obj.remove_meta("selfLink");
    Bytes::from(serde_json::to_vec(obj).expect("JSON values serialise"))
}

/// Maps a store failure that no handler expected to a 500 (or 504 when the outcome is unknown).
pub fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Backend {
            message,
            indeterminate: true,
        } => ApiError::timeout(format!(
            "the storage backend did not confirm the write in time; it may have happened: {message}"
        )),
        other => ApiError::internal(format!("storage error: {other}")),
    }
}
