//! `CredentialProviderConfig`, read and validated as the kubelet does at start
//! (kubernetes `pkg/credentialprovider/plugin/config.go`: `readCredentialProviderConfig`,
//! `validateCredentialProviderConfig`). A config the kubelet would refuse is refused here with
//! the rule it breaks, so the probe never reports on a node path no kubelet could run.
//!
//! Pure: bytes in, a config or an error out; reading files is [`load`]'s thin edge.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::keyring;

/// Longest config accepted, in bytes (a real one is a few KiB).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// Most files read from a config directory.
pub const MAX_CONFIG_FILES: usize = 64;

/// The exec protocol versions a current kubelet speaks (`credentialprovider.kubelet.k8s.io`).
pub const PROTOCOL_VERSIONS: [&str; 3] = [
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];

/// The config file versions (`kubelet.config.k8s.io`) kubelets accept.
pub const CONFIG_VERSIONS: [&str; 3] = [
    "kubelet.config.k8s.io/v1",
    "kubelet.config.k8s.io/v1beta1",
    "kubelet.config.k8s.io/v1alpha1",
];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    providers: Vec<RawProvider>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProvider {
    #[serde(default)]
    name: String,
    #[serde(default)]
    match_images: Vec<String>,
    default_cache_duration: Option<String>,
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<RawEnv>,
    token_attributes: Option<RawTokenAttributes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTokenAttributes {
    #[serde(default)]
    service_account_token_audience: String,
    require_service_account: Option<bool>,
    #[serde(default)]
    required_service_account_annotation_keys: Vec<String>,
    #[serde(default)]
    optional_service_account_annotation_keys: Vec<String>,
    cache_type: Option<String>,
}

/// A validated provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The plugin's file name in the bin dir.
    pub name: String,
    pub match_images: Vec<String>,
    pub default_cache_duration: Duration,
    /// The exec protocol version, sent as the request's `apiVersion` and required back.
    pub api_version: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub token_attributes: Option<TokenAttributes>,
}

/// KEP-4412: the provider wants the pod's ServiceAccount token and annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAttributes {
    pub audience: String,
    pub require_service_account: bool,
    pub required_annotation_keys: Vec<String>,
    pub optional_annotation_keys: Vec<String>,
    pub cache_type: String,
}

impl Provider {
    /// The first of the provider's `matchImages` that covers `image` (a reference name
    /// without tag or digest), by the kubelet's rules.
    pub fn matching_pattern(&self, image: &str) -> Option<&str> {
        self.match_images
            .iter()
            .map(String::as_str)
            .find(|p| keyring::urls_match(p, image) == Ok(true))
    }
}

/// Why the kubelet would refuse the config; the messages follow the kubelet's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is {len} bytes, over the limit of {max}")]
    TooLarge {
        path: String,
        len: usize,
        max: usize,
    },
    #[error("{path} has more than {max} config files")]
    TooManyFiles { path: String, max: usize },
    #[error("{path} is not a CredentialProviderConfig: {reason}")]
    Decode { path: String, reason: String },
    #[error(
        "{path}: apiVersion {version:?} is not one a kubelet accepts (kubelet.config.k8s.io/v1, v1beta1 or v1alpha1)"
    )]
    ConfigVersion { path: String, version: String },
    #[error("{path}: kind {kind:?} is not CredentialProviderConfig")]
    Kind { path: String, kind: String },
    #[error("at least 1 item in plugins is required")]
    NoProviders,
    #[error("providers[{index}].name: {problem}")]
    Name { index: usize, problem: String },
    #[error("providers[{index}].name: duplicate provider name {name:?}")]
    Duplicate { index: usize, name: String },
    #[error("providers[{index}].apiVersion: {version:?} is not a supported credential provider protocol version ({})", PROTOCOL_VERSIONS.join(", "))]
    ProtocolVersion { index: usize, version: String },
    #[error("providers[{index}].matchImages: at least 1 item in matchImages is required")]
    NoMatchImages { index: usize },
    #[error("providers[{index}].matchImages[{pattern_index}]: match image is invalid: {reason}")]
    MatchImage {
        index: usize,
        pattern_index: usize,
        reason: String,
    },
    #[error("providers[{index}].defaultCacheDuration: {problem}")]
    CacheDuration { index: usize, problem: String },
    #[error("providers[{index}].tokenAttributes: {problem}")]
    TokenAttributes { index: usize, problem: String },
}

