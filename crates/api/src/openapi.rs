//! OpenAPI v3 documents, one per served group-version, as kube-apiserver publishes them.
//!
//! kubectl reads them for two things: `create`/`apply` check that a kind's PATCH operation
//! accepts the `fieldValidation` query parameter (if so, validation is left to the server),
//! and `kubectl explain` walks the schemas in `components.schemas`, finding a kind's schema by
//! its `x-kubernetes-group-version-kind` extension.
//!
//! Schemas come from the Rust types themselves: k8s-openapi's schemas (under upstream component
//! names such as `io.k8s.api.core.v1.PersistentVolumeClaim`) for built-in kinds, and our own
//! kinds' derived schemas, inlined the way an API server publishes a CRD's schema and named as
//! it names them (`io.kubevirt.v1.VirtualMachine`). Every document is generated once, on first
//! use, and kept with its serialized form and content hash.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::{coordination, core, events, storage};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::resources::{RESOURCES, ResourceInfo, Subresource};
use crate::{cdi, kubevirt, snapshot};

/// Produces a kind's schema with a generator: a `$ref` for built-in kinds, the whole schema for
/// custom ones (their generator inlines subschemas).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// How one kind's schema is produced.
#[derive(Clone, Copy)]
pub enum KindSchema {
    /// A k8s-openapi type: its schema and every schema it references go into
    /// `components.schemas` under their upstream names.
    Builtin(SchemaFn),
    /// One of our own kinds (a `kube::CustomResource` root type, whose derived schema has no
    /// `apiVersion`, `kind` or `metadata`): published as one inlined schema, as for a CRD.
    Custom(SchemaFn),
}

/// The schema of one kind served at a group-version.
pub struct KindEntry {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub schema: KindSchema,
}

/// The [`SchemaFn`] of a type.
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A [`KindEntry`] for a k8s-openapi kind.
pub const fn builtin(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    schema: SchemaFn,
) -> KindEntry {
    KindEntry {
        group,
        version,
        kind,
        schema: KindSchema::Builtin(schema),
    }
}

/// A [`KindEntry`] for one of our own kinds: `custom("kubevirt.io", "v1", "VirtualMachine",
/// schema_of::<VirtualMachine>)`.
pub const fn custom(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    schema: SchemaFn,
) -> KindEntry {
    KindEntry {
        group,
        version,
        kind,
        schema: KindSchema::Custom(schema),
    }
}

/// Every kind with a published schema, one line each. A kind served without an entry here
/// still gets its paths, with a schema that accepts any object.
#[rustfmt::skip]
pub static KINDS: &[KindEntry] = &[
    builtin("", "v1", "Namespace", schema_of::<core::v1::Namespace>),
    builtin("", "v1", "PersistentVolume", schema_of::<core::v1::PersistentVolume>),
    builtin("", "v1", "PersistentVolumeClaim", schema_of::<core::v1::PersistentVolumeClaim>),
    builtin("", "v1", "Pod", schema_of::<core::v1::Pod>),
    builtin("", "v1", "Node", schema_of::<core::v1::Node>),
    builtin("", "v1", "ConfigMap", schema_of::<core::v1::ConfigMap>),
    builtin("", "v1", "Secret", schema_of::<core::v1::Secret>),
    builtin("", "v1", "ServiceAccount", schema_of::<core::v1::ServiceAccount>),
    builtin("", "v1", "Event", schema_of::<core::v1::Event>),
    builtin("", "v1", "Binding", schema_of::<core::v1::Binding>),
    builtin("events.k8s.io", "v1", "Event", schema_of::<events::v1::Event>),
    builtin("storage.k8s.io", "v1", "StorageClass", schema_of::<storage::v1::StorageClass>),
    builtin("storage.k8s.io", "v1", "VolumeAttachment", schema_of::<storage::v1::VolumeAttachment>),
    builtin("storage.k8s.io", "v1", "CSIDriver", schema_of::<storage::v1::CSIDriver>),
    builtin("storage.k8s.io", "v1", "CSINode", schema_of::<storage::v1::CSINode>),
    builtin("storage.k8s.io", "v1", "CSIStorageCapacity", schema_of::<storage::v1::CSIStorageCapacity>),
    builtin("coordination.k8s.io", "v1", "Lease", schema_of::<coordination::v1::Lease>),
    custom("snapshot.storage.k8s.io", "v1", "VolumeSnapshot", schema_of::<snapshot::VolumeSnapshot>),
    custom("snapshot.storage.k8s.io", "v1", "VolumeSnapshotContent", schema_of::<snapshot::VolumeSnapshotContent>),
    custom("snapshot.storage.k8s.io", "v1", "VolumeSnapshotClass", schema_of::<snapshot::VolumeSnapshotClass>),
    custom("kubevirt.io", "v1", "VirtualMachine", schema_of::<kubevirt::VirtualMachine>),
    custom("kubevirt.io", "v1", "VirtualMachineInstance", schema_of::<kubevirt::VirtualMachineInstance>),
    custom("kubevirt.io", "v1", "VirtualMachineInstanceMigration", schema_of::<kubevirt::VirtualMachineInstanceMigration>),
    custom("cdi.kubevirt.io", "v1beta1", "DataVolume", schema_of::<cdi::DataVolume>),
];

