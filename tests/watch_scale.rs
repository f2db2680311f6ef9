//! The scale benchmark of `serve --watch` (issues 12 and 27): a fleet of workloads (1,000 by
//! default, `scripts/bench --only watch --size 10000` for ten times that) over the stack's
//! distinct fleet images (common::fleet), served by the FAKE Kubernetes API with paged lists
//! and watches (common::fake_watch), pulled from the real local registry. Not a test of
//! timing: it is `#[ignore]`d, run by `scripts/bench --only watch`, and prints its figures as
//! one `BENCH_WATCH {json}` line: API and registry requests, checks run against distinct
//! (image, credentials), time until every workload has a verdict, RSS, and the same after a
//! rollout storm. It asserts only that every verdict is the right one (every image exists and
//! every secret is good) and that the storm's deleted workloads leave no series.
//!
//! Knobs (environment): `BENCH_WORKLOADS` (1000), `BENCH_IMAGES` (the stack's
//! `STACK_FLEET_IMAGES`, started with `STACK_FLEET_IMAGES=100`), `BENCH_INTERVAL` (`30s`),
//! `BENCH_PROBE_BIN` (the binary to run; the release build in the benchmark),
//! `MALLOC_ARENA_MAX` (handed to the probe when set, as a pod's env would be). The registry
//! requests are counted in its access log (`STACK_REGISTRY_ACCESSLOG=1`).

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::fake_watch::WatchApi;
use common::fleet::{Shape, fleet, report_workloads, rollout_storm, workload_series};
use common::scrape::get;
use common::*;
use serde_json::{Value, json};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

