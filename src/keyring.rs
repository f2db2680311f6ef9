//! The kubelet's credential keyring matching: which docker-config key, or which credential
//! provider `matchImages` pattern, covers which image. Pure, no I/O.
//!
//! Re-implements, for the same answers, kubernetes `pkg/credentialprovider/keyring.go`
//! (`BasicDockerKeyring.Add`/`Lookup`, `isDefaultRegistryMatch`, `ParseSchemelessURL`,
//! `SplitURL`, `URLsMatchStr`/`URLsMatch`; kubernetes/kubernetes 558b436a, unchanged in the
//! matching parts up to the `TrackedAuthConfig` revision of v1.33+),
//! `pkg/credentialprovider/plugin/plugin.go` (`isImageAllowed`, 01302639) and
//! `pkg/credentialprovider/plugin/config.go` (`matchImages` must parse, fde22c3f). What those
//! call from Go is ported too: `net/url.Parse` (the host and path rules of current Go, which
//! refuses `[` anywhere but at the start of a host), `net.SplitHostPort`, and
//! `path/filepath.Match` (`*`, `?`, `[...]` classes, `\` escapes; a malformed chunk is an error
//! once matching reaches it).
//!
//! Keys come from pull Secrets, so from whoever may edit one: keys and patterns are capped in
//! length and wildcards, image names in length, and the glob is a loop, `O(pattern × label)`
//! with no recursion (issue 15: the recursive matcher this replaces backtracked without bound).

use std::collections::BTreeMap;

mod glob;
mod go_url;

use self::glob::{compile_glob, glob_match};
pub use self::go_url::UrlError;
use self::go_url::{parse_schemeless, parse_url, split_url};

/// Longest key or pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 512;
/// Most wildcards (`*`, `?`, `[`) accepted in one key or pattern.
pub const MAX_WILDCARDS: usize = 32;
/// Longest image name matched, in bytes (a valid reference name is at most 255).
pub const MAX_TARGET_LEN: usize = 1024;

/// The key whose credentials serve Docker Hub images no other key covers.
const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

