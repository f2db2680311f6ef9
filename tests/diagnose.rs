//! `diagnose` and `gate` from outside the cluster, against the FAKE Kubernetes API
//! (common::fake_api) playing the Job controller and the kubelet: each created Job runs the
//! real probe binary against the real local stack (moto, the TLS registry). The failing pod's
//! statuses and events carry the runtimes' real messages (CRI-O's cited one, containerd's
//! recorded in tests/fixtures/runtime/). Every test checks that the Job and its pod are
//! deleted.

mod common;

use std::path::{Path, PathBuf};

use common::fake_api::{FakeApi, JobMode, NamingServer, SCHEDULED_NODE, service_account, status};
use common::fault::{Fault, FaultRegistry};
use common::*;
use serde_json::{Value, json};

const NS: &str = "consultingfirm";
const POD: &str = "naming-server-new-6f8fdc8875-gc6ch";
const NODE: &str = "ip-10-0-1-23.ec2.internal";
const NODE_NS: &str = "ecr-pull-probe-node";
const NODE_POD: &str = "ecr-pull-probe-node-4xk9z";
const PROBE_IMAGE: &str = "registry.example/ecr-pull-probe:0.1.0";

// CRI-O's message for the incident (cri-o/cri-o#2614), as the kubelet reports it.
const CRIO_401: &str = "initializing source docker://818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest: Error reading manifest latest in 818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service: unauthorized: authentication required";

/// The node role refused by the repository policy of the image's account (the seed's case).
const NODE_DENIED: &str = "User: arn:aws:sts::818140567777:assumed-role/cf-dev-worker-role/i-0node is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/naming-server-service because no resource-based policy allows the ecr:BatchGetImage action";

use common::fake_api::Table;

fn get(t: &mut Table, path: String, code: u16, v: Value) {
    t.insert(format!("GET {path}"), vec![(code, v)]);
}

fn empty_list(kind: &str) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {}, "items": []})
}

/// The incident's pod as the API returns it, failing on `node` with `message`.
fn failing_pod(app: &str, node: &str, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": NS, "labels": {"app": "naming-server"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "naming-server-new-6f8fdc8875", "uid": "1", "controller": true}]},
        "spec": {"nodeName": node, "serviceAccountName": "naming-server",
                 "containers": [{"name": "app", "image": app, "imagePullPolicy": "Always"}]},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "app", "image": app, "imageID": "",
                   "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}]}
    })
}

/// The kubelet's events for the pod: the pull's `Failed` with the runtime's words, the back-off.
fn pull_events(app: &str, node: &str, message: &str) -> Value {
    let event = |reason: &str, text: String, at: &str| {
        json!({"metadata": {"name": format!("{POD}.{reason}"), "namespace": NS},
               "involvedObject": {"kind": "Pod", "name": POD, "namespace": NS, "fieldPath": "spec.containers{app}"},
               "reason": reason, "message": text, "type": "Warning", "count": 5,
               "source": {"component": "kubelet", "host": node},
               "firstTimestamp": at, "lastTimestamp": at})
    };
    json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [
        event("Failed", format!("Failed to pull image \"{app}\": {message}"), "2026-12-01T09:58:00Z"),
        event("BackOff", format!("Back-off pulling image \"{app}\""), "2026-12-01T09:59:30Z"),
    ]})
}

/// The pod's ServiceAccount (IRSA-annotated, no pull secrets) and the namespace's basics.
fn base_table() -> Table {
    let mut t = Table::new();
    get(
        &mut t,
        format!("/api/v1/namespaces/{NS}/serviceaccounts/naming-server"),
        200,
        service_account(NS, "naming-server", &[]),
    );
    t
}

/// The DaemonSet's pod on `node`, serving `report` at /report through the pod proxy.
fn with_node_daemonset(t: &mut Table, node: &str, report: Value) {
    get(
        t,
        format!("/api/v1/namespaces/{NODE_NS}/pods"),
        200,
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [{
            "metadata": {"name": NODE_POD, "namespace": NODE_NS,
                         "labels": {"app.kubernetes.io/name": "ecr-pull-probe", "app.kubernetes.io/component": "node"}},
            "spec": {"nodeName": node, "hostNetwork": true, "containers": [{"name": "probe", "image": PROBE_IMAGE}]},
            "status": {"phase": "Running"}}]}),
    );
    get(
        t,
        format!("/api/v1/namespaces/{NODE_NS}/pods/{NODE_POD}:9464/proxy/report"),
        200,
        report,
    );
}

