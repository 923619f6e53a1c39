//! Storage object in-use protection: upstream's `pvc-protection` and `pv-protection`
//! controllers.
//!
//! The API server's admission puts `kubernetes.io/pvc-protection` on every claim and
//! `kubernetes.io/pv-protection` on every PV (these loops add them to objects that lack them).
//! A claim being deleted keeps its finalizer while a pod uses it — a pod scheduled to a node
//! (as upstream: an unscheduled pod never starts with a claim being deleted), not in phase
//! Succeeded or Failed and not already shut down, naming the claim in
//! `spec.volumes[].persistentVolumeClaim.claimName` or owning it as the generated claim
//! `<pod>-<volume>` of an ephemeral volume. Pods are found through an index by
//! (namespace, claim); a claim that looks unused is confirmed with a live list of its
//! namespace's pods, as upstream, since a pod created an instant ago may not be cached yet.
//! A PV being deleted keeps its finalizer while its phase is `Bound`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tracing::Instrument;
use volplane_api::wellknown::{FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION};

use crate::pv_binder::WorkQueue;
use crate::{Context, Error};

/// Runs both protection controllers until a fatal error.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    tokio::select! {
        result = run_pvc_protection(ctx.clone()) => result,
        result = run_pv_protection(ctx) => result,
    }
}

/// The claims each pod might use (its volumes), indexed both ways.
#[derive(Default)]
pub struct PodIndex {
    /// `namespace/claim` → pods (`namespace/name`) naming it.
    pods_by_claim: HashMap<String, HashMap<String, Arc<Pod>>>,
    /// `namespace/name` of a pod → the claims it was filed under.
    claims_by_pod: HashMap<String, Vec<String>>,
}

impl PodIndex {
    /// Files `pod` under the claims it names, returning those claims.
    pub fn upsert(&mut self, pod: Pod) -> Vec<String> {
        let key = pod_key(&pod);
        self.remove(&key);
        let claims = claim_keys(&pod);
        let pod = Arc::new(pod);
        for claim in &claims {
            self.pods_by_claim
                .entry(claim.clone())
                .or_default()
                .insert(key.clone(), pod.clone());
        }
        self.claims_by_pod.insert(key, claims.clone());
        claims
    }

    /// Forgets the pod `key`, returning the claims it was filed under.
    pub fn remove(&mut self, key: &str) -> Vec<String> {
        let claims = self.claims_by_pod.remove(key).unwrap_or_default();
        for claim in &claims {
            if let Some(pods) = self.pods_by_claim.get_mut(claim) {
                pods.remove(key);
                if pods.is_empty() {
                    self.pods_by_claim.remove(claim);
                }
            }
        }
        claims
    }

