//! A docker config read as Go's `encoding/json` reads it into the kubelet's types
//! (kubernetes `pkg/credentialprovider/config.go`: `DockerConfigJSON`, `DockerConfig`,
//! `DockerConfigEntry.UnmarshalJSON`, `decodeDockerConfigFieldAuth`). The differences from a
//! strict reading are what people's Secrets rely on, so each one is kept:
//!
//! - struct field names match without case (`"Auth"`, `"USERNAME"`, even `"uſername"`: Go
//!   folds with `unicode.SimpleFold`), the exact spelling preferred, later keys overwriting
//!   earlier ones in document order;
//! - `null` anywhere is "absent", and an entry that is `null` is an entry with no credentials;
//! - unknown fields are ignored; a known field of another type than string fails the file;
//! - `auth`, when not empty, is base64 with padding (when it ends in `=`) or without, newlines
//!   ignored, split at the first `:`; it takes over `username` and `password`.
//!
//! Objects are read in document order by serde visitors (a `serde_json::Value` map would sort
//! its keys and lose which duplicate came last).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Go's field-name fold (`encoding/json` `foldName`): ASCII upper-cased, anything else
/// lower- then upper-cased, so `ſ` (U+017F) folds with `s` and `K` (U+212A) with `k`.
fn fold(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            if c.is_ascii() {
                vec![c.to_ascii_uppercase()]
            } else {
                c.to_lowercase().flat_map(char::to_uppercase).collect()
            }
        })
        .collect()
}

/// Which of `fields` a JSON key names, by Go's rules: the exact name, else the folded one.
fn field<'f>(key: &str, fields: &[&'f str]) -> Option<&'f str> {
    fields
        .iter()
        .find(|f| **f == key)
        .or_else(|| {
            let k = fold(key);
            fields.iter().find(|f| fold(f) == k)
        })
        .copied()
}

/// A string field that may be `null` (Go leaves the field as it was).
fn opt_string<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<String>, A::Error> {
    map.next_value::<Option<String>>()
}

/// One `DockerConfigEntry` as written.
#[derive(Debug, Default)]
pub struct RawEntry {
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<String>,
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with auth or username and password")
            }
            // `"host": null` is an entry with nothing in it.
            fn visit_unit<E: de::Error>(self) -> Result<RawEntry, E> {
                Ok(RawEntry::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntry, A::Error> {
                let mut e = RawEntry::default();
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match field(&key, &["username", "password", "email", "auth"]) {
                        Some("username") => &mut e.username,
                        Some("password") => &mut e.password,
                        Some("auth") => &mut e.auth,
                        Some(_) => {
                            // `email`: checked for its type, as Go checks it, then dropped.
                            opt_string(&mut map)?;
                            continue;
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if let Some(v) = opt_string(&mut map)? {
                        *slot = Some(v);
                    }
                }
                Ok(e)
            }
        }
        d.deserialize_any(V)
    }
}

