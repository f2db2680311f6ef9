//! Each finding the local stack can produce for real: STS and ECR errors injected by a proxy in
//! front of moto (correctly shaped AWS errors with recorded messages), registry denials from the
//! fake registry (recorded ECR bodies), unreachable endpoints and skewed clocks.

mod common;

use common::aws_proxy::{AwsProxy, Rule};
use common::fault::{Fault, FaultRegistry};
use common::*;
use serde_json::Value;

const ROLE: &str = "arn:aws:iam::818140567777:role/naming-server-ecr-pull";

/// Runs a check of the demo image with the AWS endpoint behind an error-injecting proxy.
fn with_aws_errors(rules: Vec<Rule>, shift: i64) -> (AwsProxy, Run) {
    let s = Stack::get();
    let proxy = AwsProxy::start(s.var("AWS_ENDPOINT_URL"), rules, shift);
    let url = proxy.url();
    let run = probe(
        &["check", &s.image("naming-server-service:latest")],
        &[("AWS_ENDPOINT_URL", Some(&url))],
    );
    (proxy, run)
}

fn sts_finding(r: &Value) -> &Value {
    &stage(&r["identity"]["stages"], "sts")["findings"][0]
}

#[test]
fn sts_denials_are_named_with_their_fix() {
    let cases = [
        (
            "AccessDenied",
            403,
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            "STS_TRUST_POLICY_DENIED",
        ),
        (
            "InvalidIdentityToken",
            400,
            "No OpenIDConnect provider found in your account for https://oidc.op1.openshiftapps.com/2f6a1b9c3d4e5f60",
            "STS_OIDC_PROVIDER_NOT_FOUND",
        ),
        (
            "InvalidIdentityToken",
            400,
            "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements",
            "STS_OIDC_KEYS_UNREACHABLE",
        ),
        (
            "ExpiredTokenException",
            400,
            "Token expired: current date/time 1764294000 must be before the expiration date/time 1764290400",
            "STS_TOKEN_REJECTED",
        ),
        (
            "InvalidIdentityToken",
            400,
            "Incorrect token audience",
            "STS_TOKEN_REJECTED",
        ),
    ];
    for (code, status, message, want) in cases {
        let (proxy, run) = with_aws_errors(
            vec![Rule::new(
                "AssumeRoleWithWebIdentity",
                status,
                code,
                message,
            )],
            0,
        );
        assert_eq!(run.code, 1, "{code}: {}", run.stderr);
        let r = run.report();
        let f = sts_finding(&r);
        assert_eq!(f["code"], want, "{code}: {message}: {f:#}");
        assert_eq!(f["evidence"]["aws_error_code"], code);
        assert_eq!(f["evidence"]["aws_error_message"], message);
        assert_eq!(f["evidence"]["operation"], "AssumeRoleWithWebIdentity");
        assert_eq!(
            f["evidence"]["sub"],
            "system:serviceaccount:consultingfirm:naming-server"
        );
        assert_eq!(f["evidence"]["endpoint"], proxy.addr.to_string());
        assert_eq!(r["images"][0]["verdict"], "fail");
        assert!(
            proxy
                .seen
                .lock()
                .unwrap()
                .contains(&"AssumeRoleWithWebIdentity".to_string())
        );
    }
}

#[test]
fn a_trust_policy_denial_prints_the_statement_for_this_token() {
    let (_, run) = with_aws_errors(
        vec![Rule::new(
            "AssumeRoleWithWebIdentity",
            403,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        )],
        0,
    );
    let r = run.report();
    let fix = sts_finding(&r)["remediation"].as_str().unwrap().to_string();
    assert!(fix.contains(ROLE), "{fix}");
    let json = &fix[fix.find('{').unwrap()..];
    let stmt: Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        stmt["Principal"]["Federated"],
        "arn:aws:iam::818140567777:oidc-provider/oidc.op1.openshiftapps.com/2f6a1b9c3d4e5f60"
    );
    assert_eq!(
        stmt["Condition"]["StringEquals"]["oidc.op1.openshiftapps.com/2f6a1b9c3d4e5f60:sub"],
        "system:serviceaccount:consultingfirm:naming-server"
    );
    assert_eq!(
        stmt["Condition"]["StringEquals"]["oidc.op1.openshiftapps.com/2f6a1b9c3d4e5f60:aud"],
        "sts.amazonaws.com"
    );
}

