//! The canary path, the ground truth of the node's side: a short-lived pod with the images,
//! `imagePullPolicy: Always`, the workload's ServiceAccount, pull secrets and placement, whose
//! container statuses say whether the kubelet could pull. The pod is always deleted: on
//! success, failure, deadline and interruption.
//!
//! Placement is the workload's whole placement (node selector, affinity, tolerations,
//! `runtimeClassName`): a canary that lands on other nodes than the workload's meets another
//! node role and credential provider config, and its pass or fail says nothing about the
//! workload. For a KEP-4412 provider the canary also carries a projected ServiceAccount token
//! volume with the provider's audience, mounted in no container: with
//! `ServiceAccountNodeAudienceRestriction` the kubelet may request a token only for audiences
//! the pod spec names, and the real pod names it the same way.
//!
//! `imagePullPolicy: Always` keeps the canary independent of what the node has cached: with
//! `IfNotPresent` a cached image would start without a registry check (see `node_cache`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use crate::cluster::{Cluster, Workload};
use crate::credential_provider::config::Provider;
use crate::reference::ImageRef;

/// Label selecting every canary pod, so leftovers are easy to find and delete.
pub const LABEL: (&str, &str) = ("app.kubernetes.io/component", "ecr-pull-probe-canary");

/// The canary's command: a path under a character device, which no image can provide.
pub const NO_ENTRYPOINT: &str = "/dev/null/ecr-pull-probe-canary-never-runs";

/// What the kubelet did with one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pull {
    /// Pulled (the container got an image ID or went past the pull).
    Pulled,
    /// The kubelet reported a pull error, with its reason and exact message.
    Failed { reason: String, message: String },
    /// No answer: not scheduled, or the deadline passed.
    Inconclusive { reason: String },
}

/// Pull states that mean the kubelet could not pull.
const PULL_ERRORS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
    "SignatureValidationFailed",
];

/// Reads one container status: `None` while the kubelet is still at it.
pub fn judge(status: &ContainerStatus) -> Option<Pull> {
    let state = status.state.as_ref()?;
    if let Some(w) = &state.waiting {
        let reason = w.reason.clone().unwrap_or_default();
        if PULL_ERRORS.contains(&reason.as_str()) {
            return Some(Pull::Failed {
                reason,
                message: w.message.clone().unwrap_or_default(),
            });
        }
    }
    // Any later state, or an image ID, means the image is on the node.
    let past_pull = state.running.is_some()
        || state.terminated.is_some()
        || state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .is_some_and(|r| {
                matches!(
                    r,
                    "CreateContainerConfigError"
                        | "CreateContainerError"
                        | "RunContainerError"
                        | "StartError"
                        | "CrashLoopBackOff"
                )
            })
        || !status.image_id.is_empty();
    past_pull.then_some(Pull::Pulled)
}

/// The audiences of the KEP-4412 providers (`tokenAttributes`) that match any of `images`,
/// in provider order, each once: the canary's projected token volumes.
pub fn token_audiences(providers: &[Provider], images: &[ImageRef]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for p in providers {
        let Some(t) = &p.token_attributes else {
            continue;
        };
        let matches = images
            .iter()
            .any(|i| p.matching_pattern(&i.name()).is_some());
        if matches && !out.contains(&t.audience) {
            out.push(t.audience.clone());
        }
    }
    out
}

/// How long the canary's projected tokens live: the API server's minimum, since nothing
/// reads them but the kubelet for the pull.
const TOKEN_EXPIRATION_SECS: i64 = 600;

