//! The pod's own identity: the web identity (or whatever the SDK's chain finds) exchanged for
//! an ECR token per region, then the shared pull with it. The kubelet does not pull with this
//! identity unless a credential provider in service-account-token mode assumes a role for the
//! pod (KEP-4412), so this path answers "could the pod's code pull it", and is compared with
//! the kubelet's paths.

use std::collections::BTreeMap;
use std::time::Instant as StdInstant;

use tokio::time::{Instant, timeout_at};

use super::{CredentialsUsed, PullResult, Puller, ms, unix_now, with_skipped};
use crate::diagnosis;
use crate::ecr_token::{self, EcrToken, TokenKey};
use crate::reference::{HostForm, ImageRef};
use crate::report::{Finding, PodIdentityPath, Stage, Status};
use crate::sts::StsOutcome;

/// A token fetch, shared by the images of its region.
pub struct TokenResult {
    pub duration_ms: u64,
    pub result: Result<EcrToken, Finding>,
}

/// ECR tokens kept across the runs of `serve --watch`, per (caller, partition, region), until
/// half their life has passed (ECR's are good for 12 h): a run inside that half asks the ECR
/// API for none. Holds no failure: a failed fetch is tried again by the next run.
#[derive(Default)]
pub struct TokenCache {
    tokens: std::sync::Mutex<BTreeMap<(String, TokenKey), (EcrToken, i64)>>,
}

/// Until when (Unix seconds) a token issued at `issued` and expiring at `expires` is reused:
/// half its life. `None` when it would not be reused at all.
pub fn reuse_until(issued: i64, expires: i64) -> Option<i64> {
    (expires > issued).then(|| issued + (expires - issued) / 2)
}

impl TokenCache {
    /// The token kept for `caller` and `key`, if it is inside its half-life at `now`.
    pub fn get(&self, caller: &str, key: &TokenKey, now: i64) -> Option<EcrToken> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (_, until)| now < *until);
        tokens
            .get(&(caller.to_string(), key.clone()))
            .map(|(t, _)| t.clone())
    }

    /// Keeps a token fetched at `now` (by the ECR API's clock when it sent a `Date`).
    pub fn put(&self, caller: &str, key: &TokenKey, token: &EcrToken, now: i64) {
        let issued = token.server_date.unwrap_or(now);
        let Some(until) = token.info.expires_at.and_then(|e| reuse_until(issued, e)) else {
            return;
        };
        // Kept by our clock: as long as it had left at issue, from now.
        let until = now + (until - issued);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((caller.to_string(), key.clone()), (token.clone(), until));
    }
}

