//! The exec edge: running a credential provider plugin the way the kubelet does
//! (`pkg/credentialprovider/plugin/plugin.go`, `execPlugin`): the binary from the bin dir with
//! the provider's `args`, the kubelet's environment plus the provider's `env` (never the
//! probe's own: see [`plugin_env`]), the
//! `CredentialProviderRequest` as JSON on stdin, the `CredentialProviderResponse` read from
//! stdout. The plugin runs in a process group of its own: once it exits (or the deadline
//! passes) the whole group is killed and what of it is ours reaped, so a plugin that leaves a
//! process behind holding its pipes neither stalls the run nor survives it (issue 23); its
//! output is capped. The request and response shapes and their checks are pure and tested here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::{Instant, timeout_at};

use super::config::Provider;
use crate::secret::Secret;

/// Most stdout read from a plugin (a real response is well under 16 KiB).
pub const MAX_STDOUT: usize = 256 * 1024;
/// Most stderr kept from a plugin, for the evidence.
pub const MAX_STDERR: usize = 16 * 1024;

/// The request on stdin. `serviceAccountToken` and `serviceAccountAnnotations` only for a
/// provider with `tokenAttributes` (KEP-4412).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a> {
    // Field order as the kubelet's encoder writes them (`Test_encodeRequest`).
    pub kind: &'static str,
    pub api_version: &'a str,
    pub image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_annotations: Option<&'a BTreeMap<String, String>>,
}

/// Decoded strictly, as the kubelet decodes responses: an unknown field is an error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawResponse {
    api_version: Option<String>,
    kind: Option<String>,
    cache_key_type: Option<String>,
    cache_duration: Option<String>,
    #[serde(default)]
    auth: BTreeMap<String, RawAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// One `auth` entry: the key is a `matchImages`-style pattern, the credential a secret.
pub struct Auth {
    pub key: String,
    pub username: String,
    /// `base64(username:password)`, ready for `Authorization: Basic`.
    pub basic: Secret<String>,
    pub password: Secret<String>,
}

/// A checked response.
pub struct Response {
    pub cache_key_type: String,
    pub cache_duration: Option<String>,
    pub auth: Vec<Auth>,
    /// `auth` keys dropped, as the kubelet's keyring drops a key it cannot parse (and the
    /// probe one past its caps); the other keys are used.
    pub skipped_keys: Vec<crate::pullsecret::SkippedKey>,
}

/// Why a response is not one the kubelet would use. Messages never carry stdout (it holds
/// passwords), only what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("stdout is not a JSON CredentialProviderResponse ({reason})")]
    NotJson { reason: String },
    #[error("stdout is over {MAX_STDOUT} bytes")]
    TooLarge,
    #[error("apiVersion {got:?} does not match the provider's {want:?}")]
    ApiVersion { got: String, want: String },
    #[error("kind {kind:?} is not CredentialProviderResponse")]
    Kind { kind: String },
    #[error("cacheKeyType {cache_key_type:?} is not one of Image, Registry, Global")]
    CacheKeyType { cache_key_type: String },
    #[error("cacheDuration {cache_duration:?} is not a duration")]
    CacheDuration { cache_duration: String },
}

/// The request as the kubelet writes it to stdin: JSON, then a newline.
pub fn encode_request(request: &Request<'_>) -> Vec<u8> {
    // Serialising plain strings cannot fail.
    let mut body = serde_json::to_vec(request).unwrap_or_default();
    body.push(b'\n');
    body
}

