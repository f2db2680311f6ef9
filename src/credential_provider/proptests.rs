//! Property tests of the credential provider protocol (docs/property-tests.md): the config
//! file and the plugin's stdout are outside input, so any bytes give an answer, never a panic,
//! in bounded time; configs and responses written from their parts read back to the same
//! parts; durations round-trip through Go's format; `redact` never lets a secret through.

use std::time::{Duration, Instant};

use base64::Engine as _;
use proptest::prelude::*;

use super::config::{
    CONFIG_VERSIONS, MAX_CONFIG_BYTES, PROTOCOL_VERSIONS, Provider, go_duration_string, parse,
    parse_go_duration,
};
use super::plugin::{ResponseError, parse_response};
use super::redact;

/// `matchImages` patterns the kubelet accepts.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*.dkr.ecr.*.amazonaws.com".to_string()),
        Just("*.dkr-ecr.*.on.aws".to_string()),
        "[a-z0-9*]{1,8}(\\.[a-z0-9*]{1,8}){0,3}(:[0-9]{1,5})?(/[a-z0-9]{1,8}){0,2}",
    ]
}

fn provider() -> impl Strategy<Value = Provider> {
    (
        prop::collection::vec(pattern(), 1..4),
        0u64..10_000_000,
        prop::sample::select(PROTOCOL_VERSIONS.to_vec()),
        prop::collection::vec(any::<String>(), 0..3),
        prop::collection::vec(("[A-Z_]{1,10}", any::<String>()), 0..3),
    )
        .prop_map(|(match_images, secs, api, args, env)| Provider {
            name: String::new(),
            match_images,
            default_cache_duration: Duration::from_secs(secs),
            api_version: api.to_string(),
            args,
            env,
            token_attributes: None,
        })
}

