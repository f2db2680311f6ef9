//! The pull-secret path: what the kubelet would use from a `.dockerconfigjson` (or legacy
//! `.dockercfg`) Secret. Parsing and the kubelet's registry matching are pure; the pull itself
//! is the same real pull as the pod's.
//!
//! Matching is the kubelet's credential keyring, in `keyring` (a key is a URL without scheme,
//! hosts match label by label with globs, ports must be equal, the image path must start with
//! the key's path, more specific keys are tried first, Docker Hub keys by the default-registry
//! fallback).

use base64::Engine as _;

use crate::ecr_token;
use crate::keyring::{self, Keyring};
use crate::reference::{EcrHost, ImageRef};
use crate::report::Finding;
use crate::secret::Secret;

/// One credential of a docker config.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The docker config it came from (`namespace/secret`, a file path); set by
    /// [`SecretSet::add`].
    pub source: String,
    /// The key as written (`818140567777.dkr.ecr.us-east-1.amazonaws.com`, `https://index.docker.io/v1/`).
    pub key: String,
    pub username: String,
    /// `base64(username:password)`, ready for `Authorization: Basic`.
    pub basic: Secret<String>,
    /// `expiration` of an ECR-format password, Unix seconds.
    pub ecr_password_expiration: Option<i64>,
}

impl Entry {
    /// What the runtime is handed: an entry with an empty username (one with only an `email`,
    /// or `"auth": ""` and nothing else) is an empty `AuthConfig`, which containerd and
    /// containers/image both take as "no credentials" (containerd `ParseAuth`: "An empty auth
    /// config is valid for anonymous registry").
    pub fn credentials(&self) -> Option<&Secret<String>> {
        (!self.username.is_empty()).then_some(&self.basic)
    }
}

/// Largest docker config parsed: a Kubernetes Secret holds at most 1 MiB, and a real config a
/// few KiB.
pub const MAX_DOCKER_CONFIG_BYTES: usize = 1 << 20;

/// Why a docker config cannot be read at all. For a pull secret the kubelet then fails every
/// pull of the pod (`secretsToTrackedDockerConfigs` returns the error); a node-wide file it
/// skips.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the docker config is over the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// Not JSON, or JSON of the wrong shape (serde names the position and the kind, never
    /// the input).
    #[error("not a docker config: {reason}")]
    NotJson { reason: String },
    #[error("entry {entry:?} has an `auth` that is not base64 `user:password`")]
    BadAuth { entry: String },
}

/// A key dropped from an otherwise usable docker config (or a plugin's answer): the kubelet
/// skips a key it cannot parse as a URL, and the probe also skips keys past the caps that
/// keep matching linear. The other keys are used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub source: String,
    /// The key, cut to a length fit for a message.
    pub key: String,
    pub why: keyring::PatternError,
}

/// A key cut to a length fit for a message (a hostile one can be any length).
pub fn shorten(key: &str) -> String {
    match key.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &key[..i]),
        None => key.to_string(),
    }
}

/// Which of the two docker config shapes to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"auths": {...}}`: a `kubernetes.io/dockerconfigjson` Secret, a `config.json`.
    ConfigJson,
    /// The map itself: a `kubernetes.io/dockercfg` Secret, a `.dockercfg` file.
    Dockercfg,
    /// A file of either shape (`--docker-config`): `auths` at the top means the first.
    Detect,
}

