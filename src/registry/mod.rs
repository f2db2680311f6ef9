//! Stage 4, registry pull: the `/v2/` challenge, a login check, the manifest (an index resolved
//! to one platform), the config blob and the layers, each verified while it streams.
//!
//! Every function here does I/O and returns typed results; turning a failure into a finding
//! with a cause and a fix is the diagnosis module's job.

pub mod blob;
pub mod manifest;
pub mod rate;
pub mod retry;
pub mod transport;
pub mod x509;

use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;

use self::blob::{Verifier, VerifyError};
use self::manifest::{Descriptor, Manifest, ManifestError, Platform};
use self::transport::{Auth, Fetched, Transport, TransportError, host_of};
use crate::reference::ImageRef;
use crate::secret::Secret;

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

/// What the `/v2/` exchange showed.
#[derive(Debug, Clone)]
pub struct AuthCheck {
    /// Status of the unauthenticated `/v2/` (ECR: 401 with a Basic challenge).
    pub anonymous_status: u16,
    pub challenge: Option<String>,
    pub scheme: &'static str,
    /// The registry's `Date` header, Unix seconds.
    pub server_date: Option<i64>,
    pub served_by: String,
}

/// An authenticated conversation with one repository.
pub struct Session<'a> {
    transport: &'a Transport,
    base: Url,
    repository: String,
    auth: Auth,
}

/// Parses `Bearer realm="…",service="…"` into (scheme, params).
pub fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let v = v.trim_start();
        let (value, tail) = if let Some(q) = v.strip_prefix('"') {
            quoted_string(q)
        } else {
            // A token ends at the comma; the white space before it is the list's, not the value's.
            let (value, tail) = v.split_once(',').unwrap_or((v, ""));
            (value.trim_end_matches([' ', '\t']).to_string(), tail)
        };
        params.push((k.trim().to_ascii_lowercase(), value));
        rest = tail.trim_start_matches([',', ' ']);
    }
    (scheme.to_ascii_lowercase(), params)
}

/// RFC 7230's `quoted-string` after its opening quote: the value with each quoted-pair
/// (`\"`, `\\`) unescaped, and what follows the closing quote (nothing if it never closes).
fn quoted_string(q: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = q.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &q[i + 1..]),
            '\\' => value.extend(chars.next().map(|(_, c)| c)),
            c => value.push(c),
        }
    }
    (value, "")
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

fn server_date(r: &reqwest::Response) -> Option<i64> {
    let v = r.headers().get(reqwest::header::DATE)?.to_str().ok()?;
    let t = httpdate::parse_http_date(v).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// The `/v2/` challenge, then credentials: the ECR token as Basic when there is one, an
/// anonymous Bearer token when the registry asks for one, nothing otherwise. With credentials,
/// `/v2/` is asked again to prove they open the registry before any manifest is requested.
pub async fn login<'a>(
    transport: &'a Transport,
    base: &Url,
    repository: &str,
    basic: Option<&Secret<String>>,
) -> Result<(Session<'a>, AuthCheck), RegistryError> {
    let (session, check, _) = login_timed(transport, base, repository, basic).await?;
    Ok((session, check))
}

/// [`login`], and for a Bearer token how long the registry said it is good for.
async fn login_timed<'a>(
    transport: &'a Transport,
    base: &Url,
    repository: &str,
    basic: Option<&Secret<String>>,
) -> Result<(Session<'a>, AuthCheck, Option<Duration>), RegistryError> {
    let v2 = join(base, "v2/");
    let first = transport.get(v2.clone(), &Auth::Anonymous, None).await?;
    let anonymous_status = first.response.status().as_u16();
    let date = server_date(&first.response);
    let challenge = first
        .response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let served_by = first.served_by.clone();
    drop(first);
    // A Bearer registry (Docker Hub, GHCR, Quay, Harbor) wants the token exchange first, with
    // the credentials sent to its realm, as docker and containerd do; a Basic one (ECR) takes
    // them on every request.
    let (auth, bearer_for) = match (basic, &challenge) {
        (_, Some(c)) if anonymous_status == 401 && parse_challenge(c).0 == "bearer" => {
            let (token, expires_in) = bearer_token(transport, base, c, repository, basic).await?;
            (token, Some(expires_in))
        }
        (Some(b), _) => (Auth::Basic(b.clone()), None),
        _ => (Auth::Anonymous, None),
    };
    if let Auth::Basic(_) = auth {
        let second = transport.get(v2, &auth, None).await?;
        if !second.response.status().is_success() {
            return Err(status_error(Request::Login, second).await);
        }
    }
    let check = AuthCheck {
        anonymous_status,
        challenge,
        scheme: auth.scheme(),
        server_date: date,
        served_by,
    };
    Ok((
        Session {
            transport,
            base: base.clone(),
            repository: repository.to_string(),
            auth,
        },
        check,
        bearer_for,
    ))
}

