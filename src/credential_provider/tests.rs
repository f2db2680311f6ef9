//! The kubelet's own expectations, transcribed with their sources, then ours.
//!
//! - `config_test.go` (`Test_readCredentialProviderConfig`, `Test_validateCredentialProviderConfig`),
//!   kubernetes/kubernetes `pkg/credentialprovider/plugin/config_test.go` @ 16cef008: which
//!   configs a kubelet starts with and which it refuses.
//! - `plugin_test.go` (`Test_Provide`, `Test_encodeRequest`, `Test_decodeResponse`),
//!   kubernetes/kubernetes `pkg/credentialprovider/plugin/plugin_test.go` (the v1.34 version):
//!   the request's exact bytes and the responses accepted (`Test_Provide`'s key lookups are
//!   with the keyring's tables).
//!
//! The `matchImages` glob rules themselves (`URLsMatch`) are the keyring's, tested with the
//! kubelet's tables in `src/keyring/tests.rs`.

use std::time::Duration;

use super::config::{ConfigError, Provider, go_duration_string, parse, parse_go_duration};
use super::plugin::{Request, ResponseError, encode_request, parse_response};
use super::redact;

fn provider_yaml(extra: &str) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: test
    matchImages:
    - \"registry.io/foobar\"
    defaultCacheDuration: 10m
    apiVersion: credentialprovider.kubelet.k8s.io/v1
{extra}"
    )
}

fn one(yaml: &str) -> Result<Provider, ConfigError> {
    parse("config.yaml", yaml.as_bytes()).map(|mut v| v.remove(0))
}

// Test_readCredentialProviderConfig: configs the kubelet reads.
#[test]
fn kubelet_reads_yaml_and_json_in_every_config_version() {
    for version in ["v1alpha1", "v1beta1", "v1"] {
        let yaml = format!(
            "kind: CredentialProviderConfig
apiVersion: kubelet.config.k8s.io/{version}
providers:
  - name: test1
    matchImages:
    - \"registry.io/one\"
    - \"registry.io/two\"
    defaultCacheDuration: 10m
    apiVersion: credentialprovider.kubelet.k8s.io/{version}
    args:
    - --v=5
    env:
    - name: FOO
      value: BAR
  - name: test2
    matchImages:
    - \"registry.io/two\"
    defaultCacheDuration: 10m
    apiVersion: credentialprovider.kubelet.k8s.io/{version}
"
        );
        let p = parse("c.yaml", yaml.as_bytes()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].args, ["--v=5"]);
        assert_eq!(p[0].env, [("FOO".to_string(), "BAR".to_string())]);
        assert_eq!(p[0].default_cache_duration, Duration::from_secs(600));
    }
    // "config with 1 plugin and 1 image matcher (JSON!)"
    let json = r#"{"kind":"CredentialProviderConfig","apiVersion":"kubelet.config.k8s.io/v1","providers":[{"name":"test","matchImages":["registry.io/foobar"],"defaultCacheDuration":"10m","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}]}"#;
    assert_eq!(parse("c.json", json.as_bytes()).unwrap()[0].name, "test");
}

// Test_readCredentialProviderConfig: what it refuses while decoding.
#[test]
fn kubelet_refuses_to_decode() {
    let cases = [
        // "config with wrong Kind"
        provider_yaml("").replace("kind: CredentialProviderConfig", "kind: WrongKind"),
        // "config with wrong apiversion"
        provider_yaml("").replace("kubelet.config.k8s.io/v1", "foobar/v1alpha1"),
        // "config with invalid typo"
        provider_yaml("    unknownField: 1\n"),
    ];
    for c in cases {
        let e = parse("c.yaml", c.as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Kind { .. }
                    | ConfigError::ConfigVersion { .. }
                    | ConfigError::Decode { .. }
            ),
            "{c}: {e}"
        );
    }
    // "v1alpha1/v1beta1 config with token attributes should fail"
    let old = provider_yaml(
        "    tokenAttributes:
      serviceAccountTokenAudience: audience
      requireServiceAccount: true
      cacheType: Token
",
    )
    .replace(
        "kubelet.config.k8s.io/v1\n",
        "kubelet.config.k8s.io/v1beta1\n",
    );
    let e = parse("c.yaml", old.as_bytes()).unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown field \"providers[0].tokenAttributes\""),
        "{e}"
    );
}

