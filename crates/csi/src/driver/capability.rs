//! Volume capabilities: the driver's own serialisable form of a CSI
//! `VolumeCapability`, parsing from the wire, and what the driver supports.

use serde::{Deserialize, Serialize};

use super::error::{DriverError, DriverResult};
use crate::host::{FsKind, MountOptions};
use crate::proto;
use crate::proto::volume_capability::access_mode::Mode;

/// How the volume is accessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AccessType {
    /// As a raw block device.
    Block,
    /// As a mounted filesystem.
    Mount {
        /// The filesystem asked for ("" = the driver's default).
        fs_type: String,
        /// Mount flags for the staging mount.
        mount_flags: Vec<String>,
    },
}

/// The CSI access modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccessMode {
    /// SINGLE_NODE_WRITER
    SingleNodeWriter,
    /// SINGLE_NODE_READER_ONLY
    SingleNodeReaderOnly,
    /// MULTI_NODE_READER_ONLY
    MultiNodeReaderOnly,
    /// MULTI_NODE_SINGLE_WRITER
    MultiNodeSingleWriter,
    /// MULTI_NODE_MULTI_WRITER
    MultiNodeMultiWriter,
    /// SINGLE_NODE_SINGLE_WRITER
    SingleNodeSingleWriter,
    /// SINGLE_NODE_MULTI_WRITER
    SingleNodeMultiWriter,
}

impl AccessMode {
    fn from_proto(mode: i32) -> Option<Self> {
        Some(match Mode::try_from(mode).ok()? {
            Mode::Unknown => return None,
            Mode::SingleNodeWriter => Self::SingleNodeWriter,
            Mode::SingleNodeReaderOnly => Self::SingleNodeReaderOnly,
            Mode::MultiNodeReaderOnly => Self::MultiNodeReaderOnly,
            Mode::MultiNodeSingleWriter => Self::MultiNodeSingleWriter,
            Mode::MultiNodeMultiWriter => Self::MultiNodeMultiWriter,
            Mode::SingleNodeSingleWriter => Self::SingleNodeSingleWriter,
            Mode::SingleNodeMultiWriter => Self::SingleNodeMultiWriter,
        })
    }

    fn to_proto(self) -> Mode {
        match self {
            Self::SingleNodeWriter => Mode::SingleNodeWriter,
            Self::SingleNodeReaderOnly => Mode::SingleNodeReaderOnly,
            Self::MultiNodeReaderOnly => Mode::MultiNodeReaderOnly,
            Self::MultiNodeSingleWriter => Mode::MultiNodeSingleWriter,
            Self::MultiNodeMultiWriter => Mode::MultiNodeMultiWriter,
            Self::SingleNodeSingleWriter => Mode::SingleNodeSingleWriter,
            Self::SingleNodeMultiWriter => Mode::SingleNodeMultiWriter,
        }
    }

    /// Whether the volume may be published to more than one node.
    pub fn multi_node(self) -> bool {
        matches!(
            self,
            Self::MultiNodeReaderOnly | Self::MultiNodeSingleWriter | Self::MultiNodeMultiWriter
        )
    }

    /// Whether only one publication (one target path) is allowed.
    pub fn single_publication(self) -> bool {
        self == Self::SingleNodeSingleWriter
    }

    /// Whether the mode only allows reading.
    pub fn read_only(self) -> bool {
        matches!(self, Self::SingleNodeReaderOnly | Self::MultiNodeReaderOnly)
    }
}

/// A validated volume capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    /// Block or mount.
    pub access_type: AccessType,
    /// The access mode.
    pub mode: AccessMode,
}

impl Capability {
    /// Parses a capability from the wire; `field` names it in errors.
    pub fn from_proto(field: &'static str, cap: &proto::VolumeCapability) -> DriverResult<Self> {
        use proto::volume_capability::AccessType as Wire;
        let access_type = match &cap.access_type {
            None => return Err(DriverError::invalid(field, "access_type is required")),
            Some(Wire::Block(_)) => AccessType::Block,
            Some(Wire::Mount(mount)) => AccessType::Mount {
                fs_type: mount.fs_type.clone(),
                mount_flags: mount.mount_flags.clone(),
            },
        };
        let mode = cap
            .access_mode
            .as_ref()
            .and_then(|m| AccessMode::from_proto(m.mode))
            .ok_or_else(|| DriverError::invalid(field, "access_mode is missing or UNKNOWN"))?;
        let capability = Self { access_type, mode };
        capability.check_mount_fields(field)?;
        Ok(capability)
    }

    /// Parses a REQUIRED capability.
    pub fn required(
        field: &'static str,
        cap: Option<&proto::VolumeCapability>,
    ) -> DriverResult<Self> {
        Self::from_proto(field, cap.ok_or(DriverError::MissingField(field))?)
    }

