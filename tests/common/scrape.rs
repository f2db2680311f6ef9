//! Scraping a serve process: a GET with curl, and the metrics page parsed by the reference
//! OpenMetrics parser (prometheus_client's, from PyPI), so a test reads what Prometheus reads.

use std::process::{Command, Stdio};

use serde_json::Value;

pub fn get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap_or(0), body.to_string())
}

/// Samples as (name, labels, value), parsed by prometheus_client's OpenMetrics parser.
pub fn parse_metrics(text: &str) -> Vec<(String, Value, f64)> {
    let script = "import sys, json\n\
from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
print(json.dumps(out))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not valid OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, Value, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    v
}

pub fn sample<'a>(
    samples: &'a [(String, Value, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|(_, _, v)| v)
}