/// One ECR token per (partition, region) of the images, fetched concurrently; from `cache`
/// where it holds one inside its half-life, and kept there when fetched.
pub async fn fetch_tokens(
    images: &[&ImageRef],
    sts: Option<&StsOutcome>,
    deadline: Instant,
    timeout_secs: f64,
    cache: &TokenCache,
) -> BTreeMap<TokenKey, TokenResult> {
    let Some(sts) = sts else {
        return BTreeMap::new();
    };
    let caller = sts.caller.arn.as_str();
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
        if let Some(t) = cache.get(caller, &key, unix_now()) {
            return (
                key,
                TokenResult {
                    duration_ms: ms(start),
                    result: Ok(t),
                },
            );
        }
        let result = match timeout_at(deadline, ecr_token::fetch(&sts.sdk, &key, fips)).await {
            Err(_) => Err(diagnosis::deadline_exceeded("ecr_token", timeout_secs)),
            Ok(Err(e)) => Err(diagnosis::ecr_token_finding(&e)),
            Ok(Ok(t)) => {
                cache.put(caller, &key, &t, unix_now());
                Ok(t)
            }
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

/// The pod path for one image, and what it adds to the image's report.
pub struct Checked {
    pub path: PodIdentityPath,
    /// Its stages, manifest and blobs: the image's own (`stages` of the report).
    pub pull: PullResult,
    /// Findings about the image as a whole (a registry that is not ECR).
    pub findings: Vec<Finding>,
}

impl Checked {
    fn new(pull: PullResult, findings: Vec<Finding>) -> Checked {
        let status = if pull.passed() {
            Status::Pass
        } else {
            Status::Fail
        };
        Checked {
            path: PodIdentityPath { status },
            pull,
            findings,
        }
    }
}

/// The pod path of one image: its `ecr_token` stage, then the registry stages, and the
/// image-level findings it adds (a registry that is not ECR).
pub async fn check(puller: &Puller<'_>, img: &ImageRef, token: Option<&TokenResult>) -> Checked {
    let caller = puller.sts.map(|s| &s.caller);
    // ECR token: shared per region; a non-ECR registry gets none.
    match (&img.ecr, token) {
        (None, _) => {
            let pulled = puller.pull(img, None, CredentialsUsed::None).await;
            Checked::new(
                after(Stage::skipped("ecr_token"), pulled),
                vec![diagnosis::not_ecr(img)],
            )
        }
        // No credentials: the identity stages already say why.
        (Some(_), None) => Checked::new(not_pulled(vec![]), vec![]),
        (Some(_), Some(t)) => match &t.result {
            Ok(tok) => {
                let credentials = CredentialsUsed::PodIdentity {
                    caller,
                    token: Some(&tok.info),
                };
                let pulled = puller
                    .pull(img, Some(&tok.authorization), credentials)
                    .await;
                Checked::new(after(token_stage(t.duration_ms, tok), pulled), vec![])
            }
            Err(f) => {
                let failed =
                    Stage::from_findings("ecr_token", t.duration_ms, None, vec![f.clone()]);
                Checked::new(not_pulled(vec![failed]), vec![])
            }
        },
    }
}

/// The `ecr_token` stage of a token in hand: its warnings and the ECR API's clock.
fn token_stage(duration_ms: u64, tok: &EcrToken) -> Stage {
    let mut warnings = diagnosis::ecr_token_warnings(&tok.info, unix_now());
    warnings.extend(diagnosis::clock_skew(
        &tok.info.api_endpoint,
        tok.server_date,
        unix_now(),
    ));
    Stage::from_findings("ecr_token", duration_ms, None, warnings)
}

/// The pull, after the token's stage.
fn after(token: Stage, pulled: PullResult) -> PullResult {
    PullResult {
        stages: std::iter::once(token).chain(pulled.stages).collect(),
        ..pulled
    }
}

/// A path that stopped at `stages`: the rest did not run.
fn not_pulled(stages: Vec<Stage>) -> PullResult {
    PullResult {
        stages: with_skipped(stages, &IMAGE_STAGES),
        ..PullResult::default()
    }
}

/// The stages of the pod path, in order.
pub const IMAGE_STAGES: [&str; 5] = ["ecr_token", "registry_auth", "manifest", "config", "layers"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Partition;
    use crate::report::{EcrTokenInfo, PasswordFormat};
    use crate::secret::Secret;

    fn token(server_date: i64, expires_at: Option<i64>) -> EcrToken {
        EcrToken {
            authorization: Secret::new("QVdTOnNlY3JldA==".into()),
            info: EcrTokenInfo {
                region: "us-east-1".into(),
                partition: "aws".into(),
                api_endpoint: "api.ecr.us-east-1.amazonaws.com".into(),
                proxy_endpoint: None,
                expires_at,
                user: "AWS".into(),
                password_format: PasswordFormat::Opaque,
                password_expiration: None,
            },
            server_date: Some(server_date),
        }
    }

    fn key() -> TokenKey {
        TokenKey {
            partition: Partition::Aws,
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn a_token_is_reused_for_half_its_life_then_fetched_again() {
        const H12: i64 = 12 * 3600;
        assert_eq!(reuse_until(1000, 1000 + H12), Some(1000 + H12 / 2));
        assert_eq!(reuse_until(1000, 1000), None);
        assert_eq!(reuse_until(1000, 900), None, "expired at issue");

        let cache = TokenCache::default();
        let t0 = 1_800_000_000;
        cache.put("arn:role/a", &key(), &token(t0, Some(t0 + H12)), t0);
        assert!(cache.get("arn:role/a", &key(), t0 + 60).is_some());
        assert!(cache.get("arn:role/a", &key(), t0 + H12 / 2 - 1).is_some());
        assert!(
            cache.get("arn:role/a", &key(), t0 + H12 / 2).is_none(),
            "past half its life: fetched again"
        );
        // Another identity never gets it.
        cache.put("arn:role/a", &key(), &token(t0, Some(t0 + H12)), t0);
        assert!(cache.get("arn:role/b", &key(), t0 + 60).is_none());
        // A token without an expiry, or one already past half its life, is not kept.
        let cache = TokenCache::default();
        cache.put("arn:role/a", &key(), &token(t0, None), t0);
        cache.put("arn:role/b", &key(), &token(t0, Some(t0 + 1)), t0);
        assert!(cache.get("arn:role/a", &key(), t0).is_none());
        assert!(cache.get("arn:role/b", &key(), t0).is_none());
        // The ECR API's clock ahead of ours: the half-life counts from our receipt.
        let cache = TokenCache::default();
        cache.put(
            "arn:role/a",
            &key(),
            &token(t0 + 600, Some(t0 + 600 + H12)),
            t0,
        );
        assert!(cache.get("arn:role/a", &key(), t0 + H12 / 2 - 1).is_some());
    }
}
