//! Diagnosis: typed failures plus context in, findings with cause, evidence and fix out.
//!
//! Pure functions only: no I/O, no clock (the time is a parameter), so every rule is tested
//! with recorded error bodies and messages. The catalogue of codes is in [`crate::catalogue`].

pub mod denied;
pub mod ecr_api;
mod kubelet;
pub mod lifecycle;
mod node;
pub mod node_cache;
mod policy_findings;
mod pull_through;
mod registry;
pub mod repo_policy;
mod runtime;
mod sts;
mod target;

use serde_json::Value;

pub use self::kubelet::*;
pub use self::node::*;
pub use self::registry::{CredentialsUsed, RegistryContext, registry_finding};
pub use self::runtime::runtime_message_code;
pub use self::sts::{sts_findings, trust_policy_statement};
pub use self::target::{kubelet_pull_failed, node_report_unavailable};
use crate::aws::{AwsFailure, AwsFailureKind};
pub use crate::catalogue::{CATALOGUE, Code, Spec};
use crate::ecr_token::{EcrError, EcrTokenInfo, ImageFailure};
use crate::identity::{
    CredentialMode, IdentityEnv, IdentityInspection, STS_AUDIENCE, TokenProblem,
};
use crate::pullsecret::Entry;
use crate::reference::{HostForm, ImageRef};
use crate::report::{Finding, Severity};
use crate::sts::Caller;

/// Differences between the local clock and a server's below this are normal.
pub const CLOCK_SKEW_TOLERANCE_SECS: i64 = 300;

