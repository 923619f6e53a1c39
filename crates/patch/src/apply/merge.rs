//! The structured operations of server-side apply over JSON values, guided by a
//! [`MergeSchema`]: which fields a value sets, what changed between two values, merging an
//! applied configuration into a live object, and removing fields a manager gave up.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, PathElement, display_path};
use crate::error::ApplyError;
use crate::strategic::{ListMapKey, MergeSchema, ObjectKind, SsaListType};

/// What changed between two values (upstream `Comparison`).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    /// Paths present only in the new value. Maps and set lists that appear are included
    /// themselves (the `.` of `fieldsV1`); structs and associative lists are not.
    pub added: FieldSet,
    /// Leaf paths present in both with different values.
    pub modified: FieldSet,
    /// Paths present only in the old value (for a value that changed type, e.g. a map
    /// replaced by a scalar, the paths below the old value).
    pub removed: FieldSet,
}

/// A walk over values that tracks the schema path (field names) and the field path.
pub(crate) struct Walker<'a> {
    schema: &'a dyn MergeSchema,
    schema_path: Vec<String>,
    path: Vec<PathElement>,
}

enum Shape {
    Granular(ObjectKind),
    List(SsaListType),
    Leaf,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(schema: &'a dyn MergeSchema) -> Self {
        Walker {
            schema,
            schema_path: Vec::new(),
            path: Vec::new(),
        }
    }

    fn schema_path(&self) -> Vec<&str> {
        self.schema_path.iter().map(String::as_str).collect()
    }

    fn shape(&self, value: &Value) -> Shape {
        match value {
            Value::Object(_) if self.path.is_empty() => match self.schema.object_kind(&[]) {
                ObjectKind::Atomic => Shape::Granular(ObjectKind::Struct),
                kind => Shape::Granular(kind),
            },
            Value::Object(_) => match self.schema.object_kind(&self.schema_path()) {
                ObjectKind::Atomic => Shape::Leaf,
                kind => Shape::Granular(kind),
            },
            Value::Array(_) => match self.schema.ssa_list_type(&self.schema_path()) {
                SsaListType::Atomic => Shape::Leaf,
                list => Shape::List(list),
            },
            _ => Shape::Leaf,
        }
    }

    fn descend_field(&mut self, name: &str) {
        self.schema_path.push(name.to_owned());
        self.path.push(PathElement::Field(name.to_owned()));
    }

    fn ascend_field(&mut self) {
        self.schema_path.pop();
        self.path.pop();
    }

    fn insert_here(&self, set: &mut FieldSet) {
        set.insert(&self.path);
    }

    /// The element identifying an item of an associative list.
    fn item_element(&self, item: &Value, keys: &[ListMapKey]) -> Result<PathElement, ApplyError> {
        let mut fields = Vec::with_capacity(keys.len());
        for key in keys {
            let value = match (item.get(key.name), key.default) {
                (Some(v), _) if !v.is_null() => v.clone(),
                (_, Some(default)) => Value::String(default.to_owned()),
                _ => {
                    return Err(ApplyError::MissingListKey {
                        path: display_path(&self.path),
                        key: key.name.to_owned(),
                    });
                }
            };
            fields.push((key.name, value));
        }
        Ok(PathElement::key(fields))
    }

    /// The elements of a granular list's items, or `None` when the items cannot be identified
    /// (the list is then treated as atomic).
    fn elements(&self, items: &[Value], list: SsaListType) -> Option<Vec<PathElement>> {
        items
            .iter()
            .map(|item| match list {
                SsaListType::Set if !item.is_object() && !item.is_array() => {
                    Some(PathElement::value(item))
                }
                SsaListType::Map(keys) => self.item_element(item, keys).ok(),
                _ => None,
            })
            .collect()
    }

    /// The fields an applied configuration sets (upstream `ToFieldSet`). Items of associative
    /// lists must carry their keys, and keys must be unique.
    pub(crate) fn config_field_set(&mut self, config: &Value) -> Result<FieldSet, ApplyError> {
        let mut set = FieldSet::new();
        self.collect(config, &mut set, true)?;
        Ok(set)
    }

    /// The fields a live object holds, for attributing an object without managed fields.
    pub(crate) fn object_field_set(&mut self, object: &Value) -> FieldSet {
        let mut set = FieldSet::new();
        // Lenient collection never fails: unidentifiable lists are owned as a whole.
        let _ = self.collect(object, &mut set, false);
        set
    }

