//! The node DaemonSet's own report (`manifests/node/`) for one node, read through the API
//! server's pod proxy, and put beside the pod's paths.
//!
//! The pod proxy, not a Service's: a Service balances over every node's pod, and the answer
//! wanted is the one node's where the kubelet failed. The caller needs `list pods` and `get
//! pods/proxy` in the DaemonSet's namespace only (`manifests/rbac/diagnose.yaml`), not the
//! cluster-wide `nodes/proxy`, which reaches every kubelet's API.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{GetParams, ListParams};

use crate::cluster::Cluster;
use crate::diagnosis;
use crate::paths::kubelet::{self, SourceRows};
use crate::reference::ImageRef;
use crate::report::{
    self, Code, CredentialSource, Finding, ImageReport, KubeletAnswer, KubeletCredential,
    KubeletDecidedBy, KubeletStatus, Report, Stage,
};

/// Labels of the DaemonSet's pods (`manifests/node/common/daemonset.yaml`).
pub const NODE_POD_LABELS: &str =
    "app.kubernetes.io/name=ecr-pull-probe,app.kubernetes.io/component=node";

/// Reads the report of the DaemonSet's pod on `node`: `(pod/NS/NAME, report)`, or why not.
pub async fn fetch(
    cluster: &Cluster,
    namespace: &str,
    port: u16,
    node: &str,
) -> Result<(String, Report), String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), namespace);
    let lp = ListParams::default()
        .labels(NODE_POD_LABELS)
        .fields(&format!("spec.nodeName={node}"));
    let list = pods.list(&lp).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "not allowed to list pods in namespace {namespace} (grant `list pods` and `get pods/proxy` there, manifests/rbac/diagnose.yaml): {}",
            s.message
        ),
        _ => format!("cannot list the node DaemonSet's pods in namespace {namespace}: {}", crate::error_chain(&e)),
    })?;
    let Some(pod) = list
        .items
        .into_iter()
        .find(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
    else {
        return Err(format!(
            "the node DaemonSet does not run on {node} (no pod labelled {NODE_POD_LABELS} in namespace {namespace}); install it with `kubectl apply -k manifests/node/` (OpenShift: manifests/node/openshift/), or pass --node-namespace"
        ));
    };
    let name = pod.metadata.name.unwrap_or_default();
    let request = kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
        .get(
            &format!("{name}:{port}/proxy/report"),
            &GetParams::default(),
        )
        .map_err(|e| format!("cannot build the proxy request: {e}"))?;
    let text = cluster.client().request_text(request).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "not allowed to get pods/proxy in namespace {namespace} (manifests/rbac/diagnose.yaml): {}",
            s.message
        ),
        _ => format!("cannot read /report of pod {namespace}/{name} through the API server: {}", crate::error_chain(&e)),
    })?;
    let report: Report = serde_json::from_str(&text)
        .map_err(|e| format!("pod {namespace}/{name} did not serve a report at /report: {e}"))?;
    Ok((format!("pod/{namespace}/{name}"), report))
}

/// Puts each image's node provider path from the node's report into the Job's report and
/// settles the verdicts again under the run's policy. Returns the findings about what the
/// node's report lacked.
pub fn merge(report: &mut Report, node: &str, node_report: &Report) -> Vec<Finding> {
    let mut findings = vec![];
    for image in &mut report.images {
        let theirs = node_report
            .images
            .iter()
            .find(|i| {
                i.image == image.image || i.reference.normalized == image.reference.normalized
            })
            .filter(|i| i.paths.node_credential_provider.is_some());
        match theirs {
            Some(node_image) => {
                image.paths.node_credential_provider =
                    node_image.paths.node_credential_provider.clone();
                image.paths.node_docker_config = node_image.paths.node_docker_config.clone();
                rebuild_kubelet(image, node_image.paths.kubelet.as_ref());
            }
            None => findings.push(
                diagnosis::node_report_unavailable(
                    node,
                    &format!("its report has no node provider path for {} (add it to the DaemonSet's ECR_PULL_PROBE_IMAGES)", image.image),
                )
                .with("image", image.image.clone()),
            ),
        }
    }
    resettle(report);
    findings
}

/// The kubelet's list for the image again, now that the node's own sources are known: the
/// pod's pull secrets as the Job tried them, then the node-wide docker config and the
/// providers as the node's DaemonSet tried them (each list's rows as they were, in the
/// kubelet's order), answered as a single run answers it.
fn rebuild_kubelet(image: &mut ImageReport, node: Option<&KubeletAnswer>) {
    let ours = image.paths.kubelet.as_ref();
    let rows = |answer: Option<&KubeletAnswer>, source| -> Vec<KubeletCredential> {
        answer
            .into_iter()
            .flat_map(|k| &k.credentials)
            .filter(|c| c.source == source)
            .cloned()
            .collect()
    };
    let node_knows = |source| node.is_some_and(|k| !k.unknown_sources.contains(&source));
    let problem = |path: Option<&[Stage]>| {
        path.into_iter()
            .flatten()
            .flat_map(|s| &s.findings)
            .map(|f| f.code)
            .find(|c| kubelet::IMAGE_PROBLEMS.contains(c))
    };
    let sources = [
        SourceRows {
            source: CredentialSource::PullSecrets,
            known: true,
            rows: rows(ours, CredentialSource::PullSecrets),
            image_problem: problem(
                image
                    .paths
                    .pull_secrets
                    .as_ref()
                    .map(|p| p.stages.as_slice()),
            ),
        },
        SourceRows {
            source: CredentialSource::NodeDockerConfig,
            known: node_knows(CredentialSource::NodeDockerConfig),
            rows: rows(node, CredentialSource::NodeDockerConfig),
            image_problem: problem(
                image
                    .paths
                    .node_docker_config
                    .as_ref()
                    .map(|p| p.stages.as_slice()),
            ),
        },
        SourceRows {
            source: CredentialSource::NodeCredentialProvider,
            known: node_knows(CredentialSource::NodeCredentialProvider),
            rows: rows(node, CredentialSource::NodeCredentialProvider),
            image_problem: problem(
                image
                    .paths
                    .node_credential_provider
                    .as_ref()
                    .map(|p| p.stages.as_slice()),
            ),
        },
    ];
    let blocked = ours.is_some_and(|k| k.decided_by == KubeletDecidedBy::PodBlocked);
    // An empty list: the anonymous pull either side made stands for the kubelet's.
    let anonymous = kubelet::needs_anonymous(&sources, blocked)
        .then(|| {
            [node, ours].into_iter().flatten().find_map(|k| {
                k.credentials
                    .iter()
                    .find(|c| c.source == CredentialSource::Anonymous)
                    .map(|c| kubelet::Anonymous {
                        status: c.status,
                        stages: k.stages.clone(),
                    })
            })
        })
        .flatten();
    let Ok(img) = image.image.parse::<ImageRef>() else {
        return;
    };
    image.paths.kubelet = Some(kubelet::answer(&img, &sources, blocked, anonymous));
}

