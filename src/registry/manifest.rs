//! Manifests and platforms: pure parsing and selection, no I/O.

use std::fmt;
use std::str::FromStr;

use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};

use super::blob::{VerifyError, parse_digest};

/// What a runtime sends: both OCI and Docker types, indexes and single manifests. A registry
/// that gets only Docker types may answer 404 for an OCI-only image.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest accepted; ECR's own limit is 4 MiB.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A content descriptor, with the size checked to be non-negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// One platform-specific entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub descriptor: Descriptor,
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        media_type: String,
        entries: Vec<IndexEntry>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { media_type: String },
    #[error("the manifest is not valid JSON of its type: {reason}")]
    Invalid { reason: String },
    #[error("a descriptor has a negative size")]
    NegativeSize,
    #[error("a descriptor's digest is unusable")]
    BadDigest(#[source] VerifyError),
    #[error("the index lists {count} manifests, more than the {MAX_INDEX_ENTRIES} accepted")]
    TooManyEntries { count: usize },
    #[error("the manifest lists {count} layers, more than the {MAX_LAYERS} accepted")]
    TooManyLayers { count: usize },
}

/// A JSON error as a manifest error. Nesting needs no cap of its own: fields are typed, so a
/// value nested where a string or descriptor belongs fails at its first bracket, unknown
/// fields are skipped without recursion, and serde_json stops any recursion at 128 levels.
fn json_error(e: serde_json::Error) -> ManifestError {
    ManifestError::Invalid {
        reason: e.to_string(),
    }
}

/// Indexes in the wild list a handful of platforms (plus attestations); thousands only come
/// from a registry trying to exhaust us.
pub const MAX_INDEX_ENTRIES: usize = 1024;
/// Runtimes refuse images far below this many layers (overlay's mount option limit).
pub const MAX_LAYERS: usize = 1024;

/// A descriptor as sent: only the fields a puller needs, so annotations and unknown fields are
/// skipped, not built into maps (a 4 MiB index once peaked at 81 MB through generic values).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    platform: Option<WirePlatform>,
}

#[derive(serde::Deserialize)]
struct WirePlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(serde::Deserialize)]
struct WireImage {
    config: WireDescriptor,
    layers: Vec<WireDescriptor>,
}

#[derive(serde::Deserialize)]
struct WireIndex {
    manifests: Vec<WireDescriptor>,
}

/// A descriptor with its size checked to be non-negative and its digest to be one we verify:
/// the digest becomes part of a URL, so nothing but the grammar may pass.
fn descriptor(w: WireDescriptor) -> Result<Descriptor, ManifestError> {
    parse_digest(&w.digest).map_err(ManifestError::BadDigest)?;
    Ok(Descriptor {
        media_type: w.media_type,
        digest: w.digest,
        size: u64::try_from(w.size).map_err(|_| ManifestError::NegativeSize)?,
    })
}

/// Parses a manifest body. The kind comes from the body's `mediaType` when present (it is
/// signed content), else from the response's `Content-Type`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, ManifestError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(body).map_err(json_error)?;
    let content_type = content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
    let media_type = probe
        .media_type
        .or(content_type)
        .filter(|m| !m.is_empty() && m != "application/json")
        .unwrap_or_else(|| {
            if probe.manifests.is_some() {
                OCI_IMAGE_INDEX_MEDIA_TYPE.into()
            } else {
                OCI_IMAGE_MEDIA_TYPE.into()
            }
        });
    match media_type.as_str() {
        OCI_IMAGE_MEDIA_TYPE | IMAGE_MANIFEST_MEDIA_TYPE => {
            let m: WireImage = serde_json::from_slice(body).map_err(json_error)?;
            if m.layers.len() > MAX_LAYERS {
                return Err(ManifestError::TooManyLayers {
                    count: m.layers.len(),
                });
            }
            Ok(Manifest::Image {
                config: descriptor(m.config)?,
                layers: m
                    .layers
                    .into_iter()
                    .map(descriptor)
                    .collect::<Result<_, _>>()?,
                media_type,
            })
        }
        OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE => {
            let i: WireIndex = serde_json::from_slice(body).map_err(json_error)?;
            if i.manifests.len() > MAX_INDEX_ENTRIES {
                return Err(ManifestError::TooManyEntries {
                    count: i.manifests.len(),
                });
            }
            Ok(Manifest::Index {
                entries: i
                    .manifests
                    .into_iter()
                    .map(|mut e| {
                        let platform = e.platform.take().map(|p| Platform {
                            os: p.os,
                            architecture: p.architecture,
                            variant: p.variant.filter(|v| !v.is_empty()),
                        });
                        Ok(IndexEntry {
                            platform,
                            descriptor: descriptor(e)?,
                        })
                    })
                    .collect::<Result<_, ManifestError>>()?,
                media_type,
            })
        }
        other => Err(ManifestError::UnsupportedMediaType {
            media_type: other.to_string(),
        }),
    }
}

