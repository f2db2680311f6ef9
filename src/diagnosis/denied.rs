//! AWS's access-denied sentences, parsed. Since 2021 they name the policy class that decided,
//! which is most of a diagnosis:
//!
//! `User: <principal> is not authorized to perform: <action> on resource: <resource>
//!  because no resource-based policy allows the <action> action`

/// Which kind of policy denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenialReason {
    NoIdentityPolicy,
    NoResourcePolicy,
    /// `with an explicit deny in a <kind>` (service control policy, VPC endpoint policy,
    /// permissions boundary, session policy, resource-based policy, identity-based policy).
    ExplicitDeny(String),
    Unspecified,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDenied {
    pub principal: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub reason: DenialReason,
}

fn between<'a>(s: &'a str, start: &str, end: &[&str]) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let rest = &s[from..];
    let to = end
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    Some(rest[..to].trim())
}

/// Parses an access-denied message; `None` if it is not one.
pub fn parse(message: &str) -> Option<AccessDenied> {
    if !message.contains("not authorized to perform") {
        return None;
    }
    let principal = between(message, "User: ", &[" is not authorized"]).map(str::to_string);
    let action = between(
        message,
        "to perform: ",
        &[" on resource", " because", " with an"],
    )
    .map(str::to_string);
    let resource = between(message, "on resource: ", &[" because", " with an"])
        .map(|r| r.trim_end_matches('.').to_string());
    let reason = if message.contains("because no identity-based policy allows") {
        DenialReason::NoIdentityPolicy
    } else if message.contains("because no resource-based policy allows") {
        DenialReason::NoResourcePolicy
    } else if let Some(kind) = between(message, "with an explicit deny in ", &[".", ","]) {
        DenialReason::ExplicitDeny(
            kind.trim_start_matches("a ")
                .trim_start_matches("an ")
                .to_string(),
        )
    } else {
        DenialReason::Unspecified
    };
    Some(AccessDenied {
        principal,
        action,
        resource,
        reason,
    })
}

