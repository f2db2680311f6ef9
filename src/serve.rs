//! Serve mode, for a sidecar or a Prometheus target: the same checks on a schedule (one run at
//! a time, never overlapping), the last report and metrics over HTTP, and a graceful stop on
//! SIGTERM within the pod's grace period.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::time::MissedTickBehavior;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::probe;
use crate::registry::transport::{Transport, TransportConfig, TransportConfigError};
use crate::render;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Transport(#[from] TransportConfigError),
    /// `--watch` with no cluster to watch: said at start (exit 2), not by a /readyz that
    /// stays "first run pending" forever.
    #[error(
        "serve --watch needs a Kubernetes API: none is configured (no in-cluster ServiceAccount, no KUBECONFIG or ~/.kube/config)"
    )]
    NoCluster {
        #[source]
        source: kube::config::InferConfigError,
    },
}

struct Shared {
    metrics: Metrics,
    /// The last report, rendered as JSON once per run. Its lock is also the metrics' lock: a
    /// run's results go into `metrics` and here under one write lock, and a scrape encodes
    /// under the read lock. Folding a run in clears families before refilling them, so a
    /// scrape in between would read some series of the last run, some of the one before and
    /// none at all of others (an image's `success` absent), and /report another run again.
    /// `Bytes`, not `String`: a request takes a reference to it, not a copy (9.3 MB each at
    /// 10,000 workloads, while the next one is built beside it).
    last: RwLock<Option<Bytes>>,
    /// `--node-docker-config`, watched by `/healthz`.
    node_docker_config: Option<std::path::PathBuf>,
    /// serve --watch: why no list has come in yet, for `/readyz`.
    watch_problem: RwLock<Option<String>>,
}

impl Shared {
    /// Publishes one run: `update` folds it into the metrics, `json` is its report.
    fn publish(&self, json: impl Into<Bytes>, update: impl FnOnce(&Metrics)) {
        let json = json.into();
        let mut last = self.last.write().unwrap_or_else(|e| e.into_inner());
        update(&self.metrics);
        *last = Some(json);
    }

    /// The metrics, read as one whole run.
    fn encode(&self, classic_text: bool) -> String {
        let _run = self.last.read().unwrap_or_else(|e| e.into_inner());
        if classic_text {
            self.metrics.encode_text()
        } else {
            self.metrics.encode()
        }
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics, unless the client asks for the classic text format and not for OpenMetrics
/// (Prometheus asks for both and gets OpenMetrics; `curl` with no preference gets it too).
async fn metrics(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.contains("text/plain") && !accept.contains("application/openmetrics-text") {
        ([(header::CONTENT_TYPE, TEXT_FORMAT)], s.encode(true))
    } else {
        ([(header::CONTENT_TYPE, OPENMETRICS)], s.encode(false))
    }
}

async fn report(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    match s.last.read().unwrap_or_else(|e| e.into_inner()).clone() {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no run has finished yet\n").into_response(),
    }
}

/// Ready once a first run has finished, so a rollout waits for a first answer.
async fn ready(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    // serve --watch before its first list: say why, not only "pending" (issue 30 point 9).
    if let Some(problem) = s
        .watch_problem
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("first run pending: the Kubernetes API did not answer the watch: {problem}\n"),
        )
            .into_response();
    }
    if s.last.read().unwrap_or_else(|e| e.into_inner()).is_some() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "first run pending\n").into_response()
    }
}

/// `probe::run` as a boxed `Send` future: spawning it directly trips the compiler's
/// higher-ranked lifetime inference over the stream combinators inside (rust-lang/rust#102211).
fn boxed_run(
    config: &Config,
) -> std::pin::Pin<
    Box<dyn Future<Output = Result<crate::report::Report, probe::SetupError>> + Send + '_>,
> {
    Box::pin(probe::run(config))
}

/// Alive unless the node-wide docker config was replaced on the host since this container
/// mounted it (a single-file mount keeps the old inode): a failed liveness probe makes the
/// kubelet restart the container, which mounts the new file.
async fn healthz(State(shared): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    match &shared.node_docker_config {
        Some(path) if probe::node_docker_config_replaced(path) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the node's docker config was replaced on the host since this container started: restart to mount the new file (NODE_DOCKER_CONFIG_REPLACED)\n",
        ),
        _ => (StatusCode::OK, "ok\n"),
    }
}

