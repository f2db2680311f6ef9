//! --images-from against a FAKE Kubernetes API (common::fake_api) for the objects, and the
//! real local registry for the pulls.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::fake_api::{FakeApi, deployment, docker_secret, service_account, status};
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
