//! Reads: get and list, served from the watch cache.

use std::sync::Arc;

use serde_json::{Value, json};
use volplane_api::resources::ResourceInfo;
use volplane_store::Revision;

use crate::continue_token::ContinueToken;
use crate::request::ResourceRequest;
use crate::selectors::{FieldSelector, LabelSelector, selectable_fields};
use crate::server::ApiServer;
use crate::status::ApiError;
use crate::watch_cache::{CachedObject, range_of};

/// The selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn from_request(req: &ResourceRequest) -> Result<Filter, ApiError> {
        let labels = LabelSelector::parse(req.query.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(
            req.query.get("fieldSelector").unwrap_or(""),
            selectable_fields(req.resource.plural),
        )?;
        Ok(Filter {
            namespace: req.namespace.clone(),
            labels,
            fields,
        })
    }

    pub fn matches(&self, obj: &CachedObject) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|ns| *ns == obj.namespace)
            && self.labels.matches(obj.labels.as_ref())
            && self.fields.matches(&obj.fields)
    }
}

/// A page of a list: the matching objects, the revision read at, and the continue token.
pub struct ListPage {
    pub items: Vec<Arc<CachedObject>>,
    pub revision: Revision,
    pub continue_token: Option<String>,
}

impl ApiServer {
    /// GET of one object. `resourceVersion=0` may be served from the cache as is; otherwise the
    /// cache first catches up with the store.
    pub async fn get_object(&self, req: &ResourceRequest) -> Result<Arc<CachedObject>, ApiError> {
        let name = req.name.as_deref().unwrap_or_default();
        if req.query.get("resourceVersion") != Some("0") {
            self.consistent_cache().await?;
        }
        let key = req.resource.storage_key(req.namespace.as_deref(), name);
        self.cache
            .get(&key)
            .ok_or_else(|| ApiError::not_found(req.resource, name))
    }

    /// LIST, with selectors, `limit` and `continue`.
    pub async fn list_objects(&self, req: &ResourceRequest) -> Result<ListPage, ApiError> {
        let filter = Filter::from_request(req)?;
        let limit = req.query.u64("limit")?.unwrap_or(0) as usize;
        let prefix = req.resource.storage_prefix_in(req.namespace.as_deref());
        let (objects, revision, after_key) = match req.query.get("continue") {
            Some(token) => {
                let token = ContinueToken::decode(token)?;
                let objects = self.cache.kept_snapshot(token.revision).ok_or_else(|| {
                    ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
                })?;
                (objects, token.revision, Some(token.after_key))
            }
            None => {
                self.wait_for_list_revision(req).await?;
                let (objects, revision) = self.cache.snapshot();
                (objects, revision, None)
            }
        };
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more = false;
        for (key, obj) in range_of(&objects, &prefix) {
            if after_key.as_ref().is_some_and(|after| key <= after) {
                continue;
            }
            if !filter.matches(obj) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                more = true;
                break;
            }
            last_key = Some(key.clone());
            items.push(Arc::clone(obj));
        }
        let continue_token = match (more, last_key) {
            (true, Some(after_key)) => {
                self.cache.keep_snapshot(revision, objects);
                Some(
                    ContinueToken {
                        revision,
                        after_key,
                    }
                    .encode(),
                )
            }
            _ => None,
        };
        Ok(ListPage {
            items,
            revision,
            continue_token,
        })
    }

    /// Honours `resourceVersion`/`resourceVersionMatch` of a list: "" → consistent (wait for the
    /// store's current revision), "0" → whatever the cache has, N → at least N.
    async fn wait_for_list_revision(&self, req: &ResourceRequest) -> Result<(), ApiError> {
        match req.query.get("resourceVersion") {
            None => {
                self.consistent_cache().await?;
            }
            Some("0") => {}
            Some(rv) => {
                let rv: Revision = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?;
                if req.query.get("resourceVersionMatch") == Some("Exact")
                    && rv != self.cache.current_revision()
                {
                    return Err(ApiError::expired(format!(
                        "The resourceVersion for the provided list is too old. Exact list at {rv} is not available"
                    )));
                }
                if !self.cache.wait_for(rv, crate::server::CACHE_CATCH_UP).await {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {rv}, current: {}",
                        self.cache.current_revision()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A `<Kind>List` of the given objects (JSON spliced from the cached bytes, not re-encoded).
pub fn list_json(resource: &ResourceInfo, page: &ListPage) -> Vec<u8> {
    let mut metadata = json!({"resourceVersion": page.revision.to_string()});
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
    }
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        Value::from(resource.list_kind()),
        Value::from(resource.api_version()),
        metadata
    );
    let size: usize = page.items.iter().map(|o| o.json.len() + 1).sum();
    let mut out = Vec::with_capacity(head.len() + size + 2);
    out.extend_from_slice(head.as_bytes());
    for (i, obj) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // events.k8s.io lists serve core events converted, as its gets and watches do.
        out.extend_from_slice(&crate::conversion::served_json(resource, &obj.json));
    }
    out.extend_from_slice(b"]}");
    out
}