/// A Bearer token's life when the registry does not say (the token spec's default).
const BEARER_DEFAULT_LIFE: Duration = Duration::from_secs(60);

/// Until when a login made at `now` is trusted without asking `/v2/` again: a Bearer token
/// for half its `expires_in`; a Basic or anonymous one for `keep` (`None`: for as long as the
/// [`Logins`] lives, i.e. one run).
fn login_until(
    auth: &Auth,
    now: std::time::Instant,
    bearer_for: Option<Duration>,
    keep: Option<Duration>,
) -> Option<std::time::Instant> {
    match auth {
        Auth::Bearer(_) => Some(now + bearer_for.unwrap_or(BEARER_DEFAULT_LIFE) / 2),
        _ => keep.map(|k| now + k),
    }
}

/// Logins shared by the images of one run: one `/v2/` challenge and one credential check per
/// (endpoint, credentials), not one per image (16 images made 32 requests and about 55 ms each
/// on the local stack). Only a success is shared: an image whose login failed tries again on
/// its own, so every failure in the report is that image's own. A Bearer token is scoped to
/// one repository, so it is shared only with images of that repository.
///
/// `serve --watch` keeps one across runs ([`Logins::across_runs`]): a Bearer token is then
/// reused until half its `expires_in`, a Basic login for a bounded time (the ECR token behind
/// it is itself replaced at half its life, and a new token is a new key), and a pull that
/// fails after a reused login forgets it ([`Logins::forget`]), so the retry logs in afresh.
#[derive(Default)]
pub struct Logins {
    cells: std::sync::Mutex<std::collections::HashMap<LoginKey, LoginCell>>,
    /// How long a Basic or anonymous login is trusted; `None`: as long as this value lives.
    keep: Option<Duration>,
}

/// (endpoint URL, digest of the credentials or empty for none)
type LoginKey = (String, String);
type LoginCell = std::sync::Arc<tokio::sync::OnceCell<Shared>>;

#[derive(Clone)]
struct Shared {
    repository: String,
    auth: Auth,
    check: AuthCheck,
    until: Option<std::time::Instant>,
}

impl Logins {
    /// Logins kept across runs, a Basic or anonymous one for `keep` at most.
    pub fn across_runs(keep: Duration) -> Logins {
        Logins {
            keep: Some(keep),
            ..Default::default()
        }
    }

    /// The credentials as a key: a digest, so the map holds no secret.
    fn key(base: &Url, basic: Option<&Secret<String>>) -> LoginKey {
        let who = basic.map_or_else(String::new, |b| blob::sha256_digest(b.expose().as_bytes()));
        (base.to_string(), who)
    }

    /// Drops the login of `base` with `basic`, so the next pull asks `/v2/` again.
    pub fn forget(&self, base: &Url, basic: Option<&Secret<String>>) {
        self.cells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Self::key(base, basic));
    }

    pub async fn login<'a>(
        &self,
        transport: &'a Transport,
        base: &Url,
        repository: &str,
        basic: Option<&Secret<String>>,
    ) -> Result<(Session<'a>, AuthCheck), RegistryError> {
        let now = std::time::Instant::now();
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            // Logins past their time go (one being made stays), and with them the keys of
            // ECR tokens replaced since.
            cells.retain(|_, c| c.get().is_none_or(|s| s.until.is_none_or(|u| now < u)));
            cells.entry(Self::key(base, basic)).or_default().clone()
        };
        let shared = cell
            .get_or_try_init(|| async {
                let (session, check, bearer_for) =
                    login_timed(transport, base, repository, basic).await?;
                Ok::<_, RegistryError>(Shared {
                    repository: repository.to_string(),
                    until: login_until(&session.auth, now, bearer_for, self.keep),
                    auth: session.auth,
                    check,
                })
            })
            .await?;
        if matches!(shared.auth, Auth::Bearer(_)) && shared.repository != repository {
            return login(transport, base, repository, basic).await;
        }
        Ok((
            Session {
                transport,
                base: base.clone(),
                repository: repository.to_string(),
                auth: shared.auth.clone(),
            },
            shared.check.clone(),
        ))
    }
}

