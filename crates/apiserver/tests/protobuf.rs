//! Kubernetes protobuf bodies ⇄ JSON: hand-built gogo-style bytes decode to kube-apiserver's JSON,
//! encode→decode round trips, and malformed input is rejected.

use serde_json::{Value, json};
use volplane_apiserver::protobuf::{MEDIA_TYPE, ProtobufError, decode, encode, supports};

// ------------------------------------------------------------------ hand-built protobuf helpers

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// A length-delimited field.
fn ld(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(number) << 3 | 2);
    out.extend(varint(payload.len() as u64));
    out.extend_from_slice(payload);
    out
}

fn s(number: u32, value: &str) -> Vec<u8> {
    ld(number, value.as_bytes())
}

/// A varint field (negative values sign-extended, as gogo writes int32/int64).
fn v(number: u32, value: i64) -> Vec<u8> {
    let mut out = varint(u64::from(number) << 3);
    out.extend(varint(value as u64));
    out
}

/// A nested message field.
fn m(number: u32, parts: &[Vec<u8>]) -> Vec<u8> {
    ld(number, &parts.concat())
}

/// A map<string, string> entry.
fn entry(number: u32, key: &str, value: &str) -> Vec<u8> {
    m(number, &[s(1, key), s(2, value)])
}

/// A map<string, Quantity> entry.
fn quantity_entry(number: u32, key: &str, quantity: &str) -> Vec<u8> {
    m(number, &[s(1, key), m(2, &[s(1, quantity)])])
}

fn envelope(api_version: &str, kind: &str, raw: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    out.extend(m(1, &[s(1, api_version), s(2, kind)]));
    out.extend(m(2, raw));
    out.extend(s(3, ""));
    out.extend(s(4, ""));
    out
}

/// ObjectMeta the way gogo writes it for a new object: every non-pointer field, zero or not,
/// and creationTimestamp as an empty message (Go's zero time).
fn new_object_meta(name: &str, namespace: &str) -> Vec<u8> {
    m(
        1,
        &[
            s(1, name),
            s(2, ""),
            s(3, namespace),
            s(4, ""),
            s(5, ""),
            s(6, ""),
            v(7, 0),
            ld(8, &[]),
        ],
    )
}

fn timestamp(seconds: i64, nanos: i64) -> Vec<u8> {
    [v(1, seconds), v(2, nanos)].concat()
}

fn round_trip(obj: &Value) {
    let bytes = encode(obj).unwrap_or_else(|e| panic!("encode {obj}: {e}"));
    assert!(bytes.starts_with(b"k8s\0"));
    let back = decode(&bytes).unwrap_or_else(|e| panic!("decode {obj}: {e}"));
    assert_eq!(&back, obj);
}

/// Nested so that `cargo test -p volplane-apiserver protobuf` selects these tests by name.
mod protobuf {
    use super::*;

    // ------------------------------------------------------------------ decode hand-built bodies

    #[test]
    fn media_type_and_supported_kinds() {
        assert_eq!(MEDIA_TYPE, "application/vnd.kubernetes.protobuf");
        assert!(supports("v1", "ConfigMap"));
        assert!(supports("v1", "PersistentVolumeList"));
        assert!(supports("storage.k8s.io/v1", "VolumeAttachment"));
        assert!(supports("apps/v1", "DeleteOptions"));
        assert!(!supports("apps/v1", "Deployment"));
        assert!(!supports("v1", "Service"));
    }

