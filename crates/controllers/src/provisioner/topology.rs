//! Where a new volume may live: the accessibility requirements of CreateVolume and the node
//! affinity of the PV, computed as external-provisioner computes them (non-strict topology,
//! immediate topology on).
//!
//! - With a selected node (WaitForFirstConsumer): the topology keys come from the node's
//!   CSINode entry for the driver and its values from the Node's labels. The requisite terms
//!   are the class's `allowedTopologies` (flattened), or else every node's values for those
//!   keys; the preferred terms are the requisite ones rotated so the selected node's comes
//!   first. A missing Node or CSINode asks the scheduler to choose again.
//! - Without one (Immediate): `allowedTopologies`, or else every node's values for the keys
//!   the first CSINode with this driver reports; no CSINode with keys → no requirements. The
//!   preferred terms are rotated by a hash of the claim name, so StatefulSet claims spread.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, TopologySelectorTerm,
    VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::CSINode;
use volplane_csi::proto::{Topology, TopologyRequirement};

/// One topology segment set (`key=value` pairs AND-ed), sorted by key.
pub type Term = Vec<(String, String)>;

/// Why no requirements could be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// The selected node (or its CSINode) does not exist: another node must be chosen.
    #[error("{0}")]
    NodeNotFound(String),
    /// Anything else; provisioning is retried as it is.
    #[error("error generating accessibility requirements: {0}")]
    Invalid(String),
}

/// The scheduler's choice, as the caches know it.
pub struct SelectedNode<'a> {
    /// `volume.kubernetes.io/selected-node`.
    pub name: &'a str,
    /// The Node object, if it exists.
    pub node: Option<&'a Node>,
    /// Its CSINode object, if it exists.
    pub csi_node: Option<&'a CSINode>,
}

/// The CreateVolume accessibility requirements for a claim.
pub fn accessibility_requirements<'a>(
    driver: &str,
    claim_name: &str,
    allowed_topologies: &[TopologySelectorTerm],
    selected: Option<SelectedNode<'_>>,
    mut csi_nodes: impl Iterator<Item = &'a CSINode>,
    nodes: &[&Node],
) -> Result<Option<TopologyRequirement>, TopologyError> {
    let selected_term = match &selected {
        Some(s) => Some(selected_topology(driver, s)?),
        None => None,
    };
    let mut requisite = if !allowed_topologies.is_empty() {
        flatten(allowed_topologies)
    } else {
        let keys = match &selected_term {
            Some((keys, _)) => keys.clone(),
            None => match csi_nodes.find_map(|n| topology_keys(n, driver)) {
                Some(keys) => keys,
                None => return Ok(None),
            },
        };
        let terms: Vec<Term> = nodes.iter().filter_map(|n| node_term(n, &keys)).collect();
        if terms.is_empty() {
            return Err(TopologyError::Invalid(format!(
                "topologyKeys {keys:?} were not found on any nodes"
            )));
        }
        terms
    };
    if requisite.is_empty() {
        return Ok(None);
    }
    requisite.sort();
    requisite.dedup();
    let start = match (&selected, &selected_term) {
        (Some(s), Some((_, term))) => requisite
            .iter()
            .position(|t| is_subset(t, term))
            .ok_or_else(|| {
                TopologyError::Invalid(format!(
                    "topology {term:?} from selected node {:?} is not in requisite: {requisite:?}",
                    s.name
                ))
            })?,
        _ => {
            let (hash, index) = claim_name_hash_and_index(claim_name);
            (hash.wrapping_add(index) as usize) % requisite.len()
        }
    };
    let mut preferred = requisite.clone();
    preferred.rotate_left(start);
    Ok(Some(TopologyRequirement {
        requisite: requisite.iter().map(to_topology).collect(),
        preferred: preferred.iter().map(to_topology).collect(),
    }))
}

/// The selected node's topology keys and term.
fn selected_topology(
    driver: &str,
    selected: &SelectedNode<'_>,
) -> Result<(Vec<String>, Term), TopologyError> {
    let Some(node) = selected.node else {
        return Err(TopologyError::NodeNotFound(format!(
            "nodes {:?} not found",
            selected.name
        )));
    };
    let Some(csi_node) = selected.csi_node else {
        return Err(TopologyError::NodeNotFound(format!(
            "failed to get selected CSINode {}: csinodes.storage.k8s.io {:?} not found",
            selected.name, selected.name
        )));
    };
    let keys = topology_keys(csi_node, driver).ok_or_else(|| {
        TopologyError::Invalid(format!("no topology key found for node {}", selected.name))
    })?;
    let term = node_term(node, &keys).ok_or_else(|| {
        TopologyError::Invalid(format!(
            "topology labels from selected node {:?} does not match topology keys from CSINode {keys:?}",
            node.metadata.labels.clone().unwrap_or_default()
        ))
    })?;
    Ok((keys, term))
}

