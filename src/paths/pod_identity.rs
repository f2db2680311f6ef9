//! The pod's own identity: the web identity (or whatever the SDK's chain finds) exchanged for
//! an ECR token per region, then the shared pull with it. The kubelet does not pull with this
//! identity unless a credential provider in service-account-token mode assumes a role for the
//! pod (KEP-4412), so this path answers "could the pod's code pull it", and is compared with
//! the kubelet's paths.

use std::collections::BTreeMap;
use std::time::Instant as StdInstant;

use tokio::time::{Instant, timeout_at};

use super::{Credentials, PullResult, Puller, ms, unix_now};
use crate::diagnosis;
use crate::ecr::{self, EcrToken, TokenKey};
use crate::reference::{HostForm, ImageRef};
use crate::report::{Finding, Stage};
use crate::sts::StsOutcome;

/// A token fetch, shared by the images of its region.
pub struct TokenResult {
    pub duration_ms: u64,
    pub result: Result<EcrToken, Finding>,
}

/// One ECR token per (partition, region) of the images, fetched concurrently.
pub async fn fetch_tokens(
    images: &[&ImageRef],
    sts: Option<&StsOutcome>,
    deadline: Instant,
    timeout_secs: f64,
) -> BTreeMap<TokenKey, TokenResult> {
    let Some(sts) = sts else {
        return BTreeMap::new();
    };
    let mut keys: BTreeMap<TokenKey, bool> = BTreeMap::new();
    for e in images.iter().filter_map(|i| i.ecr.as_ref()) {
        let fips = matches!(e.form, HostForm::Fips | HostForm::DualStackFips);
        *keys
            .entry(TokenKey {
                partition: e.partition,
                region: e.region.clone(),
            })
            .or_default() |= fips;
    }
    let fetches = keys.into_iter().map(|(key, fips)| async move {
        let start = StdInstant::now();
        let result = match timeout_at(deadline, ecr::fetch(&sts.sdk, &key, fips)).await {
            Err(_) => Err(diagnosis::deadline_exceeded("ecr_token", timeout_secs)),
            Ok(Err(e)) => Err(diagnosis::ecr_token_finding(&e)),
            Ok(Ok(t)) => Ok(t),
        };
        (
            key,
            TokenResult {
                duration_ms: ms(start),
                result,
            },
        )
    });
    futures_util::future::join_all(fetches)
        .await
        .into_iter()
        .collect()
}

/// The shared token fetch for an ECR image's (partition, region).
pub fn token_for<'t>(
    tokens: &'t BTreeMap<TokenKey, TokenResult>,
    img: &ImageRef,
) -> Option<&'t TokenResult> {
    let e = img.ecr.as_ref()?;
    tokens.get(&TokenKey {
        partition: e.partition,
        region: e.region.clone(),
    })
}

/// The pod path of one image: its `ecr_token` stage, then the registry stages, and the
/// image-level findings it adds (a registry that is not ECR).
pub async fn check(
    puller: &Puller<'_>,
    img: &ImageRef,
    token: Option<&TokenResult>,
    findings: &mut Vec<Finding>,
) -> PullResult {
    let mut out = PullResult::default();
    let caller = puller.sts.map(|s| &s.caller);
    // ECR token: shared per region; a non-ECR registry gets none.
    let (basic, info) = match (&img.ecr, token) {
        (None, _) => {
            findings.push(diagnosis::not_ecr(img));
            out.stages.push(Stage::skipped("ecr_token"));
            (None, None)
        }
        // No credentials: the identity stages already say why.
        (Some(_), None) => {
            super::skip_rest(&mut out.stages, &IMAGE_STAGES);
            return out;
        }
        (Some(_), Some(t)) => match &t.result {
            Ok(tok) => {
                let mut warnings = diagnosis::ecr_token_warnings(&tok.info, unix_now());
                warnings.extend(diagnosis::clock_skew(
                    &tok.info.api_endpoint,
                    tok.server_date,
                    unix_now(),
                ));
                out.stages.push(Stage::from_findings(
                    "ecr_token",
                    t.duration_ms,
                    None,
                    warnings,
                ));
                (Some(&tok.authorization), Some(&tok.info))
            }
            Err(f) => {
                out.stages.push(Stage::from_findings(
                    "ecr_token",
                    t.duration_ms,
                    None,
                    vec![f.clone()],
                ));
                super::skip_rest(&mut out.stages, &IMAGE_STAGES);
                return out;
            }
        },
    };
    let credentials = match basic {
        Some(_) => Credentials::PodIdentity {
            caller,
            token: info,
        },
        None => Credentials::None,
    };
    let pulled = puller.pull(img, basic, credentials).await;
    out.stages.extend(pulled.stages);
    out.blobs = pulled.blobs;
    out.manifest = pulled.manifest;
    out
}

/// The stages of the pod path, in order.
pub const IMAGE_STAGES: [&str; 5] = ["ecr_token", "registry_auth", "manifest", "config", "layers"];
