//! Command line and environment, in two steps (after ripgrep): [`CheckArgs`] holds the raw
//! values clap accepted, [`Config`] the validated ones. Validation is pure: no file or network
//! is touched, so every rejection is a unit test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use reqwest::Url;

use crate::reference::{ImageRef, ReferenceError};
use crate::registry::manifest::{Platform, PlatformError};
use crate::report::Require;
use crate::workload::{WorkloadRef, WorkloadRefError};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Time between the starts of two runs (a longer run delays the next, never overlaps it).
    #[arg(long, env = "ECR_PULL_PROBE_INTERVAL", default_value = "5m")]
    pub interval: String,

    /// Address for the HTTP server.
    #[arg(long, env = "ECR_PULL_PROBE_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: String,

    /// Watch the cluster's workloads (Deployments, StatefulSets, DaemonSets, CronJobs, Jobs,
    /// bare Pods) and check every container image with the credentials the kubelet would use
    /// for it, instead of a fixed image list. Namespaces from --namespace (repeatable), or
    /// --all-namespaces; default: the probe's own.
    #[arg(long, env = "ECR_PULL_PROBE_WATCH")]
    pub watch: bool,

    /// With --watch: every namespace (needs the ClusterRole of manifests/watch/).
    #[arg(long, short = 'A', env = "ECR_PULL_PROBE_ALL_NAMESPACES")]
    pub all_namespaces: bool,

    /// With --watch: only workloads whose labels match this selector (e.g. `team=shop,tier!=test`).
    #[arg(
        long,
        short = 'l',
        env = "ECR_PULL_PROBE_SELECTOR",
        value_name = "LABELS"
    )]
    pub selector: Option<String>,

    /// With --watch: how long to wait before trying again when no Kubernetes client can be
    /// built (no configuration yet, an unreadable kubeconfig).
    #[arg(long, env = "ECR_PULL_PROBE_WATCH_RETRY", default_value = "10s")]
    pub watch_retry: String,

    /// With --watch: this replica's shard, 0 to --total-shards - 1. Each replica watches
    /// every object and checks and exports only the namespaces that hash to its shard
    /// (docs/watch-sharding.md); the StatefulSet of manifests/watch/sharded/ sets it from
    /// the pod's ordinal.
    #[arg(long, env = "ECR_PULL_PROBE_SHARD", value_name = "I")]
    pub shard: Option<u32>,

    /// With --watch: how many replicas share the cluster's namespaces [default: 1].
    #[arg(long, env = "ECR_PULL_PROBE_TOTAL_SHARDS", value_name = "N")]
    pub total_shards: Option<u32>,

    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayerMode {
    /// Every layer, as the kubelet would pull.
    All,
    /// Only the smallest layer: proves blob access (and the storage redirect) cheaply.
    Smallest,
    /// No layers: manifest and config only.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The versioned report, for machines (schema/report.schema.json).
    Json,
    /// For a person in a terminal or a Job's log.
    Text,
    /// For a CI job summary ($GITHUB_STEP_SUMMARY, GitLab's Markdown panes).
    Markdown,
    /// JUnit XML: one test case per image and path, for Jenkins, GitLab, Azure Pipelines.
    Junit,
}

/// Where the report goes: one format on stdout, any others to files, all from the same run.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Report format on stdout [default: json for check, text for render].
    #[arg(long, env = "ECR_PULL_PROBE_OUTPUT", value_enum)]
    pub output: Option<OutputFormat>,

    /// Also write the JSON report to FILE.
    #[arg(long = "json", env = "ECR_PULL_PROBE_JSON", value_name = "FILE")]
    pub json_file: Option<PathBuf>,

    /// Also write the text report to FILE (never coloured).
    #[arg(long = "text", env = "ECR_PULL_PROBE_TEXT", value_name = "FILE")]
    pub text_file: Option<PathBuf>,

    /// Also write the Markdown report to FILE (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(
        long = "markdown",
        env = "ECR_PULL_PROBE_MARKDOWN",
        value_name = "FILE"
    )]
    pub markdown_file: Option<PathBuf>,

    /// Also write JUnit XML to FILE.
    #[arg(long = "junit", env = "ECR_PULL_PROBE_JUNIT", value_name = "FILE")]
    pub junit_file: Option<PathBuf>,
}

/// The validated outputs: the stdout format and the extra files, each with its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    pub stdout: OutputFormat,
    pub files: Vec<(OutputFormat, PathBuf)>,
}

impl Outputs {
    /// Two formats to one file would leave only the last written: refused, naming both flags.
    /// `stdout` is the format when `--output` is not given (json for a check, whose stdout a
    /// pipeline reads; text for render, which a person runs to read a saved report).
    pub fn from_args(a: OutputArgs, stdout: OutputFormat) -> Result<Outputs, ConfigError> {
        let files: Vec<(OutputFormat, PathBuf)> = [
            (OutputFormat::Json, a.json_file),
            (OutputFormat::Text, a.text_file),
            (OutputFormat::Markdown, a.markdown_file),
            (OutputFormat::Junit, a.junit_file),
        ]
        .into_iter()
        .filter_map(|(f, p)| p.filter(|p| !p.as_os_str().is_empty()).map(|p| (f, p)))
        .collect();
        for (i, (f, p)) in files.iter().enumerate() {
            if let Some((g, _)) = files[..i].iter().find(|(_, q)| q == p) {
                return Err(ConfigError::SameOutputFile {
                    first: output_flag(*g),
                    second: output_flag(*f),
                    path: p.display().to_string(),
                });
            }
        }
        Ok(Outputs {
            stdout: a.output.unwrap_or(stdout),
            files,
        })
    }
}