/// Reads the config as the kubelet's `--image-credential-provider-config`: a file, or (newer
/// kubelets) a directory whose `*.json`, `*.yaml` and `*.yml` files are merged in name order.
pub fn load(path: &Path) -> Result<Vec<Provider>, ConfigError> {
    let shown = path.display().to_string();
    let read_err = |e: std::io::Error| ConfigError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let files: Vec<std::path::PathBuf> = if meta.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("json" | "yaml" | "yml")
                    )
            })
            .collect();
        files.sort();
        if files.len() > MAX_CONFIG_FILES {
            return Err(ConfigError::TooManyFiles {
                path: shown,
                max: MAX_CONFIG_FILES,
            });
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut raw = Vec::new();
    for f in &files {
        let shown = f.display().to_string();
        let bytes = read_capped(f).map_err(|e| ConfigError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: shown,
                len: bytes.len(),
                max: MAX_CONFIG_BYTES,
            });
        }
        raw.extend(decode(&shown, &bytes)?);
    }
    validate(raw)
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// One file's providers. JSON is YAML, so one decoder reads both; unknown fields are refused
/// as the kubelet's strict decoding refuses them.
pub fn parse(path: &str, bytes: &[u8]) -> Result<Vec<Provider>, ConfigError> {
    validate(decode(path, bytes)?)
}

fn decode(path: &str, bytes: &[u8]) -> Result<Vec<RawProvider>, ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ConfigError::Decode {
        path: path.into(),
        reason: "not UTF-8 text".into(),
    })?;
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError::Decode {
        path: path.into(),
        // The decoder's first line names the field and position; its snippet is not needed.
        reason: e.to_string().lines().next().unwrap_or_default().to_string(),
    })?;
    match raw.api_version.as_deref() {
        Some(v) if CONFIG_VERSIONS.contains(&v) => {}
        v => {
            return Err(ConfigError::ConfigVersion {
                path: path.into(),
                version: v.unwrap_or_default().into(),
            });
        }
    }
    // `tokenAttributes` exists only in the v1 types: older versions refuse it as unknown.
    if raw.api_version.as_deref() != Some(CONFIG_VERSIONS[0])
        && let Some(i) = raw
            .providers
            .iter()
            .position(|p| p.token_attributes.is_some())
    {
        return Err(ConfigError::Decode {
            path: path.into(),
            reason: format!(
                "strict decoding error: unknown field \"providers[{i}].tokenAttributes\""
            ),
        });
    }
    if raw.kind.as_deref() != Some("CredentialProviderConfig") {
        return Err(ConfigError::Kind {
            path: path.into(),
            kind: raw.kind.unwrap_or_default(),
        });
    }
    Ok(raw.providers)
}

