//! Label and field selectors, as `?labelSelector=` and `?fieldSelector=` spell them.

use serde_json::{Map, Value};

use crate::status::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<LabelRequirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_label_requirement(part)?);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelRequirement::Equals(k, v) => get(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            LabelRequirement::Exists(k) => get(k).is_some(),
            LabelRequirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Splits at commas that are not inside parentheses (`a in (x,y),b`).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_label_requirement(part: &str) -> Result<LabelRequirement, ApiError> {
    let bad = || ApiError::bad_request(format!("unable to parse requirement: found '{part}'"));
    if let Some(key) = part.strip_prefix('!') {
        return Ok(LabelRequirement::NotExists(
            valid_key(key.trim()).ok_or_else(bad)?,
        ));
    }
    for (op, neg) in [(" notin ", true), (" in ", false)] {
        if let Some(idx) = part.find(op) {
            let key = valid_key(part[..idx].trim()).ok_or_else(bad)?;
            let set = part[idx + op.len()..].trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(bad)?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
            return Ok(if neg {
                LabelRequirement::NotIn(key, values)
            } else {
                LabelRequirement::In(key, values)
            });
        }
    }
    for (op, neg) in [("!=", true), ("==", false), ("=", false)] {
        if let Some(idx) = part.find(op) {
            let key = valid_key(part[..idx].trim()).ok_or_else(bad)?;
            let value = part[idx + op.len()..].trim().to_string();
            return Ok(if neg {
                LabelRequirement::NotEquals(key, value)
            } else {
                LabelRequirement::Equals(key, value)
            });
        }
    }
    Ok(LabelRequirement::Exists(valid_key(part).ok_or_else(bad)?))
}

fn valid_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_string())
}

/// A parsed field selector: `field=value` and `field!=value` terms, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses a selector, accepting only the fields `supported` lists for the resource.
    pub fn parse(text: &str, supported: &[&str]) -> Result<FieldSelector, ApiError> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, negated, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !supported.contains(&field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_string(), negated, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value `metadata.name=x` asks for, which lets a list read one key instead of scanning.
    pub fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, neg, _)| f == "metadata.name" && !neg)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn matches(&self, fields: &[(&'static str, String)]) -> bool {
        self.0.iter().all(|(field, negated, value)| {
            let actual = fields
                .iter()
                .find(|(f, _)| f == field)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            (actual == value) != *negated
        })
    }
}

/// The fields a resource can be selected by, beyond `metadata.name` and `metadata.namespace`.
pub fn selectable_fields(plural: &str) -> &'static [&'static str] {
    match plural {
        "pods" => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "persistentvolumes" | "persistentvolumeclaims" | "namespaces" => {
            &["metadata.name", "metadata.namespace", "status.phase"]
        }
        "events" => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
        ],
        "nodes" => &["metadata.name", "metadata.namespace", "spec.unschedulable"],
        "secrets" => &["metadata.name", "metadata.namespace", "type"],
        "virtualmachineinstances" => &[
            "metadata.name",
            "metadata.namespace",
            "status.phase",
            "status.nodeName",
        ],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

/// The values of an object's selectable fields, extracted once when the object enters the cache.
pub fn field_values(plural: &str, obj: &Value) -> Vec<(&'static str, String)> {
    selectable_fields(plural)
        .iter()
        .map(|f| (*f, field_value(plural, obj, f)))
        .collect()
}

fn field_value(plural: &str, obj: &Value, field: &str) -> String {
    // events.k8s.io spells involvedObject as regarding; both name the same stored field.
    let path = match (plural, field.strip_prefix("regarding.")) {
        ("events", Some(rest)) => format!("involvedObject.{rest}"),
        _ => field.to_string(),
    };
    if field == "source" {
        return obj
            .pointer("/source/component")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
    }
    let pointer = format!("/{}", path.replace('.', "/"));
    match obj.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn label_selector_supports_every_operator() {
        let l = labels(json!({"app": "db", "tier": "back"}));
        let yes = [
            "app=db",
            "app==db",
            "app!=web",
            "app in (db,web)",
            "app notin (web)",
            "tier",
            "!missing",
            "app=db,tier in (back)",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(Some(&l)), "{s}");
        }
        let no = [
            "app=web",
            "app!=db",
            "app in (web)",
            "app notin (db, web)",
            "missing",
            "!tier",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(Some(&l)), "{s}");
        }
    }

    #[test]
    fn label_selector_rejects_garbage() {
        assert!(LabelSelector::parse("app in db").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
    }

    #[test]
    fn field_selector_matches_extracted_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "n"}, "spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}});
        let fields = field_values("pods", &pod);
        let sel = FieldSelector::parse(
            "spec.nodeName=node-1,status.phase!=Failed",
            selectable_fields("pods"),
        )
        .unwrap();
        assert!(sel.matches(&fields));
        let sel = FieldSelector::parse("spec.nodeName=", selectable_fields("pods")).unwrap();
        assert!(!sel.matches(&fields));
    }

    #[test]
    fn field_selector_rejects_unsupported_fields() {
        let err = FieldSelector::parse("spec.foo=bar", selectable_fields("pods")).unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn event_regarding_fields_read_involved_object() {
        let ev = json!({"involvedObject": {"name": "data", "kind": "PersistentVolumeClaim"}});
        let fields = field_values("events", &ev);
        let sel = FieldSelector::parse(
            "regarding.name=data,involvedObject.kind=PersistentVolumeClaim",
            selectable_fields("events"),
        )
        .unwrap();
        assert!(sel.matches(&fields));
    }
}
