//! RFC 6902 JSON patch: `add`, `remove`, `replace`, `move`, `copy`, `test`.
//!
//! JSON pointers follow RFC 6901 (`~1` is `/`, `~0` is `~`; `-` appends to an array). Operations
//! apply in order to a copy of the document; the first failing one fails the whole patch and the
//! original is untouched. [`create_json_patch`] computes a patch between two documents.

use serde_json::{Map, Value};

use crate::error::PatchError;

/// Applies a JSON patch (a JSON array of operations) to `doc` and returns the patched document.
pub fn apply_json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| PatchError::MalformedPatch {
        message: "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
    })?;
    let mut result = doc.clone();
    for op in ops {
        apply_operation(&mut result, op)?;
    }
    Ok(result)
}

/// Computes a JSON patch that turns `from` into `to`: recursive over objects, element-wise over
/// arrays of equal length, whole values otherwise.
pub fn create_json_patch(from: &Value, to: &Value) -> Value {
    let mut ops = Vec::new();
    diff_into(&mut ops, String::new(), from, to);
    Value::Array(ops)
}

fn diff_into(ops: &mut Vec<Value>, path: String, from: &Value, to: &Value) {
    if from == to {
        return;
    }
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().filter(|k| !b.contains_key(*k)) {
                ops.push(serde_json::json!({"op": "remove", "path": child(&path, key)}));
            }
            for (key, value) in b {
                match a.get(key) {
                    Some(old) => diff_into(ops, child(&path, key), old, value),
                    None => ops.push(
                        serde_json::json!({"op": "add", "path": child(&path, key), "value": value}),
                    ),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (old, new)) in a.iter().zip(b).enumerate() {
                diff_into(ops, format!("{path}/{i}"), old, new);
            }
        }
        _ => ops.push(serde_json::json!({"op": "replace", "path": path, "value": to})),
    }
}

fn child(path: &str, key: &str) -> String {
    format!("{path}/{}", escape_token(key))
}

/// Escapes one reference token of a JSON pointer (`~` → `~0`, `/` → `~1`).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Splits a JSON pointer into unescaped reference tokens; `""` is the whole document.
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| PatchError::InvalidPointer {
            pointer: pointer.into(),
            reason: "a pointer must start with '/'".into(),
        })?;
    rest.split('/')
        .map(|token| unescape_token(pointer, token))
        .collect()
}

fn unescape_token(pointer: &str, token: &str) -> Result<String, PatchError> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => {
                return Err(PatchError::InvalidPointer {
                    pointer: pointer.into(),
                    reason: "'~' must be followed by '0' or '1'".into(),
                });
            }
        }
    }
    Ok(out)
}

fn apply_operation(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let op = op.as_object().ok_or_else(|| PatchError::MalformedPatch {
        message: "json: cannot unmarshal non-object into Go value of type jsonpatch.Operation"
            .into(),
    })?;
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
    let path = string_member(op, "path", kind)?;
    match kind {
        "add" => {
            let value = value_member(op, kind)?;
            add(doc, path, value.clone(), "add")
        }
        "remove" => remove(doc, path, "remove").map(drop),
        "replace" => {
            let value = value_member(op, kind)?;
            let tokens = parse_pointer(path)?;
            let target =
                resolve_mut(doc, &tokens).ok_or_else(|| PatchError::OperationDoesNotApply {
                    op: "replace",
                    reason: format!("doc is missing key: {path}: missing value"),
                })?;
            *target = value.clone();
            Ok(())
        }
        "move" => {
            let from = string_member(op, "from", kind)?;
            if from == path {
                return Ok(());
            }
            if path.starts_with(from) && path[from.len()..].starts_with('/') {
                return Err(PatchError::OperationDoesNotApply {
                    op: "move",
                    reason: format!("cannot move {from} into its own child {path}"),
                });
            }
            let value = remove(doc, from, "move")?;
            add(doc, path, value, "move")
        }
        "copy" => {
            let from = string_member(op, "from", kind)?;
            let tokens = parse_pointer(from)?;
            let value = resolve(doc, &tokens).cloned().ok_or_else(|| {
                PatchError::OperationDoesNotApply {
                    op: "copy",
                    reason: format!("doc is missing from path: {from:?}: missing value"),
                }
            })?;
            add(doc, path, value, "copy")
        }
        "test" => {
            let expected = op.get("value").unwrap_or(&Value::Null);
            let tokens = parse_pointer(path)?;
            let passed = match resolve(doc, &tokens) {
                Some(actual) => json_equal(actual, expected),
                // As upstream: a missing value passes a test against null.
                None => expected.is_null(),
            };
            if passed {
                Ok(())
            } else {
                Err(PatchError::TestFailed { path: path.into() })
            }
        }
        other => Err(PatchError::InvalidOperation {
            message: format!("Unexpected kind: {other}"),
        }),
    }
}

