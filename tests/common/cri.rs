//! A small client for the CRI, the gRPC API the kubelet calls on its container runtime, so tests
//! can ask the real runtime (the stack's containerd) what it makes of a pull and compare that
//! with the probe's verdict.
//!
//! The messages are written here by hand as `prost::Message` structs, with the field numbers of
//! `runtime.v1` (kubernetes/cri-api, `pkg/apis/runtime/v1/api.proto`), and only the fields these
//! tests use: no .proto file in the tree, no build.rs, no protoc on the build machine. Fields a
//! struct leaves out are skipped on decode, as protobuf intends, and unset ones are not sent.
//! The calls go through `tonic::client::Grpc` with tonic's prost codec over the runtime's unix
//! socket, each with a timeout.
//!
//! The API is blocking (a current-thread tokio runtime of its own), like the rest of the tests.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::Status;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

/// runtime.v1.VersionRequest
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionRequest {
    #[prost(string, tag = "1")]
    pub version: String,
}

/// runtime.v1.VersionResponse
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionResponse {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub runtime_name: String,
    #[prost(string, tag = "3")]
    pub runtime_version: String,
    #[prost(string, tag = "4")]
    pub runtime_api_version: String,
}

/// runtime.v1.ImageSpec
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageSpec {
    #[prost(string, tag = "1")]
    pub image: String,
    #[prost(map = "string, string", tag = "2")]
    pub annotations: HashMap<String, String>,
}

/// runtime.v1.AuthConfig: what the kubelet sends from a pull secret or a credential provider.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthConfig {
    #[prost(string, tag = "1")]
    pub username: String,
    #[prost(string, tag = "2")]
    pub password: String,
    /// base64 of `user:password`, as in a dockerconfigjson `auth` entry.
    #[prost(string, tag = "3")]
    pub auth: String,
    #[prost(string, tag = "4")]
    pub server_address: String,
    #[prost(string, tag = "5")]
    pub identity_token: String,
    #[prost(string, tag = "6")]
    pub registry_token: String,
}

/// runtime.v1.PullImageRequest; `sandbox_config` (3) is left out: the kubelet's pod sandbox
/// config does not change how containerd resolves or authenticates.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PullImageRequest {
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
    #[prost(message, optional, tag = "2")]
    pub auth: Option<AuthConfig>,
}

/// runtime.v1.PullImageResponse
#[derive(Clone, PartialEq, prost::Message)]
pub struct PullImageResponse {
    #[prost(string, tag = "1")]
    pub image_ref: String,
}

/// runtime.v1.ImageStatusRequest
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageStatusRequest {
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
    #[prost(bool, tag = "2")]
    pub verbose: bool,
}

/// runtime.v1.ImageStatusResponse (`info`, 2, is only filled in verbose mode; left out).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageStatusResponse {
    #[prost(message, optional, tag = "1")]
    pub image: Option<Image>,
}

/// runtime.v1.Image, the fields a test looks at.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, repeated, tag = "2")]
    pub repo_tags: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub repo_digests: Vec<String>,
    #[prost(uint64, tag = "4")]
    pub size: u64,
}

/// runtime.v1.RemoveImageRequest
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveImageRequest {
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
}

/// runtime.v1.RemoveImageResponse
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveImageResponse {}

/// How long one call may take. A pull of the stack's small images takes well under a second;
/// the bound is there so a wedged runtime fails a test instead of hanging it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const PULL_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to a CRI runtime's unix socket.
pub struct Runtime {
    rt: tokio::runtime::Runtime,
    channel: Channel,
}

