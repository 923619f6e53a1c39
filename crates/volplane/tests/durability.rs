//! Durability: kube-rs writers hammer the API, the server is SIGKILLed at a random moment and
//! restarted on the same data directory. Every write answered 2xx must be there afterwards, and
//! resourceVersions only grow across restarts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use volplane_testkit::Cluster;

const ROUNDS: usize = 20;
const WRITERS: usize = 8;
const NAMESPACE: &str = "default";
/// Every object the writers make carries this label, so checks list exactly them.
const LABEL: &str = "volplane.test/durability";
/// Where a claim keeps the writer's content (its spec is immutable).
const CONTENT_ANNOTATION: &str = "volplane.test/content";
/// No single request may take longer than this; one that does has an unknown outcome.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ConfigMap,
    Claim,
}

/// What an object holds (or that it is gone) after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Absent,
    Content(String),
}

/// One write: the state it leads to and, when answered 2xx, the resourceVersion it answered.
#[derive(Debug, Clone)]
struct Attempt {
    state: State,
    /// `None`: no 2xx answer (error or no answer at all) — it may or may not have happened.
    acknowledged_rv: Option<u64>,
}

/// Every write to one object, in the order the (single) writer of that object sent them.
#[derive(Debug, Clone)]
struct ObjectLog {
    kind: Kind,
    attempts: Vec<Attempt>,
}

impl ObjectLog {
    /// The states the object may be in now: the last acknowledged one, or what any later
    /// unacknowledged write would have made it (before any acknowledged write: absent too).
    fn allowed(&self) -> (Option<&Attempt>, Vec<&State>) {
        let last_ack = self
            .attempts
            .iter()
            .rposition(|a| a.acknowledged_rv.is_some());
        let mut allowed = Vec::new();
        let later_from = match last_ack {
            Some(i) => {
                allowed.push(&self.attempts[i].state);
                i + 1
            }
            None => {
                allowed.push(&State::Absent);
                0
            }
        };
        allowed.extend(self.attempts[later_from..].iter().map(|a| &a.state));
        (last_ack.map(|i| &self.attempts[i]), allowed)
    }
}

/// What the server holds for one object: its content and resourceVersion.
type Stored = BTreeMap<(Kind, String), (String, u64)>;

fn rv_of<K: ResourceExt>(obj: &K) -> u64 {
    obj.resource_version()
        .expect("every object carries a resourceVersion")
        .parse()
        .expect("resourceVersions are integers")
}

fn labels() -> serde_json::Value {
    json!({ LABEL: "true" })
}

fn config_map(name: &str, content: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels()},
        "data": {"content": content},
    }))
    .expect("a ConfigMap")
}

fn claim(name: &str, content: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "labels": labels(), "annotations": {CONTENT_ANNOTATION: content}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("a PersistentVolumeClaim")
}

