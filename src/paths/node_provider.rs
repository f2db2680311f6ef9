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
use super::{Credentials, Puller, REGISTRY_STAGES, ms, skip_rest, unix_now};
use crate::credential_provider::config::{self, ConfigError, Provider};
use crate::credential_provider::plugin::{self, Auth, ExecError, PluginEnv, Request, Response};
use crate::credential_provider::{ECR_ROLE_ANNOTATION, IRSA_ROLE_ANNOTATION, redact};
use crate::diagnosis;
use crate::ecr;
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
            return Checked {
                path,
                rows: vec![],
                blocked: true,
                image_problem: None,
            };
        }
    };
    // What the kubelet passes: the repository name without tag or digest.
    let name = img.name();
    let matched: Vec<(&Provider, &str)> = providers
        .iter()
        .filter_map(|p| p.matching_pattern(&name).map(|m| (p, m)))
        .collect();
    if matched.is_empty() {
        path.findings.push(diagnosis::node_provider_no_match(
            img,
            providers
                .iter()
                .map(|p| (p.name.as_str(), p.match_images.as_slice())),
        ));
        return Checked {
            path,
            rows: vec![],
            blocked: false,
            image_problem: None,
        };
    }

    let start = StdInstant::now();
    let mut stage_findings = Vec::new();
    let mut answers: Vec<(&Provider, Arc<Cached>)> = Vec::new();
    let mut failed = false;
    for (provider, pattern) in matched {
        path.provider = Some(provider.name.clone());
        path.match_image = Some(pattern.to_string());
        match run_provider(puller.deadline, setup, provider, img, &mut stage_findings).await {
            Ok(c) => answers.push((provider, c)),
            Err(f) => {
                failed = true;
                stage_findings.push(f);
            }
        }
    }
    // One keyring over every answer, providers in the config's order (the kubelet's
    // `externalCredentialProviderKeyring.Lookup`).
    let mut ring = Keyring::new();
    for (provider, c) in &answers {
        let r = c.result.as_ref().expect("errors were returned above");
        path.cache_key_type = Some(r.cache_key_type.clone());
        path.cache_duration = r.cache_duration.clone();
        stage_findings.extend(diagnosis::credential_keys_skipped(&r.skipped_keys));
        for a in &r.auth {
            // parse_response skipped keys that do not parse.
            let _ = ring.add(&a.key, (*provider, a));
        }
    }
    path.environment_withheld = setup.environment.withheld.clone();
    let candidates: Vec<(&Provider, &Auth)> = ring.lookup(&name).into_iter().copied().collect();
    if candidates.is_empty() && !answers.is_empty() {
        stage_findings.push(diagnosis::node_provider_auth_miss(
            &answers
                .iter()
                .map(|(p, _)| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            img,
            answers
                .iter()
                .flat_map(|(_, c)| c.result.as_ref().map(|r| r.auth.as_slice()).unwrap_or(&[]))
                .map(|a| a.key.as_str()),
        ));
        failed = true;
    }
    let duration = answers
        .iter()
        .map(|(_, c)| c.duration_ms)
        .max()
        .unwrap_or_else(|| ms(start));
    let expiries: Vec<Option<i64>> = candidates
        .iter()
        .map(|(_, a)| {
            ecr::decode_authorization_token(&a.basic)
                .ok()
                .and_then(|d| d.password_expiration)
        })
        .collect();
    for ((provider, _), expires) in candidates.iter().zip(&expiries) {
        stage_findings.extend(diagnosis::node_provider_token_expired(
            &provider.name,
            *expires,
            unix_now(),
        ));
    }
    let provider_stage =
        Stage::from_findings("credential_provider", duration, None, stage_findings);
    if candidates.is_empty() {
        path.status = if failed { Status::Fail } else { Status::Skip };
        path.stages = vec![provider_stage];
        skip_rest(&mut path.stages, &REGISTRY_STAGES);
        return Checked {
            path,
            rows: vec![],
            blocked: false,
            image_problem: None,
        };
    }
    let list: Vec<Candidate<'_>> = candidates
        .iter()
        .zip(&expiries)
        .map(|((provider, auth), expires)| Candidate {
            row: KubeletCredential {
                source: CredentialSource::NodeCredentialProvider,
                origin: provider.name.clone(),
                key: Some(auth.key.clone()),
                username: Some(auth.username.clone()),
                status: Status::Skip,
            },
            basic: (!auth.username.is_empty()).then_some(&auth.basic),
            credentials: Credentials::NodeProvider {
                provider: &provider.name,
                username: &auth.username,
                ecr_expires_at: *expires,
            },
            expired: None,
        })
        .collect();
    let tried = try_in_order(puller, img, list).await;
    if let Some(i) = tried.last {
        let (provider, auth) = candidates[i];
        path.provider = Some(provider.name.clone());
        path.match_image = provider.matching_pattern(&name).map(str::to_string);
        path.auth_key = Some(auth.key.clone());
        path.username = Some(auth.username.clone());
        path.password_expires_at = expiries[i];
    }
    path.status = if tried.passed {
        Status::Pass
    } else {
        Status::Fail
    };
    path.stages = std::iter::once(provider_stage)
        .chain(tried.stages)
        .collect();
    Checked {
        path,
        rows: tried.rows,
        blocked: false,
        image_problem: tried.image_problem,
    }
}

