//! The opaque `continue` token of paged lists: the revision of the first page and the last key
//! returned, base64-encoded JSON as upstream does.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueToken {
    /// Revision the first page was read at.
    #[serde(rename = "rv")]
    pub revision: u64,
    /// The last key already returned.
    #[serde(rename = "start")]
    pub after_key: String,
}

impl ContinueToken {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("token serialises"))
    }

    pub fn decode(text: &str) -> Result<ContinueToken, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| invalid())?;
        serde_json::from_slice(&bytes).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = ContinueToken {
            revision: 42,
            after_key: "/registry/pods/a/b".into(),
        };
        assert_eq!(ContinueToken::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn garbage_is_bad_request() {
        assert_eq!(ContinueToken::decode("!!!").unwrap_err().code, 400);
    }
}
