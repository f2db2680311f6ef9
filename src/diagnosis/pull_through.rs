//! Pull-through cache rules, read for a failure under one: which rule holds the repository,
//! whether its upstream secret is one ECR can use, and what the first pull of an uncached
//! image needs. Pure, like the rest of [`super::ecr_api`], whose [`Asked`] answers it reads.
//!
//! From the ECR user guide: "IAM permissions required to sync an upstream registry"
//! (`ecr:BatchImportUpstreamImage`, and `ecr:CreateRepository` while the cache repository does
//! not exist) and "Creating a pull through cache rule" (the secret's name begins with
//! `ecr-pullthroughcache/`, in the rule's account and region); the rule's shape from the API
//! reference's `PullThroughCacheRule`.

use super::Code;
use super::ecr_api::{Asked, CacheRule, Question, not_permitted};
use crate::reference::ImageRef;
use crate::report::Finding;

/// Whether `repository` begins with a prefix pull-through cache rules are usually given
/// (the console's defaults): only then is a missing tag worth a look at the cache rules.
pub fn looks_cached(repository: &str) -> bool {
    repository
        .split_once('/')
        .is_some_and(|(p, _)| super::registry::PULL_THROUGH_PREFIXES.contains(&p))
}

/// The cache rule whose prefix holds `repository` (`ROOT` holds every repository).
pub fn cache_rule_for<'a>(rules: &'a [CacheRule], repository: &str) -> Option<&'a CacheRule> {
    rules
        .iter()
        .filter(|r| {
            let p = r.prefix.trim_end_matches('/');
            p == "ROOT" || repository.starts_with(&format!("{p}/"))
        })
        .max_by_key(|r| r.prefix.len())
}

/// Why a cache rule's credential ARN cannot work: ECR reads only secrets named
/// `ecr-pullthroughcache/…` in the rule's own account and region (user guide, "Creating a
/// pull through cache rule", prerequisites).
pub fn credential_problem(arn: &str, account: &str, region: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if parts.len() < 7 || parts[2] != "secretsmanager" || parts[5] != "secret" {
        return Some(format!("{arn} is not a Secrets Manager secret ARN"));
    }
    if !parts[6].starts_with("ecr-pullthroughcache/") {
        return Some(format!(
            "the secret's name `{}` does not begin with `ecr-pullthroughcache/`",
            parts[6]
        ));
    }
    if parts[3] != region || parts[4] != account {
        return Some(format!(
            "the secret is in account {} region {}, not in the rule's account {account} region {region}",
            parts[4], parts[3]
        ));
    }
    None
}

fn rule_evidence(f: Finding, r: &CacheRule) -> Finding {
    f.with("cache_rule_prefix", r.prefix.clone())
        .with_opt("upstream_registry_url", r.upstream_url.clone())
        .with_opt("credential_arn", r.credential_arn.clone())
}

/// A failure under a pull-through cache prefix, with the registry's rules when they could be
/// listed.
pub fn pull_through_cache(
    img: &ImageRef,
    question: &Question,
    rules: &Asked<Vec<CacheRule>>,
) -> Vec<Finding> {
    let repo = &img.repository;
    let (account, region) = img
        .ecr
        .as_ref()
        .map(|e| (e.account.as_str(), e.region.as_str()))
        .unwrap_or(("?", "?"));
    let rule = match rules {
        Asked::Got(r) => cache_rule_for(r, repo),
        _ => None,
    };
    let known_prefix = repo
        .split_once('/')
        .map(|(p, _)| p)
        .filter(|p| super::registry::PULL_THROUGH_PREFIXES.contains(p));
    let mut out = Vec::new();
    if *rules == Asked::Denied && (known_prefix.is_some() || *question == Question::UpstreamAuth) {
        out.push(not_permitted(
            img,
            "ecr:DescribePullThroughCacheRules",
            "whether a pull-through cache rule covers the repository, and with which credentials",
        ));
    }
    let f = match (question, rule) {
        (Question::UpstreamAuth, r) => {
            let problem = r
                .and_then(|r| r.credential_arn.as_deref())
                .and_then(|arn| credential_problem(arn, account, region));
            let mut f = Finding::new(
                Code::PULL_THROUGH_CACHE_UPSTREAM_AUTH_FAILED,
                format!(
                    "ECR could not authenticate to the upstream registry of the pull-through cache rule for {repo}{}",
                    problem.as_deref().map(|p| format!(": {p}")).unwrap_or_default()
                ),
            )
            .with_opt("credential_problem", problem);
            if let Some(r) = r {
                f = rule_evidence(f, r);
            }
            f
        }
        (Question::ImportDenied { action }, r) => {
            let f = Finding::new(
                Code::PULL_THROUGH_CACHE_IMPORT_DENIED,
                format!("the first pull of {repo} through the pull-through cache was refused {action}"),
            )
            .with("action", action.clone());
            match r {
                Some(r) => rule_evidence(f, r),
                None => f,
            }
        }
        (Question::MissingRepository | Question::MissingTag, Some(r)) => rule_evidence(
            Finding::new(
                Code::PULL_THROUGH_CACHE_IMPORT_DENIED,
                format!(
                    "{repo} is under the pull-through cache rule `{}` but {} not in the cache: the first pull imports it, which needs `ecr:BatchImportUpstreamImage` (and `ecr:CreateRepository` while the cache repository does not exist), or the image is not upstream",
                    r.prefix,
                    if *question == Question::MissingRepository { "its repository is" } else { "the tag is" }
                ),
            ),
            r,
        ),
        (Question::MissingRepository, None) => match (rules, known_prefix) {
            (Asked::Got(_), Some(p)) => Finding::new(
                Code::PULL_THROUGH_CACHE_RULE_MISSING,
                format!(
                    "{repo} begins with `{p}/`, a pull-through cache prefix, but the registry has no cache rule for it in {region}"
                ),
            )
            .with("prefix", p.to_string()),
            _ => return out,
        },
        _ => return out,
    };
    out.push(f.with("repository", repo.clone()));
    out
}
