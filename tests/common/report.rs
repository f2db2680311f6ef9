//! A typed mirror of `schema/report.schema.json` for the integration tests, the way ripgrep's
//! `tests/json.rs` reads its JSON output back into structs: a test says `img.paths.kubelet`
//! and the compiler checks the name, where `img["paths"]["kubelet"]` is `null` for a typo and
//! the assertion beside it may pass for the wrong reason.
//!
//! The mirror is read from a report that has already passed the JSON Schema
//! ([`super::Run::typed`] validates first), so strictness (`additionalProperties: false`,
//! required fields, enums) is the schema's; the mirror does not deny unknown fields, so an
//! additive schema change (a minor `schema_version` bump) breaks no suite that does not read
//! the new field. Finding `evidence`, a free-form object per code, stays JSON.
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// An image's or the run's verdict (`$defs/verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    Inconclusive,
    NotChecked,
}

/// A stage's, a blob's or a path's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// The kubelet's answer (`$defs/kubelet/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KubeletStatus {
    Pass,
    Fail,
    Unknown,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub tool: Tool,
    pub started_at: String,
    pub duration_ms: u64,
    pub verdict: Verdict,
    pub identity: Identity,
    pub workload: Option<Workload>,
    pub require: String,
    pub retry_policy: RetryPolicy,
    pub images: Vec<Image>,
    /// `diagnose` only.
    #[serde(default)]
    pub target: Option<Value>,
}

impl Report {
    /// The one image of a single-image run.
    pub fn only_image(&self) -> &Image {
        assert_eq!(self.images.len(), 1, "{self:#?}");
        &self.images[0]
    }

    /// The image whose reference is written `image`.
    pub fn image(&self, image: &str) -> &Image {
        self.images
            .iter()
            .find(|i| i.image == image)
            .unwrap_or_else(|| panic!("no image {image} in the report"))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub mode: String,
    pub role_arn: Option<String>,
    pub token_file: Option<String>,
    pub token: Option<Token>,
    pub caller: Option<Caller>,
    pub credentials_expire_at: Option<i64>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Token {
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

#[derive(Debug, Clone, Deserialize)]
pub struct Caller {
    pub account: String,
    pub arn: String,
    pub user_id: String,
    pub assumed_role: Option<String>,
    pub session_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub service_account: String,
    pub image_pull_secrets: Vec<String>,
    pub node_selector: BTreeMap<String, String>,
    pub containers: Vec<WorkloadContainer>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkloadContainer {
    pub container: String,
    pub image: String,
    pub init: bool,
    pub image_pull_policy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetryPolicy {
    pub registry_attempts: u64,
    pub registry_max_wait_ms: u64,
    pub aws_mode: String,
    pub aws_attempts: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Finding {
    pub code: String,
    pub severity: Severity,
    pub summary: String,
    pub remediation: String,
    pub evidence: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Stage {
    pub name: String,
    pub status: Status,
    pub duration_ms: u64,
    pub bytes: Option<u64>,
    pub findings: Vec<Finding>,
}

/// The stage `name` of a list of stages.
pub fn stage_of<'a>(stages: &'a [Stage], name: &str) -> &'a Stage {
    stages
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stage {name} in {stages:#?}"))
}

/// The finding with `code` in a list of findings.
pub fn finding_of<'a>(findings: &'a [Finding], code: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} finding in {findings:#?}"))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Image {
    pub image: String,
    pub verdict: Verdict,
    pub reference: Reference,
    pub ecr_token: Option<EcrToken>,
    pub manifest: Option<Manifest>,
    pub blobs: Vec<Blob>,
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
    pub paths: Paths,
    pub node_cache: Option<Value>,
    #[serde(default)]
    pub api_calls: Vec<ApiCall>,
}

impl Image {
    pub fn stage(&self, name: &str) -> &Stage {
        stage_of(&self.stages, name)
    }

    /// The codes of every finding in the image's stages, then its own findings (what
    /// [`super::codes`] reads from untyped JSON).
    pub fn codes(&self) -> Vec<&str> {
        all_findings(&self.stages, &self.findings)
            .map(|f| f.code.as_str())
            .collect()
    }

    /// The finding with `code`, its stages' findings searched first.
    pub fn finding(&self, code: &str) -> &Finding {
        all_findings(&self.stages, &self.findings)
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code} finding in {self:#?}"))
    }
}

/// The findings of `stages`, then `findings`: an image's or a path's, in report order.
pub fn all_findings<'a>(
    stages: &'a [Stage],
    findings: &'a [Finding],
) -> impl Iterator<Item = &'a Finding> {
    stages.iter().flat_map(|s| &s.findings).chain(findings)
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    pub written: String,
    pub normalized: String,
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub endpoint: String,
    pub ecr: Option<EcrReference>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EcrReference {
    pub account: String,
    pub region: String,
    pub partition: String,
    pub host_form: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EcrToken {
    pub region: String,
    pub partition: String,
    pub api_endpoint: String,
    pub proxy_endpoint: Option<String>,
    pub expires_at: Option<i64>,
    pub user: String,
    pub password_format: String,
    pub password_expiration: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub index_digest: Option<String>,
    pub index_media_type: Option<String>,
    pub platform: Option<String>,
    pub available_platforms: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Blob {
    /// `config` or `layer`.
    pub kind: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub status: Status,
    pub bytes: u64,
    pub served_by: Option<String>,
    pub redirected: bool,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiCall {
    pub operation: String,
    pub outcome: String,
    pub duration_ms: u64,
    pub aws_error_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Paths {
    pub pod_identity: Status,
    pub pull_secrets: Option<SecretPath>,
    pub node_credential_provider: Option<ProviderPath>,
    pub kubelet_canary: Option<CanaryPath>,
    #[serde(default)]
    pub node_docker_config: Option<SecretPath>,
    #[serde(default)]
    pub kubelet: Option<Kubelet>,
}

/// A pull secret's or the node-wide docker config's path (`$defs/secret_path`).
#[derive(Debug, Clone, Deserialize)]
pub struct SecretPath {
    pub status: Status,
    pub source: String,
    pub entry: Option<String>,
    pub username: Option<String>,
    pub password_expires_at: Option<i64>,
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderPath {
    pub status: Status,
    pub config: String,
    pub node: Option<String>,
    pub provider: Option<String>,
    pub match_image: Option<String>,
    pub auth_key: Option<String>,
    pub username: Option<String>,
    pub password_expires_at: Option<i64>,
    pub cache_key_type: Option<String>,
    pub cache_duration: Option<String>,
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub environment_withheld: Vec<String>,
}

impl ProviderPath {
    /// The finding with `code`, its stages' findings searched first.
    pub fn finding(&self, code: &str) -> &Finding {
        all_findings(&self.stages, &self.findings)
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code} on the node provider path: {self:#?}"))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CanaryPath {
    pub status: Status,
    pub pod: String,
    pub node: Option<String>,
    pub node_labels: BTreeMap<String, String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Kubelet {
    pub status: KubeletStatus,
    pub decided_by: String,
    pub credentials: Vec<KubeletCredential>,
    pub used: Option<u64>,
    pub unknown_sources: Vec<String>,
    pub stages: Vec<Stage>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KubeletCredential {
    pub source: String,
    pub origin: String,
    pub key: Option<String>,
    pub username: Option<String>,
    pub status: Status,
}
