//! RFC 7386 JSON merge patch: objects merge recursively, `null` deletes a member, anything else
//! (arrays included) replaces. [`create_merge_patch`] computes the patch between two documents.

use serde_json::{Map, Value};

/// Applies a merge patch to `target` and returns the result. Never fails: any JSON value is a
/// valid merge patch.
pub fn apply_merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch_members) = patch else {
        return patch.clone();
    };
    let mut result = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch_members {
        if value.is_null() {
            result.shift_remove(key);
        } else {
            let merged = apply_merge_patch(result.get(key).unwrap_or(&Value::Null), value);
            result.insert(key.clone(), merged);
        }
    }
    Value::Object(result)
}

/// Computes a merge patch turning `from` into `to`. `null` members of objects in `to` cannot be
/// expressed by a merge patch (they mean "delete"), so a patch to such a document removes them.
pub fn create_merge_patch(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = Map::new();
            for key in a.keys().filter(|k| !b.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in b {
                match a.get(key) {
                    Some(old) if old == value => {}
                    Some(old @ Value::Object(_)) if value.is_object() => {
                        patch.insert(key.clone(), create_merge_patch(old, value));
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        _ => to.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    // The examples of RFC 7386 appendix A.
    #[test]
    fn rfc_7386_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(
                apply_merge_patch(&target, &patch),
                expected,
                "patch {patch}"
            );
        }
    }

    #[test]
    fn created_patch_nulls_removed_members_only() {
        let patch = create_merge_patch(
            &json!({"spec": {"a": 1, "b": 2}, "keep": true}),
            &json!({"spec": {"a": 1, "c": [3]}, "keep": true}),
        );
        assert_eq!(patch, json!({"spec": {"b": null, "c": [3]}}));
    }

    /// JSON without null object members (a merge patch cannot set a member to null).
    fn arb_json_without_null_members() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(prop_oneof![inner.clone(), Just(Value::Null)], 0..4)
                    .prop_map(Value::Array),
                prop::collection::btree_map("[a-d]", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn computed_merge_patch_turns_a_into_b(
            a in arb_json_without_null_members(),
            b in arb_json_without_null_members(),
        ) {
            let patch = create_merge_patch(&a, &b);
            prop_assert_eq!(apply_merge_patch(&a, &patch), b);
        }
    }
}
