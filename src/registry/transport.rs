//! HTTP to registries: one reqwest client per run, with timeouts, the extra CA, and redirects
//! followed by hand.
//!
//! Why not `oci-client`'s client: it hides what the diagnosis needs. Its 401 carries no
//! status or challenge, its registry errors carry no HTTP status, it follows redirects
//! internally (so the host that served a blob is unknown and error URLs carry presigned
//! signatures), and it has no overall timeout. This layer keeps all of that visible and stays
//! small; the OCI wire types still come from `oci-client`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, LOCATION, RANGE};
use reqwest::{Response, Url};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::x509;

use crate::secret::Secret;

/// ECR answers blob requests with a 307 to S3; allow a short chain, like other clients.
const MAX_REDIRECTS: usize = 5;

/// Credentials for the registry origin.
#[derive(Debug, Clone)]
pub enum Auth {
    Anonymous,
    /// The base64 `user:password` of a Basic credential (ECR's authorization token as is).
    Basic(Secret<String>),
    Bearer(Secret<String>),
}

impl Auth {
    fn header(&self) -> Option<HeaderValue> {
        let v = match self {
            Auth::Anonymous => return None,
            Auth::Basic(b) => format!("Basic {}", b.expose()),
            Auth::Bearer(t) => format!("Bearer {}", t.expose()),
        };
        let mut h = HeaderValue::from_str(&v).ok()?;
        h.set_sensitive(true);
        Some(h)
    }

    pub fn scheme(&self) -> &'static str {
        match self {
            Auth::Anonymous => "anonymous",
            Auth::Basic(_) => "basic",
            Auth::Bearer(_) => "bearer",
        }
    }
}

/// Whether a failure happened at the registry itself or at a host it redirected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    Registry,
    Redirect,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {host}")]
    Connect {
        host: String,
        hop: Hop,
        #[source]
        source: reqwest::Error,
    },
    #[error("TLS with {host} failed: its certificate is not trusted")]
    Tls {
        host: String,
        hop: Hop,
        /// Whose certificate it was, as the verifier saw it before refusing it.
        presented: Option<super::x509::Names>,
        #[source]
        source: reqwest::Error,
    },
    #[error("{host} did not answer in time")]
    Timeout {
        host: String,
        hop: Hop,
        #[source]
        source: reqwest::Error,
    },
    /// Not HTTP the client accepts: a malformed status line or header, or a header block
    /// past hyper's caps (400 KiB of buffer, 100 headers), which bound what a hostile server
    /// can make the probe hold. Not retried: the same server sends the same answer.
    #[error(
        "{host} sent an answer that is not valid HTTP or is larger than accepted (a header block over 400 KiB or over 100 headers)"
    )]
    Malformed {
        host: String,
        hop: Hop,
        #[source]
        source: reqwest::Error,
    },
    #[error("request to {host} failed")]
    Other {
        host: String,
        hop: Hop,
        #[source]
        source: reqwest::Error,
    },
    #[error("{host} redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects { host: String },
    #[error("{host} sent a redirect without a usable Location")]
    BadRedirect { host: String },
    /// A redirect or token realm pointing somewhere a registry must not send us.
    #[error("{from} sent us to {to}, which is refused: {reason}")]
    RefusedHop {
        from: String,
        to: String,
        reason: &'static str,
    },
}

impl TransportError {
    pub fn host(&self) -> &str {
        match self {
            TransportError::Connect { host, .. }
            | TransportError::Tls { host, .. }
            | TransportError::Timeout { host, .. }
            | TransportError::Malformed { host, .. }
            | TransportError::Other { host, .. }
            | TransportError::TooManyRedirects { host }
            | TransportError::BadRedirect { host }
            | TransportError::RefusedHop { to: host, .. } => host,
        }
    }

    pub fn hop(&self) -> Hop {
        match self {
            TransportError::Connect { hop, .. }
            | TransportError::Tls { hop, .. }
            | TransportError::Timeout { hop, .. }
            | TransportError::Malformed { hop, .. }
            | TransportError::Other { hop, .. } => *hop,
            TransportError::RefusedHop { .. } => Hop::Redirect,
            _ => Hop::Registry,
        }
    }

    /// Classifies a reqwest error. The URL is stripped first: a presigned S3 URL carries a
    /// signature that must not reach logs or the report.
    fn classify(e: reqwest::Error, host: String, hop: Hop) -> Self {
        let e = e.without_url();
        // rustls' verdict reaches us wrapped in hyper and io errors with no typed path through
        // reqwest; its text ("invalid peer certificate: UnknownIssuer") is the stable part.
        if error_chain_mentions(&e, "certificate") {
            TransportError::Tls {
                host,
                hop,
                presented: None,
                source: e,
            }
        } else if e.is_timeout() {
            TransportError::Timeout {
                host,
                hop,
                source: e,
            }
        } else if hyper_error(&e).is_some_and(hyper::Error::is_parse) {
            TransportError::Malformed {
                host,
                hop,
                source: e,
            }
        } else if e.is_connect() {
            TransportError::Connect {
                host,
                hop,
                source: e,
            }
        } else {
            TransportError::Other {
                host,
                hop,
                source: e,
            }
        }
    }
}

