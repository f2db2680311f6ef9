//! The kubelet's records and policies, from its own test data and a node's files
//! (`tests/fixtures/kubelet/`, README there).

use super::*;

const UPSTREAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kubelet/upstream"
);
const NODE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kubelet/node");
const ECR: &str = "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm";

fn upstream(file: &str) -> Result<PulledRecord, String> {
    parse_record(&std::fs::read(format!("{UPSTREAM}/pulled/{file}")).unwrap())
}

/// Each record of the kubelet's test data decodes (or not) as the kubelet's strict decoder
/// would, with the credential kind its mapping names.
#[test]
fn the_kubelets_own_records_decode_as_it_decodes_them() {
    let cases: [(&str, Option<(&str, CredentialKind)>); 9] = [
        (
            "sha256-0553787e9ca19226fc076aa7e59a4dbb797ef6bcae363e443b535dbec5fd4898",
            Some(("docker.io/testing/test", CredentialKind::KubernetesSecrets)),
        ),
        (
            "sha256-38a8906435c4dd5f4258899d46621bfd8eea3ad6ff494ee3c2f17ef0321625bd",
            Some(("docker.io/testing/test", CredentialKind::KubernetesSecrets)),
        ),
        (
            "sha256-a2eace2182b24cdbbb730798e47b10709b9ef5e0f0c1624a3bc06c8ca987727a",
            Some(("docker.io/testing/test", CredentialKind::NodePodsAccessible)),
        ),
        (
            "sha256-dd1dd8dc6a329b7e1c2e43951302b23a047cb20fd3e10090e4ce7e8396035405",
            Some(("docker.io/testing/test", CredentialKind::NodePodsAccessible)),
        ),
        (
            "sha256-917e8b3439bf8a7a6f37ffd2d2ddfdfafac8a251bf214a0be39675742b420b1a",
            Some(("docker.io/testing/test", CredentialKind::ServiceAccounts)),
        ),
        (
            "sha256-f4058727984875eb66ddbf289f7013096d4cbaa167e591fbcb2e447e36391c1f",
            Some((
                "docker.io/testing/policyexempt",
                CredentialKind::KubernetesSecrets,
            )),
        ),
        (
            "sha256-d77ed7480bc819274ea7a4dba5b2699b2d3f73c6e578762df42e5a8224771096",
            Some(("docker.io/testing/test", CredentialKind::KubernetesSecrets)),
        ),
        // No credential mapping at all: a record, but of nothing.
        (
            "sha256-7045bdd498b0e4b3963d50f906793ffbd68dc98686ec46c5b499a0a640a560b2",
            None,
        ),
        // Not JSON (upstream's "broken record").
        (
            "sha256-e766e4624f9bc4d3847d6c5b470d9d5362cc8d0c250bd9572daf95278e044263",
            None,
        ),
    ];
    for (file, want) in cases {
        let got = upstream(file);
        match want {
            Some((name, kind)) => {
                let r = got.unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(r.credential_mapping[name].kind(), kind, "{file}");
                // The file name is the SHA-256 of imageRef (fs_pullrecords.go cacheFilename).
                use sha2::Digest as _;
                let hash = hex::encode(sha2::Sha256::digest(r.image_ref.as_bytes()));
                assert_eq!(file, format!("sha256-{hash}"));
            }
            None if file.starts_with("sha256-7045") => {
                assert!(got.unwrap().credential_mapping.is_empty())
            }
            None => assert!(got.is_err(), "{file} decodes"),
        }
    }
    // A field the types do not have is refused, as by the kubelet's strict decoder.
    let unknown = br#"{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1alpha1","imageRef":"x","credentialMapping":{"a/b":{"kubernetesSecretCoordinates":[]}}}"#;
    assert!(parse_record(unknown).is_err());
    let other = br#"{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1alpha1","imageRef":"x"}"#;
    assert!(parse_record(other).is_err());
}

