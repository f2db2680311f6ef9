//! Stage 4, registry pull: the `/v2/` challenge, a login check, the manifest (an index resolved
//! to one platform), the config blob and the layers, each verified while it streams.
//!
//! `auth` logs in, `session` pulls, both through `transport`; every function there does I/O
//! and returns typed results. What an error answer says is read without I/O, in `error`;
//! turning a failure into a finding with a cause and a fix is the diagnosis module's job.

mod auth;
pub mod blob;
mod error;
pub mod manifest;
pub mod rate;
pub mod retry;
mod session;
pub mod transport;
pub mod x509;

pub use self::auth::{AuthCheck, Logins, login, parse_challenge};
pub use self::error::{ErrorCode, ErrorEntry, RegistryError, Request, StatusError, status_error};
pub use self::session::{BlobPull, Resolved, Session};

use reqwest::Url;

use self::manifest::ManifestError;
use self::transport::Fetched;
use crate::reference::ImageRef;

/// The base URL the image's registry is reached at: `https://<registry>/` unless the user
/// mapped the host to another endpoint (a pull-through proxy, a VPC endpoint, the local stack).
pub fn endpoint_for(image: &ImageRef, overrides: &[(String, Url)]) -> Result<Url, RegistryError> {
    if let Some((_, url)) = overrides
        .iter()
        .find(|(host, _)| host.eq_ignore_ascii_case(&image.registry))
    {
        return Ok(url.clone());
    }
    Url::parse(&format!("https://{}/", image.resolved_registry)).map_err(|_| {
        RegistryError::Manifest(ManifestError::Invalid {
            reason: format!("registry {:?} does not form a URL", image.resolved_registry),
        })
    })
}

/// `path` under `base`, which is treated as a directory even without its trailing `/`.
fn join(base: &Url, path: &str) -> Url {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        b.set_path(&format!("{}/", b.path()));
    }
    b.join(path).unwrap_or(b)
}

/// The error of an answer with a failure status: its body read (capped; an over-long one is
/// dropped) and handed to the pure [`status_error`].
async fn read_error(request: Request, mut fetched: Fetched) -> StatusError {
    let now = std::time::SystemTime::now();
    let status = fetched.response.status().as_u16();
    let headers = std::mem::take(fetched.response.headers_mut());
    let body = read_capped(fetched.response, ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    status_error(request, fetched.served_by, status, &headers, &body, now)
}

/// An error answer's body is read up to this (an envelope is a few hundred bytes).
const ERROR_BODY_LIMIT: usize = 16 << 10;

/// Reads a whole body, refusing more than `limit` bytes. `None` means over the limit.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        if out.len() + chunk.len() > limit {
            return None;
        }
        out.extend_from_slice(&chunk);
    }
    Some(out)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_default_to_https_and_honour_overrides() {
        let o = vec![(
            "Reg.Example:5000".to_string(),
            Url::parse("https://127.0.0.1:4443/mirror").unwrap(),
        )];
        let img = |s: &str| s.parse::<ImageRef>().unwrap();
        assert_eq!(
            endpoint_for(&img("reg.example:5000/a/b"), &o)
                .unwrap()
                .as_str(),
            "https://127.0.0.1:4443/mirror"
        );
        assert_eq!(
            endpoint_for(&img("quay.io/a/b"), &o).unwrap().as_str(),
            "https://quay.io/"
        );
        assert_eq!(
            endpoint_for(&img("nginx"), &o).unwrap().as_str(),
            "https://registry-1.docker.io/"
        );
        let base = endpoint_for(&img("reg.example:5000/a/b"), &o).unwrap();
        assert_eq!(
            join(&base, "v2/a/b").as_str(),
            "https://127.0.0.1:4443/mirror/v2/a/b"
        );
    }
}
