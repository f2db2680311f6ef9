//! Shared helpers for the integration tests: the local stack's settings, running the real
//! binary with a clean environment, and validating every JSON report against the schema.
//!
//! The stack (moto + TLS docker-registry) is started by `scripts/test`, which exports
//! `STACK_ENV_FILE`; without it these tests fail with instructions instead of skipping.
#![allow(dead_code)]

pub mod aws_proxy;
pub mod containers_image;
pub mod cri;
pub mod fake_api;
pub mod fake_watch;
pub mod fault;
pub mod fleet;
pub mod report;
pub mod scrape;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;

pub struct Stack {
    pub env: BTreeMap<String, String>,
}

impl Stack {
    pub fn get() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| {
            let path = std::env::var("STACK_ENV_FILE").unwrap_or_else(|_| {
                panic!("STACK_ENV_FILE is not set: run the integration tests with scripts/test, which starts the local stack")
            });
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
            let env = text
                .lines()
                .filter_map(|l| l.strip_prefix("export "))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Stack { env }
        })
    }

    pub fn var(&self, k: &str) -> &str {
        self.env
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing from the stack env"))
    }

    /// `<ecr host>/consultingfirm/<name>`
    pub fn image(&self, name: &str) -> String {
        format!("{}/consultingfirm/{name}", self.var("STACK_ECR_HOST"))
    }

    pub fn dir(&self) -> PathBuf {
        PathBuf::from(self.var("STACK_DIR"))
    }
}

/// One run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON report, validated against `schema/report.schema.json`.
    pub fn report(&self) -> Value {
        let v: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        validate(&v);
        v
    }

    /// The JSON report, validated against the schema and read into its typed mirror
    /// ([`report::Report`]).
    pub fn typed(&self) -> report::Report {
        serde_json::from_value(self.report())
            .unwrap_or_else(|e| panic!("the report does not fit tests/common/report.rs: {e}"))
    }
}

/// A file of `schema/`, parsed.
fn schema_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// `schema/report.schema.json`, compiled once for the whole test binary.
pub fn report_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::draft202012::new(&schema_file("report.schema.json"))
            .expect("the report schema compiles")
    })
}

/// `schema/watch.schema.json` (serve --watch's `/report`), compiled once, with
/// `schema/report.schema.json` beside it for the run report's shapes it refers to (identity,
/// an image's result, finding codes).
pub fn watch_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let report = schema_file("report.schema.json");
        let id = report["$id"]
            .as_str()
            .expect("the report schema has an $id")
            .to_string();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_resource(id, jsonschema::Resource::from_contents(report).unwrap())
            .build(&schema_file("watch.schema.json"))
            .expect("the watch schema compiles")
    })
}

/// Asserts that `document` matches `validator`, listing every error with where it is;
/// `what` names the document and its schema in the message.
pub fn assert_matches(validator: &jsonschema::Validator, document: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{}\n{document:#}",
        errors.join("\n")
    );
}

/// Asserts that a run report matches `schema/report.schema.json`.
pub fn validate(report: &Value) {
    assert_matches(
        report_validator(),
        report,
        "the report (schema/report.schema.json)",
    );
}

/// Asserts that a `/report` of serve --watch matches `schema/watch.schema.json` (issue 25
/// point 1: every `/report` the tests read is held to it).
pub fn validate_watch(report: &Value) {
    assert_matches(
        watch_validator(),
        report,
        "/report (schema/watch.schema.json)",
    );
}

/// The `ecr-pull-probe` command with only the stack's environment plus `env` (a value of
/// `None` removes the variable), so nothing from the developer's shell leaks in.
pub fn probe_command(args: &[&str], env: &[(&str, Option<&str>)]) -> Command {
    probe_command_of(Path::new(env!("CARGO_BIN_EXE_ecr-pull-probe")), args, env)
}

