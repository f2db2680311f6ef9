//! The run: stages in order, each under the run's deadline, images concurrently (bounded)
//! with one set of credentials and one ECR token per region. Produces the [`Report`]; decides
//! nothing about exit codes or output format.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant as StdInstant;

use futures_util::StreamExt as _;
use futures_util::stream;
use tokio::time::{Instant, timeout_at};

use crate::aws::{self, AwsTimeouts};
use crate::canary::{self, CanaryError, CanaryRun, Pull};
use crate::cluster::{Cluster, ClusterError};
use crate::config::{Config, LayerMode};
use crate::diagnosis::{self, Code, RegistryContext};
use crate::ecr::{self, EcrToken, TokenKey};
use crate::identity::{self, CredentialMode, IdentityEnv};
use crate::pullsecret::{self, SecretSet};
use crate::reference::{HostForm, ImageRef};
use crate::registry::manifest::Descriptor;
use crate::registry::transport::{Transport, TransportConfig, TransportConfigError, host_of};
use crate::registry::{self, RegistryError, Session};
use crate::report::{
    self, BlobKind, BlobReport, CanaryPath, EcrRef, Finding, IdentityReport, ImageReport,
    ManifestReport, Paths, ReferenceReport, Report, SecretPath, Stage, Status, Tool, Verdict,
};
use crate::secret::Secret;
use crate::sts::{self, StsOutcome};

/// Layers fetched at once per image, like a container runtime's default.
const LAYER_CONCURRENCY: usize = 3;

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn ms(since: StdInstant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// What a stage's work returns: a value to carry on with (none when the stage failed), its
/// findings and the bytes it moved.
struct Outcome<T> {
    value: Option<T>,
    findings: Vec<Finding>,
    bytes: Option<u64>,
}

impl<T> Outcome<T> {
    fn ok(value: T, findings: Vec<Finding>, bytes: Option<u64>) -> Self {
        Outcome {
            value: Some(value),
            findings,
            bytes,
        }
    }

    fn failed(finding: Finding) -> Self {
        Outcome {
            value: None,
            findings: vec![finding],
            bytes: None,
        }
    }
}

/// Runs one stage under the deadline and records it. The value is handed on only when the
/// stage did not fail.
async fn stage<T>(
    name: &str,
    deadline: Instant,
    timeout_secs: f64,
    stages: &mut Vec<Stage>,
    work: impl Future<Output = Outcome<T>>,
) -> Option<T> {
    let start = StdInstant::now();
    let outcome = timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Outcome::failed(diagnosis::deadline_exceeded(name, timeout_secs)));
    let s = Stage::from_findings(name, ms(start), outcome.bytes, outcome.findings);
    let pass = s.status != Status::Fail;
    tracing::info!(stage = name, status = ?s.status, duration_ms = s.duration_ms, "stage done");
    stages.push(s);
    outcome.value.filter(|_| pass)
}

/// Records stages that did not run because an earlier one failed.
fn skip_rest(stages: &mut Vec<Stage>, names: &[&str]) {
    for n in names {
        if !stages.iter().any(|s| s.name == *n) {
            stages.push(Stage::skipped(n));
        }
    }
}

const IMAGE_STAGES: [&str; 5] = ["ecr_token", "registry_auth", "manifest", "config", "layers"];

