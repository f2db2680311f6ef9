//! Issue 26: what ECR itself can tell after a failed pull. moto holds the ECR side
//! (DescribeImages, GetLifecyclePolicy, GetRepositoryPolicy, DescribeRepositories) and the
//! stack's docker-registry or the fault registry the registry side; the AWS proxy of
//! tests/common answers what moto does not implement (archive status, pull-through cache
//! rules, throttling, AccessDenied) with the API reference's documented shapes.
//!
//! moto's ECR state is shared by the tests of one stack: each test has repositories of its
//! own.

mod common;

use std::io::{Read as _, Write as _};

use common::aws_proxy::{AwsProxy, Rule};
use common::fault::{Fault, FaultRegistry};
use common::*;
use serde_json::{Value, json};

const ACCOUNT: &str = "818140567777";

/// One ECR API call straight to moto (JSON 1.1), as account 818140567777 in `region`; moto
/// checks no signature. Returns the status and the body.
fn moto(op: &str, region: &str, body: Value) -> (u16, Value) {
    let s = Stack::get();
    let addr = s
        .var("AWS_ENDPOINT_URL")
        .trim_start_matches("http://")
        .to_string();
    let body = body.to_string();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AmazonEC2ContainerRegistry_V20150921.{op}\r\nx-moto-account-id: {ACCOUNT}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261202/{region}/ecr/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// A repository in moto (it may exist from an earlier run of the same stack).
fn repository(name: &str, region: &str) {
    let (st, b) = moto("CreateRepository", region, json!({"repositoryName": name}));
    assert!(
        st == 200 || b["__type"].as_str().unwrap_or("").contains("AlreadyExists"),
        "{b}"
    );
}

/// An image with `tag` in moto's repository, its digest made from the tag.
fn put_image(name: &str, tag: &str) {
    let layer = format!(
        "sha256:{:0>64}",
        tag.bytes().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2, "digest": layer},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2, "digest": layer}]
    });
    let (st, b) = moto(
        "PutImage",
        "us-east-1",
        json!({"repositoryName": name, "imageTag": tag, "imageManifest": manifest.to_string()}),
    );
    assert!(
        st == 200 || b["__type"].as_str().unwrap_or("").contains("AlreadyExists"),
        "{b}"
    );
}

