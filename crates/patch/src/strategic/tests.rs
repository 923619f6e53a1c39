use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn pod() -> &'static dyn MergeSchema {
    schema_for("", "Pod").unwrap()
}

fn smp(original: Value, patch: Value) -> Result<Value, PatchError> {
    apply_strategic_merge_patch(&original, &patch, pod())
}

#[test]
fn maps_merge_and_null_deletes_a_key() {
    let out = smp(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
        json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
    );
    assert_eq!(
        out.unwrap(),
        json!({"metadata": {"labels": {"b": "2", "c": "3"}}})
    );
}

#[test]
fn containers_merge_by_name_and_unknown_lists_are_replaced() {
    let out = smp(
        json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "args": ["x", "y"]},
            {"name": "b", "image": "b:1"}
        ]}}),
        json!({"spec": {"containers": [
            {"name": "b", "image": "b:2"},
            {"name": "a", "args": ["z"]},
            {"name": "c", "image": "c:1"}
        ]}}),
    );
    // Patched items take the patch's order.
    assert_eq!(
        out.unwrap(),
        json!({"spec": {"containers": [
            {"name": "b", "image": "b:2"},
            {"name": "a", "image": "a:1", "args": ["z"]},
            {"name": "c", "image": "c:1"}
        ]}})
    );
}

/// As upstream, items the patch adds to a merged list come before the items only the server
/// has (the order kubectl's documentation shows after `kubectl patch`).
#[test]
fn nested_keyed_lists_use_their_own_keys() {
    let out = smp(
        json!({"spec": {"containers": [{"name": "a", "volumeMounts": [
            {"name": "v1", "mountPath": "/data"}, {"name": "v2", "mountPath": "/logs"}
        ], "ports": [{"containerPort": 80, "name": "http"}]}]}}),
        json!({"spec": {"containers": [{"name": "a", "volumeMounts": [
            {"mountPath": "/data", "readOnly": true}
        ], "ports": [{"containerPort": 443}]}]}}),
    );
    assert_eq!(
        out.unwrap(),
        json!({"spec": {"containers": [{"name": "a", "volumeMounts": [
            {"name": "v1", "mountPath": "/data", "readOnly": true}, {"name": "v2", "mountPath": "/logs"}
        ], "ports": [{"containerPort": 443}, {"containerPort": 80, "name": "http"}]}]}})
    );
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list_removes() {
    let out = smp(
        json!({"metadata": {"finalizers": ["a", "b"]}}),
        json!({"metadata": {"finalizers": ["b", "c"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(
        out.unwrap(),
        json!({"metadata": {"finalizers": ["b", "c"]}})
    );
}

#[test]
fn patch_delete_removes_keyed_item_and_map() {
    let out = smp(
        json!({"spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}],
                        "securityContext": {"runAsUser": 1}}}),
        json!({"spec": {"volumes": [{"name": "a", "$patch": "delete"}],
                        "securityContext": {"$patch": "delete"}}}),
    );
    // As upstream, a map deleted with `$patch: delete` is left empty.
    assert_eq!(
        out.unwrap(),
        json!({"spec": {"volumes": [{"name": "b", "emptyDir": {}}], "securityContext": {}}})
    );
}

#[test]
fn patch_replace_replaces_a_map_or_a_list() {
    let out = smp(
        json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
        json!({"metadata": {"labels": {"$patch": "replace", "z": "9"}},
               "spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}}),
    );
    assert_eq!(
        out.unwrap(),
        json!({"metadata": {"labels": {"z": "9"}}, "spec": {"containers": [{"name": "c"}]}})
    );
}

#[test]
fn patch_merge_is_the_default_and_unknown_directive_fails() {
    let out = smp(
        json!({"metadata": {"labels": {"a": "1"}}}),
        json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}}),
    );
    assert_eq!(
        out.unwrap(),
        json!({"metadata": {"labels": {"a": "1", "b": "2"}}})
    );
    let err = smp(json!({}), json!({"metadata": {"$patch": "frob"}})).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown patch type: frob in map:"),
        "{err}"
    );
    assert_eq!(err.status_code(), 500);
    let err = smp(
        json!({}),
        json!({"spec": {"containers": [{"$patch": "merge"}]}}),
    )
    .unwrap_err();
    assert_eq!(err, PatchError::MergeDirectiveInList);
}

#[test]
fn retain_keys_drops_unlisted_keys_of_the_original() {
    let out = smp(
        json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}),
        json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "persistentVolumeClaim"],
                                     "persistentVolumeClaim": {"claimName": "c"}}],
                        "$setElementOrder/volumes": [{"name": "v"}]}}),
    );
    assert_eq!(
        out.unwrap(),
        json!({"spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]}})
    );
    let err = smp(
        json!({"spec": {}}),
        json!({"spec": {"$retainKeys": ["a"], "b": 1}}),
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BadRetainKeysFormat);
    let err = smp(json!({"spec": {}}), json!({"spec": {"$retainKeys": "a"}})).unwrap_err();
    assert_eq!(err, PatchError::BadRetainKeysFormat);
}

#[test]
fn set_element_order_orders_patch_items_and_keeps_server_only_items_in_place() {
    let out = smp(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "s"}, {"name": "b"}]}}),
        json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
                        "containers": [{"name": "c"}]}}),
    );
    // The ordered items follow the order; s (only on the server, at index 1) goes before b
    // (server index 2) but the new item c (no server index) does not overtake a.
    assert_eq!(
        out.unwrap(),
        json!({"spec": {"containers": [{"name": "s"}, {"name": "b"}, {"name": "c"}, {"name": "a"}]}})
    );
    let out = smp(
        json!({"metadata": {"finalizers": ["x", "y"]}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["y", "x"]}}),
    );
    assert_eq!(
        out.unwrap(),
        json!({"metadata": {"finalizers": ["y", "x"]}})
    );
    let err = smp(
        json!({"spec": {"containers": [{"name": "a"}]}}),
        json!({"spec": {"$setElementOrder/containers": [{"image": "x"}]}}),
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BadSetElementOrderFormat);
}

