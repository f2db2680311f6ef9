//! `gate`: the pre-rollout check of a pipeline, with the binary and a kubeconfig only. The
//! probe runs as a Job in the target namespace under the ServiceAccount the workload will use
//! (for a list of images, or a workload's), on the same Job runner as `diagnose`; its report
//! is printed, written to the CI's files, and decides the exit code as `check`'s would.

use clap::Args;
use tokio::time::Instant;

use crate::config::LogFormat;
use crate::diagnose::log_tail;
use crate::job::{self, JobError, JobSpec};
use crate::jobcli::{JobOutputArgs, Runner, RunnerArgs, RunnerError};
use crate::report::Report;

#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Images to check (with or instead of --images-from).
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// The ServiceAccount the workload will run under; with --images-from, default: the
    /// workload's.
    #[arg(long, short = 's', value_name = "NAME")]
    pub service_account: Option<String>,

    /// Check this workload's images with its pull secrets and ServiceAccount (deployment/NAME,
    /// statefulset/, daemonset/, cronjob/, job/, pod/NAME).
    #[arg(long, value_name = "KIND/NAME")]
    pub images_from: Option<String>,

    #[command(flatten)]
    pub runner: RunnerArgs,

    #[command(flatten)]
    pub outputs: JobOutputArgs,

    /// Log format on stderr (levels from RUST_LOG; default warn).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(
        "nothing to gate: give images, --images-from KIND/NAME, or both; and --service-account unless --images-from names it"
    )]
    Nothing,
    #[error(transparent)]
    Target(#[from] crate::cluster::WorkloadRefError),
    #[error(transparent)]
    Image(#[from] crate::reference::ReferenceError),
    #[error(transparent)]
    Read(Box<crate::cluster::ClusterError>),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("the probe in pod {pod} ended with exit code {code}, which the probe never uses")]
    Exit { pod: String, code: i32 },
}

/// Boxed: a cluster read's error is large, and every other variant small.
impl From<crate::cluster::ClusterError> for GateError {
    fn from(e: crate::cluster::ClusterError) -> GateError {
        GateError::Read(Box::new(e))
    }
}

/// The validated request.
pub struct Gate {
    pub images: Vec<String>,
    pub service_account: Option<String>,
    pub images_from: Option<crate::cluster::WorkloadRef>,
    pub runner: Runner,
}

impl Gate {
    pub fn from_args(a: &GateArgs) -> Result<Gate, GateError> {
        let runner = Runner::from_args(&a.runner)?;
        let images_from = a
            .images_from
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .transpose()?;
        let images: Vec<String> = a
            .images
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for i in &images {
            i.parse::<crate::reference::ImageRef>()?;
        }
        let service_account = a.service_account.clone().filter(|s| !s.is_empty());
        if (images.is_empty() && images_from.is_none())
            || (service_account.is_none() && images_from.is_none())
        {
            return Err(GateError::Nothing);
        }
        Ok(Gate {
            images,
            service_account,
            images_from,
            runner,
        })
    }
}

/// The Job's spec: `check` with the images, under the ServiceAccount.
pub fn job_spec(g: &Gate, namespace: &str, service_account: &str) -> JobSpec {
    let mut args = vec![
        "check".to_string(),
        "--timeout".into(),
        format!("{}s", g.runner.probe_timeout().as_secs()),
    ];
    if let Some(w) = &g.images_from {
        args.extend([
            "--images-from".into(),
            format!("{}/{}", w.kind.to_string().to_ascii_lowercase(), w.name),
            "--namespace".into(),
            namespace.to_string(),
        ]);
    }
    args.extend(g.images.iter().cloned());
    JobSpec {
        component: "gate",
        service_account: service_account.to_string(),
        image: g.runner.probe_image.clone(),
        args,
        env: vec![
            ("ECR_PULL_PROBE_OUTPUT".into(), "json".into()),
            ("ECR_PULL_PROBE_LOG_FORMAT".into(), "json".into()),
        ],
        // Only --images-from reads the API; a list of images needs no token in the pod.
        api_token: g.images_from.is_some(),
        node: None,
        node_selector: Default::default(),
        deadline: g.runner.timeout,
    }
}

pub async fn run(g: &Gate) -> Result<Report, GateError> {
    let until = Instant::now() + g.runner.timeout;
    let cluster = job::connect(g.runner.namespace.as_deref(), g.runner.context.as_deref()).await?;
    let mut spec_sa = g.service_account.clone();
    let mut node_selector = Default::default();
    if let Some(w) = &g.images_from {
        let workload = cluster.workload(w).await?;
        spec_sa.get_or_insert(workload.service_account);
        node_selector = workload.node_selector;
    }
    let sa = spec_sa.unwrap_or_else(|| "default".into());
    let mut spec = job_spec(g, &cluster.namespace, &sa);
    spec.node_selector = node_selector;
    let outcome = job::run(&cluster, &spec, until).await?;
    if !(0..=3).contains(&outcome.exit_code) {
        return Err(GateError::Exit {
            pod: outcome.pod,
            code: outcome.exit_code,
        });
    }
    job::report_in_log(&outcome.log).ok_or_else(|| {
        JobError::NoReport {
            pod: outcome.pod.clone(),
            code: outcome.exit_code,
            tail: log_tail(&outcome.log),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(images: &[&str], sa: Option<&str>, from: Option<&str>) -> GateArgs {
        GateArgs {
            images: images.iter().map(|s| s.to_string()).collect(),
            service_account: sa.map(str::to_string),
            images_from: from.map(str::to_string),
            runner: RunnerArgs {
                probe_image: Some("registry.example/ecr-pull-probe:0.1.0".into()),
                namespace: None,
                context: None,
                timeout: "300s".into(),
            },
            outputs: JobOutputArgs {
                output: None,
                json_file: None,
                text_file: None,
                markdown_file: None,
                junit_file: None,
            },
            log_format: LogFormat::Text,
        }
    }

    #[test]
    fn a_gate_needs_images_and_an_account() {
        assert!(matches!(
            Gate::from_args(&args(&[], Some("sa"), None)),
            Err(GateError::Nothing)
        ));
        assert!(matches!(
            Gate::from_args(&args(&["a.example/x:1"], None, None)),
            Err(GateError::Nothing)
        ));
        assert!(Gate::from_args(&args(&["Bad Image"], Some("sa"), None)).is_err());
        let g = Gate::from_args(&args(&["a.example/x:1,a.example/y:2"], Some("sa"), None)).unwrap();
        let spec = job_spec(&g, "ns", "sa");
        assert_eq!(
            spec.args,
            [
                "check",
                "--timeout",
                "225s",
                "a.example/x:1",
                "a.example/y:2"
            ]
        );
        assert!(!spec.api_token, "a list of images needs no API token");
        let g = Gate::from_args(&args(&[], None, Some("deploy/app"))).unwrap();
        let spec = job_spec(&g, "ns", "app");
        assert!(spec.api_token);
        assert!(
            spec.args
                .windows(2)
                .any(|w| w == ["--images-from", "deployment/app"])
        );
    }
}