fn string_member<'a>(
    op: &'a Map<String, Value>,
    member: &str,
    kind: &str,
) -> Result<&'a str, PatchError> {
    op.get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| PatchError::InvalidOperation {
            message: format!("{kind} operation: missing or invalid {member:?}"),
        })
}

fn value_member<'a>(op: &'a Map<String, Value>, kind: &str) -> Result<&'a Value, PatchError> {
    op.get("value").ok_or_else(|| PatchError::InvalidOperation {
        message: format!("{kind} operation: missing \"value\""),
    })
}

/// Numbers compare by value (`1` equals `1.0`), everything else structurally.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn resolve<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
        _ => None,
    })
}

fn resolve_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => array_index(token).and_then(move |i| items.get_mut(i)),
        _ => None,
    })
}

/// An array index token: decimal digits without a leading zero (RFC 6901).
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return None;
    }
    token.parse().ok()
}

fn add(doc: &mut Value, path: &str, value: Value, op: &'static str) -> Result<(), PatchError> {
    let tokens = parse_pointer(path)?;
    let Some((last, parent_tokens)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || PatchError::OperationDoesNotApply {
        op,
        reason: format!("doc is missing path: {path:?}: missing value"),
    };
    let parent = resolve_mut(doc, parent_tokens).ok_or_else(missing)?;
    match parent {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                array_index(last)
                    .filter(|i| *i <= items.len())
                    .ok_or_else(|| PatchError::OperationDoesNotApply {
                        op,
                        reason: format!(
                            "Unable to access invalid index: {last}: invalid index referenced"
                        ),
                    })?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn remove(doc: &mut Value, path: &str, op: &'static str) -> Result<Value, PatchError> {
    let tokens = parse_pointer(path)?;
    let missing = || PatchError::OperationDoesNotApply {
        op,
        reason: if op == "move" {
            format!("doc is missing from path: {path}: missing value")
        } else {
            format!("doc is missing path: {path:?}: missing value")
        },
    };
    let Some((last, parent_tokens)) = tokens.split_last() else {
        return Err(missing());
    };
    match resolve_mut(doc, parent_tokens).ok_or_else(missing)? {
        Value::Object(map) => map.shift_remove(last).ok_or_else(missing),
        Value::Array(items) => {
            let index = array_index(last)
                .filter(|i| *i < items.len())
                .ok_or_else(missing)?;
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn patched(doc: Value, patch: Value) -> Result<Value, PatchError> {
        apply_json_patch(&doc, &patch)
    }

    // RFC 6902 appendix A examples.
    #[test]
    fn rfc_a1_add_object_member() {
        let out = patched(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
        );
        assert_eq!(out.unwrap(), json!({"baz": "qux", "foo": "bar"}));
    }

    #[test]
    fn rfc_a2_add_array_element() {
        let out = patched(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
        );
        assert_eq!(out.unwrap(), json!({"foo": ["bar", "qux", "baz"]}));
    }

    #[test]
    fn rfc_a3_a4_remove_member_and_element() {
        let out = patched(
            json!({"baz": "qux", "foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/baz"}, {"op": "remove", "path": "/foo/1"}]),
        );
        assert_eq!(out.unwrap(), json!({"foo": ["bar", "baz"]}));
    }

    #[test]
    fn rfc_a5_replace_value() {
        let out = patched(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
        );
        assert_eq!(out.unwrap(), json!({"baz": "boo", "foo": "bar"}));
    }

    #[test]
    fn rfc_a6_a7_move_value_and_element() {
        let out = patched(
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
        );
        assert_eq!(
            out.unwrap(),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        let out = patched(
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
        );
        assert_eq!(
            out.unwrap(),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
    }

    #[test]
    fn rfc_a8_a9_test_success_and_failure() {
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"]});
        let ok = patched(
            doc.clone(),
            json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}]),
        );
        assert_eq!(ok.unwrap(), doc);
        let err = patched(
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            PatchError::TestFailed {
                path: "/baz".into()
            }
        );
        assert_eq!(err.to_string(), "testing value /baz failed: test failed");
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn rfc_a10_add_nested_member_object() {
        let out = patched(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
        );
        assert_eq!(
            out.unwrap(),
            json!({"foo": "bar", "child": {"grandchild": {}}})
        );
    }

    #[test]
    fn rfc_a12_add_to_nonexistent_target_fails() {
        let err = patched(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        )
        .unwrap_err();
        assert!(
            matches!(err, PatchError::OperationDoesNotApply { op: "add", .. }),
            "{err}"
        );
    }

    #[test]
    fn rfc_a14_escape_ordering() {
        let out = patched(
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": 10}]),
        );
        assert!(out.is_ok());
        let out = patched(
            json!({"a/b": 1, "m~n": 2}),
            json!([
                {"op": "replace", "path": "/a~1b", "value": 3},
                {"op": "remove", "path": "/m~0n"}
            ]),
        );
        assert_eq!(out.unwrap(), json!({"a/b": 3}));
    }

    #[test]
    fn rfc_a16_add_array_value_and_dash_appends() {
        let out = patched(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
        );
        assert_eq!(out.unwrap(), json!({"foo": ["bar", ["abc", "def"]]}));
    }

    #[test]
    fn copy_duplicates_value() {
        let out = patched(
            json!({"a": {"b": 1}}),
            json!([{"op": "copy", "from": "/a", "path": "/c"}]),
        );
        assert_eq!(out.unwrap(), json!({"a": {"b": 1}, "c": {"b": 1}}));
    }

    #[test]
    fn test_compares_numbers_by_value() {
        assert!(
            patched(
                json!({"a": 1}),
                json!([{"op": "test", "path": "/a", "value": 1.0}])
            )
            .is_ok()
        );
    }

    #[test]
    fn finalizer_removal_guarded_by_test_as_kube_rs_sends_it() {
        let doc = json!({"metadata": {"finalizers": ["a", "x.io/cleanup"]}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": "x.io/cleanup"},
            {"op": "remove", "path": "/metadata/finalizers/1"}
        ]);
        assert_eq!(
            patched(doc.clone(), patch.clone()).unwrap(),
            json!({"metadata": {"finalizers": ["a"]}})
        );
        let moved = json!({"metadata": {"finalizers": ["x.io/cleanup", "a"]}});
        assert!(matches!(
            patched(moved.clone(), patch).unwrap_err(),
            PatchError::TestFailed { .. }
        ));
    }

    #[test]
    fn failure_leaves_original_untouched_and_reports_path() {
        let doc = json!({"a": 1});
        let err = apply_json_patch(
            &doc,
            &json!([{"op": "remove", "path": "/a"}, {"op": "remove", "path": "/b"}]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "remove operation does not apply: doc is missing path: \"/b\": missing value"
        );
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn undecodable_patches_are_bad_requests_and_bad_operations_invalid() {
        assert_eq!(
            patched(json!({}), json!({"op": "add"}))
                .unwrap_err()
                .status_code(),
            400
        );
        assert_eq!(
            patched(json!({}), json!(["add"]))
                .unwrap_err()
                .status_code(),
            400
        );
        let unknown = patched(json!({}), json!([{"op": "frob", "path": "/a"}])).unwrap_err();
        assert_eq!(unknown.to_string(), "Unexpected kind: frob");
        assert_eq!(unknown.status_code(), 422);
        assert_eq!(
            patched(json!({}), json!([{"op": "add", "path": "/a"}]))
                .unwrap_err()
                .status_code(),
            422
        );
        assert!(matches!(
            patched(json!({}), json!([{"op": "add", "path": "a", "value": 1}])).unwrap_err(),
            PatchError::InvalidPointer { .. }
        ));
        assert!(matches!(
            patched(
                json!({}),
                json!([{"op": "add", "path": "/a~2", "value": 1}])
            )
            .unwrap_err(),
            PatchError::InvalidPointer { .. }
        ));
    }

    #[test]
    fn move_into_own_child_fails_and_index_bounds_are_checked() {
        assert!(
            patched(
                json!({"a": {"b": 1}}),
                json!([{"op": "move", "from": "/a", "path": "/a/b/c"}])
            )
            .is_err()
        );
        assert!(
            patched(
                json!({"a": [1]}),
                json!([{"op": "add", "path": "/a/2", "value": 0}])
            )
            .is_err()
        );
        assert!(
            patched(
                json!({"a": [1]}),
                json!([{"op": "add", "path": "/a/01", "value": 0}])
            )
            .is_err()
        );
        assert!(
            patched(
                json!({"a": [1]}),
                json!([{"op": "replace", "path": "/a/1", "value": 0}])
            )
            .is_err()
        );
    }

    pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z~/]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c~/]{1,2}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn computed_json_patch_turns_a_into_b(a in arb_json(), b in arb_json()) {
            let patch = create_json_patch(&a, &b);
            prop_assert_eq!(apply_json_patch(&a, &patch).unwrap(), b);
        }
    }
}
