//! Kubernetes strategic merge patch, as kubectl sends it (`kubectl patch`, client-side
//! `kubectl apply`).
//!
//! Maps merge recursively and `null` deletes a key. Lists follow the strategy the kind's
//! [`MergeSchema`] gives for their field: replaced, merged by a key (containers by `name`, volume
//! mounts by `mountPath`, ...), or united as sets of primitives (finalizers). Directives:
//!
//! - `$patch: replace` in a map replaces the map; `{"$patch": "replace"}` as a list item replaces
//!   the list with the other items; `$patch: delete` in a map deletes it, in a keyed list item
//!   deletes the item with that key; `$patch: merge` is the default behaviour.
//! - `$retainKeys: [...]` drops every key of the original map that is not listed.
//! - `$deleteFromPrimitiveList/<field>: [...]` removes values from a primitive list.
//! - `$setElementOrder/<field>: [...]` orders the merged list: listed items in the given order,
//!   items only the server has keep their place relative to them.
//!
//! [`create_two_way_merge_patch`] computes what kubectl sends for an (original, modified) pair.

mod builtin_tables;
mod diff;
pub mod schema;

use serde_json::{Map, Value};

use crate::error::PatchError;

pub use builtin_tables::schema_for;
pub use diff::create_two_way_merge_patch;
pub use schema::{
    DeducedSchema, FieldDef, FieldShape, ListDef, ListMapKey, ListStrategy, MergeSchema,
    ObjectKind, SsaListType, TableSchema, TypeDef,
};

