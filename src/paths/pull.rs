//! The one real pull every credential path ends in: `/v2/` and login, the manifest (an index
//! resolved to the platform), the config and the layers, streamed and verified. A path
//! differs only in the credentials it brings and in how its findings name them.

use futures_util::StreamExt as _;
use futures_util::stream;
use tokio::time::Instant;

use super::{Credentials, Outcome, REGISTRY_STAGES, skip_rest, stage, unix_now};
use crate::config::{Config, LayerMode};
use crate::diagnosis::{self, Code, RegistryContext};
use crate::ecr::{self, TokenKey};
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
#[derive(Debug, Default)]
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
    pub deadline: Instant,
    pub timeout_secs: f64,
}

/// What the manifest stage hands on.
struct Pulled<'a> {
    session: Session<'a>,
    resolved: registry::Resolved,
}

impl Puller<'_> {
    /// The registry stages of one path with `basic` (`user:password`, base64) credentials.
    pub async fn pull(
        &self,
        img: &ImageRef,
        basic: Option<&Secret<String>>,
        credentials: Credentials<'_>,
    ) -> PullResult {
        let mut out = PullResult::default();
        self.pull_into(img, basic, credentials, &mut out).await;
        skip_rest(&mut out.stages, &REGISTRY_STAGES);
        // A failed pull leaves no login to be trusted: the next one (a retry, another image)
        // asks `/v2/` again, so a kept login never hides credentials that stopped working.
        if !out.passed()
            && let Ok(base) = registry::endpoint_for(img, &self.config.registry_endpoints)
        {
            self.logins.forget(&base, basic);
        }
        out
    }

    async fn pull_into(
        &self,
        img: &ImageRef,
        basic: Option<&Secret<String>>,
        credentials: Credentials<'_>,
        out: &mut PullResult,
    ) {
        let (deadline, secs) = (self.deadline, self.timeout_secs);
        let stages = &mut out.stages;
        let base = match registry::endpoint_for(img, &self.config.registry_endpoints) {
            Ok(b) => b,
            Err(e) => {
                let ctx = self.diag_ctx(img, "", None, credentials);
                stages.push(Stage::from_findings(
                    "registry_auth",
                    0,
                    None,
                    vec![diagnosis::registry_finding(&e, &ctx)],
                ));
                return;
            }
        };
        let registry_host = host_of(&base);

        let Some(session) = stage("registry_auth", deadline, secs, stages, async {
            let (result, causes) = with_retries(&self.retry, deadline, || {
                self.logins
                    .login(self.transport, &base, &img.repository, basic)
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
                    &self.diag_ctx(img, &registry_host, None, credentials),
                ))
                .and(retried),
            }
        })
        .await
        else {
            return;
        };

        let Some(pulled) = stage("manifest", deadline, secs, stages, async {
            let (result, causes) = with_retries(&self.retry, deadline, || {
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
                    let exists = if e.codes().contains(&"MANIFEST_UNKNOWN") {
                        session.repository_exists().await
                    } else {
                        None
                    };
                    let ctx = self.diag_ctx(img, &registry_host, exists, credentials);
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
        else {
            return;
        };
        let r = &pulled.resolved;
        out.manifest = Some(ManifestReport {
            digest: r.digest.clone(),
            media_type: r.media_type.clone(),
            index_digest: r.index_digest.clone(),
            index_media_type: r.index_media_type.clone(),
            platform: r.platform.clone(),
            available_platforms: r.available_platforms.clone(),
        });
        let blobs = &mut out.blobs;

        let config_ok = stage("config", deadline, secs, stages, async {
            let (report, found) = self
                .pull_blob(
                    &pulled.session,
                    &r.config,
                    BlobKind::Config,
                    img,
                    &registry_host,
                    credentials,
                )
                .await;
            let bytes = report.bytes;
            blobs.push(report);
            if report::any_error(&found) {
                Outcome {
                    value: None,
                    findings: found,
                    bytes: Some(bytes),
                }
            } else {
                Outcome::ok((), found, Some(bytes))
            }
        })
        .await;
        if config_ok.is_none() {
            return;
        }

        let layers: Vec<&Descriptor> = match self.config.layers {
            LayerMode::All => r.layers.iter().collect(),
            LayerMode::Smallest => r.layers.iter().min_by_key(|l| l.size).into_iter().collect(),
            LayerMode::None => {
                stages.push(Stage::skipped("layers"));
                return;
            }
        };
        stage("layers", deadline, secs, stages, async {
            let pending: Vec<_> = layers
                .into_iter()
                .map(|d| {
                    self.pull_blob(
                        &pulled.session,
                        d,
                        BlobKind::Layer,
                        img,
                        &registry_host,
                        credentials,
                    )
                })
                .collect();
            let results: Vec<(BlobReport, Vec<Finding>)> = stream::iter(pending)
                .buffered(LAYER_CONCURRENCY)
                .collect()
                .await;
            let bytes = results.iter().map(|(b, _)| b.bytes).sum();
            let mut found = Vec::new();
            for (b, f) in results {
                blobs.push(b);
                found.extend(f);
            }
            Outcome::ok((), found, Some(bytes))
        })
        .await;
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
        let failure = ecr::image_failure(
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
        credentials: Credentials<'b>,
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
        img: &ImageRef,
        registry_host: &str,
        credentials: Credentials<'_>,
    ) -> (BlobReport, Vec<Finding>) {
        let (p, causes) = self.pull_blob_retrying(session, d).await;
        let finding: Vec<Finding> = p
            .result
            .as_ref()
            .err()
            .map(|e| {
                diagnosis::registry_finding(
                    e,
                    &self.diag_ctx(img, registry_host, None, credentials),
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
