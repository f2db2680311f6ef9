//! Serve mode for real against the local stack: scrape /metrics and parse it with the
//! reference OpenMetrics parser, read /report, and stop it with SIGTERM. Also the termination
//! message a Job leaves for `kubectl get pod`.

mod common;

use std::time::{Duration, Instant};

use common::scrape::*;
use common::*;
use serde_json::Value;

#[test]
fn serve_mode_scrapes_reports_and_stops_on_sigterm() {
    let s = Stack::get();
    let (ok, missing) = (
        s.image("naming-server-service:latest"),
        s.image("no-such-repo:latest"),
    );
    let mut server = ServeProcess::start(&["--interval", "1s", &ok, &missing], &[]);
    let base = server.base.clone();

    let start = Instant::now();
    while get(&format!("{base}/readyz")).0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&format!("{base}/healthz")).0, 200);

    let (code, report) = get(&format!("{base}/report"));
    assert_eq!(code, 200);
    let report: Value = serde_json::from_str(&report).unwrap();
    validate(&report);
    assert_eq!(report["verdict"], "fail");

    // Wait for a second run, to see the schedule working.
    let samples = loop {
        let (code, text) = get(&format!("{base}/metrics"));
        assert_eq!(code, 200);
        let samples = parse_metrics(&text);
        let pass = sample(
            &samples,
            "ecr_pull_probe_runs_total",
            &[("verdict", "fail")],
        )
        .copied()
        .unwrap_or(0.0);
        if pass >= 2.0 {
            assert!(
                !text.contains(s.var("STACK_REGISTRY_PASSWORD")),
                "no secret in metrics"
            );
            break samples;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no second run");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        sample(&samples, "ecr_pull_probe_success", &[("image", &ok)]),
        Some(&1.0)
    );
    assert_eq!(
        sample(&samples, "ecr_pull_probe_success", &[("image", &missing)]),
        Some(&0.0)
    );
    assert_eq!(
        sample(
            &samples,
            "ecr_pull_probe_stage_success",
            &[("image", &missing), ("stage", "manifest")]
        ),
        Some(&0.0)
    );
    assert_eq!(
        sample(
            &samples,
            "ecr_pull_probe_identity_stage_success",
            &[("stage", "sts")]
        ),
        Some(&1.0)
    );
    assert_eq!(
        sample(
            &samples,
            "ecr_pull_probe_findings",
            &[("code", "REPOSITORY_NOT_FOUND"), ("severity", "error")]
        ),
        Some(&1.0)
    );
    assert_eq!(
        sample(
            &samples,
            "ecr_pull_probe_ecr_token_expiry_timestamp_seconds",
            &[("region", "us-east-1")]
        ),
        Some(&1420070400.0)
    );
    assert!(
        *sample(
            &samples,
            "ecr_pull_probe_pulled_bytes_total",
            &[("image", &ok)]
        )
        .unwrap()
            > 100_000.0
    );
    assert!(*sample(&samples, "ecr_pull_probe_last_run_timestamp_seconds", &[]).unwrap() > 1.7e9);
    assert!(
        *sample(
            &samples,
            "ecr_pull_probe_stage_duration_seconds_count",
            &[("stage", "manifest")]
        )
        .unwrap()
            >= 4.0
    );
    let exp = *sample(
        &samples,
        "ecr_pull_probe_web_identity_token_expiry_timestamp_seconds",
        &[],
    )
    .unwrap();
    assert!(exp > now() as f64);

    let status = server
        .signal_and_wait("TERM", Duration::from_secs(10))
        .expect("SIGTERM stops serve mode");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_job_leaves_its_verdict_in_the_termination_message() {
    let s = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    std::fs::write(&log, "").unwrap();
    let missing = s.image("no-such-repo:latest");
    let run = probe(
        &["check", &s.image("naming-server-service:latest"), &missing],
        &[(
            "ECR_PULL_PROBE_TERMINATION_LOG",
            Some(log.to_str().unwrap()),
        )],
    );
    assert_eq!(run.code, 1);
    let msg = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        msg,
        format!("ecr-pull-probe fail: 1 of 2 images pullable\n{missing} REPOSITORY_NOT_FOUND\n")
    );
    // No such file: nothing is written (outside a container).
    let absent = dir.path().join("absent");
    probe(
        &["check", &s.image("naming-server-service:latest")],
        &[(
            "ECR_PULL_PROBE_TERMINATION_LOG",
            Some(absent.to_str().unwrap()),
        )],
    );
    assert!(!absent.exists());
}