/// An OCI platform, `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid platform {input:?}: expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8"
)]
pub struct PlatformError {
    pub input: String,
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PlatformError {
            input: s.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            return Err(err());
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl Platform {
    /// The platform this binary runs on, in Go's names, as the kubelet's runtime would pick.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// The variant with containerd's defaults filled in (`arm64` means `v8`).
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, v) => v,
        }
    }

    /// Whether an index entry's platform satisfies this wanted platform. A wanted platform
    /// without a variant takes any variant of its architecture.
    pub fn admits(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none()
                || self.normalized_variant() == candidate.normalized_variant())
    }
}

/// Picks the entry for `wanted`, or lists what the index has.
pub fn select<'a>(
    entries: &'a [IndexEntry],
    wanted: &Platform,
) -> Result<&'a IndexEntry, Vec<String>> {
    entries
        .iter()
        .find(|e| e.platform.as_ref().is_some_and(|p| wanted.admits(p)))
        .ok_or_else(|| {
            // What the index offers, within the report's caps (`crate::bounds::list`).
            crate::bounds::list(
                entries
                    .iter()
                    .filter_map(|e| e.platform.as_ref().map(ToString::to_string)),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI_INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":648,"platform":{"architecture":"amd64","os":"linux"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":648,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":500,"platform":{"architecture":"unknown","os":"unknown"}}]}"#;

    #[test]
    fn parses_an_image_manifest_even_without_media_type() {
        let body = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":287},
          "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","size":65600}]}"#;
        let m = parse(Some("application/vnd.oci.image.manifest.v1+json"), body).unwrap();
        let Manifest::Image { config, layers, .. } = m else {
            panic!()
        };
        assert_eq!(config.size, 287);
        assert_eq!(
            layers[0].digest,
            "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
        );
        assert!(matches!(parse(None, body).unwrap(), Manifest::Image { .. }));
    }

    #[test]
    fn parses_indexes_and_docker_lists() {
        let Manifest::Index { entries, .. } = parse(None, OCI_INDEX.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(entries.len(), 3);
        let list = OCI_INDEX.replace(OCI_IMAGE_INDEX_MEDIA_TYPE, IMAGE_MANIFEST_LIST_MEDIA_TYPE);
        let Manifest::Index { media_type, .. } = parse(None, list.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(media_type, IMAGE_MANIFEST_LIST_MEDIA_TYPE);
    }

    #[test]
    fn rejects_schema1_garbage_and_negative_sizes() {
        let s1 = br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(matches!(
            parse(None, s1),
            Err(ManifestError::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            parse(None, b"<html>"),
            Err(ManifestError::Invalid { .. })
        ));
        let neg = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":-1},"layers":[]}"#;
        assert_eq!(parse(None, neg), Err(ManifestError::NegativeSize));
    }

    #[test]
    fn refuses_digests_that_are_not_the_grammar_before_they_reach_a_url() {
        let traversal = format!("sha256:/../../../../admin/keys?x={}", "a".repeat(38));
        let layer = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha256:{}","size":1}},"layers":[{{"mediaType":"x","digest":"{traversal}","size":1}}]}}"#,
            "c".repeat(64)
        );
        assert!(matches!(
            parse(Some(OCI_IMAGE_MEDIA_TYPE), layer.as_bytes()),
            Err(ManifestError::BadDigest(_))
        ));
        let entry = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"../../../other/secret/manifests/prod","size":1}]}"#;
        assert!(matches!(
            parse(None, entry.as_bytes()),
            Err(ManifestError::BadDigest(_))
        ));
    }

    #[test]
    fn caps_index_entries_and_layers() {
        let d = format!(
            r#"{{"mediaType":"x","digest":"sha256:{}","size":1}}"#,
            "a".repeat(64)
        );
        let many = vec![d.as_str(); MAX_INDEX_ENTRIES + 1].join(",");
        let index =
            format!(r#"{{"mediaType":"{OCI_IMAGE_INDEX_MEDIA_TYPE}","manifests":[{many}]}}"#);
        assert_eq!(
            parse(None, index.as_bytes()),
            Err(ManifestError::TooManyEntries {
                count: MAX_INDEX_ENTRIES + 1
            })
        );
        let image =
            format!(r#"{{"mediaType":"{OCI_IMAGE_MEDIA_TYPE}","config":{d},"layers":[{many}]}}"#);
        assert_eq!(
            parse(None, image.as_bytes()),
            Err(ManifestError::TooManyLayers {
                count: MAX_LAYERS + 1
            })
        );
    }

    #[test]
    fn nesting_is_bounded_by_the_types_not_the_stack() {
        // 100,000 levels on the test thread's stack: recursion this deep would overflow it.
        let deep =
            |open: &str, close: &str| format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
        let image = |extra: &str| {
            format!(
                r#"{{"mediaType":"{OCI_IMAGE_MEDIA_TYPE}","config":{{"mediaType":"c","digest":"sha256:{}","size":1}},"layers":[]{extra}}}"#,
                "a".repeat(64)
            )
        };
        // Unknown fields are skipped, however deep (the OCI spec says to ignore them).
        for extra in [deep("[", "]"), deep(r#"{"a":"#, "}")] {
            let body = image(&format!(r#","x":{extra}"#));
            assert!(parse(None, body.as_bytes()).is_ok());
        }
        // Where a typed value belongs, the first bracket is refused.
        for (field, value) in [("config", deep("[", "]")), ("layers", deep("[", "]"))] {
            let body = format!(r#"{{"mediaType":"{OCI_IMAGE_MEDIA_TYPE}","{field}":{value}}}"#);
            assert!(matches!(
                parse(None, body.as_bytes()),
                Err(ManifestError::Invalid { reason: e }) if e.contains("invalid type")
            ));
        }
        let index = format!(r#"{{"manifests":{}}}"#, deep("[", "]"));
        assert!(matches!(
            parse(None, index.as_bytes()),
            Err(ManifestError::Invalid { .. })
        ));
    }

    #[test]
    fn selects_platforms_like_containerd() {
        let Manifest::Index { entries, .. } = parse(None, OCI_INDEX.as_bytes()).unwrap() else {
            panic!()
        };
        let p = |s: &str| s.parse::<Platform>().unwrap();
        assert_eq!(
            select(&entries, &p("linux/amd64"))
                .unwrap()
                .descriptor
                .digest,
            "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        );
        assert_eq!(
            select(&entries, &p("linux/arm64"))
                .unwrap()
                .descriptor
                .digest,
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        );
        assert_eq!(
            select(&entries, &p("linux/arm64/v8"))
                .unwrap()
                .descriptor
                .digest,
            "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        );
        assert_eq!(
            select(&entries, &p("linux/s390x")).unwrap_err(),
            vec!["linux/amd64", "linux/arm64/v8", "unknown/unknown"]
        );
        assert!(select(&entries, &p("linux/arm64/v7")).is_err());
    }

    #[test]
    fn parses_platform_strings() {
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64/v8"
        );
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "Linux/AMD64",
            "linux amd64",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        assert_eq!(Platform::host().os, "linux");
    }
}