fn plugin_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/ecr-credential-provider-local")
}

/// The node DaemonSet's report, made by the real binary as the DaemonSet runs it: the
/// kubelet's provider config and plugin (the local plugin, which assumes a node role in moto),
/// against a registry that refuses the node role with ECR's own denial.
fn refused_node_report(image: &str, node: &str) -> Value {
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::DenyManifest(NODE_DENIED));
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(plugin_source(), bin.join("ecr-credential-provider")).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        provider_config(
            "ecr-credential-provider",
            &["*.dkr.ecr.*.amazonaws.com"],
            &[
                plugin_aws_endpoint(),
                (
                    "NODE_ROLE_ARN",
                    "arn:aws:iam::818140567777:role/cf-dev-worker-role",
                ),
                ("NODE_ACCESS_KEY_ID", "AKIANODEINSTANCEPROFILE"),
                ("NODE_SECRET_ACCESS_KEY", "node-instance-profile-secret-key"),
            ],
            None,
        ),
    )
    .unwrap();
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let run = probe(
        &[
            "check",
            image,
            "--credential-provider-config",
            config.to_str().unwrap(),
            "--credential-provider-bin-dir",
            bin.to_str().unwrap(),
        ],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
            ("ECR_PULL_PROBE_NODE_NAME", Some(node)),
        ],
    );
    assert_eq!(run.code, 1, "the node is refused: {}", run.stderr);
    run.report()
}

/// A fake API whose Jobs run the probe with a kubeconfig pointing back at it.
struct Cluster {
    api: FakeApi,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(table: Table, mode: impl FnOnce(&Path) -> Option<JobMode>) -> Cluster {
        // The kubeconfig is written once the address is known; the path is fixed before.
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let api = FakeApi::start_cluster(table, mode(&kubeconfig));
        api.kubeconfig(dir.path(), NS);
        Cluster { api, dir }
    }

    fn running(table: Table) -> Cluster {
        Cluster::start(table, |k| {
            Some(JobMode::Run {
                env: vec![("KUBECONFIG".into(), k.display().to_string())],
            })
        })
    }

    fn kubeconfig(&self) -> String {
        self.dir.path().join("kubeconfig").display().to_string()
    }

