//! The `csi.storage.k8s.io/*` StorageClass parameters: which secret each CSI call gets
//! (templated names, as external-provisioner resolves them) and which parameters reach the
//! driver.
//!
//! Name templates may use `${pv.name}`, `${pvc.namespace}`, `${pvc.name}` and
//! `${pvc.annotations['KEY']}`; namespace templates only `${pv.name}` and `${pvc.namespace}`
//! (neither is under the claim owner's control). A kind without its own keys falls back to
//! `csi.storage.k8s.io/secret-name` / `secret-namespace`.

use std::collections::{BTreeMap, HashMap};

use crate::secret_template;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, SecretReference};

/// The prefix of parameters meant for the provisioner, not the driver.
pub const PARAMETER_PREFIX: &str = "csi.storage.k8s.io/";
/// The filesystem parameter.
pub const FSTYPE: &str = "csi.storage.k8s.io/fstype";

/// The CSI calls a secret can be configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// CreateVolume / DeleteVolume.
    Provisioner,
    /// ControllerPublishVolume.
    ControllerPublish,
    /// NodeStageVolume.
    NodeStage,
    /// NodePublishVolume.
    NodePublish,
    /// ControllerExpandVolume.
    ControllerExpand,
    /// NodeExpandVolume.
    NodeExpand,
}

impl SecretKind {
    /// Upstream's name of the kind, used in error messages.
    fn label(self) -> &'static str {
        match self {
            Self::Provisioner => "Provisioner",
            Self::ControllerPublish => "ControllerPublish",
            Self::NodeStage => "NodeStage",
            Self::NodePublish => "NodePublish",
            Self::ControllerExpand => "ControllerExpand",
            Self::NodeExpand => "NodeExpand",
        }
    }

    /// The parameter keys `(name, namespace)` of this kind.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Self::Provisioner => (
                "csi.storage.k8s.io/provisioner-secret-name",
                "csi.storage.k8s.io/provisioner-secret-namespace",
            ),
            Self::ControllerPublish => (
                "csi.storage.k8s.io/controller-publish-secret-name",
                "csi.storage.k8s.io/controller-publish-secret-namespace",
            ),
            Self::NodeStage => (
                "csi.storage.k8s.io/node-stage-secret-name",
                "csi.storage.k8s.io/node-stage-secret-namespace",
            ),
            Self::NodePublish => (
                "csi.storage.k8s.io/node-publish-secret-name",
                "csi.storage.k8s.io/node-publish-secret-namespace",
            ),
            Self::ControllerExpand => (
                "csi.storage.k8s.io/controller-expand-secret-name",
                "csi.storage.k8s.io/controller-expand-secret-namespace",
            ),
            Self::NodeExpand => (
                "csi.storage.k8s.io/node-expand-secret-name",
                "csi.storage.k8s.io/node-expand-secret-namespace",
            ),
        }
    }

    /// The deprecated un-prefixed keys (kept in the parameters the driver sees, as upstream).
    fn deprecated_keys(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Provisioner => {
                Some(("csiProvisionerSecretName", "csiProvisionerSecretNamespace"))
            }
            Self::ControllerPublish => Some((
                "csiControllerPublishSecretName",
                "csiControllerPublishSecretNamespace",
            )),
            Self::NodeStage => Some(("csiNodeStageSecretName", "csiNodeStageSecretNamespace")),
            Self::NodePublish => {
                Some(("csiNodePublishSecretName", "csiNodePublishSecretNamespace"))
            }
            Self::ControllerExpand | Self::NodeExpand => None,
        }
    }
}

const DEFAULT_KEYS: (&str, &str) = (
    "csi.storage.k8s.io/secret-name",
    "csi.storage.k8s.io/secret-namespace",
);