    fn collect(
        &mut self,
        value: &Value,
        set: &mut FieldSet,
        strict: bool,
    ) -> Result<(), ApplyError> {
        match (self.shape(value), value) {
            (Shape::Granular(kind), Value::Object(map)) => {
                for (key, child) in map {
                    self.descend_field(key);
                    let result = self.collect(child, set, strict);
                    // Map entries are owned themselves, and so are struct fields set to null or
                    // to an empty map.
                    let empty_map = child.as_object().is_some_and(Map::is_empty);
                    if kind == ObjectKind::Map || empty_map || child.is_null() {
                        self.insert_here(set);
                    }
                    self.ascend_field();
                    result?;
                }
                Ok(())
            }
            (Shape::List(list), Value::Array(items)) => {
                let elements = match (list, strict) {
                    (SsaListType::Map(keys), true) => {
                        let elements = items
                            .iter()
                            .map(|item| self.item_element(item, keys))
                            .collect::<Result<Vec<_>, _>>()?;
                        for (i, element) in elements.iter().enumerate() {
                            if elements[..i].contains(element) {
                                return Err(ApplyError::DuplicateListKey {
                                    path: display_path(&self.path),
                                    key: element.to_string(),
                                });
                            }
                        }
                        Some(elements)
                    }
                    _ => self.elements(items, list),
                };
                let Some(elements) = elements else {
                    self.insert_here(set);
                    return Ok(());
                };
                for (element, item) in elements.into_iter().zip(items) {
                    self.path.push(element);
                    self.insert_here(set);
                    let result = match list {
                        SsaListType::Map(_) => self.collect(item, set, strict),
                        _ => Ok(()),
                    };
                    self.path.pop();
                    result?;
                }
                Ok(())
            }
            _ => {
                self.insert_here(set);
                Ok(())
            }
        }
    }

    /// Compares two values (either may be absent) at the current path.
    ///
    /// As upstream, a value that appears or disappears is itself in `added`/`removed` (the `.`
    /// of `fieldsV1`), except where Go always serializes it: a struct (or a list declared
    /// without `omitempty`) whose parent exists on both sides is never "added", so `fresh` tells
    /// whether the nearest map entry or list item above was itself added or removed.
    pub(crate) fn compare(
        &mut self,
        old: Option<&Value>,
        new: Option<&Value>,
        fresh: bool,
        out: &mut Comparison,
    ) {
        let Some(probe) = new.or(old) else {
            return;
        };
        let same_type = match (old, new) {
            (Some(a), Some(b)) => std::mem::discriminant(a) == std::mem::discriminant(b),
            _ => true,
        };
        if !same_type && let Some(old) = old {
            let mut below = FieldSet::new();
            let _ = self.collect(old, &mut below, false);
            out.removed = out.removed.union(&below);
        }
        let shape = if same_type {
            self.shape(probe)
        } else {
            Shape::Leaf
        };
        match (shape, probe) {
            (Shape::Granular(kind), Value::Object(_)) => {
                let empty = Map::new();
                let always_present = kind == ObjectKind::Struct && !fresh;
                let old_map = old.and_then(Value::as_object);
                let new_map = new.and_then(Value::as_object);
                let both_empty =
                    old_map.is_none_or(Map::is_empty) && new_map.is_none_or(Map::is_empty);
                if !always_present && both_empty {
                    return self.compare_leaf(old, new, out);
                }
                let appeared = old_map.is_none() || new_map.is_none();
                if !always_present && appeared && !self.path.is_empty() {
                    self.insert_here(if old_map.is_none() {
                        &mut out.added
                    } else {
                        &mut out.removed
                    });
                }
                let children_fresh = fresh || (appeared && kind != ObjectKind::Struct);
                let old_map = old_map.unwrap_or(&empty);
                let new_map = new_map.unwrap_or(&empty);
                let keys: Vec<&String> = old_map
                    .keys()
                    .chain(new_map.keys().filter(|k| !old_map.contains_key(*k)))
                    .collect();
                for key in keys {
                    self.descend_field(key);
                    self.compare(old_map.get(key), new_map.get(key), children_fresh, out);
                    self.ascend_field();
                }
            }
            (Shape::List(list), Value::Array(_)) => {
                let no_items: Vec<Value> = Vec::new();
                let old_items = old.and_then(Value::as_array).unwrap_or(&no_items);
                let new_items = new.and_then(Value::as_array).unwrap_or(&no_items);
                let always_present =
                    !fresh && self.schema.list_always_serialized(&self.schema_path());
                if old_items.is_empty() && new_items.is_empty() && !always_present {
                    return self.compare_leaf(old, new, out);
                }
                let (Some(old_elements), Some(new_elements)) = (
                    self.elements(old_items, list),
                    self.elements(new_items, list),
                ) else {
                    return self.compare_leaf(old, new, out);
                };
                if !always_present {
                    if old.is_none() {
                        self.insert_here(&mut out.added);
                    }
                    if new.is_none() {
                        self.insert_here(&mut out.removed);
                    }
                }
                let mut seen: Vec<&PathElement> = Vec::new();
                for element in old_elements.iter().chain(&new_elements) {
                    if seen.contains(&element) {
                        continue;
                    }
                    seen.push(element);
                    let old_item = old_elements
                        .iter()
                        .position(|e| e == element)
                        .map(|i| &old_items[i]);
                    let new_item = new_elements
                        .iter()
                        .position(|e| e == element)
                        .map(|i| &new_items[i]);
                    self.path.push(element.clone());
                    match (old_item, new_item) {
                        (None, Some(_)) => self.insert_here(&mut out.added),
                        (Some(_), None) => self.insert_here(&mut out.removed),
                        _ => {}
                    }
                    if matches!(list, SsaListType::Map(_)) {
                        let item_fresh = old_item.is_none() || new_item.is_none();
                        self.compare_item(old_item, new_item, item_fresh, out);
                    }
                    self.path.pop();
                }
            }
            _ => self.compare_leaf(old, new, out),
        }
    }