/// The canary pod for `images`, under the workload's identity and placement, with a projected
/// token volume for each of `token_audiences`.
pub fn pod_manifest(
    name: &str,
    w: &Workload,
    images: &[ImageRef],
    node: Option<&str>,
    deadline_secs: i64,
    token_audiences: &[String],
) -> Pod {
    let containers: Vec<serde_json::Value> = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            json!({
                "name": format!("image-{i}"),
                "image": img.original,
                "imagePullPolicy": "Always",
                // The pull is what is tested, and nothing of the image may run under the
                // workload's identity: `/dev/null` is the runtime's character device in every
                // container, so this path cannot exist whatever the image holds, and the
                // container fails to start (CreateContainerError / StartError) after the pull.
                "command": [NO_ENTRYPOINT],
                "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}, "limits": {"cpu": "50m", "memory": "16Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
            })
        })
        .collect();
    let mut spec = json!({
        "serviceAccountName": w.service_account,
        "automountServiceAccountToken": false,
        "restartPolicy": "Never",
        "activeDeadlineSeconds": deadline_secs.max(1),
        "terminationGracePeriodSeconds": 0,
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "imagePullSecrets": w.image_pull_secrets.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "containers": containers,
    });
    let placement = &w.placement;
    match node {
        // A named node bypasses the scheduler: the workload's selector and affinity would only
        // make the kubelet refuse the pod there (it re-checks them on admission).
        Some(n) => spec["nodeName"] = json!(n),
        None => {
            if !w.node_selector.is_empty() {
                spec["nodeSelector"] = json!(w.node_selector);
            }
            if let Some(a) = &placement.affinity {
                spec["affinity"] = a.clone();
            }
        }
    }
    // Kept on a named node too: a NoExecute taint evicts a pod that does not tolerate it.
    if !placement.tolerations.is_empty() {
        spec["tolerations"] = json!(placement.tolerations);
    }
    if let Some(rc) = &placement.runtime_class_name {
        spec["runtimeClassName"] = json!(rc);
    }
    if !token_audiences.is_empty() {
        let volumes: Vec<serde_json::Value> = token_audiences
            .iter()
            .enumerate()
            .map(|(i, audience)| {
                json!({
                    "name": format!("credential-provider-token-{i}"),
                    "projected": {"sources": [{"serviceAccountToken": {
                        "audience": audience,
                        "expirationSeconds": TOKEN_EXPIRATION_SECS,
                        "path": "token",
                    }}]},
                })
            })
            .collect();
        spec["volumes"] = json!(volumes);
    }
    let labels: BTreeMap<&str, &str> = [("app.kubernetes.io/name", "ecr-pull-probe"), LABEL]
        .into_iter()
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .expect("a static pod shape")
}

/// The outcome for each image, in order, and where the canary ran.
#[derive(Debug, Clone)]
pub struct CanaryRun {
    pub pod: String,
    pub node: Option<String>,
    /// The node's labels that the canary's placement named (selector and affinity keys).
    pub node_labels: BTreeMap<String, String>,
    pub pulls: Vec<Pull>,
}

#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error("cannot create the canary pod {pod}")]
    Create {
        pod: String,
        #[source]
        source: kube::Error,
    },
}