impl Finding {
    /// A finding with the catalogue's severity and generic fix; rules refine both. Summary,
    /// fix and evidence are held to [`crate::bounds`] here, the one way a finding is made, so
    /// no rule can copy a registry's or API's text into a report whole.
    pub fn new(code: Code, summary: impl Into<String>) -> Finding {
        let spec = code.spec();
        Finding {
            code,
            severity: spec.severity,
            summary: crate::bounds::text(summary.into(), crate::bounds::MAX_TEXT),
            remediation: spec.remediation.to_string(),
            evidence: Default::default(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Finding {
        self.evidence
            .insert(key.to_string(), crate::bounds::value(value.into()));
        self
    }

    pub fn with_opt(self, key: &str, value: Option<impl Into<Value>>) -> Finding {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    pub fn fix(mut self, remediation: impl Into<String>) -> Finding {
        self.remediation = crate::bounds::text(remediation.into(), crate::bounds::MAX_TEXT);
        self
    }

    /// [`Finding::fix`] when there is one; the catalogue's otherwise.
    pub fn fix_opt(self, remediation: Option<String>) -> Finding {
        match remediation {
            Some(r) => self.fix(r),
            None => self,
        }
    }

    pub fn severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }
}

/// RFC 3339 for evidence; falls back to the number for out-of-range values.
pub fn rfc3339(unix: i64) -> Value {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(Value::from)
        .unwrap_or_else(|| Value::from(unix))
}

/// Findings of the identity stage.
pub fn identity_findings(env: &IdentityEnv, inspection: &IdentityInspection) -> Vec<Finding> {
    let mut out = Vec::new();
    let missing = env.missing_web_identity_vars();
    if matches!(
        inspection.mode,
        CredentialMode::DefaultChain | CredentialMode::Environment
    ) && !missing.is_empty()
    {
        out.push(
            Finding::new(
                Code::WEB_IDENTITY_NOT_CONFIGURED,
                format!(
                    "{} not set: credentials come from {} instead of the pod's web identity",
                    missing.join(" and "),
                    match inspection.mode {
                        CredentialMode::Environment => "AWS_ACCESS_KEY_ID in the environment",
                        _ => "the rest of the default chain",
                    }
                ),
            )
            .with("missing", missing.clone())
            .with_opt("AWS_ROLE_ARN", env.role_arn.clone()),
        );
    }
    for p in &inspection.problems {
        out.push(token_problem(p));
    }
    out
}

fn token_problem(p: &TokenProblem) -> Finding {
    match p {
        TokenProblem::Unreadable { path, reason, uid } => Finding::new(
            Code::WEB_IDENTITY_TOKEN_UNREADABLE,
            format!(
                "cannot read the web identity token {}: {reason}",
                path.display()
            ),
        )
        .with("path", path.display().to_string())
        .with("reason", reason.clone())
        .with_opt("uid", *uid),
        TokenProblem::Malformed { path, reason } => Finding::new(
            Code::WEB_IDENTITY_TOKEN_MALFORMED,
            format!("{} is not a JWT: {reason}", path.display()),
        )
        .with("path", path.display().to_string()),
        TokenProblem::Expired { expires_at, now } => Finding::new(
            Code::WEB_IDENTITY_TOKEN_EXPIRED,
            format!("the web identity token expired {} s ago", now - expires_at),
        )
        .with("exp", rfc3339(*expires_at))
        .with("now", rfc3339(*now)),
        TokenProblem::NotYetValid { not_before, now } => Finding::new(
            Code::WEB_IDENTITY_TOKEN_NOT_YET_VALID,
            format!(
                "the web identity token is valid only in {} s",
                not_before - now
            ),
        )
        .with("nbf", rfc3339(*not_before))
        .with("now", rfc3339(*now)),
        TokenProblem::AudienceMismatch { audiences } => Finding::new(
            Code::WEB_IDENTITY_AUDIENCE_MISMATCH,
            format!("the token's audience {audiences:?} lacks {STS_AUDIENCE}"),
        )
        .with("aud", audiences.clone()),
    }
}

fn aws_evidence(f: Finding, a: &AwsFailure) -> Finding {
    f.with("operation", a.operation)
        .with("endpoint", a.endpoint.clone())
        .with_opt("aws_error_code", a.code.clone())
        .with_opt("aws_error_message", a.message.clone())
        .with_opt("http_status", a.http_status)
        .with_opt("request_id", a.request_id.clone())
}

/// For an AWS endpoint that is not AWS's own name: it came from `AWS_ENDPOINT_URL` (or its
/// per-service form), and the fix is that setting and its port, not egress to AWS.
fn endpoint_override_fix(endpoint: &str) -> Option<String> {
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
    let aws = [".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".on.aws"]
        .iter()
        .any(|s| host.ends_with(s));
    if aws {
        return None;
    }
    let port = endpoint.rsplit_once(':').map_or("443", |(_, p)| p);
    Some(format!(
        "{endpoint} is the address `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL_ECR`) gives: check that it is the endpoint meant and that it answers on port {port}; unset it to reach AWS itself."
    ))
}

/// Rules any AWS call shares: reachability, throttling, clock.
fn common_aws_finding(a: &AwsFailure) -> Option<Finding> {
    let code = a.code.as_deref().unwrap_or("");
    let message = a.message.as_deref().unwrap_or("");
    let f = match a.kind {
        AwsFailureKind::Unreachable | AwsFailureKind::Timeout => Finding::new(
            Code::AWS_API_UNREACHABLE,
            format!(
                "{} could not reach {} ({})",
                a.operation,
                a.endpoint,
                if a.kind == AwsFailureKind::Timeout {
                    "timed out"
                } else {
                    "no connection"
                }
            ),
        )
        .with("detail", a.detail.clone())
        .fix_opt(endpoint_override_fix(&a.endpoint)),
        _ if matches!(
            code,
            "Throttling"
                | "ThrottlingException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
        ) =>
        {
            Finding::new(
                Code::AWS_THROTTLED,
                format!("{} was throttled: {message}", a.operation),
            )
        }
        _ if message.contains("Signature expired") || code == "RequestExpired" => Finding::new(
            Code::CLOCK_SKEW,
            format!(
                "{} was refused because the request time is off: {message}",
                a.operation
            ),
        )
        .severity(Severity::Error),
        _ => return None,
    };
    Some(aws_evidence(f, a))
}

/// The finding for a failed GetAuthorizationToken.
pub fn ecr_token_finding(err: &EcrError) -> Finding {
    match err {
        EcrError::Api(a) => {
            if let Some(f) = common_aws_finding(a) {
                return f;
            }
            let message = a.message.as_deref().unwrap_or("");
            let f = match a.code.as_deref() {
                Some("AccessDeniedException" | "AccessDenied") => {
                    let mut f = Finding::new(
                        Code::ECR_AUTH_DENIED,
                        format!("GetAuthorizationToken was denied: {message}"),
                    );
                    if let Some(d) = denied::parse(message) {
                        f = f.with_opt("principal", d.principal);
                        if let denied::DenialReason::ExplicitDeny(kind) = d.reason {
                            f = f.fix(format!(
                                "An explicit deny in a {kind} blocks ecr:GetAuthorizationToken for this principal: change that policy."
                            ));
                        }
                    }
                    f
                }
                _ => Finding::new(Code::ECR_API_ERROR, a.to_string()),
            };
            aws_evidence(f, a)
        }
        // The chain, not the error alone: an unusable token says why in its source.
        other => Finding::new(Code::ECR_API_ERROR, crate::error_chain(other)),
    }
}

/// A finding from BatchGetImage's failure code, when it names what the registry did not.
pub fn ecr_image_failure(f: &ImageFailure, image: &ImageRef) -> Option<Finding> {
    let reason = f.reason.clone().unwrap_or_default();
    let finding = match f.code.as_str() {
        "KmsError" => Finding::new(
            Code::KMS_ERROR,
            format!(
                "ECR cannot decrypt {} with its KMS key: {reason}",
                image.repository
            ),
        ),
        "ImageNotFound" => Finding::new(
            Code::MANIFEST_NOT_FOUND,
            format!(
                "ECR has no image {}:{}",
                image.repository,
                image.manifest_reference()
            ),
        ),
        // A pull-through cache's first pull (ECR API reference, ImageFailure.failureCode).
        "UpstreamAccessDenied" => Finding::new(
            Code::PULL_THROUGH_CACHE_UPSTREAM_AUTH_FAILED,
            format!(
                "ECR was refused by the upstream registry of the pull-through cache for {}: {reason}",
                image.repository
            ),
        ),
        "UpstreamUnavailable" => Finding::new(
            Code::PULL_THROUGH_CACHE_UPSTREAM_UNREACHABLE,
            format!(
                "ECR could not reach the upstream registry of the pull-through cache for {}: {reason}",
                image.repository
            ),
        ),
        "UpstreamTooManyRequests" => Finding::new(
            Code::ECR_THROTTLED,
            format!(
                "the upstream registry of the pull-through cache for {} throttled ECR: {reason}",
                image.repository
            ),
        )
        .severity(Severity::Error),
        _ => return None,
    };
    Some(
        finding
            .with("operation", "BatchGetImage")
            .with("failure_code", f.code.clone())
            .with("failure_reason", reason),
    )
}

/// Warnings about a token that was issued fine.
pub fn ecr_token_warnings(info: &EcrTokenInfo, now: i64) -> Vec<Finding> {
    let expiry = [info.expires_at, info.password_expiration]
        .into_iter()
        .flatten()
        .min();
    match expiry {
        Some(t) if t <= now => vec![
            Finding::new(
                Code::ECR_TOKEN_EXPIRED_AT_ISSUE,
                format!(
                    "the ECR token for {} expired before it arrived",
                    info.region
                ),
            )
            .with("expires_at", rfc3339(t))
            .with("now", rfc3339(now))
            .with_opt("proxy_endpoint", info.proxy_endpoint.clone()),
        ],
        _ => vec![],
    }
}

/// A warning when a server's clock and ours disagree.
pub fn clock_skew(host: &str, server_date: Option<i64>, now: i64) -> Option<Finding> {
    let server = server_date?;
    let skew = now - server;
    (skew.abs() > CLOCK_SKEW_TOLERANCE_SECS).then(|| {
        Finding::new(
            Code::CLOCK_SKEW,
            format!(
                "the local clock is {} s {} {host}'s",
                skew.abs(),
                if skew > 0 { "ahead of" } else { "behind" }
            ),
        )
        .with("host", host.to_string())
        .with("server_date", rfc3339(server))
        .with("local_time", rfc3339(now))
    })
}

/// The retries a stage made, when it made any (a warning: the last try decides the stage).
pub fn registry_retried(causes: &[String]) -> Option<Finding> {
    (!causes.is_empty()).then(|| {
        Finding::new(
            Code::REGISTRY_RETRIED,
            format!(
                "retried {} time{} after transient failures: {}",
                causes.len(),
                if causes.len() == 1 { "" } else { "s" },
                causes.join("; ")
            ),
        )
        .with("retries", causes.len())
        .with("causes", causes.to_vec())
    })
}

pub fn deadline_exceeded(stage: &str, timeout_secs: f64) -> Finding {
    Finding::new(
        Code::DEADLINE_EXCEEDED,
        format!("the {timeout_secs} s deadline passed during the {stage} stage"),
    )
    .with("stage", stage.to_string())
    .with("timeout_seconds", timeout_secs)
}

pub fn not_ecr(image: &ImageRef) -> Finding {
    Finding::new(
        Code::REGISTRY_NOT_ECR,
        format!(
            "{} is not an Amazon ECR registry: no ECR token applies",
            image.registry
        ),
    )
    .with("registry", image.registry.clone())
}

pub fn pull_secret_missing(namespace: &str, name: &str, referenced_by: &str) -> Finding {
    Finding::new(
        Code::PULL_SECRET_MISSING,
        format!(
            "pull secret {namespace}/{name}, referenced by the {referenced_by}, does not exist"
        ),
    )
    .with("secret", format!("{namespace}/{name}"))
    .with("referenced_by", referenced_by.to_string())
}

pub fn cluster_read_failed(kind: &str, namespace: &str, name: &str, detail: &str) -> Finding {
    Finding::new(
        Code::CLUSTER_READ_FAILED,
        format!("cannot read {kind} {namespace}/{name}: {detail}"),
    )
    .with("object", format!("{kind} {namespace}/{name}"))
}

pub fn pull_secret_no_match(
    image: &ImageRef,
    entries: &[Entry],
    other: Option<(&Entry, String)>,
) -> Finding {
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    let f = match other {
        Some((e, region)) => Finding::new(
            Code::PULL_SECRET_WRONG_REGION,
            format!(
                "the pull secret has {} (region {region}) but the image is in {}",
                e.key,
                image
                    .ecr
                    .as_ref()
                    .map_or("another region", |h| h.region.as_str())
            ),
        )
        .with("entry_region", region),
        None => Finding::new(
            Code::PULL_SECRET_NO_MATCH,
            format!("no pull-secret entry covers {}", image.registry),
        ),
    };
    f.with("registry", image.registry.clone())
        .with("keys", keys)
}

pub fn pull_secret_expired(entry: &Entry, now: i64) -> Option<Finding> {
    let exp = entry.ecr_password_expiration.filter(|e| *e <= now)?;
    Some(
        Finding::new(
            Code::PULL_SECRET_TOKEN_EXPIRED,
            format!(
                "the ECR token for {} expired {} s ago",
                entry.key,
                now - exp
            ),
        )
        .with("entry", entry.key.clone())
        .with("expired_at", rfc3339(exp))
        .with("now", rfc3339(now)),
    )
}

/// The kubelet could not pull in the canary pod. The finding's code is what the runtime's
/// message stands for (`REGISTRY_UNAUTHORIZED`, `MANIFEST_NOT_FOUND`, ...), so the canary's
/// findings compare with the other paths'; `KUBELET_CANARY_PULL_FAILED` when the message says
/// too little. The kubelet's text is kept verbatim either way.
pub fn canary_pull_failed(pod: &str, node: Option<&str>, reason: &str, message: &str) -> Finding {
    let code = runtime_message_code(message);
    let mut f = Finding::new(
        code.unwrap_or(Code::KUBELET_CANARY_PULL_FAILED),
        format!(
            "the kubelet on {} could not pull: {reason}: {message}",
            node.unwrap_or("the node")
        ),
    )
    .with("pod", pod.to_string())
    .with_opt("node", node.map(str::to_string))
    .with("reason", reason.to_string())
    .with("kubelet_message", message.to_string())
    .with("path", "kubelet_canary");
    // Where the runtime is the odd one out (tests/runtime.rs holds both against containerd):
    // its HEAD request gets no body, so it cannot say what the registry's GET says.
    let limit = match code {
        Some(Code::MANIFEST_NOT_FOUND) => Some(
            "the runtime says `not found` for a missing tag and a missing repository alike; the other paths' GET tells which",
        ),
        Some(Code::REGISTRY_DENIED) => Some(
            "the runtime's HEAD gets no body, so it cannot say why the registry refused (an expired token, a policy); the other paths' GET names the reason",
        ),
        _ => None,
    };
    f = f.with_opt("runtime_limit", limit);
    if code.is_some() {
        f = f.fix(format!(
            "{} This is the kubelet's own pull (in a canary pod), so the credentials were the node's or the pull secrets'.",
            Code::KUBELET_CANARY_PULL_FAILED.spec().remediation
        ));
    }
    f
}

pub fn canary_inconclusive(pod: &str, reason: &str) -> Finding {
    Finding::new(
        Code::CANARY_INCONCLUSIVE,
        format!("the canary pod gave no answer: {reason}"),
    )
    .with("pod", pod.to_string())
    .with("reason", reason.to_string())
}

/// A warning for ECR host forms the node credential provider's default patterns miss.
pub fn node_provider_host(image: &ImageRef) -> Option<Finding> {
    let e = image.ecr.as_ref()?;
    matches!(e.form, HostForm::DualStack | HostForm::DualStackFips).then(|| {
        Finding::new(
            Code::NODE_PROVIDER_HOST_NOT_MATCHED,
            format!("{} is a dual-stack ECR host, which the default node credential provider patterns do not match", image.registry),
        )
        .with(
            "default_match_images",
            vec![
                "*.dkr.ecr.*.amazonaws.com",
                "*.dkr.ecr.*.amazonaws.com.cn",
                "*.dkr.ecr-fips.*.amazonaws.com",
                "*.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                "*.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
            ],
        )
    })
}

/// The finding that answers the incident: the pod can pull, the kubelet might not.
pub fn pod_identity_can_pull(image: &ImageRef, caller: Option<&Caller>) -> Finding {
    let principal = caller.map(|c| c.arn.clone());
    let ecr_account = image.ecr.as_ref().map(|e| e.account.clone());
    let cross_account = match (caller, &ecr_account) {
        (Some(c), Some(a)) => Some(&c.account != a),
        _ => None,
    };
    Finding::new(
        Code::POD_IDENTITY_CAN_PULL,
        format!(
            "{} can pull {}; the kubelet pulls with the node's credentials or pull secrets, not with this identity (unless a KEP-4412 provider assumes a role for the ServiceAccount)",
            principal.as_deref().unwrap_or("this identity"),
            image.original
        ),
    )
    .with_opt("principal", principal)
    .with_opt("image_account", ecr_account)
    .with_opt("cross_account", cross_account)
}

#[cfg(test)]
mod tests;
