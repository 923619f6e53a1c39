//! Sets of field paths, as server-side apply tracks ownership, and their `FieldsV1` encoding.
//!
//! A path is a sequence of [`PathElement`]s: a struct or map field (`f:name`), an associative
//! list item identified by its key fields (`k:{"name":"x"}`), a set member (`v:"x"`), or a list
//! index (`i:0`). A [`FieldSet`] is a tree: at each level, the elements that are members (owned
//! themselves) and the children (elements with owned paths below them). In `FieldsV1` JSON a
//! member with children carries `".": {}`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::error::ApplyError;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A struct field or map key.
    Field(String),
    /// An associative list item, identified by its key fields: a compact JSON object with the
    /// fields sorted by name.
    Key(String),
    /// A member of a set, as compact JSON.
    Value(String),
    /// A list position (only for lists of unknown shape).
    Index(usize),
}

impl PathElement {
    /// The element of an associative list item with these key fields.
    pub fn key<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        let mut sorted: Vec<(&str, Value)> = fields.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let object: Map<String, Value> =
            sorted.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        PathElement::Key(Value::Object(object).to_string())
    }

    /// The element of a set member.
    pub fn value(value: &Value) -> Self {
        PathElement::Value(value.to_string())
    }

    /// The `FieldsV1` key of this element (`f:name`, `k:{...}`, `v:...`, `i:0`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(key) => format!("k:{key}"),
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(index) => format!("i:{index}"),
        }
    }

    /// Parses a `FieldsV1` key.
    pub fn from_fields_v1_key(key: &str) -> Result<Self, ApplyError> {
        let invalid = |why: &str| ApplyError::InvalidManagedFields {
            message: format!("invalid path element {key:?}: {why}"),
        };
        let (prefix, rest) = key
            .split_once(':')
            .ok_or_else(|| invalid("missing type prefix"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_owned())),
            "k" => {
                let parsed: Value =
                    serde_json::from_str(rest).map_err(|e| invalid(&e.to_string()))?;
                let Value::Object(fields) = parsed else {
                    return Err(invalid("key is not a JSON object"));
                };
                Ok(PathElement::key(
                    fields.iter().map(|(k, v)| (k.as_str(), v.clone())),
                ))
            }
            "v" => {
                let parsed: Value =
                    serde_json::from_str(rest).map_err(|e| invalid(&e.to_string()))?;
                Ok(PathElement::value(&parsed))
            }
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|_| invalid("index is not a number")),
            _ => Err(invalid("unknown type prefix")),
        }
    }
}

impl fmt::Display for PathElement {
    /// Upstream wording: `.name`, `[name="x",port=80]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(key) => {
                let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(value) => write!(f, "[={value}]"),
            PathElement::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path in upstream wording: `.spec.containers[name="a"].image`.
pub fn display_path(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// Whether no path is in the set.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path (the empty path, the object itself, is never tracked).
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for element in parents {
            // Look up before inserting: the entry API would clone the key on every level of
            // every path, and most levels already exist.
            if !node.children.contains_key(element) {
                node.children.insert(element.clone(), FieldSet::new());
            }
            node = node
                .children
                .get_mut(element)
                .expect("present or just inserted");
        }
        if !node.members.contains(last) {
            node.members.insert(last.clone());
        }
    }

    /// Whether the path is in the set.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for element in parents {
            match node.children.get(element) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    /// Whether `element` is a member of this level.
    pub fn has_member(&self, element: &PathElement) -> bool {
        self.members.contains(element)
    }

    /// The set of paths below `element` (relative to it), if any.
    pub fn child(&self, element: &PathElement) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// Whether `element` is a member or has paths below it.
    pub fn touches(&self, element: &PathElement) -> bool {
        self.members.contains(element) || self.children.contains_key(element)
    }

    /// Every path of the set, in order.
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        let elements: BTreeSet<&PathElement> =
            self.members.iter().chain(self.children.keys()).collect();
        for element in elements {
            prefix.push(element.clone());
            if self.members.contains(element) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(element) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (element, child) in &other.children {
            let merged = match out.children.get(element) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(element.clone(), merged);
        }
        out
    }

    /// Removes the paths of `other` from `self`, in place.
    pub fn remove_all(&mut self, other: &FieldSet) {
        if other.is_empty() {
            return;
        }
        self.members.retain(|m| !other.members.contains(m));
        self.children.retain(|element, child| {
            if let Some(theirs) = other.children.get(element) {
                child.remove_all(theirs);
            }
            !child.is_empty()
        });
    }

