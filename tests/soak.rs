//! The serve-mode soak (issue 11 point 4): `serve` at a 100 ms interval for hundreds of runs
//! against the fake registry, whose fault is switched while serve runs (down, slow, back; a
//! corrupt layer, repaired), with the web identity token rotated the way the kubelet rotates a
//! projected volume. Asserts that the first run to start after each switch shows it, in the
//! metrics and in /report; that no scrape shows a result older than one run's deadline; that
//! the new token is the one sent to STS; and that RSS and open file descriptors stay flat.
//!
//! Figures are printed (`cargo test --test soak -- --nocapture`).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::aws_proxy::AwsProxy;
use common::fault::{Fault, FaultRegistry};
use common::scrape::*;
use common::*;
use serde_json::Value;

/// Serve's settings: runs 100 ms apart, each with a 3 s deadline and a 1 s read timeout.
const INTERVAL: &str = "100ms";
const RUN_TIMEOUT: Duration = Duration::from_secs(3);
const READ_TIMEOUT: &str = "1s";
/// Runs after which memory and descriptors are measured first, and runs in all.
const WARM_UP_RUNS: f64 = 30.0;
const TOTAL_RUNS: f64 = 200.0;
/// Allowed growth between the two measurements.
const RSS_GROWTH_KIB: u64 = 8 * 1024;
const FD_GROWTH: usize = 4;

/// The oldest result a scrape may show: one run at its deadline after the interval, plus the
/// whole second `last_run_timestamp_seconds` is rounded to and slack for a loaded machine.
/// A run that waited on a slow registry without a deadline would show older results.
const MAX_RESULT_AGE: Duration = Duration::from_secs(6);

fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A projected ServiceAccount token volume as the kubelet's AtomicWriter keeps it: the files
/// in a timestamped directory (`..2026_11_28_12_00_00.1`), `..data` a symlink to it, `token` a
/// symlink to `..data/token`. An update writes a new timestamped directory, points
/// `..data_tmp` at it, renames `..data_tmp` over `..data` (atomic) and removes the old
/// directory: whoever opens `token` gets the old token or the new one, whole.
struct ProjectedVolume {
    dir: tempfile::TempDir,
    current: Option<String>,
    serial: u32,
    /// Every token written, for the checks that they never leak.
    written: Vec<String>,
}

impl ProjectedVolume {
    fn new() -> ProjectedVolume {
        ProjectedVolume {
            dir: tempfile::tempdir().unwrap(),
            current: None,
            serial: 0,
            written: Vec::new(),
        }
    }

    /// What `AWS_WEB_IDENTITY_TOKEN_FILE` names.
    fn token_path(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// Writes a token for ServiceAccount `sa` expiring at `exp`; returns the token.
    fn rotate(&mut self, sa: &str, exp: i64) -> String {
        let mut claims = good_claims();
        claims["sub"] = format!("system:serviceaccount:consultingfirm:{sa}").into();
        claims["exp"] = exp.into();
        claims["kubernetes.io"]["serviceaccount"]["name"] = sa.into();
        self.serial += 1;
        let t = time::OffsetDateTime::now_utc();
        let name = format!(
            "..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.{}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            self.serial
        );
        let root = self.dir.path();
        std::fs::create_dir(root.join(&name)).unwrap();
        let token =
            std::fs::read_to_string(write_token(&root.join(&name), "token", &claims)).unwrap();
        std::os::unix::fs::symlink(&name, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        if std::fs::symlink_metadata(self.token_path()).is_err() {
            std::os::unix::fs::symlink("..data/token", self.token_path()).unwrap();
        }
        if let Some(old) = self.current.replace(name) {
            std::fs::remove_dir_all(root.join(old)).unwrap();
        }
        self.written.push(token.clone());
        token
    }
}

/// One read of /metrics as text. Polls read the text only, since the reference parser is a
/// Python process and running it several times a second would slow the runs being measured;
/// whatever a test asserts on is read by the parser ([`Scrape`]).
struct Peek {
    text: String,
    /// Runs finished, whatever their verdict.
    runs: f64,
}

/// A scrape parsed by the reference OpenMetrics parser.
struct Scrape {
    text: String,
    samples: Vec<(String, Value, f64)>,
}

impl Scrape {
    fn parse(p: Peek) -> Scrape {
        let s = Scrape {
            samples: parse_metrics(&p.text),
            text: p.text,
        };
        assert_eq!(s.runs(), p.runs, "the parser and the text agree");
        s
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        sample(&self.samples, name, labels).copied()
    }

    /// Runs finished, whatever their verdict.
    fn runs(&self) -> f64 {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == "ecr_pull_probe_runs_total")
            .map(|(_, _, v)| v)
            .sum()
    }
}

struct Soak {
    server: ServeProcess,
    image: String,
    pid: u32,
}

impl Soak {
    /// Reads /metrics and checks what every scrape must hold: one whole run (the image's
    /// `success` present) whose result is not older than one run's deadline allows.
    fn peek(&self) -> Peek {
        let (code, text) = get(&format!("{}/metrics", self.server.base));
        assert_eq!(code, 200, "{text}");
        let value = |line: &str| line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        let success = format!("ecr_pull_probe_success{{image=\"{}\"}} ", self.image);
        assert!(
            text.lines().any(|l| l.starts_with(&success)),
            "a scrape without the image's success series:\n{text}"
        );
        let finished = text
            .lines()
            .find(|l| l.starts_with("ecr_pull_probe_last_run_timestamp_seconds "))
            .and_then(value)
            .unwrap_or_else(|| panic!("no last run timestamp:\n{text}"));
        let age = unix_now_f64() - finished;
        assert!(
            age <= MAX_RESULT_AGE.as_secs_f64(),
            "the result shown is {age:.1} s old"
        );
        let runs = text
            .lines()
            .filter(|l| l.starts_with("ecr_pull_probe_runs_total{"))
            .filter_map(value)
            .sum();
        Peek { text, runs }
    }

