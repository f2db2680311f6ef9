//! What the ECR API can add to a registry's answer, as findings: a missing tag told apart
//! (never pushed, expired by a lifecycle rule, archived), a repository found in another region
//! or account, the repository policy read for a refused principal, pull-through cache rules,
//! throttling. Pure: the answers come in as plain data ([`Asked`]) from `crate::ecr_api`,
//! which makes the calls; the evidence taken from them is capped here.

use serde_json::Value;

use super::lifecycle::{self, Fate};
pub use super::policy_findings::policy_findings;
pub use super::pull_through::{
    cache_rule_for, credential_problem, looks_cached, pull_through_cache,
};
use super::{Code, rfc3339};
use crate::reference::ImageRef;
use crate::report::{Finding, Severity};

/// The most recently pushed tags named in a fix.
pub const MAX_RECENT_TAGS: usize = 5;
/// The longest text taken from an API answer into the evidence.
pub const MAX_EVIDENCE_CHARS: usize = 2048;

/// One API question's answer, reduced to what the findings need.
#[derive(Debug, Clone, PartialEq)]
pub enum Asked<T> {
    Got(T),
    /// The API's `…NotFoundException` (no such image, policy, repository).
    NotFound,
    /// `AccessDeniedException`: the identity may not ask.
    Denied,
    /// Throttled, timed out, unreachable or another error: no answer either way.
    Unavailable(String),
    /// Not asked (the deadline, or nothing to ask).
    NotAsked,
}

/// An image as DescribeImages describes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageDetail {
    pub tags: Vec<String>,
    pub digest: Option<String>,
    pub pushed_at: Option<i64>,
    /// `ACTIVE`, `ARCHIVED` or `ACTIVATING` (since the archive storage class).
    pub status: Option<String>,
    pub last_archived_at: Option<i64>,
    pub last_activated_at: Option<i64>,
}

/// A pull-through cache rule as DescribePullThroughCacheRules lists it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CacheRule {
    pub prefix: String,
    pub upstream_url: Option<String>,
    pub credential_arn: Option<String>,
    pub registry_id: Option<String>,
}

/// What a registry's failure asks the API about.
#[derive(Debug, Clone, PartialEq)]
pub enum Question {
    /// `MANIFEST_UNKNOWN`: was the tag ever there?
    MissingTag,
    /// `NAME_UNKNOWN`: is the repository elsewhere, or a cache not yet filled?
    MissingRepository,
    /// A denial naming a principal: what does the repository policy say of it?
    Denied { principal: String },
    /// ECR could not authenticate to the cache rule's upstream.
    UpstreamAuth,
    /// A denial of the import a cache's first pull makes.
    ImportDenied { action: String },
}

/// The upstream failure's text, as ECR returns it to the puller (aws/containers-roadmap#2354:
/// `denied: The authentication to the upstream registry failed. Verify that the credentials
/// provided in the pull through cache rule are correct, and try again.`).
pub const UPSTREAM_AUTH_FAILED: &str = "The authentication to the upstream registry failed";

