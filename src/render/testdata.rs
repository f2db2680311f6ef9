//! Reports for the renderers' unit tests, built by hand: one failing image, a fleet, the
//! kubelet's path, and text a hostile registry could send.

use crate::diagnosis::Code;
use crate::identity::CredentialMode;
use crate::report::*;

pub fn image(name: &str, stages: Vec<Stage>) -> ImageReport {
    let verdict = image_verdict(&stages);
    let pod_identity = PodIdentityPath {
        status: if verdict == Verdict::Pass {
            Status::Pass
        } else {
            Status::Fail
        },
    };
    ImageReport {
        image: format!("x.example/{name}"),
        verdict,
        reference: ReferenceReport {
            written: format!("x.example/{name}"),
            normalized: format!("x.example/{name}"),
            registry: "x.example".into(),
            repository: name.split(':').next().unwrap_or(name).into(),
            tag: Some("v9".into()),
            digest: None,
            ecr: None,
            endpoint: "https://x.example/".into(),
        },
        ecr_token: None,
        manifest: None,
        blobs: vec![],
        stages,
        paths: Paths {
            pod_identity,
            pull_secrets: None,
            node_docker_config: None,
            node_credential_provider: None,
            kubelet_canary: None,
            kubelet: None,
        },
        findings: vec![],
        node_cache: None,
        api_calls: vec![],
    }
}

pub fn passing(name: &str) -> ImageReport {
    let warn = Finding::new(
        Code::ECR_TOKEN_EXPIRED_AT_ISSUE,
        "the token expired at issue",
    );
    let mut img = image(
        name,
        vec![
            Stage::from_findings("ecr_token", 1, None, vec![warn]),
            Stage::from_findings("manifest", 1, None, vec![]),
        ],
    );
    img.findings.push(Finding::new(
        Code::POD_IDENTITY_CAN_PULL,
        "this identity can pull",
    ));
    img
}

pub fn failing(name: &str) -> ImageReport {
    let f = Finding::new(Code::MANIFEST_NOT_FOUND, format!("{name} not found"))
        .with("reference", "v9")
        .fix("Push the image.\nOr fix the tag.");
    image(
        name,
        vec![Stage::from_findings("manifest", 5, Some(2048), vec![f])],
    )
}

pub fn report(images: Vec<ImageReport>) -> Report {
    let identity = vec![Stage::from_findings("sts", 3, None, vec![])];
    let verdict = run_verdict(&identity, &images, Require::Auto);
    Report {
        schema_version: SCHEMA_VERSION.into(),
        tool: Tool {
            name: "ecr-pull-probe".into(),
            version: "0.1.0".into(),
        },
        started_at: "2026-11-28T00:00:00Z".into(),
        duration_ms: 12,
        verdict,
        identity: IdentityReport {
            mode: CredentialMode::WebIdentity,
            role_arn: Some("arn:aws:iam::1:role/r".into()),
            token_file: None,
            token: None,
            caller: None,
            credentials_expire_at: None,
            stages: identity,
        },
        workload: None,
        require: Require::Auto,
        retry_policy: Default::default(),
        images,
        target: None,
    }
}

/// One image, failing: the shape the older tests used.
pub fn sample() -> Report {
    report(vec![failing("app:v9")])
}

/// `n` images, the `failed`th of which fails.
pub fn fleet(n: usize, failed: usize) -> Report {
    report(
        (0..n)
            .map(|i| {
                if i == failed {
                    failing(&format!("svc-{i:03}:v9"))
                } else {
                    passing(&format!("svc-{i:03}:latest"))
                }
            })
            .collect(),
    )
}

/// The original incident: the pod's identity can pull, the pull secret cannot.
pub fn kubelet_fails() -> Report {
    let mut img = passing("app:latest");
    img.paths.pull_secrets = Some(SecretPath {
        status: Status::Fail,
        source: "secret/regcred".into(),
        entry: None,
        username: None,
        password_expires_at: None,
        stages: vec![],
        findings: vec![Finding::new(
            Code::PULL_SECRET_NO_MATCH,
            "no entry for x.example",
        )],
    });
    img.findings.push(Finding::new(
        Code::KUBELET_PATH_FAILS_POD_PATH_PASSES,
        "the pull secrets cannot pull",
    ));
    img.paths.kubelet = Some(kubelet(KubeletStatus::Fail, vec![]));
    img.verdict = img.paths.verdict(Require::Auto);
    let mut r = report(vec![img, passing("other:latest")]);
    r.images[1].paths.pull_secrets = Some(SecretPath {
        status: Status::Pass,
        source: "secret/regcred".into(),
        entry: Some("x.example".into()),
        username: Some("AWS".into()),
        password_expires_at: None,
        stages: vec![],
        findings: vec![],
    });
    r.images[1].paths.kubelet = Some(kubelet(
        KubeletStatus::Pass,
        vec![KubeletCredential {
            source: CredentialSource::PullSecrets,
            origin: "secret/regcred".into(),
            key: Some("x.example".into()),
            username: Some("AWS".into()),
            status: Status::Pass,
        }],
    ));
    r.verdict = Verdict::Fail;
    r
}

/// The kubelet's answer over `credentials`.
pub fn kubelet(status: KubeletStatus, credentials: Vec<KubeletCredential>) -> KubeletAnswer {
    KubeletAnswer {
        status,
        decided_by: KubeletDecidedBy::CredentialList,
        used: credentials.iter().position(|c| c.status == Status::Pass),
        credentials,
        unknown_sources: vec![],
        stages: vec![],
        findings: vec![],
    }
}

/// What a hostile registry could put in its error message: terminal control sequences (clear
/// screen, set the window title, a bidi override), Markdown table syntax and XML syntax.
pub const HOSTILE: &str =
    "denied\x1b[2J\x1b]0;owned\x07 | col | <b>x</b> ]]> & `code` \u{202e}evil\r\nforged line";

pub fn hostile() -> Report {
    let f = Finding::new(Code::REGISTRY_DENIED, HOSTILE)
        .with("registry_message", HOSTILE)
        .fix(format!("Ask the registry: {HOSTILE}"));
    let mut img = image(
        "app|x:v1",
        vec![Stage::from_findings("manifest", 1, None, vec![f])],
    );
    img.image = "x.example/app|<x>:v1".into();
    report(vec![img, passing("ok:latest")])
}