/// The secret configured for `kind` with its templates resolved, or None when the class
/// configures none. `claim` is None when only the PV is known (deletion of an old PV).
pub fn secret_reference(
    kind: SecretKind,
    parameters: &BTreeMap<String, String>,
    pv_name: &str,
    claim: Option<&PersistentVolumeClaim>,
) -> Result<Option<SecretReference>, String> {
    let templates = match templates(
        kind.label(),
        Some(kind.keys()),
        kind.deprecated_keys(),
        parameters,
    )? {
        Some(t) => Some(t),
        None => templates("Default", Some(DEFAULT_KEYS), None, parameters)?,
    };
    let Some((name_template, namespace_template)) = templates else {
        return Ok(None);
    };
    let mut namespace_tokens = HashMap::from([("pv.name".to_string(), pv_name.to_string())]);
    let mut name_tokens = namespace_tokens.clone();
    if let Some(claim) = claim {
        let namespace = claim.metadata.namespace.clone().unwrap_or_default();
        namespace_tokens.insert("pvc.namespace".into(), namespace.clone());
        name_tokens.insert("pvc.namespace".into(), namespace);
        name_tokens.insert(
            "pvc.name".into(),
            claim.metadata.name.clone().unwrap_or_default(),
        );
        for (k, v) in claim.metadata.annotations.iter().flatten() {
            name_tokens.insert(format!("pvc.annotations['{k}']"), v.clone());
        }
    }
    let namespace = resolve_template(&namespace_template, &namespace_tokens)?;
    if !secret_template::is_valid_namespace(&namespace) {
        return Err(invalid_name(&namespace_template, &namespace, "namespace"));
    }
    let name = resolve_template(&name_template, &name_tokens)?;
    if !secret_template::is_valid_name(&name) {
        return Err(invalid_name(&name_template, &name, "secret"));
    }
    Ok(Some(SecretReference {
        name: Some(name),
        namespace: Some(namespace),
    }))
}

fn invalid_name(template: &str, resolved: &str, what: &str) -> String {
    if template != resolved {
        format!("{template:?} resolved to {resolved:?} which is not a valid {what} name")
    } else {
        format!("{template:?} is not a valid {what} name")
    }
}

/// The `(name, namespace)` templates of one kind; errors when only one is given, when one is
/// empty, or when both the deprecated and the prefixed keys are given.
fn templates(
    label: &str,
    keys: Option<(&str, &str)>,
    deprecated: Option<(&str, &str)>,
    parameters: &BTreeMap<String, String>,
) -> Result<Option<(String, String)>, String> {
    let mut names = Vec::new();
    let mut namespaces = Vec::new();
    for (name_key, namespace_key) in deprecated.into_iter().chain(keys) {
        names.extend(parameters.get(name_key));
        namespaces.extend(parameters.get(namespace_key));
    }
    if names.len() > 1 || namespaces.len() > 1 {
        return Err(format!(
            "{label} secrets specified in parameters with both \"csi\" and \"{PARAMETER_PREFIX}\" keys"
        ));
    }
    match (names.first(), namespaces.first()) {
        (None, None) => Ok(None),
        (Some(name), Some(namespace)) if !name.is_empty() && !namespace.is_empty() => {
            Ok(Some((name.to_string(), namespace.to_string())))
        }
        (Some(_), Some(_)) => Err(format!(
            "{label} secrets specified in parameters but value of either namespace or name is empty"
        )),
        _ => Err(format!(
            "either name and namespace for {label} secrets specified, Both must be specified"
        )),
    }
}

/// The class parameters the driver gets: all but the known `csi.storage.k8s.io/` ones (an
/// unknown key under that prefix is an error, as upstream).
pub fn driver_parameters(
    parameters: &BTreeMap<String, String>,
) -> Result<HashMap<String, String>, String> {
    let mut known = vec![FSTYPE, DEFAULT_KEYS.0, DEFAULT_KEYS.1];
    for kind in [
        SecretKind::Provisioner,
        SecretKind::ControllerPublish,
        SecretKind::NodeStage,
        SecretKind::NodePublish,
        SecretKind::ControllerExpand,
        SecretKind::NodeExpand,
    ] {
        let (name, namespace) = kind.keys();
        known.extend([name, namespace]);
    }
    let mut out = HashMap::new();
    for (key, value) in parameters {
        if !key.starts_with(PARAMETER_PREFIX) {
            out.insert(key.clone(), value.clone());
        } else if !known.contains(&key.as_str()) {
            return Err(format!(
                "failed to strip CSI Parameters of prefixed keys: found unknown parameter key \"{key}\" with reserved namespace {PARAMETER_PREFIX}"
            ));
        }
    }
    Ok(out)
}

/// The data of the referenced secret, as strings (what CSI calls carry).
pub async fn credentials(
    client: &kube::Client,
    reference: Option<&SecretReference>,
) -> Result<HashMap<String, String>, String> {
    let Some(reference) = reference else {
        return Ok(HashMap::new());
    };
    let name = reference.name.as_deref().unwrap_or_default();
    let namespace = reference.namespace.as_deref().unwrap_or_default();
    let secret = kube::Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| format!("error getting secret {name} in namespace {namespace}: {e}"))?;
    Ok(as_csi_secrets(secret))
}

