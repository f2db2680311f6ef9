//! The Amazon ECR host forms a registry name can take, and what they say about the image.
//!
//! The region and account of an ECR image come from its host name, never from IMDS: pods on
//! OpenShift cannot reach IMDS, and the token must be minted in the registry's region because
//! ECR authorization tokens are region-bound.

use std::fmt;

use serde::Serialize;

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
}
