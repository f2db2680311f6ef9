//! The Bearer token flow of non-ECR registries (Docker Hub, GHCR, Harbor) for real: the
//! stack's second docker-registry runs distribution's `auth: token`, and its token issuer
//! (`scripts/lib/token_issuer.py`) hands out ES256 JWTs by a small policy: anonymous may pull
//! `public/*`; `puller` may also pull `private/*`; `outsider` has valid credentials and no
//! grant on `private/*`. Over TLS with the stack's CA, reached by its own address, no endpoint
//! override: the realm is another port of the registry's host, which the hop rule allows.

mod common;

use common::*;
use serde_json::{Value, json};

fn registry() -> &'static str {
    Stack::get().var("STACK_TOKEN_REGISTRY")
}

fn image(repo: &str) -> String {
    format!("{}/{repo}:latest", registry())
}

/// The issuer's grant log from line `from` on, parsed.
fn grants_since(from: usize) -> Vec<Value> {
    let text =
        std::fs::read_to_string(Stack::get().var("STACK_TOKEN_ISSUER_LOG")).unwrap_or_default();
    text.lines()
        .skip(from)
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn grant_count() -> usize {
    grants_since(0).len()
}

/// A run with the pull secret only: the pod path of a non-ECR image is anonymous.
fn check_with_secret(repo: &str, user: &str, password: &str) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_docker_config(dir.path(), registry(), user, password);
    let run = probe(
        &[
            "check",
            &image(repo),
            "--docker-config",
            config.to_str().unwrap(),
            // A node with no credentials of its own: the secret is the kubelet's whole list.
            "--node-docker-config",
            NO_NODE_DOCKER_CONFIG,
        ],
        &[("RUST_LOG", Some("trace"))],
    );
    (dir, run)
}

#[test]
fn an_anonymous_pull_of_a_public_image_takes_a_real_token() {
    let before = grant_count();
    let run = check(&[&image("public/small")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = run.report();
    let img = &r["images"][0];
    assert_eq!(img["verdict"], "pass");
    for name in ["registry_auth", "manifest", "config", "layers"] {
        assert_eq!(stage(&img["stages"], name)["status"], "pass", "{name}");
    }
    assert!(img["blobs"].as_array().unwrap().len() >= 2, "{img:#}");
    // The probe asked the realm from the challenge, without credentials, for pull on this
    // repository and no more; the issuer granted it.
    let grants = grants_since(before);
    let ours: Vec<&Value> = grants
        .iter()
        .filter(|g| g["scopes"] == json!(["repository:public/small:pull"]))
        .collect();
    assert_eq!(ours.len(), 1, "{grants:#?}");
    assert_eq!(ours[0]["account"], "anonymous");
    assert_eq!(ours[0]["service"], Stack::get().var("STACK_TOKEN_SERVICE"));
    assert_eq!(ours[0]["access"][0]["actions"], json!(["pull"]));
}

#[test]
fn a_private_image_without_credentials_is_refused_with_an_honest_finding() {
    let run = check(&[&image("private/small")]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = run.report();
    let img = &r["images"][0];
    assert_eq!(img["verdict"], "fail");
    // The token exchange itself worked (the issuer answers anonymous requests); the registry
    // refused the manifest because the token grants nothing on private/*.
    assert_eq!(stage(&img["stages"], "registry_auth")["status"], "pass");
    assert_eq!(stage(&img["stages"], "manifest")["status"], "fail");
    let f = finding(img, "REGISTRY_UNAUTHORIZED");
    assert_eq!(f["evidence"]["http_status"], 401);
    assert_eq!(f["evidence"]["challenge_error"], "insufficient_scope");
    assert_eq!(f["evidence"]["registry_codes"], json!(["UNAUTHORIZED"]));
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains("no anonymous pull of private/small"),
        "{summary}"
    );
    let fix = f["remediation"].as_str().unwrap();
    assert!(fix.contains("pull secret"), "{fix}");
    assert!(!fix.contains("ECR"), "not an ECR registry: {fix}");
}

#[test]
fn a_pull_secret_for_the_private_image_is_exchanged_for_a_token_and_stays_secret() {
    let s = Stack::get();
    let (user, password) = (
        s.var("STACK_TOKEN_PULL_USER"),
        s.var("STACK_TOKEN_PULL_PASSWORD"),
    );
    let before = grant_count();
    let (_dir, run) = check_with_secret("private/small", user, password);
    let r = run.report();
    let img = &r["images"][0];
    let p = &img["paths"]["pull_secrets"];
    assert_eq!(p["status"], "pass", "{p:#}\n{}", run.stderr);
    assert_eq!(p["entry"], registry());
    assert_eq!(p["username"], user);
    assert_eq!(stage(&p["stages"], "layers")["status"], "pass");
    // The pod path has no credentials for this registry, so the image fails on it: the
    // kubelet's path is the one that works, and the report says so.
    assert_eq!(img["paths"]["pod_identity"], "fail");
    let grants = grants_since(before);
    assert!(
        grants.iter().any(|g| g["account"] == user
            && g["scopes"] == json!(["repository:private/small:pull"])
            && g["access"][0]["actions"] == json!(["pull"])),
        "{grants:#?}"
    );
    // Neither the password, its Basic form, nor the token may reach the output, even with
    // every log at trace. The token is not known to the test; its signed header is the same
    // for every token of the issuer, so a JWT of it would show as that prefix.
    let basic = basic_auth(user, password);
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains(password));
        assert!(!out.contains(&basic));
        assert!(!out.contains("eyJ0eXAiOiJKV1Qi"), "a JWT in the output");
    }
    // The logs were on: every request of the exchange is logged, the token request included.
    assert!(
        run.stderr.contains(r#"path="/token""#),
        "RUST_LOG=trace took effect: {}",
        run.stderr
    );
}

#[test]
fn valid_credentials_without_access_are_told_from_a_wrong_password() {
    let s = Stack::get();
    let (_d, run) = check_with_secret(
        "private/small",
        s.var("STACK_TOKEN_OUTSIDER_USER"),
        s.var("STACK_TOKEN_OUTSIDER_PASSWORD"),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let r = run.report();
    let p = &r["images"][0]["paths"]["pull_secrets"];
    assert_eq!(p["status"], "fail");
    let f = p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .chain(
            p["stages"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["findings"].as_array().unwrap()),
        )
        .find(|f| f["code"] == "REGISTRY_UNAUTHORIZED")
        .unwrap_or_else(|| panic!("{p:#}"));
    assert_eq!(f["evidence"]["challenge_error"], "insufficient_scope");
    let fix = f["remediation"].as_str().unwrap();
    assert!(fix.contains("user outsider"), "{fix}");
    assert!(!fix.contains("Fix the username and password"), "{fix}");

    // The same user with a wrong password: the issuer refuses it, and that is the password.
    let (_d, run) = check_with_secret("private/small", "outsider", "not-the-password");
    let r = run.report();
    let p = &r["images"][0]["paths"]["pull_secrets"];
    assert_eq!(p["status"], "fail");
    let auth = stage(&p["stages"], "registry_auth");
    assert_eq!(auth["status"], "fail", "{p:#}");
    let f = &auth["findings"][0];
    assert_eq!(f["code"], "REGISTRY_UNAUTHORIZED");
    assert_eq!(f["evidence"]["request"], "the token request");
    assert!(
        f["remediation"]
            .as_str()
            .unwrap()
            .contains("Fix the username and password"),
        "{f:#}"
    );
}