async fn check_loop(config: Config, interval: Duration, shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(interval);
    // A run longer than the interval delays the next one instead of stacking runs.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match boxed_run(&config).await {
            Ok(r) => {
                let json = render::json(&r);
                shared.publish(json, |m| m.observe(&r, probe::unix_now() as f64));
                run_summary(&r);
            }
            Err(e) => tracing::error!(error = %crate::error_chain(&e), "run could not start"),
        }
    }
}

/// The one line a run leaves at the default level: what `check` would have printed as its
/// headline and exit code, in fields a log search can filter on.
pub(crate) fn run_summary(r: &crate::report::Report) {
    let failures = r
        .images
        .iter()
        .filter(|i| i.verdict != crate::report::Verdict::Pass)
        .count();
    tracing::info!(
        verdict = %crate::report::wire_name(&r.verdict),
        exit_code = crate::exit::exit(r).code(),
        images = r.images.len(),
        failures,
        duration_ms = r.duration_ms,
        "run finished"
    );
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers the process still stops on the default SIGTERM action.
        _ => std::future::pending::<()>().await,
    }
    tracing::info!("shutting down");
}

pub async fn serve(
    config: Config,
    interval: Duration,
    listen: SocketAddr,
    watch: Option<crate::config::WatchConfig>,
) -> Result<(), ServeError> {
    // Refuse a bad CA file at start, not at the first run.
    Transport::new(&TransportConfig {
        connect_timeout: config.connect_timeout,
        read_timeout: config.read_timeout,
        ca_file: config.ca_file.as_deref(),
        rate_per_second: config.registry_rate,
    })?;
    if watch.is_some() {
        kube::Config::infer()
            .await
            .map_err(|source| ServeError::NoCluster { source })?;
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let shared = Arc::new(Shared {
        metrics: Metrics::new(),
        last: RwLock::new(None),
        node_docker_config: config.node_docker_config.clone(),
        watch_problem: RwLock::new(None),
    });
    shared.metrics.set_interval(interval);
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/report", get(report))
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready))
        .with_state(shared.clone());
    // The bound address, not the asked one: with port 0 (tests, ad-hoc runs) this is the only
    // place the port is told.
    let bound = listener.local_addr().unwrap_or(listen);
    tracing::info!(listen = %bound, "serving /metrics, /report, /healthz, /readyz");
    // The checks run in a task of their own, on the runtime's worker threads: whatever a run
    // does (parsing hostile input, hashing layers) never holds up /healthz or SIGTERM.
    let checks = match watch {
        None => tokio::spawn(check_loop(config, interval, shared)),
        Some(w) => tokio::spawn(async move {
            crate::watch::run(config, interval, w, move |state, report, json| {
                shared.publish(json, |m| crate::watch::publish(state, report, m));
                *shared
                    .watch_problem
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = state.workloads.api_problem.clone();
            })
            .await
        }),
    };
    serve_http(listener, app).await;
    // Stopping cancels a run in progress; a canary pod it created is deleted by its guard,
    // and the pod's grace period is spent waiting for that, not for the run.
    checks.abort();
    let _ = checks.await;
    crate::paths::canary::settle(CANARY_CLEANUP_GRACE).await;
    Ok(())
}

