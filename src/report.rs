//! The report: plain data, versioned, serialised as the probe's only stdout output.
//!
//! `schema/report.schema.json` describes it; bump [`SCHEMA_VERSION`] on any change a consumer
//! could notice (a new required field, a renamed value), and keep additions optional.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::catalogue::{Code, Severity};

pub const SCHEMA_VERSION: &str = "1.4";

/// A unit enum's name on the wire (in [`crate::wire`], below the catalogue and the report).
pub use crate::wire::wire_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every image can be pulled with this identity.
    Pass,
    /// At least one image cannot: the gate says no.
    Fail,
    /// No image fails, but for at least one the answer the policy asks for cannot be known
    /// from this run (the kubelet would go on to node credentials the run was not given).
    Inconclusive,
    /// The probe could not run as asked (its configuration is wrong).
    Error,
    /// An image's only: the run could not run as asked and never got to this image, so
    /// nothing about it is known (since 1.4). A run's verdict is never this.
    NotChecked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// A diagnosis: what is wrong (or notable), the evidence, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub summary: String,
    pub remediation: String,
    pub evidence: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub status: Status,
    pub duration_ms: u64,
    pub bytes: Option<u64>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityReport {
    pub mode: CredentialMode,
    pub role_arn: Option<String>,
    pub token_file: Option<String>,
    pub token: Option<TokenClaims>,
    pub caller: Option<Caller>,
    pub credentials_expire_at: Option<i64>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcrRef {
    pub account: String,
    pub region: String,
    pub partition: String,
    pub host_form: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceReport {
    /// The reference as written (in the pod spec, on the command line).
    pub written: String,
    /// What a runtime pulls for it, normalised as `ParseDockerRef` does
    /// (`busybox` is `docker.io/library/busybox:latest`; a digest drops the tag).
    pub normalized: String,
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub ecr: Option<EcrRef>,
    /// The URL the registry was reached at.
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestReport {
    pub digest: String,
    pub media_type: String,
    pub index_digest: Option<String>,
    pub index_media_type: Option<String>,
    pub platform: Option<String>,
    pub available_platforms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobKind {
    Config,
    Layer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobReport {
    pub kind: BlobKind,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub status: Status,
    pub bytes: u64,
    pub served_by: Option<String>,
    pub redirected: bool,
    pub duration_ms: u64,
}

/// The pull-secret path: the same real pull with the credentials the kubelet would take from a
/// docker config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretPath {
    pub status: Status,
    /// Where the docker config came from (`--docker-config`).
    pub source: String,
    /// The key of the entry that was used last, if any matched.
    pub entry: Option<String>,
    pub username: Option<String>,
    /// `expiration` of an ECR-format password in that entry, Unix seconds.
    pub password_expires_at: Option<i64>,
    /// The registry stages of the last attempt.
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
}

/// The pod path: the pod's own identity. Its stages are the image's `stages` (where schema
/// 1.0 had them before there were paths), so on the wire it is its status alone, as since
/// 1.1; a type of its own keeps the paths' contract one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PodIdentityPath {
    pub status: Status,
}

/// The canary path: what the kubelet itself did with the image in a short-lived pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryPath {
    pub status: Status,
    pub pod: String,
    pub node: Option<String>,
    /// The node's labels that the canary's placement named: its node selector's and node
    /// affinity's keys, or the hostname for `--canary-node` (since 1.4). Empty when the node
    /// could not be read.
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
    pub findings: Vec<Finding>,
}

/// The node provider path: the node's kubelet credential provider, run as the kubelet runs
/// it, and the pull with what it returned (since schema 1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeProviderPath {
    pub status: Status,
    /// `--credential-provider-config` as given.
    pub config: String,
    /// The node's name (downward API), when known.
    pub node: Option<String>,
    /// The provider that ran last (the one that passed, when one did).
    pub provider: Option<String>,
    /// Its `matchImages` pattern that covered the image.
    pub match_image: Option<String>,
    /// The response's `auth` key used.
    pub auth_key: Option<String>,
    pub username: Option<String>,
    /// `expiration` of an ECR-format password, Unix seconds.
    pub password_expires_at: Option<i64>,
    pub cache_key_type: Option<String>,
    pub cache_duration: Option<String>,
    /// Names of the probe's variables the plugin was not given (`AWS_*`,
    /// `ECR_PULL_PROBE_*`): the kubelet's environment never holds the pod's (since 1.4).
    #[serde(default)]
    pub environment_withheld: Vec<String>,
    /// `credential_provider`, then the registry stages of the last attempt.
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
}

/// The retry policies in force: the registry's (the probe's own) and the AWS SDK's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetryPolicyReport {
    pub registry_attempts: u32,
    pub registry_max_wait_ms: u64,
    pub aws_mode: String,
    pub aws_attempts: u32,
}

