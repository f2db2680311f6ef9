//! The credential paths: every way the image could be pulled, checked side by side.
//!
//! | path | credentials | who uses them |
//! | --- | --- | --- |
//! | [`pod_identity`] | an ECR token minted with the pod's own AWS identity | the pod's code (not the kubelet) |
//! | [`pull_secrets`] | the `imagePullSecrets` entries the kubelet's keyring picks | the kubelet |
//! | [`pull_secrets`] (node-wide) | the node's docker config (OpenShift's global pull secret) | the kubelet |
//! | [`node_provider`] | what the node's kubelet credential provider plugin returns | the kubelet |
//! | [`canary`] | none of its own: a short-lived pod, pulled by the kubelet itself | the kubelet |
//!
//! One contract: a path gets its credentials its own way, hands them with their
//! [`CredentialsUsed`] description to the shared [`Puller`] (the same real pull for every path),
//! and returns its part of the report and its rows of the kubelet's list; [`kubelet`] turns
//! the list into the kubelet's answer. `probe.rs` only orchestrates.

pub mod canary;
pub mod kubelet;
pub mod node_provider;
pub mod pod_identity;
mod pull;
pub mod pull_secrets;
mod shared;

pub use self::pull::{PullResult, Puller};
pub use self::shared::SharedPulls;
pub use crate::diagnosis::CredentialsUsed;

use std::future::Future;
use std::time::Instant as StdInstant;

use tokio::time::{Instant, timeout_at};

use crate::diagnosis;
use crate::report::{Finding, Stage, Status};

/// The registry stages every path runs, after the ECR token of the pod path.
pub const REGISTRY_STAGES: [&str; 4] = ["registry_auth", "manifest", "config", "layers"];

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn ms(since: StdInstant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// What a stage's work returns: a value to carry on with (none when the stage failed), its
/// findings and the bytes it moved.
pub(crate) struct Outcome<T> {
    pub value: Option<T>,
    pub findings: Vec<Finding>,
    pub bytes: Option<u64>,
}

impl<T> Outcome<T> {
    pub fn ok(value: T, findings: Vec<Finding>, bytes: Option<u64>) -> Self {
        Outcome {
            value: Some(value),
            findings,
            bytes,
        }
    }

    pub fn failed(finding: Finding) -> Self {
        Outcome {
            value: None,
            findings: vec![finding],
            bytes: None,
        }
    }

    /// With one more finding, if there is one.
    pub fn and(mut self, finding: Option<Finding>) -> Self {
        self.findings.extend(finding);
        self
    }
}

/// Runs one stage under the deadline and returns its record, with the value to carry on
/// with only when the stage did not fail.
pub(crate) async fn stage<T>(
    name: &str,
    deadline: Instant,
    timeout_secs: f64,
    work: impl Future<Output = Outcome<T>>,
) -> (Stage, Option<T>) {
    let (s, value) = stage_any(name, deadline, timeout_secs, work).await;
    let pass = s.status != Status::Fail;
    (s, value.filter(|_| pass))
}

/// [`stage`], with the value handed back even when its findings fail the stage (a blob that
/// did not verify is still reported); `None` only when the deadline cut the work off.
pub(crate) async fn stage_any<T>(
    name: &str,
    deadline: Instant,
    timeout_secs: f64,
    work: impl Future<Output = Outcome<T>>,
) -> (Stage, Option<T>) {
    let start = StdInstant::now();
    let outcome = timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Outcome::failed(diagnosis::deadline_exceeded(name, timeout_secs)));
    let s = Stage::from_findings(name, ms(start), outcome.bytes, outcome.findings);
    tracing::info!(stage = name, status = ?s.status, duration_ms = s.duration_ms, "stage done");
    (s, outcome.value)
}

/// `stages` with a skipped record for each of `names` that did not run because an earlier
/// one failed, so that every path reports the same stages.
pub(crate) fn with_skipped(mut stages: Vec<Stage>, names: &[&str]) -> Vec<Stage> {
    for n in names {
        if !stages.iter().any(|s| s.name == *n) {
            stages.push(Stage::skipped(n));
        }
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(stages: &[Stage]) -> Vec<(&str, Status)> {
        stages.iter().map(|s| (s.name.as_str(), s.status)).collect()
    }

    #[test]
    fn the_stages_that_did_not_run_are_skipped_in_order() {
        let ran = vec![Stage::from_findings("registry_auth", 1, None, vec![])];
        assert_eq!(
            names(&with_skipped(ran, &REGISTRY_STAGES)),
            [
                ("registry_auth", Status::Pass),
                ("manifest", Status::Skip),
                ("config", Status::Skip),
                ("layers", Status::Skip),
            ]
        );
        assert!(with_skipped(vec![], &[]).is_empty());
    }

    #[tokio::test]
    async fn a_failed_stage_hands_on_no_value_and_a_late_one_is_a_deadline() {
        let later = Instant::now() + std::time::Duration::from_secs(30);
        let (s, v) = stage("config", later, 30.0, async {
            Outcome::ok(1, vec![], Some(7))
        })
        .await;
        assert_eq!((s.status, s.bytes, v), (Status::Pass, Some(7), Some(1)));

        let failing =
            || async { Outcome::ok(2, vec![diagnosis::deadline_exceeded("config", 1.0)], None) };
        let (s, v) = stage("config", later, 30.0, failing()).await;
        assert_eq!((s.status, v), (Status::Fail, None));
        let (s, v) = stage_any("config", later, 30.0, failing()).await;
        assert_eq!((s.status, v), (Status::Fail, Some(2)), "still reported");

        let past = Instant::now();
        let (s, v) = stage_any("layers", past, 0.5, std::future::pending::<Outcome<u8>>()).await;
        assert_eq!((s.status, v), (Status::Fail, None));
        assert_eq!(s.findings[0].code, diagnosis::Code::DEADLINE_EXCEEDED);
    }
}