#[test]
fn caller_identity_errors_throttling_and_expired_signatures() {
    // Throttling is "could not tell" (exit 3, README "Exit codes"); the others are a "no".
    let cases = [
        ("Throttling", 400, "Rate exceeded", "AWS_THROTTLED", 3),
        (
            "SignatureDoesNotMatch",
            403,
            "Signature expired: 20261128T010000Z is now earlier than 20261128T011500Z (20261128T013000Z - 15 min.)",
            "CLOCK_SKEW",
            1,
        ),
        (
            "InvalidClientTokenId",
            403,
            "The security token included in the request is invalid.",
            "STS_CALL_FAILED",
            1,
        ),
    ];
    for (code, status, message, want, exit) in cases {
        let (_, run) = with_aws_errors(
            vec![Rule::new("GetCallerIdentity", status, code, message)],
            0,
        );
        assert_eq!(run.code, exit, "{code}");
        let r = run.report();
        let f = sts_finding(&r);
        assert_eq!(f["code"], want, "{code}");
        assert_eq!(f["severity"], "error");
        assert_eq!(f["evidence"]["operation"], "GetCallerIdentity");
        assert_eq!(
            f["evidence"]["request_id"],
            "4f1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
        );
    }
}

#[test]
fn ecr_token_denials_fail_the_ecr_token_stage() {
    let cases = [
        (
            "AccessDeniedException",
            "User: arn:aws:sts::818140567777:assumed-role/naming-server-ecr-pull/ecr-pull-probe is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action",
            "ECR_AUTH_DENIED",
        ),
        (
            "InvalidParameterException",
            "Invalid parameter at 'registryIds' failed to satisfy constraint",
            "ECR_API_ERROR",
        ),
    ];
    for (code, message, want) in cases {
        let (_, run) = with_aws_errors(
            vec![Rule::new("GetAuthorizationToken", 400, code, message)],
            0,
        );
        assert_eq!(run.code, 1);
        let r = run.report();
        let img = &r["images"][0];
        let st = stage(&img["stages"], "ecr_token");
        assert_eq!(st["status"], "fail");
        assert_eq!(st["findings"][0]["code"], want);
        assert_eq!(st["findings"][0]["evidence"]["aws_error_code"], code);
        assert_eq!(stage(&img["stages"], "registry_auth")["status"], "skip");
        assert_eq!(stage(&r["identity"]["stages"], "sts")["status"], "pass");
    }
    let (_, run) = with_aws_errors(
        vec![Rule::new(
            "GetAuthorizationToken",
            400,
            "AccessDeniedException",
            "User: arn:aws:sts::818140567777:assumed-role/naming-server-ecr-pull/s is not authorized to perform: ecr:GetAuthorizationToken on resource: * with an explicit deny in a service control policy",
        )],
        0,
    );
    let r = run.report();
    let f = finding(&r["images"][0], "ECR_AUTH_DENIED");
    assert!(
        f["remediation"]
            .as_str()
            .unwrap()
            .contains("service control policy")
    );
}

#[test]
fn a_skewed_aws_clock_is_a_warning_with_the_dates() {
    let (_, run) = with_aws_errors(vec![], -3600);
    assert_eq!(
        run.code, 0,
        "a warning does not fail the gate: {}",
        run.stderr
    );
    let r = run.report();
    let st = stage(&r["identity"]["stages"], "sts");
    assert_eq!(st["status"], "warn");
    let f = &st["findings"][0];
    assert_eq!(f["code"], "CLOCK_SKEW");
    assert!(f["summary"].as_str().unwrap().contains("ahead of"));
    assert!(f["evidence"]["server_date"].is_string() && f["evidence"]["local_time"].is_string());
    assert!(
        codes(&r["images"][0]).contains(&"CLOCK_SKEW".to_string()),
        "the ECR answer is skewed too"
    );
}

