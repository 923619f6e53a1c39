//! kubectl against `volplane up`: the commands users run on a real cluster, checked by what
//! kubectl prints and what the server then holds.

use std::path::PathBuf;
use std::time::Duration;

use volplane_testkit::{Cluster, Kubectl, eventually};

fn start() -> Cluster {
    Cluster::start(env!("CARGO_BIN_EXE_volplane").as_ref(), &[])
}

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    path.display().to_string()
}

fn apply_all_examples(k: &Kubectl, extra: &[&str]) {
    for file in [
        "01-static-pv-and-claim.yaml",
        "02-pod-using-claim.yaml",
        "03-projected-volume.yaml",
        "04-local-pv-wffc.yaml",
        "05-dynamic-provisioning.yaml",
        "06-hotplug-datavolume.yaml",
        "07-virtual-machine.yaml",
    ] {
        let path = example(file);
        let mut args = vec!["apply", "-f", path.as_str()];
        args.extend_from_slice(extra);
        k.ok(&args);
    }
}

#[test]
fn every_example_applies_client_side_and_is_served_back() {
    let cluster = start();
    every_example_applies_client_side_and_is_served_back_on(&cluster.kubectl());
}

fn every_example_applies_client_side_and_is_served_back_on(k: &Kubectl) {
    apply_all_examples(k, &[]);
    let pvc = k.get_json(&["pvc", "foo-pvc", "-n", "foo"]);
    assert_eq!(pvc["spec"]["volumeName"], "foo-pv");
    assert!(
        pvc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    let finalizers = pvc["metadata"]["finalizers"].as_array().unwrap();
    assert!(
        finalizers
            .iter()
            .any(|f| f == "kubernetes.io/pvc-protection")
    );
    // The default class of example 05 was assigned to its class-less claim.
    let data = k.get_json(&["pvc", "data"]);
    assert_eq!(data["spec"]["storageClassName"], "local-csi");
    let dv = k.get_json(&["dv", "example-volume-hotplug"]);
    assert_eq!(dv["spec"]["pvc"]["resources"]["requests"]["storage"], "5Gi");
    let vm = k.get_json(&["vm", "vm-fedora"]);
    assert_eq!(
        vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"][0]["name"],
        "rootdisk"
    );
    // Re-applying unchanged manifests changes nothing.
    let rv = pvc["metadata"]["resourceVersion"].clone();
    apply_all_examples(k, &[]);
    assert_eq!(
        k.get_json(&["pvc", "foo-pvc", "-n", "foo"])["metadata"]["resourceVersion"],
        rv
    );
}

#[test]
fn every_example_applies_server_side() {
    let cluster = start();
    every_example_applies_server_side_on(&cluster.kubectl());
}

fn every_example_applies_server_side_on(k: &Kubectl) {
    apply_all_examples(k, &["--server-side"]);
    let pv = k.get_json(&["pv", "example-local-pv", "--show-managed-fields"]);
    let managers: Vec<&str> = pv["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert!(managers.contains(&"kubectl"), "{managers:?}");
    // The binder completes the pre-bound PV's claimRef (it adds the claim's uid), and so owns
    // that atomic field, as kube-controller-manager does upstream: re-applying the manifest's
    // claimRef conflicts there as well, and users resolve it the same way.
    apply_all_examples(k, &["--server-side", "--force-conflicts"]);
}

const CLAIM: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: c1
  labels:
    team: storage
    tier: gold
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: slow
  resources:
    requests:
      storage: 1Gi
"#;

#[test]
fn reapply_with_changed_and_removed_field_client_side() {
    let cluster = start();
    reapply_with_changed_and_removed_field_client_side_on(&cluster.kubectl());
}

fn reapply_with_changed_and_removed_field_client_side_on(k: &Kubectl) {
    k.ok_with_input(&["apply", "-f", "-"], Some(CLAIM));
    let changed = CLAIM
        .replace("    tier: gold\n", "")
        .replace("team: storage", "team: platform");
    k.ok_with_input(&["apply", "-f", "-"], Some(&changed));
    let pvc = k.get_json(&["pvc", "c1"]);
    assert_eq!(pvc["metadata"]["labels"]["team"], "platform");
    assert!(
        pvc["metadata"]["labels"].get("tier").is_none(),
        "removed label is gone: {}",
        pvc["metadata"]["labels"]
    );
}

#[test]
fn reapply_with_changed_and_removed_field_server_side() {
    let cluster = start();
    reapply_with_changed_and_removed_field_server_side_on(&cluster.kubectl());
}

fn reapply_with_changed_and_removed_field_server_side_on(k: &Kubectl) {
    k.ok_with_input(&["apply", "--server-side", "-f", "-"], Some(CLAIM));
    let changed = CLAIM
        .replace("    tier: gold\n", "")
        .replace("team: storage", "team: platform");
    k.ok_with_input(&["apply", "--server-side", "-f", "-"], Some(&changed));
    let pvc = k.get_json(&["pvc", "c1"]);
    assert_eq!(pvc["metadata"]["labels"]["team"], "platform");
    assert!(pvc["metadata"]["labels"].get("tier").is_none());
    // Another manager changing a field this one owns conflicts unless forced.
    let other = changed.replace("team: platform", "team: other");
    let err = k.fails(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "intruder",
            "-f",
            "-",
        ],
        Some(&other),
    );
    assert!(err.contains("conflict"), "{err}");
    k.ok_with_input(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "intruder",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&other),
    );
    assert_eq!(
        k.get_json(&["pvc", "c1"])["metadata"]["labels"]["team"],
        "other"
    );
}

