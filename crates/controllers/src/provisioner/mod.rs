//! The CSI provisioner (kubernetes-csi external-provisioner semantics): makes a volume and its
//! PV for every claim that waits for one, and deletes the volume of a released PV whose
//! reclaim policy is `Delete` ([`deleter`]).
//!
//! A claim is provisioned when it is unbound (no `spec.volumeName`, not being deleted), the
//! binder has named its class's provisioner in `volume.kubernetes.io/storage-provisioner`, that
//! provisioner is a CSI driver in the [`Registry`], and — for a `WaitForFirstConsumer` class —
//! the scheduler has written `volume.kubernetes.io/selected-node`. A class naming a driver with
//! no registered endpoint leaves the claim Pending with a `ProvisioningFailed` event that names
//! the missing registration; registering the driver retries such claims at once.
//!
//! Provisioning is CreateVolume named `pvc-<claim uid>` (capacity, one capability per access
//! mode, fsType and mount options, parameters without the `csi.storage.k8s.io/` ones, the
//! provisioner secret, accessibility requirements from [`topology`], content source from
//! [`data_source`]), then the PV of the same name, pre-bound to the claim, which the binder
//! then binds. Crash safety comes from idempotency, not bookkeeping: CreateVolume with the same
//! name returns the volume made before a crash, and a PV that already exists counts as made.
//!
//! Failures write `ProvisioningFailed` and are retried per claim with exponential backoff
//! (1 s doubling to 5 min); an INVALID_ARGUMENT answer holds the claim back for 5 min unless
//! its class changes. When the selected node cannot host the volume (RESOURCE_EXHAUSTED from a
//! driver with topology, or a Node/CSINode that does not exist) the selected-node annotation
//! is removed so the scheduler chooses again.
//!
//! Classes, CSINodes, Nodes, claims, PVs and VolumeAttachments are read from reflector caches;
//! the only reads per claim are the secrets and VolumeSnapshots it names.

pub(crate) mod backoff;
pub mod data_source;
pub mod deleter;
pub mod secrets;
pub mod topology;
pub mod volume;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt, future::BoxFuture};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass, VolumeAttachment};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use tracing::Instrument;
use volplane_api::wellknown;
use volplane_csi::proto::{self, controller_service_capability::rpc::Type as Rpc};
use volplane_csi::{ClientError, CsiClient};

use crate::csi_drivers::{DriverCapabilities, Registry, status_text};
use crate::events::{Severity, reference_to};
use crate::informer::{Cache, follow};
use crate::{Context, Error};
use backoff::{Backoff, SlowSet};
use data_source::DataSource;
use secrets::SecretKind;
use volume::{NewVolume, VolumeSecrets};

/// How long an infeasible (INVALID_ARGUMENT) claim is held back, unless its class changes.
const INFEASIBLE_HOLD: Duration = Duration::from_secs(300);

