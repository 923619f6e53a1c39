//! Well-known annotation keys, finalizers and labels, defined once.

/// Finalizer the API server adds to every claim; removed when no pod uses the claim.
pub const FINALIZER_PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// Finalizer the API server adds to every PV; removed when the PV is not bound.
pub const FINALIZER_PV_PROTECTION: &str = "kubernetes.io/pv-protection";
/// Finalizer set by foreground cascading deletion until the dependents are gone.
pub const FINALIZER_FOREGROUND_DELETION: &str = "foregroundDeletion";
/// Finalizer set by orphan deletion until the dependents' owner references are removed.
pub const FINALIZER_ORPHAN: &str = "orphan";
/// Spec finalizer of namespaces, removed once the namespace's content is gone.
pub const FINALIZER_NAMESPACE_KUBERNETES: &str = "kubernetes";

/// Marks the default StorageClass.
pub const ANN_DEFAULT_STORAGE_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// Written by client-side `kubectl apply`.
pub const ANN_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Label every namespace carries with its own name.
pub const LABEL_METADATA_NAME: &str = "kubernetes.io/metadata.name";
