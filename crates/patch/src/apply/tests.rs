use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::strategic::schema_for;

fn pvc_schema() -> Option<&'static dyn MergeSchema> {
    schema_for("", "PersistentVolumeClaim")
}

fn pod_schema() -> Option<&'static dyn MergeSchema> {
    schema_for("", "Pod")
}

fn pvc(storage: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default", "labels": {"app": "db"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}
    })
}

fn fields_of<'a>(managed: &'a ManagedFields, manager: &str) -> &'a FieldSet {
    &managed
        .entries
        .iter()
        .find(|e| e.manager == manager)
        .unwrap_or_else(|| panic!("no entry for {manager}: {managed:?}"))
        .fields
}

#[test]
fn apply_creates_a_missing_object_and_records_its_fields() {
    let (object, managed) = apply(
        None,
        &pvc("1Gi"),
        "kubectl",
        false,
        &ManagedFields::default(),
        pvc_schema(),
    )
    .unwrap();
    assert_eq!(object, pvc("1Gi"));
    assert_eq!(managed.entries.len(), 1);
    let entry = &managed.entries[0];
    assert_eq!(
        (entry.operation, entry.api_version.as_deref()),
        (Operation::Apply, Some("v1"))
    );
    assert_eq!(
        entry.fields.to_fields_v1(),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:accessModes": {}, "f:resources": {"f:requests": {"f:storage": {}}}}
        })
    );
    assert!(entry.time.is_none());
}

#[test]
fn reapplying_without_a_field_removes_it() {
    let mut first = pvc("1Gi");
    first["metadata"]["labels"]["tier"] = json!("backend");
    let (live, managed) = apply(
        None,
        &first,
        "kubectl",
        false,
        &ManagedFields::default(),
        pvc_schema(),
    )
    .unwrap();
    let (object, managed) = apply(
        Some(&live),
        &pvc("1Gi"),
        "kubectl",
        false,
        &managed,
        pvc_schema(),
    )
    .unwrap();
    assert_eq!(object["metadata"]["labels"], json!({"app": "db"}));
    assert!(
        !fields_of(&managed, "kubectl")
            .to_fields_v1()
            .to_string()
            .contains("tier")
    );
}

#[test]
fn a_field_another_manager_also_owns_survives_its_removal_from_the_config() {
    let mut first = pvc("1Gi");
    first["metadata"]["labels"]["tier"] = json!("backend");
    let (live, managed) = apply(
        None,
        &first,
        "kubectl",
        false,
        &ManagedFields::default(),
        pvc_schema(),
    )
    .unwrap();
    let (live, managed) =
        apply(Some(&live), &first, "other", false, &managed, pvc_schema()).unwrap();
    let (object, _) = apply(
        Some(&live),
        &pvc("1Gi"),
        "kubectl",
        false,
        &managed,
        pvc_schema(),
    )
    .unwrap();
    assert_eq!(object["metadata"]["labels"]["tier"], json!("backend"));
}

