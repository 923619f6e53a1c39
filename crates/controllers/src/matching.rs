//! Whether a PersistentVolume can satisfy a claim: upstream's matching rules
//! (`FindMatchingVolume`, `checkVolumeSatisfyClaim`, `IsVolumeBoundToClaim` in
//! component-helpers/storage/volume and the PV controller), as pure functions.
//!
//! [`check`] answers for one claim and one PV with the *first failing criterion*
//! ([`Mismatch`]); [`nearest_candidates`] ranks PVs by how far they get through the criteria,
//! which is what `volplane why pvc/X` prints. [`find_matching_volume`] is upstream's linear
//! scan, kept as the baseline of the index in [`crate::pv_index`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume, PersistentVolumeClaim,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use volplane_api::quantity::{self, Milli};
use volplane_api::wellknown::LABEL_HOSTNAME;

/// Upstream's deprecated class annotation, still honoured before `storageClassName`.
const ANN_BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// A PV's or claim's `volumeMode` (unset means Filesystem, as upstream defaults it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VolumeMode {
    /// A filesystem is mounted (the default).
    Filesystem,
    /// The raw block device is handed over.
    Block,
}

impl VolumeMode {
    fn parse(mode: Option<&str>) -> Self {
        match mode {
            Some("Block") => Self::Block,
            _ => Self::Filesystem,
        }
    }
}

impl fmt::Display for VolumeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Filesystem => "Filesystem",
            Self::Block => "Block",
        })
    }
}

/// A set of access modes as a bit set, so "PV modes ⊇ claim modes" is one AND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AccessModes(pub u8);

/// The access modes in bit order.
const ACCESS_MODE_NAMES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];
/// A mode this build does not know: never contained in a PV's set, so never matched.
const UNKNOWN_MODE_BIT: u8 = 0x80;

impl AccessModes {
    /// Every distinct set of the known modes (2^4).
    pub const ALL_SETS: u8 = 16;

    /// The set of `modes` (unknown names make a set no PV satisfies).
    pub fn from_names<S: AsRef<str>>(modes: &[S]) -> Self {
        let bits = modes.iter().fold(0u8, |bits, mode| {
            let bit = ACCESS_MODE_NAMES
                .iter()
                .position(|name| *name == mode.as_ref())
                .map_or(UNKNOWN_MODE_BIT, |i| 1 << i);
            bits | bit
        });
        Self(bits)
    }

    /// Whether every mode of `other` is in `self`.
    pub fn contains_all(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// How many modes the set holds.
    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// The modes of `self` not in `other`, by name.
    pub fn missing_from(self, other: Self) -> Vec<&'static str> {
        Self(self.0 & !other.0).names()
    }

    /// The names of the modes in the set.
    pub fn names(self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = ACCESS_MODE_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, name)| *name)
            .collect();
        if self.0 & UNKNOWN_MODE_BIT != 0 {
            names.push("(unknown mode)");
        }
        names
    }
}

/// The node a WaitForFirstConsumer claim was scheduled to, as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// `metadata.name`.
    pub name: String,
    /// The node's labels.
    pub labels: BTreeMap<String, String>,
}

impl NodeView {
    /// The view of a Node object.
    pub fn from_node(node: &Node) -> Self {
        Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
        }
    }

    /// A node known only by name (no Node object yet): its `kubernetes.io/hostname` label is
    /// assumed to be its name, as on nodes the kubelet registers.
    pub fn hostname_only(name: &str) -> Self {
        Self {
            name: name.to_string(),
            labels: BTreeMap::from([(LABEL_HOSTNAME.to_string(), name.to_string())]),
        }
    }
}

/// How the claim's class binds.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// `volumeBindingMode: Immediate` (or no class): bind as soon as a PV fits.
    Immediate,
    /// `WaitForFirstConsumer`: unbound PVs are considered only once a node was selected, and
    /// then only those whose node affinity admits that node.
    WaitForFirstConsumer {
        /// The node from `volume.kubernetes.io/selected-node`, if set.
        selected_node: Option<&'a NodeView>,
    },
}

