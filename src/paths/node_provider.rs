//! The node provider path: the node's kubelet image credential provider, run as the kubelet
//! runs it (`--image-credential-provider-config`, `--image-credential-provider-bin-dir`),
//! then the shared pull with the credentials it returns. This is the path the original
//! incident broke on: the kubelet pulled with the node role through `ecr-credential-provider`,
//! not with the pod's identity, and a denial for that role names the principal and the
//! repository policy that would let it pull.
//!
//! KEP-4412 (Kubernetes 1.33 alpha, 1.34 beta): a provider with `tokenAttributes` is sent the
//! pod's ServiceAccount token and annotations; `ecr-credential-provider` v1.34+ then assumes
//! the role of the `eks.amazonaws.com/ecr-role-arn` annotation instead of using the node's.
//!
//! The protocol (config rules, request and response, the exec edge) is in
//! [`crate::credential_provider`]; this module is the path: which providers run for an image,
//! with what, and the shared pull with what they return.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::kubelet::{Candidate, try_in_order};
use super::{CredentialsUsed, Puller, REGISTRY_STAGES, ms, unix_now, with_skipped};
use crate::credential_provider::config::{self, ConfigError, Provider};
use crate::credential_provider::plugin::{self, Auth, ExecError, PluginEnv, Request, Response};
use crate::credential_provider::{ECR_ROLE_ANNOTATION, IRSA_ROLE_ANNOTATION, redact};
use crate::diagnosis;
use crate::ecr_token;
use crate::keyring::Keyring;
use crate::reference::ImageRef;
use crate::report::{
    CredentialSource, Finding, KubeletCredential, NodeProviderPath, Stage, Status,
};
use crate::secret::Secret;

/// The pod's ServiceAccount as a KEP-4412 provider sees it: its token for the provider's
/// audience and its annotations.
#[derive(Default)]
pub struct ServiceAccountInput {
    /// `namespace/name`, for messages.
    pub name: Option<String>,
    /// A token for the provider's audience (`--service-account-token-file`, or a
    /// TokenRequest for the workload's ServiceAccount).
    pub token: Option<Secret<String>>,
    /// The audiences that token carries, when known (to name an audience mismatch).
    pub token_audiences: Vec<String>,
    pub annotations: Option<BTreeMap<String, String>>,
    /// Why the annotations could not be read, if they could not.
    pub annotations_problem: Option<Finding>,
}

/// Everything the path needs, set up once per run.
pub struct NodeProviderSetup {
    /// The config path as given (a file or a directory).
    pub config_path: String,
    pub providers: Result<Vec<Provider>, ConfigError>,
    pub bin_dir: PathBuf,
    pub service_account: ServiceAccountInput,
    /// The node's name (downward API), for the report and metrics.
    pub node: Option<String>,
    /// The probe's own environment as the kubelet's would be (the allowed part), before each
    /// provider's `env`.
    pub environment: PluginEnv,
    /// Responses cached as the kubelet caches them, per provider and cache key.
    cache: Mutex<BTreeMap<(String, String), Arc<Cached>>>,
}

/// A provider's run, kept for the images its cache key covers.
struct Cached {
    duration_ms: u64,
    result: Result<Response, Finding>,
}

impl NodeProviderSetup {
    pub fn new(
        config_path: String,
        providers: Result<Vec<Provider>, ConfigError>,
        bin_dir: PathBuf,
        service_account: ServiceAccountInput,
        node: Option<String>,
    ) -> Self {
        NodeProviderSetup {
            config_path,
            providers,
            bin_dir,
            service_account,
            node,
            environment: plugin::plugin_env(std::env::vars(), &[]),
            cache: Mutex::new(BTreeMap::new()),
        }
    }
}

/// The node provider path for one image, and its part of the kubelet's list.
pub struct Checked {
    pub path: NodeProviderPath,
    pub rows: Vec<KubeletCredential>,
    /// A config no kubelet would start with: the node pulls nothing at all.
    pub blocked: bool,
    /// An answer about the image itself, met with a credential the registry took.
    pub image_problem: Option<crate::diagnosis::Code>,
}

