//! CSI endpoints: `unix:///absolute/path/to/csi.sock`.

use std::path::{Path, PathBuf};

/// Why an endpoint string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    /// Only unix sockets are supported (the CSI convention for local
    /// plugins).
    #[error("endpoint {0:?} is not a unix socket endpoint (unix:///path)")]
    NotUnix(String),
    /// The socket path must be absolute.
    #[error("endpoint {0:?} does not name an absolute socket path")]
    NotAbsolute(String),
}

/// A parsed unix socket endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    path: PathBuf,
}

impl Endpoint {
    /// Parses `unix:///path` (also `unix:/path`).
    pub fn parse(endpoint: &str) -> Result<Self, EndpointError> {
        let rest = endpoint
            .strip_prefix("unix://")
            .or_else(|| endpoint.strip_prefix("unix:"))
            .ok_or_else(|| EndpointError::NotUnix(endpoint.to_string()))?;
        if !rest.starts_with('/') || rest.len() < 2 {
            return Err(EndpointError::NotAbsolute(endpoint.to_string()));
        }
        Ok(Self {
            path: PathBuf::from(rest),
        })
    }

    /// An endpoint for a socket path.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unix://{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_endpoints_parse() {
        let e = Endpoint::parse("unix:///run/csi/csi.sock").unwrap();
        assert_eq!(e.path(), Path::new("/run/csi/csi.sock"));
        assert_eq!(e.to_string(), "unix:///run/csi/csi.sock");
        assert_eq!(
            Endpoint::parse("unix:/a.sock").unwrap().path(),
            Path::new("/a.sock")
        );
    }

    #[test]
    fn other_endpoints_are_refused() {
        assert!(matches!(
            Endpoint::parse("tcp://1.2.3.4:5"),
            Err(EndpointError::NotUnix(_))
        ));
        assert!(matches!(
            Endpoint::parse("unix://relative.sock"),
            Err(EndpointError::NotAbsolute(_))
        ));
        assert!(Endpoint::parse("unix:///").is_err());
    }
}