impl Binding<'_> {
    fn node(&self) -> Option<&NodeView> {
        match self {
            Self::Immediate => None,
            Self::WaitForFirstConsumer { selected_node } => *selected_node,
        }
    }
}

/// Why a PV cannot be bound to a claim: the first criterion it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The PV has a deletionTimestamp.
    Deleting,
    /// `spec.claimRef` names another claim (`namespace/name`).
    BoundToOther {
        /// The claim the PV is bound or reserved to.
        claim: String,
    },
    /// Only Available PVs are matched.
    NotAvailable {
        /// The PV's phase.
        phase: String,
    },
    /// The claim's class is WaitForFirstConsumer and no node was selected yet.
    WaitingForFirstConsumer,
    /// `storageClassName` differs ("" matches only "").
    StorageClass {
        /// The PV's class.
        volume: String,
        /// The claim's class.
        claim: String,
    },
    /// `volumeAttributesClassName` differs.
    VolumeAttributesClass {
        /// The PV's.
        volume: String,
        /// The claim's.
        claim: String,
    },
    /// `volumeMode` differs.
    VolumeMode {
        /// The PV's mode.
        volume: VolumeMode,
        /// The claim's mode.
        claim: VolumeMode,
    },
    /// The PV lacks some access modes the claim asks for.
    AccessModes {
        /// The PV's modes.
        volume: AccessModes,
        /// The claim's modes.
        claim: AccessModes,
    },
    /// The claim's selector does not match the PV's labels.
    Selector {
        /// The first requirement the labels fail, e.g. `tier in (fast)`.
        requirement: String,
    },
    /// The PV is smaller than the request.
    Capacity {
        /// The PV's capacity.
        have: String,
        /// The claim's request.
        want: String,
    },
    /// The PV's node affinity does not admit the selected node.
    NodeAffinity {
        /// The selected node.
        node: String,
    },
}

impl Mismatch {
    /// The criterion's position in the order [`check`] applies them: the higher, the nearer
    /// the PV came to matching.
    pub fn rank(&self) -> u8 {
        match self {
            Self::Deleting => 0,
            Self::BoundToOther { .. } => 1,
            Self::NotAvailable { .. } => 2,
            Self::WaitingForFirstConsumer => 3,
            Self::StorageClass { .. } => 4,
            Self::VolumeAttributesClass { .. } => 5,
            Self::VolumeMode { .. } => 6,
            Self::AccessModes { .. } => 7,
            Self::Selector { .. } => 8,
            Self::Capacity { .. } => 9,
            Self::NodeAffinity { .. } => 10,
        }
    }

