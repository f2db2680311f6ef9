//! The ECR API asked what the registry did not say, after a failed pull of an ECR image: a
//! thin edge beside [`crate::ecr_token`]. Which questions follow from which failure, and what the
//! answers mean, is pure code in [`crate::diagnosis::ecr_api`]; here the calls are made, each
//! within the run's deadline, each recorded in the report's `api_calls`, none repeated for
//! an image within [`Asked::spacing`] (in `serve --watch`, the interval: a failing image is
//! checked again sooner, its questions are not asked again).

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant as StdInstant};

use aws_config::SdkConfig;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageIdentifier, ImageStatusFilter, TagStatus};
use tokio::time::{Instant, timeout_at};

use crate::aws;
use crate::diagnosis::ecr_api::{self as why, Asked as A, CacheRule, ImageDetail, Question};
use crate::reference::ImageRef;
use crate::report::{ApiCall, ApiOutcome, Finding};

/// Images described at most, in the one page of DescribeImages read for recent tags.
const MAX_IMAGES_LISTED: i32 = 100;
/// Cache rules listed at most.
const MAX_CACHE_RULES: i32 = 50;

/// Which images have been asked about, and when: once per image per `spacing` (per run when
/// none).
#[derive(Default)]
pub struct Asked {
    spacing: Option<Duration>,
    last: std::sync::Mutex<HashMap<String, StdInstant>>,
}

impl Asked {
    /// Asks again about an image only after `spacing`.
    pub fn every(spacing: Duration) -> Asked {
        Asked {
            spacing: Some(spacing),
            last: Default::default(),
        }
    }

    /// Whether `image` may be asked about now; if so, counts it as asked.
    fn take(&self, image: &str) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = StdInstant::now();
        match (last.get(image), self.spacing) {
            (Some(_), None) => false,
            (Some(at), Some(s)) if now.duration_since(*at) < s => false,
            _ => {
                last.insert(image.to_string(), now);
                true
            }
        }
    }
}

/// What the run knows that the questions need.
pub struct Context<'a> {
    pub sdk: &'a SdkConfig,
    /// The caller's own account (STS), where a repository missing here may have been pushed.
    pub caller_account: &'a str,
    pub deadline: Instant,
}

/// The findings the answers gave, and the calls made.
#[derive(Debug, Default)]
pub struct Explained {
    pub findings: Vec<Finding>,
    pub api_calls: Vec<ApiCall>,
}

struct Caller<'a> {
    ctx: &'a Context<'a>,
    calls: Vec<ApiCall>,
    throttled: Option<&'static str>,
}

impl Caller<'_> {
    /// One call under the deadline, recorded; its error reduced to what the findings read.
    async fn call<O, E, T>(
        &mut self,
        operation: &'static str,
        fut: impl Future<Output = Result<O, SdkError<E, aws_sdk_ecr::config::http::HttpResponse>>>,
        ok: impl FnOnce(O) -> T,
    ) -> A<T>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if self.throttled.is_some() || Instant::now() >= self.ctx.deadline {
            if self.throttled.is_none() {
                self.calls
                    .push(record(operation, ApiOutcome::Deadline, 0, None));
            }
            return A::NotAsked;
        }
        let start = StdInstant::now();
        let result = timeout_at(self.ctx.deadline, fut).await;
        let ms = start.elapsed().as_millis() as u64;
        let (answer, outcome, code) = match result {
            Err(_) => (A::NotAsked, ApiOutcome::Deadline, None),
            Ok(Ok(o)) => (A::Got(ok(o)), ApiOutcome::Ok, None),
            Ok(Err(e)) => {
                let f = aws::from_sdk(operation, String::new(), &e);
                let code = f.code.clone().unwrap_or_default();
                let outcome = match code.as_str() {
                    c if c.ends_with("NotFoundException") => ApiOutcome::NotFound,
                    "AccessDeniedException" | "AccessDenied" => ApiOutcome::Denied,
                    "ThrottlingException" | "Throttling" | "TooManyRequestsException" => {
                        ApiOutcome::Throttled
                    }
                    _ => ApiOutcome::Failed,
                };
                let answer = match outcome {
                    // The registry has the repository (it answered for it) and the API does
                    // not: the two disagree (a mirror, another endpoint), so nothing is
                    // claimed from the API's side.
                    ApiOutcome::NotFound if code == "RepositoryNotFoundException" => {
                        A::Unavailable(f.to_string())
                    }
                    ApiOutcome::NotFound => A::NotFound,
                    ApiOutcome::Denied => A::Denied,
                    _ => A::Unavailable(f.to_string()),
                };
                if outcome == ApiOutcome::Throttled {
                    // The SDK has retried already; asking more would add to the load.
                    self.throttled = Some(operation);
                }
                tracing::debug!(operation, error = %f, "ECR API question failed");
                (answer, outcome, f.code)
            }
        };
        self.calls.push(record(operation, outcome, ms, code));
        answer
    }
}