/// Decodes and checks stdout as the kubelet does: the response's `apiVersion` must be the
/// provider's (checked first), then a strict decode, `kind` `CredentialProviderResponse`,
/// `cacheKeyType` one of the three.
pub fn parse_response(stdout: &[u8], provider: &Provider) -> Result<Response, ResponseError> {
    if stdout.len() > MAX_STDOUT {
        return Err(ResponseError::TooLarge);
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Version {
        api_version: Option<String>,
    }
    if let Ok(Version { api_version }) = serde_json::from_slice::<Version>(stdout) {
        let got = api_version.unwrap_or_default();
        if got != provider.api_version {
            return Err(ResponseError::ApiVersion {
                got,
                want: provider.api_version.clone(),
            });
        }
    }
    let raw: RawResponse = serde_json::from_slice(stdout).map_err(|e| {
        // serde_json names the position and the kind of problem, never the input.
        ResponseError::NotJson {
            reason: e.classify_name().to_string()
                + &format!(" at line {} column {}", e.line(), e.column()),
        }
    })?;
    let version = raw.api_version.unwrap_or_default();
    if version != provider.api_version {
        return Err(ResponseError::ApiVersion {
            got: version,
            want: provider.api_version.clone(),
        });
    }
    let kind = raw.kind.unwrap_or_default();
    if kind != "CredentialProviderResponse" {
        return Err(ResponseError::Kind { kind });
    }
    let cache_key_type = raw.cache_key_type.unwrap_or_default();
    if !matches!(cache_key_type.as_str(), "Image" | "Registry" | "Global") {
        return Err(ResponseError::CacheKeyType { cache_key_type });
    }
    if let Some(d) = &raw.cache_duration
        && super::config::parse_go_duration(d).is_err()
    {
        return Err(ResponseError::CacheDuration {
            cache_duration: d.clone(),
        });
    }
    use base64::Engine as _;
    let mut auth = Vec::with_capacity(raw.auth.len());
    let mut skipped_keys = Vec::new();
    for (key, a) in raw.auth {
        if let Err(why) = crate::keyring::check_pattern(&key) {
            skipped_keys.push(crate::pullsecret::SkippedKey {
                source: provider.name.clone(),
                key: shorten(&key),
                why,
            });
            continue;
        }
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", a.username, a.password));
        auth.push(Auth {
            key,
            username: a.username,
            basic: Secret::new(basic),
            password: Secret::new(a.password),
        });
    }
    Ok(Response {
        cache_key_type,
        cache_duration: raw.cache_duration,
        auth,
        skipped_keys,
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "wrong field types",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// What a finished plugin run left.
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    /// Capped at [`MAX_STDERR`].
    pub stderr: Vec<u8>,
    pub stderr_truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("plugin binary {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("plugin binary {path} cannot be run")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin {path} did not answer before the deadline and was killed")]
    Deadline { path: PathBuf },
    #[error("talking to plugin {path} failed")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The plugin's path: `bin_dir/name`, as the kubelet joins them (names never contain `/`;
/// the config check refuses them).
pub fn binary(bin_dir: &Path, provider: &Provider) -> PathBuf {
    bin_dir.join(&provider.name)
}

/// What a kubelet's environment holds that a plugin may rely on, taken from the probe's own
/// environment when set. The kubelet passes its own environment (`mergeEnvVars(e.environ(),
/// configEnvVars)` in `plugin.go`): on EKS (nodeadm) and OpenShift (MCO) the kubelet unit sets
/// no AWS variables, and the HTTP proxy settings, when a cluster has a proxy, are put into the
/// kubelet unit (and CRI-O's) by the node's bootstrap. Everything else of the probe's own
/// environment stays out: above all its `AWS_*` (the pod's web identity, keys, profile),
/// which an SDK-based plugin prefers to instance metadata, so the node path would pass on the
/// pod's role.
pub const KUBELET_ENVIRONMENT: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// A plugin's environment and the names of what was kept from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEnv {
    /// Exactly what the plugin gets: the allowed part of ours, then the provider's `env`
    /// (a provider's value wins, as in `mergeEnvVars`).
    pub vars: Vec<(String, String)>,
    /// Names (never values) of the probe's variables that would change what a plugin does
    /// and were withheld: `AWS_*` and `ECR_PULL_PROBE_*`.
    pub withheld: Vec<String>,
}

/// The environment the kubelet would give the plugin, from the probe's `ours`.
pub fn plugin_env(
    ours: impl IntoIterator<Item = (String, String)>,
    provider_env: &[(String, String)],
) -> PluginEnv {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut withheld = Vec::new();
    for (k, v) in ours {
        if KUBELET_ENVIRONMENT.contains(&k.as_str()) {
            vars.push((k, v));
        } else if k.starts_with("AWS_") || k.starts_with("ECR_PULL_PROBE_") {
            withheld.push(k);
        }
    }
    for (k, v) in provider_env {
        vars.retain(|(have, _)| have != k);
        vars.push((k.clone(), v.clone()));
    }
    withheld.sort();
    PluginEnv { vars, withheld }
}

/// The kubelet's fixed limit on one plugin run (`context.WithTimeout(ctx, 1*time.Minute)`).
pub const EXEC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long the pipes are read after the plugin itself exited: what it wrote is in them
/// already, and a process it left behind may hold them open for as long as it lives.
const READ_AFTER_EXIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How long the group's leftovers get to die after SIGKILL before we stop reaping them.
const REAP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the plugin once, in a process group of its own. Killed at `deadline` or after
/// [`EXEC_TIMEOUT`]; stdout beyond [`MAX_STDOUT`] and stderr beyond [`MAX_STDERR`] are drained
/// and dropped so a chatty plugin cannot block. When the plugin exits, its pipes are read for
/// at most [`READ_AFTER_EXIT`] more, then whatever is left of its group is killed and reaped.
pub async fn exec(
    bin_dir: &Path,
    provider: &Provider,
    env: &PluginEnv,
    request: &[u8],
    deadline: Instant,
) -> Result<Output, ExecError> {
    let deadline = deadline.min(Instant::now() + EXEC_TIMEOUT);
    let path = binary(bin_dir, provider);
    if !path.is_file() {
        return Err(ExecError::NotFound { path });
    }
    adopt_orphans();
    let mut child = spawn(&path, provider, env)?;
    // Killed on every way out, a cancelled run included.
    let mut group = Group(
        child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32)),
    );
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let reads = async {
        tokio::join!(
            read_capped(stdout, MAX_STDOUT + 1),
            read_capped(stderr, MAX_STDERR)
        )
    };
    tokio::pin!(reads);
    let mut read = None;
    // A plugin that exits without reading stdin closes the pipe: not an error of ours.
    let write = async {
        let r = stdin.write_all(request).await;
        drop(stdin);
        match r {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    };
    let exited = timeout_at(deadline, async {
        let both = async { tokio::join!(write, child.wait()) };
        tokio::pin!(both);
        // Read while the plugin runs, so a full pipe never blocks it.
        loop {
            tokio::select! {
                r = &mut reads, if read.is_none() => read = Some(r),
                done = &mut both => return done,
            }
        }
    })
    .await;
    let Ok((written, status)) = exited else {
        // Never leave a process behind: kill the group, then reap.
        group.kill();
        let _ = child.start_kill();
        let _ = child.wait().await;
        group.reap().await;
        return Err(ExecError::Deadline { path });
    };
    let read = read_rest(read, reads, &mut group, deadline).await;
    output(path, written, status, read)
}

/// What the plugin wrote: stdout and stderr, each with whether it was cut at its cap.
type Captured = (
    std::io::Result<(Vec<u8>, bool)>,
    std::io::Result<(Vec<u8>, bool)>,
);

/// The plugin in its own group (pgid = its pid, so what it starts can be killed with it),
/// with only `env` and piped stdio.
fn spawn(
    path: &Path,
    provider: &Provider,
    env: &PluginEnv,
) -> Result<tokio::process::Child, ExecError> {
    tokio::process::Command::new(path)
        .args(&provider.args)
        .env_clear()
        .envs(env.vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ExecError::Spawn {
            path: path.to_path_buf(),
            source,
        })
}

/// The plugin exited: what it wrote is in the pipes (`read`, if read to the end already).
/// Anything still holding them open is something it left behind, which the kubelet's answer
/// does not wait for here: read for [`READ_AFTER_EXIT`], kill the group, read what the
/// killed leftovers held, and reap them. `None` if the pipes are still open after all that.
async fn read_rest(
    read: Option<Captured>,
    mut reads: std::pin::Pin<&mut impl Future<Output = Captured>>,
    group: &mut Group,
    deadline: Instant,
) -> Option<Captured> {
    let read = match read {
        Some(r) => Some(r),
        None => timeout_at(
            (Instant::now() + READ_AFTER_EXIT).min(deadline),
            reads.as_mut(),
        )
        .await
        .ok(),
    };
    group.kill();
    // Killed, the leftovers close the pipes: read to the end of what they held.
    let read = match read {
        Some(r) => Some(r),
        None => tokio::time::timeout(REAP_GRACE, reads).await.ok(),
    };
    group.reap().await;
    read
}

/// The run's [`Output`], or the first error of writing the request, waiting, or reading.
fn output(
    path: PathBuf,
    written: std::io::Result<()>,
    status: std::io::Result<std::process::ExitStatus>,
    read: Option<Captured>,
) -> Result<Output, ExecError> {
    let io_err = |source| ExecError::Io {
        path: path.clone(),
        source,
    };
    written.map_err(io_err)?;
    let status = status.map_err(io_err)?;
    let Some((out, err)) = read else {
        // Only a process that left the group (setsid) can still hold them.
        return Err(ExecError::Io {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the plugin exited but a process it started kept its output open",
            ),
        });
    };
    let (stdout, _) = out.map_err(io_err)?;
    let (stderr, stderr_truncated) = err.map_err(io_err)?;
    Ok(Output {
        status,
        stdout,
        stderr,
        stderr_truncated,
    })
}