/// The kubelet's allowlist patterns (`image_pull_policies_test.go`): an exact name, or a
/// prefix ending in `/*`.
#[test]
fn allowlist_patterns_match_as_the_kubelets_do() {
    let list: Vec<String> = ["docker.io/testing/policyexempt", "registry.k8s.io/*"]
        .map(String::from)
        .to_vec();
    assert!(allowlisted(&list, "docker.io/testing/policyexempt"));
    assert!(!allowlisted(&list, "docker.io/testing/policyexempt-not"));
    assert!(allowlisted(&list, "registry.k8s.io/pause"));
    assert!(allowlisted(&list, "registry.k8s.io/sig-storage/csi"));
    assert!(!allowlisted(&list, "registry.k8s.io.evil/pause"));
    assert!(!allowlisted(&list, "docker.io/testing/test"));
}

fn node(config: Option<&str>) -> NodeCache {
    let config = config.map(|c| PathBuf::from(format!("{NODE}/{c}")));
    load(
        &PathBuf::from(format!("{NODE}/image_manager")),
        config.as_deref(),
    )
}

use std::path::PathBuf;

/// A node's records under each policy: which image a pod with IfNotPresent starts unchecked.
#[test]
fn the_node_starts_images_unverified_as_its_policy_and_records_say() {
    let naming = format!("{ECR}/naming-server-service");
    let billing = format!("{ECR}/billing-service");
    let absent = format!("{ECR}/auth-service");

    let default = node(Some("kubelet-config-default.yaml"));
    assert!(default.unreadable.is_empty(), "{:?}", default.unreadable);
    assert_eq!(default.records.len(), 2, "the .tmp is skipped");
    assert_eq!(default.policy.policy, Policy::NeverVerifyPreloadedImages);
    assert_eq!(default.policy.feature_gate, None);
    let j = default.judge(&naming);
    assert!(j.held && j.starts_unverified, "{j:?}");
    assert_eq!(j.credential_kind, Some(CredentialKind::NodePodsAccessible));
    assert_eq!(j.last_updated_time.as_deref(), Some("2026-11-30T08:14:02Z"));
    let j = default.judge(&billing);
    assert!(j.held && !j.starts_unverified, "{j:?}");
    assert_eq!(j.credential_kind, Some(CredentialKind::KubernetesSecrets));
    let j = default.judge(&absent);
    assert!(!j.held && !j.starts_unverified);

    let never = node(Some("kubelet-config-neververify.json"));
    assert_eq!(never.policy.policy, Policy::NeverVerify);
    assert_eq!(never.policy.feature_gate, Some(true));
    assert!(never.judge(&billing).starts_unverified);

    let allow = node(Some("kubelet-config-allowlist.yaml"));
    assert_eq!(allow.policy.policy, Policy::NeverVerifyAllowlistedImages);
    assert!(allow.judge(&billing).starts_unverified);
    assert!(allow.judge(&naming).starts_unverified, "nodePodsAccessible");

    let off = node(Some("kubelet-config-gate-off.yaml"));
    assert_eq!(off.policy.feature_gate, Some(false));
    let j = off.judge(&billing);
    assert!(
        j.starts_unverified,
        "the gate off: AlwaysVerify means nothing"
    );
    assert!(j.reason.contains("KubeletEnsureSecretPulledImages"));
}

#[test]
fn what_cannot_be_read_is_listed_not_fatal() {
    let c = load(
        Path::new("/nonexistent/image_manager"),
        Some(Path::new(&format!("{NODE}/image_manager/pulled"))),
    );
    assert_eq!(c.unreadable.len(), 2, "{:?}", c.unreadable);
    assert!(c.records.is_empty());
    assert_eq!(c.policy, KubeletPolicy::default());
    assert!(parse_kubelet_config("kind: CredentialProviderConfig\n").is_err());
    assert!(
        parse_kubelet_config(
            "kind: KubeletConfiguration\nimagePullCredentialsVerificationPolicy: Sometimes\n"
        )
        .is_err()
    );
}

#[test]
fn an_unset_pull_policy_is_the_kubelets_default() {
    assert_eq!(
        effective_pull_policy(None, "a.example/x:1.2"),
        "IfNotPresent"
    );
    assert_eq!(effective_pull_policy(None, "a.example/x:latest"), "Always");
    assert_eq!(effective_pull_policy(None, "a.example/x"), "Always");
    assert_eq!(
        effective_pull_policy(
            None,
            "a.example/x@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        ),
        "IfNotPresent"
    );
    assert_eq!(
        effective_pull_policy(Some("Never"), "a.example/x:latest"),
        "Never"
    );
}
