//! --images-from against a FAKE Kubernetes API (common::fake_api) for the objects, and the
//! real local registry for the pulls.

mod common;

use common::fake_api::{
    FakeApi, NamingServer, node, pod_status, service_account_path, status, unschedulable_pod,
};
use common::report::{Severity, Status, finding_of, stage_of};
use common::*;
use serde_json::{Value, json};

const NS: &str = "consultingfirm";

fn secret_path(name: &str) -> String {
    common::fake_api::secret_path(NS, name)
}

/// The naming-server workload, both containers `app`, with Secret `ecr-pull` holding the
/// stack registry's password.
fn naming_server(app: &str) -> NamingServer {
    let s = Stack::get();
    NamingServer::new(NS, app).docker_secret(
        "ecr-pull",
        s.var("STACK_ECR_HOST"),
        "AWS",
        s.var("STACK_REGISTRY_PASSWORD"),
    )
}

fn run_with(api: &FakeApi, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), NS);
    let mut a = vec!["check"];
    a.extend_from_slice(args);
    probe(&a, &[("KUBECONFIG", Some(kubeconfig.to_str().unwrap()))])
}

#[test]
fn a_deployments_images_and_pull_secrets_are_checked() {
    let s = Stack::get();
    let (init, app) = (
        s.image("naming-server-service:v1.4.2"),
        s.image("naming-server-service:latest"),
    );
    let api = naming_server(&app).init(&init).start();
    let run = run_with(&api, &["--images-from", "deployment/naming-server"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.typed();
    let w = r.workload.as_ref().expect("a workload");
    assert_eq!(w.kind, "Deployment");
    assert_eq!(w.service_account, "naming-server");
    assert_eq!(w.image_pull_secrets, ["ecr-pull"]);
    assert!(w.containers[0].init);
    let images: Vec<&str> = r.images.iter().map(|i| i.image.as_str()).collect();
    assert_eq!(images, vec![init.as_str(), app.as_str()]);
    for i in &r.images {
        let p = i.paths.pull_secrets.as_ref().expect("a pull-secret path");
        assert_eq!(p.status, Status::Pass);
        assert_eq!(p.source, format!("secret/{NS}/ecr-pull"));
    }
    let seen = api.seen.lock().unwrap().clone();
    assert!(seen.contains(&secret_path("ecr-pull")));
    let token = s.var("STACK_REGISTRY_PASSWORD");
    assert!(!run.stdout.contains(token) && !run.stderr.contains(token));
}

#[test]
fn without_its_own_secrets_a_pod_gets_its_serviceaccounts_and_missing_ones_are_named() {
    let s = Stack::get();
    let app = s.image("naming-server-service:latest");
    let api = NamingServer::new(NS, &app)
        .pod_pull_secrets(&[])
        .sa_pull_secrets(&["gone", "expired-ecr"])
        .secret(
            "gone",
            404,
            status(404, "NotFound", "secrets \"gone\" not found"),
        )
        .docker_secret("expired-ecr", s.var("STACK_ECR_HOST"), "AWS", "stale")
        .start();
    // On a node known to hold nothing else (no node-wide docker config, no provider), the
    // pull secrets are the kubelet's whole list.
    let run = run_with(
        &api,
        &[
            "--images-from",
            "deploy/naming-server",
            "--node-docker-config",
            NO_NODE_DOCKER_CONFIG,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    let r = run.typed();
    let img = &r.images[0];
    let p = img.paths.pull_secrets.as_ref().expect("a pull-secret path");
    assert_eq!(p.status, Status::Fail);
    assert_eq!(p.source, format!("secret/{NS}/expired-ecr"));
    let missing = finding_of(&p.findings, "PULL_SECRET_MISSING");
    assert_eq!(missing.evidence["secret"], format!("{NS}/gone"));
    assert_eq!(missing.evidence["referenced_by"], "serviceaccount");
    assert_eq!(
        stage_of(&p.stages, "registry_auth").findings[0].code,
        "REGISTRY_UNAUTHORIZED"
    );
    assert_eq!(
        img.finding("KUBELET_PATH_FAILS_POD_PATH_PASSES").severity,
        Severity::Warning
    );
}

#[test]
fn forbidden_secrets_and_missing_workloads() {
    let s = Stack::get();
    let app = s.image("naming-server-service:latest");
    let api = NamingServer::new(NS, &app)
        .secret(
            "ecr-pull",
            403,
            status(
                403,
                "Forbidden",
                "secrets \"ecr-pull\" is forbidden: User \"system:serviceaccount:consultingfirm:ecr-pull-probe\" cannot get resource \"secrets\" in API group \"\" in the namespace \"consultingfirm\"",
            ),
        )
        .start();
    let run = run_with(&api, &["--images-from", "deployment/naming-server"]);
    let r = run.typed();
    let p = r.images[0].paths.pull_secrets.as_ref().unwrap();
    assert_eq!(p.findings[0].code, "CLUSTER_READ_FAILED");
    assert!(p.findings[0].summary.contains("forbidden"));

    let run = run_with(&api, &["--images-from", "deployment/no-such"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("Deployment consultingfirm/no-such"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

/// [`naming_server`] with a canary's routes: the pod is created, then answers `pod_answers`
/// in turn, is deleted; the namespace's events are `events`.
fn canary_table(app: &str, pod_answers: Vec<Value>, events: Value) -> NamingServer {
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    naming_server(app)
        .route(
            format!("POST {pods}"),
            vec![(201, pod_status(NS, None, json!([])))],
        )
        .route(
            format!("GET {pods}/*"),
            pod_answers.into_iter().map(|v| (200, v)).collect(),
        )
        .route(
            format!("DELETE {pods}/*"),
            vec![(200, pod_status(NS, None, json!([])))],
        )
        .route(
            format!("GET /api/v1/namespaces/{NS}/events"),
            vec![(200, events)],
        )
}

fn waiting(reason: &str, message: &str) -> Value {
    json!([{"name": "image-0", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}}])
}

fn run_canary(table: NamingServer, extra: &[&str]) -> (FakeApi, Run) {
    let api = table.start();
    let mut args = vec!["--images-from", "deployment/naming-server", "--canary"];
    args.extend_from_slice(extra);
    let run = run_with(&api, &args);
    (api, run)
}

// CRI-O's message for the incident (cri-o/cri-o#2614), as the kubelet reports it.
const CRIO_401: &str = "initializing source docker://818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest: Error reading manifest latest in 818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service: unauthorized: authentication required";

/// Issue 9: the canary is driven by what containerd really said on the local stack
/// (`tests/fixtures/runtime/`), and its findings carry the code the message stands for.
#[test]
fn the_canary_reads_containerds_recorded_messages() {
    let recorded: Value =
        serde_json::from_str(include_str!("fixtures/runtime/containerd-1.6.20_ds1.json")).unwrap();
    let app = Stack::get().image("naming-server-service:latest");
    for (scenario, code) in [
        ("missing_tag", "MANIFEST_NOT_FOUND"),
        ("no_credentials", "REGISTRY_UNAUTHORIZED"),
        ("platform_absent", "PLATFORM_NOT_IN_INDEX"),
    ] {
        let message = recorded["messages"][scenario]
            .as_str()
            .unwrap()
            .replace("{registry}", Stack::get().var("STACK_REGISTRY"));
        let answers = vec![pod_status(
            NS,
            Some("worker-a"),
            waiting("ErrImagePull", &message),
        )];
        let (_api, run) = run_canary(
            canary_table(
                &app,
                answers,
                json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []}),
            ),
            &[],
        );
        let r = run.typed();
        let f = &r.images[0].paths.kubelet_canary.as_ref().unwrap().findings[0];
        assert_eq!(f.code, code, "{scenario}: {f:#?}");
        assert_eq!(f.evidence["kubelet_message"], message);
    }
}

#[test]
fn the_canary_shows_the_kubelet_failing_where_the_pod_succeeds() {
    let app = Stack::get().image("naming-server-service:latest");
    let answers = vec![
        pod_status(NS, Some("worker-a"), waiting("ContainerCreating", "")),
        pod_status(NS, Some("worker-a"), waiting("ErrImagePull", CRIO_401)),
    ];
    let (api, run) = run_canary(
        canary_table(
            &app,
            answers,
            json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []}),
        ),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.typed();
    let img = &r.images[0];
    let c = img.paths.kubelet_canary.as_ref().expect("a canary path");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.node.as_deref(), Some("worker-a"));
    let f = &c.findings[0];
    // Issue 9: the kubelet's message read as a code the other paths use.
    assert_eq!(f.code, "REGISTRY_UNAUTHORIZED");
    assert_eq!(f.evidence["kubelet_message"], CRIO_401);
    assert_eq!(img.paths.pod_identity, Status::Pass);
    assert!(img.codes().contains(&"KUBELET_PATH_FAILS_POD_PATH_PASSES"));

    let requests = api.requests.lock().unwrap().clone();
    let (_, created) = requests
        .iter()
        .find(|(k, _)| k.starts_with("POST "))
        .expect("a canary was created");
    let pod: Value = serde_json::from_str(created).unwrap();
    assert_eq!(pod["spec"]["serviceAccountName"], "naming-server");
    assert_eq!(pod["spec"]["imagePullSecrets"][0]["name"], "ecr-pull");
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(
        pod["spec"]["nodeSelector"]["node-role.kubernetes.io/worker"],
        ""
    );
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/component"],
        "ecr-pull-probe-canary"
    );
    let name = pod["metadata"]["name"].as_str().unwrap();
    assert!(
        requests
            .iter()
            .any(|(k, _)| k == &format!("DELETE /api/v1/namespaces/{NS}/pods/{name}")),
        "the canary is deleted"
    );
}

#[test]
fn a_pulled_canary_passes_and_an_unscheduled_one_is_inconclusive_and_deleted() {
    let app = Stack::get().image("naming-server-service:latest");
    let pulled = json!([{"name": "image-0", "image": "x", "imageID": "x@sha256:aa", "ready": false, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
    let (_, run) = run_canary(
        canary_table(
            &app,
            vec![pod_status(NS, Some("worker-b"), pulled)],
            json!({"items": []}),
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.typed().images[0]
            .paths
            .kubelet_canary
            .as_ref()
            .unwrap()
            .status,
        Status::Pass
    );

    let events = json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [{
        "metadata": {"name": "ev1", "namespace": NS}, "involvedObject": {"kind": "Pod", "name": "x"},
        "reason": "FailedScheduling", "type": "Warning",
        "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}]});
    let (api, run) = run_canary(
        canary_table(&app, vec![pod_status(NS, None, json!([]))], events),
        &["--canary-timeout", "2s"],
    );
    assert_eq!(
        run.code, 0,
        "an unverified path fails nothing: {}",
        run.stdout
    );
    let r = run.typed();
    let c = r.images[0].paths.kubelet_canary.as_ref().unwrap();
    assert_eq!(c.status, Status::Skip);
    assert_eq!(c.findings[0].code, "CANARY_INCONCLUSIVE");
    assert!(
        c.findings[0].evidence["reason"]
            .as_str()
            .unwrap()
            .contains("FailedScheduling: 0/3 nodes")
    );
    assert!(
        api.requests
            .lock()
            .unwrap()
            .iter()
            .any(|(k, _)| k.starts_with("DELETE "))
    );
}

/// Issue 22: a workload placed by affinity, tolerations and a RuntimeClass gets a canary placed
/// the same way, and the report names the node's labels that placed it.
#[test]
fn a_canary_for_a_workload_with_affinity_and_tolerations_carries_them() {
    let app = Stack::get().image("naming-server-service:latest");
    let pulled = json!([{"name": "image-0", "image": "x", "imageID": "x@sha256:aa", "ready": false, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
    let mut table = canary_table(
        &app,
        vec![pod_status(NS, Some("gpu-a-1"), pulled)],
        json!({"items": []}),
    );
    let spec = &mut table.deployment["spec"]["template"]["spec"];
    spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "eks.amazonaws.com/nodegroup", "operator": "In", "values": ["gpu-a"]}]}]}}});
    spec["tolerations"] =
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    spec["runtimeClassName"] = json!("nvidia");
    let table = table.route(
        "GET /api/v1/nodes/gpu-a-1",
        vec![(
            200,
            node(
                "gpu-a-1",
                json!({"eks.amazonaws.com/nodegroup": "gpu-a", "node-role.kubernetes.io/worker": "",
                       "kubernetes.io/hostname": "gpu-a-1", "kubernetes.io/arch": "amd64"}),
            ),
        )],
    );
    let (api, run) = run_canary(table, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.typed();
    let c = r.images[0].paths.kubelet_canary.as_ref().unwrap();
    assert_eq!(c.status, Status::Pass);
    assert_eq!(c.node.as_deref(), Some("gpu-a-1"));
    let labels: Vec<(&str, &str)> = c
        .node_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("eks.amazonaws.com/nodegroup", "gpu-a"),
            ("node-role.kubernetes.io/worker", "")
        ],
        "the labels the selector and the affinity named, no others"
    );

    let requests = api.requests.lock().unwrap().clone();
    let (_, created) = requests
        .iter()
        .find(|(k, _)| k.starts_with("POST "))
        .expect("a canary was created");
    let pod: Value = serde_json::from_str(created).unwrap();
    assert_eq!(
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0],
        json!({"key": "eks.amazonaws.com/nodegroup", "operator": "In", "values": ["gpu-a"]})
    );
    assert_eq!(
        pod["spec"]["tolerations"],
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    );
    assert_eq!(pod["spec"]["runtimeClassName"], "nvidia");
    assert_eq!(
        pod["spec"]["nodeSelector"]["node-role.kubernetes.io/worker"],
        ""
    );
}

/// Issue 22: with a KEP-4412 provider for the image, the canary names the provider's audience
/// in a projected token volume (mounted nowhere), as the real pod must for the kubelet to be
/// allowed the token under ServiceAccountNodeAudienceRestriction.
#[test]
fn a_canary_carries_the_kep_4412_providers_audience() {
    let app = Stack::get().image("naming-server-service:latest");
    let pulled = json!([{"name": "image-0", "image": "x", "imageID": "x@sha256:aa", "ready": false, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("provider.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: ecr-credential-provider\n    matchImages: [\"*.dkr.ecr.*.amazonaws.com\"]\n    defaultCacheDuration: 12h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    tokenAttributes:\n      serviceAccountTokenAudience: sts.amazonaws.com\n      requireServiceAccount: true\n      cacheType: ServiceAccount\n",
    )
    .unwrap();
    let (api, run) = run_canary(
        canary_table(
            &app,
            vec![pod_status(NS, Some("worker-a"), pulled)],
            json!({"items": []}),
        ),
        &[
            "--credential-provider-config",
            config.to_str().unwrap(),
            "--credential-provider-bin-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    let requests = api.requests.lock().unwrap().clone();
    // The node path's TokenRequest is a POST too.
    let (_, created) = requests
        .iter()
        .find(|(k, _)| k == &format!("POST /api/v1/namespaces/{NS}/pods"))
        .unwrap_or_else(|| panic!("no canary was created: {}", run.stderr));
    let pod: Value = serde_json::from_str(created).unwrap();
    assert_eq!(
        pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "sts.amazonaws.com"
    );
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert!(pod["spec"]["containers"][0].get("volumeMounts").is_none());
}

/// Issue 22: a canary the scheduler cannot place is inconclusive with the scheduler's own
/// reason (its PodScheduled condition), not a pass or a fail.
#[test]
fn a_pending_canary_is_inconclusive_with_the_schedulers_reason() {
    let app = Stack::get().image("naming-server-service:latest");
    let why = "0/3 nodes are available: 3 node(s) had untolerated taint {nvidia.com/gpu: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    let (_api, run) = run_canary(
        canary_table(&app, vec![unschedulable_pod(NS, why)], json!({"items": []})),
        &["--canary-timeout", "2s"],
    );
    let r = run.typed();
    let c = r.images[0].paths.kubelet_canary.as_ref().unwrap();
    assert_eq!(c.status, Status::Skip);
    assert_eq!(c.node, None);
    assert_eq!(c.findings[0].code, "CANARY_INCONCLUSIVE");
    assert_eq!(
        c.findings[0].evidence["reason"],
        format!("Unschedulable: {why}")
    );
}

#[test]
fn the_canary_needs_a_workload() {
    let run = probe(
        &[
            "check",
            &Stack::get().image("naming-server-service:latest"),
            "--canary",
        ],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--canary needs --images-from"),
        "{}",
        run.stderr
    );
}

#[test]
fn openshifts_global_pull_secret_is_used_when_asked_for() {
    let s = Stack::get();
    let app = s.image("naming-server-service:latest");
    let mut api = NamingServer::new(NS, &app).pod_pull_secrets(&[]);
    api.routes = api.routes.get(
        common::fake_api::secret_path("openshift-config", "pull-secret"),
        200,
        common::fake_api::docker_secret(
            "openshift-config",
            "pull-secret",
            &docker_config(
                s.var("STACK_ECR_HOST"),
                "AWS",
                s.var("STACK_REGISTRY_PASSWORD"),
            ),
        ),
    );
    let api = api.start();
    let run = run_with(
        &api,
        &[
            "--images-from",
            "deployment/naming-server",
            "--global-pull-secret",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let r = run.typed();
    let paths = &r.images[0].paths;
    // Node-wide config (what the machine-config operator writes to every node's
    // /var/lib/kubelet/config.json), not one of the pod's pull secrets (issue 21 point 3).
    assert!(paths.pull_secrets.is_none());
    let p = paths
        .node_docker_config
        .as_ref()
        .expect("a node docker config path");
    assert_eq!(p.status, Status::Pass);
    assert_eq!(
        p.source, "secret/openshift-config/pull-secret",
        "the hosted-control-plane secret is absent and skipped"
    );
    let k = paths.kubelet.as_ref().expect("the kubelet's list");
    assert_eq!(k.credentials[0].source, "node_docker_config");
    assert_eq!(k.used, Some(0));
    // Without the flag, the pod has no pull secrets and the node's sources are not known:
    // nothing of the kubelet's side is checked.
    let run = run_with(&api, &["--images-from", "deployment/naming-server"]);
    let paths = &run.typed().images[0].paths;
    assert!(paths.pull_secrets.is_none());
    assert!(paths.kubelet.is_none());
}

/// Issue 15: kube-client logged the whole body of an answer it could not decode at WARN; a
/// malformed Secret must not reach stderr, at any level.
#[test]
fn a_malformed_secret_from_the_api_never_reaches_the_logs() {
    let s = Stack::get();
    let app = s.image("naming-server-service:latest");
    let secret_value = "c3VwZXItc2VjcmV0LXB1bGwtcGFzc3dvcmQ";
    // `data` must be a map of strings: a list makes the Secret undecodable for kube-client.
    let malformed = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "ecr-pull", "namespace": NS},
        "type": "kubernetes.io/dockerconfigjson",
        "data": [secret_value]});
    let api = NamingServer::new(NS, &app)
        .secret("ecr-pull", 200, malformed)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), NS);
    let run = probe(
        &["check", "--images-from", "deployment/naming-server"],
        &[
            ("KUBECONFIG", Some(kubeconfig.to_str().unwrap())),
            ("RUST_LOG", Some("trace")),
        ],
    );
    assert!(
        api.seen.lock().unwrap().contains(&secret_path("ecr-pull")),
        "the Secret was read"
    );
    assert!(!run.stderr.contains(secret_value), "{}", run.stderr);
    assert!(!run.stdout.contains(secret_value));
}

/// Waits until the fake API has been asked to create the canary; returns the pod's name.
fn created_canary(api: &FakeApi) -> String {
    let start = std::time::Instant::now();
    loop {
        let created = api
            .requests
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("POST ") && k.ends_with("/pods"))
            .map(|(_, body)| serde_json::from_str::<Value>(body).unwrap());
        if let Some(pod) = created {
            return pod["metadata"]["name"].as_str().unwrap().to_string();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "no canary was created"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn deleted(api: &FakeApi, pod: &str) -> bool {
    api.requests
        .lock()
        .unwrap()
        .iter()
        .any(|(k, _)| k.starts_with("DELETE ") && k.ends_with(&format!("/pods/{pod}")))
}

/// A canary the kubelet never decides on, so the run is still waiting when it is stopped.
fn pending_canary_api() -> FakeApi {
    let app = Stack::get().image("naming-server-service:latest");
    canary_table(
        &app,
        vec![pod_status(
            NS,
            Some("worker-a"),
            waiting("ContainerCreating", ""),
        )],
        json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []}),
    )
    .start()
}

/// Issue 15: the README promises the canary is deleted on SIGINT and SIGTERM; `check` keeps
/// that promise and still prints its report.
#[test]
fn a_stopped_check_deletes_its_canary() {
    for signal in ["TERM", "INT"] {
        let api = pending_canary_api();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.kubeconfig(dir.path(), NS);
        let mut child = probe_command(
            &[
                "check",
                "--images-from",
                "deployment/naming-server",
                "--canary",
                "--canary-timeout",
                "60s",
            ],
            &[("KUBECONFIG", Some(kubeconfig.to_str().unwrap()))],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let pod = created_canary(&api);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let status = signal_and_wait(&mut child, signal, std::time::Duration::from_secs(20));
        assert!(status.is_some(), "SIG{signal} did not end the run");
        assert!(deleted(&api, &pod), "SIG{signal} left canary {pod} behind");
    }
}

/// Issue 15: `serve` dropped its check loop on SIGTERM, and with it the canary's delete.
#[test]
fn a_stopped_serve_deletes_its_canary() {
    for signal in ["TERM", "INT"] {
        let api = pending_canary_api();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.kubeconfig(dir.path(), NS);
        let mut server = ServeProcess::start(
            &[
                "--interval",
                "1h",
                "--images-from",
                "deployment/naming-server",
                "--canary",
                "--canary-timeout",
                "60s",
            ],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        );
        let pod = created_canary(&api);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let status = server.signal_and_wait(signal, std::time::Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "SIG{signal}: {status:?}"
        );
        assert!(deleted(&api, &pod), "SIG{signal} left canary {pod} behind");
    }
}

/// Issue 15: the canary runs under the workload's ServiceAccount, so it holds only the
/// workload's own images, and nothing of them runs (the entrypoint cannot exist).
#[test]
fn the_canary_holds_only_the_workloads_images_and_runs_none_of_them() {
    let s = Stack::get();
    let other = s.image("multiarch:latest");
    let api = pending_canary_api();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), NS);
    let run = probe(
        &[
            "check",
            &other,
            "--images-from",
            "deployment/naming-server",
            "--canary",
            "--canary-timeout",
            "1s",
        ],
        &[("KUBECONFIG", Some(kubeconfig.to_str().unwrap()))],
    );
    let r = run.typed();
    let pod: Value = api
        .requests
        .lock()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("POST "))
        .map(|(_, b)| serde_json::from_str(b).unwrap())
        .expect("a canary was created");
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert!(!containers.is_empty());
    for c in containers {
        assert_ne!(
            c["image"],
            other.as_str(),
            "a command-line image in the canary"
        );
        let command = c["command"][0].as_str().unwrap();
        assert!(command.starts_with("/dev/null/"), "{command}");
    }
    assert!(r.image(&other).paths.kubelet_canary.is_none());
}