    fn report(&self) -> Value {
        let (code, body) = get(&format!("{}/report", self.server.base));
        assert_eq!(code, 200, "{body}");
        let r: Value = serde_json::from_str(&body).unwrap();
        validate(&r);
        r
    }

    /// After a switch made at `switched_at` (Unix seconds): scrapes until a run that started
    /// after it is shown, and returns that scrape and /report read after it. That is the run
    /// counter two past its value at the first scrape after the switch (the run in progress
    /// then may have started before it); /report is then at least that run, and its
    /// `started_at` is checked to be after the switch.
    fn first_run_after(&self, what: &str, switched_at: f64) -> (Scrape, Value) {
        let before = self.peek().runs;
        let start = Instant::now();
        loop {
            let p = self.peek();
            if p.runs >= before + 2.0 {
                let s = Scrape::parse(p);
                let r = self.report();
                let started = time::OffsetDateTime::parse(
                    r["started_at"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap();
                let started = started.unix_timestamp_nanos() as f64 / 1e9;
                assert!(
                    started >= switched_at,
                    "{what}: /report shows a run that started {:.3} s before the switch, after the metrics showed a later one",
                    switched_at - started
                );
                return (s, r);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what}: no run after the switch in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// RSS (KiB) and open descriptors: the least of a few samples, since a run in progress
    /// holds connections for a moment.
    fn resources(&self) -> (u64, usize) {
        let mut least = (u64::MAX, usize::MAX);
        for _ in 0..5 {
            let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
            let rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap();
            let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
                .unwrap()
                .count();
            least = (least.0.min(rss), least.1.min(fds));
            std::thread::sleep(Duration::from_millis(30));
        }
        least
    }

    /// Scrapes until `runs` runs have finished.
    fn until_runs(&self, runs: f64) -> Scrape {
        let start = Instant::now();
        loop {
            let p = self.peek();
            if p.runs >= runs {
                return Scrape::parse(p);
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{} runs after 90 s, waiting for {runs}",
                p.runs
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The image's finding with `code` in a report, with its summary.
fn image_finding<'a>(r: &'a Value, code: &str) -> &'a Value {
    finding(&r["images"][0], code)
}

fn assert_passes(what: &str, soak: &Soak, s: &Scrape, r: &Value) {
    assert_eq!(
        s.value("ecr_pull_probe_success", &[("image", &soak.image)]),
        Some(1.0),
        "{what}:\n{}",
        s.text
    );
    assert_eq!(
        r["images"][0]["verdict"], "pass",
        "{what}: {:#}",
        r["images"][0]
    );
}

fn assert_fails(what: &str, soak: &Soak, s: &Scrape, stage_name: &str, code: &str) {
    let image = soak.image.as_str();
    let check = |name: &str, labels: &[(&str, &str)], want: f64| {
        assert_eq!(
            s.value(name, labels),
            Some(want),
            "{what}: {name}:\n{}",
            s.text
        );
    };
    check("ecr_pull_probe_success", &[("image", image)], 0.0);
    check(
        "ecr_pull_probe_stage_success",
        &[("image", image), ("stage", stage_name)],
        0.0,
    );
    check(
        "ecr_pull_probe_findings",
        &[("code", code), ("severity", "error")],
        1.0,
    );
}

#[test]
fn serve_follows_faults_and_token_rotation_and_stays_flat() {
    let t0 = Instant::now();
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::None);
    let proxy = AwsProxy::start(s.var("AWS_ENDPOINT_URL"), vec![], 0);
    let mut volume = ProjectedVolume::new();
    let exp = now() + 3600;
    volume.rotate("naming-server", exp);

    let image = s.image("faulty:latest");
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let token_file = volume.token_path();
    let timeout = format!("{}s", RUN_TIMEOUT.as_secs());
    let server = ServeProcess::start(
        &[
            "--interval",
            INTERVAL,
            "--timeout",
            &timeout,
            "--read-timeout",
            READ_TIMEOUT,
            "--connect-timeout",
            READ_TIMEOUT,
            &image,
        ],
        &[
            ("AWS_ENDPOINT_URL", &proxy.url()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", &endpoint),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", "true"),
        ],
    );
    let pid = server.child.id();
    let soak = Soak { server, image, pid };
    let ready = Instant::now();
    while get(&format!("{}/readyz", soak.server.base)).0 != 200 {
        assert!(ready.elapsed() < Duration::from_secs(30), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    soak.until_runs(WARM_UP_RUNS);
    let (rss_warm, fds_warm) = soak.resources();
    let runs_warm = soak.peek().runs;

    // Each fault, then its repair; every switch also rotates the token, so rotations happen
    // under load, and each check is of the first run to start after the switch.
    let mut sa_serial = 0;
    let mut switch = |fault: Fault, volume: &mut ProjectedVolume| {
        sa_serial += 1;
        volume.rotate(&format!("sa-{sa_serial}"), exp + sa_serial);
        fake.set_fault(fault);
        unix_now_f64()
    };

    let at = switch(Fault::Down, &mut volume);
    let (m, r) = soak.first_run_after("registry down", at);
    assert_fails(
        "registry down",
        &soak,
        &m,
        "registry_auth",
        "REGISTRY_UNREACHABLE",
    );
    let f = image_finding(&r, "REGISTRY_UNREACHABLE");
    assert!(
        f["summary"].as_str().unwrap().contains("cannot connect"),
        "{f:#}"
    );

    let at = switch(Fault::None, &mut volume);
    let (m, r) = soak.first_run_after("registry back", at);
    assert_passes("registry back", &soak, &m, &r);

    // Slow, within bounds: five requests of 150 ms each; the run passes and takes longer.
    let at = switch(Fault::Slow(Duration::from_millis(150)), &mut volume);
    let (m, r) = soak.first_run_after("registry slow", at);
    assert_passes("registry slow", &soak, &m, &r);
    let took = m
        .value("ecr_pull_probe_last_run_duration_seconds", &[])
        .unwrap();
    assert!(took >= 0.75, "a slow registry's run took {took} s");

    // Each answer within the read timeout, the five of them past the run's deadline: the run
    // ends there.
    let at = switch(Fault::Slow(Duration::from_millis(700)), &mut volume);
    let (m, r) = soak.first_run_after("registry slower than the deadline", at);
    let f = image_finding(&r, "DEADLINE_EXCEEDED");
    assert!(f["evidence"]["stage"].is_string(), "{f:#}");
    assert_eq!(
        m.value("ecr_pull_probe_success", &[("image", &soak.image)]),
        Some(0.0)
    );
    let took = m
        .value("ecr_pull_probe_last_run_duration_seconds", &[])
        .unwrap();
    // The finding above proves the deadline ended it; this bounds it loosely, so a loaded
    // machine cannot fail it, yet a run that hung would.
    assert!(
        took <= RUN_TIMEOUT.as_secs_f64() + 3.0,
        "the run took {took} s"
    );

    // Answers later than the read timeout: the registry did not answer in time.
    let at = switch(Fault::Slow(Duration::from_millis(1500)), &mut volume);
    let (m, r) = soak.first_run_after("registry slower than the read timeout", at);
    assert_fails(
        "registry slower than the read timeout",
        &soak,
        &m,
        "registry_auth",
        "REGISTRY_UNREACHABLE",
    );
    let f = image_finding(&r, "REGISTRY_UNREACHABLE");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("did not answer in time"),
        "{f:#}"
    );

    let at = switch(Fault::None, &mut volume);
    let (m, r) = soak.first_run_after("registry fast again", at);
    assert_passes("registry fast again", &soak, &m, &r);

    let at = switch(Fault::CorruptLayer, &mut volume);
    let (m, r) = soak.first_run_after("layer corrupted", at);
    assert_fails(
        "layer corrupted",
        &soak,
        &m,
        "layers",
        "BLOB_DIGEST_MISMATCH",
    );
    assert_eq!(
        image_finding(&r, "BLOB_DIGEST_MISMATCH")["evidence"]["digest"],
        fake.layer_digest
    );

    let at = switch(Fault::None, &mut volume);
    let (m, r) = soak.first_run_after("layer repaired", at);
    assert_passes("layer repaired", &soak, &m, &r);

    // The token: after a rotation, the next run reads the new one and sends it to STS.
    let token = volume.rotate("rotated", exp + 1000);
    let at = unix_now_f64();
    let (m, r) = soak.first_run_after("token rotated", at);
    assert_passes("token rotated", &soak, &m, &r);
    assert_eq!(
        r["identity"]["token"]["subject"],
        "system:serviceaccount:consultingfirm:rotated"
    );
    assert_eq!(
        m.value(
            "ecr_pull_probe_web_identity_token_expiry_timestamp_seconds",
            &[]
        ),
        Some((exp + 1000) as f64)
    );
    assert_eq!(
        m.value("ecr_pull_probe_identity_stage_success", &[("stage", "sts")]),
        Some(1.0)
    );
    assert_eq!(
        proxy.web_identity_tokens.lock().unwrap().last(),
        Some(&token),
        "the token sent to STS is the new one"
    );

    // Then runs until hundreds have finished, the token rotated every few seconds.
    let mut next_rotation = Instant::now();
    let end = loop {
        let p = soak.peek();
        if p.runs >= TOTAL_RUNS {
            break Scrape::parse(p);
        }
        if Instant::now() >= next_rotation {
            sa_serial += 1;
            volume.rotate(&format!("sa-{sa_serial}"), exp + sa_serial);
            next_rotation = Instant::now() + Duration::from_secs(2);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "the soak is too slow"
        );
        // Each scrape runs the Python parser: a few a second would slow the runs measured.
        std::thread::sleep(Duration::from_millis(1000));
    };
    let (rss_end, fds_end) = soak.resources();
    let runs_end = end.runs();

    // A rotation never left the probe without a token: no run erred, and every token STS got
    // is one the volume held, whole.
    assert_eq!(
        end.value("ecr_pull_probe_runs_total", &[("verdict", "error")]),
        None,
        "{}",
        end.text
    );
    let sent = proxy.web_identity_tokens.lock().unwrap().clone();
    assert!(
        sent.len() as f64 >= runs_end - 1.0,
        "{} tokens sent in {runs_end} runs",
        sent.len()
    );
    assert!(sent.iter().all(|t| volume.written.contains(t)));

    // No secret in what serve shows or logs.
    let report = soak.report().to_string();
    let logs: Vec<String> = soak.server.stderr.try_iter().collect();
    let logs = logs.join("\n");
    assert!(!logs.contains("run could not start"), "{logs}");
    for secret in volume
        .written
        .iter()
        .map(String::as_str)
        .chain([s.var("STACK_REGISTRY_PASSWORD")])
    {
        for (what, text) in [("metrics", &end.text), ("report", &report), ("logs", &logs)] {
            assert!(!text.contains(secret), "a secret in the {what}");
        }
    }

    eprintln!(
        "soak: {runs_end} runs ({} after warm-up) in {:.1} s; {} token rotations; RSS {rss_warm} KiB after {runs_warm} runs, {rss_end} KiB after {runs_end} (+{} KiB); open fds {fds_warm} -> {fds_end}",
        runs_end - runs_warm,
        t0.elapsed().as_secs_f64(),
        volume.serial,
        rss_end as i64 - rss_warm as i64,
    );
    assert!(
        rss_end <= rss_warm + RSS_GROWTH_KIB,
        "RSS grew from {rss_warm} to {rss_end} KiB"
    );
    assert!(
        fds_end <= fds_warm + FD_GROWTH,
        "open fds grew from {fds_warm} to {fds_end}"
    );
}