/// One writer: creates, updates and deletes its own objects until it is told to stop or a
/// request fails (which, here, means the server is gone). Returns the log of every write.
async fn writer(
    client: Client,
    round: usize,
    id: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
) -> BTreeMap<String, ObjectLog> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, NAMESPACE);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut logs: BTreeMap<String, ObjectLog> = BTreeMap::new();
    // Live objects: name → (kind, last acknowledged ConfigMap, for conditional updates).
    let mut live: Vec<(String, Kind, Option<ConfigMap>)> = Vec::new();
    let mut seq = 0usize;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let content = format!("r{round}-w{id}-{seq}");
        let create = live.len() < 4 || rng.random_bool(0.3);
        let (name, kind, state, request) = if create {
            let kind = if rng.random_bool(0.5) {
                Kind::ConfigMap
            } else {
                Kind::Claim
            };
            let name = format!("r{round}-w{id}-{}-{seq}", short(kind));
            let request = match kind {
                Kind::ConfigMap => Request::CreateConfigMap(config_map(&name, &content)),
                Kind::Claim => Request::CreateClaim(Box::new(claim(&name, &content))),
            };
            (name, kind, State::Content(content.clone()), request)
        } else {
            let index = rng.random_range(0..live.len());
            let (name, kind, last) = live[index].clone();
            match kind {
                // Claims are kept (their protection finalizer would leave them terminating).
                Kind::ConfigMap if rng.random_bool(0.15) => {
                    live.swap_remove(index);
                    (name, kind, State::Absent, Request::Delete)
                }
                Kind::ConfigMap => {
                    let mut next = last.expect("a live ConfigMap was acknowledged");
                    next.data = Some([("content".to_string(), content.clone())].into());
                    (
                        name,
                        kind,
                        State::Content(content.clone()),
                        Request::Replace(next),
                    )
                }
                Kind::Claim => (
                    name,
                    kind,
                    State::Content(content.clone()),
                    Request::PatchClaim,
                ),
            }
        };
        let log = logs.entry(name.clone()).or_insert_with(|| ObjectLog {
            kind,
            attempts: Vec::new(),
        });
        log.attempts.push(Attempt {
            state: state.clone(),
            acknowledged_rv: None,
        });
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            match &request {
                Request::CreateConfigMap(cm) => config_maps
                    .create(&PostParams::default(), cm)
                    .await
                    .map(|cm| (rv_of(&cm), Some(cm))),
                Request::Replace(cm) => config_maps
                    .replace(&name, &PostParams::default(), cm)
                    .await
                    .map(|cm| (rv_of(&cm), Some(cm))),
                Request::Delete => config_maps
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map(|answer| (answer.left().map_or(0, |cm| rv_of(&cm)), None)),
                Request::CreateClaim(pvc) => claims
                    .create(&PostParams::default(), pvc)
                    .await
                    .map(|pvc| (rv_of(&pvc), None)),
                Request::PatchClaim => {
                    let patch = json!({"metadata": {"annotations": {CONTENT_ANNOTATION: content}}});
                    claims
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|pvc| (rv_of(&pvc), None))
                }
            }
        })
        .await;
        match answer {
            Ok(Ok((rv, config_map))) => {
                log.attempts
                    .last_mut()
                    .expect("just pushed")
                    .acknowledged_rv = Some(rv);
                acknowledged.fetch_add(1, Ordering::SeqCst);
                if create {
                    live.push((name, kind, config_map));
                } else if let Some(entry) = live.iter_mut().find(|(n, _, _)| *n == name) {
                    entry.2 = config_map;
                }
            }
            // The server is gone (or misbehaves): this write's outcome is unknown; stop.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    logs
}

enum Request {
    CreateConfigMap(ConfigMap),
    Replace(ConfigMap),
    Delete,
    CreateClaim(Box<PersistentVolumeClaim>),
    PatchClaim,
}

fn short(kind: Kind) -> &'static str {
    match kind {
        Kind::ConfigMap => "cm",
        Kind::Claim => "pvc",
    }
}

/// Every object the writers made that the server holds now, and the list's resourceVersion.
async fn stored(client: &Client) -> (Stored, u64) {
    let selector = ListParams::default().labels(&format!("{LABEL}=true"));
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let cms = config_maps
        .list(&selector)
        .await
        .expect("listing ConfigMaps");
    let pvcs = claims.list(&selector).await.expect("listing claims");
    let mut stored = Stored::new();
    for cm in &cms.items {
        let content = cm.data.as_ref().and_then(|d| d.get("content")).cloned();
        stored.insert(
            (Kind::ConfigMap, cm.name_any()),
            (content.unwrap_or_default(), rv_of(cm)),
        );
    }
    for pvc in &pvcs.items {
        let content = pvc.annotations().get(CONTENT_ANNOTATION).cloned();
        stored.insert(
            (Kind::Claim, pvc.name_any()),
            (content.unwrap_or_default(), rv_of(pvc)),
        );
    }
    let list_rv = |rv: Option<String>| -> u64 {
        rv.expect("a list carries a resourceVersion")
            .parse()
            .expect("integer")
    };
    let revision =
        list_rv(cms.metadata.resource_version).min(list_rv(pvcs.metadata.resource_version));
    (stored, revision)
}