// Test_validateCredentialProviderConfig: the rules a kubelet checks at start.
#[test]
fn kubelet_validation_rules() {
    let base = provider_yaml("");
    let cases: Vec<(String, &str)> = vec![
        (
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n"
                .into(),
            "at least 1 item in plugins is required",
        ),
        (
            base.replace("name: test", "name: foo/../bar"),
            "cannot contain '/'",
        ),
        (
            base.replace("name: test", "name: \"foo bar\""),
            "cannot contain spaces",
        ),
        (base.replace("name: test", "name: \".\""), "cannot be '.'"),
        (base.replace("name: test", "name: \"..\""), "cannot be '..'"),
        (
            base.replace(
                "credentialprovider.kubelet.k8s.io/v1",
                "credentialprovider.kubelet.k8s.io/v1alpha0",
            ),
            "not a supported credential provider protocol version",
        ),
        (
            base.replace("    - \"registry.io/foobar\"\n", "    []\n")
                .replace("matchImages:\n", "matchImages:"),
            "at least 1 item in matchImages is required",
        ),
        (
            base.replace("registry.io/foobar", "%invalid%"),
            "match image is invalid",
        ),
        (
            base.replace("    defaultCacheDuration: 10m\n", ""),
            "defaultCacheDuration is required",
        ),
        (
            base.replace("defaultCacheDuration: 10m", "defaultCacheDuration: -1m"),
            "must not be negative",
        ),
        (
            format!(
                "{base}  - name: test\n    matchImages: [\"a.io\"]\n    defaultCacheDuration: 1m\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n"
            ),
            "duplicate provider name",
        ),
    ];
    for (yaml, want) in cases {
        let e = parse("c.yaml", yaml.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?}, got {e:?} for\n{yaml}");
    }
}