/// A secret's data as CSI calls carry secrets: values as UTF-8 text.
pub(crate) fn as_csi_secrets(secret: Secret) -> HashMap<String, String> {
    secret
        .data
        .into_iter()
        .flatten()
        .map(|(key, value)| (key, String::from_utf8_lossy(&value.0).into_owned()))
        .collect()
}

/// Expands a secret parameter's template; unknown tokens are named in the error.
fn resolve_template(template: &str, tokens: &HashMap<String, String>) -> Result<String, String> {
    secret_template::expand(template, |t| tokens.get(t).map(String::as_str))
        .map_err(|missing| format!("invalid tokens: {missing:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn claim() -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                namespace: Some("team".into()),
                annotations: Some([("example.com/key".to_string(), "special".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn resolve(kind: SecretKind, p: &[(&str, &str)]) -> Result<Option<(String, String)>, String> {
        secret_reference(kind, &params(p), "pvc-1", Some(&claim()))
            .map(|r| r.map(|r| (r.name.unwrap(), r.namespace.unwrap())))
    }

    #[test]
    fn templates_resolve_claim_and_volume_names() {
        let p = [
            (
                "csi.storage.k8s.io/provisioner-secret-name",
                "${pvc.name}-${pv.name}",
            ),
            (
                "csi.storage.k8s.io/provisioner-secret-namespace",
                "${pvc.namespace}",
            ),
            (
                "csi.storage.k8s.io/node-stage-secret-name",
                "${pvc.annotations['example.com/key']}",
            ),
            ("csi.storage.k8s.io/node-stage-secret-namespace", "fixed"),
        ];
        assert_eq!(
            resolve(SecretKind::Provisioner, &p),
            Ok(Some(("data-pvc-1".into(), "team".into())))
        );
        assert_eq!(
            resolve(SecretKind::NodeStage, &p),
            Ok(Some(("special".into(), "fixed".into())))
        );
        assert_eq!(resolve(SecretKind::NodePublish, &p), Ok(None));
    }

    #[test]
    fn the_default_secret_applies_to_every_kind() {
        let p = [
            ("csi.storage.k8s.io/secret-name", "s"),
            ("csi.storage.k8s.io/secret-namespace", "ns"),
        ];
        assert_eq!(
            resolve(SecretKind::ControllerExpand, &p),
            Ok(Some(("s".into(), "ns".into())))
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        // The claim name is not allowed in the namespace (its owner could pick any namespace).
        let p = [
            ("csi.storage.k8s.io/provisioner-secret-name", "s"),
            (
                "csi.storage.k8s.io/provisioner-secret-namespace",
                "${pvc.name}",
            ),
        ];
        assert!(
            resolve(SecretKind::Provisioner, &p)
                .unwrap_err()
                .contains("invalid tokens")
        );
        let half = [("csi.storage.k8s.io/provisioner-secret-name", "s")];
        assert!(
            resolve(SecretKind::Provisioner, &half)
                .unwrap_err()
                .contains("Both must be specified")
        );
        let bad = [
            ("csi.storage.k8s.io/provisioner-secret-name", "Not_Valid"),
            ("csi.storage.k8s.io/provisioner-secret-namespace", "ns"),
        ];
        assert!(
            resolve(SecretKind::Provisioner, &bad)
                .unwrap_err()
                .contains("not a valid secret name")
        );
        let twice = [
            ("csiProvisionerSecretName", "a"),
            ("csiProvisionerSecretNamespace", "b"),
            ("csi.storage.k8s.io/provisioner-secret-name", "c"),
            ("csi.storage.k8s.io/provisioner-secret-namespace", "d"),
        ];
        assert!(resolve(SecretKind::Provisioner, &twice).is_err());
    }

    #[test]
    fn only_plain_parameters_reach_the_driver() {
        let p = params(&[
            (FSTYPE, "xfs"),
            ("csi.storage.k8s.io/provisioner-secret-name", "s"),
            ("csiProvisionerSecretName", "kept"),
            ("color", "blue"),
        ]);
        let out = driver_parameters(&p).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out["color"], "blue");
        assert!(driver_parameters(&params(&[("csi.storage.k8s.io/unknown", "x")])).is_err());
    }
}
