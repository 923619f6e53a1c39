//! The secrets a VolumeSnapshotClass names for CSI calls (`csi.storage.k8s.io/snapshotter-secret-*`
//! and `…/snapshotter-list-secret-*`): templates resolved as external-snapshotter resolves them,
//! and the secret's data fetched for the call. Secret values are never logged.

use std::collections::{BTreeMap, HashMap};

use crate::secret_template;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use volplane_api::wellknown::{
    PARAM_SNAPSHOTTER_LIST_SECRET_NAME, PARAM_SNAPSHOTTER_LIST_SECRET_NAMESPACE,
    PARAM_SNAPSHOTTER_SECRET_NAME, PARAM_SNAPSHOTTER_SECRET_NAMESPACE,
};

/// Which pair of class parameters names the secret.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SecretParams {
    /// CreateSnapshot / DeleteSnapshot.
    Snapshotter,
    /// ListSnapshots.
    SnapshotterList,
}

impl SecretParams {
    fn keys(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Snapshotter => (
                "Snapshotter",
                PARAM_SNAPSHOTTER_SECRET_NAME,
                PARAM_SNAPSHOTTER_SECRET_NAMESPACE,
            ),
            Self::SnapshotterList => (
                "SnapshotterList",
                PARAM_SNAPSHOTTER_LIST_SECRET_NAME,
                PARAM_SNAPSHOTTER_LIST_SECRET_NAMESPACE,
            ),
        }
    }
}

/// A resolved secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretRef {
    pub name: String,
    pub namespace: String,
}

/// Resolves the secret `which` names in `parameters`, for the content `content_name` of the
/// snapshot `snapshot` (`(namespace, name)`, when known). `Ok(None)` when the class names none.
///
/// Tokens: `${volumesnapshotcontent.name}` in both; `${volumesnapshot.namespace}` in both and
/// `${volumesnapshot.name}` in the name, only when the snapshot is known.
pub(crate) fn secret_reference(
    which: SecretParams,
    parameters: Option<&BTreeMap<String, String>>,
    content_name: &str,
    snapshot: Option<(&str, &str)>,
) -> Result<Option<SecretRef>, String> {
    let (label, name_key, namespace_key) = which.keys();
    let empty = BTreeMap::new();
    let parameters = parameters.unwrap_or(&empty);
    let (name_template, namespace_template) = match (
        parameters.get(name_key),
        parameters.get(namespace_key),
    ) {
        (None, None) => return Ok(None),
        (Some(name), Some(namespace)) if !name.is_empty() && !namespace.is_empty() => {
            (name, namespace)
        }
        (Some(_), Some(_)) => {
            return Err(format!(
                "failed to get name and namespace template from params: {label} secrets specified in parameters but value of either namespace or name is empty"
            ));
        }
        _ => {
            return Err(format!(
                "failed to get name and namespace template from params: either name and namespace for {label} secrets specified, Both must be specified"
            ));
        }
    };

    let mut namespace_params = HashMap::from([("volumesnapshotcontent.name", content_name)]);
    if let Some((namespace, _)) = snapshot {
        namespace_params.insert("volumesnapshot.namespace", namespace);
    }
    let namespace = resolve_template(namespace_template, &namespace_params)?;
    if !secret_template::is_valid_namespace(&namespace) {
        return Err(if &namespace != namespace_template {
            format!(
                "{namespace_template:?} resolved to {namespace:?} which is not a valid namespace name"
            )
        } else {
            format!("{namespace_template:?} is not a valid namespace name")
        });
    }

    let mut name_params = HashMap::from([("volumesnapshotcontent.name", content_name)]);
    if let Some((namespace, name)) = snapshot {
        name_params.insert("volumesnapshot.namespace", namespace);
        name_params.insert("volumesnapshot.name", name);
    }
    let name = resolve_template(name_template, &name_params)?;
    if !secret_template::is_valid_name(&name) {
        return Err(if &name != name_template {
            format!("{name_template:?} resolved to {name:?} which is not a valid secret name")
        } else {
            format!("{name_template:?} is not a valid secret name")
        });
    }
    Ok(Some(SecretRef { name, namespace }))
}