/// Which paths decide an image's verdict (`--require`, since schema 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Require {
    /// `kubelet` when a kubelet path was checked, else `pod`.
    #[default]
    Auto,
    /// The kubelet's answer: the canary's when it gave one, else whether any of the
    /// credentials the kubelet would try (pull secrets, the node provider) pulls.
    Kubelet,
    /// The pod's own identity only.
    Pod,
    /// Every path checked must pass.
    All,
}

impl Require {
    /// Every value, by its name on the wire.
    pub const ALL: [Require; 4] = [Require::Auto, Require::Kubelet, Require::Pod, Require::All];

    /// The value named `name` on the wire (`auto`, `kubelet`, `pod`, `all`); saying what is
    /// wrong with another name is the caller's, who knows where it came from.
    pub fn from_name(name: &str) -> Option<Require> {
        Require::ALL.into_iter().find(|r| wire_name(r) == name)
    }
}

/// Each way the image could be pulled, checked side by side (since schema 1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paths {
    /// The pod's own identity: the image's `stages`.
    pub pod_identity: PodIdentityPath,
    /// Present when a docker config or a workload's pull secrets were given.
    pub pull_secrets: Option<SecretPath>,
    /// The node-wide docker config (`--node-docker-config`, OpenShift's global pull secret),
    /// since 1.4.
    #[serde(default)]
    pub node_docker_config: Option<SecretPath>,
    /// Present with `--credential-provider-config` (since 1.3).
    pub node_credential_provider: Option<NodeProviderPath>,
    /// Present with `--canary`.
    pub kubelet_canary: Option<CanaryPath>,
    /// What the kubelet would do with all of them (since 1.4): present when any of the
    /// kubelet's sources was checked.
    #[serde(default)]
    pub kubelet: Option<KubeletAnswer>,
}

impl Paths {
    /// The kubelet's answer, when any of its sources was checked.
    pub fn kubelet_status(&self) -> Option<KubeletStatus> {
        self.kubelet.as_ref().map(|k| k.status)
    }

    /// Whether a kubelet path was checked at all (the canary counts even when inconclusive).
    pub fn kubelet_checked(&self) -> bool {
        self.kubelet.is_some() || self.kubelet_canary.is_some()
    }

    /// The policy `auto` stands for on this image.
    pub fn effective(&self, require: Require) -> Require {
        match require {
            Require::Auto if self.kubelet_checked() => Require::Kubelet,
            Require::Auto => Require::Pod,
            r => r,
        }
    }

    /// The image's verdict under `require` (the table is in docs/node.md, "The verdict").
    pub fn verdict(&self, require: Require) -> Verdict {
        let pod = if self.pod_identity.status == Status::Pass {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        let kubelet = match self.kubelet_status() {
            Some(KubeletStatus::Pass) => Verdict::Pass,
            Some(KubeletStatus::Fail) => Verdict::Fail,
            // An inconclusive canary alone, or a list the run cannot finish.
            Some(KubeletStatus::Unknown) | None => Verdict::Inconclusive,
        };
        match self.effective(require) {
            Require::Pod => pod,
            Require::Kubelet => kubelet,
            _ => {
                let failed = |s: Option<Status>| s == Some(Status::Fail);
                if pod == Verdict::Fail
                    || failed(self.pull_secrets.as_ref().map(|p| p.status))
                    || failed(self.node_docker_config.as_ref().map(|p| p.status))
                    || failed(self.node_credential_provider.as_ref().map(|p| p.status))
                    || failed(self.kubelet_canary.as_ref().map(|p| p.status))
                    || kubelet == Verdict::Fail && self.kubelet_checked()
                {
                    Verdict::Fail
                } else if self.kubelet_checked() && kubelet == Verdict::Inconclusive {
                    Verdict::Inconclusive
                } else {
                    Verdict::Pass
                }
            }
        }
    }
}

/// The kubelet's answer on an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KubeletStatus {
    Pass,
    Fail,
    /// Its list goes on to node credentials this run was not given.
    Unknown,
}

