//! The FAKE Kubernetes API learns list and watch (for `serve --watch`): collections of
//! real-shaped objects the test changes while the probe watches. A list answers a `*List` with
//! the collection's resourceVersion; a watch streams `ADDED`/`MODIFIED`/`DELETED` events
//! newer than the version asked for, as lines of JSON on a connection held open, until the
//! test drops every watch (the client must resume from its last version) or the watch's
//! timeout. Lists are paged for `limit` with a `continue` token, as the API server pages them. Single objects (ServiceAccounts, Secrets) are answered from a table, as in
//! `fake_api`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

#[derive(Default)]
struct Store {
    rv: u64,
    /// (collection, namespace, name) -> object
    objects: BTreeMap<(String, String, String), Value>,
    /// (rv, collection, namespace, type, object)
    events: Vec<(u64, String, String, &'static str, Value)>,
    /// Bumped to end every open watch.
    generation: u64,
    /// GET path -> object, for single reads.
    singles: BTreeMap<String, (u16, Value)>,
}

pub struct WatchApi {
    pub addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    pub lists: Arc<AtomicU64>,
    pub watches: Arc<AtomicU64>,
    pub gets: Arc<AtomicU64>,
}

/// `(collection, namespace, name)` of a request path: the collection is the API prefix and
/// resource (`apis/apps/v1/deployments`), the namespace empty for a cluster-wide request.
fn parse(path: &str) -> Option<(String, String, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match *parts.first()? {
        "api" => (parts.get(..2)?.join("/"), &parts[2..]),
        "apis" => (parts.get(..3)?.join("/"), &parts[3..]),
        _ => return None,
    };
    match rest {
        ["namespaces", ns, res] => Some((format!("{prefix}/{res}"), ns.to_string(), None)),
        ["namespaces", ns, res, name] => Some((
            format!("{prefix}/{res}"),
            ns.to_string(),
            Some(name.to_string()),
        )),
        [res] => Some((format!("{prefix}/{res}"), String::new(), None)),
        _ => None,
    }
}

fn query(target: &str, key: &str) -> Option<String> {
    let q = target.split_once('?')?.1;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// The List kind of a collection's objects, e.g. `DeploymentList`.
fn list_kind(objects: &[&Value], collection: &str) -> (String, String) {
    let api_version = collection
        .rsplit_once('/')
        .map(|(p, _)| {
            p.trim_start_matches("apis/")
                .trim_start_matches("api/")
                .to_string()
        })
        .unwrap_or_default();
    let kind = objects
        .first()
        .and_then(|o| o["kind"].as_str())
        .map(|k| format!("{k}List"))
        .unwrap_or_else(|| "List".into());
    (api_version, kind)
}

fn selected(obj: &Value, selector: Option<&str>) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let sel = sel.replace("%3D", "=").replace("%2C", ",");
    sel.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => obj["metadata"]["labels"][k].as_str() == Some(v),
        None => true,
    })
}