    /// Adds the paths of `other` to `self`, in place.
    pub fn add_all(&mut self, other: FieldSet) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.members.extend(other.members);
        for (element, child) in other.children {
            match self.children.get_mut(&element) {
                Some(mine) => mine.add_all(child),
                None => {
                    self.children.insert(element, child);
                }
            }
        }
    }

    /// The paths of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(element.clone(), rest);
            }
        }
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(element.clone(), both);
                }
            }
        }
        out
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.fields_v1_map())
    }

    fn fields_v1_map(&self) -> Map<String, Value> {
        let mut out = Map::with_capacity(self.members.len() + self.children.len());
        // Members and children are both sorted: merge them in one pass.
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let (element, member, child) = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(m), Some((c, _))) if m == c => {
                    let (m, (_, child)) = (members.next().unwrap(), children.next().unwrap());
                    (m, true, Some(child))
                }
                (Some(m), Some((c, _))) if m < c => (members.next().unwrap(), true, None),
                (Some(m), None) => {
                    let _ = m;
                    (members.next().unwrap(), true, None)
                }
                _ => {
                    let (c, child) = children.next().unwrap();
                    (c, false, Some(child))
                }
            };
            let node = match child {
                Some(child) if member && !child.is_empty() => {
                    let mut node =
                        Map::with_capacity(1 + child.members.len() + child.children.len());
                    node.insert(".".to_owned(), Value::Object(Map::new()));
                    node.extend(child.fields_v1_map());
                    node
                }
                Some(child) => child.fields_v1_map(),
                None => Map::new(),
            };
            out.insert(element.to_fields_v1_key(), Value::Object(node));
        }
        out
    }

    /// Decodes `FieldsV1` JSON.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, ApplyError> {
        let Value::Object(map) = value else {
            return Err(ApplyError::InvalidManagedFields {
                message: "fieldsV1 is not a JSON object".into(),
            });
        };
        let mut out = FieldSet::new();
        for (key, node) in map {
            if key == "." {
                continue;
            }
            let element = PathElement::from_fields_v1_key(key)?;
            let Value::Object(node_map) = node else {
                return Err(ApplyError::InvalidManagedFields {
                    message: format!("value of {key:?} is not a JSON object"),
                });
            };
            if node_map.is_empty() || node_map.contains_key(".") {
                out.members.insert(element.clone());
            }
            let child = FieldSet::from_fields_v1(node)?;
            if !child.is_empty() {
                out.children.insert(element, child);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn fields_v1_round_trip_with_dot_for_members_with_children() {
        let v1 = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}},
            "f:finalizers": {".": {}, "v:\"a\"": {}}
        });
        let set = FieldSet::from_fields_v1(&v1).unwrap();
        assert!(set.contains(&[f("metadata"), f("labels")]));
        assert!(set.contains(&[f("metadata"), f("labels"), f("app")]));
        assert!(!set.contains(&[f("metadata")]));
        let item = PathElement::key([("name", json!("nginx"))]);
        assert!(set.contains(&[f("spec"), f("containers"), item.clone(), f("image")]));
        assert_eq!(set.to_fields_v1(), v1);
        assert_eq!(
            display_path(&[f("spec"), f("containers"), item, f("image")]),
            ".spec.containers[name=\"nginx\"].image"
        );
    }

    #[test]
    fn keys_are_sorted_and_set_operations_work() {
        let a = PathElement::key([("protocol", json!("TCP")), ("containerPort", json!(80))]);
        assert_eq!(
            a.to_fields_v1_key(),
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"
        );
        assert_eq!(a.to_string(), "[containerPort=80,protocol=\"TCP\"]");
        let mut x = FieldSet::new();
        x.insert(&[f("spec"), f("a")]);
        x.insert(&[f("spec"), f("b")]);
        let mut y = FieldSet::new();
        y.insert(&[f("spec"), f("b")]);
        y.insert(&[f("spec"), f("c")]);
        assert_eq!(x.intersection(&y).paths(), vec![vec![f("spec"), f("b")]]);
        assert_eq!(x.difference(&y).paths(), vec![vec![f("spec"), f("a")]]);
        assert_eq!(x.union(&y).paths().len(), 3);
        assert!(x.difference(&x).is_empty());
        assert!(FieldSet::from_fields_v1(&json!({"x:1": {}})).is_err());
    }
}
