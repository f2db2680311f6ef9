//! The alerts of manifests/monitoring/prometheusrule.yaml: their promtool unit tests
//! (scripts/check-alerts), and the metrics page of a real serve run, with every series the
//! rules read, passing `promtool check metrics`.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn promtool_present() {
    assert!(
        Command::new("promtool").arg("--version").output().is_ok(),
        "promtool is missing: scripts/stack install installs Debian's prometheus package"
    );
}

#[test]
fn every_alert_rule_passes_its_promtool_unit_tests() {
    promtool_present();
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-alerts"))
        .output()
        .expect("scripts/check-alerts runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
}

fn get(url: &str) -> (u16, String) {
    get_accepting(url, "*/*")
}

fn get_accepting(url: &str, accept: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", "-H", &format!("Accept: {accept}")])
        .args(["-w", "\n%{http_code}", url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap_or(0), body.to_string())
}

/// `promtool check metrics` on the page as served: its exit status and what it said.
fn promtool_check_metrics(page: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_metrics_page_of_a_real_run_passes_promtool_check_metrics() {
    promtool_present();
    let s = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    // A pull secret whose ECR-format password carries an expiry, so the gauge the
    // token-expiry alert reads is on the page.
    let config = write_docker_config(
        dir.path(),
        s.var("STACK_ECR_HOST"),
        "AWS",
        s.var("STACK_REGISTRY_PASSWORD"),
    );
    let (ok, missing) = (
        s.image("naming-server-service:latest"),
        s.image("no-such-repo:latest"),
    );
    let server = ServeProcess::start(
        &["--interval", "1h", &ok, &missing],
        &[("ECR_PULL_PROBE_DOCKER_CONFIG", config.to_str().unwrap())],
    );
    let start = Instant::now();
    while get(&format!("{}/readyz", server.base)).0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    // promtool reads the classic text format; serve gives it to a client that asks for it (as
    // promtool's own scrapes do) and OpenMetrics to Prometheus (tests/serve.rs parses that).
    let (code, page) = get_accepting(
        &format!("{}/metrics", server.base),
        "text/plain; version=0.0.4",
    );
    assert_eq!(code, 200);
    let (passed, said) = promtool_check_metrics(&page);
    assert!(passed, "promtool check metrics: {said}\n{page}");
    // What the rules read is there.
    for name in [
        "ecr_pull_probe_path_success{",
        "ecr_pull_probe_web_identity_token_expiry_timestamp_seconds ",
        "ecr_pull_probe_last_run_timestamp_seconds ",
        "ecr_pull_probe_interval_seconds 3600",
    ] {
        assert!(page.contains(name), "{name} missing:\n{page}");
    }
    assert!(!page.contains(s.var("STACK_REGISTRY_PASSWORD")));
    // The check can fail: a page with a counter lacking its suffix is refused.
    let (passed, _) = promtool_check_metrics(
        "# HELP bad_requests Requests.\n# TYPE bad_requests counter\nbad_requests 1\n",
    );
    assert!(!passed, "promtool check metrics accepts anything");
}
