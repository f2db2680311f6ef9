//! What a registry's error answer is, read without I/O: which request failed, its status, the
//! distribution-spec error envelope and its codes, and whether another try may pass; and every
//! other way a pull can fail, as one error type.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
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

/// A code of the distribution spec's error envelope (its "Error Codes" table), with the two
/// that distribution itself sends and no spec lists, `UNKNOWN` and `UNAVAILABLE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    ManifestUnverified,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// distribution's catch-all (`errcode.ErrorCodeUnknown`), sent with a 500.
    Unknown,
    /// distribution's `errcode.ErrorCodeUnavailable`, sent with a 503.
    Unavailable,
    /// A code no table names, as the registry wrote it; empty for an entry without one.
    Other(String),
}

/// Each named code: its wire spelling, and whether another try may pass. The second column is
/// go-containerregistry's `temporaryErrorCodes` (`pkg/v1/remote/transport/error.go`, read at
/// commit 3f4ff3c): a registry that says one of those says "not now", not "no".
const CODES: [(ErrorCode, &str, bool); 18] = [
    (ErrorCode::BlobUnknown, "BLOB_UNKNOWN", false),
    (ErrorCode::BlobUploadInvalid, "BLOB_UPLOAD_INVALID", true),
    (ErrorCode::BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", false),
    (ErrorCode::DigestInvalid, "DIGEST_INVALID", false),
    (
        ErrorCode::ManifestBlobUnknown,
        "MANIFEST_BLOB_UNKNOWN",
        false,
    ),
    (ErrorCode::ManifestInvalid, "MANIFEST_INVALID", false),
    (ErrorCode::ManifestUnknown, "MANIFEST_UNKNOWN", false),
    (ErrorCode::ManifestUnverified, "MANIFEST_UNVERIFIED", false),
    (ErrorCode::NameInvalid, "NAME_INVALID", false),
    (ErrorCode::NameUnknown, "NAME_UNKNOWN", false),
    (ErrorCode::SizeInvalid, "SIZE_INVALID", false),
    (ErrorCode::TagInvalid, "TAG_INVALID", false),
    (ErrorCode::Unauthorized, "UNAUTHORIZED", false),
    (ErrorCode::Denied, "DENIED", false),
    (ErrorCode::Unsupported, "UNSUPPORTED", false),
    (ErrorCode::TooManyRequests, "TOOMANYREQUESTS", true),
    (ErrorCode::Unknown, "UNKNOWN", true),
    (ErrorCode::Unavailable, "UNAVAILABLE", true),
];

/// The statuses another try may pass whatever the body says: go-containerregistry's
/// `temporaryStatusCodes` (the same file): 408, 429, 500, 502, 503, 504.
const TEMPORARY_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// The statuses that are an answer about the credentials or the image, never retried.
const FINAL_STATUSES: [u16; 3] = [401, 403, 404];

impl ErrorCode {
    /// The code as the registry spells it (an unknown one as it was sent).
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Other(s) => s,
            known => CODES
                .iter()
                .find(|(c, _, _)| c == known)
                .map_or("", |(_, name, _)| name),
        }
    }

    /// Whether a registry that answers with this code may answer otherwise on another try.
    pub fn temporary(&self) -> bool {
        CODES.iter().any(|(c, _, t)| c == self && *t)
    }
}

impl From<String> for ErrorCode {
    fn from(s: String) -> Self {
        CODES
            .iter()
            .find(|(_, name, _)| *name == s)
            .map_or(ErrorCode::Other(s), |(c, _, _)| c.clone())
    }
}

impl From<&str> for ErrorCode {
    fn from(s: &str) -> Self {
        ErrorCode::from(s.to_string())
    }
}

impl Default for ErrorCode {
    fn default() -> Self {
        ErrorCode::Other(String::new())
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the distribution-spec error envelope `{"errors":[{"code","message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorEntry {
    #[serde(default)]
    pub code: ErrorCode,
    #[serde(default)]
    pub message: String,
}

/// A registry's answer with an error status, as far as the probe reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} answered HTTP {status} to {}", .request.as_str())]
pub struct StatusError {
    pub request: Request,
    pub status: u16,
    /// The host that answered (a redirect's target, not always the registry).
    pub host: String,
    pub errors: Vec<ErrorEntry>,
    pub challenge: Option<String>,
    /// The start of a body that is not an error envelope (ECR's `Not Authorized`).
    pub body: String,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl StatusError {
    /// Whether the registry sent `code` among its errors.
    pub fn has(&self, code: &ErrorCode) -> bool {
        self.errors.iter().any(|e| &e.code == code)
    }

    /// The registry's codes as it spelled them, for evidence.
    pub fn codes(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.code.as_str()).collect()
    }

    /// The registry's own words: its envelope's messages, or else the start of its body.
    pub fn text(&self) -> String {
        let message = self
            .errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        if message.is_empty() {
            self.body.clone()
        } else {
            message
        }
    }

    /// Whether another try may pass, as go-containerregistry decides it (its retry transport
    /// retries the temporary statuses whatever the body, and `Error.Temporary` an answer whose
    /// codes are all temporary), except that a 401, 403 or 404 is final whatever its codes:
    /// it answers about the credentials or the image, and Harbor 2.10 sends a missing manifest
    /// as a 404 with `UNKNOWN` (containers/image#2413), which a retry would only delay.
    pub fn retryable(&self) -> bool {
        if FINAL_STATUSES.contains(&self.status) {
            return false;
        }
        TEMPORARY_STATUSES.contains(&self.status)
            || (!self.errors.is_empty() && self.errors.iter().all(|e| e.code.temporary()))
    }
}

/// How much of a body that is not an envelope a [`StatusError`] keeps.
const BODY_CHARS: usize = 300;

/// The error an answer with a failure status makes, from what the async edge read: the status,
/// the headers and the (capped) body; `now` dates a `Retry-After` given as an HTTP date. No I/O,
/// so every recorded answer is a unit test.
///
/// Modelled on oci-client's `validate_registry_response` (oras-project/rust-oci-client,
/// `src/client.rs`: status and body in, a typed error out). Unlike it, a body that is not an
/// envelope (ECR's `Not Authorized`, a proxy's HTML) is no error of its own: its start is kept
/// as the registry's words, since it is often the only cause there is.
pub fn status_error(
    request: Request,
    host: String,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> StatusError {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    #[derive(Deserialize)]
    struct Envelope {
        errors: Vec<ErrorEntry>,
    }
    let errors = serde_json::from_slice::<Envelope>(body)
        .map(|e| e.errors)
        .unwrap_or_default();
    let text = if errors.is_empty() {
        String::from_utf8_lossy(body)
            .chars()
            .take(BODY_CHARS)
            .collect()
    } else {
        String::new()
    };
    StatusError {
        request,
        status,
        host,
        errors,
        challenge: header(WWW_AUTHENTICATE).map(str::to_string),
        body: text.trim().to_string(),
        retry_after: header(RETRY_AFTER).and_then(|v| parse_retry_after(v, now)),
    }
}

/// `Retry-After`: delay seconds, or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Status(#[from] StatusError),
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
    #[error("blob {digest} from {host} did not verify")]
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
    /// The registry's error answer, if this is one.
    pub fn status(&self) -> Option<&StatusError> {
        match self {
            RegistryError::Status(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the registry answered with `code` among its errors.
    pub fn has_code(&self, code: &ErrorCode) -> bool {
        self.status().is_some_and(|s| s.has(code))
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