/// KEP-4412 with `--images-from`: the node's provider has `tokenAttributes`, so the probe asks
/// the API for a token of the workload's ServiceAccount (a TokenRequest for the provider's
/// audience, as the kubelet does) and sends it with the ServiceAccount's annotations; the
/// plugin assumes the `eks.amazonaws.com/ecr-role-arn` role with it. Without that annotation
/// the kubelet would not call the plugin at all.
#[test]
fn a_service_account_token_provider_gets_the_workloads_token_and_annotations() {
    let s = Stack::get();
    let app = s.image("naming-server-service:latest");
    let dir = tempfile::tempdir().unwrap();
    let bin = local_provider_bin(dir.path());
    let config = dir.path().join("provider.yaml");
    std::fs::write(
        &config,
        provider_config(
            "ecr-credential-provider",
            &["*.dkr.ecr.*.amazonaws.com"],
            &[plugin_aws_endpoint(), ("PLUGIN_BEHAVIOUR", "v1.34")],
            Some(
                "    tokenAttributes:
      serviceAccountTokenAudience: sts.amazonaws.com
      requireServiceAccount: true
      requiredServiceAccountAnnotationKeys: [\"eks.amazonaws.com/ecr-role-arn\"]
      cacheType: ServiceAccount
",
            ),
        ),
    )
    .unwrap();
    let minted = write_token(
        dir.path(),
        "minted",
        &json!({"sub": "system:serviceaccount:consultingfirm:naming-server", "aud": ["sts.amazonaws.com"], "iss": "https://oidc.example.com", "exp": 4102444800u64}),
    );
    let minted = std::fs::read_to_string(minted).unwrap();
    for with_annotation in [true, false] {
        let mut table = NamingServer::new(NS, &app).pod_pull_secrets(&[]).route(
            format!("POST {}/token*", service_account_path(NS, "naming-server")),
            vec![(
                201,
                json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                       "metadata": {"name": "naming-server", "namespace": NS},
                       "spec": {"audiences": ["sts.amazonaws.com"], "expirationSeconds": 600},
                       "status": {"token": minted, "expirationTimestamp": "2026-11-28T12:00:00Z"}}),
            )],
        );
        if with_annotation {
            table.service_account["metadata"]["annotations"]["eks.amazonaws.com/ecr-role-arn"] =
                json!("arn:aws:iam::818140567777:role/naming-server-ecr-images");
        }
        let api = table.start();
        let run = run_with(
            &api,
            &[
                "--images-from",
                "deployment/naming-server",
                "--credential-provider-config",
                config.to_str().unwrap(),
                "--credential-provider-bin-dir",
                bin.to_str().unwrap(),
            ],
        );
        let r = run.typed();
        let node = r.images[0]
            .paths
            .node_credential_provider
            .as_ref()
            .expect("a node credential provider path");
        let requests = api.requests.lock().unwrap().clone();
        let (_, token_request) = requests
            .iter()
            .find(|(k, _)| k.starts_with("POST ") && k.contains("/token"))
            .expect("a TokenRequest for the workload's ServiceAccount");
        let token_request: Value = serde_json::from_str(token_request).unwrap();
        assert_eq!(
            token_request["spec"]["audiences"],
            json!(["sts.amazonaws.com"])
        );
        if with_annotation {
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
            assert_eq!(node.status, Status::Pass, "{node:#?}");
        } else {
            assert_eq!(run.code, 1);
            let f = &node.stages[0].findings[0];
            assert_eq!(f.code, "NODE_PROVIDER_SA_ANNOTATION_MISSING", "{node:#?}");
            assert_eq!(
                f.evidence["missing"],
                json!(["eks.amazonaws.com/ecr-role-arn"])
            );
        }
        assert!(!run.stdout.contains(minted.trim()) && !run.stderr.contains(minted.trim()));
    }
}
