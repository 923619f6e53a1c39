//! What a request asks for: the resource, namespace, name, subresource and verb, read off the
//! path and method as kube-apiserver reads them.

use std::collections::HashMap;

use http::Method;
use volplane_api::resources::{self, ResourceInfo, Subresource};

use crate::status::ApiError;

/// The verb of a resource request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource, a collection of it, or one of its subresources.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    pub resource: &'static ResourceInfo,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<Subresource>,
    pub verb: Verb,
    pub query: Query,
}

impl ResourceRequest {
    /// A request the API server makes of itself (garbage collector, namespace lifecycle).
    pub fn internal(
        resource: &'static ResourceInfo,
        namespace: Option<&str>,
        name: Option<&str>,
        subresource: Option<Subresource>,
        verb: Verb,
    ) -> ResourceRequest {
        ResourceRequest {
            resource,
            namespace: namespace.map(String::from),
            name: name.map(String::from),
            subresource,
            verb,
            query: Query::default(),
        }
    }

    /// The same request against the resource whose shape objects are stored in
    /// (events.k8s.io → core events).
    pub fn to_storage(&self) -> ResourceRequest {
        let mut sreq = self.clone();
        sreq.resource = crate::conversion::storage_resource(self.resource);
        sreq
    }

    /// `ns/name` or `name`, for logs.
    pub fn key(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            (None, Some(name)) => name.clone(),
            (Some(ns), None) => format!("{ns}/*"),
            (None, None) => "*".into(),
        }
    }
}

/// The decoded query string.
#[derive(Debug, Clone, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k), percent_decode(v));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.0.get(key).map(String::as_str), Some("true" | "1"))
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid {key}: {v:?} is not a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    /// True when `dryRun=All` was asked for.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}: supported values: \"All\""
            ))),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a resource request off `/api/v1/...` or `/apis/<group>/<version>/...`.
/// `Ok(None)`: not a resource path (discovery and the like).
pub fn parse(
    method: &Method,
    path: &str,
    query: Query,
) -> Result<Option<ResourceRequest>, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return Ok(None),
    };
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let namespaced_plural =
        |p: &str| resources::find(group, version, p).is_some_and(|r| r.namespaced);
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced_plural(plural) => (
            Some(ns.to_string()),
            std::iter::once(*plural)
                .chain(tail.iter().copied())
                .collect::<Vec<_>>(),
        ),
        other => (None, other.to_vec()),
    };
    let resource = resources::find(group, version, rest[0]).ok_or_else(not_found)?;
    let name = rest.get(1).map(|n| n.to_string());
    let subresource = match rest.get(2) {
        None => None,
        Some(sub) => Some(
            Subresource::from_name(sub)
                .filter(|s| resource.has_subresource(*s))
                .ok_or_else(not_found)?,
        ),
    };
    if rest.len() > 3 || (resource.namespaced && name.is_some() && namespace.is_none()) {
        return Err(not_found());
    }
    let verb = verb_of(method, name.is_some(), &query)?;
    Ok(Some(ResourceRequest {
        resource,
        namespace,
        name,
        subresource,
        verb,
        query,
    }))
}

fn verb_of(method: &Method, has_name: bool, query: &Query) -> Result<Verb, ApiError> {
    let verb = match (method.as_str(), has_name) {
        ("GET", true) => Verb::Get,
        ("GET", false) if query.flag("watch") => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        (m, _) => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource: {m}"
            )));
        }
    };
    Ok(verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str) -> ResourceRequest {
        parse(&method, path, Query::default()).unwrap().unwrap()
    }

    #[test]
    fn namespaced_object_path() {
        let r = req(
            Method::GET,
            "/api/v1/namespaces/foo/persistentvolumeclaims/data",
        );
        assert_eq!(r.resource.plural, "persistentvolumeclaims");
        assert_eq!(r.namespace.as_deref(), Some("foo"));
        assert_eq!(r.name.as_deref(), Some("data"));
        assert_eq!(r.verb, Verb::Get);
    }

    #[test]
    fn namespace_itself_and_its_subresources() {
        let r = req(Method::PUT, "/api/v1/namespaces/foo/finalize");
        assert_eq!(r.resource.plural, "namespaces");
        assert_eq!(r.name.as_deref(), Some("foo"));
        assert_eq!(r.subresource, Some(Subresource::Finalize));
        let r = req(Method::GET, "/api/v1/namespaces/foo");
        assert_eq!(r.resource.plural, "namespaces");
        assert_eq!(r.namespace, None);
    }

    #[test]
    fn cluster_wide_list_and_watch() {
        let r = req(Method::GET, "/apis/storage.k8s.io/v1/storageclasses");
        assert_eq!(r.verb, Verb::List);
        let q = Query::parse(Some("watch=true&resourceVersion=5"));
        let r = parse(&Method::GET, "/api/v1/pods", q).unwrap().unwrap();
        assert_eq!(r.verb, Verb::Watch);
        assert_eq!(r.namespace, None);
    }

    #[test]
    fn status_subresource_of_grouped_kind() {
        let r = req(
            Method::PATCH,
            "/apis/kubevirt.io/v1/namespaces/d/virtualmachineinstances/v/status",
        );
        assert_eq!(r.subresource, Some(Subresource::Status));
    }

    #[test]
    fn unknown_resources_and_subresources_are_404() {
        assert_eq!(
            parse(&Method::GET, "/api/v1/widgets", Query::default())
                .unwrap_err()
                .code,
            404
        );
        assert_eq!(
            parse(
                &Method::GET,
                "/api/v1/configmaps/x/status",
                Query::default()
            )
            .unwrap_err()
            .code,
            404
        );
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Query::parse(Some("labelSelector=app%3Ddb%2Ctier+in+%28a%29&limit=5"));
        assert_eq!(q.get("labelSelector"), Some("app=db,tier in (a)"));
        assert_eq!(q.u64("limit").unwrap(), Some(5));
    }
}