/// Issue 15: half-sent requests cannot pile up (a cap on connections), are dropped after the
/// header-read timeout, and never keep SIGTERM from stopping serve.
#[test]
fn half_sent_requests_are_bounded_and_never_block_sigterm() {
    use std::io::{Read as _, Write as _};
    let s = Stack::get();
    let mut server = ServeProcess::start(
        &["--interval", "1h", &s.image("naming-server-service:latest")],
        &[],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..200 {
        let Ok(mut c) = std::net::TcpStream::connect(&addr) else {
            continue;
        };
        let _ = c.write_all(b"GET /metrics HTTP/1.1\r\nHost: probe\r\n");
        held.push(c);
    }
    // Past the cap, connections are closed at once: reading them ends without an answer.
    std::thread::sleep(Duration::from_millis(500));
    let open = held
        .iter_mut()
        .filter_map(|c| {
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut b = [0u8; 1];
            matches!(c.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                .then_some(())
        })
        .count();
    assert!(open <= 64, "{open} half-sent connections are still held");
    // After the header-read timeout the slots are free again.
    let start = Instant::now();
    while get(&format!("{}/healthz", server.base)).0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "healthz never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Held connections again, then SIGTERM: serve stops within its grace.
    for _ in 0..100 {
        if let Ok(mut c) = std::net::TcpStream::connect(&addr) {
            let _ = c.write_all(b"GET /report HTTP/1.1\r\n");
            held.push(c);
        }
    }
    let status = server.signal_and_wait("TERM", Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM with half-sent requests: {status:?}"
    );
}

/// Issue 23: one client cannot hold every connection slot. Twenty idle sockets from one
/// address: serve keeps 8 of them (its per-peer cap, well under the 64 in all) and closes the
/// rest at once, so the kubelet's probes and Prometheus, other peers, still get in. (Every
/// test client is 127.0.0.1; other peers are the unit test's, `serve::tests`.)
#[test]
fn one_peer_gets_at_most_eight_connections() {
    use std::io::Read as _;
    let s = Stack::get();
    let server = ServeProcess::start(
        &["--interval", "1h", &s.image("naming-server-service:latest")],
        &[],
    );
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut held: Vec<_> = (0..20)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let open = held
        .iter_mut()
        .filter(|c| {
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut b = [0u8; 1];
            let mut c: &std::net::TcpStream = c;
            matches!(c.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    assert_eq!(open, 8, "one peer holds {open} connections");
    drop(held);
    // Its slots come back when it lets go.
    let start = Instant::now();
    while get(&format!("{}/healthz", server.base)).0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "healthz never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 8: serve as the node DaemonSet runs it (the node's provider config, the node name
/// from the downward API, `--require kubelet`): one series per path, the node's labelled.
#[test]
fn serve_on_a_node_reports_each_path_with_the_node() {
    let s = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let bin = local_provider_bin(dir.path());
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"apiVersion":"kubelet.config.k8s.io/v1","kind":"CredentialProviderConfig","providers":[{{"name":"ecr-credential-provider","apiVersion":"credentialprovider.kubelet.k8s.io/v1","matchImages":["*.dkr.ecr.*.amazonaws.com"],"defaultCacheDuration":"12h","env":[{{"name":"AWS_ENDPOINT_URL","value":"{}"}},{{"name":"NODE_ROLE_ARN","value":"arn:aws:iam::818140567777:role/eks-node-role"}},{{"name":"NODE_ACCESS_KEY_ID","value":"AKIANODE"}},{{"name":"NODE_SECRET_ACCESS_KEY","value":"node-secret-key"}}]}}]}}"#,
            s.var("AWS_ENDPOINT_URL")
        ),
    )
    .unwrap();
    let image = s.image("naming-server-service:latest");
    let server = ServeProcess::start(
        &["--interval", "1h", &image],
        &[
            (
                "ECR_PULL_PROBE_CREDENTIAL_PROVIDER_CONFIG",
                config.to_str().unwrap(),
            ),
            (
                "ECR_PULL_PROBE_CREDENTIAL_PROVIDER_BIN_DIR",
                bin.to_str().unwrap(),
            ),
            ("ECR_PULL_PROBE_NODE_NAME", "ip-10-0-1-23.ec2.internal"),
            ("ECR_PULL_PROBE_REQUIRE", "kubelet"),
        ],
    );
    let start = Instant::now();
    while get(&format!("{}/readyz", server.base)).0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, text) = get(&format!("{}/metrics", server.base));
    let samples = parse_metrics(&text);
    let path = |p: &str, node: &str| {
        sample(
            &samples,
            "ecr_pull_probe_path_success",
            &[("image", &image), ("path", p), ("node", node)],
        )
        .copied()
    };
    assert_eq!(
        path("node_credential_provider", "ip-10-0-1-23.ec2.internal"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(path("pod_identity", ""), Some(1.0), "{text}");
    assert_eq!(
        sample(&samples, "ecr_pull_probe_success", &[("image", &image)]).copied(),
        Some(1.0)
    );
    let (_, report) = get(&format!("{}/report", server.base));
    let r: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(r["require"], "kubelet");
    assert_eq!(
        r["images"][0]["paths"]["node_credential_provider"]["node"],
        "ip-10-0-1-23.ec2.internal"
    );
}

/// Issue 30 point 9: at the default log level (no `RUST_LOG`) serve says where it listens and
/// leaves one summary line per run, and nothing per stage; with `info`, a stage's line names
/// its image.
#[test]
fn serve_tells_what_it_does_at_the_default_level() {
    use std::io::BufRead as _;
    let s = Stack::get();
    let (ok, missing) = (
        s.image("naming-server-service:latest"),
        s.image("no-such-repo:latest"),
    );
    let mut child = probe_command(
        &[
            "serve",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1h",
            &ok,
            &missing,
        ],
        &[("RUST_LOG", None)],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines
        .iter()
        .any(|l| l["fields"]["message"] == "run finished")
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("a run summary in time");
        lines.push(serde_json::from_str(&line).unwrap_or(Value::Null));
    }
    let _ = child.kill();
    let _ = child.wait();
    let listen = lines
        .iter()
        .find_map(|l| l["fields"]["listen"].as_str())
        .expect("the address it listens on");
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{listen}"
    );
    let run = lines
        .iter()
        .find(|l| l["fields"]["message"] == "run finished")
        .unwrap();
    assert_eq!(run["fields"]["verdict"], "fail", "{run}");
    assert_eq!(run["fields"]["exit_code"], 1, "{run}");
    assert_eq!(run["fields"]["images"], 2, "{run}");
    assert_eq!(run["fields"]["failures"], 1, "{run}");
    assert!(run["fields"]["duration_ms"].is_u64(), "{run}");
    assert!(
        !lines.iter().any(|l| l["fields"]["message"] == "stage done"),
        "stage lines only when asked for: {lines:?}"
    );

    // Asked for, each stage line names its image.
    let run = probe(
        &["check", "--log-format", "json", &missing],
        &[("RUST_LOG", Some("ecr_pull_probe=info"))],
    );
    let manifest = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "stage done" && l["fields"]["stage"] == "manifest")
        .unwrap_or_else(|| panic!("no manifest stage line: {}", run.stderr));
    assert_eq!(manifest["span"]["image"], missing.as_str(), "{manifest}");
}

/// Issue 30 point 9: `serve --watch` with no Kubernetes API configured says so and exits 2,
/// instead of a /readyz that stays "first run pending".
#[test]
fn serve_watch_without_a_cluster_exits_2_saying_why() {
    let run = probe(
        &["serve", "--watch", "--listen", "127.0.0.1:0"],
        &[("KUBECONFIG", Some("/nonexistent/kubeconfig"))],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("needs a Kubernetes API"),
        "{}",
        run.stderr
    );
}

/// Issue 30 point 9: with a kubeconfig whose API server does not answer, `serve --watch` says
/// why in `/readyz` instead of "first run pending" forever.
#[test]
fn serve_watch_with_an_unreachable_api_says_why_in_readyz() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: down\n  cluster:\n    server: http://127.0.0.1:{}\nusers:\n- name: probe\n  user:\n    token: t\ncontexts:\n- name: down\n  context:\n    cluster: down\n    user: probe\n    namespace: shop\ncurrent-context: down\n",
            refused_port()
        ),
    )
    .unwrap();
    let server = ServeProcess::start(
        &["--watch", "--interval", "1h"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    let start = Instant::now();
    loop {
        let (code, body) = get(&format!("{}/readyz", server.base));
        if body.contains("did not answer the watch") {
            assert_eq!(code, 503, "{body}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "readyz never said why: {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