    /// Compares the fields of two versions of an associative list item (the item's own path is
    /// handled by the list).
    fn compare_item(
        &mut self,
        old: Option<&Value>,
        new: Option<&Value>,
        fresh: bool,
        out: &mut Comparison,
    ) {
        let empty = Map::new();
        let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
        let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
        let keys: Vec<&String> = old_map
            .keys()
            .chain(new_map.keys().filter(|k| !old_map.contains_key(*k)))
            .collect();
        for key in keys {
            self.descend_field(key);
            self.compare(old_map.get(key), new_map.get(key), fresh, out);
            self.ascend_field();
        }
    }

    fn compare_leaf(&self, old: Option<&Value>, new: Option<&Value>, out: &mut Comparison) {
        if self.path.is_empty() {
            return;
        }
        match (old, new) {
            (None, Some(_)) => self.insert_here(&mut out.added),
            (Some(_), None) => self.insert_here(&mut out.removed),
            (Some(a), Some(b)) if a != b => self.insert_here(&mut out.modified),
            _ => {}
        }
    }

    /// Merges an applied configuration into the live value (upstream `Merge`): granular maps
    /// key by key, associative lists and sets item by item (the configuration's order, with
    /// live-only items kept next to their neighbours), anything else replaced. `null` members of
    /// the configuration remove the field.
    pub(crate) fn merge(
        &mut self,
        live: Option<&Value>,
        config: &Value,
    ) -> Result<Value, ApplyError> {
        let same_type =
            live.is_none_or(|l| std::mem::discriminant(l) == std::mem::discriminant(config));
        let shape = if same_type {
            self.shape(config)
        } else {
            Shape::Leaf
        };
        match (shape, config) {
            (Shape::Granular(_), Value::Object(config_map)) => {
                let mut result = match live {
                    Some(Value::Object(live_map)) => live_map.clone(),
                    _ => Map::new(),
                };
                for (key, child) in config_map {
                    if child.is_null() {
                        result.shift_remove(key);
                        continue;
                    }
                    self.descend_field(key);
                    let merged = self.merge(result.get(key), child);
                    self.ascend_field();
                    result.insert(key.clone(), merged?);
                }
                Ok(Value::Object(result))
            }
            (Shape::List(list), Value::Array(config_items)) => {
                let live_items = live.and_then(Value::as_array).cloned().unwrap_or_default();
                let config_elements = match list {
                    SsaListType::Map(keys) => config_items
                        .iter()
                        .map(|item| self.item_element(item, keys))
                        .collect::<Result<Vec<_>, _>>()?,
                    _ => match self.elements(config_items, list) {
                        Some(elements) => elements,
                        None => return Ok(without_null_members(config)),
                    },
                };
                let Some(live_elements) = self.elements(&live_items, list) else {
                    return Ok(without_null_members(config));
                };
                let mut result = Vec::with_capacity(live_items.len() + config_items.len());
                let mut next_config = 0;
                let mut emit_config_until = |walker: &mut Self,
                                             end: usize,
                                             result: &mut Vec<Value>|
                 -> Result<(), ApplyError> {
                    while next_config <= end && next_config < config_items.len() {
                        let element = &config_elements[next_config];
                        let live_item = live_elements
                            .iter()
                            .position(|e| e == element)
                            .map(|i| &live_items[i]);
                        walker.path.push(element.clone());
                        let merged = match list {
                            SsaListType::Map(_) => {
                                walker.merge(live_item, &config_items[next_config])
                            }
                            _ => Ok(config_items[next_config].clone()),
                        };
                        walker.path.pop();
                        result.push(merged?);
                        next_config += 1;
                    }
                    Ok(())
                };
                for (element, live_item) in live_elements.iter().zip(&live_items) {
                    match config_elements.iter().position(|e| e == element) {
                        Some(pos) => emit_config_until(self, pos, &mut result)?,
                        None => result.push(live_item.clone()),
                    }
                }
                emit_config_until(self, usize::MAX, &mut result)?;
                Ok(Value::Array(result))
            }
            _ => Ok(without_null_members(config)),
        }
    }

