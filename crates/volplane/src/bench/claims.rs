//! The PersistentVolumeClaims the benchmark writes: a realistic ~600-byte manifest as a client
//! sends it, and the same claim in the form the API server stores it (for preloading a store
//! directly, without the API in the way).

use serde_json::{Value, json};

/// The name of claim `index` of run `run`. Watchers find their events by this prefix.
pub fn name(run: &str, index: usize) -> String {
    format!("{}{index:07}", name_prefix(run))
}

/// What every claim name of run `run` starts with.
pub fn name_prefix(run: &str) -> String {
    format!("bench-{run}-")
}

/// The claim's index, read back from the digits after the prefix.
pub fn index_of(digits: &str) -> Option<usize> {
    digits.get(..7)?.parse().ok()
}

/// The manifest a client POSTs: labels and annotations as a Helm chart would set them, and a
/// spec with class, access modes, mode and size. About 600 bytes of JSON.
pub fn manifest(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "postgresql",
                "app.kubernetes.io/instance": "orders-db",
                "app.kubernetes.io/component": "primary",
                "app.kubernetes.io/managed-by": "volplane-bench",
                "volplane.io/tier": "gold",
            },
            "annotations": {
                "volplane.io/owner-team": "payments-platform",
                "volplane.io/backup-schedule": "0 3 * * *",
                "volplane.io/description": "write-ahead log and data files of the orders database primary",
            },
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": "10Gi"}},
        },
    })
}

/// The claim as the API server stores it after a create: system metadata (uid, creation time,
/// managed fields), defaults and status, without `resourceVersion` (the store's revision is it).
pub fn stored(namespace: &str, name: &str, index: usize, created: &str) -> Value {
    let mut claim = manifest(namespace, name);
    let metadata = &mut claim["metadata"];
    metadata["uid"] = json!(format!("00000000-0000-4000-8000-{index:012x}"));
    metadata["creationTimestamp"] = json!(created);
    metadata["managedFields"] = json!([{
        "manager": "volplane-bench",
        "operation": "Update",
        "apiVersion": "v1",
        "time": created,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:annotations": {".": {}, "f:volplane.io/backup-schedule": {}, "f:volplane.io/description": {}, "f:volplane.io/owner-team": {}},
                "f:labels": {".": {}, "f:app.kubernetes.io/component": {}, "f:app.kubernetes.io/instance": {}, "f:app.kubernetes.io/managed-by": {}, "f:app.kubernetes.io/name": {}, "f:volplane.io/tier": {}},
            },
            "f:spec": {"f:accessModes": {}, "f:resources": {"f:requests": {".": {}, "f:storage": {}}}, "f:storageClassName": {}, "f:volumeMode": {}},
        },
    }]);
    claim["status"] = json!({"phase": "Pending"});
    claim
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_about_six_hundred_bytes() {
        let bytes = serde_json::to_vec(&manifest("bench-abc123", &name("abc123", 1))).unwrap();
        assert!((550..=700).contains(&bytes.len()), "{} bytes", bytes.len());
    }

    #[test]
    fn index_reads_back_from_the_name() {
        let name = name("r1", 4321);
        let digits = name.strip_prefix(&name_prefix("r1")).unwrap();
        assert_eq!(index_of(digits), Some(4321));
        assert_eq!(index_of("12"), None);
    }
}