/// Parses a docker config by Go's rules, as the kubelet's `DockerConfigJSON`/`DockerConfig`
/// and `DockerConfigEntry.UnmarshalJSON` read it: field names matched without case, `null`
/// as absent, unknown fields ignored, `auth` (when not empty) decoded with padding or
/// without and taking over the username and password, an entry with neither (only an
/// `email`) kept with empty credentials. Errors name the key, never a credential.
pub fn parse_as(bytes: &[u8], format: Format) -> Result<Vec<Entry>, Malformed> {
    if bytes.len() > MAX_DOCKER_CONFIG_BYTES {
        return Err(Malformed::TooLarge {
            len: bytes.len(),
            max: MAX_DOCKER_CONFIG_BYTES,
        });
    }
    let not_json = |e: serde_json::Error| Malformed::NotJson {
        reason: format!(
            "{} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Data => "wrong field types",
                serde_json::error::Category::Eof => "truncated",
                _ => "syntax error",
            },
            e.line(),
            e.column()
        ),
    };
    let format = match format {
        Format::Detect => match serde_json::from_slice::<go::TopKeys>(bytes) {
            Ok(top) if top.has_auths => Format::ConfigJson,
            Ok(_) => Format::Dockercfg,
            Err(e) => return Err(not_json(e)),
        },
        f => f,
    };
    let map = match format {
        Format::ConfigJson => {
            serde_json::from_slice::<go::ConfigJson>(bytes)
                .map_err(not_json)?
                .auths
        }
        _ => {
            serde_json::from_slice::<go::Config>(bytes)
                .map_err(not_json)?
                .0
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    map.into_iter()
        .map(|(key, raw)| {
            let (username, password) = match raw.auth.filter(|a| !a.is_empty()) {
                Some(auth) => go::decode_auth(&auth).ok_or_else(|| Malformed::BadAuth {
                    entry: shorten(&key),
                })?,
                None => (
                    raw.username.unwrap_or_default(),
                    raw.password.unwrap_or_default(),
                ),
            };
            let token = Secret::new(b64.encode(format!("{username}:{password}")));
            let ecr_password_expiration = ecr_token::decode_authorization_token(&token)
                .ok()
                .and_then(|d| d.password_expiration);
            Ok(Entry {
                source: String::new(),
                key,
                username,
                basic: token,
                ecr_password_expiration,
            })
        })
        .collect()
}

/// [`parse_as`] with the shape detected.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, Malformed> {
    parse_as(bytes, Format::Detect)
}

/// All the docker configs of one credential source, merged in the kubelet's order, with the
/// problems met while gathering them. For the pod's pull secrets a malformed source (or a
/// blocker) means the kubelet fails every pull of the pod; for the node-wide docker config
/// it is skipped.
#[derive(Debug, Default, Clone)]
pub struct SecretSet {
    pub sources: Vec<String>,
    pub entries: Vec<Entry>,
    /// Sources that cannot be read at all; the path turns them into findings, so this parser
    /// stays free of the diagnosis.
    pub malformed: Vec<(String, Malformed)>,
    /// Keys dropped from sources that are otherwise used.
    pub skipped_keys: Vec<SkippedKey>,
    /// Problems met while gathering the secrets (already diagnosed there): a missing Secret,
    /// one of the wrong type, one that could not be read.
    pub findings: Vec<Finding>,
    /// What stops every pull of the pod before any credential is tried (already diagnosed):
    /// a ServiceAccount that does not exist, so admission refuses the pods.
    pub blockers: Vec<Finding>,
}

impl SecretSet {
    pub fn add(&mut self, source: &str, parsed: Result<Vec<Entry>, Malformed>) {
        self.sources.push(source.to_string());
        match parsed {
            Ok(entries) => {
                for mut e in entries {
                    e.source = source.to_string();
                    // The kubelet skips a key it cannot parse; we also skip keys past the
                    // caps that keep matching linear. The other keys are used.
                    match keyring::check_pattern(&e.key) {
                        Ok(()) => self.entries.push(e),
                        Err(why) => self.skipped_keys.push(SkippedKey {
                            source: source.to_string(),
                            key: shorten(&e.key),
                            why,
                        }),
                    }
                }
            }
            Err(m) => self.malformed.push((source.to_string(), m)),
        }
    }

    /// Whether there is nothing at all: no source and nothing said about one.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.findings.is_empty() && self.blockers.is_empty()
    }

    pub fn source(&self) -> String {
        self.sources.join(", ")
    }
}

/// Whether a docker config key covers an image, by the kubelet's rules (a one-key keyring, so
/// the Docker Hub fallback applies as it does in the kubelet).
pub fn key_matches(key: &str, image: &ImageRef) -> bool {
    let mut ring = Keyring::new();
    ring.add(key, ()).is_ok() && !ring.lookup(&image.name()).is_empty()
}

/// The entries that cover `image`, in the kubelet's order: keys in reverse lexical order
/// (more specific first), each key's entries in the order the secrets were listed.
pub fn matching<'a>(entries: &'a [Entry], image: &ImageRef) -> Vec<&'a Entry> {
    let mut ring = Keyring::new();
    for e in entries {
        // Refused keys were reported and dropped when the secret was read.
        let _ = ring.add(&e.key, e);
    }
    ring.lookup(&image.name()).into_iter().copied().collect()
}

