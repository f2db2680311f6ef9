//! The docker-config paths: the pod's pull secrets (`imagePullSecrets` of the pod or its
//! ServiceAccount, a mounted docker config) and the node-wide docker config (the kubelet's
//! `.dockercfg` provider: `--node-docker-config`, OpenShift's global pull secret). Both put
//! their matching entries on the kubelet's list in the kubelet's order and try them with the
//! shared pull until one works; they differ in what a broken source means: a pull secret
//! that cannot be parsed fails every pull of the pod, a node file that cannot be parsed is
//! skipped.

use super::kubelet::{Candidate, try_in_order};
use super::{CredentialsUsed, Puller, unix_now};
use crate::diagnosis::{self, Code};
use crate::pullsecret::{self, Entry, SecretSet};
use crate::reference::ImageRef;
use crate::report::{CredentialSource, Finding, KubeletCredential, SecretPath, Status};

/// A docker-config path for one image, and its part of the kubelet's list.
pub struct Checked {
    pub path: SecretPath,
    pub rows: Vec<KubeletCredential>,
    /// Every pull of the pod fails before any credential is tried.
    pub blocked: bool,
    /// An answer about the image itself, met with a credential the registry took.
    pub image_problem: Option<Code>,
}

/// Which docker config a set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    PodSecrets,
    NodeWide,
}

/// The pod's pull secrets.
pub async fn check(puller: &Puller<'_>, img: &ImageRef, set: &SecretSet) -> Checked {
    check_set(puller, img, set, Role::PodSecrets).await
}

/// The node-wide docker config.
pub async fn check_node_config(puller: &Puller<'_>, img: &ImageRef, set: &SecretSet) -> Checked {
    check_set(puller, img, set, Role::NodeWide).await
}

async fn check_set(puller: &Puller<'_>, img: &ImageRef, set: &SecretSet, role: Role) -> Checked {
    let mut findings = set.findings.clone();
    findings.extend(set.blockers.iter().cloned());
    findings.extend(set.malformed.iter().map(|(source, m)| match role {
        Role::PodSecrets => diagnosis::pull_secret_malformed(source, m),
        Role::NodeWide => diagnosis::node_docker_config_malformed(source, m),
    }));
    findings.extend(diagnosis::credential_keys_skipped(&set.skipped_keys));
    let blocked =
        role == Role::PodSecrets && (!set.malformed.is_empty() || !set.blockers.is_empty());
    let mut path = SecretPath {
        status: if blocked { Status::Fail } else { Status::Skip },
        source: set.source(),
        entry: None,
        username: None,
        password_expires_at: None,
        stages: vec![],
        findings,
    };
    if blocked {
        return Checked {
            path,
            rows: vec![],
            blocked,
            image_problem: None,
        };
    }
    let entries = &set.entries;
    let matching = pullsecret::matching(entries, img);
    if matching.is_empty() {
        if !set.sources.is_empty() {
            path.findings.push(no_match(img, entries, role));
        }
        return Checked {
            path,
            rows: vec![],
            blocked,
            image_problem: None,
        };
    }
    let now = unix_now();
    let candidates: Vec<Candidate<'_>> = matching
        .iter()
        .map(|e| Candidate {
            row: KubeletCredential {
                source: match role {
                    Role::PodSecrets => CredentialSource::PullSecrets,
                    Role::NodeWide => CredentialSource::NodeDockerConfig,
                },
                origin: e.source.clone(),
                key: Some(e.key.clone()),
                username: Some(e.username.clone()),
                status: Status::Skip,
            },
            basic: e.credentials(),
            credentials: CredentialsUsed::PullSecret {
                source: &e.source,
                entry: &e.key,
                username: &e.username,
                ecr_expires_at: e.ecr_password_expiration,
            },
            expired: expired(e, now, role),
        })
        .collect();
    let tried = try_in_order(puller, img, candidates).await;
    if let Some(e) = tried.last.map(|i| matching[i]) {
        path.entry = Some(e.key.clone());
        path.username = Some(e.username.clone());
        path.password_expires_at = e.ecr_password_expiration;
    }
    path.findings.extend(tried.findings);
    path.stages = tried.stages;
    path.status = if tried.passed {
        Status::Pass
    } else {
        Status::Fail
    };
    Checked {
        path,
        rows: tried.rows,
        blocked,
        image_problem: tried.image_problem,
    }
}

fn no_match(img: &ImageRef, entries: &[Entry], role: Role) -> Finding {
    match role {
        Role::PodSecrets => {
            diagnosis::pull_secret_no_match(img, entries, pullsecret::other_region(entries, img))
        }
        Role::NodeWide => diagnosis::node_docker_config_no_match(img, entries),
    }
}

fn expired(e: &Entry, now: i64, role: Role) -> Option<Finding> {
    match role {
        Role::PodSecrets => diagnosis::pull_secret_expired(e, now),
        Role::NodeWide => diagnosis::node_docker_config_expired(e, now),
    }
}