fn record(operation: &str, outcome: ApiOutcome, duration_ms: u64, code: Option<String>) -> ApiCall {
    ApiCall {
        operation: operation.to_string(),
        outcome,
        duration_ms,
        aws_error_code: code,
    }
}

fn detail(d: &aws_sdk_ecr::types::ImageDetail) -> ImageDetail {
    ImageDetail {
        tags: d.image_tags().to_vec(),
        digest: d.image_digest().map(str::to_string),
        pushed_at: d.image_pushed_at().map(|t| t.secs()),
        status: d.image_status().map(|s| s.as_str().to_string()),
        last_archived_at: d.last_archived_at().map(|t| t.secs()),
        last_activated_at: d.last_activated_at().map(|t| t.secs()),
    }
}

/// Asks what explains the failed manifest stage of `img`'s pod path (`failure`, its finding),
/// when the failure is one the API can explain and `img` was not asked about lately.
pub async fn explain(
    ctx: &Context<'_>,
    asked: &Asked,
    img: &ImageRef,
    failure: &Finding,
) -> Explained {
    let (Some(e), Some(q)) = (img.ecr.as_ref(), why::question(failure)) else {
        return Explained::default();
    };
    if !asked.take(&img.normalized()) {
        return Explained::default();
    }
    let client = crate::ecr_token::client(ctx.sdk, &e.region, false, &aws::ServerDates::default());
    let repo = Repository {
        client: &client,
        account: &e.account,
        name: &img.repository,
    };
    let mut c = Caller {
        ctx,
        calls: vec![],
        throttled: None,
    };
    let mut findings = match &q {
        Question::MissingTag => missing_tag(&mut c, &repo, img).await,
        Question::MissingRepository => {
            let rules = cache_rules(&mut c, &repo).await;
            let cache = why::pull_through_cache(img, &q, &rules);
            if cache.is_empty() {
                elsewhere(ctx, &mut c, img).await.into_iter().collect()
            } else {
                cache
            }
        }
        Question::Denied { principal } => {
            let policy = repository_policy(&mut c, &repo).await;
            why::policy_findings(img, principal, &policy)
        }
        Question::UpstreamAuth | Question::ImportDenied { .. } => {
            let rules = cache_rules(&mut c, &repo).await;
            why::pull_through_cache(img, &q, &rules)
        }
    };
    if let Some(op) = c.throttled {
        findings.push(why::api_throttled(op));
    }
    Explained {
        findings,
        api_calls: c.calls,
    }
}

/// The repository the questions are about, and the client of its region.
struct Repository<'a> {
    client: &'a aws_sdk_ecr::Client,
    account: &'a str,
    name: &'a str,
}

/// `MANIFEST_UNKNOWN`: the tag itself; unless ECR has it active (or may not be asked), the
/// repository's recent images and its lifecycle policy; and for a repository under a cache
/// prefix, the cache rules.
async fn missing_tag(c: &mut Caller<'_>, repo: &Repository<'_>, img: &ImageRef) -> Vec<Finding> {
    let image = described_tag(c, repo, img).await;
    let found_active = matches!(&image, A::Got(v) if !v.is_empty());
    let (recent, lifecycle) = if found_active || image == A::Denied {
        (A::NotAsked, A::NotAsked)
    } else {
        let recent = recent_images(c, repo).await;
        // A digest has no tag for a lifecycle rule to select.
        let lifecycle = if img.digest.is_none() {
            lifecycle_policy(c, repo).await
        } else {
            A::NotAsked
        };
        (recent, lifecycle)
    };
    let mut findings = why::missing_tag(img, &image, &recent, &lifecycle);
    if why::looks_cached(repo.name) && !found_active {
        let rules = cache_rules(c, repo).await;
        findings.extend(why::pull_through_cache(img, &Question::MissingTag, &rules));
    }
    findings
}

/// DescribeImages for the image's digest, or else its tag.
async fn described_tag(
    c: &mut Caller<'_>,
    repo: &Repository<'_>,
    img: &ImageRef,
) -> A<Vec<ImageDetail>> {
    let id = match (&img.digest, &img.tag) {
        (Some(d), _) => ImageIdentifier::builder().image_digest(d).build(),
        (None, t) => ImageIdentifier::builder()
            .image_tag(t.as_deref().unwrap_or("latest"))
            .build(),
    };
    c.call(
        "DescribeImages",
        repo.client
            .describe_images()
            .registry_id(repo.account)
            .repository_name(repo.name)
            .image_ids(id)
            .send(),
        |o| o.image_details().iter().map(detail).collect::<Vec<_>>(),
    )
    .await
}

