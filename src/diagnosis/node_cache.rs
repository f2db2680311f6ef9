//! Findings about what the node has cached: images the kubelet would start without a
//! credential check (`crate::node_cache`), and how long its cached provider answer keeps a
//! broken node path pulling. Pure.

use super::{Code, Finding};
use crate::node_cache::CacheJudgement;
use crate::report::NodeCacheReport;

/// `NODE_IMAGE_CACHED_UNVERIFIED` for an image this node holds and would start unchecked;
/// `None` otherwise.
pub fn cached_unverified(image: &str, j: &CacheJudgement, r: &NodeCacheReport) -> Option<Finding> {
    if !(j.held && j.starts_unverified) {
        return None;
    }
    let who = if r.if_not_present_containers.is_empty() {
        "a pod asking for it with imagePullPolicy IfNotPresent".to_string()
    } else {
        format!(
            "the workload's containers {} (IfNotPresent)",
            r.if_not_present_containers.join(", ")
        )
    };
    Some(
        Finding::new(
            Code::NODE_IMAGE_CACHED_UNVERIFIED,
            format!(
                "this node holds {image} and would start it for {who} without checking any credentials: {}",
                j.reason
            ),
        )
        .with("policy", serde_json::to_value(r.policy).unwrap_or_default())
        .with(
            "feature_gate",
            match r.feature_gate {
                Some(true) => "true",
                Some(false) => "false",
                None => "unset (on by default since Kubernetes 1.35)",
            },
        )
        .with(
            "credential_kind",
            serde_json::to_value(j.credential_kind).unwrap_or_default(),
        )
        .with_opt("image_ref", j.image_ref.clone())
        .with_opt("last_updated_time", j.last_updated_time.clone())
        .with(
            "if_not_present_containers",
            serde_json::to_value(&r.if_not_present_containers).unwrap_or_default(),
        ),
    )
}

/// `NODE_CACHE_UNREADABLE`: the first of what could not be read, and how many.
pub fn cache_unreadable(unreadable: &[(String, String)]) -> Option<Finding> {
    let (path, reason) = unreadable.first()?;
    Some(
        Finding::new(
            Code::NODE_CACHE_UNREADABLE,
            format!(
                "{} of the kubelet's image records or config could not be read; first: {path}: {reason}",
                unreadable.len()
            ),
        )
        .with("path", path.clone())
        .with("reason", reason.clone())
        .with("count", unreadable.len()),
    )
}

/// What a cache key type covers, in the kubelet's terms.
fn scope(cache_key_type: Option<&str>) -> &'static str {
    match cache_key_type {
        Some("Image") => "this image only",
        Some("Registry") => "every image of this registry",
        Some("Global") => "every image the provider matches",
        _ => "the key of the provider's last answer (unknown here: the plugin gave none now)",
    }
}

/// `NODE_PROVIDER_CACHE_GRACE` for a node path that failed now: the kubelet may still hold an
/// answer from before, for up to `duration` (the response's `cacheDuration` when there was
/// one, else the provider's `defaultCacheDuration`), so pulls on the node may succeed until
/// `now_unix + duration` at the latest. `None` when the duration is zero (no caching).
pub fn provider_cache_grace(
    provider: &str,
    cache_key_type: Option<&str>,
    duration: std::time::Duration,
    duration_source: &str,
    now_unix: i64,
) -> Option<Finding> {
    if duration.is_zero() {
        return None;
    }
    let until = now_unix.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX));
    let until_rfc3339 = time::OffsetDateTime::from_unix_timestamp(until)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let d = crate::credential_provider::config::go_duration_string(duration);
    Some(
        Finding::new(
            Code::NODE_PROVIDER_CACHE_GRACE,
            format!(
                "the kubelet may still pull with {provider}'s cached answer for {} for up to {d} ({duration_source}), until {until_rfc3339} at the latest: this failure is an early warning for pulls on this node",
                scope(cache_key_type)
            ),
        )
        .with("provider", provider.to_string())
        .with_opt("cache_key_type", cache_key_type.map(str::to_string))
        .with("cache_duration", d)
        .with("cache_duration_source", duration_source.to_string())
        .with("kubelet_may_succeed_until", until)
        .with("path", "node_credential_provider"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_grace_ends_one_cache_duration_from_now() {
        let f = provider_cache_grace(
            "ecr-credential-provider",
            Some("Registry"),
            Duration::from_secs(6 * 3600),
            "the provider's defaultCacheDuration",
            1_764_662_400,
        )
        .unwrap();
        assert_eq!(f.code, Code::NODE_PROVIDER_CACHE_GRACE);
        assert_eq!(
            f.evidence["kubelet_may_succeed_until"],
            1_764_662_400 + 21_600
        );
        assert_eq!(f.evidence["cache_duration"], "6h0m0s");
        assert!(
            f.summary.contains("every image of this registry"),
            "{}",
            f.summary
        );
        assert!(f.summary.contains("2025-12-02T14:00:00Z"), "{}", f.summary);
        assert!(
            provider_cache_grace("p", Some("Image"), Duration::ZERO, "x", 0).is_none(),
            "cacheDuration 0: the kubelet does not cache"
        );
    }
}