#[test]
fn keyed_item_without_merge_key_is_rejected() {
    let err = smp(
        json!({"spec": {"containers": []}}),
        json!({"spec": {"containers": [{"image": "x"}]}}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "map: {\"image\":\"x\"} does not contain declared merge key: name"
    );
}

#[test]
fn lists_of_lists_and_bad_primitive_deletes_are_rejected() {
    let err = smp(json!({}), json!({"metadata": {"finalizers": [["a"]]}})).unwrap_err();
    assert_eq!(err, PatchError::ListOfLists);
    let err = smp(
        json!({}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [{"a": 1}]}}),
    )
    .unwrap_err();
    assert_eq!(err, PatchError::BadPrimitiveListFormat);
    assert_eq!(err.status_code(), 400);
    assert_eq!(
        smp(json!([]), json!({})).unwrap_err(),
        PatchError::NotAnObject
    );
}

#[test]
fn new_subtrees_lose_their_directives() {
    let out = smp(
        json!({}),
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}],
                        "$setElementOrder/containers": [{"name": "a"}]}}),
    );
    assert_eq!(
        out.unwrap(),
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}})
    );
}

#[test]
fn two_way_patch_looks_like_kubectls() {
    let original = json!({
        "metadata": {"labels": {"app": "x", "old": "1"}, "finalizers": ["a", "b"]},
        "spec": {"containers": [{"name": "c1", "image": "i:1"}, {"name": "c2", "image": "i:1"}],
                 "volumes": [{"name": "v", "emptyDir": {}}]}
    });
    let modified = json!({
        "metadata": {"labels": {"app": "x"}, "finalizers": ["b", "c"]},
        "spec": {"containers": [{"name": "c1", "image": "i:2"}],
                 "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "pvc"}}]}
    });
    let patch = create_two_way_merge_patch(&original, &modified, pod()).unwrap();
    assert_eq!(
        patch,
        json!({
            "metadata": {
                "labels": {"old": null},
                "finalizers": ["c"],
                "$deleteFromPrimitiveList/finalizers": ["a"],
                "$setElementOrder/finalizers": ["b", "c"]
            },
            "spec": {
                "containers": [{"image": "i:2", "name": "c1"}, {"name": "c2", "$patch": "delete"}],
                "$setElementOrder/containers": [{"name": "c1"}],
                "volumes": [{"persistentVolumeClaim": {"claimName": "pvc"}, "emptyDir": null,
                             "$retainKeys": ["name", "persistentVolumeClaim"], "name": "v"}],
                "$setElementOrder/volumes": [{"name": "v"}]
            }
        })
    );
    assert_eq!(
        apply_strategic_merge_patch(&original, &patch, pod()).unwrap(),
        modified
    );
}

// ---- property test: two-way patch between Pod-like objects ----

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (0i64..5).prop_map(|n| json!(n)),
        "[a-c]{0,2}".prop_map(Value::String),
    ]
}

fn arb_string_map() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d]", "[x-z]{0,2}", 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
}

/// A keyed list: unique keys from a small alphabet, in random order, with random extra fields.
fn arb_keyed(key: &'static str, item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop::collection::btree_map("[p-t]", item, 0..4)
        .prop_flat_map(move |items| {
            let items: Vec<Value> = items
                .into_iter()
                .map(|(k, mut v)| {
                    v.as_object_mut()
                        .unwrap()
                        .insert(key.to_owned(), Value::String(k));
                    v
                })
                .collect();
            Just(items).prop_shuffle()
        })
        .prop_map(Value::Array)
        .boxed()
}

