//! The merge tags of the built-in kinds volplane serves, transcribed from the upstream Go types
//! (k8s.io/api core/v1, storage/v1, coordination/v1, events/v1; k8s.io/apimachinery meta/v1):
//! `patchStrategy`/`patchMergeKey` for strategic merge, `+listType`/`+listMapKey`/`+mapType`/
//! `+structType` for server-side apply. Only fields that differ from the defaults (scalar, plain
//! struct, atomic list without patch strategy) are listed.

use super::schema::{
    FieldDef, FieldShape, ListDef, ListMapKey, ListStrategy, MergeSchema, SsaListType, TableSchema,
    TypeDef,
};

const fn field(name: &'static str, shape: FieldShape) -> FieldDef {
    FieldDef { name, shape }
}

/// `patchStrategy:"merge" patchMergeKey:"<key>"` with `+listType=map` on the same key(s).
const fn keyed(
    name: &'static str,
    merge_key: &'static str,
    ssa_keys: &'static [ListMapKey],
    item: Option<&'static TypeDef>,
) -> FieldDef {
    field(
        name,
        FieldShape::List(ListDef {
            strategy: ListStrategy::MergeByKey(merge_key),
            ssa: SsaListType::Map(ssa_keys),
            retain_keys: false,
            item,
            always_serialized: false,
        }),
    )
}

/// `patchStrategy:"merge,retainKeys" patchMergeKey:"<key>"`, `+listType=map`.
const fn keyed_retaining(
    name: &'static str,
    merge_key: &'static str,
    ssa_keys: &'static [ListMapKey],
    item: Option<&'static TypeDef>,
) -> FieldDef {
    field(
        name,
        FieldShape::List(ListDef {
            strategy: ListStrategy::MergeByKey(merge_key),
            ssa: SsaListType::Map(ssa_keys),
            retain_keys: true,
            item,
            always_serialized: false,
        }),
    )
}

/// `keyed` for a list declared without `omitempty` (Go always serializes it).
const fn keyed_always_serialized(
    name: &'static str,
    merge_key: &'static str,
    ssa_keys: &'static [ListMapKey],
    item: Option<&'static TypeDef>,
) -> FieldDef {
    field(
        name,
        FieldShape::List(ListDef {
            strategy: ListStrategy::MergeByKey(merge_key),
            ssa: SsaListType::Map(ssa_keys),
            retain_keys: false,
            item,
            always_serialized: true,
        }),
    )
}

/// A list of primitives with `patchStrategy:"merge"` and `+listType=set`.
const fn primitive_set(name: &'static str) -> FieldDef {
    field(
        name,
        FieldShape::List(ListDef {
            strategy: ListStrategy::MergePrimitives,
            ssa: SsaListType::Set,
            retain_keys: false,
            item: None,
            always_serialized: false,
        }),
    )
}

/// A list with a strategy for one engine only.
const fn list(name: &'static str, strategy: ListStrategy, ssa: SsaListType) -> FieldDef {
    field(
        name,
        FieldShape::List(ListDef {
            strategy,
            ssa,
            retain_keys: false,
            item: None,
            always_serialized: false,
        }),
    )
}

const fn map(name: &'static str) -> FieldDef {
    field(name, FieldShape::Map)
}

const fn atomic(name: &'static str) -> FieldDef {
    field(name, FieldShape::Atomic)
}

const fn structure(name: &'static str, def: &'static TypeDef) -> FieldDef {
    field(name, FieldShape::Struct(def))
}

const NAME: &[ListMapKey] = &[ListMapKey::required("name")];
const TYPE: &[ListMapKey] = &[ListMapKey::required("type")];
const UID: &[ListMapKey] = &[ListMapKey::required("uid")];
const IP: &[ListMapKey] = &[ListMapKey::required("ip")];
const MOUNT_PATH: &[ListMapKey] = &[ListMapKey::required("mountPath")];
const DEVICE_PATH: &[ListMapKey] = &[ListMapKey::required("devicePath")];
const CONTAINER_PORT: &[ListMapKey] = &[
    ListMapKey::required("containerPort"),
    ListMapKey {
        name: "protocol",
        default: Some("TCP"),
    },
];
const TOPOLOGY_SPREAD: &[ListMapKey] = &[
    ListMapKey::required("topologyKey"),
    ListMapKey::required("whenUnsatisfiable"),
];

