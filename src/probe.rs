//! The run, orchestrated: set up what the paths need (the workload and its pull secrets, the
//! node's credential provider), resolve the pod's identity (token, STS, one ECR token per
//! region), then check every image on every credential path ([`crate::paths`]) a bounded
//! number at a time, with the canary beside them. Produces the [`Report`]; decides nothing
//! about exit codes or output format.

use std::collections::BTreeMap;
use std::time::Instant as StdInstant;

use futures_util::StreamExt as _;
use futures_util::stream;
use tokio::time::{Instant, timeout_at};

use crate::aws::{self, AwsTimeouts};
use crate::cluster::{Cluster, ClusterError};
use crate::config::Config;
use crate::credential_provider::config as provider_config;
use crate::diagnosis;
use crate::ecr_token::TokenKey;
use crate::identity::{self, CredentialMode, IdentityEnv};
use crate::paths::kubelet::{self, SourceRows};
use crate::paths::node_provider::{self, NodeProviderSetup, ServiceAccountInput};
use crate::paths::pod_identity::{self, TokenResult};
use crate::paths::{CredentialsUsed, Outcome, Puller, canary, ms, pull_secrets, stage};
use crate::pullsecret::{self, SecretSet};
use crate::reference::ImageRef;
use crate::registry;
use crate::registry::retry::RetryPolicy;
use crate::registry::transport::{Transport, TransportConfig, TransportConfigError};
use crate::report::{
    self, CredentialSource, EcrRef, IdentityReport, ImageReport, KubeletAnswer, KubeletStatus,
    NodeProviderPath, Paths, ReferenceReport, Report, RetryPolicyReport, SecretPath, Stage, Status,
    Tool, Verdict,
};
use crate::secret::Secret;
use crate::sts::{self, StsOutcome};