    /// Parses a REQUIRED, non-empty list of capabilities.
    pub fn required_list(
        field: &'static str,
        caps: &[proto::VolumeCapability],
    ) -> DriverResult<Vec<Self>> {
        if caps.is_empty() {
            return Err(DriverError::MissingField(field));
        }
        caps.iter().map(|c| Self::from_proto(field, c)).collect()
    }

    fn check_mount_fields(&self, field: &'static str) -> DriverResult<()> {
        let AccessType::Mount {
            fs_type,
            mount_flags,
        } = &self.access_type
        else {
            return Ok(());
        };
        if mount_flags.iter().map(String::len).sum::<usize>() > 4096 {
            return Err(DriverError::invalid(field, "mount_flags exceed 4 KiB"));
        }
        MountOptions::parse(mount_flags).map_err(|e| DriverError::invalid(field, e.to_string()))?;
        if FsKind::parse(fs_type).is_none() {
            return Err(DriverError::invalid(
                field,
                format!("fs_type {fs_type:?} is not supported (ext4, xfs)"),
            ));
        }
        Ok(())
    }

    /// Why the driver cannot provide this capability, if it cannot. A
    /// filesystem can only be written from one place at a time, so mount
    /// access on several nodes is read-only.
    pub fn unsupported_reason(&self) -> Option<String> {
        let writable_multi = matches!(
            self.mode,
            AccessMode::MultiNodeSingleWriter | AccessMode::MultiNodeMultiWriter
        );
        match (&self.access_type, writable_multi) {
            (AccessType::Mount { .. }, true) => Some(format!(
                "{:?} is not supported for mount access: a local filesystem has one writer",
                self.mode
            )),
            _ => None,
        }
    }

    /// The filesystem this capability asks for, if it is a mount capability
    /// that names one.
    pub fn fs_kind(&self) -> Option<FsKind> {
        match &self.access_type {
            AccessType::Mount { fs_type, .. } if !fs_type.is_empty() => FsKind::parse(fs_type),
            _ => None,
        }
    }

    /// Whether this is block access.
    pub fn is_block(&self) -> bool {
        self.access_type == AccessType::Block
    }

    /// Back to the wire form.
    pub fn to_proto(&self) -> proto::VolumeCapability {
        use proto::volume_capability::{AccessMode as WireMode, AccessType as Wire};
        let access_type = match &self.access_type {
            AccessType::Block => Wire::Block(proto::volume_capability::BlockVolume {}),
            AccessType::Mount {
                fs_type,
                mount_flags,
            } => Wire::Mount(proto::volume_capability::MountVolume {
                fs_type: fs_type.clone(),
                mount_flags: mount_flags.clone(),
                volume_mount_group: String::new(),
            }),
        };
        proto::VolumeCapability {
            access_type: Some(access_type),
            access_mode: Some(WireMode {
                mode: self.mode.to_proto() as i32,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(mode: Mode, fs_type: &str) -> proto::VolumeCapability {
        Capability {
            access_type: AccessType::Mount {
                fs_type: fs_type.into(),
                mount_flags: vec![],
            },
            mode: AccessMode::from_proto(mode as i32).unwrap(),
        }
        .to_proto()
    }

    #[test]
    fn capabilities_round_trip() {
        let wire = mount(Mode::SingleNodeWriter, "xfs");
        let cap = Capability::from_proto("volume_capability", &wire).unwrap();
        assert_eq!(cap.fs_kind(), Some(FsKind::Xfs));
        assert_eq!(cap.to_proto(), wire);
    }

    #[test]
    fn malformed_capabilities_are_invalid_arguments() {
        let missing_type = proto::VolumeCapability {
            access_type: None,
            access_mode: Some(proto::volume_capability::AccessMode { mode: 1 }),
        };
        let err = Capability::from_proto("c", &missing_type).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let mut unknown_mode = mount(Mode::SingleNodeWriter, "");
        unknown_mode.access_mode = Some(proto::volume_capability::AccessMode { mode: 0 });
        assert!(Capability::from_proto("c", &unknown_mode).is_err());
        assert!(Capability::from_proto("c", &mount(Mode::SingleNodeWriter, "ntfs")).is_err());
        assert!(matches!(
            Capability::required_list("c", &[]),
            Err(DriverError::MissingField("c"))
        ));
    }

    #[test]
    fn multi_node_writers_are_refused_for_mount_access() {
        let cap = Capability::from_proto("c", &mount(Mode::MultiNodeMultiWriter, "")).unwrap();
        assert!(cap.unsupported_reason().is_some());
        let ro = Capability::from_proto("c", &mount(Mode::MultiNodeReaderOnly, "")).unwrap();
        assert!(ro.unsupported_reason().is_none());
    }
}
