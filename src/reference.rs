//! Image references and the Amazon ECR host forms they name.
//!
//! The region and account of an ECR image come from its host name, never from IMDS: pods on
//! OpenShift cannot reach IMDS, and the token must be minted in the registry's region because
//! ECR authorization tokens are region-bound.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use thiserror::Error;

/// AWS partitions that host ECR, with the DNS suffix of their registry hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
    AwsIso,
    AwsIsoB,
    AwsIsoE,
    AwsIsoF,
    AwsEusc,
}

impl Partition {
    /// The partition's name as it appears in ARNs.
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsIso => "aws-iso",
            Partition::AwsIsoB => "aws-iso-b",
            Partition::AwsIsoE => "aws-iso-e",
            Partition::AwsIsoF => "aws-iso-f",
            Partition::AwsEusc => "aws-eusc",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of ECR's registry host shapes an image uses. The node's kubelet credential provider
/// matches hosts by pattern, and OpenShift's default patterns do not cover every form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostForm {
    /// `<acct>.dkr.ecr.<region>.<suffix>`
    Standard,
    /// `<acct>.dkr.ecr-fips.<region>.<suffix>`
    Fips,
    /// `<acct>.dkr-ecr.<region>.on.aws` (IPv4 + IPv6)
    DualStack,
    /// `<acct>.dkr-ecr-fips.<region>.on.aws`
    DualStackFips,
}

/// A private ECR registry host, decomposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
    pub partition: Partition,
    pub form: HostForm,
}

impl EcrHost {
    /// Recognises every private ECR host form; `None` for any other host (including a host with
    /// a port, which ECR never uses).
    pub fn parse(host: &str) -> Option<EcrHost> {
        let host = host.to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        if labels.len() < 4 {
            return None;
        }
        let account = labels[0];
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (form_fips, dual, region_idx) = match (labels[1], labels[2]) {
            ("dkr", "ecr") => (false, false, 3),
            ("dkr", "ecr-fips") => (true, false, 3),
            ("dkr-ecr", _) => (false, true, 2),
            ("dkr-ecr-fips", _) => (true, true, 2),
            _ => return None,
        };
        let region = *labels.get(region_idx)?;
        let valid_region = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && region.contains('-');
        if !valid_region {
            return None;
        }
        let suffix = labels[region_idx + 1..].join(".");
        let partition = match (dual, suffix.as_str()) {
            (false, "amazonaws.com") if region.starts_with("us-gov-") => Partition::AwsUsGov,
            (false, "amazonaws.com") => Partition::Aws,
            (false, "amazonaws.com.cn") => Partition::AwsCn,
            (false, "c2s.ic.gov") => Partition::AwsIso,
            (false, "sc2s.sgov.gov") => Partition::AwsIsoB,
            (false, "cloud.adc-e.uk") => Partition::AwsIsoE,
            (false, "csp.hci.ic.gov") => Partition::AwsIsoF,
            (false, "amazonaws.eu") => Partition::AwsEusc,
            (true, "on.aws") if region.starts_with("us-gov-") => Partition::AwsUsGov,
            (true, "on.aws") => Partition::Aws,
            (true, "on.amazonwebservices.com.cn") => Partition::AwsCn,
            _ => return None,
        };
        let form = match (form_fips, dual) {
            (false, false) => HostForm::Standard,
            (true, false) => HostForm::Fips,
            (false, true) => HostForm::DualStack,
            (true, true) => HostForm::DualStackFips,
        };
        Some(EcrHost {
            account: account.to_string(),
            region: region.to_string(),
            partition,
            form,
        })
    }
}

/// A parsed image reference, normalised the way container runtimes do (`nginx` is
/// `docker.io/library/nginx:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// As the user wrote it.
    pub original: String,
    /// The registry host (and port) as named in the reference.
    pub registry: String,
    /// The host actually contacted (`index.docker.io` for `docker.io`).
    pub resolved_registry: String,
    pub repository: String,
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
}

#[derive(Debug, Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    /// Parses `[registry/]repository[:tag][@digest]` by the distribution reference grammar,
    /// normalised as container runtimes do.
    ///
    /// Hand-written rather than `oci_client::Reference`: oci-spec's reference regex uses
    /// Unicode `\w{0,127}`, which compiles to a ~14 MiB automaton on every run, more than
    /// half the probe's heap, for a grammar this small.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ReferenceError {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() || input.trim() != input {
            return Err(err("empty, or surrounded by white space".into()));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (input, None),
        };
        let (name, tag) = match name_tag.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (name_tag, None),
        };
        if name.len() > 255 {
            return Err(err("the name is longer than 255 characters".into()));
        }
        // As in distribution: the first component names a registry when it has a dot or a
        // port, or is `localhost`, or has upper case (which a repository cannot).
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            Some(_) => ("docker.io".to_string(), name.to_string()),
            None => ("docker.io".to_string(), format!("library/{name}")),
        };
        if !valid_registry(&registry) {
            return Err(err(format!("registry {registry:?} is not a host[:port]")));
        }
        if let Some(bad) = repository.split('/').find(|c| !valid_path_component(c)) {
            return Err(err(format!(
                "repository component {bad:?} must be lowercase letters, digits and . _ - separators"
            )));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(err(format!(
                "tag {t:?} must be 1 to 128 of A-Z a-z 0-9 _ . - and not start with . or -"
            )));
        }
        if let Some(d) = digest
            && !valid_digest(d)
        {
            return Err(err(format!(
                "digest {d:?} must be algorithm:hex, e.g. sha256: and 64 hex digits"
            )));
        }
        let registry = registry.to_ascii_lowercase();
        Ok(ImageRef {
            original: input.to_string(),
            ecr: EcrHost::parse(&registry),
            resolved_registry: if registry == "docker.io" {
                "registry-1.docker.io".into()
            } else {
                registry.clone()
            },
            registry,
            repository,
            tag: match (tag, digest) {
                (None, None) => Some("latest".into()),
                (t, _) => t.map(str::to_string),
            },
            digest: digest.map(str::to_string),
        })
    }
}