/// Runs every provider whose `matchImages` covers the image, in the config's order, merges
/// their `auth` into one keyring as the kubelet's external-provider keyring does (so the
/// most specific key comes first whichever provider gave it), and tries the matching
/// credentials with the shared pull until one works.
pub async fn check(puller: &Puller<'_>, img: &ImageRef, setup: &NodeProviderSetup) -> Checked {
    let mut path = NodeProviderPath {
        status: Status::Skip,
        config: setup.config_path.clone(),
        node: setup.node.clone(),
        provider: None,
        match_image: None,
        auth_key: None,
        username: None,
        password_expires_at: None,
        cache_key_type: None,
        cache_duration: None,
        environment_withheld: vec![],
        stages: vec![],
        findings: vec![],
    };
    let providers = match &setup.providers {
        Ok(p) => p,
        Err(e) => {
            path.status = Status::Fail;
            path.findings.push(diagnosis::node_provider_config_invalid(
                &setup.config_path,
                e,
            ));
            return Checked::alone(path, true);
        }
    };
    // What the kubelet passes: the repository name without tag or digest.
    let name = img.name();
    let matched: Vec<(&Provider, &str)> = providers
        .iter()
        .filter_map(|p| p.matching_pattern(&name).map(|m| (p, m)))
        .collect();
    if let Some((provider, pattern)) = matched.last() {
        path.provider = Some(provider.name.clone());
        path.match_image = Some(pattern.to_string());
    } else {
        path.findings.push(diagnosis::node_provider_no_match(
            img,
            providers
                .iter()
                .map(|p| (p.name.as_str(), p.match_images.as_slice())),
        ));
        return Checked::alone(path, false);
    }

    let asked = ask(puller.deadline, setup, &matched, img).await;
    if let Some((_, r)) = asked.responses().last() {
        path.cache_key_type = Some(r.cache_key_type.clone());
        path.cache_duration = r.cache_duration.clone();
    }
    path.environment_withheld = setup.environment.withheld.clone();
    let candidates = asked.candidates(&name, img);
    if candidates.auths.is_empty() {
        path.status = if candidates.failed {
            Status::Fail
        } else {
            Status::Skip
        };
        path.stages = with_skipped(vec![candidates.stage], &REGISTRY_STAGES);
        return Checked::alone(path, false);
    }
    let tried = try_in_order(puller, img, candidates.list()).await;
    if let Some(i) = tried.last {
        let (provider, auth) = candidates.auths[i];
        path.provider = Some(provider.name.clone());
        path.match_image = provider.matching_pattern(&name).map(str::to_string);
        path.auth_key = Some(auth.key.clone());
        path.username = Some(auth.username.clone());
        path.password_expires_at = candidates.expiries[i];
    }
    path.status = if tried.passed {
        Status::Pass
    } else {
        Status::Fail
    };
    path.stages = std::iter::once(candidates.stage)
        .chain(tried.stages)
        .collect();
    Checked {
        path,
        rows: tried.rows,
        blocked: false,
        image_problem: tried.image_problem,
    }
}

impl Checked {
    /// A path that put nothing on the kubelet's list.
    fn alone(path: NodeProviderPath, blocked: bool) -> Checked {
        Checked {
            path,
            rows: vec![],
            blocked,
            image_problem: None,
        }
    }
}

/// The matching providers' answers, in the config's order, and what running them found.
struct Asked<'a> {
    answers: Vec<(&'a Provider, Arc<Cached>)>,
    /// The longest run (or the time the failures took).
    duration_ms: u64,
    findings: Vec<Finding>,
    /// A provider failed.
    failed: bool,
}

/// What the kubelet's merged keyring holds for the image, and the `credential_provider`
/// stage that got it.
struct Candidates<'a> {
    auths: Vec<(&'a Provider, &'a Auth)>,
    /// `expiration` of each ECR-format password, Unix seconds.
    expiries: Vec<Option<i64>>,
    stage: Stage,
    /// A provider failed, or none answered for the image.
    failed: bool,
}