fn output_flag(f: OutputFormat) -> &'static str {
    match f {
        OutputFormat::Json => "--json",
        OutputFormat::Text => "--text",
        OutputFormat::Markdown => "--markdown",
        OutputFormat::Junit => "--junit",
    }
}

/// `render`: an existing JSON report (a Job's, a saved one) in another format. Exits with
/// the saved run's exit code (0, 1, 2 or 3, as `check` did).
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The JSON report to read; `-` for stdin. A saved `kubectl logs` works too: log lines
    /// before (and after) the report are skipped.
    #[arg(default_value = "-")]
    pub report: PathBuf,

    #[command(flatten)]
    pub outputs: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Images to check, e.g. 818140567777.dkr.ecr.us-east-1.amazonaws.com/team/app:v1
    #[arg(env = "ECR_PULL_PROBE_IMAGES", value_delimiter = ',')]
    pub images: Vec<String>,

    /// Also check every (init) container image of this workload, and pull with its pull
    /// secrets and its ServiceAccount's: deployment/NAME, statefulset/, daemonset/, cronjob/,
    /// job/ or pod/NAME.
    #[arg(long, env = "ECR_PULL_PROBE_IMAGES_FROM", value_name = "KIND/NAME")]
    pub images_from: Option<String>,

    /// Namespace of --images-from; default: the pod's own, or the kubeconfig context's.
    /// With `serve --watch`, the namespaces to watch (repeatable, comma-separated in the env).
    #[arg(
        long,
        short = 'n',
        env = "ECR_PULL_PROBE_NAMESPACE",
        value_delimiter = ','
    )]
    pub namespace: Vec<String>,

    /// With --images-from, read OpenShift's global pull secret (openshift-config/pull-secret,
    /// merged with kube-system/additional-pull-secret on hosted control planes) as the
    /// node-wide docker config the machine-config operator writes to every node.
    #[arg(long, env = "ECR_PULL_PROBE_GLOBAL_PULL_SECRET")]
    pub global_pull_secret: bool,

    /// With --images-from, also pull through the kubelet itself: a short-lived pod with the
    /// images (imagePullPolicy Always), the workload's ServiceAccount, pull secrets and node
    /// selector; always deleted. Needs RBAC to create pods (manifests/rbac/).
    #[arg(long, env = "ECR_PULL_PROBE_CANARY")]
    pub canary: bool,

    /// Run the canary on this node instead of the workload's node selector.
    #[arg(long, env = "ECR_PULL_PROBE_CANARY_NODE", value_name = "NODE")]
    pub canary_node: Option<String>,

    /// Longest wait for the kubelet's answer (within --timeout).
    #[arg(long, env = "ECR_PULL_PROBE_CANARY_TIMEOUT", default_value = "120s")]
    pub canary_timeout: String,

    /// Deadline for the whole run (e.g. 120s, 2m, 500ms).
    #[arg(long, env = "ECR_PULL_PROBE_TIMEOUT", default_value = "120s")]
    pub timeout: String,

    /// Connect timeout of each request.
    #[arg(long, env = "ECR_PULL_PROBE_CONNECT_TIMEOUT", default_value = "10s")]
    pub connect_timeout: String,

    /// Longest wait for data on an open connection.
    #[arg(long, env = "ECR_PULL_PROBE_READ_TIMEOUT", default_value = "30s")]
    pub read_timeout: String,

    /// Platform to resolve image indexes to, os/arch[/variant]; default: the probe's own.
    #[arg(long, env = "ECR_PULL_PROBE_PLATFORM")]
    pub platform: Option<String>,

    /// Which layers to download and verify [default: all; smallest with serve --watch].
    #[arg(long, env = "ECR_PULL_PROBE_LAYERS", value_enum)]
    pub layers: Option<LayerMode>,

    #[command(flatten)]
    pub outputs: OutputArgs,

    /// Log format on stderr (levels from RUST_LOG; default warn).
    #[arg(
        long,
        env = "ECR_PULL_PROBE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Reach registry HOST at URL instead (a pull-through proxy, a VPC endpoint name, a local
    /// registry). TLS is verified against URL's host. Repeatable; comma-separated in the env.
    #[arg(
        long = "registry-endpoint",
        env = "ECR_PULL_PROBE_REGISTRY_ENDPOINT",
        value_delimiter = ',',
        value_name = "HOST=URL"
    )]
    pub registry_endpoints: Vec<String>,

    /// Accept `http://` registry endpoints, which send the registry credentials (the ECR
    /// token, a pull secret's password) in clear text: for a local registry or a test only.
    #[arg(long, env = "ECR_PULL_PROBE_ALLOW_PLAIN_HTTP")]
    pub allow_plain_http: bool,

    /// Extra CA certificates (PEM) trusted for registries, on top of the system's.
    #[arg(long, env = "ECR_PULL_PROBE_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Images checked at once.
    #[arg(long, env = "ECR_PULL_PROBE_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,

    /// Requests per second to each registry host, a second's worth at once; 0 for no cap.
    /// Default: 50 with `serve --watch` (a cluster's images every interval), else no cap.
    #[arg(long, env = "ECR_PULL_PROBE_REGISTRY_RATE")]
    pub registry_rate: Option<u32>,

    /// Also pull with the credentials the kubelet would take from this docker config (a
    /// mounted `.dockerconfigjson` or `.dockercfg` pull Secret).
    #[arg(long, env = "ECR_PULL_PROBE_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,

    /// The node-wide docker config the kubelet's default keyring reads (/var/lib/kubelet/config.json;
    /// on OpenShift the global pull secret). A missing file is a node without one.
    #[arg(long, env = "ECR_PULL_PROBE_NODE_DOCKER_CONFIG", value_name = "FILE")]
    pub node_docker_config: Option<PathBuf>,

    /// Also pull with the node's credentials: the kubelet's CredentialProviderConfig (its
    /// --image-credential-provider-config; a file, or a directory of them), whose matching
    /// providers are run as the kubelet runs them.
    #[arg(
        long,
        env = "ECR_PULL_PROBE_CREDENTIAL_PROVIDER_CONFIG",
        value_name = "FILE",
        requires = "credential_provider_bin_dir"
    )]
    pub credential_provider_config: Option<PathBuf>,

    /// Where the provider plugins are (the kubelet's --image-credential-provider-bin-dir).
    #[arg(
        long,
        env = "ECR_PULL_PROBE_CREDENTIAL_PROVIDER_BIN_DIR",
        value_name = "DIR",
        requires = "credential_provider_config"
    )]
    pub credential_provider_bin_dir: Option<PathBuf>,

    /// A ServiceAccount token for providers with tokenAttributes (KEP-4412): a projected token
    /// with the provider's audience. With --images-from the probe requests one instead.
    #[arg(
        long,
        env = "ECR_PULL_PROBE_SERVICE_ACCOUNT_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub service_account_token_file: Option<PathBuf>,

    /// The node this runs on (the downward API's spec.nodeName), for the report and metrics.
    #[arg(long, env = "ECR_PULL_PROBE_NODE_NAME", value_name = "NODE")]
    pub node_name: Option<String>,

    /// The kubelet's image records (its root dir's `image_manager`, mounted read-only): report
    /// per image whether this node holds it and would start it for an `IfNotPresent` pod
    /// without a credential check (KEP-2535).
    #[arg(
        long,
        env = "ECR_PULL_PROBE_KUBELET_IMAGE_MANAGER_DIR",
        value_name = "DIR"
    )]
    pub kubelet_image_manager_dir: Option<PathBuf>,

    /// The kubelet's KubeletConfiguration file (its --config), for
    /// imagePullCredentialsVerificationPolicy and the feature gate; unset: the defaults.
    #[arg(
        long,
        env = "ECR_PULL_PROBE_KUBELET_CONFIG",
        value_name = "FILE",
        requires = "kubelet_image_manager_dir"
    )]
    pub kubelet_config: Option<PathBuf>,

    /// Which paths decide the verdict: auto (the kubelet's when one was checked, else the
    /// pod's), kubelet, pod, or all (every path checked must pass).
    #[arg(
        long,
        env = "ECR_PULL_PROBE_REQUIRE",
        default_value = "auto",
        value_name = "POLICY"
    )]
    pub require: String,

    /// Which of these values came from the environment: argument id -> variable name (filled
    /// by [`Cli::from_matches`]), for errors that name what the user actually set.
    #[arg(skip)]
    pub from_env: BTreeMap<String, String>,
}

