//! CreateVolume / CreateSnapshot / ControllerModifyVolume parameters the
//! driver understands.
//!
//! - `csi.storage.k8s.io/fstype` (CreateVolume): `ext4` (default) or `xfs`,
//!   the filesystem made at first stage.
//! - `directIO` (mutable: CreateVolume `mutable_parameters` and
//!   ControllerModifyVolume): `"true"` makes the loop device do direct I/O
//!   to the backing image (no double caching in the host page cache),
//!   `"false"` turns it off. Applied at once to a staged volume and at every
//!   later stage.
//!
//! Keys under `csi.storage.k8s.io/` are metadata the Kubernetes sidecars
//! add (PVC name, namespace…) and are kept but not interpreted; any other
//! key is refused with INVALID_ARGUMENT.

use std::collections::{BTreeMap, HashMap};

use super::error::{DriverError, DriverResult};
use crate::host::FsKind;

/// The filesystem parameter.
pub const FSTYPE: &str = "csi.storage.k8s.io/fstype";
/// The direct-I/O mutable parameter.
pub const DIRECT_IO: &str = "directIO";
const KUBERNETES_PREFIX: &str = "csi.storage.k8s.io/";

/// Checks CreateVolume `parameters`; returns the filesystem they ask for.
pub fn volume_parameters(parameters: &HashMap<String, String>) -> DriverResult<Option<FsKind>> {
    let mut fs_kind = None;
    for (key, value) in parameters {
        if key == FSTYPE {
            fs_kind = Some(FsKind::parse(value).ok_or_else(|| {
                DriverError::invalid(
                    "parameters",
                    format!("{FSTYPE} {value:?} is not ext4 or xfs"),
                )
            })?);
        } else if !key.starts_with(KUBERNETES_PREFIX) {
            return Err(DriverError::invalid(
                "parameters",
                format!("unknown parameter {key:?}"),
            ));
        }
    }
    Ok(fs_kind)
}

/// Checks CreateSnapshot `parameters`: only sidecar metadata is accepted.
pub fn snapshot_parameters(parameters: &HashMap<String, String>) -> DriverResult<()> {
    match parameters
        .keys()
        .find(|k| !k.starts_with(KUBERNETES_PREFIX))
    {
        Some(key) => Err(DriverError::invalid(
            "parameters",
            format!("unknown parameter {key:?}"),
        )),
        None => Ok(()),
    }
}

/// Checks mutable parameters and returns them sorted.
pub fn mutable_parameters(
    parameters: &HashMap<String, String>,
) -> DriverResult<BTreeMap<String, String>> {
    for (key, value) in parameters {
        if key != DIRECT_IO {
            return Err(DriverError::invalid(
                "mutable_parameters",
                format!("{key:?} is not a mutable parameter (only {DIRECT_IO})"),
            ));
        }
        if value != "true" && value != "false" {
            return Err(DriverError::invalid(
                "mutable_parameters",
                format!("{DIRECT_IO} must be \"true\" or \"false\", not {value:?}"),
            ));
        }
    }
    Ok(parameters.clone().into_iter().collect())
}

/// Whether the mutable parameters turn direct I/O on.
pub fn direct_io(mutable: &BTreeMap<String, String>) -> bool {
    mutable.get(DIRECT_IO).is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fstype_and_sidecar_metadata_are_accepted() {
        let params = map(&[(FSTYPE, "xfs"), ("csi.storage.k8s.io/pvc/name", "data")]);
        assert_eq!(volume_parameters(&params).unwrap(), Some(FsKind::Xfs));
        assert!(volume_parameters(&map(&[("color", "blue")])).is_err());
        assert!(volume_parameters(&map(&[(FSTYPE, "vfat")])).is_err());
    }

    #[test]
    fn only_direct_io_is_mutable() {
        let ok = mutable_parameters(&map(&[(DIRECT_IO, "true")])).unwrap();
        assert!(direct_io(&ok));
        assert!(mutable_parameters(&map(&[(DIRECT_IO, "yes")])).is_err());
        assert!(mutable_parameters(&map(&[("iops", "5")])).is_err());
    }
}
