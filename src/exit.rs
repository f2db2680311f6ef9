//! The exit-code contract, decided from a report alone (pure, no I/O), so `check`, `render` of
//! a saved report and serve's summary of each run give the same code for the same run. The
//! README's "Exit codes" table is this module in prose; the table-driven tests below and in
//! `tests/exit.rs` hold it to that.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every check passed |
//! | 1 | the gate says no: a path that decides an image got a definite refusal |
//! | 2 | the probe could not run as asked (its flags, or a file it was pointed at) |
//! | 3 | inconclusive: every failure is "could not tell" ([`crate::catalogue::Code::inconclusive`]) |

use crate::report::{
    Finding, ImageReport, KubeletStatus, Report, Require, Severity, Stage, Status, Verdict,
};

/// What a run's outcome means to a pipeline, one variant per exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Every check passed.
    Pass,
    /// The gate says no: some image cannot be pulled, and the probe knows it.
    No,
    /// The probe could not run as asked: usage, or a configuration error finding.
    CouldNotRun,
    /// The probe could not tell: it ran out of time, could not reach a host, or the
    /// kubelet's answer is unknown. Retry, or look at the network; nothing was refused.
    Inconclusive,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Pass => 0,
            Exit::No => 1,
            Exit::CouldNotRun => 2,
            Exit::Inconclusive => 3,
        }
    }
}

/// The exit code of a report. `error` is 2; a pass is 0 unless an image decided by the
/// kubelet got no kubelet answer at all (3); a failure is 1 when any failed image (or the
/// identity, where it decides) was refused for a reason that is not [`crate::catalogue::Code::inconclusive`],
/// else 3.
pub fn exit(report: &Report) -> Exit {
    match report.verdict {
        Verdict::Error | Verdict::NotChecked => Exit::CouldNotRun,
        // The kubelet's answer is unknown for some image and none fails.
        Verdict::Inconclusive => Exit::Inconclusive,
        Verdict::Pass if report.images.iter().any(|i| kubelet_unknown(report, i)) => {
            Exit::Inconclusive
        }
        Verdict::Pass => Exit::Pass,
        Verdict::Fail => {
            let identity = identity_errors(report);
            let pod_matters = report.images.is_empty()
                || report.images.iter().any(|i| {
                    matches!(
                        i.paths.effective(report.require),
                        Require::Pod | Require::All
                    )
                });
            let mut failures: Vec<Exit> = report
                .images
                .iter()
                .filter(|i| i.verdict != Verdict::Pass)
                .map(|i| image_failure(report, i, &identity))
                .collect();
            if pod_matters
                && report
                    .identity
                    .stages
                    .iter()
                    .any(|s| s.status == Status::Fail)
            {
                failures.push(classify(&identity));
            }
            // One definite "no" anywhere is the gate's answer; "could not tell" only when
            // nothing was refused.
            if failures.is_empty() || failures.contains(&Exit::No) {
                Exit::No
            } else {
                Exit::Inconclusive
            }
        }
    }
}

fn identity_errors(report: &Report) -> Vec<&Finding> {
    report
        .identity
        .stages
        .iter()
        .flat_map(|s| &s.findings)
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

/// Whether the kubelet decides this image and gave no answer: its list goes on to node
/// credentials the run was not given, or an inconclusive canary was all there was.
fn kubelet_unknown(report: &Report, img: &ImageReport) -> bool {
    img.paths.effective(report.require) == Require::Kubelet
        && !matches!(
            img.paths.kubelet_status(),
            Some(KubeletStatus::Pass | KubeletStatus::Fail)
        )
}

/// Every finding of the failed ones of `paths` (status, stages, own findings).
fn failed<'a>(
    paths: impl Iterator<Item = (Status, &'a Vec<Stage>, &'a Vec<Finding>)>,
) -> impl Iterator<Item = &'a Finding> {
    paths
        .filter(|(status, _, _)| *status == Status::Fail)
        .flat_map(|(_, stages, findings)| stages.iter().flat_map(|st| &st.findings).chain(findings))
}

fn errors<'a>(it: impl Iterator<Item = &'a Finding>) -> Vec<&'a Finding> {
    it.filter(|f| f.severity == Severity::Error).collect()
}

/// `No` when a deciding finding is a refusal, `Inconclusive` when all of them are
/// "could not tell"; no finding at all is a `No` (a gate errs towards the answer it can stand by).
fn classify(errors: &[&Finding]) -> Exit {
    if !errors.is_empty() && errors.iter().all(|f| f.code.inconclusive()) {
        Exit::Inconclusive
    } else {
        Exit::No
    }
}

/// The errors on the paths that decide a failed image under the report's policy.
fn image_failure(report: &Report, img: &ImageReport, identity: &[&Finding]) -> Exit {
    if kubelet_unknown(report, img) {
        return Exit::Inconclusive;
    }
    let p = &img.paths;
    let pod = || {
        let own = errors(img.stages.iter().flat_map(|s| &s.findings));
        // Stages skipped because the identity failed carry nothing: the identity decides.
        if own.is_empty() {
            identity.to_vec()
        } else {
            own
        }
    };
    let secrets = || {
        failed(
            p.pull_secrets
                .iter()
                .map(|s| (s.status, &s.stages, &s.findings)),
        )
    };
    let node_config = || {
        failed(
            p.node_docker_config
                .iter()
                .map(|s| (s.status, &s.stages, &s.findings)),
        )
    };
    let node = || {
        failed(
            p.node_credential_provider
                .iter()
                .map(|n| (n.status, &n.stages, &n.findings)),
        )
    };
    // The kubelet's own: an anonymous pull's stages, or what failed the whole pod.
    let kubelet = || {
        failed(p.kubelet.iter().map(|k| {
            let status = match k.status {
                KubeletStatus::Fail => Status::Fail,
                _ => Status::Pass,
            };
            (status, &k.stages, &k.findings)
        }))
    };
    let canary = || {
        p.kubelet_canary
            .iter()
            .filter(|c| c.status == Status::Fail)
            .flat_map(|c| &c.findings)
    };
    let deciding: Vec<&Finding> = match p.effective(report.require) {
        Require::Pod => pod(),
        Require::Kubelet => match p.kubelet_canary.as_ref().map(|c| c.status) {
            // The canary's own answer decides when it gave one.
            Some(Status::Fail) => errors(canary()),
            _ => errors(
                secrets()
                    .chain(node_config())
                    .chain(node())
                    .chain(kubelet()),
            ),
        },
        _ => {
            let mut v = if p.pod_identity.status == Status::Fail {
                pod()
            } else {
                vec![]
            };
            v.extend(errors(
                secrets()
                    .chain(node_config())
                    .chain(node())
                    .chain(kubelet())
                    .chain(canary()),
            ));
            v
        }
    };
    classify(&deciding)
}

#[cfg(test)]
mod tests;