/// Makes the probe the reaper of its plugins' orphans, once. In the image the probe is PID 1
/// and gets them anyway; elsewhere they would go to whoever is, and [`Group::reap`] could
/// not wait for them. Linux only; elsewhere nothing changes.
fn adopt_orphans() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        if let Err(e) = rustix::process::set_child_subreaper(rustix::process::getpid().into()) {
            tracing::debug!(error = %e, "cannot become a child subreaper");
        }
    });
}

/// A plugin's process group (its pgid is the plugin's pid).
struct Group(Option<rustix::process::Pid>);

impl Group {
    /// SIGKILL to every process of the group. The group id cannot be reused while any member
    /// (a zombie included) is left, and after the last one it matches nothing (`ESRCH`,
    /// ignored); [`Group::reap`] disarms it so a later kill cannot reach a reused id.
    fn kill(&self) {
        if let Some(pgid) = self.0 {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }

    /// Waits for the group's members that are our children (the plugin's orphans, which
    /// [`adopt_orphans`] made ours), for at most [`REAP_GRACE`]: a zombie left unreaped in a
    /// long `serve` is a process table entry lost for good. The plugin itself is reaped by
    /// tokio before this runs.
    async fn reap(&mut self) {
        let Some(pgid) = self.0.take() else { return };
        let until = Instant::now() + REAP_GRACE;
        loop {
            match rustix::process::waitpgid(pgid, rustix::process::WaitOptions::NOHANG) {
                // One reaped: there may be more.
                Ok(Some(_)) => continue,
                // Members still dying: look again shortly.
                Ok(None) if Instant::now() < until => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                // None left that is ours (ECHILD), or out of time.
                _ => return,
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads up to `cap` bytes and drains the rest; says whether anything was dropped.
async fn read_capped(
    mut r: impl AsyncRead + Unpin,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut dropped = false;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, dropped));
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        dropped |= n > room;
    }
}
