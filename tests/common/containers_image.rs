//! containers/image, the library CRI-O pulls through (and `skopeo` and `podman` with it), as the
//! second ground truth beside containerd: `skopeo copy docker://IMAGE dir:TMP` with exactly the
//! credentials a CRI `PullImage` would carry, and its error message as CRI-O would wrap it.
//!
//! What CRI-O adds around the library's error is cited from CRI-O's own source
//! (cri-o/cri-o at f954a17e50, `internal/storage/image.go` `pullImageImplementation` and
//! `server/image_pull.go` `PullImage`); the library's message itself is what skopeo prints
//! after `msg=` and is recorded in `tests/fixtures/runtime/skopeo-<version>.json`.
//!
//! Two differences from the containerd client, both deliberate:
//! - The stack's registry is pulled by its loopback address, not through a registries.conf
//!   rewrite of the ECR host name: containers/image does not send the credentials it was given
//!   (`SystemContext.DockerAuthConfig`, which is what CRI-O fills from the CRI `AuthConfig`) to
//!   a location other than the image's own host ("we must not blindly send the credentials
//!   intended for the primary endpoint to mirrors", `docker/docker_image_src.go`
//!   `newImageSourceAttempt`), so a rewrite would test an anonymous pull. On a real node the
//!   image's host is the registry, as here.
//! - A registry other than the stack's TLS one (the fault registry, a refused port) is pulled
//!   with TLS verification off, which lets containers/image fall back to plain HTTP, as CRI-O
//!   does for a registry listed `insecure = true` in registries.conf.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Stack;

/// How long one `skopeo copy` may take (passed as `--command-timeout`, and enforced here too
/// in case the process ignores it). The stack's images are a few KiB.
const PULL_TIMEOUT: Duration = Duration::from_secs(60);

/// skopeo on this machine, set up for the stack.
pub struct Skopeo {
    /// `skopeo --version`'s version, e.g. `1.9.3`.
    pub version: String,
    /// Directory with the stack's CA as `ca.crt`, for `--src-cert-dir`.
    certs: PathBuf,
    /// An empty registries.conf: no search registries, no rewrites, nothing of the host's.
    registries_conf: PathBuf,
    _dir: tempfile::TempDir,
}

/// What `PullImage` would have done: `Ok`, or containers/image's error message.
pub type Pull = Result<(), String>;

impl Skopeo {
    /// Pulls `image` with `creds` (`None`: anonymous, as the CRI without an `AuthConfig`) into
    /// a scratch directory that is removed afterwards.
    pub fn pull(&self, image: &str, creds: Option<(&str, &str)>) -> Pull {
        let s = Stack::get();
        // The ECR host name resolves to the stack's registry only for containerd (hosts.toml);
        // see the module comment for why containers/image gets the address itself.
        let image = image.replacen(s.var("STACK_ECR_HOST"), s.var("STACK_REGISTRY"), 1);
        let host = image.split('/').next().unwrap_or_default();
        let tls = host == s.var("STACK_REGISTRY");
        let dest = tempfile::tempdir().expect("a scratch directory");
        let mut cmd = Command::new("skopeo");
        cmd.arg("--registries-conf")
            .arg(&self.registries_conf)
            // The signature policy is CRI-O's business, not the pull's; the host may have none.
            .arg("--insecure-policy")
            .arg("--command-timeout")
            .arg(format!("{}s", PULL_TIMEOUT.as_secs()))
            .args(["copy", "-q", "--retry-times", "0"]);
        if tls {
            cmd.arg("--src-cert-dir").arg(&self.certs);
        } else {
            cmd.arg("--src-tls-verify=false");
        }
        let creds_arg;
        match creds {
            Some((user, password)) => {
                creds_arg = format!("{user}:{password}");
                cmd.args(["--src-creds", &creds_arg]);
            }
            // No auth file of this machine's user may answer instead.
            None => {
                cmd.arg("--src-no-creds");
            }
        }
        cmd.arg(format!("docker://{image}"))
            .arg(format!("dir:{}", dest.path().join("image").display()))
            .env_remove("REGISTRY_AUTH_FILE")
            .env("HOME", dest.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("skopeo runs");
        let until = Instant::now() + PULL_TIMEOUT + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = child.try_wait().expect("skopeo's status") {
                break status;
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("skopeo did not finish pulling {image} within {PULL_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        use std::io::Read as _;
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        if status.success() {
            Ok(())
        } else {
            Err(library_message(&stderr))
        }
    }
}

/// The library's error out of skopeo's fatal log line
/// (`time="..." level=fatal msg="<message>"`, logrus' text format with Go string quoting).
pub fn library_message(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("level=fatal"))
        .unwrap_or(stderr.trim());
    let Some(start) = line.find("msg=\"") else {
        return line.trim().to_string();
    };
    let quoted = &line[start + 5..];
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

/// CRI-O's wrappings of a containers/image pull error, as the kubelet's ErrImagePull message
/// carries them (`rpc error: code = Unknown desc = ` is gRPC's, added by the kubelet's client):
/// - `unable to pull image: <err>` (`internal/storage/image.go`, `pullImageImplementation`);
/// - `unable to pull image or OCI artifact: pull image err: <err>; artifact err: <err2>` when
///   the image pull failed with anything but a network error or a cancellation
///   (`shouldTryArtifact`) and the OCI-artifact retry failed too;
/// - `RegistryUnavailable: ...` in front when the cause is ECONNREFUSED (`server/image_pull.go`).
pub fn crio_wrappings(message: &str) -> Vec<String> {
    let grpc = "rpc error: code = Unknown desc = ";
    let mut out = vec![format!("{grpc}unable to pull image: {message}")];
    if message.contains("connection refused") {
        out.push(format!(
            "{grpc}RegistryUnavailable: unable to pull image: {message}"
        ));
    } else {
        out.push(format!(
            "{grpc}unable to pull image or OCI artifact: pull image err: {message}; artifact err: {message}"
        ));
    }
    out
}

/// `skopeo --version`: `skopeo version 1.9.3` -> `1.9.3`.
fn skopeo_version() -> Result<String, String> {
    let out = Command::new("skopeo")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("skopeo is not installed (scripts/stack install): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "skopeo --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .map(str::to_string)
        .ok_or_else(|| format!("unexpected skopeo --version output: {text}"))
}

/// The stack's skopeo, or `None` after printing `SKIPPED` where it cannot run (never under
/// `CI=true`: see [`super::cri::unavailable`]).
pub fn stack_skopeo(test: &str) -> Option<Skopeo> {
    let version = match skopeo_version() {
        Ok(v) => v,
        Err(reason) => return super::cri::unavailable(test, &reason),
    };
    let s = Stack::get();
    let certs = s.dir().join("skopeo-certs");
    assert!(
        certs.join("ca.crt").is_file(),
        "{} has no ca.crt: restart the stack with the current scripts/stack",
        certs.display()
    );
    let dir = tempfile::tempdir().expect("a scratch directory");
    let registries_conf = dir.path().join("registries.conf");
    std::fs::write(&registries_conf, "unqualified-search-registries = []\n")
        .expect("registries.conf written");
    Some(Skopeo {
        version,
        certs,
        registries_conf,
        _dir: dir,
    })
}