/// Runs the provisioner and the deleter until a fatal error. `drivers` is shared with the
/// other CSI loops; the provisioner also keeps it in step with CSIDriver annotations
/// ([`crate::csi_drivers::follow_csi_drivers`]).
pub async fn run(ctx: Arc<Context>, drivers: Arc<Registry>) -> Result<(), Error> {
    let client = ctx.client.clone();
    let mut followers: Vec<BoxFuture<'static, ()>> = Vec::new();
    let classes = follow(Api::<StorageClass>::all(client.clone()), &mut followers);
    let csi_nodes = follow(Api::<CSINode>::all(client.clone()), &mut followers);
    let nodes = follow(Api::<Node>::all(client.clone()), &mut followers);
    let attachments = follow(Api::<VolumeAttachment>::all(client.clone()), &mut followers);
    let every = watcher::Config::default;
    let claim_controller =
        Controller::new(Api::<PersistentVolumeClaim>::all(client.clone()), every());
    let volume_controller = Controller::new(Api::<PersistentVolume>::all(client.clone()), every());
    let provisioner = Arc::new(Provisioner {
        caches: Caches {
            classes,
            csi_nodes,
            nodes,
            // Caches of their own, not the controllers' stores: reconciles wait for every
            // cache to be ready, and a controller stops reading its watch while all its workers
            // are busy, so waiting on its own store would deadlock once the initial list spans
            // more pages than the workers can absorb.
            claims: follow(
                Api::<PersistentVolumeClaim>::all(client.clone()),
                &mut followers,
            ),
            volumes: follow(Api::<PersistentVolume>::all(client.clone()), &mut followers),
            attachments,
        },
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        slow: SlowSet::default(),
        identity_stamp: identity_stamp(),
        drivers: drivers.clone(),
        ctx: ctx.clone(),
    });
    let config =
        Config::default().concurrency(ctx.config.workers.clamp(1, u16::MAX as usize) as u16);
    let claim_loop = claim_controller
        .with_config(config.clone())
        .reconcile_all_on(registry_changes(&drivers))
        .run(reconcile_claim, claim_error_policy, provisioner.clone())
        .for_each(|result| async move { log_outcome("PersistentVolumeClaim", result) });
    // A second watch of VolumeAttachments: it retries a PV's deletion when its attachment goes.
    let volume_loop = volume_controller
        .with_config(config)
        .watches(
            Api::<VolumeAttachment>::all(client.clone()),
            every(),
            deleter::volume_of_attachment,
        )
        .reconcile_all_on(registry_changes(&drivers))
        .run(
            deleter::reconcile_volume,
            deleter::error_policy,
            provisioner,
        )
        .for_each(|result| async move { log_outcome("PersistentVolume", result) });
    tokio::select! {
        () = claim_loop => {}
        () = volume_loop => {}
        () = futures::future::join_all(followers).map(|_| ()) => {}
        result = crate::csi_drivers::follow_csi_drivers(client, drivers) => result?,
    }
    Ok(())
}

/// A stream that fires whenever the registry changes.
pub(crate) fn registry_changes(drivers: &Registry) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(drivers.changes(), |mut changes| async move {
        changes.changed().await.ok()?;
        Some(((), changes))
    })
}

pub(crate) fn log_outcome<K: Resource, E: std::fmt::Display, Q: std::fmt::Display>(
    kind: &str,
    result: Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<E, Q>>,
) {
    if let Err(error) = result {
        tracing::debug!(kind, %error, "reconcile did not finish");
    }
}

/// The caches the provisioner decides from.
pub(crate) struct Caches {
    pub(crate) classes: Cache<StorageClass>,
    pub(crate) csi_nodes: Cache<CSINode>,
    pub(crate) nodes: Cache<Node>,
    pub(crate) claims: Cache<PersistentVolumeClaim>,
    pub(crate) volumes: Cache<PersistentVolume>,
    pub(crate) attachments: Cache<VolumeAttachment>,
}

impl Caches {
    /// Waits until every cache has its first list (at once after start-up), so no decision
    /// is taken on a partial view.
    async fn ready(&self) {
        futures::join!(
            self.classes.ready(),
            self.csi_nodes.ready(),
            self.nodes.ready(),
            self.claims.ready(),
            self.volumes.ready(),
            self.attachments.ready(),
        );
    }
}

/// The provisioner's shared state.
pub(crate) struct Provisioner {
    pub(crate) ctx: Arc<Context>,
    pub(crate) drivers: Arc<Registry>,
    pub(crate) caches: Caches,
    pub(crate) backoff: Backoff,
    slow: SlowSet,
    identity_stamp: String,
}

impl Provisioner {
    /// `storage.kubernetes.io/csiProvisionerIdentity`: start time, a number, the driver.
    fn identity(&self, driver: &str) -> String {
        format!("{}-{driver}", self.identity_stamp)
    }
}

fn identity_stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", now.as_millis(), now.subsec_nanos() % 10_000)
}

/// Why a claim's reconcile did not finish; the loop retries it.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Provisioning failed (already reported as an event).
    #[error("claim {key}: {message}")]
    Failed {
        /// `namespace/name`.
        key: String,
        /// The reason.
        message: String,
    },
    /// The API server refused a write.
    #[error("claim {key}: {source}")]
    Api {
        /// `namespace/name`.
        key: String,
        /// The API error.
        source: kube::Error,
    },
}

fn claim_error_policy(
    claim: Arc<PersistentVolumeClaim>,
    error: &ClaimError,
    p: Arc<Provisioner>,
) -> Action {
    tracing::debug!(%error, "provisioning will be retried");
    Action::requeue(p.backoff.failed(&object_key(claim.as_ref())))
}

