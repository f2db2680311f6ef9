//! The probe as a Job, run from outside the cluster (`diagnose`, `gate`): create it under the
//! ServiceAccount to test, pinned where the kubelet pulls, wait for its pod with a deadline,
//! read the report from the pod's log, and always delete the Job and its pod, on success,
//! failure, deadline and Ctrl-C alike (the canary's promise, `paths::canary`).
//!
//! The manifest and the reading of the log are pure and tested alone; the rest is the API.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::config::KubeConfigOptions;
use kube::{Api, Client, Config};
use serde_json::json;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::report::Report;

/// The container that runs the probe in every Job made here.
pub const CONTAINER: &str = "probe";

/// What to run: the probe's arguments and environment, under whose ServiceAccount, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// `diagnose` or `gate`: the Job's name prefix and its component label.
    pub component: &'static str,
    pub service_account: String,
    /// The probe's image (`--probe-image`): never guessed.
    pub image: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Whether the pod gets its ServiceAccount's API token: `--images-from` reads the
    /// workload with it; a fixed list of images needs no API at all.
    pub api_token: bool,
    /// The node to pin the pod to (the failing pod's): the kubelet there pulls.
    pub node: Option<String>,
    /// Else the workload's node selector.
    pub node_selector: BTreeMap<String, String>,
    /// The Job's `activeDeadlineSeconds`: the cluster ends it even if this process dies.
    pub deadline: Duration,
}

/// The Job's name: its component and a random suffix, so runs never collide.
pub fn job_name(component: &str) -> String {
    format!(
        "ecr-pull-probe-{component}-{:08x}",
        crate::paths::canary::rand_suffix()
    )
}

/// The Job for `spec`, restricted as `manifests/probe-job.yaml` is, never retried.
pub fn job_manifest(name: &str, spec: &JobSpec) -> Job {
    let labels = json!({
        "app.kubernetes.io/name": "ecr-pull-probe",
        "app.kubernetes.io/component": spec.component,
    });
    let env: Vec<serde_json::Value> = spec
        .env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let mut pod = json!({
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": spec.api_token,
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": CONTAINER,
            "image": spec.image,
            "args": spec.args,
            "env": env,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                          "limits": {"cpu": "1", "memory": "96Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
        }],
    });
    match &spec.node {
        Some(n) => pod["nodeName"] = json!(n),
        None if !spec.node_selector.is_empty() => pod["nodeSelector"] = json!(spec.node_selector),
        None => {}
    }
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.deadline.as_secs().max(1),
            // A leftover (this process killed outright) goes by itself.
            "ttlSecondsAfterFinished": 600,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }))
    .expect("a static Job shape")
}

/// The first JSON object in a pod's log that is a report. The log also holds the probe's JSON
/// log lines (stderr and stdout share it), and the report may span lines.
pub fn report_in_log(log: &str) -> Option<Report> {
    let mut pos = 0;
    for line in log.split_inclusive('\n') {
        if line.starts_with('{') {
            let mut values =
                serde_json::Deserializer::from_str(&log[pos..]).into_iter::<serde_json::Value>();
            if let Some(Ok(v)) = values.next()
                && v.get("schema_version").is_some()
                && let Ok(report) = serde_json::from_value(v)
            {
                return Some(report);
            }
        }
        pos += line.len();
    }
    None
}

