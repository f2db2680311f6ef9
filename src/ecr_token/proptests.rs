//! Property tests of the ECR authorization token decoder (docs/property-tests.md): any token
//! text gives an answer, never a panic; `base64(user:password)` decodes back to its user and
//! password, and the real ECR password format to its expiration.

use base64::Engine as _;
use proptest::prelude::*;

use super::*;

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = decode_authorization_token(&Secret::new(s));
    }

    /// Arbitrary bytes behind valid base64, so the split and the password decoding are reached.
    #[test]
    fn never_panics_on_arbitrary_decoded_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_authorization_token(&Secret::new(b64(&bytes)));
    }

    /// Round trip: the user is everything before the first ':', the password everything after.
    #[test]
    fn user_and_password_round_trip(user in "[^:]{0,40}", password in any::<String>()) {
        let token = Secret::new(b64(format!("{user}:{password}").as_bytes()));
        let d = decode_authorization_token(&token).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&d.user, &user);
        prop_assert_eq!(d.password.expose(), &password);
    }

    /// The real ECR password (base64 JSON with payload, datakey, expiration) is recognised and
    /// its expiration read; without a payload or datakey it is opaque.
    #[test]
    fn ecr_password_expiration_round_trips(
        payload in "[A-Za-z0-9+/=]{0,40}",
        datakey in "[A-Za-z0-9+/=]{0,40}",
        expiration in any::<i64>(),
    ) {
        let password = b64(
            serde_json::json!({"payload": payload, "datakey": datakey, "version": "2", "type": "DATA_KEY", "expiration": expiration})
                .to_string()
                .as_bytes(),
        );
        let token = Secret::new(b64(format!("AWS:{password}").as_bytes()));
        let d = decode_authorization_token(&token).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(d.user.as_str(), "AWS");
        if payload.is_empty() || datakey.is_empty() {
            prop_assert_eq!(d.format, PasswordFormat::Opaque);
            prop_assert_eq!(d.password_expiration, None);
        } else {
            prop_assert_eq!(d.format, PasswordFormat::EcrDataKey);
            prop_assert_eq!(d.password_expiration, Some(expiration));
        }
    }

    /// Valid base64 of text without ':' is refused as such.
    #[test]
    fn no_separator_is_refused(s in "[^:]{0,60}") {
        let d = decode_authorization_token(&Secret::new(b64(s.as_bytes())));
        prop_assert_eq!(d.err(), Some(TokenFormatError::NoSeparator));
    }
}
