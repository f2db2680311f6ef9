use super::*;
use crate::report::Stage;

const HOST: &str = "818140567777.dkr.ecr.us-east-1.amazonaws.com";
const SESSION: &str =
    "arn:aws:sts::111122223333:assumed-role/naming-server-ecr-pull/ecr-pull-probe";

fn img(rest: &str) -> ImageRef {
    format!("{HOST}/{rest}").parse().unwrap()
}

fn tagged(tag: &str, pushed_at: i64) -> ImageDetail {
    ImageDetail {
        tags: vec![tag.into()],
        digest: Some(format!("sha256:{pushed_at:064}")),
        pushed_at: Some(pushed_at),
        ..Default::default()
    }
}

const LIFECYCLE: &str = r#"{"rules":[{"rulePriority":1,"description":"Expire old release candidates","selection":{"tagStatus":"tagged","tagPrefixList":["rc-"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;

fn codes(f: &[Finding]) -> Vec<Code> {
    f.iter().map(|f| f.code).collect()
}

/// (reference, DescribeImages of the tag, the listing, the lifecycle policy, the codes).
type MissingTagCase = (
    &'static str,
    Asked<Vec<ImageDetail>>,
    Asked<Vec<ImageDetail>>,
    Asked<String>,
    Vec<Code>,
);

#[test]
fn a_missing_tag_is_told_apart() {
    let recent = Asked::Got(vec![tagged("v1.4.1", 100), tagged("v1.4.2", 200)]);
    let lc = Asked::Got(LIFECYCLE.to_string());
    // (reference, DescribeImages of the tag, listing, lifecycle, expected codes)
    let cases: Vec<MissingTagCase> = vec![
        (
            "app:rc-7",
            Asked::NotFound,
            recent.clone(),
            lc.clone(),
            vec![Code::TAG_EXPIRED_BY_LIFECYCLE],
        ),
        (
            "app:v9",
            Asked::NotFound,
            recent.clone(),
            lc.clone(),
            vec![Code::TAG_NEVER_PUSHED],
        ),
        (
            "app:v9",
            Asked::NotFound,
            recent.clone(),
            Asked::NotFound,
            vec![Code::TAG_NEVER_PUSHED],
        ),
        // The identity may not read the lifecycle policy: say which permission would tell.
        (
            "app:rc-7",
            Asked::NotFound,
            recent.clone(),
            Asked::Denied,
            vec![Code::ECR_API_NOT_PERMITTED],
        ),
        (
            "app:rc-7",
            Asked::Denied,
            Asked::NotAsked,
            Asked::NotAsked,
            vec![Code::ECR_API_NOT_PERMITTED],
        ),
        // ECR has it active: the registry's own finding stands alone.
        (
            "app:v1.4.2",
            Asked::Got(vec![tagged("v1.4.2", 200)]),
            Asked::NotAsked,
            Asked::NotAsked,
            vec![],
        ),
        // No answer at all (throttled, timed out): nothing is claimed.
        (
            "app:v9",
            Asked::Unavailable("timeout".into()),
            Asked::NotAsked,
            Asked::NotAsked,
            vec![],
        ),
    ];
    for (r, image, listing, lifecycle, want) in cases {
        let got = missing_tag(&img(r), &image, &listing, &lifecycle);
        assert_eq!(codes(&got), want, "{r} {image:?} {lifecycle:?}");
    }
}

#[test]
fn the_findings_name_the_rule_and_the_recent_tags() {
    let recent = Asked::Got(vec![
        tagged("v1.4.1", 100),
        tagged("v1.4.2", 300),
        tagged("v1.3.0", 50),
    ]);
    let f = &missing_tag(
        &img("app:rc-7"),
        &Asked::NotFound,
        &recent,
        &Asked::Got(LIFECYCLE.into()),
    )[0];
    assert!(f.summary.contains("rule 1"), "{}", f.summary);
    assert!(f.summary.contains("Expire old release candidates"));
    assert_eq!(f.evidence["rule"]["rule_priority"], 1);
    assert!(
        f.remediation.contains("`v1.4.2`, `v1.4.1`, `v1.3.0`"),
        "newest first: {}",
        f.remediation
    );
    let f = &missing_tag(&img("app:v9"), &Asked::NotFound, &recent, &Asked::NotFound)[0];
    assert!(
        f.summary.contains("no lifecycle rule exists"),
        "{}",
        f.summary
    );
    assert_eq!(f.evidence["recent_tags"][0]["tag"], "v1.4.2");
}