fn arb_fields() -> BoxedStrategy<Value> {
    prop::collection::btree_map("[f-h]", arb_scalar(), 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed()
}

fn arb_container() -> BoxedStrategy<Value> {
    (
        prop::option::of("[a-c]{1,2}"),
        prop::option::of(arb_keyed("name", arb_fields())),
        prop::option::of(arb_keyed("mountPath", arb_fields())),
        prop::option::of(prop::collection::vec("[a-c]", 0..3)),
    )
        .prop_map(|(image, env, mounts, args)| {
            let mut c = serde_json::Map::new();
            if let Some(image) = image {
                c.insert("image".into(), json!(image));
            }
            if let Some(env) = env {
                c.insert("env".into(), env);
            }
            if let Some(mounts) = mounts {
                c.insert("volumeMounts".into(), mounts);
            }
            if let Some(args) = args {
                c.insert("args".into(), json!(args));
            }
            Value::Object(c)
        })
        .boxed()
}

fn arb_volume() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({"emptyDir": {}})),
        "[a-c]".prop_map(|c| json!({"persistentVolumeClaim": {"claimName": c}})),
        "[a-c]".prop_map(|c| json!({"configMap": {"name": c}})),
    ]
    .boxed()
}

fn arb_pod() -> impl Strategy<Value = Value> {
    (
        prop::option::of(arb_string_map()),
        prop::option::of(
            prop::collection::btree_set("[a-e]", 0..4)
                .prop_flat_map(|s| Just(s.into_iter().collect::<Vec<_>>()).prop_shuffle()),
        ),
        prop::option::of(arb_keyed("name", arb_container())),
        prop::option::of(arb_keyed("name", arb_volume())),
        prop::option::of(arb_scalar()),
        prop::option::of(prop::collection::vec(arb_fields(), 0..3)),
    )
        .prop_map(
            |(labels, finalizers, containers, volumes, node, tolerations)| {
                let mut meta = serde_json::Map::new();
                if let Some(labels) = labels {
                    meta.insert("labels".into(), labels);
                }
                if let Some(finalizers) = finalizers {
                    meta.insert("finalizers".into(), json!(finalizers));
                }
                let mut spec = serde_json::Map::new();
                if let Some(containers) = containers {
                    spec.insert("containers".into(), containers);
                }
                if let Some(volumes) = volumes {
                    spec.insert("volumes".into(), volumes);
                }
                if let Some(node) = node {
                    spec.insert("nodeName".into(), node);
                }
                if let Some(tolerations) = tolerations {
                    spec.insert("tolerations".into(), Value::Array(tolerations));
                }
                json!({"metadata": meta, "spec": spec})
            },
        )
}

proptest! {
    #[test]
    fn two_way_strategic_patch_turns_a_into_b(a in arb_pod(), b in arb_pod()) {
        let patch = create_two_way_merge_patch(&a, &b, pod()).unwrap();
        let patched = apply_strategic_merge_patch(&a, &patch, pod()).unwrap();
        prop_assert_eq!(&patched, &b, "patch: {}", patch);
    }

    #[test]
    fn empty_two_way_patch_between_equal_objects(a in arb_pod()) {
        let patch = create_two_way_merge_patch(&a, &a, pod()).unwrap();
        prop_assert_eq!(patch, json!({}));
    }
}

#[test]
fn csinode_drivers_merge_by_name_and_owner_references_by_uid() {
    let csinode = schema_for("storage.k8s.io", "CSINode").unwrap();
    let out = apply_strategic_merge_patch(
        &json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "n"}]},
                "spec": {"drivers": [{"name": "a", "nodeID": "x", "topologyKeys": ["z"]}]}}),
        &json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "m"}]},
                "spec": {"drivers": [{"name": "a", "topologyKeys": ["k"]}, {"name": "b", "nodeID": "y"}]}}),
        csinode,
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "m"}, {"uid": "1", "name": "n"}]},
               "spec": {"drivers": [{"name": "a", "nodeID": "x", "topologyKeys": ["k"]}, {"name": "b", "nodeID": "y"}]}})
    );
}

#[test]
fn status_conditions_merge_by_type() {
    let pvc = schema_for("", "PersistentVolumeClaim").unwrap();
    let out = apply_strategic_merge_patch(
        &json!({"status": {"phase": "Bound", "conditions": [{"type": "Resizing", "status": "True"}]}}),
        &json!({"status": {"conditions": [{"type": "FileSystemResizePending", "status": "True"},
                                          {"type": "Resizing", "$patch": "delete"}]}}),
        pvc,
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"status": {"phase": "Bound", "conditions": [{"type": "FileSystemResizePending", "status": "True"}]}})
    );
}
