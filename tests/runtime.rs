//! The kubelet's own call, against a real runtime: CRI `PullImage` on the stack's containerd,
//! which resolves the ECR host name to the stack's registry (scripts/stack). These tests show
//! the CRI client works and record what containerd says for each way a pull fails, so later
//! tests can hold the probe's verdict against the runtime's.
//!
//! Every error message is printed (run with `--nocapture`) and compared with
//! `tests/fixtures/runtime/containerd-<version>.json` when one exists for the running version;
//! `RECORD_RUNTIME_FIXTURES=1` writes that file instead (see the README there).
//!
//! The same scenarios are held against containers/image, the library CRI-O pulls through, by
//! `skopeo copy` with the same credentials (`common::containers_image`); its messages are
//! recorded in `tests/fixtures/runtime/skopeo-<version>.json`.
//!
//! Where a runtime cannot run (scripts/stack wrote STACK_CONTAINERD_UNAVAILABLE, skopeo is not
//! installed), each test prints `SKIPPED: <reason>` and returns, except under `CI=true`, where
//! it fails: a CI run must compare, not skip.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use common::containers_image::{Skopeo, stack_skopeo};
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
    let (name, version) = describe(rt);
    let code = format!("{:?}", status.code());
    check_message(
        &name,
        &version,
        scenario,
        status.message(),
        Some(code),
        None,
    );
}

/// [`check_recorded`] for any runtime: `code` is the gRPC code where there is one, `library`
/// what the runtime pulls through, recorded beside its version.
fn check_message(
    name: &str,
    version: &str,
    scenario: &str,
    message: &str,
    code: Option<String>,
    library: Option<String>,
) {
    // The tests run in parallel threads; the fixture is read, changed and written by one at a time.
    static FILE: Mutex<()> = Mutex::new(());
    let message = normalize(message);
    eprintln!("{scenario}: [{code:?}] {message}");
    let path = fixture_path(name, version);
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
        let mut doc = json!({
            "runtime_name": name,
            "runtime_version": version,
            "recorded_with": "RECORD_RUNTIME_FIXTURES=1 cargo test --test runtime (see README.md)",
            "messages": messages,
        });
        if let Some(code) = code {
            codes.insert(scenario.into(), code.into());
            doc["codes"] = json!(codes);
        }
        if let Some(library) = library {
            doc["library"] = json!(library);
        }
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
            if let Some(code) = code {
                assert_eq!(want_code, &Value::String(code), "{scenario}: gRPC code");
            }
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

// ---------------------------------------------------------------------------------------
// Agreement: for each scenario, the probe's verdict on a kubelet path and containerd's pull
// with exactly the same credentials. A disagreement is a bug in the probe, or a documented
// difference (below) where the runtime cannot know what the probe does.
// ---------------------------------------------------------------------------------------

/// What containerd's message cannot tell apart, by design: containerd asks with HEAD and
/// gets no body. `(probe's code, runtime's code)`.
const CONTAINERD_DIFFERENCES: &[(&str, &str)] = &[
    // containerd says `not found` for a missing repository and a missing tag alike; the
    // registry's GET body (NAME_UNKNOWN) tells the probe which.
    ("REPOSITORY_NOT_FOUND", "MANIFEST_NOT_FOUND"),
    // An ECR denial's reason (an expired token here) is in the body of the 403, which a HEAD
    // does not have: the runtime can only say 403 Forbidden.
    ("REGISTRY_TOKEN_EXPIRED", "REGISTRY_DENIED"),
];

/// What containers/image's message cannot tell apart. It reads the manifest with GET and
/// quotes the registry's error body, so an ECR denial's reason reaches it; but the stack's
/// docker-registry answers a missing repository's manifest with MANIFEST_UNKNOWN, which the
/// library quotes as is (`manifest unknown: manifest unknown`), while the probe also asks the
/// ECR API whether the repository exists.
const CONTAINERS_IMAGE_DIFFERENCES: &[(&str, &str)] =
    &[("REPOSITORY_NOT_FOUND", "MANIFEST_NOT_FOUND")];

/// The runtime a scenario is held against.
enum Truth<'a> {
    Containerd(&'a Runtime),
    ContainersImage(&'a Skopeo),
}

impl Truth<'_> {
    fn name(&self) -> &'static str {
        match self {
            Truth::Containerd(_) => "containerd",
            Truth::ContainersImage(_) => "containers/image",
        }
    }

    fn differences(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Truth::Containerd(_) => CONTAINERD_DIFFERENCES,
            Truth::ContainersImage(_) => CONTAINERS_IMAGE_DIFFERENCES,
        }
    }
}