/// [`probe_command`] of another build of the binary (the benchmark runs the release one).
pub fn probe_command_of(bin: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Command {
    let stack = Stack::get();
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", stack.dir());
    for (k, v) in &stack.env {
        cmd.env(k, v);
    }
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(args);
    cmd
}

/// A node-wide docker config that is not there: passed as `--node-docker-config`, it makes
/// the node's sources known and empty (no node-wide docker config, no credential provider), so
/// a run's pull secrets are the kubelet's whole list and their failure is the kubelet's.
pub const NO_NODE_DOCKER_CONFIG: &str = "/nonexistent/var/lib/kubelet/config.json";

/// Runs [`probe_command`] to its end.
pub fn probe(args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = probe_command(args, env).output().expect("the binary runs");
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

pub fn check(args: &[&str]) -> Run {
    let mut a = vec!["check"];
    a.extend_from_slice(args);
    probe(&a, &[])
}

/// Writes a JWT-shaped token with `claims` to `dir/name`; returns its path. The token is
/// built by the stack's own builder, `scripts/lib/mint_token.py --claims -`: one token
/// builder for the stack (which needs its token before any test runs) and the tests.
pub fn write_token(dir: &Path, name: &str, claims: &Value) -> PathBuf {
    use std::io::Write as _;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/mint_token.py");
    let path = dir.join(name);
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .args(["--claims", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 {}: {e}", script.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(claims.to_string().as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{} failed: {status}", script.display());
    path
}

/// `user:password` as a docker config's `auth` field carries it (standard base64, padded).
pub fn basic_auth(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// A docker config (`config.json`, a `.dockerconfigjson`) with one `auths` entry for `host`.
pub fn docker_config(host: &str, user: &str, password: &str) -> Value {
    docker_config_of(&[(host, user, password)])
}

/// A docker config with one `auths` entry per `(host, user, password)`.
pub fn docker_config_of(entries: &[(&str, &str, &str)]) -> Value {
    let auths: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(host, user, password)| {
            let auth = serde_json::json!({"auth": basic_auth(user, password)});
            (host.to_string(), auth)
        })
        .collect();
    serde_json::json!({ "auths": auths })
}

/// An ECR-format password (base64 JSON with `expiration`, Unix seconds), the shape
/// GetAuthorizationToken mints; the probe reads the expiry from it.
pub fn ecr_password(expiration: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(
        serde_json::json!({"payload": "cGF5bG9hZA==", "datakey": "ZGF0YWtleQ==", "version": "2", "type": "DATA_KEY", "expiration": expiration})
            .to_string(),
    )
}

/// [`docker_config`] written to `dir/config.json`; returns its path.
pub fn write_docker_config(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    let path = dir.join("config.json");
    std::fs::write(&path, docker_config(host, user, password).to_string()).unwrap();
    path
}

/// A kubeconfig at `dir/kubeconfig` for a fake API server at `addr` (plain HTTP, a static
/// bearer token), for the client's standard `KUBECONFIG` path. Both fakes hand it out.
pub fn write_kubeconfig(dir: &Path, addr: std::net::SocketAddr, namespace: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\nusers:\n- name: probe\n  user:\n    token: fake-api-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: probe\n    namespace: {namespace}\ncurrent-context: fake\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A loopback port where connections are **refused**, for tests of "nothing listens there".
///
/// The port is held for the whole test process by a socket that is bound but never listens,
/// without `SO_REUSEADDR`: the kernel answers a connect with RST, and no other socket (a
/// parallel test's server, a probe's outgoing connection) can be given that port. Handing out
/// the number of a released listener instead let a parallel test bind it, and a test that
/// expected "refused" got an answer (issue 16). A test that needs a server keeps the listener
/// it bound (the fakes in this folder take it, never a number); one that needs a server that
/// stalls uses `fault::Fault::StallLayer`, which holds its listener itself.
pub fn refused_port() -> u16 {
    static HELD: OnceLock<(tokio::net::TcpSocket, u16)> = OnceLock::new();
    HELD.get_or_init(|| {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("a loopback port to hold");
        let port = socket.local_addr().expect("a bound address").port();
        (socket, port)
    })
    .1
}

/// Runs a test server in a thread of its own on a current-thread runtime; `serve` is called
/// inside the runtime, so it may register std listeners with tokio.
pub fn spawn_server<F>(serve: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a test runtime")
            .block_on(serve());
    });
}

/// Reads one HTTP/1.1 request for the fakes: the head as text and a Content-Length body.
pub async fn read_http_request(s: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s
            .read(&mut chunk)
            .await
            .ok()
            .filter(|n| *n > 0 && buf.len() < 1 << 20)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + len].to_vec()))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims like a projected ServiceAccount token's, valid for an hour.
pub fn good_claims() -> Value {
    serde_json::json!({
        "aud": ["sts.amazonaws.com"], "iat": now(), "nbf": now(), "exp": now() + 3600,
        "iss": "https://oidc.op1.openshiftapps.com/2f6a1b9c3d4e5f60",
        "sub": "system:serviceaccount:consultingfirm:naming-server",
        "kubernetes.io": {"namespace": "consultingfirm", "serviceaccount": {"name": "naming-server"}, "pod": {"name": "p"}},
    })
}

/// The codes of every finding in an image's stages and findings.
pub fn codes(image: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for s in image["stages"].as_array().unwrap() {
        for f in s["findings"].as_array().unwrap() {
            out.push(f["code"].as_str().unwrap().to_string());
        }
    }
    for f in image["findings"].as_array().unwrap() {
        out.push(f["code"].as_str().unwrap().to_string());
    }
    out
}

