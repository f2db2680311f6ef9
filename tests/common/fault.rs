//! A FAKE registry, for faults no real server produces on demand: a layer whose bytes do not
//! match its digest, a body cut short, a stalled body, a redirect to a storage host that
//! rejects an `Authorization` header (as S3 does for presigned URLs) or refuses connections.
//!
//! It speaks just enough HTTP/1.1 over raw TCP (byte-level control is the point: a truncated
//! or stalled body cannot be produced through a well-behaved server library). Everything else
//! the tests check runs against the real registry of the local stack.
//!
//! The fault can be switched while the fake runs ([`FaultRegistry::set_fault`]), for tests of
//! a long-running `serve` that must follow a registry going down, slowing and coming back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A well-behaved registry.
    None,
    /// The layer's bytes differ from its digest (same length).
    CorruptLayer,
    /// The layer's body stops at half its Content-Length and the connection closes.
    TruncatedLayer,
    /// The layer's headers and a few bytes are sent, then nothing.
    StallLayer,
    /// The layer is a 307 to a storage host that answers 400 to any Authorization header.
    RedirectLayer,
    /// The layer is a 307 to a port where nothing listens.
    RedirectRefused,
    /// The manifest request is answered 403 with an ECR-style `DENIED` envelope.
    DenyManifest(&'static str),
    /// The layer request is answered 403 with an ECR-style `DENIED` envelope.
    DenyLayer(&'static str),
    /// The manifest is Docker schema 1, which no current runtime pulls.
    Schema1Manifest,
    /// The manifest request is answered 500.
    ManifestServerError,
    /// Every answer carries a `Date` an hour behind.
    SkewedDate,
    /// The layer's digest in the manifest is a path traversal dressed as sha256.
    HostileLayerDigest,
    /// The tag is an index whose one entry's digest is a path to another repository.
    HostileIndexEntry,
    /// The tag is an index whose entry names a digest the child manifest does not have.
    IndexChildMismatch,
    /// The layer is a 307 to another loopback address (the "bait", standing for instance
    /// metadata), which answers with credential-shaped JSON.
    RedirectToInternal,
    /// Anonymous requests get a Bearer challenge whose realm is the bait.
    BearerRealmToInternal,
    /// The layer is a 307 to `https://NAME:PORT/`, NAME a host name that resolves to
    /// loopback (`/etc/hosts`): no literal address for the check to see (issue 23).
    RedirectToInternalName(&'static str),
    /// Anonymous requests get a Bearer challenge whose realm is `https://NAME:PORT/token`.
    BearerRealmToInternalName(&'static str),
    /// A Bearer registry (as Docker Hub): `/token` trades the pull secret's Basic
    /// credentials (`puller:hunter2`) for a token, and every other request must carry that
    /// token; Basic credentials sent to `/v2/` are refused.
    BearerTokenExchange,
    /// The first request for each manifest is a 503 with `Retry-After: 1`, then all is well.
    FlakyManifest,
    /// The first request for the layer breaks off halfway; later ones are answered, a
    /// `Range: bytes=N-` with a 206 and the rest (as the registry and S3 do).
    FlakyLayer,
    /// As [`Fault::FlakyLayer`], but a `Range` is ignored: the whole layer with a 200.
    FlakyLayerNoRange,
    /// Every request for the layer is a 429 with `Retry-After: 1`.
    ThrottledLayer,
    /// The first request for each manifest is a 429 with `Retry-After: 1` (ECR's
    /// `TOOMANYREQUESTS` shape), then all is well.
    ThrottledManifestOnce,
    /// Caps (issue 11 point 2): each sends more than the probe reads. The manifest is 8 MiB.
    HugeManifest,
    /// The manifest lists 1,025 layers.
    ManyLayers,
    /// The tag is an index of 1,025 entries.
    HugeIndex,
    /// The tag is an index of 1,024 entries (the cap) whose `os` values are 3,700 characters,
    /// none for the probe's platform: about 4 MB, under the manifest cap (issue 23).
    HostilePlatformIndex,
    /// The manifest's config is 100,000 nested arrays.
    DeepManifest,
    /// The manifest request is a 404 with an 8 MiB body.
    HugeErrorBody,
    /// The manifest's answer carries a 1 MiB header.
    HugeHeaders,
    /// Anonymous requests get a Bearer challenge whose realm (the fake itself) answers a
    /// 1 MiB token.
    HugeTokenResponse,
    /// Nothing listens: connections are refused, as when the registry's process is gone. The
    /// listener stops listening but keeps its port, so the registry comes back at the same
    /// address and no other socket can take the port meanwhile.
    Down,
    /// Every answer waits this long before its first byte: a registry under load.
    Slow(std::time::Duration),
}

/// How much the hostile faults send: far past every cap.
pub const HOSTILE_BYTES: usize = 8 << 20;

/// The token [`Fault::BearerTokenExchange`] hands out.
pub const EXCHANGED_TOKEN: &str = "exchanged-pull-token";
/// The credentials it accepts, as a pull secret's user and password.
pub const EXCHANGE_CREDENTIALS: (&str, &str) = ("puller", "hunter2");

/// What the bait answers: instance-metadata-shaped credentials, so a test can check that
/// nothing of it reaches the report.
pub const BAIT_SECRET: &str = "bait-SecretAccessKey-wJalrXUtnFEMI";

fn denied(message: &str) -> Vec<u8> {
    serde_json::json!({"errors": [{"code": "DENIED", "message": message}]})
        .to_string()
        .into_bytes()
}

/// A request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub server: &'static str,
    pub path: String,
    pub authorization: bool,
    /// The first byte a `Range: bytes=N-` asked for.
    pub range: Option<u64>,
    /// When the request's head had arrived.
    pub at: std::time::Instant,
}

pub struct FaultRegistry {
    pub addr: SocketAddr,
    /// Where the bait listens (127.0.0.2: loopback, but not the endpoint's host).
    pub bait: SocketAddr,
    pub layer_digest: String,
    /// The layer's size in bytes (a tar holding 256 KiB).
    pub layer_size: usize,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The fault in force; read by each request as it arrives, and by the accept loop.
    fault: Arc<tokio::sync::watch::Sender<Fault>>,
}

struct Content {
    manifest: Vec<u8>,
    config: (String, Vec<u8>),
    layer: (String, Vec<u8>),
}

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// The image a fake serves, built by the stack's own image builder
/// (`scripts/lib/build_images.py --fault-seed`, one builder for the stack and the tests) and
/// read back from its OCI layout: one uncompressed layer, a real tar, since a container runtime
/// unpacks what it pulls (tests/runtime.rs pulls from this fake too). `seed` makes each fake's
/// blobs its own: a runtime keeps a failed download (containerd resumes the ingest of the same
/// digest), so two fakes serving the same layer would see one's corruption in the other's pull.
fn content(seed: u16) -> Content {
    let dir = tempfile::tempdir().unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/build_images.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .args(["--fault-seed", &seed.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("python3 {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let layout = dir.path().join("fault");
    let read_json = |bytes: &[u8]| -> serde_json::Value { serde_json::from_slice(bytes).unwrap() };
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
    };
    let index = read_json(&std::fs::read(layout.join("index.json")).unwrap());
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    let m = read_json(&manifest);
    let (cd, ld) = (
        m["config"]["digest"].as_str().unwrap().to_string(),
        m["layers"][0]["digest"].as_str().unwrap().to_string(),
    );
    Content {
        config: (cd.clone(), blob(&cd)),
        layer: (ld.clone(), blob(&ld)),
        manifest,
    }
}

struct Request {
    path: String,
    authorization: bool,
    /// The `Authorization` header's scheme and value (`Basic dXNlcjpwdw==`).
    auth_header: Option<String>,
    range: Option<u64>,
}

async fn read_request(s: &mut TcpStream) -> Option<Request> {
    let (head, _) = super::read_http_request(s).await?;
    let path = head.lines().next()?.split(' ').nth(1)?.to_string();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let auth_header = header("authorization");
    let range =
        header("range").and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok());
    Some(Request {
        path,
        authorization: auth_header.is_some(),
        auth_header,
        range,
    })
}

async fn respond(s: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes()).await;
    let _ = s.write_all(body).await;
    let _ = s.shutdown().await;
}

/// A 200 with a `Content-Type`, as a registry answers a manifest or index.
async fn respond_typed(s: &mut TcpStream, content_type: &str, body: &[u8]) {
    respond(
        s,
        "200 OK",
        &[("Content-Type", content_type.to_string())],
        body,
    )
    .await
}

impl FaultRegistry {
    /// Starts the fake (and its storage host) on loopback, in a thread of its own.
    pub fn start(fault: Fault) -> FaultRegistry {
        let listener = listener_bound_by_number();
        let storage_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bait_listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        bait_listener.set_nonblocking(true).unwrap();
        let bait = bait_listener.local_addr().unwrap();
        // A port that was free a moment ago: connections to it are refused.
        let refused_port = super::refused_port();
        storage_listener.set_nonblocking(true).unwrap();
        let addr = listener
            .local_addr()
            .unwrap()
            .as_socket()
            .expect("an IPv4 address");
        let storage_port = storage_listener.local_addr().unwrap().port();
        let c = Arc::new(content(addr.port()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let layer_digest = c.layer.0.clone();
        let layer_size = c.layer.1.len();
        let (seen2, c2) = (seen.clone(), c.clone());
        let control = Arc::new(tokio::sync::watch::Sender::new(fault));
        // The server keeps a sender too, so the switch stays open after the handle is dropped.
        let control2 = control.clone();
        super::spawn_server(move || async move {
            let storage = TcpListener::from_std(storage_listener).unwrap();
            let bait_seen = seen2.clone();
            tokio::spawn(async move {
                let bait = TcpListener::from_std(bait_listener).unwrap();
                while let Ok((mut s, _)) = bait.accept().await {
                    let seen = bait_seen.clone();
                    tokio::spawn(async move {
                        let Some(r) = read_request(&mut s).await else {
                            return;
                        };
                        seen.lock().unwrap().push(Seen {
                            server: "bait",
                            path: r.path,
                            authorization: r.authorization,
                            range: r.range,
                            at: std::time::Instant::now(),
                        });
                        let body = format!(
                            r#"{{"Code":"Success","AccessKeyId":"ASIABAIT","SecretAccessKey":"{BAIT_SECRET}"}}"#
                        );
                        respond(&mut s, "403 Forbidden", &[], body.as_bytes()).await;
                    });
                }
            });
            let (seen3, c3) = (seen2.clone(), c2.clone());
            tokio::spawn(async move {
                while let Ok((mut s, _)) = storage.accept().await {
                    let (seen, c) = (seen3.clone(), c3.clone());
                    tokio::spawn(async move {
                        let Some(r) = read_request(&mut s).await else {
                            return;
                        };
                        seen.lock().unwrap().push(Seen {
                            server: "storage",
                            path: r.path.clone(),
                            authorization: r.authorization,
                            range: r.range,
                            at: std::time::Instant::now(),
                        });
                        if r.authorization {
                            // S3's answer to a presigned URL that also carries a header.
                            let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>";
                            respond(
                                &mut s,
                                "400 Bad Request",
                                &[("Content-Type", "application/xml".into())],
                                body,
                            )
                            .await;
                        } else {
                            respond(&mut s, "200 OK", &[], &c.layer.1).await;
                        }
                    });
                }
            });
            let mut switch = control2.subscribe();
            // The fault it starts with is handled as a switch too (it may be `Down`).
            switch.mark_changed();
            let mut registry = Some(into_tokio(listener));
            let mut stopped = None;
            loop {
                let Some(listening) = &registry else {
                    // Down: wait for the fault to change, then listen again on the same port.
                    let _ = switch.changed().await;
                    if *switch.borrow_and_update() != Fault::Down {
                        let socket: socket2::Socket = stopped.take().expect("a stopped listener");
                        socket
                            .listen(128)
                            .expect("listening again on the same port");
                        registry = Some(into_tokio(socket));
                    }
                    continue;
                };
                let accepted = tokio::select! {
                    accepted = listening.accept() => accepted.ok().map(|(s, _)| s),
                    _ = switch.changed() => None,
                };
                let Some(mut s) = accepted else {
                    if *switch.borrow_and_update() == Fault::Down
                        && let Some(listening) = registry.take()
                    {
                        // Linux: shutting a listening socket down makes it stop listening
                        // (connections are refused) and, bound by number, keeps its port.
                        let socket = socket2::Socket::from(listening.into_std().unwrap());
                        socket
                            .shutdown(std::net::Shutdown::Both)
                            .expect("a listener stops listening");
                        stopped = Some(socket);
                    }
                    continue;
                };
                let (seen, c) = (seen2.clone(), c2.clone());
                let fault = control2.subscribe();
                tokio::spawn(async move {
                    let Some(r) = read_request(&mut s).await else {
                        return;
                    };
                    let fault = *fault.borrow();
                    let nth = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(Seen {
                            server: "registry",
                            path: r.path.clone(),
                            authorization: r.authorization,
                            range: r.range,
                            at: std::time::Instant::now(),
                        });
                        seen.iter()
                            .filter(|x| x.server == "registry" && x.path == r.path)
                            .count()
                    };
                    let ports = Ports {
                        own: addr,
                        storage: storage_port,
                        refused: refused_port,
                        bait: bait.port(),
                        nth,
                    };
                    serve(&mut s, &r, fault, &c, ports).await;
                });
            }
        });
        FaultRegistry {
            addr,
            bait,
            layer_digest,
            layer_size,
            seen,
            fault: control,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests the registry got for a path containing `part`.
    pub fn requests_for(&self, part: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.server == "registry" && s.path.contains(part))
            .count()
    }

    /// Switches the fault; requests that arrive from now on get the new one.
    pub fn set_fault(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

/// A loopback listener bound to its port by number, not by asking for port 0: Linux keeps a
/// port bound by number when the socket stops listening ([`Fault::Down`]), and releases one
/// the kernel chose. The number is the kernel's choice from a socket that never listened; if
/// another socket takes it in between, the bind fails and another number is tried, so the
/// fake never serves on a port it does not own.
fn listener_bound_by_number() -> socket2::Socket {
    use socket2::{Domain, Socket, Type};
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    for _ in 0..20 {
        let chooser = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        chooser.bind(&loopback.into()).unwrap();
        let port = chooser.local_addr().unwrap().as_socket().unwrap().port();
        drop(chooser);
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        // As std does for listeners: the connections this one closed linger in TIME_WAIT on
        // the port and would keep it from listening again. While down, the port stays bound
        // here: the kernel gives no socket that asks for port 0 a port in use.
        socket.set_reuse_address(true).unwrap();
        if socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
            .is_ok()
        {
            socket.listen(128).unwrap();
            return socket;
        }
    }
    panic!("no loopback port could be bound by number");
}

fn into_tokio(socket: socket2::Socket) -> TcpListener {
    let std: std::net::TcpListener = socket.into();
    std.set_nonblocking(true).unwrap();
    TcpListener::from_std(std).unwrap()
}

/// The other listeners a fault may send the client to.
#[derive(Clone, Copy)]
struct Ports {
    /// The fake's own address, for a realm on itself.
    own: SocketAddr,
    storage: u16,
    refused: u16,
    bait: u16,
    /// Which request for this path this is (1 for the first).
    nth: usize,
}

async fn serve(s: &mut TcpStream, r: &Request, fault: Fault, c: &Content, ports: Ports) {
    if let Fault::Slow(delay) = fault {
        tokio::time::sleep(delay).await;
    }
    let challenge = (
        "WWW-Authenticate",
        if fault == Fault::BearerRealmToInternal {
            format!(
                r#"Bearer realm="http://127.0.0.2:{}/token",service="fault-registry""#,
                ports.bait
            )
        } else if let Fault::BearerRealmToInternalName(name) = fault {
            format!(
                r#"Bearer realm="https://{name}:{}/token",service="fault-registry""#,
                ports.refused
            )
        } else if fault == Fault::HugeTokenResponse {
            format!(
                r#"Bearer realm="http://{}/token",service="fault-registry""#,
                ports.own
            )
        } else {
            r#"Basic realm="fault-registry""#.to_string()
        },
    );
    let json = ("Content-Type", "application/json".to_string());
    let shift = if fault == Fault::SkewedDate { 3600 } else { 0 };
    let now = std::time::SystemTime::now() - std::time::Duration::from_secs(shift);
    let date = ("Date", httpdate::fmt_http_date(now));
    let unauthorized =
        br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
    if fault == Fault::BearerTokenExchange {
        let bearer = (
            "WWW-Authenticate",
            format!(
                r#"Bearer realm="http://{}/token",service="fault-registry",scope="repository:consultingfirm/faulty:pull""#,
                ports.own
            ),
        );
        let (user, password) = EXCHANGE_CREDENTIALS;
        let basic_ok = r.auth_header.as_deref()
            == Some(&format!("Basic {}", super::basic_auth(user, password)));
        if r.path.starts_with("/token?") {
            return if basic_ok
                && r.path
                    .contains("scope=repository%3Aconsultingfirm%2Ffaulty%3Apull")
            {
                let body = format!(r#"{{"token":"{EXCHANGED_TOKEN}","expires_in":300}}"#);
                respond(s, "200 OK", &[json], body.as_bytes()).await
            } else {
                respond(s, "401 Unauthorized", &[json], unauthorized).await
            };
        }
        if r.auth_header.as_deref() != Some(&format!("Bearer {EXCHANGED_TOKEN}")) {
            return respond(s, "401 Unauthorized", &[bearer, json, date], unauthorized).await;
        }
    } else if fault == Fault::HugeTokenResponse && r.path.starts_with("/token") {
        let body = format!(r#"{{"token":"{}"}}"#, "a".repeat(HOSTILE_BYTES));
        return respond(s, "200 OK", &[json], body.as_bytes()).await;
    } else if !r.authorization {
        return respond(
            s,
            "401 Unauthorized",
            &[challenge, json, date],
            unauthorized,
        )
        .await;
    }
    if r.path == "/v2/" {
        return respond(s, "200 OK", &[json, date], b"{}").await;
    }
    if r.path.contains("/manifests/") {
        return match fault {
            Fault::FlakyManifest if ports.nth == 1 => {
                respond(
                    s,
                    "503 Service Unavailable",
                    &[json, ("Retry-After", "1".into())],
                    br#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}"#,
                )
                .await
            }
            Fault::ThrottledManifestOnce if ports.nth == 1 => {
                respond(
                    s,
                    "429 Too Many Requests",
                    &[json, ("Retry-After", "1".into())],
                    br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]}"#,
                )
                .await
            }
            Fault::DenyManifest(m) => respond(s, "403 Forbidden", &[json], &denied(m)).await,
            Fault::ManifestServerError => {
                respond(s, "500 Internal Server Error", &[], b"internal error").await
            }
            Fault::HostileLayerDigest if !r.path.contains("/manifests/sha256:") => {
                let traversal = format!("sha256:/../../../../admin/keys?x={}", "a".repeat(38));
                let body = String::from_utf8(c.manifest.clone())
                    .unwrap()
                    .replace(&c.layer.0, &traversal);
                let ct = "application/vnd.oci.image.manifest.v1+json";
                respond_typed(s, ct, body.as_bytes()).await
            }
            Fault::HostileIndexEntry | Fault::IndexChildMismatch
                if !r.path.contains("/manifests/sha256:") =>
            {
                let entry = if fault == Fault::HostileIndexEntry {
                    "../../../other/secret/manifests/prod".to_string()
                } else {
                    digest(b"another manifest")
                };
                let index = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [{
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": entry, "size": c.manifest.len(),
                        "platform": {"os": "linux", "architecture": "amd64"},
                    }],
                })
                .to_string();
                let ct = "application/vnd.oci.image.index.v1+json";
                respond_typed(s, ct, index.as_bytes()).await
            }
            Fault::HugeManifest => {
                let mut body = c.manifest.clone();
                body.resize(HOSTILE_BYTES, b' ');
                let ct = "application/vnd.oci.image.manifest.v1+json";
                respond_typed(s, ct, &body).await
            }
            Fault::ManyLayers | Fault::HugeIndex if !r.path.contains("/manifests/sha256:") => {
                let m: serde_json::Value = serde_json::from_slice(&c.manifest).unwrap();
                let (ct, body) = if fault == Fault::ManyLayers {
                    let mut m = m;
                    m["layers"] = serde_json::Value::Array(vec![m["layers"][0].clone(); 1025]);
                    ("application/vnd.oci.image.manifest.v1+json", m)
                } else {
                    let entry = serde_json::json!({
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": digest(&c.manifest), "size": c.manifest.len(),
                        "platform": {"os": "linux", "architecture": "amd64"},
                    });
                    let index = serde_json::json!({
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": vec![entry; 1025],
                    });
                    ("application/vnd.oci.image.index.v1+json", index)
                };
                let body = body.to_string();
                respond_typed(s, ct, body.as_bytes()).await
            }
            Fault::HostilePlatformIndex if !r.path.contains("/manifests/sha256:") => {
                let entries: Vec<_> = (0..1024)
                    .map(|i| {
                        serde_json::json!({
                            "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": digest(&c.manifest), "size": c.manifest.len(),
                            "platform": {"os": format!("{i:04}{}", "o".repeat(3700)), "architecture": "amd64"},
                        })
                    })
                    .collect();
                let index = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": entries,
                });
                let ct = "application/vnd.oci.image.index.v1+json";
                respond_typed(s, ct, index.to_string().as_bytes()).await
            }
            Fault::DeepManifest => {
                let depth = 100_000;
                let body = format!(
                    r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}{}}}"#,
                    "[".repeat(depth),
                    "]".repeat(depth)
                );
                let ct = "application/vnd.oci.image.manifest.v1+json";
                respond_typed(s, ct, body.as_bytes()).await
            }
            Fault::HugeErrorBody => {
                let body = vec![b'x'; HOSTILE_BYTES];
                respond(
                    s,
                    "404 Not Found",
                    &[("Content-Type", "text/plain".into())],
                    &body,
                )
                .await
            }
            Fault::HugeHeaders => {
                let ct = "application/vnd.oci.image.manifest.v1+json";
                let padding = "a".repeat(1 << 20);
                respond(
                    s,
                    "200 OK",
                    &[("Content-Type", ct.to_string()), ("X-Padding", padding)],
                    &c.manifest,
                )
                .await
            }
            Fault::Schema1Manifest => {
                let ct = "application/vnd.docker.distribution.manifest.v1+prettyjws";
                let body = br#"{"schemaVersion":1,"name":"consultingfirm/faulty","tag":"latest","fsLayers":[]}"#;
                respond_typed(s, ct, body).await
            }
            _ => {
                let ct = "application/vnd.oci.image.manifest.v1+json";
                respond_typed(s, ct, &c.manifest).await
            }
        };
    }
    if r.path.ends_with(&c.config.0) {
        return respond(s, "200 OK", &[], &c.config.1).await;
    }
    if !r.path.ends_with(&c.layer.0) {
        let body = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
        return respond(s, "404 Not Found", &[json], body).await;
    }
    let layer = &c.layer.1;
    match fault {
        Fault::None
        | Fault::SkewedDate
        | Fault::DenyManifest(_)
        | Fault::Schema1Manifest
        | Fault::ManifestServerError
        | Fault::HostileLayerDigest
        | Fault::HostileIndexEntry
        | Fault::IndexChildMismatch
        | Fault::BearerRealmToInternal
        | Fault::BearerRealmToInternalName(_)
        | Fault::BearerTokenExchange
        | Fault::FlakyManifest
        | Fault::ThrottledManifestOnce
        | Fault::HugeManifest
        | Fault::ManyLayers
        | Fault::HugeIndex
        | Fault::HostilePlatformIndex
        | Fault::DeepManifest
        | Fault::HugeErrorBody
        | Fault::HugeHeaders
        | Fault::HugeTokenResponse
        // Down: a request accepted just before the registry went down is still answered.
        | Fault::Down
        | Fault::Slow(_) => respond(s, "200 OK", &[], layer).await,
        Fault::RedirectToInternalName(name) => {
            let location = format!("https://{name}:{}/blob", ports.refused);
            respond(s, "307 Temporary Redirect", &[("Location", location)], b"").await
        }
        Fault::RedirectToInternal => {
            let location = format!(
                "http://127.0.0.2:{}/latest/meta-data/iam/security-credentials/node-role",
                ports.bait
            );
            respond(s, "307 Temporary Redirect", &[("Location", location)], b"").await
        }
        Fault::DenyLayer(m) => respond(s, "403 Forbidden", &[json], &denied(m)).await,
        Fault::CorruptLayer => {
            let mut bad = layer.clone();
            bad[1000] ^= 0xff;
            respond(s, "200 OK", &[], &bad).await
        }
        Fault::FlakyLayer if ports.nth > 1 => match r.range {
            Some(from) if (from as usize) < layer.len() => {
                let range = format!("bytes {from}-{}/{}", layer.len() - 1, layer.len());
                let rest = &layer[from as usize..];
                respond(s, "206 Partial Content", &[("Content-Range", range)], rest).await
            }
            _ => respond(s, "200 OK", &[], layer).await,
        },
        Fault::FlakyLayerNoRange if ports.nth > 1 => respond(s, "200 OK", &[], layer).await,
        Fault::ThrottledLayer => {
            let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]}"#;
            respond(
                s,
                "429 Too Many Requests",
                &[json, ("Retry-After", "1".into())],
                body,
            )
            .await
        }
        Fault::TruncatedLayer | Fault::FlakyLayer | Fault::FlakyLayerNoRange => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                layer.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&layer[..layer.len() / 2]).await;
            let _ = s.shutdown().await;
        }
        Fault::StallLayer => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", layer.len());
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&layer[..1024]).await;
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Fault::RedirectLayer | Fault::RedirectRefused => {
            let port = if fault == Fault::RedirectLayer {
                ports.storage
            } else {
                ports.refused
            };
            let location = format!(
                "http://127.0.0.1:{port}/starport/{}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=PRESIGNED-SIGNATURE-VALUE",
                c.layer.0
            );
            respond(s, "307 Temporary Redirect", &[("Location", location)], b"").await
        }
    }
}

/// A host name other than `localhost` that `/etc/hosts` maps to a loopback address (`vm`,
/// the machine's own name, `ip6-localhost`): a name whose address only a resolver sees.
pub fn loopback_name() -> &'static str {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let name = hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let ip: std::net::IpAddr = f.next()?.parse().ok()?;
            ip.is_loopback().then_some(f)
        })
        .flatten()
        .find(|n| {
            !n.eq_ignore_ascii_case("localhost") && !n.to_ascii_lowercase().ends_with(".localhost")
        })
        .expect("this test needs a name other than localhost for a loopback address in /etc/hosts");
    Box::leak(name.to_string().into_boxed_str())
}