/// Checks one round's writes against what the server holds after the restart; returns the
/// state each object was found in (to be checked again, unchanged, after later restarts).
fn check_round(logs: &BTreeMap<String, ObjectLog>, stored: &Stored) -> Stored {
    let mut found = Stored::new();
    for (name, log) in logs {
        let key = (log.kind, name.clone());
        let now = match stored.get(&key) {
            Some((content, _)) => State::Content(content.clone()),
            None => State::Absent,
        };
        let acked: Vec<u64> = log
            .attempts
            .iter()
            .filter_map(|a| a.acknowledged_rv)
            .filter(|rv| *rv > 0)
            .collect();
        assert!(
            acked.windows(2).all(|w| w[0] < w[1]),
            "{name}: acknowledged resourceVersions of successive writes do not grow: {acked:?}"
        );
        let (last_ack, allowed) = log.allowed();
        assert!(
            allowed.contains(&&now),
            "{name}: after the restart it is {now:?}; allowed: {allowed:?} (writes: {:?})",
            log.attempts
        );
        if let (Some(ack), Some((_, rv))) = (last_ack, stored.get(&key)) {
            let acked_rv = ack.acknowledged_rv.expect("acknowledged");
            if ack.state == now && log.kind == Kind::ConfigMap {
                assert_eq!(
                    *rv, acked_rv,
                    "{name}: holds its last acknowledged content at another resourceVersion"
                );
            }
            assert!(
                *rv >= acked_rv,
                "{name}: resourceVersion {rv} is older than the acknowledged {acked_rv}"
            );
        }
        if let Some(entry) = stored.get(&key) {
            found.insert(key, entry.clone());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let seed: u64 = rand::rng().random();
    eprintln!("seed {seed}");
    tokio::time::timeout(Duration::from_secs(900), rounds(seed))
        .await
        .expect("the test took more than 15 minutes");
}

async fn rounds(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cluster = tokio::task::block_in_place(|| {
        Cluster::start_with_env(
            env!("CARGO_BIN_EXE_volplane").as_ref(),
            &[],
            &[("RUST_LOG", "warn")],
        )
    });
    // Objects of earlier rounds, as verified: nothing writes them again, so they must stay.
    let mut settled = Stored::new();
    let mut highest_rv = 0u64;
    let mut total_acknowledged = 0;
    for round in 0..ROUNDS {
        let client = cluster.kube_client().await;
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                tokio::spawn(writer(
                    client.clone(),
                    round,
                    id,
                    rng.random(),
                    Arc::clone(&stop),
                    Arc::clone(&acknowledged),
                ))
            })
            .collect();
        // The random moment counts from the first acknowledged write, so every round kills a
        // server that is busy writing.
        let started = tokio::time::Instant::now();
        while acknowledged.load(Ordering::SeqCst) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "round {round}: no write was acknowledged within a minute"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..=800))).await;
        tokio::task::block_in_place(|| cluster.kill9());
        stop.store(true, Ordering::SeqCst);
        let mut logs = BTreeMap::new();
        for writer in writers {
            let writer_logs = tokio::time::timeout(Duration::from_secs(60), writer)
                .await
                .expect("a writer did not stop after the kill")
                .expect("a writer panicked");
            logs.extend(writer_logs);
        }
        let acked: Vec<u64> = logs
            .values()
            .flat_map(|l| l.attempts.iter().filter_map(|a| a.acknowledged_rv))
            .filter(|rv| *rv > 0)
            .collect();
        total_acknowledged += acked.len();
        eprintln!(
            "round {round}: {} writes acknowledged on {} objects before the kill",
            acked.len(),
            logs.len()
        );
        let round_highest = acked.iter().copied().max().unwrap_or(0);
        if let Some(lowest) = acked.iter().copied().min() {
            assert!(
                lowest > highest_rv,
                "round {round}: acknowledged resourceVersion {lowest} is not above {highest_rv}, the highest before the restart"
            );
        }
        highest_rv = highest_rv.max(round_highest);

        tokio::task::block_in_place(|| cluster.restart());
        let client = cluster.kube_client().await;
        let (now, list_rv) = stored(&client).await;
        assert!(
            list_rv >= highest_rv,
            "round {round}: after the restart the list is at {list_rv}, below the acknowledged {highest_rv}"
        );
        for (key, (content, rv)) in &settled {
            let current = now.get(key);
            assert!(
                current.is_some_and(|(c, r)| c == content && (r == rv || key.0 == Kind::Claim)),
                "{key:?} from an earlier round changed: was ({content}, {rv}), now {current:?}"
            );
        }
        let found = check_round(&logs, &now);
        let max_stored = now.values().map(|(_, rv)| *rv).max().unwrap_or(0);
        assert!(max_stored <= list_rv, "an object is newer than its list");
        settled.extend(found);
        // A write after the restart gets a resourceVersion above everything before it.
        let marker: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
        let marker = marker
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("marker-{round}")},
                }))
                .expect("a ConfigMap"),
            )
            .await
            .expect("a write after the restart");
        let marker_rv = rv_of(&marker);
        assert!(
            marker_rv > highest_rv.max(list_rv),
            "round {round}: the first write after the restart got {marker_rv}, not above {} ",
            highest_rv.max(list_rv)
        );
        highest_rv = marker_rv;
    }
    assert!(total_acknowledged >= ROUNDS, "too few acknowledged writes");
}
