//! serve --watch against the FAKE Kubernetes API with list and watch (common::fake_watch) and
//! the real local registry: workloads added, changed and deleted while watched, a watch that
//! drops and must resume, one check per distinct (image, credentials), and honest results for
//! broken pull secrets, a missing ServiceAccount and a non-ECR image.

mod common;

use std::time::{Duration, Instant};

use common::aws_proxy::{AwsProxy, Rule};
use common::fake_api::{deployment, docker_secret, service_account};
use common::fake_watch::WatchApi;
use common::fault::{Fault, FaultRegistry};
use common::scrape::*;
use common::*;
use serde_json::{Value, json};

const NS: &str = "shop";
const DEPLOYMENTS: &str = "apis/apps/v1/deployments";

fn auths(host: &str, password: &str) -> Value {
    docker_config(host, "AWS", password)
}

fn available(
    samples: &[(String, Value, f64)],
    kind: &str,
    name: &str,
    container: &str,
) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == "ecr_pull_probe_workload_image_available"
                && l["namespace"] == NS
                && l["kind"] == kind
                && l["name"] == name
                && l["container"] == container
        })
        .map(|(_, _, v)| *v)
}

fn finding(samples: &[(String, Value, f64)], name: &str, code: &str) -> bool {
    samples.iter().any(|(n, l, _)| {
        n == "ecr_pull_probe_workload_image_finding" && l["name"] == name && l["code"] == code
    })
}

/// The /report row of a workload's container.
fn row<'a>(r: &'a Value, kind: &str, name: &str, container: &str) -> Option<&'a Value> {
    r["workloads"]
        .as_array()?
        .iter()
        .find(|w| w["kind"] == kind && w["name"] == name)?["containers"]
        .as_array()?
        .iter()
        .find(|c| c["container"] == container)
}

/// Polls /report until `done` holds for it.
fn wait_report(base: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (code, text) = get(&format!("{base}/report"));
        if code == 200 {
            let r: Value = serde_json::from_str(&text).unwrap();
            validate_watch(&r);
            if done(&r) {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(40), "{what}: {r:#}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "{what}: no report"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn bare_pod(name: &str, image: &str, owned: bool) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "main", "image": image}], "serviceAccountName": "web"}
    });
    if owned {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c", "uid": "rs", "controller": true}]);
    }
    p
}

fn cronjob(name: &str, sa: &str, image: &str) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}")},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "serviceAccountName": sa, "restartPolicy": "OnFailure",
            "containers": [{"name": "report", "image": image}]}}}}}
    })
}