#[test]
fn changing_a_field_owned_by_an_updater_conflicts_unless_forced() {
    // Created with client-side apply (an Update by kubectl-client-side-apply).
    let live = pvc("1Gi");
    let managed = update_managed_fields(
        &Value::Null,
        &live,
        "kubectl-client-side-apply",
        &ManagedFields::default(),
        pvc_schema(),
    );
    let err = apply(
        Some(&live),
        &pvc("2Gi"),
        "kubectl",
        false,
        &managed,
        pvc_schema(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.resources.requests.storage"
    );
    assert_eq!(err.status_code(), 409);
    assert_eq!(err.conflicts()[0].field, ".spec.resources.requests.storage");
    assert_eq!(
        err.conflicts()[0].cause_message(),
        "conflict with \"kubectl-client-side-apply\" using v1"
    );

    // The same values do not conflict: ownership is shared.
    let (_, shared) = apply(
        Some(&live),
        &pvc("1Gi"),
        "kubectl",
        false,
        &managed,
        pvc_schema(),
    )
    .unwrap();
    let storage = [
        PathElement::Field("spec".into()),
        PathElement::Field("resources".into()),
        PathElement::Field("requests".into()),
        PathElement::Field("storage".into()),
    ];
    assert!(fields_of(&shared, "kubectl").contains(&storage));
    assert!(fields_of(&shared, "kubectl-client-side-apply").contains(&storage));

    // Forcing takes the field.
    let (object, forced) = apply(
        Some(&live),
        &pvc("2Gi"),
        "kubectl",
        true,
        &managed,
        pvc_schema(),
    )
    .unwrap();
    assert_eq!(
        object["spec"]["resources"]["requests"]["storage"],
        json!("2Gi")
    );
    assert!(fields_of(&forced, "kubectl").contains(&storage));
    assert!(!fields_of(&forced, "kubectl-client-side-apply").contains(&storage));
}

#[test]
fn update_records_maps_with_dot_and_skips_server_owned_metadata() {
    let mut object = pvc("1Gi");
    object["metadata"]["uid"] = json!("u-1");
    object["metadata"]["resourceVersion"] = json!("5");
    let managed = update_managed_fields(
        &Value::Null,
        &object,
        "kubectl-create",
        &ManagedFields::default(),
        pvc_schema(),
    );
    assert_eq!(
        managed.to_value(),
        json!([{
            "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:accessModes": {}, "f:resources": {"f:requests": {".": {}, "f:storage": {}}}}
            }
        }])
    );
}

#[test]
fn update_moves_changed_fields_to_the_updater() {
    let live = pvc("1Gi");
    let (_, managed) = apply(
        None,
        &live,
        "kubectl",
        false,
        &ManagedFields::default(),
        pvc_schema(),
    )
    .unwrap();
    let mut bound = live.clone();
    bound["metadata"]["labels"]["app"] = json!("web");
    bound["status"] = json!({"phase": "Bound"});
    let mut managed = update_managed_fields(
        &live,
        &bound,
        "kube-controller-manager",
        &managed,
        pvc_schema(),
    );
    let app = [
        PathElement::Field("metadata".into()),
        PathElement::Field("labels".into()),
        PathElement::Field("app".into()),
    ];
    assert!(fields_of(&managed, "kube-controller-manager").contains(&app));
    assert!(!fields_of(&managed, "kubectl").contains(&app));
    managed.stamp_time("2024-01-01T00:00:00Z");
    assert!(managed.entries.iter().all(|e| e.time.is_some()));
    // An update that changes nothing leaves the manager's time alone.
    let again = update_managed_fields(
        &bound,
        &bound,
        "kube-controller-manager",
        &managed,
        pvc_schema(),
    );
    assert_eq!(again, managed);
}

