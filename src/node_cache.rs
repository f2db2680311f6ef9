//! Images already on the node, as the kubelet judges them (KEP-2535,
//! `KubeletEnsureSecretPulledImages`): which images this node would start for a pod with
//! `imagePullPolicy: IfNotPresent` without any credential check. That is "works on node A,
//! fails on node B": a pod that runs here proves nothing about a node that must pull.
//!
//! The inputs are the kubelet's own files, mounted read-only by the node DaemonSet: its
//! pulled-image records (`/var/lib/kubelet/image_manager/pulled/sha256-<sha256 of imageRef>`,
//! `ImagePulledRecord` of `kubelet.config.k8s.io/v1alpha1` or `v1beta1`) and its
//! `KubeletConfiguration` (`imagePullCredentialsVerificationPolicy`,
//! `preloadedImagesVerificationAllowlist`, the feature gate). The types and the decision follow
//! the kubelet's source (kubernetes `pkg/kubelet/images/pullmanager/`: `fs_pullrecords.go`,
//! `image_pull_policies.go`, `image_pull_manager.go` `MustAttemptImagePull`), whose test data
//! are transcribed in `tests/fixtures/kubelet/image_manager/`.
//!
//! Reading is bounded (file count and size); deciding is pure.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

// The policy and a record's credential kind are report data: they live with the report's types
// (report imports nothing above it) and are re-exported here, where they are read.
pub use crate::report::{CredentialKind, Policy};

/// What decides verification on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletPolicy {
    /// `featureGates.KubeletEnsureSecretPulledImages`; `None`: not set (on by default since
    /// Kubernetes 1.35, off before).
    pub feature_gate: Option<bool>,
    pub policy: Policy,
    /// `preloadedImagesVerificationAllowlist`, as written.
    pub allowlist: Vec<String>,
}

impl Default for KubeletPolicy {
    fn default() -> Self {
        KubeletPolicy {
            feature_gate: None,
            policy: Policy::NeverVerifyPreloadedImages,
            allowlist: vec![],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKubeletConfig {
    kind: Option<String>,
    #[serde(default)]
    feature_gates: BTreeMap<String, bool>,
    image_pull_credentials_verification_policy: Option<Policy>,
    #[serde(default)]
    preloaded_images_verification_allowlist: Vec<String>,
}

/// Reads the verification settings from a `KubeletConfiguration` (YAML or JSON).
pub fn parse_kubelet_config(text: &str) -> Result<KubeletPolicy, String> {
    let raw: RawKubeletConfig = serde_saphyr::from_str(text)
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?;
    if raw.kind.as_deref() != Some("KubeletConfiguration") {
        return Err(format!(
            "kind is {:?}, not KubeletConfiguration",
            raw.kind.unwrap_or_default()
        ));
    }
    Ok(KubeletPolicy {
        feature_gate: raw
            .feature_gates
            .get("KubeletEnsureSecretPulledImages")
            .copied(),
        policy: raw
            .image_pull_credentials_verification_policy
            .unwrap_or(Policy::NeverVerifyPreloadedImages),
        allowlist: raw.preloaded_images_verification_allowlist,
    })
}

/// `ImagePullSecret` of a record: the coordinates of a Secret a pull used.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretCoordinates {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub credential_hash: String,
}

/// `ImagePullServiceAccount` of a record (KEP-4412 pulls).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountCoordinates {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

/// `ImagePullCredentials`: what an image name was pulled with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullCredentials {
    #[serde(default)]
    pub kubernetes_secrets: Vec<SecretCoordinates>,
    #[serde(default)]
    pub kubernetes_service_accounts: Vec<ServiceAccountCoordinates>,
    /// Pulled with node-wide credentials (a credential provider, the node's docker config)
    /// or anonymously: every pod of the node may use the image.
    #[serde(default)]
    pub node_pods_accessible: bool,
}

impl PullCredentials {
    pub fn kind(&self) -> CredentialKind {
        if self.node_pods_accessible {
            CredentialKind::NodePodsAccessible
        } else if !self.kubernetes_secrets.is_empty() {
            CredentialKind::KubernetesSecrets
        } else if !self.kubernetes_service_accounts.is_empty() {
            CredentialKind::ServiceAccounts
        } else {
            CredentialKind::None
        }
    }
}

/// `ImagePulledRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PulledRecord {
    pub kind: String,
    pub api_version: String,
    #[serde(default)]
    pub last_updated_time: Option<String>,
    /// The image as the CRI reported it (an ID or `name@digest`).
    pub image_ref: String,
    /// By the pod's `image` without tag and digest.
    #[serde(default)]
    pub credential_mapping: BTreeMap<String, PullCredentials>,
}

