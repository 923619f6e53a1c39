//! kube-rs watchers and reflectors against `volplane up`: every change arrives, in order, in
//! list-then-watch and streaming-list modes; a watch from before a restart is answered with an
//! in-stream 410 and the watcher re-lists; selector watches see objects enter and leave.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use volplane_testkit::Cluster;

/// Upper bound for anything a test waits for.
const PATIENCE: Duration = Duration::from_secs(60);

fn start() -> Cluster {
    Cluster::start_with_env(
        env!("CARGO_BIN_EXE_volplane").as_ref(),
        &[],
        &[("RUST_LOG", "warn")],
    )
}

fn rv_of<K: ResourceExt>(obj: &K) -> u64 {
    obj.resource_version()
        .expect("every object carries a resourceVersion")
        .parse()
        .expect("resourceVersions are integers")
}

fn config_map(name: &str, labels: Value, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"v": value},
    }))
    .expect("a ConfigMap")
}

/// What a watcher delivered, reduced to what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Init,
    InitApply(String, u64),
    InitDone,
    Apply(String, u64),
    Delete(String, u64),
    /// An error the watcher recovers from, with the Status code when it is one.
    Error(Option<u16>),
}

/// A reflector on `api` whose events are recorded; the task ends when the test drops it.
struct Recorded {
    store: Store<ConfigMap>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorded {
    fn start(api: Api<ConfigMap>, config: watcher::Config) -> Recorded {
        let (store, writer) = reflector::store();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                let entry = match item {
                    Ok(watcher::Event::Init) => Seen::Init,
                    Ok(watcher::Event::InitApply(o)) => Seen::InitApply(o.name_any(), rv_of(&o)),
                    Ok(watcher::Event::InitDone) => Seen::InitDone,
                    Ok(watcher::Event::Apply(o)) => Seen::Apply(o.name_any(), rv_of(&o)),
                    Ok(watcher::Event::Delete(o)) => Seen::Delete(o.name_any(), rv_of(&o)),
                    Err(watcher::Error::WatchError(status)) => Seen::Error(Some(status.code)),
                    Err(_) => Seen::Error(None),
                };
                record.lock().expect("not poisoned").push(entry);
            }
        });
        Recorded { store, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// Waits until `done` holds for what the watcher delivered so far.
    async fn wait_until(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !done(&self.seen()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; seen: {:?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the watcher has delivered an event at `rv` or later (after its last Init).
    async fn wait_for_rv(&self, rv: u64) {
        self.wait_until(&format!("an event at resourceVersion {rv}"), |seen| {
            seen.iter().any(|s| match s {
                Seen::Apply(_, r) | Seen::Delete(_, r) | Seen::InitApply(_, r) => *r >= rv,
                _ => false,
            })
        })
        .await;
    }

    /// name → resourceVersion of every object in the reflector's store.
    fn state(&self) -> BTreeMap<String, u64> {
        self.store
            .state()
            .iter()
            .map(|o| (o.name_any(), rv_of(o.as_ref())))
            .collect()
    }
}

/// name → resourceVersion of every object a fresh list returns.
async fn listed(api: &Api<ConfigMap>) -> BTreeMap<String, u64> {
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|o| (o.name_any(), rv_of(o)))
        .collect()
}

/// Waits until the reflector's store equals a fresh list.
async fn converges(recorded: &Recorded, api: &Api<ConfigMap>) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let expected = listed(api).await;
        let state = recorded.state();
        if state == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector never matched a fresh list:\nstore: {state:?}\nlist:  {expected:?}\nseen: {:?}",
            recorded.seen()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One acknowledged write of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Apply(u64),
    Delete(u64),
}

/// 8 tasks create 200 objects and, concurrently, update and delete some of them; returns each
/// object's acknowledged writes in order.
async fn churn(api: &Api<ConfigMap>, prefix: &str, seed: u64) -> BTreeMap<String, Vec<Write>> {
    const TASKS: usize = 8;
    const PER_TASK: usize = 25;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let api = api.clone();
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed + t as u64);
                let mut writes: BTreeMap<String, Vec<Write>> = BTreeMap::new();
                let mut live: Vec<ConfigMap> = Vec::new();
                for i in 0..PER_TASK {
                    let name = format!("{prefix}-{t}-{i}");
                    let cm = api
                        .create(&PostParams::default(), &config_map(&name, json!({}), "0"))
                        .await
                        .expect("create");
                    writes
                        .entry(name)
                        .or_default()
                        .push(Write::Apply(rv_of(&cm)));
                    live.push(cm);
                    // Now and then, touch an earlier object of this task.
                    if rng.random_bool(0.5) {
                        let index = rng.random_range(0..live.len());
                        let name = live[index].name_any();
                        if rng.random_bool(0.25) {
                            let gone = live.swap_remove(index);
                            let answer = api
                                .delete(&name, &DeleteParams::default())
                                .await
                                .expect("delete");
                            let rv = answer.left().map_or(rv_of(&gone), |o| rv_of(&o));
                            writes.get_mut(&name).unwrap().push(Write::Delete(rv));
                        } else {
                            let mut next = live[index].clone();
                            next.data = Some([("v".to_string(), format!("update-{i}"))].into());
                            let updated = api
                                .replace(&name, &PostParams::default(), &next)
                                .await
                                .expect("update");
                            writes
                                .get_mut(&name)
                                .unwrap()
                                .push(Write::Apply(rv_of(&updated)));
                            live[index] = updated;
                        }
                    }
                }
                writes
            })
        })
        .collect();
    let mut all = BTreeMap::new();
    for task in tasks {
        all.extend(
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("writers finish")
                .expect("writer"),
        );
    }
    all
}

