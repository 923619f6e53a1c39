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

/// Finalizer on a VolumeSnapshotContent bound to a VolumeSnapshot; the CSI snapshotter removes it
/// once the snapshot is deleted on the storage (or kept, with deletionPolicy Retain).
pub const FINALIZER_VOLUMESNAPSHOTCONTENT_BOUND: &str =
    "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection";
/// Finalizer on a VolumeSnapshot bound to a content with deletionPolicy Delete, kept until that
/// content is gone.
pub const FINALIZER_VOLUMESNAPSHOT_BOUND: &str =
    "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection";
/// Finalizer on a VolumeSnapshot, kept while a claim is being restored from it.
pub const FINALIZER_VOLUMESNAPSHOT_AS_SOURCE: &str =
    "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection";
/// Finalizer on a claim while a snapshot of it is being taken.
pub const FINALIZER_PVC_AS_SNAPSHOT_SOURCE: &str =
    "snapshot.storage.kubernetes.io/pvc-as-source-protection";
/// Marks the default VolumeSnapshotClass of its driver.
pub const ANN_DEFAULT_SNAPSHOT_CLASS: &str = "snapshot.storage.kubernetes.io/is-default-class";
/// Set on a content by the snapshot controller once its VolumeSnapshot is being deleted: the
/// CSI snapshotter may then act on the content's deletion.
pub const ANN_VOLUMESNAPSHOT_BEING_DELETED: &str =
    "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted";
/// Set on a content while CreateSnapshot has been sent and not answered for good; the content
/// is not deleted meanwhile, so a snapshot cut late is not leaked.
pub const ANN_VOLUMESNAPSHOT_BEING_CREATED: &str =
    "snapshot.storage.kubernetes.io/volumesnapshot-being-created";
/// Name of the secret the CSI snapshotter passes to CreateSnapshot/DeleteSnapshot of a content.
pub const ANN_SNAPSHOT_DELETION_SECRET_NAME: &str =
    "snapshot.storage.kubernetes.io/deletion-secret-name";
/// Namespace of that secret.
pub const ANN_SNAPSHOT_DELETION_SECRET_NAMESPACE: &str =
    "snapshot.storage.kubernetes.io/deletion-secret-namespace";
/// VolumeSnapshotClass parameter naming the CreateSnapshot/DeleteSnapshot secret (templated).
pub const PARAM_SNAPSHOTTER_SECRET_NAME: &str = "csi.storage.k8s.io/snapshotter-secret-name";
/// VolumeSnapshotClass parameter naming that secret's namespace (templated).
pub const PARAM_SNAPSHOTTER_SECRET_NAMESPACE: &str =
    "csi.storage.k8s.io/snapshotter-secret-namespace";
/// VolumeSnapshotClass parameter naming the ListSnapshots secret (templated).
pub const PARAM_SNAPSHOTTER_LIST_SECRET_NAME: &str =
    "csi.storage.k8s.io/snapshotter-list-secret-name";
/// VolumeSnapshotClass parameter naming that secret's namespace (templated).
pub const PARAM_SNAPSHOTTER_LIST_SECRET_NAMESPACE: &str =
    "csi.storage.k8s.io/snapshotter-list-secret-namespace";

/// On a claim: the controller has finished binding it once (value does not matter). Its
/// absence means the claim is still being bound.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// On a PV or claim: the controller (not the user) set `claimRef` / `volumeName`.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// On a PV: who provisioned it (a plugin, a CSI driver, or a local static provisioner).
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// On a claim: the provisioner expected to create its volume.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The deprecated beta key of [`ANN_STORAGE_PROVISIONER`], still written beside it.
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// On a claim of a WaitForFirstConsumer class: the node the scheduler chose for its pod.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// StorageClass provisioner meaning "no dynamic provisioning" (static local volumes).
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";
/// Node label holding the node's host name (local PVs' node affinity uses it).
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";

// Provisioning, deletion and expansion through CSI (external-provisioner, external-resizer).

/// Finalizer the CSI provisioner puts on the PVs it creates; removed once the volume is deleted.
pub const FINALIZER_EXTERNAL_PROVISIONER: &str =
    "external-provisioner.volume.kubernetes.io/finalizer";
/// On a provisioned PV: the name of the secret DeleteVolume needs (empty when none).
pub const ANN_PROVISIONER_DELETION_SECRET_NAME: &str =
    "volume.kubernetes.io/provisioner-deletion-secret-name";
/// On a provisioned PV: the namespace of the secret DeleteVolume needs (empty when none).
pub const ANN_PROVISIONER_DELETION_SECRET_NAMESPACE: &str =
    "volume.kubernetes.io/provisioner-deletion-secret-namespace";
/// On a claim whose expansion finished in the controller: the node need not expand it.
pub const ANN_NODE_EXPANSION_NOT_REQUIRED: &str =
    "volume.kubernetes.io/node-expansion-not-required";
/// The `volumeAttributes` key naming the provisioner instance that created a CSI PV.
pub const VOLUME_ATTRIBUTE_PROVISIONER_IDENTITY: &str =
    "storage.kubernetes.io/csiProvisionerIdentity";
