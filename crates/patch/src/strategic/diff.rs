//! The two-way strategic merge patch kubectl computes between an original and a modified object
//! (upstream `CreateTwoWayMergePatch` with `$setElementOrder` lists).

use serde_json::{Map, Value};

use super::schema::{ListStrategy, MergeSchema};
use super::{DELETE_FROM_PRIMITIVE_LIST, PATCH_DIRECTIVE, RETAIN_KEYS, SET_ELEMENT_ORDER};
use crate::error::PatchError;

/// Computes a strategic merge patch that turns `original` into `modified` when applied with
/// [`super::apply_strategic_merge_patch`] and the same schema. Removed map keys become `null`,
/// removed keyed-list items `{"<key>": ..., "$patch": "delete"}`, removed set members go to
/// `$deleteFromPrimitiveList/<field>`, and every changed merged list carries
/// `$setElementOrder/<field>`; changed items of `retainKeys` lists carry `$retainKeys`.
/// `null` members of `modified` cannot be expressed (they mean "delete").
pub fn create_two_way_merge_patch(
    original: &Value,
    modified: &Value,
    schema: &dyn MergeSchema,
) -> Result<Value, PatchError> {
    let (Value::Object(original), Value::Object(modified)) = (original, modified) else {
        return Err(PatchError::NotAnObject);
    };
    let mut differ = Differ {
        schema,
        path: Vec::new(),
    };
    differ
        .diff_maps(original, modified, false)
        .map(Value::Object)
}

struct Differ<'a> {
    schema: &'a dyn MergeSchema,
    path: Vec<String>,
}

impl Differ<'_> {
    fn path(&self) -> Vec<&str> {
        self.path.iter().map(String::as_str).collect()
    }

    fn diff_maps(
        &mut self,
        original: &Map<String, Value>,
        modified: &Map<String, Value>,
        retain_keys: bool,
    ) -> Result<Map<String, Value>, PatchError> {
        let mut patch = Map::new();
        for (key, new) in modified {
            let Some(old) = original.get(key) else {
                patch.insert(key.clone(), new.clone());
                continue;
            };
            if old == new {
                continue;
            }
            self.path.push(key.clone());
            let result = match (old, new) {
                (Value::Object(old), Value::Object(new)) => {
                    let sub = self.diff_maps(old, new, false)?;
                    if !sub.is_empty() {
                        patch.insert(key.clone(), Value::Object(sub));
                    }
                    Ok(())
                }
                (Value::Array(old), Value::Array(new)) => {
                    self.diff_lists(&mut patch, key, old, new)
                }
                _ => {
                    patch.insert(key.clone(), new.clone());
                    Ok(())
                }
            };
            self.path.pop();
            result?;
        }
        for key in original.keys().filter(|k| !modified.contains_key(*k)) {
            patch.insert(key.clone(), Value::Null);
        }
        if retain_keys && !patch.is_empty() {
            let mut keys: Vec<&String> = modified.keys().collect();
            keys.sort();
            patch.insert(
                RETAIN_KEYS.to_owned(),
                Value::Array(keys.into_iter().map(|k| Value::String(k.clone())).collect()),
            );
        }
        Ok(patch)
    }

    fn diff_lists(
        &mut self,
        patch: &mut Map<String, Value>,
        key: &str,
        old: &[Value],
        new: &[Value],
    ) -> Result<(), PatchError> {
        let strategy = self.schema.list_strategy(&self.path());
        let all_primitive = old
            .iter()
            .chain(new)
            .all(|v| !v.is_object() && !v.is_array());
        match strategy {
            ListStrategy::MergePrimitives if all_primitive => {
                let added: Vec<Value> = new.iter().filter(|v| !old.contains(v)).cloned().collect();
                let deleted: Vec<Value> =
                    old.iter().filter(|v| !new.contains(v)).cloned().collect();
                if !added.is_empty() {
                    patch.insert(key.to_owned(), Value::Array(added));
                }
                if !deleted.is_empty() {
                    patch.insert(
                        format!("{DELETE_FROM_PRIMITIVE_LIST}{key}"),
                        Value::Array(deleted),
                    );
                }
                patch.insert(
                    format!("{SET_ELEMENT_ORDER}{key}"),
                    Value::Array(new.to_vec()),
                );
                Ok(())
            }
            ListStrategy::MergeByKey(merge_key) if !all_primitive => {
                let key_of = |item: &Value| -> Result<Value, PatchError> {
                    item.get(merge_key)
                        .cloned()
                        .ok_or_else(|| PatchError::NoMergeKey {
                            map: item.to_string(),
                            merge_key: merge_key.to_owned(),
                        })
                };
                let retain = self.schema.retain_keys(&self.path());
                let mut changes = Vec::new();
                let mut order = Vec::with_capacity(new.len());
                let old_keys = old.iter().map(key_of).collect::<Result<Vec<_>, _>>()?;
                for item in new {
                    let id = key_of(item)?;
                    let mut entry = Map::new();
                    entry.insert(merge_key.to_owned(), id.clone());
                    order.push(Value::Object(entry));
                    match old_keys.iter().position(|k| *k == id) {
                        Some(pos) if old[pos] == *item => {}
                        Some(pos) => match (&old[pos], item) {
                            (Value::Object(o), Value::Object(n)) => {
                                let mut sub = self.diff_maps(o, n, retain)?;
                                sub.insert(merge_key.to_owned(), id);
                                changes.push(Value::Object(sub));
                            }
                            _ => changes.push(item.clone()),
                        },
                        None => changes.push(item.clone()),
                    }
                }
                let new_keys = new.iter().map(key_of).collect::<Result<Vec<_>, _>>()?;
                for id in old_keys.iter().filter(|k| !new_keys.contains(k)) {
                    let mut deletion = Map::new();
                    deletion.insert(merge_key.to_owned(), id.clone());
                    deletion.insert(PATCH_DIRECTIVE.to_owned(), Value::String("delete".into()));
                    changes.push(Value::Object(deletion));
                }
                if !changes.is_empty() {
                    patch.insert(key.to_owned(), Value::Array(changes));
                }
                patch.insert(format!("{SET_ELEMENT_ORDER}{key}"), Value::Array(order));
                Ok(())
            }
            _ => {
                patch.insert(key.to_owned(), Value::Array(new.to_vec()));
                Ok(())
            }
        }
    }
}
