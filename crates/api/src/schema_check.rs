//! Unknown-field detection for `fieldValidation=Strict|Warn`.
//!
//! kube-apiserver rejects (Strict) or warns about (Warn) fields a kind does not have. This
//! module finds them using the kinds' published OpenAPI schemas ([`crate::openapi`]), compiled
//! once into a compact tree of the fields each object may hold, so that a check on every write
//! is one walk over the object with a hash lookup per key.
//!
//! Paths are written as upstream writes them in its messages: `spec.foo`,
//! `spec.containers[0].bar`, map entries as `.key`. Objects marked
//! `x-kubernetes-preserve-unknown-fields`, free-form maps (labels, annotations, parameters,
//! data) and schema-less objects accept any key.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::openapi;
use crate::resources::{RESOURCES, ResourceInfo};

type NodeId = usize;

/// What an object's keys may be beyond its declared fields.
#[derive(Debug, Clone, Copy)]
enum Rest {
    /// Any other key is unknown.
    Reject,
    /// Any key is accepted and its value is not looked into.
    Any,
    /// Any key is accepted; every value has this shape (a map such as `capacity`).
    Each(NodeId),
}

#[derive(Debug)]
enum Node {
    /// Anything goes: scalars, free-form objects, int-or-string, preserve-unknown-fields.
    Any,
    Object {
        fields: HashMap<Box<str>, NodeId>,
        rest: Rest,
    },
    Array(NodeId),
}

/// The compiled field trees of one group-version's schemas.
struct FieldTrees {
    nodes: Vec<Node>,
    roots: HashMap<&'static str, NodeId>,
}

struct Compiler<'a> {
    schemas: &'a Map<String, Value>,
    nodes: Vec<Node>,
    by_name: HashMap<&'a str, NodeId>,
}

impl<'a> Compiler<'a> {
    fn add(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The node of a named component, compiled once; recursive schemas refer back to it.
    fn named(&mut self, name: &'a str) -> NodeId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.add(Node::Any);
        self.by_name.insert(name, id);
        let node = match self.schemas.get(name) {
            Some(schema) => self.build(schema),
            None => Node::Any,
        };
        self.nodes[id] = node;
        id
    }

    fn compile(&mut self, schema: &'a Value) -> NodeId {
        if let Some(name) = reference(schema) {
            return self.named(name);
        }
        let node = self.build(schema);
        self.add(node)
    }

    fn build(&mut self, schema: &'a Value) -> Node {
        let Some(object) = schema.as_object() else {
            // `true` or a malformed schema: nothing to check against.
            return Node::Any;
        };
        if object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return Node::Any;
        }
        if let Some(name) = reference(schema) {
            return self.clone_named(name);
        }
        // A `$ref` with a description is published as a one-element allOf.
        if let Some(Value::Array(all_of)) = object.get("allOf") {
            if all_of.len() == 1 && !object.contains_key("properties") {
                return self.build(&all_of[0]);
            }
            return Node::Any;
        }
        // Optional values of our own kinds are published as "this or null".
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(variants)) = object.get(key) {
                let mut non_null = variants.iter().filter(|v| !is_null_schema(v));
                return match (non_null.next(), non_null.next()) {
                    (Some(only), None) => self.build(only),
                    _ => Node::Any,
                };
            }
        }
        let preserve_unknown =
            object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        let ty = object.get("type").and_then(Value::as_str);
        if ty == Some("array") || object.contains_key("items") {
            return match object.get("items") {
                Some(items) => Node::Array(self.compile(items)),
                None => Node::Any,
            };
        }
        let properties = object.get("properties").and_then(Value::as_object);
        let additional = object.get("additionalProperties");
        if properties.is_none_or(Map::is_empty) {
            // No declared fields: a free-form object, or a map with typed values.
            return match additional {
                Some(schema @ Value::Object(_)) if !preserve_unknown => {
                    let each = self.compile(schema);
                    Node::Object {
                        fields: HashMap::new(),
                        rest: Rest::Each(each),
                    }
                }
                _ => Node::Any,
            };
        }
        let fields = properties
            .into_iter()
            .flatten()
            .map(|(key, schema)| (Box::from(key.as_str()), self.compile(schema)))
            .collect();
        let rest = if preserve_unknown || additional == Some(&Value::Bool(true)) {
            Rest::Any
        } else if let Some(schema @ Value::Object(_)) = additional {
            Rest::Each(self.compile(schema))
        } else {
            Rest::Reject
        };
        Node::Object { fields, rest }
    }

    /// The shape of a named component for a schema that is exactly a reference to it.
    fn clone_named(&mut self, name: &'a str) -> Node {
        let id = self.named(name);
        match &self.nodes[id] {
            Node::Any => Node::Any,
            Node::Array(item) => Node::Array(*item),
            Node::Object { fields, rest } => Node::Object {
                fields: fields.clone(),
                rest: *rest,
            },
        }
    }
}

