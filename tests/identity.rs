//! The identity stages against the real stack, secrets staying in the process, and bad input.

mod common;

use common::*;
use serde_json::Value;

fn with_token(claims: &Value) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_token(dir.path(), "token", claims);
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[("AWS_WEB_IDENTITY_TOKEN_FILE", Some(path.to_str().unwrap()))],
    );
    (dir, run)
}

fn identity_codes(r: &Value) -> Vec<String> {
    let stages = r["identity"]["stages"].as_array().unwrap();
    stages
        .iter()
        .flat_map(|s| s["findings"].as_array().unwrap())
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_expired_token_fails_before_sts() {
    let mut c = good_claims();
    c["exp"] = (now() - 600).into();
    let (_, run) = with_token(&c);
    assert_eq!(run.code, 1);
    let r = run.report();
    assert_eq!(r["verdict"], "fail");
    assert_eq!(identity_codes(&r), vec!["WEB_IDENTITY_TOKEN_EXPIRED"]);
    assert_eq!(stage(&r["identity"]["stages"], "sts")["status"], "skip");
    assert_eq!(r["identity"]["token"]["expires_at"], c["exp"]);
    assert!(r["identity"]["caller"].is_null());
    assert_eq!(r["images"][0]["verdict"], "fail");
    assert_eq!(
        stage(&r["images"][0]["stages"], "manifest")["status"],
        "skip"
    );
}

#[test]
fn a_token_for_another_audience_is_flagged() {
    let mut c = good_claims();
    c["aud"] = serde_json::json!(["https://kubernetes.default.svc"]);
    let (_, run) = with_token(&c);
    assert_eq!(run.code, 1);
    assert_eq!(
        identity_codes(&run.report()),
        vec!["WEB_IDENTITY_AUDIENCE_MISMATCH"]
    );
}

#[test]
fn a_malformed_token_is_flagged_without_being_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "not-a-jwt-SECRETISH").unwrap();
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[("AWS_WEB_IDENTITY_TOKEN_FILE", Some(path.to_str().unwrap()))],
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        identity_codes(&run.report()),
        vec!["WEB_IDENTITY_TOKEN_MALFORMED"]
    );
    assert!(!run.stdout.contains("SECRETISH") && !run.stderr.contains("SECRETISH"));
}

#[test]
fn a_missing_token_file_is_a_configuration_error() {
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[(
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            Some("/nonexistent/eks.amazonaws.com/serviceaccount/token"),
        )],
    );
    assert_eq!(run.code, 2);
    let r = run.report();
    assert_eq!(r["verdict"], "error");
    let f = &r["identity"]["stages"][0]["findings"][0];
    assert_eq!(f["code"], "WEB_IDENTITY_TOKEN_UNREADABLE");
    assert_eq!(
        f["evidence"]["path"],
        "/nonexistent/eks.amazonaws.com/serviceaccount/token"
    );
    assert_eq!(f["evidence"]["reason"], "no such file");
    assert!(f["evidence"]["uid"].is_u64());
}

#[test]
fn without_web_identity_the_default_chain_is_reported_as_such() {
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[
            ("AWS_ROLE_ARN", None),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
            ("AWS_ACCESS_KEY_ID", Some("AKIAIOSFODNN7EXAMPLE")),
            (
                "AWS_SECRET_ACCESS_KEY",
                Some("static-secret-key-that-must-not-leak"),
            ),
        ],
    );
    let r = run.report();
    assert_eq!(r["identity"]["mode"], "environment");
    assert!(r["identity"]["token"].is_null());
    let f = &stage(&r["identity"]["stages"], "web_identity_token")["findings"][0];
    assert_eq!(f["code"], "WEB_IDENTITY_NOT_CONFIGURED");
    assert_eq!(
        f["evidence"]["missing"],
        serde_json::json!(["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"])
    );
    assert_eq!(
        stage(&r["identity"]["stages"], "sts")["status"],
        "pass",
        "static keys still identify"
    );
    assert!(
        !run.stdout.contains("static-secret-key-that-must-not-leak")
            && !run.stderr.contains("static-secret-key-that-must-not-leak")
    );
}