#[test]
fn serve_watch_keeps_every_workloads_verdict_current() {
    let s = Stack::get();
    let host = s.var("STACK_ECR_HOST");
    let (ok, other) = (
        s.image("naming-server-service:latest"),
        s.image("naming-server-service:v1.4.2"),
    );
    let api = WatchApi::start();
    api.single(
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/web"),
        200,
        service_account(NS, "web", &[]),
    );
    api.single(
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/default"),
        200,
        service_account(NS, "default", &[]),
    );
    api.single(
        &format!("/api/v1/namespaces/{NS}/secrets/ecr-pull"),
        200,
        docker_secret(
            NS,
            "ecr-pull",
            &auths(host, s.var("STACK_REGISTRY_PASSWORD")),
        ),
    );
    api.single(
        &format!("/api/v1/namespaces/{NS}/secrets/stale"),
        200,
        docker_secret(NS, "stale", &auths(host, "not-the-registry-password")),
    );
    // Two Deployments sharing one image and one pull secret: one check for both.
    api.put(
        DEPLOYMENTS,
        deployment(NS, "web", "web", &["ecr-pull"], &ok, &ok),
    );
    api.put(
        DEPLOYMENTS,
        deployment(NS, "api", "web", &["ecr-pull"], &ok, &ok),
    );
    // A broken pull secret, a missing ServiceAccount, a non-ECR image.
    api.put(
        DEPLOYMENTS,
        deployment(NS, "legacy", "web", &["stale"], &ok, &ok),
    );
    api.put("apis/batch/v1/cronjobs", cronjob("nightly", "ghost", &ok));
    api.put(
        "api/v1/pods",
        bare_pod("debug", "registry.invalid/tools/debug:1", false),
    );
    // A pod a ReplicaSet owns is its Deployment's business, not a workload of its own.
    api.put("api/v1/pods", bare_pod("web-5d9c-x2x1", &ok, true));

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), NS);
    let server = ServeProcess::start(
        &["--watch", "--namespace", NS, "--interval", "1h"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    let base = server.base.clone();
    let r = wait_report(&base, "first verdicts", |r| {
        r["summary"]["workloads"] == 5 && r["summary"]["unknown"] == 0
    });
    assert_eq!(r["schema_version"], "watch/1.1");
    assert!(row(&r, "Pod", "web-5d9c-x2x1", "main").is_none(), "{r:#}");
    for name in ["web", "api"] {
        assert_eq!(
            row(&r, "Deployment", name, "app").unwrap()["status"],
            "available",
            "{r:#}"
        );
    }
    // web and api (init and app, one image, one secret) are one check.
    let web = row(&r, "Deployment", "web", "app").unwrap()["check"].clone();
    assert_eq!(
        row(&r, "Deployment", "api", "migrate").unwrap()["check"],
        web
    );
    // legacy's secret holds a wrong password: the secret fails, and the kubelet would go on
    // to the node's own credentials, which a cluster-wide watcher cannot see: inconclusive,
    // as `check --images-from` says for the same workload (issue 21 point 1).
    let legacy = row(&r, "Deployment", "legacy", "app").unwrap();
    assert_eq!(legacy["status"], "inconclusive", "{r:#}");
    for code in ["REGISTRY_UNAUTHORIZED", "KUBELET_VERDICT_UNKNOWN"] {
        assert!(
            legacy["codes"].as_array().unwrap().contains(&json!(code)),
            "{legacy:#}"
        );
    }
    assert_ne!(legacy["check"], web);
    // nightly's ServiceAccount does not exist: admission refuses its pods (issue 21 point 5).
    let nightly = row(&r, "CronJob", "nightly", "report").unwrap();
    assert_eq!(nightly["status"], "unavailable", "{r:#}");
    assert!(
        nightly["codes"]
            .as_array()
            .unwrap()
            .contains(&json!("SERVICE_ACCOUNT_MISSING")),
        "{nightly:#}"
    );
    // The bare pod's image is not ECR and its registry does not exist.
    let debug = row(&r, "Pod", "debug", "main").unwrap();
    assert_eq!(debug["status"], "unavailable", "{r:#}");
    assert!(
        debug["codes"]
            .as_array()
            .unwrap()
            .contains(&json!("REGISTRY_NOT_ECR")),
        "{debug:#}"
    );
    // The probe's own identity is the context.
    assert!(r["identity"]["caller"]["arn"].is_string(), "{r:#}");
    let checks = r["summary"]["checks"].as_u64().unwrap();
    assert_eq!(checks, 4, "web+api, legacy, nightly, debug: {r:#}");

    let (_, text) = get(&format!("{base}/metrics"));
    let samples = parse_metrics(&text);
    assert_eq!(
        available(&samples, "Deployment", "web", "app"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        available(&samples, "Deployment", "legacy", "app"),
        None,
        "an inconclusive container has no availability sample: {text}"
    );
    assert_eq!(
        available(&samples, "CronJob", "nightly", "report"),
        Some(0.0),
        "{text}"
    );
    assert!(
        finding(&samples, "nightly", "SERVICE_ACCOUNT_MISSING"),
        "{text}"
    );
    assert!(finding(&samples, "debug", "REGISTRY_NOT_ECR"), "{text}");
    assert!(!text.contains(s.var("STACK_REGISTRY_PASSWORD")));

    // Added, changed, deleted while watched: verdicts within seconds.
    let lists_before = api.lists.load(std::sync::atomic::Ordering::Relaxed);
    api.put(
        DEPLOYMENTS,
        deployment(NS, "late", "web", &["ecr-pull"], &other, &other),
    );
    api.put(
        DEPLOYMENTS,
        deployment(
            NS,
            "api",
            "web",
            &["ecr-pull"],
            &ok,
            &s.image("no-such-repo:latest"),
        ),
    );
    api.delete(DEPLOYMENTS, NS, "web");
    let r = wait_report(&base, "changes seen", |r| {
        row(r, "Deployment", "late", "app").is_some_and(|c| c["status"] == "available")
            && row(r, "Deployment", "api", "app").is_some_and(|c| c["status"] == "unavailable")
            && row(r, "Deployment", "web", "app").is_none()
    });
    assert!(
        row(&r, "Deployment", "api", "app").unwrap()["codes"]
            .as_array()
            .unwrap()
            .contains(&json!("REPOSITORY_NOT_FOUND")),
        "{r:#}"
    );
    let (_, text) = get(&format!("{base}/metrics"));
    let samples = parse_metrics(&text);
    assert_eq!(
        available(&samples, "Deployment", "web", "app"),
        None,
        "deleted: {text}"
    );
    assert_eq!(
        available(&samples, "Deployment", "late", "app"),
        Some(1.0),
        "{text}"
    );

    // Every watch dropped: the watcher resumes and sees what happened since.
    api.drop_watches();
    std::thread::sleep(Duration::from_millis(300));
    api.put(
        DEPLOYMENTS,
        deployment(NS, "after-drop", "web", &["ecr-pull"], &ok, &ok),
    );
    api.delete(DEPLOYMENTS, NS, "legacy");
    wait_report(&base, "resumed after the drop", |r| {
        row(r, "Deployment", "after-drop", "app").is_some_and(|c| c["status"] == "available")
            && row(r, "Deployment", "legacy", "app").is_none()
    });
    assert!(
        api.watches.load(std::sync::atomic::Ordering::Relaxed) > 6,
        "watches resumed"
    );
    let lists_after = api.lists.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        lists_after, lists_before,
        "a dropped watch resumes from its version, no re-list"
    );
}

/// Issue 23: eight images in one namespace whose tags are the hostile index (1,024 entries,
/// 4 MB, 3.7 KB `os` values, none for the probe's platform) held serve --watch at 293-333 MiB
/// against the 192Mi the manifest gives it, and made /report 93.6 MB. With every finding and
/// each check's result bounded, the peak RSS stays under that limit and /report small.
#[test]
fn hostile_indexes_keep_the_watcher_within_its_memory_limit() {
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::HostilePlatformIndex);
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let api = WatchApi::start();
    api.single(
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/web"),
        200,
        service_account(NS, "web", &[]),
    );
    for i in 0..4 {
        let (init, app) = (
            s.image(&format!("faulty:i{i}")),
            s.image(&format!("faulty:a{i}")),
        );
        api.put(
            DEPLOYMENTS,
            deployment(NS, &format!("web{i}"), "web", &[], &init, &app),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), NS);
    let server = ServeProcess::start(
        &["--watch", "--namespace", NS, "--interval", "2s"],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", &endpoint),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", "true"),
        ],
    );
    let start = Instant::now();
    let mut done = 0;
    while done < 3 {
        let line = server
            .stderr
            .recv_timeout(Duration::from_secs(120).saturating_sub(start.elapsed()))
            .unwrap_or_else(|_| panic!("{done} of 3 runs finished"));
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "checks finished" {
            done += 1;
        }
    }
    let r = wait_report(&server.base, "every verdict", |r| {
        r["summary"]["unknown"] == 0
    });
    assert_eq!(r["summary"]["checks"], 8, "{}", r["summary"]);
    let (_, body) = get(&format!("{}/report", server.base));
    validate_watch(&serde_json::from_str(&body).unwrap());
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    let (rss, peak) = (kib("VmRSS:"), kib("VmHWM:"));
    eprintln!(
        "hostile indexes: /report {} bytes, RSS {rss} KiB, peak RSS {peak} KiB",
        body.len()
    );
    // manifests/watch/deployment.yaml: limits.memory 192Mi.
    assert!(peak < 192 * 1024, "peak RSS {peak} KiB");
    assert!(body.len() < 1 << 20, "/report is {} bytes", body.len());
}