/// Runs each matched provider (or takes its cached answer).
async fn ask<'a>(
    deadline: Instant,
    setup: &NodeProviderSetup,
    matched: &[(&'a Provider, &str)],
    img: &ImageRef,
) -> Asked<'a> {
    let start = StdInstant::now();
    let mut findings = Vec::new();
    let mut answers = Vec::new();
    let mut failed = false;
    for (provider, _) in matched {
        let (result, warnings) = run_provider(deadline, setup, provider, img).await;
        findings.extend(warnings);
        match result {
            Ok(c) => answers.push((*provider, c)),
            Err(f) => {
                failed = true;
                findings.push(f);
            }
        }
    }
    let duration_ms = answers
        .iter()
        .map(|(_, c)| c.duration_ms)
        .max()
        .unwrap_or_else(|| ms(start));
    Asked {
        answers,
        duration_ms,
        findings,
        failed,
    }
}

impl<'a> Asked<'a> {
    /// The answers that are responses (every one: failures are not kept here).
    fn responses(&self) -> impl Iterator<Item = (&'a Provider, &Response)> + '_ {
        self.answers
            .iter()
            .filter_map(|(p, c)| c.result.as_ref().ok().map(|r| (*p, r)))
    }

    /// One keyring over every answer, providers in the config's order (the kubelet's
    /// `externalCredentialProviderKeyring.Lookup`), looked up for `name`.
    fn candidates(&self, name: &str, img: &ImageRef) -> Candidates<'_> {
        let mut findings = self.findings.clone();
        let mut ring = Keyring::new();
        for (provider, r) in self.responses() {
            findings.extend(diagnosis::credential_keys_skipped(&r.skipped_keys));
            for a in &r.auth {
                // parse_response skipped keys that do not parse.
                let _ = ring.add(&a.key, (provider, a));
            }
        }
        let auths: Vec<(&Provider, &Auth)> = ring.lookup(name).into_iter().copied().collect();
        let mut failed = self.failed;
        if auths.is_empty() && !self.answers.is_empty() {
            findings.push(diagnosis::node_provider_auth_miss(
                &self
                    .answers
                    .iter()
                    .map(|(p, _)| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                img,
                self.responses()
                    .flat_map(|(_, r)| r.auth.as_slice())
                    .map(|a| a.key.as_str()),
            ));
            failed = true;
        }
        let expiries: Vec<Option<i64>> = auths
            .iter()
            .map(|(_, a)| {
                ecr_token::decode_authorization_token(&a.basic)
                    .ok()
                    .and_then(|d| d.password_expiration)
            })
            .collect();
        for ((provider, _), expires) in auths.iter().zip(&expiries) {
            findings.extend(diagnosis::node_provider_token_expired(
                &provider.name,
                *expires,
                unix_now(),
            ));
        }
        Candidates {
            auths,
            expiries,
            stage: Stage::from_findings("credential_provider", self.duration_ms, None, findings),
            failed,
        }
    }
}

impl Candidates<'_> {
    /// The kubelet's list: each credential as the runtime is handed it.
    fn list(&self) -> Vec<Candidate<'_>> {
        self.auths
            .iter()
            .zip(&self.expiries)
            .map(|((provider, auth), expires)| Candidate {
                row: KubeletCredential {
                    source: CredentialSource::NodeCredentialProvider,
                    origin: provider.name.clone(),
                    key: Some(auth.key.clone()),
                    username: Some(auth.username.clone()),
                    status: Status::Skip,
                },
                basic: (!auth.username.is_empty()).then_some(&auth.basic),
                credentials: CredentialsUsed::NodeProvider {
                    provider: &provider.name,
                    username: &auth.username,
                    ecr_expires_at: *expires,
                },
                expired: None,
            })
            .collect()
    }
}