    /// Removes from `value` the fields listed in `last` (a manager's previous applied set) that
    /// nobody owns any more (`owned`: every manager's set, the new one included). A map or
    /// struct named in `last` goes when nothing owned or unowned-but-untracked remains in it.
    pub(crate) fn prune(&mut self, value: &mut Value, last: &FieldSet, owned: &FieldSet) {
        let empty = FieldSet::new();
        match (self.shape(value), value) {
            (Shape::Granular(_), Value::Object(map)) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    let element = PathElement::Field(key.clone());
                    if !last.touches(&element) {
                        continue;
                    }
                    self.descend_field(&key);
                    let child = map.get_mut(&key).expect("key listed above");
                    let remove = self.prune_child(child, &element, last, owned, &empty);
                    self.ascend_field();
                    if remove {
                        map.shift_remove(&key);
                    }
                }
            }
            (Shape::List(list), Value::Array(items)) => {
                let Some(elements) = self.elements(items, list) else {
                    return;
                };
                let mut keep = Vec::with_capacity(items.len());
                for (element, mut item) in elements.into_iter().zip(std::mem::take(items)) {
                    if !last.touches(&element) {
                        keep.push(item);
                        continue;
                    }
                    let original = item.clone();
                    self.path.push(element.clone());
                    let remove = self.prune_child(&mut item, &element, last, owned, &empty);
                    self.path.pop();
                    if !remove {
                        if let (SsaListType::Map(keys), Some(kept), Some(original)) =
                            (list, item.as_object_mut(), original.as_object())
                        {
                            // An item that stays keeps the fields that identify it.
                            for key in keys {
                                if let Some(v) = original.get(key.name) {
                                    kept.entry(key.name).or_insert_with(|| v.clone());
                                }
                            }
                        }
                        keep.push(item);
                    }
                }
                *items = keep;
            }
            _ => {}
        }
    }

    /// Prunes one child (already descended into); returns whether to remove it.
    fn prune_child(
        &mut self,
        child: &mut Value,
        element: &PathElement,
        last: &FieldSet,
        owned: &FieldSet,
        empty: &FieldSet,
    ) -> bool {
        // A value someone owns stays (its unowned children may still go); otherwise it goes
        // when nothing is left in it.
        let owned_itself = owned.has_member(element);
        let owned_below = owned.child(element).is_some_and(|c| !c.is_empty());
        let is_container = matches!(self.shape(child), Shape::Granular(_) | Shape::List(_));
        if !is_container {
            return !owned_itself && !owned_below;
        }
        let last_below = last.child(element).unwrap_or(empty);
        let owned_below_set = owned.child(element).unwrap_or(empty);
        self.prune(child, last_below, owned_below_set);
        let now_empty = match child {
            Value::Object(map) => map.is_empty(),
            Value::Array(items) => items.is_empty(),
            _ => false,
        };
        now_empty && !owned_itself && !owned_below
    }
}

/// A copy of `value` without `null` object members (at any depth).
pub(crate) fn without_null_members(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_null_members(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_null_members).collect()),
        other => other.clone(),
    }
}
