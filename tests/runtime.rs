//! The kubelet's own call, against a real runtime: CRI `PullImage` on the stack's containerd,
//! which resolves the ECR host name to the stack's registry (scripts/stack). These tests show
//! the CRI client works and record what containerd says for each way a pull fails, so later
//! tests can hold the probe's verdict against the runtime's.
//!
//! Every error message is printed (run with `--nocapture`) and compared with
//! `tests/fixtures/runtime/containerd-<version>.json` when one exists for the running version;
//! `RECORD_RUNTIME_FIXTURES=1` writes that file instead (see the README there).
//!
//! Where containerd cannot run (scripts/stack wrote STACK_CONTAINERD_UNAVAILABLE), each test
//! prints `SKIPPED: <reason>` and returns.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use common::cri::{Runtime, stack_runtime};
use common::*;
use serde_json::{Value, json};
use tonic::Status;

fn password() -> &'static str {
    Stack::get().var("STACK_REGISTRY_PASSWORD")
}

/// `runtime_name runtime_version (CRI runtime_api_version)`, printed once per test.
fn describe(rt: &Runtime) -> (String, String) {
    let v = rt.version().expect("CRI Version answers");
    eprintln!(
        "runtime: {} {} (CRI {})",
        v.runtime_name, v.runtime_version, v.runtime_api_version
    );
    (v.runtime_name, v.runtime_version)
}

/// The parts of a message that change from one stack or run to the next, as placeholders.
fn normalize(message: &str) -> String {
    let s = Stack::get();
    message
        .replace(s.var("STACK_REGISTRY"), "{registry}")
        .replace(&format!("127.0.0.1:{}", refused_port()), "{refused}")
}

fn fixture_path(name: &str, version: &str) -> PathBuf {
    let version: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runtime")
        .join(format!("{name}-{version}.json"))
}

/// Compares a scenario's normalised message (and gRPC code) with the fixture of this runtime
/// version, or records them there with `RECORD_RUNTIME_FIXTURES=1`. No fixture for this
/// version: printed only.
fn check_recorded(rt: &Runtime, scenario: &str, status: &Status) {
    // The tests run in parallel threads; the fixture is read, changed and written by one at a time.
    static FILE: Mutex<()> = Mutex::new(());
    let (name, version) = describe(rt);
    let message = normalize(status.message());
    let code = format!("{:?}", status.code());
    eprintln!("{scenario}: [{code}] {message}");
    let path = fixture_path(&name, &version);
    let _guard = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let recorded: Option<Value> = std::fs::read_to_string(&path)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("the fixture is JSON"));
    if std::env::var_os("RECORD_RUNTIME_FIXTURES").is_some() {
        let map = |key: &str| -> BTreeMap<String, Value> {
            recorded
                .as_ref()
                .and_then(|r| serde_json::from_value(r[key].clone()).ok())
                .unwrap_or_default()
        };
        let (mut messages, mut codes) = (map("messages"), map("codes"));
        messages.insert(scenario.into(), message.into());
        codes.insert(scenario.into(), code.into());
        let doc = json!({
            "runtime_name": name,
            "runtime_version": version,
            "recorded_with": "RECORD_RUNTIME_FIXTURES=1 cargo test --test runtime (see README.md)",
            "messages": messages,
            "codes": codes,
        });
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        eprintln!("recorded {scenario} in {}", path.display());
        return;
    }
    match recorded
        .as_ref()
        .map(|r| (&r["messages"][scenario], &r["codes"][scenario]))
    {
        Some((Value::String(want), want_code)) => {
            assert_eq!(
                &message,
                want,
                "{scenario}: {name} {version} no longer says what {} recorded",
                path.display()
            );
            assert_eq!(want_code, &Value::String(code), "{scenario}: gRPC code");
        }
        _ => eprintln!(
            "note: {scenario} not recorded for {name} {version} ({}); not compared",
            path.display()
        ),
    }
}