/// An entry for the image's ECR account in another region: a secret minted for the wrong
/// registry, since ECR tokens are region-bound.
pub fn other_region<'a>(entries: &'a [Entry], image: &ImageRef) -> Option<(&'a Entry, String)> {
    let want = image.ecr.as_ref()?;
    entries.iter().find_map(|e| {
        let key = keyring::normalize_key(&e.key).ok()?;
        let host = key.split(['/', ':']).next()?;
        EcrHost::parse(host)
            .filter(|h| h.account == want.account && h.region != want.region)
            .map(|h| (e, h.region))
    })
}

mod go;

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn img(s: &str) -> ImageRef {
        s.parse().unwrap()
    }

    #[test]
    fn keys_match_like_the_kubelet() {
        let ecr = img("818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/app:1");
        for key in [
            "818140567777.dkr.ecr.us-east-1.amazonaws.com",
            "https://818140567777.dkr.ecr.us-east-1.amazonaws.com",
            "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm",
            "*.dkr.ecr.us-east-1.amazonaws.com",
            "*.dkr.ecr.*.amazonaws.com",
        ] {
            assert!(key_matches(key, &ecr), "{key}");
        }
        for key in [
            "818140567777.dkr.ecr.eu-west-1.amazonaws.com",
            "818140567777.dkr.ecr.us-east-1.amazonaws.com/other",
            "*.amazonaws.com",
            "818140567777.dkr.ecr.us-east-1.amazonaws.com:443",
            "quay.io",
        ] {
            assert!(!key_matches(key, &ecr), "{key}");
        }
        // The kubelet's path rule is a plain string prefix (keyring.go URLsMatch:
        // `strings.HasPrefix(targetPath, globPath)`), so a key's path need not end at a `/`.
        assert!(key_matches(
            "818140567777.dkr.ecr.us-east-1.amazonaws.com/consult",
            &ecr
        ));
        let hub = img("nginx:1");
        assert!(key_matches("https://index.docker.io/v1/", &hub));
        assert!(key_matches("docker.io", &hub));
        let local = img("127.0.0.1:5000/team/app");
        assert!(key_matches("127.0.0.1:5000", &local));
        assert!(!key_matches("127.0.0.1", &local), "ports must be equal");
    }

    /// Docker Hub's keys cover every spelling of a Docker Hub image, through the normalised
    /// name the kubelet hands its keyring (`docker.io/library/busybox`), issue 13.
    #[test]
    fn docker_hub_keys_cover_every_spelling_of_a_hub_image() {
        for image in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/busybox",
            "docker.io/library/busybox:1.36",
            "index.docker.io/fooo/bar",
            "fooo/bar",
        ] {
            let i = img(image);
            assert_eq!(i.registry, "docker.io", "{image}");
            for key in [
                "https://index.docker.io/v1/",
                "index.docker.io",
                "docker.io",
            ] {
                assert!(key_matches(key, &i), "{key} should cover {image}");
            }
            assert!(!key_matches("quay.io", &i));
        }
        assert!(!key_matches(
            "https://index.docker.io/v1/",
            &img("quay.io/fooo/bar")
        ));
    }

    #[test]
    fn more_specific_keys_come_first() {
        let cfg = br#"{"auths":{
            "818140567777.dkr.ecr.us-east-1.amazonaws.com":{"auth":"QVdTOmE="},
            "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm":{"auth":"QVdTOmI="}}}"#;
        let entries = parse(cfg).unwrap();
        let m = matching(
            &entries,
            &img("818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/app"),
        );
        assert_eq!(
            m[0].key,
            "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm"
        );
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn parses_both_formats_and_decodes_ecr_passwords() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let pw = b64(
            r#"{"payload":"cA==","datakey":"ZA==","version":"2","type":"DATA_KEY","expiration":1764300000}"#,
        );
        let json = format!(
            r#"{{"auths":{{"h.example":{{"auth":"{}"}}}}}}"#,
            b64(&format!("AWS:{pw}"))
        );
        let e = parse(json.as_bytes()).unwrap();
        assert_eq!(
            (e[0].username.as_str(), e[0].ecr_password_expiration),
            ("AWS", Some(1764300000))
        );
        let legacy = br#"{"h.example":{"username":"u","password":"p"}}"#;
        let e = parse(legacy).unwrap();
        assert_eq!(e[0].basic.expose(), &b64("u:p"));
        assert_eq!(e[0].ecr_password_expiration, None);
    }

    #[test]
    fn configs_over_the_cap_are_refused_unparsed() {
        let cfg = br#"{"auths":{"h":{"auth":"dTpw"}}}"#;
        let mut padded = cfg.to_vec();
        padded.resize(MAX_DOCKER_CONFIG_BYTES, b' ');
        assert_eq!(parse(&padded).unwrap().len(), 1);
        padded.push(b' ');
        let e = parse(&padded).unwrap_err();
        assert_eq!(
            e,
            Malformed::TooLarge {
                len: MAX_DOCKER_CONFIG_BYTES + 1,
                max: MAX_DOCKER_CONFIG_BYTES
            }
        );
        assert!(e.to_string().contains("over the limit of 1048576"), "{e}");
    }

    #[test]
    fn malformed_configs_name_the_key_not_the_secret() {
        assert!(matches!(
            parse(b"nope").unwrap_err(),
            Malformed::NotJson { .. }
        ));
        let e = parse(br#"{"auths":{"h":{"auth":"c2VjcmV0"}}}"#).unwrap_err();
        assert_eq!(e, Malformed::BadAuth { entry: "h".into() });
        assert!(!e.to_string().contains("secret"));
        let e = parse(br#"{"auths":{"h":{"password": 12345678}}}"#).unwrap_err();
        assert!(!e.to_string().contains("12345678"), "{e}");
    }

    /// The four forms of issue 21 point 4 that the kubelet uses and a strict reader refused,
    /// each of which once rejected the whole file.
    #[test]
    fn reads_what_go_reads() {
        let cred = |cfg: &[u8]| {
            let e = parse(cfg).unwrap();
            (
                e[0].key.clone(),
                e[0].username.clone(),
                e[0].basic.expose().clone(),
            )
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        // Unpadded base64 (`RawStdEncoding` when there is no `=`): "user:pw" is 7 bytes.
        assert_eq!(
            cred(br#"{"auths":{"h":{"auth":"dXNlcjpwdw"}}}"#),
            ("h".into(), "user".into(), b64("user:pw"))
        );
        // `"auth": ""` beside a username and password: they are used.
        assert_eq!(
            cred(br#"{"auths":{"h":{"auth":"","username":"u","password":"p"}}}"#),
            ("h".into(), "u".into(), b64("u:p"))
        );
        // Field names without case, at both levels.
        assert_eq!(
            cred(br#"{"Auths":{"h":{"Auth":"dTpw"}}}"#),
            ("h".into(), "u".into(), b64("u:p"))
        );
        // Only an email: an entry with empty credentials (the runtime pulls anonymously).
        let e = parse(br#"{"auths":{"h":{"email":"a@example.com"}}}"#).unwrap();
        assert_eq!(e.len(), 1);
        assert!(e[0].credentials().is_none());
    }

    /// kubernetes `config_test.go` `TestReadDockerConfigFileFromBytes` and
    /// `TestReadDockerConfigJSONFileFromBytes`: both shapes, and a truncated file refused.
    #[test]
    fn reads_both_shapes_as_the_kubelet_tests_do() {
        let legacy = br#"{"http://foo.example.com":{"username": "foo", "password": "bar", "email": "foo@example.com"}}"#;
        let e = parse_as(legacy, Format::Dockercfg).unwrap();
        assert_eq!(
            (e[0].key.as_str(), e[0].username.as_str()),
            ("http://foo.example.com", "foo")
        );
        let json = br#"{"auths": {"http://foo.example.com":{"username": "foo", "password": "bar", "email": "foo@example.com"}, "http://bar.example.com":{"username": "bar", "password": "baz", "email": "bar@example.com"}}}"#;
        let e = parse_as(json, Format::ConfigJson).unwrap();
        assert_eq!(e.len(), 2);
        assert!(parse_as(&legacy[..legacy.len() - 1], Format::Dockercfg).is_err());
        assert!(parse_as(&json[..json.len() - 2], Format::ConfigJson).is_err());
        // A `.dockerconfigjson` without `auths` is an empty config, as Go reads it.
        assert!(
            parse_as(br#"{"HttpHeaders":{}}"#, Format::ConfigJson)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn finds_entries_for_the_account_in_another_region() {
        let entries = parse(
            br#"{"auths":{"818140567777.dkr.ecr.eu-west-1.amazonaws.com":{"auth":"QVdTOmE="}}}"#,
        )
        .unwrap();
        let image = img("818140567777.dkr.ecr.us-east-1.amazonaws.com/a/b");
        assert!(matching(&entries, &image).is_empty());
        assert_eq!(other_region(&entries, &image).unwrap().1, "eu-west-1");
        assert!(
            other_region(
                &entries,
                &img("111122223333.dkr.ecr.us-east-1.amazonaws.com/a/b")
            )
            .is_none()
        );
    }
}
