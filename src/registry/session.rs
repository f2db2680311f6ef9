//! An authenticated conversation with one repository: the manifest (an index resolved to one
//! platform) and the blobs, each verified while it streams.

use std::time::{Duration, Instant};

use reqwest::Url;

use super::blob::{self, Verifier};
use super::manifest::{self, Descriptor, Manifest, ManifestError, Platform};
use super::transport::{Auth, Transport, host_of};
use super::{ErrorCode, RegistryError, Request, read_capped, read_error};

/// An authenticated conversation with one repository (made by a login, in `auth`).
pub struct Session<'a> {
    pub(super) transport: &'a Transport,
    pub(super) base: Url,
    pub(super) repository: String,
    pub(super) auth: Auth,
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
            return Err(read_error(Request::Manifest, fetched).await.into());
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
                    ManifestError::BadDigest(blob::VerifyError::UnsupportedDigest {
                        digest: reference.to_string(),
                    })
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
                    return Err(ManifestError::Invalid {
                        reason: "an index entry points to another index".into(),
                    }
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
        read_error(Request::Manifest, fetched)
            .await
            .has(&ErrorCode::NameUnknown)
            .then_some(false)
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
                return Err(read_error(Request::Blob, fetched).await.into());
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