#[test]
fn keyed_lists_are_owned_per_item_and_removed_items_go() {
    let pod = |containers: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}});
    let both = pod(
        json!([{"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]}, {"name": "b", "image": "b:1"}]),
    );
    let (live, managed) = apply(
        None,
        &both,
        "kubectl",
        false,
        &ManagedFields::default(),
        pod_schema(),
    )
    .unwrap();
    assert_eq!(
        managed.entries[0].fields.to_fields_v1()["f:spec"]["f:containers"]["k:{\"name\":\"a\"}"],
        json!({".": {}, "f:image": {}, "f:name": {},
               "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}})
    );
    // Another manager sets b's image too, then kubectl drops b: b stays with what the other owns.
    let mut with_pull = live.clone();
    with_pull["spec"]["containers"][1]["imagePullPolicy"] = json!("Always");
    let managed = update_managed_fields(&live, &with_pull, "other", &managed, pod_schema());
    let only_a = pod(json!([{"name": "a", "image": "a:2", "ports": [{"containerPort": 80}]}]));
    let (object, _) = apply(
        Some(&with_pull),
        &only_a,
        "kubectl",
        false,
        &managed,
        pod_schema(),
    )
    .unwrap();
    assert_eq!(
        object["spec"]["containers"],
        json!([{"name": "a", "image": "a:2", "ports": [{"containerPort": 80}]}, {"name": "b", "imagePullPolicy": "Always"}])
    );
    // Without the other manager, b disappears entirely.
    let (_, managed) = apply(
        None,
        &both,
        "kubectl",
        false,
        &ManagedFields::default(),
        pod_schema(),
    )
    .unwrap();
    let (object, _) = apply(
        Some(&both),
        &only_a,
        "kubectl",
        false,
        &managed,
        pod_schema(),
    )
    .unwrap();
    assert_eq!(object["spec"]["containers"], only_a["spec"]["containers"]);
}

#[test]
fn finalizers_are_owned_per_value() {
    let obj = |f: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": f}});
    let schema = schema_for("", "ConfigMap");
    let (live, managed) = apply(
        None,
        &obj(json!(["a"])),
        "m1",
        false,
        &ManagedFields::default(),
        schema,
    )
    .unwrap();
    let (live, managed) = apply(
        Some(&live),
        &obj(json!(["b"])),
        "m2",
        false,
        &managed,
        schema,
    )
    .unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["a", "b"]));
    assert_eq!(
        managed.entries[1].fields.to_fields_v1(),
        json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}}}})
    );
    let (live, _) = apply(Some(&live), &obj(json!([])), "m1", false, &managed, schema).unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn custom_kinds_track_maps_granularly_and_lists_atomically() {
    let vm = |disks: Value| {
        json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm"},
                                   "spec": {"running": true, "disks": disks}})
    };
    let managed = update_managed_fields(
        &Value::Null,
        &vm(json!([{"name": "a"}])),
        "kubectl-create",
        &ManagedFields::default(),
        None,
    );
    assert_eq!(
        managed.entries[0].fields.to_fields_v1(),
        json!({"f:spec": {".": {}, "f:disks": {}, "f:running": {}}})
    );
    let err = apply(
        Some(&vm(json!([{"name": "a"}]))),
        &vm(json!([{"name": "b"}])),
        "kubectl",
        false,
        &managed,
        None,
    )
    .unwrap_err();
    assert_eq!(err.conflicts().len(), 1);
    assert_eq!(err.conflicts()[0].field, ".spec.disks");
}

#[test]
fn first_apply_to_an_object_without_managed_fields_credits_before_first_apply() {
    let live = pvc("1Gi");
    let err = apply(
        Some(&live),
        &pvc("2Gi"),
        "kubectl",
        false,
        &ManagedFields::default(),
        pvc_schema(),
    )
    .unwrap_err();
    assert_eq!(err.conflicts()[0].manager, BEFORE_FIRST_APPLY);
}

#[test]
fn bad_configurations_are_rejected() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"image": "x"}]}});
    let err = apply(
        None,
        &pod,
        "kubectl",
        false,
        &ManagedFields::default(),
        pod_schema(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        ".spec.containers: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
    );
    let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
    let err = apply(
        None,
        &dup,
        "kubectl",
        false,
        &ManagedFields::default(),
        pod_schema(),
    )
    .unwrap_err();
    assert!(matches!(err, ApplyError::DuplicateListKey { .. }), "{err}");
    assert_eq!(
        apply(
            None,
            &json!([]),
            "k",
            false,
            &ManagedFields::default(),
            None
        )
        .unwrap_err(),
        ApplyError::NotAnObject
    );
}

#[test]
fn apply_keeps_config_order_and_live_only_items_in_place() {
    let pod = |names: &[&str]| {
        let containers: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
        json!({"spec": {"containers": containers}})
    };
    let live = pod(&["a", "x", "b"]);
    let managed = update_managed_fields(
        &Value::Null,
        &live,
        "other",
        &ManagedFields::default(),
        pod_schema(),
    );
    let (object, _) = apply(
        Some(&live),
        &pod(&["b", "a", "c"]),
        "kubectl",
        false,
        &managed,
        pod_schema(),
    )
    .unwrap();
    assert_eq!(object, pod(&["b", "a", "x", "c"]));
}

// ---- property tests ----

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (0i64..4).prop_map(|n| json!(n)),
        "[a-c]{1,2}".prop_map(Value::String),
        prop::collection::vec("[a-c]", 0..3).prop_map(|v| json!(v)),
    ]
}

fn arb_spec() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    let nested = prop::collection::btree_map("[m-o]", arb_leaf(), 1..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop::collection::btree_map("[a-f]", prop_oneof![arb_leaf(), nested], 2..6)
        .prop_map(|m| m.into_iter().collect())
}

fn custom(spec: serde_json::Map<String, Value>) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec})
}