/// The token exchange of Docker Hub, Quay, GHCR and other Bearer registries: a pull-scoped
/// token from the challenge's realm, anonymous or with the Basic credentials of a pull secret
/// (the distribution token spec's "Requesting a Token").
async fn bearer_token(
    transport: &Transport,
    base: &Url,
    challenge: &str,
    repository: &str,
    basic: Option<&Secret<String>>,
) -> Result<(Auth, Duration), RegistryError> {
    let (_, params) = parse_challenge(challenge);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let realm = get("realm").and_then(|r| Url::parse(r).ok());
    let Some(mut url) = realm else {
        return Ok((Auth::Anonymous, BEARER_DEFAULT_LIFE));
    };
    // The realm is the registry's word: the same rule as for its redirects.
    transport::check_hop(base, &url).map_err(|reason| TransportError::RefusedHop {
        from: host_of(base),
        to: host_of(&url),
        reason,
    })?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = get("service") {
            q.append_pair("service", s);
        }
        q.append_pair("scope", &format!("repository:{repository}:pull"));
    }
    let host = host_of(&url);
    let auth = basic.map_or(Auth::Anonymous, |b| Auth::Basic(b.clone()));
    let fetched = transport.get_realm(url, &auth, base).await?;
    if !fetched.response.status().is_success() {
        return Err(status_error(Request::Token, fetched).await);
    }
    #[derive(Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let unusable = |reason| RegistryError::TokenFormat {
        host: host.clone(),
        reason,
    };
    // Registry tokens are a few KiB (Docker Hub's JWTs, ECR's are ~2 KiB): 64 KiB is generous.
    let body = read_capped(fetched.response, 64 << 10)
        .await
        .ok_or_else(|| unusable("the answer is larger than the 64 KiB accepted"))?;
    let answer = serde_json::from_slice::<TokenResponse>(&body)
        .map_err(|_| unusable("the answer is not JSON with a `token` or `access_token`"))?;
    let life = answer
        .expires_in
        .map_or(BEARER_DEFAULT_LIFE, Duration::from_secs);
    let token = answer
        .token
        .or(answer.access_token)
        .ok_or_else(|| unusable("the answer is not JSON with a `token` or `access_token`"))?;
    Ok((Auth::Bearer(Secret::new(token)), life))
}

fn join(base: &Url, path: &str) -> Url {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        b.set_path(&format!("{}/", b.path()));
    }
    b.join(path).unwrap_or(b)
}

/// The manifest a runtime would run, and how it was reached.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Digest of the platform-specific image manifest.
    pub digest: String,
    pub media_type: String,
    /// The index or manifest list the tag pointed to, if any.
    pub index_digest: Option<String>,
    pub index_media_type: Option<String>,
    pub available_platforms: Vec<String>,
    pub platform: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub bytes: u64,
}

/// One blob fetch, successful or not.
#[derive(Debug)]
pub struct BlobPull {
    pub served_by: Option<String>,
    pub redirected: bool,
    /// The byte a `Range` request resumed this try at, when the server honoured it.
    pub resumed_at: Option<u64>,
    /// A `Range` was asked for and the answer was the whole blob (or not the rest asked for),
    /// so it was verified from its first byte again.
    pub restarted: bool,
    pub bytes: u64,
    pub elapsed: Duration,
    pub result: Result<(), RegistryError>,
}