/// Where a credential on the kubelet's list comes from, in the kubelet's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// The pod's `imagePullSecrets` (or a mounted docker config).
    PullSecrets,
    /// The node-wide docker config (the kubelet's `.dockercfg` provider).
    NodeDockerConfig,
    /// The node's credential provider plugins.
    NodeCredentialProvider,
    /// None at all: the kubelet's list was empty.
    Anonymous,
}

/// One credential on the kubelet's list, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeletCredential {
    pub source: CredentialSource,
    /// `secret/ns/name`, a file, a provider's name.
    pub origin: String,
    /// The registry key it is filed under.
    pub key: Option<String>,
    pub username: Option<String>,
    /// `pass`, `fail`, or `skip` when the kubelet would stop before it.
    pub status: Status,
}

/// Who gave the kubelet's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KubeletDecidedBy {
    /// The kubelet itself, in a canary pod.
    Canary,
    /// The credential list, tried in the kubelet's order with the real pull.
    CredentialList,
    /// A problem that fails every pull of the pod before any credential is tried.
    PodBlocked,
    /// The kubelet's own word on the failing pod (`diagnose`): its container waits on a
    /// failed pull of this image.
    PodStatus,
}

/// The kubelet's credential list for an image, tried as the kubelet tries it (since 1.4):
/// the pull secrets, then the node-wide docker config, then the credential providers, each
/// source's matching keys most specific first, until one pulls; anonymous only when the list
/// is empty. Each source's own path keeps its findings; this says what the kubelet does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletAnswer {
    pub status: KubeletStatus,
    pub decided_by: KubeletDecidedBy,
    /// The list in the kubelet's order.
    pub credentials: Vec<KubeletCredential>,
    /// Index in `credentials` of the one the kubelet pulls with.
    pub used: Option<usize>,
    /// Sources the kubelet would use that this run was not given.
    pub unknown_sources: Vec<CredentialSource>,
    /// The registry stages of an anonymous pull, when the list was empty.
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageReport {
    pub image: String,
    pub verdict: Verdict,
    pub reference: ReferenceReport,
    pub ecr_token: Option<EcrTokenInfo>,
    pub manifest: Option<ManifestReport>,
    pub blobs: Vec<BlobReport>,
    pub stages: Vec<Stage>,
    pub paths: Paths,
    /// Findings about the image as a whole, such as what a pass means for the kubelet.
    pub findings: Vec<Finding>,
    /// This node's cache of the image, from the kubelet's records (`--kubelet-image-manager-dir`,
    /// since 1.4).
    #[serde(default)]
    pub node_cache: Option<NodeCacheReport>,
    /// The questions put to the ECR API after a registry failure, to explain it (since 1.4).
    #[serde(default)]
    pub api_calls: Vec<ApiCall>,
}

/// The kubelet's `imagePullCredentialsVerificationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    NeverVerify,
    /// The default: images the kubelet did not pull (no record) are never verified.
    NeverVerifyPreloadedImages,
    NeverVerifyAllowlistedImages,
    AlwaysVerify,
}

/// The kind of credentials a record names, as the report says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// `nodePodsAccessible`: node-wide or anonymous.
    NodePodsAccessible,
    KubernetesSecrets,
    ServiceAccounts,
    /// A mapping with no credentials in it (the kubelet then verifies).
    None,
}

