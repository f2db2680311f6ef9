//! A FAKE Kubernetes API server: no real one can run here. It answers the few GET paths the
//! probe reads with objects shaped like a real API server's (recorded from clusters: a
//! Deployment, a ServiceAccount, dockerconfigjson Secrets, `Status` errors), from a table the
//! test fills. Everything it does not know is a real-shaped 404.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

pub struct FakeApi {
    pub addr: SocketAddr,
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

type Table = BTreeMap<String, Vec<(u16, Value)>>;

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
                let (seen, requests, table, counters) = (
                    seen2.clone(),
                    requests2.clone(),
                    table.clone(),
                    counters.clone(),
                );
                tokio::spawn(async move {
                    let Some((head, body)) = super::read_http_request(&mut s).await else {
                        return;
                    };
                    let body = String::from_utf8_lossy(&body).to_string();
                    let mut words = head.split(' ');
                    let method = words.next().unwrap_or("").to_string();
                    let path = words
                        .next()
                        .unwrap_or("")
                        .split('?')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let key = format!("{method} {path}");
                    seen.lock().unwrap().push(path.clone());
                    requests.lock().unwrap().push((key.clone(), body));
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
            seen,
            requests,
        }
    }

    /// A kubeconfig pointing at the fake, for the client's standard `KUBECONFIG` path.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\nusers:\n- name: probe\n  user:\n    token: fake-api-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: probe\n    namespace: {namespace}\ncurrent-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
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