fn reference(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        || schema.get("const") == Some(&Value::Null)
}

/// The field tree of the schema `root` among `schemas`, on its own.
#[cfg(test)]
fn compile_one(schemas: &Map<String, Value>, root: &str) -> (Vec<Node>, NodeId) {
    let mut compiler = Compiler {
        schemas,
        nodes: Vec::new(),
        by_name: HashMap::new(),
    };
    let id = compiler.named(root);
    (compiler.nodes, id)
}

/// Every served kind's field tree, grouped by group-version, compiled on first use.
fn trees() -> &'static HashMap<(&'static str, &'static str), FieldTrees> {
    static TREES: OnceLock<HashMap<(&'static str, &'static str), FieldTrees>> = OnceLock::new();
    TREES.get_or_init(|| {
        let mut out: HashMap<(&'static str, &'static str), FieldTrees> = HashMap::new();
        let mut group_versions: Vec<(&'static str, &'static str)> =
            RESOURCES.iter().map(|r| (r.group, r.version)).collect();
        group_versions.dedup();
        for (group, version) in group_versions {
            if out.contains_key(&(group, version)) {
                continue;
            }
            let mut compiler: Option<Compiler<'static>> = None;
            let mut roots = HashMap::new();
            for r in RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
            {
                let Some((schemas, name)) = openapi::kind_schema(r) else {
                    continue;
                };
                let compiler = compiler.get_or_insert_with(|| Compiler {
                    schemas,
                    nodes: Vec::new(),
                    by_name: HashMap::new(),
                });
                roots.insert(r.kind, compiler.named(name));
            }
            let nodes = compiler.map(|c| c.nodes).unwrap_or_default();
            out.insert((group, version), FieldTrees { nodes, roots });
        }
        out
    })
}

/// The fields of `obj` that `resource`'s kind does not have, as upstream-style paths
/// (`spec.foo`, `spec.containers[0].bar`), in the order they appear in the object. Empty for a
/// kind without a published schema.
pub fn unknown_fields(resource: &ResourceInfo, obj: &Value) -> Vec<String> {
    // One walker for both questions: pruning a copy finds exactly what pruning would remove.
    prune_unknown_fields(resource, &mut obj.clone())
}

/// Removes the fields of `obj` that `resource`'s kind does not have (what upstream's decoding
/// drops) and returns their paths, as [`unknown_fields`] names them.
pub fn prune_unknown_fields(resource: &ResourceInfo, obj: &mut Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(trees) = trees().get(&(resource.group, resource.version))
        && let Some(&root) = trees.roots.get(resource.kind)
    {
        let mut path = String::new();
        prune(&trees.nodes, root, obj, &mut path, &mut found);
    }
    found
}