/// What the Job's pod did.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub job: String,
    pub pod: String,
    pub node: Option<String>,
    pub exit_code: i32,
    pub log: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read the kubeconfig (context {context:?})")]
    Kubeconfig {
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no Kubernetes configuration: neither in-cluster nor a kubeconfig")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    #[error(
        "not allowed to {verb} {resource} in namespace {namespace}: the caller needs `{verb}` on `{resource}` there (manifests/rbac/diagnose.yaml): {message}"
    )]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        namespace: String,
        message: String,
    },
    #[error("cannot create the Job {job} in namespace {namespace}")]
    Create {
        job: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("the Job {job} never started the probe (it was deleted): {reason}")]
    NeverStarted { job: String, reason: String },
    #[error(
        "the probe's Job {job} did not finish within {secs} s (it was deleted); last seen: {last}"
    )]
    Timeout {
        job: String,
        secs: u64,
        last: String,
    },
    #[error("interrupted; the Job {job} was deleted")]
    Interrupted { job: String },
    #[error("cannot read the log of the probe's pod {pod}")]
    Log {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the probe in pod {pod} exited with code {code} and printed no report; its log ends: {tail}"
    )]
    NoReport {
        pod: String,
        code: i32,
        tail: String,
    },
}

/// A client for the kubeconfig's `context` (else the current one, or in-cluster), with
/// timeouts on every request: a hung API server must not hang the run.
pub async fn connect(namespace: Option<&str>, context: Option<&str>) -> Result<Cluster, JobError> {
    let mut config = match context {
        Some(c) => {
            let options = KubeConfigOptions {
                context: Some(c.to_string()),
                ..Default::default()
            };
            Config::from_kubeconfig(&options)
                .await
                .map_err(|source| JobError::Kubeconfig {
                    context: c.to_string(),
                    source,
                })?
        }
        None => Config::infer().await.map_err(JobError::Infer)?,
    };
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    config.write_timeout = Some(Duration::from_secs(30));
    let namespace = namespace
        .map(str::to_string)
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config).map_err(JobError::Client)?;
    Ok(Cluster::from_client(client, namespace))
}

fn forbidden(e: &kube::Error) -> Option<String> {
    match e {
        kube::Error::Api(s) if s.code == 403 => Some(s.message.clone()),
        _ => None,
    }
}

/// Runs the Job to its end, `until` at the latest, and deletes it whatever happened.
pub async fn run(
    cluster: &Cluster,
    spec: &JobSpec,
    until: Instant,
) -> Result<JobOutcome, JobError> {
    let ns = cluster.namespace.clone();
    let jobs: Api<Job> = Api::namespaced(cluster.client(), &ns);
    let pods: Api<Pod> = Api::namespaced(cluster.client(), &ns);
    let name = job_name(spec.component);
    // Listening before the create: from here on Ctrl-C is ours, so it cannot kill the process
    // between the create and the delete.
    let mut stop = Stop::new();
    let manifest = job_manifest(&name, spec);
    let params = PostParams::default();
    let created = tokio::select! {
        r = jobs.create(&params, &manifest) => r,
        _ = stop.wait() => {
            cleanup(&jobs, &pods, &name).await;
            return Err(JobError::Interrupted { job: name });
        }
    };
    if let Err(source) = created {
        if let Some(message) = forbidden(&source) {
            return Err(JobError::Forbidden {
                verb: "create",
                resource: "jobs (batch)",
                namespace: ns,
                message,
            });
        }
        // An answer from the API server means nothing was stored; anything else may have.
        if !matches!(source, kube::Error::Api(_)) {
            cleanup(&jobs, &pods, &name).await;
        }
        return Err(JobError::Create {
            job: name,
            namespace: ns,
            source,
        });
    }
    tracing::info!(job = %name, namespace = %ns, "probe Job created");
    let secs = until.saturating_duration_since(Instant::now()).as_secs();
    let mut last = String::from("no pod yet");
    let result = tokio::select! {
        r = wait(cluster, &jobs, &pods, &name, &mut last) => r,
        _ = tokio::time::sleep_until(until) => Err(JobError::Timeout { job: name.clone(), secs, last: String::new() }),
        _ = stop.wait() => Err(JobError::Interrupted { job: name.clone() }),
    };
    let result = match result {
        Err(JobError::Timeout { job, secs, .. }) => Err(JobError::Timeout { job, secs, last }),
        r => r,
    };
    cleanup(&jobs, &pods, &name).await;
    result
}