#[test]
fn an_unreachable_aws_endpoint_is_named() {
    let port = refused_port();
    let url = format!("http://127.0.0.1:{port}");
    let run = probe(
        &[
            "check",
            &Stack::get().image("naming-server-service:latest"),
            "--connect-timeout",
            "2s",
        ],
        &[("AWS_ENDPOINT_URL", Some(&url))],
    );
    assert_eq!(run.code, 3, "inconclusive: nothing was refused");
    let r = run.report();
    let f = sts_finding(&r);
    assert_eq!(f["code"], "AWS_API_UNREACHABLE", "{f:#}");
    assert_eq!(f["evidence"]["endpoint"], format!("127.0.0.1:{port}"));
    // Issue 30 point 5: the fix names the setting that gave the address, and its port.
    let fix = f["remediation"].as_str().unwrap();
    assert!(
        fix.contains("AWS_ENDPOINT_URL") && fix.contains(&format!("port {port}")),
        "{fix}"
    );
}

/// Issue 30 point 5: with no credential source at all, no AWS call was made: the evidence
/// names none, and the chain's report is one line, not `\n`-escaped paragraphs.
#[test]
fn no_credentials_at_all_name_no_call_and_read_as_one_line() {
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[
            ("AWS_ROLE_ARN", None),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
        ],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let f = sts_finding(&r);
    assert_eq!(f["code"], "AWS_CREDENTIALS_UNAVAILABLE", "{f:#}");
    assert!(f["evidence"].get("operation").is_none(), "{f:#}");
    assert!(f["evidence"].get("endpoint").is_none(), "{f:#}");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        !summary.contains('\n') && summary.contains("Environment:"),
        "{summary}"
    );
    let chain = f["evidence"]["credential_chain"].as_array().unwrap();
    assert!(
        chain
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("WebIdentityToken:")),
        "{chain:?}"
    );
}

#[test]
fn no_credential_source_at_all() {
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[
            ("AWS_ROLE_ARN", None),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
        ],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    assert_eq!(r["identity"]["mode"], "default_chain");
    assert_eq!(sts_finding(&r)["code"], "AWS_CREDENTIALS_UNAVAILABLE");
}

#[test]
fn a_token_not_valid_yet_points_at_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = good_claims();
    c["nbf"] = (now() + 3600).into();
    let path = write_token(dir.path(), "token", &c);
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[("AWS_WEB_IDENTITY_TOKEN_FILE", Some(path.to_str().unwrap()))],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    assert_eq!(
        stage(&r["identity"]["stages"], "web_identity_token")["findings"][0]["code"],
        "WEB_IDENTITY_TOKEN_NOT_YET_VALID"
    );
}

/// A check of the fake registry under the demo ECR host name.
fn against_fake(fault: Fault) -> Run {
    let s = Stack::get();
    let fake = FaultRegistry::start(fault);
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    probe(
        &["check", &s.image("faulty:latest")],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    )
}

// Recorded ECR registry answers (bottlerocket-update-operator#157, containers-roadmap#2053,
// fluxcd/flux2#643, keel#441 shapes).
const CROSS_ACCOUNT: &str = "User: arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/ecr-pull-probe is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/faulty because no resource-based policy allows the ecr:BatchGetImage action";
const NO_IDENTITY: &str = "User: arn:aws:sts::818140567777:assumed-role/naming-server-ecr-pull/ecr-pull-probe is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/faulty because no identity-based policy allows the ecr:BatchGetImage action";
const SCP: &str = "User: arn:aws:sts::818140567777:assumed-role/naming-server-ecr-pull/ecr-pull-probe is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/faulty with an explicit deny in a service control policy";
const EXPIRED: &str = "Your authorization token has expired. Reauthenticate and try again.";
const LAYER: &str = "User: arn:aws:sts::818140567777:assumed-role/naming-server-ecr-pull/ecr-pull-probe is not authorized to perform: ecr:GetDownloadUrlForLayer on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/faulty because no identity-based policy allows the ecr:GetDownloadUrlForLayer action";