// ---- meta/v1 ----

static OBJECT_META: TypeDef = TypeDef {
    name: "ObjectMeta",
    fields: &[
        map("labels"),
        map("annotations"),
        primitive_set("finalizers"),
        keyed("ownerReferences", "uid", UID, None),
    ],
};

// ---- core/v1 ----

static RESOURCE_REQUIREMENTS: TypeDef = TypeDef {
    name: "ResourceRequirements",
    fields: &[
        map("limits"),
        map("requests"),
        list("claims", ListStrategy::Replace, SsaListType::Map(NAME)),
    ],
};

static CONTAINER: TypeDef = TypeDef {
    name: "Container",
    fields: &[
        keyed("ports", "containerPort", CONTAINER_PORT, None),
        keyed("env", "name", NAME, None),
        keyed("volumeMounts", "mountPath", MOUNT_PATH, None),
        keyed("volumeDevices", "devicePath", DEVICE_PATH, None),
        structure("resources", &RESOURCE_REQUIREMENTS),
    ],
};

static CSI_VOLUME_SOURCE: TypeDef = TypeDef {
    name: "CSIVolumeSource",
    fields: &[map("volumeAttributes")],
};

static VOLUME: TypeDef = TypeDef {
    name: "Volume",
    fields: &[structure("csi", &CSI_VOLUME_SOURCE)],
};

static POD_SPEC: TypeDef = TypeDef {
    name: "PodSpec",
    fields: &[
        keyed_retaining("volumes", "name", NAME, Some(&VOLUME)),
        keyed("initContainers", "name", NAME, Some(&CONTAINER)),
        keyed_always_serialized("containers", "name", NAME, Some(&CONTAINER)),
        keyed("ephemeralContainers", "name", NAME, Some(&CONTAINER)),
        keyed("imagePullSecrets", "name", NAME, None),
        atomic("nodeSelector"),
        keyed("hostAliases", "ip", IP, None),
        list(
            "topologySpreadConstraints",
            ListStrategy::MergeByKey("topologyKey"),
            SsaListType::Map(TOPOLOGY_SPREAD),
        ),
        keyed("schedulingGates", "name", NAME, None),
        keyed_retaining("resourceClaims", "name", NAME, None),
        map("overhead"),
    ],
};

static POD_STATUS: TypeDef = TypeDef {
    name: "PodStatus",
    fields: &[
        keyed("conditions", "type", TYPE, None),
        keyed("podIPs", "ip", IP, None),
        keyed("hostIPs", "ip", IP, None),
        keyed_retaining("resourceClaimStatuses", "name", NAME, None),
    ],
};

static POD: TypeDef = TypeDef {
    name: "Pod",
    fields: &[
        structure("metadata", &OBJECT_META),
        structure("spec", &POD_SPEC),
        structure("status", &POD_STATUS),
    ],
};

static CSI_PERSISTENT_VOLUME_SOURCE: TypeDef = TypeDef {
    name: "CSIPersistentVolumeSource",
    fields: &[map("volumeAttributes")],
};

static VOLUME_NODE_AFFINITY: TypeDef = TypeDef {
    name: "VolumeNodeAffinity",
    fields: &[atomic("required")],
};

static PERSISTENT_VOLUME_SPEC: TypeDef = TypeDef {
    name: "PersistentVolumeSpec",
    fields: &[
        map("capacity"),
        atomic("claimRef"),
        structure("csi", &CSI_PERSISTENT_VOLUME_SOURCE),
        structure("nodeAffinity", &VOLUME_NODE_AFFINITY),
    ],
};

static PERSISTENT_VOLUME: TypeDef = TypeDef {
    name: "PersistentVolume",
    fields: &[
        structure("metadata", &OBJECT_META),
        structure("spec", &PERSISTENT_VOLUME_SPEC),
    ],
};

static VOLUME_RESOURCE_REQUIREMENTS: TypeDef = TypeDef {
    name: "VolumeResourceRequirements",
    fields: &[map("limits"), map("requests")],
};