/// `$patch`: the directive key.
pub(crate) const PATCH_DIRECTIVE: &str = "$patch";
/// `$retainKeys`: the keys of the original map to keep.
pub(crate) const RETAIN_KEYS: &str = "$retainKeys";
/// `$setElementOrder/<field>`: the order of a merged list.
pub(crate) const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
/// `$deleteFromPrimitiveList/<field>`: values to remove from a primitive list.
pub(crate) const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original` using `schema` for list strategies.
/// Both must be JSON objects.
pub fn apply_strategic_merge_patch(
    original: &Value,
    patch: &Value,
    schema: &dyn MergeSchema,
) -> Result<Value, PatchError> {
    let (Value::Object(original), Value::Object(patch)) = (original, patch) else {
        return Err(PatchError::NotAnObject);
    };
    let mut merger = Merger {
        schema,
        path: Vec::new(),
    };
    match directive(patch)? {
        Some(Directive::Delete) => Ok(Value::Object(Map::new())),
        _ => merger.merge_map(original.clone(), patch).map(Value::Object),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Replace,
    Delete,
    Merge,
}

/// The `$patch` directive of a patch map, if any.
fn directive(patch: &Map<String, Value>) -> Result<Option<Directive>, PatchError> {
    let Some(value) = patch.get(PATCH_DIRECTIVE) else {
        return Ok(None);
    };
    match value.as_str() {
        Some("replace") => Ok(Some(Directive::Replace)),
        Some("delete") => Ok(Some(Directive::Delete)),
        Some("merge") => Ok(Some(Directive::Merge)),
        _ => Err(PatchError::UnknownPatchType {
            patch_type: value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned),
            map: Value::Object(patch.clone()).to_string(),
        }),
    }
}

/// Whether a key is a directive rather than data.
fn is_directive_key(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

fn is_primitive(value: &Value) -> bool {
    !value.is_object() && !value.is_array()
}

struct Merger<'a> {
    schema: &'a dyn MergeSchema,
    path: Vec<String>,
}

impl Merger<'_> {
    fn path(&self) -> Vec<&str> {
        self.path.iter().map(String::as_str).collect()
    }

    fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
    ) -> Result<Map<String, Value>, PatchError> {
        match directive(patch)? {
            Some(Directive::Replace) => {
                let mut replacement = patch.clone();
                replacement.shift_remove(PATCH_DIRECTIVE);
                return self.merge_map(Map::new(), &replacement);
            }
            Some(Directive::Delete) => return Ok(Map::new()),
            Some(Directive::Merge) | None => {}
        }

        if let Some(retained) = patch.get(RETAIN_KEYS) {
            let retained = retained
                .as_array()
                .filter(|keys| keys.iter().all(Value::is_string))
                .ok_or(PatchError::BadRetainKeysFormat)?;
            let retained: Vec<&str> = retained.iter().filter_map(Value::as_str).collect();
            let content_matches = patch
                .iter()
                .filter(|(k, v)| !is_directive_key(k) && !v.is_null())
                .all(|(k, _)| retained.contains(&k.as_str()));
            if !content_matches {
                return Err(PatchError::BadRetainKeysFormat);
            }
            original.retain(|k, _| retained.contains(&k.as_str()));
        }

        for (key, values) in patch {
            let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
                continue;
            };
            let values = values
                .as_array()
                .filter(|values| values.iter().all(is_primitive))
                .ok_or(PatchError::BadPrimitiveListFormat)?;
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !values.contains(item));
            }
        }

        let mut lists_before_merge: Vec<(String, Vec<Value>)> = Vec::new();
        for (key, value) in patch {
            if is_directive_key(key) {
                continue;
            }
            if value.is_null() {
                original.shift_remove(key);
                continue;
            }
            if let Some(Value::Array(items)) = original.get(key)
                && patch.contains_key(&format!("{SET_ELEMENT_ORDER}{key}"))
            {
                lists_before_merge.push((key.clone(), items.clone()));
            }
            self.path.push(key.clone());
            let merged = self.merge_value(original.get(key), value);
            self.path.pop();
            match merged? {
                Some(merged) => {
                    original.insert(key.clone(), merged);
                }
                None => {
                    original.shift_remove(key);
                }
            }
        }

        for (key, order) in patch {
            let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let order = order
                .as_array()
                .ok_or(PatchError::BadSetElementOrderFormat)?;
            let server_order = lists_before_merge
                .iter()
                .find(|(k, _)| k == field)
                .map(|(_, items)| items.clone());
            self.path.push(field.to_owned());
            let strategy = self.schema.list_strategy(&self.path());
            self.path.pop();
            if let Some(Value::Array(items)) = original.get_mut(field) {
                let server_order = server_order.unwrap_or_else(|| items.clone());
                let merged = std::mem::take(items);
                *items = order_elements(merged, order, &server_order, strategy)?;
            }
        }
        Ok(original)
    }

    /// Merges one patch value into the original's value at the current path; `None` deletes it.
    fn merge_value(
        &mut self,
        original: Option<&Value>,
        patch: &Value,
    ) -> Result<Option<Value>, PatchError> {
        match patch {
            Value::Object(patch_map) => {
                // As upstream, `$patch: delete` empties the map rather than removing the key.
                if directive(patch_map)? == Some(Directive::Delete) {
                    return Ok(Some(Value::Object(Map::new())));
                }
                let base = match original {
                    Some(Value::Object(map)) => map.clone(),
                    _ => Map::new(),
                };
                self.merge_map(base, patch_map)
                    .map(|m| Some(Value::Object(m)))
            }
            Value::Array(patch_items) => {
                let base = match original {
                    Some(Value::Array(items)) => items.as_slice(),
                    _ => &[],
                };
                self.merge_list(base, patch_items)
                    .map(|l| Some(Value::Array(l)))
            }
            _ => Ok(Some(patch.clone())),
        }
    }

    fn merge_list(
        &mut self,
        original: &[Value],
        patch: &[Value],
    ) -> Result<Vec<Value>, PatchError> {
        let strategy = self.schema.list_strategy(&self.path());
        if strategy == ListStrategy::Replace {
            return Ok(patch.to_vec());
        }
        if original.is_empty() && patch.is_empty() {
            return Ok(Vec::new());
        }
        if original.iter().chain(patch).any(Value::is_array) {
            return Err(PatchError::ListOfLists);
        }
        let maps = original
            .iter()
            .chain(patch)
            .next()
            .is_some_and(Value::is_object);
        if !maps {
            let mut merged = original.to_vec();
            for item in patch {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            return Ok(normalize_order(merged, patch, original, &|v: &Value| {
                Some(v.clone())
            }));
        }
        let ListStrategy::MergeByKey(merge_key) = strategy else {
            return Err(PatchError::NoMergeKey {
                map: Value::Array(patch.to_vec()).to_string(),
                merge_key: String::new(),
            });
        };
        let no_merge_key = |item: &Value| PatchError::NoMergeKey {
            map: item.to_string(),
            merge_key: merge_key.to_owned(),
        };

        // Special items first: deletions by key, `$patch: replace`.
        let mut server = original.to_vec();
        let mut items = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Value::Object(item_map) = item else {
                return Err(no_merge_key(item));
            };
            match directive(item_map)? {
                None => items.push(item_map),
                Some(Directive::Delete) => {
                    let key = item_map.get(merge_key).ok_or_else(|| no_merge_key(item))?;
                    server.retain(|o| o.get(merge_key) != Some(key));
                }
                Some(Directive::Replace) => replace = true,
                Some(Directive::Merge) => return Err(PatchError::MergeDirectiveInList),
            }
        }
        if replace {
            return items
                .into_iter()
                .map(|m| self.merge_map(Map::new(), m).map(Value::Object))
                .collect();
        }

        let mut merged = server.clone();
        for item_map in &items {
            let key = item_map
                .get(merge_key)
                .ok_or_else(|| no_merge_key(&Value::Object((*item_map).clone())))?;
            match merged.iter().position(|o| o.get(merge_key) == Some(key)) {
                Some(pos) => {
                    let base = match &merged[pos] {
                        Value::Object(m) => m.clone(),
                        _ => Map::new(),
                    };
                    merged[pos] = Value::Object(self.merge_map(base, item_map)?);
                }
                None => merged.push(Value::Object(self.merge_map(Map::new(), item_map)?)),
            }
        }
        let order: Vec<Value> = items
            .into_iter()
            .map(|m| Value::Object(m.clone()))
            .collect();
        let identity = |v: &Value| v.get(merge_key).cloned();
        Ok(normalize_order(merged, &order, &server, &identity))
    }
}

/// Orders a merged list by a `$setElementOrder` list (see [`normalize_order`]).
fn order_elements(
    merged: Vec<Value>,
    order: &[Value],
    server_order: &[Value],
    strategy: ListStrategy,
) -> Result<Vec<Value>, PatchError> {
    let maps = merged.iter().chain(server_order).any(Value::is_object);
    for entry in order {
        let valid = match strategy {
            ListStrategy::MergeByKey(key) if maps => entry.get(key).is_some(),
            _ => is_primitive(entry),
        };
        if !valid {
            return Err(PatchError::BadSetElementOrderFormat);
        }
    }
    Ok(match strategy {
        ListStrategy::MergeByKey(key) if maps => {
            normalize_order(merged, order, server_order, &|v: &Value| {
                v.get(key).cloned()
            })
        }
        _ => normalize_order(merged, order, server_order, &|v: &Value| Some(v.clone())),
    })
}

/// Upstream's ordering of a merged list: the items named in `order` (the patch list or the
/// `$setElementOrder` list) come in that order; the other items (only on the server) keep their
/// server order and are interleaved: a server-only item goes before an ordered item when both
/// have a position in `server_order` and its position is smaller.
fn normalize_order(
    merged: Vec<Value>,
    order: &[Value],
    server_order: &[Value],
    identity: &dyn Fn(&Value) -> Option<Value>,
) -> Vec<Value> {
    let mut slots: Vec<Option<Value>> = merged.into_iter().map(Some).collect();
    let mut ordered = Vec::new();
    for id in order.iter().filter_map(identity) {
        let found = slots
            .iter()
            .position(|slot| slot.as_ref().and_then(identity).as_ref() == Some(&id));
        if let Some(pos) = found {
            ordered.extend(slots[pos].take());
        }
    }
    let server_only: Vec<Value> = slots.into_iter().flatten().collect();
    let server_index = |item: &Value| -> Option<usize> {
        let id = identity(item)?;
        server_order
            .iter()
            .position(|s| identity(s).as_ref() == Some(&id))
    };
    let mut result = Vec::with_capacity(ordered.len() + server_only.len());
    let mut ordered = ordered.into_iter().peekable();
    let mut server_only = server_only.into_iter().peekable();
    loop {
        let take_server_item = match (server_only.peek(), ordered.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(s), Some(o)) => matches!(
                (server_index(s), server_index(o)),
                (Some(si), Some(oi)) if si < oi
            ),
        };
        result.extend(if take_server_item {
            server_only.next()
        } else {
            ordered.next()
        });
    }
    result
}

#[cfg(test)]
mod tests;
