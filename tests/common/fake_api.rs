//! A FAKE Kubernetes API server: no real one can run here. It answers the few GET paths the
//! probe reads with objects shaped like a real API server's (recorded from clusters: a
//! Deployment, a ServiceAccount, dockerconfigjson Secrets, `Status` errors), from a table the
//! test fills. Everything it does not know is a real-shaped 404.
//!
//! With a [`JobMode`] it also plays the Job controller and the kubelet for the Jobs it is
//! asked to create (`diagnose`, `gate`): it starts the REAL probe binary with the Job's
//! container args and env (plus what the mode adds, standing in for the pod's in-cluster
//! config and the identity webhook's variables), serves its stderr and stdout as the pod's
//! log and its exit code as the pod's status, and records every delete in `requests`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

pub struct FakeApi {
    pub addr: SocketAddr,
    /// The Jobs created, as the client sent them.
    pub jobs: Arc<Mutex<Vec<Value>>>,
    /// Paths requested, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// `METHOD path` and body of each request.
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
}

/// The `Status` a real API server sends with a 404 or 403.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// `METHOD path` -> successive answers (see [`FakeApi::start_table`]).
pub type Table = BTreeMap<String, Vec<(u16, Value)>>;

/// A fake API's table, built one route at a time.
#[derive(Default, Clone)]
pub struct Routes {
    pub table: Table,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// `GET path` answered with `code` and `body`, every time.
    pub fn get(self, path: impl AsRef<str>, code: u16, body: Value) -> Routes {
        self.route(format!("GET {}", path.as_ref()), vec![(code, body)])
    }

    /// `METHOD path` (a trailing `*` matches a prefix) answered with `answers` in turn, the
    /// last one repeating; replaces an earlier route of the same key.
    pub fn route(mut self, key: impl Into<String>, answers: Vec<(u16, Value)>) -> Routes {
        self.table.insert(key.into(), answers);
        self
    }

    pub fn start(self) -> FakeApi {
        FakeApi::start_table(self.table)
    }

    /// [`Routes::start`] with created Jobs run as `mode` says.
    pub fn start_cluster(self, mode: Option<JobMode>) -> FakeApi {
        FakeApi::start_cluster(self.table, mode)
    }
}

pub fn deployment_path(ns: &str, name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}")
}

pub fn service_account_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}")
}

pub fn secret_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/secrets/{name}")
}

/// The workload of the incident as the fake API serves it: Deployment `naming-server` in
/// `ns` (an init container and an app container, the pod's pull secret `ecr-pull`) and its
/// ServiceAccount `naming-server` (no pull secrets of its own). A test changes what it is
/// about through the fields (`deployment`, `service_account` are the objects served) and adds
/// its other routes (the Secrets, a canary's pods) to `routes`; [`NamingServer::start`]
/// serves the two objects with them.
pub struct NamingServer {
    pub ns: String,
    pub deployment: Value,
    pub service_account: Value,
    pub routes: Routes,
}

impl NamingServer {
    /// Both containers run `app`.
    pub fn new(ns: &str, app: &str) -> NamingServer {
        NamingServer {
            ns: ns.to_string(),
            deployment: deployment(
                ns,
                "naming-server",
                "naming-server",
                &["ecr-pull"],
                app,
                app,
            ),
            service_account: service_account(ns, "naming-server", &[]),
            routes: Routes::new(),
        }
    }

    /// The init container runs `image`.
    pub fn init(mut self, image: &str) -> NamingServer {
        self.deployment["spec"]["template"]["spec"]["initContainers"][0]["image"] = json!(image);
        self
    }

    /// The pod template's own `imagePullSecrets`.
    pub fn pod_pull_secrets(mut self, names: &[&str]) -> NamingServer {
        self.deployment["spec"]["template"]["spec"]["imagePullSecrets"] = names_list(names);
        self
    }

    /// The ServiceAccount's `imagePullSecrets`.
    pub fn sa_pull_secrets(mut self, names: &[&str]) -> NamingServer {
        self.service_account["imagePullSecrets"] = names_list(names);
        self
    }

    /// Secret `name` of the namespace answered with `code` and `body`.
    pub fn secret(mut self, name: &str, code: u16, body: Value) -> NamingServer {
        self.routes = self.routes.get(secret_path(&self.ns, name), code, body);
        self
    }

    /// Secret `name`, a dockerconfigjson for `host` with `user` and `password`.
    pub fn docker_secret(self, name: &str, host: &str, user: &str, password: &str) -> NamingServer {
        let body = docker_secret(&self.ns, name, &super::docker_config(host, user, password));
        self.secret(name, 200, body)
    }