/// What the kubelet's records say about one image on this node (KEP-2535).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCacheReport {
    /// `--kubelet-image-manager-dir` as given.
    pub image_manager_dir: String,
    /// `--kubelet-config` as given.
    pub kubelet_config: Option<String>,
    /// `imagePullCredentialsVerificationPolicy` in force (the kubelet's default when unset).
    pub policy: Policy,
    /// `featureGates.KubeletEnsureSecretPulledImages`; null: unset (on by default since 1.35).
    pub feature_gate: Option<bool>,
    /// A pulled-image record names the image: the kubelet pulled it here.
    pub held: bool,
    pub image_ref: Option<String>,
    pub last_updated_time: Option<String>,
    pub credential_kind: Option<CredentialKind>,
    /// A pod asking for it with `IfNotPresent` starts without any credential check.
    pub if_not_present_starts_unverified: bool,
    pub reason: String,
    /// The workload's containers (`--images-from`) that ask for this image with
    /// `IfNotPresent`, their pull policy defaulted as the API server does.
    pub if_not_present_containers: Vec<String>,
    /// Records or config that could not be read or decoded.
    pub unreadable: usize,
}

/// One ECR API call made to explain a failure: which, how it ended, how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    pub operation: String,
    pub outcome: ApiOutcome,
    pub duration_ms: u64,
    /// The AWS error code, when it ended in one.
    pub aws_error_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiOutcome {
    Ok,
    /// A `…NotFoundException`: itself an answer (no such image, policy, repository).
    NotFound,
    /// `AccessDeniedException`: the identity may not ask.
    Denied,
    Throttled,
    /// Another error, a timeout or no connection.
    Failed,
    /// Not made: the run's deadline had passed.
    Deadline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub tool: Tool,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
    pub verdict: Verdict,
    pub identity: IdentityReport,
    /// The workload of `--images-from` (since 1.1).
    pub workload: Option<Workload>,
    /// The `--require` policy the verdict was decided with (since 1.3).
    #[serde(default)]
    pub require: Require,
    /// How transient failures were retried (since 1.3).
    #[serde(default)]
    pub retry_policy: RetryPolicyReport,
    pub images: Vec<ImageReport>,
    /// What `diagnose` read of its target: the kubelet's own messages, the probe's Job, the
    /// node's report (since 1.4; absent from every other command's report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetReport>,
}

/// `diagnose`'s target: the pod the kubelet failed to start (or the workload, when no pod of
/// it exists), what the kubelet said about it, and where the probe ran (since 1.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// `KIND/NAME` as given (`pod/naming-server-new-6f8fdc8875-gc6ch`, `deployment/x`).
    pub target: String,
    pub namespace: String,
    /// The pod whose pulls were read; `None` when the workload has no pod.
    pub pod: Option<String>,
    /// The pod's node: where the kubelet failed and where the probe's Job was pinned.
    pub node: Option<String>,
    /// Each container's image and what the kubelet last said about it.
    pub containers: Vec<KubeletPull>,
    /// The pod's `Failed` and `BackOff` events, oldest first.
    pub events: Vec<PullEvent>,
    /// The Job the probe ran in.
    pub job: Option<JobRun>,
    /// Where the node's own report came from (`pod/NAMESPACE/NAME`), when it was read.
    pub node_report: Option<String>,
    /// The kubelet's messages as findings, and what could not be read.
    pub findings: Vec<Finding>,
}

/// One container of the target pod, as the kubelet reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletPull {
    pub container: String,
    pub image: String,
    pub init: bool,
    pub image_pull_policy: Option<String>,
    /// The waiting reason (`ErrImagePull`, `ImagePullBackOff`), if the container waits.
    pub reason: Option<String>,
    /// The kubelet's exact message.
    pub message: Option<String>,
}

/// A `Failed` or `BackOff` event of the target pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullEvent {
    pub reason: String,
    pub message: String,
    /// The node whose kubelet reported it.
    pub node: Option<String>,
    /// RFC 3339: the last time it was seen.
    pub time: Option<String>,
    pub count: Option<i32>,
}

/// The probe's Job, deleted once its report was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub name: String,
    pub pod: String,
    pub node: Option<String>,
    pub exit_code: i32,
}

impl Stage {
    /// A stage's status follows from its findings: an error fails it, a warning marks it.
    pub fn from_findings(
        name: &str,
        duration_ms: u64,
        bytes: Option<u64>,
        findings: Vec<Finding>,
    ) -> Stage {
        let status = match findings.iter().map(|f| f.severity).max() {
            Some(Severity::Error) => Status::Fail,
            Some(Severity::Warning) => Status::Warn,
            _ => Status::Pass,
        };
        Stage {
            name: name.to_string(),
            status,
            duration_ms,
            bytes,
            findings,
        }
    }