impl CheckArgs {
    /// A duration flag's value, its error naming the variable when the value came from one.
    fn duration(&self, id: &str, flag: &'static str, input: &str) -> Result<Duration, ConfigError> {
        parse_duration(flag, input).map_err(|e| match e {
            ConfigError::Duration {
                flag,
                input,
                reason,
                ..
            } => ConfigError::Duration {
                flag,
                env: self.from_env.get(id).cloned(),
                input,
                reason,
            },
            other => other,
        })
    }
}

/// `serve --watch`'s default `--registry-rate`: the 1,000-workload benchmark's ~500 registry
/// requests per interval spread over about ten seconds, far under ECR's pull quotas (thousands
/// per second per region) and gentle on registries that count requests.
pub const WATCH_REGISTRY_RATE: u32 = 50;

/// A validated `check` configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub images: Vec<ImageRef>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub platform: Platform,
    pub layers: LayerMode,
    pub outputs: Outputs,
    pub log_format: LogFormat,
    pub registry_endpoints: Vec<(String, Url)>,
    pub ca_file: Option<PathBuf>,
    pub concurrency: usize,
    /// Requests per second to each registry host; 0 for no cap.
    pub registry_rate: u32,
    pub docker_config: Option<PathBuf>,
    /// The node-wide docker config (`/var/lib/kubelet/config.json`).
    pub node_docker_config: Option<PathBuf>,
    pub images_from: Option<WorkloadRef>,
    pub namespace: Option<String>,
    pub global_pull_secret: bool,
    pub canary: bool,
    pub canary_node: Option<String>,
    pub canary_timeout: Duration,
    /// `(config, bin dir)` of the node's credential provider.
    pub credential_provider: Option<(PathBuf, PathBuf)>,
    pub service_account_token_file: Option<PathBuf>,
    pub node_name: Option<String>,
    /// `(image_manager dir, kubelet config)` of the node's image records.
    pub kubelet_cache: Option<(PathBuf, Option<PathBuf>)>,
    pub require: Require,
    /// What the user asked that the run does differently (an image given twice), for `main`
    /// to log once logging is set up: validation itself logs nothing.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Image(#[from] ReferenceError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(
        "invalid {flag} {input:?}{}: {reason}; use a number with a unit, e.g. 120s, 2m30s, 1.5s or 500ms",
        env.as_ref().map(|e| format!(" (from {e})")).unwrap_or_default()
    )]
    Duration {
        flag: &'static str,
        /// The environment variable the value came from, when it did not come from the flag.
        env: Option<String>,
        input: String,
        reason: &'static str,
    },
    #[error(
        "invalid --registry-endpoint {input:?}: {reason}; expected HOST=URL, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com=https://127.0.0.1:5000"
    )]
    Endpoint { input: String, reason: &'static str },
    #[error("invalid --concurrency 0: at least one image must be checked at a time")]
    Concurrency,
    #[error("invalid --require {input:?}: expected auto, kubelet, pod or all")]
    Require { input: String },
    #[error(
        "--require kubelet needs a kubelet path to check: --docker-config, --images-from, --credential-provider-config or --canary"
    )]
    RequireKubeletPath,
    #[error(transparent)]
    Workload(#[from] WorkloadRefError),
    #[error(
        "--canary needs --images-from: the canary runs with the workload's ServiceAccount, pull secrets and placement"
    )]
    CanaryNeedsWorkload,
    #[error("invalid --listen {input:?}: expected IP:PORT, e.g. 0.0.0.0:9090 or [::]:9090")]
    Listen { input: String },
    #[error(
        "--json, --text, --markdown and --junit write the report of one check; serve mode serves the last report at /report"
    )]
    ServeOutputFiles,
    #[error("more than one --namespace is only for serve --watch")]
    Namespaces,
    #[error("{0}")]
    Watch(&'static str),
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    #[error(
        "{first} and {second} both write {path:?}: the file would hold only the last; give each its own file"
    )]
    SameOutputFile {
        first: &'static str,
        second: &'static str,
        path: String,
    },
    #[error(
        "--registry-endpoint is given twice for {host}: {first} and {second}; give one endpoint per host"
    )]
    EndpointTwice {
        host: String,
        first: String,
        second: String,
    },
    /// A flag that would be ignored without another one.
    #[error("{flag} does nothing without {needs}")]
    Needs {
        flag: &'static str,
        needs: &'static str,
    },
}