impl Session<'_> {
    /// `<base>/v2/<repository>/<kind>/<reference>`, built segment by segment so that no part
    /// can add a segment, a query or a `..` (each is percent-encoded as one segment). Callers
    /// have already checked `reference` against the tag or digest grammar.
    fn url(&self, kind: &str, reference: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push("v2")
                .extend(self.repository.split('/'))
                .push(kind)
                .push(reference);
        }
        url
    }

    /// Fetches a manifest body, capped, checking its digest when one was asked for.
    async fn manifest(&self, reference: &str) -> Result<(Manifest, String, u64), RegistryError> {
        let fetched = self
            .transport
            .get(
                self.url("manifests", reference),
                &self.auth,
                Some(manifest::ACCEPT),
            )
            .await?;
        if !fetched.response.status().is_success() {
            return Err(status_error(Request::Manifest, fetched).await);
        }
        let content_type = fetched
            .response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_capped(fetched.response, manifest::MAX_MANIFEST_BYTES)
            .await
            .ok_or(RegistryError::ManifestTooLarge {
                limit: manifest::MAX_MANIFEST_BYTES,
            })?;
        // A manifest asked for by digest (the user's, or an index entry's) must be exactly
        // those bytes: an index entry is a promise about its child.
        let digest = match blob::parse_digest(reference) {
            Ok(algo) => {
                let actual = blob::digest_of(algo, &body);
                if actual != reference {
                    return Err(RegistryError::ManifestDigestMismatch {
                        expected: reference.to_string(),
                        actual,
                    });
                }
                actual
            }
            Err(_) if reference.contains(':') => {
                return Err(
                    ManifestError::BadDigest(blob::VerifyError::UnsupportedDigest(
                        reference.to_string(),
                    ))
                    .into(),
                );
            }
            Err(_) => blob::sha256_digest(&body),
        };
        let parsed = manifest::parse(content_type.as_deref(), &body)?;
        Ok((parsed, digest, body.len() as u64))
    }

    /// Resolves `reference` to an image manifest for `platform`, through an index if needed.
    pub async fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<Resolved, RegistryError> {
        let (top, top_digest, top_bytes) = self.manifest(reference).await?;
        match top {
            Manifest::Image {
                media_type,
                config,
                layers,
            } => Ok(Resolved {
                digest: top_digest,
                media_type,
                index_digest: None,
                index_media_type: None,
                available_platforms: vec![],
                platform: None,
                config,
                layers,
                bytes: top_bytes,
            }),
            Manifest::Index {
                media_type: index_type,
                entries,
            } => {
                // Platform names are the registry's text: 1,024 entries of 3.8 KB `os` values
                // made an 11.7 MB report (issue 23), so both lists are capped (select's too).
                let entry = manifest::select(&entries, platform).map_err(|available| {
                    RegistryError::PlatformNotFound {
                        wanted: platform.to_string(),
                        available,
                    }
                })?;
                let available_platforms = crate::bounds::list(
                    entries
                        .iter()
                        .filter_map(|e| e.platform.as_ref().map(ToString::to_string)),
                );
                let (child, digest, bytes) = self.manifest(&entry.descriptor.digest).await?;
                let Manifest::Image {
                    media_type,
                    config,
                    layers,
                } = child
                else {
                    return Err(ManifestError::Invalid(
                        "an index entry points to another index".into(),
                    )
                    .into());
                };
                Ok(Resolved {
                    digest,
                    media_type,
                    index_digest: Some(top_digest),
                    index_media_type: Some(index_type),
                    available_platforms,
                    platform: entry.platform.as_ref().map(ToString::to_string),
                    config,
                    layers,
                    bytes: top_bytes + bytes,
                })
            }
        }
    }

    /// Tells a missing repository from a missing tag after `MANIFEST_UNKNOWN`: the tag list of a
    /// missing repository answers `NAME_UNKNOWN`. `None` when the registry will not say.
    pub async fn repository_exists(&self) -> Option<bool> {
        let mut url = self.url("tags", "list");
        url.set_query(Some("n=1"));
        let fetched = self.transport.get(url, &self.auth, None).await.ok()?;
        if fetched.response.status().is_success() {
            return Some(true);
        }
        match status_error(Request::Manifest, fetched).await {
            e if e.codes().contains(&"NAME_UNKNOWN") => Some(false),
            _ => None,
        }
    }

    /// Streams one blob through its verifier; nothing is stored.
    ///
    /// `resume` carries a broken-off try's verifier (the hash of the bytes it received) into
    /// the next: that try asks for the rest with `Range`, and only a 206 whose `Content-Range`
    /// starts where the bytes stopped continues the hash; anything else (a 200: the server
    /// ignored the range) is verified from the first byte again. Either way the digest and size
    /// are checked over the whole blob, so a resumed pull proves what a whole one does.
    pub async fn pull_blob(&self, desc: &Descriptor, resume: &mut Option<Verifier>) -> BlobPull {
        let start = Instant::now();
        let mut served_by = None;
        let mut redirected = false;
        let mut resumed_at = None;
        let mut restarted = false;
        let mut bytes = 0;
        let result = async {
            // Checked before anything is requested: a hostile digest never becomes a URL.
            let fresh =
                Verifier::new(&desc.digest, desc.size).map_err(|source| RegistryError::Verify {
                    digest: desc.digest.clone(),
                    host: host_of(&self.base),
                    source,
                })?;
            let from = resume.as_ref().map_or(0, Verifier::received);
            let fetched = self
                .transport
                .get_from(self.url("blobs", &desc.digest), &self.auth, None, from)
                .await?;
            served_by = Some(fetched.served_by.clone());
            redirected = fetched.redirected;
            if !fetched.response.status().is_success() {
                return Err(status_error(Request::Blob, fetched).await);
            }
            let mut verifier = match resume.take() {
                Some(v) if from > 0 && continues_at(&fetched.response, from) => {
                    resumed_at = Some(from);
                    v
                }
                _ => {
                    restarted = from > 0;
                    fresh
                }
            };
            let host = fetched.served_by;
            let mut response = fetched.response;
            let verify_err = |source| RegistryError::Verify {
                digest: desc.digest.clone(),
                host: host.clone(),
                source,
            };
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        verifier.update(&chunk).map_err(verify_err)?;
                        bytes = verifier.received();
                    }
                    Ok(None) => break,
                    Err(source) => {
                        let received = verifier.received();
                        *resume = Some(verifier);
                        return Err(RegistryError::Interrupted {
                            digest: desc.digest.clone(),
                            host: host.clone(),
                            received,
                            expected: desc.size,
                            source: source.without_url(),
                        });
                    }
                }
            }
            verifier.finish().map(|_| ()).map_err(verify_err)
        }
        .await;
        BlobPull {
            served_by,
            redirected,
            resumed_at,
            restarted,
            bytes,
            elapsed: start.elapsed(),
            result,
        }
    }
}

