//! Property tests of what a registry sends (docs/property-tests.md): `WWW-Authenticate`
//! challenges, manifest and index bodies, and error answers. Any header or body gives an
//! answer, never a panic; challenges, manifests and error envelopes rendered from their parts
//! parse back to the same parts.

use proptest::prelude::*;

use super::manifest::{self, Descriptor, IndexEntry, Manifest, ManifestError, Platform};
use super::{ErrorCode, ErrorEntry, Request, parse_challenge, status_error};

/// An auth-param value and how it is written: a token, or a quoted-string (RFC 7230 3.2.6)
/// with `"` and `\` escaped as quoted-pairs.
#[derive(Debug, Clone)]
enum Value {
    Token(String),
    Quoted(String),
}

impl Value {
    fn text(&self) -> &str {
        match self {
            Value::Token(s) | Value::Quoted(s) => s,
        }
    }

    fn render(&self) -> String {
        match self {
            Value::Token(s) => s.clone(),
            Value::Quoted(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        // `token` characters but ','.
        "[A-Za-z0-9!#$%&'*+.^_`|~/:-]{1,20}".prop_map(Value::Token),
        // Realms, services and scopes as registries send them: URLs, host names, scopes.
        "[A-Za-z0-9 ,;=:/?&._-]{0,40}".prop_map(Value::Quoted),
        // Any printable text, quotes and backslashes included.
        "[ -~]{0,40}".prop_map(Value::Quoted),
    ]
}

fn challenge() -> impl Strategy<Value = (String, Vec<(String, Value)>, Vec<&'static str>)> {
    (
        "[A-Za-z]{1,10}",
        prop::collection::vec(("[A-Za-z_][A-Za-z0-9_-]{0,10}", value()), 0..5),
        prop::collection::vec(prop::sample::select(vec![",", ", ", " , ", ",  "]), 5),
    )
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")),
        "[0-9a-f]{128}".prop_map(|h| format!("sha512:{h}")),
    ]
}

fn descriptor() -> impl Strategy<Value = Descriptor> {
    (
        "application/vnd\\.oci\\.image\\.[a-z.]{1,20}(\\+json|\\.tar\\+gzip)?",
        digest(),
        0..=i64::MAX as u64,
    )
        .prop_map(|(media_type, digest, size)| Descriptor {
            media_type,
            digest,
            size,
        })
}

fn platform() -> impl Strategy<Value = Platform> {
    (
        "[a-z0-9]{1,8}",
        "[a-z0-9_]{1,8}",
        prop::option::of("v[0-9]"),
    )
        .prop_map(|(os, architecture, variant)| Platform {
            os,
            architecture,
            variant,
        })
}

fn manifest() -> impl Strategy<Value = Manifest> {
    let image = (
        prop::sample::select(vec![
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]),
        descriptor(),
        prop::collection::vec(descriptor(), 0..8),
    )
        .prop_map(|(m, config, layers)| Manifest::Image {
            media_type: m.to_string(),
            config,
            layers,
        });
    let index = (
        prop::sample::select(vec![
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ]),
        prop::collection::vec(
            (descriptor(), prop::option::of(platform())).prop_map(|(descriptor, platform)| {
                IndexEntry {
                    descriptor,
                    platform,
                }
            }),
            0..8,
        ),
    )
        .prop_map(|(m, entries)| Manifest::Index {
            media_type: m.to_string(),
            entries,
        });
    prop_oneof![image, index]
}

fn wire(d: &Descriptor) -> serde_json::Value {
    serde_json::json!({
        "mediaType": d.media_type, "digest": d.digest, "size": d.size,
        "annotations": {"org.opencontainers.image.title": "x"},
    })
}

/// The manifest as a registry sends it; `in_body` puts the media type in the body, else only
/// in the `Content-Type` (as Docker's schema 2 may).
fn render(m: &Manifest, in_body: bool) -> (String, Vec<u8>) {
    let (media_type, mut body) = match m {
        Manifest::Image {
            media_type,
            config,
            layers,
        } => (
            media_type,
            serde_json::json!({
                "schemaVersion": 2,
                "config": wire(config),
                "layers": layers.iter().map(wire).collect::<Vec<_>>(),
            }),
        ),
        Manifest::Index {
            media_type,
            entries,
        } => (
            media_type,
            serde_json::json!({
                "schemaVersion": 2,
                "manifests": entries.iter().map(|e| {
                    let mut v = wire(&e.descriptor);
                    if let Some(p) = &e.platform {
                        v["platform"] = serde_json::json!({
                            "os": p.os, "architecture": p.architecture, "variant": p.variant,
                        });
                    }
                    v
                }).collect::<Vec<_>>(),
            }),
        ),
    };
    if in_body {
        body["mediaType"] = serde_json::json!(media_type);
    }
    (media_type.clone(), body.to_string().into_bytes())
}

proptest! {
    /// Any header value: a scheme and parameters, never a panic.
    #[test]
    fn challenge_never_panics(s in any::<String>()) {
        let _ = parse_challenge(&s);
    }

    #[test]
    fn challenge_never_panics_on_its_own_alphabet(s in r#"[A-Za-z =,"\\]{0,60}"#) {
        let _ = parse_challenge(&s);
    }

    /// Round trip: a challenge written per RFC 7235 (token or quoted-string values, optional
    /// white space around commas) parses to its scheme and parameters, names lower-cased.
    #[test]
    fn challenge_round_trips((scheme, params, seps) in challenge()) {
        let rendered: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", v.render())).collect();
        let mut header = scheme.clone();
        for (i, p) in rendered.iter().enumerate() {
            header.push_str(if i == 0 { " " } else { seps[i] });
            header.push_str(p);
        }
        let (s, got) = parse_challenge(&header);
        prop_assert_eq!(s, scheme.to_ascii_lowercase());
        let want: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.text().to_string()))
            .collect();
        prop_assert_eq!(got, want, "{}", header);
    }

    /// Any error body: a `StatusError` whose kept text is at most 300 characters, never a
    /// panic.
    #[test]
    fn error_body_never_panics(body in prop::collection::vec(any::<u8>(), 0..2048), status in 400u16..600) {
        let e = status_error(
            Request::Blob,
            "r.example".into(),
            status,
            &reqwest::header::HeaderMap::new(),
            &body,
            std::time::UNIX_EPOCH,
        );
        prop_assert!(e.body.chars().count() <= 300);
        prop_assert!(e.errors.is_empty() || e.body.is_empty());
    }

    /// Round trip: an envelope written from codes (named or not) and messages parses to the
    /// same entries, each code spelled as it was sent.
    #[test]
    fn error_envelope_round_trips(
        entries in prop::collection::vec(("[A-Z_]{0,24}", any::<String>()), 1..5),
    ) {
        let errors: Vec<serde_json::Value> = entries
            .iter()
            .map(|(code, message)| serde_json::json!({"code": code, "message": message, "detail": null}))
            .collect();
        let body = serde_json::json!({ "errors": errors }).to_string();
        let e = status_error(
            Request::Manifest,
            "r.example".into(),
            404,
            &reqwest::header::HeaderMap::new(),
            body.as_bytes(),
            std::time::UNIX_EPOCH,
        );
        let want: Vec<ErrorEntry> = entries
            .iter()
            .map(|(code, message)| ErrorEntry { code: ErrorCode::from(code.as_str()), message: message.clone() })
            .collect();
        prop_assert_eq!(&e.errors, &want);
        let spelled: Vec<&str> = entries.iter().map(|(c, _)| c.as_str()).collect();
        prop_assert_eq!(e.codes(), spelled);
    }

    /// Any bytes with any Content-Type: a manifest or a `ManifestError`, never a panic.
    #[test]
    fn manifest_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..1024),
        content_type in prop::option::of(any::<String>()),
    ) {
        let _ = manifest::parse(content_type.as_deref(), &body);
    }

    /// JSON over the manifest's own vocabulary reaches the typed decoders.
    #[test]
    fn manifest_never_panics_on_manifest_shaped_json(
        s in r#"\{("(mediaType|manifests|layers|config|digest|size|platform)":("application/vnd\.oci\.image\.(index|manifest)\.v1\+json"|-?[0-9]{1,3}|\[\]|\{\}|"sha256:[a-f0-9]{0,64}"|null),?){0,6}\}"#,
    ) {
        let _ = manifest::parse(None, s.as_bytes());
    }

    /// Round trip: manifests and indexes written as a registry writes them (annotations and
    /// all, the media type in the body or only in the Content-Type) parse to the same parts.
    #[test]
    fn manifest_round_trips(m in manifest(), in_body in any::<bool>()) {
        let (media_type, body) = render(&m, in_body);
        let content_type = format!("{media_type}; charset=utf-8");
        let got = manifest::parse(Some(&content_type), &body)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, m);
    }

    /// A descriptor with a digest outside the grammar, or a negative size, fails the whole
    /// manifest, wherever it stands.
    #[test]
    fn manifest_refuses_bad_descriptors(
        m in manifest(),
        bad_digest in prop_oneof![
            "[0-9a-f]{0,63}".prop_map(|h| format!("sha256:{h}")),
            "sha256:[0-9a-f]{64}[^\"\\\\]{1,4}",
            "(md5|SHA256|sha256 ):[0-9a-f]{64}",
            "sha256:/\\.\\./[a-z]{1,8}",
        ],
        negative in i64::MIN..0,
        which in any::<prop::sample::Index>(),
        size_not_digest in any::<bool>(),
    ) {
        let (media_type, body) = render(&m, true);
        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut slots: Vec<&mut serde_json::Value> = Vec::new();
        match &mut v {
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    match (k.as_str(), x) {
                        ("config", d) => slots.push(d),
                        ("layers" | "manifests", serde_json::Value::Array(a)) => slots.extend(a.iter_mut()),
                        _ => {}
                    }
                }
            }
            _ => unreachable!(),
        }
        prop_assume!(!slots.is_empty());
        let n = slots.len();
        let slot = &mut slots[which.index(n)];
        if size_not_digest {
            slot["size"] = serde_json::json!(negative);
        } else {
            slot["digest"] = serde_json::json!(bad_digest);
        }
        let got = manifest::parse(Some(&media_type), v.to_string().as_bytes());
        if size_not_digest {
            prop_assert_eq!(got, Err(ManifestError::NegativeSize));
        } else {
            prop_assert!(matches!(got, Err(ManifestError::BadDigest(_))), "{:?}", got);
        }
    }
}

/// Deep nesting is refused by the JSON decoder's depth limit, not by the stack.
#[test]
fn proptest_manifest_deep_nesting_is_an_error_not_a_stack_overflow() {
    for open in ["[", "{\"a\":"] {
        let body = open.repeat(100_000);
        assert!(matches!(
            manifest::parse(None, body.as_bytes()),
            Err(ManifestError::Invalid { .. })
        ));
        let body = format!("{{\"layers\":{}", open.repeat(100_000));
        assert!(manifest::parse(None, body.as_bytes()).is_err());
    }
}