    pub fn skipped(name: &str) -> Stage {
        Stage {
            name: name.to_string(),
            status: Status::Skip,
            duration_ms: 0,
            bytes: None,
            findings: vec![],
        }
    }
}

impl ImageReport {
    /// Holds this image's report to [`crate::bounds::MAX_IMAGE_REPORT_BYTES`] serialised:
    /// each finding is capped already (`Finding::new`), but an image has many, so past the
    /// bound their evidence gives way (codes, summaries and fixes stay, and the verdict).
    pub fn bound(&mut self) {
        let size = json_size(self);
        if size <= crate::bounds::MAX_IMAGE_REPORT_BYTES {
            return;
        }
        let note = serde_json::Value::from(format!(
            "dropped: this image's report was {size} bytes, over the {} bytes one check may take",
            crate::bounds::MAX_IMAGE_REPORT_BYTES
        ));
        let drop_evidence = |findings: &mut Vec<Finding>| {
            for f in findings {
                f.evidence = BTreeMap::from([("evidence".to_string(), note.clone())]);
            }
        };
        for s in &mut self.stages {
            drop_evidence(&mut s.findings);
        }
        if let Some(p) = &mut self.paths.pull_secrets {
            p.stages
                .iter_mut()
                .for_each(|s| drop_evidence(&mut s.findings));
            drop_evidence(&mut p.findings);
        }
        if let Some(p) = &mut self.paths.node_credential_provider {
            p.stages
                .iter_mut()
                .for_each(|s| drop_evidence(&mut s.findings));
            drop_evidence(&mut p.findings);
        }
        if let Some(p) = &mut self.paths.kubelet_canary {
            drop_evidence(&mut p.findings);
        }
        drop_evidence(&mut self.findings);
    }

    /// Every finding about this image: its stages, its paths, then the summaries.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        let secrets = self
            .paths
            .pull_secrets
            .iter()
            .flat_map(|p| p.stages.iter().flat_map(|s| &s.findings).chain(&p.findings));
        let node = self
            .paths
            .node_credential_provider
            .iter()
            .flat_map(|p| p.stages.iter().flat_map(|s| &s.findings).chain(&p.findings));
        let node_config = self
            .paths
            .node_docker_config
            .iter()
            .flat_map(|p| p.stages.iter().flat_map(|s| &s.findings).chain(&p.findings));
        let canary = self.paths.kubelet_canary.iter().flat_map(|c| &c.findings);
        let kubelet = self
            .paths
            .kubelet
            .iter()
            .flat_map(|k| k.stages.iter().flat_map(|s| &s.findings).chain(&k.findings));
        self.stages
            .iter()
            .flat_map(|s| &s.findings)
            .chain(secrets)
            .chain(node_config)
            .chain(node)
            .chain(canary)
            .chain(kubelet)
            .chain(&self.findings)
    }
}

