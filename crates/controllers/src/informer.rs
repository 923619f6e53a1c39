//! One watched kind held in memory: a reflector store fed by a watch, and a readiness signal
//! that any number of reconciles may await at once.
//!
//! kube-runtime's `Store::wait_until_ready` keeps a single waker (it polls a futures oneshot
//! receiver behind a mutex), so when several tasks wait on it together only the last one to
//! poll is woken when the first list completes; the others sleep until something else polls
//! them, which in a controller whose every worker waits is never. A restarted provisioner lost
//! all its workers that way under load. [`Cache::ready`] waits on a `tokio::sync::watch`
//! instead, which wakes every waiter.

use std::future::Future;
use std::ops::Deref;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// A kind that can be watched into a [`Cache`] (a cluster- or namespace-scoped typed object).
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// A reflector store of `K` and whether its first list has completed.
#[derive(Clone)]
pub struct Cache<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    ready: watch::Receiver<bool>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Cache<K> {
    /// Returns once the first list has been applied (at once after that). Safe to await from
    /// any number of tasks together. If the feeding watch is gone for good it returns too:
    /// the loop that ran it notices and stops.
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// The store itself, for APIs that take one (kube-runtime's applier).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }
}

impl<K: Resource<DynamicType = ()> + 'static> Deref for Cache<K> {
    type Target = Store<K>;

    fn deref(&self) -> &Store<K> {
        &self.store
    }
}

/// Watches `api` into a [`Cache`]. `on_event` sees every event after the store has applied
/// it. The returned future runs the watch and never ends: errors are logged (a cache that never
/// fills must say why) and retried with kube-runtime's default backoff.
pub fn informer<K: Watched>(
    api: Api<K>,
    mut on_event: impl FnMut(&watcher::Event<K>) + Send + 'static,
) -> (Cache<K>, impl Future<Output = ()> + Send + 'static) {
    let (store, mut writer) = reflector::store();
    let (ready_tx, ready) = watch::channel(false);
    let run = async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    if matches!(event, watcher::Event::InitDone) {
                        ready_tx.send_replace(true);
                    }
                    on_event(&event);
                }
                Err(error) => {
                    tracing::warn!(kind = %K::kind(&()), %error, "watch failed; retrying")
                }
            }
        }
    };
    (Cache { store, ready }, run)
}

/// A [`Cache`] of `api` with nothing else to do per event, its watch pushed onto `followers`.
pub fn follow<K: Watched>(api: Api<K>, followers: &mut Vec<BoxFuture<'static, ()>>) -> Cache<K> {
    let (cache, run) = informer(api, |_| {});
    followers.push(run.boxed());
    cache
}

/// Calls `f` with each object an event carries and whether the event says it was deleted.
pub fn each_object<K>(event: &watcher::Event<K>, mut f: impl FnMut(&K, bool)) {
    match event {
        watcher::Event::Apply(object) | watcher::Event::InitApply(object) => f(object, false),
        watcher::Event::Delete(object) => f(object, true),
        watcher::Event::Init | watcher::Event::InitDone => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Many tasks waiting together are all released by one readiness change (the failure this
    /// type exists for: with kube-runtime's `wait_until_ready` only the last poller woke).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_is_woken() {
        let (store, _writer) = reflector::store::<k8s_openapi::api::core::v1::Node>();
        let (ready_tx, ready) = watch::channel(false);
        let cache = Cache { store, ready };
        let woken = Arc::new(AtomicUsize::new(0));
        let mut waiters = Vec::new();
        for _ in 0..32 {
            let cache = cache.clone();
            let woken = woken.clone();
            waiters.push(tokio::spawn(async move {
                cache.ready().await;
                woken.fetch_add(1, Ordering::SeqCst);
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            woken.load(Ordering::SeqCst),
            0,
            "nobody passes before the list"
        );
        let quick = std::time::Duration::from_millis(10);
        assert!(
            tokio::time::timeout(quick, cache.ready()).await.is_err(),
            "a new waiter does not pass before the list either"
        );
        ready_tx.send_replace(true);
        for waiter in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
                .await
                .expect("a waiter was not woken")
                .unwrap();
        }
        assert_eq!(woken.load(Ordering::SeqCst), 32);
        assert!(
            tokio::time::timeout(quick, cache.ready()).await.is_ok(),
            "after the list a waiter passes at once"
        );
    }
}
