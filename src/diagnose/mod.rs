//! `diagnose TARGET`, from a shell with a kubeconfig: read what the kubelet said about the
//! target's pod, run the probe where the kubelet pulls (a Job in the namespace, under the
//! target's ServiceAccount, on the failing pod's node), put the node DaemonSet's report for
//! that node beside it, and print one report whose exit code is `check`'s.

mod node_report;
mod read;

use std::collections::BTreeMap;

use clap::Args;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;
use tokio::time::Instant;

use crate::cluster::{self, Cluster, ClusterError, WorkloadKind, WorkloadRef, WorkloadRefError};
use crate::config::LogFormat;
use crate::diagnosis;
use crate::job::{self, JobError, JobSpec};
use crate::jobcli::{JobOutputArgs, Runner, RunnerArgs, RunnerError};
use crate::report::{JobRun, Report, TargetReport};

pub use node_report::{NODE_POD_LABELS, merge, resettle};

#[derive(Debug, Clone, Args)]
pub struct DiagnoseArgs {
    /// What failed: pod/NAME, or deployment/, statefulset/, daemonset/, cronjob/, job/NAME.
    #[arg(value_name = "KIND/NAME")]
    pub target: String,

    #[command(flatten)]
    pub runner: RunnerArgs,

    /// Also pull through the kubelet itself: a canary pod on the same node (the target's
    /// ServiceAccount then needs manifests/rbac/canary.yaml).
    #[arg(long)]
    pub canary: bool,

    /// The namespace of the node DaemonSet (manifests/node/).
    #[arg(long, default_value = "ecr-pull-probe-node", value_name = "NAMESPACE")]
    pub node_namespace: String,

    /// The port of the node DaemonSet's /report.
    #[arg(long, default_value_t = 9464, value_name = "PORT")]
    pub node_port: u16,

    #[command(flatten)]
    pub outputs: JobOutputArgs,

    /// Log format on stderr (levels from RUST_LOG; default warn).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error(transparent)]
    Target(#[from] WorkloadRefError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(
        "pod {namespace}/{name} does not exist (any more): diagnose its workload instead, e.g. deployment/NAME"
    )]
    PodGone { namespace: String, name: String },
    #[error(transparent)]
    Read(Box<ClusterError>),
    #[error(
        "not allowed to {verb} {resource} in namespace {namespace}: the caller needs `{verb}` on `{resource}` there (manifests/rbac/diagnose.yaml)"
    )]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        namespace: String,
    },
    #[error(transparent)]
    Job(#[from] JobError),
}

/// Boxed: a cluster read's error is large, and every other variant small.
impl From<ClusterError> for DiagnoseError {
    fn from(e: ClusterError) -> DiagnoseError {
        DiagnoseError::Read(Box::new(e))
    }
}

/// The validated request.
pub struct Diagnose {
    pub target: WorkloadRef,
    pub runner: Runner,
    pub canary: bool,
    pub node_namespace: String,
    pub node_port: u16,
}