/// `namespace/name` of an object.
pub(crate) fn object_key<K: Resource>(object: &K) -> String {
    match object.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", object.meta().name.as_deref().unwrap_or_default()),
        None => object.meta().name.clone().unwrap_or_default(),
    }
}

async fn reconcile_claim(
    claim: Arc<PersistentVolumeClaim>,
    p: Arc<Provisioner>,
) -> Result<Action, ClaimError> {
    let key = object_key(claim.as_ref());
    let span = tracing::info_span!(
        "provision",
        kind = "PersistentVolumeClaim",
        key = %key,
        uid = claim.metadata.uid.as_deref().unwrap_or_default(),
        resource_version = claim.metadata.resource_version.as_deref().unwrap_or_default(),
    );
    async move {
        p.caches.ready().await;
        tracing::trace!("caches ready");
        let action = sync_claim(&p, &claim, &key).await?;
        if action == Action::await_change() {
            p.backoff.forget(&key);
        }
        Ok(action)
    }
    .instrument(span)
    .await
}

/// The driver a claim waits for, when it waits for one at all.
pub fn requested_provisioner(claim: &PersistentVolumeClaim) -> Option<&str> {
    if claim.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let spec = claim.spec.as_ref()?;
    if spec.volume_name.as_deref().is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let annotations = claim.metadata.annotations.as_ref()?;
    annotations
        .get(wellknown::ANN_STORAGE_PROVISIONER)
        .or_else(|| annotations.get(wellknown::ANN_BETA_STORAGE_PROVISIONER))
        .map(String::as_str)
        .filter(|p| !p.is_empty())
}

/// The node the scheduler selected for a claim.
pub fn selected_node(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .metadata
        .annotations
        .as_ref()?
        .get(wellknown::ANN_SELECTED_NODE)
        .map(String::as_str)
        .filter(|n| !n.is_empty())
}

async fn sync_claim(
    p: &Provisioner,
    claim: &PersistentVolumeClaim,
    key: &str,
) -> Result<Action, ClaimError> {
    let Some(driver) = requested_provisioner(claim) else {
        tracing::trace!("not handed to a provisioner");
        return Ok(Action::await_change());
    };
    let class_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default();
    let Some(class) = p.caches.classes.get(&ObjectRef::new(&class_name)) else {
        // The binder reports a missing class; the claim is retried when it appears.
        return Err(failed(
            key,
            format!("storageclass.storage.k8s.io {class_name:?} not found"),
        ));
    };
    if class.provisioner != driver || driver == wellknown::NO_PROVISIONER {
        tracing::trace!(driver, "another provisioner's claim");
        return Ok(Action::await_change());
    }
    let wait_for_consumer = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    if wait_for_consumer && selected_node(claim).is_none() {
        return Ok(Action::await_change());
    }
    let Some(pv_name) = volume::volume_name(claim) else {
        return Ok(Action::await_change());
    };
    if p.caches.volumes.get(&ObjectRef::new(&pv_name)).is_some() {
        tracing::trace!(pv_name, "its PV exists");
        return Ok(Action::await_change());
    }
    let class_uid = class.metadata.uid.clone().unwrap_or_default();
    let uid = claim.metadata.uid.clone().unwrap_or_default();
    if let Some(left) = p.slow.remaining(&uid, &class_uid) {
        tracing::debug!(
            ?left,
            "skipping volume provisioning: it previously failed with an infeasible error"
        );
        return Ok(Action::requeue(left));
    }
    tracing::trace!(driver, "connecting to the driver");
    let (client, capabilities) = match p.drivers.connect(driver).await {
        Ok(connected) => connected,
        Err(error) => {
            let message = error.to_string();
            warn_claim(p, claim, "ProvisioningFailed", &message).await;
            return Err(failed(key, message));
        }
    };
    let attempt = Attempt {
        p,
        claim,
        class: &class,
        driver,
        client,
        capabilities,
        pv_name,
    };
    match attempt.provision().await {
        Ok(()) => {
            p.slow.remove(&uid);
            Ok(Action::await_change())
        }
        Err(failure) => attempt.handle_failure(failure, key, &class_uid).await,
    }
}