fn validate(raw: Vec<RawProvider>) -> Result<Vec<Provider>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::NoProviders);
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (index, p) in raw.into_iter().enumerate() {
        let name_problem = if p.name.is_empty() {
            Some("name is required")
        } else if p.name.contains('/') {
            Some("provider name cannot contain '/'")
        } else if p.name.contains(' ') {
            Some("provider name cannot contain spaces")
        } else if p.name == "." {
            Some("provider name cannot be '.'")
        } else if p.name == ".." {
            Some("provider name cannot be '..'")
        } else {
            None
        };
        if let Some(problem) = name_problem {
            return Err(ConfigError::Name {
                index,
                problem: problem.into(),
            });
        }
        if !names.insert(p.name.clone()) {
            return Err(ConfigError::Duplicate {
                index,
                name: p.name,
            });
        }
        if !PROTOCOL_VERSIONS.contains(&p.api_version.as_str()) {
            return Err(ConfigError::ProtocolVersion {
                index,
                version: p.api_version,
            });
        }
        if p.match_images.is_empty() {
            return Err(ConfigError::NoMatchImages { index });
        }
        for (pattern_index, m) in p.match_images.iter().enumerate() {
            if let Err(e) = keyring::check_pattern(m) {
                return Err(ConfigError::MatchImage {
                    index,
                    pattern_index,
                    reason: e.to_string(),
                });
            }
        }
        let default_cache_duration = match p.default_cache_duration.as_deref() {
            None => {
                return Err(ConfigError::CacheDuration {
                    index,
                    problem: "defaultCacheDuration is required".into(),
                });
            }
            Some(d) => parse_go_duration(d)
                .map_err(|problem| ConfigError::CacheDuration { index, problem })?,
        };
        let token_attributes = match p.token_attributes {
            None => None,
            Some(t) => Some(token_attributes(index, &p.api_version, t)?),
        };
        out.push(Provider {
            name: p.name,
            match_images: p.match_images,
            default_cache_duration,
            api_version: p.api_version,
            args: p.args,
            env: p.env.into_iter().map(|e| (e.name, e.value)).collect(),
            token_attributes,
        });
    }
    Ok(out)
}

fn token_attributes(
    index: usize,
    api_version: &str,
    t: RawTokenAttributes,
) -> Result<TokenAttributes, ConfigError> {
    let bad = |problem: &str| ConfigError::TokenAttributes {
        index,
        problem: problem.into(),
    };
    if api_version != PROTOCOL_VERSIONS[0] {
        return Err(bad(
            "tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1",
        ));
    }
    if t.service_account_token_audience.trim().is_empty() {
        return Err(bad("serviceAccountTokenAudience is required"));
    }
    let Some(require) = t.require_service_account else {
        return Err(bad("requireServiceAccount is required"));
    };
    if !require && !t.required_service_account_annotation_keys.is_empty() {
        return Err(bad(
            "requireServiceAccount must be true when requiredServiceAccountAnnotationKeys is set",
        ));
    }
    let required: BTreeSet<&String> = t.required_service_account_annotation_keys.iter().collect();
    if required.len() != t.required_service_account_annotation_keys.len() {
        return Err(bad("requiredServiceAccountAnnotationKeys has duplicates"));
    }
    let optional: BTreeSet<&String> = t.optional_service_account_annotation_keys.iter().collect();
    if optional.len() != t.optional_service_account_annotation_keys.len() {
        return Err(bad("optionalServiceAccountAnnotationKeys has duplicates"));
    }
    if required.intersection(&optional).next().is_some() {
        return Err(bad("annotation keys cannot be both required and optional"));
    }
    for k in required.iter().chain(optional.iter()) {
        if !is_qualified_name(k) {
            return Err(bad(&format!(
                "annotation key {k:?} is not a qualified name ([prefix/]name)"
            )));
        }
    }
    let cache_type = match t.cache_type.as_deref() {
        Some(c @ ("Token" | "ServiceAccount")) => c.to_string(),
        Some(other) => {
            return Err(bad(&format!(
                "cacheType {other:?} is not one of Token, ServiceAccount"
            )));
        }
        None => return Err(bad("cacheType is required")),
    };
    Ok(TokenAttributes {
        audience: t.service_account_token_audience,
        require_service_account: require,
        required_annotation_keys: t.required_service_account_annotation_keys,
        optional_annotation_keys: t.optional_service_account_annotation_keys,
        cache_type,
    })
}

/// Kubernetes' qualified name: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    name_ok && prefix_ok
}

/// Go's `time.ParseDuration` for the forms a config carries (`12h`, `1h30m`, `0`, `90s`,
/// `1.5h`); negative durations are refused, as the kubelet refuses them here.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 12h, 30m, 0s)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("{s:?} must not be negative"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = tail;
    }
    if !total.is_finite() || total > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Go's `Duration.String()` for a whole number of seconds (`6h0m0s`, `1m30s`, `0s`), the form
/// a provider's `cacheDuration` takes; the tests write configs and responses with it, and the
/// node cache's findings name durations the way the kubelet's config writes them.
pub fn go_duration_string(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}