impl Diagnose {
    pub fn from_args(a: &DiagnoseArgs) -> Result<Diagnose, DiagnoseError> {
        Ok(Diagnose {
            target: a.target.parse()?,
            runner: Runner::from_args(&a.runner)?,
            canary: a.canary,
            node_namespace: a.node_namespace.clone(),
            node_port: a.node_port,
        })
    }
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The target's pod template and the pods it has now (the failing one first).
async fn read_target(
    cluster: &Cluster,
    target: &WorkloadRef,
) -> Result<(cluster::Workload, Vec<Pod>), DiagnoseError> {
    let ns = cluster.namespace.clone();
    if target.kind == WorkloadKind::Pod {
        let pods: Api<Pod> = Api::namespaced(cluster.client(), &ns);
        let pod = match pods.get(&target.name).await {
            Ok(p) => p,
            Err(e) if is_code(&e, 404) => {
                return Err(DiagnoseError::PodGone {
                    namespace: ns,
                    name: target.name.clone(),
                });
            }
            Err(source) => {
                return Err(ClusterError::Read {
                    kind: "Pod".into(),
                    namespace: ns,
                    name: target.name.clone(),
                    source,
                }
                .into());
            }
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let w = cluster::workload_from_spec(WorkloadKind::Pod, &ns, &target.name, &spec);
        return Ok((w, vec![pod]));
    }
    let workload = cluster.workload(target).await?;
    let Some(selector) = selector(cluster, target).await else {
        return Ok((workload, vec![]));
    };
    let pods: Api<Pod> = Api::namespaced(cluster.client(), &ns);
    let mut list = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(l) => l.items,
        Err(e) if is_code(&e, 403) => {
            return Err(DiagnoseError::Forbidden {
                verb: "list",
                resource: "pods",
                namespace: ns,
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the workload's pods; diagnosing the workload alone");
            vec![]
        }
    };
    list.sort_by_key(|p| !read::pull_failing(p));
    Ok((workload, list))
}

/// The label selector of the workload's pods (`matchLabels`), where it has one.
async fn selector(cluster: &Cluster, target: &WorkloadRef) -> Option<String> {
    let c = cluster.client();
    let ns = &cluster.namespace;
    let name = &target.name;
    let labels: BTreeMap<String, String> = match target.kind {
        WorkloadKind::Deployment => {
            Api::<Deployment>::namespaced(c, ns)
                .get(name)
                .await
                .ok()?
                .spec?
                .selector
                .match_labels?
        }
        WorkloadKind::StatefulSet => {
            Api::<StatefulSet>::namespaced(c, ns)
                .get(name)
                .await
                .ok()?
                .spec?
                .selector
                .match_labels?
        }
        WorkloadKind::DaemonSet => {
            Api::<DaemonSet>::namespaced(c, ns)
                .get(name)
                .await
                .ok()?
                .spec?
                .selector
                .match_labels?
        }
        WorkloadKind::Job => {
            Api::<Job>::namespaced(c, ns)
                .get(name)
                .await
                .ok()?
                .spec?
                .selector?
                .match_labels?
        }
        // A CronJob's pods belong to Jobs that come and go: the template is what is known.
        WorkloadKind::CronJob | WorkloadKind::Pod => return None,
    };
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The pod's `Failed`/`BackOff` events; none when they cannot be read (said in the report).
async fn events(
    cluster: &Cluster,
    pod: &str,
    findings: &mut Vec<crate::report::Finding>,
) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(cluster.client(), &cluster.namespace);
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind=Pod,involvedObject.name={pod}"
    ));
    match api.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            findings.push(diagnosis::cluster_read_failed(
                "Event",
                &cluster.namespace,
                pod,
                &crate::error_chain(&e),
            ));
            vec![]
        }
    }
}

