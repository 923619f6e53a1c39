//! `volplane why` against `volplane up` (API server, controller-manager and the built-in CSI
//! driver in one process): for each situation the text names the criterion or holder a user
//! needs to act on.

use std::process::Command;
use std::time::Duration;

use volplane_testkit::{Cluster, Kubectl, eventually};

const PATIENCE: Duration = Duration::from_secs(60);

fn binary() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_volplane").as_ref()
}

fn why(cluster: &Cluster, object: &str, namespace: &str) -> String {
    let output = Command::new(binary())
        .args(["why", object, "-n", namespace, "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .output()
        .expect("running volplane why");
    assert!(
        output.status.success(),
        "volplane why {object} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Waits until `volplane why` says something containing every one of `needles`.
fn why_eventually(cluster: &Cluster, object: &str, namespace: &str, needles: &[&str]) -> String {
    let mut last = String::new();
    let found = eventually(
        PATIENCE,
        &format!("why {object} to mention {needles:?}"),
        || {
            last = why(cluster, object, namespace);
            needles
                .iter()
                .all(|n| last.contains(n))
                .then(|| last.clone())
        },
    );
    eprintln!("{found}");
    found
}

fn phase(k: &Kubectl, args: &[&str]) -> String {
    k.get_json(args)["status"]["phase"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn start() -> (Cluster, Kubectl) {
    let cluster = Cluster::start_with_env(binary(), &[], &[("RUST_LOG", "warn")]);
    let k = cluster.kubectl();
    k.ok_with_input(
        &["apply", "-f", "-"],
        Some(
            r#"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: manual}
provisioner: kubernetes.io/no-provisioner
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: later}
provisioner: local.csi.volplane.io
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: local.csi.volplane.io
"#,
        ),
    );
    (cluster, k)
}

fn claim(name: &str, class: &str, size: &str, modes: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\nspec:\n  \
         storageClassName: {class}\n  accessModes: [{modes}]\n  resources: {{requests: {{storage: {size}}}}}\n"
    )
}

fn volume(name: &str, class: &str, size: &str, modes: &str, policy: &str, path: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {name}}}\nspec:\n  \
         storageClassName: {class}\n  accessModes: [{modes}]\n  capacity: {{storage: {size}}}\n  \
         persistentVolumeReclaimPolicy: {policy}\n  hostPath: {{path: {path}}}\n"
    )
}

#[test]
fn a_pending_claim_names_the_criterion_its_nearest_volumes_fail() {
    let (cluster, k) = start();
    k.ok_with_input(
        &["apply", "-f", "-"],
        Some(&format!(
            "{}---\n{}---\n{}",
            volume(
                "small",
                "manual",
                "1Gi",
                "ReadWriteOnce",
                "Retain",
                "/tmp/vp-why-small"
            ),
            volume(
                "shared-only",
                "manual",
                "10Gi",
                "ReadOnlyMany",
                "Retain",
                "/tmp/vp-why-ro"
            ),
            claim("wants-5gi", "manual", "5Gi", "ReadWriteOnce"),
        )),
    );
    let text = why_eventually(
        &cluster,
        "pvc/wants-5gi",
        "default",
        &["Pending", "no PersistentVolume fits", "small", "capacity"],
    );
    assert!(
        text.contains("shared-only") && text.contains("accessModes"),
        "{text}"
    );
}

#[test]
fn a_claim_of_a_wait_for_first_consumer_class_waits_for_a_pod() {
    let (cluster, k) = start();
    k.ok_with_input(
        &["apply", "-f", "-"],
        Some(&claim("later-claim", "later", "64Mi", "ReadWriteOnce")),
    );
    why_eventually(
        &cluster,
        "pvc/later-claim",
        "default",
        &["waiting for a pod to be scheduled", "WaitForFirstConsumer"],
    );
}

#[test]
fn a_claim_the_provisioner_cannot_serve_shows_the_drivers_error() {
    let (cluster, k) = start();
    k.ok_with_input(
        &["apply", "-f", "-"],
        Some(&claim("too-big", "fast", "100Pi", "ReadWriteOnce")),
    );
    why_eventually(
        &cluster,
        "pvc/too-big",
        "default",
        &["provisioning by local.csi.volplane.io failed", "OutOfRange"],
    );
}

#[test]
fn a_claim_in_use_stays_terminating_and_why_names_the_pod() {
    let (cluster, k) = start();
    k.ok_with_input(
        &["apply", "-f", "-"],
        Some(&format!(
            "{}---\n{}---\n{}",
            volume("for-app", "manual", "1Gi", "ReadWriteOnce", "Retain", "/tmp/vp-why-app"),
            claim("app-data", "manual", "1Gi", "ReadWriteOnce"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  nodeName: node-1\n  containers: [{name: c, image: busybox}]\n  \
             volumes: [{name: data, persistentVolumeClaim: {claimName: app-data}}]\n",
        )),
    );
    eventually(PATIENCE, "the claim to bind", || {
        (phase(&k, &["pvc", "app-data"]) == "Bound").then_some(())
    });
    // A scheduled pod (nodeName set) holds its claims, as upstream; unscheduled ones do not.
    k.ok(&["delete", "pvc", "app-data", "--wait=false"]);
    let text = why_eventually(
        &cluster,
        "pvc/app-data",
        "default",
        &[
            "being deleted",
            "kubernetes.io/pvc-protection",
            "default/app",
        ],
    );
    assert!(text.contains("held by pod"), "{text}");
    // The same claim is gone once the pod is.
    k.ok(&["delete", "pod", "app", "--grace-period=0", "--force"]);
    eventually(PATIENCE, "the claim to go", || {
        k.fails(&["get", "pvc", "app-data"], None)
            .contains("NotFound")
            .then_some(())
    });
}

#[test]
fn released_and_failed_volumes_say_why() {
    let (cluster, k) = start();
    k.ok_with_input(
        &["apply", "-f", "-"],
        Some(&format!(
            "{}---\n{}---\n{}---\n{}",
            volume(
                "kept",
                "manual",
                "1Gi",
                "ReadWriteOnce",
                "Retain",
                "/tmp/vp-why-kept"
            ),
            claim("keeps", "manual", "1Gi", "ReadWriteOnce"),
            volume(
                "outside-tmp",
                "manual",
                "2Gi",
                "ReadWriteOnce",
                "Delete",
                "/srv/vp-why"
            ),
            claim("deletes", "manual", "2Gi", "ReadWriteOnce"),
        )),
    );
    for claim in ["keeps", "deletes"] {
        eventually(PATIENCE, "the claims to bind", || {
            (phase(&k, &["pvc", claim]) == "Bound").then_some(())
        });
    }
    k.ok(&["delete", "pvc", "keeps", "deletes"]);
    why_eventually(
        &cluster,
        "pv/kept",
        "default",
        &["Released", "default/keeps was deleted", "Retain"],
    );
    let text = why_eventually(&cluster, "pv/outside-tmp", "default", &["Failed", "Delete"]);
    assert!(text.contains("/srv/vp-why"), "{text}");
}