/// The pod's state in a few words, for an error at the deadline.
fn describe(pod: &Pod) -> String {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let waiting = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .map(|w| {
            format!(
                " ({}{})",
                w.reason.clone().unwrap_or_default(),
                w.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    format!(
        "pod {} {phase}{waiting}",
        pod.metadata.name.clone().unwrap_or_default()
    )
}

/// Waiting reasons of the probe's own container that no wait will cure.
const STUCK: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
];

/// Polls the Job's pod until its probe container terminated. `last` keeps what was seen.
async fn wait(
    cluster: &Cluster,
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    name: &str,
    last: &mut String,
) -> Result<JobOutcome, JobError> {
    let selector = ListParams::default().labels(&format!("job-name={name}"));
    loop {
        match pods.list(&selector).await {
            Ok(list) => {
                if let Some(pod) = list.items.first() {
                    *last = describe(pod);
                    if let Some(done) = finished(pod) {
                        let pod_name = pod.metadata.name.clone().unwrap_or_default();
                        let log = pods
                            .logs(
                                &pod_name,
                                &kube::api::LogParams {
                                    container: Some(CONTAINER.into()),
                                    ..Default::default()
                                },
                            )
                            .await
                            .map_err(|source| JobError::Log {
                                pod: pod_name.clone(),
                                source,
                            })?;
                        return Ok(JobOutcome {
                            job: name.to_string(),
                            pod: pod_name,
                            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                            exit_code: done,
                            log,
                        });
                    }
                    if let Some(reason) = stuck(pod) {
                        return Err(JobError::NeverStarted {
                            job: name.to_string(),
                            reason,
                        });
                    }
                } else if let Some(reason) = job_refused(cluster, jobs, name).await {
                    return Err(JobError::NeverStarted {
                        job: name.to_string(),
                        reason,
                    });
                }
            }
            Err(e) => {
                if let Some(message) = forbidden(&e) {
                    return Err(JobError::Forbidden {
                        verb: "list",
                        resource: "pods",
                        namespace: cluster.namespace.clone(),
                        message,
                    });
                }
                tracing::debug!(error = %e, "cannot list the Job's pods; retrying");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The probe container's exit code once it has terminated.
fn finished(pod: &Pod) -> Option<i32> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let probe = statuses.iter().find(|c| c.name == CONTAINER)?;
    probe
        .state
        .as_ref()?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

/// Why the probe's pod will never run: its own image cannot be pulled, its config is broken.
fn stuck(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let w = statuses
        .iter()
        .find(|c| c.name == CONTAINER)?
        .state
        .as_ref()?
        .waiting
        .as_ref()?;
    let reason = w.reason.as_deref()?;
    STUCK.contains(&reason).then(|| {
        format!(
            "the probe's container is {reason}: {}",
            w.message.clone().unwrap_or_default()
        )
    })
}

/// The Job controller's refusal to make the pod (quota, admission): its `FailedCreate`
/// events, or a `Failed` condition.
async fn job_refused(cluster: &Cluster, jobs: &Api<Job>, name: &str) -> Option<String> {
    let events: Api<Event> = Api::namespaced(cluster.client(), &cluster.namespace);
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind=Job,involvedObject.name={name}"
    ));
    if let Ok(list) = events.list(&lp).await
        && let Some(e) = list
            .items
            .iter()
            .rev()
            .find(|e| e.reason.as_deref() == Some("FailedCreate"))
    {
        return Some(format!(
            "FailedCreate: {}",
            e.message.clone().unwrap_or_default()
        ));
    }
    let job = jobs.get(name).await.ok()?;
    job.status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .map(|c| {
            format!(
                "{}: {}",
                c.reason.unwrap_or_default(),
                c.message.unwrap_or_default()
            )
        })
}

/// Deletes the Job (its pods with it, in the background) and the pods themselves, so nothing
/// is left even where the garbage collector is slow. Bounded: a dead API server must not
/// hold the process; what could not be deleted is named with the command that will.
async fn cleanup(jobs: &Api<Job>, pods: &Api<Pod>, name: &str) {
    let work = async {
        match jobs.delete(name, &DeleteParams::background()).await {
            Ok(_) => tracing::info!(job = %name, "probe Job deleted"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::warn!(job = %name, error = %e,
                "cannot delete the probe's Job; delete it with `kubectl delete job {name}`"),
        }
        let selector = ListParams::default().labels(&format!("job-name={name}"));
        if let Ok(list) = pods.list(&selector).await {
            for pod in list.items {
                let pod = pod.metadata.name.unwrap_or_default();
                match pods.delete(&pod, &DeleteParams::background()).await {
                    Ok(_) | Err(kube::Error::Api(_)) => {}
                    Err(e) => {
                        tracing::warn!(pod = %pod, error = %e, "cannot delete the probe's pod")
                    }
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(15), work)
        .await
        .is_err()
    {
        tracing::warn!(job = %name, "the API did not answer the delete; delete it with `kubectl delete job {name}`");
    }
}

/// SIGINT and SIGTERM, listened to from creation on.
struct Stop {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Stop {
    fn new() -> Stop {
        use tokio::signal::unix::{SignalKind, signal};
        Stop {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn wait(&mut self) {
        let int = async {
            match self.int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let term = async {
            match self.term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! { _ = int => {}, _ = term => {} }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            component: "diagnose",
            service_account: "naming-server".into(),
            image: "registry.example/ecr-pull-probe:0.1.0".into(),
            args: vec!["check".into(), "--images-from".into(), "pod/p".into()],
            env: vec![("ECR_PULL_PROBE_LOG_FORMAT".into(), "json".into())],
            api_token: true,
            node: Some("worker-a".into()),
            node_selector: [("pool".to_string(), "a".to_string())]
                .into_iter()
                .collect(),
            deadline: Duration::from_secs(300),
        }
    }

    #[test]
    fn the_job_runs_once_under_the_targets_account_on_its_node() {
        let j = serde_json::to_value(job_manifest("ecr-pull-probe-diagnose-1", &spec())).unwrap();
        assert_eq!(j["spec"]["backoffLimit"], 0);
        assert_eq!(j["spec"]["activeDeadlineSeconds"], 300);
        let pod = &j["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "naming-server");
        assert_eq!(pod["nodeName"], "worker-a");
        assert!(pod.get("nodeSelector").is_none(), "the node wins");
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["automountServiceAccountToken"], true);
        let c = &pod["containers"][0];
        assert_eq!(c["name"], CONTAINER);
        assert_eq!(c["image"], "registry.example/ecr-pull-probe:0.1.0");
        assert_eq!(c["args"][2], "pod/p");
        assert_eq!(c["env"][0]["name"], "ECR_PULL_PROBE_LOG_FORMAT");
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        let mut s = spec();
        s.node = None;
        let j = serde_json::to_value(job_manifest("x", &s)).unwrap();
        assert_eq!(j["spec"]["template"]["spec"]["nodeSelector"]["pool"], "a");
    }

    #[test]
    fn the_report_is_found_among_the_logs_lines() {
        let report = crate::render::json(&crate::report::fixtures::passing(&["a"], 1));
        assert!(report.contains('\n'), "pretty-printed, over many lines");
        let log = format!(
            "{{\"level\":\"WARN\",\"fields\":{{\"message\":\"x\"}}}}\nnot json\n{report}\n{{\"level\":\"INFO\"}}\n"
        );
        let r = report_in_log(&log).expect("the report");
        assert_eq!(r.images[0].image, "a");
        assert!(report_in_log("{\"level\":\"WARN\"}\n{broken\n").is_none());
        assert!(report_in_log("").is_none());
    }
}