/// Checks the watch events after the initial list against the acknowledged writes: every
/// write arrives, in resourceVersion order, per object in the order it was made.
fn check_events_match_writes(seen: &[Seen], writes: &BTreeMap<String, Vec<Write>>) {
    let after_init = seen
        .iter()
        .rposition(|s| *s == Seen::InitDone)
        .expect("the initial list completed");
    let events: Vec<&Seen> = seen[after_init + 1..]
        .iter()
        .filter(|s| matches!(s, Seen::Apply(..) | Seen::Delete(..)))
        .collect();
    let rvs: Vec<u64> = events
        .iter()
        .map(|s| match s {
            Seen::Apply(_, rv) | Seen::Delete(_, rv) => *rv,
            _ => unreachable!(),
        })
        .collect();
    assert!(
        rvs.windows(2).all(|w| w[0] < w[1]),
        "events are not in resourceVersion order: {rvs:?}"
    );
    let mut per_object: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
    for event in &events {
        let (Seen::Apply(name, _) | Seen::Delete(name, _)) = event else {
            unreachable!()
        };
        per_object.entry(name.as_str()).or_default().push(event);
    }
    for (name, expected) in writes {
        let got = per_object.remove(name.as_str()).unwrap_or_default();
        assert_eq!(
            got.len(),
            expected.len(),
            "{name}: events {got:?} for writes {expected:?}"
        );
        let mut last_rv = 0;
        for (event, write) in got.iter().zip(expected) {
            match (event, write) {
                (Seen::Apply(_, rv), Write::Apply(want)) => {
                    assert_eq!(rv, want, "{name}: events {got:?} for writes {expected:?}")
                }
                (Seen::Delete(_, rv), Write::Delete(_)) => assert!(
                    *rv > last_rv,
                    "{name}: deletion at {rv}, not after {last_rv}"
                ),
                _ => panic!("{name}: events {got:?} for writes {expected:?}"),
            }
            if let Seen::Apply(_, rv) | Seen::Delete(_, rv) = event {
                last_rv = *rv;
            }
        }
    }
    assert!(
        per_object.is_empty(),
        "events for objects nobody wrote: {per_object:?}"
    );
}

fn max_rv(writes: &BTreeMap<String, Vec<Write>>) -> u64 {
    writes
        .values()
        .flatten()
        .map(|w| match w {
            Write::Apply(rv) | Write::Delete(rv) => *rv,
        })
        .max()
        .unwrap_or(0)
}