/// Errors that stop the probe before it can check anything.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Transport(#[from] TransportConfigError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("the workload's image {image:?} is not a valid reference")]
    WorkloadImage {
        image: String,
        #[source]
        source: crate::reference::ReferenceError,
    },
    #[error("the Kubernetes API did not answer before the deadline")]
    ClusterDeadline,
    #[error("cannot read the docker config {path}")]
    DockerConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub async fn run(config: &Config) -> Result<Report, SetupError> {
    let started_at = time::OffsetDateTime::now_utc();
    let t0 = StdInstant::now();
    let deadline = Instant::now() + config.timeout;
    let timeout_secs = config.timeout.as_secs_f64();
    let transport = Transport::new(&TransportConfig {
        connect_timeout: config.connect_timeout,
        read_timeout: config.read_timeout,
        ca_file: config.ca_file.as_deref(),
    })?;

    // The workload a rollout will run, and the pull secrets its pods will carry.
    let mut images = config.images.clone();
    let mut secrets: Option<SecretSet> = None;
    let mut workload = None;
    let mut cluster = None;
    if let Some(r) = &config.images_from {
        let (c, w, set) = timeout_at(deadline, async {
            let cluster = Cluster::connect(config.namespace.as_deref()).await?;
            let w = cluster.workload(r).await?;
            let set = cluster.pull_secrets(&w, config.global_pull_secret).await;
            Ok::<_, ClusterError>((cluster, w, set))
        })
        .await
        .map_err(|_| SetupError::ClusterDeadline)??;
        for c in &w.containers {
            let image: ImageRef = c
                .image
                .parse()
                .map_err(|source| SetupError::WorkloadImage {
                    image: c.image.clone(),
                    source,
                })?;
            // The same pull written two ways (`nginx`, `docker.io/library/nginx:latest`) is
            // checked once.
            if !images.iter().any(|i| i.normalized() == image.normalized()) {
                images.push(image);
            }
        }
        secrets = Some(set);
        workload = Some(w);
        cluster = Some(c);
    }
    // A pull secret mounted as a file: unreadable is a configuration error; unparsable is a
    // finding, since it is what the kubelet would be given.
    if let Some(path) = &config.docker_config {
        let bytes = std::fs::read(path).map_err(|source| SetupError::DockerConfig {
            path: path.display().to_string(),
            source,
        })?;
        secrets
            .get_or_insert_with(SecretSet::default)
            .add(&path.display().to_string(), pullsecret::parse(&bytes));
    }

    // Stage 1: identity.
    let env = IdentityEnv::from_env();
    let mut id_stages = Vec::new();
    let inspection = identity::inspect(&env, unix_now());
    let token_ok = inspection.problems.is_empty();
    {
        let start = StdInstant::now();
        let findings = diagnosis::identity_findings(&env, &inspection);
        id_stages.push(Stage::from_findings(
            "web_identity_token",
            ms(start),
            None,
            findings,
        ));
    }

    // Stage 2: STS, only when an ECR image needs AWS credentials.
    let ecr_images: Vec<&ImageRef> = images.iter().filter(|i| i.ecr.is_some()).collect();
    let sts_outcome = if ecr_images.is_empty() || !token_ok {
        id_stages.push(Stage::skipped("sts"));
        None
    } else {
        let fallback_region = ecr_images[0].ecr.as_ref().map(|e| e.region.clone());
        let timeouts = AwsTimeouts {
            connect: config.connect_timeout,
            read: config.read_timeout,
            operation: config.timeout,
        };
        let claims = inspection.claims.as_ref();
        let role_arn = env.role_arn.as_deref();
        stage("sts", deadline, timeout_secs, &mut id_stages, async {
            let sdk = aws::load_sdk_config(fallback_region, timeouts).await;
            match sts::run(&sdk).await {
                Ok(o) => {
                    let skew = diagnosis::clock_skew(&o.endpoint, o.server_date, unix_now());
                    Outcome::ok(o, skew.into_iter().collect(), None)
                }
                Err(e) => {
                    let main = diagnosis::sts_findings(&e, claims, role_arn);
                    let skew = e
                        .failure()
                        .filter(|_| main.code != diagnosis::Code::CLOCK_SKEW)
                        .and_then(|a| {
                            diagnosis::clock_skew(&a.endpoint, a.server_date, unix_now())
                        });
                    let mut found = vec![main];
                    found.extend(skew);
                    Outcome {
                        value: None,
                        findings: found,
                        bytes: None,
                    }
                }
            }
        })
        .await
    };

    // Stage 3: one ECR token per (partition, region), fetched concurrently.
    let tokens = fetch_tokens(&ecr_images, sts_outcome.as_ref(), deadline, timeout_secs).await;

    // Stage 4: the images, a bounded number at a time, in the order given.
    let ctx = ImageCtx {
        config,
        transport: &transport,
        sts: sts_outcome.as_ref(),
        tokens: &tokens,
        pull_secrets: secrets.as_ref(),
        logins: registry::Logins::default(),
        deadline,
        timeout_secs,
    };
    // The canary runs beside the image checks; it mostly waits on the kubelet.
    let canary_until = deadline.min(Instant::now() + config.canary_timeout);
    // Only the workload's own images go into the canary: it runs under the workload's
    // ServiceAccount, and an image named only on the command line has no business there.
    let canary_images: Vec<ImageRef> = match &workload {
        Some(w) => images
            .iter()
            .filter(|i| w.containers.iter().any(|c| c.image == i.original))
            .cloned()
            .collect(),
        None => vec![],
    };
    let canary = async {
        match (&cluster, &workload) {
            (Some(c), Some(w)) if config.canary => Some(
                canary::run(
                    c,
                    w,
                    &canary_images,
                    config.canary_node.as_deref(),
                    canary_until,
                )
                .await,
            ),
            _ => None,
        }
    };
    // The futures are made up front, not by a closure inside the stream: a closure there
    // makes the whole run's future not provably `Send` (rust-lang/rust#102211), and serve
    // spawns it.
    let pending: Vec<_> = images.iter().map(|img| ctx.check(img)).collect();
    let checks = stream::iter(pending)
        .buffered(config.concurrency)
        .collect::<Vec<ImageReport>>();
    let (mut image_reports, canary) = tokio::join!(checks, canary);
    for (img, r) in images.iter().zip(image_reports.iter_mut()) {
        let in_canary = canary_images
            .iter()
            .position(|c| c.original == img.original);
        r.paths.kubelet_canary = canary
            .as_ref()
            .zip(in_canary)
            .map(|(c, i)| canary_path(c, i));
        finish_image(r);
    }

    let verdict = report::run_verdict(&id_stages, &image_reports);
    Ok(Report {
        schema_version: report::SCHEMA_VERSION.into(),
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        started_at: started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        duration_ms: ms(t0),
        verdict,
        identity: IdentityReport {
            mode: inspection.mode,
            role_arn: env.role_arn.clone(),
            token_file: (inspection.mode == CredentialMode::WebIdentity)
                .then(|| env.token_file.as_ref().map(|p| p.display().to_string()))
                .flatten(),
            token: inspection.claims,
            caller: sts_outcome.as_ref().map(|s| s.caller.clone()),
            credentials_expire_at: sts_outcome.as_ref().and_then(|s| s.credentials_expire_at),
            stages: id_stages,
        },
        workload,
        images: image_reports,
    })
}