/// Bytes of `v` as JSON, counted without building it.
fn json_size(v: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Every finding of the report, identity first.
pub fn all_findings(report: &Report) -> impl Iterator<Item = &Finding> {
    report
        .identity
        .stages
        .iter()
        .flat_map(|s| &s.findings)
        .chain(report.images.iter().flat_map(ImageReport::all_findings))
        .chain(report.target.iter().flat_map(|t| &t.findings))
}

/// Whether findings fail what they were found on (an error among them).
pub fn any_error(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// An image passes when none of its stages failed and its manifest was actually read: stages
/// skipped because the identity failed upstream prove nothing.
pub fn image_verdict(stages: &[Stage]) -> Verdict {
    let failed = stages.iter().any(|s| s.status == Status::Fail);
    let reached = stages
        .iter()
        .any(|s| s.name == "manifest" && matches!(s.status, Status::Pass | Status::Warn));
    if failed || !reached {
        Verdict::Fail
    } else {
        Verdict::Pass
    }
}

/// The run's verdict: `error` when a finding says the probe was misconfigured, else `fail`
/// when the identity or any image failed.
pub fn run_verdict(identity: &[Stage], images: &[ImageReport], require: Require) -> Verdict {
    // The pod's identity matters unless every image is decided by the kubelet's paths (a
    // node DaemonSet has no web identity, and needs none).
    let pod_matters = images.is_empty()
        || images
            .iter()
            .any(|i| matches!(i.paths.effective(require), Require::Pod | Require::All));
    let identity_findings = identity
        .iter()
        .flat_map(|s| &s.findings)
        .filter(|_| pod_matters);
    let path_findings = images.iter().flat_map(|i| {
        let node = i.paths.node_credential_provider.as_ref();
        i.stages
            .iter()
            .flat_map(|s| &s.findings)
            .chain(node.into_iter().flat_map(|n| {
                n.findings
                    .iter()
                    .chain(n.stages.iter().flat_map(|s| &s.findings))
            }))
    });
    if identity_findings
        .chain(path_findings)
        .any(|f| f.code.spec().configuration_error && f.severity == Severity::Error)
    {
        Verdict::Error
    } else if (pod_matters && identity.iter().any(|s| s.status == Status::Fail))
        || images.iter().any(|i| i.verdict == Verdict::Fail)
    {
        Verdict::Fail
    } else if images.iter().any(|i| i.verdict != Verdict::Pass) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    }
}

/// In a run that could not run as asked (`error`), an image no path got to: every stage of
/// every path skipped. It is `not_checked`, not `fail`: nothing was refused.
pub fn mark_not_checked(img: &mut ImageReport) {
    let skipped = |stages: &[Stage]| stages.iter().all(|s| s.status == Status::Skip);
    let p = &img.paths;
    let untouched = skipped(&img.stages)
        && p.pull_secrets.as_ref().is_none_or(|s| skipped(&s.stages))
        && p.node_credential_provider
            .as_ref()
            .is_none_or(|n| skipped(&n.stages))
        && p.kubelet_canary.is_none();
    if untouched {
        img.verdict = Verdict::NotChecked;
        img.paths.pod_identity.status = Status::Skip;
    }
}

// Plain data the stages produce and the report carries. They live here, not in their
// stages, so the report depends on no stage (the stages import these).

/// One container's image, as the rollout will pull it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerImage {
    pub container: String,
    pub image: String,
    pub init: bool,
    pub image_pull_policy: Option<String>,
}

/// What the probe takes from a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub service_account: String,
    /// The pod template's own `imagePullSecrets` (empty names dropped, as the kubelet drops
    /// them).
    pub image_pull_secrets: Vec<String>,
    /// Whether the pod spec lists any `imagePullSecrets` at all, empty names included: the
    /// ServiceAccount admission plugin then copies none of the ServiceAccount's.
    #[serde(skip)]
    pub pull_secrets_listed: bool,
    pub node_selector: BTreeMap<String, String>,
    pub containers: Vec<ContainerImage>,
    /// Where and how the pod runs beyond the node selector, for the canary to copy. Not part
    /// of the report: an affinity can be long, and the canary reports where it landed.
    #[serde(skip)]
    pub placement: Placement,
}

/// The pod template's scheduling and runtime fields the canary copies as they are (raw API
/// JSON: the canary passes them through and never interprets more than the label keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// `spec.affinity`.
    pub affinity: Option<serde_json::Value>,
    /// `spec.tolerations`.
    pub tolerations: Vec<serde_json::Value>,
    /// `spec.runtimeClassName`: a RuntimeClass may select its own nodes and handler.
    pub runtime_class_name: Option<String>,
}

/// How the password inside the token is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordFormat {
    /// Real ECR: base64 JSON with `payload`, `datakey`, `version`, `type`, `expiration`.
    EcrDataKey,
    /// Anything else (an emulator, a proxy): used as is.
    Opaque,
}

/// What the report says about a token: everything but the credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcrTokenInfo {
    pub region: String,
    pub partition: String,
    /// The ECR API host that issued it.
    pub api_endpoint: String,
    pub proxy_endpoint: Option<String>,
    /// `expiresAt` of the API response, Unix seconds.
    pub expires_at: Option<i64>,
    pub user: String,
    pub password_format: PasswordFormat,
    /// `expiration` inside a real ECR password, Unix seconds.
    pub password_expiration: Option<i64>,
}