/// Credentials a path used.
#[derive(Clone, Copy)]
enum Creds<'a> {
    /// A pull secret with this user and password (the pull-secret path).
    Secret(&'a str, &'a str),
    /// No credentials: a node whose credential provider does not match the host (the node
    /// path, which then pulls anonymously as the kubelet does).
    None,
}

/// The probe's path for `image` with `creds`: (status, the code of its deciding error).
fn probe_path(
    image: &str,
    creds: Creds<'_>,
    extra_env: &[(&str, Option<&str>)],
) -> (String, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "check".to_string(),
        image.to_string(),
        "--require".into(),
        "kubelet".into(),
    ];
    let key = match creds {
        Creds::Secret(user, password) => {
            let host = image.split('/').next().unwrap();
            let config = write_docker_config(dir.path(), host, user, password);
            // On a node with nothing of its own, the secret is the kubelet's whole list.
            args.extend([
                "--docker-config".into(),
                config.display().to_string(),
                "--node-docker-config".into(),
                NO_NODE_DOCKER_CONFIG.into(),
            ]);
            "pull_secrets"
        }
        Creds::None => {
            let config = dir.path().join("provider.yaml");
            std::fs::write(
                &config,
                "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: ecr-credential-provider\n    matchImages: [\"registry.example.com\"]\n    defaultCacheDuration: 12h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n",
            )
            .unwrap();
            args.extend([
                "--credential-provider-config".into(),
                config.display().to_string(),
                "--credential-provider-bin-dir".into(),
                dir.path().display().to_string(),
            ]);
            "node_credential_provider"
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = probe(&args, extra_env);
    let r = run.report();
    // The kubelet's answer over its list (with no provider match, the anonymous pull it
    // makes), and the registry's reason from that pull or the source's own.
    let paths = &r["images"][0]["paths"];
    let kubelet = &paths["kubelet"];
    let findings = |p: &Value| -> Vec<Value> {
        p["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["findings"].as_array().unwrap().clone())
            .chain(p["findings"].as_array().into_iter().flatten().cloned())
            .collect()
    };
    let errors = findings(kubelet)
        .into_iter()
        .chain(findings(&paths[key]))
        .filter(|f| f["severity"] == "error")
        .map(|f| f["code"].as_str().unwrap().to_string())
        // These only say why the pull was anonymous; the pull's own answer decides.
        .find(|c| c != "NODE_PROVIDER_NO_MATCH" && c != "KUBELET_NO_CREDENTIALS");
    (kubelet["status"].as_str().unwrap().to_string(), errors)
}

/// The runtime's pull of `image` with the same credentials: Ok, or the code its message
/// stands for (and the message). For containers/image the message is classified in each of
/// CRI-O's wrappings, which must all read as the same code: that is what the canary sees.
fn runtime_pull(
    truth: &Truth<'_>,
    image: &str,
    creds: Creds<'_>,
) -> Result<(), (Option<String>, String)> {
    let auth = match creds {
        Creds::Secret(u, p) => Some((u, p)),
        Creds::None => None,
    };
    let code_of =
        |m: &str| ecr_pull_probe::diagnosis::runtime_message_code(m).map(|c| c.name().to_string());
    match truth {
        Truth::Containerd(rt) => {
            rt.remove(image).expect("RemoveImage answers");
            let result = rt.pull(image, auth);
            let _ = rt.remove(image);
            result
                .map(|_| ())
                .map_err(|e| (code_of(e.message()), e.message().to_string()))
        }
        Truth::ContainersImage(skopeo) => skopeo.pull(image, auth).map_err(|message| {
            let code = code_of(&message);
            for wrapped in common::containers_image::crio_wrappings(&message) {
                assert_eq!(
                    code_of(&wrapped),
                    code,
                    "CRI-O's wrapping changes what the message reads as: {wrapped}"
                );
            }
            (code, message)
        }),
    }
}

fn assert_agree(
    truth: &Truth<'_>,
    scenario: &str,
    image: &str,
    creds: Creds<'_>,
    probe_env: &[(&str, Option<&str>)],
) {
    let name = truth.name();
    let (status, probe_code) = probe_path(image, creds, probe_env);
    let runtime = runtime_pull(truth, image, creds);
    eprintln!("{scenario}: probe {status} {probe_code:?}; {name} {runtime:?}");
    match &runtime {
        Ok(()) => assert_eq!(
            status, "pass",
            "{scenario}: {name} pulled, the probe said {status} ({probe_code:?})"
        ),
        Err((code, message)) => {
            assert_eq!(
                status, "fail",
                "{scenario}: {name} failed ({message}), the probe said {status}"
            );
            let (p, r) = (
                probe_code.as_deref().unwrap_or("?"),
                code.as_deref().unwrap_or("?"),
            );
            assert!(
                p == r || truth.differences().contains(&(p, r)),
                "{scenario}: the probe says {p}, {name}'s message reads as {r}: {message}"
            );
        }
    }
}

/// The stack's scenarios: (name, image, the credentials both sides use).
fn stack_cases() -> Vec<(&'static str, String, Creds<'static>)> {
    let s = Stack::get();
    let good = s.image("naming-server-service:latest");
    let mut cases = vec![
        (
            "good credentials",
            good.clone(),
            Creds::Secret("AWS", password()),
        ),
        (
            "wrong password",
            good.clone(),
            Creds::Secret("AWS", "not-the-ecr-password"),
        ),
        ("no credentials", good.clone(), Creds::None),
        (
            "missing tag",
            s.image("naming-server-service:no-such-tag"),
            Creds::Secret("AWS", password()),
        ),
        (
            "missing repository",
            s.image("no-such-repository:latest"),
            Creds::Secret("AWS", password()),
        ),
        (
            "registry down",
            format!(
                "127.0.0.1:{}/consultingfirm/naming-server-service:latest",
                refused_port()
            ),
            Creds::Secret("AWS", password()),
        ),
    ];
    if std::env::consts::ARCH == "x86_64" {
        // arm64-only has no entry for this machine's platform; all resolve for linux/amd64.
        cases.push((
            "platform absent",
            s.image("arm64-only:latest"),
            Creds::Secret("AWS", password()),
        ));
    }
    cases
}

/// Faults no real registry produces on demand, from the fake registry over plain HTTP on
/// loopback (which containerd uses for a loopback host by default, containers/image with TLS
/// verification off, and the probe with `--allow-plain-http`).
fn agree_on_faults(truth: &Truth<'_>) {
    use common::fault::{Fault, FaultRegistry};
    const EXPIRED: &str = "Your authorization token has expired. Reauthenticate and try again.";
    for (scenario, fault) in [
        ("a good image", Fault::None),
        ("a corrupt blob", Fault::CorruptLayer),
        ("blobs behind a redirect", Fault::RedirectLayer),
        ("an expired ECR token", Fault::DenyManifest(EXPIRED)),
    ] {
        let fake = FaultRegistry::start(fault);
        let host = fake.addr.to_string();
        let image = format!("{host}/consultingfirm/faulty:latest");
        let endpoint = format!("{host}=http://{host}");
        assert_agree(
            truth,
            scenario,
            &image,
            Creds::Secret("AWS", "a-password"),
            &[
                ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
                ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
            ],
        );
    }
}

#[test]
fn the_probe_and_containerd_agree_on_the_stacks_registry() {
    let Some(rt) = stack_runtime("the_probe_and_containerd_agree_on_the_stacks_registry") else {
        return;
    };
    describe(&rt);
    for (scenario, image, creds) in &stack_cases() {
        assert_agree(&Truth::Containerd(&rt), scenario, image, *creds, &[]);
    }
}

#[test]
fn the_probe_and_containerd_agree_on_faults() {
    let Some(rt) = stack_runtime("the_probe_and_containerd_agree_on_faults") else {
        return;
    };
    describe(&rt);
    agree_on_faults(&Truth::Containerd(&rt));
}

#[test]
fn the_probe_and_containers_image_agree_on_the_stacks_registry() {
    let Some(sk) = stack_skopeo("the_probe_and_containers_image_agree_on_the_stacks_registry")
    else {
        return;
    };
    eprintln!("containers/image through skopeo {}", sk.version);
    for (scenario, image, creds) in &stack_cases() {
        assert_agree(&Truth::ContainersImage(&sk), scenario, image, *creds, &[]);
    }
}

#[test]
fn the_probe_and_containers_image_agree_on_faults() {
    let Some(sk) = stack_skopeo("the_probe_and_containers_image_agree_on_faults") else {
        return;
    };
    eprintln!("containers/image through skopeo {}", sk.version);
    agree_on_faults(&Truth::ContainersImage(&sk));
}

/// The version of containers/image this skopeo was built with (Debian's `Built-Using`), to
/// record beside skopeo's own.
fn containers_image_version() -> Option<String> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Built-Using}", "skopeo"])
        .output()
        .ok()?;
    let built_using = String::from_utf8_lossy(&out.stdout).to_string();
    built_using.split(", ").find_map(|p| {
        p.strip_prefix("golang-github-containers-image (= ")
            .map(|v| format!("containers/image {}", v.trim_end_matches(')')))
    })
}