/// A provider's response for `img`, from the run's cache when the provider's cache key
/// covers it (the kubelet caches by `cacheKeyType` for `cacheDuration`), else by running
/// the plugin. Errors are findings.
async fn run_provider(
    deadline: Instant,
    setup: &NodeProviderSetup,
    provider: &Provider,
    img: &ImageRef,
    findings: &mut Vec<Finding>,
) -> Result<Arc<Cached>, Finding> {
    // One plugin run at a time per run of the probe, as the kubelet's singleflight does
    // per cache key; later images of the same registry reuse the answer.
    let mut cache = setup.cache.lock().await;
    for key in cache_keys(img) {
        if let Some(c) = cache.get(&(provider.name.clone(), key)) {
            return match &c.result {
                Ok(_) => Ok(c.clone()),
                Err(f) => Err(f.clone()),
            };
        }
    }
    let start = StdInstant::now();
    let result = exec_provider(deadline, setup, provider, img, findings).await;
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
    match &cached.result {
        Ok(_) => Ok(cached),
        Err(f) => Err(f.clone()),
    }
}

fn cache_keys(img: &ImageRef) -> [String; 3] {
    [
        format!("image:{}", img.name()),
        format!("registry:{}", img.registry),
        "global".to_string(),
    ]
}

async fn exec_provider(
    deadline: Instant,
    setup: &NodeProviderSetup,
    provider: &Provider,
    img: &ImageRef,
    findings: &mut Vec<Finding>,
) -> Result<Response, Finding> {
    let sa = &setup.service_account;
    let name = img.name();
    let mut secrets: Vec<String> = Vec::new();
    let (token, annotations) = match &provider.token_attributes {
        None => (None, None),
        Some(t) => {
            let annotations = match (&sa.annotations, &sa.annotations_problem) {
                (Some(a), _) => a.clone(),
                (None, Some(p)) if t.require_service_account => return Err(p.clone()),
                _ => BTreeMap::new(),
            };
            let missing: Vec<&str> = t
                .required_annotation_keys
                .iter()
                .filter(|k| !annotations.contains_key(*k))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(diagnosis::node_provider_sa_annotation_missing(
                    &provider.name,
                    sa.name.as_deref(),
                    &missing,
                ));
            }
            if provider.name.contains("ecr-credential-provider")
                && !annotations.contains_key(ECR_ROLE_ANNOTATION)
            {
                findings.push(diagnosis::node_provider_ecr_role_annotation(
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
                    return Err(diagnosis::node_provider_sa_token_missing(
                        &provider.name,
                        &t.audience,
                    ));
                }
            };
            if !sa.token_audiences.is_empty() && !sa.token_audiences.contains(&t.audience) {
                findings.push(diagnosis::node_provider_audience_mismatch(
                    &provider.name,
                    &t.audience,
                    &sa.token_audiences,
                ));
            }
            secrets.extend(token.map(|t| t.expose().clone()));
            // Only the keys the provider asked for are sent, as the kubelet filters them.
            let sent: BTreeMap<String, String> = annotations
                .into_iter()
                .filter(|(k, _)| {
                    t.required_annotation_keys.contains(k) || t.optional_annotation_keys.contains(k)
                })
                .collect();
            (token.map(|t| t.expose().clone()), Some(sent))
        }
    };
    let request = Request {
        api_version: &provider.api_version,
        kind: "CredentialProviderRequest",
        image: &name,
        service_account_token: token.as_deref(),
        service_account_annotations: annotations.as_ref(),
    };
    let body = plugin::encode_request(&request);
    secrets.extend(
        provider
            .env
            .iter()
            .filter(|(_, v)| v.len() >= 8)
            .map(|(_, v)| v.clone()),
    );
    let env = plugin::plugin_env(std::env::vars(), &provider.env);
    findings.extend(diagnosis::plugin_environment_withheld(
        &provider.name,
        &env.withheld,
    ));
    let out = match plugin::exec(&setup.bin_dir, provider, &env, &body, deadline).await {
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
    if let (Some(t), Some(attrs)) = (&token, &provider.token_attributes)
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