/// Pulls `image` (removed first, so the pull goes to the registry) expecting a failure; returns
/// the error, whose message is what the kubelet shows in the ErrImagePull event.
fn pull_fails(rt: &Runtime, image: &str, creds: Option<(&str, &str)>) -> Status {
    rt.remove(image).expect("RemoveImage answers");
    match rt.pull(image, creds) {
        Ok(r) => panic!("{image} pulled ({r}); expected a failure"),
        Err(status) => status,
    }
}

#[test]
fn the_ecr_host_pulls_with_user_aws_and_the_ecr_password() {
    let Some(rt) = stack_runtime("the_ecr_host_pulls_with_user_aws_and_the_ecr_password") else {
        return;
    };
    describe(&rt);
    let image = Stack::get().image("naming-server-service:latest");
    rt.remove(&image).expect("RemoveImage answers");
    assert!(
        rt.status(&image).expect("ImageStatus answers").is_none(),
        "removed, so the pull below goes to the registry"
    );

    let image_ref = rt
        .pull(&image, Some(("AWS", password())))
        .unwrap_or_else(|e| panic!("{image} did not pull: {:?}: {}", e.code(), e.message()));
    eprintln!("pulled {image}: {image_ref}");
    assert!(image_ref.starts_with("sha256:"), "{image_ref}");

    let got = rt
        .status(&image)
        .expect("ImageStatus answers")
        .expect("the runtime has the image it pulled");
    assert_eq!(got.id, image_ref);
    assert!(got.repo_tags.contains(&image), "{got:?}");
    assert!(got.size > 0, "{got:?}");

    rt.remove(&image).expect("RemoveImage answers");
    assert!(rt.status(&image).expect("ImageStatus answers").is_none());
}

#[test]
fn a_wrong_password_fails() {
    let Some(rt) = stack_runtime("a_wrong_password_fails") else {
        return;
    };
    let image = Stack::get().image("naming-server-service:latest");
    let err = pull_fails(&rt, &image, Some(("AWS", "not-the-ecr-password")));
    check_recorded(&rt, "wrong_password", &err);
}

#[test]
fn no_credentials_fails() {
    let Some(rt) = stack_runtime("no_credentials_fails") else {
        return;
    };
    let image = Stack::get().image("naming-server-service:latest");
    let err = pull_fails(&rt, &image, None);
    check_recorded(&rt, "no_credentials", &err);
}

#[test]
fn a_missing_tag_fails() {
    let Some(rt) = stack_runtime("a_missing_tag_fails") else {
        return;
    };
    let image = Stack::get().image("naming-server-service:no-such-tag");
    let err = pull_fails(&rt, &image, Some(("AWS", password())));
    check_recorded(&rt, "missing_tag", &err);
}

#[test]
fn a_missing_repository_fails() {
    let Some(rt) = stack_runtime("a_missing_repository_fails") else {
        return;
    };
    let image = Stack::get().image("no-such-repository:latest");
    let err = pull_fails(&rt, &image, Some(("AWS", password())));
    check_recorded(&rt, "missing_repository", &err);
}

#[test]
fn an_index_without_the_nodes_platform_fails() {
    let Some(rt) = stack_runtime("an_index_without_the_nodes_platform_fails") else {
        return;
    };
    // arm64-only: an index whose one entry is linux/arm64/v8; containerd matches the node's.
    if std::env::consts::ARCH != "x86_64" {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: an_index_without_the_nodes_platform_fails: arm64-only lacks only amd64's platform"
        );
        return;
    }
    let image = Stack::get().image("arm64-only:latest");
    let err = pull_fails(&rt, &image, Some(("AWS", password())));
    check_recorded(&rt, "platform_absent", &err);
}

#[test]
fn a_registry_that_refuses_connections_fails() {
    let Some(rt) = stack_runtime("a_registry_that_refuses_connections_fails") else {
        return;
    };
    // No hosts.toml for this name: containerd's defaults for a loopback registry.
    let image = format!(
        "127.0.0.1:{}/consultingfirm/naming-server-service:latest",
        refused_port()
    );
    let err = pull_fails(&rt, &image, Some(("AWS", password())));
    check_recorded(&rt, "registry_refused", &err);
}