fn failed(key: &str, message: String) -> ClaimError {
    ClaimError::Failed {
        key: key.to_string(),
        message,
    }
}

async fn warn_claim(p: &Provisioner, claim: &PersistentVolumeClaim, reason: &str, note: &str) {
    p.ctx
        .event(
            &reference_to(claim),
            Severity::Warning,
            reason,
            "Provision",
            note,
        )
        .await;
}

/// What upstream does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Retry with backoff (nothing in flight, or an operation may still be running).
    Retry,
    /// The selected node cannot host the volume: let the scheduler choose again.
    Reschedule,
    /// The request itself is wrong: hold the claim back.
    Infeasible,
    /// Not for this provisioner (e.g. a populator's data source): stop.
    Ignore,
}

/// A failed attempt.
#[derive(Debug)]
struct Failure {
    message: String,
    next: Next,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            next: Next::Retry,
        }
    }
}

/// How a CreateVolume error is handled, by its gRPC code (external-provisioner `checkError`,
/// and the library's infeasible INVALID_ARGUMENT).
fn create_volume_next(error: &ClientError, may_reschedule: bool) -> Next {
    use tonic::Code;
    match error.code() {
        Some(Code::ResourceExhausted) if may_reschedule => Next::Reschedule,
        Some(Code::InvalidArgument) => Next::Infeasible,
        _ => Next::Retry,
    }
}

/// One provisioning attempt for one claim.
struct Attempt<'a> {
    p: &'a Provisioner,
    claim: &'a PersistentVolumeClaim,
    class: &'a StorageClass,
    driver: &'a str,
    client: CsiClient,
    capabilities: Arc<DriverCapabilities>,
    pv_name: String,
}