/// The canary's answer for the image at `index`.
fn canary_path(run: &Result<CanaryRun, CanaryError>, index: usize) -> CanaryPath {
    match run {
        Err(e) => CanaryPath {
            status: Status::Skip,
            pod: String::new(),
            node: None,
            findings: vec![diagnosis::canary_inconclusive("", &crate::error_chain(e))],
        },
        Ok(run) => {
            let (status, findings) = match run.pulls.get(index) {
                Some(Pull::Pulled) => (Status::Pass, vec![]),
                Some(Pull::Failed { reason, message }) => (
                    Status::Fail,
                    vec![diagnosis::canary_pull_failed(
                        &run.pod,
                        run.node.as_deref(),
                        reason,
                        message,
                    )],
                ),
                Some(Pull::Inconclusive { reason }) => (
                    Status::Skip,
                    vec![diagnosis::canary_inconclusive(&run.pod, reason)],
                ),
                None => (Status::Skip, vec![]),
            };
            CanaryPath {
                status,
                pod: run.pod.clone(),
                node: run.node.clone(),
                findings,
            }
        }
    }
}

/// Settles an image once all its paths are in: the verdict, and one summary when the pod's
/// path and the kubelet's disagree.
fn finish_image(r: &mut ImageReport) {
    let pod = match r.paths.pod_identity {
        Status::Pass => Verdict::Pass,
        _ => Verdict::Fail,
    };
    r.findings
        .extend(diagnosis::paths_disagree(pod, r.paths.kubelet()));
    r.verdict = r.paths.verdict();
}

