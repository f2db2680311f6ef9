//! A FAKE Kubernetes API server: no real one can run here. It answers the few GET paths the
//! probe reads with objects shaped like a real API server's (recorded from clusters: a
//! Deployment, a ServiceAccount, dockerconfigjson Secrets, `Status` errors), from a table the
//! test fills. Everything it does not know is a real-shaped 404.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct FakeApi {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<String>>>,
}

/// The `Status` a real API server sends with a 404 or 403.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

impl FakeApi {
    pub fn start(routes: BTreeMap<String, (u16, Value)>) -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (seen2, routes) = (seen.clone(), Arc::new(routes));
        super::spawn_server(move || async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((mut s, _)) = listener.accept().await {
                let (seen, routes) = (seen2.clone(), routes.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let path = head
                        .split(' ')
                        .nth(1)
                        .unwrap_or("")
                        .split('?')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    seen.lock().unwrap().push(path.clone());
                    let (code, body) = routes.get(&path).cloned().unwrap_or_else(|| {
                        (
                            404,
                            status(
                                404,
                                "NotFound",
                                &format!(
                                    "the server could not find the requested resource ({path})"
                                ),
                            ),
                        )
                    });
                    let body = body.to_string();
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        FakeApi { addr, seen }
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
