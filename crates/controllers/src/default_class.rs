//! The default StorageClass (`storageclass.kubernetes.io/is-default-class: "true"`) and its
//! retroactive assignment to existing claims.
//!
//! New claims without a class get the default from the API server's admission. Claims that
//! existed before a default class appeared get it from the PV binder (upstream's
//! "retroactive default StorageClass assignment", done in the PV controller's claim sync):
//! an unbound claim with `spec.storageClassName` unset (not "": "" means "no class") that
//! finds no PV is assigned the default. The binder syncs every unbound claim again when a
//! StorageClass appears or changes, so the assignment follows the class at once.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use volplane_api::wellknown::ANN_DEFAULT_STORAGE_CLASS;

/// Whether `class` is annotated as the default.
pub fn is_default(class: &StorageClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_DEFAULT_STORAGE_CLASS))
        .is_some_and(|v| v == "true")
}

/// The default class among `classes`: the newest one marked default; among classes created
/// in the same second, the first by name (upstream's `GetDefaultClass`).
pub fn default_class<'a>(
    classes: impl IntoIterator<Item = &'a StorageClass>,
) -> Option<&'a StorageClass> {
    classes
        .into_iter()
        .filter(|c| is_default(c))
        .min_by(|a, b| {
            let created = |c: &StorageClass| c.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b)
                .cmp(&created(a))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        })
}

/// The claim with `spec.storageClassName` set to `class`.
pub fn with_class(claim: &PersistentVolumeClaim, class: &str) -> PersistentVolumeClaim {
    let mut changed = claim.clone();
    changed.spec.get_or_insert_default().storage_class_name = Some(class.to_string());
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(name: &str, created: &str, default: bool) -> StorageClass {
        let annotations = if default {
            json!({ANN_DEFAULT_STORAGE_CLASS: "true"})
        } else {
            json!({})
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
            "provisioner": "x"
        }))
        .unwrap()
    }

    #[test]
    fn the_newest_default_wins_then_the_first_name() {
        let classes = [
            class("old", "2024-01-01T00:00:00Z", true),
            class("new", "2024-06-01T00:00:00Z", true),
            class("newest-not-default", "2025-01-01T00:00:00Z", false),
        ];
        assert_eq!(
            default_class(&classes).unwrap().metadata.name.as_deref(),
            Some("new")
        );
        let tied = [
            class("b", "2024-06-01T00:00:00Z", true),
            class("a", "2024-06-01T00:00:00Z", true),
        ];
        assert_eq!(
            default_class(&tied).unwrap().metadata.name.as_deref(),
            Some("a")
        );
        assert!(default_class(&classes[2..]).is_none());
    }
}