    /// Another route (see [`Routes::route`]).
    pub fn route(mut self, key: impl Into<String>, answers: Vec<(u16, Value)>) -> NamingServer {
        self.routes = self.routes.route(key, answers);
        self
    }

    /// The whole table: the Deployment, the ServiceAccount and the added routes.
    pub fn routes(self) -> Routes {
        self.routes
            .get(
                deployment_path(&self.ns, "naming-server"),
                200,
                self.deployment,
            )
            .get(
                service_account_path(&self.ns, "naming-server"),
                200,
                self.service_account,
            )
    }

    pub fn start(self) -> FakeApi {
        self.routes().start()
    }
}

fn names_list(names: &[&str]) -> Value {
    names.iter().map(|n| json!({"name": n})).collect()
}

/// What the fake's kubelet does with a created Job.
#[derive(Clone, Debug)]
pub enum JobMode {
    /// Runs the probe binary with the Job's args and env, and these on top.
    Run { env: Vec<(String, String)> },
    /// The Job controller cannot make the pod (quota, admission): these are the Job's events.
    NeverStarts { events: Value },
    /// The pod is on a node but its container never starts (`ContainerCreating`).
    Pending,
}

/// The node a Job without `nodeName` is "scheduled" to.
pub const SCHEDULED_NODE: &str = "worker-b";

/// One created Job and its pod.
struct FakeJob {
    name: String,
    ns: String,
    pod: String,
    node: String,
    /// Exit code and log, once the probe has ended.
    done: Option<(i32, String)>,
}

/// The fake's Job controller and kubelet.
#[derive(Clone)]
struct Kubelet {
    mode: JobMode,
    jobs: Arc<Mutex<Vec<FakeJob>>>,
    created: Arc<Mutex<Vec<Value>>>,
}

fn query_has(query: &str, needle: &str) -> bool {
    let decoded = query
        .replace("%3D", "=")
        .replace("%2C", ",")
        .replace("%2F", "/");
    decoded.contains(needle)
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
}

