//! The one real pull every credential path ends in: `/v2/` and login, the manifest (an index
//! resolved to the platform), the config and the layers, streamed and verified. A path
//! differs only in the credentials it brings and in how its findings name them.

use futures_util::StreamExt as _;
use futures_util::stream;
use tokio::time::Instant;

use super::{CredentialsUsed, Outcome, REGISTRY_STAGES, stage, stage_any, unix_now, with_skipped};
use crate::config::{Config, LayerMode};
use crate::diagnosis::{self, Code, RegistryContext};
use crate::ecr_token::{self, TokenKey};
use crate::reference::ImageRef;
use crate::registry::manifest::Descriptor;
use crate::registry::retry::{self, RetryPolicy, with_retries};
use crate::registry::transport::{Transport, host_of};
use crate::registry::{self, Session};
use crate::report::{self, BlobKind, BlobReport, Finding, ManifestReport, Stage, Status, Verdict};
use crate::secret::Secret;
use crate::sts::StsOutcome;

/// Layers fetched at once per image, like a container runtime's default.
const LAYER_CONCURRENCY: usize = 3;

/// What one pull produced.
#[derive(Debug, Clone, Default)]
pub struct PullResult {
    pub stages: Vec<Stage>,
    pub blobs: Vec<BlobReport>,
    pub manifest: Option<ManifestReport>,
}

impl PullResult {
    pub fn passed(&self) -> bool {
        report::image_verdict(&self.stages) == Verdict::Pass
    }
}

/// What the pulls of a run share: settings, the HTTP transport, one login per registry and
/// credentials, the run's deadline, and the pod's AWS session (for the ECR API's second
/// opinion when a registry's answer names no cause).
pub struct Puller<'a> {
    pub config: &'a Config,
    /// How transient registry failures are retried.
    pub retry: RetryPolicy,
    pub transport: &'a Transport,
    pub sts: Option<&'a StsOutcome>,
    /// The run's logins; in watch mode, kept across runs.
    pub logins: &'a registry::Logins,
    /// Clean passes shared by every path and pull secret with the same credentials; in
    /// watch mode for an interval, otherwise none.
    pub shared: &'a super::SharedPulls,
    pub deadline: Instant,
    pub timeout_secs: f64,
}

/// What the manifest stage hands on.
struct Pulled<'a> {
    session: Session<'a>,
    resolved: registry::Resolved,
}

/// Where one pull's stages reach the registry, and whose credentials they carry.
#[derive(Clone, Copy)]
struct Target<'a> {
    img: &'a ImageRef,
    /// The host of the registry's endpoint, for findings.
    host: &'a str,
    credentials: CredentialsUsed<'a>,
}

