//! Image references, read exactly as the kubelet and containerd read them, and the Amazon ECR
//! host forms they name.
//!
//! The grammar and the Docker Hub normalisation are those of `github.com/distribution/reference`
//! (`ParseNormalizedNamed`, `ParseDockerRef`): a reference the node would pull must parse here
//! to the same registry and repository, and one it refuses must be refused, or the probe would
//! check a different image than the one that fails. `upstream` holds upstream's test tables.
//!
//! Hand-written rather than `oci_client::Reference`: oci-spec's reference regex uses Unicode
//! `\w{0,127}`, which compiles to a ~14 MiB automaton on every run, more than half the probe's
//! heap, for a grammar this small.

mod ecr_host;
mod grammar;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod upstream;

use std::str::FromStr;

use thiserror::Error;

pub use ecr_host::{EcrHost, HostForm, Partition};
use grammar::{Invalid, Kind};

/// Docker Hub's name in normalised references (`defaultDomain`).
const DOCKER_HUB: &str = "docker.io";
/// The older name of Docker Hub, normalised to [`DOCKER_HUB`] (`legacyDefaultDomain`).
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The host Docker Hub's registry API is actually served from.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Where Docker Hub's official images live (`officialRepoPrefix`).
const OFFICIAL_PREFIX: &str = "library/";

/// A parsed image reference, normalised the way container runtimes do (`nginx` is
/// `docker.io/library/nginx:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// As the user wrote it.
    pub original: String,
    /// The registry as normalised: `docker.io` for Docker Hub (also when written
    /// `index.docker.io`), otherwise as written, case and port kept (`Foo`, `[::1]:5000`).
    /// Upstream's `Domain()` but in one case: for `foo_bar.com/app` upstream has no domain
    /// and the path `foo_bar.com/app`; the runtime dials `foo_bar.com`, and so is it here.
    pub registry: String,
    /// The host actually contacted (`registry-1.docker.io` for `docker.io`).
    pub resolved_registry: String,
    /// The normalised path (`library/nginx`).
    pub repository: String,
    /// As written; `latest` only when neither a tag nor a digest was given.
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub ecr: Option<EcrHost>,
}

impl ImageRef {
    /// The tag or digest to ask the registry for; a digest wins when both are given, as in
    /// container runtimes.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository`, upstream's `Name()`: what the kubelet's credential keyring
    /// looks images up by.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `reference.ParseDockerRef(original).String()`: the name with the tag, or with the
    /// digest alone when there is one (the tag is dropped, as the runtime pulls by digest).
    pub fn normalized(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}@{d}", self.name()),
            None => format!("{}:{}", self.name(), self.manifest_reference()),
        }
    }

    /// Upstream's `FamiliarName`: the name as `docker` prints it (`nginx`, `team/app`,
    /// `quay.io/org/app`), for messages people compare with their manifests.
    pub fn familiar_name(&self) -> String {
        if self.registry != DOCKER_HUB {
            return self.name();
        }
        match self.repository.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.repository.clone(),
        }
    }

    /// Upstream's `FamiliarString` of [`ImageRef::normalized`]: `nginx:latest`,
    /// `nginx@sha256:…`.
    pub fn familiar_string(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}@{d}", self.familiar_name()),
            None => format!("{}:{}", self.familiar_name(), self.manifest_reference()),
        }
    }
}

#[derive(Debug, Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    /// Parses `[registry/]repository[:tag][@digest]` as the kubelet does
    /// (`reference.ParseNormalizedNamed`), with the digest rules of go-digest.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse_normalized(input).map_err(|e| ReferenceError {
            input: input.to_string(),
            reason: e.reason,
        })
    }
}