impl Kubelet {
    fn pod(&self, j: &FakeJob) -> Value {
        let (phase, state) = match (&self.mode, &j.done) {
            (_, Some((code, _))) => (
                if *code == 0 { "Succeeded" } else { "Failed" },
                json!({"terminated": {"exitCode": code, "reason": if *code == 0 { "Completed" } else { "Error" }}}),
            ),
            (JobMode::Pending, None) => (
                "Pending",
                json!({"waiting": {"reason": "ContainerCreating"}}),
            ),
            _ => (
                "Running",
                json!({"running": {"startedAt": "2026-12-01T10:00:00Z"}}),
            ),
        };
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": j.pod, "namespace": j.ns, "labels": {"job-name": j.name}},
            "spec": {"nodeName": j.node, "containers": [{"name": "probe", "image": "ecr-pull-probe"}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "probe", "image": "ecr-pull-probe",
                "imageID": "", "ready": false, "restartCount": 0, "state": state}]}
        })
    }

    /// The answer for a request about the Jobs, if it is one.
    fn answer(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &str,
    ) -> Option<(u16, &'static str, String)> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let ok = |v: Value| Some((200, "application/json", v.to_string()));
        match (method, parts.as_slice()) {
            ("POST", ["apis", "batch", "v1", "namespaces", ns, "jobs"]) => {
                let job: Value = serde_json::from_str(body).ok()?;
                self.created.lock().unwrap().push(job.clone());
                let name = job["metadata"]["name"].as_str()?.to_string();
                let pod_spec = &job["spec"]["template"]["spec"];
                let node = pod_spec["nodeName"]
                    .as_str()
                    .unwrap_or(SCHEDULED_NODE)
                    .to_string();
                self.jobs.lock().unwrap().push(FakeJob {
                    name: name.clone(),
                    ns: ns.to_string(),
                    pod: format!("{name}-x7k2p"),
                    node,
                    done: None,
                });
                if let JobMode::Run { env } = &self.mode {
                    let container = &pod_spec["containers"][0];
                    let args: Vec<String> = container["args"]
                        .as_array()?
                        .iter()
                        .filter_map(|a| a.as_str().map(str::to_string))
                        .collect();
                    let mut all_env: Vec<(String, String)> = container["env"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| {
                            Some((
                                e["name"].as_str()?.to_string(),
                                e["value"].as_str()?.to_string(),
                            ))
                        })
                        .collect();
                    all_env.extend(env.iter().cloned());
                    let jobs = self.jobs.clone();
                    std::thread::spawn(move || {
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        let env: Vec<(&str, Option<&str>)> = all_env
                            .iter()
                            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                            .collect();
                        let out = super::probe_command(&args, &env)
                            .output()
                            .expect("the probe runs");
                        // The kubelet's log holds both streams; the probe logs before it reports.
                        let log = format!(
                            "{}{}",
                            String::from_utf8_lossy(&out.stderr),
                            String::from_utf8_lossy(&out.stdout)
                        );
                        let code = out.status.code().unwrap_or(137);
                        if let Some(j) = jobs.lock().unwrap().iter_mut().find(|j| j.name == name) {
                            j.done = Some((code, log));
                        }
                    });
                }
                Some((201, "application/json", job.to_string()))
            }
            ("GET", ["apis", "batch", "v1", "namespaces", _, "jobs", name]) => {
                let jobs = self.jobs.lock().unwrap();
                let j = jobs.iter().find(|j| j.name == *name)?;
                ok(
                    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": j.name, "namespace": j.ns}, "status": {}}),
                )
            }
            ("DELETE", ["apis", "batch", "v1", "namespaces", _, "jobs", name]) => {
                let known = self.jobs.lock().unwrap().iter().any(|j| j.name == *name);
                known.then(|| {
                    (
                        200,
                        "application/json",
                        status(200, "", "deleted").to_string(),
                    )
                })
            }
            ("GET", ["api", "v1", "namespaces", ns, "pods"]) if query_has(query, "job-name=") => {
                let jobs = self.jobs.lock().unwrap();
                let items = jobs
                    .iter()
                    .filter(|j| j.ns == *ns && query_has(query, &format!("job-name={}", j.name)))
                    .filter(|_| !matches!(self.mode, JobMode::NeverStarts { .. }))
                    .map(|j| self.pod(j))
                    .collect();
                ok(list("PodList", items))
            }
            ("GET", ["api", "v1", "namespaces", _, "pods", pod, "log"]) => {
                let jobs = self.jobs.lock().unwrap();
                let j = jobs.iter().find(|j| j.pod == *pod)?;
                let log = j.done.as_ref().map(|(_, l)| l.clone()).unwrap_or_default();
                Some((200, "text/plain", log))
            }
            ("DELETE", ["api", "v1", "namespaces", _, "pods", pod]) => {
                let known = self.jobs.lock().unwrap().iter().any(|j| j.pod == *pod);
                known.then(|| {
                    (
                        200,
                        "application/json",
                        status(200, "", "deleted").to_string(),
                    )
                })
            }
            ("GET", ["api", "v1", "namespaces", _, "events"])
                if query_has(query, "involvedObject.kind=Job") =>
            {
                let events = match &self.mode {
                    JobMode::NeverStarts { events } => events.clone(),
                    _ => list("EventList", vec![]),
                };
                ok(events)
            }
            _ => None,
        }
    }
}

/// Finds the answers for `METHOD path`: exact keys first, then keys ending in `*` as prefixes.
fn lookup<'a>(table: &'a Table, key: &str) -> Option<(&'a String, &'a Vec<(u16, Value)>)> {
    table.get_key_value(key).or_else(|| {
        table
            .iter()
            .find(|(k, _)| k.strip_suffix('*').is_some_and(|p| key.starts_with(p)))
    })
}

impl FakeApi {
    /// GET-only routes: `path -> (status, body)`.
    pub fn start(routes: BTreeMap<String, (u16, Value)>) -> FakeApi {
        Self::start_table(
            routes
                .into_iter()
                .map(|(p, a)| (format!("GET {p}"), vec![a]))
                .collect(),
        )
    }

    /// Routes keyed `METHOD path` (a trailing `*` matches a prefix); successive requests get
    /// successive answers, the last one repeating.
    pub fn start_table(table: Table) -> FakeApi {
        Self::start_cluster(table, None)
    }