#[test]
fn get_prints_the_upstream_table_columns() {
    let cluster = start();
    get_prints_the_upstream_table_columns_on(&cluster.kubectl());
}

fn get_prints_the_upstream_table_columns_on(k: &Kubectl) {
    k.ok(&["apply", "-f", &example("01-static-pv-and-claim.yaml")]);
    let out = k.ok(&["get", "pvc", "-n", "foo"]);
    let header = out.lines().next().unwrap();
    for column in [
        "NAME",
        "STATUS",
        "VOLUME",
        "CAPACITY",
        "ACCESS MODES",
        "STORAGECLASS",
        "AGE",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(out.contains("foo-pvc"), "{out}");
    let out = k.ok(&["get", "pv"]);
    for column in [
        "CAPACITY",
        "ACCESS MODES",
        "RECLAIM POLICY",
        "STATUS",
        "CLAIM",
    ] {
        assert!(out.lines().next().unwrap().contains(column), "{out}");
    }
    assert!(out.contains("RWO") && out.contains("Retain"), "{out}");
    let yaml = k.ok(&["get", "pv", "foo-pv", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: PersistentVolume") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
}

#[test]
fn patch_of_all_three_types() {
    let cluster = start();
    patch_of_all_three_types_on(&cluster.kubectl());
}

fn patch_of_all_three_types_on(k: &Kubectl) {
    k.ok(&["create", "configmap", "cfg", "--from-literal=a=1"]);
    k.ok(&["patch", "configmap", "cfg", "-p", r#"{"data":{"b":"2"}}"#]);
    k.ok(&[
        "patch",
        "configmap",
        "cfg",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"a":null}}"#,
    ]);
    k.ok(&[
        "patch",
        "configmap",
        "cfg",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/data/b","value":"2"},{"op":"add","path":"/data/c","value":"3"}]"#,
    ]);
    let cm = k.get_json(&["configmap", "cfg"]);
    assert_eq!(cm["data"], serde_json::json!({"b": "2", "c": "3"}));
    let err = k.fails(
        &[
            "patch",
            "configmap",
            "cfg",
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/data/b","value":"9"}]"#,
        ],
        None,
    );
    assert!(err.contains("test"), "{err}");
}

#[test]
fn delete_of_an_object_with_a_finalizer_waits_until_it_is_removed() {
    let cluster = start();
    delete_of_an_object_with_a_finalizer_waits_until_it_is_removed_on(&cluster.kubectl());
}

fn delete_of_an_object_with_a_finalizer_waits_until_it_is_removed_on(k: &Kubectl) {
    k.ok(&["create", "configmap", "held"]);
    k.hold(&["configmap", "held"]);
    let mut delete = k.command();
    delete.args(["delete", "configmap", "held", "--timeout=60s"]);
    let mut child = delete.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let terminating = eventually(Duration::from_secs(20), "deletionTimestamp", || {
        let cm = k.get_json(&["configmap", "held"]);
        cm["metadata"]["deletionTimestamp"]
            .as_str()
            .map(String::from)
    });
    assert!(!terminating.is_empty());
    assert!(
        child.try_wait().unwrap().is_none(),
        "kubectl delete returned while the finalizer remained"
    );
    k.release(&["configmap", "held"]);
    let status = child.wait().unwrap();
    assert!(status.success());
    let err = k.fails(&["get", "configmap", "held"], None);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn api_resources_explain_and_wait() {
    let cluster = start();
    api_resources_explain_and_wait_on(&cluster.kubectl());
}

fn api_resources_explain_and_wait_on(k: &Kubectl) {
    let out = k.ok(&["api-resources"]);
    for line in [
        "persistentvolumeclaims",
        "pvc",
        "virtualmachineinstances",
        "vmi",
        "datavolumes",
        "volumesnapshots",
    ] {
        assert!(out.contains(line), "{line} missing from:\n{out}");
    }
    let explain = k.ok(&["explain", "pvc.spec"]);
    assert!(explain.contains("accessModes"), "{explain}");
    let explain = k.ok(&["explain", "vm.spec.template"]);
    assert!(explain.contains("spec"), "{explain}");
    k.ok(&["create", "configmap", "w", "--from-literal=ready=no"]);
    let mut wait = k.command();
    wait.args([
        "wait",
        "configmap/w",
        "--for=jsonpath={.data.ready}=yes",
        "--timeout=60s",
    ]);
    let child = wait.stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    k.ok(&[
        "patch",
        "configmap",
        "w",
        "-p",
        r#"{"data":{"ready":"yes"}}"#,
    ]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
}

#[test]
fn get_watch_sees_added_modified_deleted() {
    let cluster = start();
    get_watch_sees_added_modified_deleted_on(&cluster.kubectl());
}

fn get_watch_sees_added_modified_deleted_on(k: &Kubectl) {
    use std::io::BufRead;
    // A configmap that exists before the watch: its ADDED line says the watch is established.
    k.ok(&["create", "configmap", "sentinel"]);
    let mut watch = k.command();
    watch.args([
        "get",
        "configmaps",
        "-w",
        "--output-watch-events",
        "--request-timeout=120s",
    ]);
    let mut child = watch.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(60))
            .expect("kubectl get -w printed nothing for 60 s")
    };
    while !next_line().contains("sentinel") {}
    k.ok(&["create", "configmap", "watched"]);
    k.ok(&[
        "patch",
        "configmap",
        "watched",
        "-p",
        r#"{"data":{"x":"1"}}"#,
    ]);
    k.ok(&["delete", "configmap", "watched"]);
    let mut events = Vec::new();
    while events.len() < 3 {
        let line = next_line();
        if line.contains("watched") {
            events.push(
                line.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    k.ok(&["delete", "configmap", "sentinel"]);
    assert_eq!(events, vec!["ADDED", "MODIFIED", "DELETED"]);
}

#[test]
fn describe_pvc_shows_its_events() {
    let cluster = start();
    describe_pvc_shows_its_events_on(&cluster.kubectl());
}

fn describe_pvc_shows_its_events_on(k: &Kubectl) {
    k.ok_with_input(&["apply", "-f", "-"], Some(CLAIM));
    let uid = k.get_json(&["pvc", "c1"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let event = format!(
        r#"{{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{{"name":"c1.1","namespace":"default"}},
            "eventTime":"2026-01-01T00:00:00.000000Z","reportingController":"volplane.io/pv-binder","reportingInstance":"x",
            "action":"Binding","reason":"ProvisioningFailed","note":"no volume plugin matched",
            "type":"Warning","regarding":{{"kind":"PersistentVolumeClaim","namespace":"default","name":"c1","uid":"{uid}","apiVersion":"v1"}}}}"#
    );
    k.ok_with_input(&["create", "-f", "-"], Some(&event));
    let out = k.ok(&["describe", "pvc", "c1"]);
    assert!(
        out.contains("ProvisioningFailed") && out.contains("no volume plugin matched"),
        "{out}"
    );
}

fn start_on_etcd(etcd: &volplane_testkit::etcd::EtcdServer) -> Cluster {
    let store = format!("etcd://{}", etcd.client_url().trim_start_matches("http://"));
    Cluster::start(
        env!("CARGO_BIN_EXE_volplane").as_ref(),
        &["--store", &store],
    )
}

/// The client-side scenarios with objects kept in etcd (`volplane up --store etcd://…`).
#[test]
fn kubectl_client_side_scenarios_against_etcd() {
    let etcd = volplane_testkit::etcd::EtcdServer::start();
    let cluster = start_on_etcd(&etcd);
    let k = cluster.kubectl();
    every_example_applies_client_side_and_is_served_back_on(&k);
    reapply_with_changed_and_removed_field_client_side_on(&k);
    describe_pvc_shows_its_events_on(&k);
    get_prints_the_upstream_table_columns_on(&k);
    patch_of_all_three_types_on(&k);
    delete_of_an_object_with_a_finalizer_waits_until_it_is_removed_on(&k);
    api_resources_explain_and_wait_on(&k);
    get_watch_sees_added_modified_deleted_on(&k);
}

/// The server-side apply scenarios with objects kept in etcd.
#[test]
fn kubectl_server_side_scenarios_against_etcd() {
    let etcd = volplane_testkit::etcd::EtcdServer::start();
    let cluster = start_on_etcd(&etcd);
    let k = cluster.kubectl();
    every_example_applies_server_side_on(&k);
    reapply_with_changed_and_removed_field_server_side_on(&k);
}
