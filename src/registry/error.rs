//! What a registry's error answer is: which request failed, the status, the distribution-spec
//! error envelope; and every other way a pull can fail, as one error type.

use serde::Deserialize;

use super::blob::VerifyError;
use super::manifest::ManifestError;
use super::transport::TransportError;

/// Which request a registry answered with an error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Ping,
    Login,
    Token,
    Manifest,
    Blob,
}

impl Request {
    pub fn as_str(self) -> &'static str {
        match self {
            Request::Ping => "GET /v2/",
            Request::Login => "GET /v2/ with credentials",
            Request::Token => "the token request",
            Request::Manifest => "the manifest request",
            Request::Blob => "the blob request",
        }
    }
}

/// One entry of the distribution-spec error envelope `{"errors":[{"code","message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{host} answered HTTP {status} to {}", .request.as_str())]
    Status {
        request: Request,
        status: u16,
        host: String,
        errors: Vec<ErrorEntry>,
        challenge: Option<String>,
        /// The start of a body that is not an error envelope (ECR's `Not Authorized`).
        body: String,
        /// `Retry-After` of a 429 or 503.
        retry_after: Option<std::time::Duration>,
    },
    #[error("reading the answer of {host} failed")]
    Body {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the manifest is larger than {limit} bytes")]
    ManifestTooLarge { limit: usize },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("the manifest's digest is {actual}, but {expected} was asked for")]
    ManifestDigestMismatch { expected: String, actual: String },
    #[error("the index has no manifest for platform {wanted}")]
    PlatformNotFound {
        wanted: String,
        available: Vec<String>,
    },
    #[error("blob {digest} from {host}: {source}")]
    Verify {
        digest: String,
        host: String,
        #[source]
        source: VerifyError,
    },
    #[error("blob {digest}: the connection to {host} broke after {received} of {expected} bytes")]
    Interrupted {
        digest: String,
        host: String,
        received: u64,
        expected: u64,
        #[source]
        source: reqwest::Error,
    },
    #[error("the token from {host} is unusable: {reason}")]
    TokenFormat { host: String, reason: &'static str },
}

impl RegistryError {
    /// The registry's error codes, if it sent an envelope.
    pub fn codes(&self) -> Vec<&str> {
        match self {
            RegistryError::Status { errors, .. } => {
                errors.iter().map(|e| e.code.as_str()).collect()
            }
            _ => vec![],
        }
    }
}
