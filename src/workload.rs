//! A workload as the command line names it: `KIND/NAME`, as `kubectl` writes it. Plain data
//! with nothing above it, so `config` can parse `--images-from` without the cluster client
//! (`cluster` re-exports it).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
    Job,
    Pod,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `KIND/NAME`, as `kubectl` writes it (`deployment/naming-server`, `deploy/x`, `cronjob/y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --images-from {input:?}: expected KIND/NAME with KIND one of deployment, statefulset, daemonset, cronjob, job, pod"
)]
pub struct WorkloadRefError {
    pub input: String,
}

impl FromStr for WorkloadRef {
    type Err = WorkloadRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || WorkloadRefError {
            input: s.to_string(),
        };
        let (kind, name) = s.split_once('/').ok_or_else(err)?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
            "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
            "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
            "cronjob" | "cronjobs" | "cj" => WorkloadKind::CronJob,
            "job" | "jobs" => WorkloadKind::Job,
            "pod" | "pods" | "po" => WorkloadKind::Pod,
            _ => return Err(err()),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(err());
        }
        Ok(WorkloadRef {
            kind,
            name: name.to_string(),
        })
    }
}