/// `arn:<p>:sts::<acct>:assumed-role/<role>/<session>` -> `arn:<p>:iam::<acct>:role/<role>`,
/// the principal a policy names. A role path is not in the session ARN; IAM resolves the
/// role ARN without it only when the role has none.
pub fn role_arn_of(principal: &str) -> Option<String> {
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    if parts.len() != 6 || parts[2] != "sts" {
        return None;
    }
    let role = parts[5].strip_prefix("assumed-role/")?.split('/').next()?;
    Some(format!("arn:{}:iam::{}:role/{role}", parts[1], parts[4]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_cross_account_resource_policy_denial() {
        // Recorded from ECR (bottlerocket-update-operator#157 shape).
        let m = "User: arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/botocore-session-1 is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/naming-server-service because no resource-based policy allows the ecr:BatchGetImage action";
        let d = parse(m).unwrap();
        assert_eq!(d.reason, DenialReason::NoResourcePolicy);
        assert_eq!(d.action.as_deref(), Some("ecr:BatchGetImage"));
        assert_eq!(
            d.resource.as_deref(),
            Some(
                "arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/naming-server-service"
            )
        );
        assert_eq!(
            role_arn_of(d.principal.as_deref().unwrap()).as_deref(),
            Some("arn:aws:iam::111122223333:role/naming-server-ecr-pull")
        );
    }

    #[test]
    fn parses_identity_and_explicit_denials() {
        let m = "User: arn:aws:sts::818140567777:assumed-role/r/s is not authorized to perform: ecr:GetDownloadUrlForLayer on resource: arn:aws:ecr:eu-west-1:818140567777:repository/app because no identity-based policy allows the ecr:GetDownloadUrlForLayer action";
        assert_eq!(parse(m).unwrap().reason, DenialReason::NoIdentityPolicy);
        let m = "User: arn:aws:sts::818140567777:assumed-role/r/s is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:eu-west-1:818140567777:repository/app with an explicit deny in a service control policy";
        let d = parse(m).unwrap();
        assert_eq!(
            d.reason,
            DenialReason::ExplicitDeny("service control policy".into())
        );
        assert_eq!(
            d.resource.as_deref(),
            Some("arn:aws:ecr:eu-west-1:818140567777:repository/app")
        );
        let m = "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: ecr:GetAuthorizationToken on resource: * with an explicit deny in a VPC endpoint policy";
        assert_eq!(
            parse(m).unwrap().reason,
            DenialReason::ExplicitDeny("VPC endpoint policy".into())
        );
        let m = "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: sts:AssumeRoleWithWebIdentity";
        let d = parse(m).unwrap();
        assert_eq!(
            (d.action.as_deref(), d.reason),
            (
                Some("sts:AssumeRoleWithWebIdentity"),
                DenialReason::Unspecified
            )
        );
        assert_eq!(parse("Requested image not found"), None);
    }

    #[test]
    fn role_arns_come_only_from_assumed_role_sessions() {
        assert_eq!(
            role_arn_of("arn:aws-cn:sts::123456789012:assumed-role/r/s").as_deref(),
            Some("arn:aws-cn:iam::123456789012:role/r")
        );
        assert_eq!(role_arn_of("arn:aws:iam::123456789012:user/alice"), None);
        assert_eq!(role_arn_of("nonsense"), None);
    }

    /// Property tests (docs/property-tests.md): AWS error messages are outside input, so any
    /// text gives an answer, never a panic; sentences written from their parts in AWS's forms
    /// parse back to the same parts.
    mod proptests {
        use proptest::prelude::*;

        use super::*;

        fn kinds() -> Vec<&'static str> {
            vec![
                "service control policy",
                "resource control policy",
                "VPC endpoint policy",
                "permissions boundary",
                "session policy",
                "resource-based policy",
                "identity-based policy",
            ]
        }

        proptest! {
            #[test]
            fn never_panics(s in any::<String>()) {
                if let Some(p) = parse(&s).and_then(|d| d.principal) {
                    let _ = role_arn_of(&p);
                }
                let _ = role_arn_of(&s);
            }

            /// The sentence's own words, shuffled and repeated, with text between.
            #[test]
            fn never_panics_on_its_own_vocabulary(
                words in prop::collection::vec(prop::sample::select(vec![
                    "User: ", " is not authorized", "not authorized to perform", "to perform: ",
                    " on resource", "on resource: ", " because", " with an", "with an explicit deny in ",
                    "a ", "an ", ".", ",", "arn:aws:sts::1:assumed-role/", "/", ":", "é", "",
                ]), 0..16),
            ) {
                let s = words.concat();
                let _ = parse(&s);
                let _ = role_arn_of(&s);
            }

            /// Round trip over AWS's sentence forms.
            #[test]
            fn sentences_parse_back_to_their_parts(
                partition in prop::sample::select(vec!["aws", "aws-cn", "aws-us-gov"]),
                account in "[0-9]{12}",
                role in "[A-Za-z0-9+=,@_-][A-Za-z0-9+=,.@_-]{0,30}",
                session in "[A-Za-z0-9+=,.@_-]{2,30}",
                action in "(ecr|sts):[A-Za-z]{1,30}",
                resource in prop_oneof![
                    Just("*".to_string()),
                    "arn:aws:ecr:[a-z]{2}-[a-z]{4,9}-[1-9]:[0-9]{12}:repository/[a-z0-9][a-z0-9/_-]{0,30}",
                ],
                form in 0..4usize,
                kind in prop::sample::select(kinds()),
                period in any::<bool>(),
            ) {
                let principal = format!("arn:{partition}:sts::{account}:assumed-role/{role}/{session}");
                let head = format!("User: {principal} is not authorized to perform: {action} on resource: {resource}");
                let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
                let (message, reason) = match form {
                    0 => (format!("{head} because no identity-based policy allows the {action} action"), DenialReason::NoIdentityPolicy),
                    1 => (format!("{head} because no resource-based policy allows the {action} action"), DenialReason::NoResourcePolicy),
                    2 => (format!("{head} with an explicit deny in {article} {kind}"), DenialReason::ExplicitDeny(kind.to_string())),
                    _ => (head, DenialReason::Unspecified),
                };
                let message = if period { message + "." } else { message };
                let d = parse(&message).ok_or_else(|| TestCaseError::fail("not recognised"))?;
                prop_assert_eq!(d.principal.as_deref(), Some(principal.as_str()));
                prop_assert_eq!(d.action.as_deref(), Some(action.as_str()));
                prop_assert_eq!(d.resource.as_deref(), Some(resource.as_str()));
                prop_assert_eq!(d.reason, reason);
                prop_assert_eq!(
                    role_arn_of(&principal),
                    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
                );
            }

            /// Text without the phrase is never taken for a denial.
            #[test]
            fn only_denials_are_denials(s in "[^z]{0,80}") {
                prop_assume!(!s.contains("not authorized to perform"));
                prop_assert_eq!(parse(&s), None);
            }
        }
    }
}
