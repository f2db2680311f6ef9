//! Table-driven tests of the rules, fed with recorded real error messages and bodies.

use super::*;
use crate::aws::AwsFailureKind;
use crate::ecr_token::{ImageFailure, PasswordFormat};
use crate::identity::TokenClaims;
use crate::registry::{ErrorEntry, RegistryError, Request, StatusError};
use crate::sts::StsError;

fn aws(operation: &'static str, code: Option<&str>, message: &str) -> AwsFailure {
    AwsFailure {
        operation,
        kind: if code.is_some() {
            AwsFailureKind::Service
        } else {
            AwsFailureKind::Other
        },
        code: code.map(str::to_string),
        message: Some(message.to_string()),
        http_status: Some(400),
        request_id: Some("req-1".into()),
        endpoint: "sts.us-east-1.amazonaws.com".into(),
        detail: message.to_string(),
        server_date: None,
    }
}

fn claims() -> TokenClaims {
    TokenClaims {
        issuer: Some("https://oidc.op1.openshiftapps.com/2f6a".into()),
        subject: Some("system:serviceaccount:consultingfirm:naming-server".into()),
        audiences: vec!["sts.amazonaws.com".into()],
        ..Default::default()
    }
}

const ROLE: &str = "arn:aws:iam::818140567777:role/naming-server-ecr-pull";

#[test]
fn sts_rules_name_the_cause_from_recorded_messages() {
    let cases = [
        // crossplane#5578
        (
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            Code::STS_TRUST_POLICY_DENIED,
        ),
        // aws-load-balancer-controller#2315
        (
            "InvalidIdentityToken",
            "No OpenIDConnect provider found in your account for https://oidc.op1.openshiftapps.com/2f6a",
            Code::STS_OIDC_PROVIDER_NOT_FOUND,
        ),
        // cloud-credential-operator#468
        (
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements",
            Code::STS_OIDC_KEYS_UNREACHABLE,
        ),
        (
            "InvalidIdentityToken",
            "OpenIDConnect provider's HTTPS certificate doesn't match configured thumbprint",
            Code::STS_OIDC_KEYS_UNREACHABLE,
        ),
        (
            "ExpiredTokenException",
            "Token expired: current date/time 1700000000 must be before the expiration date/time 1690000000",
            Code::STS_TOKEN_REJECTED,
        ),
        (
            "InvalidIdentityToken",
            "Incorrect token audience",
            Code::STS_TOKEN_REJECTED,
        ),
        ("Throttling", "Rate exceeded", Code::AWS_THROTTLED),
        (
            "SignatureDoesNotMatch",
            "Signature expired: 20261128T010000Z is now earlier than 20261128T011500Z (20261128T013000Z - 15 min.)",
            Code::CLOCK_SKEW,
        ),
    ];
    for (code, message, want) in cases {
        let err = StsError::Credentials(aws("AssumeRoleWithWebIdentity", Some(code), message));
        let f = sts_findings(&err, Some(&claims()), Some(ROLE));
        assert_eq!(f.code, want, "{code}: {message}");
        assert_eq!(f.severity, Severity::Error, "{code}");
        assert_eq!(f.evidence["aws_error_code"], code);
    }
}