    #[test]
    fn configmap_from_kubectl_create_from_literal() {
        // kubectl create configmap x --from-literal=a=1
        let body = envelope(
            "v1",
            "ConfigMap",
            &[new_object_meta("x", ""), entry(2, "a", "1")],
        );
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}})
        );
    }

    #[test]
    fn configmap_binary_data_and_immutable() {
        let body = envelope(
            "v1",
            "ConfigMap",
            &[
                new_object_meta("bin", "default"),
                m(3, &[s(1, "blob"), ld(2, &[0xde, 0xad, 0xbe, 0xef])]),
                v(4, 0),
            ],
        );
        assert_eq!(
            decode(&body).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "bin", "namespace": "default"},
                // immutable is a pointer: present means set, even to false.
                "immutable": false,
                "binaryData": {"blob": "3q2+7w=="}
            })
        );
    }

    #[test]
    fn secret_with_binary_data() {
        let body = envelope(
            "v1",
            "Secret",
            &[
                new_object_meta("creds", "ns1"),
                m(2, &[s(1, "key"), ld(2, &[0x00, 0xff, 0x10])]),
                m(2, &[s(1, "text"), ld(2, b"hunter2")]),
                s(3, "Opaque"),
                v(5, 1),
            ],
        );
        let secret = decode(&body).unwrap();
        assert_eq!(
            secret,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "ns1"},
                "immutable": true,
                "data": {"key": "AP8Q", "text": "aHVudGVyMg=="},
                "type": "Opaque"
            })
        );
        round_trip(&secret);
    }

    #[test]
    fn namespace_with_empty_spec_and_status() {
        // kubectl create namespace team-a: spec and status are non-pointer structs, always written.
        let body = envelope(
            "v1",
            "Namespace",
            &[new_object_meta("team-a", ""), ld(2, &[]), ld(3, &[])],
        );
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {}, "status": {}})
        );
    }

    #[test]
    fn metadata_labels_owner_references_and_times() {
        let meta = m(
            1,
            &[
                s(1, "p"),
                s(3, "default"),
                s(5, "uid-1"),
                s(6, "42"),
                v(7, 3),
                ld(8, &timestamp(1_700_000_000, 999_999_999)),
                ld(9, &timestamp(1_700_000_100, 0)),
                v(10, 30),
                entry(11, "app", "web"),
                entry(12, "note", "x"),
                m(
                    13,
                    &[
                        s(1, "ReplicaSet"),
                        s(3, "rs"),
                        s(4, "rs-uid"),
                        s(5, "apps/v1"),
                        v(6, 1),
                        v(7, 1),
                    ],
                ),
                s(14, "example.com/finalizer"),
                m(
                    17,
                    &[
                        s(1, "kubectl"),
                        s(2, "Update"),
                        s(3, "v1"),
                        ld(4, &timestamp(1_700_000_000, 0)),
                        s(6, "FieldsV1"),
                        m(7, &[ld(1, br#"{"f:data":{}}"#)]),
                    ],
                ),
            ],
        );
        let obj = decode(&envelope("v1", "ConfigMap", &[meta])).unwrap();
        assert_eq!(
            obj["metadata"],
            json!({
                "name": "p", "namespace": "default", "uid": "uid-1", "resourceVersion": "42",
                "generation": 3,
                // Time has second precision: nanos are dropped, as Go does.
                "creationTimestamp": "2023-11-14T22:13:20Z",
                "deletionTimestamp": "2023-11-14T22:15:00Z",
                "deletionGracePeriodSeconds": 30,
                "labels": {"app": "web"},
                "annotations": {"note": "x"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid",
                    "controller": true, "blockOwnerDeletion": true
                }],
                "finalizers": ["example.com/finalizer"],
                "managedFields": [{
                    "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                    "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}}
                }]
            })
        );
        round_trip(&obj);
    }

    #[test]
    fn pod_with_containers_volumes_mounts_resources_and_env() {
        let container = m(
            2,
            &[
                s(1, "app"),
                s(2, "nginx:1.25"),
                s(3, "/bin/sh"),
                s(4, "-c"),
                s(4, "sleep 1"),
                s(5, ""),
                m(6, &[s(1, "http"), v(2, 0), v(3, 80), s(4, "TCP"), s(5, "")]),
                m(7, &[s(1, "MODE"), s(2, "prod")]),
                m(
                    7,
                    &[
                        s(1, "POD"),
                        s(2, ""),
                        m(3, &[m(1, &[s(1, "v1"), s(2, "metadata.name")])]),
                    ],
                ),
                m(
                    7,
                    &[
                        s(1, "PASSWORD"),
                        s(2, ""),
                        m(
                            3,
                            &[m(4, &[m(1, &[s(1, "db")]), s(2, "password"), v(3, 1)])],
                        ),
                    ],
                ),
                m(
                    8,
                    &[
                        quantity_entry(1, "cpu", "500m"),
                        quantity_entry(2, "memory", "64Mi"),
                    ],
                ),
                m(
                    9,
                    &[s(1, "data"), v(2, 0), s(3, "/data"), s(4, ""), s(6, "")],
                ),
                m(
                    9,
                    &[
                        s(1, "cfg"),
                        v(2, 1),
                        s(3, "/etc/cfg"),
                        s(4, "app.conf"),
                        s(6, ""),
                    ],
                ),
                // livenessProbe: ProbeHandler is inlined in JSON; port is an IntOrString name.
                m(
                    10,
                    &[
                        m(
                            1,
                            &[m(
                                2,
                                &[
                                    s(1, "/healthz"),
                                    m(2, &[v(1, 1), v(2, 0), s(3, "http")]),
                                    s(3, ""),
                                    s(4, "HTTP"),
                                ],
                            )],
                        ),
                        v(2, 5),
                        v(3, 1),
                        v(4, 10),
                        v(5, 1),
                        v(6, 3),
                    ],
                ),
                // readinessProbe: tcpSocket with a numeric port.
                m(
                    11,
                    &[
                        m(
                            1,
                            &[m(3, &[m(1, &[v(1, 0), v(2, 8080), s(3, "")]), s(2, "")])],
                        ),
                        v(2, 0),
                    ],
                ),
                s(13, "/dev/termination-log"),
                s(14, "IfNotPresent"),
                m(
                    15,
                    &[v(2, 0), v(4, 1000), v(5, 1), v(7, 0), m(1, &[s(2, "ALL")])],
                ),
                v(16, 0),
                v(17, 0),
                v(18, 0),
                s(20, "File"),
            ],
        );
        let spec = m(
            2,
            &[
                m(
                    1,
                    &[s(1, "data"), m(2, &[m(10, &[s(1, "claim-1"), v(2, 0)])])],
                ),
                m(
                    1,
                    &[
                        s(1, "cfg"),
                        m(2, &[m(19, &[m(1, &[s(1, "app-config")]), v(3, 420)])]),
                    ],
                ),
                m(
                    1,
                    &[
                        s(1, "scratch"),
                        m(2, &[m(2, &[s(1, ""), m(2, &[s(1, "1Gi")])])]),
                    ],
                ),
                container,
                s(3, "Always"),
                v(4, 30),
                s(6, "ClusterFirst"),
                entry(7, "disk", "ssd"),
                s(8, "default"),
                s(9, "default"),
                s(10, ""),
                v(11, 0),
                v(12, 0),
                v(13, 0),
                m(14, &[v(5, 2000), ld(4, &[0xe8, 0x07, 0xd0, 0x0f])]),
                s(16, ""),
                s(17, ""),
                s(19, "default-scheduler"),
                m(
                    22,
                    &[
                        s(1, "node.kubernetes.io/not-ready"),
                        s(2, "Exists"),
                        s(3, ""),
                        s(4, "NoExecute"),
                        v(5, 300),
                    ],
                ),
                v(25, 0),
                v(30, 0),
                s(31, "PreemptLowerPriority"),
            ],
        );
        let body = envelope(
            "v1",
            "Pod",
            &[
                new_object_meta("web", "default"),
                spec,
                m(3, &[s(1, "Pending"), s(9, "Burstable")]),
            ],
        );
        let pod = decode(&body).unwrap();
        let expected = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "claim-1"}},
                    {"name": "cfg", "configMap": {"name": "app-config", "defaultMode": 420}},
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}
                ],
                "containers": [{
                    "name": "app",
                    "image": "nginx:1.25",
                    "command": ["/bin/sh"],
                    "args": ["-c", "sleep 1"],
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                    "env": [
                        {"name": "MODE", "value": "prod"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password", "optional": true}}}
                    ],
                    "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "cfg", "readOnly": true, "mountPath": "/etc/cfg", "subPath": "app.conf"}
                    ],
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                        "initialDelaySeconds": 5, "timeoutSeconds": 1, "periodSeconds": 10,
                        "successThreshold": 1, "failureThreshold": 3
                    },
                    "readinessProbe": {"tcpSocket": {"port": 8080}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {
                        "capabilities": {"drop": ["ALL"]},
                        "privileged": false,
                        "runAsUser": 1000,
                        "runAsNonRoot": true,
                        "allowPrivilegeEscalation": false
                    }
                }],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "nodeSelector": {"disk": "ssd"},
                "serviceAccountName": "default",
                "serviceAccount": "default",
                // Packed repeated int64 (1000, 2000) is accepted as well as unpacked.
                "securityContext": {"supplementalGroups": [1000, 2000], "fsGroup": 2000},
                "schedulerName": "default-scheduler",
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                "priority": 0,
                "enableServiceLinks": false,
                "preemptionPolicy": "PreemptLowerPriority"
            },
            "status": {"phase": "Pending", "qosClass": "Burstable"}
        });
        assert_eq!(pod, expected);
        round_trip(&pod);
    }

    #[test]
    fn persistent_volume_claim() {
        let spec = m(
            2,
            &[
                s(1, "ReadWriteOnce"),
                m(2, &[quantity_entry(2, "storage", "10Gi")]),
                s(3, ""),
                m(4, &[entry(1, "tier", "gold")]),
                s(5, "fast"),
                s(6, "Filesystem"),
            ],
        );
        let status = m(
            3,
            &[
                s(1, "Bound"),
                s(2, "ReadWriteOnce"),
                quantity_entry(3, "storage", "10Gi"),
            ],
        );
        let body = envelope(
            "v1",
            "PersistentVolumeClaim",
            &[new_object_meta("data", "default"), spec, status],
        );
        let pvc = decode(&body).unwrap();
        assert_eq!(
            pvc,
            json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "default"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "selector": {"matchLabels": {"tier": "gold"}},
                    "resources": {"requests": {"storage": "10Gi"}},
                    "storageClassName": "fast",
                    "volumeMode": "Filesystem"
                },
                "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}
            })
        );
        round_trip(&pvc);
    }

    #[test]
    fn storage_class() {
        let body = envelope(
            "storage.k8s.io/v1",
            "StorageClass",
            &[
                new_object_meta("fast", ""),
                s(2, "csi.volplane.io"),
                entry(3, "type", "ssd"),
                s(4, "Delete"),
                s(5, "discard"),
                v(6, 1),
                s(7, "WaitForFirstConsumer"),
                m(
                    8,
                    &[m(
                        1,
                        &[s(1, "topology.kubernetes.io/zone"), s(2, "a"), s(2, "b")],
                    )],
                ),
            ],
        );
        let sc = decode(&body).unwrap();
        assert_eq!(
            sc,
            json!({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "fast"},
                "provisioner": "csi.volplane.io",
                "parameters": {"type": "ssd"},
                "reclaimPolicy": "Delete",
                "mountOptions": ["discard"],
                "allowVolumeExpansion": true,
                "volumeBindingMode": "WaitForFirstConsumer",
                "allowedTopologies": [{"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a", "b"]}]}]
            })
        );
        round_trip(&sc);
    }

    #[test]
    fn delete_options_keep_a_zero_grace_period() {
        let body = envelope(
            "v1",
            "DeleteOptions",
            &[
                v(1, 0),
                m(2, &[s(1, "uid-9")]),
                s(4, "Background"),
                s(5, "All"),
            ],
        );
        let opts = decode(&body).unwrap();
        assert_eq!(
            opts,
            json!({
                "apiVersion": "v1", "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "uid-9"},
                "propagationPolicy": "Background",
                "dryRun": ["All"]
            })
        );
        round_trip(&opts);
        // client-go sends DeleteOptions under the group version of the resource.
        let storage = envelope("storage.k8s.io/v1", "DeleteOptions", &[s(4, "Foreground")]);
        assert_eq!(decode(&storage).unwrap()["propagationPolicy"], "Foreground");
    }

    #[test]
    fn required_fields_show_their_zero_value_and_unknown_fields_are_skipped() {
        let container = m(2, &[s(2, "busybox")]);
        let unknown_fields = [
            v(99, 7),
            s(100, "future"),
            [varint(101 << 3 | 5), vec![1, 2, 3, 4]].concat(),
            [varint(102 << 3 | 1), vec![0; 8]].concat(),
        ]
        .concat();
        let body = envelope("v1", "Pod", &[m(2, &[container, unknown_fields])]);
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "", "image": "busybox"}]}})
        );
    }

    #[test]
    fn negative_int32_is_sign_extended() {
        let body = envelope(
            "v1",
            "Event",
            &[
                m(2, &[s(3, "pod")]),
                v(8, -1),
                s(14, "kubelet"),
                s(15, "node-1"),
            ],
        );
        let event = decode(&body).unwrap();
        assert_eq!(event["count"], -1);
        assert_eq!(event["involvedObject"], json!({"name": "pod"}));
        round_trip(&event);
    }

    // ------------------------------------------------------------------ round trips

    #[test]
    fn round_trip_persistent_volume_with_csi_and_node_affinity() {
        round_trip(&json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {
                "name": "pvc-0a1b",
                "uid": "7c1d", "resourceVersion": "17",
                "creationTimestamp": "2024-02-29T12:00:00Z",
                "annotations": {"pv.kubernetes.io/provisioned-by": "csi.volplane.io"},
                "finalizers": ["kubernetes.io/pv-protection", "external-attacher/csi-volplane-io"]
            },
            "spec": {
                "capacity": {"storage": "5Gi"},
                "csi": {
                    "driver": "csi.volplane.io",
                    "volumeHandle": "vol-123",
                    "fsType": "ext4",
                    "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": "1700-8081"},
                    "nodeStageSecretRef": {"name": "stage", "namespace": "kube-system"}
                },
                "accessModes": ["ReadWriteOnce"],
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data", "uid": "c0ffee", "apiVersion": "v1", "resourceVersion": "12"},
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": "fast",
                "mountOptions": ["noatime"],
                "volumeMode": "Filesystem",
                "nodeAffinity": {"required": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "topology.volplane.io/zone", "operator": "In", "values": ["z1", "z2"]}]}
                ]}}
            },
            "status": {"phase": "Bound", "lastPhaseTransitionTime": "2024-02-29T12:00:05Z"}
        }));
    }

    #[test]
    fn round_trip_storage_and_coordination_kinds() {
        round_trip(&json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": "csi-abc"},
            "spec": {"attacher": "csi.volplane.io", "source": {"persistentVolumeName": "pvc-0a1b"}, "nodeName": "node-1"},
            "status": {"attached": true, "attachmentMetadata": {"devicePath": "/dev/vdb"},
                       "detachError": {"time": "2024-01-01T00:00:00Z", "message": "busy", "errorCode": 9}}
        }));
        round_trip(&json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
            "metadata": {"name": "csi.volplane.io"},
            "spec": {"attachRequired": false, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                     "storageCapacity": true, "fsGroupPolicy": "File",
                     "tokenRequests": [{"audience": "vault", "expirationSeconds": 3600}], "requiresRepublish": false}
        }));
        round_trip(&json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
            "metadata": {"name": "node-1", "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "n1"}]},
            "spec": {"drivers": [{"name": "csi.volplane.io", "nodeID": "node-1", "topologyKeys": ["topology.volplane.io/zone"], "allocatable": {"count": 16}}]}
        }));
        round_trip(&json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "CSIStorageCapacity",
            "metadata": {"name": "csisc-1", "namespace": "kube-system", "generateName": "csisc-"},
            "nodeTopology": {"matchLabels": {"topology.volplane.io/zone": "z1"}},
            "storageClassName": "fast",
            "capacity": "100Gi",
            "maximumVolumeSize": "10Gi"
        }));
        round_trip(&json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "external-attacher-leader", "namespace": "kube-system"},
            "spec": {"holderIdentity": "attacher-0", "leaseDurationSeconds": 15,
                     "acquireTime": "2024-05-01T10:00:00.123456Z", "renewTime": "2024-05-01T10:00:10.000001Z",
                     "leaseTransitions": 0}
        }));
    }

    #[test]
    fn round_trip_events_nodes_and_service_accounts() {
        round_trip(&json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "pvc.17a", "namespace": "default"},
            "eventTime": "2024-05-01T10:00:00.500000Z",
            "series": {"count": 2, "lastObservedTime": "2024-05-01T10:01:00.000000Z"},
            "reportingController": "csi.volplane.io", "reportingInstance": "provisioner-0",
            "action": "Provisioning", "reason": "ProvisioningSucceeded",
            "regarding": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data"},
            "note": "Successfully provisioned volume", "type": "Normal"
        }));
        round_trip(&json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.17b", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "fieldPath": "spec.containers{app}"},
            "reason": "Started", "message": "Started container app",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": "2024-05-01T10:00:03Z",
            "count": 3, "type": "Normal",
            "reportingComponent": "kubelet", "reportingInstance": "node-1"
        }));
        round_trip(&json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
            "spec": {"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"], "providerID": "volplane://node-1",
                     "taints": [{"key": "node-role", "value": "storage", "effect": "NoSchedule", "timeAdded": "2024-01-02T03:04:05Z"}]},
            "status": {
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "3800m"},
                "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-02T03:04:05Z",
                                "lastTransitionTime": "2024-01-02T03:00:00Z", "reason": "KubeletReady", "message": "ok"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1",
                             "osImage": "Debian", "containerRuntimeVersion": "containerd://1.7", "kubeletVersion": "v1.30.0",
                             "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
                "volumesInUse": ["kubernetes.io/csi/csi.volplane.io^vol-123"],
                "volumesAttached": [{"name": "kubernetes.io/csi/csi.volplane.io^vol-123", "devicePath": ""}]
            }
        }));
        round_trip(&json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "csi-provisioner", "namespace": "kube-system"},
            "secrets": [{"name": "token"}],
            "imagePullSecrets": [{"name": "registry"}],
            "automountServiceAccountToken": false
        }));
    }

    #[test]
    fn round_trip_lists_and_status() {
        round_trip(&json!({
            "apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "99", "continue": "abc", "remainingItemCount": 0},
            "items": [
                {"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}},
                {"metadata": {"name": "b", "namespace": "default"}, "binaryData": {"bin": "AAE="}}
            ]
        }));
        round_trip(&json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClassList",
            "metadata": {"resourceVersion": "5"},
            "items": [{"metadata": {"name": "fast"}, "provisioner": "csi.volplane.io"}]
        }));
        round_trip(&json!({
            "apiVersion": "v1", "kind": "Status",
            "metadata": {},
            "status": "Failure", "message": "pods \"x\" not found", "reason": "NotFound",
            "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid", "field": "spec"}]},
            "code": 404
        }));
        round_trip(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "init", "namespace": "default"},
            "spec": {
                "initContainers": [{"name": "setup", "image": "busybox", "restartPolicy": "Always"}],
                "containers": [{"name": "main", "image": "busybox", "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg", "optional": false}}]}],
                "ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "main", "stdin": true, "tty": true}],
                "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}, "topologyKey": "kubernetes.io/hostname"}}
                ]}},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "minDomains": 2}],
                "volumes": [
                    {"name": "proj", "projected": {"sources": [
                        {"serviceAccountToken": {"audience": "api", "expirationSeconds": 3607, "path": "token"}},
                        {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                        {"secret": {"name": "s", "items": [{"key": "k", "path": "p", "mode": 256}]}}
                    ], "defaultMode": 420}},
                    {"name": "inline", "csi": {"driver": "csi.volplane.io", "readOnly": true, "volumeAttributes": {"size": "1Gi"}}},
                    {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"metadata": {"labels": {"a": "b"}},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}
                ]
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
                "podIPs": [{"ip": "10.0.0.5"}],
                "startTime": "2024-01-01T00:00:00Z",
                "containerStatuses": [{
                    "name": "main", "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "2024-01-01T00:01:00Z"}},
                    "lastState": {}, "ready": false, "restartCount": 0, "image": "busybox", "imageID": "sha256:1", "started": false
                }]
            }
        }));
    }

    // ------------------------------------------------------------------ malformed input

    #[test]
    fn bad_magic_is_rejected() {
        assert_eq!(decode(b""), Err(ProtobufError::BadMagic));
        assert_eq!(decode(b"k8s"), Err(ProtobufError::BadMagic));
        assert_eq!(decode(b"{\"kind\":\"Pod\"}"), Err(ProtobufError::BadMagic));
    }

    #[test]
    fn truncated_bodies_are_rejected() {
        let body = envelope(
            "v1",
            "ConfigMap",
            &[new_object_meta("x", "default"), entry(2, "a", "1")],
        );
        // Cut anywhere inside the raw object (after the typeMeta field and the raw key byte).
        let type_meta_len = 4 + 2 + 2 + "v1".len() + 2 + "ConfigMap".len();
        let raw_end = body.len() - 4; // the two empty strings at the end
        for cut in type_meta_len + 1..raw_end {
            let err = decode(&body[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ProtobufError::Truncated { .. } | ProtobufError::MalformedVarint { .. }
                ),
                "cut at {cut}: {err:?}"
            );
        }
        // A length prefix claiming more than the body holds.
        let mut lying = b"k8s\0".to_vec();
        lying.extend([0x12, 0xff, 0x01, 0x0a]);
        assert!(matches!(
            decode(&lying),
            Err(ProtobufError::Truncated { .. })
        ));
        // A varint that never ends.
        let mut endless = b"k8s\0".to_vec();
        endless.extend([0x12, 0x80, 0x80]);
        assert!(matches!(
            decode(&endless),
            Err(ProtobufError::MalformedVarint { .. })
        ));
    }

    #[test]
    fn unknown_kinds_are_rejected() {
        let body = envelope("apps/v1", "Deployment", &[new_object_meta("d", "default")]);
        assert_eq!(
            decode(&body),
            Err(ProtobufError::UnknownKind {
                api_version: "apps/v1".into(),
                kind: "Deployment".into()
            })
        );
        let body = envelope("", "", &[]);
        assert!(matches!(
            decode(&body),
            Err(ProtobufError::UnknownKind { .. })
        ));
        assert!(matches!(
            encode(&json!({"apiVersion": "v1", "kind": "Service"})),
            Err(ProtobufError::UnknownKind { .. })
        ));
    }

    #[test]
    fn wrong_wire_types_are_rejected() {
        // metadata.name sent as a varint.
        let body = envelope("v1", "ConfigMap", &[m(1, &[v(1, 5)])]);
        assert_eq!(
            decode(&body),
            Err(ProtobufError::WrongWireType {
                message: "ObjectMeta",
                field: "name",
                number: 1,
                got: 0,
                expected: 2
            })
        );
        // immutable (bool) sent length-delimited.
        let body = envelope("v1", "ConfigMap", &[s(4, "yes")]);
        assert!(matches!(
            decode(&body),
            Err(ProtobufError::WrongWireType {
                field: "immutable",
                ..
            })
        ));
        // A group wire type is not protobuf 3-era Kubernetes.
        let body = envelope("v1", "ConfigMap", &[varint(5 << 3 | 3)]);
        assert!(matches!(
            decode(&body),
            Err(ProtobufError::MalformedKey { .. })
        ));
    }

    #[test]
    fn invalid_utf8_and_encodings_are_rejected() {
        let body = envelope("v1", "ConfigMap", &[m(1, &[ld(1, &[0xff, 0xfe])])]);
        assert_eq!(
            decode(&body),
            Err(ProtobufError::InvalidUtf8 {
                message: "ObjectMeta",
                field: "name"
            })
        );
        let mut gzip = b"k8s\0".to_vec();
        gzip.extend(m(1, &[s(1, "v1"), s(2, "ConfigMap")]));
        gzip.extend(s(3, "gzip"));
        assert_eq!(
            decode(&gzip),
            Err(ProtobufError::UnsupportedContentEncoding("gzip".into()))
        );
        let bad_fields = envelope(
            "v1",
            "ConfigMap",
            &[m(1, &[m(17, &[m(7, &[ld(1, b"{not json")])])])],
        );
        assert!(matches!(
            decode(&bad_fields),
            Err(ProtobufError::InvalidValue {
                field: "fieldsV1",
                ..
            })
        ));
        let bad_nanos = envelope(
            "v1",
            "ConfigMap",
            &[m(1, &[ld(8, &timestamp(1, 2_000_000_000))])],
        );
        assert!(matches!(
            decode(&bad_nanos),
            Err(ProtobufError::InvalidValue {
                field: "creationTimestamp",
                ..
            })
        ));
    }

    #[test]
    fn json_that_does_not_fit_the_schema_is_rejected() {
        let err = encode(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}
        }))
        .unwrap_err();
        assert_eq!(
            err,
            ProtobufError::InvalidJson {
                path: "spec.containers[0].ports[0].containerPort".into(),
                reason: "expected a 32-bit integer".into()
            }
        );
        assert!(matches!(
            encode(&json!([])),
            Err(ProtobufError::InvalidJson { .. })
        ));
        assert!(matches!(
            encode(&json!({"kind": "Pod"})),
            Err(ProtobufError::InvalidJson { .. })
        ));
        assert!(matches!(
            encode(&json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}})),
            Err(ProtobufError::InvalidJson { .. })
        ));
        assert!(matches!(
            encode(
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"creationTimestamp": "yesterday"}})
            ),
            Err(ProtobufError::InvalidJson { .. })
        ));
    }

    #[test]
    fn encoding_is_deterministic_and_drops_unknown_json_fields() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"b": "2", "a": "1"}, "extra": 1});
        let b = json!({"kind": "ConfigMap", "data": {"a": "1", "b": "2"}, "metadata": {"name": "x"}, "apiVersion": "v1"});
        assert_eq!(encode(&a).unwrap(), encode(&b).unwrap());
        assert_eq!(decode(&encode(&a).unwrap()).unwrap(), b);
    }
}