impl Runtime {
    /// Connects to the CRI socket at `socket` (e.g. the stack's `STACK_CONTAINERD_SOCKET`).
    pub fn connect(socket: impl AsRef<Path>) -> Result<Runtime, Box<dyn std::error::Error>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let path = socket.as_ref().to_path_buf();
        // The URI is a placeholder that the connector ignores; gRPC over a unix socket has no
        // host. The channel's worker task is spawned on `rt`, and runs while a call blocks on it.
        let channel = rt.block_on(async move {
            Endpoint::from_static("http://cri.invalid")
                .connect_timeout(Duration::from_secs(5))
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(
                            tokio::net::UnixStream::connect(path).await?,
                        ))
                    }
                }))
                .await
        })?;
        Ok(Runtime { rt, channel })
    }

    fn unary<Req, Resp>(
        &self,
        path: &'static str,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let mut request = tonic::Request::new(req);
        // Sent as grpc-timeout: the runtime gives up too, not only this client.
        request.set_timeout(timeout);
        let call = async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("CRI socket not ready: {e}")))?;
            grpc.unary(
                request,
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .map(tonic::Response::into_inner)
        };
        self.rt.block_on(async {
            tokio::time::timeout(timeout + Duration::from_secs(1), call)
                .await
                .unwrap_or_else(|_| {
                    Err(Status::deadline_exceeded(format!(
                        "no answer to {path} within {timeout:?}"
                    )))
                })
        })
    }

    /// RuntimeService/Version: the runtime's name and version, to record with results.
    pub fn version(&self) -> Result<VersionResponse, Status> {
        self.unary(
            "/runtime.v1.RuntimeService/Version",
            VersionRequest {
                version: "v1".into(),
            },
            CALL_TIMEOUT,
        )
    }

    /// ImageService/PullImage as the kubelet sends it: `Ok(image ref)`, or the runtime's error,
    /// whose `message()` is what the kubelet puts into the pod's ErrImagePull event.
    pub fn pull(&self, image: &str, creds: Option<(&str, &str)>) -> Result<String, Status> {
        self.pull_with(
            image,
            creds.map(|(u, p)| AuthConfig {
                username: u.into(),
                password: p.into(),
                ..Default::default()
            }),
        )
    }

    /// PullImage with any AuthConfig (a dockerconfigjson `auth`, a server address, tokens).
    pub fn pull_with(&self, image: &str, auth: Option<AuthConfig>) -> Result<String, Status> {
        self.unary::<_, PullImageResponse>(
            "/runtime.v1.ImageService/PullImage",
            PullImageRequest {
                image: Some(spec(image)),
                auth,
            },
            PULL_TIMEOUT,
        )
        .map(|r| r.image_ref)
    }

    /// ImageService/ImageStatus: `None` when the runtime does not have the image.
    pub fn status(&self, image: &str) -> Result<Option<Image>, Status> {
        self.unary::<_, ImageStatusResponse>(
            "/runtime.v1.ImageService/ImageStatus",
            ImageStatusRequest {
                image: Some(spec(image)),
                verbose: false,
            },
            CALL_TIMEOUT,
        )
        .map(|r| r.image)
    }

    /// ImageService/RemoveImage, so the next pull really goes to the registry. Removing an
    /// image the runtime does not have is not an error (CRI requires it to be idempotent).
    pub fn remove(&self, image: &str) -> Result<(), Status> {
        self.unary::<_, RemoveImageResponse>(
            "/runtime.v1.ImageService/RemoveImage",
            RemoveImageRequest {
                image: Some(spec(image)),
            },
            CALL_TIMEOUT,
        )
        .map(|_| ())
    }
}

fn spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}

/// A ground truth that cannot run here: `None` after printing `SKIPPED: <test>: <reason>` on a
/// developer's machine, a panic under `CI=true`, where a runtime that cannot start must fail
/// the run rather than let every agreement test pass without having compared anything.
pub fn unavailable<T>(test: &str, reason: &str) -> Option<T> {
    let reason = reason.trim_matches('"');
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: the runtime cannot run here ({reason}), and CI=true forbids skipping");
    }
    // Straight to stderr, past the test harness's capture (which only takes the print
    // macros), so a skip shows in a plain `cargo test` too.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
    None
}

/// The stack's runtime, or [`unavailable`] when `scripts/stack` recorded that containerd
/// cannot run on this machine. A stack.env with neither variable (a stack started before
/// containerd was part of it) fails instead of skipping.
pub fn stack_runtime(test: &str) -> Option<Runtime> {
    let stack = super::Stack::get();
    if let Some(reason) = stack.env.get("STACK_CONTAINERD_UNAVAILABLE") {
        return unavailable(test, reason);
    }
    let socket = stack.env.get("STACK_CONTAINERD_SOCKET").unwrap_or_else(|| {
        panic!(
            "neither STACK_CONTAINERD_SOCKET nor STACK_CONTAINERD_UNAVAILABLE in the stack env: restart the stack with the current scripts/stack"
        )
    });
    let runtime = Runtime::connect(socket)
        .unwrap_or_else(|e| panic!("cannot connect to the stack's containerd at {socket}: {e}"));
    Some(runtime)
}
