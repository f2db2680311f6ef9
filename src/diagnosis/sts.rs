//! Findings for a failed STS stage: the trust policy that does not admit the token (with the
//! statement that would), a missing OIDC provider, keys STS cannot fetch, a rejected token,
//! and a credential chain with no source.

use super::{Code, aws_evidence, common_aws_finding};
use crate::identity::{STS_AUDIENCE, TokenClaims};
use crate::report::Finding;
use crate::sts::StsError;

/// The trust-policy statement that admits a token with these claims.
pub fn trust_policy_statement(
    claims: &TokenClaims,
    role_account: &str,
    partition: &str,
) -> Option<String> {
    let issuer = claims.issuer_host_path()?;
    let sub = claims.subject.as_deref()?;
    let statement = serde_json::json!({
        "Effect": "Allow",
        "Principal": {"Federated": format!("arn:{partition}:iam::{role_account}:oidc-provider/{issuer}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            format!("{issuer}:sub"): sub,
            format!("{issuer}:aud"): STS_AUDIENCE,
        }},
    });
    serde_json::to_string_pretty(&statement).ok()
}

/// `(partition, account)` of an ARN.
fn arn_partition_account(arn: &str) -> Option<(&str, &str)> {
    let p: Vec<&str> = arn.splitn(6, ':').collect();
    (p.len() == 6 && p[0] == "arn").then(|| (p[1], p[4]))
}

/// Findings for a failed STS stage.
pub fn sts_findings(
    err: &StsError,
    claims: Option<&TokenClaims>,
    role_arn: Option<&str>,
) -> Finding {
    let Some(a) = err.failure() else {
        return Finding::new(
            Code::AWS_CREDENTIALS_UNAVAILABLE,
            "the default credential chain has no credential source",
        );
    };
    if let Some(f) = common_aws_finding(a) {
        return f;
    }
    let code = a.code.as_deref().unwrap_or("");
    let message = a.message.as_deref().unwrap_or("");
    let with_claims = |f: Finding| match claims {
        Some(c) => f
            .with_opt("iss", c.issuer.clone())
            .with_opt("sub", c.subject.clone())
            .with("aud", c.audiences.clone()),
        None => f,
    };
    let f = match (err, code) {
        (StsError::Credentials(_), "AccessDenied") => trust_policy_denied(claims, role_arn),
        (StsError::Credentials(_), "InvalidIdentityToken")
            if message.contains("No OpenIDConnect provider found") =>
        {
            oidc_provider_not_found(claims, role_arn)
        }
        (StsError::Credentials(_), "IDPCommunicationError")
        | (StsError::Credentials(_), "InvalidIdentityToken")
            if code == "IDPCommunicationError"
                || message.contains("verification key")
                || message.contains("thumbprint") =>
        {
            Finding::new(
                Code::STS_OIDC_KEYS_UNREACHABLE,
                format!("STS cannot verify the token: {message}"),
            )
        }
        (
            StsError::Credentials(_),
            "InvalidIdentityToken" | "ExpiredTokenException" | "IDPRejectedClaim",
        ) => Finding::new(
            Code::STS_TOKEN_REJECTED,
            format!("STS rejected the token: {code}: {message}"),
        ),
        // No AWS call failed: the chain found no source. Evidence names no operation and
        // no endpoint, since none was called.
        (StsError::Credentials(_), "") if a.kind == crate::aws::AwsFailureKind::Other => {
            return with_claims(no_credential_source(&a.detail));
        }
        (StsError::Credentials(_), "") => Finding::new(
            Code::AWS_CREDENTIALS_UNAVAILABLE,
            format!(
                "obtaining credentials failed: {}",
                a.detail.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
        ),
        _ => Finding::new(Code::STS_CALL_FAILED, a.to_string()),
    };
    with_claims(aws_evidence(f, a))
}

/// AssumeRoleWithWebIdentity was denied: the role's trust policy does not admit the token,
/// and the statement that would admit it is the fix.
fn trust_policy_denied(claims: Option<&TokenClaims>, role_arn: Option<&str>) -> Finding {
    let (partition, account) = role_arn
        .and_then(arn_partition_account)
        .unwrap_or(("aws", "<role account>"));
    let f = Finding::new(
        Code::STS_TRUST_POLICY_DENIED,
        format!(
            "the trust policy of {} does not admit {}",
            role_arn.unwrap_or("the role"),
            claims
                .and_then(|c| c.subject.as_deref())
                .unwrap_or("this token")
        ),
    )
    .with_opt("role_arn", role_arn.map(str::to_string));
    match claims.and_then(|c| trust_policy_statement(c, account, partition)) {
        Some(stmt) => f.fix(format!(
            "Add this statement to the trust policy of {} (or fix the one that should match):\n{stmt}",
            role_arn.unwrap_or("the role")
        )),
        None => f,
    }
}

/// The role's account has no IAM OIDC provider for the token's issuer.
fn oidc_provider_not_found(claims: Option<&TokenClaims>, role_arn: Option<&str>) -> Finding {
    let account = role_arn.and_then(arn_partition_account).map(|(_, a)| a);
    Finding::new(
        Code::STS_OIDC_PROVIDER_NOT_FOUND,
        format!(
            "no IAM OIDC provider for {} in account {}",
            claims
                .and_then(|c| c.issuer.as_deref())
                .unwrap_or("the token's issuer"),
            account.unwrap_or("of the role")
        ),
    )
    .with_opt("role_account", account.map(str::to_string))
}

/// The credential chain found no source: its own report (`detail`), one line per source it
/// tried, becomes one line of evidence each and a one-line summary.
fn no_credential_source(detail: &str) -> Finding {
    let tried: Vec<String> = detail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    Finding::new(
        Code::AWS_CREDENTIALS_UNAVAILABLE,
        format!(
            "obtaining credentials failed: {}",
            tried.join("; ").replace(":; ", ": ")
        ),
    )
    .with("credential_chain", tried)
}
