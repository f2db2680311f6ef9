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
//! [`Credentials`] description to the shared [`Puller`] (the same real pull for every path),
//! and returns its part of the report and its rows of the kubelet's list; [`kubelet`] turns
//! the list into the kubelet's answer. `probe.rs` only orchestrates.

pub mod canary;
pub mod kubelet;
pub mod node_provider;
pub mod pod_identity;
mod pull;
pub mod pull_secrets;

pub use self::pull::{PullResult, Puller};
pub use crate::diagnosis::Credentials;

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

/// Runs one stage under the deadline and records it. The value is handed on only when the
/// stage did not fail.
pub(crate) async fn stage<T>(
    name: &str,
    deadline: Instant,
    timeout_secs: f64,
    stages: &mut Vec<Stage>,
    work: impl Future<Output = Outcome<T>>,
) -> Option<T> {
    let start = StdInstant::now();
    let outcome = timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Outcome::failed(diagnosis::deadline_exceeded(name, timeout_secs)));
    let s = Stage::from_findings(name, ms(start), outcome.bytes, outcome.findings);
    let pass = s.status != Status::Fail;
    tracing::info!(stage = name, status = ?s.status, duration_ms = s.duration_ms, "stage done");
    stages.push(s);
    outcome.value.filter(|_| pass)
}

/// Records stages that did not run because an earlier one failed.
pub(crate) fn skip_rest(stages: &mut Vec<Stage>, names: &[&str]) {
    for n in names {
        if !stages.iter().any(|s| s.name == *n) {
            stages.push(Stage::skipped(n));
        }
    }
}
