//! Issue 22 point 2: images already on the node. The probe reads the kubelet's pulled-image
//! records and its KubeletConfiguration, as recorded in `tests/fixtures/kubelet/node/`, and
//! reports per image whether this node would start it for an `IfNotPresent` pod without a
//! credential check; with `--images-from`, which of the workload's containers do.

mod common;

use common::fake_api::NamingServer;
use common::*;
use serde_json::{Value, json};

const NS: &str = "consultingfirm";

fn fixtures(path: &str) -> String {
    format!(
        "{}/tests/fixtures/kubelet/node/{path}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn node_cache<'a>(report: &'a Value, image: &str) -> &'a Value {
    let img = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == image)
        .unwrap_or_else(|| panic!("{image} not in the report"));
    &img["node_cache"]
}

#[test]
fn a_cached_image_pulled_with_node_credentials_starts_unverified() {
    let s = Stack::get();
    let naming = s.image("naming-server-service:latest");
    let billing = s.image("billing-service:latest");
    let absent = s.image("auth-service:latest");
    let dir = fixtures("image_manager");
    let config = fixtures("kubelet-config-default.yaml");
    let run = check(&[
        &naming,
        &billing,
        &absent,
        "--kubelet-image-manager-dir",
        &dir,
        "--kubelet-config",
        &config,
    ]);
    assert_eq!(run.code, 0, "the cache decides no verdict: {}", run.stderr);
    let r = run.report();

    let c = node_cache(&r, &naming);
    assert_eq!(c["held"], true);
    assert_eq!(c["if_not_present_starts_unverified"], true);
    assert_eq!(c["credential_kind"], "node_pods_accessible");
    assert_eq!(c["policy"], "NeverVerifyPreloadedImages");
    assert_eq!(c["feature_gate"], Value::Null);
    assert_eq!(
        c["unreadable"], 0,
        "the .tmp record is skipped, as the kubelet skips it"
    );
    let img = &r["images"][0];
    let f = finding(img, "NODE_IMAGE_CACHED_UNVERIFIED");
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["evidence"]["policy"], "NeverVerifyPreloadedImages");
    assert_eq!(f["evidence"]["credential_kind"], "node_pods_accessible");
    assert_eq!(f["evidence"]["last_updated_time"], "2026-11-30T08:14:02Z");

    // Pulled with a pull Secret: the kubelet re-checks, so no finding.
    let c = node_cache(&r, &billing);
    assert_eq!(c["held"], true);
    assert_eq!(c["credential_kind"], "kubernetes_secrets");
    assert_eq!(c["if_not_present_starts_unverified"], false);
    let c = node_cache(&r, &absent);
    assert_eq!(c["held"], false);
    for img in r["images"].as_array().unwrap().iter().skip(1) {
        assert!(!codes(img).contains(&"NODE_IMAGE_CACHED_UNVERIFIED".to_string()));
    }

    // NeverVerify: the Secret-pulled image starts unchecked too.
    let run = check(&[
        &billing,
        "--kubelet-image-manager-dir",
        &dir,
        "--kubelet-config",
        &fixtures("kubelet-config-neververify.json"),
    ]);
    let r = run.report();
    assert_eq!(
        finding(&r["images"][0], "NODE_IMAGE_CACHED_UNVERIFIED")["evidence"]["policy"],
        "NeverVerify"
    );
}

#[test]
fn unreadable_records_are_said_once() {
    let s = Stack::get();
    let naming = s.image("naming-server-service:latest");
    let run = check(&[
        &naming,
        "--kubelet-image-manager-dir",
        "/nonexistent/image_manager",
    ]);
    let r = run.report();
    let f = finding(&r["images"][0], "NODE_CACHE_UNREADABLE");
    assert_eq!(f["evidence"]["count"], 1);
    assert_eq!(node_cache(&r, &naming)["held"], false);
    // The config flag needs the records' directory.
    let run = check(&[&naming, "--kubelet-config", "/x"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// With --images-from, the workload's containers that use IfNotPresent are named: a green
/// workload whose image cannot be pulled anywhere new is called that.
#[test]
fn the_workloads_if_not_present_containers_are_named() {
    let s = Stack::get();
    let app = s.image("naming-server-service:latest");
    // `migrate` (init) asks for the image with IfNotPresent, `app` with Always.
    let api = NamingServer::new(NS, &app)
        .docker_secret(
            "ecr-pull",
            s.var("STACK_ECR_HOST"),
            "AWS",
            s.var("STACK_REGISTRY_PASSWORD"),
        )
        .start();
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(tmp.path(), NS);
    let dir = fixtures("image_manager");
    let run = probe(
        &[
            "check",
            "--images-from",
            "deployment/naming-server",
            "--kubelet-image-manager-dir",
            &dir,
        ],
        &[("KUBECONFIG", Some(kubeconfig.to_str().unwrap()))],
    );
    let r = run.report();
    let c = node_cache(&r, &app);
    assert_eq!(c["if_not_present_containers"], json!(["migrate"]));
    let f = finding(&r["images"][0], "NODE_IMAGE_CACHED_UNVERIFIED");
    assert_eq!(
        f["evidence"]["if_not_present_containers"],
        json!(["migrate"])
    );
    assert!(
        f["summary"].as_str().unwrap().contains("migrate"),
        "{}",
        f["summary"]
    );
}

/// A node path that fails now: the kubelet may still pull with the answer it cached before,
/// for up to the provider's defaultCacheDuration (no answer now to read cacheDuration from).
#[test]
fn a_failing_node_path_says_how_long_the_kubelet_may_still_pull() {
    let s = Stack::get();
    let naming = s.image("naming-server-service:latest");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("provider.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: ecr-credential-provider\n    matchImages: [\"*.dkr.ecr.*.amazonaws.com\"]\n    defaultCacheDuration: 12h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n",
    )
    .unwrap();
    // The bin dir has no plugin: the path fails now.
    let run = check(&[
        &naming,
        "--credential-provider-config",
        config.to_str().unwrap(),
        "--credential-provider-bin-dir",
        dir.path().to_str().unwrap(),
    ]);
    let r = run.report();
    let path = &r["images"][0]["paths"]["node_credential_provider"];
    assert_eq!(path["status"], "fail", "{path:#}");
    let f = path["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "NODE_PROVIDER_CACHE_GRACE")
        .unwrap_or_else(|| panic!("no grace finding: {path:#}"));
    assert_eq!(f["severity"], "info");
    assert_eq!(f["evidence"]["cache_duration"], "12h0m0s");
    assert_eq!(
        f["evidence"]["cache_duration_source"],
        "the provider's defaultCacheDuration"
    );
    let until = f["evidence"]["kubelet_may_succeed_until"].as_i64().unwrap();
    let expected = now() + 12 * 3600;
    assert!((until - expected).abs() < 120, "{until} vs {expected}");
}