/// How the default credential chain will resolve credentials, mirroring its order
/// (environment keys, then web identity, then the container endpoint, then the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialMode {
    /// `AWS_ACCESS_KEY_ID` is set: static keys win over everything else.
    Environment,
    /// `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`: AssumeRoleWithWebIdentity (IRSA, ROSA STS).
    WebIdentity,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`/`_RELATIVE_URI`: EKS Pod Identity or ECS.
    ContainerEndpoint,
    /// None of the above: profiles, then instance metadata (which pods on OpenShift cannot reach).
    DefaultChain,
}

/// What the token says about itself. Timestamps are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub audiences: Vec<String>,
    pub expires_at: Option<i64>,
    pub issued_at: Option<i64>,
    pub not_before: Option<i64>,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub pod: Option<String>,
}

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub account: String,
    pub arn: String,
    pub user_id: String,
    /// For an assumed role: the role name and the session name, parsed from the ARN.
    pub assumed_role: Option<String>,
    pub session_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(name: &str, status: Status) -> Stage {
        Stage {
            status,
            ..Stage::skipped(name)
        }
    }

    #[test]
    fn an_image_passes_only_when_reached_and_nothing_failed() {
        use Status::*;
        let v = |s: &[(&str, Status)]| {
            image_verdict(&s.iter().map(|(n, st_)| st(n, *st_)).collect::<Vec<_>>())
        };
        assert_eq!(
            v(&[("ecr_token", Warn), ("manifest", Pass), ("layers", Skip)]),
            Verdict::Pass
        );
        assert_eq!(
            v(&[("ecr_token", Skip), ("manifest", Skip)]),
            Verdict::Fail,
            "never reached"
        );
        assert_eq!(v(&[("manifest", Pass), ("layers", Fail)]), Verdict::Fail);
    }

    #[test]
    fn the_schema_lists_exactly_the_catalogue_codes() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../schema/report.schema.json")).unwrap();
        let in_schema: Vec<&str> = schema["$defs"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let in_code: Vec<&str> = crate::diagnosis::CATALOGUE.iter().map(|s| s.name).collect();
        assert_eq!(in_schema, in_code, "update schema/report.schema.json");
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            SCHEMA_VERSION
        );
    }
}

/// Small reports for the unit tests of the modules that read reports.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A passing report with one image per name, each having pulled `bytes` bytes.
    pub fn passing(images: &[&str], bytes: u64) -> Report {
        Report {
            schema_version: SCHEMA_VERSION.into(),
            tool: Tool {
                name: "ecr-pull-probe".into(),
                version: "0.1.0".into(),
            },
            started_at: "2026-11-28T00:00:00Z".into(),
            duration_ms: 12,
            verdict: Verdict::Pass,
            identity: IdentityReport {
                mode: CredentialMode::WebIdentity,
                role_arn: None,
                token_file: None,
                token: None,
                caller: None,
                credentials_expire_at: None,
                stages: vec![],
            },
            workload: None,
            require: Require::Auto,
            retry_policy: Default::default(),
            images: images
                .iter()
                .map(|name| ImageReport {
                    image: name.to_string(),
                    verdict: Verdict::Pass,
                    reference: ReferenceReport {
                        written: name.to_string(),
                        normalized: format!("x/{name}:latest"),
                        registry: "x".into(),
                        repository: name.to_string(),
                        tag: Some("latest".into()),
                        digest: None,
                        ecr: None,
                        endpoint: "https://x/".into(),
                    },
                    ecr_token: None,
                    manifest: None,
                    blobs: vec![BlobReport {
                        kind: BlobKind::Layer,
                        digest: format!("sha256:{}", "a".repeat(64)),
                        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                        size: bytes,
                        bytes,
                        status: Status::Pass,
                        served_by: None,
                        redirected: false,
                        duration_ms: 1,
                    }],
                    stages: vec![],
                    paths: Paths {
                        pod_identity: PodIdentityPath {
                            status: Status::Pass,
                        },
                        pull_secrets: None,
                        node_credential_provider: None,
                        kubelet_canary: None,
                        node_docker_config: None,
                        kubelet: None,
                    },
                    findings: vec![],
                    node_cache: None,
                    api_calls: vec![],
                })
                .collect(),
            target: None,
        }
    }
}