#[test]
fn trust_policy_denial_prints_the_statement_that_would_admit_the_token() {
    let err = StsError::Credentials(aws(
        "AssumeRoleWithWebIdentity",
        Some("AccessDenied"),
        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    ));
    let f = sts_findings(&err, Some(&claims()), Some(ROLE));
    assert!(f.remediation.contains(r#""Federated": "arn:aws:iam::818140567777:oidc-provider/oidc.op1.openshiftapps.com/2f6a""#), "{}", f.remediation);
    assert!(f.remediation.contains(r#""oidc.op1.openshiftapps.com/2f6a:sub": "system:serviceaccount:consultingfirm:naming-server""#));
    assert!(
        f.remediation
            .contains(r#""oidc.op1.openshiftapps.com/2f6a:aud": "sts.amazonaws.com""#)
    );
    assert_eq!(
        f.evidence["sub"],
        "system:serviceaccount:consultingfirm:naming-server"
    );
}

#[test]
fn unreachable_aws_names_the_endpoint() {
    let mut a = aws("GetCallerIdentity", None, "");
    a.kind = AwsFailureKind::Unreachable;
    let f = sts_findings(&StsError::CallerIdentity(a), None, None);
    assert_eq!(f.code, Code::AWS_API_UNREACHABLE);
    assert_eq!(f.evidence["endpoint"], "sts.us-east-1.amazonaws.com");
    assert!(f.summary.contains("sts.us-east-1.amazonaws.com"));
}

#[test]
fn ecr_token_denials() {
    let m = "User: arn:aws:sts::818140567777:assumed-role/r/s is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action";
    let f = ecr_token_finding(&EcrError::Api(aws(
        "GetAuthorizationToken",
        Some("AccessDeniedException"),
        m,
    )));
    assert_eq!(f.code, Code::ECR_AUTH_DENIED);
    assert_eq!(
        f.evidence["principal"],
        "arn:aws:sts::818140567777:assumed-role/r/s"
    );
    let m = "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: ecr:GetAuthorizationToken on resource: * with an explicit deny in a service control policy";
    let f = ecr_token_finding(&EcrError::Api(aws(
        "GetAuthorizationToken",
        Some("AccessDeniedException"),
        m,
    )));
    assert!(f.remediation.contains("service control policy"));
    let f = ecr_token_finding(&EcrError::Api(aws(
        "GetAuthorizationToken",
        Some("ServerException"),
        "boom",
    )));
    assert_eq!(f.code, Code::ECR_API_ERROR);
}

#[test]
fn expired_ecr_tokens_warn() {
    let info = EcrTokenInfo {
        region: "us-east-1".into(),
        partition: "aws".into(),
        api_endpoint: "api.ecr.us-east-1.amazonaws.com".into(),
        proxy_endpoint: None,
        expires_at: Some(1420070400),
        user: "AWS".into(),
        password_format: PasswordFormat::Opaque,
        password_expiration: None,
    };
    let w = ecr_token_warnings(&info, 1800000000);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].code, Code::ECR_TOKEN_EXPIRED_AT_ISSUE);
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!(w[0].evidence["expires_at"], "2015-01-01T00:00:00Z");
    assert!(ecr_token_warnings(&info, 1400000000).is_empty());
}

#[test]
fn clock_skew_beyond_tolerance_only() {
    assert!(clock_skew("h", Some(1000), 1000 + CLOCK_SKEW_TOLERANCE_SECS).is_none());
    let f = clock_skew("h", Some(1000), 1000 + CLOCK_SKEW_TOLERANCE_SECS + 1).unwrap();
    assert!(f.summary.contains("ahead of"));
    assert!(
        clock_skew("h", Some(5000), 1000)
            .unwrap()
            .summary
            .contains("behind")
    );
    assert!(clock_skew("h", None, 1000).is_none());
}

fn image() -> ImageRef {
    "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest"
        .parse()
        .unwrap()
}

const HOST: &str = "818140567777.dkr.ecr.us-east-1.amazonaws.com";

fn status(request: Request, status: u16, code: &str, message: &str, host: &str) -> RegistryError {
    RegistryError::Status(StatusError {
        request,
        status,
        host: host.into(),
        errors: if code.is_empty() {
            vec![]
        } else {
            vec![ErrorEntry {
                code: code.into(),
                message: message.into(),
            }]
        },
        challenge: None,
        body: if code.is_empty() {
            message.into()
        } else {
            String::new()
        },
        retry_after: None,
    })
}

fn diagnose(err: &RegistryError, repository_exists: Option<bool>) -> Finding {
    let img = image();
    let ctx = RegistryContext {
        image: &img,
        registry_host: HOST,
        credentials: Default::default(),
        repository_exists,
    };
    registry_finding(err, &ctx)
}

#[test]
fn registry_rules_from_recorded_ecr_bodies() {
    let cross = "User: arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/s is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/naming-server-service because no resource-based policy allows the ecr:BatchGetImage action";
    let own = "User: arn:aws:sts::818140567777:assumed-role/r/s is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/naming-server-service because no identity-based policy allows the ecr:BatchGetImage action";
    let layer = "User: arn:aws:sts::818140567777:assumed-role/r/s is not authorized to perform: ecr:GetDownloadUrlForLayer on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/naming-server-service because no identity-based policy allows the ecr:GetDownloadUrlForLayer action";
    let scp = "User: arn:aws:sts::818140567777:assumed-role/r/s is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/x with an explicit deny in a VPC endpoint policy";
    let cases = [
        (
            status(
                Request::Manifest,
                403,
                "DENIED",
                "Your authorization token has expired. Reauthenticate and try again.",
                HOST,
            ),
            Code::REGISTRY_TOKEN_EXPIRED,
        ),
        (
            status(Request::Manifest, 403, "DENIED", cross, HOST),
            Code::REGISTRY_DENIED_RESOURCE_POLICY,
        ),
        (
            status(Request::Manifest, 403, "DENIED", own, HOST),
            Code::REGISTRY_DENIED_IDENTITY_POLICY,
        ),
        (
            status(Request::Blob, 403, "DENIED", layer, HOST),
            Code::LAYER_DENIED,
        ),
        (
            status(Request::Manifest, 403, "DENIED", scp, HOST),
            Code::REGISTRY_DENIED_EXPLICIT,
        ),
        (
            status(
                Request::Manifest,
                403,
                "DENIED",
                "requested access to the resource is denied",
                HOST,
            ),
            Code::REGISTRY_DENIED,
        ),
        (status(Request::Blob, 403, "", "", HOST), Code::LAYER_DENIED),
        (
            status(Request::Login, 401, "", "Not Authorized", HOST),
            Code::REGISTRY_UNAUTHORIZED,
        ),
        (
            status(
                Request::Manifest,
                404,
                "NAME_UNKNOWN",
                "The repository with name 'consultingfirm/naming-server-service' does not exist in the registry with id '818140567777'",
                HOST,
            ),
            Code::REPOSITORY_NOT_FOUND,
        ),
        (
            status(
                Request::Manifest,
                404,
                "MANIFEST_UNKNOWN",
                "Requested image not found",
                HOST,
            ),
            Code::MANIFEST_NOT_FOUND,
        ),
        (
            status(
                Request::Blob,
                403,
                "",
                "<Error><Code>AccessDenied</Code></Error>",
                "prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com",
            ),
            Code::LAYER_STORAGE_UNREACHABLE,
        ),
        (
            status(Request::Manifest, 500, "", "internal", HOST),
            Code::REGISTRY_ERROR,
        ),
        (
            status(
                Request::Manifest,
                400,
                "",
                "KmsError: The KMS key is disabled",
                HOST,
            ),
            Code::KMS_ERROR,
        ),
    ];
    for (err, want) in cases {
        let f = diagnose(&err, None);
        assert_eq!(f.code, want, "{err}: {}", f.summary);
        assert_eq!(f.severity, Severity::Error);
        assert!(f.evidence.contains_key("http_status"));
    }
}

#[test]
fn a_missing_repository_is_told_from_a_missing_tag() {
    // distribution answers MANIFEST_UNKNOWN for both; the tag list tells them apart.
    let err = status(
        Request::Manifest,
        404,
        "MANIFEST_UNKNOWN",
        "manifest unknown",
        HOST,
    );
    assert_eq!(diagnose(&err, Some(false)).code, Code::REPOSITORY_NOT_FOUND);
    assert_eq!(diagnose(&err, Some(true)).code, Code::MANIFEST_NOT_FOUND);
    assert_eq!(diagnose(&err, None).code, Code::MANIFEST_NOT_FOUND);
}

#[test]
fn cross_account_resource_denial_prints_the_repository_policy_statement() {
    let m = "User: arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/s is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/naming-server-service because no resource-based policy allows the ecr:BatchGetImage action";
    let f = diagnose(&status(Request::Manifest, 403, "DENIED", m, HOST), None);
    assert!(
        f.remediation
            .contains(r#""AWS": "arn:aws:iam::111122223333:role/naming-server-ecr-pull""#),
        "{}",
        f.remediation
    );
    assert!(f.remediation.contains("ecr:GetDownloadUrlForLayer"));
    assert!(f.remediation.contains("818140567777"));
    assert_eq!(f.evidence["action"], "ecr:BatchGetImage");
}

#[test]
fn pull_through_cache_prefixes_are_mentioned() {
    let img: ImageRef = "818140567777.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1"
        .parse()
        .unwrap();
    let ctx = RegistryContext {
        image: &img,
        registry_host: HOST,
        credentials: Default::default(),
        repository_exists: None,
    };
    let f = registry_finding(
        &status(Request::Manifest, 404, "NAME_UNKNOWN", "x", HOST),
        &ctx,
    );
    assert_eq!(f.code, Code::REPOSITORY_NOT_FOUND);
    assert_eq!(f.evidence["pull_through_cache_prefix"], "docker-hub");
    assert!(f.remediation.contains("ecr:BatchImportUpstreamImage"));
}

#[test]
fn verification_failures() {
    use crate::registry::blob::VerifyError;
    let v = |source| RegistryError::Verify {
        digest: "sha256:x".into(),
        host: HOST.into(),
        source,
    };
    assert_eq!(
        diagnose(
            &v(VerifyError::DigestMismatch {
                expected: "a".into(),
                actual: "b".into()
            }),
            None
        )
        .code,
        Code::BLOB_DIGEST_MISMATCH
    );
    assert_eq!(
        diagnose(
            &v(VerifyError::Truncated {
                expected: 5,
                received: 3
            }),
            None
        )
        .code,
        Code::BLOB_TRUNCATED
    );
    assert_eq!(
        diagnose(&v(VerifyError::Oversized { expected: 5 }), None).code,
        Code::BLOB_DIGEST_MISMATCH
    );
    let p = RegistryError::PlatformNotFound {
        wanted: "linux/s390x".into(),
        available: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
    };
    let f = diagnose(&p, None);
    assert_eq!(f.code, Code::PLATFORM_NOT_IN_INDEX);
    assert_eq!(
        f.evidence["available"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
}

#[test]
fn identity_rules() {
    let env = IdentityEnv {
        role_arn: Some(ROLE.into()),
        ..Default::default()
    };
    let insp = IdentityInspection {
        mode: env.mode(),
        claims: None,
        problems: vec![],
    };
    let f = identity_findings(&env, &insp);
    assert_eq!(f[0].code, Code::WEB_IDENTITY_NOT_CONFIGURED);
    assert_eq!(
        f[0].evidence["missing"],
        serde_json::json!(["AWS_WEB_IDENTITY_TOKEN_FILE"])
    );

    let env = IdentityEnv {
        role_arn: Some(ROLE.into()),
        token_file: Some("/t".into()),
        ..Default::default()
    };
    let insp = IdentityInspection {
        mode: env.mode(),
        claims: None,
        problems: vec![
            TokenProblem::Unreadable {
                path: "/t".into(),
                reason: "permission denied".into(),
                uid: Some(1000650000),
            },
            TokenProblem::Expired {
                expires_at: 0,
                now: 60,
            },
        ],
    };
    let f = identity_findings(&env, &insp);
    assert_eq!(
        f.iter().map(|f| f.code).collect::<Vec<_>>(),
        vec![
            Code::WEB_IDENTITY_TOKEN_UNREADABLE,
            Code::WEB_IDENTITY_TOKEN_EXPIRED
        ]
    );
    assert_eq!(f[0].evidence["uid"], 1000650000);
    assert_eq!(f[0].evidence["path"], "/t");
    assert!(f[0].code.spec().configuration_error);
    assert_eq!(f[1].evidence["exp"], "1970-01-01T00:00:00Z");
}

#[test]
fn ecr_api_failure_codes() {
    let img = image();
    let f = |code: &str| ImageFailure {
        code: code.into(),
        reason: Some("r".into()),
    };
    assert_eq!(
        ecr_image_failure(&f("KmsError"), &img).unwrap().code,
        Code::KMS_ERROR
    );
    assert_eq!(
        ecr_image_failure(&f("ImageNotFound"), &img).unwrap().code,
        Code::MANIFEST_NOT_FOUND
    );
    assert_eq!(
        ecr_image_failure(&f("UpstreamUnavailable"), &img)
            .unwrap()
            .code,
        Code::PULL_THROUGH_CACHE_UPSTREAM_UNREACHABLE
    );
    assert_eq!(
        ecr_image_failure(&f("UpstreamAccessDenied"), &img)
            .unwrap()
            .code,
        Code::PULL_THROUGH_CACHE_UPSTREAM_AUTH_FAILED
    );
    assert!(ecr_image_failure(&f("InvalidImageTag"), &img).is_none());
}

#[test]
fn path_disagreements_and_host_forms() {
    use crate::report::CredentialSource;
    // Issue 30 point 2: the finding names the failing path, not "the pull secrets".
    let f = paths_disagree(true, false, &[CredentialSource::NodeCredentialProvider]).unwrap();
    assert_eq!(f.code, Code::KUBELET_PATH_FAILS_POD_PATH_PASSES);
    assert!(
        f.summary.contains("the node's credential provider cannot"),
        "{}",
        f.summary
    );
    assert!(!f.summary.contains("pull secrets"), "{}", f.summary);
    assert_eq!(
        f.evidence["path"],
        serde_json::json!(["node_credential_provider"])
    );
    assert_eq!(
        paths_disagree(false, true, &[]).unwrap().code,
        Code::POD_PATH_FAILS_KUBELET_PATH_PASSES
    );
    assert!(paths_disagree(true, true, &[]).is_none());
    assert!(paths_disagree(false, false, &[]).is_none());
    let dual: ImageRef = "818140567777.dkr-ecr.us-east-1.on.aws/a/b:1"
        .parse()
        .unwrap();
    assert_eq!(
        node_provider_host(&dual).unwrap().code,
        Code::NODE_PROVIDER_HOST_NOT_MATCHED
    );
    assert!(node_provider_host(&image()).is_none());
}

/// distribution's token auth (Docker Hub, Harbor) answers a pull whose token grants no `pull`
/// with 401 and `error="insufficient_scope"`: the credentials were accepted, so the finding
/// must neither say they were rejected nor prescribe a new password (issue 11 point 5).
#[test]
fn insufficient_scope_names_access_not_the_password() {
    let img: ImageRef = "127.0.0.1:5000/private/small:latest".parse().unwrap();
    let err = RegistryError::Status(StatusError {
        request: Request::Manifest,
        status: 401,
        host: "127.0.0.1:5000".into(),
        errors: vec![ErrorEntry {
            code: "UNAUTHORIZED".into(),
            message: "authentication required".into(),
        }],
        challenge: Some(r#"Bearer realm="https://127.0.0.1:5001/token",service="reg",scope="repository:private/small:pull",error="insufficient_scope""#.into()),
        body: String::new(),
        retry_after: None,
    });
    let secret = CredentialsUsed::PullSecret {
        source: "--docker-config /x/config.json",
        entry: "127.0.0.1:5000",
        username: "outsider",
        ecr_expires_at: None,
    };
    let diagnose_with = |credentials| {
        registry_finding(
            &err,
            &RegistryContext {
                image: &img,
                registry_host: "127.0.0.1:5000",
                credentials,
                repository_exists: None,
            },
        )
    };
    let f = diagnose_with(secret);
    assert_eq!(f.code, Code::REGISTRY_UNAUTHORIZED);
    assert!(f.summary.contains("accepted"), "{}", f.summary);
    assert!(f.summary.contains("private/small"), "{}", f.summary);
    assert!(!f.remediation.contains("Fix the username and password"));
    assert!(f.remediation.contains("user outsider"), "{}", f.remediation);
    assert_eq!(f.evidence["challenge_error"], "insufficient_scope");
    let f = diagnose_with(CredentialsUsed::None);
    assert!(f.summary.contains("no anonymous pull"), "{}", f.summary);
    assert!(f.remediation.contains("pull secret"), "{}", f.remediation);
    assert!(!f.remediation.contains("ECR"), "{}", f.remediation);

    // A 401 from the token service itself is a refused password, as before.
    let refused = RegistryError::Status(StatusError {
        request: Request::Token,
        status: 401,
        host: "127.0.0.1:5001".into(),
        errors: vec![],
        challenge: None,
        body: r#"{"details":"incorrect username or password"}"#.into(),
        retry_after: None,
    });
    let f = registry_finding(
        &refused,
        &RegistryContext {
            image: &img,
            registry_host: "127.0.0.1:5000",
            credentials: secret,
            repository_exists: None,
        },
    );
    assert!(f.remediation.contains("Fix the username and password"));
    assert!(!f.evidence.contains_key("challenge_error"));
}