    /// The short reason upstream's `checkVolumeSatisfyClaim` gives, used in the
    /// `VolumeMismatch` event ("Cannot bind to requested volume \"pv\": <reason>").
    pub fn upstream_reason(&self, volume_name: &str) -> String {
        match self {
            Self::Deleting => format!("the volume is marked for deletion {volume_name:?}"),
            Self::Capacity { .. } => "requested PV is too small".into(),
            Self::StorageClass { .. } => "storageClassName does not match".into(),
            Self::VolumeMode { .. } => "incompatible volumeMode".into(),
            Self::AccessModes { .. } => "incompatible accessMode".into(),
            Self::VolumeAttributesClass { .. } => "volumeAttributesClassName does not match".into(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Deleting => write!(f, "deleting: the volume is being deleted"),
            Self::BoundToOther { claim } => write!(f, "claimRef: the volume is bound to {claim}"),
            Self::NotAvailable { phase } => {
                write!(
                    f,
                    "phase: the volume is {phase}, only Available volumes are bound"
                )
            }
            Self::WaitingForFirstConsumer => write!(
                f,
                "volumeBindingMode: WaitForFirstConsumer, waiting for a pod using the claim to be scheduled"
            ),
            Self::StorageClass { volume, claim } => write!(
                f,
                "storageClassName: the volume has {:?}, the claim asks for {:?}",
                volume, claim
            ),
            Self::VolumeAttributesClass { volume, claim } => write!(
                f,
                "volumeAttributesClassName: the volume has {volume:?}, the claim asks for {claim:?}"
            ),
            Self::VolumeMode { volume, claim } => write!(
                f,
                "volumeMode: the volume is {volume}, the claim asks for {claim}"
            ),
            Self::AccessModes { volume, claim } => write!(
                f,
                "accessModes: the volume lacks {} (it has [{}])",
                claim.missing_from(*volume).join(", "),
                volume.names().join(", ")
            ),
            Self::Selector { requirement } => write!(
                f,
                "selector: the volume's labels do not satisfy {requirement}"
            ),
            Self::Capacity { have, want } => write!(
                f,
                "capacity: the volume has {have}, the claim asks for {want}"
            ),
            Self::NodeAffinity { node } => write!(
                f,
                "nodeAffinity: the volume cannot be used on the selected node {node}"
            ),
        }
    }
}

/// The claim's class: the beta annotation if present, else `spec.storageClassName`, else "".
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    if let Some(class) = annotation(&claim.metadata.annotations, ANN_BETA_STORAGE_CLASS) {
        return class;
    }
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The PV's class, read the same way as [`claim_class`].
pub fn volume_class(pv: &PersistentVolume) -> &str {
    if let Some(class) = annotation(&pv.metadata.annotations, ANN_BETA_STORAGE_CLASS) {
        return class;
    }
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

fn annotation<'a>(annotations: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations.as_ref()?.get(key).map(String::as_str)
}

/// The claim's `volumeMode`.
pub fn claim_volume_mode(claim: &PersistentVolumeClaim) -> VolumeMode {
    VolumeMode::parse(claim.spec.as_ref().and_then(|s| s.volume_mode.as_deref()))
}

/// The PV's `volumeMode`.
pub fn volume_volume_mode(pv: &PersistentVolume) -> VolumeMode {
    VolumeMode::parse(pv.spec.as_ref().and_then(|s| s.volume_mode.as_deref()))
}

/// The claim's `accessModes`.
pub fn claim_access_modes(claim: &PersistentVolumeClaim) -> AccessModes {
    let modes = claim.spec.as_ref().and_then(|s| s.access_modes.as_deref());
    AccessModes::from_names(modes.unwrap_or_default())
}

/// The PV's `accessModes`.
pub fn volume_access_modes(pv: &PersistentVolume) -> AccessModes {
    let modes = pv.spec.as_ref().and_then(|s| s.access_modes.as_deref());
    AccessModes::from_names(modes.unwrap_or_default())
}

/// The claim's `volumeAttributesClassName` ("" when unset).
pub fn claim_attributes_class(claim: &PersistentVolumeClaim) -> &str {
    let spec = claim.spec.as_ref();
    spec.and_then(|s| s.volume_attributes_class_name.as_deref())
        .unwrap_or("")
}

/// The PV's `volumeAttributesClassName` ("" when unset).
pub fn volume_attributes_class(pv: &PersistentVolume) -> &str {
    let spec = pv.spec.as_ref();
    spec.and_then(|s| s.volume_attributes_class_name.as_deref())
        .unwrap_or("")
}

/// The claim's storage request as text and parsed (absent or unparsable: 0, as upstream's
/// zero Quantity).
pub fn claim_request(claim: &PersistentVolumeClaim) -> (String, Milli) {
    let text = claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_else(|| "0".into());
    let parsed = quantity::parse(&text).unwrap_or(Milli(0));
    (text, parsed)
}

/// The PV's `capacity.storage` as text and parsed (absent: 0).
pub fn volume_capacity(pv: &PersistentVolume) -> (String, Milli) {
    let text = pv
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_else(|| "0".into());
    let parsed = quantity::parse(&text).unwrap_or(Milli(0));
    (text, parsed)
}

/// The PV's `status.phase` ("" when unset).
pub fn volume_phase(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// `namespace/name` of a claim.
pub fn claim_key(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or(""),
        claim.metadata.name.as_deref().unwrap_or("")
    )
}

/// `namespace/name` of the claim a PV's claimRef names, if it has one.
pub fn claim_ref_key(pv: &PersistentVolume) -> Option<String> {
    let claim_ref = pv.spec.as_ref()?.claim_ref.as_ref()?;
    Some(format!(
        "{}/{}",
        claim_ref.namespace.as_deref().unwrap_or(""),
        claim_ref.name.as_deref().unwrap_or("")
    ))
}

/// Upstream's `IsVolumeBoundToClaim`: the PV's claimRef names the claim (namespace and name,
/// and the uid when the claimRef has one).
pub fn is_volume_bound_to_claim(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    if claim_ref.name != claim.metadata.name || claim_ref.namespace != claim.metadata.namespace {
        return false;
    }
    match claim_ref.uid.as_deref() {
        None | Some("") => true,
        Some(uid) => claim.metadata.uid.as_deref() == Some(uid),
    }
}

/// Whether the claim has a class at all (`storageClassName` set, even to "", or the beta
/// annotation): claims without one get the default class.
pub fn claim_has_class(claim: &PersistentVolumeClaim) -> bool {
    annotation(&claim.metadata.annotations, ANN_BETA_STORAGE_CLASS).is_some()
        || claim
            .spec
            .as_ref()
            .is_some_and(|s| s.storage_class_name.is_some())
}

/// Whether `pv` can be bound to `claim` now, and if not the first criterion it fails.
///
/// Order (upstream's filters, with the cheap identity checks first): deletion, claimRef,
/// phase, WaitForFirstConsumer, class, attributes class, volume mode, access modes, selector,
/// capacity, node affinity. A PV pre-bound to the claim (its claimRef names the claim) skips
/// phase, class and selector, as upstream lets it "win at once".
pub fn check(
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    binding: Binding<'_>,
) -> Result<(), Mismatch> {
    if pv.metadata.deletion_timestamp.is_some() {
        return Err(Mismatch::Deleting);
    }
    let prebound = is_volume_bound_to_claim(pv, claim);
    if !prebound && let Some(other) = claim_ref_key(pv) {
        return Err(Mismatch::BoundToOther { claim: other });
    }
    if !prebound {
        check_unbound_volume(claim, pv, binding)?;
    }
    check_shape(claim, pv)?;
    if !prebound {
        check_selector(claim, pv)?;
    }
    check_capacity(claim, pv)?;
    check_node(pv, binding)
}

/// What only an unclaimed PV must satisfy: Available, a node selected for delayed binding,
/// the same class.
fn check_unbound_volume(
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    binding: Binding<'_>,
) -> Result<(), Mismatch> {
    let phase = volume_phase(pv);
    if phase != "Available" {
        return Err(Mismatch::NotAvailable {
            phase: if phase.is_empty() { "Pending" } else { phase }.to_string(),
        });
    }
    if matches!(
        binding,
        Binding::WaitForFirstConsumer {
            selected_node: None
        }
    ) {
        return Err(Mismatch::WaitingForFirstConsumer);
    }
    check_class(claim, pv)
}

fn check_class(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> Result<(), Mismatch> {
    if volume_class(pv) != claim_class(claim) {
        return Err(Mismatch::StorageClass {
            volume: volume_class(pv).into(),
            claim: claim_class(claim).into(),
        });
    }
    Ok(())
}

/// Attributes class, volume mode and access modes: the bucket an index files the PV under.
fn check_shape(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> Result<(), Mismatch> {
    if volume_attributes_class(pv) != claim_attributes_class(claim) {
        return Err(Mismatch::VolumeAttributesClass {
            volume: volume_attributes_class(pv).into(),
            claim: claim_attributes_class(claim).into(),
        });
    }
    check_volume_mode(claim, pv)?;
    check_access_modes(claim, pv)
}

fn check_volume_mode(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> Result<(), Mismatch> {
    let (volume, wanted) = (volume_volume_mode(pv), claim_volume_mode(claim));
    if volume != wanted {
        return Err(Mismatch::VolumeMode {
            volume,
            claim: wanted,
        });
    }
    Ok(())
}

fn check_access_modes(
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Result<(), Mismatch> {
    let (volume, wanted) = (volume_access_modes(pv), claim_access_modes(claim));
    if !volume.contains_all(wanted) {
        return Err(Mismatch::AccessModes {
            volume,
            claim: wanted,
        });
    }
    Ok(())
}

/// The claim's label selector against the PV's labels.
pub fn check_selector(
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Result<(), Mismatch> {
    let Some(selector) = claim.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Ok(());
    };
    let empty = BTreeMap::new();
    let labels = pv.metadata.labels.as_ref().unwrap_or(&empty);
    selector_matches(selector, labels).map_err(|requirement| Mismatch::Selector { requirement })
}

fn check_capacity(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> Result<(), Mismatch> {
    let (want, wanted) = claim_request(claim);
    let (have, has) = volume_capacity(pv);
    if has < wanted {
        return Err(Mismatch::Capacity { have, want });
    }
    Ok(())
}

/// The PV's node affinity against the selected node of a delayed-binding claim.
pub fn check_node(pv: &PersistentVolume, binding: Binding<'_>) -> Result<(), Mismatch> {
    match binding.node() {
        Some(node) if !node_affinity_matches(pv, node) => Err(Mismatch::NodeAffinity {
            node: node.name.clone(),
        }),
        _ => Ok(()),
    }
}

/// Upstream's `checkVolumeSatisfyClaim`, for a claim naming a PV in `spec.volumeName`:
/// deletion, capacity, class, volume mode, access modes, in that order. (No phase or
/// selector: the user chose this PV.)
pub fn check_requested_volume(
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Result<(), Mismatch> {
    if pv.metadata.deletion_timestamp.is_some() {
        return Err(Mismatch::Deleting);
    }
    check_capacity(claim, pv)?;
    check_class(claim, pv)?;
    check_volume_mode(claim, pv)?;
    check_access_modes(claim, pv)
}

/// Whether `labels` satisfy `selector` (matchLabels and matchExpressions, all ANDed); on
/// failure, the first requirement that fails, written as kubectl writes selectors.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (key, value) in selector.match_labels.iter().flatten() {
        if labels.get(key) != Some(value) {
            return Err(format!("{key}={value}"));
        }
    }
    for expression in selector.match_expressions.iter().flatten() {
        let values = expression.values.as_deref().unwrap_or_default();
        let has = labels.get(&expression.key);
        let ok = match expression.operator.as_str() {
            "In" => has.is_some_and(|v| values.contains(v)),
            "NotIn" => has.is_none_or(|v| !values.contains(v)),
            "Exists" => has.is_some(),
            "DoesNotExist" => has.is_none(),
            _ => false,
        };
        if !ok {
            return Err(describe_requirement(
                &expression.key,
                &expression.operator,
                values,
            ));
        }
    }
    Ok(())
}

fn describe_requirement(key: &str, operator: &str, values: &[String]) -> String {
    match operator {
        "In" => format!("{key} in ({})", values.join(",")),
        "NotIn" => format!("{key} notin ({})", values.join(",")),
        "Exists" => key.to_string(),
        "DoesNotExist" => format!("!{key}"),
        other => format!("{key} {other} ({}) (unknown operator)", values.join(",")),
    }
}

/// Whether the PV's `nodeAffinity.required` admits `node` (no affinity admits every node).
/// Terms are ORed; within a term expressions and fields are ANDed; an empty term matches
/// nothing, as upstream's node selector.
pub fn node_affinity_matches(pv: &PersistentVolume, node: &NodeView) -> bool {
    let Some(required) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    required
        .node_selector_terms
        .iter()
        .any(|term| term_matches(term, node))
}

fn term_matches(term: &NodeSelectorTerm, node: &NodeView) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let name_fields = BTreeMap::from([("metadata.name".to_string(), node.name.clone())]);
    expressions
        .iter()
        .all(|r| node_requirement_matches(r, &node.labels))
        && fields
            .iter()
            .all(|r| node_requirement_matches(r, &name_fields))
}

fn node_requirement_matches(
    requirement: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let has = labels.get(&requirement.key);
    let number = |v: &str| v.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => has.is_some_and(|v| values.contains(v)),
        "NotIn" => has.is_none_or(|v| !values.contains(v)),
        "Exists" => has.is_some(),
        "DoesNotExist" => has.is_none(),
        "Gt" | "Lt" => {
            let (Some(label), Some(bound)) = (
                has.and_then(|v| number(v)),
                values.first().and_then(|v| number(v)),
            ) else {
                return false;
            };
            if requirement.operator == "Gt" {
                label > bound
            } else {
                label < bound
            }
        }
        _ => false,
    }
}

/// Upstream's `FindMatchingVolume` over one list of PVs (the PV controller's path): a PV
/// pre-bound to the claim that fits wins at once; otherwise the smallest Available PV that
/// passes every criterion. `excluded` skips PVs (reserved by other workers).
pub fn find_matching_volume<'a>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a Arc<PersistentVolume>>,
    binding: Binding<'_>,
    excluded: &dyn Fn(&str) -> bool,
) -> Option<&'a Arc<PersistentVolume>> {
    let mut smallest: Option<(&'a Arc<PersistentVolume>, Milli)> = None;
    for volume in volumes {
        if excluded(volume.metadata.name.as_deref().unwrap_or("")) {
            continue;
        }
        if check(claim, volume, binding).is_err() {
            continue;
        }
        if is_volume_bound_to_claim(volume, claim) {
            return Some(volume);
        }
        let capacity = volume_capacity(volume).1;
        if smallest.is_none_or(|(_, best)| capacity < best) {
            smallest = Some((volume, capacity));
        }
    }
    smallest.map(|(volume, _)| volume)
}

/// A PV considered for a claim and why it does not fit (`None`: it fits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The PV's name.
    pub volume: String,
    /// The PV's capacity as written.
    pub capacity: String,
    /// The first criterion it fails.
    pub mismatch: Option<Mismatch>,
}

/// The `limit` PVs nearest to matching `claim`, nearest first: fitting PVs, then those that
/// fail a later criterion (a PV only too small is nearer than one of another class), then
/// by how close the capacity is to the request, then by name.
pub fn nearest_candidates<'a>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    binding: Binding<'_>,
    limit: usize,
) -> Vec<Candidate> {
    let request = claim_request(claim).1;
    let mut ranked: Vec<(u8, i128, Candidate)> = volumes
        .into_iter()
        .map(|pv| {
            let mismatch = check(claim, pv, binding).err();
            let rank = mismatch.as_ref().map_or(u8::MAX, Mismatch::rank);
            let (capacity, parsed) = volume_capacity(pv);
            let distance = (parsed.0 - request.0).abs();
            let candidate = Candidate {
                volume: pv.metadata.name.clone().unwrap_or_default(),
                capacity,
                mismatch,
            };
            (rank, distance, candidate)
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then_with(|| a.2.volume.cmp(&b.2.volume))
    });
    ranked.truncate(limit);
    ranked.into_iter().map(|(_, _, c)| c).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn pv(value: serde_json::Value) -> PersistentVolume {
        let mut base = json!({
            "metadata": {"name": "pv"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "fast", "hostPath": {"path": "/tmp/x"}},
            "status": {"phase": "Available"}
        });
        merge(&mut base, value);
        serde_json::from_value(base).unwrap()
    }

    pub(crate) fn pvc(value: serde_json::Value) -> PersistentVolumeClaim {
        let mut base = json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "uid-1"},
            "spec": {"resources": {"requests": {"storage": "1Gi"}},
                     "accessModes": ["ReadWriteOnce"], "storageClassName": "fast"}
        });
        merge(&mut base, value);
        serde_json::from_value(base).unwrap()
    }

    fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
        match (base, patch) {
            (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        b.remove(&k);
                    } else {
                        merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
            (b, p) => *b = p,
        }
    }

    const NOW: Binding<'static> = Binding::Immediate;

    #[test]
    fn a_fitting_volume_matches() {
        assert_eq!(check(&pvc(json!({})), &pv(json!({})), NOW), Ok(()));
    }

    #[test]
    fn each_criterion_is_named() {
        let claim = pvc(json!({}));
        let cases = [
            (
                json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}),
                0,
            ),
            (
                json!({"spec": {"claimRef": {"name": "other", "namespace": "ns"}}}),
                1,
            ),
            (json!({"status": {"phase": "Released"}}), 2),
            (json!({"spec": {"storageClassName": "slow"}}), 4),
            (json!({"spec": {"volumeMode": "Block"}}), 6),
            (json!({"spec": {"accessModes": ["ReadOnlyMany"]}}), 7),
            (json!({"spec": {"capacity": {"storage": "512Mi"}}}), 9),
        ];
        for (patch, rank) in cases {
            let err = check(&claim, &pv(patch.clone()), NOW).unwrap_err();
            assert_eq!(err.rank(), rank, "{patch}: {err}");
        }
    }

    #[test]
    fn empty_class_matches_only_empty_class() {
        let claim = pvc(json!({"spec": {"storageClassName": ""}}));
        assert!(check(&claim, &pv(json!({"spec": {"storageClassName": ""}})), NOW).is_ok());
        let err = check(&claim, &pv(json!({})), NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "storageClassName: the volume has \"fast\", the claim asks for \"\""
        );
        let unset = pvc(json!({"spec": {"storageClassName": null}}));
        assert!(
            check(
                &unset,
                &pv(json!({"spec": {"storageClassName": null}})),
                NOW
            )
            .is_ok()
        );
    }

    #[test]
    fn access_modes_must_be_a_superset() {
        let claim = pvc(json!({"spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}}));
        let both = pv(
            json!({"spec": {"accessModes": ["ReadOnlyMany", "ReadWriteOnce", "ReadWriteMany"]}}),
        );
        assert!(check(&claim, &both, NOW).is_ok());
        let err = check(&claim, &pv(json!({})), NOW).unwrap_err();
        assert!(err.to_string().contains("lacks ReadOnlyMany"), "{err}");
    }

    #[test]
    fn selectors_use_labels_and_expressions() {
        let claim = pvc(json!({"spec": {"selector": {
            "matchLabels": {"tier": "fast"},
            "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                                 {"key": "retired", "operator": "DoesNotExist"}]}}}));
        let good = pv(json!({"metadata": {"labels": {"tier": "fast", "zone": "b"}}}));
        assert!(check(&claim, &good, NOW).is_ok());
        let wrong_zone = pv(json!({"metadata": {"labels": {"tier": "fast", "zone": "c"}}}));
        assert_eq!(
            check(&claim, &wrong_zone, NOW).unwrap_err().to_string(),
            "selector: the volume's labels do not satisfy zone in (a,b)"
        );
        let retired =
            pv(json!({"metadata": {"labels": {"tier": "fast", "zone": "a", "retired": "y"}}}));
        assert!(check(&claim, &retired, NOW).is_err());
    }

    #[test]
    fn a_prebound_volume_skips_class_phase_and_selector() {
        let claim = pvc(json!({"spec": {"selector": {"matchLabels": {"x": "y"}}}}));
        let prebound = pv(json!({
            "spec": {"storageClassName": "other", "claimRef": {"name": "data", "namespace": "ns"}},
            "status": {"phase": "Bound"}}));
        assert!(check(&claim, &prebound, NOW).is_ok());
        let other_uid = pv(json!({"spec": {"claimRef":
            {"name": "data", "namespace": "ns", "uid": "uid-2"}}}));
        assert!(matches!(
            check(&claim, &other_uid, NOW),
            Err(Mismatch::BoundToOther { .. })
        ));
        let too_small = pv(json!({"spec": {"capacity": {"storage": "1Mi"},
            "claimRef": {"name": "data", "namespace": "ns"}}}));
        assert!(matches!(
            check(&claim, &too_small, NOW),
            Err(Mismatch::Capacity { .. })
        ));
    }

    #[test]
    fn delayed_binding_waits_for_a_node_then_checks_affinity() {
        let claim = pvc(json!({}));
        let local = pv(
            json!({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                   "values": ["node-a"]}]}]}}}}),
        );
        let waiting = Binding::WaitForFirstConsumer {
            selected_node: None,
        };
        assert_eq!(
            check(&claim, &local, waiting),
            Err(Mismatch::WaitingForFirstConsumer)
        );
        let a = NodeView::hostname_only("node-a");
        let b = NodeView::hostname_only("node-b");
        let on = |node| Binding::WaitForFirstConsumer {
            selected_node: Some(node),
        };
        assert!(check(&claim, &local, on(&a)).is_ok());
        assert_eq!(
            check(&claim, &local, on(&b)),
            Err(Mismatch::NodeAffinity {
                node: "node-b".into()
            })
        );
    }

    #[test]
    fn requested_volume_reasons_are_upstreams() {
        let claim = pvc(json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}));
        let err = check_requested_volume(&claim, &pv(json!({}))).unwrap_err();
        assert_eq!(err.upstream_reason("pv"), "requested PV is too small");
        let err = check_requested_volume(
            &pvc(json!({})),
            &pv(json!({"spec": {"volumeMode": "Block"}})),
        )
        .unwrap_err();
        assert_eq!(err.upstream_reason("pv"), "incompatible volumeMode");
    }

    #[test]
    fn the_linear_scan_takes_the_smallest_fit_or_the_prebound_one() {
        let claim = pvc(json!({}));
        let big = Arc::new(pv(
            json!({"metadata": {"name": "big"}, "spec": {"capacity": {"storage": "10Gi"}}}),
        ));
        let small = Arc::new(pv(
            json!({"metadata": {"name": "small"}, "spec": {"capacity": {"storage": "2Gi"}}}),
        ));
        let tiny = Arc::new(pv(
            json!({"metadata": {"name": "tiny"}, "spec": {"capacity": {"storage": "1Mi"}}}),
        ));
        let all = [big.clone(), small.clone(), tiny.clone()];
        let found = find_matching_volume(&claim, &all, NOW, &|_| false).unwrap();
        assert_eq!(found.metadata.name.as_deref(), Some("small"));
        let found = find_matching_volume(&claim, &all, NOW, &|n| n == "small").unwrap();
        assert_eq!(found.metadata.name.as_deref(), Some("big"));
        let prebound = Arc::new(pv(json!({"metadata": {"name": "mine"},
            "spec": {"capacity": {"storage": "50Gi"}, "claimRef": {"name": "data", "namespace": "ns"}}})));
        let all = [big, small, prebound];
        let found = find_matching_volume(&claim, &all, NOW, &|_| false).unwrap();
        assert_eq!(found.metadata.name.as_deref(), Some("mine"));
    }

    #[test]
    fn nearest_candidates_rank_later_failures_first() {
        let claim = pvc(json!({"spec": {"resources": {"requests": {"storage": "5Gi"}}}}));
        let volumes = [
            pv(
                json!({"metadata": {"name": "other-class"}, "spec": {"storageClassName": "slow", "capacity": {"storage": "5Gi"}}}),
            ),
            pv(json!({"metadata": {"name": "small"}, "spec": {"capacity": {"storage": "4Gi"}}})),
            pv(json!({"metadata": {"name": "tiny"}, "spec": {"capacity": {"storage": "1Gi"}}})),
        ];
        let nearest = nearest_candidates(&claim, &volumes, NOW, 2);
        let names: Vec<&str> = nearest.iter().map(|c| c.volume.as_str()).collect();
        assert_eq!(names, ["small", "tiny"]);
        assert_eq!(
            nearest[0].mismatch.as_ref().unwrap().to_string(),
            "capacity: the volume has 4Gi, the claim asks for 5Gi"
        );
    }
}