pub fn stage<'a>(stages: &'a Value, name: &str) -> &'a Value {
    stages
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {stages:#}"))
}

/// The finding with `code` in an image, with its stage's findings searched first.
pub fn finding<'a>(image: &'a Value, code: &str) -> &'a Value {
    image["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["findings"].as_array().unwrap())
        .chain(image["findings"].as_array().unwrap())
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} finding in {image:#}"))
}

/// `ecr-pull-probe serve` as a child process on a port the kernel chose (`--listen
/// 127.0.0.1:0`): the address is read back from the probe's own "serving" log line, so no
/// test ever guesses a free port. Killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Every stderr line after the "serving" one, for tests that read the logs.
    pub stderr: std::sync::mpsc::Receiver<String>,
}

impl ServeProcess {
    pub fn start(args: &[&str], env_extra: &[(&str, &str)]) -> ServeProcess {
        Self::start_of(
            Path::new(env!("CARGO_BIN_EXE_ecr-pull-probe")),
            args,
            env_extra,
        )
    }

    /// [`ServeProcess::start`] of another build of the binary.
    pub fn start_of(bin: &Path, args: &[&str], env_extra: &[(&str, &str)]) -> ServeProcess {
        use std::io::BufRead as _;
        let mut env: Vec<(&str, Option<&str>)> = vec![("RUST_LOG", Some("ecr_pull_probe=info"))];
        env.extend(env_extra.iter().map(|(k, v)| (*k, Some(*v))));
        let mut cmd = probe_command_of(
            bin,
            &["serve", "--log-format", "json", "--listen", "127.0.0.1:0"],
            &env,
        );
        cmd.args(args);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
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
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let listen = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("serve printed no \"serving\" line in time"));
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(l) = v["fields"]["listen"].as_str() {
                break l.to_string();
            }
        };
        ServeProcess {
            child,
            base: format!("http://{listen}"),
            stderr: rx,
        }
    }

    /// Sends `signal` (e.g. "TERM") and waits up to `within` for the exit status.
    pub fn signal_and_wait(
        &mut self,
        signal: &str,
        within: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        signal_and_wait(&mut self.child, signal, within)
    }
}

/// Sends `signal` (e.g. "TERM") to `child` and waits up to `within` for its exit status.
pub fn signal_and_wait(
    child: &mut Child,
    signal: &str,
    within: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap()
            .success()
    );
    let stop = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if stop.elapsed() > within {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `CredentialProviderConfig` with one provider `name` for `match_images`, the provider's
/// `env` as given (the plugin gets the kubelet's environment plus this, never the probe's), and
/// `token_attributes` (YAML at the provider's indentation) when given.
pub fn provider_config(
    name: &str,
    match_images: &[&str],
    env: &[(&str, &str)],
    token_attributes: Option<&str>,
) -> String {
    let images: Vec<String> = match_images.iter().map(|m| format!("\"{m}\"")).collect();
    let env: String = env
        .iter()
        .map(|(k, v)| format!("      - name: {k}\n        value: \"{v}\"\n"))
        .collect();
    let env = if env.is_empty() {
        String::new()
    } else {
        format!("    env:\n{env}")
    };
    format!(
        "apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: {name}
    matchImages: [{}]
    defaultCacheDuration: 12h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
{env}{}",
        images.join(", "),
        token_attributes.unwrap_or("")
    )
}

/// Where the stack's test plugin reaches moto, as a provider `env` entry: a real node's config
/// names its endpoints there too.
pub fn plugin_aws_endpoint() -> (&'static str, &'static str) {
    ("AWS_ENDPOINT_URL", Stack::get().var("AWS_ENDPOINT_URL"))
}

/// A node's plugin directory under `dir`: `bin/ecr-credential-provider` is the local stack's
/// credential provider plugin (`tests/plugins/ecr-credential-provider-local`). Returns the
/// bin dir, for `--credential-provider-bin-dir`.
pub fn local_provider_bin(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/ecr-credential-provider-local"),
        bin.join("ecr-credential-provider"),
    )
    .unwrap();
    bin
}

/// Holds `actual` to the golden file at `path`, or rewrites it with `UPDATE_GOLDEN=1`;
/// `suite` is the test target named in the message (`render`, `incident`).
pub fn assert_golden(path: &Path, actual: &str, suite: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test {suite}",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from this run at line {}:\n  golden: {:?}\n  actual: {:?}\n\
             if the change is intended: UPDATE_GOLDEN=1 cargo test --test {suite}\n\
             --- actual ---\n{actual}",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}
