//! The scale benchmark of `serve --watch` (issue 12): a fleet of workloads (1,000 by default)
//! over the stack's distinct fleet images, served by the FAKE Kubernetes API with list and
//! watch (common::fake_watch), pulled from the real local registry. Not a test of timing: it
//! is `#[ignore]`d, run by `scripts/bench --only watch`, and prints its figures as one
//! `BENCH_WATCH {json}` line: API and registry requests, checks run against distinct
//! (image, credentials), time until every workload has a verdict, peak RSS. It asserts only
//! that every verdict is the right one (every image exists and every secret is good).
//!
//! Knobs (environment): `BENCH_WORKLOADS` (1000), `BENCH_IMAGES` (the stack's
//! `STACK_FLEET_IMAGES`, started with `STACK_FLEET_IMAGES=100`), `BENCH_INTERVAL` (`30s`),
//! `BENCH_PROBE_BIN` (the binary to run; the release build in the benchmark). The registry
//! requests are counted in its access log (`STACK_REGISTRY_ACCESSLOG=1`).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::fake_api::{docker_secret, service_account};
use common::fake_watch::WatchApi;
use common::scrape::get;
use common::*;
use serde_json::{Value, json};

/// Namespaces of the fleet; the first `SECRET_NAMESPACES` pull with a Secret of their own.
const NAMESPACES: usize = 20;
const SECRET_NAMESPACES: usize = 4;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Collections of the six watched kinds and how much of the fleet each is, in per mille.
const KINDS: [(&str, &str, u32); 6] = [
    ("apis/apps/v1/deployments", "Deployment", 550),
    ("apis/apps/v1/statefulsets", "StatefulSet", 100),
    ("apis/apps/v1/daemonsets", "DaemonSet", 50),
    ("apis/batch/v1/cronjobs", "CronJob", 100),
    ("apis/batch/v1/jobs", "Job", 100),
    ("api/v1/pods", "Pod", 100),
];

/// A container as a manifest of a real service has it: ports, resources, env, probes.
fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": "JAVA_TOOL_OPTIONS", "value": "-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"}
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "http", "scheme": "HTTP"},
                           "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/health/live", "port": "http", "scheme": "HTTP"},
                          "initialDelaySeconds": 30, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                            "capabilities": {"drop": ["ALL"]}}
    })
}

/// Object metadata as the API returns it, with the labels, annotations (kubectl's
/// last-applied copy included) and managed fields a real cluster's objects carry.
fn metadata(ns: &str, name: &str, i: usize, owner: Option<(&str, &str)>) -> Value {
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": ns,
                        "app.kubernetes.io/managed-by": "Helm", "team": ns});
    let mut m = json!({
        "name": name, "namespace": ns, "uid": format!("00000000-0000-4000-8000-{i:012}"),
        "generation": 4, "creationTimestamp": "2026-10-01T09:30:00Z",
        "labels": labels,
        "annotations": {
            "meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns,
            "kubectl.kubernetes.io/last-applied-configuration": format!("{{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"replicas\":2,\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"app\",\"resources\":{{\"requests\":{{\"cpu\":\"100m\",\"memory\":\"256Mi\"}}}}}}]}}}}}}}}")
        },
        "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": "apps/v1",
                           "time": "2026-10-01T09:30:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:team": {}}},
                                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}}}}}]
    });
    if let Some((kind, owner)) = owner {
        m["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner,
                                        "uid": "owner-uid", "controller": true, "blockOwnerDeletion": true}]);
    }
    m
}

/// A pod template: the app container, every fourth workload an init container too.
fn pod_spec(sa: &str, pull_secrets: &[&str], app: &str, init: Option<&str>) -> Value {
    json!({
        "serviceAccountName": sa, "serviceAccount": sa,
        "imagePullSecrets": pull_secrets.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "initContainers": init.map(|i| vec![container("migrate", i)]).unwrap_or_default(),
        "containers": [container("app", app)],
        "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}}],
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30, "securityContext": {"fsGroup": 1000},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "apps", "effect": "NoSchedule"}]
    })
}

