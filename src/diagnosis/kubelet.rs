//! Findings of the kubelet's credential list and of the sources that feed it (pull secrets
//! by the kubelet's rules, the node-wide docker config, the plugin's environment). Pure.

use serde_json::json;

use super::{Code, Finding, Severity, rfc3339};
use crate::pullsecret::{Entry, Malformed, SkippedKey};
use crate::reference::ImageRef;
use crate::report::{CredentialSource, KubeletCredential};

/// How a source is named in a sentence.
pub fn source_phrase(source: CredentialSource) -> &'static str {
    match source {
        CredentialSource::PullSecrets => "the pull secrets",
        CredentialSource::NodeDockerConfig => "the node-wide docker config",
        CredentialSource::NodeCredentialProvider => "the node's credential provider",
        CredentialSource::Anonymous => "no credentials",
    }
}

/// The report's key of a source's path (`paths.<key>`), for evidence.
pub fn source_path(source: CredentialSource) -> &'static str {
    match source {
        CredentialSource::PullSecrets => "pull_secrets",
        CredentialSource::NodeDockerConfig => "node_docker_config",
        CredentialSource::NodeCredentialProvider => "node_credential_provider",
        CredentialSource::Anonymous => "kubelet",
    }
}

fn describe(c: &KubeletCredential) -> String {
    match (&c.key, &c.username) {
        (Some(k), Some(u)) => format!("{} ({k}, user {u})", c.origin),
        (Some(k), None) => format!("{} ({k})", c.origin),
        _ => c.origin.clone(),
    }
}

pub fn kubelet_verdict_unknown(
    tried: &[KubeletCredential],
    unknown: &[CredentialSource],
) -> Finding {
    let names: Vec<&str> = unknown.iter().map(|s| source_phrase(*s)).collect();
    let tried_text = if tried.is_empty() {
        "no credential this run knows of covers the image".to_string()
    } else {
        format!(
            "none of the {} credential(s) this run knows of pulls",
            tried.len()
        )
    };
    Finding::new(
        Code::KUBELET_VERDICT_UNKNOWN,
        format!(
            "{tried_text}; the kubelet would go on to {}, which this run was not given, so its answer is unknown",
            names.join(" and ")
        ),
    )
    .with(
        "unknown_sources",
        unknown.iter().map(|s| source_path(*s)).collect::<Vec<_>>(),
    )
    .with("tried", tried.iter().map(describe).collect::<Vec<_>>())
}

pub fn kubelet_earlier_credentials_fail(
    failed: &[&KubeletCredential],
    used: &KubeletCredential,
) -> Finding {
    Finding::new(
        Code::KUBELET_EARLIER_CREDENTIAL_FAILS,
        format!(
            "the kubelet pulls with {} after {} failing credential(s) before it",
            describe(used),
            failed.len()
        ),
    )
    .with("used", describe(used))
    .with(
        "failing_first",
        failed.iter().map(|c| describe(c)).collect::<Vec<_>>(),
    )
    .with(
        "paths",
        failed
            .iter()
            .map(|c| source_path(c.source))
            .collect::<Vec<_>>(),
    )
}

pub fn kubelet_no_credentials(img: &ImageRef, anonymous_pulls: bool) -> Finding {
    let f = Finding::new(
        Code::KUBELET_NO_CREDENTIALS,
        if anonymous_pulls {
            format!(
                "no credential the kubelet has covers {}; it pulls anonymously, and that works",
                img.name()
            )
        } else {
            format!(
                "no credential the kubelet has covers {}: it pulls anonymously and the registry refuses",
                img.name()
            )
        },
    )
    .with("image_name", img.name());
    if anonymous_pulls {
        f
    } else {
        f.severity(Severity::Error)
    }
}

/// A pull secret the kubelet reads nothing from: of another type than the two it reads, or
/// with its type's key missing or empty (`key`).
pub fn pull_secret_wrong_type<'a>(
    source: &str,
    secret_type: &str,
    keys: impl Iterator<Item = &'a str>,
    empty_key: Option<&str>,
) -> Finding {
    let keys: Vec<&str> = keys.collect();
    let summary = match empty_key {
        Some(k) => format!(
            "{source} is of type {secret_type} but its {k} is missing or empty: the kubelet reads nothing from it"
        ),
        None => format!(
            "{source} is of type {secret_type}: the kubelet reads docker configs only from kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg Secrets, so it skips this one"
        ),
    };
    Finding::new(Code::PULL_SECRET_WRONG_TYPE, summary)
        .with("source", source.to_string())
        .with("type", secret_type.to_string())
        .with("keys", keys)
}

pub fn pull_secret_malformed(source: &str, m: &Malformed) -> Finding {
    Finding::new(
        Code::PULL_SECRET_MALFORMED,
        format!(
            "{source} cannot be parsed ({m}): the kubelet fails every image pull of the pod, whatever the other secrets and the node hold"
        ),
    )
    .with("source", source.to_string())
}