/// A provider's response for `img`, from the run's cache when the provider's cache key
/// covers it (the kubelet caches by `cacheKeyType` for `cacheDuration`), else by running
/// the plugin. Errors are findings; so are the warnings of a run (none from the cache).
async fn run_provider(
    deadline: Instant,
    setup: &NodeProviderSetup,
    provider: &Provider,
    img: &ImageRef,
) -> (Result<Arc<Cached>, Finding>, Vec<Finding>) {
    // One plugin run at a time per run of the probe, as the kubelet's singleflight does
    // per cache key; later images of the same registry reuse the answer.
    let mut cache = setup.cache.lock().await;
    for key in cache_keys(img) {
        if let Some(c) = cache.get(&(provider.name.clone(), key)) {
            let result = match &c.result {
                Ok(_) => Ok(c.clone()),
                Err(f) => Err(f.clone()),
            };
            return (result, vec![]);
        }
    }
    let start = StdInstant::now();
    let (result, warnings) = exec_provider(deadline, setup, provider, img).await;
    let cached = Arc::new(Cached {
        duration_ms: ms(start),
        result,
    });
    // `cacheDuration` 0 means "do not cache"; absent means the provider's default, and a
    // default of 0 means the same.
    let no_cache = |r: &Response| match r.cache_duration.as_deref() {
        Some(d) => config::parse_go_duration(d).ok() == Some(std::time::Duration::ZERO),
        None => provider.default_cache_duration.is_zero(),
    };
    let key = match &cached.result {
        Ok(r) if no_cache(r) => None,
        Ok(r) => Some(match r.cache_key_type.as_str() {
            "Global" => "global".to_string(),
            "Registry" => format!("registry:{}", img.registry),
            _ => format!("image:{}", img.name()),
        }),
        // A failure is not cached by the kubelet either; here the same failure for the same
        // registry in one run is reported once per image without running the plugin again.
        Err(_) => Some(format!("registry:{}", img.registry)),
    };
    if let Some(k) = key
        && provider.token_attributes.is_none()
    {
        cache.insert((provider.name.clone(), k), cached.clone());
    }
    let result = match &cached.result {
        Ok(_) => Ok(cached.clone()),
        Err(f) => Err(f.clone()),
    };
    (result, warnings)
}

fn cache_keys(img: &ImageRef) -> [String; 3] {
    [
        format!("image:{}", img.name()),
        format!("registry:{}", img.registry),
        "global".to_string(),
    ]
}

/// Runs the plugin as the kubelet does; the warnings are what it found on the way, also
/// when it failed.
async fn exec_provider(
    deadline: Instant,
    setup: &NodeProviderSetup,
    provider: &Provider,
    img: &ImageRef,
) -> (Result<Response, Finding>, Vec<Finding>) {
    let (mut warnings, sent) = match &provider.token_attributes {
        None => (vec![], Ok(Sent::default())),
        Some(t) => service_account_sent(provider, t, &setup.service_account),
    };
    let sent = match sent {
        Ok(s) => s,
        Err(f) => return (Err(f), warnings),
    };
    let env = plugin::plugin_env(std::env::vars(), &provider.env);
    warnings.extend(diagnosis::plugin_environment_withheld(
        &provider.name,
        &env.withheld,
    ));
    let result = run_plugin(deadline, setup, provider, &img.name(), sent, &env).await;
    (result, warnings)
}

/// What a KEP-4412 provider is sent of the pod's ServiceAccount.
#[derive(Default)]
struct Sent {
    token: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
}