fn api_calls(image: &Value) -> Vec<(String, String)> {
    image["api_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["operation"].as_str().unwrap().to_string(),
                c["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(op: &str, outcome: &str) -> (String, String) {
    (op.to_string(), outcome.to_string())
}

/// A check of `image` with the AWS endpoint behind the proxy's `rules` (none: moto as is).
fn check_via_proxy(image: &str, rules: Vec<Rule>, env: &[(&str, Option<&str>)]) -> (AwsProxy, Run) {
    let s = Stack::get();
    let proxy = AwsProxy::start(s.var("AWS_ENDPOINT_URL"), rules, 0);
    let url = proxy.url();
    let mut e: Vec<(&str, Option<&str>)> = vec![("AWS_ENDPOINT_URL", Some(&url))];
    e.extend_from_slice(env);
    let run = probe(&["check", image], &e);
    (proxy, run)
}

/// A deleted tag whose lifecycle rule selects it: the finding names rule 1 and the tags
/// still there. The registry says only `MANIFEST_UNKNOWN`.
#[test]
fn a_deleted_tag_a_lifecycle_rule_selects_is_named_with_the_rule() {
    let s = Stack::get();
    let repo = "consultingfirm/scheduler";
    repository(repo, "us-east-1");
    let policy = json!({"rules": [
        {"rulePriority": 1, "description": "Expire release candidates after 14 days",
         "selection": {"tagStatus": "tagged", "tagPrefixList": ["rc-"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
         "action": {"type": "expire"}},
    ]});
    let (st, b) = moto(
        "PutLifecyclePolicy",
        "us-east-1",
        json!({"repositoryName": repo, "lifecyclePolicyText": policy.to_string()}),
    );
    assert_eq!(st, 200, "{b}");
    for t in ["v2.0.0", "v2.1.0", "rc-41"] {
        put_image(repo, t);
    }
    // What the rule would have done, done by hand: moto runs no lifecycle policies.
    let (st, b) = moto(
        "BatchDeleteImage",
        "us-east-1",
        json!({"repositoryName": repo, "imageIds": [{"imageTag": "rc-41"}]}),
    );
    assert_eq!(st, 200, "{b}");

    let run = check(&[&s.image("scheduler:rc-41")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.report();
    let img = &r["images"][0];
    assert_eq!(
        stage(&img["stages"], "manifest")["findings"][0]["code"],
        "MANIFEST_NOT_FOUND"
    );
    let f = finding(img, "TAG_EXPIRED_BY_LIFECYCLE");
    assert_eq!(f["evidence"]["rule"]["rule_priority"], 1, "{f:#}");
    assert!(f["summary"].as_str().unwrap().contains("rule 1"), "{f:#}");
    let fix = f["remediation"].as_str().unwrap();
    assert!(
        fix.contains("`v2.1.0`") && fix.contains("`v2.0.0`"),
        "{fix}"
    );
    assert!(!codes(img).contains(&"TAG_NEVER_PUSHED".to_string()));
    assert_eq!(
        api_calls(img),
        [
            pair("DescribeImages", "not_found"),
            pair("DescribeImages", "ok"),
            pair("GetLifecyclePolicy", "ok"),
        ]
    );
}

/// A tag never pushed, in a repository whose lifecycle policy selects no such tag.
#[test]
fn a_tag_never_pushed_says_so_and_names_the_tags_there() {
    let s = Stack::get();
    let repo = "consultingfirm/search-service";
    repository(repo, "us-east-1");
    let policy = json!({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
         "action": {"type": "expire"}},
    ]});
    let (st, b) = moto(
        "PutLifecyclePolicy",
        "us-east-1",
        json!({"repositoryName": repo, "lifecyclePolicyText": policy.to_string()}),
    );
    assert_eq!(st, 200, "{b}");
    put_image(repo, "v3.2.1");
    let run = check(&[&s.image("search-service:v9.9.9")]);
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "TAG_NEVER_PUSHED");
    assert!(
        f["summary"].as_str().unwrap().contains("never pushed"),
        "{f:#}"
    );
    assert!(
        f["remediation"].as_str().unwrap().contains("`v3.2.1`"),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["recent_tags"][0]["tag"], "v3.2.1");
    assert!(!codes(img).contains(&"TAG_EXPIRED_BY_LIFECYCLE".to_string()));
}

/// The registry's denial names a role of another account, as ECR's does
/// (bottlerocket-update-operator#157 shape).
const DENIED: &str = "User: arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/ecr-pull-probe is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/faulty because no resource-based policy allows the ecr:BatchGetImage action";

fn denied_with_policy(repo: &str, policy: Option<&str>) -> Value {
    let s = Stack::get();
    repository(&format!("consultingfirm/{repo}"), "us-east-1");
    if let Some(p) = policy {
        let (st, b) = moto(
            "SetRepositoryPolicy",
            "us-east-1",
            json!({"repositoryName": format!("consultingfirm/{repo}"), "policyText": p}),
        );
        assert_eq!(st, 200, "{b}");
    }
    let fake = FaultRegistry::start(Fault::DenyManifest(DENIED));
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let run = probe(
        &["check", &s.image(&format!("{repo}:latest"))],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.report()["images"][0].clone()
}

/// The seed's first repository policy, as we read it: statement `CrossAccountPull` names
/// the root of the repository's own account, not the role of the cluster's account.
const SEED_ROOT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossAccountPull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::818140567777:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;
/// The seed's second: the role added to that statement.
const SEED_ROLE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossAccountPull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::818140567777:root","arn:aws:iam::111122223333:role/naming-server-ecr-pull"]},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;

#[test]
fn a_policy_naming_the_account_root_but_not_the_role_says_which_statement_lacks_it() {
    let img = denied_with_policy("i26-policy-root", Some(SEED_ROOT_POLICY));
    let f = finding(&img, "REPOSITORY_POLICY_MISSES_PRINCIPAL");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("the role arn:aws:iam::111122223333:role/naming-server-ecr-pull is missing from statement CrossAccountPull"),
        "{summary}"
    );
    let fix = f["remediation"].as_str().unwrap();
    let stmt: Value = serde_json::from_str(&fix[fix.find('{').unwrap()..]).unwrap();
    assert_eq!(
        stmt["Principal"]["AWS"],
        json!([
            "arn:aws:iam::818140567777:root",
            "arn:aws:iam::111122223333:role/naming-server-ecr-pull"
        ])
    );
    assert_eq!(
        f["evidence"]["pull_statements"][0]["sid"],
        "CrossAccountPull"
    );
    assert_eq!(api_calls(&img), [pair("GetRepositoryPolicy", "ok")]);
}

#[test]
fn a_policy_naming_the_role_passes_it_and_points_elsewhere() {
    let img = denied_with_policy("i26-policy-role", Some(SEED_ROLE_POLICY));
    let f = finding(&img, "REPOSITORY_POLICY_NAMES_PRINCIPAL");
    assert_eq!(f["severity"], "info");
    assert_eq!(
        f["evidence"]["pull_statements"][0]["names_principal"],
        "role"
    );
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("the refusal comes from elsewhere")
    );
    assert!(!codes(&img).contains(&"REPOSITORY_POLICY_MISSES_PRINCIPAL".to_string()));
}

#[test]
fn a_repository_without_a_policy_gets_the_statement_to_add() {
    let img = denied_with_policy("i26-policy-none", None);
    let f = finding(&img, "REPOSITORY_POLICY_MISSES_PRINCIPAL");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("has no repository policy"),
        "{f:#}"
    );
    assert_eq!(api_calls(&img), [pair("GetRepositoryPolicy", "not_found")]);
}

/// A repository pushed to another region: the pod's region has it.
#[test]
fn a_repository_in_another_region_is_found_there() {
    let s = Stack::get();
    repository("consultingfirm/i26-elsewhere", "us-west-2");
    let run = probe(
        &["check", &s.image("i26-elsewhere:v1")],
        &[
            ("AWS_REGION", Some("us-west-2")),
            ("AWS_DEFAULT_REGION", Some("us-west-2")),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "REPOSITORY_ELSEWHERE");
    assert_eq!(f["evidence"]["found_in"][0]["region"], "us-west-2", "{f:#}");
    assert!(
        f["remediation"]
            .as_str()
            .unwrap()
            .contains("818140567777.dkr.ecr.us-west-2.amazonaws.com/consultingfirm/i26-elsewhere")
    );
}

/// DescribeImages of an archived image (API reference, ImageDetail: `imageStatus`,
/// `lastArchivedAt`); moto has no archive storage class.
#[test]
fn an_archived_image_is_named_with_how_to_restore_it() {
    let s = Stack::get();
    let detail = json!({"imageDetails": [{
        "registryId": ACCOUNT,
        "repositoryName": "consultingfirm/naming-server-service",
        "imageDigest": "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
        "imageTags": ["v0.9.0"],
        "imageSizeInBytes": 2814545,
        "imagePushedAt": 1764000000.0,
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "imageStatus": "ARCHIVED",
        "lastArchivedAt": 1790000000.0
    }]});
    let (proxy, run) = check_via_proxy(
        &s.image("naming-server-service:v0.9.0"),
        vec![Rule::reply("DescribeImages", detail)],
        &[],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "IMAGE_ARCHIVED");
    assert_eq!(f["evidence"]["image_status"], "ARCHIVED");
    assert!(
        f["remediation"]
            .as_str()
            .unwrap()
            .contains("update-image-storage-class"),
        "{f:#}"
    );
    assert!(
        proxy
            .seen
            .lock()
            .unwrap()
            .contains(&"DescribeImages".to_string())
    );
}

/// Pull-through cache rules (API reference, DescribePullThroughCacheRules response), which
/// moto does not implement: a cache repository not created yet is the first pull's import.
#[test]
fn pull_through_cache_rules_explain_a_cache_repository_not_there_yet() {
    let s = Stack::get();
    let rules = |prefix: &str| {
        json!({"pullThroughCacheRules": [{
            "ecrRepositoryPrefix": prefix,
            "upstreamRegistryUrl": "registry-1.docker.io",
            "createdAt": 1764000000.0,
            "registryId": ACCOUNT,
            "credentialArn": "arn:aws:secretsmanager:us-east-1:818140567777:secret:ecr-pullthroughcache/docker-hub-AbCdEf",
            "upstreamRegistry": "docker-hub"
        }]})
    };
    let image = s.var("STACK_ECR_HOST").to_string() + "/docker-hub/library/nginx:1.27";
    let (_p, run) = check_via_proxy(
        &image,
        vec![Rule::reply(
            "DescribePullThroughCacheRules",
            rules("docker-hub"),
        )],
        &[],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "PULL_THROUGH_CACHE_IMPORT_DENIED");
    assert_eq!(f["evidence"]["cache_rule_prefix"], "docker-hub");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("ecr:BatchImportUpstreamImage")
    );
    assert_eq!(
        api_calls(img),
        [pair("DescribePullThroughCacheRules", "ok")]
    );

    // No rule for the prefix: nothing will ever import it.
    let (_p, run) = check_via_proxy(
        &image,
        vec![Rule::reply("DescribePullThroughCacheRules", rules("quay"))],
        &[],
    );
    let r = run.report();
    let img = &r["images"][0];
    assert!(
        codes(img).contains(&"PULL_THROUGH_CACHE_RULE_MISSING".to_string()),
        "{:?}",
        codes(img)
    );
}

/// The upstream credentials failed (the text of aws/containers-roadmap#2354), and the rule's
/// secret is not named as ECR requires.
#[test]
fn an_upstream_authentication_failure_names_the_rules_secret() {
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::DenyManifest(
        "The authentication to the upstream registry failed. Verify that the credentials provided in the pull through cache rule are correct, and try again.",
    ));
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let rules = json!({"pullThroughCacheRules": [{
        "ecrRepositoryPrefix": "docker-hub",
        "upstreamRegistryUrl": "registry-1.docker.io",
        "registryId": ACCOUNT,
        "credentialArn": "arn:aws:secretsmanager:us-east-1:818140567777:secret:dockerhub-token-AbCdEf",
        "upstreamRegistry": "docker-hub"
    }]});
    let image = s.var("STACK_ECR_HOST").to_string() + "/docker-hub/library/nginx:1.27";
    let (_p, run) = check_via_proxy(
        &image,
        vec![Rule::reply("DescribePullThroughCacheRules", rules)],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "PULL_THROUGH_CACHE_UPSTREAM_AUTH_FAILED");
    assert!(
        f["evidence"]["credential_problem"]
            .as_str()
            .unwrap()
            .contains("does not begin with `ecr-pullthroughcache/`"),
        "{f:#}"
    );
}