impl WatchApi {
    pub fn start() -> WatchApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Arc::new(Mutex::new(Store {
            rv: 1000,
            ..Default::default()
        }));
        let (lists, watches, gets) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let api = WatchApi {
            addr,
            store: store.clone(),
            lists: lists.clone(),
            watches: watches.clone(),
            gets: gets.clone(),
        };
        super::spawn_server(move || async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((mut s, _)) = listener.accept().await {
                let (store, lists, watches, gets) =
                    (store.clone(), lists.clone(), watches.clone(), gets.clone());
                tokio::spawn(async move {
                    let Some((head, _)) = super::read_http_request(&mut s).await else {
                        return;
                    };
                    let target = head.split(' ').nth(1).unwrap_or("").to_string();
                    let path = target.split('?').next().unwrap_or("").to_string();
                    let parsed = parse(&path);
                    let watch = query(&target, "watch").is_some_and(|v| v == "true" || v == "1");
                    let selector = query(&target, "labelSelector");
                    match parsed {
                        Some((coll, ns, None)) if watch => {
                            watches.fetch_add(1, Ordering::Relaxed);
                            let since: u64 = query(&target, "resourceVersion")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0);
                            stream_watch(&mut s, &store, &coll, &ns, since, selector.as_deref())
                                .await;
                        }
                        Some((coll, ns, None)) => {
                            lists.fetch_add(1, Ordering::Relaxed);
                            // Pages as the API server does for `limit` (kube's watcher asks
                            // for 500): `continue` is the offset of the next page.
                            let limit: Option<usize> =
                                query(&target, "limit").and_then(|v| v.parse().ok());
                            let offset: usize = query(&target, "continue")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0);
                            let body = {
                                let st = store.lock().unwrap();
                                let all: Vec<&Value> = st
                                    .objects
                                    .iter()
                                    .filter(|((c, n, _), _)| {
                                        *c == coll && (ns.is_empty() || *n == ns)
                                    })
                                    .map(|(_, o)| o)
                                    .filter(|o| selected(o, selector.as_deref()))
                                    .collect();
                                let end = limit.map_or(all.len(), |l| (offset + l).min(all.len()));
                                let items = &all[offset.min(end)..end];
                                let (api_version, kind) = list_kind(items, &coll);
                                let mut metadata = json!({"resourceVersion": st.rv.to_string()});
                                if end < all.len() {
                                    metadata["continue"] = json!(end.to_string());
                                }
                                json!({"kind": kind, "apiVersion": api_version,
                                       "metadata": metadata, "items": items})
                            };
                            reply(&mut s, 200, &body).await;
                        }
                        _ => {
                            gets.fetch_add(1, Ordering::Relaxed);
                            let answer = store.lock().unwrap().singles.get(&path).cloned();
                            let (code, body) = answer.unwrap_or_else(|| {
                                (404, super::fake_api::status(404, "NotFound", &format!("the server could not find the requested resource ({path})")))
                            });
                            reply(&mut s, code, &body).await;
                        }
                    }
                });
            }
        });
        api
    }

    /// A single object answered at `path` (a ServiceAccount, a Secret).
    pub fn single(&self, path: &str, code: u16, body: Value) {
        self.store
            .lock()
            .unwrap()
            .singles
            .insert(path.to_string(), (code, body));
    }

    /// Adds or changes an object of `collection` (e.g. `apis/apps/v1/deployments`).
    pub fn put(&self, collection: &str, mut obj: Value) {
        let mut st = self.store.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let key = (collection.to_string(), ns.clone(), name);
        let kind = if st.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        st.objects.insert(key, obj.clone());
        st.events.push((rv, collection.to_string(), ns, kind, obj));
    }

    pub fn delete(&self, collection: &str, ns: &str, name: &str) {
        let mut st = self.store.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        if let Some(mut obj) =
            st.objects
                .remove(&(collection.to_string(), ns.to_string(), name.to_string()))
        {
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            st.events
                .push((rv, collection.to_string(), ns.to_string(), "DELETED", obj));
        }
    }

    /// Ends every open watch, as an API server restart or a load balancer's idle timeout does.
    pub fn drop_watches(&self) {
        self.store.lock().unwrap().generation += 1;
    }

    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        super::write_kubeconfig(dir, self.addr, namespace)
    }
}

async fn reply(s: &mut tokio::net::TcpStream, code: u16, body: &Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Streams the collection's events after `since` until the watches are dropped or a minute
/// passes; the body ends with the connection, as a real server's chunked stream ends.
async fn stream_watch(
    s: &mut tokio::net::TcpStream,
    store: &Mutex<Store>,
    coll: &str,
    ns: &str,
    since: u64,
    selector: Option<&str>,
) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if s.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let generation = store.lock().unwrap().generation;
    let mut sent = since;
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (lines, dropped) = {
            let st = store.lock().unwrap();
            let lines: Vec<(u64, String)> = st
                .events
                .iter()
                .filter(|(rv, c, n, _, o)| {
                    *rv > sent && c == coll && (ns.is_empty() || n == ns) && selected(o, selector)
                })
                .map(|(rv, _, _, t, o)| (*rv, format!("{}\n", json!({"type": t, "object": o}))))
                .collect();
            (lines, st.generation != generation)
        };
        if dropped || std::time::Instant::now() > until {
            break;
        }
        for (rv, line) in lines {
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            if s.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
            sent = rv;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Dropped: the connection closes mid-stream, with no final chunk, as a cut connection.
    let _ = s.shutdown().await;
}