#[test]
fn an_archived_image_is_found_by_tag_or_in_the_listing() {
    let archived = ImageDetail {
        status: Some("ARCHIVED".into()),
        last_archived_at: Some(1_790_000_000),
        ..tagged("v1.0.0", 10)
    };
    let f = missing_tag(
        &img("app:v1.0.0"),
        &Asked::Got(vec![archived.clone()]),
        &Asked::NotAsked,
        &Asked::NotAsked,
    );
    assert_eq!(codes(&f), [Code::IMAGE_ARCHIVED]);
    assert!(f[0].remediation.contains("--target-storage-class STANDARD"));
    assert!(f[0].remediation.contains("imageDigest=sha256:"));
    // Looked up by tag, ECR showed only active images; the listing of every status has it.
    let f = missing_tag(
        &img("app:v1.0.0"),
        &Asked::NotFound,
        &Asked::Got(vec![archived.clone(), tagged("v2", 20)]),
        &Asked::NotFound,
    );
    assert_eq!(codes(&f), [Code::IMAGE_ARCHIVED]);
    let restoring = ImageDetail {
        status: Some("ACTIVATING".into()),
        ..archived
    };
    let f = missing_tag(
        &img("app:v1.0.0"),
        &Asked::Got(vec![restoring]),
        &Asked::NotAsked,
        &Asked::NotAsked,
    );
    assert!(f[0].summary.contains("being restored"), "{}", f[0].summary);
}

#[test]
fn the_seeds_policies_give_a_missing_role_and_a_pass() {
    let root = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CrossAccountPull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::818140567777:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;
    let f = &policy_findings(&img("app:v1"), SESSION, &Asked::Got(root.into()))[0];
    assert_eq!(f.code, Code::REPOSITORY_POLICY_MISSES_PRINCIPAL);
    assert!(
        f.summary.starts_with(
            "the role arn:aws:iam::111122223333:role/naming-server-ecr-pull is missing from statement CrossAccountPull"
        ),
        "{}",
        f.summary
    );
    assert!(
        f.remediation
            .contains("arn:aws:iam::111122223333:role/naming-server-ecr-pull")
    );
    assert_eq!(f.evidence["pull_statements"][0]["sid"], "CrossAccountPull");
    let role = root.replace(
        r#""arn:aws:iam::818140567777:root""#,
        r#"["arn:aws:iam::818140567777:root","arn:aws:iam::111122223333:role/naming-server-ecr-pull"]"#,
    );
    let f = &policy_findings(&img("app:v1"), SESSION, &Asked::Got(role))[0];
    assert_eq!(f.code, Code::REPOSITORY_POLICY_NAMES_PRINCIPAL);
    assert_eq!(f.severity, Severity::Info);
    assert_eq!(f.evidence["pull_statements"][0]["names_principal"], "role");
}