pub fn service_account_missing(namespace: &str, name: &str, kind: &str, workload: &str) -> Finding {
    Finding::new(
        Code::SERVICE_ACCOUNT_MISSING,
        format!(
            "ServiceAccount {namespace}/{name} does not exist: admission refuses every pod of {kind} {workload} (error looking up service account {namespace}/{name})"
        ),
    )
    .with("service_account", format!("{namespace}/{name}"))
}

/// Keys dropped from a docker config or a plugin's answer, the rest used.
pub fn credential_keys_skipped(skipped: &[SkippedKey]) -> Option<Finding> {
    let first = skipped.first()?;
    Some(
        Finding::new(
            Code::CREDENTIAL_KEY_SKIPPED,
            format!(
                "{} key(s) of {} skipped ({:?}: {}); the other keys are used",
                skipped.len(),
                first.source,
                first.key,
                first.why
            ),
        )
        .with(
            "skipped",
            skipped
                .iter()
                .take(8)
                .map(|k| json!({"source": k.source, "key": k.key, "why": k.why.to_string()}))
                .collect::<Vec<_>>(),
        ),
    )
}

pub fn node_docker_config_absent(path: &str) -> Finding {
    Finding::new(
        Code::NODE_DOCKER_CONFIG_ABSENT,
        format!("{path} does not exist: the node has no node-wide docker config"),
    )
    .with("file", path.to_string())
}

pub fn node_docker_config_unreadable(path: &str) -> Finding {
    Finding::new(
        Code::NODE_DOCKER_CONFIG_UNREADABLE,
        format!("{path} cannot be read by this pod: the node-wide docker config is not checked, and the kubelet's answer may depend on it"),
    )
    .with("file", path.to_string())
}

pub fn node_docker_config_replaced(path: &str) -> Finding {
    Finding::new(
        Code::NODE_DOCKER_CONFIG_REPLACED,
        format!("{path} was replaced on the node after this container mounted it: what is read here is the old file"),
    )
    .with("file", path.to_string())
}

pub fn node_docker_config_malformed(source: &str, m: &Malformed) -> Finding {
    Finding::new(
        Code::NODE_DOCKER_CONFIG_MALFORMED,
        format!("the node's docker config {source} cannot be parsed ({m}); the kubelet skips it"),
    )
    .with("source", source.to_string())
}

/// A node-wide entry whose ECR token has expired, named as OpenShift's global pull secret.
pub fn node_docker_config_expired(entry: &Entry, now: i64) -> Option<Finding> {
    let exp = entry.ecr_password_expiration.filter(|e| *e <= now)?;
    Some(
        Finding::new(
            Code::NODE_DOCKER_CONFIG_TOKEN_EXPIRED,
            format!(
                "the ECR token for {} in the node's docker config {} (on OpenShift the global pull secret) expired {} s ago",
                entry.key,
                entry.source,
                now - exp
            ),
        )
        .with("entry", entry.key.clone())
        .with("source", entry.source.clone())
        .with("expired_at", rfc3339(exp))
        .with("now", rfc3339(now)),
    )
}

pub fn node_docker_config_no_match(img: &ImageRef, entries: &[Entry]) -> Finding {
    Finding::new(
        Code::PULL_SECRET_NO_MATCH,
        format!(
            "no entry of the node's docker config covers {}; the kubelet goes on to the credential providers",
            img.registry
        ),
    )
    .severity(Severity::Info)
    .with("registry", img.registry.clone())
    .with(
        "keys",
        entries
            .iter()
            .take(32)
            .map(|e| e.key.clone())
            .collect::<Vec<_>>(),
    )
    .with("path", "node_docker_config")
}

pub fn plugin_environment_withheld(provider: &str, withheld: &[String]) -> Option<Finding> {
    if withheld.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            Code::PLUGIN_ENVIRONMENT_WITHHELD,
            format!(
                "{provider} ran with the kubelet's environment, without the probe's {}",
                withheld.join(", ")
            ),
        )
        .with("withheld", withheld.to_vec()),
    )
}

/// The summary when the pod's path and the kubelet's disagree, naming the kubelet's sources
/// that failed (`path` evidence: their keys in `paths`).
pub fn paths_disagree(
    pod_passes: bool,
    kubelet_passes: bool,
    failing: &[CredentialSource],
) -> Option<Finding> {
    let names: Vec<&str> = failing.iter().map(|s| source_phrase(*s)).collect();
    let paths: Vec<&str> = failing.iter().map(|s| source_path(*s)).collect();
    let list = if names.is_empty() {
        "the kubelet's credentials".to_string()
    } else {
        names.join(" and ")
    };
    let f = match (pod_passes, kubelet_passes) {
        (true, false) => Finding::new(
            Code::KUBELET_PATH_FAILS_POD_PATH_PASSES,
            format!(
                "the pod's identity can pull this image but {list} cannot: the kubelet will fail"
            ),
        ),
        (false, true) => Finding::new(
            Code::POD_PATH_FAILS_KUBELET_PATH_PASSES,
            "the kubelet's credentials can pull this image but the pod's identity cannot",
        ),
        _ => return None,
    };
    Some(f.with("path", paths))
}
