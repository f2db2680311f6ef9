//! Property tests of the JWT claims decoder (docs/property-tests.md): the token file is
//! whatever the volume holds, so any bytes give an answer, never a panic; claims encoded as a
//! compact JWT decode back to the same claims, padded or not.

use base64::Engine as _;
use proptest::prelude::*;

use super::*;

fn b64url(bytes: &[u8], pad: bool) -> String {
    if pad {
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

fn claims() -> impl Strategy<Value = (TokenClaims, bool)> {
    let s = || prop::option::of(any::<String>());
    let n = || prop::option::of(any::<i64>());
    (
        (
            s(),
            s(),
            prop::collection::vec(any::<String>(), 0..4),
            any::<bool>(),
        ),
        (n(), n(), n()),
        (s(), s(), s()),
    )
        .prop_map(|((iss, sub, aud, one), (exp, iat, nbf), (ns, sa, pod))| {
            // A single audience may be written as a plain string, as the kubelet can.
            let as_string = one && aud.len() == 1;
            (
                TokenClaims {
                    issuer: iss,
                    subject: sub,
                    audiences: aud,
                    expires_at: exp,
                    issued_at: iat,
                    not_before: nbf,
                    namespace: ns,
                    service_account: sa,
                    pod,
                },
                as_string,
            )
        })
}

fn encode(c: &TokenClaims, aud_as_string: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "iss": c.issuer, "sub": c.subject, "exp": c.expires_at, "iat": c.issued_at,
        "nbf": c.not_before,
        "kubernetes.io": {
            "namespace": c.namespace,
            "serviceaccount": {"name": c.service_account, "uid": "u"},
            "pod": {"name": c.pod},
        },
        "aud": if aud_as_string { serde_json::json!(c.audiences[0]) } else { serde_json::json!(c.audiences) },
    });
    // An absent claim and a null one mean the same; drop some to cover both.
    if c.issuer.is_none() {
        v.as_object_mut().unwrap().remove("iss");
    }
    v
}

proptest! {
    /// Any text: a decoded claim set or a `MalformedToken`, never a panic.
    #[test]
    fn never_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = decode_claims(&Secret::new(s));
    }

    /// Three parts whose middle is base64url of arbitrary bytes reach the JSON decoder.
    #[test]
    fn never_panics_on_arbitrary_payloads(bytes in prop::collection::vec(any::<u8>(), 0..512), pad in any::<bool>()) {
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", b64url(&bytes, pad));
        let _ = decode_claims(&Secret::new(token));
    }

    /// Round trip: claims encoded as a JWT decode to the same claims, padded or not, with
    /// white space around the token (a file's final newline) ignored.
    #[test]
    fn encoded_claims_decode_to_the_same_claims((c, one) in claims(), pad in any::<bool>(), nl in any::<bool>()) {
        let payload = encode(&c, one).to_string();
        let mut token = format!("{}.{}.c2ln", b64url(br#"{"alg":"RS256"}"#, pad), b64url(payload.as_bytes(), pad));
        if nl {
            token.push('\n');
        }
        let got = decode_claims(&Secret::new(token)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, c);
    }

    /// Anything but three dot-separated parts is refused by count, before any decoding.
    #[test]
    fn other_part_counts_are_refused(parts in prop::collection::vec("[A-Za-z0-9_-]{1,20}", 1..8)) {
        prop_assume!(parts.len() != 3);
        let got = decode_claims(&Secret::new(parts.join(".")));
        prop_assert_eq!(got, Err(MalformedToken::Parts(parts.len())));
    }
}
