//! Discovery documents, built from the resource registry.
//!
//! kubectl learns short names, verbs, scopes and categories only from discovery, so these
//! documents decide what `kubectl get pvc`, `kubectl api-resources` and `kubectl get all` do.
//! Two forms exist and clients may ask for either:
//! - legacy: [`api_versions`] (`/api`), [`api_group_list`] (`/apis`) and one
//!   [`api_resource_list`] per group-version (`/api/v1`, `/apis/<group>/<version>`);
//! - aggregated (`apidiscovery.k8s.io/v2`, `APIGroupDiscoveryList`): [`aggregated_core`] for
//!   `/api` and [`aggregated_groups`] for `/apis`, everything in two requests.

use serde_json::{Value, json};

use crate::resources::{self, RESOURCES, ResourceInfo, Subresource};

/// The verbs of a resource's main endpoint, in the (alphabetical) order upstream lists them.
pub(crate) fn verbs(resource: &ResourceInfo) -> Vec<&'static str> {
    // Namespaces cannot be deleted as a collection upstream: each one runs its own
    // content-deletion, so the collection DELETE is not offered.
    if resource.group.is_empty() && resource.plural == "namespaces" {
        vec![
            "create", "delete", "get", "list", "patch", "update", "watch",
        ]
    } else {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// The verbs a subresource answers to.
fn subresource_verbs(sub: Subresource) -> Vec<&'static str> {
    match sub {
        Subresource::Status => vec!["get", "patch", "update"],
        Subresource::Finalize => vec!["update"],
        Subresource::Binding => vec!["create"],
        Subresource::Log => vec!["get"],
    }
}

/// The kind a subresource accepts and returns: the parent's kind, except for `pods/binding`,
/// which takes a `Binding`.
fn subresource_kind(resource: &ResourceInfo, sub: Subresource) -> &'static str {
    match sub {
        Subresource::Binding => "Binding",
        _ => resource.kind,
    }
}