/// Canary pods that exist (or may) and whose delete has not finished yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Waits, at most `grace`, for every canary pod's delete to finish: a process that is being
/// stopped calls this before it exits, so a SIGTERM never leaves a pod behind.
pub async fn settle(grace: Duration) {
    let until = Instant::now() + grace;
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Owns the delete of one canary pod. Dropped without [`PodGuard::delete`] having run (the
/// run was cancelled: serve stopping, a deadline), it sends the delete from a task of its
/// own, which [`settle`] waits for.
struct PodGuard {
    pods: Api<Pod>,
    name: String,
    armed: bool,
}

impl PodGuard {
    fn new(pods: &Api<Pod>, name: &str) -> PodGuard {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        PodGuard {
            pods: pods.clone(),
            name: name.to_string(),
            armed: true,
        }
    }

    /// The API server answered the create with an error: nothing was stored.
    fn disarm(mut self) {
        self.armed = false;
    }

    /// Deletes the pod; disarmed only once the API has answered, so a cancellation in the
    /// middle leaves the guard armed and its drop sends the delete again.
    async fn delete(mut self) {
        delete_pod(&self.pods, &self.name).await;
        self.armed = false;
    }
}

impl Drop for PodGuard {
    fn drop(&mut self) {
        if !self.armed {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let (pods, name) = (self.pods.clone(), std::mem::take(&mut self.name));
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    delete_pod(&pods, &name).await;
                    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(_) => {
                tracing::warn!(pod = %name, "cannot delete the canary pod; delete it by its label");
                IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

async fn delete_pod(pods: &Api<Pod>, name: &str) {
    match pods.delete(name, &DeleteParams::background()).await {
        Ok(_) => tracing::info!(pod = %name, "canary deleted"),
        // Never created after all (a create that failed before the server stored it).
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => {
            tracing::warn!(pod = %name, error = %e, "cannot delete the canary pod; delete it by its label")
        }
    }
}

/// Creates the canary, watches it until every image is decided or `until`, and deletes it.
pub async fn run(
    cluster: &Cluster,
    w: &Workload,
    images: &[ImageRef],
    node: Option<&str>,
    token_audiences: &[String],
    until: Instant,
) -> Result<CanaryRun, CanaryError> {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), &cluster.namespace);
    let name = format!("ecr-pull-probe-canary-{:08x}", rand_suffix());
    let secs = until.saturating_duration_since(Instant::now()).as_secs() as i64;
    // Guarded before the create: a create that times out on our side may still have made
    // the pod on the server's.
    let guard = PodGuard::new(&pods, &name);
    let created = pods
        .create(
            &PostParams::default(),
            &pod_manifest(&name, w, images, node, secs, token_audiences),
        )
        .await;
    if let Err(source) = created {
        // An answer from the API server means nothing was stored; anything else may have.
        if let kube::Error::Api(_) = source {
            guard.disarm();
        } else {
            guard.delete().await;
        }
        return Err(CanaryError::Create { pod: name, source });
    }
    tracing::info!(pod = %name, "canary created");
    let watched = tokio::select! {
        r = watch(&pods, &name, images.len(), until) => r,
        _ = interrupted() => None,
    };
    guard.delete().await;
    let named_node = node.is_some();
    let Watched {
        node,
        mut pulls,
        unschedulable,
    } = watched.unwrap_or_default();
    if pulls.len() < images.len() {
        let reason = match unschedulable {
            Some(r) => r,
            None => explain_pending(cluster, &name).await,
        };
        pulls.resize(images.len(), Pull::Inconclusive { reason });
    }
    let node_labels = match &node {
        Some(n) => placement_labels(cluster, n, &placement_keys(w, named_node)).await,
        None => BTreeMap::new(),
    };
    Ok(CanaryRun {
        pod: name,
        node,
        node_labels,
        pulls,
    })
}

/// The label keys the canary's placement names: the node selector's, and every key of the
/// node affinity's terms (required and preferred); for a canary sent to a named node
/// (`--canary-node`) only the hostname label.
pub fn placement_keys(w: &Workload, named_node: bool) -> Vec<String> {
    if named_node {
        return vec!["kubernetes.io/hostname".into()];
    }
    let mut keys: Vec<String> = w.node_selector.keys().cloned().collect();
    if let Some(na) = w
        .placement
        .affinity
        .as_ref()
        .and_then(|a| a.get("nodeAffinity"))
    {
        let required = na
            .pointer("/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten();
        let preferred = na
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("preference"));
        for term in required.chain(preferred) {
            let exprs = term
                .get("matchExpressions")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten();
            for key in exprs.filter_map(|e| e.get("key").and_then(|k| k.as_str())) {
                if !keys.iter().any(|k| k == key) {
                    keys.push(key.to_string());
                }
            }
        }
    }
    keys
}

/// The node's labels among `keys`; empty when the node cannot be read (the probe's role may
/// not `get nodes`: the placement is then only named, not shown).
async fn placement_labels(
    cluster: &Cluster,
    node: &str,
    keys: &[String],
) -> BTreeMap<String, String> {
    use k8s_openapi::api::core::v1::Node;
    if keys.is_empty() {
        return BTreeMap::new();
    }
    let nodes: Api<Node> = Api::all(cluster.client());
    match nodes.get(node).await {
        Ok(n) => n
            .metadata
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| keys.contains(k))
            .collect(),
        Err(e) => {
            tracing::info!(node = %node, error = %e, "cannot read the canary's node; its labels are not reported");
            BTreeMap::new()
        }
    }
}

async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => std::future::pending().await,
    }
}

/// What the polls saw last.
#[derive(Debug, Default)]
struct Watched {
    node: Option<String>,
    pulls: Vec<Pull>,
    /// The scheduler's word while the pod is not scheduled.
    unschedulable: Option<String>,
}

/// The scheduler's reason a pod is not placed: its `PodScheduled=False` condition
/// (`Unschedulable: 0/3 nodes are available: ...`).
pub fn unschedulable(pod: &Pod) -> Option<String> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    let reason = c.reason.clone().unwrap_or_else(|| "Unschedulable".into());
    Some(match &c.message {
        Some(m) if !m.is_empty() => format!("{reason}: {m}"),
        _ => reason,
    })
}