/// What `serve --watch` watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// The namespaces to watch; `None`: all of them.
    pub namespaces: Option<Vec<String>>,
    pub selector: Option<String>,
    /// The wait before connecting again when the Kubernetes client cannot be built
    /// (`--watch-retry`; it was a hard-coded 10 s).
    pub retry: Duration,
    /// Which namespaces this replica checks (`--shard` of `--total-shards`).
    pub shard: crate::shard::Shard,
}

/// `--shard` of `--total-shards`. A total above 1 needs its shard: every replica quietly
/// taking shard 0 would check half the namespaces twice and the rest never.
fn shard(index: Option<u32>, total: Option<u32>) -> Result<crate::shard::Shard, ConfigError> {
    if index.is_none() && total.is_some_and(|t| t > 1) {
        return Err(ConfigError::Watch(
            "--total-shards above 1 needs --shard (ECR_PULL_PROBE_SHARD): which of the shards this replica is",
        ));
    }
    Ok(crate::shard::Shard::new(
        index.unwrap_or(0),
        total.unwrap_or(1),
    )?)
}

/// Validated serve-mode settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub check: Config,
    pub interval: Duration,
    pub listen: std::net::SocketAddr,
    /// `--watch`: the workloads of the cluster instead of a fixed image list.
    pub watch: Option<WatchConfig>,
}

impl ServeConfig {
    pub fn from_args(a: ServeArgs) -> Result<ServeConfig, ConfigError> {
        let watch = if a.watch {
            if !a.check.images.iter().all(|i| i.trim().is_empty()) || a.check.images_from.is_some()
            {
                return Err(ConfigError::Watch(
                    "serve --watch finds the images in the cluster: give no IMAGE and no --images-from",
                ));
            }
            if a.check.canary || a.check.docker_config.is_some() {
                return Err(ConfigError::Watch(
                    "serve --watch uses each workload's own pull secrets; --canary and --docker-config are for one workload",
                ));
            }
            let named: Vec<String> = a
                .check
                .namespace
                .iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
            if a.all_namespaces && !named.is_empty() {
                return Err(ConfigError::Watch(
                    "--all-namespaces and --namespace exclude each other",
                ));
            }
            Some(WatchConfig {
                namespaces: (!a.all_namespaces).then_some(named),
                selector: a.selector.filter(|s| !s.trim().is_empty()),
                retry: a
                    .check
                    .duration("watch_retry", "--watch-retry", &a.watch_retry)?,
                shard: shard(a.shard, a.total_shards)?,
            })
        } else {
            if a.all_namespaces || a.selector.is_some() {
                return Err(ConfigError::Watch(
                    "--all-namespaces and --selector are for serve --watch",
                ));
            }
            if a.shard.is_some() || a.total_shards.is_some() {
                return Err(ConfigError::Watch(
                    "--shard and --total-shards are for serve --watch: they split the watched namespaces between replicas",
                ));
            }
            None
        };
        let interval = a.check.duration("interval", "--interval", &a.interval)?;
        let check = Config::build(a.check, watch.is_some())?;
        if !check.outputs.files.is_empty() {
            return Err(ConfigError::ServeOutputFiles);
        }
        Ok(ServeConfig {
            watch,
            interval,
            listen: parse_listen(&a.listen).ok_or_else(|| ConfigError::Listen {
                input: a.listen.clone(),
            })?,
            check,
        })
    }
}