    /// [`FakeApi::start_table`] whose created Jobs are run as `mode` says.
    pub fn start_cluster(table: Table, mode: Option<JobMode>) -> FakeApi {
        let created = Arc::new(Mutex::new(Vec::new()));
        let kubelet = mode.map(|mode| Kubelet {
            mode,
            jobs: Arc::new(Mutex::new(Vec::new())),
            created: created.clone(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
        let (seen2, requests2, table) = (seen.clone(), requests.clone(), Arc::new(table));
        super::spawn_server(move || async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((mut s, _)) = listener.accept().await {
                let (seen, requests, table, counters, kubelet) = (
                    seen2.clone(),
                    requests2.clone(),
                    table.clone(),
                    counters.clone(),
                    kubelet.clone(),
                );
                tokio::spawn(async move {
                    let Some((head, body)) = super::read_http_request(&mut s).await else {
                        return;
                    };
                    let body = String::from_utf8_lossy(&body).to_string();
                    let mut words = head.split(' ');
                    let method = words.next().unwrap_or("").to_string();
                    let target = words.next().unwrap_or("");
                    let (path, query) = target.split_once('?').unwrap_or((target, ""));
                    let path = path.to_string();
                    let key = format!("{method} {path}");
                    seen.lock().unwrap().push(path.clone());
                    requests.lock().unwrap().push((key.clone(), body.clone()));
                    if let Some((code, content_type, answer)) = kubelet
                        .as_ref()
                        .and_then(|k| k.answer(&method, &path, query, &body))
                    {
                        let reply = format!(
                            "HTTP/1.1 {code} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                            answer.len()
                        );
                        let _ = s.write_all(reply.as_bytes()).await;
                        let _ = s.shutdown().await;
                        return;
                    }
                    let (code, answer) = match lookup(&table, &key) {
                        Some((k, answers)) => {
                            let mut c = counters.lock().unwrap();
                            let n = c.entry(k.clone()).or_default();
                            let a = answers[(*n).min(answers.len() - 1)].clone();
                            *n += 1;
                            a
                        }
                        None => (
                            404,
                            status(
                                404,
                                "NotFound",
                                &format!(
                                    "the server could not find the requested resource ({path})"
                                ),
                            ),
                        ),
                    };
                    let answer = answer.to_string();
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        FakeApi {
            addr,
            jobs: created,
            seen,
            requests,
        }
    }

    /// A kubeconfig pointing at the fake, for the client's standard `KUBECONFIG` path.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        super::write_kubeconfig(dir, self.addr, namespace)
    }
}

/// A Deployment as the API returns it (trimmed of status and managed fields).
pub fn deployment(
    ns: &str,
    name: &str,
    sa: &str,
    pull_secrets: &[&str],
    init: &str,
    app: &str,
) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": "6b1f3c2e-0d4a-4c59-9f0e-1a2b3c4d5e6f", "resourceVersion": "48213", "generation": 3},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "serviceAccountName": sa,
                    "imagePullSecrets": pull_secrets.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
                    "nodeSelector": {"node-role.kubernetes.io/worker": ""},
                    "initContainers": [{"name": "migrate", "image": init, "imagePullPolicy": "IfNotPresent"}],
                    "containers": [{"name": "app", "image": app, "imagePullPolicy": "Always",
                                    "ports": [{"containerPort": 8080, "protocol": "TCP"}]}],
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"
                }
            }
        }
    })
}

pub fn service_account(ns: &str, name: &str, pull_secrets: &[&str]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": ns, "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::818140567777:role/naming-server-ecr-pull"}},
        "imagePullSecrets": pull_secrets.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()
    })
}

/// A `kubernetes.io/dockerconfigjson` Secret; `data` values are base64 on the wire.
pub fn docker_secret(ns: &str, name: &str, dockerconfigjson: &Value) -> Value {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(dockerconfigjson.to_string());
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": ns},
        "data": {".dockerconfigjson": data}
    })
}

/// A canary pod as the API reports it, with the given container statuses.
pub fn pod_status(ns: &str, node: Option<&str>, statuses: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ecr-pull-probe-canary-0", "namespace": ns},
        "spec": {"nodeName": node, "containers": [{"name": "image-0", "image": "x"}]},
        "status": {"phase": "Pending", "containerStatuses": statuses}
    })
}

/// A Node as the API returns it (trimmed of status), with these labels.
pub fn node(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": "0d3c1f7e-5b2a-4e8f-9c6d-7a1b2c3d4e5f", "resourceVersion": "90211", "labels": labels},
        "spec": {"providerID": format!("aws:///us-east-1a/i-0{name}"),
                 "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]}
    })
}

/// A canary pod the scheduler could not place, with its `PodScheduled=False` condition as
/// kube-scheduler writes it.
pub fn unschedulable_pod(ns: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ecr-pull-probe-canary-0", "namespace": ns},
        "spec": {"containers": [{"name": "image-0", "image": "x"}]},
        "status": {"phase": "Pending", "qosClass": "Burstable", "conditions": [{
            "type": "PodScheduled", "status": "False", "lastProbeTime": null,
            "lastTransitionTime": "2026-12-02T05:40:00Z", "reason": "Unschedulable",
            "message": message}]}
    })
}