/// A token fetch, shared by the images of its region.
struct TokenResult {
    duration_ms: u64,
    result: Result<EcrToken, Finding>,
}

async fn fetch_tokens(
    images: &[&ImageRef],
    sts: Option<&StsOutcome>,
    deadline: Instant,
    timeout_secs: f64,
) -> BTreeMap<TokenKey, TokenResult> {
    let Some(sts) = sts else {
        return BTreeMap::new();
    };
    let mut keys: BTreeMap<TokenKey, bool> = BTreeMap::new();
    for e in images.iter().filter_map(|i| i.ecr.as_ref()) {
        let fips = matches!(e.form, HostForm::Fips | HostForm::DualStackFips);
        *keys
            .entry(TokenKey {
                partition: e.partition,
                region: e.region.clone(),
            })
            .or_default() |= fips;
    }
    let fetches = keys.into_iter().map(|(key, fips)| async move {
        let start = StdInstant::now();
        let result = match timeout_at(deadline, ecr::fetch(&sts.sdk, &key, fips)).await {
            Err(_) => Err(diagnosis::deadline_exceeded("ecr_token", timeout_secs)),
            Ok(Err(e)) => Err(diagnosis::ecr_token_finding(&e)),
            Ok(Ok(t)) => Ok(t),
        };
        (
            key,
            TokenResult {
                duration_ms: ms(start),
                result,
            },
        )
    });
    futures_util::future::join_all(fetches)
        .await
        .into_iter()
        .collect()
}

struct ImageCtx<'a> {
    config: &'a Config,
    transport: &'a Transport,
    sts: Option<&'a StsOutcome>,
    tokens: &'a BTreeMap<TokenKey, TokenResult>,
    pull_secrets: Option<&'a SecretSet>,
    /// One login per registry and credentials, shared by the images.
    logins: registry::Logins,
    deadline: Instant,
    timeout_secs: f64,
}

/// What the manifest stage hands on.
struct Pulled<'a> {
    session: Session<'a>,
    resolved: registry::Resolved,
}

impl<'a> ImageCtx<'a> {
    async fn check(&self, img: &ImageRef) -> ImageReport {
        let mut stages = Vec::new();
        let mut findings = Vec::new();
        let mut blobs = Vec::new();
        let mut manifest = None;
        let base = registry::endpoint_for(img, &self.config.registry_endpoints);
        let endpoint = base.as_ref().map(|u| u.to_string()).unwrap_or_default();
        let token = self.token_for(img);
        let token_info = token
            .and_then(|t| t.result.as_ref().ok())
            .map(|t| t.info.clone());

        self.pod_path(
            img,
            &base,
            token,
            &mut stages,
            &mut blobs,
            &mut manifest,
            &mut findings,
        )
        .await;
        skip_rest(&mut stages, &IMAGE_STAGES);
        let pod = report::image_verdict(&stages);
        let pull_secrets = match self.pull_secrets {
            Some(set) => Some(self.secret_path(img, &base, set).await),
            None => None,
        };

        if pod == Verdict::Pass && img.ecr.is_some() {
            findings.push(diagnosis::pod_identity_can_pull(
                img,
                self.sts.map(|s| &s.caller),
            ));
        }
        findings.extend(diagnosis::node_provider_host(img));
        let paths = Paths {
            pod_identity: match pod {
                Verdict::Pass => Status::Pass,
                _ => Status::Fail,
            },
            pull_secrets,
            kubelet_canary: None,
        };
        ImageReport {
            image: img.original.clone(),
            reference: ReferenceReport {
                written: img.original.clone(),
                normalized: img.normalized(),
                registry: img.registry.clone(),
                repository: img.repository.clone(),
                tag: img.tag.clone(),
                digest: img.digest.clone(),
                ecr: img.ecr.as_ref().map(|e| EcrRef {
                    account: e.account.clone(),
                    region: e.region.clone(),
                    partition: e.partition.to_string(),
                    host_form: report::wire_name(&e.form),
                }),
                endpoint,
            },
            ecr_token: token_info,
            manifest,
            blobs,
            stages,
            verdict: paths.verdict(),
            paths,
            findings,
        }
    }