/// The Job's probe run: `check` on the target's pod (or workload), the kubelet's policy.
fn job_spec(d: &Diagnose, w: &cluster::Workload, target: &TargetReport) -> JobSpec {
    let images_from = match &target.pod {
        Some(pod) => format!("pod/{pod}"),
        None => format!("{}/{}", w.kind.to_ascii_lowercase(), w.name),
    };
    let mut args: Vec<String> = [
        "check",
        "--images-from",
        &images_from,
        "--namespace",
        &target.namespace,
        "--require",
        "auto",
        "--timeout",
        &format!("{}s", d.runner.probe_timeout().as_secs()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if d.canary {
        args.push("--canary".into());
        if let Some(node) = &target.node {
            args.extend(["--canary-node".into(), node.clone()]);
        }
    }
    let mut env = vec![
        ("ECR_PULL_PROBE_OUTPUT".to_string(), "json".to_string()),
        ("ECR_PULL_PROBE_LOG_FORMAT".to_string(), "json".to_string()),
    ];
    if let Some(node) = &target.node {
        env.push(("ECR_PULL_PROBE_NODE_NAME".into(), node.clone()));
    }
    JobSpec {
        component: "diagnose",
        service_account: w.service_account.clone(),
        image: d.runner.probe_image.clone(),
        args,
        env,
        api_token: true,
        node: target.node.clone(),
        node_selector: w.node_selector.clone(),
        deadline: d.runner.timeout,
    }
}

/// The whole diagnosis: one report, or why none could be made.
pub async fn run(d: &Diagnose) -> Result<Report, DiagnoseError> {
    let until = Instant::now() + d.runner.timeout;
    let cluster = job::connect(d.runner.namespace.as_deref(), d.runner.context.as_deref()).await?;
    let ns = cluster.namespace.clone();
    let (workload, pods) = read_target(&cluster, &d.target).await?;
    let failing = pods.first();
    let mut extra = vec![];
    let events = match failing.and_then(|p| p.metadata.name.clone()) {
        Some(name) => events(&cluster, &name, &mut extra).await,
        None => vec![],
    };
    let target_name = format!(
        "{}/{}",
        d.target.kind.to_string().to_ascii_lowercase(),
        d.target.name
    );
    let mut target = read::target_report(&target_name, &ns, failing, &events);
    target.findings.extend(extra);
    let outcome = job::run(&cluster, &job_spec(d, &workload, &target), until).await?;
    let mut report = job::report_in_log(&outcome.log).ok_or_else(|| JobError::NoReport {
        pod: outcome.pod.clone(),
        code: outcome.exit_code,
        tail: log_tail(&outcome.log),
    })?;
    let node = target.node.clone().or(outcome.node.clone());
    target.job = Some(JobRun {
        name: outcome.job.clone(),
        pod: outcome.pod.clone(),
        node: outcome.node.clone(),
        exit_code: outcome.exit_code,
    });
    match &node {
        Some(node) => {
            match node_report::fetch(&cluster, &d.node_namespace, d.node_port, node).await {
                Ok((source, theirs)) => {
                    target.findings.extend(merge(&mut report, node, &theirs));
                    target.node_report = Some(source);
                }
                Err(reason) => target
                    .findings
                    .push(diagnosis::node_report_unavailable(node, &reason)),
            }
        }
        None => target.findings.push(diagnosis::node_report_unavailable(
            "?",
            "the probe's node is not known, so no node report was read",
        )),
    }
    node_report::apply_pod_status(&mut report, &target.containers);
    report.target = Some(target);
    Ok(report)
}

/// The last lines of a log, for an error: the probe logs no secret at any level.
pub fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        "(empty)".into()
    } else {
        tail.chars().take(600).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobcli::Runner;

    fn diagnose(canary: bool) -> Diagnose {
        Diagnose {
            target: "pod/p".parse().unwrap(),
            runner: Runner {
                probe_image: "registry.example/ecr-pull-probe:0.1.0".into(),
                namespace: None,
                context: None,
                timeout: std::time::Duration::from_secs(300),
            },
            canary,
            node_namespace: "ecr-pull-probe-node".into(),
            node_port: 9464,
        }
    }

    #[test]
    fn the_job_checks_the_pod_where_it_failed_and_the_canary_only_when_asked() {
        let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_str(
            r#"{"serviceAccountName":"naming-server","nodeSelector":{"pool":"a"},"containers":[{"name":"app","image":"x"}]}"#,
        )
        .unwrap();
        let w = cluster::workload_from_spec(WorkloadKind::Pod, "ns", "p", &spec);
        let mut target = read::target_report("pod/p", "ns", None, &[]);
        target.pod = Some("p".into());
        target.node = Some("worker-a".into());
        let job = job_spec(&diagnose(false), &w, &target);
        assert_eq!(job.service_account, "naming-server");
        assert_eq!(job.node.as_deref(), Some("worker-a"));
        assert!(job.api_token, "--images-from reads the API");
        assert_eq!(
            job.args,
            [
                "check",
                "--images-from",
                "pod/p",
                "--namespace",
                "ns",
                "--require",
                "auto",
                "--timeout",
                "225s"
            ]
        );
        assert!(
            job.env
                .contains(&("ECR_PULL_PROBE_NODE_NAME".into(), "worker-a".into()))
        );
        let job = job_spec(&diagnose(true), &w, &target);
        assert!(job.args.ends_with(&[
            "--canary".into(),
            "--canary-node".into(),
            "worker-a".into()
        ]));
        // No pod: the workload, on its node selector.
        target.pod = None;
        target.node = None;
        let job = job_spec(&diagnose(false), &w, &target);
        assert_eq!(job.args[2], "pod/p", "a pod target's template is the pod");
        assert!(job.node.is_none() && job.node_selector["pool"] == "a");
    }

    #[test]
    fn a_log_tail_is_short() {
        assert_eq!(log_tail(""), "(empty)");
        assert_eq!(log_tail("a\nb\n\nc\nd\n"), "b | c | d");
        assert!(log_tail(&"x".repeat(5000)).len() <= 600);
    }
}
