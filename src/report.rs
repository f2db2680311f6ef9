//! The report: plain data, versioned, serialised as the probe's only stdout output.
//!
//! `schema/report.schema.json` describes it; bump [`SCHEMA_VERSION`] on any change a consumer
//! could notice (a new required field, a renamed value), and keep additions optional.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::Workload;
use crate::diagnosis::Code;
use crate::ecr::EcrTokenInfo;
use crate::identity::{CredentialMode, TokenClaims};
use crate::sts::Caller;

pub const SCHEMA_VERSION: &str = "1.2";

/// A unit enum's name on the wire (`web_identity`, `warning`, `dual_stack`): one spelling for
/// the report, the text output, metric labels and docs.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every image can be pulled with this identity.
    Pass,
    /// At least one image cannot: the gate says no.
    Fail,
    /// The probe could not run as asked (its configuration is wrong).
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
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

/// The canary path: what the kubelet itself did with the image in a short-lived pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryPath {
    pub status: Status,
    pub pod: String,
    pub node: Option<String>,
    pub findings: Vec<Finding>,
}

/// Each way the image could be pulled, checked side by side (since schema 1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paths {
    /// The pod's own identity: the image's `stages`.
    pub pod_identity: Status,
    /// Present when a docker config or a workload's pull secrets were given.
    pub pull_secrets: Option<SecretPath>,
    /// Present with `--canary`.
    pub kubelet_canary: Option<CanaryPath>,
}

impl Paths {
    /// What the kubelet would do: the canary's answer when it gave one, else the pull secrets'.
    pub fn kubelet(&self) -> Option<Status> {
        match self.kubelet_canary.as_ref().map(|c| c.status) {
            Some(s @ (Status::Pass | Status::Fail)) => Some(s),
            _ => self.pull_secrets.as_ref().map(|p| p.status),
        }
    }

    /// An image passes when every path checked passes (an inconclusive canary fails nothing).
    pub fn verdict(&self) -> Verdict {
        let failed = self.pod_identity != Status::Pass
            || self
                .pull_secrets
                .as_ref()
                .is_some_and(|p| p.status == Status::Fail)
            || self
                .kubelet_canary
                .as_ref()
                .is_some_and(|c| c.status == Status::Fail);
        if failed { Verdict::Fail } else { Verdict::Pass }
    }
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
    pub images: Vec<ImageReport>,
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
    /// Every finding about this image: its stages, its paths, then the summaries.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        let secrets = self
            .paths
            .pull_secrets
            .iter()
            .flat_map(|p| p.stages.iter().flat_map(|s| &s.findings).chain(&p.findings));
        let canary = self.paths.kubelet_canary.iter().flat_map(|c| &c.findings);
        self.stages
            .iter()
            .flat_map(|s| &s.findings)
            .chain(secrets)
            .chain(canary)
            .chain(&self.findings)
    }
}

/// Every finding of the report, identity first.
pub fn all_findings(report: &Report) -> impl Iterator<Item = &Finding> {
    report
        .identity
        .stages
        .iter()
        .flat_map(|s| &s.findings)
        .chain(report.images.iter().flat_map(ImageReport::all_findings))
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
pub fn run_verdict(identity: &[Stage], images: &[ImageReport]) -> Verdict {
    let findings = identity.iter().flat_map(|s| &s.findings).chain(
        images
            .iter()
            .flat_map(|i| i.stages.iter().flat_map(|s| &s.findings)),
    );
    if findings.clone().any(|f| f.code.spec().configuration_error) {
        Verdict::Error
    } else if identity.iter().any(|s| s.status == Status::Fail)
        || images.iter().any(|i| i.verdict != Verdict::Pass)
    {
        Verdict::Fail
    } else {
        Verdict::Pass
    }
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
                        pod_identity: Status::Pass,
                        pull_secrets: None,
                        kubelet_canary: None,
                    },
                    findings: vec![],
                })
                .collect(),
        }
    }
}
