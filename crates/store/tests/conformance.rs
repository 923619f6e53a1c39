//! The store conformance suite: every test runs against both backends (`redb::*` on a temp file,
//! `etcd::*` on a throwaway Debian etcd-server), so they behave the same for the API server.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use support::{Harness, assert_no_change, assert_watch_compacted, next_change};
use volplane_store::redb_store::{RedbOptions, RedbStore};
use volplane_store::{KeyValue, ListOptions, Store, StoreError, WatchEvent};

/// Generates one `#[tokio::test]` per backend for each conformance test function.
macro_rules! conformance_tests {
    ($($test:ident),* $(,)?) => {
        mod redb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let mut harness = crate::support::Harness::redb();
                    crate::$test(&mut harness).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let mut harness = crate::support::Harness::etcd().await;
                    crate::$test(&mut harness).await;
                }
            )*
        }
    };
}

conformance_tests!(
    create_then_get_returns_value_and_revisions,
    create_of_existing_key_fails_with_already_exists,
    update_needs_the_current_mod_revision,
    delete_with_and_without_precondition,
    revisions_strictly_increase_with_every_write,
    list_returns_keys_under_prefix_in_key_order,
    list_pages_with_limit_and_start_after,
    list_at_past_revision_sees_the_state_then,
    watch_replays_from_revision_then_follows_live_changes,
    watch_only_sees_keys_under_its_prefix,
    watch_reports_deletes_with_previous_value,
    compacted_revisions_fail_lists_and_watches,
    concurrent_writers_get_distinct_revisions_and_all_persist,
    concurrent_updates_with_same_expected_revision_let_one_win,
    acknowledged_writes_survive_restart,
);

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn list_options(prefix: &str) -> ListOptions {
    ListOptions {
        prefix: prefix.to_string(),
        ..Default::default()
    }
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

async fn create_then_get_returns_value_and_revisions(harness: &mut Harness) {
    let store = harness.store();
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    let revision = store.create("/t/a", value("one")).await.unwrap();
    assert!(revision >= 1);
    let kv = store.get("/t/a").await.unwrap().expect("created key");
    assert_eq!(
        kv,
        KeyValue {
            key: "/t/a".into(),
            value: value("one"),
            create_revision: revision,
            mod_revision: revision,
        }
    );
    assert_eq!(store.current_revision().await.unwrap(), revision);
}

async fn create_of_existing_key_fails_with_already_exists(harness: &mut Harness) {
    let store = harness.store();
    let revision = store.create("/t/a", value("one")).await.unwrap();
    let error = store.create("/t/a", value("two")).await.unwrap_err();
    assert_eq!(error, StoreError::AlreadyExists { key: "/t/a".into() });
    // The refused create changed nothing, not even the revision.
    assert_eq!(
        store.get("/t/a").await.unwrap().unwrap().value,
        value("one")
    );
    assert_eq!(store.current_revision().await.unwrap(), revision);
}

async fn update_needs_the_current_mod_revision(harness: &mut Harness) {
    let store = harness.store();
    let created = store.create("/t/a", value("one")).await.unwrap();
    let updated = store.update("/t/a", value("two"), created).await.unwrap();
    assert!(updated > created);
    let kv = store.get("/t/a").await.unwrap().unwrap();
    assert_eq!(kv.value, value("two"));
    assert_eq!(kv.create_revision, created);
    assert_eq!(kv.mod_revision, updated);

    let stale = store
        .update("/t/a", value("three"), created)
        .await
        .unwrap_err();
    assert_eq!(
        stale,
        StoreError::Conflict {
            key: "/t/a".into(),
            expected: created,
            current: updated
        }
    );
    assert_eq!(
        store.get("/t/a").await.unwrap().unwrap().value,
        value("two")
    );

    let missing = store
        .update("/t/missing", value("x"), updated)
        .await
        .unwrap_err();
    assert_eq!(
        missing,
        StoreError::NotFound {
            key: "/t/missing".into()
        }
    );
    let missing_zero = store.update("/t/missing", value("x"), 0).await.unwrap_err();
    assert_eq!(
        missing_zero,
        StoreError::NotFound {
            key: "/t/missing".into()
        }
    );
    assert_eq!(store.get("/t/missing").await.unwrap(), None);
    assert_eq!(store.current_revision().await.unwrap(), updated);
}

async fn delete_with_and_without_precondition(harness: &mut Harness) {
    let store = harness.store();
    let a = store.create("/t/a", value("a")).await.unwrap();
    let b = store.create("/t/b", value("b")).await.unwrap();

    let conflict = store.delete("/t/a", Some(a + 100)).await.unwrap_err();
    assert_eq!(
        conflict,
        StoreError::Conflict {
            key: "/t/a".into(),
            expected: a + 100,
            current: a
        }
    );
    assert!(store.get("/t/a").await.unwrap().is_some());

    let (deleted_at, prev) = store.delete("/t/a", Some(a)).await.unwrap();
    assert!(deleted_at > b);
    assert_eq!(prev.key, "/t/a");
    assert_eq!(prev.value, value("a"));
    assert_eq!(prev.mod_revision, a);
    assert_eq!(store.get("/t/a").await.unwrap(), None);

    let (deleted_b, prev_b) = store.delete("/t/b", None).await.unwrap();
    assert!(deleted_b > deleted_at);
    assert_eq!(prev_b.value, value("b"));

    for expected in [None, Some(a), Some(0)] {
        let missing = store.delete("/t/a", expected).await.unwrap_err();
        assert_eq!(missing, StoreError::NotFound { key: "/t/a".into() });
    }
    assert_eq!(store.current_revision().await.unwrap(), deleted_b);

    // A deleted key can be created again, with a new create revision.
    let again = store.create("/t/a", value("again")).await.unwrap();
    assert_eq!(
        store.get("/t/a").await.unwrap().unwrap().create_revision,
        again
    );
}

async fn revisions_strictly_increase_with_every_write(harness: &mut Harness) {
    let store = harness.store();
    let mut last = store.current_revision().await.unwrap();
    for i in 0..10 {
        let key = format!("/t/{i}");
        let created = store.create(&key, value("v")).await.unwrap();
        assert!(created > last, "create {created} after {last}");
        let updated = store.update(&key, value("w"), created).await.unwrap();
        assert!(updated > created);
        let (deleted, _) = store.delete(&key, Some(updated)).await.unwrap();
        assert!(deleted > updated);
        assert_eq!(store.current_revision().await.unwrap(), deleted);
        last = deleted;
    }
}

async fn list_returns_keys_under_prefix_in_key_order(harness: &mut Harness) {
    let store = harness.store();
    for key in [
        "/r/pvc/ns1/b",
        "/r/pv/x",
        "/r/pvc/ns1/a",
        "/r/pvc/ns2/a",
        "/r/pvcx",
    ] {
        store.create(key, value(key)).await.unwrap();
    }
    let current = store.current_revision().await.unwrap();
    let page = store.list(list_options("/r/pvc/")).await.unwrap();
    assert_eq!(
        keys(&page.items),
        ["/r/pvc/ns1/a", "/r/pvc/ns1/b", "/r/pvc/ns2/a"]
    );
    assert_eq!(page.items[0].value, value("/r/pvc/ns1/a"));
    assert_eq!(page.revision, current);
    assert!(!page.more);

    let all = store.list(list_options("")).await.unwrap();
    assert_eq!(all.items.len(), 5);
    assert!(all.items.windows(2).all(|w| w[0].key < w[1].key));

    let none = store.list(list_options("/r/nothing/")).await.unwrap();
    assert!(none.items.is_empty());
    assert_eq!(none.revision, current);
}

async fn list_pages_with_limit_and_start_after(harness: &mut Harness) {
    let store = harness.store();
    for i in 0..7 {
        store
            .create(&format!("/p/{i:02}"), value("v"))
            .await
            .unwrap();
    }
    store.create("/q/00", value("other prefix")).await.unwrap();
    let revision = store.current_revision().await.unwrap();
    let mut seen = Vec::new();
    let mut start_after = None;
    let mut pages = 0;
    loop {
        let page = store
            .list(ListOptions {
                prefix: "/p/".into(),
                start_after: start_after.clone(),
                limit: 3,
                revision: Some(revision),
            })
            .await
            .unwrap();
        pages += 1;
        assert_eq!(page.revision, revision);
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        start_after = page.items.last().map(|kv| kv.key.clone());
    }
    assert_eq!(pages, 3);
    let expected: Vec<_> = (0..7).map(|i| format!("/p/{i:02}")).collect();
    assert_eq!(seen, expected);

    // A full page that ends exactly at the last key reports no more.
    let exact = store
        .list(ListOptions {
            prefix: "/p/".into(),
            start_after: Some("/p/03".into()),
            limit: 3,
            revision: None,
        })
        .await
        .unwrap();
    assert_eq!(keys(&exact.items), ["/p/04", "/p/05", "/p/06"]);
    assert!(!exact.more);

    // A continue key before the prefix starts at the prefix.
    let before = store
        .list(ListOptions {
            prefix: "/p/".into(),
            start_after: Some("/a".into()),
            limit: 1,
            revision: None,
        })
        .await
        .unwrap();
    assert_eq!(keys(&before.items), ["/p/00"]);
    assert!(before.more);
}

async fn list_at_past_revision_sees_the_state_then(harness: &mut Harness) {
    let store = harness.store();
    let a = store.create("/h/a", value("a1")).await.unwrap();
    store.create("/h/b", value("b1")).await.unwrap();
    store.create("/h/d", value("d1")).await.unwrap();
    let then = store.current_revision().await.unwrap();

    store.update("/h/a", value("a2"), a).await.unwrap();
    store.delete("/h/b", None).await.unwrap();
    store.create("/h/c", value("c1")).await.unwrap();
    store.create("/other", value("x")).await.unwrap();
    let now = store.current_revision().await.unwrap();

    let past = store
        .list(ListOptions {
            prefix: "/h/".into(),
            revision: Some(then),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(past.revision, then);
    assert_eq!(keys(&past.items), ["/h/a", "/h/b", "/h/d"]);
    assert_eq!(past.items[0].value, value("a1"));
    assert_eq!(past.items[0].mod_revision, a);
    assert_eq!(past.items[1].value, value("b1"));

    let past_page = store
        .list(ListOptions {
            prefix: "/h/".into(),
            start_after: Some("/h/a".into()),
            limit: 1,
            revision: Some(then),
        })
        .await
        .unwrap();
    assert_eq!(keys(&past_page.items), ["/h/b"]);
    assert!(past_page.more);

    let current = store.list(list_options("/h/")).await.unwrap();
    assert_eq!(current.revision, now);
    assert_eq!(keys(&current.items), ["/h/a", "/h/c", "/h/d"]);
    assert_eq!(current.items[0].value, value("a2"));

    let future = store
        .list(ListOptions {
            prefix: "/h/".into(),
            revision: Some(now + 10),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(future, StoreError::FutureRevision { requested, .. } if requested == now + 10),
        "{future:?}"
    );
}

async fn watch_replays_from_revision_then_follows_live_changes(harness: &mut Harness) {
    let store = harness.store();
    let first = store.create("/w/a", value("1")).await.unwrap();
    let second = store.create("/w/b", value("2")).await.unwrap();

    let mut watch = store.watch("/w/", first - 1).await.unwrap();
    // Replay: both creates, in order, with no previous value.
    match next_change(&mut watch).await {
        WatchEvent::Put { kv, prev: None } => {
            assert_eq!((kv.key.as_str(), kv.mod_revision), ("/w/a", first))
        }
        other => panic!("unexpected {other:?}"),
    }
    match next_change(&mut watch).await {
        WatchEvent::Put { kv, prev: None } => {
            assert_eq!((kv.key.as_str(), kv.mod_revision), ("/w/b", second))
        }
        other => panic!("unexpected {other:?}"),
    }
    // Live: an update, with the value it replaced.
    let third = store.update("/w/a", value("1b"), first).await.unwrap();
    match next_change(&mut watch).await {
        WatchEvent::Put {
            kv,
            prev: Some(prev),
        } => {
            assert_eq!(kv.mod_revision, third);
            assert_eq!(kv.value, value("1b"));
            assert_eq!(kv.create_revision, first);
            assert_eq!(prev.value, value("1"));
            assert_eq!(prev.mod_revision, first);
        }
        other => panic!("unexpected {other:?}"),
    }

    // A watch from the middle replays only what came after.
    let mut from_middle = store.watch("/w/", second).await.unwrap();
    match next_change(&mut from_middle).await {
        WatchEvent::Put { kv, .. } => assert_eq!(kv.mod_revision, third),
        other => panic!("unexpected {other:?}"),
    }
    // A watch from now sees nothing until the next write.
    let mut from_now = store.watch("/w/", third).await.unwrap();
    assert_no_change(&mut from_now, Duration::from_millis(300)).await;
    let fourth = store.create("/w/c", value("3")).await.unwrap();
    match next_change(&mut from_now).await {
        WatchEvent::Put { kv, .. } => assert_eq!(kv.mod_revision, fourth),
        other => panic!("unexpected {other:?}"),
    }
}

async fn watch_only_sees_keys_under_its_prefix(harness: &mut Harness) {
    let store = harness.store();
    let start = store.current_revision().await.unwrap();
    let mut pvcs = store.watch("/r/pvc/", start).await.unwrap();
    let mut everything = store.watch("", start).await.unwrap();
    store.create("/r/pv/x", value("pv")).await.unwrap();
    store.create("/r/pvcx", value("not a pvc")).await.unwrap();
    let pvc = store.create("/r/pvc/ns/a", value("pvc")).await.unwrap();

    match next_change(&mut pvcs).await {
        WatchEvent::Put { kv, .. } => {
            assert_eq!(kv.key, "/r/pvc/ns/a");
            assert_eq!(kv.mod_revision, pvc);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_no_change(&mut pvcs, Duration::from_millis(300)).await;

    let mut seen = Vec::new();
    for _ in 0..3 {
        match next_change(&mut everything).await {
            WatchEvent::Put { kv, .. } => seen.push(kv.key),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["/r/pv/x", "/r/pvcx", "/r/pvc/ns/a"]);
}

async fn watch_reports_deletes_with_previous_value(harness: &mut Harness) {
    let store = harness.store();
    let created = store.create("/d/a", value("gone soon")).await.unwrap();
    let mut watch = store.watch("/d/", created).await.unwrap();
    let (deleted, _) = store.delete("/d/a", Some(created)).await.unwrap();
    match next_change(&mut watch).await {
        WatchEvent::Delete { prev, revision } => {
            assert_eq!(revision, deleted);
            assert_eq!(prev.key, "/d/a");
            assert_eq!(prev.value, value("gone soon"));
            assert_eq!(prev.mod_revision, created);
            assert_eq!(prev.create_revision, created);
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn compacted_revisions_fail_lists_and_watches(harness: &mut Harness) {
    let store = harness.store();
    let mut revision = store.create("/c/a", value("0")).await.unwrap();
    for i in 1..5 {
        revision = store
            .update("/c/a", value(&i.to_string()), revision)
            .await
            .unwrap();
    }
    let compact_at = revision - 2;
    store.compact(compact_at).await.unwrap();
    // Compacting again at an older revision is harmless.
    store.compact(compact_at - 1).await.unwrap();

    let old_list = store
        .list(ListOptions {
            prefix: "/c/".into(),
            revision: Some(compact_at - 1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        old_list,
        StoreError::Compacted {
            requested: compact_at - 1,
            compacted: compact_at
        }
    );
    let compacted = assert_watch_compacted(&*store, "/c/", compact_at - 2).await;
    assert_eq!(compacted, compact_at);

    // At and after the compaction revision everything still works.
    let at = store
        .list(ListOptions {
            prefix: "/c/".into(),
            revision: Some(compact_at),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(at.items[0].mod_revision, compact_at);
    let mut watch = store.watch("/c/", compact_at).await.unwrap();
    match next_change(&mut watch).await {
        WatchEvent::Put { kv, .. } => assert_eq!(kv.mod_revision, compact_at + 1),
        other => panic!("unexpected {other:?}"),
    }

    let future = store.compact(revision + 100).await.unwrap_err();
    assert!(
        matches!(future, StoreError::FutureRevision { .. }),
        "{future:?}"
    );
}

const WRITERS: usize = 32;
const CREATES_PER_WRITER: usize = 25;

async fn concurrent_writers_get_distinct_revisions_and_all_persist(harness: &mut Harness) {
    let store = harness.store();
    let start = store.current_revision().await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.spawn(async move {
            let mut written = Vec::new();
            for i in 0..CREATES_PER_WRITER {
                let key = format!("/cw/{writer:02}/{i:03}");
                let revision = store.create(&key, value(&key)).await.unwrap();
                written.push((key, revision));
            }
            written
        });
    }
    let mut written = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let mine = result.unwrap();
        // One writer's revisions grow in the order it wrote.
        assert!(mine.windows(2).all(|w| w[0].1 < w[1].1));
        written.extend(mine);
    }
    let total = WRITERS * CREATES_PER_WRITER;
    assert_eq!(written.len(), total);
    let distinct: HashSet<_> = written.iter().map(|(_, revision)| *revision).collect();
    assert_eq!(distinct.len(), total, "every write has its own revision");
    assert!(distinct.iter().all(|revision| *revision > start));
    assert_eq!(
        store.current_revision().await.unwrap(),
        start + total as u64
    );

    let page = store.list(list_options("/cw/")).await.unwrap();
    assert_eq!(page.items.len(), total);
    let stored: std::collections::HashMap<_, _> = page
        .items
        .iter()
        .map(|kv| (kv.key.clone(), kv.mod_revision))
        .collect();
    for (key, revision) in &written {
        assert_eq!(stored.get(key), Some(revision), "{key}");
    }
}

async fn concurrent_updates_with_same_expected_revision_let_one_win(harness: &mut Harness) {
    let store = harness.store();
    let created = store.create("/race/a", value("0")).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .update("/race/a", value(&i.to_string()), created)
                .await
        });
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(revision) => winners.push(revision),
            Err(StoreError::Conflict { expected, .. }) if expected == created => conflicts += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one update wins");
    assert_eq!(conflicts, 15);
    let kv = store.get("/race/a").await.unwrap().unwrap();
    assert_eq!(kv.mod_revision, winners[0]);
    assert_eq!(store.current_revision().await.unwrap(), winners[0]);
}

async fn acknowledged_writes_survive_restart(harness: &mut Harness) {
    let store = harness.store();
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut written = Vec::new();
            for i in 0..10 {
                let key = format!("/dur/{writer}/{i}");
                written.push((key.clone(), store.create(&key, value(&key)).await.unwrap()));
            }
            written
        });
    }
    let mut written = Vec::new();
    while let Some(result) = tasks.join_next().await {
        written.extend(result.unwrap());
    }
    let deleted_key = &written[0].0;
    let (last_before, _) = store.delete(deleted_key, None).await.unwrap();
    drop(store);

    harness.restart().await;
    let store = harness.store();
    assert_eq!(store.current_revision().await.unwrap(), last_before);
    for (key, revision) in &written[1..] {
        let kv = store.get(key).await.unwrap().expect("acknowledged write");
        assert_eq!(kv.mod_revision, *revision);
        assert_eq!(kv.value, value(key));
    }
    assert_eq!(store.get(deleted_key).await.unwrap(), None);
    let after = store.create("/dur/new", value("new")).await.unwrap();
    assert!(
        after > last_before,
        "revisions keep growing after a restart"
    );
}

// Embedded-store specifics: its history lives in memory.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_history_before_reopen_is_compacted() {
    let mut harness = Harness::redb();
    let store = harness.store();
    let first = store.create("/x/a", value("1")).await.unwrap();
    let last = store.update("/x/a", value("2"), first).await.unwrap();
    drop(store);
    harness.restart().await;
    let store = harness.store();
    assert_eq!(assert_watch_compacted(&*store, "/x/", first).await, last);
    let old = store
        .list(ListOptions {
            prefix: "/x/".into(),
            revision: Some(first),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        old,
        StoreError::Compacted {
            requested: first,
            compacted: last
        }
    );
    // Lists at the open revision and watches from it work.
    let page = store
        .list(ListOptions {
            prefix: "/x/".into(),
            revision: Some(last),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items[0].value, value("2"));
    let mut watch = store.watch("/x/", last).await.unwrap();
    let next = store.create("/x/b", value("3")).await.unwrap();
    match next_change(&mut watch).await {
        WatchEvent::Put { kv, .. } => assert_eq!(kv.mod_revision, next),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_events_beyond_the_history_capacity_are_compacted() {
    let harness = Harness::redb_with(RedbOptions {
        history_capacity: 5,
        ..Default::default()
    });
    let store = harness.store();
    let mut revisions = Vec::new();
    for i in 0..10 {
        revisions.push(
            store
                .create(&format!("/ring/{i}"), value("v"))
                .await
                .unwrap(),
        );
    }
    // The ring holds the last 5 events: watches after revisions[4] work, older ones do not.
    assert_eq!(
        assert_watch_compacted(&*store, "/ring/", revisions[3]).await,
        revisions[4]
    );
    let mut watch = store.watch("/ring/", revisions[4]).await.unwrap();
    for expected in &revisions[5..] {
        match next_change(&mut watch).await {
            WatchEvent::Put { kv, .. } => assert_eq!(kv.mod_revision, *expected),
            other => panic!("unexpected {other:?}"),
        }
    }
    let past = store
        .list(ListOptions {
            prefix: "/ring/".into(),
            revision: Some(revisions[4]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(past.items.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_idle_watch_sends_progress_notifications() {
    let harness = Harness::redb_with(RedbOptions {
        progress_interval: Duration::from_millis(100),
        ..Default::default()
    });
    let store: Arc<dyn Store> = harness.store();
    let revision = store.create("/other/a", value("v")).await.unwrap();
    let mut watch = store.watch("/idle/", 0).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut watch))
        .await
        .expect("progress within the timeout");
    assert_eq!(item, Some(Ok(WatchEvent::Progress { revision })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_watches_end_when_the_store_closes() {
    let harness = Harness::redb();
    let store = harness.store();
    let mut watch = store.watch("/", 0).await.unwrap();
    drop(store);
    drop(harness);
    let end = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut watch))
        .await
        .expect("the watch ends within the timeout");
    assert_eq!(end, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_concurrent_writers_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("store.redb")).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..CREATES_PER_WRITER {
                store
                    .create(&format!("/gc/{writer}/{i}"), value("v"))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let stats = store.commit_stats();
    assert_eq!(stats.writes, (WRITERS * CREATES_PER_WRITER) as u64);
    assert!(
        stats.commits * 4 <= stats.writes,
        "32 concurrent writers should average 4+ writes per commit: {stats:?}"
    );
}