/// One page of the repository's tagged images, archived ones too: DescribeImages shows only
/// ACTIVE ones unless asked.
async fn recent_images(c: &mut Caller<'_>, repo: &Repository<'_>) -> A<Vec<ImageDetail>> {
    let filter = DescribeImagesFilter::builder()
        .tag_status(TagStatus::Tagged)
        .image_status(ImageStatusFilter::Any)
        .build();
    c.call(
        "DescribeImages",
        repo.client
            .describe_images()
            .registry_id(repo.account)
            .repository_name(repo.name)
            .filter(filter)
            .max_results(MAX_IMAGES_LISTED)
            .send(),
        |o| o.image_details().iter().map(detail).collect::<Vec<_>>(),
    )
    .await
}

/// The repository's lifecycle policy text.
async fn lifecycle_policy(c: &mut Caller<'_>, repo: &Repository<'_>) -> A<String> {
    c.call(
        "GetLifecyclePolicy",
        repo.client
            .get_lifecycle_policy()
            .registry_id(repo.account)
            .repository_name(repo.name)
            .send(),
        |o| o.lifecycle_policy_text().unwrap_or_default().to_string(),
    )
    .await
}

/// The repository policy text.
async fn repository_policy(c: &mut Caller<'_>, repo: &Repository<'_>) -> A<String> {
    c.call(
        "GetRepositoryPolicy",
        repo.client
            .get_repository_policy()
            .registry_id(repo.account)
            .repository_name(repo.name)
            .send(),
        |o| o.policy_text().unwrap_or_default().to_string(),
    )
    .await
}

/// Where else the repository may be: the caller's own account in the image's region, and the
/// image's account in the SDK's (the pod's) region. At most two calls.
async fn elsewhere(ctx: &Context<'_>, c: &mut Caller<'_>, img: &ImageRef) -> Option<Finding> {
    let e = img.ecr.as_ref()?;
    let home = ctx.sdk.region().map(|r| r.to_string());
    let mut candidates = Vec::new();
    if ctx.caller_account != e.account && !ctx.caller_account.is_empty() {
        candidates.push((ctx.caller_account.to_string(), e.region.clone()));
    }
    if let Some(r) = home.filter(|r| *r != e.region) {
        candidates.push((e.account.clone(), r));
    }
    let mut found = Vec::new();
    for (account, region) in candidates {
        let client =
            crate::ecr_token::client(ctx.sdk, &region, false, &aws::ServerDates::default());
        let answer = c
            .call(
                "DescribeRepositories",
                client
                    .describe_repositories()
                    .registry_id(&account)
                    .repository_names(&img.repository)
                    .send(),
                |o| !o.repositories().is_empty(),
            )
            .await;
        if answer == A::Got(true) {
            found.push((account, region));
        }
    }
    why::repository_elsewhere(img, &found)
}

/// The registry's pull-through cache rules (one page).
async fn cache_rules(c: &mut Caller<'_>, repo: &Repository<'_>) -> A<Vec<CacheRule>> {
    c.call(
        "DescribePullThroughCacheRules",
        repo.client
            .describe_pull_through_cache_rules()
            .registry_id(repo.account)
            .max_results(MAX_CACHE_RULES)
            .send(),
        |o| {
            o.pull_through_cache_rules()
                .iter()
                .map(|r| CacheRule {
                    prefix: r.ecr_repository_prefix().unwrap_or_default().to_string(),
                    upstream_url: r.upstream_registry_url().map(str::to_string),
                    credential_arn: r.credential_arn().map(str::to_string),
                    registry_id: r.registry_id().map(str::to_string),
                })
                .collect()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_asked_about_once_per_run_or_per_interval() {
        let run = Asked::default();
        assert!(run.take("r/a:1"));
        assert!(!run.take("r/a:1"), "once per run");
        assert!(run.take("r/b:1"), "per image");
        let watch = Asked::every(Duration::from_secs(3600));
        assert!(watch.take("r/a:1"));
        assert!(
            !watch.take("r/a:1"),
            "a failing image checked again sooner is not asked again"
        );
        let soon = Asked::every(Duration::ZERO);
        assert!(soon.take("r/a:1"));
        assert!(soon.take("r/a:1"), "after the interval, asked again");
    }
}