/// Parses a duration as people write them: a number with a unit (`ms`, `s`, `m`, `h`),
/// decimals allowed (`1.5s`), units combined largest first as Go and kubectl write them
/// (`2m30s`, `1h30m`). A bare number is refused: `90` could mean seconds or minutes.
pub fn parse_duration(flag: &'static str, input: &str) -> Result<Duration, ConfigError> {
    duration_value(input.trim()).map_err(|reason| ConfigError::Duration {
        flag,
        env: None,
        input: input.to_string(),
        reason,
    })
}

/// The value of a duration, or why it is not one.
fn duration_value(s: &str) -> Result<Duration, &'static str> {
    const NANOS: [(&str, u128); 4] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    if s.is_empty() {
        return Err("empty");
    }
    if s.starts_with('-') {
        return Err("a negative duration is no timeout");
    }
    let mut rest = s;
    let mut total: u128 = 0;
    // Each unit at most once and largest first, so `30s2m` or `1s1s` are caught as typos.
    let mut last_unit = None::<usize>;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err("expected a number");
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err("a number needs a unit");
        }
        let Some(i) = NANOS.iter().position(|(u, _)| *u == unit) else {
            return Err("unknown unit (use ms, s, m or h)");
        };
        if last_unit.is_some_and(|l| l >= i) {
            return Err("units go largest first, each once (e.g. 1h30m, 2m30s)");
        }
        last_unit = Some(i);
        let unit_ns = NANOS[i].1;
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 9 {
            return Err("not a number");
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| "too large")?
        };
        let frac_ns = if frac.is_empty() {
            0
        } else {
            let digits: u128 = frac.parse().map_err(|_| "not a number")?;
            digits * unit_ns / 10u128.pow(frac.len() as u32)
        };
        total = int
            .checked_mul(unit_ns)
            .and_then(|v| v.checked_add(frac_ns))
            .and_then(|v| v.checked_add(total))
            .ok_or("too large")?;
        rest = next;
    }
    if total == 0 {
        return Err("it must be above zero");
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| "too large")?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

