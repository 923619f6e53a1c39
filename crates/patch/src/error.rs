//! Errors of the patch engines, worded as kube-apiserver words them.
//!
//! Each error knows the HTTP status code and `Status.reason` the API server should answer with
//! ([`PatchError::status_code`], [`ApplyError::status_code`]); the API server wraps the message
//! into a `Status` object.

use std::fmt;

/// A patch could not be decoded or does not apply to the object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not of the shape its content type requires (e.g. a JSON patch that is not
    /// an array of operations, an operation without `path`). kube-apiserver: 400 BadRequest.
    #[error("{message}")]
    MalformedPatch {
        /// What is wrong with the patch body.
        message: String,
    },
    /// A JSON patch operation is not one upstream can apply: unknown `op`, missing `path`,
    /// `from` or `value`. kube-apiserver: 422 (detected while applying).
    #[error("{message}")]
    InvalidOperation {
        /// What is wrong with the operation.
        message: String,
    },
    /// A JSON pointer in a JSON patch operation is not valid (does not start with `/`, bad `~`
    /// escape). kube-apiserver: 422 (the operation does not apply).
    #[error("invalid JSON pointer {pointer:?}: {reason}")]
    InvalidPointer {
        /// The pointer as written in the patch.
        pointer: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A JSON patch operation does not apply to the document (missing path, index out of range,
    /// moving a value into itself). kube-apiserver: 422 Invalid.
    #[error("{op} operation does not apply: {reason}")]
    OperationDoesNotApply {
        /// The operation name (`add`, `remove`, ...).
        op: &'static str,
        /// Why it does not apply, with the path involved.
        reason: String,
    },
    /// A JSON patch `test` operation found a different value (or no value) at its path.
    /// kube-apiserver: 422 Invalid. kube-rs' finalizer helper relies on this failing.
    #[error("testing value {path} failed: test failed")]
    TestFailed {
        /// The tested path.
        path: String,
    },
    /// The document or the patch is not a JSON object where one is required (upstream
    /// `ErrBadJSONDoc`). kube-apiserver: 400 BadRequest.
    #[error("invalid JSON document")]
    NotAnObject,
    /// A `$patch` directive has a value other than `replace`, `delete` or `merge` (upstream
    /// `ErrBadPatchType`). kube-apiserver passes it through uninterpreted: 500.
    #[error("unknown patch type: {patch_type} in map: {map}")]
    UnknownPatchType {
        /// The directive's value.
        patch_type: String,
        /// The map that carried it, as JSON.
        map: String,
    },
    /// An item of a list merged by key lacks the merge key (upstream `ErrNoMergeKey`).
    /// kube-apiserver passes it through uninterpreted: 500.
    #[error("map: {map} does not contain declared merge key: {merge_key}")]
    NoMergeKey {
        /// The offending list item, as JSON.
        map: String,
        /// The merge key of the list.
        merge_key: String,
    },
    /// `{"$patch": "merge"}` as a list item, which upstream does not implement.
    /// kube-apiserver: 500.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A list merged by key holds lists (upstream `ErrNoListOfLists`). kube-apiserver: 422.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// `$deleteFromPrimitiveList/<field>` is not a list of primitives (upstream
    /// `ErrBadPatchFormatForPrimitiveList`). kube-apiserver: 400 BadRequest.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// `$retainKeys` is not a list, or the patch sets a field its own `$retainKeys` does not
    /// list (upstream `ErrBadPatchFormatForRetainKeys`). kube-apiserver: 400 BadRequest.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// `$setElementOrder/<field>` is not a list, or its items lack the merge key (upstream
    /// `ErrBadPatchFormatForSetElementOrderList`). kube-apiserver: 400 BadRequest.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
}

impl PatchError {
    /// The HTTP status code kube-apiserver answers this error with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::MalformedPatch { .. }
            | PatchError::NotAnObject
            | PatchError::BadPrimitiveListFormat
            | PatchError::BadRetainKeysFormat
            | PatchError::BadSetElementOrderFormat => 400,
            PatchError::InvalidOperation { .. }
            | PatchError::InvalidPointer { .. }
            | PatchError::OperationDoesNotApply { .. }
            | PatchError::TestFailed { .. }
            | PatchError::ListOfLists => 422,
            PatchError::UnknownPatchType { .. }
            | PatchError::NoMergeKey { .. }
            | PatchError::MergeDirectiveInList => 500,
        }
    }

    /// The `Status.reason` matching [`PatchError::status_code`].
    pub fn reason(&self) -> &'static str {
        match self.status_code() {
            400 => "BadRequest",
            422 => "Invalid",
            _ => "InternalError",
        }
    }
}