/// `reference.ParseNormalizedNamed`, step for step, into an [`ImageRef`].
fn parse_normalized(input: &str) -> Result<ImageRef, Invalid> {
    // Both are refused by the grammar below too; this only says so plainly.
    if input.is_empty() {
        return Err(Invalid::new(Kind::InvalidFormat, "the reference is empty"));
    }
    if input.trim() != input {
        return Err(Invalid::new(
            Kind::InvalidFormat,
            "the reference has white space around it",
        ));
    }
    if grammar::is_identifier(input) {
        return Err(Invalid::new(
            Kind::ImageId,
            "64 hex digits are an image ID, not a repository; write repository@sha256:<id>, \
             or name the registry (docker.io/<name>) if it really is a repository",
        ));
    }
    let (domain, official, rest) = split_docker_domain(input);
    let mut full = String::with_capacity(
        domain.len() + 1 + OFFICIAL_PREFIX.len() * usize::from(official) + rest.len(),
    );
    full.push_str(domain);
    full.push('/');
    if official {
        full.push_str(OFFICIAL_PREFIX);
    }
    full.push_str(rest);
    // Upstream checks the remainder after adding "library/", which has no upper case.
    check_remote_lowercase(rest)?;
    let parts = grammar::parse(&full).map_err(|e| {
        if let Some((scheme, _)) = input.split_once("://") {
            Invalid::new(
                e.kind,
                format!("an image reference has no URL scheme: drop \"{scheme}://\""),
            )
        } else if !input.contains('/') && input.contains('[') {
            Invalid::new(
                e.kind,
                "names no repository: a registry host must be followed by /repository",
            )
        } else {
            e
        }
    })?;
    // Upstream leaves the domain empty when the first component is not a valid host but is a
    // valid path component (`foo_bar.com/app`); the runtime and the keyring still take that
    // component as the host, so it is the registry here too. `name()` is unchanged by this.
    let (registry, repository) = match parts.domain {
        "" => parts.path.split_once('/').unwrap_or(("", parts.path)),
        d => (d, parts.path),
    };
    Ok(ImageRef {
        original: input.to_string(),
        registry: registry.to_string(),
        resolved_registry: match registry {
            DOCKER_HUB => DOCKER_HUB_API.to_string(),
            r => r.to_string(),
        },
        repository: repository.to_string(),
        tag: match (parts.tag, parts.digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        },
        digest: parts.digest.map(str::to_string),
        ecr: EcrHost::parse(registry),
    })
}

/// `splitDockerDomain`: `(domain, add "library/", remainder)`. The first component names a
/// registry when it is `localhost`, has a '.' or ':', or has upper case (which a repository
/// cannot); otherwise the image is on Docker Hub.
fn split_docker_domain(name: &str) -> (&str, bool, &str) {
    let (domain, remainder) = match name.split_once('/') {
        // Upstream's FIXME: a bare `localhost` or `example.com` is an image on Docker Hub.
        None => return (DOCKER_HUB, true, name),
        Some(("localhost", rest)) => ("localhost", rest),
        Some((DOCKER_HUB_LEGACY, rest)) => (DOCKER_HUB, rest),
        Some((first, rest)) if first.contains(['.', ':']) || has_upper(first) => (first, rest),
        Some(_) => (DOCKER_HUB, name),
    };
    // `remainder` still carries the tag and digest, as upstream's check does.
    let official = domain == DOCKER_HUB && !remainder.contains('/');
    (domain, official, remainder)
}

/// `ParseNormalizedNamed`'s own check: the remainder up to its first ':' must be lower case.
fn check_remote_lowercase(remainder: &str) -> Result<(), Invalid> {
    let remote = remainder.split(':').next().unwrap_or(remainder);
    if !has_upper(remote) {
        return Ok(());
    }
    // Without a tag the "remote" runs into the digest; say which part is wrong.
    let reason = match remote.split_once('@') {
        Some((path, algo)) if !has_upper(path) => {
            format!("digest algorithm {algo:?} must be lower case, e.g. sha256")
        }
        Some((path, _)) => format!("repository {path:?} must be lower case"),
        None => format!("repository {remote:?} must be lower case"),
    };
    Err(Invalid::new(Kind::RepositoryUppercase, reason))
}

