//! Reading and writing the standard parts of an object held as JSON (`metadata`, `status`).

use serde_json::{Map, Value};

/// Access to `metadata` fields of an object held as a JSON value.
pub trait ObjectExt {
    fn meta(&self) -> Option<&Map<String, Value>>;
    fn meta_mut(&mut self) -> &mut Map<String, Value>;

    fn meta_str(&self, field: &str) -> Option<&str> {
        self.meta()?.get(field)?.as_str()
    }
    fn name(&self) -> Option<&str> {
        self.meta_str("name")
    }
    fn namespace(&self) -> Option<&str> {
        self.meta_str("namespace")
    }
    fn uid(&self) -> Option<&str> {
        self.meta_str("uid")
    }
    fn deletion_timestamp(&self) -> Option<&str> {
        self.meta_str("deletionTimestamp")
    }
    fn finalizers(&self) -> Vec<String> {
        self.meta()
            .and_then(|m| m.get("finalizers"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn set_meta(&mut self, field: &str, value: Value) {
        self.meta_mut().insert(field.to_string(), value);
    }
    fn remove_meta(&mut self, field: &str) -> Option<Value> {
        self.meta_mut().remove(field)
    }
    fn set_finalizers(&mut self, finalizers: &[String]) {
        if finalizers.is_empty() {
            self.remove_meta("finalizers");
        } else {
            self.set_meta("finalizers", Value::from(finalizers.to_vec()));
        }
    }
    fn add_finalizer(&mut self, finalizer: &str) {
        let mut all = self.finalizers();
        if !all.iter().any(|f| f == finalizer) {
            all.push(finalizer.to_string());
            self.set_finalizers(&all);
        }
    }
    fn labels(&self) -> Option<&Map<String, Value>> {
        self.meta()?.get("labels")?.as_object()
    }
    fn annotation(&self, key: &str) -> Option<&str> {
        self.meta()?.get("annotations")?.get(key)?.as_str()
    }
    /// The owner references, as (uid, blockOwnerDeletion) pairs.
    fn owner_uids(&self) -> Vec<(String, bool)> {
        self.meta()
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| {
                        let uid = r.get("uid")?.as_str()?.to_string();
                        let block = r
                            .get("blockOwnerDeletion")
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        Some((uid, block))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl ObjectExt for Value {
    fn meta(&self) -> Option<&Map<String, Value>> {
        self.get("metadata")?.as_object()
    }

    fn meta_mut(&mut self) -> &mut Map<String, Value> {
        if !self.is_object() {
            *self = Value::Object(Map::new());
        }
        let obj = self.as_object_mut().expect("made an object above");
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        meta.as_object_mut().expect("made an object above")
    }
}

/// The object without `metadata` and `status`: what a change of `metadata.generation` tracks.
pub fn spec_part(obj: &Value) -> Map<String, Value> {
    let mut out = obj.as_object().cloned().unwrap_or_default();
    for skip in ["metadata", "status", "apiVersion", "kind"] {
        out.remove(skip);
    }
    out
}

/// The current time as Kubernetes writes timestamps (RFC 3339, seconds, `Z`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finalizers_add_once_and_clear_removes_the_field() {
        let mut obj = json!({"metadata": {"name": "a"}});
        obj.add_finalizer("x");
        obj.add_finalizer("x");
        assert_eq!(obj.finalizers(), vec!["x".to_string()]);
        obj.set_finalizers(&[]);
        assert!(obj["metadata"].get("finalizers").is_none());
    }

    #[test]
    fn spec_part_ignores_metadata_and_status() {
        let a = json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"p": 1}});
        let b = json!({"metadata": {"name": "b"}, "spec": {"x": 1}, "status": {"p": 2}});
        assert_eq!(spec_part(&a), spec_part(&b));
    }
}
