//! Property tests of the docker config parser (docs/property-tests.md): a pull Secret holds
//! whatever its editor wrote, so any bytes give entries or `Malformed`, never a panic; a map
//! of registries to credentials written as `.dockerconfigjson` or `.dockercfg`, with `auth`
//! or with `username`/`password`, parses back to the same keys, users and passwords.

use std::collections::BTreeMap;

use base64::Engine as _;
use proptest::prelude::*;

use super::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Registry keys as people write them, and arbitrary text, which the parser must carry as is.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "(https?://)?[a-z0-9.-]{1,30}(:[0-9]{1,5})?(/[a-z0-9/]{0,20})?",
        any::<String>(),
    ]
}

/// (username, password): the user has no ':' (`auth` splits at the first one, as docker does).
fn credential() -> impl Strategy<Value = (String, String)> {
    ("[^:]{0,30}", any::<String>())
}

proptest! {
    /// Any bytes at all.
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse(&bytes);
    }

    /// JSON-shaped input over the config's own vocabulary reaches every branch.
    #[test]
    fn never_panics_on_config_shaped_json(s in r#"[{}\[\]":, ]{0,8}(auths|auth|username|password|[a-z.]{1,8})[{}\[\]":, ]{0,8}(YTpi|[a-zA-Z0-9+/=]{0,12})[{}\[\]":, ]{0,8}"#) {
        let _ = parse(s.as_bytes());
    }

    /// Round trip, both formats, both credential spellings, every entry's Basic token the
    /// base64 of `user:password`.
    #[test]
    fn an_encoded_config_parses_back_to_the_same_entries(
        entries in prop::collection::btree_map(key(), (credential(), any::<bool>()), 0..6),
        legacy in any::<bool>(),
    ) {
        let map: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|(k, ((u, p), as_auth))| {
                let v = if *as_auth {
                    serde_json::json!({"auth": b64(&format!("{u}:{p}")), "email": "x@example.com"})
                } else {
                    serde_json::json!({"username": u, "password": p})
                };
                (k.clone(), v)
            })
            .collect();
        // A `.dockercfg` whose only key is `auths` reads as the newer format, as it must.
        prop_assume!(!(legacy && entries.contains_key("auths")));
        let doc = if legacy {
            serde_json::Value::Object(map)
        } else {
            serde_json::json!({"auths": map})
        };
        let parsed = parse(doc.to_string().as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: BTreeMap<String, (String, String)> = parsed
            .iter()
            .map(|e| (e.key.clone(), (e.username.clone(), e.basic.expose().clone())))
            .collect();
        let want: BTreeMap<String, (String, String)> = entries
            .iter()
            .map(|(k, ((u, p), _))| (k.clone(), (u.clone(), b64(&format!("{u}:{p}")))))
            .collect();
        prop_assert_eq!(parsed.len(), entries.len());
        prop_assert_eq!(got, want);
    }

    /// Errors name the key, never the credential.
    #[test]
    fn errors_never_carry_the_credential(k in "[a-z.]{1,20}", secret in "[A-Za-z0-9]{12,40}") {
        for doc in [
            serde_json::json!({"auths": {&k: {"auth": b64(&secret)}}}),
            serde_json::json!({"auths": {&k: {"username": secret, "password": 5}}}),
            serde_json::json!({"auths": {&k: {"password": secret, "email": false}}}),
        ] {
            let e = parse(doc.to_string().as_bytes()).unwrap_err();
            prop_assert!(!e.to_string().contains(&secret), "{}", e);
            prop_assert!(!e.to_string().contains(&b64(&secret)), "{}", e);
        }
    }
}