fn text(f: &Finding, key: &str) -> Option<String> {
    f.evidence
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// What to ask, from the failed manifest stage's finding; `None` when the API can add nothing.
pub fn question(f: &Finding) -> Option<Question> {
    let message = text(f, "registry_message").unwrap_or_default();
    if message.contains(UPSTREAM_AUTH_FAILED) || f.summary.contains(UPSTREAM_AUTH_FAILED) {
        return Some(Question::UpstreamAuth);
    }
    if let Some(action) = text(f, "action")
        .filter(|a| a == "ecr:BatchImportUpstreamImage" || a == "ecr:CreateRepository")
    {
        return Some(Question::ImportDenied { action });
    }
    match f.code {
        Code::MANIFEST_NOT_FOUND => Some(Question::MissingTag),
        Code::REPOSITORY_NOT_FOUND => Some(Question::MissingRepository),
        Code::REGISTRY_DENIED_RESOURCE_POLICY | Code::REGISTRY_DENIED => {
            text(f, "principal").map(|principal| Question::Denied { principal })
        }
        _ => None,
    }
}

/// `s`, cut to [`MAX_EVIDENCE_CHARS`] for the evidence.
pub(super) fn capped(s: &str) -> String {
    match s.char_indices().nth(MAX_EVIDENCE_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The identity may not ask: which permission would have told what.
pub fn not_permitted(image: &ImageRef, permission: &str, would_tell: &str) -> Finding {
    Finding::new(
        Code::ECR_API_NOT_PERMITTED,
        format!(
            "the identity may not call {permission} on {}: it would have told {would_tell}",
            image.repository
        ),
    )
    .with("permission", permission.to_string())
    .with("would_tell", would_tell.to_string())
    .fix(format!(
        "To let the probe explain such failures, allow `{permission}` on the repository ARN in the role's identity policy (`AmazonEC2ContainerRegistryReadOnly` has it); nothing else depends on it."
    ))
}

fn recent_tags(recent: &Asked<Vec<ImageDetail>>) -> Vec<(String, Option<i64>)> {
    let Asked::Got(images) = recent else {
        return vec![];
    };
    let mut imgs: Vec<&ImageDetail> = images.iter().filter(|i| !i.tags.is_empty()).collect();
    imgs.sort_by_key(|i| std::cmp::Reverse(i.pushed_at));
    imgs.iter()
        .flat_map(|i| i.tags.iter().map(|t| (t.clone(), i.pushed_at)))
        .take(MAX_RECENT_TAGS)
        .collect()
}

fn recent_evidence(tags: &[(String, Option<i64>)]) -> Value {
    tags.iter()
        .map(|(t, at)| serde_json::json!({"tag": t, "pushed_at": at.map(rfc3339)}))
        .collect()
}

fn recent_words(tags: &[(String, Option<i64>)]) -> String {
    if tags.is_empty() {
        return "the repository holds no tagged image".into();
    }
    let list: Vec<String> = tags.iter().map(|(t, _)| format!("`{t}`")).collect();
    format!("the most recently pushed tags are {}", list.join(", "))
}

/// A missing tag, explained from DescribeImages (`image`: the tag itself; `recent`: the
/// repository's images) and the lifecycle policy's text.
pub fn missing_tag(
    img: &ImageRef,
    image: &Asked<Vec<ImageDetail>>,
    recent: &Asked<Vec<ImageDetail>>,
    lifecycle_text: &Asked<String>,
) -> Vec<Finding> {
    let reference = img.manifest_reference().to_string();
    match described(&reference, image, recent) {
        Asked::Denied => {
            return vec![not_permitted(
                img,
                "ecr:DescribeImages",
                "whether the tag was ever pushed, or is archived",
            )];
        }
        // ECR has it: archived, or active and the registry's 404 has another cause (a mirror,
        // replication not done yet) and the registry's finding stands alone.
        Asked::Got(d) => return archived(img, &reference, d).into_iter().collect(),
        Asked::NotFound => {}
        Asked::Unavailable(_) | Asked::NotAsked => return vec![],
    }
    let mut out = Vec::new();
    if *recent == Asked::Denied {
        out.push(not_permitted(
            img,
            "ecr:DescribeImages",
            "which tags the repository holds",
        ));
    }
    let rules = match lifecycle_text {
        // An unreadable policy says nothing either way.
        Asked::Got(t) => lifecycle::parse(t).ok(),
        Asked::NotFound => Some(vec![]),
        Asked::Denied => {
            out.push(not_permitted(
                img,
                "ecr:GetLifecyclePolicy",
                "whether a lifecycle rule expired the tag",
            ));
            None
        }
        Asked::Unavailable(_) | Asked::NotAsked => None,
    };
    // A digest has no tag for a rule to select: only "not there" can be said.
    let fate = match (&rules, &img.digest) {
        (Some(r), None) => lifecycle::fate(r, &reference),
        // Not there, and no lifecycle answer to say why (or a digest reference).
        _ => return out,
    };
    let tags = recent_tags(recent);
    let f = match fate {
        Fate::Expired(rule) | Fate::Archived(_, Some(rule)) => {
            let archived_first = matches!(fate, Fate::Archived(..));
            expired_by(img, &reference, rule, archived_first, &recent_words(&tags))
        }
        Fate::Untouched | Fate::Archived(_, None) => {
            let no_rules = rules.as_ref().is_some_and(|r| r.is_empty());
            never_pushed(img, &reference, no_rules, &recent_words(&tags))
        }
    };
    out.push(
        f.with("operation", "DescribeImages")
            .with("reference", reference)
            .with("recent_tags", recent_evidence(&tags)),
    );
    out
}

/// The tag's image as DescribeImages knows it. Looked up by tag, an archived image may be
/// left out (DescribeImages shows only ACTIVE images unless asked for others); the listing
/// (`recent`) asked for every status, so an image it holds under the reference wins.
fn described<'a>(
    reference: &str,
    image: &'a Asked<Vec<ImageDetail>>,
    recent: &'a Asked<Vec<ImageDetail>>,
) -> Asked<&'a ImageDetail> {
    let listed = match recent {
        Asked::Got(all) => all.iter().find(|d| {
            d.tags.iter().any(|t| t == reference) || d.digest.as_deref() == Some(reference)
        }),
        _ => None,
    };
    match (image, listed) {
        (Asked::NotFound | Asked::Got(_), Some(d)) => Asked::Got(d),
        (Asked::Got(found), None) => found.first().map_or(Asked::NotFound, Asked::Got),
        (Asked::NotFound, None) => Asked::NotFound,
        (Asked::Denied, _) => Asked::Denied,
        (Asked::Unavailable(e), _) => Asked::Unavailable(e.clone()),
        (Asked::NotAsked, _) => Asked::NotAsked,
    }
}

/// The image is there but in the archive storage class (or on its way back): why it cannot be
/// pulled, and how to restore it. `None` when it is active.
fn archived(img: &ImageRef, reference: &str, d: &ImageDetail) -> Option<Finding> {
    let repo = &img.repository;
    let status = d.status.as_deref().unwrap_or("ACTIVE");
    let (summary, fix) = match status {
        "ACTIVATING" => (
            format!(
                "{repo}:{reference} is archived and being restored (ACTIVATING): it cannot be pulled until the restore completes"
            ),
            "Wait for the restore to finish (DescribeImages shows `ACTIVE`), then pull again."
                .to_string(),
        ),
        "ARCHIVED" => {
            let id = match &d.digest {
                Some(dg) => format!("imageDigest={dg}"),
                None => format!("imageTag={reference}"),
            };
            (
                format!(
                    "{repo}:{reference} is in ECR's archive storage class (ARCHIVED): archived images cannot be pulled until restored"
                ),
                format!(
                    "Restore it: `aws ecr update-image-storage-class --repository-name {repo} --image-id {id} --target-storage-class STANDARD` (or re-push it), then wait until DescribeImages shows `ACTIVE`; check the lifecycle policy's `transition` rules so that images still in use are not archived again."
                ),
            )
        }
        _ => return None,
    };
    Some(
        Finding::new(Code::IMAGE_ARCHIVED, summary)
            .with("operation", "DescribeImages")
            .with("image_status", status.to_string())
            .with_opt("image_digest", d.digest.clone())
            .with_opt("last_archived_at", d.last_archived_at.map(rfc3339))
            .with_opt("last_activated_at", d.last_activated_at.map(rfc3339))
            .fix(fix),
    )
}

/// The tag is gone and a lifecycle rule selects it: most likely that rule removed it.
fn expired_by(
    img: &ImageRef,
    reference: &str,
    rule: &lifecycle::Rule,
    archived_first: bool,
    recent_text: &str,
) -> Finding {
    Finding::new(
        Code::TAG_EXPIRED_BY_LIFECYCLE,
        format!(
            "{}:{reference} is not in the repository, and rule {} of its lifecycle policy{} ({}{}) expires such a tag: it was most likely removed by that rule",
            img.repository,
            rule.rule_priority,
            rule.description.as_deref().map(|d| format!(" \"{d}\"")).unwrap_or_default(),
            if archived_first { "after archiving, " } else { "" },
            rule.selection.condition(),
        ),
    )
    .with("rule", lifecycle::describe(rule))
    .fix(format!(
        "Push the tag again or deploy one that exists ({recent_text}); to keep tags in use, narrow rule {} (its `tagPrefixList`/`tagPatternList` or count) or add a rule of higher priority that selects them with a larger count.",
        rule.rule_priority
    ))
}

/// The tag is gone and no lifecycle rule would have removed it (`no_rules`: the policy has
/// none at all).
fn never_pushed(img: &ImageRef, reference: &str, no_rules: bool, recent_text: &str) -> Finding {
    Finding::new(
        Code::TAG_NEVER_PUSHED,
        format!(
            "{}:{reference} is not in the repository, and no lifecycle rule {}: it was never pushed there (or was deleted by hand)",
            img.repository,
            if no_rules { "exists" } else { "expires such a tag" }
        ),
    )
    .fix(format!(
        "Push the image with this tag, or fix the reference: {recent_text}. Check that the pipeline pushes to this account and region."
    ))
}

/// `NAME_UNKNOWN`, but the repository exists under another account or region.
pub fn repository_elsewhere(img: &ImageRef, found: &[(String, String)]) -> Option<Finding> {
    let e = img.ecr.as_ref()?;
    let (account, region) = found.first()?;
    let host = format!("{account}.dkr.ecr.{region}.amazonaws.com");
    Some(
        Finding::new(
            Code::REPOSITORY_ELSEWHERE,
            format!(
                "repository {} does not exist in account {} region {}, but does in account {account} region {region}",
                img.repository, e.account, e.region
            ),
        )
        .with("repository", img.repository.clone())
        .with(
            "found_in",
            found
                .iter()
                .map(|(a, r)| serde_json::json!({"account": a, "region": r}))
                .collect::<Vec<_>>(),
        )
        .fix(format!(
            "Use `{host}/{}` in the image reference, or push (or replicate) the image to account {} region {}.",
            img.repository, e.account, e.region
        )),
    )
}

/// Registry throttling, from the retry causes of a path's stages (`retry::transient` writes
/// `… answered HTTP 429`), and whether the pull still failed on it. `registry_rate` is the
/// per-registry request rate in force (`--registry-rate`; `serve --watch` has one by default).
pub fn throttled(
    causes: &[String],
    failed_on_429: bool,
    registry_rate: Option<u32>,
    watch: bool,
) -> Option<Finding> {
    let throttles: Vec<&String> = causes.iter().filter(|c| c.contains("HTTP 429")).collect();
    if throttles.is_empty() && !failed_on_429 {
        return None;
    }
    let rate = match (registry_rate.filter(|r| *r > 0), watch) {
        (Some(r), true) => format!(
            "serve --watch sends at most {r} requests per second to each registry (`--registry-rate`); every check of the interval shares that budget with ECR's own limits, so lower it or lengthen the interval"
        ),
        (Some(r), false) => format!("this run sent at most {r} requests per second to the registry (`--registry-rate`)"),
        (None, true) => "serve --watch runs with no per-registry rate (`--registry-rate 0`): set one so a cluster's checks are spaced".to_string(),
        (None, false) => "this run had no per-registry rate: `--registry-rate` spaces requests to each registry".to_string(),
    };
    let honoured = throttles.iter().any(|c| c.contains("Retry-After"));
    let f = Finding::new(
        Code::ECR_THROTTLED,
        format!(
            "the registry throttled the pull (HTTP 429 Too Many Requests) and it was retried {} time{}{}; {}",
            throttles.len(),
            if throttles.len() == 1 { "" } else { "s" },
            if honoured { ", waiting as its Retry-After asked" } else { "" },
            if failed_on_429 { "the pull still failed" } else { "the pull then went through" }
        ),
    )
    .with("retries", throttles.len())
    .with("causes", throttles.iter().map(|c| c.to_string()).collect::<Vec<_>>())
    .with_opt("registry_rate", registry_rate)
    .with("watch", watch)
    .fix(format!(
        "ECR's limits are per account and region (GetAuthorizationToken 20 per second sustained; image pulls have their own): spread pulls over time, reduce parallel pulls, or raise the quota in Service Quotas. {rate}."
    ));
    Some(if failed_on_429 {
        f.severity(Severity::Error)
    } else {
        f
    })
}

/// [`throttled`] over a path's stages: the causes of its `REGISTRY_RETRIED` findings, and
/// whether a stage failed on a 429.
pub fn throttled_in(
    stages: &[crate::report::Stage],
    registry_rate: Option<u32>,
    watch: bool,
) -> Option<Finding> {
    let findings = stages.iter().flat_map(|s| &s.findings);
    let causes: Vec<String> = findings
        .clone()
        .filter(|f| f.code == Code::REGISTRY_RETRIED)
        .filter_map(|f| f.evidence.get("causes").and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let failed = findings
        .filter(|f| f.severity == Severity::Error)
        .any(|f| f.evidence.get("http_status").and_then(Value::as_u64) == Some(429));
    throttled(&causes, failed, registry_rate, watch)
}

/// The ECR API itself throttled one of the probe's own questions.
pub fn api_throttled(operation: &str) -> Finding {
    Finding::new(
        Code::ECR_THROTTLED,
        format!("the ECR API throttled {operation} (ThrottlingException) after the SDK's retries; the probe asked nothing more"),
    )
    .with("operation", operation.to_string())
}

#[cfg(test)]
#[path = "ecr_api_tests.rs"]
mod tests;