const RECORD_VERSIONS: [&str; 2] = [
    "kubelet.config.k8s.io/v1alpha1",
    "kubelet.config.k8s.io/v1beta1",
];

/// Decodes one record as the kubelet's strict decoder would: unknown fields, another kind or
/// an unknown version are errors.
pub fn parse_record(bytes: &[u8]) -> Result<PulledRecord, String> {
    let r: PulledRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if r.kind != "ImagePulledRecord" {
        return Err(format!("kind is {:?}, not ImagePulledRecord", r.kind));
    }
    if !RECORD_VERSIONS.contains(&r.api_version.as_str()) {
        return Err(format!("unknown apiVersion {:?}", r.api_version));
    }
    Ok(r)
}

/// The node's records and policy, as read.
#[derive(Debug, Clone, Default)]
pub struct NodeCache {
    pub image_manager_dir: String,
    pub kubelet_config: Option<String>,
    pub policy: KubeletPolicy,
    pub records: Vec<PulledRecord>,
    /// `(file, reason)` of what could not be read or decoded.
    pub unreadable: Vec<(String, String)>,
}

/// How a pod with `IfNotPresent` would start the image on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheJudgement {
    /// A record maps the image's name: the kubelet pulled it here and keeps it.
    pub held: bool,
    pub image_ref: Option<String>,
    pub last_updated_time: Option<String>,
    pub credential_kind: Option<CredentialKind>,
    /// Whether any pod asking for it with `IfNotPresent` starts without a credential check.
    pub starts_unverified: bool,
    /// Why, in the kubelet's terms.
    pub reason: String,
}

/// The kubelet's allowlist match (`getAllowlistImagePattern`, `imageMatches`): a pattern is
/// an image name without tag or digest, or a prefix ending in `/*`.
pub fn allowlisted(allowlist: &[String], name: &str) -> bool {
    allowlist.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('/') && prefix.len() > 1 => name.starts_with(prefix),
        _ => p == name,
    })
}

impl NodeCache {
    /// Judges the image named `name` (`registry/repository`, the kubelet's name without tag
    /// or digest), following `MustAttemptImagePull`: a pull is skipped when the policy does
    /// not require verification, or when the record says the credentials are node-wide.
    pub fn judge(&self, name: &str) -> CacheJudgement {
        let found = self.records.iter().find_map(|r| {
            r.credential_mapping
                .iter()
                .find(|(k, _)| same_name(k, name))
                .map(|(_, c)| (r, c))
        });
        let Some((record, creds)) = found else {
            return CacheJudgement {
                held: false,
                image_ref: None,
                last_updated_time: None,
                credential_kind: None,
                starts_unverified: false,
                reason: "no pulled-image record of the kubelet names this image".into(),
            };
        };
        let kind = creds.kind();
        let p = &self.policy;
        let (unverified, reason) = if p.feature_gate == Some(false) {
            (
                true,
                "KubeletEnsureSecretPulledImages is off: the kubelet never re-checks credentials for an image it has".to_string(),
            )
        } else {
            match p.policy {
                Policy::NeverVerify => (
                    true,
                    "imagePullCredentialsVerificationPolicy NeverVerify: no pod is checked for an image present".into(),
                ),
                Policy::NeverVerifyAllowlistedImages if allowlisted(&p.allowlist, name) => (
                    true,
                    "the image is on preloadedImagesVerificationAllowlist: never verified".into(),
                ),
                _ if kind == CredentialKind::NodePodsAccessible => (
                    true,
                    "the record says it was pulled with node-wide or anonymous credentials (nodePodsAccessible): every pod of the node may start it".into(),
                ),
                _ => (
                    false,
                    "the kubelet re-checks: a pod must carry the Secret or ServiceAccount that pulled it, else it pulls again".into(),
                ),
            }
        };
        CacheJudgement {
            held: true,
            image_ref: Some(record.image_ref.clone()),
            last_updated_time: record.last_updated_time.clone(),
            credential_kind: Some(kind),
            starts_unverified: unverified,
            reason,
        }
    }
}