static PERSISTENT_VOLUME_CLAIM_SPEC: TypeDef = TypeDef {
    name: "PersistentVolumeClaimSpec",
    fields: &[
        atomic("selector"),
        structure("resources", &VOLUME_RESOURCE_REQUIREMENTS),
        atomic("dataSource"),
    ],
};

static PERSISTENT_VOLUME_CLAIM_STATUS: TypeDef = TypeDef {
    name: "PersistentVolumeClaimStatus",
    fields: &[
        map("capacity"),
        keyed("conditions", "type", TYPE, None),
        map("allocatedResources"),
        map("allocatedResourceStatuses"),
    ],
};

static PERSISTENT_VOLUME_CLAIM: TypeDef = TypeDef {
    name: "PersistentVolumeClaim",
    fields: &[
        structure("metadata", &OBJECT_META),
        structure("spec", &PERSISTENT_VOLUME_CLAIM_SPEC),
        structure("status", &PERSISTENT_VOLUME_CLAIM_STATUS),
    ],
};

static CONDITIONS_STATUS: TypeDef = TypeDef {
    name: "NamespaceStatus",
    fields: &[keyed("conditions", "type", TYPE, None)],
};

static NAMESPACE: TypeDef = TypeDef {
    name: "Namespace",
    fields: &[
        structure("metadata", &OBJECT_META),
        structure("status", &CONDITIONS_STATUS),
    ],
};

static NODE_SPEC: TypeDef = TypeDef {
    name: "NodeSpec",
    fields: &[primitive_set("podCIDRs")],
};

static NODE_STATUS: TypeDef = TypeDef {
    name: "NodeStatus",
    fields: &[
        map("capacity"),
        map("allocatable"),
        keyed("conditions", "type", TYPE, None),
        // Merged by type for strategic merge, but atomic for apply (a node may have several
        // addresses of one type).
        list(
            "addresses",
            ListStrategy::MergeByKey("type"),
            SsaListType::Atomic,
        ),
    ],
};

static NODE: TypeDef = TypeDef {
    name: "Node",
    fields: &[
        structure("metadata", &OBJECT_META),
        structure("spec", &NODE_SPEC),
        structure("status", &NODE_STATUS),
    ],
};

static CONFIG_MAP: TypeDef = TypeDef {
    name: "ConfigMap",
    fields: &[
        structure("metadata", &OBJECT_META),
        map("data"),
        map("binaryData"),
    ],
};

static SECRET: TypeDef = TypeDef {
    name: "Secret",
    fields: &[
        structure("metadata", &OBJECT_META),
        map("data"),
        map("stringData"),
    ],
};

static SERVICE_ACCOUNT: TypeDef = TypeDef {
    name: "ServiceAccount",
    fields: &[
        structure("metadata", &OBJECT_META),
        keyed("secrets", "name", NAME, None),
    ],
};

/// Kinds whose only special fields are in their metadata (core and events.k8s.io Events,
/// Lease).
static METADATA_ONLY: TypeDef = TypeDef {
    name: "ObjectWithMetadata",
    fields: &[structure("metadata", &OBJECT_META)],
};

// ---- storage.k8s.io/v1 ----

static STORAGE_CLASS: TypeDef = TypeDef {
    name: "StorageClass",
    fields: &[structure("metadata", &OBJECT_META), map("parameters")],
};

static VOLUME_ATTACHMENT_SOURCE: TypeDef = TypeDef {
    name: "VolumeAttachmentSource",
    fields: &[structure("inlineVolumeSpec", &PERSISTENT_VOLUME_SPEC)],
};

static VOLUME_ATTACHMENT_SPEC: TypeDef = TypeDef {
    name: "VolumeAttachmentSpec",
    fields: &[structure("source", &VOLUME_ATTACHMENT_SOURCE)],
};

static VOLUME_ATTACHMENT_STATUS: TypeDef = TypeDef {
    name: "VolumeAttachmentStatus",
    fields: &[map("attachmentMetadata")],
};

static VOLUME_ATTACHMENT: TypeDef = TypeDef {
    name: "VolumeAttachment",
    fields: &[
        structure("metadata", &OBJECT_META),
        structure("spec", &VOLUME_ATTACHMENT_SPEC),
        structure("status", &VOLUME_ATTACHMENT_STATUS),
    ],
};