fn parse_endpoint(input: &str, allow_plain_http: bool) -> Result<(String, Url), ConfigError> {
    let (host, url) = input.split_once('=').unwrap_or((input, ""));
    let parsed = Url::parse(url).ok();
    // Errors repeat the input, so credentials in it are cut out first.
    let shown = match &parsed {
        Some(u) if !u.username().is_empty() || u.password().is_some() => {
            let mut u = u.clone();
            let _ = u.set_username("");
            let _ = u.set_password(None);
            format!("{host}={u}")
        }
        _ => input.to_string(),
    };
    let err = |reason| ConfigError::Endpoint {
        input: shown.clone(),
        reason,
    };
    if !input.contains('=') {
        return Err(err("no `=`"));
    }
    if host.is_empty() || host.contains('/') {
        return Err(err("the part before `=` must be a registry host"));
    }
    let mut url = parsed.ok_or_else(|| err("the part after `=` is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(err("the URL must be http(s)://host[:port][/path]"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(
            "the URL must not hold credentials (user:password@); credentials come from ECR or pull secrets",
        ));
    }
    if url.scheme() == "http" && !allow_plain_http {
        return Err(err(
            "plain HTTP would send the registry credentials in clear text; use https, or add --allow-plain-http for a local registry",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("the URL must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok((host.to_ascii_lowercase(), url))
}

impl Config {
    pub fn from_args(a: CheckArgs) -> Result<Config, ConfigError> {
        Self::build(a, false)
    }

    /// `watch`: serve --watch, which finds its images in the cluster, checks the smallest
    /// layer by default and may watch several namespaces.
    fn build(a: CheckArgs, watch: bool) -> Result<Config, ConfigError> {
        let (images, warnings) = images_of(&a)?;
        check_combinations(&a, images.is_empty(), watch)?;
        let require = require_of(&a, watch)?;
        let registry_endpoints = endpoints_of(&a)?;
        let timeout = a.duration("timeout", "--timeout", &a.timeout)?;
        let connect_timeout =
            a.duration("connect_timeout", "--connect-timeout", &a.connect_timeout)?;
        let read_timeout = a.duration("read_timeout", "--read-timeout", &a.read_timeout)?;
        let canary_timeout = a.duration("canary_timeout", "--canary-timeout", &a.canary_timeout)?;
        Ok(Config {
            images,
            timeout,
            connect_timeout,
            read_timeout,
            platform: match a
                .platform
                .as_deref()
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                Some(p) => p.parse()?,
                None => Platform::host(),
            },
            layers: a.layers.unwrap_or(if watch {
                LayerMode::Smallest
            } else {
                LayerMode::All
            }),
            outputs: Outputs::from_args(a.outputs, OutputFormat::Json)?,
            log_format: a.log_format,
            registry_endpoints,
            ca_file: a.ca_file,
            concurrency: a.concurrency,
            registry_rate: a
                .registry_rate
                .unwrap_or(if watch { WATCH_REGISTRY_RATE } else { 0 }),
            docker_config: a.docker_config,
            node_docker_config: a.node_docker_config,
            images_from: a.images_from.as_deref().map(str::parse).transpose()?,
            namespace: a.namespace.into_iter().next().filter(|n| !n.is_empty()),
            global_pull_secret: a.global_pull_secret,
            canary: a.canary,
            canary_node: a.canary_node.filter(|n| !n.is_empty()),
            canary_timeout,
            credential_provider: a
                .credential_provider_config
                .zip(a.credential_provider_bin_dir),
            service_account_token_file: a.service_account_token_file,
            node_name: a.node_name.filter(|n| !n.trim().is_empty()),
            kubelet_cache: a.kubelet_image_manager_dir.map(|d| (d, a.kubelet_config)),
            require,
            warnings,
        })
    }
}

/// The images named, each pull once (the same pull written twice or two ways is checked and
/// counted once, with a warning).
fn images_of(a: &CheckArgs) -> Result<(Vec<ImageRef>, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let mut images: Vec<ImageRef> = Vec::new();
    for written in a.images.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let image: ImageRef = written.parse()?;
        match images.iter().find(|i| i.normalized() == image.normalized()) {
            Some(first) => warnings.push(format!(
                "image {written:?} is the same pull as {:?}: checked once",
                first.original
            )),
            None => images.push(image),
        }
    }
    Ok((images, warnings))
}

/// The flags that only mean something with another one, in the order they are reported.
fn check_combinations(a: &CheckArgs, no_images: bool, watch: bool) -> Result<(), ConfigError> {
    if no_images && a.images_from.is_none() && !watch {
        return Err(ReferenceError {
            input: String::new(),
            reason: "no image given: name IMAGES, or use --images-from".into(),
        }
        .into());
    }
    if a.canary_node
        .as_deref()
        .is_some_and(|n| !n.trim().is_empty())
        && !a.canary
    {
        return Err(ConfigError::Needs {
            flag: "--canary-node",
            needs: "--canary (the node is where the canary pod runs)",
        });
    }
    if a.canary && a.images_from.is_none() {
        return Err(ConfigError::CanaryNeedsWorkload);
    }
    let named_namespace = a.namespace.iter().any(|n| !n.trim().is_empty());
    if named_namespace && a.images_from.is_none() && !watch {
        return Err(ConfigError::Needs {
            flag: "--namespace (-n)",
            needs: "--images-from (or serve --watch): it is the namespace of the workload",
        });
    }
    if a.global_pull_secret && a.images_from.is_none() {
        return Err(ConfigError::Needs {
            flag: "--global-pull-secret",
            needs: "--images-from: it joins the workload's pull secrets",
        });
    }
    if a.service_account_token_file.is_some() && a.credential_provider_config.is_none() {
        return Err(ConfigError::Needs {
            flag: "--service-account-token-file",
            needs: "--credential-provider-config: it is sent to the node's credential provider",
        });
    }
    if a.concurrency == 0 {
        return Err(ConfigError::Concurrency);
    }
    Ok(())
}

/// `--require`, held to the paths this run has: `kubelet` needs one of the kubelet's.
fn require_of(a: &CheckArgs, watch: bool) -> Result<Require, ConfigError> {
    let input = a.require.trim();
    let require = Require::from_name(input).ok_or_else(|| ConfigError::Require {
        input: input.to_string(),
    })?;
    if a.namespace.len() > 1 && !watch {
        return Err(ConfigError::Namespaces);
    }
    let kubelet_path = watch
        || a.docker_config.is_some()
        || a.node_docker_config.is_some()
        || a.images_from.is_some()
        || a.credential_provider_config.is_some();
    if require == Require::Kubelet && !kubelet_path {
        return Err(ConfigError::RequireKubeletPath);
    }
    Ok(require)
}

/// `--registry-endpoint HOST=URL`s, one per host.
fn endpoints_of(a: &CheckArgs) -> Result<Vec<(String, Url)>, ConfigError> {
    let mut registry_endpoints: Vec<(String, Url)> = Vec::new();
    for e in a
        .registry_endpoints
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let (host, url) = parse_endpoint(e, a.allow_plain_http)?;
        if let Some((_, first)) = registry_endpoints.iter().find(|(h, _)| *h == host) {
            return Err(ConfigError::EndpointTwice {
                host,
                first: first.to_string(),
                second: url.to_string(),
            });
        }
        registry_endpoints.push((host, url));
    }
    Ok(registry_endpoints)
}