/// A config the kubelet starts with, in JSON (which is YAML too).
fn render_config(version: &str, providers: &[Provider]) -> String {
    serde_json::json!({
        "apiVersion": version,
        "kind": "CredentialProviderConfig",
        "providers": providers.iter().map(|p| serde_json::json!({
            "name": p.name,
            "matchImages": p.match_images,
            "defaultCacheDuration": go_duration_string(p.default_cache_duration),
            "apiVersion": p.api_version,
            "args": p.args,
            "env": p.env.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

fn ecr_provider() -> Provider {
    Provider {
        name: "ecr-credential-provider".into(),
        match_images: vec!["*.dkr.ecr.*.amazonaws.com".into()],
        default_cache_duration: Duration::from_secs(600),
        api_version: PROTOCOL_VERSIONS[0].into(),
        args: vec![],
        env: vec![],
        token_attributes: None,
    }
}

proptest! {
    /// Any bytes as a config file.
    #[test]
    fn config_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse("c.yaml", &bytes);
    }

    /// YAML-shaped text over the config's vocabulary (anchors, aliases, flow and block forms).
    #[test]
    fn config_never_panics_on_yaml_shaped_text(
        s in r#"((apiVersion|kind|providers|name|matchImages|defaultCacheDuration|args|env|value|tokenAttributes)?[:\-\[\]{}&*!|>'" ,\n]{0,4}(kubelet\.config\.k8s\.io/v1|[a-z0-9]{0,6}|a|&a|\*a)\n?){0,12}"#,
    ) {
        let _ = parse("c.yaml", s.as_bytes());
    }

    /// Round trip: providers written as a config read back to the same providers, in order.
    #[test]
    fn config_round_trips(
        version in prop::sample::select(CONFIG_VERSIONS.to_vec()),
        mut providers in prop::collection::vec(provider(), 1..4),
    ) {
        for (i, p) in providers.iter_mut().enumerate() {
            p.name = format!("provider-{i}");
        }
        let text = render_config(version, &providers);
        let got = parse("c.json", text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, providers);
    }

    /// Any text as a duration; Go's own rendering of whole seconds parses back to the same.
    #[test]
    fn duration_never_panics_and_round_trips(s in "[+-]?[0-9.]{0,30}(ns|us|µs|ms|s|m|h|x)?([0-9.]{0,5}[a-zµ]{0,2}){0,3}", secs in 0u64..(1 << 40)) {
        let _ = parse_go_duration(&s);
        let d = Duration::from_secs(secs);
        prop_assert_eq!(parse_go_duration(&go_duration_string(d)), Ok(d));
    }

    /// `<h>h<m>m<s>s` is the sum of its parts.
    #[test]
    fn duration_units_add_up(h in 0u64..100_000, m in 0u64..1000, s in 0u64..1000, ms in 0u64..1000) {
        let text = format!("{h}h{m}m{s}s{ms}ms");
        let want = Duration::from_secs(h * 3600 + m * 60 + s) + Duration::from_millis(ms);
        let got = parse_go_duration(&text).map_err(TestCaseError::fail)?;
        // Float arithmetic, as Go's is integer: equal to well under a microsecond.
        prop_assert!(got.abs_diff(want) < Duration::from_micros(1), "{text}: {got:?} vs {want:?}");
    }

    /// Any bytes as a plugin's stdout.
    #[test]
    fn response_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse_response(&bytes, &ecr_provider());
    }

    /// Round trip: a response written from its parts reads back to the same keys, users and
    /// passwords, with `basic` the base64 of `user:password`; no error ever quotes a password.
    #[test]
    fn response_round_trips(
        auth in prop::collection::btree_map(pattern(), ("[^:]{0,20}", any::<String>()), 0..4),
        cache_key_type in prop::sample::select(vec!["Image", "Registry", "Global"]),
        cache_secs in prop::option::of(0u64..1_000_000),
    ) {
        let provider = ecr_provider();
        let mut doc = serde_json::json!({
            "kind": "CredentialProviderResponse",
            "apiVersion": provider.api_version,
            "cacheKeyType": cache_key_type,
            "auth": auth.iter().map(|(k, (u, p))| (k.clone(), serde_json::json!({"username": u, "password": p})))
                .collect::<serde_json::Map<_, _>>(),
        });
        if let Some(s) = cache_secs {
            doc["cacheDuration"] = serde_json::json!(go_duration_string(Duration::from_secs(s)));
        }
        let r = parse_response(doc.to_string().as_bytes(), &provider)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.cache_key_type.as_str(), cache_key_type);
        let got: Vec<(String, String, String, String)> = r
            .auth
            .iter()
            .map(|a| (a.key.clone(), a.username.clone(), a.password.expose().clone(), a.basic.expose().clone()))
            .collect();
        let want: Vec<(String, String, String, String)> = auth
            .iter()
            .map(|(k, (u, p))| {
                let basic = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                (k.clone(), u.clone(), p.clone(), basic)
            })
            .collect();
        prop_assert_eq!(got, want);

        // The same response with an unknown field, a wrong kind, a truncation: refused, and
        // the refusal never carries a password.
        let text = doc.to_string();
        let mut unknown = doc.clone();
        unknown["extra"] = serde_json::json!(1);
        let mut kind = doc.clone();
        kind["kind"] = serde_json::json!("Other");
        for bad in [unknown.to_string().as_bytes(), kind.to_string().as_bytes(), &text.as_bytes()[..text.len() / 2]] {
            let e = parse_response(bad, &provider).err().ok_or_else(|| TestCaseError::fail("accepted"))?;
            for (_, p) in auth.values() {
                prop_assert!(p.len() < 4 || !e.to_string().contains(p.as_str()), "{}", e);
            }
        }
    }

    /// No secret of eight or more characters passed in survives in the output, wherever and
    /// however often it stands in the text.
    #[test]
    fn redact_never_lets_a_secret_through(
        secrets in prop::collection::vec(prop_oneof!["[A-Za-z0-9+/=_.-]{8,40}", "\\PC{8,20}"], 1..4),
        pieces in prop::collection::vec(("\\PC{0,20}", any::<prop::sample::Index>()), 0..6),
    ) {
        let mut text = String::new();
        for (filler, which) in &pieces {
            text.push_str(filler);
            text.push_str(which.get::<String>(&secrets));
        }
        let out = redact(&text, &secrets);
        for s in &secrets {
            prop_assert!(!out.contains(s.as_str()), "{:?} in {:?}", s, out);
        }
    }

    /// Text holding no secret and nothing token-shaped comes out as it went in.
    #[test]
    fn redact_keeps_ordinary_text(text in "[a-zA-Z0-9 .,:;()'-]{0,200}") {
        prop_assume!(!text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-.".contains(c))).any(|run| run.len() >= 64 || (run.starts_with("eyJ") && run.matches('.').count() == 2 && run.len() >= 20)));
        prop_assert_eq!(redact(&text, &[]), text);
    }
}

/// A YAML alias bomb within the size cap is refused by the decoder's budget, quickly.
#[test]
fn proptest_config_alias_bomb_is_bounded() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        yaml.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    yaml.push_str("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n");
    assert!(yaml.len() < MAX_CONFIG_BYTES);
    let start = Instant::now();
    assert!(parse("bomb.yaml", yaml.as_bytes()).is_err());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// Over-cap stdout is refused before it is decoded.
#[test]
fn proptest_response_over_the_cap_is_refused_unread() {
    let big = vec![b' '; super::plugin::MAX_STDOUT + 1];
    assert!(matches!(
        parse_response(&big, &ecr_provider()),
        Err(ResponseError::TooLarge)
    ));
}