/// Whether `response` is the rest of a blob from byte `from`: a 206 whose `Content-Range` is
/// `bytes from-…` (RFC 9110 §14.4). A 200 is the whole blob; any other range is not ours.
fn continues_at(response: &reqwest::Response, from: u64) -> bool {
    response.status() == reqwest::StatusCode::PARTIAL_CONTENT
        && response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split_once('-'))
            .and_then(|(first, _)| first.trim().parse::<u64>().ok())
            == Some(from)
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_trusted_for_half_a_bearer_tokens_life_or_the_time_given() {
        let now = Instant::now();
        let bearer = Auth::Bearer(Secret::new("t".into()));
        let basic = Auth::Basic(Secret::new("QVdTOng=".into()));
        let h = Duration::from_secs(3600);
        assert_eq!(
            login_until(&bearer, now, Some(Duration::from_secs(300)), Some(h)),
            Some(now + Duration::from_secs(150)),
            "half of expires_in, whatever the Basic time"
        );
        assert_eq!(
            login_until(&bearer, now, None, None),
            Some(now + Duration::from_secs(30)),
            "expires_in absent: the spec's 60 s"
        );
        assert_eq!(login_until(&basic, now, None, Some(h)), Some(now + h));
        assert_eq!(
            login_until(&Auth::Anonymous, now, None, Some(h)),
            Some(now + h)
        );
        assert_eq!(login_until(&basic, now, None, None), None, "one run");
    }

    #[test]
    fn parses_challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(
            p,
            vec![
                (
                    "realm".to_string(),
                    "https://auth.docker.io/token".to_string()
                ),
                ("service".to_string(), "registry.docker.io".to_string()),
            ]
        );
        let (s, p) = parse_challenge(
            r#"Basic realm="https://818140567777.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
        );
        assert_eq!(s, "basic");
        assert_eq!(
            p[1],
            ("service".to_string(), "ecr.amazonaws.com".to_string())
        );
        assert_eq!(parse_challenge("Basic").0, "basic");
        let (_, p) = parse_challenge("Bearer realm=unquoted, scope=x");
        assert_eq!(p[0].1, "unquoted");
        assert_eq!(p[1].1, "x");
    }

    /// Found by `challenge_round_trips`: a quoted-pair (`\"`, `\\`) ended or kept its backslash,
    /// and a token value kept the white space before the next comma.
    #[test]
    fn proptest_regression_challenge_quoted_pairs_and_list_white_space() {
        let (_, p) = parse_challenge(r#"A _="\\""#);
        assert_eq!(p, vec![("_".to_string(), "\\".to_string())]);
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token?x=\"y\"",service=registry , scope="repository:a:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(
            p,
            vec![
                (
                    "realm".to_string(),
                    r#"https://auth.example/token?x="y""#.to_string()
                ),
                ("service".to_string(), "registry".to_string()),
                ("scope".to_string(), "repository:a:pull".to_string()),
            ]
        );
    }

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