/// `host[:port]`, the host a DNS name of letters, digits and hyphens.
fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label_ok)
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[\w][\w.-]{0,127}` with ASCII `\w`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm:encoded`; sha256 and sha512 must have their exact hex lengths.
fn valid_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let algo_ok = !algo.is_empty()
        && algo.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'_' | b'-')
        });
    let hex_ok = hex.bytes().all(|b| b.is_ascii_hexdigit());
    let len_ok = match algo {
        "sha256" => hex.len() == 64,
        "sha512" => hex.len() == 128,
        _ => hex.len() >= 32,
    };
    algo_ok && hex_ok && len_ok
}

/// The distribution spec's path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    !b.is_empty()
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter()
            .all(|x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
        && !c.contains("..")
        && !c.contains("___")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecr(host: &str) -> EcrHost {
        EcrHost::parse(host).unwrap_or_else(|| panic!("{host} should be ECR"))
    }

    #[test]
    fn recognises_every_ecr_host_form() {
        let cases = [
            (
                "818140567777.dkr.ecr.us-east-1.amazonaws.com",
                "us-east-1",
                Partition::Aws,
                HostForm::Standard,
            ),
            (
                "123456789012.dkr.ecr-fips.us-east-2.amazonaws.com",
                "us-east-2",
                Partition::Aws,
                HostForm::Fips,
            ),
            (
                "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
                Partition::AwsUsGov,
                HostForm::Standard,
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "cn-north-1",
                Partition::AwsCn,
                HostForm::Standard,
            ),
            (
                "123456789012.dkr-ecr.us-west-2.on.aws",
                "us-west-2",
                Partition::Aws,
                HostForm::DualStack,
            ),
            (
                "123456789012.dkr-ecr-fips.us-west-2.on.aws",
                "us-west-2",
                Partition::Aws,
                HostForm::DualStackFips,
            ),
            (
                "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
                "cn-north-1",
                Partition::AwsCn,
                HostForm::DualStack,
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                "us-iso-east-1",
                Partition::AwsIso,
                HostForm::Standard,
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                "us-isob-east-1",
                Partition::AwsIsoB,
                HostForm::Standard,
            ),
            (
                "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
                "eu-isoe-west-1",
                Partition::AwsIsoE,
                HostForm::Standard,
            ),
            (
                "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
                "us-isof-south-1",
                Partition::AwsIsoF,
                HostForm::Standard,
            ),
            (
                "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
                "eusc-de-east-1",
                Partition::AwsEusc,
                HostForm::Standard,
            ),
            (
                "123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM",
                "eu-west-1",
                Partition::Aws,
                HostForm::Standard,
            ),
        ];
        for (host, region, partition, form) in cases {
            let h = ecr(host);
            assert_eq!(
                (h.region.as_str(), h.partition, h.form),
                (region, partition, form),
                "{host}"
            );
            assert_eq!(h.account.len(), 12);
        }
    }

    #[test]
    fn rejects_hosts_that_only_look_like_ecr() {
        for host in [
            "docker.io",
            "quay.io",
            "public.ecr.aws",
            "12345678901.dkr.ecr.us-east-1.amazonaws.com",
            "1234567890123.dkr.ecr.us-east-1.amazonaws.com",
            "abcdefghijkl.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.useast1.amazonaws.com",
            "127.0.0.1:5000",
        ] {
            assert_eq!(EcrHost::parse(host), None, "{host}");
        }
    }

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
        let r: ImageRef = "Quay.IO/org/app".parse().unwrap();
        assert_eq!(r.registry, "quay.io");
        assert!(r.ecr.is_none());

        let r: ImageRef = "127.0.0.1:5000/team/app:1.0".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
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
            "bad_host.example/a",
            "host:port/a",
            "a/b@sha256:zz6e1c2e9d7b6c5b0a0f7e0c5b6f7f6f5e4d3c2b1a09f8e7d6c5b4a39281706",
        ] {
            let err = bad.parse::<ImageRef>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