/// Polls the pod until each container is decided; pulls stay partial at the deadline.
async fn watch(pods: &Api<Pod>, name: &str, n: usize, until: Instant) -> Option<Watched> {
    let mut last = Watched::default();
    while Instant::now() < until {
        if let Ok(pod) = pods.get(name).await {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            let pending = unschedulable(&pod);
            let statuses = pod
                .status
                .and_then(|s| s.container_statuses)
                .unwrap_or_default();
            let decided: Vec<Pull> = (0..n)
                .filter_map(|i| {
                    statuses
                        .iter()
                        .find(|s| s.name == format!("image-{i}"))
                        .and_then(judge)
                })
                .collect();
            if decided.len() == n {
                return Some(Watched {
                    node,
                    pulls: decided,
                    unschedulable: None,
                });
            }
            last = Watched {
                node,
                pulls: vec![],
                unschedulable: pending,
            };
        }
        tokio::time::sleep_until((Instant::now() + Duration::from_millis(500)).min(until)).await;
    }
    Some(last)
}

/// Why a canary never got to pulling: the scheduler's or the kubelet's last word.
async fn explain_pending(cluster: &Cluster, pod: &str) -> String {
    let events: Api<Event> = Api::namespaced(cluster.client(), &cluster.namespace);
    let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
    match events.list(&lp).await {
        Ok(list) => list
            .items
            .iter()
            .rev()
            .find_map(|e| {
                e.message
                    .clone()
                    .map(|m| format!("{}: {m}", e.reason.clone().unwrap_or_default()))
            })
            .unwrap_or_else(|| "the deadline passed before the kubelet reported".into()),
        Err(_) => "the deadline passed before the kubelet reported".into(),
    }
}