/// The kubelet's own word on the target pod: an image one of its containers waits on with a
/// failed pull (`ErrImagePull`, `ImagePullBackOff`) is one the kubelet cannot pull there,
/// whatever the list the probe could see says. Then settled again.
pub fn apply_pod_status(report: &mut Report, containers: &[report::KubeletPull]) {
    for image in &mut report.images {
        let failed = containers.iter().any(|c| {
            c.image == image.image
                && matches!(
                    c.reason.as_deref(),
                    Some("ErrImagePull" | "ImagePullBackOff")
                )
        });
        if !failed {
            continue;
        }
        let k = image.paths.kubelet.get_or_insert_with(|| KubeletAnswer {
            status: KubeletStatus::Unknown,
            decided_by: KubeletDecidedBy::CredentialList,
            credentials: vec![],
            used: None,
            unknown_sources: vec![
                CredentialSource::NodeDockerConfig,
                CredentialSource::NodeCredentialProvider,
            ],
            stages: vec![],
            findings: vec![],
        });
        if k.status != KubeletStatus::Fail {
            k.status = KubeletStatus::Fail;
            k.decided_by = KubeletDecidedBy::PodStatus;
            k.findings
                .retain(|f| f.code != Code::KUBELET_VERDICT_UNKNOWN);
        }
    }
    resettle(report);
}

/// Each image's verdict and the summary of disagreeing paths, then the run's verdict: as
/// the probe settles them, now that a path was added.
pub fn resettle(report: &mut Report) {
    let require = report.require;
    for image in &mut report.images {
        image.findings.retain(|f| {
            !matches!(
                f.code,
                Code::KUBELET_PATH_FAILS_POD_PATH_PASSES | Code::POD_PATH_FAILS_KUBELET_PATH_PASSES
            )
        });
        crate::probe::finish_image(image, require);
    }
    report.verdict = report::run_verdict(&report.identity.stages, &report.images, require);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{NodeProviderPath, Status, Verdict};

    fn node_path(status: Status) -> NodeProviderPath {
        NodeProviderPath {
            status,
            config: "/etc/eks/image-credential-provider/config.json".into(),
            node: Some("worker-a".into()),
            provider: Some("ecr-credential-provider".into()),
            match_image: None,
            auth_key: None,
            username: None,
            password_expires_at: None,
            cache_key_type: None,
            cache_duration: None,
            environment_withheld: vec![],
            stages: vec![],
            findings: vec![],
        }
    }

    /// The node DaemonSet's own answer: its provider's credential, refused.
    fn node_kubelet() -> KubeletAnswer {
        KubeletAnswer {
            status: KubeletStatus::Fail,
            decided_by: KubeletDecidedBy::CredentialList,
            credentials: vec![KubeletCredential {
                source: CredentialSource::NodeCredentialProvider,
                origin: "ecr-credential-provider".into(),
                key: Some("x.example".into()),
                username: Some("AWS".into()),
                status: Status::Fail,
            }],
            used: None,
            unknown_sources: vec![],
            stages: vec![],
            findings: vec![],
        }
    }

    #[test]
    fn a_refused_node_fails_what_the_pods_role_passed() {
        let mut job = report::fixtures::passing(&["a", "b"], 1);
        job.require = report::Require::Auto;
        let mut node = report::fixtures::passing(&["a"], 1);
        node.images[0].paths.node_credential_provider = Some(node_path(Status::Fail));
        node.images[0].paths.kubelet = Some(node_kubelet());
        let missing = merge(&mut job, "worker-a", &node);
        assert_eq!(
            job.images[0].verdict,
            Verdict::Fail,
            "the kubelet's path decides"
        );
        assert_eq!(job.verdict, Verdict::Fail);
        assert!(
            job.images[0]
                .findings
                .iter()
                .any(|f| f.code == Code::KUBELET_PATH_FAILS_POD_PATH_PASSES)
        );
        // "b" is not in the node's report: said, and its verdict stays the pod's.
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].code, Code::NODE_REPORT_UNAVAILABLE);
        assert_eq!(missing[0].evidence["image"], "b");
        assert_eq!(job.images[1].verdict, Verdict::Pass);
    }
}
