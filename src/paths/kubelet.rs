//! The kubelet's credential list for one image, and its answer.
//!
//! What the kubelet does (kubernetes `pkg/kubelet/images/image_manager.go`,
//! `makeLookupPullCredentialsFunc` and `pullImage`): it builds one keyring,
//! `MakeDockerKeyring(pullSecrets, UnionDockerKeyring{nodeKeyring, externalProviders})` —
//! the pod's pull secrets, then the node-wide docker config (the `.dockercfg` provider), then
//! every credential provider plugin's answer merged into one keyring — and looks the image's
//! repository up in it (`Lookup(repoToPull)`, no tag): each keyring's matching keys most
//! specific first, the keyrings in that order. The runtime is asked with each credential in
//! turn until one pulls; the pull fails with the combined error when all fail; only an empty
//! list means an anonymous pull. A pull secret that cannot be parsed fails the keyring, so
//! every pull of the pod.
//!
//! Each source tries its own candidates with the shared pull ([`try_in_order`]); the
//! answer is then pure ([`answer`]), tested here without a registry.

use super::{CredentialsUsed, Puller};
use crate::diagnosis::{self, Code};
use crate::reference::ImageRef;
use crate::report::{
    CanaryPath, CredentialSource, Finding, KubeletAnswer, KubeletCredential, KubeletDecidedBy,
    KubeletStatus, Stage, Status,
};
use crate::secret::Secret;

/// One credential on the list, with what its pull needs.
pub struct Candidate<'a> {
    pub row: KubeletCredential,
    /// `None`: an empty credential, which the runtime takes as none.
    pub basic: Option<&'a Secret<String>>,
    pub credentials: CredentialsUsed<'a>,
    /// Why it cannot work without asking (an ECR token past its `expiration`): it fails
    /// without a request, as the registry would refuse it.
    pub expired: Option<Finding>,
}

/// A source's candidates, tried.
#[derive(Debug, Default)]
pub struct Tried {
    pub rows: Vec<KubeletCredential>,
    pub passed: bool,
    /// The registry stages of the last pull made.
    pub stages: Vec<Stage>,
    /// Findings of candidates not pulled (expired tokens).
    pub findings: Vec<Finding>,
    /// The row of the last candidate looked at (the passing one, when one passed).
    pub last: Option<usize>,
    /// A failure no other credential can change, met with credentials the registry took: the
    /// image itself is the problem (see [`IMAGE_PROBLEMS`]).
    pub image_problem: Option<Code>,
}

/// Answers about the image, not the credentials: once a registry that accepted a credential
/// says the repository or tag does not exist, or the image has no manifest the node can run,
/// every other credential meets the same answer.
pub const IMAGE_PROBLEMS: [Code; 4] = [
    Code::REPOSITORY_NOT_FOUND,
    Code::MANIFEST_NOT_FOUND,
    Code::PLATFORM_NOT_IN_INDEX,
    Code::MANIFEST_INVALID,
];

/// Tries `candidates` in order with the real pull until one passes; those after it are
/// recorded as not tried, as the kubelet stops there.
pub async fn try_in_order(
    puller: &Puller<'_>,
    img: &ImageRef,
    candidates: Vec<Candidate<'_>>,
) -> Tried {
    let mut t = Tried::default();
    for c in candidates {
        let mut row = c.row;
        if t.passed {
            row.status = Status::Skip;
            t.rows.push(row);
            continue;
        }
        t.last = Some(t.rows.len());
        if let Some(f) = c.expired {
            t.findings.push(f);
            row.status = Status::Fail;
            t.rows.push(row);
            continue;
        }
        let pulled = puller.pull(img, c.basic, c.credentials).await;
        t.passed = pulled.passed();
        t.image_problem = t.image_problem.or_else(|| {
            pulled
                .stages
                .iter()
                .flat_map(|s| &s.findings)
                .map(|f| f.code)
                .find(|c| IMAGE_PROBLEMS.contains(c))
        });
        row.status = if t.passed { Status::Pass } else { Status::Fail };
        t.stages = pulled.stages;
        t.rows.push(row);
    }
    t
}

