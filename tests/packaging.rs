//! The pipeline gate script, driven through a FAKE kubectl (no API server can run here): a
//! shell stub that records what it is asked and answers like a cluster whose probe pod exited
//! with a chosen code. The manifests and the Dockerfile are checked by scripts/check-packaging.

use std::path::Path;
use std::process::Command;

fn fake_kubectl(dir: &Path, exit_code: &str) {
    fake_kubectl_logging(dir, exit_code, r#"echo '{"verdict":"fail"}'"#);
}

/// The fake, with `logs` answered by the shell command `logs`.
fn fake_kubectl_logging(dir: &Path, exit_code: &str, logs: &str) {
    let script = format!(
        r#"#!/usr/bin/env bash
# FAKE kubectl for tests/packaging.rs
echo "$*" >> "{dir}/calls"
case "$1" in
  apply) cat > "{dir}/applied.yaml" ;;
  get)
    case "$*" in
      *"job "*) echo -n "/1" ;;
      *"pods "*) echo -n "gate-pod-1" ;;
      *"pod "*) echo -n "{exit_code}" ;;
    esac ;;
  logs) {logs} ;;
  delete) ;;
esac
"#,
        dir = dir.display()
    );
    let path = dir.join("kubectl");
    std::fs::write(&path, script).unwrap();
    Command::new("chmod")
        .args(["+x", path.to_str().unwrap()])
        .status()
        .unwrap();
}

fn gate(dir: &Path, args: &[&str]) -> std::process::Output {
    gate_with(dir, args, &[])
}

fn gate_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gate.sh"))
        .args(args)
        .env("PATH", path)
        .env_remove("GITHUB_STEP_SUMMARY")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn the_gate_applies_the_job_prints_the_report_and_exits_with_the_probes_code() {
    for code in ["0", "1", "2", "3"] {
        let dir = tempfile::tempdir().unwrap();
        fake_kubectl(dir.path(), code);
        let out = gate(
            dir.path(),
            &[
                "-n",
                "team-a",
                "-s",
                "naming-server",
                "-t",
                "120",
                "a.example/x:1",
                "b.example/y:2",
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(code.parse().unwrap()),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            r#"{"verdict":"fail"}"#
        );
        let applied = std::fs::read_to_string(dir.path().join("applied.yaml")).unwrap();
        assert!(
            applied.contains("serviceAccountName: naming-server"),
            "{applied}"
        );
        assert!(
            applied.contains("value: a.example/x:1,b.example/y:2"),
            "{applied}"
        );
        assert!(applied.contains("activeDeadlineSeconds: 120"));
        assert!(
            applied.contains("value: 90s"),
            "the probe's deadline leaves room inside the Job's"
        );
        assert!(
            applied.contains("readOnlyRootFilesystem: true"),
            "the Job keeps its security context"
        );
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert!(calls.lines().any(|l| l.starts_with("apply -n team-a")));
        assert!(
            calls
                .lines()
                .any(|l| l.starts_with("logs -n team-a gate-pod-1 -c probe"))
        );
        assert!(
            calls
                .lines()
                .any(|l| l.starts_with("delete job ecr-pull-probe-gate-")),
            "the Job is cleaned up"
        );
    }
}

#[test]
fn the_gate_refuses_incomplete_arguments_and_odd_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    fake_kubectl(dir.path(), "137");
    assert_eq!(
        gate(dir.path(), &["-n", "team-a", "x/y"]).status.code(),
        Some(2),
        "no ServiceAccount"
    );
    let out = gate(dir.path(), &["-n", "team-a", "-s", "sa", "x/y"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an OOM-killed probe is not a verdict"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not exit normally"));
}

#[test]
fn the_gate_writes_the_ci_views_and_the_job_summary() {
    let dir = tempfile::tempdir().unwrap();
    let report = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/report-fail.json"
    );
    // A JSON log line before the report, as a Job's log with --log-format json holds.
    let logs = format!(r#"echo '{{"level":"WARN","fields":{{"message":"slow"}}}}'; cat {report}"#);
    fake_kubectl_logging(dir.path(), "1", &logs);
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let summary = d("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = gate_with(
        dir.path(),
        &[
            "-n",
            "t",
            "-s",
            "sa",
            "-j",
            &d("junit.xml"),
            "-m",
            &d("gate.md"),
            "a/b:1",
        ],
        &[
            ("GITHUB_STEP_SUMMARY", &summary),
            ("ECR_PULL_PROBE_BIN", env!("CARGO_BIN_EXE_ecr-pull-probe")),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let junit = std::fs::read_to_string(d("junit.xml")).unwrap();
    assert!(
        junit.contains("<failure type=\"MANIFEST_NOT_FOUND\""),
        "{junit}"
    );
    let md = std::fs::read_to_string(d("gate.md")).unwrap();
    assert!(
        md.starts_with("### ❌ FAIL: 1 of 2 images cannot be pulled"),
        "{md}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(
        summary,
        format!("earlier step\n{md}"),
        "appended, not replaced"
    );
}