/// `DockerConfig`: registry key → entry (a later duplicate key wins, as in a Go map).
#[derive(Debug, Default)]
pub struct Config(pub BTreeMap<String, RawEntry>);

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Config;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of registry keys")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Config, E> {
                Ok(Config::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, RawEntry>()? {
                    out.insert(k, v);
                }
                Ok(Config(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `DockerConfigJSON`: `auths` (matched without case; several spellings merge into one map,
/// as Go decodes into the map it already has), `HttpHeaders` and the rest ignored.
#[derive(Debug, Default)]
pub struct ConfigJson {
    pub auths: BTreeMap<String, RawEntry>,
}

impl<'de> Deserialize<'de> for ConfigJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConfigJson;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an object with "auths""#)
            }
            fn visit_unit<E: de::Error>(self) -> Result<ConfigJson, E> {
                Ok(ConfigJson::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConfigJson, A::Error> {
                let mut out = ConfigJson::default();
                while let Some(key) = map.next_key::<String>()? {
                    if field(&key, &["auths"]).is_some() {
                        out.auths.extend(map.next_value::<Config>()?.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether the top level has an `auths` key (for a file of either shape).
#[derive(Debug)]
pub struct TopKeys {
    pub has_auths: bool,
}

impl<'de> Deserialize<'de> for TopKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopKeys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_unit<E: de::Error>(self) -> Result<TopKeys, E> {
                Ok(TopKeys { has_auths: false })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopKeys, A::Error> {
                let mut has_auths = false;
                while let Some(key) = map.next_key::<String>()? {
                    has_auths |= field(&key, &["auths"]).is_some();
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(TopKeys { has_auths })
            }
        }
        d.deserialize_any(V)
    }
}

/// Go's `base64.StdEncoding` / `RawStdEncoding`: canonical padding required or refused,
/// trailing bits tolerated (Go's decoder is not `Strict`), `\r` and `\n` skipped.
const PADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);
const UNPADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// `decodeDockerConfigFieldAuth`: padded when the trimmed field ends in `=`, else raw; the
/// user is what comes before the first `:`.
pub fn decode_auth(field: &str) -> Option<(String, String)> {
    let engine = if field.trim().ends_with('=') {
        &PADDED
    } else {
        &UNPADDED
    };
    let cleaned: String = field
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    let decoded = engine.decode(cleaned).ok()?;
    // Go's string conversion keeps invalid UTF-8 bytes; they cannot form a valid header
    // value, so such an entry is refused here rather than sent changed.
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kubernetes `pkg/credentialprovider/config_test.go`, `TestDecodeDockerConfigFieldAuth`,
    /// every case.
    #[test]
    fn decodes_auth_as_the_kubelet_does() {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let raw = |s: &str| base64::engine::general_purpose::STANDARD_NO_PAD.encode(s);
        let ok = [
            ("Zm9vOmJhcg==".to_string(), "foo", "bar"),
            // "some test as before but with field not well padded"
            ("Zm9vOmJhcg".to_string(), "foo", "bar"),
            // "some test as before but with new line characters"
            ("Zm9vOm\nJhcg==\n".to_string(), "foo", "bar"),
            // "standard encoding (with padding)"
            (b("foo:bar"), "foo", "bar"),
            // "raw encoding (without padding)"
            (raw("foo:bar"), "foo", "bar"),
        ];
        for (input, user, password) in ok {
            assert_eq!(
                decode_auth(&input),
                Some((user.into(), password.into())),
                "{input:?}"
            );
        }
        // "good base64 data, but no colon", "only new line characters are ignored", "bad base64 data"
        for input in ["cGFudHM=", "Zm9vOmJhcg== ", "pants"] {
            assert_eq!(decode_auth(input), None, "{input:?}");
        }
    }

    #[test]
    fn field_names_fold_as_go_folds_them() {
        let f = ["username", "password", "email", "auth"];
        assert_eq!(field("Auth", &f), Some("auth"));
        assert_eq!(field("USERNAME", &f), Some("username"));
        assert_eq!(field("uſername", &f), Some("username"));
        assert_eq!(field("user_name", &f), None);
        assert_eq!(field("Auths", &["auths"]), Some("auths"));
    }

    /// `TestDockerConfigEntryJSONDecode`, every case, plus the forms Go accepts that a strict
    /// reader refuses.
    #[test]
    fn entries_decode_as_docker_config_entry_does() {
        let parse = |s: &str| serde_json::from_str::<RawEntry>(s);
        let e =
            parse(r#"{"username": "foo", "password": "bar", "email": "foo@example.com"}"#).unwrap();
        assert_eq!(
            (e.username.as_deref(), e.password.as_deref()),
            (Some("foo"), Some("bar"))
        );
        let e = parse(r#"{"auth": "Zm9vOmJhcg==", "email": "foo@example.com"}"#).unwrap();
        assert_eq!(e.auth.as_deref(), Some("Zm9vOmJhcg=="));
        // "invalid JSON causes failure": a known field of the wrong type.
        assert!(parse(r#"{"email": false}"#).is_err());
        assert!(parse(r#"{"auth": 1}"#).is_err());
        // Go: null is absent, unknown fields are ignored, a null entry is an empty one.
        let e = parse(r#"{"username": null, "password": "p", "identitytoken": {"x": 1}}"#).unwrap();
        assert_eq!((e.username, e.password.as_deref()), (None, Some("p")));
        assert!(parse("null").unwrap().username.is_none());
        assert!(parse(r#""x""#).is_err());
        // Document order: the later spelling wins.
        let e = parse(r#"{"username": "a", "Username": "b"}"#).unwrap();
        assert_eq!(e.username.as_deref(), Some("b"));
    }
}