/// The topology keys a CSINode reports for `driver` (None when it reports none).
pub fn topology_keys(csi_node: &CSINode, driver: &str) -> Option<Vec<String>> {
    csi_node
        .spec
        .drivers
        .iter()
        .find(|d| d.name == driver)
        .and_then(|d| d.topology_keys.clone())
        .filter(|keys| !keys.is_empty())
}

/// The node's values for `keys`, or None when it lacks one of them.
fn node_term(node: &Node, keys: &[String]) -> Option<Term> {
    let labels = node.metadata.labels.as_ref()?;
    let mut term: Term = keys
        .iter()
        .map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
        .collect::<Option<_>>()?;
    term.sort();
    Some(term)
}

/// `allowedTopologies` (an OR of ANDs of ORs) as an OR of terms: each term's value lists are
/// distributed over its keys.
fn flatten(allowed: &[TopologySelectorTerm]) -> Vec<Term> {
    let mut result = Vec::new();
    for selector in allowed {
        let mut terms: Vec<Term> = Vec::new();
        for expression in selector.match_label_expressions.iter().flatten() {
            let mut next = Vec::new();
            for value in &expression.values {
                let pair = (expression.key.clone(), value.clone());
                if terms.is_empty() {
                    next.push(vec![pair]);
                } else {
                    for term in &terms {
                        let mut t = term.clone();
                        t.push(pair.clone());
                        next.push(t);
                    }
                }
            }
            terms = next;
        }
        result.extend(terms.into_iter().map(|mut t| {
            t.sort();
            t
        }));
    }
    result
}

fn is_subset(small: &Term, big: &Term) -> bool {
    small.iter().all(|pair| big.contains(pair))
}

fn to_topology(term: &Term) -> Topology {
    Topology {
        segments: term.iter().cloned().collect(),
    }
}

/// The spreading offset upstream derives from a claim name: FNV-1 32 of the name, or — for
/// names ending in `-<n>` (StatefulSet members) — of the part between the last two dashes, plus
/// `n`.
fn claim_name_hash_and_index(name: &str) -> (u32, u32) {
    let mut hashed = name;
    let mut index = 0;
    if let Some(dash) = name.rfind('-')
        && let Ok(id) = name[dash + 1..].parse::<u32>()
    {
        index = id;
        hashed = &name[..dash];
        if let Some(dash) = hashed.rfind('-') {
            hashed = &hashed[dash + 1..];
        }
    }
    (fnv1_32(hashed.as_bytes()), index)
}

fn fnv1_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |hash, b| {
        hash.wrapping_mul(16_777_619) ^ u32::from(*b)
    })
}