/// An identity that may not read the lifecycle policy is told which permission would have
/// told (the AccessDeniedException shape of the ECR API).
#[test]
fn a_refused_question_names_the_permission_that_would_have_told() {
    let s = Stack::get();
    let message = "User: arn:aws:sts::818140567777:assumed-role/naming-server-ecr-pull/ecr-pull-probe is not authorized to perform: ecr:GetLifecyclePolicy on resource: arn:aws:ecr:us-east-1:818140567777:repository/consultingfirm/report-service because no identity-based policy allows the ecr:GetLifecyclePolicy action";
    repository("consultingfirm/report-service", "us-east-1");
    let (_p, run) = check_via_proxy(
        &s.image("report-service:v0.0.1-gone"),
        vec![Rule::new(
            "GetLifecyclePolicy",
            400,
            "AccessDeniedException",
            message,
        )],
        &[],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "ECR_API_NOT_PERMITTED");
    assert_eq!(f["evidence"]["permission"], "ecr:GetLifecyclePolicy");
    assert!(api_calls(img).contains(&pair("GetLifecyclePolicy", "denied")));
    assert!(
        !codes(img).contains(&"TAG_NEVER_PUSHED".to_string()),
        "not claimed without the policy"
    );
}

/// The registry's 429 with `Retry-After`: retried after the second it asked, the pull passes,
/// and the finding names the rate in force.
#[test]
fn registry_throttling_is_retried_as_asked_and_named() {
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::ThrottledManifestOnce);
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let started = std::time::Instant::now();
    let run = probe(
        &["check", &s.image("faulty:latest"), "--registry-rate", "5"],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After: 1 honoured"
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "ECR_THROTTLED");
    assert_eq!(f["severity"], "warning");
    assert!(
        f["evidence"]["causes"][0]
            .as_str()
            .unwrap()
            .contains("waited 1000 ms as its Retry-After asked"),
        "{f:#}"
    );
    assert!(
        f["remediation"]
            .as_str()
            .unwrap()
            .contains("at most 5 requests per second"),
        "{f:#}"
    );
    assert_eq!(fake.requests_for("/manifests/"), 2);

    // Throttled on every try: the pull fails, and the finding says so.
    let fake = FaultRegistry::start(Fault::ThrottledLayer);
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let run = probe(
        &["check", &s.image("faulty:latest")],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let f = finding(&r["images"][0], "ECR_THROTTLED");
    assert_eq!(f["severity"], "error", "{f:#}");
    assert_eq!(f["evidence"]["retries"], 2);
    // Blob retries honour Retry-After too (they waited the exponential backoff before).
    for c in f["evidence"]["causes"].as_array().unwrap() {
        assert!(
            c.as_str()
                .unwrap()
                .contains("waited 1000 ms as its Retry-After asked"),
            "{c}"
        );
    }
}