    /// The pull-secret path: the matching entries in the kubelet's order, each tried with a
    /// real pull until one works.
    async fn secret_path(
        &self,
        img: &ImageRef,
        base: &Result<reqwest::Url, RegistryError>,
        set: &SecretSet,
    ) -> SecretPath {
        let mut path = SecretPath {
            status: Status::Fail,
            source: set.source(),
            entry: None,
            username: None,
            password_expires_at: None,
            stages: vec![],
            findings: set.findings.clone(),
        };
        let entries = &set.entries;
        let candidates = pullsecret::matching(entries, img);
        if candidates.is_empty() {
            path.findings.push(diagnosis::pull_secret_no_match(
                img,
                entries,
                pullsecret::other_region(entries, img),
            ));
            return path;
        }
        for entry in candidates {
            path.entry = Some(entry.key.clone());
            path.username = Some(entry.username.clone());
            path.password_expires_at = entry.ecr_password_expiration;
            if let Some(f) = diagnosis::pull_secret_expired(entry, unix_now()) {
                path.findings.push(f);
                continue;
            }
            let (mut stages, mut blobs, mut manifest) = (Vec::new(), Vec::new(), None);
            self.pull(
                img,
                base,
                Some(&entry.basic),
                &mut stages,
                &mut blobs,
                &mut manifest,
            )
            .await;
            skip_rest(&mut stages, &IMAGE_STAGES[1..]);
            let passed = report::image_verdict(&stages) == Verdict::Pass;
            path.stages = stages;
            if passed {
                path.status = Status::Pass;
                break;
            }
        }
        path
    }

    #[allow(clippy::too_many_arguments)]
    /// The pod-identity path: the shared ECR token, then the pull with it.
    #[allow(clippy::too_many_arguments)]
    async fn pod_path(
        &self,
        img: &ImageRef,
        base: &Result<reqwest::Url, RegistryError>,
        token: Option<&TokenResult>,
        stages: &mut Vec<Stage>,
        blobs: &mut Vec<BlobReport>,
        manifest: &mut Option<ManifestReport>,
        findings: &mut Vec<Finding>,
    ) {
        // ECR token: shared per region; a non-ECR registry gets none.
        let basic = match (&img.ecr, token) {
            (None, _) => {
                findings.push(diagnosis::not_ecr(img));
                stages.push(Stage::skipped("ecr_token"));
                None
            }
            // No credentials: the identity stages already say why.
            (Some(_), None) => return,
            (Some(_), Some(t)) => match &t.result {
                Ok(tok) => {
                    let mut warnings = diagnosis::ecr_token_warnings(&tok.info, unix_now());
                    warnings.extend(diagnosis::clock_skew(
                        &tok.info.api_endpoint,
                        tok.server_date,
                        unix_now(),
                    ));
                    stages.push(Stage::from_findings(
                        "ecr_token",
                        t.duration_ms,
                        None,
                        warnings,
                    ));
                    Some(&tok.authorization)
                }
                Err(f) => {
                    stages.push(Stage::from_findings(
                        "ecr_token",
                        t.duration_ms,
                        None,
                        vec![f.clone()],
                    ));
                    return;
                }
            },
        };

        self.pull(img, base, basic, stages, blobs, manifest).await;
    }

