//! How long recording managed fields for one create takes (`cargo run --release -p
//! volplane-patch --example managed_fields_cost`): the API server does this on every write.

use std::time::Instant;

use serde_json::json;
use volplane_patch::{ManagedFields, schema_for, update_managed_fields_of_subresource};

fn main() {
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "claim-1", "namespace": "bench", "uid": "0b7c4a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "creationTimestamp": "2026-11-22T05:00:00Z",
            "labels": {"app": "bench", "tier": "storage", "run": "r1"},
            "annotations": {"volplane.io/bench": "true", "owner": "team-a"},
            "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard", "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}
    });
    let schema = schema_for("", "PersistentVolumeClaim");
    let managed = ManagedFields::from_object(&serde_json::Value::Null).unwrap();
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        let updated = update_managed_fields_of_subresource(
            &serde_json::Value::Null,
            &claim,
            "kubectl-create",
            "",
            &managed,
            schema,
        );
        std::hint::black_box(updated);
    }
    let per = started.elapsed() / rounds;
    println!("managed fields of one create: {per:?}");
    let started = Instant::now();
    for _ in 0..rounds {
        let mut object = claim.clone();
        let mut updated = update_managed_fields_of_subresource(
            &serde_json::Value::Null,
            &object,
            "kubectl-create",
            "",
            &managed,
            schema,
        );
        updated.stamp_time("2026-11-22T05:00:00Z");
        updated.write_into(&mut object);
        std::hint::black_box(object);
    }
    let per = started.elapsed() / rounds;
    println!("... and written into the object: {per:?}");
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(claim.clone());
    }
    println!(
        "(cloning the object alone: {:?})",
        started.elapsed() / rounds
    );
}
