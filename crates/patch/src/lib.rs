//! Patch engines for Kubernetes-style objects held as [`serde_json::Value`].
//!
//! - [`json_patch`]: RFC 6902 JSON patch (`application/json-patch+json`), including `test`.
//! - [`merge_patch`]: RFC 7386 JSON merge patch (`application/merge-patch+json`).
//! - [`strategic`]: Kubernetes strategic merge patch (`application/strategic-merge-patch+json`)
//!   driven by a table of upstream `patchStrategy`/`patchMergeKey` tags ([`strategic::schema_for`]).
//! - [`apply`]: server-side apply (`application/apply-patch+yaml`) with `metadata.managedFields`
//!   in the upstream `FieldsV1` format.
//!
//! Everything here is a pure function over values: no I/O, no clock (callers stamp times), no
//! knowledge of storage. Errors carry messages close to kube-apiserver's and the HTTP status the
//! API server should answer with.
#![forbid(unsafe_code)]

pub mod apply;
pub mod error;
pub mod json_patch;
pub mod merge_patch;
pub mod strategic;

pub use apply::{
    BEFORE_FIRST_APPLY, FieldSet, ManagedFields, ManagedFieldsEntry, Operation, PathElement, apply,
    apply_to_subresource, update_managed_fields, update_managed_fields_of_subresource,
};
pub use error::{ApplyError, Conflict, Conflicts, PatchError};
pub use json_patch::{apply_json_patch, create_json_patch};
pub use merge_patch::{apply_merge_patch, create_merge_patch};
pub use strategic::{
    DeducedSchema, ListStrategy, MergeSchema, ObjectKind, SsaListType, apply_strategic_merge_patch,
    create_two_way_merge_patch, schema_for,
};
