//! The incident, replayed (issue 29): `scripts/demo --incident --output text` run as a newcomer
//! runs it, its report held by a golden file (`tests/golden/incident.txt`, the same output
//! docs/incident.md shows).
//!
//! The demo starts its own local stack (moto, the TLS registry) and puts the stand-in
//! `scripts/lib/incident_registry.py` in front of the registry: the pod's role (in the image's
//! account) pulls, the node's worker role (in the cluster's account) is refused with ECR's
//! denial body. The test gives the demo this build's binary (`DEMO_PROBE_BIN`) so that no
//! release build runs, and a bare environment, so that nothing of the caller's (an `AWS_*`
//! variable, another stack's settings) reaches the report. What varies between runs (the
//! duration, ports, the version) is normalised before comparing; after an intended change,
//! rewrite the file with `UPDATE_GOLDEN=1 cargo test --test incident` and review the diff.

mod common;

use common::assert_golden;
use std::path::{Path, PathBuf};
use std::process::Command;

fn normalize(s: &str) -> String {
    let mut s = s.replace(
        &format!("ecr-pull-probe {}", env!("CARGO_PKG_VERSION")),
        "ecr-pull-probe VERSION",
    );
    for (pattern, with) in [
        (r"\b\d+ ms\b", "N ms"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
    ] {
        s = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&s, with)
            .into_owned();
    }
    s
}

fn golden(path: &Path, actual: &str) {
    assert_golden(path, actual, "incident");
}

#[test]
fn the_incident_demo_says_the_kubelet_fails_where_the_pod_passes_and_names_the_fix() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("scripts/demo"));
    cmd.args(["--incident", "--output", "text"])
        .current_dir(&root)
        .env_clear()
        .env("DEMO_PROBE_BIN", env!("CARGO_BIN_EXE_ecr-pull-probe"));
    for keep in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    let out = cmd.output().expect("scripts/demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the gate says no\n{stdout}\n{stderr}"
    );

    // What a reader learns from the head of the report, said outright before the golden
    // file holds the rest. In the first ten lines: the kubelet's path fails while the pod's
    // identity passes (the table row), which principal was refused by which policy (the `why`
    // line under the verdict), in which account, and the statement to add (the `fix` line,
    // the statement folded onto it).
    let lines: Vec<&str> = stdout.lines().collect();
    let head = &lines[..10.min(lines.len())];
    assert!(
        head[0].starts_with("FAIL: 1 of 1 image cannot be pulled, kubelet path checked: yes, the verdict is the kubelet's"),
        "{stdout}"
    );
    let row = head
        .iter()
        .find(|l| l.contains("consultingfirm/naming-server-service:latest  "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "FAIL",
            "consultingfirm/naming-server-service:latest",
            "PASS",
            "FAIL",
            "FAIL",
            "REGISTRY_DENIED_RESOURCE_POLICY"
        ],
        "image, pod identity, node provider, kubelet, decided by: {row}"
    );
    assert_eq!(
        head[1],
        "why: the repository policy does not allow arn:aws:sts::111122223333:assumed-role/cf-dev-worker-role/i-0node to ecr:BatchGetImage (REGISTRY_DENIED_RESOURCE_POLICY)",
        "{stdout}"
    );
    let fix = head[2]
        .strip_prefix(
            "fix: Add this statement to the policy of repository consultingfirm/naming-server-service (in account 818140567777): ",
        )
        .unwrap_or_else(|| panic!("{stdout}"));
    let statement: serde_json::Value = serde_json::from_str(fix).unwrap();
    assert_eq!(
        statement["Principal"]["AWS"],
        "arn:aws:iam::111122223333:role/cf-dev-worker-role"
    );
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"][0], "ecr:BatchGetImage");

    golden(&root.join("tests/golden/incident.txt"), &normalize(&stdout));
}

/// docs/incident.md shows the demo's real output: its `text` block, normalised as the run is,
/// is the golden file.
#[test]
fn the_incident_page_shows_the_golden_output() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/incident.md")).unwrap();
    let start = page.find("```text\n").expect("a ```text block") + "```text\n".len();
    let end = start + page[start..].find("\n```").expect("the block's end") + 1;
    let golden = std::fs::read_to_string(root.join("tests/golden/incident.txt")).unwrap();
    assert_eq!(
        normalize(&page[start..end]),
        golden,
        "docs/incident.md's output is not tests/golden/incident.txt: paste a fresh `scripts/demo --incident --output text`"
    );
}