/// What one source put on the list.
#[derive(Debug, Clone)]
pub struct SourceRows {
    pub source: CredentialSource,
    /// Whether the run knows this source (was given it); an unknown one may hold anything.
    pub known: bool,
    pub rows: Vec<KubeletCredential>,
    /// What [`Tried::image_problem`] found, if anything.
    pub image_problem: Option<Code>,
}

/// Whether the kubelet would pull anonymously: nothing blocks the pod, every source is
/// known, and none has a credential for the image.
pub fn needs_anonymous(sources: &[SourceRows], blocked: bool) -> bool {
    !blocked && sources.iter().all(|s| s.known && s.rows.is_empty())
}

/// An anonymous pull's row.
pub fn anonymous_row(status: Status) -> KubeletCredential {
    KubeletCredential {
        source: CredentialSource::Anonymous,
        origin: "no credentials".into(),
        key: None,
        username: None,
        status,
    }
}

/// The anonymous pull made when [`needs_anonymous`].
pub struct Anonymous {
    pub status: Status,
    pub stages: Vec<Stage>,
}

/// The kubelet's answer from its list. `blocked`: something fails every pull of the pod
/// first (a pull secret that cannot be parsed, a ServiceAccount admission refuses).
pub fn answer(
    img: &ImageRef,
    sources: &[SourceRows],
    blocked: bool,
    anonymous: Option<Anonymous>,
) -> KubeletAnswer {
    let mut credentials: Vec<KubeletCredential> =
        sources.iter().flat_map(|s| s.rows.clone()).collect();
    let unknown_sources: Vec<CredentialSource> = sources
        .iter()
        .filter(|s| !s.known)
        .map(|s| s.source)
        .collect();
    let mut out = KubeletAnswer {
        status: KubeletStatus::Fail,
        decided_by: KubeletDecidedBy::CredentialList,
        credentials: vec![],
        used: None,
        unknown_sources,
        stages: vec![],
        findings: vec![],
    };
    if blocked {
        out.decided_by = KubeletDecidedBy::PodBlocked;
        out.credentials = credentials;
        return out;
    }
    if let Some(a) = anonymous {
        credentials.push(anonymous_row(a.status));
        out.stages = a.stages;
        out.findings.push(diagnosis::kubelet_no_credentials(
            img,
            a.status == Status::Pass,
        ));
    }
    out.used = credentials.iter().position(|c| c.status == Status::Pass);
    out.status = match out.used {
        Some(i) => {
            let failed: Vec<&KubeletCredential> = credentials[..i]
                .iter()
                .filter(|c| c.status == Status::Fail)
                .collect();
            if !failed.is_empty() {
                out.findings
                    .push(diagnosis::kubelet_earlier_credentials_fail(
                        &failed,
                        &credentials[i],
                    ));
            }
            KubeletStatus::Pass
        }
        // The image itself is missing: the node's unknown credentials cannot change that.
        None if sources.iter().any(|s| s.image_problem.is_some()) => KubeletStatus::Fail,
        None if !out.unknown_sources.is_empty() => {
            out.findings.push(diagnosis::kubelet_verdict_unknown(
                &credentials,
                &out.unknown_sources,
            ));
            KubeletStatus::Unknown
        }
        None => KubeletStatus::Fail,
    };
    out.credentials = credentials;
    out
}