impl Attempt<'_> {
    async fn provision(&self) -> Result<(), Failure> {
        self.check_selected_node().await?;
        let reference = reference_to(self.claim);
        let note = format!(
            "External provisioner is provisioning volume for claim {:?}",
            object_key(self.claim)
        );
        self.p
            .ctx
            .event(
                &reference,
                Severity::Normal,
                "Provisioning",
                "Provision",
                note,
            )
            .await;
        let Some((request, prepared)) = self.prepare().await? else {
            return Ok(());
        };
        let requested = request
            .capacity_range
            .map(|r| r.required_bytes)
            .unwrap_or(0);
        let provisioner_secrets = request.secrets.clone();
        let wants_source = request.volume_content_source.is_some();
        let response = self
            .client
            .create_volume(request)
            .await
            .map_err(|error| Failure {
                message: status_text(&error),
                next: create_volume_next(
                    &error,
                    self.capabilities.supports_topology() && selected_node(self.claim).is_some(),
                ),
            })?;
        let volume = response.volume.unwrap_or_default();
        let capacity = match volume.capacity_bytes {
            0 => requested,
            c if c < requested => {
                let message =
                    format!("created volume capacity {c} less than requested capacity {requested}");
                return Err(Failure::retry(
                    self.clean_up(&volume, provisioner_secrets, message).await,
                ));
            }
            c => c,
        };
        if wants_source && volume.content_source.is_none() {
            let message = "volume content source missing".to_string();
            return Err(Failure::retry(
                self.clean_up(&volume, provisioner_secrets, message).await,
            ));
        }
        let identity = self.p.identity(self.driver);
        let pv = volume::persistent_volume(&NewVolume {
            claim: self.claim,
            class: self.class,
            driver: self.driver,
            identity: &identity,
            volume: &volume,
            capacity_bytes: capacity,
            fs_type: &prepared.fs_type,
            secrets: &prepared.secrets,
            topology: self.capabilities.supports_topology(),
        });
        self.store_volume(pv).await
    }

    /// The library's check that the selected node exists; a missing one is rescheduled.
    async fn check_selected_node(&self) -> Result<(), Failure> {
        let Some(node) = selected_node(self.claim) else {
            return Ok(());
        };
        if self.node(node).await.is_none() {
            return Err(Failure {
                message: format!("nodes {node:?} not found"),
                next: Next::Reschedule,
            });
        }
        Ok(())
    }

    /// The node from the cache; a miss is confirmed with the API before it is believed, as it
    /// leads to a reschedule.
    async fn node(&self, name: &str) -> Option<Arc<Node>> {
        if let Some(node) = self.p.caches.nodes.get(&ObjectRef::new(name)) {
            return Some(node);
        }
        Api::<Node>::all(self.p.ctx.client.clone())
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .map(Arc::new)
    }

    async fn csi_node(&self, name: &str) -> Option<Arc<CSINode>> {
        if let Some(node) = self.p.caches.csi_nodes.get(&ObjectRef::new(name)) {
            return Some(node);
        }
        Api::<CSINode>::all(self.p.ctx.client.clone())
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .map(Arc::new)
    }

    /// Everything checked and resolved before CreateVolume (external-provisioner
    /// `prepareProvision`). None when the claim is not the provisioner's to fill.
    async fn prepare(&self) -> Result<Option<(proto::CreateVolumeRequest, Prepared)>, Failure> {
        let source = data_source::data_source(self.claim).map_err(Failure::retry)?;
        if let Some(DataSource::Populator(kind)) = &source {
            let note = "Assuming an external populator will provision the volume";
            self.p
                .ctx
                .event(
                    &reference_to(self.claim),
                    Severity::Normal,
                    "Provisioning",
                    "Provision",
                    note,
                )
                .await;
            return Err(Failure {
                message: format!(
                    "data source ({kind}) is not handled by the provisioner, assuming an external populator will provision it"
                ),
                next: Next::Ignore,
            });
        }
        self.check_capabilities(source.as_ref())
            .map_err(Failure::retry)?;
        let spec = self.claim.spec.clone().unwrap_or_default();
        if spec.selector.is_some() {
            return Err(Failure::retry("claim Selector is not supported"));
        }
        let parameters = self.class.parameters.clone().unwrap_or_default();
        let fs_type = volume::fs_type(&parameters).map_err(Failure::retry)?;
        let capabilities = volume::volume_capabilities(
            self.claim,
            self.class,
            &fs_type,
            self.capabilities.single_node_multi_writer(),
        )
        .map_err(Failure::retry)?;
        let mut request = proto::CreateVolumeRequest {
            name: self.pv_name.clone(),
            capacity_range: Some(proto::CapacityRange {
                required_bytes: volume::requested_bytes(self.claim).map_err(Failure::retry)?,
                limit_bytes: 0,
            }),
            volume_capabilities: capabilities,
            ..Default::default()
        };
        if let Some(source) = &source {
            request.volume_content_source = Some(self.content_source(source).await?);
        }
        if self.capabilities.supports_topology() {
            request.accessibility_requirements = self.accessibility_requirements().await?;
        }
        let secrets = self.secret_references(&parameters)?;
        request.secrets = secrets::credentials(&self.p.ctx.client, secrets.provisioner.as_ref())
            .await
            .map_err(Failure::retry)?;
        request.parameters = secrets::driver_parameters(&parameters).map_err(Failure::retry)?;
        Ok(Some((request, Prepared { fs_type, secrets })))
    }

    fn check_capabilities(&self, source: Option<&DataSource>) -> Result<(), String> {
        let caps = &self.capabilities;
        if !caps
            .plugin
            .contains(&proto::plugin_capability::service::Type::ControllerService)
        {
            return Err("CSI driver does not support dynamic provisioning: plugin CONTROLLER_SERVICE capability is not reported".into());
        }
        if !caps.has(Rpc::CreateDeleteVolume) {
            return Err("CSI driver does not support dynamic provisioning: controller CREATE_DELETE_VOLUME capability is not reported".into());
        }
        match source {
            Some(DataSource::Snapshot { .. }) if !caps.has(Rpc::CreateDeleteSnapshot) => Err(
                "CSI driver does not support snapshot restore: controller CREATE_DELETE_SNAPSHOT capability is not reported".into(),
            ),
            Some(DataSource::Claim { .. }) if !caps.has(Rpc::CloneVolume) => Err(
                "CSI driver does not support clone operations: controller CLONE_VOLUME capability is not reported".into(),
            ),
            _ => Ok(()),
        }
    }

    async fn content_source(
        &self,
        source: &DataSource,
    ) -> Result<proto::VolumeContentSource, Failure> {
        let (kind, name, result) = match source {
            DataSource::Claim { namespace, name } => {
                let r = data_source::clone_source(
                    self.claim,
                    self.class,
                    (namespace, name),
                    &self.p.caches.claims,
                    &self.p.caches.volumes,
                );
                ("PersistentVolumeClaim", name, r)
            }
            DataSource::Snapshot { namespace, name } => {
                let r = data_source::snapshot_source(
                    &self.p.ctx.client,
                    self.claim,
                    self.class,
                    (namespace, name),
                )
                .await;
                ("VolumeSnapshot", name, r)
            }
            DataSource::Populator(_) => unreachable!("populator sources stop before"),
        };
        result.map_err(|e| {
            Failure::retry(format!(
                "error getting handle for DataSource Type {kind} by Name {name}: {e}"
            ))
        })
    }

    async fn accessibility_requirements(
        &self,
    ) -> Result<Option<proto::TopologyRequirement>, Failure> {
        let selected_name = selected_node(self.claim);
        let (node, csi_node) = match selected_name {
            Some(name) => (self.node(name).await, self.csi_node(name).await),
            None => (None, None),
        };
        let selected = selected_name.map(|name| topology::SelectedNode {
            name,
            node: node.as_deref(),
            csi_node: csi_node.as_deref(),
        });
        let all_csi_nodes = self.p.caches.csi_nodes.state();
        let all_nodes = self.p.caches.nodes.state();
        let mut csi_nodes: Vec<&CSINode> = all_csi_nodes.iter().map(|n| n.as_ref()).collect();
        csi_nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let nodes: Vec<&Node> = all_nodes.iter().map(|n| n.as_ref()).collect();
        topology::accessibility_requirements(
            self.driver,
            self.claim.metadata.name.as_deref().unwrap_or_default(),
            self.class.allowed_topologies.as_deref().unwrap_or_default(),
            selected,
            csi_nodes.into_iter(),
            &nodes,
        )
        .map_err(|e| match e {
            topology::TopologyError::NodeNotFound(m) => Failure {
                message: m,
                next: Next::Reschedule,
            },
            other => Failure::retry(other.to_string()),
        })
    }

    fn secret_references(
        &self,
        parameters: &std::collections::BTreeMap<String, String>,
    ) -> Result<VolumeSecrets, Failure> {
        let resolve = |kind| {
            secrets::secret_reference(kind, parameters, &self.pv_name, Some(self.claim))
                .map_err(Failure::retry)
        };
        Ok(VolumeSecrets {
            provisioner: resolve(SecretKind::Provisioner)?,
            controller_publish: resolve(SecretKind::ControllerPublish)?,
            node_stage: resolve(SecretKind::NodeStage)?,
            node_publish: resolve(SecretKind::NodePublish)?,
            controller_expand: resolve(SecretKind::ControllerExpand)?,
            node_expand: resolve(SecretKind::NodeExpand)?,
        })
    }

    /// Deletes a volume the driver made wrong; the message says whether that worked.
    async fn clean_up(
        &self,
        volume: &proto::Volume,
        secrets: HashMap<String, String>,
        message: String,
    ) -> String {
        let request = proto::DeleteVolumeRequest {
            volume_id: volume.volume_id.clone(),
            secrets,
        };
        match self.client.delete_volume(request).await {
            Ok(_) => message,
            Err(e) => format!(
                "{message}. Cleanup of volume {} failed, volume is orphaned: {}",
                self.pv_name,
                status_text(&e)
            ),
        }
    }

    /// Creates the PV; one that exists already (an earlier attempt got this far) is success.
    async fn store_volume(&self, pv: PersistentVolume) -> Result<(), Failure> {
        let api = Api::<PersistentVolume>::all(self.p.ctx.client.clone());
        match api.create(&PostParams::default(), &pv).await {
            Ok(_) => {
                tracing::info!(pv = %self.pv_name, "volume provisioned");
                let note = format!("Successfully provisioned volume {}", self.pv_name);
                self.p
                    .ctx
                    .event(
                        &reference_to(self.claim),
                        Severity::Normal,
                        "ProvisioningSucceeded",
                        "Provision",
                        note,
                    )
                    .await;
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.reason == "AlreadyExists" => Ok(()),
            Err(e) => Err(Failure::retry(format!(
                "error creating PersistentVolume {}: {e}",
                self.pv_name
            ))),
        }
    }

    /// Reports a failure as upstream does and decides when to try again.
    async fn handle_failure(
        &self,
        failure: Failure,
        key: &str,
        class_uid: &str,
    ) -> Result<Action, ClaimError> {
        let class_name = self.class.metadata.name.as_deref().unwrap_or_default();
        let uid = self.claim.metadata.uid.clone().unwrap_or_default();
        match failure.next {
            Next::Ignore => {
                tracing::debug!(reason = %failure.message, "volume provision ignored");
                Ok(Action::await_change())
            }
            Next::Infeasible => {
                self.p.slow.add(&uid, class_uid, INFEASIBLE_HOLD);
                let note = format!(
                    "Volume provisioning failed with infeasible error. Retries will be delayed. {}",
                    failure.message
                );
                warn_claim(self.p, self.claim, "ProvisioningFailed", &note).await;
                Ok(Action::requeue(INFEASIBLE_HOLD))
            }
            Next::Reschedule if selected_node(self.claim).is_some() => {
                let note = format!(
                    "failed to provision volume with StorageClass {class_name:?}: {}",
                    failure.message
                );
                warn_claim(self.p, self.claim, "ProvisioningFailed", &note).await;
                self.reschedule().await.map_err(|source| ClaimError::Api {
                    key: key.to_string(),
                    source,
                })?;
                tracing::info!(reason = %failure.message, "selected node cleared: the scheduler must choose again");
                Ok(Action::await_change())
            }
            Next::Retry | Next::Reschedule => {
                let note = format!(
                    "failed to provision volume with StorageClass {class_name:?}: {}",
                    failure.message
                );
                warn_claim(self.p, self.claim, "ProvisioningFailed", &note).await;
                Err(failed(key, failure.message))
            }
        }
    }

    /// Removes `volume.kubernetes.io/selected-node`, conditional on the claim being unchanged.
    async fn reschedule(&self) -> Result<(), kube::Error> {
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": self.claim.resource_version(),
                "annotations": { wellknown::ANN_SELECTED_NODE: null },
            }
        });
        let api = Api::<PersistentVolumeClaim>::namespaced(
            self.p.ctx.client.clone(),
            self.claim.metadata.namespace.as_deref().unwrap_or_default(),
        );
        api.patch(
            &self.claim.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(())
    }
}