static CSI_DRIVER_SPEC: TypeDef = TypeDef {
    name: "CSIDriverSpec",
    fields: &[list(
        "volumeLifecycleModes",
        ListStrategy::Replace,
        SsaListType::Set,
    )],
};

static CSI_DRIVER: TypeDef = TypeDef {
    name: "CSIDriver",
    fields: &[
        structure("metadata", &OBJECT_META),
        structure("spec", &CSI_DRIVER_SPEC),
    ],
};

static CSI_NODE_SPEC: TypeDef = TypeDef {
    name: "CSINodeSpec",
    fields: &[keyed_always_serialized("drivers", "name", NAME, None)],
};

static CSI_NODE: TypeDef = TypeDef {
    name: "CSINode",
    fields: &[
        structure("metadata", &OBJECT_META),
        structure("spec", &CSI_NODE_SPEC),
    ],
};

static CSI_STORAGE_CAPACITY: TypeDef = TypeDef {
    name: "CSIStorageCapacity",
    fields: &[structure("metadata", &OBJECT_META), atomic("nodeTopology")],
};

static POD_SCHEMA: TableSchema = TableSchema {
    kind: "Pod",
    root: &POD,
};
static PERSISTENT_VOLUME_SCHEMA: TableSchema = TableSchema {
    kind: "PersistentVolume",
    root: &PERSISTENT_VOLUME,
};
static PERSISTENT_VOLUME_CLAIM_SCHEMA: TableSchema = TableSchema {
    kind: "PersistentVolumeClaim",
    root: &PERSISTENT_VOLUME_CLAIM,
};
static NAMESPACE_SCHEMA: TableSchema = TableSchema {
    kind: "Namespace",
    root: &NAMESPACE,
};
static NODE_SCHEMA: TableSchema = TableSchema {
    kind: "Node",
    root: &NODE,
};
static CONFIG_MAP_SCHEMA: TableSchema = TableSchema {
    kind: "ConfigMap",
    root: &CONFIG_MAP,
};
static SECRET_SCHEMA: TableSchema = TableSchema {
    kind: "Secret",
    root: &SECRET,
};
static SERVICE_ACCOUNT_SCHEMA: TableSchema = TableSchema {
    kind: "ServiceAccount",
    root: &SERVICE_ACCOUNT,
};
static METADATA_ONLY_SCHEMA: TableSchema = TableSchema {
    kind: "Event/Lease",
    root: &METADATA_ONLY,
};
static STORAGE_CLASS_SCHEMA: TableSchema = TableSchema {
    kind: "storage.k8s.io/StorageClass",
    root: &STORAGE_CLASS,
};
static VOLUME_ATTACHMENT_SCHEMA: TableSchema = TableSchema {
    kind: "storage.k8s.io/VolumeAttachment",
    root: &VOLUME_ATTACHMENT,
};
static CSI_DRIVER_SCHEMA: TableSchema = TableSchema {
    kind: "storage.k8s.io/CSIDriver",
    root: &CSI_DRIVER,
};
static CSI_NODE_SCHEMA: TableSchema = TableSchema {
    kind: "storage.k8s.io/CSINode",
    root: &CSI_NODE,
};
static CSI_STORAGE_CAPACITY_SCHEMA: TableSchema = TableSchema {
    kind: "storage.k8s.io/CSIStorageCapacity",
    root: &CSI_STORAGE_CAPACITY,
};

/// The schema of an object whose only known fields are its `metadata`.
pub(crate) fn metadata_schema() -> &'static dyn MergeSchema {
    &METADATA_ONLY_SCHEMA
}

