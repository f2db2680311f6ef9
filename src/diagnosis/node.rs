//! Findings of the node provider path. Pure: what the path met in, findings out.

use super::{Code, Finding, rfc3339};
use crate::credential_provider::config::ConfigError;
use crate::credential_provider::plugin::ExecError;
use crate::reference::ImageRef;

pub fn node_provider_config_invalid(path: &str, e: &ConfigError) -> Finding {
    Finding::new(
        Code::NODE_PROVIDER_CONFIG_INVALID,
        format!("the credential provider config {path} would stop a kubelet: {e}"),
    )
    .with("config", path.to_string())
    .with("rule", e.to_string())
}

/// No provider's `matchImages` covers the image: the kubelet asks no plugin, and goes on
/// with what else its list holds (the kubelet's answer says what that does).
pub fn node_provider_no_match<'a>(
    img: &ImageRef,
    providers: impl Iterator<Item = (&'a str, &'a [String])>,
) -> Finding {
    let patterns: serde_json::Map<String, serde_json::Value> = providers
        .map(|(name, m)| (name.to_string(), serde_json::json!(m)))
        .collect();
    Finding::new(
        Code::NODE_PROVIDER_NO_MATCH,
        format!(
            "no credential provider matches {}: the kubelet sends no node credentials from a plugin",
            img.name()
        ),
    )
    .with("image_name", img.name())
    .with("match_images", serde_json::Value::Object(patterns))
}

pub fn node_provider_plugin_not_found(provider: &str, bin_dir: &str, e: &ExecError) -> Finding {
    Finding::new(
        Code::NODE_PROVIDER_PLUGIN_NOT_FOUND,
        format!("credential provider {provider}: {e}"),
    )
    .with("provider", provider.to_string())
    .with("bin_dir", bin_dir.to_string())
}

/// `stderr` must already have its secrets removed.
pub fn node_provider_plugin_failed(
    provider: &str,
    what: &str,
    exit_code: Option<i32>,
    stderr: &str,
) -> Finding {
    let first = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut f = Finding::new(
        Code::NODE_PROVIDER_PLUGIN_FAILED,
        if first.is_empty() {
            format!("credential provider {provider} failed: {what}")
        } else {
            format!(
                "credential provider {provider} failed ({what}): {}",
                first.trim()
            )
        },
    )
    .with("provider", provider.to_string())
    .with_opt("exit_code", exit_code)
    .with_opt("stderr", (!stderr.is_empty()).then(|| stderr.to_string()));
    if stderr.contains("no arn provided") {
        f = f.fix(format!(
            "Annotate the pod's ServiceAccount with `{}: <role ARN>` (v1.34.x of ecr-credential-provider refuses the pull without it; v1.35+ falls back to the node's credentials).",
            crate::credential_provider::ECR_ROLE_ANNOTATION
        ));
    } else if stderr.contains("AssumeRoleWithWebIdentity") {
        f = f.fix("The role the plugin assumes refuses the ServiceAccount token: its trust policy must allow `sts:AssumeRoleWithWebIdentity` for the cluster's OIDC provider with `sub` = `system:serviceaccount:<namespace>:<name>` and `aud` = the provider's `serviceAccountTokenAudience`.");
    } else if stderr.contains("IMDS") || stderr.contains("ec2imds") {
        f = f.fix("The plugin found no node credentials: attach an instance profile with ECR read access to the node, and run the check where the kubelet runs (host network: IMDSv2's response hop limit drops answers to a pod network).");
    }
    f
}

pub fn node_provider_response_invalid(provider: &str, problem: &str) -> Finding {
    Finding::new(
        Code::NODE_PROVIDER_RESPONSE_INVALID,
        format!("credential provider {provider} answered with something the kubelet would not use: {problem}"),
    )
    .with("provider", provider.to_string())
    .with("problem", problem.to_string())
}

pub fn node_provider_auth_miss<'a>(
    provider: &str,
    img: &ImageRef,
    keys: impl Iterator<Item = &'a str>,
) -> Finding {
    let keys: Vec<String> = keys.map(str::to_string).collect();
    Finding::new(
        Code::NODE_PROVIDER_RESPONSE_INVALID,
        format!(
            "credential provider {provider} returned no auth entry that covers {}",
            img.name()
        ),
    )
    .with("provider", provider.to_string())
    .with("auth_keys", keys)
}

pub fn node_provider_sa_annotation_missing(
    provider: &str,
    service_account: Option<&str>,
    missing: &[&str],
) -> Finding {
    Finding::new(
        Code::NODE_PROVIDER_SA_ANNOTATION_MISSING,
        format!(
            "ServiceAccount {} lacks the annotation{} {} that credential provider {provider} requires: the kubelet does not call it and pulls without the node's credentials (logged only at verbosity 5: `required annotation ... not found`)",
            service_account.unwrap_or("(the pod's)"),
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ),
    )
    .with("provider", provider.to_string())
    .with_opt("service_account", service_account.map(str::to_string))
    .with("missing", missing.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

pub fn node_provider_ecr_role_annotation(
    provider: &str,
    service_account: Option<&str>,
    irsa_role: Option<&str>,
) -> Finding {
    let sa = service_account.unwrap_or("(the pod's)");
    Finding::new(
        Code::NODE_PROVIDER_ECR_ROLE_ANNOTATION,
        match irsa_role {
            Some(role) => format!(
                "ServiceAccount {sa} has IRSA's eks.amazonaws.com/role-arn ({role}) but not eks.amazonaws.com/ecr-role-arn, which {provider} reads: v1.34.x fails the pull, v1.35+ uses the node's credentials"
            ),
            None => format!(
                "ServiceAccount {sa} has no eks.amazonaws.com/ecr-role-arn for {provider}: v1.34.x fails the pull, v1.35+ uses the node's credentials"
            ),
        },
    )
    .with("provider", provider.to_string())
    .with_opt("service_account", service_account.map(str::to_string))
    .with_opt("irsa_role_arn", irsa_role.map(str::to_string))
}

pub fn node_provider_sa_token_missing(provider: &str, audience: &str) -> Finding {
    Finding::new(
        Code::NODE_PROVIDER_SA_TOKEN_MISSING,
        format!(
            "credential provider {provider} needs a ServiceAccount token for audience {audience:?} (KEP-4412) and the probe has none"
        ),
    )
    .with("provider", provider.to_string())
    .with("audience", audience.to_string())
}

/// The token given carries other audiences than the provider's: the kubelet would request
/// one for the provider's audience, so the plugin's answer here may differ.
pub fn node_provider_audience_mismatch(
    provider: &str,
    audience: &str,
    token_audiences: &[String],
) -> Finding {
    Finding::new(
        Code::NODE_PROVIDER_SA_TOKEN_MISSING,
        format!(
            "the ServiceAccount token given is for {} but credential provider {provider} wants audience {audience:?}",
            token_audiences.join(", ")
        ),
    )
    .severity(super::Severity::Warning)
    .with("provider", provider.to_string())
    .with("audience", audience.to_string())
    .with("token_audiences", token_audiences.to_vec())
}

pub fn node_provider_token_expired(
    provider: &str,
    expires: Option<i64>,
    now: i64,
) -> Option<Finding> {
    let e = expires?;
    (e <= now).then(|| {
        Finding::new(
            Code::NODE_PROVIDER_TOKEN_EXPIRED,
            format!(
                "credential provider {provider} returned an ECR token that expired at {}",
                rfc3339(e).as_str().unwrap_or("?")
            ),
        )
        .with("provider", provider.to_string())
        .with("expired_at", rfc3339(e))
    })
}