/// Creates `count` label-less ConfigMaps named `<prefix>-<i>`.
async fn create_plain(api: &Api<ConfigMap>, prefix: &str, count: usize) {
    for i in 0..count {
        let cm = config_map(&format!("{prefix}-{i}"), json!({}), "0");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
}

async fn namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            )
            .expect("a Namespace"),
        )
        .await
        .expect("creating a namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_sees_every_change_in_order() {
    let cluster = start();
    let client = cluster.kube_client().await;
    namespace(&client, "churn").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "churn");
    // Some objects exist before the watcher starts: they come with the initial list.
    create_plain(&api, "early", 20).await;
    let recorded = Recorded::start(api.clone(), watcher::Config::default());
    recorded
        .wait_until("the initial list", |s| s.contains(&Seen::InitDone))
        .await;
    let initial = recorded
        .seen()
        .iter()
        .filter(|s| matches!(s, Seen::InitApply(..)))
        .count();
    assert_eq!(initial, 20);

    let writes = churn(&api, "cm", rand::rng().random()).await;
    recorded.wait_for_rv(max_rv(&writes)).await;
    converges(&recorded, &api).await;
    check_events_match_writes(&recorded.seen(), &writes);
    assert_eq!(
        recorded.seen().iter().filter(|s| **s == Seen::Init).count(),
        1,
        "the watcher re-listed without a reason: {:?}",
        recorded.seen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_watcher_sees_initial_state_then_every_change() {
    let cluster = start();
    let client = cluster.kube_client().await;
    namespace(&client, "stream").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "stream");
    create_plain(&api, "early", 50).await;
    let before = listed(&api).await;
    let recorded = Recorded::start(api.clone(), watcher::Config::default().streaming_lists());
    recorded
        .wait_until("the initial events", |s| s.contains(&Seen::InitDone))
        .await;
    let seen = recorded.seen();
    let initial: BTreeMap<String, u64> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::InitApply(name, rv) => Some((name.clone(), *rv)),
            _ => None,
        })
        .collect();
    assert_eq!(initial, before, "initial events: {seen:?}");
    assert_eq!(seen.first(), Some(&Seen::Init), "{seen:?}");
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::Error(_))),
        "{seen:?}"
    );

    let writes = churn(&api, "cm", rand::rng().random()).await;
    recorded.wait_for_rv(max_rv(&writes)).await;
    converges(&recorded, &api).await;
    check_events_match_writes(&recorded.seen(), &writes);
}

