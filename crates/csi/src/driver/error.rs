//! The driver's errors and the gRPC status code the CSI specification
//! requires for each.

use tonic::{Code, Status};

/// Everything an RPC of the built-in driver can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A field the specification marks REQUIRED is missing (INVALID_ARGUMENT).
    #[error("{0} is required")]
    MissingField(&'static str),
    /// A field has a value the driver does not accept (INVALID_ARGUMENT).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The field, as named in the specification.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No volume has this id (NOT_FOUND).
    #[error("volume {0} does not exist")]
    VolumeNotFound(String),
    /// No snapshot has this id (NOT_FOUND).
    #[error("snapshot {0} does not exist")]
    SnapshotNotFound(String),
    /// No node plugin with this id has registered (NOT_FOUND).
    #[error("node {0} does not exist")]
    NodeNotFound(String),
    /// A path given for a volume is not where the volume is (NOT_FOUND).
    #[error("volume {volume_id} is not available at {path}")]
    PathNotFound {
        /// The volume.
        volume_id: String,
        /// The path the caller gave.
        path: String,
    },
    /// An object of this name or at this path exists and is incompatible with
    /// the request (ALREADY_EXISTS).
    #[error("{0}")]
    AlreadyExists(String),
    /// The request conflicts with the volume's current state
    /// (FAILED_PRECONDITION).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A capacity the driver cannot provide (OUT_OF_RANGE).
    #[error("{0}")]
    OutOfRange(String),
    /// A limit was reached: volumes per node, topology, space
    /// (RESOURCE_EXHAUSTED).
    #[error("{0}")]
    ResourceExhausted(String),
    /// Another operation on the same volume or snapshot is in progress
    /// (ABORTED).
    #[error("an operation on {0} is already in progress")]
    OperationPending(String),
    /// A list `starting_token` the driver did not issue (ABORTED).
    #[error("invalid starting_token {0:?}")]
    InvalidToken(String),
    /// The RPC is not implemented by this driver (UNIMPLEMENTED).
    #[error("{0} is not implemented by local.csi.volplane.io")]
    Unimplemented(&'static str),
    /// The service is disabled in this driver's mode, e.g. a node-only
    /// driver asked for a controller RPC (UNIMPLEMENTED).
    #[error("the {0} service is not enabled on this driver instance")]
    ServiceDisabled(&'static str),
    /// A host operation failed (INTERNAL).
    #[error("{context}: {source}")]
    Io {
        /// What the driver was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state file could not be read or written (INTERNAL).
    #[error("state file {path}: {reason}")]
    State {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl DriverError {
    /// Wraps an I/O error with what the driver was doing.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    /// Shorthand for [`DriverError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// The gRPC code the CSI specification requires for this error.
    pub fn code(&self) -> Code {
        match self {
            Self::MissingField(_) | Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::VolumeNotFound(_)
            | Self::SnapshotNotFound(_)
            | Self::NodeNotFound(_)
            | Self::PathNotFound { .. } => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::OutOfRange(_) => Code::OutOfRange,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::OperationPending(_) | Self::InvalidToken(_) => Code::Aborted,
            Self::Unimplemented(_) | Self::ServiceDisabled(_) => Code::Unimplemented,
            Self::Io { .. } | Self::State { .. } => Code::Internal,
        }
    }
}

impl From<DriverError> for Status {
    fn from(error: DriverError) -> Self {
        Status::new(error.code(), error.to_string())
    }
}

/// Result of a driver operation.
pub type DriverResult<T> = Result<T, DriverError>;