/// Waits until `/report` has every workload of the fleet with a verdict and `settled` holds
/// of it, or fails. Polled once a second: a 10,000-workload report is tens of megabytes.
fn until_every_verdict(
    base: &str,
    workloads: usize,
    limit: Duration,
    settled: impl Fn(&Value) -> bool,
) -> Value {
    let t = Instant::now();
    loop {
        let r = report(base);
        if let Some(r) = &r
            && r["summary"]["workloads"] == workloads
            && r["summary"]["unknown"] == 0
            && settled(r)
        {
            return r.clone();
        }
        assert!(
            t.elapsed() < limit,
            "no verdict for every workload after {:?}; the last summary: {}",
            t.elapsed(),
            r.map(|r| r["summary"].to_string()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// What one phase of the benchmark cost: checks, API and registry requests, memory.
struct Counters<'a> {
    api: &'a WatchApi,
    log: std::path::PathBuf,
    pid: u32,
    checks: u64,
    batches: u64,
    last: (u64, u64, u64, u64, u64, u64),
}

impl Counters<'_> {
    /// The counts since the last call, as the figures of a phase.
    fn phase(&mut self, server: &ServeProcess, seconds: f64) -> Value {
        std::thread::sleep(Duration::from_millis(300));
        drain_checks(server, &mut self.checks, &mut self.batches);
        let (lists, watches, gets) = api_requests(self.api);
        let reg = registry_requests(&self.log);
        let now = (self.checks, self.batches, lists, watches, gets, reg);
        let l = self.last;
        self.last = now;
        let (hwm, rss) = memory_kib(self.pid);
        let report_bytes = get(&format!("{}/report", server.base)).1.len();
        json!({
            "report_bytes": report_bytes,
            "seconds": seconds,
            "checks_run": now.0 - l.0, "runs": now.1 - l.1,
            "api_lists": now.2 - l.2, "api_watches": now.3 - l.3, "api_gets": now.4 - l.4,
            "registry_requests": now.5 - l.5, "peak_rss_kib": hwm, "rss_kib": rss,
        })
    }
}

#[test]
#[ignore = "a benchmark: scripts/bench --only watch"]
fn watch_fleet_benchmark() {
    let s = Stack::get();
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
    let f = fleet(Shape::of(n), &images);
    let fake = f.served(s);
    let (api, kubeconfig) = (&fake.api, &fake.kubeconfig);
    let served = f.objects.len();

    let log = s.dir().join("registry.log");
    let t0 = Instant::now();
    let arenas = std::env::var("MALLOC_ARENA_MAX").ok();
    let mut env = vec![
        ("KUBECONFIG", kubeconfig.to_str().unwrap()),
        ("RUST_LOG", "ecr_pull_probe=info"),
    ];
    env.extend(arenas.as_deref().map(|a| ("MALLOC_ARENA_MAX", a)));
    let server = ServeProcess::start_of(
        &bin,
        &["--watch", "--all-namespaces", "--interval", &interval],
        &env,
    );
    let base = server.base.clone();
    let mut c = Counters {
        api,
        last: (0, 0, 0, 0, 0, registry_requests(&log)),
        log,
        pid: server.child.id(),
        checks: 0,
        batches: 0,
    };

    // Round one: until every workload has a verdict.
    let limit = Duration::from_secs(interval_s * 2 + 120);
    let first = until_every_verdict(&base, f.workloads, limit, |_| true);
    let first_phase = c.phase(&server, t0.elapsed().as_secs_f64());
    assert_eq!(first["summary"]["containers"], f.containers, "containers");
    assert_eq!(
        first["summary"]["available"], f.containers,
        "every image exists and every secret is good"
    );

    // Round two: the interval passes and every check is due again.
    let round2 = Instant::now();
    while c.checks < first_phase["checks_run"].as_u64().unwrap() + f.distinct.len() as u64 {
        drain_checks(&server, &mut c.checks, &mut c.batches);
        assert!(
            round2.elapsed() < Duration::from_secs(interval_s + 120),
            "round two did not finish: {} checks",
            c.checks
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second_phase = c.phase(&server, round2.elapsed().as_secs_f64());

    // Round three, the rollout storm: every Deployment's template and pod replaced, every
    // tenth workload deleted and as many created; then until every workload has a verdict.
    let storm_start = Instant::now();
    let storm = rollout_storm(api, &f, &images, 10);
    let after = until_every_verdict(&base, f.workloads, limit, |r| {
        let now = report_workloads(r);
        storm.created.is_subset(&now) && storm.deleted.is_disjoint(&now)
    });
    let storm_phase = c.phase(&server, storm_start.elapsed().as_secs_f64());
    let (series_workloads, series) = workload_series(&base);
    let left: Vec<_> = storm.deleted.intersection(&series_workloads).collect();
    assert!(left.is_empty(), "deleted workloads keep series: {left:?}");
    let missing: Vec<_> = storm.created.difference(&series_workloads).collect();
    assert!(
        missing.is_empty(),
        "created workloads have no series: {missing:?}"
    );
    assert_eq!(
        series_workloads.len(),
        f.workloads,
        "one workload for each deleted one"
    );
    let (hwm, rss) = memory_kib(server.child.id());

    let figures = json!({
        "workloads": f.workloads, "containers": f.containers, "objects_served": served,
        "namespaces": f.shape.namespaces, "secret_namespaces": f.shape.secret_namespaces,
        "images": m, "distinct_image_credentials": f.distinct.len(),
        "distinct_pulls": f.distinct_pulls.len(),
        "report_checks": first["summary"]["checks"],
        "interval_s": interval_s,
        "first": first_phase,
        "second": second_phase,
        "storm": {
            "puts": storm.puts, "deletes": storm.deletes,
            "created": storm.created.len(), "deleted": storm.deleted.len(),
            "phase": storm_phase, "series": series,
            "available": after["summary"]["available"], "containers": after["summary"]["containers"],
        },
        "peak_rss_kib": hwm, "rss_kib": rss,
        "all_available": after["summary"]["available"] == after["summary"]["containers"],
    });
    println!("BENCH_WATCH {figures}");
}