fn prune(
    nodes: &[Node],
    id: NodeId,
    value: &mut Value,
    path: &mut String,
    found: &mut Vec<String>,
) {
    match (&nodes[id], value) {
        (Node::Object { fields, rest }, Value::Object(map)) => {
            let mut unknown = Vec::new();
            for (key, child) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match (fields.get(key.as_str()), rest) {
                    (Some(&field), _) | (None, &Rest::Each(field)) => {
                        prune(nodes, field, child, path, found);
                    }
                    (None, Rest::Reject) => {
                        found.push(path.clone());
                        unknown.push(key.clone());
                    }
                    (None, Rest::Any) => {}
                }
                path.truncate(len);
            }
            for key in unknown {
                map.shift_remove(&key);
            }
        }
        (Node::Array(item), Value::Array(values)) => {
            for (i, child) in values.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                prune(nodes, *item, child, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The message of a write rejected with `fieldValidation=Strict`:
/// `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`.
pub fn strict_decoding_error(unknown: &[String]) -> String {
    let fields: Vec<String> = unknown.iter().map(|p| warning(p)).collect();
    format!("strict decoding error: {}", fields.join(", "))
}

/// The warning for one unknown field with `fieldValidation=Warn`: `unknown field "spec.foo"`.
pub fn warning(path: &str) -> String {
    format!("unknown field \"{path}\"")
}

#[cfg(test)]
mod prune_tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    #[test]
    fn pruning_removes_exactly_the_unknown_fields() {
        let pvc = find("", "v1", "persistentvolumeclaims").unwrap();
        let mut obj = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "x", "labels": {"any.key/x": "v"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "bogus": 1}});
        let removed = prune_unknown_fields(pvc, &mut obj);
        assert_eq!(removed, vec!["spec.bogus".to_string()]);
        assert!(obj["spec"].get("bogus").is_none());
        assert_eq!(obj["metadata"]["labels"]["any.key/x"], "v");
        assert_eq!(obj["spec"]["accessModes"][0], "ReadWriteOnce");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    fn check(group: &str, version: &str, plural: &str, obj: Value) -> Vec<String> {
        unknown_fields(find(group, version, plural).unwrap(), &obj)
    }

    #[test]
    fn finds_unknown_spec_field_and_accepts_labels() {
        let found = check(
            "",
            "v1",
            "persistentvolumeclaims",
            json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "labels": {"any/key": "v"},
                             "annotations": {"x": "y"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "bogus": 1,
                         "resources": {"requests": {"storage": "1Gi"}}}
            }),
        );
        assert_eq!(found, ["spec.bogus"]);
    }

    #[test]
    fn paths_through_lists_and_metadata() {
        let found = check(
            "",
            "v1",
            "pods",
            json!({
                "metadata": {"name": "p", "nmae": "typo"},
                "spec": {"containers": [
                    {"name": "a", "image": "busybox"},
                    {"name": "b", "image": "busybox", "imagePullPolic": "Always",
                     "volumeMounts": [{"name": "v", "mountPath": "/x", "readonly": true}]}
                ]},
                "extra": {}
            }),
        );
        assert_eq!(
            found,
            [
                "metadata.nmae",
                "spec.containers[1].imagePullPolic",
                "spec.containers[1].volumeMounts[0].readonly",
                "extra"
            ]
        );
    }

    #[test]
    fn free_form_maps_accept_any_key() {
        assert!(
            check(
                "storage.k8s.io",
                "v1",
                "storageclasses",
                json!({"metadata": {"name": "sc"}, "provisioner": "p",
                       "parameters": {"anything": "goes", "csi.storage.k8s.io/fstype": "ext4"}})
            )
            .is_empty()
        );
        assert!(
            check(
                "",
                "v1",
                "configmaps",
                json!({"metadata": {"name": "c"}, "data": {"k": "v"}, "binaryData": {"b": "AA=="}})
            )
            .is_empty()
        );
        // managedFields' fieldsV1 is free-form.
        assert!(
            check(
                "",
                "v1",
                "configmaps",
                json!({"metadata": {"name": "c", "managedFields": [
                    {"manager": "kubectl", "fieldsV1": {"f:data": {"f:k": {}}}}
                ]}})
            )
            .is_empty()
        );
    }

    #[test]
    fn typed_map_values_are_checked() {
        // capacity maps names to quantities and volumeAttributes is a free string map: any
        // key passes; the CSI source itself still has a closed set of fields.
        assert!(
            check(
                "",
                "v1",
                "persistentvolumes",
                json!({"metadata": {"name": "pv"}, "spec": {"capacity": {"storage": "1Gi"},
                       "csi": {"driver": "d", "volumeHandle": "h", "volumeAttributes": {"a": "b"}}}})
            )
            .is_empty()
        );
        let found = check(
            "",
            "v1",
            "persistentvolumes",
            json!({"metadata": {"name": "pv"}, "spec": {"csi": {"driver": "d", "handle": "h"}}}),
        );
        assert_eq!(found, ["spec.csi.handle"]);
    }

    #[test]
    fn events_in_both_shapes_are_checked_against_their_own_schema() {
        assert_eq!(
            check(
                "events.k8s.io",
                "v1",
                "events",
                json!({"metadata": {"name": "e"}, "note": "n", "message": "m"})
            ),
            ["message"]
        );
        assert!(
            check(
                "",
                "v1",
                "events",
                json!({"metadata": {"name": "e"}, "message": "m",
                       "involvedObject": {"kind": "Pod", "name": "p"}})
            )
            .is_empty()
        );
    }

    #[test]
    fn custom_kind_metadata_is_checked_and_spec_accepted() {
        // Custom kinds' metadata is ObjectMeta like any other kind's; a valid DataVolume spec
        // passes whether the kind's own schema or the accept-anything placeholder is published.
        let found = check(
            "cdi.kubevirt.io",
            "v1beta1",
            "datavolumes",
            json!({"metadata": {"name": "d", "bogus": 1},
                   "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}),
        );
        assert_eq!(found, ["metadata.bogus"]);
    }

    #[test]
    fn derived_schemas_of_our_kinds_are_closed_and_nullable_fields_known() {
        // The shape schemars derives for a kind of ours: optional struct fields are "this or
        // null", nested structs inline, maps as additionalProperties.
        let schemas = json!({
            "Thing": {
                "type": "object",
                "properties": {
                    "metadata": {"allOf": [{"$ref": "#/components/schemas/Meta"}]},
                    "spec": {
                        "type": "object",
                        "properties": {
                            "size": {"type": "integer"},
                            "inner": {"anyOf": [
                                {"type": "object", "properties": {"name": {"type": "string"}}},
                                {"nullable": true, "const": null}
                            ]},
                            "parts": {"type": "array", "items": {
                                "type": "object", "properties": {"name": {"type": "string"}}
                            }},
                            "params": {"type": "object", "additionalProperties": {"type": "string"}},
                            "byName": {"type": "object", "additionalProperties": {
                                "type": "object", "properties": {"n": {"type": "integer"}}
                            }},
                            "raw": {"x-kubernetes-preserve-unknown-fields": true}
                        }
                    }
                }
            },
            "Meta": {"type": "object", "properties": {"name": {"type": "string"}}}
        });
        let schemas = schemas.as_object().unwrap();
        let (nodes, root) = compile_one(schemas, "Thing");
        let obj = json!({
            "metadata": {"name": "t", "labelz": {}},
            "spec": {
                "size": 1,
                "inner": {"name": "i", "extra": 1},
                "parts": [{"name": "a"}, {"name": "b", "bogus": true}],
                "params": {"anything": "x"},
                "byName": {"k": {"n": 1, "m": 2}},
                "raw": {"whatever": {"deep": 1}},
                "unknown": null
            }
        });
        let mut found = Vec::new();
        prune(
            &nodes,
            root,
            &mut obj.clone(),
            &mut String::new(),
            &mut found,
        );
        assert_eq!(
            found,
            [
                "metadata.labelz",
                "spec.inner.extra",
                "spec.parts[1].bogus",
                "spec.byName.k.m",
                "spec.unknown"
            ]
        );
    }

    #[test]
    fn virtual_machine_disks_are_checked_and_opaque_parts_accepted() {
        let found = check(
            "kubevirt.io",
            "v1",
            "virtualmachines",
            json!({
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachine",
                "metadata": {"name": "vm1", "labels": {"a": "b"}},
                "spec": {
                    "runStrategy": "Always",
                    "template": {
                        "metadata": {"labels": {"kubevirt.io/vm": "vm1"}},
                        "spec": {
                            "domain": {
                                "devices": {
                                    "disks": [{"name": "root", "disk": {"bus": "virtio"}, "bogus": 1}],
                                    "interfaces": [{"name": "default", "masquerade": {}}]
                                },
                                "resources": {"requests": {"memory": "128Mi"}},
                                "firmware": {"anything": {"goes": 1}}
                            },
                            "networks": [{"name": "default", "pod": {}}],
                            "volumes": [
                                {"name": "root", "containerDisk": {"image": "quay.io/x"}},
                                {"name": "d", "dataVolume": {"name": "dv", "hotpluggable": true}}
                            ]
                        }
                    },
                    "dataVolumeTemplates": [{
                        "metadata": {"name": "dv"},
                        "spec": {"source": {"blank": {}},
                                 "storage": {"resources": {"requests": {"storage": "1Gi"}}}}
                    }]
                }
            }),
        );
        assert_eq!(found, ["spec.template.spec.domain.devices.disks[0].bogus"]);
    }

    #[test]
    fn messages_match_upstream_wording() {
        assert_eq!(
            strict_decoding_error(&["spec.foo".into(), "spec.bar".into()]),
            "strict decoding error: unknown field \"spec.foo\", unknown field \"spec.bar\""
        );
        assert_eq!(warning("spec.foo"), "unknown field \"spec.foo\"");
    }
}