/// Why a key, pattern or image name is not matched. Messages name the limit or the rule, never
/// the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern is {len} bytes, over the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("pattern has {count} wildcards, over the limit of {max}")]
    TooManyWildcards { count: usize, max: usize },
    #[error("image name is {len} bytes, over the limit of {max}")]
    TargetTooLong { len: usize, max: usize },
    #[error("pattern is not a URL the kubelet can parse")]
    Unparsable(#[source] UrlError),
    #[error("image name is not a URL the kubelet can parse")]
    TargetUnparsable(#[source] UrlError),
    /// Go's `filepath.ErrBadPattern`.
    #[error("syntax error in pattern")]
    BadGlob,
}

/// The kubelet's `matchImages` validation (the pattern must parse), plus this module's caps.
pub fn check_pattern(pattern: &str) -> Result<(), PatternError> {
    check_caps(pattern)?;
    parse_schemeless(pattern).map_err(PatternError::Unparsable)?;
    Ok(())
}

/// `URLsMatchStr`: whether `target` (`host[:port][/path]`, no scheme) is covered by `pattern`:
/// as many host labels, each a `filepath.Match` glob, equal ports (absent equals absent), and
/// the pattern's path a plain string prefix of the target's (`a/team` covers `a/teamx`).
/// The kubelet treats every error as "does not match".
pub fn urls_match(pattern: &str, target: &str) -> Result<bool, PatternError> {
    check_caps(pattern)?;
    if target.len() > MAX_TARGET_LEN {
        return Err(PatternError::TargetTooLong {
            len: target.len(),
            max: MAX_TARGET_LEN,
        });
    }
    let glob = parse_schemeless(pattern).map_err(PatternError::Unparsable)?;
    let target = parse_schemeless(target).map_err(PatternError::TargetUnparsable)?;
    let (glob_labels, glob_port) = split_url(&glob.host);
    let (target_labels, target_port) = split_url(&target.host);
    if glob_port != target_port
        || glob_labels.len() != target_labels.len()
        || !target.path.starts_with(&glob.path)
    {
        return Ok(false);
    }
    let mut steps = 0;
    for (g, t) in glob_labels.iter().zip(&target_labels) {
        if !glob_match(&compile_glob(g), t, &mut steps)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `isImageAllowed` of the credential provider plugin: the provider runs for `image` when any
/// of its `matchImages` covers it.
pub fn image_allowed<'a>(match_images: impl IntoIterator<Item = &'a str>, image: &str) -> bool {
    match_images
        .into_iter()
        .any(|p| urls_match(p, image) == Ok(true))
}

/// `isDefaultRegistryMatch`: whether the kubelet takes `image` for a Docker Hub one (no host
/// part, or `docker.io`/`index.docker.io`), so that an `index.docker.io` key may serve it.
pub fn is_default_registry_match(image: &str) -> bool {
    match image.split_once('/') {
        _ if image.is_empty() || image.starts_with('/') => false,
        None => true,
        Some(("docker.io" | "index.docker.io", _)) => true,
        Some((first, _)) => !first.contains(['.', ':']),
    }
}

/// `BasicDockerKeyring.Add`'s key normalization: a missing `http(s)://` is taken as `https://`,
/// the scheme, userinfo, query and fragment dropped, a `/v1/` or `/v2/` path prefix and a bare
/// `/` path removed, the host and path unescaped. `https://index.docker.io/v1/` becomes
/// `index.docker.io`.
pub fn normalize_key(key: &str) -> Result<String, PatternError> {
    check_caps(key)?;
    let url = if key.starts_with("https://") || key.starts_with("http://") {
        parse_url(key.as_bytes())
    } else {
        parse_schemeless(key)
    }
    .map_err(PatternError::Unparsable)?;
    let mut path = url.path;
    if path.starts_with(b"/v2/") || path.starts_with(b"/v1/") {
        path.drain(..3);
    }
    let mut normalized = url.host;
    if !path.is_empty() && path != b"/" {
        normalized.extend(path);
    }
    let normalized =
        String::from_utf8(normalized).map_err(|_| PatternError::Unparsable(UrlError::NotUtf8))?;
    // Unescaping can turn `%2A` into `*`.
    check_caps(&normalized)?;
    Ok(normalized)
}

/// Credentials by docker-config key, looked up as the kubelet's `BasicDockerKeyring` does.
#[derive(Debug, Clone)]
pub struct Keyring<T> {
    /// Normalized key to values in the order added. Iterated in reverse: the kubelet's index is
    /// the de-duplicated keys sorted in reverse byte order, so `quay.io/team` comes before
    /// `quay.io`.
    creds: BTreeMap<String, Vec<T>>,
}

impl<T> Default for Keyring<T> {
    fn default() -> Self {
        Keyring {
            creds: BTreeMap::new(),
        }
    }
}

impl<T> Keyring<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` under `key` as written in the docker config, returning the normalized key.
    /// A key that does not parse is skipped by the kubelet; here it is refused and not added.
    pub fn add(&mut self, key: &str, value: T) -> Result<String, PatternError> {
        let normalized = normalize_key(key)?;
        self.creds
            .entry(normalized.clone())
            .or_default()
            .push(value);
        Ok(normalized)
    }

    /// `BasicDockerKeyring.Lookup`: every value whose key covers `image`, most specific key
    /// first; if none does and the image is a Docker Hub one, the `index.docker.io` key's.
    /// `image` is the reference name without tag or digest, as the kubelet passes it
    /// (`docker.io/library/busybox`, `<acct>.dkr.ecr.<region>.amazonaws.com/team/app`).
    pub fn lookup(&self, image: &str) -> Vec<&T> {
        let found: Vec<&T> = self
            .creds
            .iter()
            .rev()
            .filter(|(key, _)| urls_match(key, image) == Ok(true))
            .flat_map(|(_, values)| values)
            .collect();
        if !found.is_empty() || !is_default_registry_match(image) {
            return found;
        }
        self.creds
            .get(DEFAULT_REGISTRY_HOST)
            .map(|values| values.iter().collect())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }
}

fn check_caps(pattern: &str) -> Result<(), PatternError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(PatternError::TooLong {
            len: pattern.len(),
            max: MAX_PATTERN_LEN,
        });
    }
    let count = pattern.bytes().filter(|b| b"*?[".contains(b)).count();
    if count > MAX_WILDCARDS {
        return Err(PatternError::TooManyWildcards {
            count,
            max: MAX_WILDCARDS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