/// The events of a raw watch request's body, one JSON object per line.
async fn raw_watch(client: &Client, uri: &str) -> Vec<Value> {
    let request = kube::core::Request::new(uri)
        .list(&ListParams::default())
        .expect("a request");
    // `list` appends `?`; the URI's own query carries the watch parameters.
    let mut request = request;
    *request.uri_mut() = uri.parse().expect("a URI");
    // 200 or an error: `request_text` fails on any other status.
    let text = tokio::time::timeout(PATIENCE, client.request_text(request))
        .await
        .expect("the expired watch ends its stream")
        .expect("HTTP 200");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("one JSON event per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_before_a_restart_gets_an_in_stream_410() {
    let mut cluster = start();
    let client = cluster.kube_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let old = api
        .create(&PostParams::default(), &config_map("old", json!({}), "0"))
        .await
        .expect("create");
    api.create(&PostParams::default(), &config_map("newer", json!({}), "0"))
        .await
        .expect("create");
    let latest = listed(&api).await.into_values().max().unwrap();

    tokio::task::block_in_place(|| cluster.restart());
    let client = cluster.kube_client().await;
    let uri = format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={}&allowWatchBookmarks=true&timeoutSeconds=30",
        rv_of(&old)
    );
    let events = raw_watch(&client, &uri).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR", "{events:?}");
    let status = &events[0]["object"];
    assert_eq!(status["kind"], "Status", "{status}");
    assert_eq!(status["apiVersion"], "v1", "{status}");
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["code"], 410, "{status}");
    assert_eq!(status["reason"], "Expired", "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("too old resource version: "),
        "{status}"
    );

    // A watch from the newest revision before the restart misses nothing and goes on.
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let stream = api
        .watch(&WatchParams::default().timeout(30), &latest.to_string())
        .await
        .expect("a watch from the newest revision");
    let mut stream = std::pin::pin!(stream);
    let created = api
        .create(&PostParams::default(), &config_map("after", json!({}), "0"))
        .await
        .expect("create");
    let event = tokio::time::timeout(PATIENCE, stream.try_next())
        .await
        .expect("an event in time")
        .expect("no error")
        .expect("an event");
    match event {
        WatchEvent::Added(cm) => {
            assert_eq!(cm.name_any(), "after");
            assert_eq!(rv_of(&cm), rv_of(&created));
        }
        other => panic!("expected ADDED after, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_started_before_a_restart_relists_and_converges() {
    let mut cluster = start();
    let client = cluster.kube_client().await;
    namespace(&client, "watched").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "watched");
    create_plain(&api, "before", 10).await;
    // The watcher keeps its client across the restart (same CA, token and port).
    let recorded = Recorded::start(api.clone(), watcher::Config::default());
    recorded
        .wait_until("the initial list", |s| s.contains(&Seen::InitDone))
        .await;
    let touched = api
        .replace(
            "before-0",
            &PostParams::default(),
            &config_map("before-0", json!({}), "1"),
        )
        .await
        .expect("update");
    recorded.wait_for_rv(rv_of(&touched)).await;
    // A write the watcher does not see moves the store's revision past the watcher's last one,
    // so after the restart (which drops the watch history) its resourceVersion is too old.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client, "default");
    elsewhere
        .create(
            &PostParams::default(),
            &config_map("elsewhere", json!({}), "0"),
        )
        .await
        .expect("create");

    tokio::task::block_in_place(|| cluster.restart());
    // Changes after the restart: the reflector must end with them.
    let client = cluster.kube_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "watched");
    api.delete("before-1", &DeleteParams::default())
        .await
        .expect("delete");
    api.replace(
        "before-2",
        &PostParams::default(),
        &config_map("before-2", json!({}), "2"),
    )
    .await
    .expect("update");
    api.create(&PostParams::default(), &config_map("after", json!({}), "0"))
        .await
        .expect("create");

    recorded
        .wait_until("a re-list after the in-stream 410", |s| {
            let expired = s.iter().position(|e| *e == Seen::Error(Some(410)));
            expired.is_some_and(|i| s[i..].contains(&Seen::InitDone))
        })
        .await;
    converges(&recorded, &api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_watches_see_objects_enter_and_leave() {
    let cluster = start();
    let client = cluster.kube_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let x = api
        .create(
            &PostParams::default(),
            &config_map("x", json!({"tier": "gold"}), "0"),
        )
        .await
        .expect("create");
    let y = api
        .create(
            &PostParams::default(),
            &config_map("y", json!({"tier": "silver"}), "0"),
        )
        .await
        .expect("create");
    let from = rv_of(&y).to_string();
    let by_label = api
        .watch(
            &WatchParams::default().labels("tier=gold").timeout(60),
            &from,
        )
        .await
        .expect("label watch");
    let by_field = api
        .watch(
            &WatchParams::default().fields("metadata.name=y").timeout(60),
            &from,
        )
        .await
        .expect("field watch");

    let mut x_silver = x.clone();
    x_silver.metadata.labels = Some([("tier".to_string(), "silver".to_string())].into());
    let x_left = api
        .replace("x", &PostParams::default(), &x_silver)
        .await
        .expect("update");
    let mut y_gold = y.clone();
    y_gold.metadata.labels = Some([("tier".to_string(), "gold".to_string())].into());
    let y_entered = api
        .replace("y", &PostParams::default(), &y_gold)
        .await
        .expect("update");
    let mut y_again = y_entered.clone();
    y_again.data = Some([("v".to_string(), "1".to_string())].into());
    let y_changed = api
        .replace("y", &PostParams::default(), &y_again)
        .await
        .expect("update");
    // Not gold before or after: the label watch sees nothing of it.
    let mut x_again = x_left.clone();
    x_again.data = Some([("v".to_string(), "1".to_string())].into());
    api.replace("x", &PostParams::default(), &x_again)
        .await
        .expect("update");
    api.delete("y", &DeleteParams::default())
        .await
        .expect("delete");
    let z = api
        .create(
            &PostParams::default(),
            &config_map("z", json!({"tier": "gold"}), "0"),
        )
        .await
        .expect("create");

    let label_events = take_events(by_label, 5).await;
    let summary: Vec<(&str, String, u64)> = label_events
        .iter()
        .map(|(kind, cm)| (*kind, cm.name_any(), rv_of(cm)))
        .collect();
    assert_eq!(
        summary
            .iter()
            .map(|(k, n, _)| (*k, n.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("DELETED", "x"),
            ("ADDED", "y"),
            ("MODIFIED", "y"),
            ("DELETED", "y"),
            ("ADDED", "z"),
        ],
        "{summary:?}"
    );
    assert_eq!(summary[0].2, rv_of(&x_left), "{summary:?}");
    assert_eq!(summary[1].2, rv_of(&y_entered), "{summary:?}");
    assert_eq!(summary[2].2, rv_of(&y_changed), "{summary:?}");
    assert_eq!(summary[4].2, rv_of(&z), "{summary:?}");
    let field_events = take_events(by_field, 3).await;
    let summary: Vec<(&str, String, u64)> = field_events
        .iter()
        .map(|(kind, cm)| (*kind, cm.name_any(), rv_of(cm)))
        .collect();
    assert_eq!(
        summary
            .iter()
            .map(|(k, n, _)| (*k, n.as_str()))
            .collect::<Vec<_>>(),
        vec![("MODIFIED", "y"), ("MODIFIED", "y"), ("DELETED", "y")],
        "{summary:?}"
    );

    // As upstream's watch cache: an object that stops matching is DELETED with its previous
    // content (which matched the selector) at the resourceVersion of the change.
    assert_eq!(
        label_events[0].1.labels().get("tier").map(String::as_str),
        Some("gold"),
        "the DELETED event of an object leaving the selector carries its last matching state: {:?}",
        label_events[0].1
    );
}

/// The first `n` ADDED/MODIFIED/DELETED events of a watch (bookmarks skipped).
async fn take_events(
    stream: impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>>,
    n: usize,
) -> Vec<(&'static str, ConfigMap)> {
    let mut stream = std::pin::pin!(stream);
    let mut events = Vec::new();
    while events.len() < n {
        let event = tokio::time::timeout(PATIENCE, stream.try_next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {events:?}"))
            .expect("no watch error")
            .unwrap_or_else(|| panic!("the watch ended after {events:?}"));
        match event {
            WatchEvent::Added(cm) => events.push(("ADDED", cm)),
            WatchEvent::Modified(cm) => events.push(("MODIFIED", cm)),
            WatchEvent::Deleted(cm) => events.push(("DELETED", cm)),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(status) => panic!("in-stream error {status:?} after {events:?}"),
        }
    }
    events
}

/// A watch carries only its own resource: objects of other kinds in the same namespace (and
/// other namespaces' objects of its kind) changing at the same time never show up in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_carries_only_its_own_resource() {
    let cluster = start();
    let client = cluster.kube_client().await;
    namespace(&client, "only-mine").await;
    namespace(&client, "elsewhere").await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "only-mine");
    let from = maps
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("a list resourceVersion");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "only-mine");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "not-a-config-map"}, "stringData": {"k": "v"}}))
            .expect("a Secret"),
        )
        .await
        .expect("creating a secret");
    Api::<ConfigMap>::namespaced(client.clone(), "elsewhere")
        .create(
            &PostParams::default(),
            &config_map("other-namespace", json!({}), "x"),
        )
        .await
        .expect("creating a config map elsewhere");
    maps.create(&PostParams::default(), &config_map("mine", json!({}), "1"))
        .await
        .expect("creating a config map");
    let events = raw_watch(
        &client,
        &format!(
            "/api/v1/namespaces/only-mine/configmaps?watch=true&resourceVersion={from}&timeoutSeconds=2"
        ),
    )
    .await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                format!(
                    "{}/{}",
                    e["object"]["kind"].as_str().unwrap_or(""),
                    e["object"]["metadata"]["name"].as_str().unwrap_or("")
                ),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![("ADDED".to_string(), "ConfigMap/mine".to_string())]
    );
}