const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// The component name of a custom kind, as an API server names a CRD's schema: the group's
/// domain reversed, then version and kind (`kubevirt.io/v1 VirtualMachine` →
/// `io.kubevirt.v1.VirtualMachine`).
fn custom_schema_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{kind}", parts.join("."))
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{SCHEMA_PREFIX}{name}")})
}

/// A `$ref` with a description beside it: OpenAPI 3.0 ignores siblings of `$ref`, so the
/// reference goes inside `allOf`, as upstream publishes it.
fn described_ref(name: &str, description: &str) -> Value {
    json!({"description": description, "allOf": [schema_ref(name)]})
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn settings() -> SchemaSettings {
    SchemaSettings::openapi3().with(|s| s.meta_schema = None)
}

/// One generated document and what is served with it.
struct Document {
    group: &'static str,
    version: &'static str,
    doc: Value,
    json: String,
    hash: String,
    /// Component name of each kind's schema, by kind.
    kind_schemas: BTreeMap<&'static str, String>,
}

fn documents() -> &'static [Document] {
    static DOCUMENTS: OnceLock<Vec<Document>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let mut seen: Vec<(&'static str, &'static str)> = Vec::new();
        for r in RESOURCES {
            if !seen.contains(&(r.group, r.version)) {
                seen.push((r.group, r.version));
            }
        }
        seen.into_iter()
            .map(|(group, version)| build_document(group, version, RESOURCES, KINDS))
            .collect()
    })
}

fn find_document(group: &str, version: &str) -> Option<&'static Document> {
    documents()
        .iter()
        .find(|d| d.group == group && d.version == version)
}