/// One field owned by another manager whose value an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager that owns the field.
    pub manager: String,
    /// Whether that manager owns the field through `Apply` (true) or `Update` (false).
    pub applied: bool,
    /// The API version of the owning entry, when known.
    pub api_version: Option<String>,
    /// The time of the owning entry, when known (RFC 3339).
    pub time: Option<String>,
    /// The subresource of the owning entry (`status`), empty for the main resource.
    pub subresource: String,
    /// The field, in upstream wording: `.spec.replicas`, `.spec.containers[name="nginx"].image`.
    pub field: String,
}

impl Conflict {
    /// The owner as upstream prints it: `"mgr"` for an applier; `"mgr" using v1` (plus ` at
    /// <time>`) for an updater; ` with subresource "status"` when the entry is a subresource's.
    pub fn owner(&self) -> String {
        let mut owner = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            owner.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if !self.applied {
            owner.push_str(&format!(
                " using {}",
                self.api_version.as_deref().unwrap_or("")
            ));
            if let Some(time) = &self.time {
                owner.push_str(&format!(" at {time}"));
            }
        }
        owner
    }

    /// The message of the `FieldManagerConflict` cause for this conflict.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.owner())
    }
}

/// The conflicts of one apply, displayed as upstream's 409 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conflicts = &self.0;
        if conflicts.len() == 1 {
            let c = &conflicts[0];
            return write!(
                f,
                "Apply failed with 1 conflict: conflict with {}: {}",
                c.owner(),
                c.field
            );
        }
        let mut owners: Vec<String> = conflicts.iter().map(Conflict::owner).collect();
        owners.sort();
        owners.dedup();
        let mut lines = Vec::new();
        for owner in &owners {
            lines.push(format!("conflicts with {owner}:"));
            for c in conflicts.iter().filter(|c| &c.owner() == owner) {
                lines.push(format!("- {}", c.field));
            }
        }
        write!(
            f,
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    }
}

/// Server-side apply or managed-fields tracking failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the apply would change are owned by other managers and `force` was not set.
    /// kube-apiserver: 409 Conflict with one `FieldManagerConflict` cause per conflict
    /// ([`Conflict::cause_message`] as message, [`Conflict::field`] as field).
    #[error("{0}")]
    Conflicts(Conflicts),
    /// The applied configuration or the live object is not a JSON object. kube-apiserver: 400.
    #[error("invalid JSON document")]
    NotAnObject,
    /// An item of an associative list lacks one of the list's key fields and the field has no
    /// default. kube-apiserver: 400 BadRequest (`failed to create typed patch object`).
    #[error(
        "{path}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
    )]
    MissingListKey {
        /// The list, in upstream path wording.
        path: String,
        /// The missing key field.
        key: String,
    },
    /// Two items of an associative list in the applied configuration have the same key.
    /// kube-apiserver: 400 BadRequest.
    #[error("{path}: duplicate entries for key {key}")]
    DuplicateListKey {
        /// The list, in upstream path wording.
        path: String,
        /// The duplicated key, e.g. `[name="a"]`.
        key: String,
    },
    /// `metadata.managedFields` could not be decoded. kube-apiserver: 400 BadRequest.
    #[error("failed to decode managed fields: {message}")]
    InvalidManagedFields {
        /// What is wrong.
        message: String,
    },
}

impl ApplyError {
    /// The HTTP status code kube-apiserver answers this error with.
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            _ => 400,
        }
    }

    /// The `Status.reason` matching [`ApplyError::status_code`].
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::Conflicts(_) => "Conflict",
            _ => "BadRequest",
        }
    }

    /// The conflicts carried by this error (empty for other variants).
    pub fn conflicts(&self) -> &[Conflict] {
        match self {
            ApplyError::Conflicts(c) => &c.0,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict(manager: &str, applied: bool, field: &str) -> Conflict {
        Conflict {
            manager: manager.into(),
            applied,
            api_version: Some("v1".into()),
            time: None,
            subresource: String::new(),
            field: field.into(),
        }
    }

    #[test]
    fn single_conflict_message_matches_upstream() {
        let err = ApplyError::Conflicts(Conflicts(vec![conflict(
            "kubectl-client-side-apply",
            false,
            ".spec.resources.requests.storage",
        )]));
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.resources.requests.storage"
        );
        assert_eq!(err.status_code(), 409);
    }

    #[test]
    fn several_conflicts_are_grouped_by_manager() {
        let err = Conflicts(vec![
            conflict("b", true, ".spec.x"),
            conflict("a", false, ".spec.y"),
            conflict("b", true, ".spec.z"),
        ]);
        assert_eq!(
            err.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"a\" using v1:\n- .spec.y\nconflicts with \"b\":\n- .spec.x\n- .spec.z"
        );
    }

    #[test]
    fn owner_mentions_subresource_and_time() {
        let mut c = conflict("kcm", false, ".status.phase");
        c.subresource = "status".into();
        c.time = Some("2024-01-01T00:00:00Z".into());
        assert_eq!(
            c.cause_message(),
            "conflict with \"kcm\" with subresource \"status\" using v1 at 2024-01-01T00:00:00Z"
        );
    }
}
