//! `metadata.managedFields`: one entry per (manager, operation, subresource[, apiVersion]),
//! each with the set of fields that manager owns, in the upstream wire format.

use serde_json::{Map, Value};

use super::fieldset::FieldSet;
use crate::error::ApplyError;

/// How a manager came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or (non-apply) patch.
    Update,
}

impl Operation {
    /// The wire name (`Apply`, `Update`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedFieldsEntry {
    /// The field manager (`kubectl`, `kube-controller-manager`, ...).
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The API version the manager used (`v1`, `storage.k8s.io/v1`).
    pub api_version: Option<String>,
    /// When the entry last changed (RFC 3339); `None` until the caller stamps it
    /// ([`ManagedFields::stamp_time`]).
    pub time: Option<String>,
    /// The subresource the manager wrote through (`status`), empty for the main resource.
    pub subresource: String,
    /// The fields the manager owns.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Whether this entry is the one `manager` writes with `operation` through `subresource`
    /// (Update entries are also per API version, as upstream).
    pub fn is_for(
        &self,
        manager: &str,
        operation: Operation,
        subresource: &str,
        api_version: Option<&str>,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == Operation::Apply || self.api_version.as_deref() == api_version)
    }
}

/// All entries of an object's `metadata.managedFields`, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagedFields {
    /// The entries.
    pub entries: Vec<ManagedFieldsEntry>,
}

impl ManagedFields {
    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads `metadata.managedFields` of an object (absent → empty).
    pub fn from_object(object: &Value) -> Result<ManagedFields, ApplyError> {
        match object.pointer("/metadata/managedFields") {
            None | Some(Value::Null) => Ok(ManagedFields::default()),
            Some(list) => ManagedFields::from_value(list),
        }
    }

    /// Decodes the JSON array of `metadata.managedFields`.
    pub fn from_value(value: &Value) -> Result<ManagedFields, ApplyError> {
        let invalid = |message: String| ApplyError::InvalidManagedFields { message };
        let list = value
            .as_array()
            .ok_or_else(|| invalid("managedFields is not a list".into()))?;
        let mut entries = Vec::with_capacity(list.len());
        for item in list {
            let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
            let operation = match text("operation").as_deref() {
                Some("Apply") => Operation::Apply,
                Some("Update") => Operation::Update,
                other => return Err(invalid(format!("unknown operation {other:?}"))),
            };
            if let Some(kind) = text("fieldsType")
                && kind != "FieldsV1"
            {
                return Err(invalid(format!("unknown fieldsType {kind:?}")));
            }
            let fields = match item.get("fieldsV1") {
                Some(v1) => FieldSet::from_fields_v1(v1)?,
                None => FieldSet::new(),
            };
            entries.push(ManagedFieldsEntry {
                manager: text("manager").unwrap_or_default(),
                operation,
                api_version: text("apiVersion"),
                time: text("time"),
                subresource: text("subresource").unwrap_or_default(),
                fields,
            });
        }
        Ok(ManagedFields { entries })
    }

    /// The JSON array for `metadata.managedFields`, fields in upstream order.
    pub fn to_value(&self) -> Value {
        let entries = self.entries.iter().map(|entry| {
            let mut out = Map::new();
            out.insert("manager".into(), Value::String(entry.manager.clone()));
            out.insert(
                "operation".into(),
                Value::String(entry.operation.as_str().into()),
            );
            if let Some(api_version) = &entry.api_version {
                out.insert("apiVersion".into(), Value::String(api_version.clone()));
            }
            if let Some(time) = &entry.time {
                out.insert("time".into(), Value::String(time.clone()));
            }
            out.insert("fieldsType".into(), Value::String("FieldsV1".into()));
            out.insert("fieldsV1".into(), entry.fields.to_fields_v1());
            if !entry.subresource.is_empty() {
                out.insert(
                    "subresource".into(),
                    Value::String(entry.subresource.clone()),
                );
            }
            Value::Object(out)
        });
        Value::Array(entries.collect())
    }

    /// Writes the entries into `metadata.managedFields` of `object` (removing the field when
    /// there is none). Does nothing to a non-object.
    pub fn write_into(&self, object: &mut Value) {
        let Some(root) = object.as_object_mut() else {
            return;
        };
        let metadata = root
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(metadata) = metadata.as_object_mut() else {
            return;
        };
        if self.entries.is_empty() {
            metadata.shift_remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), self.to_value());
        }
    }

    /// Sets `time` on every entry that has none (the entries the last apply or update changed).
    pub fn stamp_time(&mut self, now: &str) {
        for entry in self.entries.iter_mut().filter(|e| e.time.is_none()) {
            entry.time = Some(now.to_owned());
        }
    }

    /// The entry of `manager` for `operation` on the main resource, if any.
    pub fn entry(&self, manager: &str, operation: Operation) -> Option<&ManagedFieldsEntry> {
        self.entries
            .iter()
            .find(|e| e.manager == manager && e.operation == operation && e.subresource.is_empty())
    }

    /// Drops entries that own nothing.
    pub(crate) fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.fields.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn managed_fields_round_trip_in_upstream_shape() {
        let wire = json!([{
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2024-05-01T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:phase": {}}},
            "subresource": "status"
        }]);
        let managed = ManagedFields::from_value(&wire).unwrap();
        assert_eq!(managed.entries[0].subresource, "status");
        assert_eq!(managed.to_value(), wire);
        let mut object = json!({"metadata": {"name": "x"}});
        managed.write_into(&mut object);
        assert_eq!(ManagedFields::from_object(&object).unwrap(), managed);
        ManagedFields::default().write_into(&mut object);
        assert!(object.pointer("/metadata/managedFields").is_none());
    }

    #[test]
    fn unknown_operation_is_rejected_and_time_stamped_once() {
        assert!(
            ManagedFields::from_value(&json!([{"manager": "m", "operation": "Frob"}])).is_err()
        );
        let mut managed = ManagedFields::from_value(&json!([
            {"manager": "a", "operation": "Apply", "time": "old", "fieldsV1": {"f:a": {}}},
            {"manager": "b", "operation": "Update", "fieldsV1": {"f:b": {}}}
        ]))
        .unwrap();
        managed.stamp_time("now");
        assert_eq!(managed.entries[0].time.as_deref(), Some("old"));
        assert_eq!(managed.entries[1].time.as_deref(), Some("now"));
    }
}