/// A random enough suffix for the names of short-lived objects (canary pods, probe Jobs).
pub fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// The canary's answer for the image at `index` of the images it ran.
pub fn path_report(
    run: &Result<CanaryRun, CanaryError>,
    index: usize,
) -> crate::report::CanaryPath {
    use crate::diagnosis;
    use crate::report::{CanaryPath, Status};
    match run {
        Err(e) => CanaryPath {
            status: Status::Skip,
            pod: String::new(),
            node: None,
            node_labels: BTreeMap::new(),
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
                node_labels: run.node_labels.clone(),
                findings,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> ContainerStatus {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn judges_recorded_container_statuses() {
        // CRI-O on OpenShift, the incident's message (cri-o#2614).
        let failed = status(
            r#"{"name":"image-0","image":"x","imageID":"","ready":false,"restartCount":0,
            "state":{"waiting":{"reason":"ErrImagePull","message":"initializing source docker://818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest: Error reading manifest latest in 818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service: unauthorized: authentication required"}}}"#,
        );
        match judge(&failed) {
            Some(Pull::Failed { reason, message }) => {
                assert_eq!(reason, "ErrImagePull");
                assert!(message.contains("unauthorized: authentication required"));
            }
            other => panic!("{other:?}"),
        }
        // containerd (EKS), kubernetes/kops#16762.
        let containerd = status(
            r#"{"name":"image-0","image":"x","imageID":"","ready":false,"restartCount":0,
            "state":{"waiting":{"reason":"ErrImagePull","message":"failed to pull and unpack image \"818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest\": failed to resolve reference \"818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest\": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"}}}"#,
        );
        match judge(&containerd) {
            Some(Pull::Failed { message, .. }) => {
                assert!(message.ends_with("no basic auth credentials"))
            }
            other => panic!("{other:?}"),
        }
        let backoff = status(
            r#"{"name":"image-0","image":"x","imageID":"","ready":false,"restartCount":0,
            "state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image \"x\""}}}"#,
        );
        assert!(matches!(judge(&backoff), Some(Pull::Failed { .. })));
        let done = status(
            r#"{"name":"image-0","image":"x","imageID":"x@sha256:aa","ready":false,"restartCount":0,
            "state":{"terminated":{"exitCode":0,"reason":"Completed"}}}"#,
        );
        assert_eq!(judge(&done), Some(Pull::Pulled));
        let no_true = status(
            r#"{"name":"image-0","image":"x","imageID":"","ready":false,"restartCount":0,
            "state":{"waiting":{"reason":"CreateContainerError","message":"executable file `true` not found"}}}"#,
        );
        assert_eq!(
            judge(&no_true),
            Some(Pull::Pulled),
            "a container that cannot start was pulled"
        );
        let pending = status(
            r#"{"name":"image-0","image":"x","imageID":"","ready":false,"restartCount":0,
            "state":{"waiting":{"reason":"ContainerCreating"}}}"#,
        );
        assert_eq!(judge(&pending), None);
    }

    /// The shipped admission policy must admit exactly what `pod_manifest` makes.
    #[test]
    fn the_admission_policy_names_the_canarys_own_shape() {
        let policy = include_str!("../../manifests/rbac/canary-admission-policy.yaml");
        assert!(policy.contains(&format!("['{NO_ENTRYPOINT}']")), "{policy}");
        assert!(policy.contains(&format!("'{}'", LABEL.0)));
        assert!(policy.contains(&format!("== '{}'", LABEL.1)));
    }

    /// The admission requests the policy is evaluated on (scripts/lib/check_canary_policy.py)
    /// hold the pod this module builds: less what the API server and the pod identity webhook
    /// add (the namespace, the token's env, mount and volume), they are its output exactly.
    #[test]
    fn the_recorded_admission_requests_hold_the_canary_as_built() {
        let w = Workload {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "naming-server".into(),
            service_account: "naming-server".into(),
            image_pull_secrets: vec![],
            pull_secrets_listed: false,
            node_selector: Default::default(),
            placement: Default::default(),
            containers: vec![],
        };
        let images: Vec<ImageRef> = vec![
            "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest"
                .parse()
                .unwrap(),
        ];
        let built = serde_json::to_value(pod_manifest(
            "ecr-pull-probe-canary-7f3k2",
            &w,
            &images,
            None,
            60,
            &[],
        ))
        .unwrap();
        for review in [
            include_str!("../../tests/fixtures/admission/canary.json"),
            include_str!("../../tests/fixtures/admission/canary-irsa.json"),
            include_str!("../../tests/fixtures/admission/canary-pod-identity.json"),
        ] {
            let review: serde_json::Value = serde_json::from_str(review).unwrap();
            let mut pod = review["request"]["object"].clone();
            pod["metadata"].as_object_mut().unwrap().remove("namespace");
            pod["spec"].as_object_mut().unwrap().remove("volumes");
            for c in pod["spec"]["containers"].as_array_mut().unwrap() {
                let c = c.as_object_mut().unwrap();
                c.remove("env");
                c.remove("volumeMounts");
            }
            assert_eq!(pod, built);
        }
    }

    #[test]
    fn the_canary_pod_is_restricted_and_placed_like_the_workload() {
        let w = Workload {
            kind: "Deployment".into(),
            namespace: "ns".into(),
            name: "app".into(),
            service_account: "naming-server".into(),
            image_pull_secrets: vec!["ecr-pull".into()],
            pull_secrets_listed: true,
            node_selector: [("pool".to_string(), "a".to_string())]
                .into_iter()
                .collect(),
            containers: vec![],
            placement: Default::default(),
        };
        let images: Vec<ImageRef> = vec![
            "a.example/x:1".parse().unwrap(),
            "a.example/y:2".parse().unwrap(),
        ];
        let p = serde_json::to_value(pod_manifest("c", &w, &images, None, 60, &[])).unwrap();
        assert_eq!(p["spec"]["serviceAccountName"], "naming-server");
        assert_eq!(p["spec"]["imagePullSecrets"][0]["name"], "ecr-pull");
        assert_eq!(p["spec"]["nodeSelector"]["pool"], "a");
        assert_eq!(p["spec"]["containers"][1]["image"], "a.example/y:2");
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        for c in p["spec"]["containers"].as_array().unwrap() {
            assert_eq!(
                c["command"],
                json!([NO_ENTRYPOINT]),
                "nothing of the image runs"
            );
            assert!(c.get("args").is_none());
        }
        assert_eq!(
            p["spec"]["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(p["metadata"]["labels"][LABEL.0], LABEL.1);
        let p =
            serde_json::to_value(pod_manifest("c", &w, &images, Some("node-7"), 60, &[])).unwrap();
        assert_eq!(p["spec"]["nodeName"], "node-7");
        assert!(p["spec"].get("nodeSelector").is_none());
    }

    /// A workload placed by affinity, tolerations and a RuntimeClass (recorded from a GPU
    /// node pool's Deployment), and a KEP-4412 provider's audience.
    fn placed_workload() -> Workload {
        let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(json!({
            "serviceAccountName": "naming-server",
            "nodeSelector": {"node-role.kubernetes.io/worker": ""},
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "eks.amazonaws.com/nodegroup", "operator": "In", "values": ["gpu-a"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference":
                    {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}]}}]}},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoExecute", "tolerationSeconds": 30}],
            "runtimeClassName": "nvidia",
            "containers": [{"name": "app", "image": "a.example/x:1"}]
        }))
        .unwrap();
        crate::cluster::workload_from_spec(
            crate::cluster::WorkloadKind::Deployment,
            "ns",
            "app",
            &spec,
        )
    }

    #[test]
    fn the_canary_carries_the_workloads_affinity_tolerations_and_runtime_class() {
        let w = placed_workload();
        let images: Vec<ImageRef> = vec!["a.example/x:1".parse().unwrap()];
        let audiences = vec!["sts.amazonaws.com".to_string()];
        let p = serde_json::to_value(pod_manifest("c", &w, &images, None, 60, &audiences)).unwrap();
        let spec = &p["spec"];
        assert_eq!(
            spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                [0]["matchExpressions"][0]["values"],
            json!(["gpu-a"])
        );
        assert_eq!(spec["tolerations"][0]["key"], "nvidia.com/gpu");
        assert_eq!(spec["tolerations"][1]["tolerationSeconds"], 30);
        assert_eq!(spec["runtimeClassName"], "nvidia");
        assert_eq!(spec["nodeSelector"]["node-role.kubernetes.io/worker"], "");
        // The token is in the spec for the kubelet's audience check, and in no container.
        let source = &spec["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(source["audience"], "sts.amazonaws.com");
        assert_eq!(source["expirationSeconds"], TOKEN_EXPIRATION_SECS);
        assert!(spec["containers"][0].get("volumeMounts").is_none());
        assert_eq!(spec["automountServiceAccountToken"], false);

        // On a named node the scheduler's inputs go, what the kubelet enforces stays.
        let p = serde_json::to_value(pod_manifest("c", &w, &images, Some("n1"), 60, &[])).unwrap();
        assert!(p["spec"].get("affinity").is_none());
        assert!(p["spec"].get("volumes").is_none());
        assert_eq!(p["spec"]["tolerations"][1]["key"], "dedicated");
        assert_eq!(p["spec"]["runtimeClassName"], "nvidia");
    }

    #[test]
    fn the_labels_that_placed_the_canary_are_the_selectors_and_affinitys_keys() {
        let w = placed_workload();
        assert_eq!(
            placement_keys(&w, false),
            [
                "node-role.kubernetes.io/worker",
                "eks.amazonaws.com/nodegroup",
                "topology.kubernetes.io/zone"
            ]
        );
        assert_eq!(placement_keys(&w, true), ["kubernetes.io/hostname"]);
    }

    #[test]
    fn the_audiences_are_those_of_kep_4412_providers_matching_an_image() {
        let yaml = br#"apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages: ["*.dkr.ecr.*.amazonaws.com"]
    defaultCacheDuration: 12h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    tokenAttributes:
      serviceAccountTokenAudience: sts.amazonaws.com
      requireServiceAccount: true
      cacheType: ServiceAccount
  - name: other
    matchImages: ["registry.example.com"]
    defaultCacheDuration: 1h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    tokenAttributes:
      serviceAccountTokenAudience: example
      requireServiceAccount: false
      cacheType: Token
"#;
        let providers = crate::credential_provider::config::parse("p.yaml", yaml).unwrap();
        let ecr: Vec<ImageRef> = vec![
            "818140567777.dkr.ecr.us-east-1.amazonaws.com/team/app:1"
                .parse()
                .unwrap(),
        ];
        assert_eq!(token_audiences(&providers, &ecr), ["sts.amazonaws.com"]);
        let none: Vec<ImageRef> = vec!["quay.io/x/y:1".parse().unwrap()];
        assert!(token_audiences(&providers, &none).is_empty());
    }

    #[test]
    fn a_pending_canary_gives_the_schedulers_reason() {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"},
            "spec": {"containers": [{"name": "image-0", "image": "x"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 node(s) had untolerated taint {nvidia.com/gpu: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."}]}
        }))
        .unwrap();
        assert_eq!(
            unschedulable(&pod).unwrap(),
            "Unschedulable: 0/3 nodes are available: 3 node(s) had untolerated taint {nvidia.com/gpu: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        let scheduled: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"},
            "spec": {"containers": [{"name": "image-0", "image": "x"}]},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}
        }))
        .unwrap();
        assert_eq!(unschedulable(&scheduled), None);
    }
}
