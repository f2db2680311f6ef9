//! The exit-code contract over hand-built reports: every kind of outcome the README's table
//! names, and each catalogue code deciding a run on its own.

use super::*;
use crate::catalogue::Code;
use crate::report::fixtures::passing;
use crate::report::{CanaryPath, SecretPath, Stage, run_verdict};

fn failed_on_pod(code: Code) -> Report {
    let mut r = passing(&["a"], 1);
    let img = &mut r.images[0];
    img.stages = vec![Stage::from_findings(
        "manifest",
        1,
        None,
        vec![Finding::new(code, "x")],
    )];
    img.paths.pod_identity.status = Status::Fail;
    img.verdict = Verdict::Fail;
    r.verdict = run_verdict(&r.identity.stages, &r.images, r.require);
    r
}

fn identity_failed(code: Code) -> Report {
    let mut r = passing(&["a"], 1);
    r.identity.stages = vec![Stage::from_findings(
        "sts",
        1,
        None,
        vec![Finding::new(code, "x")],
    )];
    let img = &mut r.images[0];
    img.stages = vec![Stage::skipped("ecr_token"), Stage::skipped("manifest")];
    img.paths.pod_identity.status = Status::Fail;
    img.verdict = Verdict::Fail;
    r.verdict = run_verdict(&r.identity.stages, &r.images, r.require);
    r
}

/// The kubelet's answer as a run settles it: the list's (here `status`), the canary's over it.
fn settle_kubelet(r: &mut Report, status: KubeletStatus) {
    let img = &mut r.images[0];
    let list = crate::report::KubeletAnswer {
        status,
        decided_by: crate::report::KubeletDecidedBy::CredentialList,
        credentials: vec![],
        used: None,
        unknown_sources: vec![],
        stages: vec![],
        findings: vec![],
    };
    img.paths.kubelet = Some(crate::paths::kubelet::with_canary(
        list,
        img.paths.kubelet_canary.as_ref(),
    ));
    img.verdict = img.paths.verdict(r.require);
    r.verdict = run_verdict(&r.identity.stages, &r.images, r.require);
}

fn canary(status: Status, code: Code) -> CanaryPath {
    CanaryPath {
        status,
        pod: "c".into(),
        node: None,
        node_labels: Default::default(),
        findings: vec![Finding::new(code, "x")],
    }
}

#[test]
fn each_kind_of_outcome_has_its_code() {
    use Code::*;
    let kubelet_unknown = {
        let mut r = passing(&["a"], 1);
        r.images[0].paths.kubelet_canary = Some(canary(Status::Warn, CANARY_INCONCLUSIVE));
        settle_kubelet(&mut r, KubeletStatus::Unknown);
        r
    };
    let one_no_one_unreachable = {
        let mut r = failed_on_pod(MANIFEST_NOT_FOUND);
        r.images
            .push(failed_on_pod(REGISTRY_UNREACHABLE).images.remove(0));
        r
    };
    let pod_fails_but_kubelet_passes = {
        let mut r = failed_on_pod(REGISTRY_DENIED);
        r.images[0].paths.pull_secrets = Some(SecretPath {
            status: Status::Pass,
            source: "s".into(),
            entry: None,
            username: None,
            password_expires_at: None,
            stages: vec![],
            findings: vec![],
        });
        settle_kubelet(&mut r, KubeletStatus::Pass);
        r
    };
    let kubelet_refused = {
        let mut r = passing(&["a"], 1);
        r.images[0].paths.kubelet_canary = Some(canary(Status::Fail, KUBELET_CANARY_PULL_FAILED));
        settle_kubelet(&mut r, KubeletStatus::Unknown);
        r
    };
    let table: &[(&str, Report, Exit)] = &[
        ("every check passed", passing(&["a", "b"], 1), Exit::Pass),
        ("a missing tag", failed_on_pod(MANIFEST_NOT_FOUND), Exit::No),
        (
            "access denied",
            failed_on_pod(REGISTRY_DENIED_IDENTITY_POLICY),
            Exit::No,
        ),
        (
            "the deadline passed",
            failed_on_pod(DEADLINE_EXCEEDED),
            Exit::Inconclusive,
        ),
        (
            "no route to the registry",
            failed_on_pod(REGISTRY_UNREACHABLE),
            Exit::Inconclusive,
        ),
        (
            "one refused, one unreachable",
            one_no_one_unreachable,
            Exit::No,
        ),
        (
            "STS unreachable",
            identity_failed(AWS_API_UNREACHABLE),
            Exit::Inconclusive,
        ),
        (
            "STS throttled",
            identity_failed(AWS_THROTTLED),
            Exit::Inconclusive,
        ),
        (
            "no credentials at all",
            identity_failed(AWS_CREDENTIALS_UNAVAILABLE),
            Exit::No,
        ),
        (
            "a malformed token",
            identity_failed(WEB_IDENTITY_TOKEN_MALFORMED),
            Exit::No,
        ),
        (
            "an unreadable token file",
            identity_failed(WEB_IDENTITY_TOKEN_UNREADABLE),
            Exit::CouldNotRun,
        ),
        (
            "the kubelet's answer unknown",
            kubelet_unknown,
            Exit::Inconclusive,
        ),
        ("the kubelet refused", kubelet_refused, Exit::No),
        (
            "the pod refused, the kubelet decides and passes",
            pod_fails_but_kubelet_passes,
            Exit::Pass,
        ),
    ];
    for (what, report, want) in table {
        assert_eq!(exit(report), *want, "{what}: {:?}", report.verdict);
    }
    assert_eq!(
        [Exit::Pass, Exit::No, Exit::CouldNotRun, Exit::Inconclusive].map(Exit::code),
        [0, 1, 2, 3]
    );
}

/// The catalogue's exit column (docs/findings.md, the README) is what a run decided by that
/// finding alone exits with.
#[test]
fn every_code_alone_exits_as_the_catalogue_says() {
    for spec in crate::catalogue::CATALOGUE {
        if spec.severity != Severity::Error {
            continue;
        }
        for report in [failed_on_pod(spec.code), identity_failed(spec.code)] {
            assert_eq!(exit(&report).code(), spec.code.exit_code(), "{}", spec.name);
        }
    }
}