/// Go's `strings.ToLower(s) != s`.
fn has_upper(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.to_lowercase() != s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ecr_references_with_tags_and_digests() {
        let r: ImageRef = "818140567777.dkr.ecr.us-east-1.amazonaws.com/consultingfirm/naming-server-service:latest"
            .parse()
            .unwrap();
        assert_eq!(r.repository, "consultingfirm/naming-server-service");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.ecr.as_ref().unwrap().account, "818140567777");

        let d = "sha256:".to_string() + &"a".repeat(64);
        let r: ImageRef = format!("818140567777.dkr.ecr.eu-west-1.amazonaws.com/app@{d}")
            .parse()
            .unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), d);

        let r: ImageRef = format!("818140567777.dkr.ecr.eu-west-1.amazonaws.com/app:v1@{d}")
            .parse()
            .unwrap();
        assert_eq!(r.manifest_reference(), d, "digest wins over tag");

        let r: ImageRef = "818140567777.dkr.ecr.eu-west-1.amazonaws.com/app"
            .parse()
            .unwrap();
        assert_eq!(r.manifest_reference(), "latest");
    }

    #[test]
    fn normalises_other_registries_and_ports() {
        let r: ImageRef = "nginx".parse().unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.resolved_registry, "registry-1.docker.io");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.repository, "library/nginx");

        let r: ImageRef = "team/app:1".parse().unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "team/app")
        );
        let r: ImageRef = "localhost/app".parse().unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost", "app")
        );
        // Upstream keeps the domain as written; the ECR parse and URL hosts ignore case.
        let r: ImageRef = "Quay.IO/org/app".parse().unwrap();
        assert_eq!(r.registry, "Quay.IO");
        assert!(r.ecr.is_none());
        let r: ImageRef = "123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM/app"
            .parse()
            .unwrap();
        assert_eq!(r.ecr.map(|e| e.region).as_deref(), Some("eu-west-1"));

        let r: ImageRef = "127.0.0.1:5000/team/app:1.0".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));

        let r = "[::1]:5000/repo@sha256:".to_string() + &"f".repeat(64);
        let r: ImageRef = r.parse().unwrap();
        assert_eq!(r.registry, "[::1]:5000");
        assert_eq!(r.resolved_registry, "[::1]:5000");
    }

    #[test]
    fn a_first_component_that_is_no_host_but_a_path_is_still_the_registry() {
        // Upstream: Domain() "" and Path() "bad_host.example/a"; the runtime dials the first
        // component, so it is the registry, and the strings upstream prints are the same.
        let r: ImageRef = "bad_host.example/a".parse().unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("bad_host.example", "a")
        );
        assert_eq!(r.normalized(), "bad_host.example/a:latest");
        assert_eq!(r.familiar_name(), "bad_host.example/a");
        // The path limit then counts the first component too, as upstream.
        let long = format!("x_y.z/{}", "a".repeat(250));
        assert!(long.parse::<ImageRef>().is_err());
        assert!(
            format!("x.z/{}", "a".repeat(255))
                .parse::<ImageRef>()
                .is_ok()
        );
    }

    #[test]
    fn rejects_malformed_references_with_the_input_named() {
        for bad in [
            "",
            " nginx",
            "upper/Case",
            "host/repo:bad tag",
            "repo@sha256:short",
            "a/b:",
            "a/b:-tag",
            "a//b",
            "a/b@sha256",
            "host:port/a",
            "a/b@sha256:zz6e1c2e9d7b6c5b0a0f7e0c5b6f7f6f5e4d3c2b1a09f8e7d6c5b4a39281706",
        ] {
            let err = bad.parse::<ImageRef>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    /// Each refusal says which part is wrong and what is allowed there.
    #[test]
    fn reasons_name_the_part_and_the_rule() {
        let f = "f".repeat(64);
        let cases = [
            ("", "empty"),
            (
                "https://quay.io/org/app",
                "no URL scheme: drop \"https://\"",
            ),
            (" nginx", "white space"),
            (
                "docker/Docker",
                "repository \"docker/Docker\" must be lower case",
            ),
            ("dock_.er/docker", "\"dock_.er\" is neither a registry"),
            (
                "docker/dock_.er",
                "repository component \"dock_.er\" must be lower-case",
            ),
            ("a//b", "empty component"),
            ("bad:port/a", "registry \"bad:port\" must be a host name"),
            ("[fe80::1%eth0]:5000/a", "registry \"[fe80::1%eth0]:5000\""),
            ("[::1]:5000", "must be followed by /repository"),
            ("a/b:-x", "tag \"-x\" must be 1 to 128"),
            ("a/b:", "tag after ':' is empty"),
            (
                "a/b@sha256:abc",
                "digest \"sha256:abc\" must be <algorithm>:<hex>",
            ),
            (
                &*format!("a/b@md5:{f}"),
                "algorithm \"md5\" is not supported",
            ),
            (
                &*format!("a/b@SHA256:{f}"),
                "algorithm \"SHA256\" must be lower case",
            ),
            (
                &*format!("a/b@sha256:{f}ff"),
                "has 66 hex digits; it must have exactly 64",
            ),
            (&*format!("a/b@sha256:{}", "F".repeat(64)), "lower-case hex"),
            (&*format!("a/{}", "b".repeat(256)), "at most 255"),
            (&*f, "image ID"),
        ];
        for (input, want) in cases {
            let err = input.parse::<ImageRef>().unwrap_err();
            assert!(err.reason.contains(want), "{input:?}: {err}");
        }
    }

    #[test]
    fn familiar_forms_drop_docker_hub_and_library() {
        let r: ImageRef = "docker.io/library/busybox".parse().unwrap();
        assert_eq!(r.familiar_string(), "busybox:latest");
        let r: ImageRef = "index.docker.io/team/app:1".parse().unwrap();
        assert_eq!(r.familiar_string(), "team/app:1");
        let d = format!("sha256:{}", "e".repeat(64));
        let r: ImageRef = format!("quay.io/org/app:1@{d}").parse().unwrap();
        assert_eq!(r.familiar_string(), format!("quay.io/org/app@{d}"));
    }
}