/// The PV node affinity for the topology the driver reported: one term per topology, one `In`
/// expression per segment.
pub fn volume_node_affinity(accessible: &[Topology]) -> Option<VolumeNodeAffinity> {
    let terms: Vec<NodeSelectorTerm> = accessible
        .iter()
        .filter(|t| !t.segments.is_empty())
        .map(|t| {
            let sorted: BTreeMap<_, _> = t.segments.iter().collect();
            NodeSelectorTerm {
                match_expressions: Some(
                    sorted
                        .into_iter()
                        .map(|(k, v)| NodeSelectorRequirement {
                            key: k.clone(),
                            operator: "In".into(),
                            values: Some(vec![v.clone()]),
                        })
                        .collect(),
                ),
                match_fields: None,
            }
        })
        .collect();
    if terms.is_empty() {
        return None;
    }
    Some(VolumeNodeAffinity {
        required: Some(NodeSelector {
            node_selector_terms: terms,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::TopologySelectorLabelRequirement;
    use k8s_openapi::api::storage::v1::{CSINodeDriver, CSINodeSpec};
    use kube::api::ObjectMeta;

    const DRIVER: &str = "d.csi";
    const ZONE: &str = "zone";

    fn node(name: &str, zone: Option<&str>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: zone.map(|z| [(ZONE.to_string(), z.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn csi_node(name: &str, keys: &[&str]) -> CSINode {
        CSINode {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: CSINodeSpec {
                drivers: vec![CSINodeDriver {
                    name: DRIVER.into(),
                    node_id: name.into(),
                    topology_keys: Some(keys.iter().map(|k| k.to_string()).collect()),
                    allocatable: None,
                }],
            },
        }
    }

    fn zones(topologies: &[Topology]) -> Vec<String> {
        topologies
            .iter()
            .map(|t| t.segments[ZONE].clone())
            .collect()
    }

    #[test]
    fn selected_node_comes_first_among_all_nodes() {
        let (a, b, c) = (
            node("a", Some("z1")),
            node("b", Some("z2")),
            node("c", None),
        );
        let cn = csi_node("b", &[ZONE]);
        let selected = SelectedNode {
            name: "b",
            node: Some(&b),
            csi_node: Some(&cn),
        };
        let req = accessibility_requirements(
            DRIVER,
            "data",
            &[],
            Some(selected),
            std::iter::empty(),
            &[&a, &b, &c],
        )
        .unwrap()
        .unwrap();
        assert_eq!(zones(&req.requisite), ["z1", "z2"]);
        assert_eq!(zones(&req.preferred), ["z2", "z1"]);
    }

    #[test]
    fn missing_selected_node_or_csinode_asks_for_another_node() {
        let b = node("b", Some("z2"));
        let missing_node = SelectedNode {
            name: "b",
            node: None,
            csi_node: None,
        };
        let missing_csinode = SelectedNode {
            name: "b",
            node: Some(&b),
            csi_node: None,
        };
        for selected in [missing_node, missing_csinode] {
            let err = accessibility_requirements(
                DRIVER,
                "x",
                &[],
                Some(selected),
                std::iter::empty(),
                &[&b],
            );
            assert!(
                matches!(err, Err(TopologyError::NodeNotFound(_))),
                "{err:?}"
            );
        }
        let cn = csi_node("b", &[]);
        let no_keys = SelectedNode {
            name: "b",
            node: Some(&b),
            csi_node: Some(&cn),
        };
        let err =
            accessibility_requirements(DRIVER, "x", &[], Some(no_keys), std::iter::empty(), &[&b]);
        assert!(
            matches!(err, Err(TopologyError::Invalid(m)) if m.contains("no topology key found for node b"))
        );
    }

    #[test]
    fn allowed_topologies_are_flattened() {
        let allowed = vec![TopologySelectorTerm {
            match_label_expressions: Some(vec![
                TopologySelectorLabelRequirement {
                    key: "rack".into(),
                    values: vec!["r1".into(), "r2".into()],
                },
                TopologySelectorLabelRequirement {
                    key: ZONE.into(),
                    values: vec!["z1".into()],
                },
            ]),
        }];
        let req =
            accessibility_requirements(DRIVER, "data", &allowed, None, std::iter::empty(), &[])
                .unwrap()
                .unwrap();
        assert_eq!(req.requisite.len(), 2);
        assert!(req.requisite.iter().all(|t| t.segments[ZONE] == "z1"));
    }

    #[test]
    fn immediate_binding_without_csinodes_has_no_requirements() {
        let a = node("a", Some("z1"));
        assert_eq!(
            accessibility_requirements(DRIVER, "d", &[], None, std::iter::empty(), &[&a]),
            Ok(None)
        );
        let cn = csi_node("a", &[ZONE]);
        let req = accessibility_requirements(DRIVER, "d", &[], None, [&cn].into_iter(), &[&a])
            .unwrap()
            .unwrap();
        assert_eq!(zones(&req.requisite), ["z1"]);
    }

    #[test]
    fn statefulset_claims_hash_their_set_name() {
        assert_eq!(
            claim_name_hash_and_index("data-web-2"),
            (fnv1_32(b"web"), 2)
        );
        assert_eq!(claim_name_hash_and_index("data"), (fnv1_32(b"data"), 0));
        // FNV-1 (not 1a) of "a", as Go's hash/fnv New32 computes it.
        assert_eq!(fnv1_32(b"a"), 0x050c5d7e);
    }

    #[test]
    fn node_affinity_has_one_term_per_topology() {
        let topo = Topology {
            segments: [(ZONE.to_string(), "z1".to_string())].into(),
        };
        let affinity = volume_node_affinity(&[topo]).unwrap();
        let terms = affinity.required.unwrap().node_selector_terms;
        let expr = &terms[0].match_expressions.as_ref().unwrap()[0];
        assert_eq!((expr.key.as_str(), expr.operator.as_str()), (ZONE, "In"));
        assert_eq!(expr.values.as_deref(), Some(&["z1".to_string()][..]));
        assert!(volume_node_affinity(&[]).is_none());
    }
}
