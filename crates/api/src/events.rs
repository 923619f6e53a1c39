//! Events in both shapes: core/v1 `Event` (the stored form, what `kubectl describe` reads) and
//! events.k8s.io/v1 `Event` (what kube-rs's recorder writes). Both API groups serve the same
//! stored objects; these functions convert one shape into the other, field for field as
//! upstream's conversion does:
//!
//! | events.k8s.io/v1            | core/v1                 |
//! |-----------------------------|-------------------------|
//! | regarding                   | involvedObject          |
//! | note                        | message                 |
//! | reportingController         | reportingComponent      |
//! | reportingInstance           | reportingInstance       |
//! | deprecatedSource            | source                  |
//! | deprecatedFirstTimestamp    | firstTimestamp          |
//! | deprecatedLastTimestamp     | lastTimestamp           |
//! | deprecatedCount             | count                   |
//! | eventTime, series, action, reason, type, related, metadata: same names |

use serde_json::{Map, Value};

/// Field name pairs (events.k8s.io/v1, core/v1) that only differ in name.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Fields both shapes spell the same way.
const SHARED: &[&str] = &[
    "metadata",
    "eventTime",
    "series",
    "action",
    "reason",
    "type",
    "related",
    "reportingInstance",
];

fn convert(
    from: &Value,
    api_version: &str,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), Value::from("Event"));
    out.insert("apiVersion".into(), Value::from(api_version));
    for key in SHARED {
        if let Some(v) = from.get(*key) {
            out.insert((*key).into(), v.clone());
        }
    }
    for (from_key, to_key) in pairs {
        if let Some(v) = from.get(from_key) {
            out.insert(to_key.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// The events.k8s.io/v1 shape of a stored (core/v1) event.
pub fn to_events_v1(core: &Value) -> Value {
    convert(
        core,
        "events.k8s.io/v1",
        RENAMED.iter().map(|(new, old)| (*old, *new)),
    )
}

/// The core/v1 (stored) shape of an events.k8s.io/v1 event.
pub fn from_events_v1(ev: &Value) -> Value {
    convert(ev, "v1", RENAMED.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn core_event() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "data.1", "namespace": "default", "resourceVersion": "7"},
            "involvedObject": {"kind": "PersistentVolumeClaim", "name": "data", "namespace": "default", "uid": "u1"},
            "reason": "ProvisioningSucceeded",
            "message": "Successfully provisioned volume pvc-u1",
            "source": {"component": "volplane-provisioner", "host": "node-1"},
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:01:00Z",
            "count": 2,
            "type": "Normal",
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
            "action": "Provision",
            "related": {"kind": "PersistentVolume", "name": "pvc-u1"},
            "reportingComponent": "volplane.io/provisioner",
            "reportingInstance": "provisioner-node-1"
        })
    }

    #[test]
    fn core_event_maps_to_events_v1_names() {
        let ev = to_events_v1(&core_event());
        assert_eq!(ev["apiVersion"], "events.k8s.io/v1");
        assert_eq!(ev["kind"], "Event");
        assert_eq!(ev["regarding"]["name"], "data");
        assert_eq!(ev["note"], "Successfully provisioned volume pvc-u1");
        assert_eq!(ev["reportingController"], "volplane.io/provisioner");
        assert_eq!(ev["reportingInstance"], "provisioner-node-1");
        assert_eq!(ev["deprecatedSource"]["component"], "volplane-provisioner");
        assert_eq!(ev["deprecatedFirstTimestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(ev["deprecatedLastTimestamp"], "2026-01-01T00:01:00Z");
        assert_eq!(ev["deprecatedCount"], 2);
        assert_eq!(ev["series"]["count"], 2);
        assert_eq!(ev["eventTime"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(ev["action"], "Provision");
        assert_eq!(ev["related"]["kind"], "PersistentVolume");
        assert_eq!(ev["metadata"]["resourceVersion"], "7");
        for core_only in [
            "involvedObject",
            "message",
            "source",
            "count",
            "firstTimestamp",
            "reportingComponent",
        ] {
            assert!(ev.get(core_only).is_none(), "{core_only} leaked");
        }
    }

    #[test]
    fn conversion_round_trips_both_ways() {
        let core = core_event();
        assert_eq!(from_events_v1(&to_events_v1(&core)), core);
        let recorded = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": "vm-", "namespace": "ns"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "volplane.io/vm",
            "reportingInstance": "c-1",
            "action": "Hotplug",
            "reason": "VolumeReady",
            "regarding": {"kind": "VirtualMachineInstance", "name": "vm", "namespace": "ns"},
            "note": "volume hp is ready",
            "type": "Normal"
        });
        assert_eq!(to_events_v1(&from_events_v1(&recorded)), recorded);
    }

    #[test]
    fn kube_rs_recorded_event_reads_as_a_core_event() {
        let core = from_events_v1(&json!({
            "apiVersion": "events.k8s.io/v1",
            "regarding": {"kind": "Pod", "name": "p"},
            "note": "n",
            "reportingController": "ctl",
            "deprecatedCount": 3
        }));
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "n");
        assert_eq!(core["reportingComponent"], "ctl");
        assert_eq!(core["count"], 3);
        assert!(core.get("note").is_none());
    }
}