impl Puller<'_> {
    /// The registry stages of one path with `basic` (`user:password`, base64) credentials:
    /// the pull shared with another path or Secret with the same bytes while it is fresh
    /// (watch mode), else a pull of its own.
    pub async fn pull(
        &self,
        img: &ImageRef,
        basic: Option<&Secret<String>>,
        credentials: CredentialsUsed<'_>,
    ) -> PullResult {
        self.shared
            .get_or_pull(img, basic, self.pull_own(img, basic, credentials))
            .await
    }

    /// One real pull.
    async fn pull_own(
        &self,
        img: &ImageRef,
        basic: Option<&Secret<String>>,
        credentials: CredentialsUsed<'_>,
    ) -> PullResult {
        let ran = self.pull_stages(img, basic, credentials).await;
        let out = PullResult {
            stages: with_skipped(ran.stages, &REGISTRY_STAGES),
            ..ran
        };
        // A failed pull leaves no login to be trusted: the next one (a retry, another image)
        // asks `/v2/` again, so a kept login never hides credentials that stopped working.
        if !out.passed()
            && let Ok(base) = registry::endpoint_for(img, &self.config.registry_endpoints)
        {
            self.logins.forget(&base, basic);
        }
        out
    }

    /// The stages in order until one fails: login, manifest, config, layers.
    async fn pull_stages(
        &self,
        img: &ImageRef,
        basic: Option<&Secret<String>>,
        credentials: CredentialsUsed<'_>,
    ) -> PullResult {
        let mut out = PullResult::default();
        let base = match registry::endpoint_for(img, &self.config.registry_endpoints) {
            Ok(b) => b,
            Err(e) => {
                let ctx = self.diag_ctx(img, "", None, credentials);
                out.stages.push(Stage::from_findings(
                    "registry_auth",
                    0,
                    None,
                    vec![diagnosis::registry_finding(&e, &ctx)],
                ));
                return out;
            }
        };
        let host = host_of(&base);
        let at = Target {
            img,
            host: &host,
            credentials,
        };

        let (s, session) = self.login_stage(at, &base, basic).await;
        out.stages.push(s);
        let Some(session) = session else {
            return out;
        };
        let (s, pulled) = self.manifest_stage(at, session).await;
        out.stages.push(s);
        let Some(pulled) = pulled else {
            return out;
        };
        let r = &pulled.resolved;
        out.manifest = Some(manifest_report(r));

        let (s, config) = stage_any("config", self.deadline, self.timeout_secs, async {
            let (report, found) = self
                .pull_blob(&pulled.session, &r.config, BlobKind::Config, at)
                .await;
            let bytes = report.bytes;
            Outcome::ok(vec![report], found, Some(bytes))
        })
        .await;
        let config_ok = s.status != Status::Fail;
        out.stages.push(s);
        out.blobs.extend(config.into_iter().flatten());
        if !config_ok {
            return out;
        }

        let layers: Vec<&Descriptor> = match self.config.layers {
            LayerMode::All => r.layers.iter().collect(),
            LayerMode::Smallest => r.layers.iter().min_by_key(|l| l.size).into_iter().collect(),
            LayerMode::None => {
                out.stages.push(Stage::skipped("layers"));
                return out;
            }
        };
        let (s, blobs) = self.layers_stage(at, &pulled.session, layers).await;
        out.stages.push(s);
        out.blobs.extend(blobs.into_iter().flatten());
        out
    }

    /// `registry_auth`: `/v2/` and the login, retried while the failure is transient.
    async fn login_stage<'s>(
        &'s self,
        at: Target<'_>,
        base: &reqwest::Url,
        basic: Option<&Secret<String>>,
    ) -> (Stage, Option<Session<'s>>) {
        stage("registry_auth", self.deadline, self.timeout_secs, async {
            let (result, causes) = with_retries(&self.retry, self.deadline, || {
                self.logins
                    .login(self.transport, base, &at.img.repository, basic)
            })
            .await;
            let retried = diagnosis::registry_retried(&causes);
            match result {
                Ok((session, check)) => {
                    let skew =
                        diagnosis::clock_skew(&check.served_by, check.server_date, unix_now());
                    Outcome::ok(session, skew.into_iter().chain(retried).collect(), None)
                }
                Err(e) => Outcome::failed(diagnosis::registry_finding(
                    &e,
                    &self.diag_ctx(at.img, at.host, None, at.credentials),
                ))
                .and(retried),
            }
        })
        .await
    }

    /// `manifest`: the manifest, an index resolved to the platform; a failure the registry
    /// names no cause for is put to the ECR API.
    async fn manifest_stage<'s>(
        &self,
        at: Target<'_>,
        session: Session<'s>,
    ) -> (Stage, Option<Pulled<'s>>) {
        let img = at.img;
        stage("manifest", self.deadline, self.timeout_secs, async {
            let (result, causes) = with_retries(&self.retry, self.deadline, || {
                session.resolve(img.manifest_reference(), &self.config.platform)
            })
            .await;
            let retried = diagnosis::registry_retried(&causes);
            match result {
                Ok(resolved) => {
                    let bytes = resolved.bytes;
                    Outcome::ok(
                        Pulled { session, resolved },
                        retried.into_iter().collect(),
                        Some(bytes),
                    )
                }
                Err(e) => {
                    let exists = if e.has_code(&registry::ErrorCode::ManifestUnknown) {
                        session.repository_exists().await
                    } else {
                        None
                    };
                    let ctx = self.diag_ctx(img, at.host, exists, at.credentials);
                    let mut f = diagnosis::registry_finding(&e, &ctx);
                    // The registry's answer named no cause: ask the ECR API, which may.
                    if matches!(f.code, Code::REGISTRY_ERROR | Code::REGISTRY_DENIED)
                        && let Some(api) = self.image_failure(img).await
                    {
                        f = api.with("registry_finding", f.summary);
                    }
                    Outcome::failed(f).and(retried)
                }
            }
        })
        .await
    }

    /// `layers`: the layers [`LAYER_CONCURRENCY`] at a time, each verified as it streams.
    async fn layers_stage(
        &self,
        at: Target<'_>,
        session: &Session<'_>,
        layers: Vec<&Descriptor>,
    ) -> (Stage, Option<Vec<BlobReport>>) {
        stage_any("layers", self.deadline, self.timeout_secs, async {
            let pending: Vec<_> = layers
                .into_iter()
                .map(|d| self.pull_blob(session, d, BlobKind::Layer, at))
                .collect();
            let results: Vec<(BlobReport, Vec<Finding>)> = stream::iter(pending)
                .buffered(LAYER_CONCURRENCY)
                .collect()
                .await;
            let bytes = results.iter().map(|(b, _)| b.bytes).sum();
            let (blobs, found): (Vec<BlobReport>, Vec<Vec<Finding>>) = results.into_iter().unzip();
            Outcome::ok(blobs, found.into_iter().flatten().collect(), Some(bytes))
        })
        .await
    }

    /// A blob pull, retried as [`with_retries`] retries. A try that broke off hands its
    /// verifier to the next, which asks for the rest with `Range` (see
    /// [`registry::Session::pull_blob`]); each cause says whether the rest was resumed or the
    /// whole blob fetched again.
    async fn pull_blob_retrying(
        &self,
        session: &Session<'_>,
        d: &Descriptor,
    ) -> (registry::BlobPull, Vec<String>) {
        let mut causes: Vec<String> = Vec::new();
        let mut attempt = 1;
        let mut resume = None;
        loop {
            let p = session.pull_blob(d, &mut resume).await;
            if let Some(last) = causes.last_mut() {
                if let Some(at) = p.resumed_at {
                    last.push_str(&format!("; resumed at byte {at} with a range request"));
                } else if p.restarted {
                    last.push_str(
                        "; the range request was not honoured, so the whole blob was fetched again",
                    );
                }
            }
            let cause = p.result.as_ref().err().and_then(retry::transient);
            let asked = p.result.as_ref().err().and_then(retry::retry_after);
            match cause {
                Some(cause) if attempt < self.retry.attempts => {
                    let wait = retry::backoff(&self.retry, attempt, asked);
                    if tokio::time::Instant::now() + wait >= self.deadline {
                        return (p, causes);
                    }
                    causes.push(retry::waited(cause, wait, asked.is_some()));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return (p, causes),
            }
        }
    }

    async fn image_failure(&self, img: &ImageRef) -> Option<Finding> {
        let (sts, e) = (self.sts?, img.ecr.as_ref()?);
        let key = TokenKey {
            partition: e.partition,
            region: e.region.clone(),
        };
        let failure = ecr_token::image_failure(
            &sts.sdk,
            &key,
            &img.repository,
            img.tag.as_deref(),
            img.digest.as_deref(),
        )
        .await?;
        diagnosis::ecr_image_failure(&failure, img)
    }

    fn diag_ctx<'b>(
        &self,
        img: &'b ImageRef,
        registry_host: &'b str,
        repository_exists: Option<bool>,
        credentials: CredentialsUsed<'b>,
    ) -> RegistryContext<'b> {
        RegistryContext {
            image: img,
            registry_host,
            credentials,
            repository_exists,
        }
    }

    async fn pull_blob(
        &self,
        session: &Session<'_>,
        d: &Descriptor,
        kind: BlobKind,
        at: Target<'_>,
    ) -> (BlobReport, Vec<Finding>) {
        let (p, causes) = self.pull_blob_retrying(session, d).await;
        let finding: Vec<Finding> = p
            .result
            .as_ref()
            .err()
            .map(|e| {
                diagnosis::registry_finding(
                    e,
                    &self.diag_ctx(at.img, at.host, None, at.credentials),
                )
            })
            .into_iter()
            .chain(diagnosis::registry_retried(&causes))
            .collect();
        (
            BlobReport {
                kind,
                digest: d.digest.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                status: if p.result.is_err() {
                    Status::Fail
                } else {
                    Status::Pass
                },
                bytes: p.bytes,
                served_by: p.served_by,
                redirected: p.redirected,
                duration_ms: p.elapsed.as_millis() as u64,
            },
            finding,
        )
    }
}

/// The report of the manifest a pull resolved.
fn manifest_report(r: &registry::Resolved) -> ManifestReport {
    ManifestReport {
        digest: r.digest.clone(),
        media_type: r.media_type.clone(),
        index_digest: r.index_digest.clone(),
        index_media_type: r.index_media_type.clone(),
        platform: r.platform.clone(),
        available_platforms: r.available_platforms.clone(),
    }
}