/// hyper's own error inside reqwest's, where it says what was wrong with the answer.
fn hyper_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a hyper::Error> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return Some(h);
        }
        cur = e.source();
    }
    None
}

fn error_chain_mentions(e: &(dyn std::error::Error + 'static), needle: &str) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.to_string().to_ascii_lowercase().contains(needle) {
            return true;
        }
        cur = e.source();
    }
    false
}

/// `host[:port]` of a URL, as the report names hosts.
pub fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Whether a registry may send us from `origin` (the configured endpoint) to `next`, by a
/// redirect or a token realm. A registry is untrusted: without this rule it could make the
/// probe fetch instance metadata or a cluster-internal service and echo the answer into the
/// report (issue 15). The endpoint's own host is always allowed, whatever its address, since
/// the user chose it; any other host must be HTTPS and must not be a loopback, link-local or
/// unspecified address (where instance metadata and node-local services live). A name is
/// checked here only for what it says (`localhost`); what it resolves to is checked where
/// the client connects, by [`GuardedResolver`] (issue 23).
pub fn check_hop(origin: &Url, next: &Url) -> Result<(), &'static str> {
    let same_host = origin.host_str().is_some() && origin.host_str() == next.host_str();
    if next.scheme() != "https" && !(same_host && next.scheme() == "http") {
        return Err("only HTTPS may be followed to another host");
    }
    if same_host {
        if origin.scheme() == "https" && next.scheme() != "https" {
            return Err("a downgrade from HTTPS to plain HTTP");
        }
        return Ok(());
    }
    let internal = match next.host() {
        Some(url::Host::Ipv4(ip)) => internal_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => internal_ip(ip.into()),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => true,
    };
    if internal {
        return Err(REFUSED_INTERNAL);
    }
    Ok(())
}

const REFUSED_INTERNAL: &str =
    "a loopback, link-local or metadata address that is not the endpoint's own";
const REFUSED_RESOLVED: &str =
    "its name resolves only to loopback, link-local or metadata addresses";

/// Loopback, link-local, unspecified, or EC2's IPv6 instance metadata (`fd00:ec2::254`), also
/// as IPv4-mapped IPv6. Private ranges are not refused: an S3 or ECR interface endpoint with
/// private DNS resolves to them, and that is a real pull's path.
pub fn internal_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(ip) => ip.is_loopback() || ip.is_link_local() || ip.is_unspecified(),
        std::net::IpAddr::V6(ip) => {
            let mapped = ip
                .to_ipv4_mapped()
                .is_some_and(|v4| v4.is_loopback() || v4.is_link_local() || v4.is_unspecified());
            let imds = ip.segments()[..2] == [0xfd00, 0x0ec2];
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xffc0) == 0xfe80
                || mapped
                || imds
        }
    }
}

/// What of a name's addresses a hop may connect to: none of the [`internal_ip`] ones.
pub fn allowed_addrs(addrs: Vec<std::net::SocketAddr>) -> Vec<std::net::SocketAddr> {
    addrs.into_iter().filter(|a| !internal_ip(a.ip())).collect()
}

/// The client's resolver. Names a request was sent to first (a registry the image or
/// `--registry-endpoint` names: the user's choice, whatever its address) resolve as they
/// are; any other name (a redirect's, a token realm's) resolves to its addresses less the
/// [`internal_ip`] ones, and fails if none are left. The client connects to exactly what this
/// returns, so the address checked is the address used: no second lookup can rebind it.
#[derive(Debug, Default, Clone)]
struct GuardedResolver {
    /// Hosts requests were first sent to; as many as the run's registries.
    origins: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// A name that resolved only to addresses a hop may not use.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves only to loopback, link-local or metadata addresses")]
struct ResolvedInternal {
    name: String,
}

impl GuardedResolver {
    fn trust(&self, url: &Url) {
        if let Some(url::Host::Domain(d)) = url.host()
            && let Ok(mut o) = self.origins.lock()
        {
            o.insert(d.to_ascii_lowercase());
        }
    }

