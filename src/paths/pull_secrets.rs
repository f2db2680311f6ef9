//! The pull-secret path: the docker config entries the kubelet's keyring picks for the image
//! (`imagePullSecrets` of the pod or its ServiceAccount, a mounted docker config), tried in the
//! kubelet's order with the shared pull until one works, as the runtime tries them.

use super::{Credentials, Puller, unix_now};
use crate::diagnosis;
use crate::pullsecret::{self, SecretSet};
use crate::reference::ImageRef;
use crate::report::{SecretPath, Status};

pub async fn check(puller: &Puller<'_>, img: &ImageRef, set: &SecretSet) -> SecretPath {
    let mut findings = set.findings.clone();
    findings.extend(
        set.malformed
            .iter()
            .map(|(source, m)| diagnosis::pull_secret_malformed(source, m)),
    );
    let mut path = SecretPath {
        status: Status::Fail,
        source: set.source(),
        entry: None,
        username: None,
        password_expires_at: None,
        stages: vec![],
        findings,
    };
    let entries = &set.entries;
    let candidates = pullsecret::matching(entries, img);
    if candidates.is_empty() {
        path.findings.push(diagnosis::pull_secret_no_match(
            img,
            entries,
            pullsecret::other_region(entries, img),
        ));
        return path;
    }
    for entry in candidates {
        path.entry = Some(entry.key.clone());
        path.username = Some(entry.username.clone());
        path.password_expires_at = entry.ecr_password_expiration;
        if let Some(f) = diagnosis::pull_secret_expired(entry, unix_now()) {
            path.findings.push(f);
            continue;
        }
        let credentials = Credentials::PullSecret {
            source: &entry.source,
            entry: &entry.key,
            username: &entry.username,
            ecr_expires_at: entry.ecr_password_expiration,
        };
        let pulled = puller.pull(img, Some(&entry.basic), credentials).await;
        let passed = pulled.passed();
        path.stages = pulled.stages;
        if passed {
            path.status = Status::Pass;
            break;
        }
    }
    path
}
