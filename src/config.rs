//! Command line and environment, in two steps (after ripgrep): [`CheckArgs`] holds the raw
//! values clap accepted, [`Config`] the validated ones. Validation is pure: no file or network
//! is touched, so every rejection is a unit test.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;

use crate::cluster::{WorkloadRef, WorkloadRefError};
use crate::reference::{ImageRef, ReferenceError};
use crate::registry::manifest::{Platform, PlatformError};
use crate::report::Require;

#[derive(Debug, Parser)]
#[command(
    name = "ecr-pull-probe",
    version,
    about = "Can this identity, from inside this cluster, really pull this image from Amazon ECR - and if not, exactly why?",
    after_help = "Exit codes: 0 every image can be pulled; 1 at least one cannot; 2 the probe could not run as asked."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that each image can be pulled with this pod's identity; print a report.
    Check(CheckArgs),
    /// Run the checks on a schedule and serve /metrics, /report, /healthz and /readyz.
    Serve(ServeArgs),
    /// Print a saved JSON report in another format (text, markdown, junit).
    Render(RenderArgs),
}

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
    /// Report format on stdout.
    #[arg(
        long,
        env = "ECR_PULL_PROBE_OUTPUT",
        value_enum,
        default_value = "json"
    )]
    pub output: OutputFormat,

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

impl From<OutputArgs> for Outputs {
    fn from(a: OutputArgs) -> Outputs {
        let files = [
            (OutputFormat::Json, a.json_file),
            (OutputFormat::Text, a.text_file),
            (OutputFormat::Markdown, a.markdown_file),
            (OutputFormat::Junit, a.junit_file),
        ]
        .into_iter()
        .filter_map(|(f, p)| p.filter(|p| !p.as_os_str().is_empty()).map(|p| (f, p)))
        .collect();
        Outputs {
            stdout: a.output,
            files,
        }
    }
}

/// `render`: an existing JSON report (a Job's, a saved one) in another format.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The JSON report to read; `-` for stdin.
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

    /// With --images-from, also use OpenShift's global pull secret (openshift-config/pull-secret,
    /// or kube-system/additional-pull-secret on hosted control planes) where readable.
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

    /// Which paths decide the verdict: auto (the kubelet's when one was checked, else the
    /// pod's), kubelet, pod, or all (every path checked must pass).
    #[arg(
        long,
        env = "ECR_PULL_PROBE_REQUIRE",
        default_value = "auto",
        value_name = "POLICY"
    )]
    pub require: String,
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
    pub require: Require,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Image(#[from] ReferenceError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(
        "invalid {flag} {input:?}: use a number with a unit, e.g. 120s, 2m or 500ms, above zero"
    )]
    Duration { flag: &'static str, input: String },
    #[error(
        "invalid --registry-endpoint {input:?}: {reason}; expected HOST=URL, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com=https://127.0.0.1:5000"
    )]
    Endpoint { input: String, reason: &'static str },
    #[error("invalid --concurrency 0: at least one image must be checked at a time")]
    Concurrency,
    #[error("{0}")]
    Require(String),
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
}

/// What `serve --watch` watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// The namespaces to watch; `None`: all of them.
    pub namespaces: Option<Vec<String>>,
    pub selector: Option<String>,
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
            })
        } else {
            if a.all_namespaces || a.selector.is_some() {
                return Err(ConfigError::Watch(
                    "--all-namespaces and --selector are for serve --watch",
                ));
            }
            None
        };
        let check = Config::build(a.check, watch.is_some())?;
        if !check.outputs.files.is_empty() {
            return Err(ConfigError::ServeOutputFiles);
        }
        Ok(ServeConfig {
            watch,
            interval: parse_duration("--interval", &a.interval)?,
            listen: parse_listen(&a.listen).ok_or_else(|| ConfigError::Listen {
                input: a.listen.clone(),
            })?,
            check,
        })
    }
}

/// Parses `120`, `120s`, `2m`, `500ms`.
pub fn parse_duration(flag: &'static str, input: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::Duration {
        flag,
        input: input.to_string(),
    };
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(err)?),
        _ => return Err(err()),
    };
    if d.is_zero() {
        return Err(err());
    }
    Ok(d)
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
        let images = a
            .images
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<ImageRef>, _>>()?;
        if images.is_empty() && a.images_from.is_none() && !watch {
            return Err(ReferenceError {
                input: String::new(),
                reason: "no image given: name IMAGES, or use --images-from".into(),
            }
            .into());
        }
        if (a.canary || a.canary_node.is_some()) && a.images_from.is_none() {
            return Err(ConfigError::CanaryNeedsWorkload);
        }
        if a.concurrency == 0 {
            return Err(ConfigError::Concurrency);
        }
        let require = Require::parse(a.require.trim()).map_err(ConfigError::Require)?;
        if a.namespace.len() > 1 && !watch {
            return Err(ConfigError::Namespaces);
        }
        let kubelet_path = watch
            || a.docker_config.is_some()
            || a.images_from.is_some()
            || a.credential_provider_config.is_some();
        if require == Require::Kubelet && !kubelet_path {
            return Err(ConfigError::RequireKubeletPath);
        }
        Ok(Config {
            images,
            timeout: parse_duration("--timeout", &a.timeout)?,
            connect_timeout: parse_duration("--connect-timeout", &a.connect_timeout)?,
            read_timeout: parse_duration("--read-timeout", &a.read_timeout)?,
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
            outputs: a.outputs.into(),
            log_format: a.log_format,
            registry_endpoints: a
                .registry_endpoints
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|e| parse_endpoint(e, a.allow_plain_http))
                .collect::<Result<_, _>>()?,
            ca_file: a.ca_file,
            concurrency: a.concurrency,
            registry_rate: a
                .registry_rate
                .unwrap_or(if watch { WATCH_REGISTRY_RATE } else { 0 }),
            docker_config: a.docker_config,
            images_from: a.images_from.as_deref().map(str::parse).transpose()?,
            namespace: a.namespace.into_iter().next().filter(|n| !n.is_empty()),
            global_pull_secret: a.global_pull_secret,
            canary: a.canary,
            canary_node: a.canary_node.filter(|n| !n.is_empty()),
            canary_timeout: parse_duration("--canary-timeout", &a.canary_timeout)?,
            credential_provider: a
                .credential_provider_config
                .zip(a.credential_provider_bin_dir),
            service_account_token_file: a.service_account_token_file,
            node_name: a.node_name.filter(|n| !n.trim().is_empty()),
            require,
        })
    }
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

    #[test]
    fn serve_settings() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["ecr-pull-probe", "serve"];
            argv.extend_from_slice(extra);
            let Command::Serve(a) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("serve")
            };
            ServeConfig::from_args(a).map_err(|e| e.to_string())
        };
        let c = parse(&["a/b"]).unwrap();
        assert_eq!(c.interval, Duration::from_secs(300));
        assert_eq!(c.listen.to_string(), "0.0.0.0:9090");
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

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("--timeout", "2m").unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            parse_duration("--timeout", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("--timeout", "7").unwrap(),
            Duration::from_secs(7)
        );
        for bad in [
            "",
            "0",
            "0s",
            "-1s",
            "1.5s",
            "10 s",
            "ten",
            "5d",
            "99999999999999999999h",
        ] {
            let e = parse_duration("--timeout", bad).unwrap_err().to_string();
            assert!(
                e.contains("--timeout") && e.contains(&format!("{bad:?}")),
                "{e}"
            );
        }
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