/// Runs serve --watch on one Deployment of the fault registry's image, the AWS API behind a
/// proxy with `rules`, with a 2 s interval, until `runs` runs of checks have finished; returns
/// the registry's and the AWS API's requests.
fn watch_runs(rules: Vec<Rule>, runs: usize) -> (FaultRegistry, AwsProxy) {
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::None);
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let proxy = AwsProxy::start(s.var("AWS_ENDPOINT_URL"), rules, 0);
    let api = WatchApi::start();
    api.single(
        &format!("/api/v1/namespaces/{NS}/serviceaccounts/web"),
        200,
        service_account(NS, "web", &[]),
    );
    let img = s.image("faulty:latest");
    api.put(DEPLOYMENTS, deployment(NS, "web", "web", &[], &img, &img));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), NS);
    let aws = proxy.url();
    let server = ServeProcess::start(
        &["--watch", "--namespace", NS, "--interval", "2s"],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", &endpoint),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", "true"),
            ("AWS_ENDPOINT_URL", &aws),
        ],
    );
    let start = Instant::now();
    let mut done = 0;
    while done < runs {
        let line = server
            .stderr
            .recv_timeout(Duration::from_secs(40).saturating_sub(start.elapsed()))
            .unwrap_or_else(|_| panic!("{done} of {runs} runs finished"));
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "checks finished" {
            done += 1;
        }
    }
    let r = wait_report(&server.base, "a verdict", |r| r["summary"]["unknown"] == 0);
    assert_eq!(
        row(&r, "Deployment", "web", "app").unwrap()["status"],
        "available",
        "{r:#}"
    );
    (fake, proxy)
}