/// The ECR API's ThrottlingException on the probe's own question: the SDK's retries, then
/// no further question, and a finding of its own.
#[test]
fn api_throttling_stops_the_questions() {
    let s = Stack::get();
    let (proxy, run) = check_via_proxy(
        &s.image("naming-server-service:v0.0.2-gone"),
        vec![Rule::new(
            "DescribeImages",
            400,
            "ThrottlingException",
            "Rate exceeded",
        )],
        &[],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "ECR_THROTTLED");
    assert_eq!(f["evidence"]["operation"], "DescribeImages");
    assert_eq!(api_calls(img), [pair("DescribeImages", "throttled")]);
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(
        !seen.contains(&"GetLifecyclePolicy".to_string()),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|o| *o == "DescribeImages").count(),
        3,
        "the SDK's 3 tries"
    );
}

/// The first pull of an uncached image when ECR cannot reach the upstream (a PrivateLink-only
/// network with no route out): BatchGetImage's `UpstreamUnavailable` (API reference,
/// ImageFailure.failureCode) names what the registry's bare 500 does not.
#[test]
fn an_unreachable_upstream_is_named_through_batch_get_image() {
    let s = Stack::get();
    let fake = FaultRegistry::start(Fault::ManifestServerError);
    let endpoint = format!("{}=http://{}", s.var("STACK_ECR_HOST"), fake.addr);
    let failures = json!({"images": [], "failures": [{
        "imageId": {"imageTag": "1.27"},
        "failureCode": "UpstreamUnavailable",
        "failureReason": "The upstream registry is unavailable."
    }]});
    let image = s.var("STACK_ECR_HOST").to_string() + "/docker-hub/library/nginx:1.27";
    let (_p, run) = check_via_proxy(
        &image,
        vec![Rule::reply("BatchGetImage", failures)],
        &[
            ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint)),
            ("ECR_PULL_PROBE_ALLOW_PLAIN_HTTP", Some("true")),
        ],
    );
    assert_eq!(run.code, 1);
    let r = run.report();
    let f = &stage(&r["images"][0]["stages"], "manifest")["findings"][0];
    assert_eq!(
        f["code"], "PULL_THROUGH_CACHE_UPSTREAM_UNREACHABLE",
        "{f:#}"
    );
    assert_eq!(f["evidence"]["failure_code"], "UpstreamUnavailable");
}