/// The canary's answer, when it gave one, is the kubelet's own and takes over; the list
/// stays as the explanation.
pub fn with_canary(mut answer: KubeletAnswer, canary: Option<&CanaryPath>) -> KubeletAnswer {
    let status = match canary.map(|c| c.status) {
        Some(Status::Pass) => KubeletStatus::Pass,
        Some(Status::Fail) => KubeletStatus::Fail,
        _ => return answer,
    };
    if status != answer.status {
        answer
            .findings
            .retain(|f| f.code != diagnosis::Code::KUBELET_VERDICT_UNKNOWN);
    }
    answer.status = status;
    answer.decided_by = KubeletDecidedBy::Canary;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: CredentialSource, origin: &str, status: Status) -> KubeletCredential {
        KubeletCredential {
            source,
            origin: origin.into(),
            key: Some("818140567777.dkr.ecr.us-east-1.amazonaws.com".into()),
            username: Some("AWS".into()),
            status,
        }
    }

    fn src(source: CredentialSource, known: bool, rows: &[Status]) -> SourceRows {
        SourceRows {
            source,
            known,
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, s)| row(source, &format!("{source:?}-{i}"), *s))
                .collect(),
            image_problem: None,
        }
    }

    fn img() -> ImageRef {
        "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/app:1"
            .parse()
            .unwrap()
    }

    use CredentialSource::{
        NodeCredentialProvider as Prov, NodeDockerConfig as Cfg, PullSecrets as Ps,
    };
    use Status::{Fail as F, Pass as P, Skip as S};

    struct Case {
        name: &'static str,
        sources: Vec<SourceRows>,
        blocked: bool,
        status: KubeletStatus,
        used: Option<usize>,
        codes: &'static [Code],
    }

    /// Each case's answer: its status, the credential used and the findings' codes.
    fn assert_answers(cases: Vec<Case>) {
        for c in cases {
            assert!(!needs_anonymous(&c.sources, c.blocked), "{}", c.name);
            let a = answer(&img(), &c.sources, c.blocked, None);
            assert_eq!(a.status, c.status, "{}", c.name);
            assert_eq!(a.used, c.used, "{}", c.name);
            let codes: Vec<Code> = a.findings.iter().map(|f| f.code).collect();
            assert_eq!(codes, c.codes, "{}", c.name);
            if c.blocked {
                assert_eq!(a.decided_by, KubeletDecidedBy::PodBlocked, "{}", c.name);
            }
        }
    }

    /// The kubelet's answer over its list: issue 21's two reproduced wrong verdicts first.
    #[test]
    fn the_kubelet_takes_the_first_credential_that_pulls_in_its_order() {
        assert_answers(vec![
            Case {
                // Reproduced: a matching pull secret with a wrong password and a provider that
                // does not match. The kubelet sends only the secret and fails (the probe used to
                // pull anonymously on the node path and pass).
                name: "wrong password, provider without a match",
                sources: vec![
                    src(Ps, true, &[F]),
                    src(Cfg, true, &[]),
                    src(Prov, true, &[]),
                ],
                blocked: false,
                status: KubeletStatus::Fail,
                used: None,
                codes: &[],
            },
            Case {
                name: "the secret fails, the node role pulls",
                sources: vec![
                    src(Ps, true, &[F]),
                    src(Cfg, true, &[]),
                    src(Prov, true, &[P]),
                ],
                blocked: false,
                status: KubeletStatus::Pass,
                used: Some(1),
                codes: &[Code::KUBELET_EARLIER_CREDENTIAL_FAILS],
            },
            Case {
                name: "the secret pulls first",
                sources: vec![
                    src(Ps, true, &[P, S]),
                    src(Cfg, true, &[]),
                    src(Prov, true, &[F]),
                ],
                blocked: false,
                status: KubeletStatus::Pass,
                used: Some(0),
                codes: &[],
            },
            Case {
                name: "the node's global pull secret expired, the provider pulls",
                sources: vec![
                    src(Ps, true, &[]),
                    src(Cfg, true, &[F]),
                    src(Prov, true, &[P]),
                ],
                blocked: false,
                status: KubeletStatus::Pass,
                used: Some(1),
                codes: &[Code::KUBELET_EARLIER_CREDENTIAL_FAILS],
            },
        ]);
    }

    /// What the order alone does not decide: a pod the kubelet refuses before pulling, a node
    /// whose credentials are not known, a tag no credential can bring back.
    #[test]
    fn a_blocked_pod_an_unknown_node_and_a_missing_tag_are_answered_as_such() {
        assert_answers(vec![
            Case {
                name: "a malformed pull secret fails the pod whatever else works",
                sources: vec![
                    src(Ps, true, &[]),
                    src(Cfg, true, &[]),
                    src(Prov, true, &[P]),
                ],
                blocked: true,
                status: KubeletStatus::Fail,
                used: None,
                codes: &[],
            },
            Case {
                name: "secrets fail, the node unknown: unknown, not fail",
                sources: vec![
                    src(Ps, true, &[F]),
                    src(Cfg, false, &[]),
                    src(Prov, false, &[]),
                ],
                blocked: false,
                status: KubeletStatus::Unknown,
                used: None,
                codes: &[Code::KUBELET_VERDICT_UNKNOWN],
            },
            Case {
                name: "secrets pass, the node unknown: a pass all the same",
                sources: vec![
                    src(Ps, true, &[P]),
                    src(Cfg, false, &[]),
                    src(Prov, false, &[]),
                ],
                blocked: false,
                status: KubeletStatus::Pass,
                used: Some(0),
                codes: &[],
            },
            Case {
                name: "the tag does not exist: no node credential can change that",
                sources: vec![
                    SourceRows {
                        image_problem: Some(Code::MANIFEST_NOT_FOUND),
                        ..src(Ps, true, &[F])
                    },
                    src(Cfg, false, &[]),
                    src(Prov, false, &[]),
                ],
                blocked: false,
                status: KubeletStatus::Fail,
                used: None,
                codes: &[],
            },
        ]);
    }

    /// Reproduced: a docker config with only an ECR key, on a public image. No credential
    /// matches, so the kubelet pulls anonymously, and a public image passes.
    #[test]
    fn an_empty_list_is_an_anonymous_pull() {
        let sources = [
            src(Ps, true, &[]),
            src(Cfg, true, &[]),
            src(Prov, true, &[]),
        ];
        assert!(needs_anonymous(&sources, false));
        let anon = |status| {
            Some(Anonymous {
                status,
                stages: vec![],
            })
        };
        let a = answer(&img(), &sources, false, anon(P));
        assert_eq!((a.status, a.used), (KubeletStatus::Pass, Some(0)));
        assert_eq!(a.credentials[0].source, CredentialSource::Anonymous);
        assert_eq!(a.findings[0].code, Code::KUBELET_NO_CREDENTIALS);
        let a = answer(&img(), &sources, false, anon(F));
        assert_eq!(a.status, KubeletStatus::Fail);
        // With a source unknown there is no anonymous pull to speak of.
        let sources = [
            src(Ps, true, &[]),
            src(Cfg, false, &[]),
            src(Prov, true, &[]),
        ];
        assert!(!needs_anonymous(&sources, false));
        assert_eq!(
            answer(&img(), &sources, false, None).status,
            KubeletStatus::Unknown
        );
    }

    #[test]
    fn the_canary_is_the_kubelets_own_answer() {
        let sources = [
            src(Ps, true, &[F]),
            src(Cfg, false, &[]),
            src(Prov, false, &[]),
        ];
        let a = answer(&img(), &sources, false, None);
        let canary = |status| CanaryPath {
            status,
            pod: "c".into(),
            node: None,
            node_labels: Default::default(),
            findings: vec![],
        };
        let passed = with_canary(a.clone(), Some(&canary(P)));
        assert_eq!(
            (passed.status, passed.decided_by),
            (KubeletStatus::Pass, KubeletDecidedBy::Canary)
        );
        assert!(passed.findings.is_empty());
        let inconclusive = with_canary(a.clone(), Some(&canary(Status::Warn)));
        assert_eq!(inconclusive.status, KubeletStatus::Unknown);
    }
}