/// A workload object of `kind` whose pod template is `spec`.
fn workload(kind: &str, meta: Value, spec: Value) -> Value {
    let name = meta["name"].clone();
    let template = json!({"metadata": {"labels": {"app.kubernetes.io/name": name}}, "spec": spec});
    let selector = json!({"matchLabels": {"app.kubernetes.io/name": name}});
    let (api_version, body) = match kind {
        "Deployment" => (
            "apps/v1",
            json!({"spec": {"replicas": 2, "selector": selector, "template": template,
                            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
                   "status": {"observedGeneration": 4, "replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}}),
        ),
        "StatefulSet" => (
            "apps/v1",
            json!({"spec": {"replicas": 1, "selector": selector, "template": template, "serviceName": name,
                            "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate"}},
                   "status": {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1}}),
        ),
        "DaemonSet" => (
            "apps/v1",
            json!({"spec": {"selector": selector, "template": template, "updateStrategy": {"type": "RollingUpdate"}},
                   "status": {"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberReady": 3, "numberMisscheduled": 0}}),
        ),
        "CronJob" => (
            "batch/v1",
            json!({"spec": {"schedule": "0 3 * * *", "concurrencyPolicy": "Forbid",
                            "jobTemplate": {"spec": {"backoffLimit": 2, "template": template}}}}),
        ),
        "Job" => (
            "batch/v1",
            json!({"spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1, "template": template},
                   "status": {"succeeded": 1}}),
        ),
        _ => (
            "v1",
            json!({"spec": template["spec"], "status": {"phase": "Running", "qosClass": "Burstable"}}),
        ),
    };
    let mut obj = body;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    obj["metadata"] = meta;
    obj
}

/// What the fleet is: the objects to serve and the distinct (image, credentials) it needs.
struct Fleet {
    objects: Vec<(&'static str, Value)>,
    workloads: usize,
    containers: usize,
    distinct: BTreeSet<(String, Option<usize>)>,
}

/// `n` workloads over `images` images in `NAMESPACES` namespaces. In the first
/// `SECRET_NAMESPACES` the pods pull with the namespace's `ecr-pull` Secret (half name it
/// themselves, half get it from their ServiceAccount `app`); elsewhere they have none (the
/// node's credentials). Deployments, StatefulSets and DaemonSets come with a pod each (owned:
/// not a workload of their own), CronJobs with a Job they made (likewise).
fn fleet(n: usize, images: &[String]) -> Fleet {
    let mut objects = Vec::new();
    let mut distinct = BTreeSet::new();
    let mut containers = 0;
    let mut i = 0;
    for (coll, kind, per_mille) in KINDS {
        let count = n * per_mille as usize / 1000;
        for _ in 0..count {
            let ns_i = i % NAMESPACES;
            let ns = format!("team-{ns_i:02}");
            let name = format!("{}-{i:04}", kind.to_ascii_lowercase());
            let app = &images[i % images.len()];
            let init = (i % 4 == 0).then(|| &images[(i / 4) % images.len()]);
            let secret = ns_i < SECRET_NAMESPACES;
            let (sa, own): (&str, &[&str]) = match (secret, i % 2) {
                (true, 0) => ("default", &["ecr-pull"]),
                (true, _) => ("app", &[]),
                (false, _) => ("default", &[]),
            };
            let creds = secret.then_some(ns_i);
            for img in std::iter::once(app).chain(init) {
                distinct.insert((img.clone(), creds));
                containers += 1;
            }
            let spec = pod_spec(sa, own, app, init.map(String::as_str));
            objects.push((
                coll,
                workload(kind, metadata(&ns, &name, i, None), spec.clone()),
            ));
            let child = match kind {
                "Deployment" => Some(("ReplicaSet", "api/v1/pods", "Pod")),
                "StatefulSet" | "DaemonSet" => Some((kind, "api/v1/pods", "Pod")),
                "CronJob" => Some(("CronJob", "apis/batch/v1/jobs", "Job")),
                _ => None,
            };
            if let Some((owner_kind, child_coll, child_kind)) = child {
                let child_name = format!("{name}-7d9f8c6b5-x2x1q");
                objects.push((
                    child_coll,
                    workload(
                        child_kind,
                        metadata(&ns, &child_name, i + 100_000, Some((owner_kind, &name))),
                        spec,
                    ),
                ));
            }
            i += 1;
        }
    }
    Fleet {
        objects,
        workloads: i,
        containers,
        distinct,
    }
}

/// Requests in the registry's access log so far.
fn registry_requests(log: &std::path::Path) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" /v2/") && l.contains(" HTTP/"))
        .count() as u64
}

/// `VmHWM` (peak RSS) and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The API requests the fake server has answered: (lists, watches, gets).
fn api_requests(api: &WatchApi) -> (u64, u64, u64) {
    (
        api.lists.load(Ordering::Relaxed),
        api.watches.load(Ordering::Relaxed),
        api.gets.load(Ordering::Relaxed),
    )
}

/// Checks run so far, summed from serve's "checks finished" log lines.
fn drain_checks(server: &ServeProcess, checks: &mut u64, batches: &mut u64) {
    while let Ok(line) = server.stderr.try_recv() {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["fields"]["message"] == "checks finished" {
            *checks += v["fields"]["checks"].as_u64().unwrap_or(0);
            *batches += 1;
        }
    }
}

fn report(base: &str) -> Option<Value> {
    let (code, text) = get(&format!("{base}/report"));
    (code == 200)
        .then(|| serde_json::from_str(&text).ok())
        .flatten()
}

#[test]
#[ignore = "a benchmark: scripts/bench --only watch"]
fn watch_fleet_benchmark() {
    let s = Stack::get();
    let host = s.var("STACK_ECR_HOST");
    let n: usize = env_or("BENCH_WORKLOADS", 1000);
    let seeded: usize = s
        .env
        .get("STACK_FLEET_IMAGES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let m: usize = env_or("BENCH_IMAGES", seeded).min(seeded);
    assert!(
        m > 0,
        "no fleet images: start the stack with STACK_FLEET_IMAGES=100 (scripts/bench --only watch does)"
    );
    let interval: String = env_or("BENCH_INTERVAL", "30s".to_string());
    let interval_s: u64 = interval.trim_end_matches('s').parse().unwrap_or(30);
    let bin: PathBuf = env_or(
        "BENCH_PROBE_BIN",
        PathBuf::from(env!("CARGO_BIN_EXE_ecr-pull-probe")),
    );
    let images: Vec<String> = (1..=m)
        .map(|k| s.image(&format!("fleet-{k:03}:1.0.{k}")))
        .collect();
    let f = fleet(n, &images);

    let api = WatchApi::start();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("AWS:{}", s.var("STACK_REGISTRY_PASSWORD")));
    for k in 0..NAMESPACES {
        let ns = format!("team-{k:02}");
        let secrets: &[&str] = if k < SECRET_NAMESPACES {
            &["ecr-pull"]
        } else {
            &[]
        };
        api.single(
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/default"),
            200,
            service_account(&ns, "default", &[]),
        );
        api.single(
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/app"),
            200,
            service_account(&ns, "app", secrets),
        );
        if k < SECRET_NAMESPACES {
            api.single(
                &format!("/api/v1/namespaces/{ns}/secrets/ecr-pull"),
                200,
                docker_secret(&ns, "ecr-pull", &json!({"auths": {host: {"auth": auth}}})),
            );
        }
    }
    let served = f.objects.len();
    for (coll, obj) in f.objects {
        api.put(coll, obj);
    }

    let log = s.dir().join("registry.log");
    let reg0 = registry_requests(&log);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path(), "default");
    let t0 = Instant::now();
    let server = ServeProcess::start_of(
        &bin,
        &["--watch", "--all-namespaces", "--interval", &interval],
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("RUST_LOG", "ecr_pull_probe=info"),
        ],
    );
    let pid = server.child.id();
    let base = server.base.clone();
    let (mut checks, mut batches) = (0u64, 0u64);

    // Round one: until every workload has a verdict.
    let first = loop {
        drain_checks(&server, &mut checks, &mut batches);
        if let Some(r) = report(&base)
            && r["summary"]["workloads"] == f.workloads
            && r["summary"]["unknown"] == 0
        {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(interval_s * 2 + 120),
            "no verdict for every workload after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let t_verdicts = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    drain_checks(&server, &mut checks, &mut batches);
    let (checks1, batches1) = (checks, batches);
    let (lists1, watches1, gets1) = api_requests(&api);
    let reg1 = registry_requests(&log) - reg0;
    let (hwm1, _) = memory_kib(pid);
    assert_eq!(first["summary"]["containers"], f.containers, "containers");
    assert_eq!(
        first["summary"]["available"], f.containers,
        "every image exists and every secret is good"
    );

    // Round two: the interval passes and every check is due again.
    let round2_start = Instant::now();
    while checks < checks1 + f.distinct.len() as u64 {
        drain_checks(&server, &mut checks, &mut batches);
        assert!(
            round2_start.elapsed() < Duration::from_secs(interval_s + 120),
            "round two did not finish: {checks} checks"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let t_round2 = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    drain_checks(&server, &mut checks, &mut batches);
    let (lists2, watches2, gets2) = api_requests(&api);
    let reg2 = registry_requests(&log) - reg0 - reg1;
    let (hwm, rss) = memory_kib(pid);
    let last = report(&base).unwrap_or_default();

    let figures = json!({
        "workloads": f.workloads, "containers": f.containers, "objects_served": served,
        "images": m, "distinct_image_credentials": f.distinct.len(),
        "report_checks": first["summary"]["checks"],
        "interval_s": interval_s,
        "first": {
            "seconds_to_every_verdict": t_verdicts.as_secs_f64(),
            "checks_run": checks1, "runs": batches1,
            "api_lists": lists1, "api_watches": watches1, "api_gets": gets1,
            "registry_requests": reg1, "peak_rss_kib": hwm1,
        },
        "second": {
            "seconds_from_start": t_round2.as_secs_f64(),
            "checks_run": checks - checks1, "runs": batches - batches1,
            "api_lists": lists2 - lists1, "api_watches": watches2 - watches1, "api_gets": gets2 - gets1,
            "registry_requests": reg2,
        },
        "peak_rss_kib": hwm, "rss_kib": rss,
        "all_available": last["summary"]["available"] == f.containers,
    });
    println!("BENCH_WATCH {figures}");
}