/// The registry knows the repository and the ECR API does not (here: moto has no
/// naming-server-service): the two disagree, so no tag finding is claimed from the API.
#[test]
fn a_repository_the_api_does_not_know_claims_nothing() {
    let s = Stack::get();
    let run = check(&[&s.image("naming-server-service:v9-missing")]);
    assert_eq!(run.code, 1);
    let r = run.report();
    let img = &r["images"][0];
    let c = codes(img);
    assert!(c.contains(&"MANIFEST_NOT_FOUND".to_string()), "{c:?}");
    for claim in [
        "TAG_NEVER_PUSHED",
        "TAG_EXPIRED_BY_LIFECYCLE",
        "ECR_API_NOT_PERMITTED",
    ] {
        assert!(!c.contains(&claim.to_string()), "{c:?}");
    }
    assert_eq!(api_calls(img)[0], pair("DescribeImages", "not_found"));
}

/// A reference naming another account's registry for a repository that lives in the
/// caller's own account: DescribeRepositories finds it there.
#[test]
fn a_repository_in_the_callers_own_account_is_found_there() {
    let s = Stack::get();
    repository("consultingfirm/i26-own-account", "us-east-1");
    let other = "111122223333.dkr.ecr.us-east-1.amazonaws.com";
    let endpoint = format!("{other}=https://{}", s.var("STACK_REGISTRY"));
    let run = probe(
        &[
            "check",
            &format!("{other}/consultingfirm/i26-own-account:v1"),
        ],
        &[("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint))],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.report();
    let img = &r["images"][0];
    let f = finding(img, "REPOSITORY_ELSEWHERE");
    assert_eq!(f["evidence"]["found_in"][0]["account"], ACCOUNT, "{f:#}");
    assert_eq!(f["evidence"]["found_in"][0]["region"], "us-east-1");
    assert!(api_calls(img).contains(&pair("DescribeRepositories", "ok")));
}