#[test]
fn registry_denials_are_told_apart_by_their_text() {
    let cases = [
        (
            Fault::DenyManifest(CROSS_ACCOUNT),
            "REGISTRY_DENIED_RESOURCE_POLICY",
            "manifest",
        ),
        (
            Fault::DenyManifest(NO_IDENTITY),
            "REGISTRY_DENIED_IDENTITY_POLICY",
            "manifest",
        ),
        (
            Fault::DenyManifest(SCP),
            "REGISTRY_DENIED_EXPLICIT",
            "manifest",
        ),
        (
            Fault::DenyManifest(EXPIRED),
            "REGISTRY_TOKEN_EXPIRED",
            "manifest",
        ),
        (
            Fault::DenyManifest("requested access to the resource is denied"),
            "REGISTRY_DENIED",
            "manifest",
        ),
        (Fault::DenyLayer(LAYER), "LAYER_DENIED", "layers"),
        (Fault::Schema1Manifest, "MANIFEST_INVALID", "manifest"),
        (Fault::ManifestServerError, "REGISTRY_ERROR", "manifest"),
    ];
    for (fault, want, stage_name) in cases {
        let run = against_fake(fault);
        assert_eq!(run.code, 1, "{fault:?}");
        let r = run.report();
        let st = stage(&r["images"][0]["stages"], stage_name);
        assert_eq!(st["status"], "fail", "{fault:?}");
        assert_eq!(
            st["findings"][0]["code"], want,
            "{fault:?}: {:#}",
            st["findings"][0]
        );
    }
}

#[test]
fn a_cross_account_denial_prints_the_repository_policy_statement() {
    let r = against_fake(Fault::DenyManifest(CROSS_ACCOUNT)).report();
    let f = finding(&r["images"][0], "REGISTRY_DENIED_RESOURCE_POLICY");
    assert_eq!(
        f["evidence"]["principal"],
        "arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/ecr-pull-probe"
    );
    assert_eq!(f["evidence"]["action"], "ecr:BatchGetImage");
    let fix = f["remediation"].as_str().unwrap();
    let stmt: Value = serde_json::from_str(&fix[fix.find('{').unwrap()..]).unwrap();
    assert_eq!(
        stmt["Principal"]["AWS"],
        "arn:aws:iam::111122223333:role/naming-server-ecr-pull"
    );
    assert_eq!(
        stmt["Action"],
        serde_json::json!([
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability"
        ])
    );
    assert!(fix.contains("consultingfirm/faulty") && fix.contains("818140567777"));
}

#[test]
fn a_skewed_registry_clock_is_a_warning() {
    let run = against_fake(Fault::SkewedDate);
    assert_eq!(run.code, 0);
    let r = run.report();
    let st = stage(&r["images"][0]["stages"], "registry_auth");
    assert_eq!(st["status"], "warn");
    assert_eq!(st["findings"][0]["code"], "CLOCK_SKEW");
}

#[test]
fn a_kms_failure_is_found_through_the_ecr_api_when_the_registry_says_nothing() {
    // The registry answers a bare 500; BatchGetImage names the cause (recorded failure shape).
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::ManifestServerError);
    let failures = serde_json::json!({"images": [], "failures": [{
        "imageId": {"imageTag": "latest"},
        "failureCode": "KmsError",
        "failureReason": "The KMS key arn:aws:kms:us-east-1:818140567777:key/1234abcd is disabled."
    }]});
    let proxy = AwsProxy::start(
        s.var("AWS_ENDPOINT_URL"),
        vec![Rule::reply("BatchGetImage", failures)],
        0,
    );
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let url = proxy.url();
    let run = probe(
        &["check", &s.image("faulty:latest")],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
            ("AWS_ENDPOINT_URL", Some(&url)),
        ],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let f = &stage(&r["images"][0]["stages"], "manifest")["findings"][0];
    assert_eq!(f["code"], "KMS_ERROR", "{f:#}");
    assert_eq!(f["evidence"]["failure_code"], "KmsError");
    assert!(
        f["evidence"]["registry_finding"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    assert!(
        proxy
            .seen
            .lock()
            .unwrap()
            .contains(&"BatchGetImage".to_string())
    );
}