/// Connections served at once; more are closed at accept. A Prometheus server or two and a
/// kubelet's probes need a handful.
const MAX_CONNECTIONS: usize = 64;
/// Connections served at once to one peer (an IPv4 address, an IPv6 /64): a Prometheus server
/// keeps one or two, the kubelet one per probe. Without it one client opening 64 idle sockets
/// every 5 s kept the liveness probe and the scrapes out (issue 23); now it takes 8 addresses.
const MAX_PER_PEER: usize = 8;
/// A request head must arrive within this, so a slow or half-sent request cannot hold a
/// connection slot (2,000 of them once held 38 MB and blocked SIGTERM).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one connection, keep-alive included.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// How long a stopping server lets requests in flight finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The HTTP side, bounded: a cap on connections, a header-read timeout, a lifetime per
/// connection, and a stop on SIGTERM/SIGINT that waits at most [`SHUTDOWN_GRACE`] for
/// requests in flight.
async fn serve_http(listener: tokio::net::TcpListener, app: Router) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let peers = Peers::new(MAX_PER_PEER);
    let mut connections = tokio::task::JoinSet::new();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Reap finished connections so the set stays as small as the live ones.
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = MAX_CONNECTIONS,
                "connection limit reached; closing a new connection"
            );
            continue;
        };
        let Some(peer_slot) = peers.acquire(peer.ip()) else {
            tracing::warn!(
                limit = MAX_PER_PEER,
                peer = %peer.ip(),
                "per-peer connection limit reached; closing a new connection"
            );
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        connections.spawn(async move {
            let _slot = (slot, peer_slot);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.shutdown().await;
}

/// Open connections per peer, capped. Peers are IPv4 addresses and IPv6 /64s (one host's
/// usual allocation; an IPv4-mapped address counts as its IPv4 one).
#[derive(Debug, Clone)]
struct Peers {
    limit: usize,
    open: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

/// One peer's connection; gives its slot back when dropped.
#[derive(Debug)]
struct PeerSlot {
    peers: Peers,
    peer: std::net::IpAddr,
}

impl Peers {
    fn new(limit: usize) -> Self {
        Peers {
            limit,
            open: Arc::default(),
        }
    }

    fn key(ip: std::net::IpAddr) -> std::net::IpAddr {
        use std::net::{IpAddr, Ipv6Addr};
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }

    fn acquire(&self, ip: std::net::IpAddr) -> Option<PeerSlot> {
        let peer = Self::key(ip);
        // Poisoned only if a holder panicked; the counts are still counts.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(peer).or_default();
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            peer,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                // The map holds only peers with open connections: it cannot grow with the
                // number of peers ever seen.
                open.remove(&self.peer);
            }
        }
    }
}

/// How long a stopping `serve` waits for canary deletes, well inside the default 30 s
/// termination grace period.
const CANARY_CLEANUP_GRACE: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::report::fixtures;

    fn success_series(text: &str) -> usize {
        text.lines()
            .filter(|l| l.starts_with("ecr_pull_probe_success{"))
            .count()
    }

    /// A scrape reads one whole run. Runs checking one image or the other are folded in from
    /// another thread as fast as they come; every scrape has exactly one image's `success`,
    /// never none (a family cleared and not yet refilled) and never both.
    /// Issue 23: one peer's connections are capped; other peers still get theirs, and a closed
    /// connection frees its slot. An IPv6 /64 is one peer, an IPv4-mapped address its IPv4.
    #[test]
    fn one_peer_cannot_take_every_connection() {
        let peers = Peers::new(2);
        let flood: std::net::IpAddr = "10.0.0.9".parse().unwrap();
        let kubelet: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..5).filter_map(|_| peers.acquire(flood)).collect();
        assert_eq!(held.len(), 2);
        assert!(peers.acquire("::ffff:10.0.0.9".parse().unwrap()).is_none());
        let probe = peers.acquire(kubelet);
        assert!(probe.is_some(), "another peer is not held back");
        let a = peers.acquire("2001:db8:0:1::a".parse().unwrap());
        let b = peers.acquire("2001:db8:0:1::b".parse().unwrap());
        assert!(a.is_some() && b.is_some());
        assert!(
            peers
                .acquire("2001:db8:0:1:ffff::c".parse().unwrap())
                .is_none()
        );
        assert!(peers.acquire("2001:db8:0:2::a".parse().unwrap()).is_some());
        drop(held);
        assert!(peers.acquire(flood).is_some(), "slots come back");
        drop((probe, a, b));
        assert_eq!(
            peers.open.lock().unwrap().len(),
            0,
            "no peer kept without connections"
        );
    }

    #[test]
    fn a_scrape_never_reads_a_run_half_folded_in() {
        let shared = Arc::new(Shared {
            metrics: Metrics::new(),
            last: RwLock::new(None),
            node_docker_config: None,
            watch_problem: RwLock::new(None),
        });
        shared.publish(String::new(), |m| {
            m.observe(&fixtures::passing(&["a/one"], 1), 1.0)
        });
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                let runs = [
                    fixtures::passing(&["a/one"], 1),
                    fixtures::passing(&["a/two"], 1),
                ];
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    shared.publish(String::new(), |m| m.observe(&runs[i % 2], 1.0));
                }
            })
        };
        let torn = (0..5_000)
            .map(|_| shared.encode(false))
            .find(|text| success_series(text) != 1);
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert_eq!(torn, None);
    }
}
