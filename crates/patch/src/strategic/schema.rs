//! What a strategic merge (and server-side apply) needs to know about an object's fields.
//!
//! A schema answers questions about a field given its path: the field names from the root, list
//! indices skipped (`["spec", "containers", "ports"]` for every container's ports). Built-in kinds
//! are described by static tables of types ([`TypeDef`]) transcribed from the upstream Go struct
//! tags (`patchStrategy`, `patchMergeKey`, `+listType`, `+listMapKey`, `+mapType`,
//! `+structType`); see `builtin_tables.rs`.

use std::fmt;

/// How a strategic merge patch merges a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// No `patchStrategy`: the patch's list replaces the object's list.
    Replace,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"`: items are maps matched by this key.
    MergeByKey(&'static str),
    /// `patchStrategy:"merge"` on a list of primitives: the lists are united as sets.
    MergePrimitives,
}

/// How server-side apply treats a list (upstream `x-kubernetes-list-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsaListType {
    /// Owned and replaced as a whole.
    Atomic,
    /// A set of primitives; each value is owned on its own (`v:<value>`).
    Set,
    /// An associative list; each item is identified by these key fields (`k:{...}`).
    Map(&'static [ListMapKey]),
}

/// One key field of an associative list, with the default upstream assumes when it is omitted
/// (e.g. a container port's `protocol` defaults to `TCP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListMapKey {
    /// The key field's name.
    pub name: &'static str,
    /// The value used when an item omits the field.
    pub default: Option<&'static str>,
}

impl ListMapKey {
    /// A key field without default.
    pub const fn required(name: &'static str) -> Self {
        ListMapKey {
            name,
            default: None,
        }
    }
}

/// What an object-valued field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A Go struct: fields are owned one by one; the struct itself is never owned.
    Struct,
    /// A Go map (`map[string]string`, e.g. labels): keys are owned one by one and the map
    /// itself is owned by whoever created it (`.` in `fieldsV1`).
    Map,
    /// `+mapType=atomic` or `+structType=atomic` (e.g. a label selector): owned and replaced
    /// as a whole.
    Atomic,
}

/// The merge knowledge of one kind.
pub trait MergeSchema: Send + Sync + fmt::Debug {
    /// The strategic-merge list strategy of the list at `path`.
    fn list_strategy(&self, path: &[&str]) -> ListStrategy;
    /// Whether maps at `path` (a struct field, or the items of a list field) honour
    /// `$retainKeys` (`patchStrategy:"...,retainKeys"`), so kubectl's two-way patches carry one.
    fn retain_keys(&self, path: &[&str]) -> bool;
    /// How server-side apply treats the list at `path`.
    fn ssa_list_type(&self, path: &[&str]) -> SsaListType;
    /// What the object at `path` is (the root is a struct).
    fn object_kind(&self, path: &[&str]) -> ObjectKind;
    /// Whether the list at `path` is declared without `omitempty` upstream, so Go always
    /// serializes it (as `null` when empty) and it never "appears" for managed fields.
    fn list_always_serialized(&self, _path: &[&str]) -> bool {
        false
    }
}

/// A struct type: its fields that need more than the defaults. Fields not listed are scalars,
/// structs without special fields, or atomic lists.
#[derive(Debug)]
pub struct TypeDef {
    /// The Go type name, for documentation and debugging.
    pub name: &'static str,
    /// The fields with a special shape.
    pub fields: &'static [FieldDef],
}

/// One field of a [`TypeDef`].
#[derive(Debug)]
pub struct FieldDef {
    /// The JSON field name.
    pub name: &'static str,
    /// Its shape.
    pub shape: FieldShape,
}

/// The shape of a field.
#[derive(Debug)]
pub enum FieldShape {
    /// A struct with fields of its own.
    Struct(&'static TypeDef),
    /// A granular map (labels, annotations, resource lists, data).
    Map,
    /// An atomic map or struct.
    Atomic,
    /// A list.
    List(ListDef),
}

/// A list field.
#[derive(Debug)]
pub struct ListDef {
    /// Strategic merge behaviour.
    pub strategy: ListStrategy,
    /// Server-side apply behaviour.
    pub ssa: SsaListType,
    /// Whether items honour `$retainKeys`.
    pub retain_keys: bool,
    /// The item type, when items are structs with special fields.
    pub item: Option<&'static TypeDef>,
    /// Declared without `omitempty` (e.g. `containers`).
    pub always_serialized: bool,
}

/// A schema made of a root [`TypeDef`].
#[derive(Debug)]
pub struct TableSchema {
    /// The kind it describes (`Pod`, `storage.k8s.io/CSINode`).
    pub kind: &'static str,
    /// The type of the whole object.
    pub root: &'static TypeDef,
}

impl TableSchema {
    fn lookup(&self, path: &[&str]) -> Option<&'static FieldShape> {
        let mut current = self.root;
        let (last, parents) = path.split_last()?;
        for name in parents {
            let field = current.fields.iter().find(|f| f.name == *name)?;
            current = match &field.shape {
                FieldShape::Struct(t) => t,
                FieldShape::List(ListDef { item: Some(t), .. }) => t,
                _ => return None,
            };
        }
        current
            .fields
            .iter()
            .find(|f| f.name == *last)
            .map(|f| &f.shape)
    }
}

impl MergeSchema for TableSchema {
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        match self.lookup(path) {
            Some(FieldShape::List(list)) => list.strategy,
            _ => ListStrategy::Replace,
        }
    }

    fn retain_keys(&self, path: &[&str]) -> bool {
        matches!(self.lookup(path), Some(FieldShape::List(list)) if list.retain_keys)
    }

    fn ssa_list_type(&self, path: &[&str]) -> SsaListType {
        match self.lookup(path) {
            Some(FieldShape::List(list)) => list.ssa,
            _ => SsaListType::Atomic,
        }
    }

    fn object_kind(&self, path: &[&str]) -> ObjectKind {
        match self.lookup(path) {
            Some(FieldShape::Map) => ObjectKind::Map,
            Some(FieldShape::Atomic) => ObjectKind::Atomic,
            _ => ObjectKind::Struct,
        }
    }

    fn list_always_serialized(&self, path: &[&str]) -> bool {
        matches!(self.lookup(path), Some(FieldShape::List(list)) if list.always_serialized)
    }
}

/// The schema of kinds without a table (custom resources): every object is a granular map,
/// every list is atomic, as upstream's deduced schema for custom resources without list
/// extensions; `metadata` follows `ObjectMeta` (finalizers a set, ownerReferences keyed by uid).
/// Strategic merge is not offered for them (415 upstream).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeducedSchema;

impl DeducedSchema {
    fn metadata(path: &[&str]) -> Option<&'static dyn MergeSchema> {
        (path.first() == Some(&"metadata")).then(super::builtin_tables::metadata_schema)
    }
}

impl MergeSchema for DeducedSchema {
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        Self::metadata(path).map_or(ListStrategy::Replace, |m| m.list_strategy(path))
    }

    fn retain_keys(&self, _path: &[&str]) -> bool {
        false
    }

    fn ssa_list_type(&self, path: &[&str]) -> SsaListType {
        Self::metadata(path).map_or(SsaListType::Atomic, |m| m.ssa_list_type(path))
    }

    fn object_kind(&self, path: &[&str]) -> ObjectKind {
        Self::metadata(path).map_or(ObjectKind::Map, |m| m.object_kind(path))
    }
}
