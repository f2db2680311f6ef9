//! Stage 4, registry pull: the `/v2/` challenge, a login check, the manifest (an index resolved
//! to one platform), the config blob and the layers, each verified while it streams.
//!
//! Every function here does I/O and returns typed results; turning a failure into a finding
//! with a cause and a fix is the diagnosis module's job.

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
pub use self::error::{ErrorEntry, RegistryError, Request};
pub use self::session::{BlobPull, Resolved, Session};

use reqwest::Url;
use serde::Deserialize;

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
        RegistryError::Manifest(ManifestError::Invalid(format!(
            "registry {:?} does not form a URL",
            image.resolved_registry
        )))
    })
}

fn join(base: &Url, path: &str) -> Url {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        b.set_path(&format!("{}/", b.path()));
    }
    b.join(path).unwrap_or(b)
}

async fn status_error(request: Request, fetched: Fetched) -> RegistryError {
    let status = fetched.response.status().as_u16();
    let challenge = fetched
        .response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let retry_after = fetched
        .response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
    let body = read_capped(fetched.response, 16 << 10)
        .await
        .unwrap_or_default();
    #[derive(Deserialize)]
    struct Envelope {
        errors: Vec<ErrorEntry>,
    }
    let errors = serde_json::from_slice::<Envelope>(&body)
        .map(|e| e.errors)
        .unwrap_or_default();
    let text = if errors.is_empty() {
        String::from_utf8_lossy(&body).chars().take(300).collect()
    } else {
        String::new()
    };
    RegistryError::Status {
        request,
        status,
        host: fetched.served_by,
        errors,
        challenge,
        body: text.trim().to_string(),
        retry_after,
    }
}

/// Reads a whole body, refusing more than `limit` bytes. `Ok(None)` means over the limit.
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
