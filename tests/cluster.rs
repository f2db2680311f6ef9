//! --images-from against a FAKE Kubernetes API (common::fake_api) for the objects, and the
//! real local registry for the pulls.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::fake_api::{FakeApi, deployment, docker_secret, pod_status, service_account, status};
use common::*;
use serde_json::{Value, json};

const NS: &str = "consultingfirm";

fn auths(host: &str, password: &str) -> Value {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    json!({"auths": {host: {"auth": auth}}})
}

fn routes(objects: Vec<(String, u16, Value)>) -> BTreeMap<String, (u16, Value)> {
    objects.into_iter().map(|(p, c, v)| (p, (c, v))).collect()
}

fn deploy_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{NS}/deployments/{name}")
}
fn sa_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/serviceaccounts/{name}")
}
fn secret_path(name: &str) -> String {
    format!("/api/v1/namespaces/{NS}/secrets/{name}")
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
    let api = FakeApi::start(routes(vec![
        (
            deploy_path("naming-server"),
            200,
            deployment(
                NS,
                "naming-server",
                "naming-server",
                &["ecr-pull"],
                &init,
                &app,
            ),
        ),
        (
            sa_path("naming-server"),
            200,
            service_account(NS, "naming-server", &[]),
        ),
        (
            secret_path("ecr-pull"),
            200,
            docker_secret(
                NS,
                "ecr-pull",
                &auths(s.var("STACK_ECR_HOST"), s.var("STACK_REGISTRY_PASSWORD")),
            ),
        ),
    ]));
    let run = run_with(&api, &["--images-from", "deployment/naming-server"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.report();
    let w = &r["workload"];
    assert_eq!(w["kind"], "Deployment");
    assert_eq!(w["service_account"], "naming-server");
    assert_eq!(w["image_pull_secrets"], json!(["ecr-pull"]));
    assert_eq!(w["containers"][0]["init"], true);
    let images: Vec<&str> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, vec![init.as_str(), app.as_str()]);
    for i in r["images"].as_array().unwrap() {
        assert_eq!(i["paths"]["pull_secrets"]["status"], "pass");
        assert_eq!(
            i["paths"]["pull_secrets"]["source"],
            format!("secret/{NS}/ecr-pull")
        );
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
    let api = FakeApi::start(routes(vec![
        (
            deploy_path("naming-server"),
            200,
            deployment(NS, "naming-server", "naming-server", &[], &app, &app),
        ),
        (
            sa_path("naming-server"),
            200,
            service_account(NS, "naming-server", &["gone", "expired-ecr"]),
        ),
        (
            secret_path("gone"),
            404,
            status(404, "NotFound", "secrets \"gone\" not found"),
        ),
        (
            secret_path("expired-ecr"),
            200,
            docker_secret(NS, "expired-ecr", &auths(s.var("STACK_ECR_HOST"), "stale")),
        ),
    ]));
    let run = run_with(&api, &["--images-from", "deploy/naming-server"]);
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let p = &img["paths"]["pull_secrets"];
    assert_eq!(p["status"], "fail");
    assert_eq!(p["source"], format!("secret/{NS}/expired-ecr"));
    let missing = p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "PULL_SECRET_MISSING")
        .unwrap();
    assert_eq!(missing["evidence"]["secret"], format!("{NS}/gone"));
    assert_eq!(missing["evidence"]["referenced_by"], "serviceaccount");
    assert_eq!(
        stage(&p["stages"], "registry_auth")["findings"][0]["code"],
        "REGISTRY_UNAUTHORIZED"
    );
    assert_eq!(
        finding(img, "KUBELET_PATH_FAILS_POD_PATH_PASSES")["severity"],
        "warning"
    );
}

#[test]
fn forbidden_secrets_and_missing_workloads() {
    let s = Stack::get();
    let app = s.image("naming-server-service:latest");
    let api = FakeApi::start(routes(vec![
        (
            deploy_path("naming-server"),
            200,
            deployment(
                NS,
                "naming-server",
                "naming-server",
                &["ecr-pull"],
                &app,
                &app,
            ),
        ),
        (
            sa_path("naming-server"),
            200,
            service_account(NS, "naming-server", &[]),
        ),
        (
            secret_path("ecr-pull"),
            403,
            status(
                403,
                "Forbidden",
                "secrets \"ecr-pull\" is forbidden: User \"system:serviceaccount:consultingfirm:ecr-pull-probe\" cannot get resource \"secrets\" in API group \"\" in the namespace \"consultingfirm\"",
            ),
        ),
    ]));
    let run = run_with(&api, &["--images-from", "deployment/naming-server"]);
    let r = run.report();
    let p = &r["images"][0]["paths"]["pull_secrets"];
    assert_eq!(p["findings"][0]["code"], "CLUSTER_READ_FAILED");
    assert!(
        p["findings"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("forbidden")
    );

    let run = run_with(&api, &["--images-from", "deployment/no-such"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("Deployment consultingfirm/no-such"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

fn canary_table(
    app: &str,
    pod_answers: Vec<Value>,
    events: Value,
) -> BTreeMap<String, Vec<(u16, Value)>> {
    let s = Stack::get();
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    let mut t: BTreeMap<String, Vec<(u16, Value)>> = BTreeMap::new();
    t.insert(
        format!("GET {}", deploy_path("naming-server")),
        vec![(
            200,
            deployment(
                NS,
                "naming-server",
                "naming-server",
                &["ecr-pull"],
                app,
                app,
            ),
        )],
    );
    t.insert(
        format!("GET {}", sa_path("naming-server")),
        vec![(200, service_account(NS, "naming-server", &[]))],
    );
    t.insert(
        format!("GET {}", secret_path("ecr-pull")),
        vec![(
            200,
            docker_secret(
                NS,
                "ecr-pull",
                &auths(s.var("STACK_ECR_HOST"), s.var("STACK_REGISTRY_PASSWORD")),
            ),
        )],
    );
    t.insert(
        format!("POST {pods}"),
        vec![(201, pod_status(NS, None, json!([])))],
    );
    t.insert(
        format!("GET {pods}/*"),
        pod_answers.into_iter().map(|v| (200, v)).collect(),
    );
    t.insert(
        format!("DELETE {pods}/*"),
        vec![(200, pod_status(NS, None, json!([])))],
    );
    t.insert(
        format!("GET /api/v1/namespaces/{NS}/events"),
        vec![(200, events)],
    );
    t
}

fn waiting(reason: &str, message: &str) -> Value {
    json!([{"name": "image-0", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}}])
}

fn run_canary(table: BTreeMap<String, Vec<(u16, Value)>>, extra: &[&str]) -> (FakeApi, Run) {
    let api = FakeApi::start_table(table);
    let mut args = vec!["--images-from", "deployment/naming-server", "--canary"];
    args.extend_from_slice(extra);
    let run = run_with(&api, &args);
    (api, run)
}

// CRI-O's message for the incident (cri-o/cri-o#2614), as the kubelet reports it.
const CRIO_401: &str = "initializing source docker://818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest: Error reading manifest latest in 818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service: unauthorized: authentication required";

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
    let r = run.report();
    let img = &r["images"][0];
    let c = &img["paths"]["kubelet_canary"];
    assert_eq!(c["status"], "fail");
    assert_eq!(c["node"], "worker-a");
    let f = &c["findings"][0];
    assert_eq!(f["code"], "KUBELET_CANARY_PULL_FAILED");
    assert_eq!(f["evidence"]["kubelet_message"], CRIO_401);
    assert_eq!(img["paths"]["pod_identity"], "pass");
    assert!(codes(img).contains(&"KUBELET_PATH_FAILS_POD_PATH_PASSES".to_string()));

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
        run.report()["images"][0]["paths"]["kubelet_canary"]["status"],
        "pass"
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
    let r = run.report();
    let c = &r["images"][0]["paths"]["kubelet_canary"];
    assert_eq!(c["status"], "skip");
    assert_eq!(c["findings"][0]["code"], "CANARY_INCONCLUSIVE");
    assert!(
        c["findings"][0]["evidence"]["reason"]
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
    let api = FakeApi::start(routes(vec![
        (
            deploy_path("naming-server"),
            200,
            deployment(NS, "naming-server", "naming-server", &[], &app, &app),
        ),
        (
            sa_path("naming-server"),
            200,
            service_account(NS, "naming-server", &[]),
        ),
        (
            "/api/v1/namespaces/openshift-config/secrets/pull-secret".to_string(),
            200,
            docker_secret(
                "openshift-config",
                "pull-secret",
                &auths(s.var("STACK_ECR_HOST"), s.var("STACK_REGISTRY_PASSWORD")),
            ),
        ),
    ]));
    let run = run_with(
        &api,
        &[
            "--images-from",
            "deployment/naming-server",
            "--global-pull-secret",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let r = run.report();
    let p = &r["images"][0]["paths"]["pull_secrets"];
    assert_eq!(p["status"], "pass");
    assert_eq!(
        p["source"], "secret/openshift-config/pull-secret",
        "the hosted-control-plane secret is absent and skipped"
    );
    // Without the flag, no secret applies at all.
    let run = run_with(&api, &["--images-from", "deployment/naming-server"]);
    let r = run.report();
    assert_eq!(
        r["images"][0]["paths"]["pull_secrets"]["findings"][0]["code"],
        "PULL_SECRET_NO_MATCH"
    );
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
    let api = FakeApi::start(routes(vec![
        (
            deploy_path("naming-server"),
            200,
            deployment(
                NS,
                "naming-server",
                "naming-server",
                &["ecr-pull"],
                &app,
                &app,
            ),
        ),
        (
            sa_path("naming-server"),
            200,
            service_account(NS, "naming-server", &[]),
        ),
        (secret_path("ecr-pull"), 200, malformed),
    ]));
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