proptest! {
    #[test]
    fn reapplying_with_fields_removed_removes_exactly_them(
        spec in arb_spec(),
        keep_mask in prop::collection::vec(any::<bool>(), 6),
    ) {
        let first = custom(spec.clone());
        let (live, managed) = apply(None, &first, "m", false, &ManagedFields::default(), None).unwrap();
        prop_assert_eq!(&live, &first);
        let kept: serde_json::Map<String, Value> = spec
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || keep_mask[*i])
            .map(|(_, (k, v))| (k.clone(), v.clone()))
            .collect();
        let second = custom(kept);
        let (object, managed) = apply(Some(&live), &second, "m", false, &managed, None).unwrap();
        prop_assert_eq!(&object, &second);
        // Re-applying the same configuration is a no-op.
        let (again, managed_again) = apply(Some(&object), &second, "m", false, &managed, None).unwrap();
        prop_assert_eq!(&again, &second);
        prop_assert_eq!(managed_again, managed);
    }

    #[test]
    fn changing_another_managers_field_conflicts_and_force_transfers_it(
        spec in arb_spec(),
        pick in any::<prop::sample::Index>(),
    ) {
        let first = custom(spec.clone());
        let (live, managed) = apply(None, &first, "owner", false, &ManagedFields::default(), None).unwrap();
        let key = spec.keys().nth(pick.index(spec.len())).unwrap().clone();
        // Change one leaf the owner applied: the value itself, or one member of a nested map.
        let (changed_value, leaf) = match &spec[&key] {
            Value::Object(nested) => {
                let inner = nested.keys().next().unwrap().clone();
                (json!({inner.clone(): "something-else"}), vec![key.clone(), inner])
            }
            _ => (json!("something-else"), vec![key.clone()]),
        };
        let mut changed_spec = serde_json::Map::new();
        changed_spec.insert(key.clone(), changed_value);
        let challenger = custom(changed_spec);
        let err = apply(Some(&live), &challenger, "challenger", false, &managed, None).unwrap_err();
        let field = format!(".spec.{}", leaf.join("."));
        prop_assert_eq!(err.conflicts().len(), 1);
        prop_assert_eq!(&err.conflicts()[0].manager, "owner");
        prop_assert_eq!(&err.conflicts()[0].field, &field);

        let (object, forced) = apply(Some(&live), &challenger, "challenger", true, &managed, None).unwrap();
        let pointer = format!("/spec/{}", leaf.join("/"));
        prop_assert_eq!(object.pointer(&pointer), Some(&json!("something-else")));
        let mut path = vec![PathElement::Field("spec".into())];
        path.extend(leaf.iter().map(|f| PathElement::Field(f.clone())));
        prop_assert!(fields_of(&forced, "challenger").contains(&path));
        prop_assert!(forced.entries.iter().filter(|e| e.manager == "owner")
            .all(|e| !e.fields.contains(&path)));

        // Applying the owner's own values is not a conflict.
        let mut same_spec = serde_json::Map::new();
        same_spec.insert(key.clone(), spec[&key].clone());
        prop_assert!(apply(Some(&live), &custom(same_spec), "challenger", false, &managed, None).is_ok());
    }
}

#[test]
fn subresource_writes_are_recorded_with_their_subresource() {
    let live = pvc("1Gi");
    let mut bound = live.clone();
    bound["status"] = json!({"phase": "Bound"});
    let managed = update_managed_fields_of_subresource(
        &live,
        &bound,
        "kcm",
        "status",
        &ManagedFields::default(),
        pvc_schema(),
    );
    assert_eq!(managed.entries[0].subresource, "status");
    let mut lost = bound.clone();
    lost["status"]["phase"] = json!("Lost");
    let err = apply_to_subresource(
        Some(&bound),
        &lost,
        "other",
        "status",
        false,
        &managed,
        pvc_schema(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kcm\" with subresource \"status\" using v1: .status.phase"
    );
}

#[test]
fn update_marks_what_appeared_with_dot_like_upstream() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"containers": [{"name": "a", "image": "x"}]}});
    let managed = update_managed_fields(
        &Value::Null,
        &pod,
        "kubectl-create",
        &ManagedFields::default(),
        pod_schema(),
    );
    // containers is always serialized by Go, so only its new item carries ".".
    assert_eq!(
        managed.entries[0].fields.to_fields_v1(),
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
    );
    let mut grown = pod.clone();
    grown["metadata"]["ownerReferences"] = json!([{"uid": "u1", "name": "rs"}]);
    grown["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "b", "resources": {"limits": {"cpu": "1"}}}));
    let managed = update_managed_fields(&pod, &grown, "kcm", &managed, pod_schema());
    assert_eq!(
        fields_of(&managed, "kcm").to_fields_v1(),
        json!({
            "f:metadata": {"f:ownerReferences": {".": {}, "k:{\"uid\":\"u1\"}": {".": {}, "f:name": {}, "f:uid": {}}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"b\"}": {
                ".": {}, "f:name": {},
                "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}}}
            }}}
        })
    );
}