/// The ServiceAccount token and annotations for a provider with `tokenAttributes`, as the
/// kubelet would send them, or why it would not run the plugin; the warnings either way.
fn service_account_sent(
    provider: &Provider,
    t: &config::TokenAttributes,
    sa: &ServiceAccountInput,
) -> (Vec<Finding>, Result<Sent, Finding>) {
    let mut warnings = Vec::new();
    let annotations = match (&sa.annotations, &sa.annotations_problem) {
        (Some(a), _) => a.clone(),
        (None, Some(p)) if t.require_service_account => return (warnings, Err(p.clone())),
        _ => BTreeMap::new(),
    };
    let missing: Vec<&str> = t
        .required_annotation_keys
        .iter()
        .filter(|k| !annotations.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let f = diagnosis::node_provider_sa_annotation_missing(
            &provider.name,
            sa.name.as_deref(),
            &missing,
        );
        return (warnings, Err(f));
    }
    if provider.name.contains("ecr-credential-provider")
        && !annotations.contains_key(ECR_ROLE_ANNOTATION)
    {
        warnings.push(diagnosis::node_provider_ecr_role_annotation(
            &provider.name,
            sa.name.as_deref(),
            annotations.get(IRSA_ROLE_ANNOTATION).map(String::as_str),
        ));
    }
    let token = match &sa.token {
        Some(tok) => Some(tok),
        // Without `requireServiceAccount` the kubelet calls the plugin without a token.
        None if !t.require_service_account => None,
        None => {
            let f = diagnosis::node_provider_sa_token_missing(&provider.name, &t.audience);
            return (warnings, Err(f));
        }
    };
    if !sa.token_audiences.is_empty() && !sa.token_audiences.contains(&t.audience) {
        warnings.push(diagnosis::node_provider_audience_mismatch(
            &provider.name,
            &t.audience,
            &sa.token_audiences,
        ));
    }
    // Only the keys the provider asked for are sent, as the kubelet filters them.
    let sent: BTreeMap<String, String> = annotations
        .into_iter()
        .filter(|(k, _)| {
            t.required_annotation_keys.contains(k) || t.optional_annotation_keys.contains(k)
        })
        .collect();
    let sent = Sent {
        token: token.map(|t| t.expose().clone()),
        annotations: Some(sent),
    };
    (warnings, Ok(sent))
}

/// The plugin's exec for `name` and its response, checked as the kubelet checks it; what it
/// printed on stderr is redacted of everything it was given or returned.
async fn run_plugin(
    deadline: Instant,
    setup: &NodeProviderSetup,
    provider: &Provider,
    name: &str,
    sent: Sent,
    env: &PluginEnv,
) -> Result<Response, Finding> {
    let request = Request {
        api_version: &provider.api_version,
        kind: "CredentialProviderRequest",
        image: name,
        service_account_token: sent.token.as_deref(),
        service_account_annotations: sent.annotations.as_ref(),
    };
    let body = plugin::encode_request(&request);
    let mut secrets: Vec<String> = sent.token.iter().cloned().collect();
    secrets.extend(
        provider
            .env
            .iter()
            .filter(|(_, v)| v.len() >= 8)
            .map(|(_, v)| v.clone()),
    );
    let out = match plugin::exec(&setup.bin_dir, provider, env, &body, deadline).await {
        Ok(o) => o,
        Err(e @ ExecError::NotFound { .. }) => {
            return Err(diagnosis::node_provider_plugin_not_found(
                &provider.name,
                &setup.bin_dir.display().to_string(),
                &e,
            ));
        }
        Err(e) => {
            return Err(diagnosis::node_provider_plugin_failed(
                &provider.name,
                &crate::error_chain(&e),
                None,
                "",
            ));
        }
    };
    // Whatever the plugin printed may carry what it was given or what it minted.
    if let Ok(r) = plugin::parse_response(&out.stdout, provider) {
        secrets.extend(r.auth.iter().map(|a| a.password.expose().clone()));
    }
    let stderr = redact(&String::from_utf8_lossy(&out.stderr), &secrets);
    if !out.status.success() {
        return Err(diagnosis::node_provider_plugin_failed(
            &provider.name,
            &exit_text(&out.status),
            out.status.code(),
            &stderr,
        ));
    }
    let response = plugin::parse_response(&out.stdout, provider)
        .map_err(|e| diagnosis::node_provider_response_invalid(&provider.name, &e.to_string()))?;
    // KEP-4412: the token itself as a password is refused unless tokens are the cache key.
    if let (Some(t), Some(attrs)) = (&sent.token, &provider.token_attributes)
        && attrs.cache_type != "Token"
        && response.auth.iter().any(|a| a.password.expose() == t)
    {
        return Err(diagnosis::node_provider_response_invalid(
            &provider.name,
            "the plugin returned the ServiceAccount token as the password, which the kubelet refuses unless tokenAttributes.cacheType is Token",
        ));
    }
    Ok(response)
}

fn exit_text(status: &std::process::ExitStatus) -> String {
    match status.code() {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".into(),
    }
}