    /// The registry stages of one path: `/v2/` and login, manifest, config, layers.
    async fn pull(
        &self,
        img: &ImageRef,
        base: &Result<reqwest::Url, RegistryError>,
        basic: Option<&Secret<String>>,
        stages: &mut Vec<Stage>,
        blobs: &mut Vec<BlobReport>,
        manifest: &mut Option<ManifestReport>,
    ) {
        let (deadline, secs) = (self.deadline, self.timeout_secs);
        let base = match base {
            Ok(b) => b,
            Err(e) => {
                let ctx = self.diag_ctx(img, "", None);
                stages.push(Stage::from_findings(
                    "registry_auth",
                    0,
                    None,
                    vec![diagnosis::registry_finding(e, &ctx)],
                ));
                return;
            }
        };
        let registry_host = host_of(base);

        let Some(session) = stage("registry_auth", deadline, secs, stages, async {
            match self
                .logins
                .login(self.transport, base, &img.repository, basic)
                .await
            {
                Ok((session, check)) => {
                    let skew =
                        diagnosis::clock_skew(&check.served_by, check.server_date, unix_now());
                    Outcome::ok(session, skew.into_iter().collect(), None)
                }
                Err(e) => Outcome::failed(diagnosis::registry_finding(
                    &e,
                    &self.diag_ctx(img, &registry_host, None),
                )),
            }
        })
        .await
        else {
            return;
        };

        let Some(pulled) = stage("manifest", deadline, secs, stages, async {
            match session
                .resolve(img.manifest_reference(), &self.config.platform)
                .await
            {
                Ok(resolved) => {
                    let bytes = resolved.bytes;
                    Outcome::ok(Pulled { session, resolved }, vec![], Some(bytes))
                }
                Err(e) => {
                    let exists = if e.codes().contains(&"MANIFEST_UNKNOWN") {
                        session.repository_exists().await
                    } else {
                        None
                    };
                    let ctx = self.diag_ctx(img, &registry_host, exists);
                    let mut f = diagnosis::registry_finding(&e, &ctx);
                    // The registry's answer named no cause: ask the ECR API, which may.
                    if matches!(f.code, Code::REGISTRY_ERROR | Code::REGISTRY_DENIED)
                        && let Some(api) = self.image_failure(img).await
                    {
                        f = api.with("registry_finding", f.summary);
                    }
                    Outcome::failed(f)
                }
            }
        })
        .await
        else {
            return;
        };
        let r = &pulled.resolved;
        *manifest = Some(ManifestReport {
            digest: r.digest.clone(),
            media_type: r.media_type.clone(),
            index_digest: r.index_digest.clone(),
            index_media_type: r.index_media_type.clone(),
            platform: r.platform.clone(),
            available_platforms: r.available_platforms.clone(),
        });

        let config_ok = stage("config", deadline, secs, stages, async {
            let (report, finding) = self
                .pull_blob(
                    &pulled.session,
                    &r.config,
                    BlobKind::Config,
                    img,
                    &registry_host,
                )
                .await;
            let bytes = report.bytes;
            blobs.push(report);
            match finding {
                None => Outcome::ok((), vec![], Some(bytes)),
                Some(f) => Outcome::failed(f),
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
                .map(|d| self.pull_blob(&pulled.session, d, BlobKind::Layer, img, &registry_host))
                .collect();
            let results: Vec<(BlobReport, Option<Finding>)> = stream::iter(pending)
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

    /// The shared token fetch for an ECR image's (partition, region).
    fn token_for(&self, img: &ImageRef) -> Option<&'a TokenResult> {
        let e = img.ecr.as_ref()?;
        self.tokens.get(&TokenKey {
            partition: e.partition,
            region: e.region.clone(),
        })
    }

    fn diag_ctx<'b>(
        &'b self,
        img: &'b ImageRef,
        registry_host: &'b str,
        repository_exists: Option<bool>,
    ) -> RegistryContext<'b> {
        let token = self
            .token_for(img)
            .and_then(|t| t.result.as_ref().ok())
            .map(|t| &t.info);
        RegistryContext {
            image: img,
            registry_host,
            caller: self.sts.map(|s| &s.caller),
            token,
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
    ) -> (BlobReport, Option<Finding>) {
        let p = session.pull_blob(d).await;
        let finding = p
            .result
            .as_ref()
            .err()
            .map(|e| diagnosis::registry_finding(e, &self.diag_ctx(img, registry_host, None)));
        (
            BlobReport {
                kind,
                digest: d.digest.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                status: if finding.is_some() {
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