/// What `prepare` resolved besides the request.
struct Prepared {
    fs_type: String,
    secrets: VolumeSecrets,
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
    use kube::api::ObjectMeta;

    fn claim(annotations: &[(&str, &str)], volume_name: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                volume_name: volume_name.map(Into::into),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn only_unbound_annotated_claims_wait_for_a_driver() {
        let ann = wellknown::ANN_STORAGE_PROVISIONER;
        assert_eq!(
            requested_provisioner(&claim(&[(ann, "d.csi")], None)),
            Some("d.csi")
        );
        assert_eq!(
            requested_provisioner(&claim(
                &[(wellknown::ANN_BETA_STORAGE_PROVISIONER, "b.csi")],
                None
            )),
            Some("b.csi")
        );
        assert_eq!(
            requested_provisioner(&claim(&[(ann, "d.csi")], Some("pv-1"))),
            None
        );
        assert_eq!(requested_provisioner(&claim(&[], None)), None);
    }

    #[test]
    fn create_volume_errors_map_to_upstream_states() {
        let status = |code| ClientError::Status {
            rpc: "CreateVolume",
            code,
            message: String::new(),
        };
        assert_eq!(
            create_volume_next(&status(tonic::Code::ResourceExhausted), true),
            Next::Reschedule
        );
        assert_eq!(
            create_volume_next(&status(tonic::Code::ResourceExhausted), false),
            Next::Retry
        );
        assert_eq!(
            create_volume_next(&status(tonic::Code::InvalidArgument), true),
            Next::Infeasible
        );
        assert_eq!(
            create_volume_next(&status(tonic::Code::OutOfRange), true),
            Next::Retry
        );
        assert_eq!(
            create_volume_next(&status(tonic::Code::Aborted), true),
            Next::Retry
        );
    }
}
