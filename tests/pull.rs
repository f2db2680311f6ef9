//! End-to-end pulls against the real local stack: moto for STS and ECR, docker-registry over
//! TLS with htpasswd auth, images seeded with skopeo.

mod common;

use common::report::{Status, Verdict};
use common::*;

#[test]
fn a_single_image_pulls_with_the_pods_web_identity() {
    let s = Stack::get();
    let run = check(&[&s.image("naming-server-service:latest")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.typed();
    assert_eq!(r.verdict, Verdict::Pass);

    let id = &r.identity;
    assert_eq!(id.mode, "web_identity");
    let caller = id.caller.as_ref().expect("the caller");
    assert_eq!(caller.account, "818140567777");
    assert_eq!(
        caller.assumed_role.as_deref(),
        Some("naming-server-ecr-pull")
    );
    let token = id.token.as_ref().expect("the token's claims");
    assert_eq!(
        token.subject.as_deref(),
        Some("system:serviceaccount:consultingfirm:naming-server")
    );
    assert_eq!(token.service_account.as_deref(), Some("naming-server"));
    assert_eq!(report::stage_of(&id.stages, "sts").status, Status::Pass);

    let img = r.only_image();
    assert_eq!(img.verdict, Verdict::Pass);
    let ecr = img.reference.ecr.as_ref().expect("an ECR reference");
    assert_eq!(ecr.region, "us-east-1");
    assert_eq!(ecr.host_form, "standard");
    let ecr_token = img.ecr_token.as_ref().expect("an ECR token");
    assert_eq!(ecr_token.user, "AWS");
    assert_eq!(
        ecr_token.proxy_endpoint.as_deref(),
        Some(format!("https://{}", s.var("STACK_ECR_HOST")).as_str())
    );
    // moto's tokens expire in 2015: a warning, not a failure.
    assert_eq!(img.stage("ecr_token").status, Status::Warn);
    assert!(img.codes().contains(&"ECR_TOKEN_EXPIRED_AT_ISSUE"));
    for name in ["registry_auth", "manifest", "config", "layers"] {
        assert_eq!(img.stage(name).status, Status::Pass, "{name}");
    }
    assert_eq!(
        img.manifest.as_ref().expect("a manifest").media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(img.blobs.len(), 3, "config and two layers");
    for b in &img.blobs {
        assert_eq!(b.status, Status::Pass);
        assert_eq!(b.bytes, b.size, "every byte verified");
        assert_eq!(b.served_by.as_deref(), Some(s.var("STACK_REGISTRY")));
    }
    let layer_bytes: u64 = img
        .blobs
        .iter()
        .filter(|b| b.kind == "layer")
        .map(|b| b.bytes)
        .sum();
    assert_eq!(img.stage("layers").bytes, Some(layer_bytes));
    let f = img.finding("POD_IDENTITY_CAN_PULL");
    assert_eq!(f.severity, report::Severity::Info);
    assert!(f.remediation.contains("node (worker) role"));
}

#[test]
fn a_multi_platform_index_resolves_to_the_asked_platform() {
    let s = Stack::get();
    let img_ref = s.image("multiarch:latest");
    for (platform, want) in [
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/amd64", "linux/amd64"),
    ] {
        let r = check(&[&img_ref, "--platform", platform]).typed();
        let img = r.only_image();
        assert_eq!(img.verdict, Verdict::Pass, "{platform}");
        let m = img.manifest.as_ref().expect("a manifest");
        assert_eq!(m.platform.as_deref(), Some(want));
        assert_eq!(
            m.index_media_type.as_deref(),
            Some("application/vnd.oci.image.index.v1+json")
        );
        let index_digest = m.index_digest.as_deref().expect("the index's digest");
        assert!(index_digest.starts_with("sha256:"));
        assert_ne!(index_digest, m.digest);
        assert_eq!(m.available_platforms, ["linux/amd64", "linux/arm64/v8"]);
    }
}

#[test]
fn a_docker_manifest_list_resolves_too() {
    let s = Stack::get();
    let r = check(&[
        &s.image("docker-list:latest"),
        "--platform",
        "linux/arm64/v8",
    ])
    .typed();
    let img = r.only_image();
    assert_eq!(img.verdict, Verdict::Pass);
    let m = img.manifest.as_ref().expect("a manifest");
    assert_eq!(
        m.index_media_type.as_deref(),
        Some("application/vnd.docker.distribution.manifest.list.v2+json")
    );
    assert_eq!(
        m.media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(m.platform.as_deref(), Some("linux/arm64/v8"));
}

#[test]
fn a_platform_missing_from_the_index_is_named_with_the_alternatives() {
    let s = Stack::get();
    let run = check(&[&s.image("multiarch:latest"), "--platform", "linux/s390x"]);
    assert_eq!(run.code, 1);
    let r = run.typed();
    let f = r.only_image().finding("PLATFORM_NOT_IN_INDEX");
    assert_eq!(f.evidence["wanted"], "linux/s390x");
    assert_eq!(
        f.evidence["available"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
}

#[test]
fn several_images_in_one_run_share_credentials_and_keep_their_order() {
    let s = Stack::get();
    let images = [
        s.image("naming-server-service:latest"),
        s.image("multiarch:latest"),
        s.image("naming-server-service:v1.4.2"),
        s.image("docker-list:latest"),
    ];
    let args: Vec<&str> = images
        .iter()
        .map(String::as_str)
        .chain(["--concurrency", "2"])
        .collect();
    let run = check(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.typed();
    let got: Vec<&str> = r.images.iter().map(|i| i.image.as_str()).collect();
    assert_eq!(got, images.iter().map(String::as_str).collect::<Vec<_>>());
    let first_token = &r.images[0].ecr_token;
    assert!(first_token.is_some());
    assert!(r.images.iter().all(|i| &i.ecr_token == first_token));
}

#[test]
fn images_are_pulled_by_digest_and_a_tag_digest_pair_uses_the_digest() {
    let s = Stack::get();
    let r = check(&[&s.image("naming-server-service:latest")]).typed();
    let digest = r.only_image().manifest.as_ref().unwrap().digest.clone();
    for reference in [
        format!("naming-server-service@{digest}"),
        format!("naming-server-service:no-such-tag@{digest}"),
    ] {
        let r = check(&[&s.image(&reference)]).typed();
        let img = r.only_image();
        assert_eq!(img.verdict, Verdict::Pass, "{reference}");
        assert_eq!(img.manifest.as_ref().unwrap().digest, digest);
    }
}

#[test]
fn a_wrong_registry_password_is_unauthorized() {
    // A role in another account gets that account's token, which this registry does not know.
    let s = Stack::get();
    let run = probe(
        &["check", &s.image("naming-server-service:latest")],
        &[(
            "AWS_ROLE_ARN",
            Some("arn:aws:iam::111122223333:role/naming-server-ecr-pull"),
        )],
    );
    assert_eq!(run.code, 1);
    let r = run.typed();
    let img = r.only_image();
    assert_eq!(img.stage("registry_auth").status, Status::Fail);
    let f = img.finding("REGISTRY_UNAUTHORIZED");
    assert_eq!(f.evidence["http_status"], 401);
    assert_eq!(f.evidence["token_region"], "us-east-1");
    assert!(
        f.evidence["challenge"]
            .as_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(img.stage("manifest").status, Status::Skip);
    assert!(!img.codes().contains(&"POD_IDENTITY_CAN_PULL"));
}

#[test]
fn a_missing_repository_and_a_missing_tag_are_told_apart() {
    let s = Stack::get();
    let run = check(&[
        &s.image("no-such-repo:latest"),
        &s.image("naming-server-service:no-such-tag"),
    ]);
    assert_eq!(run.code, 1);
    let r = run.typed();
    let repo = r.images[0].finding("REPOSITORY_NOT_FOUND");
    assert_eq!(repo.evidence["repository"], "consultingfirm/no-such-repo");
    // Issue 30 point 5: the registry said MANIFEST_UNKNOWN; the finding says how it knew.
    assert_eq!(
        repo.evidence["registry_codes"],
        serde_json::json!(["MANIFEST_UNKNOWN"])
    );
    let how = repo.evidence["known_by"].as_str().unwrap();
    assert!(
        how.contains("MANIFEST_UNKNOWN") && how.contains("tag list NAME_UNKNOWN"),
        "{how}"
    );
    assert!(repo.summary.contains(how), "{repo:#?}");
    let tag = r.images[1].finding("MANIFEST_NOT_FOUND");
    // The repository by name, not a host.
    assert_eq!(
        tag.summary,
        format!(
            "tag no-such-tag not found in repository consultingfirm/naming-server-service (on {})",
            s.var("STACK_ECR_HOST")
        )
    );
    assert_eq!(
        tag.evidence["registry_codes"],
        serde_json::json!(["MANIFEST_UNKNOWN"])
    );
    assert_eq!(tag.evidence["repository_exists"], true);
    assert_eq!(tag.evidence["reference"], "no-such-tag");
}

#[test]
fn layer_modes_pull_what_they_say() {
    let s = Stack::get();
    let img_ref = s.image("naming-server-service:latest");
    let r = check(&[&img_ref, "--layers", "smallest"]).typed();
    let blobs = &r.only_image().blobs;
    assert_eq!(blobs.iter().filter(|b| b.kind == "layer").count(), 1);
    let r = check(&[&img_ref, "--layers", "none"]).typed();
    let img = r.only_image();
    assert_eq!(img.verdict, Verdict::Pass);
    assert_eq!(img.stage("layers").status, Status::Skip);
    assert_eq!(img.blobs.len(), 1, "config only");
}

#[test]
fn an_untrusted_registry_certificate_is_named() {
    let s = Stack::get();
    let run = probe(
        &["check", &s.image("naming-server-service:latest")],
        &[("ECR_PULL_PROBE_CA_FILE", None)],
    );
    assert_eq!(run.code, 1);
    let r = run.typed();
    let f = r.only_image().finding("REGISTRY_TLS_UNTRUSTED");
    assert_eq!(f.evidence["host"], s.var("STACK_REGISTRY"));
    // Whose certificate it was, as `openssl x509 -subject -issuer` names the stack's.
    let subject = format!("CN={}", s.var("STACK_ECR_HOST"));
    assert_eq!(f.evidence["issuer"], "CN=ecr-pull-probe local CA");
    assert_eq!(f.evidence["subject"], subject);
    assert!(
        f.summary.contains(&format!(
            "issued to {subject} by CN=ecr-pull-probe local CA"
        )),
        "{f:#?}"
    );
}

#[test]
fn an_unreachable_registry_is_named() {
    let s = Stack::get();
    let port = refused_port();
    let endpoint = format!("{}=https://127.0.0.1:{port}", s.var("STACK_ECR_HOST"));
    let run = probe(
        &["check", &s.image("naming-server-service:latest")],
        &[("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint))],
    );
    assert_eq!(run.code, 3, "unreachable is inconclusive, not a refusal");
    let r = run.typed();
    let f = r.only_image().finding("REGISTRY_UNREACHABLE");
    assert_eq!(f.evidence["host"], format!("127.0.0.1:{port}"));
    // Issue 30 point 5: the fix names the override that gave the address, and its port.
    let fix = &f.remediation;
    assert!(
        fix.starts_with(&format!(
            "127.0.0.1:{port} is the address `--registry-endpoint`"
        )) && fix.contains(&format!("port {port}"))
            && fix.contains("ecr.dkr"),
        "{fix}"
    );
}

#[test]
fn a_non_ecr_registry_is_pulled_without_ecr_credentials() {
    // The stack's registry by its own address: not an ECR host, so no token is sent and the
    // htpasswd-protected registry refuses the anonymous pull.
    let s = Stack::get();
    let image = format!(
        "{}/consultingfirm/naming-server-service:latest",
        s.var("STACK_REGISTRY")
    );
    let run = check(&[&image]);
    assert_eq!(run.code, 1);
    let r = run.typed();
    let img = r.only_image();
    assert!(img.reference.ecr.is_none());
    assert_eq!(img.stage("ecr_token").status, Status::Skip);
    assert_eq!(
        img.finding("REGISTRY_NOT_ECR").severity,
        report::Severity::Info
    );
    let f = img.finding("REGISTRY_UNAUTHORIZED");
    assert!(f.summary.contains("none apply"));
    // No ECR image: no AWS call at all.
    assert_eq!(
        report::stage_of(&r.identity.stages, "sts").status,
        Status::Skip
    );
}

#[test]
fn text_output_leads_with_the_verdict_then_the_image_then_the_finding() {
    // The full shape is in tests/golden/ (tests/render.rs); this is the contract's gist.
    let s = Stack::get();
    let run = check(&[
        &s.image("naming-server-service:no-such-tag"),
        "--output",
        "text",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .starts_with("FAIL: 1 of 1 image cannot be pulled, kubelet path checked: no\n"),
        "{}",
        run.stdout
    );
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL   consultingfirm/naming-server-service:no-such-tag"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(row.ends_with("MANIFEST_NOT_FOUND"), "{row}");
    let (err, cause, fix) = (
        run.stdout.find("  MANIFEST_NOT_FOUND: ").unwrap(),
        run.stdout.find("    cause:").unwrap(),
        run.stdout.find("    fix:").unwrap(),
    );
    assert!(err < cause && cause < fix);
    assert!(!run.stdout.contains('\x1b'), "no colour off a terminal");
}

#[test]
fn a_dual_stack_host_pulls_and_warns_about_node_credential_providers() {
    let s = Stack::get();
    let host = s
        .var("STACK_ECR_HOST")
        .replace(".dkr.ecr.", ".dkr-ecr.")
        .replace(".amazonaws.com", ".on.aws");
    let endpoint = format!("{host}=https://{}", s.var("STACK_REGISTRY"));
    let run = probe(
        &[
            "check",
            &format!("{host}/consultingfirm/naming-server-service:latest"),
        ],
        &[("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint))],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let r = run.typed();
    let img = r.only_image();
    let ecr = img.reference.ecr.as_ref().expect("an ECR reference");
    assert_eq!(ecr.host_form, "dual_stack");
    assert_eq!(
        img.finding("NODE_PROVIDER_HOST_NOT_MATCHED").severity,
        report::Severity::Warning
    );
}

/// Issue 13: the report shows what was written and what a runtime pulls for it.
#[test]
fn the_report_shows_the_written_and_the_normalized_reference() {
    let s = Stack::get();
    let written = s.image("naming-server-service");
    let run = check(&[&written]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let r = run.typed();
    let reference = &r.only_image().reference;
    assert_eq!(reference.written, written);
    assert_eq!(reference.normalized, format!("{written}:latest"));
}

/// Issue 14 (a fix must fit its host): an unreachable registry that is not ECR is not told to
/// create ECR's VPC endpoint.
#[test]
fn an_unreachable_non_ecr_registry_gets_a_fix_for_its_own_host() {
    let endpoint = format!("mirror.example=https://127.0.0.1:{}", refused_port());
    let run = probe(
        &["check", "mirror.example/team/app:1"],
        &[("ECR_PULL_PROBE_REGISTRY_ENDPOINT", Some(&endpoint))],
    );
    assert_eq!(run.code, 3, "unreachable is inconclusive, not a refusal");
    let r = run.typed();
    let fix = &r.only_image().finding("REGISTRY_UNREACHABLE").remediation;
    assert!(!fix.contains("ecr.dkr"), "{fix}");
    assert!(
        fix.contains("127.0.0.1") && fix.contains("pull-through cache"),
        "{fix}"
    );
}
