//! `scripts/gate.sh`, the wrapper kept for pipelines that call it: its flags become `gate`'s,
//! its exit code is the binary's. The binary is a recording stub here (`ECR_PULL_PROBE_BIN`);
//! the real `gate` against a cluster is in tests/diagnose.rs, and the manifests and the
//! Dockerfile are checked by scripts/check-packaging.

use std::path::Path;
use std::process::Command;

/// A stand-in binary that records its arguments and exits with `code`.
fn stub(dir: &Path, code: &str) -> String {
    let path = dir.join("ecr-pull-probe");
    std::fs::write(
        &path,
        format!(
            "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > \"{}/args\"\nexit {code}\n",
            dir.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .args(["+x", path.to_str().unwrap()])
        .status()
        .unwrap();
    path.display().to_string()
}

fn gate(bin: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gate.sh"))
        .args(args)
        .env_remove("ECR_PULL_PROBE_IMAGE")
        .env("ECR_PULL_PROBE_BIN", bin)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn the_gate_script_hands_its_flags_to_the_binary_and_returns_its_code() {
    for code in ["0", "1", "2"] {
        let dir = tempfile::tempdir().unwrap();
        let bin = stub(dir.path(), code);
        let out = gate(
            &bin,
            &[
                "-n",
                "team-a",
                "-s",
                "naming-server",
                "-t",
                "120",
                "-p",
                "registry.example/ecr-pull-probe:0.1.0",
                "-j",
                "j.xml",
                "-m",
                "m.md",
                "a.example/x:1",
                "b.example/y:2",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(code.parse().unwrap()));
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        let args: Vec<&str> = args.lines().collect();
        assert_eq!(
            args,
            [
                "gate",
                "-n",
                "team-a",
                "--service-account",
                "naming-server",
                "--timeout",
                "120s",
                "--probe-image",
                "registry.example/ecr-pull-probe:0.1.0",
                "--junit",
                "j.xml",
                "--markdown",
                "m.md",
                "a.example/x:1",
                "b.example/y:2",
            ]
        );
    }
    // The probe image from the environment, and none made up when there is none.
    let dir = tempfile::tempdir().unwrap();
    let bin = stub(dir.path(), "0");
    gate(
        &bin,
        &["-n", "t", "-s", "sa", "x/y"],
        &[("ECR_PULL_PROBE_IMAGE", "r.example/p:1")],
    );
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert!(args.contains("--probe-image\nr.example/p:1\n"), "{args}");
    gate(&bin, &["-n", "t", "-s", "sa", "x/y"], &[]);
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert!(!args.contains("--probe-image"), "{args}");
}

#[test]
fn the_gate_script_refuses_incomplete_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stub(dir.path(), "0");
    for args in [
        &["-n", "team-a", "x/y"][..],
        &["-s", "sa", "x/y"],
        &["-n", "t", "-s", "sa"],
    ] {
        assert_eq!(gate(&bin, args, &[]).status.code(), Some(2), "{args:?}");
    }
    assert_eq!(
        gate(&bin, &["-n", "t", "-s", "sa", "-t", "soon", "x/y"], &[])
            .status
            .code(),
        Some(2)
    );
    assert!(
        !dir.path().join("args").exists(),
        "the binary was never run"
    );
}