/// Record keys are the pod's `image` without tag or digest as the kubelet normalised it
/// (`docker.io/library/nginx`); a key that parses to the same name counts too.
fn same_name(key: &str, name: &str) -> bool {
    key == name
        || key
            .parse::<crate::reference::ImageRef>()
            .is_ok_and(|r| r.name() == name)
}

/// At most this many records are read (a node holds tens to a few hundred images).
const MAX_RECORDS: usize = 5000;
/// A record is a few hundred bytes; one with many secrets a few KiB.
const MAX_RECORD_BYTES: u64 = 256 * 1024;
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads `dir/pulled/sha256-*` (the kubelet's own filter: no `.tmp`, no directories) and the
/// kubelet config. Anything unreadable is listed, not fatal: the kubelet skips it too.
pub fn load(dir: &Path, kubelet_config: Option<&Path>) -> NodeCache {
    let mut cache = NodeCache {
        image_manager_dir: dir.display().to_string(),
        kubelet_config: kubelet_config.map(|p| p.display().to_string()),
        ..Default::default()
    };
    if let Some(path) = kubelet_config {
        match read_capped(path, MAX_CONFIG_BYTES).and_then(|t| parse_kubelet_config(&t)) {
            Ok(p) => cache.policy = p,
            Err(e) => cache.unreadable.push((path.display().to_string(), e)),
        }
    }
    let pulled = dir.join("pulled");
    let entries = match std::fs::read_dir(&pulled) {
        Ok(e) => e,
        Err(e) => {
            cache
                .unreadable
                .push((pulled.display().to_string(), e.to_string()));
            return cache;
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sha256-") && !n.ends_with(".tmp"))
        })
        .collect();
    names.sort();
    for path in names.into_iter().take(MAX_RECORDS) {
        match read_capped(&path, MAX_RECORD_BYTES).and_then(|t| parse_record(t.as_bytes())) {
            Ok(r) => cache.records.push(r),
            Err(e) => cache.unreadable.push((path.display().to_string(), e)),
        }
    }
    cache
}

fn read_capped(path: &Path, max: u64) -> Result<String, String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > max {
        return Err(format!("over the limit of {max} bytes"));
    }
    Ok(text)
}

/// The report for one image: the judgement, and the workload's containers that would start
/// it with `IfNotPresent` (`--images-from`).
pub fn image_report(
    cache: &NodeCache,
    image: &crate::reference::ImageRef,
    workload: Option<&crate::report::Workload>,
) -> (crate::report::NodeCacheReport, CacheJudgement) {
    let j = cache.judge(&image.name());
    let if_not_present_containers = workload
        .map(|w| {
            w.containers
                .iter()
                .filter(|c| c.image == image.original)
                .filter(|c| {
                    effective_pull_policy(c.image_pull_policy.as_deref(), &c.image)
                        == "IfNotPresent"
                })
                .map(|c| c.container.clone())
                .collect()
        })
        .unwrap_or_default();
    let report = crate::report::NodeCacheReport {
        image_manager_dir: cache.image_manager_dir.clone(),
        kubelet_config: cache.kubelet_config.clone(),
        policy: cache.policy.policy,
        feature_gate: cache.policy.feature_gate,
        held: j.held,
        image_ref: j.image_ref.clone(),
        last_updated_time: j.last_updated_time.clone(),
        credential_kind: j.credential_kind,
        if_not_present_starts_unverified: j.held && j.starts_unverified,
        reason: j.reason.clone(),
        if_not_present_containers,
        unreadable: cache.unreadable.len(),
    };
    (report, j)
}

/// The kubelet's default for an unset `imagePullPolicy`: `Always` for `:latest` or no tag,
/// else `IfNotPresent` (the API server writes it into stored objects; an older object or a
/// bare manifest may lack it).
pub fn effective_pull_policy(policy: Option<&str>, image: &str) -> String {
    if let Some(p) = policy.filter(|p| !p.is_empty()) {
        return p.to_string();
    }
    let latest = image
        .parse::<crate::reference::ImageRef>()
        .map(|r| r.digest.is_none() && r.tag.as_deref().is_none_or(|t| t == "latest"))
        .unwrap_or(false);
    if latest { "Always" } else { "IfNotPresent" }.to_string()
}

#[cfg(test)]
mod tests;