/// The merge schema of a built-in kind (`group` is `""` for core), or `None` for kinds without
/// one (custom resources: strategic merge is refused with 415 upstream; apply treats their maps
/// granularly and lists atomically, see [`super::schema::DeducedSchema`]).
pub fn schema_for(group: &str, kind: &str) -> Option<&'static dyn MergeSchema> {
    let schema: &'static TableSchema = match (group, kind) {
        ("", "Pod") => &POD_SCHEMA,
        ("", "PersistentVolume") => &PERSISTENT_VOLUME_SCHEMA,
        ("", "PersistentVolumeClaim") => &PERSISTENT_VOLUME_CLAIM_SCHEMA,
        ("", "Namespace") => &NAMESPACE_SCHEMA,
        ("", "Node") => &NODE_SCHEMA,
        ("", "ConfigMap") => &CONFIG_MAP_SCHEMA,
        ("", "Secret") => &SECRET_SCHEMA,
        ("", "ServiceAccount") => &SERVICE_ACCOUNT_SCHEMA,
        ("", "Event") | ("events.k8s.io", "Event") | ("coordination.k8s.io", "Lease") => {
            &METADATA_ONLY_SCHEMA
        }
        ("storage.k8s.io", "StorageClass") => &STORAGE_CLASS_SCHEMA,
        ("storage.k8s.io", "VolumeAttachment") => &VOLUME_ATTACHMENT_SCHEMA,
        ("storage.k8s.io", "CSIDriver") => &CSI_DRIVER_SCHEMA,
        ("storage.k8s.io", "CSINode") => &CSI_NODE_SCHEMA,
        ("storage.k8s.io", "CSIStorageCapacity") => &CSI_STORAGE_CAPACITY_SCHEMA,
        _ => return None,
    };
    Some(schema)
}

#[cfg(test)]
mod tests {
    use super::super::schema::ObjectKind;
    use super::*;

    #[test]
    fn pod_lists_follow_upstream_tags() {
        let pod = schema_for("", "Pod").unwrap();
        assert_eq!(
            pod.list_strategy(&["spec", "containers"]),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            pod.list_strategy(&["spec", "initContainers", "volumeMounts"]),
            ListStrategy::MergeByKey("mountPath")
        );
        assert_eq!(
            pod.list_strategy(&["spec", "containers", "ports"]),
            ListStrategy::MergeByKey("containerPort")
        );
        assert_eq!(
            pod.list_strategy(&["spec", "containers", "env"]),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            pod.list_strategy(&["spec", "containers", "args"]),
            ListStrategy::Replace
        );
        assert_eq!(
            pod.list_strategy(&["spec", "tolerations"]),
            ListStrategy::Replace
        );
        assert_eq!(
            pod.list_strategy(&["metadata", "finalizers"]),
            ListStrategy::MergePrimitives
        );
        assert_eq!(
            pod.list_strategy(&["metadata", "ownerReferences"]),
            ListStrategy::MergeByKey("uid")
        );
        assert_eq!(
            pod.list_strategy(&["status", "conditions"]),
            ListStrategy::MergeByKey("type")
        );
        assert!(pod.retain_keys(&["spec", "volumes"]));
        assert!(!pod.retain_keys(&["spec", "containers"]));
        assert_eq!(
            pod.ssa_list_type(&["spec", "containers", "ports"]),
            SsaListType::Map(CONTAINER_PORT)
        );
        assert_eq!(
            pod.ssa_list_type(&["metadata", "finalizers"]),
            SsaListType::Set
        );
        assert_eq!(pod.object_kind(&["metadata", "labels"]), ObjectKind::Map);
        assert_eq!(
            pod.object_kind(&["spec", "nodeSelector"]),
            ObjectKind::Atomic
        );
        assert_eq!(pod.object_kind(&["spec"]), ObjectKind::Struct);
        assert_eq!(
            pod.object_kind(&["spec", "containers", "resources", "limits"]),
            ObjectKind::Map
        );
    }

    #[test]
    fn storage_kinds_and_unknown_kinds() {
        let csinode = schema_for("storage.k8s.io", "CSINode").unwrap();
        assert_eq!(
            csinode.list_strategy(&["spec", "drivers"]),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            csinode.list_strategy(&["spec", "drivers", "topologyKeys"]),
            ListStrategy::Replace
        );
        let pvc = schema_for("", "PersistentVolumeClaim").unwrap();
        assert_eq!(
            pvc.object_kind(&["spec", "resources", "requests"]),
            ObjectKind::Map
        );
        assert_eq!(
            pvc.list_strategy(&["spec", "accessModes"]),
            ListStrategy::Replace
        );
        assert!(schema_for("", "Lease").is_none());
        assert!(schema_for("coordination.k8s.io", "Lease").is_some());
        assert!(schema_for("kubevirt.io", "VirtualMachine").is_none());
        assert!(schema_for("storage.k8s.io", "Pod").is_none());
    }
}