    fn command(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> std::process::Command {
        let kubeconfig = self.kubeconfig();
        let mut all: Vec<(&str, Option<&str>)> = vec![
            ("KUBECONFIG", Some(kubeconfig.as_str())),
            ("ECR_PULL_PROBE_IMAGE", Some(PROBE_IMAGE)),
        ];
        all.extend_from_slice(env);
        probe_command(args, &all)
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args, &[]).output().unwrap();
        Run {
            code: out.status.code().expect("exited"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn created_jobs(&self) -> Vec<Value> {
        self.api.jobs.lock().unwrap().clone()
    }

    fn requested(&self, method_path: &str) -> bool {
        self.api
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|(k, _)| k == method_path)
    }

    /// Every Job created was deleted, and so was its pod where one existed.
    fn assert_all_deleted(&self, with_pod: bool) {
        let jobs = self.created_jobs();
        assert!(!jobs.is_empty(), "no Job was created");
        for job in jobs {
            let name = job["metadata"]["name"].as_str().unwrap();
            assert!(
                self.requested(&format!(
                    "DELETE /apis/batch/v1/namespaces/{NS}/jobs/{name}"
                )),
                "Job {name} was left behind"
            );
            if with_pod {
                assert!(
                    self.requested(&format!("DELETE /api/v1/namespaces/{NS}/pods/{name}-x7k2p")),
                    "the pod of Job {name} was left behind"
                );
            }
        }
    }
}

fn seed_table(app: &str, node_report: Option<Value>) -> Table {
    let mut t = base_table();
    get(
        &mut t,
        format!("/api/v1/namespaces/{NS}/pods/{POD}"),
        200,
        failing_pod(app, NODE, "ErrImagePull", CRIO_401),
    );
    get(
        &mut t,
        format!("/api/v1/namespaces/{NS}/events"),
        200,
        pull_events(app, NODE, CRIO_401),
    );
    match node_report {
        Some(r) => with_node_daemonset(&mut t, NODE, r),
        None => get(
            &mut t,
            format!("/api/v1/namespaces/{NODE_NS}/pods"),
            200,
            empty_list("PodList"),
        ),
    }
    t
}

fn findings<'a>(v: &'a Value, code: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

/// The seed's case end to end: the kubelet failed with `authentication required` on the
/// node; the pod's role can pull; the node role is refused by the repository policy.
#[test]
fn the_seeds_case_the_pods_role_pulls_and_the_node_role_is_refused() {
    let app = Stack::get().image("naming-server-service:latest");
    let node_report = refused_node_report(&app, NODE);
    let cluster = Cluster::running(seed_table(&app, Some(node_report)));
    let run = cluster.run(&[
        "diagnose",
        &format!("pod/{POD}"),
        "-n",
        NS,
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.report();
    let t = &r["target"];
    assert_eq!(t["pod"], POD);
    assert_eq!(t["node"], NODE);
    assert_eq!(t["containers"][0]["reason"], "ErrImagePull");
    assert_eq!(t["containers"][0]["message"], CRIO_401);
    assert_eq!(t["containers"][0]["image_pull_policy"], "Always");
    assert_eq!(t["events"][0]["reason"], "Failed");
    assert_eq!(t["events"][0]["node"], NODE);
    assert_eq!(t["events"][1]["reason"], "BackOff");
    let kubelet = findings(t, "REGISTRY_UNAUTHORIZED");
    assert_eq!(kubelet.len(), 1, "{t:#}");
    assert_eq!(kubelet[0]["evidence"]["kubelet_message"], CRIO_401);
    assert_eq!(kubelet[0]["evidence"]["node"], NODE);
    assert_eq!(t["node_report"], format!("pod/{NODE_NS}/{NODE_POD}"));
    assert_eq!(t["job"]["node"], NODE);
    // The pod carries no pull secrets and the Job cannot see the node's own credentials, so
    // within the Job nothing of the kubelet's side is checked (a pod-only pass); the node's
    // report and the pod's status decide.
    assert_eq!(t["job"]["exit_code"], 0);

    let image = &r["images"][0];
    assert_eq!(image["image"], app);
    assert_eq!(image["paths"]["pod_identity"], "pass");
    let node = &image["paths"]["node_credential_provider"];
    assert_eq!(node["status"], "fail", "{node:#}");
    assert_eq!(node["node"], NODE);
    let denied: Vec<&Value> = node["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["findings"].as_array().unwrap())
        .filter(|f| f["code"] == "REGISTRY_DENIED_RESOURCE_POLICY")
        .collect();
    assert_eq!(denied.len(), 1, "{node:#}");
    let fix = denied[0]["remediation"].as_str().unwrap();
    assert!(
        fix.contains("arn:aws:iam::818140567777:role/cf-dev-worker-role")
            && fix.contains("ecr:BatchGetImage"),
        "the statement to add: {fix}"
    );
    assert_eq!(
        findings(image, "KUBELET_PATH_FAILS_POD_PATH_PASSES").len(),
        1,
        "{image:#}"
    );
    assert_eq!(r["verdict"], "fail");

    // The Job: the target's ServiceAccount, on the failing pod's node, `--images-from` the
    // pod, the kubelet's policy; then deleted with its pod.
    let jobs = cluster.created_jobs();
    assert_eq!(jobs.len(), 1);
    let pod = &jobs[0]["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "naming-server");
    assert_eq!(pod["nodeName"], NODE);
    assert_eq!(pod["containers"][0]["image"], PROBE_IMAGE);
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--images-from", &format!("pod/{POD}")]),
        "{args:?}"
    );
    assert!(args.windows(2).any(|w| w == ["--require", "auto"]));
    assert!(!args.contains(&"--canary"), "only when asked");
    cluster.assert_all_deleted(true);
}

/// The same case as a person reads it: the kubelet's message first, then the paths.
#[test]
fn the_text_report_leads_with_the_kubelets_message() {
    let app = Stack::get().image("naming-server-service:latest");
    let node_report = refused_node_report(&app, NODE);
    let cluster = Cluster::running(seed_table(&app, Some(node_report)));
    let run = cluster.run(&["diagnose", &format!("pod/{POD}"), "-n", NS]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("kubelet") && first.contains(NODE),
        "{}",
        run.stdout
    );
    let kubelet_at = run
        .stdout
        .find("unauthorized: authentication required")
        .unwrap();
    let paths_at = run.stdout.find("FAIL:").expect("the headline");
    assert!(kubelet_at < paths_at, "{}", run.stdout);
    assert!(run.stdout.contains("cf-dev-worker-role"), "{}", run.stdout);
    cluster.assert_all_deleted(true);
}

/// containerd's recorded message (tests/fixtures/runtime/) is read and coded the same way,
/// and with the DaemonSet absent the report says so and how to install it.
#[test]
fn containerds_message_and_no_node_daemonset() {
    let recorded: Value =
        serde_json::from_str(include_str!("fixtures/runtime/containerd-1.6.20_ds1.json")).unwrap();
    let message = recorded["messages"]["no_credentials"]
        .as_str()
        .unwrap()
        .replace("{registry}", Stack::get().var("STACK_REGISTRY"));
    let app = Stack::get().image("naming-server-service:latest");
    let mut t = seed_table(&app, None);
    get(
        &mut t,
        format!("/api/v1/namespaces/{NS}/pods/{POD}"),
        200,
        failing_pod(&app, NODE, "ErrImagePull", &message),
    );
    get(
        &mut t,
        format!("/api/v1/namespaces/{NS}/events"),
        200,
        pull_events(&app, NODE, &message),
    );
    let cluster = Cluster::running(t);
    let run = cluster.run(&["diagnose", &format!("pod/{POD}"), "--output", "json"]);
    // The pod's role passes; the pod has no pull secrets (no such path), the node's report
    // is named as unavailable, and the kubelet's own word on the pod decides: it failed.
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.report();
    assert_eq!(r["images"][0]["paths"]["pod_identity"], "pass");
    assert!(r["images"][0]["paths"]["pull_secrets"].is_null());
    let k = &r["images"][0]["paths"]["kubelet"];
    assert_eq!(
        (k["status"].as_str(), k["decided_by"].as_str()),
        (Some("fail"), Some("pod_status")),
        "{k:#}"
    );
    let t = &r["target"];
    assert_eq!(
        findings(t, "REGISTRY_UNAUTHORIZED")[0]["evidence"]["kubelet_message"],
        message
    );
    let absent = findings(t, "NODE_REPORT_UNAVAILABLE");
    assert_eq!(absent.len(), 1, "{t:#}");
    let reason = absent[0]["evidence"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not run on") && reason.contains("kubectl apply -k manifests/node/"),
        "{reason}"
    );
    assert!(t["node_report"].is_null());
    cluster.assert_all_deleted(true);
}

/// No pod of the workload exists: the Job runs on the workload (its node selector), and the
/// node's report is looked for where the Job ran.
#[test]
fn a_workload_without_pods_is_diagnosed_from_its_template() {
    let s = Stack::get();
    let app = s.image("naming-server-service:latest");
    // The Deployment, its ServiceAccount (as base_table's) and its pull secret.
    let mut t = NamingServer::new(NS, &app)
        .docker_secret(
            "ecr-pull",
            s.var("STACK_ECR_HOST"),
            "AWS",
            s.var("STACK_REGISTRY_PASSWORD"),
        )
        .routes()
        .table;
    get(
        &mut t,
        format!("/api/v1/namespaces/{NS}/pods"),
        200,
        empty_list("PodList"),
    );
    get(
        &mut t,
        format!("/api/v1/namespaces/{NODE_NS}/pods"),
        200,
        empty_list("PodList"),
    );
    let cluster = Cluster::running(t);
    let run = cluster.run(&["diagnose", "deployment/naming-server", "--output", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.report();
    let target = &r["target"];
    assert!(target["pod"].is_null() && target["containers"].as_array().unwrap().is_empty());
    assert_eq!(target["job"]["node"], SCHEDULED_NODE);
    assert_eq!(r["images"][0]["paths"]["pull_secrets"]["status"], "pass");
    let job = &cluster.created_jobs()[0];
    let pod = &job["spec"]["template"]["spec"];
    assert!(pod.get("nodeName").is_none());
    assert_eq!(pod["nodeSelector"]["node-role.kubernetes.io/worker"], "");
    assert!(
        pod["containers"][0]["args"]
            .as_array()
            .unwrap()
            .windows(2)
            .any(|w| w[0] == "--images-from" && w[1] == "deployment/naming-server")
    );
    let absent = findings(target, "NODE_REPORT_UNAVAILABLE");
    assert!(
        absent[0]["evidence"]["node"] == SCHEDULED_NODE,
        "{target:#}"
    );
    cluster.assert_all_deleted(true);

    // A pod that is gone is named, with what to do instead; no Job is made.
    let run = cluster.run(&["diagnose", "pod/naming-server-6f8fdc8875-zzzzz"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("does not exist (any more)"),
        "{}",
        run.stderr
    );
    assert_eq!(cluster.created_jobs().len(), 1);
}

/// The Job controller cannot make the pod: the reason is named at once, the Job deleted.
#[test]
fn a_job_that_never_starts_is_named_and_deleted() {
    let app = Stack::get().image("naming-server-service:latest");
    for refusal in [
        "Error creating: pods \"ecr-pull-probe-diagnose-x\" is forbidden: exceeded quota: compute-resources, requested: limits.memory=96Mi, used: limits.memory=2Gi, limited: limits.memory=2Gi",
        "Error creating: admission webhook \"validation.gatekeeper.sh\" denied the request: [allowed-repos] container <probe> has an invalid image repo <registry.example/ecr-pull-probe:0.1.0>",
    ] {
        let events = json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [{
            "metadata": {"name": "ecr-pull-probe-diagnose-x.1", "namespace": NS},
            "involvedObject": {"kind": "Job", "name": "ecr-pull-probe-diagnose-x", "namespace": NS},
            "reason": "FailedCreate", "message": refusal, "type": "Warning",
            "source": {"component": "job-controller"}}]});
        let cluster = Cluster::start(seed_table(&app, None), |_| {
            Some(JobMode::NeverStarts { events })
        });
        let started = std::time::Instant::now();
        let run = cluster.run(&["diagnose", &format!("pod/{POD}"), "--timeout", "60s"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stdout.is_empty());
        assert!(
            run.stderr.contains("never started") && run.stderr.contains(refusal),
            "{}",
            run.stderr
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "named at once, not at the deadline"
        );
        cluster.assert_all_deleted(false);
    }
}

/// Ctrl-C (and SIGTERM) while waiting for the Job: it is deleted before the process ends.
#[test]
fn an_interrupted_diagnose_deletes_its_job() {
    let app = Stack::get().image("naming-server-service:latest");
    for signal in ["INT", "TERM"] {
        let cluster = Cluster::start(seed_table(&app, None), |_| Some(JobMode::Pending));
        let mut child = cluster
            .command(
                &["diagnose", &format!("pod/{POD}"), "--timeout", "120s"],
                &[],
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while cluster.created_jobs().is_empty() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "no Job was created"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
        let status = signal_and_wait(&mut child, signal, std::time::Duration::from_secs(20))
            .unwrap_or_else(|| panic!("SIG{signal} did not end the run"));
        assert_eq!(status.code(), Some(2), "SIG{signal}");
        let mut stderr = String::new();
        use std::io::Read as _;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(stderr.contains("interrupted"), "{stderr}");
        cluster.assert_all_deleted(true);
    }
}

/// Without the right to create Jobs the error names the right, and nothing is left.
#[test]
fn no_right_to_create_jobs_is_a_clear_error() {
    let app = Stack::get().image("naming-server-service:latest");
    let mut t = seed_table(&app, None);
    t.insert(
        format!("POST /apis/batch/v1/namespaces/{NS}/jobs"),
        vec![(
            403,
            status(
                403,
                "Forbidden",
                &format!("jobs.batch is forbidden: User \"dev@example.com\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"{NS}\""),
            ),
        )],
    );
    let cluster = Cluster::start(t, |_| None);
    let run = cluster.run(&["diagnose", &format!("pod/{POD}")]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("`create` on `jobs (batch)`")
            && run.stderr.contains(NS)
            && run.stderr.contains("manifests/rbac/diagnose.yaml"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_probe_image_no_guess() {
    let cluster = Cluster::start(base_table(), |_| None);
    let mut cmd = cluster.command(
        &["diagnose", &format!("pod/{POD}")],
        &[("ECR_PULL_PROBE_IMAGE", None)],
    );
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--probe-image"), "{stderr}");
    assert!(cluster.created_jobs().is_empty());
}

/// `gate`: the Job under the given ServiceAccount, its report, the CI's files, the exit code.
#[test]
fn the_gate_runs_the_job_and_exits_with_its_verdict() {
    let s = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let (junit, markdown, summary) = (
        dir.path().join("junit.xml"),
        dir.path().join("report.md"),
        dir.path().join("summary.md"),
    );
    let cluster = Cluster::running(base_table());
    let good = s.image("naming-server-service:latest");
    let out = cluster
        .command(
            &[
                "gate",
                "-n",
                NS,
                "--service-account",
                "naming-server",
                &good,
                "--junit",
                junit.to_str().unwrap(),
                "--markdown",
                markdown.to_str().unwrap(),
            ],
            &[("GITHUB_STEP_SUMMARY", Some(summary.to_str().unwrap()))],
        )
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.report();
    assert_eq!(r["verdict"], "pass");
    assert!(r.get("target").is_none(), "gate's report is the probe's");
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuite")
    );
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), md);
    let job = &cluster.created_jobs()[0];
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "naming-server");
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "a list of images needs no API"
    );
    cluster.assert_all_deleted(true);

    // A tag that does not exist: the gate says no, and the Job is gone all the same.
    let cluster = Cluster::running(base_table());
    let run = cluster.run(&[
        "gate",
        "-n",
        NS,
        "-s",
        "naming-server",
        &s.image("naming-server-service:no-such-tag"),
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.report()["verdict"], "fail");
    cluster.assert_all_deleted(true);
}

/// `scripts/gate.sh` is a thin wrapper: its old flags, the binary's gate, no PyYAML.
#[test]
fn gate_sh_wraps_the_binary() {
    let s = Stack::get();
    let cluster = Cluster::running(base_table());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gate.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args([
            "-n",
            NS,
            "-s",
            "naming-server",
            "-t",
            "120",
            &s.image("naming-server-service:latest"),
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("ECR_PULL_PROBE_BIN", env!("CARGO_BIN_EXE_ecr-pull-probe"))
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("ECR_PULL_PROBE_IMAGE", PROBE_IMAGE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&stdout).unwrap();
    validate(&r);
    assert_eq!(r["verdict"], "pass");
    cluster.assert_all_deleted(true);
}

/// Installed as `kubectl-ecr_pull_probe` on PATH, `kubectl ecr-pull-probe diagnose ...` runs it
/// (kubectl's own plugin lookup, the name krew uses), arguments passed through unchanged.
#[test]
fn kubectl_runs_it_as_a_plugin() {
    let Ok(kubectl) = which("kubectl") else {
        panic!("kubectl is not installed: scripts/check-packaging installs kubernetes-client");
    };
    let app = Stack::get().image("naming-server-service:latest");
    let mut t = seed_table(&app, None);
    t.insert(
        format!("POST /apis/batch/v1/namespaces/{NS}/jobs"),
        vec![(
            403,
            status(
                403,
                "Forbidden",
                "jobs.batch is forbidden: User \"dev@example.com\" cannot create resource \"jobs\"",
            ),
        )],
    );
    let cluster = Cluster::start(t, |_| None);
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_ecr-pull-probe"),
        bin.path().join("kubectl-ecr_pull_probe"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(kubectl)
        .args([
            "ecr-pull-probe",
            "diagnose",
            &format!("pod/{POD}"),
            "-n",
            NS,
        ])
        .env("PATH", path)
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("ECR_PULL_PROBE_IMAGE", PROBE_IMAGE)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`create` on `jobs (batch)`"),
        "the plugin ran diagnose: {stderr}"
    );
    assert!(cluster.requested(&format!("GET /api/v1/namespaces/{NS}/pods/{POD}")));
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// A Job whose pod never finishes: at the deadline the run ends with exit 2, says what it
/// last saw, and the Job and its pod are deleted.
#[test]
fn a_job_past_the_deadline_is_deleted() {
    let app = Stack::get().image("naming-server-service:latest");
    let cluster = Cluster::start(seed_table(&app, None), |_| Some(JobMode::Pending));
    let started = std::time::Instant::now();
    let run = cluster.run(&["diagnose", &format!("pod/{POD}"), "--timeout", "10s"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("did not finish within") && run.stderr.contains("ContainerCreating"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
    cluster.assert_all_deleted(true);
}