// Test_validateCredentialProviderConfig, the tokenAttributes cases (1.34: cacheType required).
#[test]
fn kubelet_token_attribute_rules() {
    let with = |attrs: &str| provider_yaml(&format!("    tokenAttributes:\n{attrs}"));
    let good = with(
        "      serviceAccountTokenAudience: audience
      requireServiceAccount: true
      requiredServiceAccountAnnotationKeys: [\"now-with-dashes/simple\"]
      optionalServiceAccountAnnotationKeys: [\"now-with-dashes/simple-2\"]
      cacheType: ServiceAccount
",
    );
    let t = one(&good).unwrap().token_attributes.unwrap();
    assert_eq!(t.audience, "audience");
    assert_eq!(t.required_annotation_keys, ["now-with-dashes/simple"]);
    let cases = [
        (
            good.replace("      serviceAccountTokenAudience: audience\n", ""),
            "serviceAccountTokenAudience is required",
        ),
        (
            good.replace("      requireServiceAccount: true\n", ""),
            "requireServiceAccount is required",
        ),
        (
            good.replace(
                "requireServiceAccount: true",
                "requireServiceAccount: false",
            ),
            "requireServiceAccount must be true",
        ),
        (
            good.replace("now-with-dashes/simple\"]", "cantendwithadash-\"]"),
            "not a qualified name",
        ),
        (
            good.replace(
                "\"now-with-dashes/simple\"]",
                "\"now-with-dashes/simple\", \"now-with-dashes/simple\"]",
            ),
            "duplicates",
        ),
        (
            good.replace("now-with-dashes/simple-2", "now-with-dashes/simple"),
            "both required and optional",
        ),
        (
            good.replace("      cacheType: ServiceAccount\n", ""),
            "cacheType is required",
        ),
        (
            good.replace("cacheType: ServiceAccount", "cacheType: Pod"),
            "not one of Token, ServiceAccount",
        ),
        (
            good.replace(
                "credentialprovider.kubelet.k8s.io/v1\n",
                "credentialprovider.kubelet.k8s.io/v1beta1\n",
            ),
            "only supported for credentialprovider.kubelet.k8s.io/v1",
        ),
    ];
    for (yaml, want) in cases {
        let e = parse("c.yaml", yaml.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?}, got {e:?} for\n{yaml}");
    }
}

#[test]
fn the_eks_and_openshift_default_configs_are_accepted() {
    // amazon-eks-ami nodeadm's config.json shape (AL2023) and the machine-config-operator's
    // ecr-credential-provider.yaml (OpenShift/ROSA), abridged to their first patterns.
    let eks = r#"{"apiVersion":"kubelet.config.k8s.io/v1","kind":"CredentialProviderConfig","providers":[{"name":"ecr-credential-provider","matchImages":["*.dkr.ecr.*.amazonaws.com","*.dkr-ecr.*.on.aws","public.ecr.aws"],"defaultCacheDuration":"12h0m0s","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}]}"#;
    let ocp = "apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages: [\"*.dkr.ecr.*.amazonaws.com\", \"*.dkr.ecr.*.amazonaws.com.cn\"]
    defaultCacheDuration: \"12h\"
    apiVersion: credentialprovider.kubelet.k8s.io/v1
";
    for c in [eks, ocp] {
        let p = parse("c", c.as_bytes()).unwrap();
        assert_eq!(p[0].default_cache_duration, Duration::from_secs(12 * 3600));
        assert_eq!(
            p[0].matching_pattern("818140567777.dkr.ecr.us-east-1.amazonaws.com/team/app"),
            Some("*.dkr.ecr.*.amazonaws.com")
        );
        // `*` never spans a dot, and a port must match.
        assert_eq!(
            p[0].matching_pattern("818140567777.dkr.ecr.us-east-1.amazonaws.com:5000/a"),
            None
        );
        assert_eq!(p[0].matching_pattern("docker.io/library/nginx"), None);
    }
}

// Test_encodeRequest: byte for byte, with the encoder's newline.
#[test]
fn kubelet_encode_request() {
    let plain = Request {
        kind: "CredentialProviderRequest",
        api_version: "credentialprovider.kubelet.k8s.io/v1",
        image: "test.registry.io/foobar",
        service_account_token: None,
        service_account_annotations: None,
    };
    assert_eq!(
        String::from_utf8(encode_request(&plain)).unwrap(),
        "{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"image\":\"test.registry.io/foobar\"}\n"
    );
    let annotations = [("domain.io/annotation1".to_string(), "value1".to_string())]
        .into_iter()
        .collect();
    let with_sa = Request {
        service_account_token: Some("service-account-token"),
        service_account_annotations: Some(&annotations),
        ..plain
    };
    assert_eq!(
        String::from_utf8(encode_request(&with_sa)).unwrap(),
        "{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"image\":\"test.registry.io/foobar\",\"serviceAccountToken\":\"service-account-token\",\"serviceAccountAnnotations\":{\"domain.io/annotation1\":\"value1\"}}\n"
    );
}

fn provider(api_version: &str) -> Provider {
    Provider {
        name: "test".into(),
        match_images: vec!["*.registry.io".into()],
        default_cache_duration: Duration::from_secs(60),
        api_version: api_version.into(),
        args: vec![],
        env: vec![],
        token_attributes: None,
    }
}

// Test_decodeResponse, and the apiVersion check before it.
#[test]
fn kubelet_decode_response() {
    for v in ["v1", "v1beta1", "v1alpha1"] {
        let api = format!("credentialprovider.kubelet.k8s.io/{v}");
        let body = format!(
            r#"{{"kind":"CredentialProviderResponse","apiVersion":"{api}","cacheKeyType":"Registry","cacheDuration":"1m","auth":{{"*.registry.io":{{"username":"user","password":"password"}}}}}}"#
        );
        let r = parse_response(body.as_bytes(), &provider(&api)).unwrap();
        assert_eq!(r.cache_key_type, "Registry");
        assert_eq!(r.auth[0].key, "*.registry.io");
        assert_eq!(r.auth[0].username, "user");
    }
    let v1 = "credentialprovider.kubelet.k8s.io/v1";
    let bad = [
        (
            r#"{"kind":"WrongKind","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","auth":{}}"#,
            "kind",
        ),
        (
            r#"{"kind":"CredentialProviderResponse","apiVersion":"foobar.kubelet.k8s.io/v1beta1","cacheKeyType":"Registry","auth":{}}"#,
            "apiVersion",
        ),
        (
            r#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Pod","auth":{}}"#,
            "cacheKeyType",
        ),
        (
            r#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","surprise":1}"#,
            "JSON",
        ),
        ("no arn provided", "JSON"),
    ];
    for (body, want) in bad {
        let e = parse_response(body.as_bytes(), &provider(v1))
            .err()
            .unwrap();
        assert!(e.to_string().contains(want), "{body}: {e}");
    }
    // Never echo stdout: it carries passwords.
    let e = parse_response(br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{"a.io":{"username":"u","password":"hunter2-secret"}}"#, &provider(v1)).err().unwrap();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(matches!(e, ResponseError::NotJson { .. }));
}

#[test]
fn go_durations() {
    for (s, secs) in [
        ("12h", 43200.0),
        ("12h0m0s", 43200.0),
        ("1m30s", 90.0),
        ("0", 0.0),
        ("0s", 0.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
    ] {
        assert_eq!(parse_go_duration(s).unwrap().as_secs_f64(), secs, "{s}");
    }
    for s in ["", "12", "h", "-1m", "1x", "1.2.3s"] {
        assert!(parse_go_duration(s).is_err(), "{s}");
    }
    assert_eq!(go_duration_string(Duration::from_secs(6 * 3600)), "6h0m0s");
    assert_eq!(go_duration_string(Duration::from_secs(90)), "1m30s");
}

#[test]
fn redaction_removes_known_secrets_and_token_shapes() {
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl";
    let text = format!(
        "E1128 main.go:1] failed: token {jwt} password=hunter2hunter2 key {}\nrole arn:aws:iam::111122223333:role/node",
        "A".repeat(80)
    );
    let r = redact(&text, &["hunter2hunter2".into()]);
    assert!(
        !r.contains("eyJ") && !r.contains("hunter2") && !r.contains("AAAA"),
        "{r}"
    );
    assert!(
        r.contains("arn:aws:iam::111122223333:role/node"),
        "ARNs stay: {r}"
    );
}

/// Issue 21 point 2: the plugin gets the kubelet's environment plus the provider's `env`,
/// never the probe's AWS identity (web identity, keys, a profile) nor its own settings.
#[test]
fn a_plugin_gets_the_kubelets_environment_not_the_probes() {
    use crate::credential_provider::plugin::plugin_env;
    let ours = [
        ("PATH", "/usr/bin"),
        ("HOME", "/home/probe"),
        ("HTTPS_PROXY", "http://proxy:3128"),
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/token"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ("AWS_PROFILE", "pod"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ("ECR_PULL_PROBE_REGISTRY_ENDPOINT", "x=y"),
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let provider_env = vec![
        (
            "AWS_ENDPOINT_URL".to_string(),
            "http://127.0.0.1:9".to_string(),
        ),
        ("HOME".to_string(), "/root".to_string()),
    ];
    let env = plugin_env(ours, &provider_env);
    let keys: Vec<&str> = env.vars.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["PATH", "HTTPS_PROXY", "AWS_ENDPOINT_URL", "HOME"]);
    // A provider's value wins over the kubelet's own, as in `mergeEnvVars`.
    assert!(env.vars.contains(&("HOME".into(), "/root".into())));
    assert!(
        env.vars
            .contains(&("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()))
    );
    assert_eq!(
        env.withheld,
        [
            "AWS_ACCESS_KEY_ID",
            "AWS_ENDPOINT_URL",
            "AWS_PROFILE",
            "AWS_ROLE_ARN",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "ECR_PULL_PROBE_REGISTRY_ENDPOINT"
        ]
    );
}

/// Issue 21 point 4: a key the kubelet's keyring would skip drops only that key.
#[test]
fn a_response_key_past_the_caps_drops_only_that_key() {
    let long = format!("{}.example", "a".repeat(600));
    let body = format!(
        r#"{{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{{"{long}":{{"username":"u","password":"p"}},"ok.example":{{"username":"u","password":"p"}}}}}}"#
    );
    let p = provider("credentialprovider.kubelet.k8s.io/v1");
    let r = parse_response(body.as_bytes(), &p).unwrap();
    assert_eq!(r.auth.len(), 1);
    assert_eq!(r.auth[0].key, "ok.example");
    assert_eq!(r.skipped_keys.len(), 1);
    assert!(r.skipped_keys[0].key.ends_with('…'));
}

// Issue 23: a plugin that answers, leaves `sleep 45 &` holding its stdout and exits 0. The
// answer is used as soon as the plugin exits (not at the deadline, not as "did not answer"),
// and the sleep is killed and reaped: no process of that pid is left, not even a zombie.
#[tokio::test(flavor = "current_thread")]
async fn a_plugins_leftover_child_is_killed_and_reaped_and_its_answer_used() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("test");
    let answer = r#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","auth":{}}"#;
    std::fs::write(
        &script,
        format!("#!/bin/sh\ncat >/dev/null\nsleep 45 &\necho $! >&2\necho '{answer}'\nexit 0\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = provider("credentialprovider.kubelet.k8s.io/v1");
    let started = tokio::time::Instant::now();
    let env = super::plugin::plugin_env(std::env::vars(), &p.env);
    let out = super::plugin::exec(
        dir.path(),
        &p,
        &env,
        b"{}\n",
        started + Duration::from_secs(20),
    )
    .await
    .expect("the plugin exited with an answer");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(out.status.success());
    assert!(parse_response(&out.stdout, &p).is_ok());
    let sleep: i32 = String::from_utf8_lossy(&out.stderr).trim().parse().unwrap();
    let pid = rustix::process::Pid::from_raw(sleep).unwrap();
    // kill(pid, 0) succeeds for a live process and for a zombie nobody reaped.
    assert_eq!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH),
        "the plugin's child {sleep} is still there"
    );
}