    fn trusted(&self, name: &str) -> bool {
        self.origins
            .lock()
            .is_ok_and(|o| o.contains(&name.to_ascii_lowercase()))
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let trusted = self.trusted(name.as_str());
        let name = name.as_str().to_string();
        Box::pin(async move {
            use std::net::ToSocketAddrs as _;
            let lookup = name.clone();
            // getaddrinfo blocks: off the runtime, as reqwest's own resolver does.
            let addrs: Vec<std::net::SocketAddr> =
                tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs())
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)??
                    .collect();
            let addrs = if trusted {
                addrs
            } else {
                let allowed = allowed_addrs(addrs);
                if allowed.is_empty() {
                    return Err(Box::new(ResolvedInternal { name }) as _);
                }
                allowed
            };
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a request failed because [`GuardedResolver`] refused the name's addresses.
fn refused_by_resolver(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.downcast_ref::<ResolvedInternal>().is_some() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A response and where it came from.
#[derive(Debug)]
pub struct Fetched {
    pub response: Response,
    /// The host that finally answered (the S3 bucket for an ECR blob).
    pub served_by: String,
    pub redirected: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportConfigError {
    #[error("cannot read CA file {path}")]
    ReadCa {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {path} holds no PEM certificate")]
    ParseCa { path: String },
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    #[error("cannot set up TLS")]
    Tls(#[source] rustls::Error),
}

#[derive(Debug, Clone)]
pub struct TransportConfig<'a> {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub ca_file: Option<&'a Path>,
    /// Requests per second to each host (`--registry-rate`); 0 for no cap.
    pub rate_per_second: u32,
}

#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    resolver: GuardedResolver,
    refused: Arc<Refused>,
    rate: Arc<super::rate::RateLimit>,
}

/// The certificates the verifier refused, by server name: a TLS failure reaches us as text
/// inside hyper's and reqwest's errors, without the certificate it was about.
#[derive(Debug, Default)]
struct Refused(Mutex<HashMap<String, x509::Names>>);

/// The platform's verifier (what reqwest uses: the system's roots plus `--ca-file`), noting
/// whose certificate it refused before refusing it, so `REGISTRY_TLS_UNTRUSTED` can say
/// "issued by Corp Inspection CA" instead of only "not trusted".
#[derive(Debug)]
struct RecordingVerifier {
    inner: rustls_platform_verifier::Verifier,
    refused: Arc<Refused>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if verdict.is_err()
            && let Some(names) = x509::names(end_entity)
            && let Ok(mut refused) = self.refused.0.lock()
        {
            refused.insert(server_name.to_str().into_owned(), names);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS configuration reqwest would build for `http1_only()` with extra roots (the
/// platform's verifier, every protocol version, ALPN `http/1.1`), with the recording verifier.
fn tls_config(
    extra_roots: Vec<CertificateDer<'static>>,
    refused: Arc<Refused>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let inner = if extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())?
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())?
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier { inner, refused }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Transport {
    pub fn new(cfg: &TransportConfig<'_>) -> Result<Self, TransportConfigError> {
        let b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            // HTTP/1.1: ECR's layers come from S3, which speaks nothing else, so this is the
            // path a real pull takes; and h2's 16 KiB DATA frames made a 200 MiB layer 35%
            // slower here (0.47 s vs 0.35 s, scripts/bench), window sizes notwithstanding.
            .http1_only()
            .user_agent(concat!("ecr-pull-probe/", env!("CARGO_PKG_VERSION")));
        let mut roots = Vec::new();
        if let Some(path) = cfg.ca_file {
            let pem = std::fs::read(path).map_err(|source| TransportConfigError::ReadCa {
                path: path.display().to_string(),
                source,
            })?;
            roots = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| TransportConfigError::ParseCa {
                    path: path.display().to_string(),
                })?;
        }
        let refused = Arc::new(Refused::default());
        let tls = tls_config(roots, refused.clone()).map_err(TransportConfigError::Tls)?;
        let resolver = GuardedResolver::default();
        let b = b
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(resolver.clone()));
        Ok(Transport {
            client: b.build().map_err(TransportConfigError::Build)?,
            resolver,
            refused,
            rate: Arc::new(super::rate::RateLimit::new(cfg.rate_per_second)),
        })
    }

    /// Whose certificate `host` presented, if the verifier refused one from it.
    fn refused_for(&self, host: &str) -> Option<x509::Names> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.refused.0.lock().ok()?.get(host).cloned()
    }

    /// GET `url`, following redirects. `auth` is sent only to the origin of `url`: a presigned
    /// S3 URL rejects a second auth mechanism, and the registry credential is not S3's business.
    pub async fn get(
        &self,
        url: Url,
        auth: &Auth,
        accept: Option<&str>,
    ) -> Result<Fetched, TransportError> {
        self.get_from(url, auth, accept, 0).await
    }

    /// GET a token realm, which [`check_hop`] allowed: its name is not an origin of ours, so
    /// it resolves under the same rule as a redirect's.
    pub async fn get_realm(
        &self,
        url: Url,
        auth: &Auth,
        sent_by: &Url,
    ) -> Result<Fetched, TransportError> {
        self.fetch(url, auth, None, 0, Some(host_of(sent_by))).await
    }

    /// [`Transport::get`] asking for the bytes from `from` on (`Range: bytes=from-`), sent on
    /// every hop: S3 honours a range on a presigned URL as the registry does on its own. The
    /// caller checks whether the answer is the rest (206) or the whole body again (200).
    pub async fn get_from(
        &self,
        url: Url,
        auth: &Auth,
        accept: Option<&str>,
        from: u64,
    ) -> Result<Fetched, TransportError> {
        self.fetch(url, auth, accept, from, None).await
    }

    async fn fetch(
        &self,
        url: Url,
        auth: &Auth,
        accept: Option<&str>,
        from: u64,
        // The registry that sent us here (a realm's); `None` for a request of our own, whose
        // host is then one of ours.
        sent_by: Option<String>,
    ) -> Result<Fetched, TransportError> {
        if sent_by.is_none() {
            self.resolver.trust(&url);
        }
        let origin = url.origin();
        let first = url.clone();
        let mut current = url;
        let mut previous = sent_by;
        for hop in 0..=MAX_REDIRECTS {
            let mut req = self.client.get(current.clone());
            if current.origin() == origin
                && let Some(h) = auth.header()
            {
                req = req.header(AUTHORIZATION, h);
            }
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if from > 0 {
                req = req.header(RANGE, format!("bytes={from}-"));
            }
            let kind = if hop == 0 {
                Hop::Registry
            } else {
                Hop::Redirect
            };
            self.rate.wait(&host_of(&current)).await;
            tracing::debug!(host = %host_of(&current), path = current.path(), "GET");
            let response = req.send().await.map_err(|e| {
                if refused_by_resolver(&e) {
                    return TransportError::RefusedHop {
                        from: previous.clone().unwrap_or_else(|| host_of(&first)),
                        to: host_of(&current),
                        reason: REFUSED_RESOLVED,
                    };
                }
                let mut e = TransportError::classify(e, host_of(&current), kind);
                if let TransportError::Tls { presented, .. } = &mut e {
                    *presented = current.host_str().and_then(|h| self.refused_for(h));
                }
                e
            })?;
            if response.status().is_redirection() {
                let next = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| current.join(l).ok())
                    .ok_or_else(|| TransportError::BadRedirect {
                        host: host_of(&current),
                    })?;
                check_hop(&first, &next).map_err(|reason| TransportError::RefusedHop {
                    from: host_of(&current),
                    to: host_of(&next),
                    reason,
                })?;
                tracing::debug!(from = %host_of(&current), to = %host_of(&next), status = response.status().as_u16(), "redirect");
                previous = Some(host_of(&current));
                current = next;
                continue;
            }
            return Ok(Fetched {
                served_by: host_of(&current),
                redirected: hop > 0,
                response,
            });
        }
        Err(TransportError::TooManyRedirects {
            host: host_of(&current),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn hops_to_https_hosts_are_followed_and_internal_or_plain_ones_refused() {
        let ecr = u("https://818140567777.dkr.ecr.us-east-1.amazonaws.com/v2/a/blobs/sha256:x");
        let s3 = u("https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/x");
        assert_eq!(check_hop(&ecr, &s3), Ok(()));
        for bad in [
            "http://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/x",
            "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://169.254.169.254/latest/meta-data/",
            "https://127.0.0.1:10250/pods",
            "https://127.0.0.2/",
            "https://[::1]/",
            "https://[fe80::1]/",
            "https://[fd00:ec2::254]/latest/meta-data/",
            "https://[::ffff:169.254.169.254]/",
            "https://0.0.0.0/",
            "https://localhost:8443/",
            "https://metrics.localhost/",
            "http://818140567777.dkr.ecr.us-east-1.amazonaws.com/v2/",
        ] {
            assert!(check_hop(&ecr, &u(bad)).is_err(), "{bad}");
        }
        // The user's own endpoint (the local stack, a mirror on loopback) stays usable,
        // including another port of the same host (its storage).
        let local = u("http://127.0.0.1:5000/v2/");
        assert_eq!(check_hop(&local, &u("http://127.0.0.1:5001/blob")), Ok(()));
        assert!(check_hop(&local, &u("http://127.0.0.2:5001/blob")).is_err());
        let tls_local = u("https://127.0.0.1:5000/v2/");
        assert!(check_hop(&tls_local, &u("http://127.0.0.1:5000/v2/")).is_err());
    }
}