fn group_version_string(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn resources_of(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceInfo> {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// True when `group`/`version` is served (the core group is `""`).
pub fn serves_group_version(group: &str, version: &str) -> bool {
    resources_of(group, version).next().is_some()
}

/// `GET /api`: the core group's versions (`APIVersions`). `server_address` is the
/// `host:port` clients reach this server on.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

/// `GET /apis`: every named group with its versions (`APIGroupList`). The first version
/// listed in the registry is the preferred one.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| api_group(group, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`: one group (`APIGroup`), or `None` when it is not served.
pub fn api_group_document(group: &str) -> Option<Value> {
    resources::groups()
        .into_iter()
        .find(|(g, _)| !g.is_empty() && *g == group)
        .map(|(g, versions)| {
            let mut doc = api_group(g, &versions);
            let object = doc.as_object_mut().expect("api_group builds an object");
            object.insert("kind".into(), json!("APIGroup"));
            object.insert("apiVersion".into(), json!("v1"));
            doc
        })
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version_string(group, v), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    })
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`: the resources of one group-version
/// (`APIResourceList`), each followed by its subresources, or `None` when not served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    if !serves_group_version(group, version) {
        return None;
    }
    let mut entries = Vec::new();
    for r in resources_of(group, version) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(r),
        });
        let object = entry.as_object_mut().expect("object literal");
        if !r.short_names.is_empty() {
            object.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            object.insert("categories".into(), json!(r.categories));
        }
        entries.push(entry);
        for &sub in r.subresources {
            entries.push(json!({
                "name": format!("{}/{}", r.plural, sub.name()),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": subresource_kind(r, sub),
                "verbs": subresource_verbs(sub),
            }));
        }
    }
    let mut doc = json!({
        "kind": "APIResourceList",
        "groupVersion": group_version_string(group, version),
        "resources": entries,
    });
    if !group.is_empty() {
        // Upstream's named-group lists carry an apiVersion; the core list does not.
        doc.as_object_mut()
            .expect("object literal")
            .insert("apiVersion".into(), json!("v1"));
    }
    Some(doc)
}

/// The media-type parameters a client sends in `Accept` to ask for aggregated discovery:
/// `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`.
pub const AGGREGATED_DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";
/// See [`AGGREGATED_DISCOVERY_GROUP`].
pub const AGGREGATED_DISCOVERY_VERSION: &str = "v2";
/// See [`AGGREGATED_DISCOVERY_GROUP`].
pub const AGGREGATED_DISCOVERY_KIND: &str = "APIGroupDiscoveryList";

/// `GET /api` answered aggregated: one `APIGroupDiscovery` for the core group.
pub fn aggregated_core() -> Value {
    discovery_list(
        resources::groups()
            .into_iter()
            .filter(|(group, _)| group.is_empty())
            .map(|(group, versions)| group_discovery(group, &versions))
            .collect(),
    )
}

/// `GET /apis` answered aggregated: one `APIGroupDiscovery` per named group.
pub fn aggregated_groups() -> Value {
    discovery_list(
        resources::groups()
            .into_iter()
            .filter(|(group, _)| !group.is_empty())
            .map(|(group, versions)| group_discovery(group, &versions))
            .collect(),
    )
}

fn discovery_list(items: Vec<Value>) -> Value {
    json!({
        "kind": AGGREGATED_DISCOVERY_KIND,
        "apiVersion": format!("{AGGREGATED_DISCOVERY_GROUP}/{AGGREGATED_DISCOVERY_VERSION}"),
        "metadata": {},
        "items": items,
    })
}

fn group_discovery(group: &str, versions: &[&str]) -> Value {
    // The core group's entry has no name; named groups are named by their group.
    let metadata = if group.is_empty() {
        json!({})
    } else {
        json!({"name": group})
    };
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            let resources: Vec<Value> = resources_of(group, version)
                .map(resource_discovery)
                .collect();
            json!({"version": version, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": metadata, "versions": versions})
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn resource_discovery(r: &ResourceInfo) -> Value {
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": gvk(r.group, r.version, r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": verbs(r),
    });
    let object = entry.as_object_mut().expect("object literal");
    if !r.short_names.is_empty() {
        object.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        object.insert("categories".into(), json!(r.categories));
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|&sub| {
                json!({
                    "subresource": sub.name(),
                    "responseKind": gvk(r.group, r.version, subresource_kind(r, sub)),
                    "verbs": subresource_verbs(sub),
                })
            })
            .collect();
        object.insert("subresources".into(), json!(subs));
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_resource<'a>(list: &'a Value, name: &str) -> &'a Value {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
    }

    #[test]
    fn core_resource_list_has_pvc_short_name_and_status_subresource() {
        let list = api_resource_list("", "v1").unwrap();
        assert_eq!(list["groupVersion"], "v1");
        assert!(list.get("apiVersion").is_none());
        let pvc = find_resource(&list, "persistentvolumeclaims");
        assert_eq!(pvc["shortNames"], json!(["pvc"]));
        assert_eq!(pvc["namespaced"], true);
        assert_eq!(pvc["kind"], "PersistentVolumeClaim");
        assert_eq!(
            pvc["verbs"],
            json!([
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch"
            ])
        );
        let status = find_resource(&list, "persistentvolumeclaims/status");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        assert_eq!(status["kind"], "PersistentVolumeClaim");
    }

    #[test]
    fn namespaces_cannot_be_deleted_as_a_collection() {
        let list = api_resource_list("", "v1").unwrap();
        let ns = find_resource(&list, "namespaces");
        assert!(
            !ns["verbs"]
                .as_array()
                .unwrap()
                .contains(&json!("deletecollection"))
        );
        let finalize = find_resource(&list, "namespaces/finalize");
        assert_eq!(finalize["verbs"], json!(["update"]));
    }

    #[test]
    fn pod_binding_takes_a_core_binding() {
        let list = api_resource_list("", "v1").unwrap();
        let binding = find_resource(&list, "pods/binding");
        assert_eq!(binding["kind"], "Binding");
        assert_eq!(binding["verbs"], json!(["create"]));
    }

    #[test]
    fn unknown_group_version_has_no_resource_list() {
        assert!(api_resource_list("storage.k8s.io", "v1beta1").is_none());
        assert!(api_resource_list("example.com", "v1").is_none());
    }

    #[test]
    fn group_list_excludes_core_and_prefers_served_version() {
        let list = api_group_list();
        let groups = list["groups"].as_array().unwrap();
        assert!(groups.iter().all(|g| g["name"] != ""));
        let cdi = groups
            .iter()
            .find(|g| g["name"] == "cdi.kubevirt.io")
            .unwrap();
        assert_eq!(
            cdi["preferredVersion"],
            json!({"groupVersion": "cdi.kubevirt.io/v1beta1", "version": "v1beta1"})
        );
        assert_eq!(
            api_group_document("kubevirt.io").unwrap()["kind"],
            "APIGroup"
        );
        assert!(api_group_document("").is_none());
    }

    #[test]
    fn aggregated_groups_describe_scope_and_subresources() {
        let doc = aggregated_groups();
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        let storage = doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "storage.k8s.io")
            .unwrap();
        let v1 = &storage["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let va = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "volumeattachments")
            .unwrap();
        assert_eq!(va["scope"], "Cluster");
        assert_eq!(va["singularResource"], "volumeattachment");
        assert_eq!(
            va["responseKind"],
            json!({"group": "storage.k8s.io", "version": "v1", "kind": "VolumeAttachment"})
        );
        assert_eq!(va["subresources"][0]["subresource"], "status");
        assert_eq!(
            va["subresources"][0]["verbs"],
            json!(["get", "patch", "update"])
        );
    }

    #[test]
    fn aggregated_core_lists_pvc_with_short_name() {
        let doc = aggregated_core();
        let items = doc["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert!(items[0]["metadata"].get("name").is_none());
        let pvc = items[0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "persistentvolumeclaims")
            .unwrap();
        assert_eq!(pvc["shortNames"], json!(["pvc"]));
        assert_eq!(pvc["scope"], "Namespaced");
        let pods = items[0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["categories"], json!(["all"]));
    }

    #[test]
    fn api_versions_names_the_server() {
        let doc = api_versions("127.0.0.1:6443");
        assert_eq!(doc["versions"], json!(["v1"]));
        assert_eq!(
            doc["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:6443"
        );
    }
}