#[test]
fn custom_kind_apply_owns_map_entries_themselves() {
    let thing = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t", "labels": {}},
                       "spec": {"size": 1, "extra": {}}});
    let (_, managed) = apply(
        None,
        &thing,
        "kubectl",
        false,
        &ManagedFields::default(),
        None,
    )
    .unwrap();
    assert_eq!(
        managed.entries[0].fields.to_fields_v1(),
        json!({"f:metadata": {"f:labels": {}}, "f:spec": {".": {}, "f:extra": {}, "f:size": {}}})
    );
}

fn arb_containers() -> impl Strategy<Value = Vec<Value>> {
    let env = prop::collection::btree_map("[A-C]", "[x-z]{1,2}", 0..3).prop_map(|m| {
        m.into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect::<Vec<_>>()
    });
    let ports = prop::collection::btree_set(1u16..4, 0..3).prop_map(|s| {
        s.into_iter()
            .map(|p| json!({"containerPort": p}))
            .collect::<Vec<_>>()
    });
    prop::collection::btree_map("[a-e]", ("[a-c]:[0-9]", env, ports), 1..5).prop_map(|m| {
        m.into_iter()
            .map(|(name, (image, env, ports))| {
                let mut c = json!({"name": name, "image": image});
                if !env.is_empty() {
                    c["env"] = Value::Array(env);
                }
                if !ports.is_empty() {
                    c["ports"] = Value::Array(ports);
                }
                c
            })
            .collect()
    })
}

fn pod_with(containers: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

proptest! {
    #[test]
    fn reapplying_a_pod_without_some_containers_removes_them(
        containers in arb_containers(),
        keep_mask in prop::collection::vec(any::<bool>(), 5),
        new_image in "[d-f]:[0-9]",
    ) {
        let (live, managed) =
            apply(None, &pod_with(containers.clone()), "m", false, &ManagedFields::default(), pod_schema()).unwrap();
        let mut kept: Vec<Value> = containers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || keep_mask[*i])
            .map(|(_, c)| c.clone())
            .collect();
        kept[0]["image"] = json!(new_image);
        let second = pod_with(kept);
        let (object, managed) = apply(Some(&live), &second, "m", false, &managed, pod_schema()).unwrap();
        prop_assert_eq!(&object, &second);
        prop_assert_eq!(managed.entries.len(), 1);
        // Another manager changing the image conflicts; forcing takes it over.
        let mut other = pod_with(vec![json!({"name": second["spec"]["containers"][0]["name"], "image": "other:1"})]);
        let err = apply(Some(&object), &other, "other", false, &managed, pod_schema()).unwrap_err();
        prop_assert_eq!(err.conflicts().len(), 1);
        let name = second["spec"]["containers"][0]["name"].as_str().unwrap().to_owned();
        prop_assert_eq!(&err.conflicts()[0].field, &format!(".spec.containers[name=\"{name}\"].image"));
        other["metadata"]["labels"] = json!({"x": "y"});
        let (forced, _) = apply(Some(&object), &other, "other", true, &managed, pod_schema()).unwrap();
        prop_assert_eq!(&forced["spec"]["containers"][0]["image"], &json!("other:1"));
        prop_assert_eq!(&forced["metadata"]["labels"], &json!({"x": "y"}));
    }
}