/// `IP:PORT`, IPv6 bracketed or not: the node DaemonSet listens on `$(HOST_IP):9464`, where
/// the downward API's `status.hostIP` is a bare address, IPv6 on an IPv6 cluster. The port is
/// required, so the last colon is always the port's.
fn parse_listen(s: &str) -> Option<std::net::SocketAddr> {
    if let Ok(addr) = s.parse() {
        return Some(addr);
    }
    let (ip, port) = s.rsplit_once(':')?;
    Some(std::net::SocketAddr::new(
        ip.parse().ok()?,
        port.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn args(extra: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["ecr-pull-probe", "check"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let Command::Check(a) = cli.command else {
            unreachable!("the argv starts with check")
        };
        Config::from_args(a).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = args(&["818140567777.dkr.ecr.us-east-1.amazonaws.com/a/b:1"]).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(120));
        assert_eq!(c.layers, LayerMode::All);
        assert_eq!(c.outputs.stdout, OutputFormat::Json);
        assert!(c.outputs.files.is_empty());
        assert_eq!(c.platform, Platform::host());
        assert_eq!(c.concurrency, 4);
    }

    /// `serve EXTRA...` as the command line gives it, validated.
    fn serve_args(extra: &[&str]) -> Result<ServeConfig, String> {
        let mut argv = vec!["ecr-pull-probe", "serve"];
        argv.extend_from_slice(extra);
        let Command::Serve(a) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("serve")
        };
        ServeConfig::from_args(a).map_err(|e| e.to_string())
    }

    /// Issue 27: sharding, only with --watch, and only a shard of the total.
    #[test]
    fn shard_settings() {
        let parse = serve_args;
        let shard = |extra: &[&str]| {
            let mut argv = vec!["--watch", "-A"];
            argv.extend_from_slice(extra);
            parse(&argv).map(|c| c.watch.map(|w| (w.shard.index, w.shard.total)))
        };
        assert_eq!(shard(&[]), Ok(Some((0, 1))));
        assert_eq!(
            shard(&["--shard", "1", "--total-shards", "3"]),
            Ok(Some((1, 3)))
        );
        assert!(
            shard(&["--shard", "3", "--total-shards", "3"])
                .unwrap_err()
                .contains("numbered 0 to 2")
        );
        assert!(
            shard(&["--total-shards", "0"])
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            shard(&["--total-shards", "2"])
                .unwrap_err()
                .contains("needs --shard")
        );
        assert!(
            parse(&["a/b", "--shard", "0", "--total-shards", "2"])
                .unwrap_err()
                .contains("are for serve --watch")
        );
    }

    #[test]
    fn serve_settings() {
        let parse = serve_args;
        let c = parse(&["a/b"]).unwrap();
        assert_eq!(c.interval, Duration::from_secs(300));
        assert_eq!(c.listen.to_string(), "0.0.0.0:9090");
        // Issue 25 point 1: the watch's reconnect wait is config, 10 s as it was hard-coded.
        let retry = |extra: &[&str]| {
            let mut argv = vec!["--watch", "-A"];
            argv.extend_from_slice(extra);
            parse(&argv).map(|c| c.watch.map(|w| w.retry))
        };
        assert_eq!(retry(&[]), Ok(Some(Duration::from_secs(10))));
        assert_eq!(
            retry(&["--watch-retry", "250ms"]),
            Ok(Some(Duration::from_millis(250)))
        );
        assert!(
            retry(&["--watch-retry", "0s"])
                .unwrap_err()
                .contains("above zero")
        );
        assert!(
            retry(&["--watch-retry", "soon"])
                .unwrap_err()
                .contains("--watch-retry")
        );
        let c = parse(&[
            "--interval",
            "30s",
            "--listen",
            "127.0.0.1:0",
            "a/b",
            "--layers",
            "smallest",
        ])
        .unwrap();
        assert_eq!(
            (c.interval, c.check.layers),
            (Duration::from_secs(30), LayerMode::Smallest)
        );
        // A cluster's images every interval are spaced per registry; a gate goes at full speed.
        assert_eq!(parse(&["a/b"]).unwrap().check.registry_rate, 0);
        assert_eq!(
            parse(&["--watch", "--all-namespaces"])
                .unwrap()
                .check
                .registry_rate,
            WATCH_REGISTRY_RATE
        );
        assert_eq!(
            parse(&["--watch", "--all-namespaces", "--registry-rate", "0"])
                .unwrap()
                .check
                .registry_rate,
            0
        );
        assert_eq!(
            args(&["a/b", "--registry-rate", "5"])
                .unwrap()
                .registry_rate,
            5
        );
        assert!(
            parse(&["--listen", "localhost", "a/b"])
                .unwrap_err()
                .contains("\"localhost\"")
        );
        // The DaemonSet's `$(HOST_IP):9464` on an IPv4 and an IPv6 node.
        for (listen, want) in [
            ("10.0.3.7:9464", "10.0.3.7:9464"),
            ("2600:1f14:abc::7:9464", "[2600:1f14:abc::7]:9464"),
            ("[::]:9464", "[::]:9464"),
        ] {
            let c = parse(&["--listen", listen, "a/b"]).unwrap();
            assert_eq!(c.listen.to_string(), want);
        }
        for bad in ["::1", "10.0.3.7", "10.0.3.7:99999", ":9464"] {
            assert!(parse(&["--listen", bad, "a/b"]).is_err(), "{bad}");
        }
        assert!(
            parse(&["--junit", "j.xml", "a/b"])
                .unwrap_err()
                .contains("/report")
        );
    }

    /// Durations as people write them (issue 30 point 8): Go's and kubectl's forms.
    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration("--timeout", s).unwrap();
        for (input, want) in [
            ("2m", Duration::from_secs(120)),
            ("500ms", Duration::from_millis(500)),
            ("2m30s", Duration::from_secs(150)),
            ("1.5s", Duration::from_millis(1500)),
            ("1h30m", Duration::from_secs(5400)),
            ("0.25m", Duration::from_secs(15)),
            ("1m500ms", Duration::from_millis(60_500)),
            (" 90s ", Duration::from_secs(90)),
        ] {
            assert_eq!(ok(input), want, "{input}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("0", "unit"),
            ("90", "a number needs a unit"),
            ("0s", "above zero"),
            ("-1s", "negative"),
            ("10 s", "unknown unit"),
            ("ten", "expected a number"),
            ("5d", "unknown unit"),
            ("30s2m", "largest first"),
            ("1s1s", "largest first"),
            ("1..5s", "not a number"),
            ("99999999999999999999h", "too large"),
        ] {
            let e = parse_duration("--timeout", bad).unwrap_err().to_string();
            assert!(
                e.contains("--timeout") && e.contains(&format!("{bad:?}")) && e.contains(why),
                "{bad:?}: {e}"
            );
        }
    }

    /// A bad value from the environment names the variable (issue 30 point 8).
    #[test]
    fn a_bad_duration_from_the_environment_names_the_variable() {
        let mut a = match Cli::try_parse_from(["ecr-pull-probe", "check", "a/b"])
            .unwrap()
            .command
        {
            Command::Check(a) => a,
            _ => unreachable!("check"),
        };
        a.timeout = "90".into();
        a.from_env
            .insert("timeout".into(), "ECR_PULL_PROBE_TIMEOUT".into());
        let e = Config::from_args(a).unwrap_err().to_string();
        assert!(
            e.contains("--timeout \"90\" (from ECR_PULL_PROBE_TIMEOUT)"),
            "{e}"
        );
    }

    /// Flags that would do nothing are refused, naming the flag (issue 30 point 7).
    #[test]
    fn flags_that_would_do_nothing_are_refused() {
        for (argv, names) in [
            (
                &["a/b", "--json", "r", "--junit", "r"][..],
                &["--json", "--junit", "\"r\""][..],
            ),
            (
                &[
                    "a/b",
                    "--registry-endpoint",
                    "h=https://one",
                    "--registry-endpoint",
                    "H=https://two",
                ],
                &[
                    "--registry-endpoint",
                    "twice",
                    "https://one/",
                    "https://two/",
                ],
            ),
            (&["a/b", "-n", "shop"], &["--namespace", "--images-from"]),
            (
                &["a/b", "--global-pull-secret"],
                &["--global-pull-secret", "--images-from"],
            ),
            (
                &["a/b", "--service-account-token-file", "t"],
                &[
                    "--service-account-token-file",
                    "--credential-provider-config",
                ],
            ),
            (
                &["a/b", "--canary-node", "n1"],
                &["--canary-node", "--canary "],
            ),
            (
                &[
                    "a/b",
                    "--canary-node",
                    "n1",
                    "--images-from",
                    "deployment/x",
                ],
                &["--canary-node", "--canary "],
            ),
        ] {
            let e = args(argv).unwrap_err();
            for n in names {
                assert!(e.contains(n), "{argv:?}: {e}");
            }
        }
        // What they need makes them fine.
        args(&["a/b", "-n", "shop", "--images-from", "deployment/x"]).unwrap();
        args(&["--images-from", "deployment/x", "--global-pull-secret"]).unwrap();
        args(&[
            "--images-from",
            "deployment/x",
            "--canary",
            "--canary-node",
            "n1",
        ])
        .unwrap();
    }

    /// An image given twice (or written two ways) is checked once, with a warning.
    #[test]
    fn a_duplicate_image_is_checked_once_with_a_warning() {
        let c = args(&[
            "x.example/a:1",
            "x.example/a:1",
            "busybox",
            "docker.io/library/busybox:latest",
        ])
        .unwrap();
        assert_eq!(c.images.len(), 2);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(
            c.warnings[1].contains("docker.io/library/busybox:latest")
                && c.warnings[1].contains("busybox")
        );
    }

    #[test]
    fn endpoints() {
        let c = args(&[
            "x/y",
            "--registry-endpoint",
            "Reg.Example=https://127.0.0.1:5000",
            "--registry-endpoint",
            "b=http://localhost/p",
            "--allow-plain-http",
        ])
        .unwrap();
        assert_eq!(c.registry_endpoints[0].0, "reg.example");
        assert_eq!(
            c.registry_endpoints[0].1.as_str(),
            "https://127.0.0.1:5000/"
        );
        assert_eq!(c.registry_endpoints[1].1.as_str(), "http://localhost/p/");
        for bad in [
            "nohost",
            "=https://x",
            "h=ftp://x",
            "h=not a url",
            "h/p=https://x",
            "h=https://x/?q=1",
            "h=http://127.0.0.1:5000",
        ] {
            let e = args(&["x/y", "--registry-endpoint", bad]).unwrap_err();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("HOST=URL"),
                "{e}"
            );
        }
        let e = args(&["x/y", "--registry-endpoint", "h=http://x"]).unwrap_err();
        assert!(e.contains("--allow-plain-http"), "{e}");
    }

    #[test]
    fn endpoint_credentials_are_refused_and_never_repeated() {
        for bad in [
            "h=https://user:hunter2@mirror.example",
            "h=https://hunter2@mirror.example/p",
        ] {
            let e = args(&["x/y", "--registry-endpoint", bad]).unwrap_err();
            assert!(e.contains("credentials"), "{e}");
            assert!(!e.contains("hunter2"), "the password is repeated: {e}");
        }
    }

    #[test]
    fn invalid_input_names_the_input() {
        let e = args(&["UPPER/Case:tag"]).unwrap_err();
        assert!(e.contains("\"UPPER/Case:tag\""), "{e}");
        let e = args(&["a/b", "--platform", "amd64"]).unwrap_err();
        assert!(e.contains("\"amd64\"") && e.contains("linux/amd64"), "{e}");
        let e = args(&["a/b", "--concurrency", "0"]).unwrap_err();
        assert!(e.contains("concurrency"), "{e}");
        assert!(args(&[]).is_err(), "an image is required");
        assert!(args(&["a/b", "--layers", "some"]).is_err());
    }

    #[test]
    fn several_outputs_in_one_run() {
        let c = args(&[
            "a/b",
            "--output",
            "markdown",
            "--junit",
            "out/junit.xml",
            "--json",
            "r.json",
        ])
        .unwrap();
        assert_eq!(
            c.outputs,
            Outputs {
                stdout: OutputFormat::Markdown,
                files: vec![
                    (OutputFormat::Json, "r.json".into()),
                    (OutputFormat::Junit, "out/junit.xml".into()),
                ],
            }
        );
        assert!(args(&["a/b", "--output", "xml"]).is_err());
    }
}