pub use crate::paths::unix_now;

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
    #[error("cannot read the node's docker config {path}")]
    NodeDockerConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the docker config {path}")]
    DockerConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the ServiceAccount token file {path}")]
    ServiceAccountToken {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Longest ServiceAccount token file read (a JWT is a few KiB).
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// The registry transport a run's settings ask for.
fn transport_for(config: &Config) -> Result<Transport, TransportConfigError> {
    Transport::new(&TransportConfig {
        connect_timeout: config.connect_timeout,
        read_timeout: config.read_timeout,
        ca_file: config.ca_file.as_deref(),
        rate_per_second: config.registry_rate,
    })
}

/// What `serve --watch` keeps from one run to the next: ECR tokens until half their life and
/// registry logins (a Bearer token until half its life, a Basic login for [`KEEP_LOGIN`]), so
/// that a run inside that time asks neither the ECR API nor `/v2/` again. A single run starts
/// with an empty one.
pub struct Reuse {
    pub tokens: pod_identity::TokenCache,
    pub logins: registry::Logins,
    /// Which images the ECR API was asked about after a failure, so that it is asked once
    /// per image per run, and in watch mode once per image per interval.
    pub asked: crate::ecr_api::Asked,
    /// Clean passes shared by every path with the same credentials (watch: per interval).
    pub pulls: crate::paths::SharedPulls,
    pub watch: bool,
}

/// How long a Basic login is trusted in watch mode: half an ECR token's 12 h. Every request
/// still carries the credentials, and a failed pull forgets its login.
pub const KEEP_LOGIN: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

impl Reuse {
    /// For one run only.
    pub fn one_run() -> Reuse {
        Reuse {
            tokens: pod_identity::TokenCache::default(),
            logins: registry::Logins::default(),
            asked: crate::ecr_api::Asked::default(),
            pulls: crate::paths::SharedPulls::none(),
            watch: false,
        }
    }

    /// Kept across the runs of `serve --watch`, which checks every `interval` (a failing
    /// image sooner: its ECR API questions still wait for the interval).
    pub fn across_runs(interval: std::time::Duration) -> Reuse {
        Reuse {
            tokens: pod_identity::TokenCache::default(),
            logins: registry::Logins::across_runs(KEEP_LOGIN),
            asked: crate::ecr_api::Asked::every(interval),
            pulls: crate::paths::SharedPulls::for_interval(interval),
            watch: true,
        }
    }
}

pub async fn run(config: &Config) -> Result<Report, SetupError> {
    let started_at = time::OffsetDateTime::now_utc();
    let t0 = StdInstant::now();
    let deadline = Instant::now() + config.timeout;
    let transport = transport_for(config)?;

    // The workload a rollout will run, and the pull secrets its pods will carry.
    let mut images = config.images.clone();
    let mut secrets: Option<SecretSet> = None;
    let mut node_config: Option<SecretSet> = None;
    let mut workload = None;
    let mut cluster = None;
    if let Some(r) = &config.images_from {
        let from = from_workload(config, r, deadline).await?;
        // OpenShift's global pull secret is what the node's file holds: node-wide config.
        if let Some((source, parsed)) = from.global {
            node_config
                .get_or_insert_with(SecretSet::default)
                .add(&source, parsed);
        }
        for image in from.images {
            // The same pull written two ways (`nginx`, `docker.io/library/nginx:latest`) is
            // checked once.
            if !images.iter().any(|i| i.normalized() == image.normalized()) {
                images.push(image);
            }
        }
        // A pod with no pull secrets has no pull-secret path (as in `serve --watch`).
        secrets = (!from.secrets.is_empty()).then_some(from.secrets);
        workload = Some(from.workload);
        cluster = Some(from.cluster);
    }
    // A pull secret mounted as a file: unreadable is a configuration error; unparsable is a
    // finding, since it is what the kubelet would be given.
    if let Some(path) = &config.docker_config {
        let bytes = read_docker_config(path).map_err(|source| SetupError::DockerConfig {
            path: path.display().to_string(),
            source,
        })?;
        secrets
            .get_or_insert_with(SecretSet::default)
            .add(&path.display().to_string(), pullsecret::parse(&bytes));
    }
    let mut node_config_known = true;
    if let Some(path) = &config.node_docker_config {
        let set = node_config.get_or_insert_with(SecretSet::default);
        node_config_known =
            add_node_docker_config(set, path).map_err(|source| SetupError::NodeDockerConfig {
                path: path.display().to_string(),
                source,
            })?;
    }

    let items: Vec<(&ImageRef, Option<&SecretSet>)> =
        images.iter().map(|i| (i, secrets.as_ref())).collect();
    let run = RunSetup {
        started_at,
        t0,
        deadline,
        workload,
        cluster,
        node_config,
        node_config_known,
    };
    checked(config, &transport, run, &items, &Reuse::one_run()).await
}

/// What `--images-from` read through the API: the workload, its images, its pull secrets,
/// and OpenShift's global pull secret when asked for.
struct FromWorkload {
    cluster: Cluster,
    workload: crate::report::Workload,
    images: Vec<ImageRef>,
    secrets: SecretSet,
    global: Option<(
        String,
        Result<Vec<pullsecret::Entry>, pullsecret::Malformed>,
    )>,
}

async fn from_workload(
    config: &Config,
    r: &crate::cluster::WorkloadRef,
    deadline: Instant,
) -> Result<FromWorkload, SetupError> {
    let (cluster, workload, secrets, global) = timeout_at(deadline, async {
        let cluster = Cluster::connect(config.namespace.as_deref()).await?;
        let w = cluster.workload(r).await?;
        let set = cluster.pull_secrets(&w).await;
        let global = match config.global_pull_secret {
            true => cluster.global_pull_secret().await,
            false => None,
        };
        Ok::<_, ClusterError>((cluster, w, set, global))
    })
    .await
    .map_err(|_| SetupError::ClusterDeadline)??;
    let mut images = Vec::with_capacity(workload.containers.len());
    for c in &workload.containers {
        let image = c
            .image
            .parse()
            .map_err(|source| SetupError::WorkloadImage {
                image: c.image.clone(),
                source,
            })?;
        images.push(image);
    }
    Ok(FromWorkload {
        cluster,
        workload,
        images,
        secrets,
        global,
    })
}

/// The node-wide file into `set`: absent is a node without one (EKS); one this pod may not
/// read (root's 0600) leaves that source unknown (false); any other error is ours to fix.
fn add_node_docker_config(set: &mut SecretSet, path: &std::path::Path) -> std::io::Result<bool> {
    let name = path.display().to_string();
    match read_docker_config(path) {
        Ok(bytes) => {
            let format = match path.file_name().and_then(|n| n.to_str()) {
                Some(".dockercfg") => pullsecret::Format::Dockercfg,
                _ => pullsecret::Format::ConfigJson,
            };
            set.add(&name, pullsecret::parse_as(&bytes, format));
            if node_docker_config_replaced(path) {
                set.findings
                    .push(diagnosis::node_docker_config_replaced(&name));
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            set.findings
                .push(diagnosis::node_docker_config_absent(&name));
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            set.findings
                .push(diagnosis::node_docker_config_unreadable(&name));
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Whether the file at `path` was replaced on the host after it was mounted here: a bind
/// mount of one file keeps the inode it was made with, and an atomic rename over the host's
/// path (how the machine-config daemon and nodeadm write) leaves that inode with no name, so
/// its link count is 0. What is read through the mount is then the old content.
pub fn node_docker_config_replaced(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.nlink() == 0)
}

/// A docker config file, read no further than the parser accepts (plus one byte, so an
/// oversized file is named as such): a mounted file is outside input too.
fn read_docker_config(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(pullsecret::MAX_DOCKER_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `serve --watch`: one run over images each with its own pull secrets (those of the
/// workloads that use it), with one identity resolution, one ECR token per region and one
/// node provider setup for them all, and the tokens and logins `reuse` keeps from earlier
/// runs. `images` of the report are in the order of `items`.
pub async fn run_checks(
    config: &Config,
    items: &[(ImageRef, Option<std::sync::Arc<SecretSet>>)],
    reuse: &Reuse,
) -> Result<Report, SetupError> {
    let started_at = time::OffsetDateTime::now_utc();
    let t0 = StdInstant::now();
    let deadline = Instant::now() + config.timeout;
    let transport = transport_for(config)?;
    let items: Vec<(&ImageRef, Option<&SecretSet>)> =
        items.iter().map(|(i, s)| (i, s.as_deref())).collect();
    let run = RunSetup {
        started_at,
        t0,
        deadline,
        workload: None,
        cluster: None,
        node_config: None,
        node_config_known: true,
    };
    checked(config, &transport, run, &items, reuse).await
}

/// What a run has set up before its identity and its images.
struct RunSetup {
    started_at: time::OffsetDateTime,
    t0: StdInstant,
    deadline: Instant,
    workload: Option<crate::report::Workload>,
    cluster: Option<Cluster>,
    /// The node-wide docker config, when the run was given one.
    node_config: Option<SecretSet>,
    /// False when it was given but this pod may not read it.
    node_config_known: bool,
}

/// The identity, then every image on every path, into the report.
async fn checked(
    config: &Config,
    transport: &Transport,
    run: RunSetup,
    items: &[(&ImageRef, Option<&SecretSet>)],
    reuse: &Reuse,
) -> Result<Report, SetupError> {
    let images: Vec<ImageRef> = items.iter().map(|(i, _)| (*i).clone()).collect();
    // Stage 1: identity.
    let env = IdentityEnv::from_env();
    let inspection = identity::inspect(&env, unix_now());
    let token_stage = token_stage(&env, &inspection);
    // The node's credential provider, read as the kubelet reads it at start.
    let node = node_setup(config, &run, &inspection).await?;
    // Stage 2: STS, only when an ECR image needs AWS credentials.
    let ecr_images: Vec<&ImageRef> = images.iter().filter(|i| i.ecr.is_some()).collect();
    let (sts_stage, sts) = match ecr_images.first() {
        Some(first) if inspection.problems.is_empty() => {
            let fallback_region = first.ecr.as_ref().map(|e| e.region.clone());
            sts_stage(config, &env, &inspection, fallback_region, run.deadline).await
        }
        _ => (Stage::skipped("sts"), None),
    };
    let identity = Identity {
        env,
        inspection,
        stages: vec![token_stage, sts_stage],
        sts,
    };

    // Stage 3: one ECR token per (partition, region), fetched concurrently.
    let tokens = pod_identity::fetch_tokens(
        &ecr_images,
        identity.sts.as_ref(),
        run.deadline,
        config.timeout.as_secs_f64(),
        &reuse.tokens,
    )
    .await;

    // Stage 4: the images on every path, a bounded number at a time, in the order given.
    let ctx = ImageCtx {
        puller: Puller {
            config,
            retry: RetryPolicy::default(),
            transport,
            sts: identity.sts.as_ref(),
            logins: &reuse.logins,
            shared: &reuse.pulls,
            deadline: run.deadline,
            timeout_secs: config.timeout.as_secs_f64(),
        },
        tokens: &tokens,
        node: node.as_ref(),
        node_config: run.node_config.as_ref(),
        node_config_known: run.node_config_known,
        canary: config.canary,
        reuse,
    };
    // Only the workload's own images go into the canary: it runs under the workload's
    // ServiceAccount, and an image named only on the command line has no business there.
    let canary_images: Vec<ImageRef> = match &run.workload {
        Some(w) => images
            .iter()
            .filter(|i| w.containers.iter().any(|c| c.image == i.original))
            .cloned()
            .collect(),
        None => vec![],
    };
    // The canary runs beside the image checks; it mostly waits on the kubelet.
    let (image_reports, canary) = tokio::join!(
        ctx.check_all(items),
        run_canary(config, &run, node.as_ref(), &canary_images)
    );
    let settle = Settle {
        config,
        node: node.as_ref(),
        // The node's image cache (KEP-2535), read once; small files, bounded in count and
        // size.
        node_cache: config
            .kubelet_cache
            .as_ref()
            .map(|(dir, cfg)| crate::node_cache::load(dir, cfg.as_deref())),
        workload: run.workload.as_ref(),
        canary: canary.as_ref(),
        canary_images: &canary_images,
    };
    let image_reports = images
        .iter()
        .zip(image_reports)
        .enumerate()
        .map(|(i, (img, r))| settle.image(r, img, i == 0))
        .collect();
    let retry = ctx.puller.retry;
    Ok(report_of(config, run, identity, image_reports, &retry))
}

/// Who the pod is: its environment, its token as read, stages 1 and 2, and the STS answer
/// when there was one.
struct Identity {
    env: IdentityEnv,
    inspection: identity::IdentityInspection,
    stages: Vec<Stage>,
    sts: Option<StsOutcome>,
}

impl Identity {
    fn report(self) -> IdentityReport {
        let Identity {
            env,
            inspection,
            stages,
            sts,
        } = self;
        IdentityReport {
            mode: inspection.mode,
            token_file: (inspection.mode == CredentialMode::WebIdentity)
                .then(|| env.token_file.as_ref().map(|p| p.display().to_string()))
                .flatten(),
            role_arn: env.role_arn,
            token: inspection.claims,
            caller: sts.as_ref().map(|s| s.caller.clone()),
            credentials_expire_at: sts.as_ref().and_then(|s| s.credentials_expire_at),
            stages,
        }
    }
}

/// `web_identity_token`: what is wrong with the projected token, as read.
fn token_stage(env: &IdentityEnv, inspection: &identity::IdentityInspection) -> Stage {
    let start = StdInstant::now();
    let findings = diagnosis::identity_findings(env, inspection);
    Stage::from_findings("web_identity_token", ms(start), None, findings)
}

/// `sts`: the identity's caller and credentials, and whether the two clocks agree.
async fn sts_stage(
    config: &Config,
    env: &IdentityEnv,
    inspection: &identity::IdentityInspection,
    fallback_region: Option<String>,
    deadline: Instant,
) -> (Stage, Option<StsOutcome>) {
    let timeouts = AwsTimeouts {
        connect: config.connect_timeout,
        read: config.read_timeout,
        operation: config.timeout,
    };
    let claims = inspection.claims.as_ref();
    let role_arn = env.role_arn.as_deref();
    stage("sts", deadline, config.timeout.as_secs_f64(), async {
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
                    .and_then(|a| diagnosis::clock_skew(&a.endpoint, a.server_date, unix_now()));
                Outcome {
                    value: None,
                    findings: std::iter::once(main).chain(skew).collect(),
                    bytes: None,
                }
            }
        }
    })
    .await
}

/// The node's credential provider config, read as the kubelet reads it at start, with the
/// ServiceAccount a KEP-4412 provider is sent.
async fn node_setup(
    config: &Config,
    run: &RunSetup,
    inspection: &identity::IdentityInspection,
) -> Result<Option<NodeProviderSetup>, SetupError> {
    let Some((cfg, bin_dir)) = &config.credential_provider else {
        return Ok(None);
    };
    let providers = provider_config::load(cfg);
    let sa = node_service_account(
        config,
        providers.as_ref().ok().map(Vec::as_slice),
        run.cluster.as_ref(),
        run.workload.as_ref(),
        inspection,
        run.deadline,
    )
    .await?;
    Ok(Some(NodeProviderSetup::new(
        cfg.display().to_string(),
        providers,
        bin_dir.clone(),
        sa,
        config.node_name.clone(),
    )))
}

/// The canary, when asked for and a workload names its images.
async fn run_canary(
    config: &Config,
    run: &RunSetup,
    node: Option<&NodeProviderSetup>,
    images: &[ImageRef],
) -> Option<Result<canary::CanaryRun, canary::CanaryError>> {
    let (Some(c), Some(w)) = (&run.cluster, &run.workload) else {
        return None;
    };
    if !config.canary {
        return None;
    }
    let until = run.deadline.min(Instant::now() + config.canary_timeout);
    // KEP-4412 providers that will see the canary's images want a token for their audience.
    let token_audiences = match node.map(|n| &n.providers) {
        Some(Ok(providers)) => canary::token_audiences(providers, images),
        _ => vec![],
    };
    Some(
        canary::run(
            c,
            w,
            images,
            config.canary_node.as_deref(),
            &token_audiences,
            until,
        )
        .await,
    )
}

/// What settles each image once every path and the canary are in.
struct Settle<'a> {
    config: &'a Config,
    node: Option<&'a NodeProviderSetup>,
    node_cache: Option<crate::node_cache::NodeCache>,
    workload: Option<&'a crate::report::Workload>,
    canary: Option<&'a Result<canary::CanaryRun, canary::CanaryError>>,
    canary_images: &'a [ImageRef],
}

impl Settle<'_> {
    /// `r` with the node's cache of it, the provider's cache grace, the canary's path, and
    /// its verdict; what the cache could not read is said on the `first` image only.
    fn image(&self, mut r: ImageReport, img: &ImageRef, first: bool) -> ImageReport {
        if let Some(cache) = &self.node_cache {
            attach_node_cache(&mut r, img, cache, self.workload, first);
        }
        if let (Some(setup), Some(path)) = (self.node, r.paths.node_credential_provider.as_mut()) {
            path.findings.extend(provider_cache_grace(setup, path));
        }
        let in_canary = self
            .canary_images
            .iter()
            .position(|c| c.original == img.original);
        r.paths.kubelet_canary = self
            .canary
            .zip(in_canary)
            .map(|(c, i)| canary::path_report(c, i));
        finish_image(&mut r, self.config.require);
        r
    }
}

/// The run's report: its verdict over the identity and the images (none counts as checked
/// when the run itself is in error).
fn report_of(
    config: &Config,
    run: RunSetup,
    identity: Identity,
    mut images: Vec<ImageReport>,
    retry: &RetryPolicy,
) -> Report {
    let verdict = report::run_verdict(&identity.stages, &images, config.require);
    if verdict == Verdict::Error {
        images.iter_mut().for_each(report::mark_not_checked);
    }
    Report {
        schema_version: report::SCHEMA_VERSION.into(),
        tool: Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        started_at: run
            .started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        duration_ms: ms(run.t0),
        verdict,
        identity: identity.report(),
        workload: run.workload,
        require: config.require,
        retry_policy: RetryPolicyReport {
            registry_attempts: retry.attempts,
            registry_max_wait_ms: retry.max_wait.as_millis() as u64,
            aws_mode: aws::AWS_RETRY_MODE.into(),
            aws_attempts: aws::AWS_RETRY_ATTEMPTS,
        },
        images,
        target: None,
    }
}

/// What a KEP-4412 provider is sent: the ServiceAccount token (from
/// `--service-account-token-file`, else a TokenRequest for the workload's ServiceAccount) and
/// the annotations (the workload's ServiceAccount, else the probe's own, through the API).
/// Only when some provider has `tokenAttributes`.
async fn node_service_account(
    config: &Config,
    providers: Option<&[provider_config::Provider]>,
    cluster: Option<&Cluster>,
    workload: Option<&crate::report::Workload>,
    inspection: &identity::IdentityInspection,
    deadline: Instant,
) -> Result<ServiceAccountInput, SetupError> {
    let Some(attrs) = providers.and_then(|p| p.iter().find_map(|p| p.token_attributes.as_ref()))
    else {
        return Ok(ServiceAccountInput::default());
    };
    let mut sa = ServiceAccountInput::default();
    // Whose ServiceAccount: the workload's, else the probe's own (from its token's claims).
    let own = inspection
        .claims
        .as_ref()
        .and_then(|c| c.namespace.clone().zip(c.service_account.clone()));
    let who = match workload {
        Some(w) => Some((w.namespace.clone(), w.service_account.clone())),
        None => own,
    };
    sa.name = who.as_ref().map(|(ns, n)| format!("{ns}/{n}"));

    if let Some(path) = &config.service_account_token_file {
        use std::io::Read as _;
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_TOKEN_FILE).read_to_string(&mut text))
            .map_err(|source| SetupError::ServiceAccountToken {
                path: path.display().to_string(),
                source,
            })?;
        let token = Secret::new(text.trim().to_string());
        sa.token_audiences = identity::decode_claims(&token)
            .map(|c| c.audiences)
            .unwrap_or_default();
        sa.token = Some(token);
    }

    let connected;
    let cluster = match cluster {
        Some(c) => Some(c),
        None => {
            connected = timeout_at(
                deadline,
                Cluster::connect(who.as_ref().map(|(ns, _)| ns.as_str())),
            )
            .await
            .ok()
            .and_then(Result::ok);
            connected.as_ref()
        }
    };
    match (cluster, &who) {
        (Some(c), Some((ns, name))) => {
            match timeout_at(deadline, c.service_account_annotations(name)).await {
                Ok(Ok(a)) => sa.annotations = Some(a),
                Ok(Err(e)) => {
                    sa.annotations_problem = Some(diagnosis::cluster_read_failed(
                        "ServiceAccount",
                        ns,
                        name,
                        &crate::error_chain(&e),
                    ))
                }
                Err(_) => {
                    sa.annotations_problem = Some(diagnosis::cluster_read_failed(
                        "ServiceAccount",
                        ns,
                        name,
                        "no answer before the deadline",
                    ))
                }
            }
            if sa.token.is_none()
                && workload.is_some()
                && let Ok(Ok(t)) =
                    timeout_at(deadline, c.service_account_token(name, &attrs.audience)).await
            {
                sa.token_audiences = vec![attrs.audience.clone()];
                sa.token = Some(t);
            }
        }
        _ => {
            sa.annotations_problem = Some(diagnosis::cluster_read_failed(
                "ServiceAccount",
                who.as_ref().map(|(ns, _)| ns.as_str()).unwrap_or("?"),
                who.as_ref().map(|(_, n)| n.as_str()).unwrap_or("?"),
                "no Kubernetes API reachable to read the ServiceAccount's annotations for the credential provider's tokenAttributes",
            ))
        }
    }
    Ok(sa)
}

/// The node cache's report and finding for one image; what could not be read is said once,
/// on the first image.
fn attach_node_cache(
    r: &mut ImageReport,
    img: &ImageRef,
    cache: &crate::node_cache::NodeCache,
    workload: Option<&crate::report::Workload>,
    first: bool,
) {
    let (report, judgement) = crate::node_cache::image_report(cache, img, workload);
    r.findings.extend(diagnosis::node_cache::cached_unverified(
        &img.original,
        &judgement,
        &report,
    ));
    if first {
        r.findings
            .extend(diagnosis::node_cache::cache_unreadable(&cache.unreadable));
    }
    r.node_cache = Some(report);
}

/// For a node path that failed now: how long the kubelet may keep pulling with an answer it
/// cached before (the response's cacheDuration when there was one, else the provider's
/// defaultCacheDuration).
fn provider_cache_grace(
    setup: &NodeProviderSetup,
    path: &report::NodeProviderPath,
) -> Option<report::Finding> {
    if path.status != Status::Fail {
        return None;
    }
    let name = path.provider.as_deref()?;
    let from_response = path
        .cache_duration
        .as_deref()
        .and_then(|d| provider_config::parse_go_duration(d).ok());
    let (duration, source) = match from_response {
        Some(d) => (d, "the plugin's cacheDuration"),
        None => {
            let p = setup
                .providers
                .as_ref()
                .ok()?
                .iter()
                .find(|p| p.name == name)?;
            (
                p.default_cache_duration,
                "the provider's defaultCacheDuration",
            )
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    diagnosis::node_cache::provider_cache_grace(
        name,
        path.cache_key_type.as_deref(),
        duration,
        source,
        now,
    )
}

/// Settles an image once all its paths are in: the canary's answer (the kubelet's own, when
/// it gave one) over the list's, the verdict under the policy, and one summary when the
/// pod's path and the kubelet's disagree.
pub(crate) fn finish_image(r: &mut ImageReport, require: report::Require) {
    if let Some(base) = r.paths.kubelet.take() {
        r.paths.kubelet = Some(kubelet::with_canary(base, r.paths.kubelet_canary.as_ref()));
    }
    if let Some(k) = &r.paths.kubelet {
        let mut failing: Vec<CredentialSource> = k
            .credentials
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.source)
            .collect();
        failing.dedup();
        let pod_passes = r.paths.pod_identity.status == Status::Pass;
        let finding = match k.status {
            KubeletStatus::Pass => diagnosis::paths_disagree(pod_passes, true, &failing),
            KubeletStatus::Fail => diagnosis::paths_disagree(pod_passes, false, &failing),
            KubeletStatus::Unknown => None,
        };
        r.findings.extend(finding);
    }
    r.verdict = r.paths.verdict(require);
    // One check's result is bounded whatever its findings hold (issue 23).
    r.bound();
}

struct ImageCtx<'a> {
    puller: Puller<'a>,
    tokens: &'a BTreeMap<TokenKey, TokenResult>,
    node: Option<&'a NodeProviderSetup>,
    /// The node-wide docker config, when given.
    node_config: Option<&'a SecretSet>,
    /// False when it was given but could not be read.
    node_config_known: bool,
    /// Whether the canary will add the kubelet's own answer.
    canary: bool,
    reuse: &'a Reuse,
}

/// The kubelet's answer and the three paths that feed it, for one image.
type KubeletPaths = (
    Option<KubeletAnswer>,
    Option<SecretPath>,
    Option<SecretPath>,
    Option<NodeProviderPath>,
);

impl ImageCtx<'_> {
    /// The kubelet's list for `img`, source by source in its order, each tried with the real
    /// pull; then its answer. The node's sources are known when the run was given either
    /// (the other is then taken as absent); the pull secrets are known always (a run without
    /// a workload or docker config checks a pod with none). No answer when no source of the
    /// kubelet's was given at all and no canary runs: nothing of the kubelet's side is
    /// checked then.
    async fn kubelet_list(&self, img: &ImageRef, secrets: Option<&SecretSet>) -> KubeletPaths {
        // Described the node at all: what was not given of it is taken as absent.
        let node_known = self.node.is_some() || self.node_config.is_some();
        let config_known = node_known && self.node_config_known;
        let mut blocked = false;
        let mut sources = Vec::with_capacity(3);
        let pull_secrets = match secrets {
            Some(set) => Some(pull_secrets::check(&self.puller, img, set).await),
            None => None,
        };
        let node_docker_config = match self.node_config {
            Some(set) => Some(pull_secrets::check_node_config(&self.puller, img, set).await),
            None => None,
        };
        for (source, checked, known) in [
            (CredentialSource::PullSecrets, &pull_secrets, true),
            (
                CredentialSource::NodeDockerConfig,
                &node_docker_config,
                config_known,
            ),
        ] {
            blocked |= checked.as_ref().is_some_and(|c| c.blocked);
            sources.push(SourceRows {
                source,
                known,
                rows: checked.as_ref().map(|c| c.rows.clone()).unwrap_or_default(),
                image_problem: checked.as_ref().and_then(|c| c.image_problem),
            });
        }
        let node_credential_provider = match self.node {
            Some(setup) => Some(node_provider::check(&self.puller, img, setup).await),
            None => None,
        };
        blocked |= node_credential_provider.as_ref().is_some_and(|c| c.blocked);
        sources.push(SourceRows {
            source: CredentialSource::NodeCredentialProvider,
            known: node_known,
            rows: node_credential_provider
                .as_ref()
                .map(|c| c.rows.clone())
                .unwrap_or_default(),
            image_problem: node_credential_provider
                .as_ref()
                .and_then(|c| c.image_problem),
        });
        let checked = secrets.is_some() || node_known || self.canary;
        let answer = match checked {
            false => None,
            true => {
                let anonymous = match kubelet::needs_anonymous(&sources, blocked) {
                    true => {
                        let pulled = self.puller.pull(img, None, CredentialsUsed::None).await;
                        Some(kubelet::Anonymous {
                            status: if pulled.passed() {
                                Status::Pass
                            } else {
                                Status::Fail
                            },
                            stages: pulled.stages,
                        })
                    }
                    false => None,
                };
                Some(kubelet::answer(img, &sources, blocked, anonymous))
            }
        };
        (
            answer,
            pull_secrets.map(|c| c.path),
            node_docker_config.map(|c| c.path),
            node_credential_provider.map(|c| c.path),
        )
    }

    /// Every image of the run, [`Config::concurrency`] at a time, in the order given.
    async fn check_all(&self, items: &[(&ImageRef, Option<&SecretSet>)]) -> Vec<ImageReport> {
        // The futures are made up front, not by a closure inside the stream: a closure there
        // makes the whole run's future not provably `Send` (rust-lang/rust#102211), and serve
        // spawns it.
        // Each image's stage logs carry its name (the span), so a log of many images reads.
        let pending: Vec<_> = items
            .iter()
            .map(|(img, secrets)| {
                use tracing::Instrument as _;
                self.check(img, *secrets)
                    .instrument(tracing::info_span!("image", image = %img.original))
            })
            .collect();
        stream::iter(pending)
            .buffered(self.puller.config.concurrency)
            .collect()
            .await
    }

    async fn check(&self, img: &ImageRef, secrets: Option<&SecretSet>) -> ImageReport {
        let mut findings: Vec<report::Finding> = Vec::new();
        let endpoint = registry::endpoint_for(img, &self.puller.config.registry_endpoints)
            .map(|u| u.to_string())
            .unwrap_or_default();
        let token = pod_identity::token_for(self.tokens, img);
        let token_info = token
            .and_then(|t| t.result.as_ref().ok())
            .map(|t| t.info.clone());

        let pod = pod_identity::check(&self.puller, img, token).await;
        let pod_passed = pod.path.status == Status::Pass;
        findings.extend(pod.findings);
        let (kubelet, pull_secrets, node_docker_config, node_credential_provider) =
            self.kubelet_list(img, secrets).await;
        // After every path has pulled: the questions take what is left of the deadline,
        // never the kubelet paths' share of it.
        let explained = self.ask_ecr(img, &pod.pull.stages).await;
        findings.extend(explained.findings);

        let paths = Paths {
            pod_identity: pod.path,
            pull_secrets,
            node_docker_config,
            node_credential_provider,
            kubelet_canary: None,
            kubelet,
        };
        // Said only when nothing of the kubelet's side was checked; otherwise the paths speak
        // for themselves (and disagreeing paths get their own finding).
        if pod_passed && img.ecr.is_some() && !paths.kubelet_checked() {
            findings.push(diagnosis::pod_identity_can_pull(
                img,
                self.puller.sts.map(|s| &s.caller),
            ));
        }
        // The default matchImages' blind spot matters only when no node config was read.
        if paths.node_credential_provider.is_none() {
            findings.extend(diagnosis::node_provider_host(img));
        }
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
            manifest: pod.pull.manifest,
            blobs: pod.pull.blobs,
            stages: pod.pull.stages,
            verdict: paths.verdict(self.puller.config.require),
            paths,
            findings,
            node_cache: None,
            api_calls: explained.api_calls,
        }
    }

    /// What the ECR API adds to the pod path's failure, and the throttling it met.
    async fn ask_ecr(&self, img: &ImageRef, stages: &[Stage]) -> crate::ecr_api::Explained {
        let mut out = crate::ecr_api::Explained::default();
        if img.ecr.is_none() {
            return out;
        }
        let rate = Some(self.puller.config.registry_rate).filter(|r| *r > 0);
        out.findings.extend(diagnosis::ecr_api::throttled_in(
            stages,
            rate,
            self.reuse.watch,
        ));
        let failure = stages
            .iter()
            .find(|s| s.name == "manifest" && s.status == Status::Fail)
            .and_then(|s| s.findings.first());
        if let (Some(sts), Some(f)) = (self.puller.sts, failure) {
            let ctx = crate::ecr_api::Context {
                sdk: &sts.sdk,
                caller_account: &sts.caller.account,
                deadline: self.puller.deadline,
            };
            let e = crate::ecr_api::explain(&ctx, &self.reuse.asked, img, f).await;
            out.findings.extend(e.findings);
            out.api_calls = e.api_calls;
        }
        out
    }
}