fn calls(proxy: &AwsProxy, operation: &str) -> usize {
    proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|o| *o == operation)
        .count()
}

/// GetAuthorizationToken's answer with the stack's password, expiring `secs` after now.
/// (moto's own answer expires in 2015: a token expired at issue is never kept.)
fn token_reply(secs: i64) -> Rule {
    let s = Stack::get();
    let token = basic_auth("AWS", s.var("STACK_REGISTRY_PASSWORD"));
    let reply = json!({"authorizationData": [{
        "authorizationToken": token,
        "expiresAt": now() + secs,
        "proxyEndpoint": format!("https://{}", s.var("STACK_ECR_HOST")),
    }]});
    Rule::reply("GetAuthorizationToken", reply)
}

/// Issue 12: the runs of watch mode keep the ECR token (until half its life) and the registry
/// login: three runs ask GetAuthorizationToken once and `/v2/` twice (the anonymous challenge
/// and one credential check), as one run does. STS is still asked every run: the identity is
/// the report's context.
#[test]
fn watch_runs_keep_the_ecr_token_and_the_login() {
    let (fake, proxy) = watch_runs(vec![token_reply(12 * 3600)], 3);
    assert_eq!(calls(&proxy, "GetAuthorizationToken"), 1, "one ECR token");
    assert!(calls(&proxy, "AssumeRoleWithWebIdentity") >= 3);
    let logins = fake.seen().iter().filter(|s| s.path == "/v2/").count();
    assert_eq!(
        logins, 2,
        "one challenge and one credential check for every run"
    );
    let manifests = fake
        .seen()
        .iter()
        .filter(|s| s.path.contains("/manifests/"))
        .count();
    assert!(manifests >= 3, "every run still pulls: {manifests}");
}

/// An ECR token past half its life is fetched again: one that expires 2 s after issue is kept
/// for 1 s, so each run (2 s apart) asks for a new one.
#[test]
fn watch_runs_fetch_an_ecr_token_past_half_its_life() {
    let (_fake, proxy) = watch_runs(vec![token_reply(2)], 3);
    assert!(
        calls(&proxy, "GetAuthorizationToken") >= 3,
        "a token per run: {:?}",
        proxy.seen.lock().unwrap()
    );
}