/// The session credentials moto minted for `session`, from its state dump.
fn moto_session(session: &str) -> Vec<String> {
    let s = Stack::get();
    let url = format!("{}/moto-api/data.json", s.var("AWS_ENDPOINT_URL"));
    let out = std::process::Command::new("curl")
        .args(["-sf", &url])
        .output()
        .expect("curl runs");
    let data: Value = serde_json::from_slice(&out.stdout).expect("moto state is JSON");
    let role = data["sts"]["AssumedRole"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["session_name"] == session)
        .unwrap_or_else(|| panic!("no moto session {session}"));
    ["access_key_id", "secret_access_key", "session_token"]
        .iter()
        .map(|k| role[k].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn secrets_never_leave_the_process_even_at_trace() {
    let s = Stack::get();
    let token = std::fs::read_to_string(s.var("AWS_WEB_IDENTITY_TOKEN_FILE")).unwrap();
    let signature = token.rsplit('.').next().unwrap().to_string();
    let password = s.var("STACK_REGISTRY_PASSWORD").to_string();
    let basic = basic_auth("AWS", &password);
    for (i, (format, output)) in [("text", "json"), ("json", "text"), ("json", "json")]
        .iter()
        .enumerate()
    {
        let session = format!("secrets-test-{}-{i}", std::process::id());
        let run = probe(
            &[
                "check",
                &s.image("naming-server-service:latest"),
                &s.image("multiarch:latest"),
                "--log-format",
                format,
                "--output",
                output,
            ],
            &[
                ("RUST_LOG", Some("trace")),
                ("AWS_ROLE_SESSION_NAME", Some(&session)),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        // Trace logging is on: the probe's own debug lines (each request) are there.
        assert!(
            run.stderr.contains("DEBUG") && run.stderr.lines().count() > 10,
            "{}",
            run.stderr
        );
        let mut secrets = vec![
            token.trim().to_string(),
            signature.clone(),
            password.clone(),
            basic.clone(),
        ];
        secrets.extend(moto_session(&session));
        for secret in &secrets {
            assert!(secret.len() >= 16);
            for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret starting {:?} is in {name} ({format} logs)",
                    &secret[..8]
                );
            }
        }
    }
}

#[test]
fn bad_input_is_exit_2_with_the_input_named() {
    let s = Stack::get();
    let img = s.image("naming-server-service:latest");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["check", "Not/A:Valid:Ref"], "Not/A:Valid:Ref"),
        (vec!["check", &img, "--platform", "x86_64"], "x86_64"),
        (vec!["check", &img, "--timeout", "soon"], "soon"),
        (
            vec!["check", &img, "--ca-file", "/nonexistent/ca.pem"],
            "/nonexistent/ca.pem",
        ),
        (
            vec!["check", &img, "--registry-endpoint", "just-a-host"],
            "just-a-host",
        ),
        (vec!["check", &img, "--layers", "some"], "some"),
        (vec!["check"], "IMAGES"),
    ];
    for (args, named) in cases {
        let run = probe(
            &args,
            &[
                ("ECR_PULL_PROBE_CA_FILE", None),
                ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", None),
            ],
        );
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stdout.is_empty(),
            "{args:?}: no report on a usage error"
        );
        assert!(
            run.stderr.contains(named),
            "{args:?} should name {named}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    // A CA file that is not PEM.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let run = probe(&["check", &img, "--ca-file", bad.to_str().unwrap()], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("holds no PEM certificate"),
        "{}",
        run.stderr
    );
}

/// Issue 10: a default run prints nothing of its dependencies' internals on stderr (here the
/// SDK's "config file overridden via environment variable not found").
#[test]
fn a_default_run_is_quiet() {
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[
            ("AWS_CONFIG_FILE", Some("/nonexistent/aws-config")),
            ("RUST_LOG", None),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.trim().is_empty(), "{}", run.stderr);
    // The same warning is there for whoever asks for it.
    let run = probe(
        &["check", &Stack::get().image("naming-server-service:latest")],
        &[
            ("AWS_CONFIG_FILE", Some("/nonexistent/aws-config")),
            ("RUST_LOG", Some("warn")),
        ],
    );
    assert!(run.stderr.contains("aws_runtime"), "{}", run.stderr);
}