/// What containers/image says for each failure of the stack, recorded beside containerd's
/// (`tests/fixtures/runtime/skopeo-<version>.json`) so the canary's mapping is held to it.
#[test]
fn containers_image_says_what_was_recorded() {
    let Some(sk) = stack_skopeo("containers_image_says_what_was_recorded") else {
        return;
    };
    let s = Stack::get();
    let good = s.image("naming-server-service:latest");
    let ok = Some(("AWS", password()));
    let mut cases = vec![
        (
            "wrong_password",
            good.clone(),
            Some(("AWS", "not-the-ecr-password")),
        ),
        ("no_credentials", good.clone(), None),
        (
            "missing_tag",
            s.image("naming-server-service:no-such-tag"),
            ok,
        ),
        (
            "missing_repository",
            s.image("no-such-repository:latest"),
            ok,
        ),
        (
            "registry_refused",
            format!(
                "127.0.0.1:{}/consultingfirm/naming-server-service:latest",
                refused_port()
            ),
            ok,
        ),
    ];
    if std::env::consts::ARCH == "x86_64" {
        cases.push(("platform_absent", s.image("arm64-only:latest"), ok));
    }
    let library = containers_image_version();
    for (scenario, image, creds) in cases {
        match sk.pull(&image, creds) {
            Ok(()) => panic!("{image} pulled; expected a failure"),
            Err(message) => check_message(
                "skopeo",
                &sk.version,
                scenario,
                &message,
                None,
                library.clone(),
            ),
        }
    }
}

#[test]
fn skopeos_fatal_line_is_unquoted() {
    let stderr = "time=\"2026-12-02T05:31:57Z\" level=fatal msg=\"choosing an image from manifest list docker://h/r:latest: no image found in image index for architecture amd64, variant \\\"\\\", OS linux\"\n";
    assert_eq!(
        common::containers_image::library_message(stderr),
        "choosing an image from manifest list docker://h/r:latest: no image found in image index for architecture amd64, variant \"\", OS linux"
    );
}