    /// The pods naming the claim `namespace/name`.
    pub fn pods_naming(&self, claim: &str) -> Vec<Arc<Pod>> {
        self.pods_by_claim
            .get(claim)
            .map(|pods| pods.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// Upstream's `ephemeral.VolumeClaimName`: `<pod>-<volume>`.
fn ephemeral_claim_name(pod: &Pod, volume: &str) -> String {
    format!("{}-{volume}", pod.name_any())
}

/// `namespace/claim` of every claim the pod's volumes name.
fn claim_keys(pod: &Pod) -> Vec<String> {
    let namespace = pod.namespace().unwrap_or_default();
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref());
    volumes
        .unwrap_or_default()
        .iter()
        .filter_map(|volume| {
            if let Some(source) = &volume.persistent_volume_claim {
                Some(source.claim_name.clone())
            } else {
                volume
                    .ephemeral
                    .as_ref()
                    .map(|_| ephemeral_claim_name(pod, &volume.name))
            }
        })
        .map(|claim| format!("{namespace}/{claim}"))
        .collect()
}

/// Whether the pod is done with its volumes: phase Succeeded or Failed.
pub fn is_pod_terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Upstream's `podIsShutDown`: deleted with grace period 0 (finished by its node, or forced).
fn is_pod_shut_down(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod.metadata.deletion_grace_period_seconds == Some(0)
}

/// Whether `pod` keeps `claim` from being deleted.
pub fn pod_uses_claim(pod: &Pod, claim: &PersistentVolumeClaim) -> bool {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !scheduled || is_pod_terminated(pod) || is_pod_shut_down(pod) {
        return false;
    }
    if pod.namespace() != claim.namespace() {
        return false;
    }
    let name = claim.name_any();
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref());
    volumes.unwrap_or_default().iter().any(|volume| {
        if let Some(source) = &volume.persistent_volume_claim {
            return source.claim_name == name;
        }
        volume.ephemeral.is_some()
            && ephemeral_claim_name(pod, &volume.name) == name
            && is_owned_by(claim, pod)
    })
}

/// Upstream's `ephemeral.VolumeIsForPod`: the generated claim's controller is the pod.
fn is_owned_by(claim: &PersistentVolumeClaim, pod: &Pod) -> bool {
    claim.owner_references().iter().any(|owner| {
        owner.controller == Some(true) && Some(owner.uid.as_str()) == pod.metadata.uid.as_deref()
    })
}

struct PvcProtection {
    ctx: Arc<Context>,
    pods: Mutex<PodIndex>,
    claims: Store<PersistentVolumeClaim>,
    queue: Arc<WorkQueue<String>>,
}

/// The claim-protection controller alone.
pub async fn run_pvc_protection(ctx: Arc<Context>) -> Result<(), Error> {
    let (claims, writer) = reflector::store();
    let state = Arc::new(PvcProtection {
        ctx: ctx.clone(),
        pods: Mutex::new(PodIndex::default()),
        claims,
        queue: WorkQueue::new(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(watch_claims(state.clone(), writer));
    tasks.spawn(watch_pods(state.clone()));
    for _ in 0..ctx.config.workers.max(1) {
        tasks.spawn(claim_worker(state.clone()));
    }
    tasks.join_next().await;
    Err(Error::Invalid("PVC protection controller stopped".into()))
}

/// Queues claims that need a finalizer added or may have it removed.
async fn watch_claims(
    state: Arc<PvcProtection>,
    writer: reflector::store::Writer<PersistentVolumeClaim>,
) {
    let claims: Api<PersistentVolumeClaim> = Api::all(state.ctx.client.clone());
    let stream = watcher(claims, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    futures::pin_mut!(stream);
    while let Some(claim) = stream.next().await {
        match claim {
            Ok(claim) => {
                let has = claim
                    .finalizers()
                    .iter()
                    .any(|f| f == FINALIZER_PVC_PROTECTION);
                if !has || claim.metadata.deletion_timestamp.is_some() {
                    state.queue.add(claim_key(&claim));
                }
            }
            Err(error) => tracing::warn!(%error, "claim watch failed, retrying"),
        }
    }
}

fn claim_key(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        claim.namespace().unwrap_or_default(),
        claim.name_any()
    )
}

async fn claim_worker(state: Arc<PvcProtection>) {
    loop {
        let key = state.queue.get().await;
        let claim = key.split_once('/').and_then(|(namespace, name)| {
            state.claims.get(&ObjectRef::new(name).within(namespace))
        });
        let result = match claim {
            Some(claim) => reconcile_claim(claim, &state).await,
            None => Ok(()),
        };
        match result {
            Ok(()) => state.queue.forget(&key),
            Err(error) => {
                tracing::warn!(%key, %error, "PVC protection failed, retrying");
                state.queue.add_rate_limited(key.clone());
            }
        }
        state.queue.done(&key);
    }
}

/// Keeps the pod index current; a pod that stops using its claims (deleted, terminated or
/// shut down) queues them.
async fn watch_pods(state: Arc<PvcProtection>) {
    let pods: Api<Pod> = Api::all(state.ctx.client.clone());
    let stream = watcher(pods, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let claims = match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                let done = is_pod_terminated(&pod) || is_pod_shut_down(&pod);
                let claims = state.pods.lock().expect("pod index").upsert(pod);
                if done { claims } else { Vec::new() }
            }
            Ok(watcher::Event::Delete(pod)) => {
                state.pods.lock().expect("pod index").remove(&pod_key(&pod))
            }
            Ok(_) => Vec::new(),
            Err(error) => {
                tracing::warn!(%error, "pod watch failed, retrying");
                Vec::new()
            }
        };
        for claim in claims {
            state.queue.add(claim);
        }
    }
}

async fn reconcile_claim(
    claim: Arc<PersistentVolumeClaim>,
    state: &PvcProtection,
) -> Result<(), Error> {
    let key = claim_key(&claim);
    let span = tracing::info_span!("pvc_protection", kind = "PersistentVolumeClaim", key = %key,
        uid = claim.metadata.uid.as_deref().unwrap_or(""),
        resource_version = claim.metadata.resource_version.as_deref().unwrap_or(""));
    async {
        let has = claim
            .finalizers()
            .iter()
            .any(|f| f == FINALIZER_PVC_PROTECTION);
        if claim.metadata.deletion_timestamp.is_none() {
            if !has {
                add_finalizer(
                    &claim_api(&state.ctx, &claim),
                    claim.as_ref(),
                    FINALIZER_PVC_PROTECTION,
                )
                .await?;
            }
            return Ok(());
        }
        if !has {
            return Ok(());
        }
        if let Some(pod) = user_of(state, &claim).await? {
            tracing::info!(pod, "keeping the claim: a pod uses it");
            return Ok(());
        }
        remove_finalizer(
            &claim_api(&state.ctx, &claim),
            claim.as_ref(),
            FINALIZER_PVC_PROTECTION,
        )
        .await?;
        tracing::info!("removed the protection finalizer: no pod uses the claim");
        Ok(())
    }
    .instrument(span)
    .await
}

/// A pod using the claim (its name), from the index, else from a live list.
async fn user_of(
    state: &PvcProtection,
    claim: &PersistentVolumeClaim,
) -> Result<Option<String>, Error> {
    let key = claim_key(claim);
    let cached = state.pods.lock().expect("pod index").pods_naming(&key);
    if let Some(pod) = cached.iter().find(|pod| pod_uses_claim(pod, claim)) {
        return Ok(Some(pod.name_any()));
    }
    let pods: Api<Pod> = Api::namespaced(
        state.ctx.client.clone(),
        &claim.namespace().unwrap_or_default(),
    );
    let live = pods.list(&ListParams::default()).await?;
    Ok(live
        .items
        .iter()
        .find(|pod| pod_uses_claim(pod, claim))
        .map(ResourceExt::name_any))
}

fn claim_api(ctx: &Context, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
    Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default())
}

/// Writes the object with `finalizer` added, conditional on its resourceVersion.
async fn add_finalizer<K>(api: &Api<K>, object: &K, finalizer: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut changed = object.clone();
    changed.finalizers_mut().push(finalizer.to_string());
    api.replace(&object.name_any(), &PostParams::default(), &changed)
        .await?;
    Ok(())
}

/// Writes the object without `finalizer`, conditional on its resourceVersion.
async fn remove_finalizer<K>(api: &Api<K>, object: &K, finalizer: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut changed = object.clone();
    changed.finalizers_mut().retain(|f| f != finalizer);
    api.replace(&object.name_any(), &PostParams::default(), &changed)
        .await?;
    Ok(())
}

fn error_policy(_object: Arc<PersistentVolume>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "protection reconcile failed, retrying");
    Action::requeue(Duration::from_millis(500))
}