/// The data of the secret `reference` names, as CSI secrets (values as UTF-8 text).
pub(crate) async fn credentials(
    client: &kube::Client,
    reference: &SecretRef,
) -> Result<HashMap<String, String>, kube::Error> {
    let secret = Api::<Secret>::namespaced(client.clone(), &reference.namespace)
        .get(&reference.name)
        .await?;
    Ok(crate::provisioner::secrets::as_csi_secrets(secret))
}

/// Expands a secret parameter's template; unknown tokens are named in the error (sorted), as
/// upstream.
fn resolve_template(template: &str, params: &HashMap<&str, &str>) -> Result<String, String> {
    secret_template::expand(template, |t| params.get(t).copied()).map_err(|missing| {
        format!("error resolving value {template:?}: invalid tokens: {missing:?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_secret_parameters_means_no_secret() {
        let p = params(&[("other", "x")]);
        assert_eq!(
            secret_reference(SecretParams::Snapshotter, Some(&p), "c", None).unwrap(),
            None
        );
        assert_eq!(
            secret_reference(SecretParams::Snapshotter, None, "c", None).unwrap(),
            None
        );
    }

    #[test]
    fn templates_resolve_from_the_content_and_snapshot() {
        let p = params(&[
            (
                PARAM_SNAPSHOTTER_SECRET_NAME,
                "${volumesnapshot.name}-creds",
            ),
            (
                PARAM_SNAPSHOTTER_SECRET_NAMESPACE,
                "$volumesnapshot.namespace",
            ),
        ]);
        // `$volumesnapshot.namespace` is `$volumesnapshot` followed by `.namespace`: unknown.
        let err = secret_reference(SecretParams::Snapshotter, Some(&p), "c", Some(("ns", "s")))
            .unwrap_err();
        assert!(
            err.contains("invalid tokens: [\"volumesnapshot\"]"),
            "{err}"
        );

        let p = params(&[
            (
                PARAM_SNAPSHOTTER_SECRET_NAME,
                "${volumesnapshot.name}-creds",
            ),
            (
                PARAM_SNAPSHOTTER_SECRET_NAMESPACE,
                "${volumesnapshot.namespace}",
            ),
        ]);
        let r = secret_reference(SecretParams::Snapshotter, Some(&p), "c", Some(("ns", "s")))
            .unwrap()
            .unwrap();
        assert_eq!(
            r,
            SecretRef {
                name: "s-creds".into(),
                namespace: "ns".into()
            }
        );
        // Without the snapshot (deletion time) only the content name is known.
        let err = secret_reference(SecretParams::Snapshotter, Some(&p), "c", None).unwrap_err();
        assert!(err.contains("volumesnapshot.namespace"), "{err}");
    }

    #[test]
    fn half_specified_or_invalid_secrets_are_refused() {
        let p = params(&[(PARAM_SNAPSHOTTER_LIST_SECRET_NAME, "n")]);
        let err = secret_reference(SecretParams::SnapshotterList, Some(&p), "c", None).unwrap_err();
        assert!(err.contains("Both must be specified"), "{err}");
        let p = params(&[
            (PARAM_SNAPSHOTTER_SECRET_NAME, "Bad_Name"),
            (PARAM_SNAPSHOTTER_SECRET_NAMESPACE, "ns"),
        ]);
        let err = secret_reference(SecretParams::Snapshotter, Some(&p), "c", None).unwrap_err();
        assert!(err.contains("not a valid secret name"), "{err}");
        let p = params(&[
            (PARAM_SNAPSHOTTER_SECRET_NAME, "n"),
            (
                PARAM_SNAPSHOTTER_SECRET_NAMESPACE,
                "${volumesnapshotcontent.name}",
            ),
        ]);
        let err = secret_reference(SecretParams::Snapshotter, Some(&p), "snap.content", None)
            .unwrap_err();
        assert!(
            err.contains("resolved to \"snap.content\" which is not a valid namespace"),
            "{err}"
        );
    }

    #[test]
    fn a_lone_dollar_is_kept() {
        let empty = HashMap::new();
        assert_eq!(resolve_template("a$-b$", &empty).unwrap(), "a$-b$");
    }
}