#[test]
fn policy_answers_other_than_a_policy() {
    let cases = [
        (Asked::NotFound, vec![Code::REPOSITORY_POLICY_MISSES_PRINCIPAL]),
        (Asked::Denied, vec![Code::ECR_API_NOT_PERMITTED]),
        (Asked::Unavailable("x".into()), vec![]),
        (Asked::Got("not a policy".into()), vec![]),
        (
            Asked::Got(r#"{"Statement":{"Sid":"Org","Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}}"#.into()),
            vec![Code::REPOSITORY_POLICY_NAMES_PRINCIPAL],
        ),
        (
            Asked::Got(r#"{"Statement":{"Sid":"No","Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage"}}"#.into()),
            vec![Code::REPOSITORY_POLICY_DENIES_PRINCIPAL],
        ),
    ];
    for (answer, want) in cases {
        let got = policy_findings(&img("app:v1"), SESSION, &answer);
        assert_eq!(codes(&got), want, "{answer:?}");
    }
    let conditional = policy_findings(
        &img("app:v1"),
        SESSION,
        &Asked::Got(r#"{"Statement":{"Sid":"Org","Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}}"#.into()),
    );
    assert_eq!(conditional[0].severity, Severity::Warning);
    assert!(conditional[0].summary.contains("aws:PrincipalOrgID"));
}

#[test]
fn evidence_from_answers_is_capped() {
    let huge = format!(
        r#"{{"Statement":[{{"Sid":"{}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::1:root"}},"Action":"ecr:BatchGetImage"}}]}}"#,
        "x".repeat(10_000)
    );
    let f = &policy_findings(&img("app:v1"), SESSION, &Asked::Got(huge))[0];
    let shown = f.evidence["repository_policy"].as_str().unwrap();
    assert!(shown.chars().count() <= MAX_EVIDENCE_CHARS + 1);
    let many: Vec<ImageDetail> = (0..100).map(|i| tagged(&format!("t{i}"), i)).collect();
    let f = &missing_tag(
        &img("app:v9"),
        &Asked::NotFound,
        &Asked::Got(many),
        &Asked::NotFound,
    )[0];
    assert_eq!(
        f.evidence["recent_tags"].as_array().unwrap().len(),
        MAX_RECENT_TAGS
    );
}

/// Which failure asks which question: the registry's answer as the registry finding holds it.
#[test]
fn questions_follow_from_the_registry_finding() {
    let with = |code, key: &str, v: &str| Finding::new(code, "x").with(key, v.to_string());
    let cases = [
        (
            Finding::new(Code::MANIFEST_NOT_FOUND, "x"),
            Some(Question::MissingTag),
        ),
        (
            Finding::new(Code::REPOSITORY_NOT_FOUND, "x"),
            Some(Question::MissingRepository),
        ),
        (
            with(Code::REGISTRY_DENIED_RESOURCE_POLICY, "principal", SESSION),
            Some(Question::Denied {
                principal: SESSION.into(),
            }),
        ),
        (
            Finding::new(Code::REGISTRY_DENIED_RESOURCE_POLICY, "x"),
            None,
        ),
        (
            // Recorded in aws/containers-roadmap#2354.
            with(
                Code::REGISTRY_DENIED,
                "registry_message",
                "The authentication to the upstream registry failed. Verify that the credentials provided in the pull through cache rule are correct, and try again.",
            ),
            Some(Question::UpstreamAuth),
        ),
        (
            with(
                Code::REGISTRY_DENIED_IDENTITY_POLICY,
                "action",
                "ecr:BatchImportUpstreamImage",
            ),
            Some(Question::ImportDenied {
                action: "ecr:BatchImportUpstreamImage".into(),
            }),
        ),
        (
            with(Code::REGISTRY_DENIED_IDENTITY_POLICY, "principal", SESSION),
            None,
        ),
        (Finding::new(Code::KMS_ERROR, "x"), None),
    ];
    for (f, want) in cases {
        assert_eq!(question(&f), want, "{f:?}");
    }
}

fn cache_rule(prefix: &str, arn: Option<&str>) -> CacheRule {
    CacheRule {
        prefix: prefix.into(),
        upstream_url: Some("registry-1.docker.io".into()),
        credential_arn: arn.map(str::to_string),
        registry_id: Some("818140567777".into()),
    }
}

/// A cache rule's secret, as the user guide asks for it.
const GOOD_SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:818140567777:secret:ecr-pullthroughcache/docker-hub-AbCdEf";

fn cache_rules() -> Vec<CacheRule> {
    vec![
        cache_rule("docker-hub", Some(GOOD_SECRET)),
        cache_rule("quay", None),
    ]
}

#[test]
fn a_cache_rule_holds_the_repositories_under_its_prefix() {
    let rules = cache_rules();
    assert_eq!(
        cache_rule_for(&rules, "docker-hub/library/nginx")
            .unwrap()
            .prefix,
        "docker-hub"
    );
    assert!(cache_rule_for(&rules, "docker-hubx/nginx").is_none());
    assert!(cache_rule_for(&[cache_rule("ROOT", None)], "anything/at-all").is_some());
}

/// The prerequisites of "Creating a pull through cache rule".
#[test]
fn a_cache_rules_secret_is_checked_against_the_user_guides_prerequisites() {
    let cases = [
        (GOOD_SECRET, None),
        (
            "arn:aws:secretsmanager:us-east-1:818140567777:secret:dockerhub-creds",
            Some("does not begin with `ecr-pullthroughcache/`"),
        ),
        (
            "arn:aws:secretsmanager:eu-west-1:818140567777:secret:ecr-pullthroughcache/x",
            Some("region eu-west-1"),
        ),
        (
            "arn:aws:secretsmanager:us-east-1:999999999999:secret:ecr-pullthroughcache/x",
            Some("account 999999999999"),
        ),
        (
            "arn:aws:iam::1:role/x",
            Some("not a Secrets Manager secret"),
        ),
    ];
    for (arn, want) in cases {
        let got = credential_problem(arn, "818140567777", "us-east-1");
        match want {
            None => assert_eq!(got, None, "{arn}"),
            Some(w) => assert!(got.as_deref().unwrap_or("").contains(w), "{arn}: {got:?}"),
        }
    }
}

#[test]
fn pull_through_cache_findings_follow_the_question_and_the_rules() {
    let rules = cache_rules();
    let i = img("docker-hub/library/nginx:1.27");
    let table: Vec<(Question, Asked<Vec<CacheRule>>, Vec<Code>)> = vec![
        (
            Question::MissingRepository,
            Asked::Got(rules.clone()),
            vec![Code::PULL_THROUGH_CACHE_IMPORT_DENIED],
        ),
        (
            Question::MissingTag,
            Asked::Got(rules.clone()),
            vec![Code::PULL_THROUGH_CACHE_IMPORT_DENIED],
        ),
        (
            Question::MissingRepository,
            Asked::Got(vec![]),
            vec![Code::PULL_THROUGH_CACHE_RULE_MISSING],
        ),
        (
            Question::MissingRepository,
            Asked::Denied,
            vec![Code::ECR_API_NOT_PERMITTED],
        ),
        (
            Question::UpstreamAuth,
            Asked::Got(rules.clone()),
            vec![Code::PULL_THROUGH_CACHE_UPSTREAM_AUTH_FAILED],
        ),
        (
            Question::UpstreamAuth,
            Asked::Denied,
            vec![
                Code::ECR_API_NOT_PERMITTED,
                Code::PULL_THROUGH_CACHE_UPSTREAM_AUTH_FAILED,
            ],
        ),
        (
            Question::ImportDenied {
                action: "ecr:BatchImportUpstreamImage".into(),
            },
            Asked::NotAsked,
            vec![Code::PULL_THROUGH_CACHE_IMPORT_DENIED],
        ),
    ];
    for (q, answer, want) in table {
        assert_eq!(
            codes(&pull_through_cache(&i, &q, &answer)),
            want,
            "{q:?} {answer:?}"
        );
    }
    // A repository without a cache prefix and no rule: nothing about caches.
    assert!(
        pull_through_cache(
            &img("app:v1"),
            &Question::MissingRepository,
            &Asked::Got(rules.clone())
        )
        .is_empty()
    );
    let bad = vec![cache_rule(
        "docker-hub",
        Some("arn:aws:secretsmanager:us-east-1:818140567777:secret:dockerhub"),
    )];
    let f = &pull_through_cache(&i, &Question::UpstreamAuth, &Asked::Got(bad))[0];
    assert!(f.summary.contains("ecr-pullthroughcache/"), "{}", f.summary);
}

#[test]
fn throttling_names_the_retries_and_the_rate() {
    let retried = |causes: &[&str]| {
        Stage::from_findings(
            "manifest",
            1,
            None,
            vec![
                super::super::registry_retried(
                    &causes.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                )
                .unwrap(),
            ],
        )
    };
    let s = [retried(&[
        "h answered HTTP 429; waited 1000 ms as its Retry-After asked",
    ])];
    let f = throttled_in(&s, Some(50), true).unwrap();
    assert_eq!(
        (f.code, f.severity),
        (Code::ECR_THROTTLED, Severity::Warning)
    );
    assert!(f.summary.contains("Retry-After"), "{}", f.summary);
    assert!(
        f.remediation.contains("at most 50 requests per second"),
        "{}",
        f.remediation
    );
    let f = throttled_in(&s, None, false).unwrap();
    assert!(
        f.remediation.contains("`--registry-rate` spaces"),
        "{}",
        f.remediation
    );
    // Other transient failures are not throttling.
    assert!(
        throttled_in(
            &[retried(&["h answered HTTP 503; waited 250 ms"])],
            None,
            false
        )
        .is_none()
    );
    // A 429 that outlasted the retries fails.
    let failed = Stage::from_findings(
        "layers",
        1,
        None,
        vec![Finding::new(Code::REGISTRY_ERROR, "x").with("http_status", 429)],
    );
    let f = throttled_in(&[failed], None, false).unwrap();
    assert_eq!(f.severity, Severity::Error);
}