/// The path under `/openapi/v3/` of a group-version's document: `api/v1` or `apis/<g>/<v>`.
fn document_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: every group-version's document, each URL carrying its content hash so
/// clients can cache documents for as long as the hash stays the same.
pub fn v3_index() -> Value {
    let paths: Map<String, Value> = documents()
        .iter()
        .map(|d| {
            let path = document_path(d.group, d.version);
            let url = format!("/openapi/v3/{path}?hash={}", d.hash);
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1`, `GET /openapi/v3/apis/<group>/<version>`: the document of one
/// group-version, or `None` when it is not served.
pub fn v3_document(group: &str, version: &str) -> Option<Value> {
    find_document(group, version).map(|d| d.doc.clone())
}

/// The same document already serialized as JSON, to serve without serializing per request.
pub fn v3_document_json(group: &str, version: &str) -> Option<&'static str> {
    find_document(group, version).map(|d| d.json.as_str())
}

/// The content hash of a document (hex SHA-256 of its JSON), as in the index's URLs.
pub fn v3_document_hash(group: &str, version: &str) -> Option<&'static str> {
    find_document(group, version).map(|d| d.hash.as_str())
}

/// The schemas of `resource`'s group-version and the name of its kind's schema among them.
pub(crate) fn kind_schema(
    resource: &ResourceInfo,
) -> Option<(&'static Map<String, Value>, &'static str)> {
    let document = find_document(resource.group, resource.version)?;
    let name = document.kind_schemas.get(resource.kind)?;
    let schemas = document.doc.pointer("/components/schemas")?.as_object()?;
    Some((schemas, name.as_str()))
}

/// The document of `group`/`version` serving those of `resources` in it, with schemas from
/// `kind_entries`.
fn build_document(
    group: &'static str,
    version: &'static str,
    resources: &'static [ResourceInfo],
    kind_entries: &'static [KindEntry],
) -> Document {
    let mut builtin_generator = settings().into_generator();
    let mut custom_generator = settings()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut custom_schemas: Vec<(String, Value)> = Vec::new();
    let mut kind_schemas: BTreeMap<&'static str, String> = BTreeMap::new();

    let resources: Vec<&'static ResourceInfo> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    let mut kinds: Vec<&'static str> = resources.iter().map(|r| r.kind).collect();
    if resources
        .iter()
        .any(|r| r.has_subresource(Subresource::Binding))
    {
        kinds.push("Binding");
    }

    for kind in &kinds {
        let entry = kind_entries
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == *kind);
        let name = match entry.map(|e| e.schema) {
            Some(KindSchema::Builtin(schema_fn)) => {
                let reference = schema_fn(&mut builtin_generator);
                reference
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix(SCHEMA_PREFIX))
                    .expect("k8s-openapi kinds are referenced, not inlined")
                    .to_string()
            }
            Some(KindSchema::Custom(schema_fn)) => {
                let mut schema = schema_fn(&mut custom_generator);
                for transform in custom_generator.transforms_mut() {
                    transform.transform(&mut schema);
                }
                let name = custom_schema_name(group, version, kind);
                custom_schemas.push((name.clone(), custom_root(schema.to_value())));
                name
            }
            None => {
                let name = custom_schema_name(group, version, kind);
                custom_schemas.push((
                    name.clone(),
                    custom_root(json!({
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true,
                    })),
                ));
                name
            }
        };
        kind_schemas.insert(kind, name);
    }

    // Shared schemas the operations refer to.
    builtin_generator.subschema_for::<meta::ObjectMeta>();
    builtin_generator.subschema_for::<meta::ListMeta>();
    builtin_generator.subschema_for::<meta::DeleteOptions>();
    builtin_generator.subschema_for::<meta::Status>();
    builtin_generator.subschema_for::<meta::Patch>();
    builtin_generator.subschema_for::<meta::WatchEvent<core::v1::Pod>>();

    let mut components: BTreeMap<String, Value> = BTreeMap::new();
    components.extend(builtin_generator.take_definitions(true));
    components.extend(custom_generator.take_definitions(true));
    components.extend(custom_schemas);

    for kind in &kinds {
        let name = &kind_schemas[kind];
        if let Some(schema) = components.get_mut(name).and_then(Value::as_object_mut) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(group, version, kind)]),
            );
        }
        if *kind != "Binding" {
            components.insert(
                format!("{name}List"),
                list_schema(group, version, kind, name),
            );
        }
    }
    for shared in ["DeleteOptions", "Status", "WatchEvent"] {
        let name = format!("io.k8s.apimachinery.pkg.apis.meta.v1.{shared}");
        if let Some(schema) = components.get_mut(&name).and_then(Value::as_object_mut) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(group, version, shared)]),
            );
        }
    }

    let mut paths = Map::new();
    for r in &resources {
        add_paths(&mut paths, r, &kind_schemas[r.kind]);
    }

    let doc = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {
            "schemas": components.into_iter().collect::<Map<String, Value>>(),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "authorization",
                    "description": "Bearer token authentication",
                }
            }
        }
    });
    let json = serde_json::to_string(&doc).expect("a JSON value serializes");
    let hash = Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    Document {
        group,
        version,
        doc,
        json,
        hash,
        kind_schemas,
    }
}

/// A custom kind's published schema: the derived schema plus the fields every object has.
fn custom_root(derived: Value) -> Value {
    let mut schema = match derived {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    schema.remove("title");
    schema.remove("$schema");
    schema.insert("type".into(), json!("object"));
    let properties = schema
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties is an object");
    let mut all = Map::new();
    all.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": "The versioned schema of this representation of an object: group/version."}),
    );
    all.insert(
        "kind".into(),
        json!({"type": "string", "description": "The REST resource this object represents, in CamelCase."}),
    );
    all.insert(
        "metadata".into(),
        described_ref(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "Standard object's metadata.",
        ),
    );
    // Every object's metadata is ObjectMeta, referenced like the built-in kinds do, even when
    // the derived schema spells it out.
    for (key, value) in std::mem::take(properties) {
        if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            all.insert(key, value);
        }
    }
    *properties = all;
    Value::Object(schema)
}

fn list_schema(group: &str, version: &str, kind: &str, item_schema: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": "The versioned schema of this representation of an object."},
            "items": {
                "type": "array",
                "description": format!("The {kind} objects."),
                "items": schema_ref(item_schema),
            },
            "kind": {"type": "string", "description": "The REST resource this object represents."},
            "metadata": described_ref("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", "Standard list metadata."),
        },
        "x-kubernetes-group-version-kind": [gvk(group, version, &format!("{kind}List"))],
    })
}

// ---------------------------------------------------------------------------------------------
// Paths and operations

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": ty, "uniqueItems": true},
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut params = vec![
        query(
            "dryRun",
            "string",
            "When present (value All), the request is validated and answered but nothing is stored.",
        ),
        query(
            "fieldManager",
            "string",
            "The name of the actor making the change, recorded in managedFields.",
        ),
        query(
            "fieldValidation",
            "string",
            "What to do with unknown or duplicate fields: Ignore, Warn (the default) or Strict.",
        ),
    ];
    if patch {
        params.push(query(
            "force",
            "boolean",
            "For apply patches: take over fields other managers own instead of failing with a conflict.",
        ));
    }
    params
}

fn list_params() -> Vec<Value> {
    vec![
        query(
            "allowWatchBookmarks",
            "boolean",
            "Ask a watch for BOOKMARK events.",
        ),
        query(
            "continue",
            "string",
            "The continue token of the previous page of a paginated list.",
        ),
        query(
            "fieldSelector",
            "string",
            "Only objects whose fields match, e.g. metadata.name=x.",
        ),
        query(
            "labelSelector",
            "string",
            "Only objects whose labels match the selector.",
        ),
        query(
            "limit",
            "integer",
            "The most objects to return in one page.",
        ),
        query(
            "resourceVersion",
            "string",
            "The resource version the list starts from or must be no older than.",
        ),
        query(
            "resourceVersionMatch",
            "string",
            "How resourceVersion applies to a list: Exact or NotOlderThan.",
        ),
        query(
            "sendInitialEvents",
            "boolean",
            "Start a watch with ADDED events for the current objects, then a bookmark.",
        ),
        query(
            "timeoutSeconds",
            "integer",
            "Close a list or watch after this many seconds.",
        ),
        query(
            "watch",
            "boolean",
            "Stream changes as watch events instead of returning a list.",
        ),
    ]
}

fn delete_params() -> Vec<Value> {
    vec![
        query(
            "dryRun",
            "string",
            "When present (value All), the request is validated and answered but nothing is deleted.",
        ),
        query(
            "gracePeriodSeconds",
            "integer",
            "Seconds before the object is deleted; zero deletes at once.",
        ),
        query(
            "orphanDependents",
            "boolean",
            "Deprecated: use propagationPolicy.",
        ),
        query(
            "propagationPolicy",
            "string",
            "Whether and how dependents are deleted: Orphan, Background or Foreground.",
        ),
    ]
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": {
            "application/json": {"schema": schema.clone()},
            "application/yaml": {"schema": schema},
        }
    })
}

fn body(schema: Value) -> Value {
    json!({"content": {"*/*": {"schema": schema}}, "required": true})
}

/// The PATCH request body. The server accepts strategic merge patches for built-in kinds, but
/// the document does not list `application/strategic-merge-patch+json`: when it is listed,
/// kubectl's client-side apply computes the patch from the published schemas' patch-strategy
/// extensions, which k8s-openapi's schemas lack (every list would be replaced whole, so items
/// removed from a manifest would survive a re-apply). Without it kubectl falls back to its
/// compiled-in types, which carry upstream's merge keys.
fn patch_body() -> Value {
    let patch = json!({"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")});
    json!({
        "content": {
            "application/json-patch+json": patch.clone(),
            "application/merge-patch+json": patch.clone(),
            "application/apply-patch+yaml": patch.clone(),
            "application/apply-patch+cbor": patch,
        },
        "required": true,
    })
}

/// The CamelCase group name upstream puts in operation ids: `storage.k8s.io` → `Storage`,
/// `kubevirt.io` → `KubevirtIo`, the core group → `Core`.
fn operation_group(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .strip_suffix(".k8s.io")
        .unwrap_or(group)
        .split(['.', '-'])
        .map(capitalize)
        .collect()
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

struct OperationContext<'a> {
    resource: &'a ResourceInfo,
    /// `CoreV1`, `StorageV1`, …
    prefix: String,
    tag: String,
}

impl OperationContext<'_> {
    /// `id` is the operation id's verb and subject (`("read", "NamespacedPod")`).
    fn operation(
        &self,
        (verb, subject): (&str, &str),
        action: &str,
        kind: &str,
        description: String,
        parameters: Vec<Value>,
        responses: Value,
    ) -> Value {
        let mut op = json!({
            "tags": [self.tag],
            "description": description,
            "operationId": format!("{verb}{}{subject}", self.prefix),
            "responses": responses,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk(self.resource.group, self.resource.version, kind),
        });
        if !parameters.is_empty() {
            op["parameters"] = json!(parameters);
        }
        op
    }
}

fn with_unauthorized(mut responses: Value) -> Value {
    responses["401"] = json!({"description": "Unauthorized"});
    responses
}

fn add_paths(paths: &mut Map<String, Value>, r: &ResourceInfo, schema_name: &str) {
    let root = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let ctx = OperationContext {
        resource: r,
        prefix: format!("{}{}", operation_group(r.group), capitalize(r.version)),
        tag: format!(
            "{}_{}",
            if r.group.is_empty() {
                "core".to_string()
            } else {
                r.group.to_string()
            },
            r.version
        ),
    };
    let kind_ref = schema_ref(schema_name);
    let list_ref = schema_ref(&format!("{schema_name}List"));
    let status_ref = schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Status");
    let namespaced = if r.namespaced { "Namespaced" } else { "" };
    let subject = format!("{namespaced}{}", r.kind);
    let collection = if r.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{root}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let namespace_param = path_param("namespace", "The object's namespace.");
    let name_param = path_param("name", &format!("The name of the {}.", r.kind));
    let pretty = query("pretty", "string", "Indent the output when 'true'.");

    let mut scope_params = Vec::new();
    if r.namespaced {
        scope_params.push(namespace_param.clone());
    }
    scope_params.push(pretty.clone());

    let mut item_params = vec![name_param.clone()];
    if r.namespaced {
        item_params.push(namespace_param.clone());
    }
    item_params.push(pretty.clone());

    // The collection: list (and watch), create, delete as a collection.
    let mut collection_ops = json!({
        "get": ctx.operation(
            ("list", &subject), "list", r.kind,
            format!("list or watch objects of kind {}", r.kind),
            list_params(),
            with_unauthorized(json!({"200": json_response("OK", list_ref.clone())})),
        ),
        "post": ctx.operation(
            ("create", &subject), "post", r.kind,
            format!("create a {}", r.kind),
            write_params(false),
            with_unauthorized(json!({
                "200": json_response("OK", kind_ref.clone()),
                "201": json_response("Created", kind_ref.clone()),
                "202": json_response("Accepted", kind_ref.clone()),
            })),
        ),
        "parameters": scope_params,
    });
    collection_ops["post"]["requestBody"] = body(kind_ref.clone());
    if crate::discovery::verbs(r).contains(&"deletecollection") {
        let mut params = delete_params();
        params.extend(list_params());
        let mut op = ctx.operation(
            ("deleteCollection", &subject),
            "deletecollection",
            r.kind,
            format!("delete a collection of {}", r.kind),
            params,
            with_unauthorized(json!({"200": json_response("OK", status_ref.clone())})),
        );
        op["requestBody"] = json!({"content": {"*/*": {"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")}}});
        collection_ops["delete"] = op;
    }
    paths.insert(collection, collection_ops);

    // One object: read, replace, patch, delete.
    let mut item_ops = json!({
        "get": ctx.operation(
            ("read", &subject), "get", r.kind,
            format!("read the specified {}", r.kind),
            vec![],
            with_unauthorized(json!({"200": json_response("OK", kind_ref.clone())})),
        ),
        "put": ctx.operation(
            ("replace", &subject), "put", r.kind,
            format!("replace the specified {}", r.kind),
            write_params(false),
            with_unauthorized(json!({
                "200": json_response("OK", kind_ref.clone()),
                "201": json_response("Created", kind_ref.clone()),
            })),
        ),
        "patch": ctx.operation(
            ("patch", &subject), "patch", r.kind,
            format!("partially update the specified {}", r.kind),
            write_params(true),
            with_unauthorized(json!({
                "200": json_response("OK", kind_ref.clone()),
                "201": json_response("Created", kind_ref.clone()),
            })),
        ),
        "delete": ctx.operation(
            ("delete", &subject), "delete", r.kind,
            format!("delete a {}", r.kind),
            delete_params(),
            with_unauthorized(json!({
                "200": json_response("OK", kind_ref.clone()),
                "202": json_response("Accepted", kind_ref.clone()),
            })),
        ),
        "parameters": item_params.clone(),
    });
    item_ops["put"]["requestBody"] = body(kind_ref.clone());
    item_ops["patch"]["requestBody"] = patch_body();
    item_ops["delete"]["requestBody"] = json!({"content": {"*/*": {"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")}}});
    paths.insert(item.clone(), item_ops);

    // Namespaced kinds are also listed across all namespaces.
    if r.namespaced {
        paths.insert(
            format!("{root}/{}", r.plural),
            json!({
                "get": ctx.operation(
                    ("list", &format!("{}ForAllNamespaces", r.kind)), "list", r.kind,
                    format!("list or watch objects of kind {} in all namespaces", r.kind),
                    list_params(),
                    with_unauthorized(json!({"200": json_response("OK", list_ref.clone())})),
                ),
                "parameters": [pretty.clone()],
            }),
        );
    }

    for &sub in r.subresources {
        let path = format!("{item}/{}", sub.name());
        let sub_subject = format!("{subject}{}", capitalize(sub.name()));
        let ops = match sub {
            Subresource::Status => {
                let mut ops = json!({
                    "get": ctx.operation(
                        ("read", &sub_subject), "get", r.kind,
                        format!("read status of the specified {}", r.kind),
                        vec![],
                        with_unauthorized(json!({"200": json_response("OK", kind_ref.clone())})),
                    ),
                    "put": ctx.operation(
                        ("replace", &sub_subject), "put", r.kind,
                        format!("replace status of the specified {}", r.kind),
                        write_params(false),
                        with_unauthorized(json!({
                            "200": json_response("OK", kind_ref.clone()),
                            "201": json_response("Created", kind_ref.clone()),
                        })),
                    ),
                    "patch": ctx.operation(
                        ("patch", &sub_subject), "patch", r.kind,
                        format!("partially update status of the specified {}", r.kind),
                        write_params(true),
                        with_unauthorized(json!({
                            "200": json_response("OK", kind_ref.clone()),
                            "201": json_response("Created", kind_ref.clone()),
                        })),
                    ),
                });
                ops["put"]["requestBody"] = body(kind_ref.clone());
                ops["patch"]["requestBody"] = patch_body();
                ops
            }
            Subresource::Finalize => {
                let mut ops = json!({
                    "put": ctx.operation(
                        ("replace", &sub_subject), "put", r.kind,
                        format!("replace finalize of the specified {}", r.kind),
                        write_params(false),
                        with_unauthorized(json!({
                            "200": json_response("OK", kind_ref.clone()),
                            "201": json_response("Created", kind_ref.clone()),
                        })),
                    ),
                });
                ops["put"]["requestBody"] = body(kind_ref.clone());
                ops
            }
            Subresource::Binding => {
                let binding_ref = schema_ref("io.k8s.api.core.v1.Binding");
                let mut ops = json!({
                    "post": ctx.operation(
                        ("create", &sub_subject), "post", "Binding",
                        format!("create binding of a {}", r.kind),
                        write_params(false),
                        with_unauthorized(json!({
                            "200": json_response("OK", binding_ref.clone()),
                            "201": json_response("Created", binding_ref.clone()),
                            "202": json_response("Accepted", binding_ref.clone()),
                        })),
                    ),
                });
                ops["post"]["requestBody"] = body(binding_ref);
                ops
            }
            Subresource::Log => json!({
                "get": ctx.operation(
                    ("read", &sub_subject), "get", r.kind,
                    format!("read log of the specified {}", r.kind),
                    vec![
                        query("container", "string", "The container whose log to read."),
                        query("follow", "boolean", "Stream the log as it grows."),
                        query("previous", "boolean", "The log of the previous run of the container."),
                        query("sinceSeconds", "integer", "Only lines newer than this many seconds."),
                        query("tailLines", "integer", "Only this many lines from the end."),
                        query("timestamps", "boolean", "Prefix each line with its timestamp."),
                    ],
                    with_unauthorized(json!({
                        "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
                    })),
                ),
            }),
        };
        let mut ops = ops;
        ops["parameters"] = json!(item_params.clone());
        paths.insert(path, ops);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve<'a>(schemas: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
        let reference = schema
            .get("$ref")
            .or_else(|| schema.pointer("/allOf/0/$ref"))
            .and_then(Value::as_str);
        match reference {
            Some(r) => &schemas[r.strip_prefix(SCHEMA_PREFIX).unwrap()],
            None => schema,
        }
    }

    #[test]
    fn index_lists_every_served_group_version_with_hash() {
        let index = v3_index();
        let paths = index["paths"].as_object().unwrap();
        for (group, versions) in crate::resources::groups() {
            for version in versions {
                let path = document_path(group, version);
                let url = paths[&path]["serverRelativeURL"].as_str().unwrap();
                let hash = v3_document_hash(group, version).unwrap();
                assert_eq!(url, format!("/openapi/v3/{path}?hash={hash}"));
                assert_eq!(hash.len(), 64);
            }
        }
        assert!(paths.contains_key("api/v1"));
        assert!(paths.contains_key("apis/storage.k8s.io/v1"));
    }

    #[test]
    fn pvc_schema_documents_spec_access_modes() {
        let doc = v3_document("", "v1").unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let pvc = &schemas["io.k8s.api.core.v1.PersistentVolumeClaim"];
        assert_eq!(
            pvc["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "PersistentVolumeClaim"}])
        );
        let spec_field = &pvc["properties"]["spec"];
        // OpenAPI 3.0 ignores siblings of $ref, so the description sits beside an allOf.
        assert!(spec_field.get("$ref").is_none());
        assert!(spec_field["description"].as_str().unwrap().len() > 10);
        let spec = resolve(schemas, spec_field);
        let access_modes = &spec["properties"]["accessModes"];
        assert_eq!(access_modes["type"], "array");
        assert!(
            access_modes["description"]
                .as_str()
                .unwrap()
                .contains("access modes")
        );
        let meta = resolve(schemas, &pvc["properties"]["metadata"]);
        assert!(meta["properties"]["labels"]["additionalProperties"].is_object());
    }

    #[test]
    fn every_reference_resolves_within_its_document() {
        fn walk(value: &Value, refs: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        refs.push(r.clone());
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        for d in documents() {
            let mut refs = Vec::new();
            walk(&d.doc, &mut refs);
            assert!(!refs.is_empty());
            let schemas = d.doc["components"]["schemas"].as_object().unwrap();
            for r in refs {
                let name = r
                    .strip_prefix(SCHEMA_PREFIX)
                    .unwrap_or_else(|| panic!("{r}: not a component reference"));
                assert!(
                    schemas.contains_key(name),
                    "{}/{}: {r} missing",
                    d.group,
                    d.version
                );
            }
        }
    }

    #[test]
    fn every_served_kind_has_a_schema_with_its_gvk() {
        for r in RESOURCES {
            let (schemas, name) = kind_schema(r).unwrap();
            assert_eq!(
                schemas[name]["x-kubernetes-group-version-kind"][0]["kind"],
                r.kind,
                "{}",
                r.group_resource()
            );
            let list = &schemas[&format!("{name}List")];
            assert_eq!(
                list["x-kubernetes-group-version-kind"][0]["kind"],
                format!("{}List", r.kind)
            );
        }
        for r in RESOURCES {
            assert!(
                KINDS
                    .iter()
                    .any(|k| k.group == r.group && k.version == r.version && k.kind == r.kind),
                "{} has no real schema",
                r.group_resource()
            );
        }
    }

    #[test]
    fn patch_operations_carry_gvk_and_field_validation() {
        let doc = v3_document("storage.k8s.io", "v1").unwrap();
        let patch = &doc["paths"]["/apis/storage.k8s.io/v1/storageclasses/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "storage.k8s.io", "version": "v1", "kind": "StorageClass"})
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for wanted in ["dryRun", "fieldManager", "fieldValidation", "force"] {
            assert!(names.contains(&wanted), "{wanted} missing");
        }
        assert!(
            patch["requestBody"]["content"]
                .get("application/apply-patch+yaml")
                .is_some()
        );
    }

    #[test]
    fn namespaced_paths_and_subresources() {
        let doc = v3_document("", "v1").unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let item = &paths["/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"];
        assert_eq!(
            item["get"]["operationId"],
            "readCoreV1NamespacedPersistentVolumeClaim"
        );
        assert!(paths.contains_key("/api/v1/persistentvolumeclaims"));
        let status = &paths["/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}/status"];
        assert_eq!(
            status["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "PersistentVolumeClaim"
        );
        let binding = &paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"];
        assert_eq!(
            binding["post"]["x-kubernetes-group-version-kind"]["kind"],
            "Binding"
        );
        // Namespaces are cluster-scoped and cannot be deleted as a collection.
        let namespaces = &paths["/api/v1/namespaces"];
        assert!(namespaces.get("delete").is_none());
        assert!(paths["/api/v1/nodes"].get("delete").is_some());
    }

    #[test]
    fn custom_kinds_get_crd_style_names_and_metadata() {
        assert_eq!(
            custom_schema_name("kubevirt.io", "v1", "VirtualMachine"),
            "io.kubevirt.v1.VirtualMachine"
        );
        assert_eq!(
            custom_schema_name("snapshot.storage.k8s.io", "v1", "VolumeSnapshot"),
            "io.k8s.storage.snapshot.v1.VolumeSnapshot"
        );
        let doc = v3_document("cdi.kubevirt.io", "v1beta1").unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let dv = &schemas["io.kubevirt.cdi.v1beta1.DataVolume"];
        assert_eq!(dv["type"], "object");
        assert!(schemas.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        let patch = &doc["paths"]["/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes/{name}"]
            ["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "DataVolume"
        );
    }

    mod widget {
        use kube::CustomResource;
        use schemars::JsonSchema;
        use serde::{Deserialize, Serialize};

        /// A widget's desired state.
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
        #[kube(group = "example.com", version = "v1", kind = "Widget", namespaced)]
        #[kube(status = "WidgetStatus")]
        #[serde(rename_all = "camelCase")]
        pub struct WidgetSpec {
            /// How big the widget is.
            pub size_bytes: i64,
            /// Parts, each named.
            #[serde(default)]
            pub parts: Vec<Part>,
            pub colour: Option<String>,
        }

        #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
        pub struct Part {
            /// The part's name.
            pub name: String,
        }

        #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
        pub struct WidgetStatus {
            pub ready: bool,
        }
    }

    static WIDGET_RESOURCES: &[ResourceInfo] = &[ResourceInfo {
        group: "example.com",
        version: "v1",
        kind: "Widget",
        plural: "widgets",
        singular: "widget",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[Subresource::Status],
        storage: "example.com/widgets",
    }];
    static WIDGET_KINDS: &[KindEntry] = &[custom(
        "example.com",
        "v1",
        "Widget",
        schema_of::<widget::Widget>,
    )];

    #[test]
    fn custom_kind_plugs_in_with_its_derived_schema() {
        let document = build_document("example.com", "v1", WIDGET_RESOURCES, WIDGET_KINDS);
        let schemas = document.doc["components"]["schemas"].as_object().unwrap();
        let widget = &schemas["com.example.v1.Widget"];
        assert_eq!(
            widget["x-kubernetes-group-version-kind"],
            json!([{"group": "example.com", "version": "v1", "kind": "Widget"}])
        );
        let properties = widget["properties"].as_object().unwrap();
        assert_eq!(
            properties.keys().collect::<Vec<_>>(),
            ["apiVersion", "kind", "metadata", "spec", "status"]
        );
        let spec = &properties["spec"];
        assert_eq!(
            spec["properties"]["sizeBytes"]["description"],
            "How big the widget is."
        );
        assert_eq!(
            spec["properties"]["parts"]["items"]["properties"]["name"]["type"],
            "string"
        );
        // Optional fields are published the OpenAPI 3.0 way.
        assert_eq!(spec["properties"]["colour"]["nullable"], true);
        assert!(schemas.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        assert!(
            document.doc["paths"]
                .get("/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status")
                .is_some()
        );
    }

    #[test]
    fn virtual_machine_schema_reaches_the_template_disks() {
        let doc = v3_document("kubevirt.io", "v1").unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let vm = &schemas["io.kubevirt.v1.VirtualMachine"];
        let template = &vm["properties"]["spec"]["properties"]["template"];
        let disks = &template["properties"]["spec"]["properties"]["domain"]["properties"]["devices"]
            ["properties"]["disks"];
        assert_eq!(disks["type"], "array");
        assert!(disks["items"]["properties"]["serial"].is_object());
        assert!(disks["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(
            vm["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
    }

    #[test]
    fn documents_are_generated_once() {
        let first = v3_document_json("", "v1").unwrap();
        let second = v3_document_json("", "v1").unwrap();
        assert!(std::ptr::eq(first, second));
        assert!(v3_document("example.com", "v1").is_none());
    }
}