/// The PV-protection controller alone.
pub async fn run_pv_protection(ctx: Arc<Context>) -> Result<(), Error> {
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let workers = u16::try_from(ctx.config.workers).unwrap_or(u16::MAX);
    Controller::new(volumes, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(workers))
        .run(reconcile_volume, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    Err(Error::Invalid("PV protection controller stopped".into()))
}

/// Whether a PV being deleted must keep its finalizer: while it is Bound (upstream's only
/// criterion; the binder moves a PV whose claim is gone to Released).
pub fn is_volume_in_use(pv: &PersistentVolume) -> bool {
    pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

async fn reconcile_volume(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!("pv_protection", kind = "PersistentVolume", key = %pv.name_any(),
        uid = pv.metadata.uid.as_deref().unwrap_or(""),
        resource_version = pv.metadata.resource_version.as_deref().unwrap_or(""));
    async {
        let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
        let has = pv.finalizers().iter().any(|f| f == FINALIZER_PV_PROTECTION);
        if pv.metadata.deletion_timestamp.is_none() {
            if !has {
                add_finalizer(&api, pv.as_ref(), FINALIZER_PV_PROTECTION).await?;
            }
        } else if has && !is_volume_in_use(&pv) {
            remove_finalizer(&api, pv.as_ref(), FINALIZER_PV_PROTECTION).await?;
            tracing::info!("removed the protection finalizer: the volume is not bound");
        }
        Ok(Action::await_change())
    }
    .instrument(span)
    .await
}

/// Pods naming each claim, for tests and `volplane why`: the claims (`namespace/name`) kept
/// by at least one pod among `pods`.
pub fn claims_in_use<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    claims: &[PersistentVolumeClaim],
) -> HashSet<String> {
    let pods: Vec<&Pod> = pods.into_iter().collect();
    claims
        .iter()
        .filter(|claim| pods.iter().any(|pod| pod_uses_claim(pod, claim)))
        .map(|claim| {
            format!(
                "{}/{}",
                claim.namespace().unwrap_or_default(),
                claim.name_any()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        let mut base = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"},
            "spec": {"nodeName": "node-a", "containers": [],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                                 {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]},
            "status": {"phase": "Running"}});
        if let (Some(b), Some(p)) = (base.as_object_mut(), value.as_object()) {
            for (k, v) in p {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn claim(name: &str, owner: Option<&str>) -> PersistentVolumeClaim {
        let owners = owner.map(|uid| {
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "web",
            "uid": uid, "controller": true}])
        });
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns",
            "ownerReferences": owners}, "spec": {}}))
        .unwrap()
    }

    #[test]
    fn running_scheduled_pods_use_their_claims() {
        let running = pod(json!({}));
        assert!(pod_uses_claim(&running, &claim("data", None)));
        assert!(pod_uses_claim(
            &running,
            &claim("web-scratch", Some("pod-uid"))
        ));
        // A same-named claim not created for this pod is not its ephemeral volume.
        assert!(!pod_uses_claim(
            &running,
            &claim("web-scratch", Some("other"))
        ));
        assert!(!pod_uses_claim(&running, &claim("other", None)));
    }

    #[test]
    fn terminated_unscheduled_or_shut_down_pods_do_not() {
        let data = claim("data", None);
        assert!(!pod_uses_claim(
            &pod(json!({"status": {"phase": "Succeeded"}})),
            &data
        ));
        assert!(!pod_uses_claim(
            &pod(json!({"status": {"phase": "Failed"}})),
            &data
        ));
        let mut unscheduled = pod(json!({}));
        unscheduled.spec.as_mut().unwrap().node_name = None;
        assert!(!pod_uses_claim(&unscheduled, &data));
        let mut shut_down = pod(json!({}));
        shut_down.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        shut_down.metadata.deletion_grace_period_seconds = Some(0);
        assert!(!pod_uses_claim(&shut_down, &data));
    }

    #[test]
    fn the_index_files_pods_by_claim_and_forgets_them() {
        let mut index = PodIndex::default();
        let claims = index.upsert(pod(json!({})));
        assert_eq!(claims, ["ns/data", "ns/web-scratch"]);
        assert_eq!(index.pods_naming("ns/data").len(), 1);
        index.remove("ns/web");
        assert!(index.pods_naming("ns/data").is_empty());
        let in_use = claims_in_use([&pod(json!({}))], &[claim("data", None), claim("x", None)]);
        assert_eq!(in_use, HashSet::from(["ns/data".to_string()]));
    }

    #[test]
    fn only_bound_volumes_are_in_use() {
        let pv = |phase: &str| -> PersistentVolume {
            serde_json::from_value(json!({"metadata": {"name": "pv"}, "status": {"phase": phase}}))
                .unwrap()
        };
        assert!(is_volume_in_use(&pv("Bound")));
        assert!(!is_volume_in_use(&pv("Released")));
        assert!(!is_volume_in_use(&pv("Available")));
    }
}
